//! De-duplication stories: a redelivered `event_id` changes nothing within
//! `time.dedupe_horizon` of the original, however many touchpoints of the
//! customer came in between; beyond it, a touchpoint that cannot be told
//! from a redelivery is counted.

use crate::common;

use common::*;
use journeyd::engine::Ingested;
use journeyd::model::Direction;

fn purchase(customer: &str) -> Ev {
    Ev::new("order-1", customer, day(0.0), "purchase").value(40.0)
}

#[test]
fn a_purchase_redelivered_after_four_page_views_is_not_applied_again() {
    let mut s = Story::new();
    let order = purchase("pia");
    s.deliver(&order);
    for i in 1..=4 {
        s.send("pia", day(0.0).plus_ms(i * MINUTE), "page_view");
    }
    let again = s.deliver(&order);
    s.finish();

    assert_eq!(again, Ingested::Duplicate);
    assert_eq!(s.moves("pia"), [mv(None, "purchase", Direction::Skip)]);
    assert_eq!(s.engine.customer("pia").unwrap().touchpoints, 5);
    assert_eq!(s.engine.customer("pia").unwrap().purchases, 1);
    assert_eq!(s.engine.stats().duplicates, 1);
}

#[test]
fn a_redelivery_after_a_hundred_touchpoints_within_the_horizon_is_not_applied() {
    let mut s = Story::new();
    let order = purchase("quinn");
    s.deliver(&order);
    // 100 page views over 16.5 hours: far more than the customer remembers.
    for i in 1..=100 {
        s.send("quinn", day(0.0).plus_ms(i * 10 * MINUTE), "page_view");
    }
    let again = s.deliver(&order);
    s.finish();

    assert_eq!(s.moves("quinn"), [mv(None, "purchase", Direction::Skip)]);
    let quinn = s.engine.customer("quinn").unwrap();
    assert_eq!((quinn.touchpoints, quinn.purchases), (101, 1));
    let stats = s.engine.stats();
    assert_eq!(again, Ingested::Unverified);
    assert_eq!(
        (stats.unverified_memory, stats.unverified_horizon),
        (1, 0),
        "refused as one that cannot be told from a redelivery"
    );
}

#[test]
fn a_redelivery_beyond_the_horizon_is_counted() {
    let mut s = Story::new();
    let order = purchase("ravi");
    s.deliver(&order);
    // Ten page views a day or more later push the purchase out.
    for i in 0..10 {
        s.send("ravi", day(1.0).plus_ms(i * HOUR), "page_view");
    }
    let again = s.deliver(&order);
    s.finish();

    let stats = s.engine.stats();
    assert_eq!(
        (stats.unverified_horizon, stats.unverified_memory),
        (1, 0),
        "older than the newest touchpoint minus the horizon"
    );
    assert_eq!(
        again,
        Ingested::Late,
        "applied, as the late touchpoint it may be"
    );
    assert_eq!(s.engine.customer("ravi").unwrap().purchases, 2);
}

#[test]
fn a_longer_horizon_covers_an_older_redelivery() {
    let mut config = event_config();
    config.time.dedupe_horizon = std::time::Duration::from_secs(3 * 86_400);
    let mut s = Story::with(config);
    let order = purchase("sam");
    s.deliver(&order);
    for i in 0..10 {
        s.send("sam", day(1.0).plus_ms(i * HOUR), "page_view");
    }
    assert_eq!(s.deliver(&order), Ingested::Unverified);
    s.finish();
    assert_eq!(s.engine.customer("sam").unwrap().purchases, 1);
    assert_eq!(s.engine.stats().unverified_memory, 1);
}

#[test]
fn late_touchpoints_newer_than_the_remembered_ones_are_applied() {
    let mut s = Story::new();
    for i in 0..20 {
        s.send("tara", day(0.0).plus_ms(i * MINUTE), "page_view");
    }
    // Behind the watermark, but newer than all but a few remembered ids.
    let late = s.send(
        "tara",
        day(0.0).plus_ms(18 * MINUTE + SECOND),
        "pricing_view",
    );
    assert_eq!(late, Ingested::Late);
    s.finish();
    assert_eq!(s.stage_of("tara").as_deref(), Some("consideration"));
    let stats = s.engine.stats();
    assert_eq!((stats.unverified_memory, stats.unverified_horizon), (0, 0));
}

#[test]
fn a_duplicate_still_buffered_is_dropped_when_it_is_released() {
    let mut s = Story::new();
    let order = purchase("uma");
    s.deliver(&order);
    assert_eq!(
        s.deliver(&order),
        Ingested::Accepted,
        "both wait for the watermark"
    );
    s.finish();
    assert_eq!(s.moves("uma"), [mv(None, "purchase", Direction::Skip)]);
    assert_eq!(s.engine.customer("uma").unwrap().touchpoints, 1);
    assert_eq!(s.engine.stats().duplicates, 1);
}
