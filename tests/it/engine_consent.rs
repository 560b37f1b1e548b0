//! Consent (`[consent]`, docs/personal-data.md#consent): touchpoints decoded
//! as in production (the purpose attribute kept by the decoder), each mode
//! told as a story; a withdrawal with touchpoints still in the reorder
//! buffer; late touchpoints and late consent; consent across a changelog
//! round trip; and the customer view.

use crate::common;

use common::restore::{drain_records, restore_log};
use common::*;
use journeyd::codec::{Encoding, Validator};
use journeyd::config::{Config, ConsentMode};
use journeyd::engine::{Engine, Ingested};
use journeyd::model::{CustomerErased, ErasureSource, EventTime, Output};

/// 2030-01-01: later than every event time here.
const WALL: EventTime = EventTime(1_893_456_000_000);
const SECOND: i64 = 1_000;

fn config(mode: ConsentMode) -> Config {
    let mut config = event_config();
    config.consent.mode = mode;
    config
}

/// An engine fed JSON touchpoints through the configured decoder.
struct Consenting {
    engine: Engine,
    validator: Validator,
    outputs: Vec<Output>,
    next: u64,
}

impl Consenting {
    fn new(mode: ConsentMode) -> Consenting {
        Consenting::with(&config(mode))
    }

    fn with(config: &Config) -> Consenting {
        Consenting {
            engine: Engine::new(config).unwrap(),
            validator: Validator::from_config(config),
            outputs: Vec::new(),
            next: 0,
        }
    }

    /// Sends `action` of `customer` at `at`, with `attributes.purpose` when
    /// given.
    fn send(
        &mut self,
        customer: &str,
        at: EventTime,
        action: &str,
        purpose: Option<&str>,
    ) -> Ingested {
        self.next += 1;
        let attributes = match purpose {
            Some(p) => format!(r#","attributes":{{"purpose":"{p}","page":"/x"}}"#),
            None => String::new(),
        };
        let line = format!(
            r#"{{"event_id":"e{}","customer_id":"{customer}","occurred_at":{},"action":"{action}"{attributes}}}"#,
            self.next, at.0
        );
        let tp = (self.validator)
            .decode(Encoding::Json, line.as_bytes(), WALL)
            .unwrap();
        self.engine.ingest(0, &tp, WALL, &mut self.outputs)
    }

    fn grant(&mut self, customer: &str, at: EventTime) -> Ingested {
        self.send(customer, at, "consent_granted", Some("analytics"))
    }

    fn withdraw(&mut self, customer: &str, at: EventTime) -> Ingested {
        self.send(customer, at, "consent_withdrawn", Some("analytics"))
    }

    fn finish(&mut self) {
        self.engine.finish(&mut self.outputs);
    }

    fn stages(&self, customer: &str) -> Vec<(u64, String)> {
        (self.outputs.iter())
            .filter_map(|o| match o {
                Output::StageChanged(s) if s.customer_id == customer => {
                    Some((s.sequence, s.to_stage.to_string()))
                }
                _ => None,
            })
            .collect()
    }

    fn erased(&self) -> Vec<&CustomerErased> {
        (self.outputs.iter())
            .filter_map(|o| match o {
                Output::CustomerErased(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    fn without_consent(&self) -> u64 {
        self.engine.stats().without_consent
    }

    /// Customers counted active over all funnel windows emitted.
    fn active(&self) -> u64 {
        (self.outputs.iter())
            .map(|o| match o {
                Output::FunnelWindow(w) => w.active_customers,
                _ => 0,
            })
            .sum()
    }
}

fn stages(list: &[(u64, &str)]) -> Vec<(u64, String)> {
    list.iter().map(|&(n, s)| (n, s.to_owned())).collect()
}

#[test]
fn off_mode_treats_consent_touchpoints_as_ordinary_ones() {
    let mut c = Consenting::new(ConsentMode::Off);
    c.grant("ann", day(0.0));
    c.send("ann", day(1.0), "pricing_view", None);
    c.withdraw("ann", day(2.0));
    c.send("ann", day(3.0), "purchase", None);
    c.finish();
    assert_eq!(
        c.stages("ann"),
        stages(&[(1, "awareness"), (2, "consideration"), (3, "purchase")])
    );
    assert!(c.erased().is_empty());
    assert_eq!(c.engine.customer("ann").unwrap().touchpoints, 4);
    assert_eq!(c.without_consent(), 0);
}

#[test]
fn opt_in_processes_only_what_follows_a_grant() {
    let mut c = Consenting::new(ConsentMode::OptIn);
    c.send("bea", day(0.0), "ad_click", None);
    c.send("bea", day(0.5), "pricing_view", None);
    c.grant("bea", day(1.0));
    c.send("bea", day(2.0), "ad_click", None);
    c.send("bea", day(3.0), "pricing_view", None);
    // Never consents: nothing of him is kept.
    c.send("cid", day(0.2), "purchase", None);
    c.send("cid", day(3.5), "purchase", None);
    c.finish();
    assert_eq!(
        c.stages("bea"),
        stages(&[(1, "awareness"), (2, "consideration")])
    );
    let bea = c.engine.customer("bea").unwrap();
    assert_eq!(bea.touchpoints, 2, "the grant is not a journey touchpoint");
    assert!(c.stages("cid").is_empty());
    assert!(c.engine.customer("cid").is_none(), "nothing kept");
    assert_eq!(c.without_consent(), 4);
    // Bea in one window; Cid in none.
    assert_eq!(c.active(), 2);
    assert_eq!(c.engine.stats().events, 2);
}

#[test]
fn opt_out_processes_until_withdrawn_and_a_withdrawal_erases() {
    let mut c = Consenting::new(ConsentMode::OptOut);
    c.send("dan", day(0.0), "ad_click", None);
    c.send("dan", day(1.0), "purchase", None);
    // Consent for another purpose is an ordinary touchpoint.
    c.send("dan", day(1.5), "consent_withdrawn", Some("marketing"));
    c.withdraw("dan", day(2.0));
    c.send("dan", day(3.0), "purchase", None);
    c.send("dan", day(4.0), "referral_sent", None);
    c.finish();
    assert_eq!(
        c.stages("dan"),
        stages(&[(1, "awareness"), (2, "purchase")])
    );
    let erased = c.erased();
    assert_eq!(erased.len(), 1);
    assert_eq!(erased[0].customer_id, "dan");
    assert_eq!(erased[0].source, ErasureSource::Consent);
    assert_eq!(erased[0].requested_at, day(2.0).0);
    assert!(erased[0].state_found);
    let dan = c.engine.customer("dan").unwrap();
    assert_eq!((dan.touchpoints, dan.purchases, dan.band), (0, 0, None));
    assert_eq!(dan.consent.as_str(), "withdrawn");
    assert_eq!(c.without_consent(), 2);
    assert_eq!(c.engine.stats().consent_erasures, [1, 0]);
}

#[test]
fn a_grant_after_a_withdrawal_starts_a_new_journey() {
    for mode in [ConsentMode::OptIn, ConsentMode::OptOut] {
        let mut c = Consenting::new(mode);
        c.grant("eve", day(0.0));
        c.send("eve", day(1.0), "pricing_view", None);
        c.withdraw("eve", day(2.0));
        c.send("eve", day(3.0), "purchase", None);
        c.grant("eve", day(4.0));
        c.send("eve", day(5.0), "purchase", None);
        c.finish();
        assert_eq!(
            c.stages("eve"),
            stages(&[(1, "consideration"), (1, "purchase")]),
            "{mode:?}: sequences start again after the erasure"
        );
        assert_eq!(c.without_consent(), 1, "{mode:?}");
    }
}

#[test]
fn touchpoints_buffered_when_a_withdrawal_arrives_are_judged_in_event_time() {
    // All within the allowed lateness (30 s): they wait in the reorder
    // buffer and are processed in event-time order, whatever the arrival
    // order. The withdrawal at +5 s arrives after the view at +10 s.
    let mut c = Consenting::new(ConsentMode::OptOut);
    let t = |s: i64| day(0.0).plus_ms(s * SECOND);
    c.send("fay", t(0), "ad_click", None);
    c.send("fay", t(10), "pricing_view", None);
    c.withdraw("fay", t(5));
    c.send("fay", t(20), "purchase", None);
    assert_eq!(c.engine.buffered(), 4, "all still buffered");
    c.finish();
    // The ad click (before the withdrawal) was applied, then erased; the
    // view and the purchase (after it) are not processed.
    assert_eq!(c.stages("fay"), stages(&[(1, "awareness")]));
    assert_eq!(c.erased().len(), 1);
    assert_eq!(c.without_consent(), 2);
    let fay = c.engine.customer("fay").unwrap();
    assert_eq!((fay.touchpoints, fay.pending), (0, 0));
    assert_eq!(c.engine.check_index(), Ok(()));

    // A grant buffered after the withdrawal lets what follows it through.
    let mut c = Consenting::new(ConsentMode::OptIn);
    c.grant("gus", t(0));
    c.send("gus", t(15), "purchase", None);
    c.withdraw("gus", t(5));
    c.grant("gus", t(10));
    c.finish();
    assert_eq!(c.stages("gus"), stages(&[(1, "purchase")]));
    assert!(c.erased()[0].state_found);
}

#[test]
fn late_touchpoints_and_late_consent_older_than_the_latest_change_are_not_applied() {
    let mut c = Consenting::new(ConsentMode::OptIn);
    c.grant("hal", day(0.0));
    c.send("hal", day(1.0), "ad_click", None);
    c.withdraw("hal", day(2.0));
    c.send("zed", day(3.0), "page_view", None); // moves time past day 2
    // Late: a touchpoint and a grant from before the withdrawal.
    assert_eq!(
        c.send("hal", day(1.5), "pricing_view", None),
        Ingested::Late
    );
    assert_eq!(c.grant("hal", day(1.8)), Ingested::Late);
    c.finish();
    assert_eq!(c.stages("hal"), stages(&[(1, "awareness")]));
    let hal = c.engine.customer("hal").unwrap();
    assert_eq!(hal.consent.as_str(), "withdrawn");
    assert_eq!(hal.consent_at, day(2.0));
    // Zed's view, Hal's late view and Hal's superseded grant.
    assert_eq!(c.without_consent(), 3);
}

#[test]
fn consent_survives_a_changelog_round_trip() {
    for mode in [ConsentMode::OptIn, ConsentMode::OptOut] {
        let mut c = Consenting::new(mode);
        c.engine.track_changes(true);
        c.grant("ida", day(0.0));
        c.send("ida", day(1.0), "ad_click", None);
        c.grant("jon", day(0.0));
        c.send("jon", day(1.0), "ad_click", None);
        c.withdraw("jon", day(2.0));
        c.send("zed", day(3.0), "page_view", None);
        c.engine.finish(&mut c.outputs);
        let log = drain_records(&mut c.engine);

        let mut restored = Consenting::new(mode);
        restore_log(&mut restored.engine, &log);
        let jon = restored.engine.customer("jon").unwrap();
        assert_eq!(
            (jon.consent.as_str(), jon.consent_at),
            ("withdrawn", day(2.0))
        );
        assert_eq!(jon.touchpoints, 0, "{mode:?}: only the consent was kept");
        assert_eq!(
            restored.engine.customer("ida").unwrap().consent.as_str(),
            "granted"
        );
        restored.send("ida", day(4.0), "pricing_view", None);
        restored.send("jon", day(4.0), "purchase", None);
        restored.finish();
        assert_eq!(restored.stages("ida"), stages(&[(2, "consideration")]));
        assert!(restored.stages("jon").is_empty(), "{mode:?}");
        assert_eq!(restored.without_consent(), 1, "{mode:?}");
    }
}

#[test]
fn a_customer_ignored_in_opt_in_leaves_a_tombstone_at_most() {
    let mut c = Consenting::new(ConsentMode::OptIn);
    c.engine.track_changes(true);
    c.send("kim", day(0.0), "ad_click", None);
    // Drained while the touchpoint waits: a record of a customer with
    // nothing applied yet.
    let first = drain_records(&mut c.engine);
    assert!(
        first
            .iter()
            .any(|r| r.key.as_deref() == Some("kim") && r.value.is_some())
    );
    c.finish();
    assert!(c.engine.customer("kim").is_none());
    let second = drain_records(&mut c.engine);
    assert!(
        second
            .iter()
            .any(|r| r.key.as_deref() == Some("kim") && r.value.is_none()),
        "the record written meanwhile is tombstoned: {second:?}"
    );
}

#[test]
fn consent_only_records_are_evicted_after_the_state_ttl() {
    let mut config = config(ConsentMode::OptOut);
    config.time.state_ttl = std::time::Duration::from_secs(100 * 86_400);
    let mut c = Consenting::with(&config);
    c.send("lou", day(0.0), "ad_click", None);
    c.withdraw("lou", day(1.0));
    c.send("zed", day(100.5), "page_view", None);
    c.send("zed", day(102.0), "page_view", None);
    c.finish();
    assert!(c.engine.customer("lou").is_none());
}

#[test]
fn the_customer_view_shows_the_consent() {
    let mut c = Consenting::new(ConsentMode::OptOut);
    c.send("max", day(0.0), "ad_click", None);
    c.withdraw("max", day(1.0));
    c.send("nia", day(0.0), "ad_click", None);
    c.finish();
    let view = |id| journeyd::http::CustomerView::from_engine(&c.engine, id).unwrap();
    let max = serde_json::to_value(view("max")).unwrap();
    assert_eq!(
        max["consent"],
        serde_json::json!({"mode": "opt_out", "state": "withdrawn", "changed_at": day(1.0).to_rfc3339()})
    );
    let nia = serde_json::to_value(view("nia")).unwrap();
    assert_eq!(
        nia["consent"],
        serde_json::json!({"mode": "opt_out", "state": "unknown", "changed_at": null})
    );
}
