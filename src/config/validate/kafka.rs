//! Checks of the Kafka connection (`[kafka]`). Messages never quote a
//! property's value, which may be a secret.

use super::Problems;
use crate::config::load::toml_key;
use crate::config::{KafkaConfig, KafkaProperties};
use crate::http::routing::{KEYED_PARTITIONERS, Partitioner};

/// Properties journeyd sets itself, and why they cannot be passed through.
const MANAGED: [(&str, &str); 9] = [
    ("bootstrap.servers", "set kafka.brokers instead"),
    ("metadata.broker.list", "set kafka.brokers instead"),
    ("group.id", "set kafka.group_id instead"),
    ("client.id", "set kafka.client_id instead"),
    ("group.instance.id", "set kafka.group_instance_id instead"),
    (
        "enable.auto.commit",
        "journeyd commits an offset only after every output it caused is acknowledged",
    ),
    (
        "enable.auto.offset.store",
        "journeyd commits an offset only after every output it caused is acknowledged",
    ),
    (
        "transactional.id",
        "journeyd sets it when runtime.exactly_once = true",
    ),
    (
        "partition.assignment.strategy",
        "journeyd relies on cooperative-sticky assignment for incremental rebalances",
    ),
];

/// Checks the whole `kafka` section.
pub(super) fn check(kafka: &KafkaConfig, problems: &mut Problems) {
    brokers(&kafka.brokers, problems);
    for (key, value) in [
        ("group_id", &kafka.group_id),
        ("client_id", &kafka.client_id),
    ] {
        if value.trim().is_empty() {
            problems.add(format_args!("kafka.{key}"), "must not be empty");
        }
    }
    if kafka
        .group_instance_id
        .as_deref()
        .is_some_and(|id| id.trim().is_empty())
    {
        problems.add(
            "kafka.group_instance_id",
            "must not be empty; leave it out to run without static membership",
        );
    }
    for (key, table) in kafka.property_tables() {
        properties(key, table, problems);
    }
    partitioner(kafka, problems);
    problems.positive_duration("kafka.poll_timeout", kafka.poll_timeout);
}

/// A comma-separated list of `host:port`, none of them empty.
fn brokers(brokers: &str, problems: &mut Problems) {
    if brokers.trim().is_empty() {
        problems.add(
            "kafka.brokers",
            "must name at least one broker, e.g. \"kafka-1:9092,kafka-2:9092\"",
        );
    } else if brokers.split(',').any(|b| b.trim().is_empty()) {
        problems.add(
            "kafka.brokers",
            format_args!("empty entry in \"{brokers}\"; separate brokers by single commas"),
        );
    }
}

/// Property names are not empty and not ones journeyd manages.
fn properties(table: &str, properties: &KafkaProperties, problems: &mut Problems) {
    for (name, _) in properties.iter() {
        let key = format!("kafka.{table}.{}", toml_key(name));
        if name.trim().is_empty() {
            problems.add(key, "property names must not be empty");
        } else if let Some((_, why)) = MANAGED.iter().find(|(managed, _)| *managed == name) {
            problems.add(key, format_args!("cannot be set here: {why}"));
        }
    }
}

/// The producer's `partitioner` partitions by key: journeyd computes a
/// customer's partition from the id the same way, to find the instance
/// that holds the customer (and erasure requests must land where the
/// touchpoints do).
fn partitioner(kafka: &KafkaConfig, problems: &mut Problems) {
    for (table, properties) in [
        ("properties", &kafka.properties),
        ("producer_properties", &kafka.producer_properties),
    ] {
        let Some(value) = properties.get("partitioner") else {
            continue;
        };
        if Partitioner::from_property(Some(value)).is_none() {
            problems.add(
                format_args!("kafka.{table}.partitioner"),
                format_args!(
                    "must be one of {} (the partitioner of the producer of the touchpoints): \
                     customer lookups and erasure requests are routed by customer id",
                    KEYED_PARTITIONERS.join(", ")
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{Config, KafkaProperties};

    use crate::config::validate::problems_of as problems;

    #[test]
    fn identifiers_are_not_empty() {
        let mut config = Config::default();
        config.kafka.brokers = "a:9092,,b:9092".into();
        config.kafka.group_id = " ".into();
        config.kafka.group_instance_id = Some(String::new());
        config.kafka.poll_timeout = Duration::ZERO;
        assert_eq!(
            problems(&config),
            [
                "kafka.brokers: empty entry in \"a:9092,,b:9092\"; separate brokers by single commas",
                "kafka.group_id: must not be empty",
                "kafka.group_instance_id: must not be empty; leave it out to run without static \
                 membership",
                "kafka.poll_timeout: must be at least 1ms, got \"0s\"",
            ]
        );
    }

    #[test]
    fn managed_properties_are_refused_without_quoting_values() {
        let mut config = Config::default();
        config.kafka.properties = [
            ("bootstrap.servers", "x:9092"),
            ("sasl.password", "hunter2"),
        ]
        .into_iter()
        .collect();
        config.kafka.consumer_properties =
            KafkaProperties::from_iter([("enable.auto.commit", "true")]);
        assert_eq!(
            problems(&config),
            [
                "kafka.properties.\"bootstrap.servers\": cannot be set here: set kafka.brokers instead",
                "kafka.consumer_properties.\"enable.auto.commit\": cannot be set here: journeyd \
                 commits an offset only after every output it caused is acknowledged",
            ]
        );
    }

    #[test]
    fn the_partitioner_partitions_by_key() {
        let mut config = Config::default();
        config.kafka.producer_properties = KafkaProperties::from_iter([("partitioner", "random")]);
        assert_eq!(
            problems(&config),
            [
                "kafka.producer_properties.partitioner: must be one of consistent_random, \
                 consistent, murmur2_random, murmur2, fnv1a_random, fnv1a (the partitioner of \
                 the producer of the touchpoints): customer lookups and erasure requests are \
                 routed by customer id"
            ]
        );
        config.kafka.producer_properties = KafkaProperties::from_iter([("partitioner", "murmur2")]);
        assert_eq!(problems(&config), Vec::<String>::new());
    }
}
