//! `journeyd replay`: golden files, invalid input, Avro container files and
//! byte-identical reruns of the real binary.
//!
//! Golden files live in `tests/golden/`: `NAME.ndjson` is the input,
//! `NAME.toml` an optional configuration and `NAME.expected.ndjson` the
//! expected output. `UPDATE_GOLDEN=1 cargo test --test it replay::` rewrites
//! the expected files after an intended change; review the diff before
//! committing.

use std::path::{Path, PathBuf};
use std::process::Command;

use journeyd::codec::avro::write_container;
use journeyd::config::Config;
use journeyd::model::EventTime;
use journeyd::replay::{ReplayOptions, ReplaySummary, replay_into};
use journeyd::tools::{GeneratedRecord, Generator, GeneratorConfig};

/// 2030-01-01: a fixed "now" so that results never depend on the clock.
const NOW: EventTime = EventTime(1_893_456_000_000);

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn replay_file(input: &Path, config: &Config) -> (String, ReplaySummary) {
    let options = ReplayOptions {
        input: input.to_owned(),
        output: None,
        progress: false,
    };
    let mut out = Vec::new();
    let summary = replay_into(config, &options, NOW, &mut out).expect("replay runs");
    (String::from_utf8(out).expect("NDJSON is UTF-8"), summary)
}

fn check_golden(name: &str) -> (String, ReplaySummary) {
    let dir = golden_dir();
    let config_path = dir.join(format!("{name}.toml"));
    let config = if config_path.exists() {
        Config::load(Some(&config_path)).unwrap()
    } else {
        Config::default()
    };
    let (actual, summary) = replay_file(&dir.join(format!("{name}.ndjson")), &config);
    let expected_path = dir.join(format!("{name}.expected.ndjson"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&expected_path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            expected_path.display()
        )
    });
    if actual != expected {
        let diff = actual
            .lines()
            .zip(expected.lines())
            .position(|(a, e)| a != e);
        panic!(
            "{name}: output differs from {} (first differing line: {:?}; {} vs {} lines)",
            expected_path.display(),
            diff.map(|i| i + 1),
            actual.lines().count(),
            expected.lines().count()
        );
    }
    (actual, summary)
}

fn lines_of_type(output: &str, kind: &str) -> Vec<serde_json::Value> {
    output
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == kind)
        .collect()
}

#[test]
fn golden_journeys() {
    let (output, summary) = check_golden("journeys");
    assert_eq!(summary.stats.duplicates, 1);
    // Ana adds to her cart on day 4 at 00:00 and buys at 02:24: the cart
    // was abandoned at 01:00, and the purchase completes nothing.
    let carts = lines_of_type(&output, "moment_abandoned");
    assert_eq!(carts.len(), 1);
    let day4 = 1_767_225_600_000_i64 + 3 * 86_400_000;
    assert_eq!(
        (&carts[0]["customer_id"], &carts[0]["moment"]),
        (&serde_json::json!("ana"), &serde_json::json!("cart"))
    );
    assert_eq!(carts[0]["started_at"], day4);
    assert_eq!(carts[0]["event_time"], day4 + 3_600_000);
    assert!(lines_of_type(&output, "moment_completed").is_empty());
    let moments: Vec<_> = summary
        .moments
        .iter()
        .map(|(m, n)| (m.as_str(), *n))
        .collect();
    assert_eq!(moments, [("cart", [1, 0, 1]), ("checkout", [0, 0, 0])]);
    let ana: Vec<_> = lines_of_type(&output, "stage_changed")
        .into_iter()
        .filter(|v| v["customer_id"] == "ana")
        .map(|v| v["to_stage"].as_str().unwrap().to_owned())
        .collect();
    // Ana goes quiet after day 41; Zed's touchpoints carry the watermark past day 131.
    assert_eq!(
        ana,
        [
            "awareness",
            "consideration",
            "purchase",
            "retention",
            "advocacy",
            "lapsed"
        ]
    );
    assert!(!lines_of_type(&output, "funnel_window").is_empty());
    assert!(!lines_of_type(&output, "churn_risk_changed").is_empty());
}

#[test]
fn golden_consent_opt_in() {
    let (output, summary) = check_golden("consent");
    let moved = |id: &str| -> Vec<String> {
        lines_of_type(&output, "stage_changed")
            .into_iter()
            .filter(|v| v["customer_id"] == id)
            .map(|v| format!("{} {}", v["sequence"], v["to_stage"].as_str().unwrap()))
            .collect()
    };
    assert_eq!(
        moved("p1"),
        ["1 awareness", "2 consideration", "3 purchase"]
    );
    assert!(moved("p2").is_empty(), "no consent for analytics");
    // Erased on day 3; the purchase of day 4 waits for no one; a new
    // journey from the grant of day 5.
    assert_eq!(
        moved("p3"),
        ["1 awareness", "2 consideration", "1 purchase"]
    );
    // The withdrawal (+10 s) comes before the view (+20 s) in event time.
    assert_eq!(moved("p4"), ["1 awareness"]);
    let erased: Vec<_> = lines_of_type(&output, "customer_erased")
        .into_iter()
        .map(|v| {
            (
                v["customer_id"].as_str().unwrap().to_owned(),
                v["source"].clone(),
            )
        })
        .collect();
    assert_eq!(
        erased,
        [
            ("p3".to_owned(), "consent".into()),
            ("p4".to_owned(), "consent".into())
        ]
    );
    // p2's three, p3's purchase of day 4, p4's view.
    assert_eq!(summary.stats.without_consent, 5);
}

#[test]
fn golden_regress_rule_and_hourly_windows() {
    let (output, summary) = check_golden("regress");
    let regress = lines_of_type(&output, "stage_changed")
        .into_iter()
        .filter(|v| v["direction"] == "regress")
        .count();
    assert_eq!(regress, 1);
    // r2's events and r3's first arrive after r1's day-2 event moved the watermark.
    assert_eq!(summary.stats.late, 3);
}

#[test]
fn invalid_records_are_reported_by_reason_and_the_rest_is_processed() {
    let (output, summary) = check_golden("invalid");
    let reasons: Vec<(&str, u64)> = summary.invalid.iter().map(|(r, n)| (*r, *n)).collect();
    assert_eq!(
        reasons,
        [
            ("invalid_field", 1),
            ("invalid_json", 2),
            ("missing_customer_id", 1),
            ("missing_event_id", 1),
            ("timestamp_too_old", 1),
        ]
    );
    let invalid = lines_of_type(&output, "invalid_record");
    assert_eq!(
        invalid
            .iter()
            .map(|v| v["position"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [2, 3, 4, 5, 6, 8]
    );
    let fay: Vec<_> = lines_of_type(&output, "stage_changed")
        .into_iter()
        .filter(|v| v["customer_id"] == "fay")
        .map(|v| v["to_stage"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        fay,
        ["awareness", "consideration", "purchase"],
        "valid records around bad ones flow"
    );
}

#[test]
fn over_long_fields_are_invalid_records_and_fields_at_the_limit_pass() {
    let (output, summary) = check_golden("field-limits");
    assert_eq!(
        summary
            .invalid
            .iter()
            .map(|(r, n)| (*r, *n))
            .collect::<Vec<_>>(),
        [("field_too_long", 6)]
    );
    let details: Vec<(u64, String)> = lines_of_type(&output, "invalid_record")
        .iter()
        .map(|v| {
            assert_eq!(v["reason"], "field_too_long");
            (
                v["position"].as_u64().unwrap(),
                v["detail"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        details,
        [
            (2, "customer_id is 257 bytes long, limit 256".to_owned()),
            (3, "event_id is 257 bytes long, limit 256".to_owned()),
            (4, "action is 65 bytes long, limit 64".to_owned()),
            (5, "channel is 65 bytes long, limit 64".to_owned()),
            (
                6,
                "an attribute key is 129 bytes long, limit 128".to_owned()
            ),
            (
                7,
                "attributes[\"note\"] is 1025 bytes long, limit 1024".to_owned()
            ),
        ]
    );
    let stages: Vec<_> = lines_of_type(&output, "stage_changed")
        .iter()
        .map(|v| v["to_stage"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        stages,
        ["awareness", "consideration", "purchase"],
        "the record with every field at its limit is processed"
    );
}

#[test]
fn configured_field_limits_apply_to_replays() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    let line = |id: &str, action: &str| {
        format!(
            r#"{{"event_id":"{id}","customer_id":"ivy","occurred_at":1767225600000,"action":"{action}"}}"#
        )
    };
    let text = [line("i-1", "ad_click"), line("i-2", "pricing_view")].join("\n");
    std::fs::write(&input, text).unwrap();
    let config = Config::from_toml_str("[limits]\nmax_action_length = 8\n", []).unwrap();
    let (output, summary) = replay_file(&input, &config);
    assert_eq!(summary.invalid.get("field_too_long"), Some(&1));
    let invalid = lines_of_type(&output, "invalid_record");
    assert_eq!(invalid[0]["position"], 2);
    assert_eq!(invalid[0]["detail"], "action is 12 bytes long, limit 8");
}

#[test]
fn a_truncated_avro_container_is_reported_and_earlier_records_are_processed() {
    let dir = tempfile::tempdir().unwrap();
    let ndjson = golden_dir().join("journeys.ndjson");
    let text = std::fs::read_to_string(&ndjson).unwrap();
    let events: Vec<_> = text
        .lines()
        .map(|l| journeyd::codec::json::decode(l.as_bytes()).unwrap())
        .collect();
    let bytes = write_container(events.iter(), Vec::new()).unwrap();

    let whole = dir.path().join("whole.avro");
    std::fs::write(&whole, &bytes).unwrap();
    let (from_avro, _) = replay_file(&whole, &Config::default());
    let (from_json, _) = replay_file(&ndjson, &Config::default());
    assert_eq!(
        from_avro, from_json,
        "Avro and NDJSON inputs give the same outputs"
    );

    // A larger file spans several container blocks; cut it in the middle.
    let generated: Vec<_> = Generator::new(GeneratorConfig {
        customers: 300,
        ..GeneratorConfig::default()
    })
    .filter_map(|r| match r {
        GeneratedRecord::Valid(e) => Some(e),
        GeneratedRecord::Invalid { .. } => None,
    })
    .collect();
    let touchpoints: Vec<_> = generated.iter().map(|e| e.touchpoint()).collect();
    let bytes = write_container(touchpoints.iter(), Vec::new()).unwrap();
    let cut = dir.path().join("cut.avro");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (output, summary) = replay_file(&cut, &Config::default());
    assert_eq!(
        summary.invalid.get("truncated"),
        Some(&1),
        "{:?}",
        summary.invalid
    );
    let processed = summary.stats.events as usize;
    assert!(
        processed > touchpoints.len() / 4 && processed < touchpoints.len(),
        "{processed} of {}",
        touchpoints.len()
    );
    assert!(
        !lines_of_type(&output, "stage_changed").is_empty(),
        "records before the cut are processed"
    );
}

fn run_binary(args: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_journeyd"))
        .args(args)
        .output()
        .expect("journeyd runs");
    assert!(
        output.status.success(),
        "journeyd {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn replay_twice_is_byte_identical_and_prints_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("generated.ndjson");
    let input = input.to_str().unwrap();
    run_binary(&[
        "generate",
        "--customers",
        "500",
        "--seed",
        "7",
        "--out",
        input,
    ]);
    let outs: Vec<PathBuf> = (0..2)
        .map(|i| dir.path().join(format!("out{i}.ndjson")))
        .collect();
    let mut summaries = Vec::new();
    for out in &outs {
        let result = run_binary(&["replay", input, "--out", out.to_str().unwrap()]);
        summaries.push(String::from_utf8(result.stderr).unwrap());
    }
    let (first, second) = (
        std::fs::read(&outs[0]).unwrap(),
        std::fs::read(&outs[1]).unwrap(),
    );
    assert!(first.len() > 10_000, "a real amount of output");
    assert!(first == second, "two replays of the same file differ");
    for heading in [
        "Customers per stage",
        "Funnel (all windows)",
        "Churn bands",
        "drop-off",
        "Journey moments",
        "abandonment",
    ] {
        assert!(
            summaries[0].contains(heading),
            "summary lacks {heading:?}:\n{}",
            summaries[0]
        );
    }
}

#[test]
fn a_bad_config_fails_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[time]\nallowed_lateness = \"-5s\"\n[journey]\nentry_stage = \"nowhere\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_journeyd"))
        .args(["replay", "--config", config.to_str().unwrap()])
        .arg(golden_dir().join("journeys.ndjson"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("time.allowed_lateness"), "{stderr}");
}

#[test]
fn replay_announces_evictions_and_reports_refused_customers() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("capacity.ndjson");
    let day = |d: i64| 1_767_225_600_000 + d * 86_400_000;
    let lines = [
        ("e1", "ann", day(0)),
        ("e2", "clock", day(1)),
        ("e3", "bob", day(2)),
        ("e4", "clock", day(300)),
    ]
    .map(|(id, customer, at)| {
        format!(
            r#"{{"event_id":"{id}","customer_id":"{customer}","occurred_at":{at},"action":"page_view"}}"#
        )
    });
    std::fs::write(&input, lines.join("\n")).unwrap();
    let mut config = Config::default();
    config.limits.max_customers = 2;
    config.time.state_ttl = std::time::Duration::from_secs(100 * 86_400);

    let (output, summary) = replay_file(&input, &config);
    let refused = lines_of_type(&output, "invalid_record");
    assert_eq!(refused.len(), 1, "{output}");
    assert_eq!(refused[0]["reason"], "capacity");
    assert_eq!(summary.invalid.get("capacity"), Some(&1));
    let ann: Vec<_> = lines_of_type(&output, "customer_evicted")
        .into_iter()
        .filter(|v| v["customer_id"] == "ann")
        .collect();
    assert_eq!(ann.len(), 1, "{output}");
    assert_eq!(ann[0]["evicted_at"], day(100));
    assert_eq!(ann[0]["last_stage_sequence"], 2, "entered, then lapsed");
}

/// A late touchpoint older than every event id its customer still
/// remembers cannot be told from a redelivery: it is not applied, and it
/// goes where refused input goes, with its reason, instead of vanishing.
#[test]
fn replay_reports_late_touchpoints_it_cannot_verify_as_new() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("unverified.ndjson");
    let minute = |m: i64| 1_767_225_600_000 + m * 60_000;
    let mut events: Vec<(String, i64)> = (1..=10).map(|m| (format!("e{m}"), minute(m))).collect();
    // New, but 9 minutes older than the newest of ten remembered ones.
    events.push(("late".into(), minute(1) + 30_000));
    let lines: Vec<String> = events
        .iter()
        .map(|(id, at)| {
            format!(
                r#"{{"event_id":"{id}","customer_id":"ann","occurred_at":{at},"action":"page_view"}}"#
            )
        })
        .collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    let mut config = Config::default();
    config.limits.dedupe_per_customer = 2;

    let (output, summary) = replay_file(&input, &config);
    let refused = lines_of_type(&output, "invalid_record");
    assert_eq!(refused.len(), 1, "{output}");
    assert_eq!(refused[0]["reason"], "unverified_duplicate");
    assert_eq!(summary.invalid.get("unverified_duplicate"), Some(&1));
}
