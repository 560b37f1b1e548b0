//! A producer clock running fast, in `hybrid` time mode: a touchpoint
//! stamped minutes ahead of the wall clock (but within
//! `time.max_future_skew`, so not rejected) must not move its partition's
//! event time past the wall clock. Otherwise every on-time touchpoint after
//! it would be late and the funnel windows up to it would close before
//! their data.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use journeyd::config::{Config, TimeMode};
use journeyd::engine::{Engine, Ingested};
use journeyd::model::{EventTime, Output};

/// 10:00 on the first day, and `s` seconds after it.
fn at(s: i64) -> EventTime {
    BASE.plus_ms(10 * HOUR + s * SECOND)
}

/// Steady traffic on two partitions, stamped by the wall clock a second
/// before it is read, each touchpoint a new customer entering awareness;
/// at 10:00:10 one touchpoint on partition 0 from a device whose clock is
/// 4 minutes fast. Funnel windows of one minute (the default).
#[test]
fn a_touchpoint_ahead_of_the_wall_clock_does_not_move_its_partition_past_now() {
    let config = Config::default();
    assert_eq!(config.time.mode, TimeMode::Hybrid, "what `run` uses");
    let window = config.time.funnel_window.as_millis() as i64;
    let start_of = |t: EventTime| t.millis() - t.millis().rem_euclid(window);
    let mut engine = Engine::new(&config).unwrap();
    engine.assign(0, at(0));
    engine.assign(1, at(0));
    let mut out: Vec<Output> = Vec::new();
    let mut sent: BTreeMap<i64, u64> = BTreeMap::new();
    let mut emitted: BTreeSet<i64> = BTreeSet::new();
    let mut offset = 0;
    let mut send = |engine: &mut Engine, out: &mut Vec<Output>, p, customer: &str, t, wall| {
        offset += 1;
        let ev = Ev::new(format!("e{offset}"), customer, t, "ad_click");
        let window = start_of(t);
        assert!(
            !emitted.contains(&window),
            "{ev:?}: its window was emitted before it came"
        );
        *sent.entry(window).or_default() += 1;
        let ingested = engine.ingest_at(p, offset, &ev.touchpoint(), wall, out);
        assert_eq!(ingested, Ingested::Accepted, "{ev:?} read at {wall:?}");
        emitted.extend(out.iter().filter_map(|o| match o {
            Output::FunnelWindow(w) => Some(w.window_start),
            _ => None,
        }));
    };
    for s in 1..=400 {
        let wall = at(s);
        for p in 0..2 {
            send(
                &mut engine,
                &mut out,
                p,
                &format!("c{s}-{p}"),
                wall.plus_ms(-SECOND),
                wall,
            );
        }
        if s == 10 {
            send(
                &mut engine,
                &mut out,
                0,
                "fast",
                wall.plus_ms(4 * MINUTE),
                wall,
            );
            assert!(
                engine.watermark() <= wall.plus_ms(-30 * SECOND),
                "the watermark went past the wall clock minus the allowed lateness"
            );
        }
        engine.tick(wall.plus_ms(500), &mut out);
    }

    assert_eq!(engine.stats().late, 0, "no touchpoint was late");
    assert_eq!(engine.stats().ahead, 1, "the fast one is counted");
    let windows: BTreeMap<i64, (u64, u64)> = out
        .iter()
        .filter_map(|o| match o {
            Output::FunnelWindow(w) => Some((w.window_start, (w.entries[1].count, w.late_events))),
            _ => None,
        })
        .collect();
    // Traffic up to 10:06:39, watermark 10:06:09: windows 10:00 to 10:05.
    assert_eq!(
        windows.keys().copied().collect::<Vec<_>>(),
        (0..6).map(|m| at(m * 60).millis()).collect::<Vec<_>>()
    );
    for (start, &(entries, late)) in &windows {
        assert_eq!(
            (entries, late),
            (sent[start], 0),
            "window {start}: every entry sent for it, nothing late"
        );
    }
    assert_eq!(
        windows[&at(4 * 60).millis()].0,
        121,
        "the fast touchpoint (10:04:10) counts in its own window"
    );
    assert!(
        engine.customer("fast").is_some_and(|c| c.touchpoints == 1),
        "and was applied to its customer"
    );
}
