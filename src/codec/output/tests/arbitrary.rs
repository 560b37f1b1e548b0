//! Arbitrary outputs: every one encodes, and apache_avro reads back what the
//! model holds.

use super::*;

fn text() -> impl Strategy<Value = CompactString> {
    any::<String>().prop_map(CompactString::from)
}

fn opt_text() -> impl Strategy<Value = Option<CompactString>> {
    proptest::option::of(text())
}

fn direction() -> impl Strategy<Value = Direction> {
    proptest::sample::select(Direction::ALL.to_vec())
}

fn band() -> impl Strategy<Value = Band> {
    proptest::sample::select(Band::ALL.to_vec())
}

fn arb_stage_changed() -> impl Strategy<Value = Output> {
    let channel = proptest::option::of(proptest::sample::select(vec!["web", "app", "other"]));
    (
        (text(), any::<u64>(), opt_text(), text(), direction()),
        (opt_text(), opt_text(), channel),
        (any::<i64>(), any::<i64>(), any::<i64>(), any::<u64>()),
    )
        .prop_map(
            |((id, seq, from, to, dir), (ev, act, ch), (et, da, tin, n))| {
                Output::StageChanged(StageChanged {
                    customer_id: id,
                    sequence: seq,
                    from_stage: from,
                    to_stage: to,
                    direction: dir,
                    trigger_event_id: ev,
                    trigger_action: act,
                    trigger_channel: ch,
                    event_time: et,
                    detected_at: da,
                    time_in_previous_stage_ms: tin,
                    touchpoint_count: n,
                    time_since_first_touchpoint_ms: (n % 2 == 0).then_some(tin),
                })
            },
        )
}

fn arb_churn() -> impl Strategy<Value = Output> {
    let cause = proptest::sample::select(vec![ChurnCause::Event, ChurnCause::Timer]);
    (
        (
            text(),
            any::<u64>(),
            any::<f64>(),
            band(),
            proptest::option::of(band()),
        ),
        (any::<f64>(), proptest::collection::vec(text(), 0..4), cause),
        (opt_text(), any::<i64>(), any::<i64>()),
    )
        .prop_map(
            |((id, seq, risk, band, prev), (p, signals, cause), (ev, et, da))| {
                Output::ChurnRiskChanged(ChurnRiskChanged {
                    customer_id: id,
                    sequence: seq,
                    risk,
                    band,
                    previous_band: prev,
                    p_alive: p,
                    signals,
                    cause,
                    trigger_event_id: ev,
                    event_time: et,
                    detected_at: da,
                })
            },
        )
}

fn arb_funnel() -> impl Strategy<Value = Output> {
    let entry = (text(), any::<u64>()).prop_map(|(stage, count)| StageCount { stage, count });
    let pair = (
        text(),
        text(),
        any::<u64>(),
        any::<u64>(),
        any::<Option<f64>>(),
        any::<u64>(),
    )
        .prop_map(
            |(from_stage, to_stage, conversions, dropoffs, dropoff_ratio, in_flight)| PairCount {
                from_stage,
                to_stage,
                conversions,
                dropoffs,
                dropoff_ratio,
                in_flight,
            },
        );
    (
        (any::<u64>(), any::<i64>(), any::<i64>()),
        proptest::collection::vec(entry, 0..4),
        proptest::collection::vec(pair, 0..4),
        (any::<u64>(), any::<f64>(), any::<u64>()),
    )
        .prop_map(
            |((seq, start, end), entries, pairs, (active, revenue, late))| {
                Output::FunnelWindow(FunnelWindow {
                    sequence: seq,
                    window_start: start,
                    window_end: end,
                    entries,
                    pairs,
                    active_customers: active,
                    revenue,
                    late_events: late,
                    channels: Vec::new(),
                    scores: scores(),
                    scores_by_stage: Vec::new(),
                    time_to_convert: Vec::new(),
                    moments: Vec::new(),
                })
            },
        )
}

fn arb_output() -> impl Strategy<Value = Output> {
    prop_oneof![arb_stage_changed(), arb_churn(), arb_funnel()]
}

proptest! {
    /// Any output encodes without panicking, in both formats; the JSON
    /// is valid, and the Avro is apache_avro's own encoding of the same values
    /// (compared as bytes, so NaN and -0.0 count too) and reads back whole.
    #[test]
    fn arbitrary_outputs_encode(output in arb_output()) {
        let mut buf = Vec::new();
        let mut key = Vec::new();
        OutputEncoder::json().encode(&output, &mut buf);
        prop_assert_eq!(&buf, &serde_json::to_vec(&output).unwrap());
        serde_json::from_slice::<serde::de::IgnoredAny>(&buf).unwrap();
        avro().encode(&output, &mut buf);
        prop_assert_eq!(&buf[5..], &reference_datum(&output)[..]);
        decode(&output, &buf);
        avro().key(&output, &mut key);
    }
}
