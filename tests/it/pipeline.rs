//! `journeyd run` against librdkafka's in-process mock cluster: derived
//! events on every topic, dead letters with their headers, commits only
//! behind acknowledged outputs, a crash (kill -9) that reprocesses instead of
//! skipping, SIGTERM that drains and commits, and Confluent-framed input and
//! Avro outputs through a (fake) schema registry, refusals at
//! `limits.max_customers` and evictions announced on the audit topic.
//!
//! The mock cluster lives in the test process and listens on loopback; the
//! journeyd under test is the real binary in a child process, so a crash is
//! a real `kill -9`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::registry as fake_registry;
use crate::common::service;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value as AvroValue;
use journeyd::clock::Stopwatch;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};

use fake_registry::FakeRegistry;
use service::{config_text, free_port, start_up_error};

const INPUT: &str = "touchpoints";
const PARTITIONS: i32 = 3;
const GROUP: &str = "journeyd-under-test";
/// 2026-01-01T00:00:00Z.
const BASE: i64 = 1_767_225_600_000;
const DAY: i64 = 86_400_000;

/// Kills the child on drop, whatever happened.
struct Journeyd(Child);

impl Drop for Journeyd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Journeyd {
    fn start(config: &Path) -> Journeyd {
        let child = Command::new(env!("CARGO_BIN_EXE_journeyd"))
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("journeyd starts");
        Journeyd(child)
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let clock = Stopwatch::start();
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                clock.elapsed() < timeout,
                "journeyd did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn cluster() -> MockCluster<'static, DefaultProducerContext> {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(INPUT, PARTITIONS, 1).unwrap();
    // The mock cluster does not create topics through the admin API.
    cluster
        .create_topic("journeyd.state-changelog", PARTITIONS, 1)
        .unwrap();
    // Co-partitioned with the input, as erasure requests must be.
    cluster
        .create_topic("journey.erasure", PARTITIONS, 1)
        .unwrap();
    for topic in [
        "journey.stage-changes",
        "journey.churn-risk",
        "journey.funnel",
        "journey.moments",
        "journey.dlq",
        "journey.audit",
    ] {
        cluster.create_topic(topic, 1, 1).unwrap();
    }
    cluster
}

fn write_config(dir: &Path, brokers: &str, commit_interval: &str) -> PathBuf {
    write_config_with(dir, brokers, commit_interval, "")
}

/// A config file for the mock cluster, with `extra` TOML sections.
fn write_config_with(dir: &Path, brokers: &str, commit_interval: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("journeyd-{commit_interval}.toml"));
    let settings = format!(
        r#"
# Hybrid, the service's default: assigned partitions hold the watermark
# back until they have data, so the order in which partitions are read does
# not matter. (In event mode, meant for replays, only partitions that have
# had data count.)
[time]
mode = "hybrid"

[runtime]
commit_interval = "{commit_interval}"
shutdown_timeout = "10s"

[limits]
max_action_length = 40
{extra}
"#
    );
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let text = config_text(brokers, http, "", "", &settings);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    path
}

fn touchpoint(id: &str, customer: &str, at: i64, action: &str) -> Value {
    json!({"event_id": id, "customer_id": customer, "occurred_at": at, "channel": "web", "action": action})
}

/// The input: two journeys and one invalid record of each kind. Keys pick
/// the partitions.
fn input() -> Vec<(String, Vec<u8>)> {
    let valid = [
        touchpoint("a1", "ana", BASE, "ad_click"),
        touchpoint("a2", "ana", BASE + DAY, "pricing_view"),
        touchpoint("b1", "bob", BASE + DAY, "purchase"),
        touchpoint("a3", "ana", BASE + 2 * DAY, "purchase"),
    ];
    let future = BASE + 100_000 * DAY;
    // Longer than the configured limits.max_action_length (40), not the default (64).
    let long_action = "a".repeat(41);
    let invalid: [(&str, Vec<u8>); 7] = [
        ("bad", b"{\"event_id\": \"x\", \"customer_id\":".to_vec()),
        ("bad", json!({"customer_id": "bad", "occurred_at": BASE, "action": "page_view"}).to_string().into_bytes()),
        ("", touchpoint("x2", "", BASE, "page_view").to_string().into_bytes()),
        ("bad", touchpoint("x3", "bad", 946_684_799_000, "page_view").to_string().into_bytes()),
        ("bad", touchpoint("x4", "bad", future, "page_view").to_string().into_bytes()),
        ("bad", br#"{"event_id":"x5","customer_id":"bad","occurred_at":"someday","action":"page_view"}"#.to_vec()),
        ("bad", touchpoint("x6", "bad", BASE, &long_action).to_string().into_bytes()),
    ];
    let mut records: Vec<(String, Vec<u8>)> = valid
        .iter()
        .map(|v| {
            (
                v["customer_id"].as_str().unwrap().to_owned(),
                v.to_string().into_bytes(),
            )
        })
        .collect();
    records.extend(invalid.into_iter().map(|(k, v)| (k.to_owned(), v)));
    records
}

/// One "clock" touchpoint a month later on every partition: the watermark
/// is the minimum over partitions, so each must move on for the journeys'
/// last touchpoints to be processed. The clock touchpoints themselves stay
/// buffered (and uncommitted): nothing passes them.
fn clocks(brokers: &str) {
    clocks_encoded(brokers, &|v| v.to_string().into_bytes());
}

/// [`clocks`], each touchpoint encoded by `encode`.
fn clocks_encoded(brokers: &str, encode: &dyn Fn(&Value) -> Vec<u8>) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    for p in 0..PARTITIONS {
        let customer = format!("clock-{p}");
        let value = touchpoint(
            &format!("clock-{p}"),
            &customer,
            BASE + 30 * DAY,
            "page_view",
        );
        let value = encode(&value);
        producer
            .send(
                BaseRecord::to(INPUT)
                    .partition(p)
                    .key(&customer)
                    .payload(&value),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

fn produce(brokers: &str, records: &[(String, Vec<u8>)]) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    for (key, value) in records {
        producer
            .send(BaseRecord::to(INPUT).key(key.as_bytes()).payload(value))
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// Distinct group ids for readers.
static READERS: AtomicUsize = AtomicUsize::new(0);

/// Everything on `topic` so far, as (JSON value, headers), read with a
/// fresh group.
fn read_topic(
    brokers: &str,
    topic: &str,
    at_least: usize,
    timeout: Duration,
) -> Vec<(Value, BTreeMap<String, String>)> {
    read_raw(brokers, topic, at_least, timeout)
        .into_iter()
        .map(|(bytes, headers)| {
            let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            (value, headers)
        })
        .collect()
}

/// Everything on `topic` so far, as (value bytes, headers), read with a
/// fresh group.
fn read_raw(
    brokers: &str,
    topic: &str,
    at_least: usize,
    timeout: Duration,
) -> Vec<(Vec<u8>, BTreeMap<String, String>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("reader-{topic}-{}", READERS.fetch_add(1, Ordering::Relaxed)),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let clock = Stopwatch::start();
    let mut records = Vec::new();
    while records.len() < at_least && clock.elapsed() < timeout {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let value = m.payload().unwrap_or_default().to_vec();
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            (
                                h.key.to_owned(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            records.push((value, headers));
        }
    }
    records
}

/// The group's committed offset per input partition (`-1`: none).
fn committed(brokers: &str) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", GROUP)
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition(INPUT, p);
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(5))
        .unwrap();
    committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => -1,
        })
        .collect()
}

fn end_offsets(brokers: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    (0..PARTITIONS)
        .map(|p| {
            consumer
                .fetch_watermarks(INPUT, p, Duration::from_secs(5))
                .unwrap()
                .1
        })
        .sum()
}

/// `(customer, sequence, to_stage)` of every stage change, sorted.
fn stage_changes(
    records: &[(Value, BTreeMap<String, String>)],
) -> Vec<(String, u64, String, String)> {
    let mut changes: Vec<_> = records
        .iter()
        .map(|(v, _)| {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            (
                s("customer_id"),
                v["sequence"].as_u64().unwrap(),
                s("to_stage"),
                s("trigger_event_id"),
            )
        })
        .collect();
    changes.sort();
    changes
}

#[test]
fn events_flow_to_every_topic_bad_input_to_the_dlq_and_sigterm_commits() {
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    produce(&brokers, &input());
    clocks(&brokers);
    let mut journeyd = Journeyd::start(&write_config(dir.path(), &brokers, "200ms"));

    let changes = read_topic(
        &brokers,
        "journey.stage-changes",
        5,
        Duration::from_secs(30),
    );
    let want = [
        ("ana", 1, "awareness", "a1"),
        ("ana", 2, "consideration", "a2"),
        ("ana", 3, "purchase", "a3"),
        ("bob", 1, "purchase", "b1"),
    ];
    let got = stage_changes(&changes);
    for (customer, seq, stage, trigger) in want {
        assert!(
            got.contains(&(customer.into(), seq, stage.into(), trigger.into())),
            "missing {customer} #{seq} -> {stage} in {got:?}"
        );
    }
    let churn = read_topic(&brokers, "journey.churn-risk", 2, Duration::from_secs(10));
    assert!(
        churn
            .iter()
            .any(|(v, _)| v["customer_id"] == "bob" && v["band"] == "medium"),
        "{churn:?}"
    );

    let windows = read_topic(&brokers, "journey.funnel", 1, Duration::from_secs(10));
    let first = &windows.first().expect("a funnel window").0;
    assert_eq!(first["type"], "funnel_window");
    assert_eq!(
        first["window_start"].as_i64(),
        Some(BASE),
        "ana's first touchpoint opens the first window"
    );
    let awareness = first["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["stage"] == "awareness")
        .unwrap();
    assert_eq!(awareness["count"], 1);
    assert_eq!(
        first["pairs"].as_array().unwrap().len(),
        4,
        "one row per conversion pair"
    );

    let dead = read_topic(&brokers, "journey.dlq", 7, Duration::from_secs(10));
    let mut reasons: Vec<&str> = dead
        .iter()
        .map(|(_, h)| h["journeyd.error.reason"].as_str())
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "field_too_long",
            "invalid_field",
            "invalid_json",
            "missing_customer_id",
            "missing_event_id",
            "timestamp_in_future",
            "timestamp_too_old"
        ]
    );
    let too_long = dead
        .iter()
        .find(|(_, h)| h["journeyd.error.reason"] == "field_too_long")
        .unwrap();
    assert_eq!(
        too_long.1["journeyd.error.detail"],
        "action is 41 bytes long, limit 40"
    );
    for (_, headers) in &dead {
        assert_eq!(headers["journeyd.source.topic"], INPUT);
        assert!(headers["journeyd.source.offset"].parse::<i64>().is_ok());
        assert!(headers["journeyd.source.partition"].parse::<i32>().is_ok());
    }

    journeyd.signal("-TERM");
    assert!(
        journeyd.wait_exit(Duration::from_secs(30)).success(),
        "SIGTERM exits 0"
    );
    // Everything is committed but the clock touchpoints, which the watermark
    // has not passed: they are unprocessed and will be read again.
    assert_eq!(
        committed(&brokers).iter().sum::<i64>(),
        end_offsets(&brokers) - i64::from(PARTITIONS)
    );
}

#[test]
fn new_customers_past_max_customers_go_to_the_dlq_as_capacity() {
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<(String, Vec<u8>)> = (0..5000)
        .map(|i| {
            let customer = format!("c{i}");
            let value = touchpoint(&format!("e{i}"), &customer, BASE + i, "page_view");
            (customer, value.to_string().into_bytes())
        })
        .collect();
    produce(&brokers, &records);
    let config = write_config_with(dir.path(), &brokers, "200ms", "max_customers = 1000");
    let mut journeyd = Journeyd::start(&config);

    let dead = read_raw(&brokers, "journey.dlq", 4000, Duration::from_secs(60));
    assert_eq!(dead.len(), 4000, "exactly the excess is refused");
    let sent: BTreeMap<&[u8], &str> = records
        .iter()
        .map(|(k, v)| (v.as_slice(), k.as_str()))
        .collect();
    let mut refused = std::collections::BTreeSet::new();
    for (value, headers) in &dead {
        assert_eq!(headers["journeyd.error.reason"], "capacity");
        assert_eq!(headers["journeyd.source.topic"], INPUT);
        let customer = sent.get(value.as_slice()).expect("the original bytes");
        assert!(refused.insert(*customer), "{customer} refused twice");
    }
    journeyd.signal("-TERM");
    assert!(journeyd.wait_exit(Duration::from_secs(30)).success());
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    let (_, end) = consumer
        .fetch_watermarks("journey.dlq", 0, Duration::from_secs(5))
        .unwrap();
    assert_eq!(end, 4000, "nothing more");
}

#[test]
fn an_eviction_is_announced_on_the_audit_topic() {
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let ann = touchpoint("a1", "ann", BASE, "ad_click");
    produce(
        &brokers,
        &[("ann".to_owned(), ann.to_string().into_bytes())],
    );
    clocks(&brokers);
    let config = write_config(dir.path(), &brokers, "200ms");
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "mode = \"hybrid\"",
        "mode = \"hybrid\"\nlapse_after = \"1d\"\nstate_ttl = \"2d\"",
        1,
    );
    std::fs::write(&config, text).unwrap();
    let mut journeyd = Journeyd::start(&config);

    let audit = read_topic(&brokers, "journey.audit", 1, Duration::from_secs(30));
    let evicted: Vec<_> = audit
        .iter()
        .filter(|(v, _)| v["customer_id"] == "ann")
        .collect();
    assert_eq!(evicted.len(), 1, "{audit:?}");
    let e = &evicted[0].0;
    assert_eq!(e["type"], "customer_evicted");
    assert_eq!(e["last_seen"], BASE);
    assert_eq!(e["evicted_at"], BASE + 2 * DAY);
    assert_eq!(e["last_stage_sequence"], 2, "entered, then lapsed");
    journeyd.signal("-TERM");
    assert!(journeyd.wait_exit(Duration::from_secs(30)).success());
}

#[test]
fn a_consent_withdrawal_is_confirmed_on_the_audit_topic() {
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let consent = |id: &str, at: i64, action: &str| {
        let mut v = touchpoint(id, "ann", at, action);
        v["attributes"] = json!({"purpose": "analytics"});
        v
    };
    let records = [
        touchpoint("c0", "ann", BASE - DAY, "purchase"),
        consent("c1", BASE, "consent_granted"),
        touchpoint("c2", "ann", BASE + DAY, "ad_click"),
        consent("c3", BASE + 2 * DAY, "consent_withdrawn"),
        touchpoint("c4", "ann", BASE + 3 * DAY, "purchase"),
    ];
    let records: Vec<_> = (records.iter())
        .map(|v| ("ann".to_owned(), v.to_string().into_bytes()))
        .collect();
    produce(&brokers, &records);
    clocks(&brokers);
    let extra = "[consent]\nmode = \"opt_in\"\n";
    let mut journeyd = Journeyd::start(&write_config_with(dir.path(), &brokers, "200ms", extra));

    let audit = read_topic(&brokers, "journey.audit", 1, Duration::from_secs(30));
    let erased = &audit[0].0;
    assert_eq!(erased["type"], "customer_erased", "{audit:?}");
    assert_eq!(erased["customer_id"], "ann");
    assert_eq!(erased["source"], "consent");
    assert_eq!(erased["requested_at"], BASE + 2 * DAY);
    assert_eq!(erased["state_found"], true);
    let stages = read_topic(
        &brokers,
        "journey.stage-changes",
        4,
        Duration::from_secs(30),
    );
    let ann: Vec<_> = (stages.iter())
        .filter(|(v, _)| v["customer_id"] == "ann")
        .map(|(v, _)| v["trigger_event_id"].clone())
        .collect();
    // Only the ad click had consent: not the purchase before the grant,
    // nor the one after the withdrawal.
    assert_eq!(ann, [json!("c2")]);
    journeyd.signal("-TERM");
    assert!(journeyd.wait_exit(Duration::from_secs(30)).success());
}

#[test]
fn a_crash_between_output_and_commit_reprocesses_and_never_skips() {
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    produce(&brokers, &input());
    clocks(&brokers);

    // Commits are due only after an hour: a kill -9 leaves outputs
    // delivered and nothing committed.
    let mut first = Journeyd::start(&write_config(dir.path(), &brokers, "1h"));
    let before = read_topic(
        &brokers,
        "journey.stage-changes",
        5,
        Duration::from_secs(30),
    );
    first.signal("-KILL");
    first.wait_exit(Duration::from_secs(10));
    assert!(
        committed(&brokers).iter().all(|&o| o < 0),
        "nothing committed before the crash"
    );

    let mut second = Journeyd::start(&write_config(dir.path(), &brokers, "200ms"));
    let after = read_topic(
        &brokers,
        "journey.stage-changes",
        2 * before.len(),
        Duration::from_secs(40),
    );
    second.signal("-TERM");
    assert!(second.wait_exit(Duration::from_secs(30)).success());

    // Every change is delivered again, with the same sequence and trigger.
    let (before, after) = (stage_changes(&before), stage_changes(&after));
    for change in &before {
        assert_eq!(
            after.iter().filter(|c| *c == change).count(),
            2,
            "{change:?} redelivered once"
        );
    }
    assert_eq!(after.len(), 2 * before.len(), "nothing new, nothing lost");
    assert_eq!(
        committed(&brokers).iter().sum::<i64>(),
        end_offsets(&brokers) - i64::from(PARTITIONS)
    );
}

#[test]
fn an_offset_commit_that_failed_unseen_is_sent_again() {
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    produce(&brokers, &input());
    clocks(&brokers);
    // The first commits fail. librdkafka reports the outcome of an
    // asynchronous commit to no one (no commit callback is set), so
    // nothing tells the pipeline; and once the input is read, no newer
    // offset becomes committable to carry the commit along.
    cluster.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE; 4],
    );

    let mut journeyd = Journeyd::start(&write_config(dir.path(), &brokers, "100ms"));
    let expected = end_offsets(&brokers) - i64::from(PARTITIONS);
    let clock = Stopwatch::start();
    let mut last = committed(&brokers);
    while last.iter().filter(|&&o| o > 0).sum::<i64>() < expected {
        assert!(
            clock.elapsed() < Duration::from_secs(30),
            "the committed offsets stayed at {last:?}; {expected} records to commit"
        );
        std::thread::sleep(Duration::from_millis(200));
        last = committed(&brokers);
    }
    journeyd.signal("-TERM");
    assert!(journeyd.wait_exit(Duration::from_secs(30)).success());
}

/// `touchpoint` as the Confluent wire format with schema id `id`.
fn framed(id: u32, touchpoint: &Value) -> Vec<u8> {
    let text = touchpoint.to_string();
    let decoded = journeyd::codec::json::decode(text.as_bytes()).unwrap();
    let mut body = Vec::new();
    journeyd::codec::avro::encode_datum(&decoded, &mut body);
    let mut out = Vec::new();
    journeyd::codec::confluent::frame(id, &body, &mut out);
    out
}

/// The fields of an Avro record in the Confluent wire format, read with
/// the schema the registry has for the id of its header.
fn registered_record(
    registry: &FakeRegistry,
    subject: &str,
    bytes: &[u8],
) -> BTreeMap<String, AvroValue> {
    let (id, body) = journeyd::codec::confluent::split(bytes).unwrap();
    assert_eq!(
        registry.subject(subject),
        [id],
        "the id registered for {subject}"
    );
    let schema = apache_avro::Schema::parse_str(&registry.schema(id).unwrap()).unwrap();
    let reader = GenericDatumReader::builder(&schema).build().unwrap();
    let mut rest = body;
    let AvroValue::Record(fields) = reader.read_value(&mut rest).unwrap() else {
        panic!("not a record");
    };
    assert!(rest.is_empty());
    fields.into_iter().collect()
}

/// A string field, or a union of null and string.
fn avro_str(value: &AvroValue) -> String {
    match value {
        AvroValue::String(s) => s.clone(),
        AvroValue::Union(_, inner) => avro_str(inner),
        other => format!("{other:?}"),
    }
}

#[test]
fn confluent_input_and_avro_outputs_go_through_the_schema_registry() {
    const WRITER_ID: u32 = 4242;
    // Below WRITER_ID: the output schemas registered at start-up get the
    // ids after it.
    const UNKNOWN_ID: u32 = 17;
    let registry = FakeRegistry::start();
    registry.add_schema(WRITER_ID, journeyd::codec::schemas::TOUCHPOINT);
    registry.require_basic_auth("journeyd", "s3cret/pw");
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();

    let mut records: Vec<(String, Vec<u8>)> = [
        touchpoint("a1", "ana", BASE, "ad_click"),
        touchpoint("a2", "ana", BASE + DAY, "pricing_view"),
        touchpoint("b1", "bob", BASE + DAY, "purchase"),
        touchpoint("a3", "ana", BASE + 2 * DAY, "purchase"),
    ]
    .iter()
    .map(|v| {
        (
            v["customer_id"].as_str().unwrap().to_owned(),
            framed(WRITER_ID, v),
        )
    })
    .collect();
    let stray = touchpoint("x1", "bad", BASE, "page_view");
    records.push(("bad".into(), framed(UNKNOWN_ID, &stray)));
    produce(&brokers, &records);
    clocks_encoded(&brokers, &|v| framed(WRITER_ID, v));

    let url = registry.url().replace("://", "://journeyd:s3cret%2Fpw@");
    let extra = format!(
        "[[inputs]]\ntopic = \"{INPUT}\"\nencoding = \"confluent\"\n\n\
         [outputs]\nformat = \"avro\"\n\n\
         [schema_registry]\nurl = \"{url}\"\ntimeout = \"2s\"\n"
    );
    let config = write_config_with(dir.path(), &brokers, "200ms", &extra);
    let mut journeyd = Journeyd::start(&config);

    let changes = read_raw(
        &brokers,
        "journey.stage-changes",
        4,
        Duration::from_secs(30),
    );
    let mut got: Vec<(String, String, String)> = changes
        .iter()
        .map(|(bytes, _)| {
            let fields = registered_record(&registry, "journey.stage-changes-value", bytes);
            let field = |name: &str| avro_str(&fields[name]);
            (
                field("customer_id"),
                field("to_stage"),
                field("trigger_event_id"),
            )
        })
        .collect();
    got.sort();
    for want in [
        ("ana", "awareness", "a1"),
        ("ana", "consideration", "a2"),
        ("ana", "purchase", "a3"),
        ("bob", "purchase", "b1"),
    ] {
        let want = (want.0.to_owned(), want.1.to_owned(), want.2.to_owned());
        assert!(got.contains(&want), "missing {want:?} in {got:?}");
    }
    let churn = read_raw(&brokers, "journey.churn-risk", 1, Duration::from_secs(10));
    let fields = registered_record(&registry, "journey.churn-risk-value", &churn[0].0);
    assert!(fields.contains_key("p_alive"));

    let dead = read_topic(&brokers, "journey.dlq", 1, Duration::from_secs(10));
    assert_eq!(dead.len(), 1, "{dead:?}");
    let headers = &dead[0].1;
    assert_eq!(
        headers["journeyd.error.reason"], "unknown_schema_id",
        "{headers:?}"
    );
    assert_eq!(
        headers["journeyd.error.detail"],
        format!(
            "schema id {UNKNOWN_ID}: not found (HTTP 404, error 40403): Schema {UNKNOWN_ID} not found"
        )
    );

    journeyd.signal("-TERM");
    assert!(journeyd.wait_exit(Duration::from_secs(30)).success());
    let lookups = registry
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /schemas/ids/"))
        .count();
    assert_eq!(
        lookups,
        2,
        "one look-up per unknown id: {:?}",
        registry.requests()
    );
}

#[test]
fn a_registry_that_cannot_register_the_outputs_stops_start_up_naming_the_key() {
    let registry = FakeRegistry::start();
    registry.set_down(true);
    let dir = tempfile::tempdir().unwrap();
    let url = registry.url().replace("://", "://journeyd:s3cret-pw@");
    let extra = format!(
        "[outputs]\nformat = \"avro\"\n\n\
         [schema_registry]\nurl = \"{url}\"\nretry_for = \"300ms\"\n"
    );
    let config = write_config_with(dir.path(), "127.0.0.1:9", "1s", &extra);
    let stderr = start_up_error(&config);
    assert!(
        stderr.contains(&format!(
            "schema_registry.url: registering the output schemas with {}",
            registry.url()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("HTTP 503"), "{stderr}");
    assert!(!stderr.contains("s3cret-pw"), "{stderr}");
    assert!(
        registry.requests().len() >= 2,
        "retried: {:?}",
        registry.requests()
    );
}

/// A mock cluster with the input and the changelog, and of the topics of
/// `[outputs]` only `outputs` (name, partitions).
fn cluster_with_outputs(outputs: &[(&str, i32)]) -> MockCluster<'static, DefaultProducerContext> {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(INPUT, PARTITIONS, 1).unwrap();
    cluster
        .create_topic("journeyd.state-changelog", PARTITIONS, 1)
        .unwrap();
    for &(topic, partitions) in outputs {
        cluster.create_topic(topic, partitions, 1).unwrap();
    }
    cluster
}

#[test]
fn missing_output_topics_stop_start_up_naming_each() {
    let cluster = cluster_with_outputs(&[("journey.stage-changes", 1), ("journey.funnel", 1)]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &cluster.bootstrap_servers(), "1s");
    let stderr = start_up_error(&config);
    assert!(stderr.contains("5 output topics are missing"), "{stderr}");
    for (key, topic) in [
        ("churn_risk", "journey.churn-risk"),
        ("moments", "journey.moments"),
        ("dlq", "journey.dlq"),
        ("audit", "journey.audit"),
        ("erasure", "journey.erasure"),
    ] {
        assert!(
            stderr.contains(&format!("outputs.{key} = \"{topic}\"")),
            "{key} not named:\n{stderr}"
        );
    }
    assert!(!stderr.contains("outputs.stage_changes ="), "{stderr}");
    assert!(
        stderr.contains("outputs.erasure with 3 partitions"),
        "{stderr}"
    );
    assert!(stderr.contains("outputs.create_topics = true"), "{stderr}");
}

#[test]
fn an_erasure_topic_not_co_partitioned_with_the_input_stops_start_up() {
    let mut outputs: Vec<(&str, i32)> = [
        "journey.stage-changes",
        "journey.churn-risk",
        "journey.funnel",
        "journey.moments",
        "journey.dlq",
        "journey.audit",
    ]
    .map(|t| (t, 1))
    .to_vec();
    outputs.push(("journey.erasure", PARTITIONS + 1));
    let cluster = cluster_with_outputs(&outputs);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &cluster.bootstrap_servers(), "1s");
    let stderr = start_up_error(&config);
    assert!(
        stderr.contains(
            "outputs.erasure: topic \"journey.erasure\" has 4 partitions but input topic \
             \"touchpoints\" has 3"
        ),
        "{stderr}"
    );
}
