//! The changelog for `scripts/bench-e2e --restore`: a generated population's
//! state ([`GeneratedChangelog`], one record per customer) written to a
//! changelog topic through journeyd's own producer ([`Sink`]), as
//! `journeyd run` writes it: to the customer's input partition, keyed by
//! customer id, with the input-topic header. Waits for every
//! acknowledgement, then prints one JSON line of figures.
//!
//! ```text
//! cargo run --release --example write_changelog -- BROKERS CHANGELOG_TOPIC INPUT_TOPIC PARTITIONS CUSTOMERS
//! ```

use std::sync::Arc;
use std::time::Duration;

use journeyd::clock::Stopwatch;
use journeyd::config::{Config, TimeMode};
use journeyd::runtime::changelog::INPUT_TOPIC_HEADER;
use journeyd::sink::kafka::{Delivery, Outgoing, OutputMeta, Sink};
use journeyd::telemetry::Metrics;
use journeyd::tools::{GeneratedChangelog, GeneratorConfig};
use rdkafka::message::{Header, OwnedHeaders};

/// How long the final flush may take.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(120);

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [brokers, topic, input, partitions, customers] = args.as_slice() else {
        anyhow::bail!(
            "usage: write_changelog BROKERS CHANGELOG_TOPIC INPUT_TOPIC PARTITIONS CUSTOMERS"
        );
    };
    let partitions: u32 = partitions.parse()?;
    let mut config = Config::default();
    config.time.mode = TimeMode::Event;
    config.kafka.brokers = brokers.clone();
    config.runtime.changelog_topic = topic.clone();

    let clock = Stopwatch::start();
    let generator = GeneratorConfig {
        customers: customers.parse()?,
        seed: 11,
        invalid_ratio: 0.0,
        ..GeneratorConfig::default()
    };
    let changelog = GeneratedChangelog::build(&config, generator, partitions)?;
    let built = clock.elapsed().as_secs_f64();

    let (sink, deliveries) = Sink::new(&config, Arc::new(Metrics::new()?))?;
    let clock = Stopwatch::start();
    for (id, change) in changelog.iter().enumerate() {
        let headers = OwnedHeaders::new_with_capacity(1).insert(Header {
            key: INPUT_TOPIC_HEADER,
            value: Some(input.as_bytes()),
        });
        let out = Outgoing {
            topic,
            partition: Some(i32::try_from(change.partition)?),
            key: change.customer_id().map(str::as_bytes),
            payload: change.value,
            headers: Some(headers),
        };
        let meta = OutputMeta {
            id: id as u64,
            event_time: None,
            polled: Stopwatch::start(),
        };
        sink.send_record(out, Box::new(meta))?;
    }
    sink.flush(FLUSH_TIMEOUT)?;
    let written = clock.elapsed().as_secs_f64();
    let (mut acked, mut failed) = (0u64, 0u64);
    while let Ok(delivery) = deliveries.try_recv() {
        match delivery {
            Delivery::Acked(_) => acked += 1,
            Delivery::Failed { .. } => failed += 1,
        }
    }
    anyhow::ensure!(
        failed == 0 && acked == changelog.len() as u64,
        "{acked} of {} records acknowledged, {failed} failed",
        changelog.len()
    );
    println!(
        "{{\"records\":{},\"touchpoints\":{},\"key_bytes\":{},\"value_bytes\":{},\
         \"build_seconds\":{built:.3},\"write_seconds\":{written:.3}}}",
        changelog.len(),
        changelog.touchpoints(),
        changelog.key_bytes(),
        changelog.value_bytes()
    );
    Ok(())
}
