//! Random touchpoint streams for the engine's property tests.

use proptest::prelude::*;

use super::{BASE, DAY, Ev, HOUR, MINUTE, SECOND};

pub const ACTIONS: &[(&str, Option<f64>)] = &[
    ("ad_click", None),
    ("page_view", None),
    ("product_view", None),
    ("product_view", None),
    ("pricing_view", None),
    ("add_to_cart", None),
    ("purchase", Some(40.0)),
    ("purchase", Some(15.0)),
    ("subscription_renewed", None),
    ("referral_sent", None),
    ("review_posted", Some(5.0)),
    ("nps_response", Some(3.0)),
    ("nps_response", Some(10.0)),
    ("support_ticket", None),
    ("payment_failed", None),
    ("unsubscribe", None),
    ("subscription_cancelled", None),
    ("account_closed", None),
];

/// Gaps between consecutive events: none (equal timestamps, as from a
/// source with second resolution), seconds, hours or months, so that streams
/// exercise ties, reordering, windows, deadlines and lapses.
pub fn gap() -> impl Strategy<Value = i64> {
    prop_oneof![
        2 => Just(0),
        4 => 0..60 * SECOND,
        3 => 0..2 * DAY,
        1 => 0..120 * DAY,
    ]
}

/// A time-ordered stream over a handful of customers.
pub fn stream(max_len: usize) -> impl Strategy<Value = Vec<Ev>> {
    prop::collection::vec((0..6usize, 0..ACTIONS.len(), gap()), 1..max_len).prop_map(|steps| {
        let mut at = BASE;
        steps
            .into_iter()
            .enumerate()
            .map(|(i, (customer, action, gap))| {
                at = at.plus_ms(gap);
                let (name, value) = ACTIONS[action];
                let mut ev = Ev::new(format!("e{i}"), &format!("c{customer}"), at, name);
                ev.value = value;
                ev
            })
            .collect()
    })
}

/// A touchpoint as read from the input: where it was read, and what.
#[derive(Clone, Debug)]
pub struct Read {
    pub partition: u32,
    pub offset: i64,
    pub ev: Ev,
}

/// How one touchpoint reaches the engine.
#[derive(Clone, Copy, Debug)]
pub enum Arrival {
    /// Its event time plus a delay below the allowed lateness (30 s).
    OnTime(i64),
    /// On time, and delivered again the given time later (a redelivery).
    Twice(i64, i64),
    /// Hours after its event time: older than the watermark on arrival.
    Late(i64),
    /// Ten minutes before its event time (a producer clock running fast):
    /// it waits in the reorder buffer and holds its partition's commit
    /// back while later touchpoints are applied.
    Early,
}

pub fn arrival() -> impl Strategy<Value = Arrival> {
    prop_oneof![
        12 => (0..30 * SECOND).prop_map(Arrival::OnTime),
        2 => (0..30 * SECOND, 0..DAY).prop_map(|(a, b)| Arrival::Twice(a, b)),
        1 => (HOUR..2 * DAY).prop_map(Arrival::Late),
        1 => Just(Arrival::Early),
    ]
}

/// The partition of a test customer `c<n>`: `n % 2`.
pub fn partition_of(customer: &str) -> u32 {
    let n: u32 = customer.trim_start_matches('c').parse().unwrap_or(0);
    n % 2
}

/// `events` as read from two partitions, in arrival order; each
/// partition's offsets count from 0.
pub fn reads(events: &[Ev], arrivals: &[Arrival]) -> Vec<Read> {
    let mut keyed: Vec<(i64, usize, &Ev)> = Vec::new();
    for (i, ev) in events.iter().enumerate() {
        let at = ev.at.millis();
        match arrivals.get(i).copied().unwrap_or(Arrival::OnTime(0)) {
            Arrival::OnTime(d) => keyed.push((at + d, i, ev)),
            Arrival::Twice(d, again) => {
                keyed.push((at + d, i, ev));
                keyed.push((at + d + again, i, ev));
            }
            Arrival::Late(d) => keyed.push((at + d, i, ev)),
            Arrival::Early => keyed.push((at - 10 * MINUTE, i, ev)),
        }
    }
    keyed.sort_by_key(|&(arrives, i, _)| (arrives, i));
    let mut next = [0i64; 2];
    keyed
        .into_iter()
        .map(|(_, _, ev)| {
            let partition = partition_of(&ev.customer);
            let offset = next[partition as usize];
            next[partition as usize] += 1;
            Read {
                partition,
                offset,
                ev: ev.clone(),
            }
        })
        .collect()
}
