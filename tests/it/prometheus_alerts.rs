//! The shipped alert rules on a real Prometheus server scraping a real
//! journeyd: the funnel drop-off alert stays silent while the drop-off
//! ratio is steady and becomes pending when it jumps; and every query of
//! the Grafana dashboard runs on the scraped data.
//!
//! journeyd runs against librdkafka's mock cluster with its model
//! compressed to wall-clock seconds: funnel windows of 2 s and an
//! awareness -> consideration deadline of 1 s, in hybrid time with
//! touchpoints stamped now, so a window closes every 2 s. A workload
//! thread sends 5 new customers every 100 ms (100 per window); each enters
//! awareness with an `ad_click`, and those meant to convert send a
//! `pricing_view` 10 ms later. In the steady phase 1 of 5 does not convert
//! (drop-off ratio 0.2), after the jump 4 of 5 (0.8).
//!
//! Prometheus (the binary of the Debian package `prometheus`, which
//! scripts/setup installs) loads `deploy/prometheus/rules/journeyd.rules.yml`
//! as shipped, with a 1 s scrape and evaluation interval, on its own port
//! and storage directory; it is killed at the end. The rules' baseline is
//! an average over the history there is, so the seconds of this test form
//! one. The test is skipped, saying so, when no `prometheus` binary is on
//! the PATH.

use crate::common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use journeyd::clock::{Stopwatch, wall_now};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::Value;

use common::service::{
    INPUT, Journeyd, free_port, http_get, mock_cluster, producer, touchpoint, wait_for,
};

const ALERT: &str = "JourneydFunnelDropoffSpike";
const PAIR: [&str; 2] = ["awareness", "consideration"];

/// journeyd's model, compressed: see the module docs.
const JOURNEYD_CONFIG: &str = r#"
[time]
mode = "hybrid"
allowed_lateness = "200ms"
idle_timeout = "2s"
funnel_window = "2s"

[[journey.conversions]]
from = "awareness"
to = "consideration"
timeout = "1s"
"#;

/// A Prometheus server, killed on drop.
struct Prometheus {
    child: Child,
    address: SocketAddr,
    log: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second with the shipped
    /// rules; `None` when the binary is not installed.
    fn start(dir: &Path, target: SocketAddr) -> Option<Prometheus> {
        let rules = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy/prometheus/rules/journeyd.rules.yml");
        let config = dir.join("prometheus.yml");
        let text = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules:?}\n\
             scrape_configs:\n  - job_name: journeyd\n    static_configs:\n      - targets: [\"{target}\"]\n"
        );
        std::fs::write(&config, text).unwrap();
        let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = dir.join("prometheus.log");
        let spawned = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn();
        match spawned {
            Ok(child) => Some(Prometheus {
                child,
                address,
                log,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("cannot start prometheus: {e}"),
        }
    }

    /// The end of Prometheus' log, for failure messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn wait_ready(&mut self) {
        wait_for(Duration::from_secs(30), "Prometheus' /-/ready", || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("prometheus exited: {status}\n{}", self.log_tail());
            }
            matches!(http_get(self.address, "/-/ready"), Ok((200, _))).then_some(())
        });
    }

    /// `GET /api/v1/<path>`, its `data`.
    fn api(&self, path: &str) -> Value {
        let (status, body) = http_get(self.address, &format!("/api/v1/{path}"))
            .unwrap_or_else(|e| panic!("Prometheus API {path}: {e}\n{}", self.log_tail()));
        let reply: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        assert!(
            status == 200 && reply["status"] == "success",
            "Prometheus API {path}: {status} {body}"
        );
        reply["data"].clone()
    }

    /// The value of `expr`'s sample for the drop-off pair, if any.
    fn pair_value(&self, expr: &str) -> Option<f64> {
        let data = self.api(&format!("query?query={}", encode(expr)));
        data["result"].as_array()?.iter().find_map(|sample| {
            let metric = &sample["metric"];
            if metric["from"] != PAIR[0] || metric["to"] != PAIR[1] {
                return None;
            }
            sample["value"][1].as_str()?.parse().ok()
        })
    }

    /// The drop-off alerts Prometheus holds now, pending or firing.
    fn dropoff_alerts(&self) -> Vec<Value> {
        let data = self.api("alerts");
        data["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["labels"]["alertname"] == ALERT)
            .cloned()
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes a query parameter.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The workload thread: see the module docs. `jumped` switches the share
/// of customers who drop off from 1 in 5 to 4 in 5.
struct Workload {
    stop: Arc<AtomicBool>,
    jumped: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Workload {
    fn start(brokers: String) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let jumped = Arc::new(AtomicBool::new(false));
        let (s, j) = (stop.clone(), jumped.clone());
        let thread = std::thread::spawn(move || {
            let producer = producer(&brokers);
            let mut customer: u64 = 0;
            while !s.load(Ordering::Relaxed) {
                let now = wall_now().0;
                for _ in 0..CUSTOMERS_PER_TICK {
                    customer += 1;
                    // Every fifth customer drops off while steady, and is
                    // the only one to convert after the jump.
                    let fifth = customer.is_multiple_of(5);
                    let converts = fifth == j.load(Ordering::Relaxed);
                    send_customer(&producer, customer, now, converts);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            producer.flush(Duration::from_secs(5)).unwrap();
        });
        Workload {
            stop,
            jumped,
            thread: Some(thread),
        }
    }

    fn jump(&self) {
        self.jumped.store(true, Ordering::Relaxed);
    }
}

/// New customers sent every 100 ms.
const CUSTOMERS_PER_TICK: u64 = 5;

/// Customer `n` enters awareness at `now` and, if `converts`, reaches
/// consideration 10 ms later.
fn send_customer(
    producer: &ThreadedProducer<DefaultProducerContext>,
    n: u64,
    now: i64,
    converts: bool,
) {
    let id = format!("c{n}");
    let send = |action: &str, at: i64| {
        let value = touchpoint(&format!("{id}-{action}"), &id, at, action);
        producer
            .send(BaseRecord::to(INPUT).key(&id).payload(&value))
            .unwrap_or_else(|(e, _)| panic!("produce: {e}"));
    };
    send("ad_click", now);
    if converts {
        send("pricing_view", now + 10);
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

const WINDOW_RATIO: &str = "journeyd:funnel_dropoff_ratio:window";
const BASELINE: &str = "journeyd:funnel_dropoff_ratio:baseline_1h";

#[test]
fn dropoff_alert_is_silent_while_steady_and_pending_on_a_jump() {
    let cluster = mock_cluster(1);
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let mut journeyd = Journeyd::start(dir.path(), &brokers, JOURNEYD_CONFIG);
    let Some(mut prometheus) = Prometheus::start(dir.path(), journeyd.http()) else {
        eprintln!(
            "SKIPPED: no `prometheus` binary on the PATH (Debian package `prometheus`; \
             scripts/setup installs it), so the alert rules were not run on a real server"
        );
        return;
    };
    journeyd.wait_ready(Duration::from_secs(60));
    prometheus.wait_ready();
    let workload = Workload::start(brokers.clone());

    warm_up(&prometheus);
    assert_silent_while_steady(&prometheus, Duration::from_secs(16));

    workload.jump();
    // The first window after the jump may still hold some steady-state
    // outcomes; the alert's value follows the windows that come after it.
    let alert = wait_for(
        Duration::from_secs(30),
        "the drop-off alert after the jump, at the jumped ratio",
        || {
            prometheus
                .dropoff_alerts()
                .into_iter()
                .find(|alert| alert_value(alert) > 0.5)
        },
    );
    drop(workload);
    assert_eq!(
        alert["state"], "pending",
        "pending for its 5-minute `for:`: {alert:#}"
    );
    assert_eq!(alert["labels"]["from"], PAIR[0], "{alert:#}");
    assert_eq!(alert["labels"]["to"], PAIR[1], "{alert:#}");
    assert_eq!(alert["labels"]["severity"], "warning", "{alert:#}");

    dashboard_queries_answer(&prometheus);
}

/// The value of an alert from the alerts API: the drop-off ratio.
fn alert_value(alert: &Value) -> f64 {
    alert["value"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The first windows after the start hold conversions but not yet the
/// drop-offs of the customers who entered just before them (their deadline
/// is a second later), so their ratio is low: a start-up transient, not the
/// steady state. Waits for a steady window, then two more.
fn warm_up(prometheus: &Prometheus) {
    wait_for(
        Duration::from_secs(60),
        "a steady drop-off ratio recorded by Prometheus",
        || {
            let ratio = prometheus.pair_value(WINDOW_RATIO)?;
            (0.15..=0.25).contains(&ratio).then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(4));
}

/// For `period`, every second: no drop-off alert, pending or firing, while
/// the recorded window ratio stays at its steady 0.2; then a baseline there.
fn assert_silent_while_steady(prometheus: &Prometheus, period: Duration) {
    let steady = Stopwatch::start();
    let mut ratios = Vec::new();
    while steady.elapsed() < period {
        let alerts = prometheus.dropoff_alerts();
        assert!(
            alerts.is_empty(),
            "{ALERT} active while the ratio is steady (ratios so far {ratios:?}): {alerts:#?}"
        );
        ratios.extend(prometheus.pair_value(WINDOW_RATIO));
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(
        ratios.len() >= 10 && ratios.iter().all(|r| (0.1..=0.3).contains(r)),
        "the steady part was steady: {ratios:?}"
    );
    let baseline = prometheus
        .pair_value(BASELINE)
        .expect("a baseline after the steady part");
    assert!((0.1..=0.3).contains(&baseline), "baseline {baseline}");
}

/// Every query of the Grafana dashboard, with its variables set, is valid
/// PromQL and, unless it filters (`> 0`), finds series in what Prometheus
/// scraped from this journeyd.
fn dashboard_queries_answer(prometheus: &Prometheus) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/dashboards/journeyd.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| panel["targets"].as_array().into_iter().flatten())
        .filter_map(|target| target["expr"].as_str())
        .collect();
    assert!(exprs.len() > 20, "dashboard queries: {exprs:?}");
    for expr in exprs {
        let query = expr
            .replace("$__rate_interval", "5s")
            .replace("$job", "journeyd")
            .replace("$instance", ".*");
        let data = prometheus.api(&format!("query?query={}", encode(&query)));
        let found = data["result"].as_array().map_or(0, Vec::len);
        assert!(
            found > 0 || expr.contains("> 0"),
            "the dashboard query finds nothing: {query}"
        );
    }
}
