//! The real `journeyd run` binary against librdkafka's in-process mock
//! cluster, for tests of what operators see: `/metrics`, the probes, and
//! Prometheus reading them.
//!
//! The mock cluster lives in the test process and listens on loopback;
//! journeyd is a child process killed when its handle drops, whatever
//! happened.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use journeyd::clock::Stopwatch;
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, ThreadedProducer};
use serde_json::json;

/// The input topic of every test config.
pub const INPUT: &str = "touchpoints";

/// The output topics of the default configuration.
pub const OUTPUTS: [&str; 5] = [
    "journey.stage-changes",
    "journey.churn-risk",
    "journey.funnel",
    "journey.dlq",
    "journey.audit",
];

/// A mock cluster with the input topic (`partitions` partitions) and every
/// output topic.
pub fn mock_cluster(partitions: i32) -> MockCluster<'static, DefaultProducerContext> {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(INPUT, partitions, 1).unwrap();
    for topic in OUTPUTS {
        cluster.create_topic(topic, 1, 1).unwrap();
    }
    cluster
}

/// A port nothing listens on right now, on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A producer to the mock cluster that sends within milliseconds.
pub fn producer(brokers: &str) -> ThreadedProducer<DefaultProducerContext> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

/// A touchpoint as JSON text.
pub fn touchpoint(id: &str, customer: &str, at_ms: i64, action: &str) -> String {
    json!({
        "event_id": id,
        "customer_id": customer,
        "occurred_at": at_ms,
        "channel": "web",
        "action": action,
    })
    .to_string()
}

/// Calls `probe` every 100 ms until it returns a value; panics naming
/// `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let clock = Stopwatch::start();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            clock.elapsed() < timeout,
            "gave up after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET path` over HTTP/1.0: the status and the body.
pub fn http_get(address: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let malformed = || std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed response");
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(malformed)?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(malformed)?;
    Ok((status, body.to_owned()))
}

/// A running `journeyd run`, killed on drop.
pub struct Journeyd {
    child: Child,
    http: SocketAddr,
}

impl Journeyd {
    /// Writes a configuration into `dir` and starts journeyd with it: the
    /// mock cluster's `brokers`, an HTTP port of its own on 127.0.0.1, and
    /// `extra` TOML (any section but `[kafka]` and `[http]`).
    pub fn start(dir: &Path, brokers: &str, extra: &str) -> Journeyd {
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let text = format!(
            r#"
[kafka]
brokers = "{brokers}"
group_id = "journeyd-under-test"

[kafka.consumer_properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"

[http]
listen = "{http}"

{extra}
"#
        );
        let config = dir.join("journeyd.toml");
        std::fs::write(&config, text).expect("write the configuration");
        let child = Command::new(env!("CARGO_BIN_EXE_journeyd"))
            .args(["run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("journeyd starts");
        Journeyd { child, http }
    }

    /// The HTTP address: `/metrics`, `/healthz`, `/readyz`.
    pub fn http(&self) -> SocketAddr {
        self.http
    }

    /// The current `/metrics` text, once it answers.
    pub fn metrics(&self) -> Option<String> {
        match http_get(self.http, "/metrics") {
            Ok((200, body)) => Some(body),
            _ => None,
        }
    }

    /// Waits until `/readyz` answers 200: partitions assigned, consuming.
    pub fn wait_ready(&mut self, timeout: Duration) {
        wait_for(timeout, "journeyd's /readyz to answer 200", || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("journeyd exited early: {status}");
            }
            matches!(http_get(self.http, "/readyz"), Ok((200, _))).then_some(())
        });
    }
}

impl Drop for Journeyd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
