//! The engine's side of the changelog, story by story: timers across an
//! outage, tombstones from eviction and erasure, the replay fence, revoked
//! partitions, and the version-1 value checked in for good.

use crate::common;

use std::collections::BTreeMap;

use common::restore::*;
use common::streams::Read;
use common::*;
use journeyd::config::{Config, TimeMode};
use journeyd::engine::consent::ConsentState;
use journeyd::engine::snapshot::{self, CustomerState, WindowState};
use journeyd::engine::{Engine, Ingested};
use journeyd::model::{Band, Direction, EventTime, Output};

fn read(partition: u32, offset: i64, ev: Ev) -> Read {
    Read {
        partition,
        offset,
        ev,
    }
}

fn lapses(outputs: &[Output], customer: &str) -> usize {
    outputs
        .iter()
        .filter(|o| {
            matches!(o, Output::StageChanged(s)
            if s.customer_id == customer && s.direction == Direction::Lapse)
        })
        .count()
}

/// Runs `reads` into a fresh engine that tracks changes.
fn engine_with(config: &Config, reads: &[Read]) -> (Engine, Vec<Output>) {
    let mut engine = Engine::new(config).unwrap();
    engine.track_changes(true);
    let mut out = Vec::new();
    for r in reads {
        ingest(&mut engine, r, &mut out);
    }
    (engine, out)
}

#[test]
fn a_timer_due_during_an_outage_fires_once_when_the_backlog_is_read() {
    let config = event_config();
    let reads = [
        read(0, 0, Ev::new("a1", "ann", day(0.0), "pricing_view")),
        read(0, 1, Ev::new("k1", "clock", day(0.1), "page_view")),
        // Written while nobody owned the partition; ann lapses on day 90.
        read(0, 2, Ev::new("k2", "clock", day(100.0), "page_view")),
        read(0, 3, Ev::new("k3", "clock", day(100.1), "page_view")),
    ];
    let (mut b, b_out) = engine_with(&config, &reads[..2]);
    let mut changelog = Changelog::new();
    drain(&mut b, &mut changelog);
    let commits = checkpoint(&b, &reads[..2]);
    assert_eq!(
        commits[&0].offset, 1,
        "the clock's touchpoint is still buffered"
    );

    let mut c = restart(&config, &changelog, &commits);
    let mut c_out = Vec::new();
    for r in reread(&reads, &commits) {
        ingest(&mut c, r, &mut c_out);
    }
    c.finish(&mut c_out);
    assert_eq!(lapses(&c_out, "ann"), 1);

    let (mut a, mut a_out) = engine_with(&config, &reads);
    a.finish(&mut a_out);
    let mut joined = customer_outputs(&b_out);
    joined.extend(customer_outputs(&c_out));
    assert_eq!(joined, customer_outputs(&a_out));
}

#[test]
fn a_quiet_partition_restored_after_an_outage_fires_a_due_timer_once() {
    let mut config = Config::default();
    config.time.mode = TimeMode::Hybrid;
    let start = day(0.0);
    let mut b = Engine::new(&config).unwrap();
    b.track_changes(true);
    b.assign(0, start);
    let mut out = Vec::new();
    let ann = Ev::new("a1", "ann", start, "pricing_view");
    b.ingest_at(0, 0, &ann.touchpoint(), start, &mut out);
    let committed_at = start.plus_ms(2 * MINUTE);
    b.tick(committed_at, &mut out);
    assert_eq!(b.buffered(), 0, "the quiet stream's watermark passed ann");
    let mut changelog = Changelog::new();
    drain(&mut b, &mut changelog);
    let checkpoint = b.checkpoint(0, committed_at).unwrap();

    // 100 days later, nothing new on the partition.
    let back = day(100.0);
    let mut c = Engine::new(&config).unwrap();
    c.assign(0, back);
    changelog.restore_into(&mut c);
    c.resume([(0, checkpoint)]);
    let mut c_out = Vec::new();
    c.tick(back.plus_ms(30 * SECOND), &mut c_out);
    assert_eq!(lapses(&c_out, "ann"), 0, "not idle yet: a backlog may come");
    c.tick(back.plus_ms(MINUTE), &mut c_out);
    assert_eq!(
        lapses(&c_out, "ann"),
        1,
        "quiet since the commit: ann lapsed"
    );
    c.tick(back.plus_ms(HOUR), &mut c_out);
    assert_eq!(lapses(&c_out, "ann"), 1);
}

#[test]
fn a_timer_already_due_when_restored_fires_on_the_next_tick_once() {
    let config = event_config();
    let (mut x, _) = engine_with(
        &config,
        &[
            read(0, 0, Ev::new("a1", "ann", day(0.0), "pricing_view")),
            read(0, 1, Ev::new("k1", "clock", day(0.1), "page_view")),
        ],
    );
    let value = x.snapshot("ann").unwrap();

    // Another instance is already at day 100 with its other partition, and
    // Ann is restored for partition 0, which it does not read: nothing of
    // it is to come, so Ann's time is the instance's.
    let (mut y, _) = engine_with(
        &config,
        &[
            read(1, 0, Ev::new("b1", "bob", day(100.0), "page_view")),
            read(1, 1, Ev::new("b2", "bob", day(100.1), "page_view")),
        ],
    );
    y.restore(0, "ann", Some(&value)).unwrap();
    let mut out = Vec::new();
    y.tick(EventTime(0), &mut out);
    assert_eq!(lapses(&out, "ann"), 1, "fired on the next tick");
    y.tick(EventTime(0), &mut out);
    let later = Ev::new("b3", "bob", day(101.0), "page_view");
    y.ingest_at(1, 2, &later.touchpoint(), EventTime(0), &mut out);
    y.finish(&mut out);
    assert_eq!(lapses(&out, "ann"), 1, "and only once");
}

/// Partition 0 as its previous owner read it: B commits after offset 3,
/// with Bob's touchpoint at offset 3 still waiting for the watermark.
/// Reading on, Ann's purchase (day 5) converts her before her
/// consideration deadline (day 7), Bob's second purchase (day 60) takes
/// him to retention before he would lapse, and Cid lapses on day 110, 90
/// days after his last touchpoint.
fn partition_0() -> Vec<Read> {
    [
        Ev::new("a1", "ann", day(0.0), "pricing_view"),
        Ev::new("b1", "bob", day(0.0), "purchase").value(30.0),
        Ev::new("a2", "ann", day(1.0), "page_view"),
        Ev::new("b2", "bob", day(1.5), "page_view"),
        Ev::new("a3", "ann", day(5.0), "purchase").value(20.0),
        Ev::new("c1", "cid", day(6.0), "ad_click"),
        Ev::new("c2", "cid", day(20.0), "page_view"),
        Ev::new("b3", "bob", day(60.0), "purchase").value(25.0),
        Ev::new("a4", "ann", day(80.0), "page_view"),
        Ev::new("k1", "clock", day(120.0), "page_view"),
    ]
    .into_iter()
    .zip(0..)
    .map(|(ev, offset)| read(0, offset, ev))
    .collect()
}

/// Instance A reads partition 1, already at day 100 (instances catching up
/// on a backlog at different speeds), when it takes partition 0 over from
/// instance B: it restores B's changelog, resumes from B's commit (with its
/// checkpoint, or without one, as from a broker that keeps no commit
/// metadata) and reads partition 0 again from the committed offset while
/// partition 1 goes on. Partition 0's customers continue in their own
/// time: B's outputs and then A's are exactly those of an uninterrupted
/// run of partition 0, and none of its touchpoints is late for its
/// customer. Its funnel windows move with it: A counts partition 0's
/// touchpoints in the windows it had emitted before and emits them, with
/// partition 0's counts, as partition 0's time passes them, so that B's
/// windows and A's add up to the uninterrupted run's.
#[test]
fn a_partition_taken_over_behind_the_instance_continues_in_its_own_time() {
    for mode in [TimeMode::Event, TimeMode::Hybrid] {
        for with_checkpoint in [true, false] {
            let context = format!("{mode:?}, checkpoint: {with_checkpoint}");
            let mut config = Config::default();
            config.time.mode = mode;
            let reads = partition_0();
            let (u, u_out) = engine_with(&config, &reads);

            let (mut b, b_out) = engine_with(&config, &reads[..4]);
            let mut changelog = Changelog::new();
            drain(&mut b, &mut changelog);
            let commits = checkpoint(&b, &reads[..4]);
            assert_eq!(commits[&0].offset, 3, "{context}");

            let (a_out, a) = take_over(&config, &changelog, &commits, with_checkpoint, &reads);
            let mut joined = customer_outputs(&b_out);
            joined.extend(
                customer_outputs(&a_out)
                    .into_iter()
                    .filter(|(key, _)| !key.1.starts_with('p')),
            );
            joined.sort();
            let mut expected = customer_outputs(&u_out);
            expected.sort();
            assert_eq!(joined, expected, "{context}");
            assert_eq!(lapses(&a_out, "cid"), 1, "{context}");
            assert_eq!(a.stats().late, 0, "{context}");
            // Before day 100, where partition 1 starts.
            let before_p1 = |w: &(i64, WindowSum)| w.0 < day(100.0).millis();
            let mut sums = window_sums(&b_out);
            for (start, sum) in window_sums(&a_out) {
                sums.entry(start).or_default().add(&sum);
            }
            let sums: Vec<_> = sums.into_iter().filter(before_p1).collect();
            let expected: Vec<_> = window_sums(&u_out).into_iter().filter(before_p1).collect();
            assert!(expected.len() > 5, "{context}");
            assert_eq!(sums, expected, "{context}");
            let mut held = summary(&a);
            held.retain(|id, _| !id.starts_with('p'));
            assert_eq!(held, summary(&u), "{context}");
        }
    }
}

/// The counts of a window, added up over the windows emitted for one start.
#[derive(Clone, Debug, Default, PartialEq)]
struct WindowSum {
    entries: Vec<u64>,
    pairs: Vec<(u64, u64)>,
    active: u64,
    revenue: f64,
    late: u64,
}

impl WindowSum {
    fn add(&mut self, other: &WindowSum) {
        self.entries
            .resize(other.entries.len().max(self.entries.len()), 0);
        self.pairs
            .resize(other.pairs.len().max(self.pairs.len()), (0, 0));
        for (a, b) in self.entries.iter_mut().zip(&other.entries) {
            *a += b;
        }
        for (a, b) in self.pairs.iter_mut().zip(&other.pairs) {
            (a.0, a.1) = (a.0 + b.0, a.1 + b.1);
        }
        self.active += other.active;
        self.revenue += other.revenue;
        self.late += other.late;
    }
}

/// Every funnel window's counts, added up per window start.
fn window_sums(outputs: &[Output]) -> BTreeMap<i64, WindowSum> {
    let mut sums: BTreeMap<i64, WindowSum> = BTreeMap::new();
    for output in outputs {
        if let Output::FunnelWindow(w) = output {
            let sum = WindowSum {
                entries: w.entries.iter().map(|e| e.count).collect(),
                pairs: w
                    .pairs
                    .iter()
                    .map(|p| (p.conversions, p.dropoffs))
                    .collect(),
                active: w.active_customers,
                revenue: w.revenue,
                late: w.late_events,
            };
            sums.entry(w.window_start).or_default().add(&sum);
        }
    }
    sums
}

/// Instance A of the takeover above: partition 1 at day 100, then
/// partition 0 restored, resumed and read again, alternating with
/// partition 1's touchpoints.
fn take_over(
    config: &Config,
    changelog: &Changelog,
    commits: &Commits,
    with_checkpoint: bool,
    reads: &[Read],
) -> (Vec<Output>, Engine) {
    let mut a = Engine::new(config).unwrap();
    a.track_changes(true);
    let mut out = Vec::new();
    a.assign(1, EventTime(0));
    let mut next = 0;
    let mut p1 = |a: &mut Engine, out: &mut Vec<Output>| {
        let at = day(100.0).plus_ms(next * HOUR);
        let ev = Ev::new(
            format!("p{next}"),
            &format!("p-{}", next % 3),
            at,
            "page_view",
        );
        a.ingest_at(1, next, &ev.touchpoint(), READ_AT, out);
        next += 1;
    };
    for _ in 0..3 {
        p1(&mut a, &mut out);
    }
    a.assign(0, EventTime(0));
    changelog.restore_into(&mut a);
    let resumed = commits[&0].checkpoint.filter(|_| with_checkpoint);
    a.resume(resumed.map(|c| (0, c)));
    a.tick(EventTime(0), &mut out);
    for r in reread(reads, commits) {
        ingest(&mut a, r, &mut out);
        p1(&mut a, &mut out);
    }
    (out, a)
}

#[test]
fn eviction_after_the_ttl_yields_a_tombstone() {
    let config = event_config();
    let reads = [
        read(0, 0, Ev::new("a1", "ann", day(0.0), "ad_click")),
        read(0, 1, Ev::new("k1", "clock", day(1.0), "page_view")),
    ];
    let (mut engine, _) = engine_with(&config, &reads);
    let mut changelog = Changelog::new();
    drain(&mut engine, &mut changelog);
    assert!(changelog.customers.contains_key("ann"));
    let earlier = changelog.clone();

    let mut out = Vec::new();
    for (offset, d) in [(2, 402.0), (3, 402.1)] {
        let ev = Ev::new(format!("k{offset}"), "clock", day(d), "page_view");
        engine.ingest_at(0, offset, &ev.touchpoint(), EventTime(0), &mut out);
    }
    assert!(engine.customer("ann").is_none(), "evicted after 400 days");
    let drained = drain(&mut engine, &mut changelog);
    assert!(drained.contains(&("ann".to_owned(), true)), "{drained:?}");
    assert!(!changelog.customers.contains_key("ann"));

    // Restoring the log in order: the old value, then the tombstone.
    let mut restored = Engine::new(&config).unwrap();
    let (partition, value) = &earlier.customers["ann"];
    restored.restore(*partition, "ann", Some(value)).unwrap();
    assert!(restored.customer("ann").is_some());
    restored.restore(*partition, "ann", None).unwrap();
    assert!(restored.customer("ann").is_none());
    assert_eq!(restored.stats().customers_per_stage.iter().sum::<u64>(), 0);
}

#[test]
fn erasure_forgets_the_customer_everywhere() {
    let config = event_config();
    let first = Ev::new("a1", "ann", day(0.0), "purchase").value(20.0);
    let reads = [
        read(0, 0, first.clone()),
        read(0, 1, Ev::new("b1", "bea", day(1.0), "ad_click")),
        read(0, 2, Ev::new("a2", "ann", day(1.0), "page_view")),
    ];
    let (mut engine, _) = engine_with(&config, &reads);
    let mut changelog = Changelog::new();
    drain(&mut engine, &mut changelog);
    assert_eq!(
        engine.buffered_low(0),
        Some(1),
        "a2 and b1 wait for the watermark"
    );

    assert!(engine.erase("ann"));
    assert!(!engine.erase("ann"));
    assert!(!engine.erase("nobody"));
    assert!(engine.customer("ann").is_none());
    assert_eq!(
        engine.buffered_low(0),
        Some(1),
        "a2 went with ann, b1 stays"
    );
    assert_eq!(engine.stats().erased, 1);
    assert_eq!(
        drain(&mut engine, &mut changelog),
        [("ann".to_owned(), true)]
    );
    assert!(!changelog.customers.contains_key("ann"));

    // The same event id again: no memory of it, a new journey.
    let mut out = Vec::new();
    let again = first.touchpoint();
    assert_ne!(
        engine.ingest_at(0, 3, &again, EventTime(0), &mut out),
        Ingested::Duplicate
    );
    engine.finish(&mut out);
    let journey: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::StageChanged(s) if s.customer_id == "ann" => {
                Some((s.sequence, s.from_stage.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(journey, [(1, None)]);
}

#[test]
fn the_fence_stops_a_replay_from_applying_touchpoints_twice() {
    let config = event_config();
    // Zed's clock runs ten minutes fast: his touchpoint holds the commit at
    // offset 0 while Ann's six page views after it are applied; read again,
    // the fence skips them before the de-duplication memory is asked.
    let t0 = day(0.0);
    let mut reads = vec![read(
        0,
        0,
        Ev::new("z1", "zed", t0.plus_ms(10 * MINUTE), "ad_click"),
    )];
    for i in 1..=6 {
        let ev = Ev::new(
            format!("a{i}"),
            "ann",
            t0.plus_ms(i * 30 * SECOND),
            "page_view",
        );
        reads.push(read(0, i, ev));
    }
    reads.push(read(
        0,
        7,
        Ev::new("k1", "clock", t0.plus_ms(8 * MINUTE), "page_view"),
    ));
    let (mut b, b_out) = engine_with(&config, &reads);
    assert_eq!(b.customer("ann").unwrap().touchpoints, 6);
    let mut changelog = Changelog::new();
    drain(&mut b, &mut changelog);
    let commits = checkpoint(&b, &reads);
    assert_eq!(commits[&0].offset, 0);

    let mut c = restart(&config, &changelog, &commits);
    let mut c_out = Vec::new();
    for r in reread(&reads, &commits) {
        ingest(&mut c, r, &mut c_out);
    }
    assert_eq!(
        c.customer("ann").unwrap().touchpoints,
        6,
        "none applied twice"
    );
    assert_eq!(
        c.stats().duplicates,
        7,
        "ann's six and the clock's were applied"
    );
    c.finish(&mut c_out);
    let (mut a, mut a_out) = engine_with(&config, &reads);
    a.finish(&mut a_out);
    let mut joined = customer_outputs(&b_out);
    joined.extend(customer_outputs(&c_out));
    assert_eq!(joined, customer_outputs(&a_out));
    assert_eq!(summary(&c), summary(&a));
}

#[test]
fn revoking_a_partition_drops_its_pending_changes() {
    let config = event_config();
    let reads = [
        read(0, 0, Ev::new("a1", "ann", day(0.0), "ad_click")),
        read(1, 0, Ev::new("b1", "bea", day(0.0), "ad_click")),
        read(1, 1, Ev::new("c1", "cal", day(0.0), "ad_click")),
    ];
    let (mut engine, _) = engine_with(&config, &reads);
    assert!(engine.erase("cal"));
    assert_eq!(engine.revoke(1), 1);
    let mut changelog = Changelog::new();
    let drained = drain(&mut engine, &mut changelog);
    assert_eq!(
        drained,
        [("ann".to_owned(), false)],
        "bea and cal's tombstone belong to the next owner"
    );
}

#[test]
fn a_drained_value_is_the_customers_snapshot() {
    let (mut engine, _) = engine_with(
        &event_config(),
        &[read(0, 0, Ev::new("a1", "ann", day(0.0), "ad_click"))],
    );
    let snapshot = engine.snapshot("ann").unwrap();
    let mut changelog = Changelog::new();
    drain(&mut engine, &mut changelog);
    assert_eq!(changelog.customers["ann"], (0, snapshot));
    assert_eq!(engine.dirty_len(), 0);
    assert!(
        drain(&mut engine, &mut changelog).is_empty(),
        "nothing changed since"
    );
}

/// The version-1 value in `tests/golden/state-v1.bin` (described beside it).
fn golden_v1() -> CustomerState {
    let purchase = EventTime(1_772_446_500_000);
    CustomerState {
        stage: Some(3),
        stage_since: purchase,
        band: Some(Band::Medium),
        conversion_pending: true,
        cancelled: false,
        stage_seq: 3,
        churn_seq: 1,
        touchpoints: 6,
        purchases: 1,
        active_window: 29_540_775,
        last_seen: purchase,
        first_purchase: purchase,
        last_purchase: purchase,
        churn_due: EventTime(1_774_949_400_000),
        windows: vec![
            WindowState {
                capacity: 3,
                times: vec![
                    EventTime(1_772_355_900_000),
                    EventTime(1_772_356_200_000),
                    EventTime(1_772_356_800_000),
                ],
            },
            WindowState {
                capacity: 2,
                times: vec![purchase],
            },
        ],
        churn_signals: vec![Some(EventTime(1_772_357_400_000)), None, None, None],
        // The ring's fingerprints (0x4347ee8754c9d4e5, 0x2392f7eb50f67655,
        // 0x4f2a0a31dbe4bb1b, 0xb5287f38530d49af) as today's entries at
        // last_seen, with the floor just below it.
        dedupe: vec![
            0x3010_cee6_2850_d1fb,
            0x3010_cee6_2848_e4bd,
            0x3010_cee6_2853_ca82,
            0x3010_cee6_286d_4a1f,
        ],
        dedupe_floor: 0x3010_cee6_283f_ffff,
        fence: Some(1006),
        awaiting: vec![1006],
        latest_scores: [None; 3],
        first_seen: EventTime::MIN,
        consent: ConsentState::Unknown,
        consent_at: EventTime::MIN,
        moment_seq: 0,
        moments: vec![],
    }
}

#[test]
fn the_checked_in_version_1_value_decodes_forever() {
    let bytes = include_bytes!("../golden/state-v1.bin");
    assert_eq!(snapshot::decode(bytes), Ok(golden_v1()));
}

/// The version-2 value in `tests/golden/state-v2.bin` (described beside it).
fn golden_v2() -> CustomerState {
    CustomerState {
        dedupe: vec![
            0x300f_7424_a05d_87d6,
            0x300f_7549_987b_2b76,
            0x300f_766e_9070_5084,
            0x300f_78b8_806d_4a1f,
            0x300f_7b02_7050_d1fb,
            0x3010_cee6_2848_e4bd,
            0,
            0,
        ],
        dedupe_floor: 0,
        ..golden_v1()
    }
}

#[test]
fn the_checked_in_version_2_value_decodes_forever() {
    let bytes = include_bytes!("../golden/state-v2.bin");
    assert_eq!(snapshot::decode(bytes), Ok(golden_v2()));
}

#[test]
fn the_version_2_value_restores_with_its_de_duplication_memory() {
    let mut engine = Engine::new(&event_config()).unwrap();
    engine
        .restore(
            0,
            "golden-1",
            Some(include_bytes!("../golden/state-v2.bin")),
        )
        .unwrap();
    let mut out = Vec::new();
    let waiting = Ev::new(
        "evt-1006",
        "golden-1",
        EventTime(1_772_446_545_000),
        "page_view",
    );
    // evt-1002 (09:10, five touchpoints back) produced again upstream,
    // read at a new offset after the restore.
    let again = Ev::new(
        "evt-1002",
        "golden-1",
        EventTime(1_772_356_200_000),
        "product_view",
    );
    let ingested = [(1006, &waiting), (1007, &again)]
        .map(|(offset, ev)| engine.ingest_at(0, offset, &ev.touchpoint(), EventTime(0), &mut out));
    assert_eq!(ingested, [Ingested::Accepted, Ingested::Duplicate]);
    engine.finish(&mut out);
    assert_eq!(engine.customer("golden-1").unwrap().touchpoints, 7);
    assert_eq!(engine.stats().duplicates, 1);
}

#[test]
fn the_version_1_value_restores_and_continues() {
    let mut engine = Engine::new(&event_config()).unwrap();
    engine
        .restore(
            0,
            "golden-1",
            Some(include_bytes!("../golden/state-v1.bin")),
        )
        .unwrap();
    let c = engine.customer("golden-1").unwrap();
    assert_eq!(engine.rules().stage_name(c.stage), "purchase");
    assert_eq!((c.stage_seq, c.churn_seq, c.touchpoints), (3, 1, 6));
    assert_eq!(c.band, Some(Band::Medium));

    // Offsets 1000 to 1005 were applied; 1006 was waiting and is applied now.
    let mut out = Vec::new();
    let applied = Ev::new("evt-1005", "golden-1", day(0.0), "purchase");
    let waiting = Ev::new(
        "evt-1006",
        "golden-1",
        EventTime(1_772_446_545_000),
        "page_view",
    );
    let ingested = [(1005, &applied), (1006, &waiting)]
        .map(|(offset, ev)| engine.ingest_at(0, offset, &ev.touchpoint(), EventTime(0), &mut out));
    assert_eq!(ingested, [Ingested::Duplicate, Ingested::Accepted]);
    engine.finish(&mut out);
    assert_eq!(engine.customer("golden-1").unwrap().touchpoints, 7);
}

#[test]
fn a_late_older_record_of_a_customer_does_not_roll_the_restored_state_back() {
    // An instance that lost the partition (frozen past its session
    // timeout) may write its older state after the new owner's newer one.
    let older = [read(0, 0, Ev::new("a1", "ann", day(0.0), "ad_click"))];
    let newer = [
        older[0].clone(),
        read(0, 1, Ev::new("a2", "ann", day(1.0), "pricing_view")),
    ];
    let (mut zombie, _) = engine_with(&event_config(), &older);
    let (mut owner, _) = engine_with(&event_config(), &newer);
    let stale = drain_records(&mut zombie);
    let mut log = drain_records(&mut owner);
    let want = owner.snapshot("ann").unwrap();
    // The stale record lands between two of the owner's drains: the
    // owner's next funnel record completes the drain it lands in.
    let funnel = log.iter().find(|r| r.key.is_none()).cloned().unwrap();
    log.extend(stale.into_iter().filter(|r| r.key.is_some()));
    log.push(funnel);

    let mut restored = Engine::new(&event_config()).unwrap();
    restore_log(&mut restored, &log);
    assert_eq!(restored.snapshot("ann").unwrap(), want);
}

/// The version-3 value in `tests/golden/state-v3.bin` (described beside it).
fn golden_v3() -> CustomerState {
    CustomerState {
        latest_scores: [Some(9), None, Some(3)],
        // evt-1000, 2026-03-01 09:00:00.
        first_seen: EventTime(1_772_355_600_000),
        ..golden_v2()
    }
}

#[test]
fn a_journey_restored_without_its_start_reports_no_time_since_it() {
    let mut engine = Engine::new(&event_config()).unwrap();
    let v2 = include_bytes!("../golden/state-v2.bin");
    engine.restore(0, "golden-1", Some(v2)).unwrap();
    let mut out = Vec::new();
    let renewal = Ev::new(
        "evt-2000",
        "golden-1",
        EventTime(1_772_446_500_000 + 40 * DAY),
        "purchase",
    )
    .value(20.0);
    engine.ingest_at(0, 2000, &renewal.touchpoint(), EventTime(0), &mut out);
    engine.finish(&mut out);
    let changes: Vec<_> = (out.iter())
        .filter_map(|o| match o {
            Output::StageChanged(s) => Some(s.time_since_first_touchpoint_ms),
            _ => None,
        })
        .collect();
    assert!(
        !changes.is_empty(),
        "a repeat purchase moves the customer on"
    );
    assert!(
        changes.iter().all(Option::is_none),
        "unknown, not counted from the restore: {changes:?}"
    );
}

#[test]
fn the_checked_in_version_3_value_decodes_forever() {
    let bytes = include_bytes!("../golden/state-v3.bin");
    assert_eq!(snapshot::decode(bytes), Ok(golden_v3()));
    let mut engine = Engine::new(&event_config()).unwrap();
    engine.restore(0, "golden-1", Some(bytes)).unwrap();
    let view = journeyd::http::CustomerView::from_engine(&engine, "golden-1").unwrap();
    assert_eq!(
        (view.scores.nps, view.scores.csat, view.scores.ces),
        (Some(9), None, Some(3)),
        "the latest scores come back with the customer"
    );
}

/// The version-4 value in `tests/golden/state-v4.bin` (described beside it).
fn golden_v4() -> CustomerState {
    CustomerState {
        consent: ConsentState::Granted,
        // 2026-03-01 08:59:00, a minute before evt-1000.
        consent_at: EventTime(1_772_355_540_000),
        ..golden_v3()
    }
}

#[test]
fn the_checked_in_version_4_value_decodes_forever() {
    let bytes = include_bytes!("../golden/state-v4.bin");
    assert_eq!(snapshot::decode(bytes), Ok(golden_v4()));
    let mut encoded = Vec::new();
    snapshot::encode(&golden_v4(), &mut encoded);
    assert_eq!(encoded[0], 5, "version 5 is the format written today");
    let mut config = event_config();
    config.consent.mode = journeyd::config::ConsentMode::OptIn;
    let mut engine = Engine::new(&config).unwrap();
    engine.restore(0, "golden-1", Some(bytes)).unwrap();
    let view = journeyd::http::CustomerView::from_engine(&engine, "golden-1").unwrap();
    assert_eq!(
        (view.consent.state, view.consent.changed_at.as_deref()),
        ("granted", Some("2026-03-01T08:59:00Z"))
    );
    assert_eq!(engine.customer("golden-1").unwrap().touchpoints, 6);
}

/// The version-5 value in `tests/golden/state-v5.bin` (described beside it).
fn golden_v5() -> CustomerState {
    let last_seen = golden_v4().last_seen;
    CustomerState {
        moment_seq: 1,
        moments: vec![
            None,
            Some(snapshot::OpenMoment {
                first: last_seen.minus_ms(5 * MINUTE),
                latest: last_seen.minus_ms(MINUTE),
            }),
        ],
        ..golden_v4()
    }
}

#[test]
fn the_checked_in_version_5_value_decodes_forever() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/state-v5.bin");
    let mut encoded = Vec::new();
    snapshot::encode(&golden_v5(), &mut encoded);
    if std::env::var_os("UPDATE_GOLDEN").is_some() && !path.exists() {
        std::fs::write(&path, &encoded).unwrap();
    }
    let bytes = std::fs::read(&path).expect("tests/golden/state-v5.bin");
    assert_eq!(snapshot::decode(&bytes), Ok(golden_v5()));
    assert_eq!(encoded, bytes, "version 5 is the format written today");
    let v3 = include_bytes!("../golden/state-v3.bin");
    assert_eq!(
        snapshot::decode(v3).map(|s| (s.moment_seq, s.moments)),
        Ok((0, vec![])),
        "an older value has no moments"
    );
}

#[test]
fn the_version_5_value_restores_its_open_checkout() {
    let mut engine = Engine::new(&event_config()).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/state-v5.bin");
    let bytes = std::fs::read(path).expect("tests/golden/state-v5.bin");
    engine.restore(0, "golden-1", Some(&bytes)).unwrap();
    let last_seen = golden_v5().last_seen;
    let mut out = Vec::new();
    // The checkout's latest start was a minute before last_seen: its
    // deadline is 29 minutes after last_seen; the clock passes it.
    let clock = Ev::new("k1", "clock", last_seen.plus_ms(HOUR), "page_view");
    engine.ingest_at(0, 2000, &clock.touchpoint(), EventTime(0), &mut out);
    engine.finish(&mut out);
    let ended: Vec<_> = (out.iter())
        .filter_map(|o| match o {
            Output::MomentAbandoned(m) => Some((m.moment.to_string(), m.sequence, m.event_time)),
            _ => None,
        })
        .collect();
    let deadline = last_seen.plus_ms(29 * MINUTE).0;
    assert_eq!(ended, [("checkout".to_owned(), 2, deadline)]);
}
