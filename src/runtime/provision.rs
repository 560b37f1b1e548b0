//! The topics journeyd owns, at start-up: the changelog is created when
//! absent and checked when present; every topic of `[outputs]` is checked,
//! and created when absent if `outputs.create_topics` allows it.
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
//!   since its retention would delete state. Its compaction settings
//!   bound how long erased customer data stays on disk ([`retention`]).
//!
//! The erasure topic follows the same rule for another reason: erasure
//! partition p is read by the instance that owns input partition p, so an
//! existing erasure topic with another partition count than N stops
//! start-up too.
//!
//! A missing output topic would not stop anything by itself: the producer
//! waits for it, outputs are not delivered, offsets are not committed, and
//! nothing says why. So start-up lists every missing topic of `[outputs]`
//! and stops, naming each with its key, unless `outputs.create_topics` is
//! set; then it creates them, the erasure topic with N partitions, the
//! others with `outputs.new_topic_partitions` and
//! `outputs.new_topic_replication_factor` (the brokers' default when
//! absent). Nothing is created unless every check passed.
//!
//! Metadata is read with automatic topic creation off, so looking at a
//! missing topic never creates it with broker defaults.

use std::time::Duration;

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

use crate::config::Config;

mod retention;

/// How long start-up waits for each request to the brokers.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What start-up found or did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    /// Partitions of the changelog, of every input topic and of the
    /// erasure topic.
    pub partitions: i32,
    /// Whether journeyd created the changelog just now.
    pub changelog_created: bool,
    /// The topics of `[outputs]` journeyd created just now.
    pub outputs_created: Vec<String>,
}

/// A topic of `[outputs]`: its key (`stage_changes`) and name.
type Output<'a> = (&'static str, &'a str);

/// Makes sure `runtime.changelog_topic` and every topic of `[outputs]`
/// exist, co-partitioned where they must be; see the module docs. Runs
/// inside a tokio runtime, on which the cleanup-policy check of an
/// existing changelog goes on afterwards.
pub async fn ensure_topics(config: &Config) -> anyhow::Result<Topics> {
    let admin = admin_client(config)?;
    let partitions = input_partitions(&admin, config)?;
    let changelog = config.runtime.changelog_topic.as_str();
    let existing = partition_count(&admin, config, changelog)?;
    if let Some(found) = existing {
        check_count(config, found, partitions)?;
    }
    let missing = missing_outputs(&admin, config, partitions)?;
    if !missing.is_empty() && !config.outputs.create_topics {
        bail!(missing_outputs_problem(config, &missing, partitions));
    }
    let changelog_created = match existing {
        Some(_) => false,
        None => create_changelog(&admin, config, partitions).await?,
    };
    let outputs_created = create_outputs(&admin, config, &missing, partitions).await?;
    if existing.is_some() {
        // In the background: brokers that cannot describe configurations
        // make it wait for the whole timeout.
        tokio::spawn(retention::warn_about_changelog(
            admin,
            changelog.to_owned(),
            config.runtime.clone(),
        ));
    }
    Ok(Topics {
        partitions,
        changelog_created,
        outputs_created,
    })
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

/// Creates the changelog with `partitions` partitions, compacted; whether
/// it was created (another instance creating it at the same moment is
/// fine if the count agrees).
async fn create_changelog(
    admin: &AdminClient<DefaultClientContext>,
    config: &Config,
    partitions: i32,
) -> anyhow::Result<bool> {
    let topic = config.runtime.changelog_topic.as_str();
    // -1: the brokers' default.replication.factor.
    let settings = retention::changelog_settings(&config.runtime);
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
    for (key, value) in &settings {
        new = new.set(key, value);
    }
    let options = AdminOptions::new()
        .operation_timeout(Some(ADMIN_TIMEOUT))
        .request_timeout(Some(ADMIN_TIMEOUT));
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
                return Ok(false);
            }
            Err((_, code)) => bail!(
                "runtime.changelog_topic: cannot create topic \"{topic}\" ({code}); create it \
                 with {partitions} partitions and cleanup.policy=compact, or let journeyd create \
                 it with the rights to"
            ),
        }
    }
    let bound = humantime::format_duration(config.runtime.erasure_bound());
    tracing::info!(
        topic,
        partitions,
        erased_data_kept_at_most = %bound,
        "Changelog topic created (cleanup.policy=compact, compaction lags and tombstone \
         retention from runtime.changelog_*)."
    );
    Ok(true)
}

/// The topics of `[outputs]` that do not exist. An existing erasure topic
/// must have the inputs' partition count.
fn missing_outputs<'c>(
    admin: &AdminClient<DefaultClientContext>,
    config: &'c Config,
    partitions: i32,
) -> anyhow::Result<Vec<Output<'c>>> {
    let mut missing = Vec::new();
    for (key, topic) in config.outputs.topics() {
        match partition_count(admin, config, topic)? {
            None => missing.push((key, topic)),
            Some(found) if key == "erasure" && found != partitions => bail!(
                "outputs.erasure: topic \"{topic}\" has {found} partitions but input topic \"{}\" \
                 has {partitions}; erasure partition p is read by the instance that owns input \
                 partition p, so with other counts requests would reach instances that do not \
                 hold the customer. Recreate it with {partitions} partitions",
                config.inputs.first().map_or("", |i| i.topic.as_str()),
            ),
            Some(_) => {}
        }
    }
    Ok(missing)
}

/// Why start-up stops when output topics are missing and journeyd may not
/// create them: each missing topic with its key, and the two ways out.
fn missing_outputs_problem(config: &Config, missing: &[Output<'_>], partitions: i32) -> String {
    let list: Vec<String> = missing
        .iter()
        .map(|(key, topic)| format!("\n  outputs.{key} = \"{topic}\""))
        .collect();
    let erasure = match missing.iter().any(|(key, _)| *key == "erasure") {
        true => {
            format!(" (outputs.erasure with {partitions} partitions, as many as the input topics)")
        }
        false => String::new(),
    };
    format!(
        "{} output topic{} missing on kafka.brokers {}:{}\nCreate {}{erasure}, or set \
         outputs.create_topics = true to let journeyd create {} at start-up",
        missing.len(),
        if missing.len() == 1 { " is" } else { "s are" },
        config.kafka.brokers,
        list.concat(),
        if missing.len() == 1 { "it" } else { "them" },
        if missing.len() == 1 { "it" } else { "them" },
    )
}

/// Creates the `missing` topics of `[outputs]`: the erasure topic with the
/// inputs' `partitions`, the others as `outputs.new_topic_*` say, each
/// with `outputs.new_topic_retention`. A topic
/// another instance created meanwhile is fine.
async fn create_outputs(
    admin: &AdminClient<DefaultClientContext>,
    config: &Config,
    missing: &[Output<'_>],
    partitions: i32,
) -> anyhow::Result<Vec<String>> {
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let outputs = &config.outputs;
    // -1: the brokers' default.replication.factor.
    let replicas = outputs.new_topic_replication_factor.unwrap_or(-1);
    let retention = outputs.new_topic_retention.as_millis().to_string();
    let new: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|&(key, topic)| {
            let count = match key {
                "erasure" => partitions,
                _ => outputs.new_topic_partitions,
            };
            NewTopic::new(topic, count, TopicReplication::Fixed(replicas))
                .set("retention.ms", &retention)
        })
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(ADMIN_TIMEOUT))
        .request_timeout(Some(ADMIN_TIMEOUT));
    let results = admin
        .create_topics(&new, &options)
        .await
        .context("outputs.create_topics: cannot create the missing output topics")?;
    let mut created = Vec::new();
    for (result, &(key, topic)) in results.into_iter().zip(missing) {
        match result {
            Ok(_) => {
                tracing::info!(topic, key = %format_args!("outputs.{key}"), "Output topic created.");
                created.push(topic.to_owned());
            }
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => bail!(
                "outputs.{key}: cannot create topic \"{topic}\" ({code}); create it yourself, \
                 or give journeyd the rights to (outputs.create_topics = true)"
            ),
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missing_topics_are_named_with_their_keys() {
        let mut config = Config::default();
        config.kafka.brokers = "kafka:9092".into();
        let missing = [("dlq", "journey.dlq"), ("erasure", "journey.erasure")];
        assert_eq!(
            missing_outputs_problem(&config, &missing, 6),
            "2 output topics are missing on kafka.brokers kafka:9092:\n  \
             outputs.dlq = \"journey.dlq\"\n  outputs.erasure = \"journey.erasure\"\n\
             Create them (outputs.erasure with 6 partitions, as many as the input topics), or \
             set outputs.create_topics = true to let journeyd create them at start-up"
        );
        assert_eq!(
            missing_outputs_problem(&config, &missing[..1], 6),
            "1 output topic is missing on kafka.brokers kafka:9092:\n  \
             outputs.dlq = \"journey.dlq\"\nCreate it, or set outputs.create_topics = true to \
             let journeyd create it at start-up"
        );
    }
}
