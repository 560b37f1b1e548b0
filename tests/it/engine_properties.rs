//! Properties of the engine over random streams: redelivery, arrival order,
//! sequence density and bounded per-customer state.

use crate::common;

use std::collections::BTreeMap;

use common::streams::{ACTIONS, gap, stream};
use common::*;
use journeyd::engine::Engine;
use journeyd::model::{EventTime, Output};
use proptest::prelude::*;

fn run(events: &[Ev]) -> Vec<Output> {
    run_with(event_config(), events)
}

fn run_with(config: journeyd::config::Config, events: &[Ev]) -> Vec<Output> {
    let mut engine = Engine::new(&config).unwrap();
    let mut out = Vec::new();
    for ev in events {
        engine.ingest(0, &ev.touchpoint(), EventTime(0), &mut out);
    }
    engine.finish(&mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn delivering_every_event_twice_changes_no_output(events in stream(80), lag in 0..4usize) {
        let mut twice = Vec::with_capacity(events.len() * 2);
        for (i, ev) in events.iter().enumerate() {
            twice.push(ev.clone());
            if i >= lag {
                twice.push(events[i - lag].clone());
            }
        }
        twice.extend(events[events.len().saturating_sub(lag)..].iter().cloned());
        prop_assert_eq!(run(&twice), run(&events));
    }

    /// However many touchpoints come between an event and its redelivery,
    /// within the horizon (here longer than any stream) it changes nothing.
    #[test]
    fn a_redelivery_within_the_horizon_changes_no_output_however_late(
        events in stream(120),
        lag in 0..120usize,
        remember in 1..6usize,
    ) {
        let mut config = event_config();
        let century = std::time::Duration::from_secs(100 * 365 * 86_400);
        // Nobody is evicted (which forgets everything), nothing is beyond the horizon.
        (config.time.state_ttl, config.time.dedupe_horizon) = (century, century);
        config.limits.dedupe_per_customer = remember;
        let mut twice = Vec::with_capacity(events.len() * 2);
        for (i, ev) in events.iter().enumerate() {
            twice.push(ev.clone());
            if i >= lag {
                twice.push(events[i - lag].clone());
            }
        }
        twice.extend(events[events.len().saturating_sub(lag)..].iter().cloned());
        prop_assert_eq!(run_with(config.clone(), &twice), run_with(config, &events));
    }

    #[test]
    fn any_arrival_order_within_the_allowed_lateness_gives_the_same_outputs(
        events in stream(80),
        jitter in prop::collection::vec(0..30 * SECOND, 80),
    ) {
        // Each event arrives `jitter` after its event time: a later event
        // can overtake it by less than the allowed lateness (30 s).
        let mut shuffled: Vec<(i64, usize)> =
            events.iter().enumerate().map(|(i, e)| (e.at.0 + jitter[i], i)).collect();
        shuffled.sort();
        let arrived: Vec<Ev> = shuffled.iter().map(|&(_, i)| events[i].clone()).collect();
        prop_assert_eq!(run(&arrived), run(&events));
    }

    /// Dense within a journey; eviction after `state_ttl` ends a journey,
    /// so the TTL is out of reach here.
    #[test]
    fn each_customer_sequence_is_dense(events in stream(120)) {
        let mut config = event_config();
        config.time.state_ttl = std::time::Duration::from_secs(100_000 * 86_400);
        let mut stage: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        let mut churn: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        let mut moments: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        let mut windows = Vec::new();
        for output in run_with(config, &events) {
            match output {
                Output::StageChanged(s) => stage.entry(s.customer_id.to_string()).or_default().push(s.sequence),
                Output::ChurnRiskChanged(c) => churn.entry(c.customer_id.to_string()).or_default().push(c.sequence),
                Output::FunnelWindow(w) => windows.push(w.sequence),
                Output::MomentCompleted(m) | Output::MomentAbandoned(m) => moments.entry(m.customer_id.to_string()).or_default().push(m.sequence),
                Output::CustomerEvicted(_) | Output::CustomerErased(_) => {}
            }
        }
        let per_customer = stage.values().chain(churn.values()).chain(moments.values());
        for seqs in per_customer.chain(std::iter::once(&windows)) {
            let dense: Vec<u64> = (1..=seqs.len() as u64).collect();
            prop_assert_eq!(seqs, &dense);
        }
    }

    #[test]
    fn state_per_customer_stays_bounded(actions in prop::collection::vec((0..ACTIONS.len(), gap()), 200..2000)) {
        let mut engine = Engine::new(&event_config()).unwrap();
        let mut out = Vec::new();
        let mut at = BASE;
        let mut sizes = Vec::new();
        for (i, (action, gap)) in actions.iter().enumerate() {
            at = at.plus_ms(*gap);
            let (name, value) = ACTIONS[*action];
            let mut ev = Ev::new(format!("event-{i}"), "heavy-user", at, name);
            ev.value = value;
            engine.ingest(0, &ev.touchpoint(), EventTime(0), &mut out);
            out.clear();
            if let Some(c) = engine.customer("heavy-user") {
                sizes.push(c.heap_bytes() + size_of_val(c));
            }
        }
        prop_assert!(sizes.windows(2).all(|w| w[0] == w[1]), "per-customer bytes changed");
        prop_assert!(engine.tracked_customers() <= 1);
        prop_assert!(engine.buffered() <= actions.len());
    }
}

#[test]
fn buffered_events_are_bounded_by_the_limit() {
    let mut config = event_config();
    config.limits.max_buffered_events = 10;
    let mut engine = Engine::new(&config).unwrap();
    let mut out = Vec::new();
    // Same event time for all: nothing passes the watermark until finish.
    for i in 0..100 {
        let ev = Ev::new(format!("e{i}"), &format!("c{i}"), BASE, "page_view");
        engine.ingest(0, &ev.touchpoint(), EventTime(0), &mut out);
        assert!(engine.buffered() <= 10);
    }
    assert_eq!(engine.stats().forced_early, 90);
    engine.finish(&mut out);
    assert_eq!(engine.stats().events, 100);
}
