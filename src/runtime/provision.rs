//! The changelog topic at start-up: created when absent, checked when
//! present (SPEC section 6).
//!
//! The changelog is co-partitioned with the input: the state of the
//! customers read from input partition p is in changelog partition p.
//! That only holds while both have the same number of partitions, so:
//!
//! - every input topic must exist, and all must have the same partition
//!   count N (with several input topics, changelog partition p holds the
//!   customers of partition p of each, told apart by a header);
//! - an absent changelog topic is created with N partitions,
//!   `cleanup.policy = compact` and the brokers' default replication
//!   factor;
//! - an existing changelog topic with another partition count stops
//!   start-up, naming both topics and counts (the input topic was
//!   repartitioned, or the changelog belongs to another deployment); one
//!   whose cleanup policy is not `compact` is accepted with a warning,
//!   since its retention would delete state.
//!
//! Metadata is read with automatic topic creation off, so looking at a
//! missing topic never creates it with broker defaults.

use std::time::Duration;

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

use crate::config::Config;

/// How long start-up waits for each request to the brokers.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What start-up found or did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangelogTopic {
    /// Partitions of the changelog and of every input topic.
    pub partitions: i32,
    /// Whether journeyd created it just now.
    pub created: bool,
}

/// Makes sure `runtime.changelog_topic` exists, co-partitioned with the
/// input topics; see the module docs. Runs inside a tokio runtime, on which
/// the cleanup-policy check of an existing changelog goes on afterwards.
pub async fn ensure_changelog(config: &Config) -> anyhow::Result<ChangelogTopic> {
    let admin = admin_client(config)?;
    let partitions = input_partitions(&admin, config)?;
    let topic = config.runtime.changelog_topic.as_str();
    match partition_count(&admin, config, topic)? {
        Some(found) => {
            check_count(config, found, partitions)?;
            // In the background: brokers that cannot describe configurations
            // make it wait for the whole timeout.
            tokio::spawn(warn_unless_compacted(admin, topic.to_owned()));
            Ok(ChangelogTopic {
                partitions,
                created: false,
            })
        }
        None => create(&admin, config, partitions).await,
    }
}

fn admin_client(config: &Config) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    let kafka = &config.kafka;
    let mut client = ClientConfig::new();
    for (name, value) in kafka.properties.iter() {
        client.set(name, value);
    }
    client
        .set("bootstrap.servers", &kafka.brokers)
        .set("client.id", format!("{}-admin", kafka.client_id))
        .set("allow.auto.create.topics", "false");
    client
        .create()
        .context("cannot create the Kafka admin client (kafka.*)")
}

/// The partition count shared by every input topic.
fn input_partitions(
    admin: &AdminClient<DefaultClientContext>,
    config: &Config,
) -> anyhow::Result<i32> {
    let mut counts = Vec::new();
    for (i, input) in config.inputs.iter().enumerate() {
        let Some(n) = partition_count(admin, config, &input.topic)? else {
            bail!(
                "inputs[{i}].topic: topic \"{}\" does not exist on {}; create the input topics \
                 before starting journeyd (it creates only runtime.changelog_topic)",
                input.topic,
                config.kafka.brokers
            );
        };
        counts.push((input.topic.as_str(), n));
    }
    let Some(&(_, first)) = counts.first() else {
        bail!("inputs: no input topic is configured");
    };
    if counts.iter().any(|&(_, n)| n != first) {
        let list: Vec<String> = counts
            .iter()
            .map(|(t, n)| format!("\"{t}\" has {n}"))
            .collect();
        bail!(
            "inputs: every input topic must have the same number of partitions, since \
             runtime.changelog_topic is co-partitioned with them (input partition p -> changelog \
             partition p), but {}",
            list.join(", ")
        );
    }
    Ok(first)
}

/// The partition count of `topic`, `None` if it does not exist.
fn partition_count(
    admin: &AdminClient<DefaultClientContext>,
    config: &Config,
    topic: &str,
) -> anyhow::Result<Option<i32>> {
    let metadata = admin
        .inner()
        .fetch_metadata(Some(topic), ADMIN_TIMEOUT)
        .with_context(|| {
            format!(
                "cannot read the metadata of topic \"{topic}\" from kafka.brokers {}",
                config.kafka.brokers
            )
        })?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    match found.error() {
        None => Ok(Some(found.partitions().len() as i32)),
        Some(e) if RDKafkaErrorCode::from(e) == RDKafkaErrorCode::UnknownTopicOrPartition => {
            Ok(None)
        }
        Some(e) => bail!(
            "cannot read the metadata of topic \"{topic}\" from kafka.brokers {}: {}",
            config.kafka.brokers,
            RDKafkaErrorCode::from(e)
        ),
    }
}

/// An existing changelog must have the inputs' partition count.
fn check_count(config: &Config, changelog: i32, inputs: i32) -> anyhow::Result<()> {
    if changelog == inputs {
        return Ok(());
    }
    bail!(
        "runtime.changelog_topic: topic \"{}\" has {changelog} partitions but input topic \"{}\" \
         has {inputs}; the changelog must have as many partitions as the input (input partition \
         p -> changelog partition p). If the input was repartitioned, its customers moved \
         partitions: start from a new changelog topic (journeyd creates it) and a new consumer \
         group, or restore the input's partition count",
        config.runtime.changelog_topic,
        config.inputs.first().map_or("", |i| i.topic.as_str()),
    )
}

/// Creates the changelog with `partitions` partitions, compacted. Another
/// instance creating it at the same moment is fine if the count agrees.
async fn create(
    admin: &AdminClient<DefaultClientContext>,
    config: &Config,
    partitions: i32,
) -> anyhow::Result<ChangelogTopic> {
    let topic = config.runtime.changelog_topic.as_str();
    // -1: the brokers' default.replication.factor.
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1))
        .set("cleanup.policy", "compact");
    let options = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    let results = admin
        .create_topics([&new], &options)
        .await
        .with_context(|| format!("runtime.changelog_topic: cannot create topic \"{topic}\""))?;
    for result in results {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                let found = partition_count(admin, config, topic)?.unwrap_or(partitions);
                check_count(config, found, partitions)?;
                return Ok(ChangelogTopic {
                    partitions,
                    created: false,
                });
            }
            Err((_, code)) => bail!(
                "runtime.changelog_topic: cannot create topic \"{topic}\" ({code}); create it \
                 with {partitions} partitions and cleanup.policy=compact, or let journeyd create \
                 it with the rights to"
            ),
        }
    }
    tracing::info!(
        topic,
        partitions,
        "Changelog topic created (cleanup.policy=compact)."
    );
    Ok(ChangelogTopic {
        partitions,
        created: true,
    })
}

/// Logs a warning when the changelog's cleanup policy is known and is not
/// `compact`; brokers that do not describe configurations are trusted.
async fn warn_unless_compacted(admin: AdminClient<DefaultClientContext>, topic: String) {
    let topic = topic.as_str();
    let options = AdminOptions::new().request_timeout(Some(ADMIN_TIMEOUT));
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &options)
        .await;
    let policy = match described.as_ref().map(|r| r.first()) {
        Ok(Some(Ok(resource))) => resource.get("cleanup.policy").and_then(|e| e.value.clone()),
        Ok(_) => None,
        Err(error) => {
            tracing::debug!(%error, topic, "Cannot describe the changelog topic's configuration.");
            None
        }
    };
    if let Some(policy) = policy.filter(|p| !p.split(',').any(|p| p.trim() == "compact")) {
        tracing::warn!(
            topic,
            cleanup_policy = policy.as_str(),
            "The changelog topic is not compacted: its retention deletes customer state, and \
             restores then start those customers afresh. Set cleanup.policy=compact on it."
        );
    }
}
