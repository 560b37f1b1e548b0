//! The synthetic workload generator, through its public API: determinism,
//! bounded disorder, fault ratios, JSON form and realistic journeys.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use journeyd::config::{ChurnConfig, JourneyConfig};
use journeyd::model::{Channel, EventTime};
use journeyd::tools::{GeneratedEvent, GeneratedRecord, Generator, GeneratorConfig, write_ndjson};

const DAY_MS: i64 = 86_400_000;

fn config(customers: u64) -> GeneratorConfig {
    GeneratorConfig {
        customers,
        ..GeneratorConfig::default()
    }
}

fn bytes_of(records: impl Iterator<Item = GeneratedRecord>) -> Vec<u8> {
    let mut out = Vec::new();
    for record in records {
        record.write_to(&mut out);
        out.push(b'\n');
    }
    out
}

fn valid_events(cfg: GeneratorConfig) -> Vec<GeneratedEvent> {
    Generator::new(cfg)
        .filter_map(|r| match r {
            GeneratedRecord::Valid(event) => Some(event),
            GeneratedRecord::Invalid { .. } => None,
        })
        .collect()
}

/// Events per customer, in event-time order, duplicates dropped.
fn journeys(events: &[GeneratedEvent]) -> HashMap<&str, Vec<&GeneratedEvent>> {
    let mut seen = HashSet::new();
    let mut by_customer: HashMap<&str, Vec<&GeneratedEvent>> = HashMap::new();
    for event in events.iter().filter(|e| seen.insert(e.event_id.as_str())) {
        by_customer
            .entry(&event.customer_id)
            .or_default()
            .push(event);
    }
    for journey in by_customer.values_mut() {
        journey.sort_by_key(|e| e.occurred_at);
    }
    by_customer
}

#[test]
fn same_seed_gives_byte_identical_streams() {
    let a = bytes_of(Generator::new(config(5_000)).take(10_000));
    let b = bytes_of(Generator::new(config(5_000)).take(10_000));
    assert_eq!(a.iter().filter(|&&b| b == b'\n').count(), 10_000);
    assert!(a == b, "the same seed must give the same bytes");

    let mut file = Vec::new();
    write_ndjson(&config(5_000), Some(10_000), &mut file).unwrap();
    assert!(file == a, "write_ndjson writes the iterator's records");
}

#[test]
fn different_seeds_give_different_streams() {
    let a = bytes_of(Generator::new(config(5_000)).take(1_000));
    let other = GeneratorConfig {
        seed: 43,
        ..config(5_000)
    };
    let b = bytes_of(Generator::new(other).take(1_000));
    assert_ne!(a, b);
}

#[test]
fn disorder_stays_within_the_configured_bound() {
    // Dense traffic (many customers over three days) so that events of
    // different customers interleave within the disorder window.
    let cfg = GeneratorConfig {
        customers: 50_000,
        span: Duration::from_secs(3 * 86_400),
        disorder: Duration::from_secs(5),
        ..GeneratorConfig::default()
    };
    let mut newest = EventTime::MIN;
    let mut out_of_order = 0;
    for event in Generator::new(cfg).take(200_000).filter_map(|r| match r {
        GeneratedRecord::Valid(e) => Some(e),
        GeneratedRecord::Invalid { .. } => None,
    }) {
        let behind = newest.since(event.occurred_at);
        assert!(behind <= 5_000, "{} is {behind} ms behind", event.event_id);
        out_of_order += u32::from(behind > 0);
        newest = newest.max(event.occurred_at);
    }
    assert!(
        out_of_order > 1_000,
        "only {out_of_order} events out of order"
    );

    let ordered = GeneratorConfig {
        disorder: Duration::ZERO,
        ..config(2_000)
    };
    let times: Vec<_> = valid_events(ordered)
        .iter()
        .map(|e| e.occurred_at)
        .collect();
    assert!(times.is_sorted(), "no disorder: strictly event-time order");
}

#[test]
fn every_action_of_the_default_model_appears() {
    let journey = JourneyConfig::default();
    let churn = ChurnConfig::default();
    let mut expected: BTreeSet<String> = journey
        .signals
        .iter()
        .flat_map(|s| s.actions.iter().cloned())
        .chain(journey.lapse.actions.iter().cloned())
        .chain(journey.revenue_actions.iter().cloned())
        .chain(churn.signals.iter().map(|s| s.action.clone()))
        .chain(churn.purchase_actions.iter().cloned())
        .chain(churn.cancel_actions.iter().cloned())
        .chain(
            journey
                .moments
                .iter()
                .flat_map(|m| m.start.iter().chain(&m.complete).cloned()),
        )
        .collect();
    expected.insert("subscription_downgraded".to_owned());

    let mut generator = Generator::new(config(2_000));
    generator.by_ref().for_each(drop);
    let stats = generator.stats();
    let missing: Vec<_> = expected
        .iter()
        .filter(|a| !stats.actions.contains_key(a.as_str()))
        .collect();
    assert!(missing.is_empty(), "never generated: {missing:?}");
}

#[test]
fn invalid_and_duplicate_shares_are_roughly_as_configured() {
    let cfg = GeneratorConfig {
        invalid_ratio: 0.02,
        duplicate_ratio: 0.01,
        ..config(20_000)
    };
    let mut generator = Generator::new(cfg);
    let (mut invalid, mut repeats) = (HashMap::new(), 0u64);
    let mut seen = HashMap::new();
    for record in generator.by_ref().take(150_000) {
        match record {
            GeneratedRecord::Invalid {
                bytes,
                expected_reason,
            } => {
                assert!(!bytes.contains(&b'\n'));
                *invalid.entry(expected_reason).or_insert(0u64) += 1;
            }
            GeneratedRecord::Valid(event) => {
                if let Some(original) = seen.insert(event.event_id.clone(), event.clone()) {
                    assert_eq!(original, event, "a redelivery is identical");
                    repeats += 1;
                }
            }
        }
    }
    let stats = generator.stats();
    assert_eq!(stats.records, 150_000);
    assert_eq!(stats.duplicates, repeats);
    assert_eq!(stats.valid + stats.invalid, stats.records);
    assert_eq!(stats.invalid, invalid.values().sum::<u64>());
    for (reason, n) in &invalid {
        assert_eq!(stats.invalid_by_reason[reason], *n);
    }
    let labels: BTreeSet<_> = invalid.keys().copied().collect();
    let all = [
        "invalid_field",
        "invalid_json",
        "missing_customer_id",
        "missing_event_id",
        "timestamp_too_old",
    ];
    assert_eq!(labels, all.into_iter().collect());

    let share = |n: u64| n as f64 / stats.records as f64;
    assert!(
        (share(stats.invalid) - 0.02).abs() < 0.003,
        "{}",
        share(stats.invalid)
    );
    assert!(
        (share(stats.duplicates) - 0.01).abs() < 0.002,
        "{}",
        share(stats.duplicates)
    );
}

#[test]
fn customer_event_times_are_plausible() {
    let cfg = config(3_000);
    let end = cfg.start.plus_ms(cfg.span.as_millis() as i64);
    let events = valid_events(cfg.clone());
    let journeys = journeys(&events);
    assert_eq!(
        journeys.len(),
        3_000,
        "every customer arrives within the span"
    );
    for (customer, journey) in &journeys {
        let number: u64 = customer[2..].parse().unwrap();
        for (i, event) in journey.iter().enumerate() {
            assert!(event.occurred_at >= cfg.start && event.occurred_at < end);
            // Per-customer event ids count up in event-time order.
            assert_eq!(event.event_id, format!("e-{number}-{}", i + 1));
        }
        let first = journey[0].occurred_at;
        let last = journey[journey.len() - 1].occurred_at;
        assert!(last.since(first) < cfg.span.as_millis() as i64);
    }
    let per_customer = journeys.len() as f64;
    let average = journeys.values().map(Vec::len).sum::<usize>() as f64 / per_customer;
    assert!(
        (5.0..=30.0).contains(&average),
        "{average} events per customer"
    );
}

#[test]
fn valid_lines_are_spec_json() {
    let cfg = config(3_000);
    let mut file = Vec::new();
    let stats = write_ndjson(&cfg, Some(20_000), &mut file).unwrap();
    assert_eq!(stats.records, 20_000);
    let channels: HashSet<_> = Channel::ALL.iter().map(|c| c.as_str()).collect();
    let lines = file.strip_suffix(b"\n").unwrap().split(|&b| b == b'\n');
    let mut with_attributes = 0;
    for (line, record) in lines.zip(Generator::new(cfg)) {
        let GeneratedRecord::Valid(event) = record else {
            continue;
        };
        let json: serde_json::Value = serde_json::from_slice(line).expect("valid JSON");
        let object = json.as_object().expect("an object");
        assert_eq!(object["event_id"], event.event_id.as_str());
        assert_eq!(object["customer_id"], event.customer_id.as_str());
        assert_eq!(
            object["occurred_at"].as_i64(),
            Some(event.occurred_at.millis())
        );
        assert!(channels.contains(object["channel"].as_str().unwrap()));
        assert_eq!(object["action"], event.action);
        let value = object.get("value").and_then(|v| v.as_f64());
        assert_eq!(value.is_some(), event.value.is_some());
        assert!(
            value
                .zip(event.value)
                .is_none_or(|(a, b)| (a - b).abs() < 1e-9)
        );
        assert_eq!(
            object.get("session_id").and_then(|v| v.as_str()),
            event.session_id.as_deref()
        );
        if let Some(attributes) = object.get("attributes") {
            let attributes = attributes.as_object().expect("a map");
            assert!(attributes.values().all(|v| v.is_string()));
            assert_eq!(attributes.len(), event.attributes.len());
            with_attributes += 1;
        }
    }
    assert!(with_attributes > 1_000, "attributes appear sometimes");
}

#[test]
fn ids_are_short_enough_to_stay_inline() {
    for event in valid_events(config(2_000)) {
        assert!(event.event_id.len() <= 24, "{}", event.event_id);
        assert!(!event.event_id.is_heap_allocated());
        assert_eq!(event.customer_id.len(), 12, "{}", event.customer_id);
        assert!(event.customer_id.starts_with("c-"));
        if let Some(session) = &event.session_id {
            assert!(session.len() <= 24 && !session.is_heap_allocated());
        }
    }
}

#[test]
fn touchpoint_borrows_the_event() {
    let event = valid_events(config(10)).swap_remove(0);
    let touchpoint = event.touchpoint();
    assert_eq!(touchpoint.event_id, event.event_id.as_str());
    assert_eq!(touchpoint.customer_id, event.customer_id.as_str());
    assert_eq!(touchpoint.occurred_at, event.occurred_at);
    assert_eq!(touchpoint.channel, event.channel);
    assert_eq!(touchpoint.action, event.action);
    assert_eq!(touchpoint.value, event.value);
    assert_eq!(
        touchpoint.session_id.as_deref(),
        event.session_id.as_deref()
    );
}

#[test]
fn journeys_show_every_persona() {
    let events = valid_events(config(4_000));
    let journeys = journeys(&events);
    let count =
        |pred: &dyn Fn(&[&GeneratedEvent]) -> bool| journeys.values().filter(|j| pred(j)).count();
    let is = |e: &&GeneratedEvent, action: &str| e.action == action;
    let purchases = |j: &[&GeneratedEvent]| j.iter().filter(|e| is(e, "purchase")).count();
    // Considerers: 3+ product views within 7 days, never buying.
    let considered = count(&|j| {
        let views: Vec<_> = j.iter().filter(|e| is(e, "product_view")).collect();
        purchases(j) == 0
            && views
                .windows(3)
                .any(|w| w[2].occurred_at.since(w[0].occurred_at) <= 7 * DAY_MS)
    });
    // Browsers: awareness only.
    let browsed = count(&|j| {
        j.iter().all(|e| {
            [
                "ad_click",
                "ad_impression",
                "social_engagement",
                "search_click",
                "page_view",
                "product_view",
                "login",
                "email_open",
                "email_click",
            ]
            .contains(&e.action)
        })
    });
    // Repeat buyers: a 2nd purchase within 180 days.
    let repeated = count(&|j| {
        let buys: Vec<_> = j.iter().filter(|e| is(e, "purchase")).collect();
        buys.windows(2)
            .any(|w| w[1].occurred_at.since(w[0].occurred_at) <= 180 * DAY_MS)
    });
    let promoters = count(&|j| {
        j.iter()
            .any(|e| is(e, "nps_response") && e.value >= Some(9.0))
    });
    let detractors = count(&|j| {
        j.iter()
            .any(|e| is(e, "nps_response") && e.value <= Some(6.0))
    });
    // Returners: back after more than 90 days of silence, or after cancelling.
    let returned = count(&|j| {
        j.windows(2)
            .any(|w| w[1].occurred_at.since(w[0].occurred_at) > 90 * DAY_MS)
    });
    let won_back = count(&|j| {
        let lapse =
            |e: &&GeneratedEvent| is(e, "subscription_cancelled") || is(e, "account_closed");
        j.iter().position(lapse).is_some_and(|i| i + 1 < j.len())
    });
    for (name, n, at_least) in [
        ("considerers", considered, 400),
        ("browsers", browsed, 800),
        ("repeat buyers", repeated, 300),
        ("promoters", promoters, 50),
        ("detractors", detractors, 50),
        ("returners", returned, 10),
        ("won back", won_back, 15),
    ] {
        assert!(n >= at_least, "{name}: {n} < {at_least}");
    }
}

#[test]
fn values_and_channels_match_the_actions() {
    for event in valid_events(config(2_000)) {
        let value = event.value;
        match event.action {
            "purchase" => assert!(value.is_some_and(|v| (9.99..=400.0).contains(&v))),
            "review_posted" => assert!(value.is_some_and(|v| (1.0..=5.0).contains(&v))),
            "nps_response" => assert!(value.is_some_and(|v| (0.0..=10.0).contains(&v))),
            "csat_response" => assert!(value.is_some_and(|v| (1.0..=5.0).contains(&v))),
            "ces_response" => assert!(value.is_some_and(|v| (1.0..=7.0).contains(&v))),
            "subscription_renewed" | "subscription_downgraded" => assert!(value.is_some()),
            _ => assert_eq!(value, None, "{}", event.action),
        }
        let channel = match event.action {
            "ad_click" | "ad_impression" => Some(Channel::Ads),
            "email_open" | "email_click" | "unsubscribe" | "nps_response" | "csat_response"
            | "ces_response" => Some(Channel::Email),
            "review_posted" => Some(Channel::Review),
            "referral_sent" => Some(Channel::Referral),
            _ => None,
        };
        assert!(
            channel.is_none_or(|c| c == event.channel),
            "{} on {:?}",
            event.action,
            event.channel
        );
        if event.action == "support_ticket" {
            assert!(matches!(
                event.channel,
                Channel::Support | Channel::Chat | Channel::Phone
            ));
        }
        let web = matches!(event.channel, Channel::Web | Channel::App);
        assert_eq!(event.session_id.is_some(), web, "{event:?}");
    }
}

#[test]
fn a_million_customers_stream_lazily() {
    let mut generator = Generator::new(config(1_000_000));
    let taken = generator.by_ref().take(200_000).count();
    assert_eq!(taken, 200_000);
    // Only customers that have arrived so far are held.
    assert!(
        generator.active_customers() < 100_000,
        "{}",
        generator.active_customers()
    );
}

#[test]
fn write_ndjson_respects_the_limit_and_counts() {
    let mut file = Vec::new();
    let stats = write_ndjson(&config(500), Some(1_234), &mut file).unwrap();
    assert_eq!(file.iter().filter(|&&b| b == b'\n').count(), 1_234);
    assert_eq!(stats.records, 1_234);

    let mut all = Vec::new();
    let stats = write_ndjson(&config(500), None, &mut all).unwrap();
    assert_eq!(
        all.iter().filter(|&&b| b == b'\n').count() as u64,
        stats.records
    );
    assert_eq!(stats.customers, 500);
    assert!(all.starts_with(&file));

    let bad = GeneratorConfig {
        invalid_ratio: 1.5,
        ..config(10)
    };
    let err = write_ndjson(&bad, None, Vec::new()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}
