//! Generated customer journeys for the service tests: the workload, how it
//! is produced to the input topic, and the reference the service's stage
//! changes are compared with (one uninterrupted run of the engine).

use std::collections::BTreeMap;
use std::time::Duration;

use journeyd::codec::output::OutputEncoder;
use journeyd::engine::Engine;
use journeyd::model::{EventTime, Output};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rdkafka::producer::{BaseRecord, Producer};
use serde_json::Value;

use super::service::{INPUT, producer, touchpoint};
use super::{BASE, DAY, Ev, HOUR, event_config};

/// Actions of the generated journeys, with their weights.
const ACTIONS: [(&str, u32); 10] = [
    ("page_view", 30),
    ("ad_click", 8),
    ("product_view", 25),
    ("pricing_view", 6),
    ("add_to_cart", 6),
    ("purchase", 8),
    ("review_posted", 3),
    ("referral_sent", 2),
    ("support_ticket", 3),
    ("subscription_renewed", 2),
];

/// `customers` journeys of 6 to 14 touchpoints each over about two months,
/// in event-time order.
pub fn workload(customers: usize, seed: u64) -> Vec<Ev> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let total: u32 = ACTIONS.iter().map(|(_, w)| w).sum();
    let mut events = Vec::new();
    for c in 0..customers {
        let customer = format!("cust-{c:03}");
        let mut at = BASE.plus_ms(rng.random_range(0..20 * DAY));
        for n in 0..rng.random_range(6..=14) {
            let mut pick = rng.random_range(0..total);
            let (action, _) = ACTIONS
                .iter()
                .find(|(_, w)| {
                    let hit = pick < *w;
                    pick = pick.saturating_sub(*w);
                    hit
                })
                .expect("a weighted pick");
            let mut ev = Ev::new(format!("{customer}-{n}"), &customer, at, action);
            if *action == "review_posted" {
                ev = ev.value(5.0);
            }
            events.push(ev);
            at = at.plus_ms(rng.random_range(HOUR..4 * DAY));
        }
    }
    events.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    events
}

pub fn json_of(ev: &Ev) -> String {
    let mut value: Value =
        serde_json::from_str(&touchpoint(&ev.id, &ev.customer, ev.at.0, &ev.action)).unwrap();
    if let Some(v) = ev.value {
        value["value"] = v.into();
    }
    value.to_string()
}

/// Produces `events` keyed by customer, in order, and waits for delivery.
pub fn produce(brokers: &str, events: &[Ev]) {
    let producer = producer(brokers);
    for ev in events {
        let value = json_of(ev);
        producer
            .send(BaseRecord::to(INPUT).key(&ev.customer).payload(&value))
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// One touchpoint at `at` on each of `partitions` partitions: moves every
/// partition's watermark past the input.
pub fn sentinels(brokers: &str, partitions: i32, at: EventTime) {
    let producer = producer(brokers);
    for p in 0..partitions {
        let id = format!("zz-sentinel-{p}");
        let value = touchpoint(&id, &id, at.0, "page_view");
        producer
            .send(BaseRecord::to(INPUT).partition(p).key(&id).payload(&value))
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// The stage changes of one uninterrupted run of the engine over `events`,
/// as the service publishes them, by `(customer, sequence)`.
pub fn reference(events: &[Ev], cutoff: EventTime) -> BTreeMap<(String, u64), Value> {
    let mut engine = Engine::new(&event_config()).unwrap();
    let mut outputs = Vec::new();
    for ev in events {
        engine.ingest(0, &ev.touchpoint(), EventTime(0), &mut outputs);
    }
    engine.finish(&mut outputs);
    let encoder = OutputEncoder::json();
    let mut bytes = Vec::new();
    let values = outputs
        .iter()
        .filter(|o| matches!(o, Output::StageChanged(_)))
        .map(|o| {
            encoder.encode(o, &mut bytes);
            serde_json::from_slice(&bytes).unwrap()
        });
    by_sequence(values, cutoff)
}

/// Stage changes up to `cutoff` by `(customer, sequence)`, without
/// `detected_at` (wall-clock time). A change delivered twice must be
/// identical both times.
pub fn by_sequence(
    changes: impl IntoIterator<Item = Value>,
    cutoff: EventTime,
) -> BTreeMap<(String, u64), Value> {
    let mut out = BTreeMap::new();
    for mut change in changes {
        let customer = change["customer_id"].as_str().unwrap().to_owned();
        if customer.starts_with("zz-") || change["event_time"].as_i64().unwrap() > cutoff.0 {
            continue;
        }
        change.as_object_mut().unwrap().remove("detected_at");
        let key = (customer, change["sequence"].as_u64().unwrap());
        let first = out.entry(key).or_insert_with(|| change.clone());
        assert_eq!(*first, change, "a redelivered stage change differs");
    }
    out
}
