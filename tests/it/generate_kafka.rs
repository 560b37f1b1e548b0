//! `journeyd generate --brokers`: the real binary produces to librdkafka's
//! in-process mock cluster, and what arrives is what `--out` writes.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use journeyd::clock::Stopwatch;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;

const TOPIC: &str = "clicks";

fn journeyd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_journeyd"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("journeyd runs")
}

/// Every record of `topic`, as (key, payload), grouped by key in offset order.
fn read_all(brokers: &str, expected: usize) -> BTreeMap<Option<String>, Vec<Vec<u8>>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "generate-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[TOPIC]).unwrap();
    let clock = Stopwatch::start();
    let (mut by_key, mut seen) = (BTreeMap::<_, Vec<_>>::new(), 0);
    while seen < expected && clock.elapsed() < Duration::from_secs(30) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
            by_key
                .entry(key)
                .or_default()
                .push(m.payload().unwrap_or_default().to_vec());
            seen += 1;
        }
    }
    by_key
}

/// The value of `"customer_id"` in a JSON line, if it is a non-empty string.
fn customer_of(line: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    let id = value.get("customer_id")?.as_str()?;
    (!id.is_empty()).then(|| id.to_owned())
}

#[test]
fn generated_records_reach_kafka_keyed_by_customer_in_order() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, 3, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let common = [
        "--customers",
        "40",
        "--seed",
        "9",
        "--invalid-ratio",
        "0.05",
    ];

    let file = journeyd(&[&["generate"][..], &common].concat());
    assert!(
        file.status.success(),
        "{}",
        String::from_utf8_lossy(&file.stderr)
    );
    let lines: Vec<&[u8]> = file
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();

    let args = [
        &["generate", "--brokers", &brokers, "--topic", TOPIC][..],
        &["--rate", "0", "--timestamps", "generated"],
        &common,
    ]
    .concat();
    let produced = journeyd(&args);
    assert!(
        produced.status.success(),
        "{}",
        String::from_utf8_lossy(&produced.stderr)
    );

    let mut expected = BTreeMap::<Option<String>, Vec<Vec<u8>>>::new();
    for line in &lines {
        expected
            .entry(customer_of(line))
            .or_default()
            .push(line.to_vec());
    }
    let got = read_all(&brokers, lines.len());
    // Keyed records keep their order per customer; unkeyed (invalid)
    // records may spread over partitions, so only their set is compared.
    let mut unkeyed_expected = expected.remove(&None).unwrap_or_default();
    let mut got = got;
    let mut unkeyed_got = got.remove(&None).unwrap_or_default();
    unkeyed_expected.sort();
    unkeyed_got.sort();
    assert_eq!(got.len(), expected.len(), "customers");
    assert_eq!(got, expected);
    assert_eq!(unkeyed_got, unkeyed_expected);
}

#[test]
fn a_limit_ends_a_live_stream_and_bad_arguments_are_refused() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(TOPIC, 1, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let produced = journeyd(&[
        "generate",
        "--brokers",
        &brokers,
        "--topic",
        TOPIC,
        "--rate",
        "0",
        "--limit",
        "5",
        "--customers",
        "2000",
    ]);
    assert!(
        produced.status.success(),
        "{}",
        String::from_utf8_lossy(&produced.stderr)
    );
    let got = read_all(&brokers, 5);
    assert_eq!(got.values().map(Vec::len).sum::<usize>(), 5);

    let refused = journeyd(&["generate", "--rate", "5"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--brokers"));
    let refused = journeyd(&["generate", "--brokers", &brokers, "-X", "novalue"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("KEY=VALUE"));
}
