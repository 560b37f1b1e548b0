//! The engine's bounds under a flood of new customer ids: past
//! `limits.max_customers` a new id is refused (the service sends it to the
//! dead-letter topic as `capacity`) while customers already tracked keep
//! flowing; evictions make room again and are announced with
//! `CustomerEvicted`.

use crate::common;

use common::{BASE, Ev, Story, day, event_config};
use journeyd::engine::Ingested;
use journeyd::model::{CustomerEvicted, Output};

fn story(max_customers: usize) -> Story {
    let mut config = event_config();
    config.limits.max_customers = max_customers;
    Story::with(config)
}

#[test]
fn new_ids_past_max_customers_are_refused_and_tracked_ones_keep_flowing() {
    let mut s = story(1000);
    let mut refused = 0;
    for i in 0..5000 {
        let ev = Ev::new(
            format!("e{i}"),
            &format!("c{i}"),
            BASE.plus_ms(i),
            "page_view",
        );
        if s.deliver(&ev) == Ingested::Refused {
            refused += 1;
        }
    }
    assert_eq!(refused, 4000, "exactly the excess is refused");
    assert_eq!(s.engine.tracked_customers(), 1000);
    assert!(s.engine.customer("c999").is_some());
    assert!(
        s.engine.customer("c1000").is_none(),
        "nothing kept of a refused id"
    );

    // A tracked customer's touchpoints are still taken.
    let purchase = Ev::new("p1", "c7", BASE.plus_ms(6000), "purchase");
    assert_eq!(s.deliver(&purchase), Ingested::Accepted);
    s.finish();
    let to: Vec<_> = s
        .stage_changes("c7")
        .map(|c| c.to_stage.to_string())
        .collect();
    assert_eq!(to, ["awareness", "purchase"]);
    assert_eq!(s.stage_changes("c4999").count(), 0);
    assert_eq!(s.engine.tracked_customers(), 1000);
}

#[test]
fn an_eviction_makes_room_for_a_new_id() {
    let mut config = event_config();
    config.limits.max_customers = 2;
    config.time.state_ttl = std::time::Duration::from_secs(200 * 86_400);
    let mut s = Story::with(config);
    s.send("ann", day(0.0), "page_view");
    s.pass_time(day(1.0)); // "clock" is the second customer
    assert_eq!(s.send("bob", day(2.0), "page_view"), Ingested::Refused);
    s.pass_time(day(201.0));
    assert!(s.engine.customer("ann").is_none(), "evicted");
    assert_eq!(s.send("bob", day(202.0), "page_view"), Ingested::Accepted);
}

fn evictions(outputs: &[Output]) -> Vec<&CustomerEvicted> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::CustomerEvicted(e) => Some(e),
            _ => None,
        })
        .collect()
}

#[test]
fn an_eviction_is_announced_once_with_the_last_sequences() {
    let mut config = event_config();
    config.time.state_ttl = std::time::Duration::from_secs(200 * 86_400);
    let mut s = Story::with(config);
    s.send_value("max", day(0.0), "purchase", 10.0);
    s.send("max", day(1.0), "pricing_view");
    s.pass_time(day(150.0));
    assert!(evictions(&s.outputs).is_empty(), "not before state_ttl");
    let stage_seq = s.stage_changes("max").last().unwrap().sequence;
    s.pass_time(day(202.0));
    s.pass_time(day(300.0));

    let churn_seq = s.churn_changes("max").last().unwrap().sequence;
    let max: Vec<_> = evictions(&s.outputs)
        .into_iter()
        .filter(|e| e.customer_id == "max")
        .collect();
    assert_eq!(max.len(), 1, "announced exactly once: {max:?}");
    let e = max[0];
    assert_eq!(e.last_seen, day(1.0).0);
    assert_eq!(
        e.evicted_at,
        day(201.0).0,
        "last_seen + state_ttl, event time"
    );
    assert_eq!(
        (e.last_stage_sequence, e.last_churn_sequence),
        (stage_seq, churn_seq)
    );
    let at = s
        .outputs
        .iter()
        .position(|o| matches!(o, Output::CustomerEvicted(_)))
        .unwrap();
    assert!(
        s.outputs[at..].iter().all(|o| match o {
            Output::StageChanged(c) => c.customer_id != "max",
            Output::ChurnRiskChanged(c) => c.customer_id != "max",
            _ => true,
        }),
        "after the final lapse and churn events"
    );

    // A new journey after it starts its sequences again, and its own
    // eviction is announced too.
    s.send("max", day(301.0), "page_view");
    s.pass_time(day(600.0));
    let restart = s
        .stage_changes("max")
        .find(|c| c.event_time == day(301.0).0)
        .unwrap();
    assert_eq!(restart.sequence, 1);
    let max = evictions(&s.outputs)
        .into_iter()
        .filter(|e| e.customer_id == "max")
        .count();
    assert_eq!(max, 2);
}

#[test]
fn an_eviction_with_touchpoints_buffered_is_announced_too() {
    let mut config = event_config();
    config.time.state_ttl = std::time::Duration::from_secs(200 * 86_400);
    config.time.allowed_lateness = std::time::Duration::from_secs(100 * 86_400);
    let mut s = Story::with(config);
    s.send("ann", day(0.0), "page_view");
    s.pass_time(day(150.0));
    // Within the lateness: buffered while ann's eviction at day 200 fires.
    s.send("ann", day(250.0), "page_view");
    s.pass_time(day(360.0));
    let ann: Vec<_> = evictions(&s.outputs)
        .into_iter()
        .filter(|e| e.customer_id == "ann")
        .collect();
    assert_eq!(ann.len(), 1, "{ann:?}");
    assert_eq!(ann[0].evicted_at, day(200.0).0);
    assert_eq!(ann[0].last_stage_sequence, 2, "entered, then lapsed");
}

#[test]
fn the_reorder_buffer_is_bounded_in_bytes_and_processes_the_oldest_early() {
    let mut config = event_config();
    config.limits.max_buffered_bytes = 8192;
    let mut s = Story::with(config);
    let long = "x".repeat(200);
    for i in 0..100 {
        // All within the allowed lateness: nothing passes them but the bound.
        let ev = Ev::new(
            format!("{long}-{i}"),
            &format!("c{i}"),
            BASE.plus_ms(100 - i),
            "ad_click",
        );
        assert_eq!(s.deliver(&ev), Ingested::Accepted);
        assert!(
            s.engine.buffered_bytes() <= 8192,
            "{} bytes buffered",
            s.engine.buffered_bytes()
        );
    }
    let buffered = s.engine.buffered() as u64;
    assert!(buffered > 0 && buffered < 40, "{buffered} buffered");
    assert_eq!(s.engine.stats().forced_early, 100 - buffered);
    s.finish();
    assert_eq!(s.engine.buffered_bytes(), 0);
    let entered = (0..100)
        .filter(|i| s.stage_changes(&format!("c{i}")).count() == 1)
        .count();
    assert_eq!(entered, 100, "every touchpoint is processed, early or not");
}

/// `ids` touchpoints at full speed, of random new ids but every tenth one,
/// which is from a customer tracked from the start: the engine holds `max`
/// customers, refuses exactly the other new ids, keeps taking the tracked
/// customer's touchpoints, and its state stops growing at the bound.
fn flood(ids: u64, max: usize) {
    let mut config = event_config();
    config.limits.max_customers = max;
    let mut engine = journeyd::engine::Engine::new(&config).unwrap();
    let mut outputs = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let (mut new_ids, mut refused, mut at_bound) = (0u64, 0u64, None);
    for i in 0..ids {
        let customer = if i % 10 == 0 {
            "tracked".to_owned()
        } else {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            new_ids += 1;
            format!("c{x:016x}")
        };
        let ev = Ev::new(
            format!("e{i}"),
            &customer,
            BASE.plus_ms(i as i64),
            "page_view",
        );
        let ingested = engine.ingest(0, &ev.touchpoint(), BASE, &mut outputs);
        if ingested == Ingested::Refused {
            assert_ne!(customer, "tracked", "a tracked customer is never refused");
            refused += 1;
        }
        outputs.clear();
        // Halfway, the bound is long reached and its customers' first
        // touchpoints are out of the reorder buffer.
        if i == ids / 2 {
            assert_eq!(engine.tracked_customers(), max);
            at_bound = Some(engine.state_bytes());
        }
    }
    let at_bound = at_bound.expect("measured halfway");
    assert_eq!(engine.tracked_customers(), max);
    assert_eq!(refused, new_ids - (max as u64 - 1), "exactly the excess");
    assert_eq!(engine.stats().refused, refused);
    // Timers move, customers do not: the state stays at its size at the bound.
    let now = engine.state_bytes();
    assert!(
        now <= at_bound + at_bound / 20,
        "{now} bytes, {at_bound} at the bound"
    );
    eprintln!(
        "{ids} touchpoints, max_customers {max}: {refused} refused, {now} bytes of state \
         ({} a customer), {} bytes buffered",
        now / max,
        engine.buffered_bytes()
    );
}

#[test]
fn a_flood_of_new_ids_is_refused_at_the_bound() {
    flood(300_000, 20_000);
}

/// 5 million ids against 200,000 customers: run with `--ignored` (in a
/// release build, it takes seconds; in debug, minutes).
#[test]
#[ignore]
fn five_million_new_ids_stay_within_the_bound() {
    flood(5_000_000, 200_000);
}
