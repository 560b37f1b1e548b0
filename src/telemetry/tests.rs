//! Tests of the metrics: names, bounded labels, engine deltas, and that
//! the exposition passes `promtool check metrics`.

use std::borrow::Cow;
use std::io::Write;
use std::process::{Command, Stdio};

use super::*;
use crate::codec::InvalidReason;
use crate::config::{Config, TimeMode};
use crate::engine::Engine;
use crate::model::{Channel, EventTime, Output, Touchpoint};

const DAY: i64 = 86_400_000;
/// 2026-01-01T00:00:00Z.
const BASE: EventTime = EventTime(1_767_225_600_000);

fn engine_with_story() -> (Engine, Vec<Output>) {
    let mut config = Config::default();
    config.time.mode = TimeMode::Event;
    let mut engine = Engine::new(&config).expect("default config");
    let mut out = Vec::new();
    let events = [
        ("alice", 0, "ad_click"),
        ("alice", 1, "pricing_view"),
        ("alice", 2, "purchase"),
        ("bob", 0, "page_view"),
        ("bob", 3, "page_view"),
        ("carol", 9, "page_view"),
    ];
    for (i, (customer, day, action)) in events.into_iter().enumerate() {
        let id = format!("e{i}");
        let tp = Touchpoint {
            event_id: Cow::Owned(id),
            customer_id: Cow::Borrowed(customer),
            occurred_at: BASE.plus_ms(day * DAY),
            channel: Channel::Web,
            action: Cow::Borrowed(action),
            value: Some(10.0),
            session_id: None,
            attributes: Default::default(),
        };
        engine.ingest(0, &tp, EventTime(0), &mut out);
    }
    engine.finish(&mut out);
    (engine, out)
}

/// Metrics with every kind of metric touched at least once.
fn populated() -> Metrics {
    let metrics = Metrics::new().expect("metrics");
    let (engine, outputs) = engine_with_story();
    metrics.observe_engine(&EngineSnapshot::of(&engine, BASE.plus_ms(10 * DAY)));
    for o in &outputs {
        if let Output::FunnelWindow(w) = o {
            events::FunnelWindowClosed { window: w }.emit(&metrics);
        }
    }
    let config = Config::default();
    let consumed =
        metrics.consumed_counters(&["touchpoints"], engine.rules(), rule_actions(&config));
    consumed.inc("touchpoints", engine.rules().action_id("purchase"));
    metrics.invalid(InvalidReason::Truncated).inc();
    metrics.set_consumer_lag("touchpoints", 0, 42);
    metrics
        .output_counters("journey.stage-changes")
        .delivered
        .inc();
    metrics.observe_end_to_end_latency(31.5);
    metrics.observe_processing_latency(0.004);
    let progress = RestoreProgress {
        assigned_partitions: 3,
        restoring_partitions: 1,
        restored_records: 120,
    };
    metrics.observe_readiness(false, progress);
    metrics
}

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn exposition_passes_promtool() {
    let text = populated().encode_text();
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is not on PATH but CI is set: install it (Debian package `prometheus`)"
        );
        eprintln!("SKIPPED exposition_passes_promtool: promtool not on PATH");
        return;
    };
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(text.as_bytes()).expect("write to promtool");
    drop(stdin);
    let out = child.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- exposition ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}

#[test]
fn every_metric_is_prefixed_and_has_no_customer_ids() {
    let text = populated().encode_text();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("journeyd_"), "{line}");
        for id in ["alice", "bob", "carol"] {
            assert!(!line.contains(id), "customer id in {line}");
        }
    }
}

#[test]
fn invalid_reasons_export_zero_up_front() {
    let text = Metrics::new().expect("metrics").encode_text();
    for reason in InvalidReason::ALL {
        let series = format!(
            "journeyd_events_invalid_total{{reason=\"{}\"}}",
            reason.as_str()
        );
        assert_eq!(sample(&text, &series), Some(0.0), "{series}");
    }
}

#[test]
fn unknown_actions_are_counted_as_other() {
    let metrics = Metrics::new().expect("metrics");
    let (engine, _) = engine_with_story();
    let rules = engine.rules();
    let consumed = metrics.consumed_counters(&["in"], rules, rule_actions(&Config::default()));
    consumed.inc("in", rules.action_id("page_view"));
    consumed.inc("in", rules.action_id("a-brand-new-action"));
    consumed.inc("in", rules.action_id("purchase"));
    consumed.inc("elsewhere", rules.action_id("purchase"));
    assert_eq!(
        consumed.label(rules.action_id("review_posted")),
        "review_posted"
    );
    let text = metrics.encode_text();
    let series = |topic: &str, action: &str| {
        format!("journeyd_events_consumed_total{{action=\"{action}\",topic=\"{topic}\"}}")
    };
    assert_eq!(sample(&text, &series("in", "other")), Some(2.0));
    assert_eq!(sample(&text, &series("in", "purchase")), Some(1.0));
    assert_eq!(sample(&text, &series("in", "add_to_cart")), Some(0.0));
    assert_eq!(sample(&text, &series("elsewhere", "purchase")), Some(1.0));
    assert!(!text.contains("a-brand-new-action"));
}

#[test]
fn engine_counters_are_published_as_deltas() {
    let metrics = Metrics::new().expect("metrics");
    let (engine, _) = engine_with_story();
    let snap = EngineSnapshot::of(&engine, BASE.plus_ms(10 * DAY));
    metrics.observe_engine(&snap);
    metrics.observe_engine(&snap);
    let text = metrics.encode_text();
    let stats = engine.stats();
    assert_eq!(
        sample(&text, "journeyd_events_processed_total"),
        Some(stats.events as f64)
    );
    let entered = "journeyd_stage_transitions_total{from=\"none\",to=\"awareness\"}";
    assert_eq!(
        sample(&text, entered),
        Some(3.0),
        "alice, bob and carol entered"
    );
    let to_purchase = "journeyd_stage_transitions_total{from=\"consideration\",to=\"purchase\"}";
    assert_eq!(sample(&text, to_purchase), Some(1.0));
    assert!(!text.contains("from=\"purchase\",to=\"purchase\""));
    assert_eq!(
        sample(&text, "journeyd_tracked_customers"),
        Some(engine.tracked_customers() as f64)
    );
    for (band, &n) in crate::model::Band::ALL
        .iter()
        .zip(&stats.customers_per_band)
    {
        let series = format!(
            "journeyd_customers_churn_band{{band=\"{}\"}}",
            band.as_str()
        );
        assert_eq!(sample(&text, &series), Some(n as f64), "{series}");
    }
    assert_eq!(
        stats.customers_per_band.iter().sum::<u64>(),
        1,
        "alice has a band"
    );
}

#[test]
fn funnel_gauges_show_the_last_window_and_start_undefined() {
    let metrics = Metrics::new().expect("metrics");
    let (engine, _) = engine_with_story();
    metrics.observe_engine(&EngineSnapshot::of(&engine, EventTime::MIN));
    let text = metrics.encode_text();
    let ratio = "journeyd_funnel_dropoff_ratio{from=\"consideration\",to=\"purchase\"}";
    assert!(sample(&text, ratio).is_some_and(f64::is_nan), "{text}");
    assert_eq!(sample(&text, "journeyd_watermark_lag_seconds"), Some(0.0));
}

#[test]
fn readiness_and_restore_progress_follow_the_shared_state() {
    let metrics = Metrics::new().expect("metrics");
    let mut progress = RestoreProgress {
        assigned_partitions: 2,
        restoring_partitions: 2,
        restored_records: 10,
    };
    metrics.observe_readiness(false, progress);
    progress.restoring_partitions = 0;
    progress.restored_records = 25;
    metrics.observe_readiness(true, progress);
    metrics.observe_readiness(true, progress);
    let text = metrics.encode_text();
    assert_eq!(sample(&text, "journeyd_ready"), Some(1.0));
    assert_eq!(sample(&text, "journeyd_restore_records_total"), Some(25.0));
    assert_eq!(
        sample(&text, "journeyd_restore_partitions_restoring"),
        Some(0.0)
    );
}

#[test]
fn revoking_a_partition_drops_its_lag_series() {
    let metrics = Metrics::new().expect("metrics");
    metrics.set_consumer_lag("in", 0, 5);
    metrics.set_consumer_lag("in", 1, 7);
    events::PartitionsRevoked {
        partitions: &[("in", 0)],
    }
    .emit(&metrics);
    let text = metrics.encode_text();
    assert_eq!(
        sample(&text, "journeyd_consumer_lag{partition=\"0\",topic=\"in\"}"),
        None
    );
    assert_eq!(
        sample(&text, "journeyd_consumer_lag{partition=\"1\",topic=\"in\"}"),
        Some(7.0)
    );
    assert_eq!(
        sample(&text, "journeyd_rebalances_total{kind=\"revoked\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "journeyd_rebalances_total{kind=\"assigned\"}"),
        Some(0.0)
    );
}

#[test]
fn time_to_convert_is_a_histogram_of_the_engines_buckets() {
    let metrics = Metrics::new().expect("metrics");
    let ct = &metrics.funnel.convert_times;
    ct.set_pairs(&[("consideration", "purchase")]);
    let text = metrics.encode_text();
    let series = |le: &str| {
        format!(
            "journeyd_time_to_convert_seconds_bucket{{from=\"consideration\",to=\"purchase\",le=\"{le}\"}}"
        )
    };
    assert_eq!(sample(&text, &series("60")), Some(0.0), "starts at zero");
    let mut totals = crate::engine::funnel::FunnelTotals::default();
    let mut buckets = [0; 14];
    buckets[0] = 2; // two within a minute
    buckets[6] = 1; // one between 12 hours and a day
    totals.convert_times = vec![buckets];
    totals.convert_ms = vec![30_000 + 40_000 + 80_000_000];
    ct.observe(&totals);
    let text = metrics.encode_text();
    assert_eq!(sample(&text, &series("60")), Some(2.0));
    assert_eq!(sample(&text, &series("43200")), Some(2.0));
    assert_eq!(sample(&text, &series("86400")), Some(3.0));
    assert_eq!(sample(&text, &series("+Inf")), Some(3.0));
    let sum = "journeyd_time_to_convert_seconds_sum{from=\"consideration\",to=\"purchase\"}";
    assert_eq!(sample(&text, sum), Some(80_070.0));
}

#[test]
fn journey_moments_are_counted_by_outcome_and_their_durations_histogrammed() {
    let mut config = Config::default();
    config.time.mode = TimeMode::Event;
    let mut engine = Engine::new(&config).expect("default config");
    let mut out = Vec::new();
    const MINUTE: i64 = 60_000;
    // Ann's cart completes after 2 minutes; Bo's is abandoned an hour
    // after it opened, while the clock runs on to 3 hours.
    let events = [
        ("ann", 0, "add_to_cart"),
        ("bo", MINUTE, "add_to_cart"),
        ("ann", 2 * MINUTE, "purchase"),
        ("clock", 180 * MINUTE, "page_view"),
    ];
    for (i, (customer, at, action)) in events.into_iter().enumerate() {
        let tp = Touchpoint {
            event_id: Cow::Owned(format!("m{i}")),
            customer_id: Cow::Borrowed(customer),
            occurred_at: BASE.plus_ms(at),
            channel: Channel::Web,
            action: Cow::Borrowed(action),
            value: None,
            session_id: None,
            attributes: Default::default(),
        };
        engine.ingest(0, &tp, EventTime(0), &mut out);
    }
    engine.finish(&mut out);
    let metrics = Metrics::new().expect("metrics");
    metrics.observe_engine(&EngineSnapshot::of(&engine, BASE.plus_ms(DAY)));
    let text = metrics.encode_text();
    let moments = |moment: &str, outcome: &str| {
        let series = format!("journeyd_moments_total{{moment=\"{moment}\",outcome=\"{outcome}\"}}");
        sample(&text, &series)
    };
    assert_eq!(moments("cart", "started"), Some(2.0));
    assert_eq!(moments("cart", "completed"), Some(1.0));
    assert_eq!(moments("cart", "abandoned"), Some(1.0));
    assert_eq!(moments("checkout", "abandoned"), Some(0.0));
    let bucket = |le: &str| {
        let series =
            format!("journeyd_moment_duration_seconds_bucket{{moment=\"cart\",le=\"{le}\"}}");
        sample(&text, &series)
    };
    assert_eq!(bucket("60"), Some(0.0));
    assert_eq!(bucket("300"), Some(1.0), "2 minutes, completed only");
    assert_eq!(bucket("+Inf"), Some(1.0));
    let sum = "journeyd_moment_duration_seconds_sum{moment=\"cart\"}";
    assert_eq!(sample(&text, sum), Some(120.0));
}
