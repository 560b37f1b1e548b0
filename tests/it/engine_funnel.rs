//! Funnel windows as durable state, story by story: a window open at a
//! commit survives a crash with every count, a crash while a drain is
//! written neither loses nor repeats counts, the order of a drain's
//! records, and a changelog written before funnel records existed.

use crate::common;

use common::restore::*;
use common::streams::Read;
use common::*;
use journeyd::engine::{Engine, RecordKey};
use journeyd::model::{EventTime, FunnelWindow, Output};

/// 10:00 on the first day, and `s` seconds after it.
fn at(s: i64) -> EventTime {
    BASE.plus_ms(10 * HOUR + s * SECOND)
}

fn read(partition: u32, offset: i64, id: &str, customer: &str, s: i64) -> Read {
    let ev = Ev::new(id, customer, at(s), "ad_click");
    Read {
        partition,
        offset,
        ev,
    }
}

/// Two partitions. Up to the commit, ann, bob and dan enter awareness in
/// the window 10:00 and are applied; xia and yan enter it too but wait in
/// the reorder buffer at the commit (the commit stays before them). The
/// last two move both partitions past 10:01: the window closes.
fn stream() -> Vec<Read> {
    vec![
        read(0, 0, "a1", "ann", 5),
        read(1, 0, "d1", "dan", 10),
        read(0, 1, "b1", "bob", 20),
        read(1, 1, "y1", "yan", 45),
        read(0, 2, "x1", "xia", 55),
        // the commit
        read(0, 3, "z1", "zed", 120),
        read(1, 2, "w1", "wes", 130),
    ]
}

const COMMIT: usize = 5;

fn windows(outputs: &[Output]) -> Vec<&FunnelWindow> {
    (outputs.iter())
        .filter_map(|o| match o {
            Output::FunnelWindow(w) => Some(w),
            _ => None,
        })
        .collect()
}

/// Entries into awareness and active customers of the window 10:00.
fn ten_oclock(outputs: &[Output]) -> Option<(u64, u64)> {
    let start = at(0).millis();
    (windows(outputs).into_iter())
        .find(|w| w.window_start == start)
        .map(|w| (w.entries[1].count, w.active_customers))
}

fn straight(reads: &[Read]) -> Vec<Output> {
    let mut engine = Engine::new(&event_config()).unwrap();
    let mut out = Vec::new();
    for r in reads {
        ingest(&mut engine, r, &mut out);
    }
    out
}

#[test]
fn a_window_open_at_a_commit_is_emitted_after_a_crash_with_every_count() {
    let reads = stream();
    let config = event_config();
    assert_eq!(ten_oclock(&straight(&reads)), Some((5, 5)));

    let mut b = Engine::new(&config).unwrap();
    b.track_changes(true);
    let mut b_out = Vec::new();
    for r in &reads[..COMMIT] {
        ingest(&mut b, r, &mut b_out);
    }
    let mut changelog = Changelog::new();
    drain(&mut b, &mut changelog);
    let commits = checkpoint(&b, &reads[..COMMIT]);
    assert_eq!(
        (commits[&0].offset, commits[&1].offset),
        (2, 1),
        "xia and yan wait"
    );
    assert_eq!(changelog.funnel.len(), 2, "one funnel record per partition");
    // B reads on, emits the window, and dies before its next drain.
    for r in &reads[COMMIT..] {
        ingest(&mut b, r, &mut b_out);
    }
    assert_eq!(ten_oclock(&b_out), Some((5, 5)));

    let mut c = restart(&config, &changelog, &commits);
    let mut c_out = Vec::new();
    for r in reread(&reads, &commits) {
        ingest(&mut c, r, &mut c_out);
    }
    assert_eq!(
        ten_oclock(&c_out),
        Some((5, 5)),
        "ann, bob and dan from the funnel records, xia and yan read again: the window as before"
    );
    assert_eq!(funnel_windows([&c_out[..]]), funnel_windows([&b_out[..]]));
}

#[test]
fn a_crash_while_a_drain_is_written_neither_loses_nor_repeats_counts() {
    let reads = stream();
    let config = event_config();
    let mut b = Engine::new(&config).unwrap();
    b.track_changes(true);
    let mut b_out = Vec::new();
    for r in &reads[..COMMIT] {
        ingest(&mut b, r, &mut b_out);
    }
    let mut log = drain_records(&mut b);
    let commits = checkpoint(&b, &reads[..COMMIT]);
    for r in &reads[COMMIT..] {
        ingest(&mut b, r, &mut b_out);
    }
    // The next drain: partition 0 is written completely, partition 1 only
    // up to its customer wes; then the process dies.
    let next = drain_records(&mut b);
    let of = |p: u32| next.iter().filter(move |r| r.partition == p).cloned();
    log.extend(of(0));
    let wes: Vec<Record> = of(1).take_while(|r| r.key.is_some()).collect();
    assert_eq!(wes.len(), 2, "xia's partition-mate yan and wes");
    log.extend(wes);

    let mut c = Engine::new(&config).unwrap();
    c.track_changes(true);
    for partition in 0..2 {
        c.assign(partition, EventTime(0));
    }
    restore_log(&mut c, &log);
    assert!(
        c.customer("wes").is_none(),
        "held back: not a complete drain"
    );
    let resumed = commits
        .iter()
        .filter_map(|(&p, c)| c.checkpoint.map(|cp| (p, cp)));
    c.resume(resumed);
    let mut c_out = Vec::new();
    for r in reread(&reads, &commits) {
        ingest(&mut c, r, &mut c_out);
    }
    assert_eq!(
        ten_oclock(&c_out),
        None,
        "emitted before the complete drain"
    );
    assert!(c.customer("wes").is_some(), "read again");
    let superseded: Vec<String> = (drain_records(&mut c).into_iter())
        .filter_map(|r| r.key.filter(|_| r.partition == 1))
        .collect();
    assert!(
        superseded.contains(&"yan".to_owned()) && superseded.contains(&"wes".to_owned()),
        "the next drain writes over the unfinished one: {superseded:?}"
    );
}

#[test]
fn a_drain_writes_each_partitions_funnel_record_after_its_customers() {
    let mut engine = Engine::new(&event_config()).unwrap();
    engine.track_changes(true);
    let mut out = Vec::new();
    for r in &stream()[..COMMIT] {
        ingest(&mut engine, r, &mut out);
    }
    let first = drain_records(&mut engine);
    for partition in 0..2 {
        let keys: Vec<Option<&str>> = (first.iter())
            .filter(|r| r.partition == partition)
            .map(|r| r.key.as_deref())
            .collect();
        assert_eq!(
            keys.first(),
            Some(&None),
            "an empty record opens the first drain"
        );
        assert_eq!(keys.last(), Some(&None), "the funnel record ends it");
        assert!(keys[1..keys.len() - 1].iter().all(Option::is_some));
    }
    let opening = first.iter().find(|r| r.key.is_none()).unwrap();
    let state =
        journeyd::engine::snapshot::decode_funnel(opening.value.as_deref().unwrap()).unwrap();
    assert!(state.windows.is_empty() && state.floor.is_none());

    let r = read(0, 3, "a2", "ann", 30);
    ingest(&mut engine, &r, &mut out);
    let second = drain_records(&mut engine);
    let kinds: Vec<(u32, bool)> = second
        .iter()
        .map(|r| (r.partition, r.key.is_some()))
        .collect();
    assert_eq!(
        kinds,
        [(0, true), (0, false)],
        "ann, then partition 0's funnel record only"
    );
    let mut funnel_keys = 0;
    engine.take_dirty(|c| funnel_keys += usize::from(c.key == RecordKey::Funnel));
    assert_eq!(funnel_keys, 0, "nothing changed: nothing written");
}

#[test]
fn a_changelog_without_funnel_records_restores_with_empty_windows() {
    let reads = stream();
    let config = event_config();
    let mut b = Engine::new(&config).unwrap();
    b.track_changes(true);
    let mut out = Vec::new();
    for r in &reads[..COMMIT] {
        ingest(&mut b, r, &mut out);
    }
    let mut changelog = Changelog::new();
    drain(&mut b, &mut changelog);
    changelog.funnel.clear();
    let commits = checkpoint(&b, &reads[..COMMIT]);

    let mut c = restart(&config, &changelog, &commits);
    let mut c_out = Vec::new();
    for r in reread(&reads, &commits) {
        ingest(&mut c, r, &mut c_out);
    }
    assert_eq!(c.tracked_customers(), 7);
    assert_eq!(
        ten_oclock(&c_out),
        Some((2, 2)),
        "only what was read again, as before"
    );
    let first = drain_records(&mut c);
    assert!(
        first.iter().filter(|r| r.key.is_none()).count() >= 3,
        "the first drain opens with empty records: {first:?}"
    );
}

/// `tests/golden/funnel-v1.md` and `funnel-v2.md` say what the bytes hold.
#[test]
fn the_checked_in_funnel_records_decode_and_restore_forever() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/funnel-v1.bin");
    let bytes = std::fs::read(path).unwrap();
    let floor = 1_772_446_500_000;
    let mut counts = journeyd::engine::funnel::Accumulator::new(6, 4);
    counts.entries[3] = 1;
    counts.conversions[1] = 1;
    counts.active_customers = 1;
    counts.revenue = 49_900_000;
    let expected = journeyd::engine::snapshot::FunnelState {
        writer: 0x6a6f_7572_6e65_7964,
        window_ms: 60_000,
        floor: Some(floor),
        stages: vec![0, 1, 2, 3, 4, 5],
        pairs: vec![(1, 2), (2, 3), (3, 4), (4, 5)],
        windows: vec![(floor, counts)],
        claims: Vec::new(),
    };
    assert_eq!(
        journeyd::engine::snapshot::decode_funnel(&bytes),
        Ok(expected.clone())
    );
    let v2 = include_bytes!("../golden/funnel-v2.bin");
    let claims = vec![(1, floor), (3, floor - MINUTE)];
    assert_eq!(
        journeyd::engine::snapshot::decode_funnel(v2),
        Ok(journeyd::engine::snapshot::FunnelState { claims, ..expected })
    );

    let mut engine = Engine::new(&event_config()).unwrap();
    engine.assign(0, EventTime(0));
    engine.restore_funnel(0, &bytes).unwrap();
    engine.resume(None);
    let mut out = Vec::new();
    let later = Ev::new(
        "later",
        "someone",
        EventTime(floor + 10 * MINUTE),
        "page_view",
    );
    engine.ingest_at(0, 2000, &later.touchpoint(), EventTime(0), &mut out);
    let window = *windows(&out)
        .first()
        .expect("the restored window is emitted");
    assert_eq!(window.window_start, floor);
    assert_eq!(
        (window.entries[3].count, window.pairs[1].conversions),
        (1, 1)
    );
    assert_eq!((window.active_customers, window.revenue), (1, 49.9));
}

/// `tests/golden/funnel-v4.md` says what the bytes hold: every column of
/// format 4, the customers in flight among them.
#[test]
fn the_checked_in_funnel_record_of_format_4_decodes_forever() {
    use journeyd::engine::funnel::Accumulator;
    use journeyd::engine::snapshot::{FunnelState, decode_funnel, encode_funnel};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/funnel-v4.bin");
    let floor = 1_772_446_500_000;
    let mut first = Accumulator::new(6, 4);
    first.entries[1] = 3;
    first.entries[2] = 1;
    first.conversions[0] = 1;
    first.dropoffs[0] = 1;
    first.active_customers = 4;
    first.channels[0] = 4;
    first.scores = vec![[0; 7]; 7];
    first.scores[2] = [0, 0, 1, 0, 0, 0, 0];
    first.convert_times = vec![[0; 14]; 4];
    first.convert_times[0][2] = 1;
    first.in_flight = vec![1, 1, 0, 0];
    let mut second = Accumulator::new(6, 4);
    second.dropoffs[1] = 1;
    second.in_flight = vec![0, -1, 0, 0];
    let expected = FunnelState {
        writer: 0x6a6f_7572_6e65_7964,
        window_ms: 60_000,
        floor: Some(floor),
        stages: vec![0, 1, 2, 3, 4, 5],
        pairs: vec![(1, 2), (2, 3), (3, 4), (4, 5)],
        windows: vec![(floor, first), (floor + MINUTE, second)],
        claims: vec![(2, floor)],
    };
    if std::env::var_os("UPDATE_GOLDEN").is_some() && !path.exists() {
        let mut bytes = Vec::new();
        encode_funnel(&expected, &mut bytes);
        std::fs::write(&path, bytes).unwrap();
    }
    let bytes = std::fs::read(&path).expect("tests/golden/funnel-v4.bin");
    assert_eq!(bytes[0], 4, "format version");
    assert_eq!(decode_funnel(&bytes), Ok(expected));
}

/// `tests/golden/funnel-v5.md` says what the bytes hold: the window of
/// `funnel-v2.bin` with a cart moment row (2 started, 1 completed in
/// 1 to 5 minutes, 1 abandoned).
fn golden_funnel_v5() -> journeyd::engine::snapshot::FunnelState {
    let floor = 1_772_446_500_000;
    let mut counts = journeyd::engine::funnel::Accumulator::new(6, 4);
    counts.entries[3] = 1;
    counts.conversions[1] = 1;
    counts.active_customers = 1;
    counts.revenue = 49_900_000;
    let mut cart = [0; journeyd::engine::funnel::MOMENT_COLUMNS];
    cart[..3].copy_from_slice(&[2, 1, 1]);
    cart[3 + 1] = 1;
    counts.moments = vec![cart];
    journeyd::engine::snapshot::FunnelState {
        writer: 0x6a6f_7572_6e65_7964,
        window_ms: 60_000,
        floor: Some(floor),
        stages: vec![0, 1, 2, 3, 4, 5],
        pairs: vec![(1, 2), (2, 3), (3, 4), (4, 5)],
        windows: vec![(floor, counts)],
        claims: vec![(1, floor), (3, floor - MINUTE)],
    }
}

#[test]
fn the_checked_in_version_5_funnel_record_restores_its_moment_counts() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/funnel-v5.bin");
    let mut encoded = Vec::new();
    journeyd::engine::snapshot::encode_funnel(&golden_funnel_v5(), &mut encoded);
    if std::env::var_os("UPDATE_GOLDEN").is_some() && !path.exists() {
        std::fs::write(&path, &encoded).unwrap();
    }
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        journeyd::engine::snapshot::decode_funnel(&bytes),
        Ok(golden_funnel_v5())
    );
    assert_eq!(encoded, bytes, "version 5 is the current format");
    let floor = 1_772_446_500_000;
    let mut engine = Engine::new(&event_config()).unwrap();
    engine.assign(0, EventTime(0));
    engine.restore_funnel(0, &bytes).unwrap();
    engine.resume(None);
    let mut out = Vec::new();
    let later = Ev::new(
        "later",
        "someone",
        EventTime(floor + 10 * MINUTE),
        "page_view",
    );
    engine.ingest_at(0, 2000, &later.touchpoint(), EventTime(0), &mut out);
    let window = *windows(&out)
        .first()
        .expect("the restored window is emitted");
    let cart = &window.moments[0];
    assert_eq!(
        (
            cart.moment.as_str(),
            cart.started,
            cart.completed,
            cart.abandoned
        ),
        ("cart", 2, 1, 1)
    );
    assert_eq!(cart.abandonment_rate, Some(0.5));
}
