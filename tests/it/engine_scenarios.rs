//! Journey stories: the engine fed by hand, checked output by output.

use crate::common;

use common::*;
use journeyd::config::RegressRule;
use journeyd::engine::Ingested;
use journeyd::model::{Band, ChurnCause, Direction, EventTime};

#[test]
fn a_customer_walks_the_five_stages_in_order() {
    let mut s = Story::new();
    s.send("alice", day(0.0), "ad_click");
    s.send("alice", day(1.0), "pricing_view");
    s.send_value("alice", day(2.0), "purchase", 49.0);
    s.send_value("alice", day(30.0), "purchase", 20.0);
    s.send("alice", day(40.0), "referral_sent");
    s.finish();

    use Direction::Advance;
    assert_eq!(
        s.moves("alice"),
        [
            mv(None, "awareness", Advance),
            mv(Some("awareness"), "consideration", Advance),
            mv(Some("consideration"), "purchase", Advance),
            mv(Some("purchase"), "retention", Advance),
            mv(Some("retention"), "advocacy", Advance),
        ]
    );
    let changes: Vec<_> = s.stage_changes("alice").collect();
    assert_eq!(
        changes.iter().map(|c| c.sequence).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(changes[3].trigger_action.as_deref(), Some("purchase"));
    assert_eq!(changes[3].time_in_previous_stage_ms, 28 * DAY);
    assert_eq!(changes[4].touchpoint_count, 5);
    let since_first: Vec<_> = changes
        .iter()
        .map(|c| c.time_since_first_touchpoint_ms)
        .collect();
    assert_eq!(
        since_first,
        [0, DAY, 2 * DAY, 30 * DAY, 40 * DAY].map(Some),
        "time since the journey's first touchpoint"
    );
}

#[test]
fn a_first_ever_purchase_skips_to_purchase_and_lower_signals_change_nothing() {
    let mut s = Story::new();
    s.send("bob", day(0.0), "purchase");
    s.send("bob", day(1.0), "pricing_view");
    s.send("bob", day(2.0), "ad_click");
    s.finish();
    assert_eq!(s.moves("bob"), [mv(None, "purchase", Direction::Skip)]);
}

#[test]
fn a_regress_rule_moves_a_retained_customer_back_to_purchase() {
    let mut config = event_config();
    config.journey.regress.push(RegressRule {
        action: "subscription_downgraded".into(),
        from: vec!["retention".into(), "advocacy".into()],
        to: "purchase".into(),
        channel: None,
        min_value: None,
        max_value: None,
    });
    let mut s = Story::with(config);
    s.send("carol", day(0.0), "purchase");
    s.send("carol", day(10.0), "purchase");
    s.send("carol", day(20.0), "subscription_downgraded");
    s.send("dan", day(0.0), "pricing_view");
    s.send("dan", day(1.0), "subscription_downgraded");
    s.finish();
    assert_eq!(
        s.moves("carol"),
        [
            mv(None, "purchase", Direction::Skip),
            mv(Some("purchase"), "retention", Direction::Advance),
            mv(Some("retention"), "purchase", Direction::Regress),
        ]
    );
    assert_eq!(
        s.moves("dan").len(),
        1,
        "the rule does not apply in consideration"
    );
}

#[test]
fn inactivity_lapses_from_the_watermark_and_the_next_touchpoint_returns() {
    let mut s = Story::new();
    s.send("erin", day(0.0), "ad_click");
    s.send("erin", day(5.0), "page_view");
    s.send("frank", day(1.0), "ad_click");
    s.pass_time(day(50.0));
    assert_eq!(s.moves("erin").len(), 1, "not lapsed before 90 days");
    s.pass_time(day(96.0));

    // Erin sent nothing after day 5: the watermark alone lapsed her at day 95.
    let lapse = s.stage_changes("erin").last().unwrap().clone();
    assert_eq!(
        (lapse.to_stage.as_str(), lapse.direction),
        ("lapsed", Direction::Lapse)
    );
    assert_eq!(lapse.event_time, day(95.0).0);
    assert_eq!(lapse.trigger_event_id, None);
    assert_eq!(lapse.time_in_previous_stage_ms, 95 * DAY);

    s.send("erin", day(100.0), "page_view");
    s.send("frank", day(100.0), "pricing_view");
    s.finish();
    assert_eq!(
        s.moves("erin")[2],
        mv(Some("lapsed"), "awareness", Direction::Return)
    );
    assert_eq!(
        s.moves("frank")[2],
        mv(Some("lapsed"), "consideration", Direction::Return)
    );
}

#[test]
fn three_product_views_within_seven_days_enter_consideration() {
    let mut s = Story::new();
    for d in [0.0, 2.0, 5.0] {
        s.send("met", day(d), "product_view");
    }
    for d in [0.0, 5.0, 10.0] {
        s.send("spread", day(d), "product_view");
    }
    s.finish();
    let met = s.stage_changes("met").last().unwrap();
    assert_eq!(
        (met.to_stage.as_str(), met.event_time),
        ("consideration", day(5.0).0)
    );
    assert_eq!(
        s.moves("spread"),
        [mv(None, "awareness", Direction::Advance)],
        "views spread over 10 days"
    );
}

#[test]
fn out_of_order_views_within_lateness_give_the_same_stage_changes() {
    let t = day(3.0);
    let views: Vec<Ev> = [0, 10, 20]
        .iter()
        .enumerate()
        .map(|(i, sec)| {
            Ev::new(
                format!("v{i}"),
                "gina",
                t.plus_ms(sec * SECOND),
                "product_view",
            )
        })
        .collect();
    let run = |order: &[usize]| {
        let mut s = Story::new();
        for &i in order {
            assert_eq!(s.deliver(&views[i]), Ingested::Accepted);
        }
        s.finish();
        s.outputs
    };
    let in_order = run(&[0, 1, 2]);
    for order in [[2, 0, 1], [1, 2, 0], [2, 1, 0]] {
        assert_eq!(run(&order), in_order, "arrival order {order:?}");
    }
    let mut s = Story::new();
    for v in &views {
        s.deliver(v);
    }
    s.finish();
    let entered = s.stage_changes("gina").last().unwrap();
    assert_eq!(
        entered.trigger_event_id.as_deref(),
        Some("v2"),
        "the third view in event time"
    );
}

#[test]
fn a_dropoff_is_counted_in_the_window_of_its_deadline_and_a_conversion_beats_it() {
    let mut config = event_config();
    config.time.funnel_window = std::time::Duration::from_secs(3600);
    let mut s = Story::with(config);
    s.send("hank", day(0.0), "pricing_view");
    s.send("ivy", day(0.0), "pricing_view");
    s.send("ivy", day(3.0), "purchase");
    s.pass_time(day(8.0));

    let pair = |w: &journeyd::model::FunnelWindow| {
        w.pairs
            .iter()
            .find(|p| p.from_stage == "consideration" && p.to_stage == "purchase")
            .cloned()
            .unwrap()
    };
    let at_deadline = pair(s.window_at(day(7.0)).expect("window of hank's deadline"));
    assert_eq!((at_deadline.dropoffs, at_deadline.conversions), (1, 0));
    assert_eq!(at_deadline.dropoff_ratio, Some(1.0));
    let at_purchase = pair(s.window_at(day(3.0)).expect("window of ivy's purchase"));
    assert_eq!((at_purchase.dropoffs, at_purchase.conversions), (0, 1));
    let total_dropoffs: u64 = s.windows().map(|w| pair(w).dropoffs).sum();
    assert_eq!(total_dropoffs, 1, "ivy converted before her deadline");
}

#[test]
fn customers_inside_their_deadline_at_a_window_end_are_in_flight_never_dropped() {
    let mut config = event_config();
    config.time.funnel_window = std::time::Duration::from_secs(3600);
    let mut s = Story::with(config);
    let before_deadline = day(7.0).plus_ms(-30 * 60 * 1000);
    s.send("hank", day(0.0), "pricing_view");
    s.send("ivy", day(0.5), "pricing_view");
    s.send("ivy", day(3.0), "purchase");
    // Something happens in the hour that ends at hank's deadline.
    s.send("clock", before_deadline, "page_view");
    s.pass_time(day(8.0));

    // (conversions, drop-offs, in flight) of consideration -> purchase.
    let row = |t: EventTime| {
        let w = s.window_at(t).expect("the window is emitted");
        let p = (w.pairs.iter())
            .find(|p| p.from_stage == "consideration" && p.to_stage == "purchase")
            .unwrap();
        (p.conversions, p.dropoffs, p.in_flight)
    };
    assert_eq!(row(day(0.0)), (0, 0, 1), "hank entered");
    assert_eq!(row(day(0.5)), (0, 0, 2), "ivy entered");
    assert_eq!(
        row(day(3.0)),
        (1, 0, 1),
        "ivy converted; hank still has days"
    );
    assert_eq!(
        row(before_deadline),
        (0, 0, 1),
        "a deadline at the window's end is still running at it"
    );
    assert_eq!(row(day(7.0)), (0, 1, 0), "hank dropped off at his deadline");
    let pair = (s.engine.rules().conversions.iter())
        .find(|c| s.engine.rules().stage_name(c.from) == "consideration")
        .unwrap()
        .index;
    assert_eq!(
        s.engine.funnel_totals().in_flight[pair],
        0,
        "none in flight now"
    );
}

/// When risk reaches `threshold` with no new event: the closed form of
/// docs/configuration.md, `[churn]` (MBG/NBD, default parameters, weeks), solved for T.
fn crossing(first: f64, last: f64, purchases: u32, threshold: f64) -> i64 {
    let (r, alpha, a, b) = (0.525, 6.183, 0.891, 1.614);
    let x = f64::from(purchases - 1);
    let week = 7.0 * DAY as f64;
    let t_x = (last - first) * DAY as f64 / week;
    let logit = (threshold / (1.0 - threshold)).ln();
    let t = (alpha + t_x) * ((logit - (a / (b + x)).ln()) / (r + x)).exp() - alpha;
    day(first).0 + (t * week).ceil() as i64
}

#[test]
fn churn_risk_climbs_from_low_to_medium_to_high_by_time_alone() {
    let mut s = Story::new();
    for d in [0.0, 7.0, 14.0, 21.0] {
        s.send_value("jack", day(d), "purchase", 30.0);
    }
    s.pass_time(day(22.0));
    assert_eq!(s.bands("jack").last(), Some(&Band::Low));
    let before = s.churn_changes("jack").count();
    s.pass_time(day(100.0));

    let by_time: Vec<_> = s.churn_changes("jack").skip(before).cloned().collect();
    assert_eq!(
        by_time.iter().map(|c| c.band).collect::<Vec<_>>(),
        [Band::Medium, Band::High]
    );
    assert!(
        by_time
            .iter()
            .all(|c| c.cause == ChurnCause::Timer && c.trigger_event_id.is_none())
    );
    let expected = [crossing(0.0, 21.0, 4, 0.3), crossing(0.0, 21.0, 4, 0.6)];
    for (change, want) in by_time.iter().zip(expected) {
        assert!(
            (change.event_time - want).abs() <= 1,
            "{} vs {want}",
            change.event_time
        );
    }
    assert!(by_time[0].risk >= 0.3 && by_time[1].risk >= 0.6);
}

#[test]
fn a_detractor_nps_and_a_cancellation_raise_the_risk() {
    let mut s = Story::new();
    for d in [0.0, 7.0, 14.0] {
        s.send_value("kim", day(d), "purchase", 30.0);
    }
    s.send_value("kim", day(15.0), "nps_response", 2.0);
    s.send("kim", day(16.0), "subscription_cancelled");
    s.finish();
    let changes: Vec<_> = s.churn_changes("kim").cloned().collect();
    let n = changes.len();
    assert_eq!(changes[n - 3].band, Band::Low);
    let detractor = &changes[n - 2];
    assert_eq!(
        (detractor.band, detractor.cause),
        (Band::Medium, ChurnCause::Event)
    );
    assert_eq!(detractor.signals, ["detractor_nps"]);
    assert!(detractor.risk > changes[n - 3].risk);
    let cancelled = &changes[n - 1];
    assert_eq!((cancelled.band, cancelled.risk), (Band::High, 1.0));
    assert_eq!(cancelled.previous_band, Some(Band::Medium));
}

#[test]
fn a_late_event_is_applied_to_the_customer_but_not_to_an_emitted_window() {
    let mut config = event_config();
    config.time.funnel_window = std::time::Duration::from_secs(3600);
    let mut s = Story::with(config);
    s.send("lena", day(0.0), "ad_click");
    s.pass_time(day(1.0));
    let first = s.window_at(day(0.0)).expect("window emitted").clone();
    assert_eq!(
        first
            .entries
            .iter()
            .find(|e| e.stage == "awareness")
            .unwrap()
            .count,
        1
    );

    let late = s.send("lena", day(0.0).plus_ms(10 * MINUTE), "pricing_view");
    assert_eq!(late, Ingested::Late);
    assert_eq!(
        s.stage_of("lena").as_deref(),
        Some("consideration"),
        "applied to the customer"
    );
    assert_eq!(
        s.moves("lena")[1],
        mv(Some("awareness"), "consideration", Direction::Advance)
    );
    s.pass_time(day(2.0));

    assert_eq!(
        s.windows()
            .filter(|w| w.window_start == first.window_start)
            .count(),
        1
    );
    let considered: u64 = s
        .windows()
        .flat_map(|w| &w.entries)
        .filter(|e| e.stage == "consideration")
        .map(|e| e.count)
        .sum();
    assert_eq!(considered, 0, "excluded from every emitted window");
    assert_eq!(s.windows().map(|w| w.late_events).sum::<u64>(), 1);
    assert_eq!(s.engine.stats().late, 1);
}

#[test]
fn an_inactive_customer_is_evicted_after_state_ttl_once_the_lapse_is_out() {
    let mut config = event_config();
    config.time.state_ttl = std::time::Duration::from_secs(200 * 86_400);
    let mut s = Story::with(config);
    s.send_value("max", day(0.0), "purchase", 10.0);
    s.pass_time(day(150.0));
    assert_eq!(
        s.moves("max").last().unwrap().2,
        Direction::Lapse,
        "lapsed at day 90"
    );
    assert!(s.engine.customer("max").is_some(), "kept until state_ttl");
    let tracked = s.engine.tracked_customers();
    let bytes = s.engine.state_bytes();

    s.pass_time(day(201.0));
    assert!(s.engine.customer("max").is_none(), "evicted at day 200");
    assert_eq!(s.engine.stats().evicted, 1);
    assert_eq!(s.engine.tracked_customers(), tracked - 1);
    assert!(s.engine.state_bytes() < bytes);

    // A later touchpoint starts a new journey.
    s.send("max", day(260.0), "page_view");
    s.finish();
    let restart = s.stage_changes("max").last().unwrap();
    assert_eq!((restart.sequence, restart.from_stage.as_deref()), (1, None));
}

#[test]
fn a_dropoff_falling_into_an_emitted_window_is_counted_as_late() {
    let mut config = event_config();
    config.time.funnel_window = std::time::Duration::from_secs(3600);
    let mut s = Story::with(config);
    s.send("nora", day(0.0), "ad_click");
    s.pass_time(day(10.0));
    let emitted = s.windows().count();

    // Late by nine days: applied at once; its consideration -> purchase
    // deadline (day 8) is behind the watermark too, so the drop-off fires
    // at once, into a window emitted long ago.
    let late = s.send("nora", day(1.0), "pricing_view");
    assert_eq!(late, Ingested::Late);
    assert_eq!(s.engine.stats().dropoffs, 1);
    s.pass_time(day(11.0));

    let dropoffs: u64 = s.windows().flat_map(|w| &w.pairs).map(|p| p.dropoffs).sum();
    assert_eq!(dropoffs, 0, "excluded from every emitted window");
    let late_in_windows: u64 = s.windows().skip(emitted).map(|w| w.late_events).sum();
    assert_eq!(
        (late_in_windows, s.engine.stats().late),
        (2, 2),
        "the touchpoint and its drop-off"
    );
}

#[test]
fn experience_scores_count_by_the_stage_answered_in_and_channels_by_touchpoint() {
    let mut s = Story::new();
    let t = |sec: i64| day(1.0).plus_ms(sec * SECOND);
    let mut on = |customer: &str, sec: i64, action: &str, value: Option<f64>, channel| {
        let mut ev = Ev::new(format!("{customer}-{sec}"), customer, t(sec), action);
        ev.value = value;
        ev.channel = channel;
        s.deliver(&ev);
    };
    use journeyd::model::Channel::{Ads, App, Email, Web};
    on("ann", 1, "ad_click", None, Ads);
    on("ann", 2, "nps_response", Some(10.0), Email); // promoter, in awareness
    on("bob", 3, "nps_response", Some(8.0), Email); // passive, in no stage yet
    on("cid", 4, "ad_click", None, Ads);
    on("cid", 5, "nps_response", Some(3.0), Email); // detractor, in awareness
    on("cid", 6, "csat_response", Some(4.0), App); // satisfied
    on("cid", 7, "ces_response", Some(2.0), App);
    on("dan", 8, "csat_response", Some(2.0), App); // not satisfied, no stage
    on("eve", 9, "nps_response", Some(11.0), Web); // off the scale
    on("eve", 10, "csat_response", Some(4.5), Web); // not a whole number
    s.pass_time(t(180));

    let w = s.window_at(t(0)).expect("the window is emitted");
    let nps = &w.scores.nps;
    assert_eq!(
        (nps.responses, nps.promoters, nps.passives, nps.detractors),
        (3, 1, 1, 1)
    );
    assert_eq!(nps.score, Some(0.0), "1 promoter, 1 detractor of 3");
    let csat = &w.scores.csat;
    assert_eq!(
        (csat.responses, csat.satisfied, csat.score),
        (2, 1, Some(50.0))
    );
    assert_eq!((w.scores.ces.responses, w.scores.ces.score), (1, Some(2.0)));
    let awareness = (w.scores_by_stage.iter())
        .find(|s| s.stage == "awareness")
        .unwrap();
    assert_eq!(
        (awareness.nps.promoters, awareness.nps.detractors),
        (1, 1),
        "ann and cid answered in awareness; bob in no stage yet"
    );
    assert_eq!(awareness.nps.score, Some(0.0));
    assert_eq!((awareness.csat.responses, awareness.ces.responses), (1, 1));
    let answered: Vec<&str> = w.scores_by_stage.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(answered, ["awareness"], "only stages with a response");
    let channels: Vec<(&str, u64)> = w
        .channels
        .iter()
        .map(|c| (c.channel, c.touchpoints))
        .collect();
    assert_eq!(
        channels,
        [("web", 2), ("app", 3), ("email", 3), ("ads", 2)],
        "in the vocabulary's order, only channels with touchpoints"
    );
    assert_eq!(s.engine.stats().scores_off_scale, 2);
    let latest = |customer| s.engine.customer(customer).unwrap().latest_scores;
    const NONE: u8 = u8::MAX;
    assert_eq!(latest("cid"), [3, 4, 2], "the latest of each");
    assert_eq!(latest("eve"), [NONE; 3], "off the scale: not a response");
}

#[test]
fn a_conversion_is_counted_with_its_time_in_the_window_of_the_conversion() {
    let mut s = Story::new();
    let t = |min: i64| day(1.0).plus_ms(min * MINUTE);
    s.send("ida", t(0), "ad_click");
    s.send("ida", t(1), "pricing_view"); // enters consideration
    s.send_value("ida", t(4), "purchase", 30.0); // converts 3 minutes later
    s.pass_time(t(10));

    let w = s.window_at(t(4)).expect("the purchase's window is emitted");
    let pairs: Vec<(&str, &str)> = (w.time_to_convert.iter())
        .map(|p| (p.from_stage.as_str(), p.to_stage.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [("consideration", "purchase")],
        "only pairs that converted"
    );
    let p = &w.time_to_convert[0];
    assert_eq!(p.conversions, 1);
    assert_eq!(p.buckets[1], 1, "between 1 and 5 minutes");
    // Interpolated in the bucket: 1 min + 4 min x 0.5 and x 0.9.
    assert_eq!((p.p50_ms, p.p90_ms), (Some(3 * MINUTE), Some(276_000)));
    let awareness = s
        .window_at(t(1))
        .expect("the window of the first conversion");
    assert_eq!(awareness.time_to_convert[0].from_stage, "awareness");
    assert_eq!(
        awareness.time_to_convert[0].buckets[0], 1,
        "within a minute"
    );
}
