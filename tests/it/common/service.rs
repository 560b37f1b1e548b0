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
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use std::collections::BTreeMap;

use journeyd::clock::Stopwatch;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

/// The input topic of every test config.
pub const INPUT: &str = "touchpoints";

/// The consumer group of every journeyd started here.
pub const GROUP: &str = "journeyd-under-test";

/// The output topics of the default configuration.
pub const OUTPUTS: [&str; 6] = [
    "journey.stage-changes",
    "journey.churn-risk",
    "journey.funnel",
    "journey.moments",
    "journey.dlq",
    "journey.audit",
];

/// The state changelog topic of the default configuration.
pub const CHANGELOG: &str = "journeyd.state-changelog";

/// The erasure topic of the default configuration, co-partitioned with
/// the input.
pub const ERASURE: &str = "journey.erasure";

/// A mock cluster with the input topic (`partitions` partitions), the
/// changelog and the erasure topic co-partitioned with it, and every output
/// topic. (The mock cluster does not implement topic creation through the
/// admin API, so journeyd cannot create the changelog itself here.)
pub fn mock_cluster(partitions: i32) -> MockCluster<'static, DefaultProducerContext> {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(INPUT, partitions, 1).unwrap();
    cluster.create_topic(CHANGELOG, partitions, 1).unwrap();
    cluster.create_topic(ERASURE, partitions, 1).unwrap();
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

/// One record read back from a topic.
#[derive(Clone, Debug)]
pub struct Consumed {
    pub key: Option<String>,
    pub value: Vec<u8>,
    pub headers: BTreeMap<String, String>,
    pub partition: i32,
    /// The Kafka timestamp (ms), if any.
    pub timestamp: Option<i64>,
}

impl Consumed {
    /// The value as JSON (`null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.value).unwrap_or(serde_json::Value::Null)
    }
}

/// A consumer that reads what it is assigned and never commits.
fn reader(brokers: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "journeyd-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader")
}

/// Runs `journeyd run --config config`, which must fail at start-up;
/// returns what it wrote to stderr. A journeyd still running after a
/// minute has started: it is killed and the test fails.
pub fn start_up_error(config: &Path) -> String {
    let stderr = tempfile::NamedTempFile::new().expect("a file for stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_journeyd"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(stderr.reopen().expect("stderr file"))
        .spawn()
        .expect("journeyd runs");
    let clock = Stopwatch::start();
    let status = loop {
        if let Some(status) = child.try_wait().expect("journeyd's status") {
            break status;
        }
        if clock.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "journeyd started (still running after a minute):\n{}",
                std::fs::read_to_string(stderr.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(stderr.path()).expect("stderr");
    assert!(!status.success(), "journeyd exited 0:\n{text}");
    text
}

/// Everything on `topic` up to its current end, read from every partition
/// without a consumer group; waits up to `timeout` for at least `at_least`
/// records to be there.
pub fn consume(brokers: &str, topic: &str, at_least: usize, timeout: Duration) -> Vec<Consumed> {
    let consumer = reader(brokers);
    let clock = Stopwatch::start();
    loop {
        let records = read_to_end(&consumer, topic);
        if records.len() >= at_least || clock.elapsed() >= timeout {
            return records;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads every partition of `topic` from the beginning to its high
/// watermark as of now.
fn read_to_end(consumer: &BaseConsumer, topic: &str) -> Vec<Consumed> {
    let timeout = Duration::from_secs(5);
    let Ok(metadata) = consumer.fetch_metadata(Some(topic), timeout) else {
        return Vec::new();
    };
    let mut ends = BTreeMap::new();
    let mut list = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let id = partition.id();
        if let Ok((_, high)) = consumer.fetch_watermarks(topic, id, timeout)
            && high > 0
        {
            ends.insert(id, high);
            let _ = list.add_partition_offset(topic, id, Offset::Beginning);
        }
    }
    if consumer.assign(&list).is_err() {
        return Vec::new();
    }
    let clock = Stopwatch::start();
    let mut records = Vec::new();
    while !ends.is_empty() && clock.elapsed() < timeout {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        if ends
            .get(&m.partition())
            .is_some_and(|&end| m.offset() + 1 >= end)
        {
            ends.remove(&m.partition());
        }
        records.push(consumed(&m));
    }
    records
}

fn consumed(m: &rdkafka::message::BorrowedMessage<'_>) -> Consumed {
    Consumed {
        key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
        value: m.payload().unwrap_or_default().to_vec(),
        headers: m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        let value = h.value.unwrap_or_default();
                        (
                            h.key.to_owned(),
                            String::from_utf8_lossy(value).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        partition: m.partition(),
        timestamp: m.timestamp().to_millis(),
    }
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
    http_request(address, "GET", path, None)
}

/// `method path` over HTTP/1.0, with a bearer `token` if given: the status
/// and the body.
pub fn http_request(
    address: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    http_request_with(address, method, path, &auth)
}

/// `method path` over HTTP/1.0 with `headers` (each line ending in
/// `\r\n`): the status and the body.
pub fn http_request_with(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {address}\r\n{headers}Connection: close\r\n\r\n"
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

/// The configuration of a journeyd under test: the mock cluster's
/// `brokers`, the test group, quick group timeouts, HTTP on `http`, and
/// more tables and keys.
pub fn config_text(
    brokers: &str,
    http: SocketAddr,
    kafka_tables: &str,
    http_keys: &str,
    extra: &str,
) -> String {
    format!(
        r#"
[kafka]
brokers = "{brokers}"
group_id = "{GROUP}"

[kafka.consumer_properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"

{kafka_tables}

[http]
listen = "{http}"
{http_keys}

{extra}
"#
    )
}

/// A running `journeyd run`, killed on drop.
pub struct Journeyd {
    child: Child,
    http: SocketAddr,
}

/// How to start journeyd beyond the defaults of [`Journeyd::start`].
#[derive(Clone, Copy, Debug)]
pub struct Launch<'a> {
    /// TOML sections other than `[kafka]` and `[http]`.
    pub extra: &'a str,
    /// Tables under `[kafka]` besides `consumer_properties`, e.g.
    /// `[kafka.properties]`.
    pub kafka_tables: &'a str,
    /// Keys of `[http]` besides `listen`.
    pub http: &'a str,
    /// `RUST_LOG`, unless `JOURNEYD_TEST_LOG` is set (e.g.
    /// `JOURNEYD_TEST_LOG=journeyd=debug` to follow a failing test).
    pub log_level: &'a str,
    /// Where stderr goes; inherited when absent.
    pub log_file: Option<&'a Path>,
}

impl Default for Launch<'_> {
    fn default() -> Self {
        Launch {
            extra: "",
            kafka_tables: "",
            http: "",
            log_level: "warn",
            log_file: None,
        }
    }
}

impl Journeyd {
    /// Writes a configuration into `dir` and starts journeyd with it: the
    /// mock cluster's `brokers`, an HTTP port of its own on 127.0.0.1, and
    /// `extra` TOML (any section but `[kafka]` and `[http]`).
    pub fn start(dir: &Path, brokers: &str, extra: &str) -> Journeyd {
        Journeyd::launch(
            dir,
            brokers,
            Launch {
                extra,
                ..Launch::default()
            },
        )
    }

    /// [`Journeyd::start`] with more control over the configuration and
    /// the log.
    pub fn launch(dir: &Path, brokers: &str, launch: Launch<'_>) -> Journeyd {
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let Launch {
            extra,
            kafka_tables,
            http: http_keys,
            log_level,
            log_file,
        } = launch;
        let text = config_text(brokers, http, kafka_tables, http_keys, extra);
        let config = dir.join("journeyd.toml");
        std::fs::write(&config, text).expect("write the configuration");
        let stderr = match log_file {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("create the log file")),
            None => Stdio::inherit(),
        };
        let child = Command::new(env!("CARGO_BIN_EXE_journeyd"))
            .args(["run", "--config"])
            .arg(&config)
            .env(
                "RUST_LOG",
                std::env::var("JOURNEYD_TEST_LOG").unwrap_or_else(|_| log_level.to_owned()),
            )
            .env("JOURNEYD_LOG_FORMAT", "text")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("journeyd starts");
        Journeyd { child, http }
    }

    /// Asks journeyd to stop (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        wait_for(timeout, "journeyd to exit after SIGTERM", || {
            self.child.try_wait().ok().flatten()
        })
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

    /// `GET path` on journeyd's HTTP port: the status and the body (status
    /// 0 when it does not answer).
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.http, path).unwrap_or((0, String::new()))
    }

    /// `GET path` answered by this instance alone: marked as forwarded
    /// already, so it is not forwarded to the owner of a customer it does
    /// not hold (503 `not_owner` instead).
    pub fn get_here(&self, path: &str) -> (u16, String) {
        let headers = "Journeyd-Forwarded-From: test\r\n";
        http_request_with(self.http, "GET", path, headers).unwrap_or((0, String::new()))
    }

    /// Kills journeyd with SIGKILL (`kill -9`) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for journeyd to exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "SIGTERM sent");
        wait_for(timeout, "journeyd to exit after SIGTERM", || {
            self.child.try_wait().ok().flatten()
        })
    }

    /// Panics if journeyd has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("journeyd exited early: {status}");
        }
    }

    /// The sum of every sample of metric `name` (all label sets).
    pub fn metric(&self, name: &str) -> f64 {
        let text = self.metrics().unwrap_or_default();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .filter(|(series, _)| series.split('{').next() == Some(name))
            .filter_map(|(_, value)| value.parse::<f64>().ok())
            .sum()
    }

    /// Waits until `partitions` partitions are assigned, their state
    /// restored and `/readyz` answers 200.
    pub fn wait_assigned(&mut self, partitions: usize, timeout: Duration) {
        wait_for(timeout, "partitions assigned and restored", || {
            self.assert_running();
            let (status, body) = self.get("/readyz");
            let ready: serde_json::Value = serde_json::from_str(&body).ok()?;
            let assigned = ready["assigned_partitions"].as_u64()?;
            (status == 200 && assigned == partitions as u64).then_some(())
        });
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

/// One record read back from a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    /// `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

/// Every record of `topic` (`partitions` partitions) up to its end
/// offsets when called.
pub fn read_all(brokers: &str, topic: &str, partitions: i32) -> Vec<Record> {
    let consumer = reader(brokers);
    let timeout = Duration::from_secs(10);
    let mut list = TopicPartitionList::new();
    let mut ends = Vec::new();
    for p in 0..partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, timeout).unwrap();
        if high > low {
            list.add_partition_offset(topic, p, Offset::Offset(low))
                .unwrap();
            ends.push((p, high));
        }
    }
    consumer.assign(&list).unwrap();
    let mut records = Vec::new();
    let clock = Stopwatch::start();
    let done = |records: &[Record]| {
        ends.iter().all(|&(p, end)| {
            records
                .iter()
                .any(|r| r.partition == p && r.offset + 1 >= end)
        })
    };
    while !done(&records) {
        assert!(clock.elapsed() < timeout, "reading {topic} took too long");
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            records.push(Record {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
            });
        }
    }
    records
}

/// The group's committed offset per partition of `topic` (`-1`: none).
pub fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    committed_with_metadata(brokers, group, topic, partitions)
        .into_iter()
        .map(|(offset, _)| offset)
        .collect()
}

/// The group's committed offset (`-1`: none) and commit metadata per
/// partition of `topic`.
pub fn committed_with_metadata(
    brokers: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Vec<(i64, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .expect("offset reader");
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(5))
        .expect("committed offsets");
    committed
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(o) => o,
                _ => -1,
            };
            (offset, e.metadata().to_owned())
        })
        .collect()
}
