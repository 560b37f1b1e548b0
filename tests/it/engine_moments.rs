//! Journey moments: a cart opened by `add_to_cart` completes with a
//! `purchase` before its deadline (one hour by default) and is abandoned
//! at it; the figures are worked out by hand.

use crate::common;

use common::*;
use journeyd::model::{MomentEnded, Output};

const CART: i64 = HOUR;
const CHECKOUT: i64 = 30 * MINUTE;

/// The moment outputs of `customer`, as `(type, moment, started,
/// event time, duration, sequence)`.
fn ended(s: &Story, customer: &str) -> Vec<(&'static str, String, i64, i64, i64, u64)> {
    let row = |kind, m: &MomentEnded| {
        let name = m.moment.to_string();
        (
            kind,
            name,
            m.started_at,
            m.event_time,
            m.duration_ms,
            m.sequence,
        )
    };
    s.outputs
        .iter()
        .filter_map(|o| match o {
            Output::MomentCompleted(m) if m.customer_id == customer => Some(row("completed", m)),
            Output::MomentAbandoned(m) if m.customer_id == customer => Some(row("abandoned", m)),
            _ => None,
        })
        .collect()
}

fn cart(
    kind: &'static str,
    started: i64,
    at: i64,
    sequence: u64,
) -> (&'static str, String, i64, i64, i64, u64) {
    (
        kind,
        "cart".to_owned(),
        BASE.0 + started,
        BASE.0 + at,
        at - started,
        sequence,
    )
}

#[test]
fn a_purchase_one_millisecond_before_the_deadline_completes_the_cart() {
    let mut s = Story::new();
    s.send("ann", BASE, "add_to_cart");
    s.send_value("ann", BASE.plus_ms(CART - 1), "purchase", 30.0);
    s.finish();
    assert_eq!(ended(&s, "ann"), [cart("completed", 0, CART - 1, 1)]);
    let completed = s.outputs.iter().find_map(|o| match o {
        Output::MomentCompleted(m) => Some(m),
        _ => None,
    });
    assert_eq!(completed.unwrap().trigger_event_id.as_deref(), Some("e2"));
}

#[test]
fn a_purchase_at_the_deadline_is_too_late_the_cart_was_abandoned() {
    let mut s = Story::new();
    s.send("bea", BASE, "add_to_cart");
    s.send_value("bea", BASE.plus_ms(CART), "purchase", 30.0);
    s.finish();
    assert_eq!(ended(&s, "bea"), [cart("abandoned", 0, CART, 1)]);
}

#[test]
fn the_deadline_fires_by_time_alone_once_the_partition_time_passes_it() {
    let mut s = Story::new();
    s.send("cas", BASE, "add_to_cart");
    // The partition's time is its latest touchpoint minus 30 s of
    // lateness; at the deadline a purchase at the deadline may still come
    // (and be too late), so the timer fires once the time is past it.
    s.pass_time(BASE.plus_ms(CART + 30 * SECOND));
    assert_eq!(ended(&s, "cas"), []);
    s.pass_time(BASE.plus_ms(CART + 30 * SECOND + 1));
    assert_eq!(ended(&s, "cas"), [cart("abandoned", 0, CART, 1)]);
    let abandoned = s.outputs.iter().find_map(|o| match o {
        Output::MomentAbandoned(m) => Some(m),
        _ => None,
    });
    assert_eq!(abandoned.unwrap().trigger_event_id, None);
    s.finish();
    assert_eq!(ended(&s, "cas").len(), 1, "abandoned once");
}

#[test]
fn a_replay_ending_before_the_deadline_leaves_the_cart_open() {
    let mut s = Story::new();
    s.send("dot", BASE, "add_to_cart");
    s.send("clock", BASE.plus_ms(CART - 1), "page_view");
    s.finish();
    assert_eq!(ended(&s, "dot"), []);
    let mut s = Story::new();
    s.send("dot", BASE, "add_to_cart");
    s.send("clock", BASE.plus_ms(CART), "page_view");
    s.finish();
    assert_eq!(ended(&s, "dot"), [cart("abandoned", 0, CART, 1)]);
}

#[test]
fn another_add_to_cart_extends_the_open_cart_and_its_duration_counts_from_the_first() {
    let mut s = Story::new();
    s.send("eve", BASE, "add_to_cart");
    s.send("eve", BASE.plus_ms(50 * MINUTE), "add_to_cart");
    // 1 h 30 min after the first add, 40 min after the second.
    s.send_value("eve", BASE.plus_ms(90 * MINUTE), "purchase", 10.0);
    // A new cart, abandoned an hour after its last add.
    s.send("eve", BASE.plus_ms(2 * HOUR), "add_to_cart");
    s.send("eve", BASE.plus_ms(2 * HOUR + 10 * MINUTE), "add_to_cart");
    s.send("clock", BASE.plus_ms(4 * HOUR), "page_view");
    s.finish();
    assert_eq!(
        ended(&s, "eve"),
        [
            cart("completed", 0, 90 * MINUTE, 1),
            cart("abandoned", 2 * HOUR, 3 * HOUR + 10 * MINUTE, 2),
        ]
    );
    let started = s.engine.stats().moments[0][0];
    assert_eq!(started, 2, "two carts, not four");
}

#[test]
fn cart_and_checkout_are_separate_moments_one_purchase_completes_both() {
    let mut s = Story::new();
    s.send("fay", BASE, "add_to_cart");
    s.send("fay", BASE.plus_ms(20 * MINUTE), "checkout_started");
    s.send_value("fay", BASE.plus_ms(45 * MINUTE), "purchase", 80.0);
    s.send("gus", BASE, "add_to_cart");
    s.send("gus", BASE.plus_ms(5 * MINUTE), "checkout_started");
    s.send("clock", BASE.plus_ms(2 * HOUR), "page_view");
    s.finish();
    assert_eq!(
        ended(&s, "fay"),
        [
            cart("completed", 0, 45 * MINUTE, 1),
            (
                "completed",
                "checkout".into(),
                BASE.0 + 20 * MINUTE,
                BASE.0 + 45 * MINUTE,
                25 * MINUTE,
                2
            ),
        ]
    );
    assert_eq!(
        ended(&s, "gus"),
        [
            (
                "abandoned",
                "checkout".into(),
                BASE.0 + 5 * MINUTE,
                BASE.0 + 5 * MINUTE + CHECKOUT,
                CHECKOUT,
                1
            ),
            cart("abandoned", 0, CART, 2),
        ]
    );
    assert_eq!(s.engine.stats().moments, [[2, 1, 1], [2, 1, 1]]);
}

#[test]
fn a_purchase_without_an_open_cart_completes_nothing() {
    let mut s = Story::new();
    s.send_value("hal", BASE, "purchase", 5.0);
    s.send("hal", BASE.plus_ms(MINUTE), "add_to_cart");
    s.send("clock", BASE.plus_ms(30 * MINUTE), "page_view");
    s.finish();
    assert_eq!(ended(&s, "hal"), []);
    assert_eq!(s.engine.stats().moments[0], [1, 0, 0], "still open");
}

// ---- across a crash: the open cart is in the changelog ----

use common::restore::*;
use common::streams::Read;
use journeyd::engine::Engine;

fn read(offset: i64, ev: Ev) -> Read {
    Read {
        partition: 0,
        offset,
        ev,
    }
}

/// Per-customer outputs as JSON, by topic, customer and sequence.
type Outputs = Vec<(OutputKey, String)>;

/// Runs `reads` through an engine that crashes after `crash_after` of
/// them (its changes drained and committed first), and through one that
/// does not; returns both runs' per-customer outputs, the crashed run's
/// before and after joined.
fn with_and_without_a_crash(reads: &[Read], crash_after: usize) -> (Outputs, Outputs) {
    let config = event_config();
    let mut before = Engine::new(&config).unwrap();
    before.track_changes(true);
    let mut out = Vec::new();
    for r in &reads[..crash_after] {
        ingest(&mut before, r, &mut out);
    }
    let mut changelog = Changelog::new();
    drain(&mut before, &mut changelog);
    let commits = checkpoint(&before, &reads[..crash_after]);
    let mut after = restart(&config, &changelog, &commits);
    let mut after_out = Vec::new();
    for r in reread(reads, &commits) {
        ingest(&mut after, r, &mut after_out);
    }
    after.finish(&mut after_out);
    let mut crashed = customer_outputs(&out);
    crashed.extend(customer_outputs(&after_out));

    let mut whole = Engine::new(&config).unwrap();
    let mut whole_out = Vec::new();
    for r in reads {
        ingest(&mut whole, r, &mut whole_out);
    }
    whole.finish(&mut whole_out);
    (crashed, customer_outputs(&whole_out))
}

fn moments_of(outputs: &[(OutputKey, String)]) -> Vec<String> {
    outputs
        .iter()
        .filter(|((kind, _, _), _)| *kind == "moment")
        .map(|(_, json)| json.clone())
        .collect()
}

#[test]
fn a_cart_opened_before_a_crash_completes_after_the_restore() {
    // Ivy's cart opens at 00:00 and is extended at 00:40; the crash
    // comes after the clock passes 00:40:30 (so both adds are applied and
    // in the changelog); the purchase at 01:39:59.999 is before the
    // deadline 01:40 and completes it, 99:59.999 after the first add.
    let reads = [
        read(0, Ev::new("i1", "ivy", BASE, "add_to_cart")),
        read(
            1,
            Ev::new("i2", "ivy", BASE.plus_ms(40 * MINUTE), "add_to_cart"),
        ),
        read(
            2,
            Ev::new("k1", "clock", BASE.plus_ms(41 * MINUTE), "page_view"),
        ),
        read(
            3,
            Ev::new("i3", "ivy", BASE.plus_ms(100 * MINUTE - 1), "purchase").value(20.0),
        ),
        // Jon's cart opens before the crash and is abandoned after it.
        read(
            4,
            Ev::new("j1", "jon", BASE.plus_ms(100 * MINUTE), "add_to_cart"),
        ),
        read(
            5,
            Ev::new("k2", "clock", BASE.plus_ms(101 * MINUTE), "page_view"),
        ),
        read(
            6,
            Ev::new("k3", "clock", BASE.plus_ms(4 * HOUR), "page_view"),
        ),
    ];
    let (crashed, whole) = with_and_without_a_crash(&reads, 3);
    assert_eq!(crashed, whole, "the crash changes no output");
    let (crashed, whole) = with_and_without_a_crash(&reads, 6);
    assert_eq!(crashed, whole, "the crash changes no output");
    let moments = moments_of(&whole);
    assert_eq!(moments.len(), 2, "{moments:?}");
    assert!(
        moments[0].contains(
            r#""type":"moment_completed","customer_id":"ivy","sequence":1,"moment":"cart""#
        ),
        "{}",
        moments[0]
    );
    assert!(
        moments[0].contains(r#""duration_ms":5999999,"#),
        "{}",
        moments[0]
    );
    assert!(
        moments[1].contains(
            r#""type":"moment_abandoned","customer_id":"jon","sequence":1,"moment":"cart""#
        ),
        "{}",
        moments[1]
    );
    let deadline = BASE.0 + 160 * MINUTE;
    assert!(
        moments[1].contains(&format!(r#""event_time":{deadline},"#)),
        "{}",
        moments[1]
    );
}

#[test]
fn the_open_cart_and_the_moment_sequence_are_in_the_snapshot() {
    let mut s = Story::new();
    s.send("kim", BASE, "add_to_cart");
    s.send_value("kim", BASE.plus_ms(MINUTE), "purchase", 1.0);
    s.send("kim", BASE.plus_ms(2 * MINUTE), "add_to_cart");
    s.send("kim", BASE.plus_ms(3 * MINUTE), "checkout_started");
    s.send("kim", BASE.plus_ms(4 * MINUTE), "add_to_cart");
    s.pass_time(BASE.plus_ms(10 * MINUTE));
    let bytes = s.engine.snapshot("kim").unwrap();
    let state = journeyd::engine::snapshot::decode(&bytes).unwrap();
    assert_eq!(state.moment_seq, 1);
    let open = |first: i64, latest: i64| journeyd::engine::snapshot::OpenMoment {
        first: BASE.plus_ms(first),
        latest: BASE.plus_ms(latest),
    };
    assert_eq!(
        state.moments,
        [
            Some(open(2 * MINUTE, 4 * MINUTE)),
            Some(open(3 * MINUTE, 3 * MINUTE))
        ]
    );
}

// ---- in the funnel windows ----

#[test]
fn windows_count_moments_started_completed_and_abandoned_in_their_own_windows() {
    // One-minute windows. Lea opens a cart at 00:00:10 and buys at
    // 00:02:10 (2 minutes: the 1 to 5 minute bucket); Max opens one at
    // 00:00:20, abandoned at its deadline 01:00:20; Ned opens one at
    // 00:01:05 and buys at 00:01:30 (25 s: the first bucket).
    let mut s = Story::new();
    s.send("lea", BASE.plus_ms(10 * SECOND), "add_to_cart");
    s.send("max", BASE.plus_ms(20 * SECOND), "add_to_cart");
    s.send("ned", BASE.plus_ms(65 * SECOND), "add_to_cart");
    s.send_value("ned", BASE.plus_ms(90 * SECOND), "purchase", 1.0);
    s.send_value("lea", BASE.plus_ms(130 * SECOND), "purchase", 1.0);
    s.send("clock", BASE.plus_ms(2 * HOUR), "page_view");
    s.finish();
    let row = |t: i64| {
        let w = s.window_at(BASE.plus_ms(t)).expect("a window");
        let cart = w
            .moments
            .iter()
            .find(|m| m.moment == "cart")
            .expect("a cart row");
        let first_buckets: Vec<u64> = cart.buckets[..3].to_vec();
        (
            cart.started,
            cart.completed,
            cart.abandoned,
            cart.abandonment_rate,
            first_buckets,
        )
    };
    assert_eq!(row(0), (2, 0, 0, None, vec![0, 0, 0]));
    assert_eq!(row(MINUTE), (1, 1, 0, Some(0.0), vec![1, 0, 0]));
    assert_eq!(row(2 * MINUTE), (0, 1, 0, Some(0.0), vec![0, 1, 0]));
    assert_eq!(row(HOUR), (0, 0, 1, Some(1.0), vec![0, 0, 0]));
    let p50 = s.window_at(BASE.plus_ms(2 * MINUTE)).unwrap().moments[0].p50_ms;
    assert_eq!(
        p50,
        Some(180_000),
        "half way through the 1 to 5 minute bucket"
    );
    let checkout_rows = s
        .windows()
        .flat_map(|w| &w.moments)
        .filter(|m| m.moment == "checkout");
    assert_eq!(checkout_rows.count(), 0, "no checkout: no rows");
}
