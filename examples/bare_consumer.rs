//! The throughput ceiling for `scripts/bench-e2e`: a consumer-group member
//! that only reads a topic, from the first poll to the last record, and
//! prints one JSON line of figures (`bytes` of values, `key_bytes` of keys).
//!
//! It is set for throughput, not like journeyd's source: large fetches and
//! a deep local queue ([`THROUGHPUT`]), so that it measures what this
//! broker and machine can deliver to one consumer at most.
//!
//! ```text
//! cargo run --release --example bare_consumer -- BROKERS TOPIC RECORDS
//! ```

use std::time::Duration;

use journeyd::clock::Stopwatch;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// Gives up when nothing arrives for this long.
const STALL: Duration = Duration::from_secs(30);

/// librdkafka settings for reading a backlog as fast as possible: up to
/// 8 MiB per partition and 64 MiB per fetch (librdkafka's defaults: 1 MiB
/// and 50 MiB), and up to a million records or 1 GiB fetched ahead of the
/// application (defaults: 100,000 records, 64 MiB).
const THROUGHPUT: [(&str, &str); 5] = [
    ("max.partition.fetch.bytes", "8388608"),
    ("fetch.max.bytes", "67108864"),
    ("receive.message.max.bytes", "134217728"),
    ("queued.min.messages", "1000000"),
    ("queued.max.messages.kbytes", "1048576"),
];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [brokers, topic, records] = args.as_slice() else {
        anyhow::bail!("usage: bare_consumer BROKERS TOPIC RECORDS");
    };
    let records: u64 = records.parse()?;
    let mut config = ClientConfig::new();
    for (key, value) in THROUGHPUT {
        config.set(key, value);
    }
    let consumer: BaseConsumer = config
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("bare-consumer-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .create()?;
    consumer.subscribe(&[topic])?;

    let (mut read, mut bytes, mut key_bytes) = (0u64, 0u64, 0u64);
    let mut first: Option<Stopwatch> = None;
    let mut quiet = Stopwatch::start();
    while read < records {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                first.get_or_insert_with(Stopwatch::start);
                read += 1;
                bytes += message.payload_len() as u64;
                key_bytes += message.key_len() as u64;
                quiet = Stopwatch::start();
            }
            Some(Err(error)) => eprintln!("bare_consumer: {error}"),
            None => anyhow::ensure!(
                quiet.elapsed() < STALL,
                "nothing for {STALL:?} after {read} of {records} records"
            ),
        }
    }
    let secs = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    println!(
        "{{\"records\":{read},\"bytes\":{bytes},\"key_bytes\":{key_bytes},\"seconds\":{secs:.3},\"per_second\":{:.0}}}",
        read as f64 / secs.max(1e-9)
    );
    Ok(())
}
