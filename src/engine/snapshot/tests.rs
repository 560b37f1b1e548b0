use proptest::prelude::*;

use super::*;

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
const DAY: i64 = 86_400_000;

fn sample() -> CustomerState {
    CustomerState {
        stage: Some(3),
        stage_since: EventTime(T0 - 2 * DAY),
        band: Some(Band::Medium),
        conversion_pending: true,
        cancelled: false,
        stage_seq: 4,
        churn_seq: 2,
        touchpoints: 17,
        purchases: 2,
        active_window: 29_453_760,
        last_seen: EventTime(T0),
        first_purchase: EventTime(T0 - 40 * DAY),
        last_purchase: EventTime(T0 - 2 * DAY),
        churn_due: EventTime(T0 + 90 * DAY),
        windows: vec![
            WindowState {
                capacity: 3,
                times: vec![EventTime(T0 - DAY), EventTime(T0)],
            },
            WindowState {
                capacity: 2,
                times: vec![EventTime(T0 - 40 * DAY), EventTime(T0 - 2 * DAY)],
            },
        ],
        churn_signals: vec![None, Some(EventTime(T0 - 3 * DAY)), None, None],
        dedupe: vec![0x1234_5678_9abc_def1, 0xfeed_f00d_0000_0001, 0, 0],
        dedupe_floor: 0x1234_5678_0000_0000,
        fence: Some(81_234),
        awaiting: vec![81_230, 81_234],
        latest_scores: [Some(9), None, Some(2)],
        first_seen: EventTime(T0 - 30 * DAY),
        consent: ConsentState::Granted,
        consent_at: EventTime(T0 - 31 * DAY),
        moment_seq: 3,
        moments: vec![
            Some(OpenMoment {
                first: EventTime(T0 - 600_000),
                latest: EventTime(T0 - 300_000),
            }),
            None,
        ],
    }
}

fn round_trip(state: &CustomerState) -> Result<CustomerState, DecodeError> {
    let mut bytes = Vec::new();
    encode(state, &mut bytes);
    decode(&bytes)
}

#[test]
fn a_customer_round_trips_in_few_bytes() {
    let state = sample();
    let mut bytes = Vec::new();
    encode(&state, &mut bytes);
    assert_eq!(bytes[0], FORMAT_VERSION);
    // 18 of them for two de-duplication entries, 9 for the floor, 6 for
    // the consent, 9 for the moments.
    assert!(bytes.len() < 126, "{} bytes", bytes.len());
    assert_eq!(decode(&bytes), Ok(state));
}

#[test]
fn a_fresh_customer_round_trips() {
    let fresh = CustomerState {
        churn_due: EventTime::MAX,
        active_window: u32::MAX,
        stage_since: EventTime::MIN,
        last_seen: EventTime::MIN,
        first_purchase: EventTime::MIN,
        last_purchase: EventTime::MIN,
        dedupe: vec![0; 4],
        consent_at: EventTime::MIN,
        ..CustomerState::default()
    };
    assert_eq!(round_trip(&fresh), Ok(fresh));
}

#[test]
fn unknown_versions_are_refused() {
    let mut bytes = Vec::new();
    encode(&sample(), &mut bytes);
    for version in [0, 6, 0xff] {
        bytes[0] = version;
        assert_eq!(decode(&bytes), Err(DecodeError::UnknownVersion(version)));
    }
    assert_eq!(decode(&[]), Err(DecodeError::Empty));
}

#[test]
fn every_truncation_is_an_error() {
    let mut bytes = Vec::new();
    encode(&sample(), &mut bytes);
    for len in 1..bytes.len() {
        let err = decode(&bytes[..len]).expect_err("a prefix is not a state");
        assert!(
            matches!(err, DecodeError::Truncated(_) | DecodeError::Invalid(_)),
            "{len}: {err:?}"
        );
    }
    bytes.push(0);
    assert_eq!(decode(&bytes), Err(DecodeError::Trailing(1)));
}

#[test]
fn stray_bits_and_impossible_values_are_invalid() {
    let mut bytes = Vec::new();
    encode(&sample(), &mut bytes);
    let mut flags = bytes.clone();
    flags[1] |= 0x80;
    assert_eq!(decode(&flags), Err(DecodeError::Invalid("flags")));
    // Awaiting offsets without a fence: version, flags, then change the fence.
    let no_fence = CustomerState {
        fence: None,
        awaiting: Vec::new(),
        latest_scores: [None; 3],
        first_seen: EventTime::MIN,
        consent: ConsentState::Unknown,
        consent_at: EventTime::MIN,
        moment_seq: 0,
        moments: Vec::new(),
        ..sample()
    };
    let mut bytes = Vec::new();
    encode(&no_fence, &mut bytes);
    // The fence, the latest scores' mask (0), the consent (0), then the
    // moments (0, 0).
    let fence = bytes.len() - 5;
    bytes[fence] = 1;
    bytes.insert(fence + 1, 0);
    assert_eq!(decode(&bytes), Err(DecodeError::Invalid("awaiting")));
    let mut scores = Vec::new();
    encode(&no_fence, &mut scores);
    let mask = scores.len() - 4;
    scores[mask] = 0b1_0000;
    assert_eq!(decode(&scores), Err(DecodeError::Invalid("latest scores")));
    scores[mask] = 0b1;
    scores.insert(mask + 1, u8::MAX);
    assert_eq!(decode(&scores), Err(DecodeError::Invalid("latest scores")));
    let mut consent = Vec::new();
    encode(&no_fence, &mut consent);
    let at = consent.len() - 3;
    consent[at] = 3;
    assert_eq!(decode(&consent), Err(DecodeError::Invalid("consent")));
    let mut moments = Vec::new();
    encode(&no_fence, &mut moments);
    let n = moments.len() - 1;
    moments[n] = 1;
    moments.push(0b10);
    assert_eq!(decode(&moments), Err(DecodeError::Invalid("moments")));
    moments[n + 1] = 0b1;
    moments.extend([0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    assert_eq!(
        decode(&moments),
        Err(DecodeError::Invalid("moments")),
        "a latest start that overflows"
    );
}

#[test]
fn the_consent_and_moments_sections_are_the_only_differences_from_version_3() {
    let v3_state = CustomerState {
        consent: ConsentState::Unknown,
        consent_at: EventTime::MIN,
        moment_seq: 0,
        moments: Vec::new(),
        ..sample()
    };
    let mut bytes = Vec::new();
    encode(&v3_state, &mut bytes);
    assert_eq!(
        bytes.split_off(bytes.len() - 3),
        [0, 0, 0],
        "unknown consent, no moments"
    );
    bytes[0] = 3;
    assert_eq!(decode(&bytes), Ok(v3_state));
    let v4_state = CustomerState {
        moment_seq: 0,
        moments: Vec::new(),
        ..sample()
    };
    let mut bytes = Vec::new();
    encode(&v4_state, &mut bytes);
    assert_eq!(bytes.split_off(bytes.len() - 2), [0, 0], "no moments");
    bytes[0] = 4;
    assert_eq!(decode(&bytes), Ok(v4_state));
    let mut withdrawn = Vec::new();
    let state = CustomerState {
        consent: ConsentState::Withdrawn,
        ..sample()
    };
    encode(&state, &mut withdrawn);
    assert_eq!(round_trip(&state), Ok(state));
}

#[test]
fn reasons_are_stable_labels() {
    assert_eq!(DecodeError::Truncated("x").reason(), "truncated");
    assert_eq!(DecodeError::UnknownVersion(9).reason(), "unknown_version");
    assert_eq!(
        DecodeError::UnknownVersion(9).to_string(),
        "unknown customer state format version 9"
    );
}

fn time() -> impl Strategy<Value = EventTime> {
    prop_oneof![
        4 => (T0 - 1000 * DAY..T0 + 1000 * DAY).prop_map(EventTime),
        1 => any::<i64>().prop_map(EventTime),
    ]
}

fn window() -> impl Strategy<Value = WindowState> {
    (1u32..6)
        .prop_flat_map(|capacity| {
            let times = prop::collection::vec(T0 - 1000 * DAY..T0, 0..=capacity as usize);
            (Just(capacity), times)
        })
        .prop_map(|(capacity, mut times)| {
            times.sort_unstable();
            WindowState {
                capacity,
                times: times.into_iter().map(EventTime).collect(),
            }
        })
}

fn awaiting() -> impl Strategy<Value = (Option<i64>, Vec<i64>)> {
    prop_oneof![
        Just((None, Vec::new())),
        (
            0i64..i64::MAX,
            prop::collection::btree_set(0i64..1_000, 0..6)
        )
            .prop_map(|(fence, back)| {
                let awaiting: Vec<i64> = back
                    .iter()
                    .rev()
                    .filter_map(|b| fence.checked_sub(*b))
                    .filter(|&o| o >= 0)
                    .collect();
                (Some(fence), awaiting)
            }),
    ]
}

prop_compose! {
    fn state()(
        stage in prop::option::of(any::<u8>()),
        band in prop::option::of(prop_oneof![Just(Band::Low), Just(Band::Medium), Just(Band::High)]),
        flags in any::<(bool, bool)>(),
        counters in any::<(u32, u32, u32, u32, u32)>(),
        times in (time(), time(), time(), time(), time()),
        absent in any::<[bool; 5]>(),
        windows in prop::collection::vec(window(), 0..4),
        churn in prop::collection::vec(prop::option::of((T0 - 1000 * DAY..T0).prop_map(EventTime)), 0..10),
        ring in (prop::collection::vec(prop_oneof![Just(0u64), any::<u64>()], 1..70), any::<u64>()),
        (fence, awaiting) in awaiting(),
        latest_scores in any::<[Option<u8>; 3]>().prop_map(|s| s.map(|v| v.filter(|&v| v < u8::MAX))),
        first_seen in prop::option::of(time()),
        consent in prop::option::of((prop_oneof![Just(ConsentState::Granted), Just(ConsentState::Withdrawn)], time().prop_filter("present", |t| *t != EventTime::MIN))),
        moment_seq in any::<u32>(),
        moments in prop::collection::vec(prop::option::of((time(), 0i64..1 << 40)), 0..20),
    ) -> CustomerState {
        let pick = |i: usize, t: EventTime, none: EventTime| if absent[i] { none } else { t };
        CustomerState {
            stage,
            stage_since: pick(1, times.1, EventTime::MIN),
            band,
            conversion_pending: flags.0,
            cancelled: flags.1,
            stage_seq: counters.0,
            churn_seq: counters.1,
            touchpoints: counters.2,
            purchases: counters.3,
            active_window: counters.4,
            last_seen: pick(0, times.0, EventTime::MIN),
            first_purchase: pick(2, times.2, EventTime::MIN),
            last_purchase: pick(3, times.3, EventTime::MIN),
            churn_due: pick(4, times.4, EventTime::MAX),
            windows,
            churn_signals: churn,
            dedupe: ring.0,
            dedupe_floor: ring.1,
            fence,
            awaiting,
            latest_scores,
            first_seen: first_seen.unwrap_or(EventTime::MIN),
            consent: consent.map_or(ConsentState::Unknown, |c| c.0),
            consent_at: consent.map_or(EventTime::MIN, |c| c.1),
            moment_seq,
            moments: (moments.into_iter())
                .map(|m| {
                    m.filter(|(first, step)| first.0 != i64::MIN && first.0.checked_add(*step).is_some())
                        .map(|(first, step)| OpenMoment {
                            first,
                            latest: EventTime(first.0 + step),
                        })
                })
                .collect(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_state_round_trips(state in state()) {
        prop_assert_eq!(round_trip(&state), Ok(state));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&bytes);
        let mut versioned = bytes.clone();
        versioned.insert(0, FORMAT_VERSION);
        let _ = decode(&versioned);
    }

    #[test]
    fn corrupted_states_never_panic(
        state in state(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = Vec::new();
        encode(&state, &mut bytes);
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let _ = decode(&bytes);
        let _ = decode(&bytes[..cut.index(bytes.len())]);
    }
}
