//! What `deploy/` ships agrees with what journeyd does: the alert rules,
//! their unit tests, the dashboard and the runbook name only metrics a
//! running journeyd exports, and the shipped configuration files load.
//!
//! The metric check runs the real binary against librdkafka's mock cluster,
//! feeds it touchpoints and a bad record so that labelled series exist,
//! scrapes `/metrics`, and compares every `journeyd_*` name found anywhere
//! under `deploy/` (expressions, annotations, comments) with the exported
//! families. A histogram's `_bucket`, `_sum` and `_count` series count as
//! its own name. Recording rules are named `journeyd:...` and are not
//! metric names.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use journeyd::clock::wall_now;
use journeyd::config::Config;
use rdkafka::producer::{BaseRecord, Producer};

use common::service::{INPUT, Journeyd, mock_cluster, producer, touchpoint, wait_for};

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The `journeyd_[a-z0-9_]+` tokens of `text` that stand alone (not the
/// tail of a longer name such as `x_journeyd_y` or `job:journeyd_y:sum`).
fn metric_tokens(text: &str) -> BTreeSet<&str> {
    const PREFIX: &str = "journeyd_";
    let is_name = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
    let bytes = text.as_bytes();
    let mut tokens = BTreeSet::new();
    for (start, _) in text.match_indices(PREFIX) {
        // Part of a longer identifier or of a recording rule's name.
        let glued = start > 0 && {
            let before = bytes[start - 1];
            before.is_ascii_alphanumeric() || before == b'_' || before == b':'
        };
        if glued {
            continue;
        }
        let len = bytes[start..].iter().take_while(|&&b| is_name(b)).count();
        // A bare prefix (`grep '^journeyd_'`, `=~"journeyd_.*"`) names no metric.
        if len > PREFIX.len() {
            tokens.insert(&text[start..start + len]);
        }
    }
    tokens
}

/// Metric family names and their types, from the `# TYPE` lines.
fn families(exposition: &str) -> BTreeMap<String, String> {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| {
            let mut parts = rest.split_whitespace();
            Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
        })
        .collect()
}

/// Whether `name` is exported: a family, or a series of a histogram.
fn is_exported(name: &str, families: &BTreeMap<String, String>) -> bool {
    if families.contains_key(name) {
        return true;
    }
    ["_bucket", "_sum", "_count"].iter().any(|suffix| {
        name.strip_suffix(suffix)
            .and_then(|base| families.get(base))
            .is_some_and(|kind| kind == "histogram")
    })
}

/// Touchpoints of a few journeys, stamped now, and one undecodable record.
fn feed(brokers: &str) {
    let producer = producer(brokers);
    let now = wall_now().0;
    let events = [
        ("a1", "ana", "ad_click"),
        ("a2", "ana", "pricing_view"),
        ("a3", "ana", "purchase"),
        ("b1", "bob", "purchase"),
        ("c1", "cy", "page_view"),
    ];
    for (i, (id, customer, action)) in events.into_iter().enumerate() {
        let value = touchpoint(id, customer, now + i as i64, action);
        producer
            .send(BaseRecord::to(INPUT).key(customer).payload(&value))
            .unwrap();
    }
    producer
        .send(BaseRecord::to(INPUT).key("bad").payload("{\"event_id\":"))
        .unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// Until every touchpoint is processed and the labelled series exist.
fn scrape_when_populated(journeyd: &Journeyd) -> String {
    wait_for(
        Duration::from_secs(60),
        "/metrics with consumer lag, consumed and processed touchpoints",
        || {
            let text = journeyd.metrics()?;
            let populated = text.contains("journeyd_consumer_lag{")
                && text.contains("journeyd_events_invalid_total{reason=\"invalid_json\"} 1")
                && text.contains("journeyd_events_processed_total 5");
            populated.then_some(text)
        },
    )
}

#[test]
fn deploy_files_name_only_metrics_journeyd_exports() {
    let cluster = mock_cluster(2);
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let mut journeyd = Journeyd::start(
        dir.path(),
        &brokers,
        r#"
[time]
mode = "hybrid"
allowed_lateness = "100ms"
idle_timeout = "500ms"
funnel_window = "1s"
"#,
    );
    journeyd.wait_ready(Duration::from_secs(60));
    feed(&brokers);
    let exported = families(&scrape_when_populated(&journeyd));

    let deploy = manifest_dir().join("deploy");
    let mut unknown: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut used = BTreeSet::new();
    for file in files_under(&deploy) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let shown = file
            .strip_prefix(manifest_dir())
            .unwrap()
            .display()
            .to_string();
        for name in metric_tokens(&text) {
            used.insert(name.to_owned());
            if !is_exported(name, &exported) {
                unknown
                    .entry(name.to_owned())
                    .or_default()
                    .push(shown.clone());
            }
        }
    }
    for core in [
        "journeyd_funnel_dropoffs",
        "journeyd_consumer_lag",
        "journeyd_end_to_end_latency_seconds_bucket",
    ] {
        assert!(
            used.contains(core),
            "{core} not found under deploy/: {used:?}"
        );
    }
    assert!(
        unknown.is_empty(),
        "deploy/ names metrics journeyd does not export:\n{}\nexported: {:?}",
        unknown
            .iter()
            .map(|(name, files)| format!("  {name} in {}", files.join(", ")))
            .collect::<Vec<_>>()
            .join("\n"),
        exported.keys().collect::<Vec<_>>()
    );
}

#[test]
fn metric_tokens_are_whole_names() {
    let text = "rate(journeyd_events_consumed_total{a=\"b\"}[5m]) / journeyd:ratio:window \
                JOURNEYD_CONFIG x_journeyd_y job:journeyd_z:sum journeyd_ready==0 '^journeyd_'";
    assert_eq!(
        metric_tokens(text).into_iter().collect::<Vec<_>>(),
        ["journeyd_events_consumed_total", "journeyd_ready"]
    );
    let exposition = "# TYPE journeyd_lat histogram\n# TYPE journeyd_n counter\n";
    let kinds = families(exposition);
    assert!(is_exported("journeyd_lat_bucket", &kinds));
    assert!(is_exported("journeyd_n", &kinds));
    assert!(!is_exported("journeyd_n_count", &kinds));
}

/// The configuration files deploy/ ships load, with the environment the
/// manifests around them set.
#[test]
fn shipped_configurations_load() {
    let cases: [(&str, &[(&str, &str)]); 3] = [
        ("deploy/journeyd.toml", &[]),
        (
            "deploy/compose/journeyd.toml",
            &[("JOURNEYD__KAFKA__BROKERS", "kafka:9092")],
        ),
        (
            "deploy/k8s/journeyd.toml",
            &[("JOURNEYD__KAFKA__CLIENT_ID", "journeyd-7d9f-x2")],
        ),
    ];
    for (file, vars) in cases {
        let text = std::fs::read_to_string(manifest_dir().join(file)).unwrap();
        let env = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        let config = Config::from_toml_str(&text, env).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            config.http.listen.port(),
            9464,
            "{file}: the port the manifests expose"
        );
    }
}
