//! Kafka security is passed through to librdkafka (docs/operations.md#kafka-security): the
//! build supports TLS and SASL (PLAIN, SCRAM), so every client journeyd
//! makes can be created with them. Creating a client does not need a
//! broker: nothing here connects successfully.

use std::sync::Arc;

use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::BaseProducer;

use super::erasure::ErasureReader;
use super::kafka::consumer_config;
use crate::config::{Config, KafkaProperties};
use crate::sink::kafka::{Sink, producer_config};
use crate::telemetry::Metrics;

fn config(properties: &[(&str, &str)]) -> Config {
    let mut config = Config::default();
    // A closed port: clients try to connect in the background and fail.
    config.kafka.brokers = "127.0.0.1:1".into();
    config.kafka.properties = properties.iter().copied().collect::<KafkaProperties>();
    config
}

/// Creates the producer, the group consumer and the erasure reader;
/// panics with librdkafka's message if one is refused.
fn create_clients(config: &Config) {
    let metrics = Arc::new(Metrics::new().unwrap());
    producer_config(config)
        .create::<BaseProducer>()
        .unwrap_or_else(|e| panic!("producer: {e}"));
    consumer_config(config)
        .create::<BaseConsumer>()
        .unwrap_or_else(|e| panic!("consumer: {e}"));
    Sink::new(config, metrics.clone()).unwrap_or_else(|e| panic!("sink: {e}"));
    ErasureReader::new(config, metrics).unwrap_or_else(|e| panic!("erasure reader: {e}"));
}

#[test]
fn tls_clients_are_created() {
    create_clients(&config(&[("security.protocol", "SSL")]));
}

#[test]
fn sasl_clients_are_created() {
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        for protocol in ["SASL_SSL", "SASL_PLAINTEXT"] {
            create_clients(&config(&[
                ("security.protocol", protocol),
                ("sasl.mechanism", mechanism),
                ("sasl.username", "journeyd"),
                ("sasl.password", "not-a-real-password"),
            ]));
        }
    }
}

#[test]
fn an_unsupported_setting_is_still_refused() {
    let config = config(&[
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "NOPE"),
    ]);
    let error = producer_config(&config)
        .create::<BaseProducer>()
        .err()
        .expect("an unknown SASL mechanism is refused");
    assert!(
        error.to_string().contains("Unsupported SASL mechanism"),
        "{error}"
    );
}
