//! Checks of the topics (`[[inputs]]`, `[outputs]`,
//! `runtime.changelog_topic`) and of the schema sources the Avro encodings
//! need (`[schema_registry]`).

use std::collections::HashMap;

use super::Problems;
use crate::config::topics::MAX_REGISTRY_RETRY;
use crate::config::{Config, InputEncoding, OutputFormat, SchemaRegistryConfig};

/// Kafka's limit on the length of a topic name.
const MAX_TOPIC_LEN: usize = 249;

/// Checks every topic name, and the schema sources.
pub(super) fn check(config: &Config, problems: &mut Problems) {
    if config.inputs.is_empty() {
        problems.add("inputs", "must list at least one input topic");
    }
    let mut first_use: HashMap<&str, String> = HashMap::new();
    for (key, topic) in named_topics(config) {
        if !valid_name(&key, topic, problems) {
            continue;
        }
        match first_use.get(topic) {
            Some(first) => problems.add(
                &key,
                format_args!("topic \"{topic}\" is already used by {first}"),
            ),
            None => {
                first_use.insert(topic, key);
            }
        }
    }
    new_topics(config, problems);
    schema_registry(config, problems);
}

/// The partitions and replication factor of topics `create_topics` makes.
fn new_topics(config: &Config, problems: &mut Problems) {
    let outputs = &config.outputs;
    if outputs.new_topic_partitions < 1 {
        problems.add(
            "outputs.new_topic_partitions",
            format_args!("must be at least 1, got {}", outputs.new_topic_partitions),
        );
    }
    if let Some(factor) = outputs.new_topic_replication_factor.filter(|&f| f < 1) {
        problems.add(
            "outputs.new_topic_replication_factor",
            format_args!("must be at least 1, got {factor}; leave it out for the brokers' default"),
        );
    }
    problems.positive_duration("outputs.new_topic_retention", outputs.new_topic_retention);
}

/// Every topic journeyd reads or writes, with its key, in file order.
fn named_topics(config: &Config) -> Vec<(String, &str)> {
    let inputs = config.inputs.iter().enumerate();
    let inputs = inputs.map(|(i, input)| (format!("inputs[{i}].topic"), input.topic.as_str()));
    let outputs = config.outputs.topics().into_iter();
    let outputs = outputs.map(|(key, topic)| (format!("outputs.{key}"), topic));
    let changelog = (
        "runtime.changelog_topic".to_owned(),
        config.runtime.changelog_topic.as_str(),
    );
    inputs.chain(outputs).chain([changelog]).collect()
}

/// Whether `topic` is a legal Kafka topic name; a problem at `key` if not.
fn valid_name(key: &str, topic: &str, problems: &mut Problems) -> bool {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let why = if topic.is_empty() {
        "must not be empty".to_owned()
    } else if topic.len() > MAX_TOPIC_LEN {
        format!(
            "must be at most {MAX_TOPIC_LEN} characters, got {}",
            topic.len()
        )
    } else if topic == "." || topic == ".." {
        format!("\"{topic}\" is not a valid topic name")
    } else if let Some(c) = topic.chars().find(|&c| !legal(c)) {
        format!(
            "invalid character {c:?} in topic \"{topic}\"; topic names use only ASCII letters, \
             digits, '.', '_' and '-'"
        )
    } else {
        return true;
    };
    problems.add(key, why);
    false
}

/// The schema sources: well formed, and present where an Avro encoding
/// needs them.
fn schema_registry(config: &Config, problems: &mut Problems) {
    let registry = &config.schema_registry;
    if let Some(url) = &registry.url {
        registry_url(url, problems);
    }
    if registry
        .schemas_dir
        .as_ref()
        .is_some_and(|dir| dir.as_os_str().is_empty())
    {
        problems.add(
            "schema_registry.schemas_dir",
            "must not be empty; leave it out when there are no local schemas",
        );
    }
    problems.positive_duration("schema_registry.timeout", registry.timeout);
    if registry.retry_for > MAX_REGISTRY_RETRY {
        problems.add(
            "schema_registry.retry_for",
            format_args!(
                "must be at most \"{}\", got \"{}\": start-up does not poll while it registers \
                 the output schemas, and a consumer that does not poll within \
                 max.poll.interval.ms leaves its group",
                humantime::format_duration(MAX_REGISTRY_RETRY),
                humantime::format_duration(registry.retry_for)
            ),
        );
    }
    if registry.max_held_bytes == 0 {
        problems.add(
            "schema_registry.max_held_bytes",
            "must be at least 1: records whose schema id is being looked up wait in a queue \
             of this many bytes per partition",
        );
    }
    required_sources(config, registry, problems);
}

/// An `http://` or `https://` URL with a host. The URL itself is not
/// quoted: it may carry credentials.
fn registry_url(url: &str, problems: &mut Problems) {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
    let host = host.map(|h| h.rsplit('@').next().unwrap_or_default());
    if !host.is_some_and(|h| !h.is_empty() && !h.contains(char::is_whitespace)) {
        problems.add(
            "schema_registry.url",
            "must be an http:// or https:// URL with a host, e.g. \"http://registry:8081\"",
        );
    } else if url.contains(['?', '#']) {
        problems.add(
            "schema_registry.url",
            "must not have a query or fragment: journeyd appends the API paths to it",
        );
    }
}

/// A `confluent` input needs a registry or local writer schemas; Avro
/// outputs need a registry or fixed schema ids.
fn required_sources(config: &Config, registry: &SchemaRegistryConfig, problems: &mut Problems) {
    if registry.url.is_some() {
        return;
    }
    let confluent: Vec<String> = config
        .inputs
        .iter()
        .enumerate()
        .filter(|(_, input)| input.encoding == InputEncoding::Confluent)
        .map(|(i, _)| format!("inputs[{i}].encoding"))
        .collect();
    if !confluent.is_empty() && registry.schemas_dir.is_none() {
        let keys = confluent.join(", ");
        problems.add(
            "schema_registry.url",
            format_args!(
                "required because {keys} = \"confluent\": set schema_registry.url, or \
                 schema_registry.schemas_dir to a directory of writer schemas named <id>.avsc"
            ),
        );
    }
    if config.outputs.format == OutputFormat::Avro && registry.output_schema_ids.is_none() {
        problems.add(
            "schema_registry.url",
            "required because outputs.format = \"avro\": set schema_registry.url, or \
             schema_registry.output_schema_ids to the schema ids to write",
        );
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::config::{Config, InputConfig, InputEncoding, OutputFormat, OutputSchemaIds};

    use crate::config::validate::problems_of as problems;

    fn input(topic: &str, encoding: InputEncoding) -> InputConfig {
        InputConfig {
            topic: topic.into(),
            encoding,
        }
    }

    #[test]
    fn topic_names_are_legal_and_distinct() {
        let mut config = Config::default();
        config
            .inputs
            .push(input("touchpoints", InputEncoding::Avro));
        config
            .inputs
            .push(input("journey.dlq", InputEncoding::Json));
        config.outputs.funnel = "funnel windows".into();
        config.outputs.audit = String::new();
        config.outputs.erasure = "x".repeat(250);
        config.runtime.changelog_topic = "journey.stage-changes".into();
        assert_eq!(
            problems(&config),
            [
                "inputs[1].topic: topic \"touchpoints\" is already used by inputs[0].topic",
                "outputs.funnel: invalid character ' ' in topic \"funnel windows\"; topic names \
                 use only ASCII letters, digits, '.', '_' and '-'",
                "outputs.dlq: topic \"journey.dlq\" is already used by inputs[2].topic",
                "outputs.audit: must not be empty",
                "outputs.erasure: must be at most 249 characters, got 250",
                "runtime.changelog_topic: topic \"journey.stage-changes\" is already used by \
                 outputs.stage_changes",
            ]
        );
    }

    #[test]
    fn new_topics_have_partitions_replicas_and_retention() {
        let mut config = Config::default();
        config.outputs.new_topic_partitions = 0;
        config.outputs.new_topic_replication_factor = Some(0);
        config.outputs.new_topic_retention = std::time::Duration::ZERO;
        assert_eq!(
            problems(&config),
            [
                "outputs.new_topic_partitions: must be at least 1, got 0",
                "outputs.new_topic_replication_factor: must be at least 1, got 0; leave it out \
                 for the brokers' default",
                "outputs.new_topic_retention: must be at least 1ms, got \"0s\"",
            ]
        );
        config.outputs.new_topic_partitions = 12;
        config.outputs.new_topic_replication_factor = Some(3);
        config.outputs.new_topic_retention = std::time::Duration::from_secs(86_400);
        assert_eq!(problems(&config), Vec::<String>::new());
    }

    #[test]
    fn at_least_one_input() {
        let mut config = Config::default();
        config.inputs.clear();
        assert_eq!(
            problems(&config),
            ["inputs: must list at least one input topic"]
        );
    }

    #[test]
    fn avro_encodings_need_a_schema_source() {
        let mut config = Config::default();
        config.inputs.push(input("app", InputEncoding::Confluent));
        config.outputs.format = OutputFormat::Avro;
        let found = problems(&config);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with(
            "schema_registry.url: required because inputs[1].encoding = \"confluent\""
        ));
        assert!(
            found[1].starts_with("schema_registry.url: required because outputs.format = \"avro\"")
        );

        config.schema_registry.schemas_dir = Some(PathBuf::from("/etc/journeyd/schemas"));
        config.schema_registry.output_schema_ids = Some(OutputSchemaIds {
            stage_changes: 1,
            churn_risk: 2,
            funnel: 3,
            moments: 4,
        });
        assert_eq!(problems(&config), Vec::<String>::new());

        config.schema_registry = Default::default();
        config.schema_registry.url = Some("http://registry:8081".into());
        assert_eq!(problems(&config), Vec::<String>::new());
    }

    #[test]
    fn the_registry_url_is_checked_but_not_quoted() {
        let mut config = Config::default();
        for bad in ["registry:8081", "https://", "https://user:s3cret@/x"] {
            config.schema_registry.url = Some(bad.into());
            let found = problems(&config);
            assert_eq!(found.len(), 1, "{bad}: {found:?}");
            assert!(found[0].starts_with("schema_registry.url: must be an http://"));
            assert!(!found[0].contains("s3cret"));
        }
        config.schema_registry.url = Some("https://key:s3cret@registry.example.com".into());
        assert_eq!(problems(&config), Vec::<String>::new());
        config.schema_registry.url = Some("https://key:s3cret@registry/?x=1".into());
        assert_eq!(
            problems(&config),
            [
                "schema_registry.url: must not have a query or fragment: journeyd appends the API \
              paths to it"
            ]
        );
    }

    #[test]
    fn registry_retries_stay_below_the_poll_interval() {
        let mut config = Config::default();
        config.schema_registry.retry_for = std::time::Duration::ZERO;
        assert_eq!(problems(&config), Vec::<String>::new());
        config.schema_registry.retry_for = std::time::Duration::from_secs(121);
        assert_eq!(
            problems(&config),
            [
                "schema_registry.retry_for: must be at most \"2m\", got \"2m 1s\": start-up \
              does not poll while it registers the output schemas, and a consumer that does \
              not poll within max.poll.interval.ms leaves its group"
            ]
        );
    }

    #[test]
    fn the_queue_of_records_waiting_for_a_schema_is_not_empty() {
        let mut config = Config::default();
        config.schema_registry.max_held_bytes = 1;
        assert_eq!(problems(&config), Vec::<String>::new());
        config.schema_registry.max_held_bytes = 0;
        assert_eq!(
            problems(&config),
            [
                "schema_registry.max_held_bytes: must be at least 1: records whose schema id is \
              being looked up wait in a queue of this many bytes per partition"
            ]
        );
    }
}
