//! The engine's side of partition ownership: buffered offsets hold commits
//! back, and a revoked partition takes its customers with it.

use crate::common;

use common::*;
use journeyd::engine::Engine;
use journeyd::model::EventTime;

fn ingest(engine: &mut Engine, partition: u32, offset: i64, ev: &Ev) {
    let mut out = Vec::new();
    engine.ingest_at(partition, offset, &ev.touchpoint(), EventTime(0), &mut out);
}

#[test]
fn buffered_touchpoints_hold_their_offset_back_until_their_partition_passes_them() {
    let mut engine = Engine::new(&event_config()).unwrap();
    let t = day(1.0);
    ingest(&mut engine, 0, 100, &Ev::new("a1", "ann", t, "ad_click"));
    ingest(
        &mut engine,
        0,
        101,
        &Ev::new("a2", "ann", t.plus_ms(10 * SECOND), "page_view"),
    );
    ingest(
        &mut engine,
        1,
        7,
        &Ev::new("b1", "bea", t.plus_ms(5 * SECOND), "ad_click"),
    );
    assert_eq!(engine.buffered_low(0), Some(100));
    assert_eq!(engine.buffered_low(1), Some(7));

    // Partition 0 moves 60 s on: its own time passes 100 and 101, although
    // partition 1 holds the instance watermark back.
    let instance = engine.watermark();
    ingest(
        &mut engine,
        0,
        102,
        &Ev::new("a3", "ann", t.plus_ms(60 * SECOND), "page_view"),
    );
    assert_eq!(
        engine.buffered_low(0),
        Some(102),
        "100 and 101 are processed in partition 0's time"
    );
    assert_eq!(engine.buffered_low(1), Some(7), "partition 1 did not move");
    assert_eq!(engine.watermark(), instance, "funnel windows wait for both");
    ingest(
        &mut engine,
        1,
        8,
        &Ev::new("b2", "bea", t.plus_ms(60 * SECOND), "page_view"),
    );
    assert_eq!(engine.buffered_low(0), Some(102));
    assert_eq!(engine.buffered_low(1), Some(8));
    assert_eq!(engine.stats().events, 3);
}

#[test]
fn revoking_a_partition_drops_its_customers_timers_and_buffered_touchpoints() {
    let mut engine = Engine::new(&event_config()).unwrap();
    let t = day(1.0);
    ingest(&mut engine, 0, 1, &Ev::new("a1", "ann", t, "pricing_view"));
    ingest(&mut engine, 1, 1, &Ev::new("b1", "bea", t, "purchase"));
    ingest(
        &mut engine,
        0,
        2,
        &Ev::new("a2", "ann", t.plus_ms(HOUR), "page_view"),
    );
    ingest(
        &mut engine,
        1,
        2,
        &Ev::new("b2", "bea", t.plus_ms(HOUR), "page_view"),
    );
    assert_eq!(engine.tracked_customers(), 2);
    assert_eq!(engine.buffered_low(1), Some(2));

    assert_eq!(engine.revoke(1), 1);
    assert!(engine.customer("bea").is_none());
    assert!(engine.customer("ann").is_some());
    assert_eq!(engine.buffered_low(1), None);
    assert_eq!(engine.stats().customers_per_stage.iter().sum::<u64>(), 1);
    assert_eq!(engine.stats().customers_per_band.iter().sum::<u64>(), 0);

    // Ann's journey goes on; Bea's timers are gone with her.
    let mut out = Vec::new();
    let later = Ev::new("a3", "ann", day(200.0), "page_view");
    engine.ingest_at(0, 3, &later.touchpoint(), EventTime(0), &mut out);
    engine.finish(&mut out);
    assert!(out.iter().all(|o| !format!("{o:?}").contains("\"bea\"")));
}
