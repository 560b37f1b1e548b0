//! The embedded Kafka-protocol cluster of the demo: librdkafka's mock
//! cluster, one broker on a random 127.0.0.1 port, with every topic the
//! pipeline reads and writes created up front.
//!
//! Any Kafka client can connect to [`Cluster::bootstrap`] while the demo
//! runs. The cluster lives as long as the value: drop it only after every
//! client using it is gone.

use anyhow::Context;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::config::Config;
use crate::model::OutputKind;

/// Partitions of the touchpoint topic (and of the state changelog and the
/// erasure topic, which are co-partitioned with it).
pub const INPUT_PARTITIONS: i32 = 6;

/// A topic to create and its partition count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topic {
    /// The topic name.
    pub name: String,
    /// Its partition count.
    pub partitions: i32,
}

/// The running mock cluster.
pub struct Cluster {
    /// The broker; destroyed on drop.
    mock: MockCluster<'static, DefaultProducerContext>,
    /// `host:port` of the broker, for `bootstrap.servers`.
    bootstrap: String,
    /// What was created, in creation order.
    topics: Vec<Topic>,
}

impl Cluster {
    /// Starts a one-broker cluster and creates the topics of `config`.
    pub fn start(config: &Config) -> anyhow::Result<Cluster> {
        let mock = MockCluster::new(1).context("cannot start the embedded Kafka cluster")?;
        let topics = topics(config);
        for topic in &topics {
            mock.create_topic(&topic.name, topic.partitions, 1)
                .with_context(|| format!("cannot create topic {}", topic.name))?;
        }
        let bootstrap = mock.bootstrap_servers();
        Ok(Cluster {
            mock,
            bootstrap,
            topics,
        })
    }

    /// `host:port` of the broker.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// The partition count of `name`, if the demo created it.
    pub fn partitions(&self, name: &str) -> Option<i32> {
        self.topics
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.partitions)
    }

    /// Stops the broker. Clients still connected see it go away.
    pub fn stop(self) {
        drop(self.mock);
    }
}

/// The topics of `config`: the inputs (6 partitions each), the outputs
/// keyed by customer (3), the ones keyed otherwise or low-volume (1), and
/// the erasure topic and the state changelog (co-partitioned with the
/// inputs).
pub fn topics(config: &Config) -> Vec<Topic> {
    let outputs = &config.outputs;
    let inputs = config
        .inputs
        .iter()
        .map(|i| (i.topic.as_str(), INPUT_PARTITIONS));
    let per_customer = |key| {
        OutputKind::EVERY
            .iter()
            .any(|k| k.as_str() == key && k.per_customer())
    };
    let rest = (outputs.topics().into_iter()).map(|(key, topic)| match key {
        "erasure" => (topic, INPUT_PARTITIONS),
        key if per_customer(key) => (topic, 3),
        _ => (topic, 1),
    });
    let changelog = (config.runtime.changelog_topic.as_str(), INPUT_PARTITIONS);
    inputs
        .chain(rest)
        .chain([changelog])
        .map(|(name, partitions)| Topic {
            name: name.to_owned(),
            partitions,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_of_the_default_config_is_created_once() {
        let topics = topics(&Config::default());
        let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "touchpoints",
                "journey.stage-changes",
                "journey.churn-risk",
                "journey.funnel",
                "journey.moments",
                "journey.dlq",
                "journey.audit",
                "journey.erasure",
                "journeyd.state-changelog",
            ]
        );
        assert_eq!(topics[0].partitions, 6);
        assert_eq!(
            topics[7].partitions, 6,
            "the erasure topic follows the input"
        );
    }
}
