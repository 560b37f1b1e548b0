//! Where data comes from and goes to: the input topics and their encodings
//! (`[[inputs]]`), the output topics and their format (`[outputs]`), and
//! the schemas the Avro encodings need (`[schema_registry]`).

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use super::secret::REDACTED;
use crate::model::OutputKind;

/// How the touchpoints of an input topic are encoded (docs/outputs.md#touchpoints-the-input).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputEncoding {
    /// One JSON object per message.
    #[default]
    Json,
    /// Plain Avro written with the known touchpoint schema.
    Avro,
    /// Confluent Schema Registry wire format: magic byte 0, a 4-byte schema
    /// id, then the Avro body. Needs a registry or local writer schemas.
    Confluent,
}

impl InputEncoding {
    /// The name used in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            InputEncoding::Json => "json",
            InputEncoding::Avro => "avro",
            InputEncoding::Confluent => "confluent",
        }
    }
}

/// One input topic of touchpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// The topic to consume; keyed by customer id.
    pub topic: String,
    /// How its messages are encoded; `json` when absent.
    #[serde(default)]
    pub encoding: InputEncoding,
}

impl Default for InputConfig {
    fn default() -> Self {
        InputConfig {
            topic: "touchpoints".to_owned(),
            encoding: InputEncoding::Json,
        }
    }
}

/// How derived events are written (docs/outputs.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// One JSON object per message.
    #[default]
    Json,
    /// Avro with the schemas in `schemas/`, in the Confluent wire format.
    Avro,
}

/// The output topics and their format. The erasure topic is read, not
/// written, but lives here with the other topics journeyd owns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutputsConfig {
    /// `json` (default) or `avro`.
    pub format: OutputFormat,
    /// `StageChanged` events.
    pub stage_changes: String,
    /// `ChurnRiskChanged` events, on band changes only.
    pub churn_risk: String,
    /// `FunnelWindow` summaries, one per closed window.
    pub funnel: String,
    /// `MomentCompleted` and `MomentAbandoned`: journey moments that ended.
    pub moments: String,
    /// Rejected input: the original bytes, with the source and the reason
    /// in headers.
    pub dlq: String,
    /// `CustomerErased` confirmations, the proof of an erasure.
    pub audit: String,
    /// Erasure requests to consume (key = customer id); an input, not an output.
    pub erasure: String,
    /// Whether start-up creates the topics of this section that do not
    /// exist. Off by default: output topics are usually provisioned with
    /// the platform's own partitions, retention and replication, and a
    /// missing one then stops start-up with an error naming it instead of
    /// being created with guesses.
    pub create_topics: bool,
    /// Partitions of a topic created by `create_topics`, except the
    /// erasure topic, which always gets as many as the input topics.
    pub new_topic_partitions: i32,
    /// Replication factor of a topic created by `create_topics`; the
    /// brokers' `default.replication.factor` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_topic_replication_factor: Option<i32>,
    /// `retention.ms` of a topic created by `create_topics`: how long its
    /// records (which name customers) are kept.
    #[serde(with = "humantime_serde")]
    pub new_topic_retention: Duration,
}

impl Default for OutputsConfig {
    fn default() -> Self {
        OutputsConfig {
            format: OutputFormat::Json,
            stage_changes: "journey.stage-changes".to_owned(),
            churn_risk: "journey.churn-risk".to_owned(),
            funnel: "journey.funnel".to_owned(),
            moments: "journey.moments".to_owned(),
            dlq: "journey.dlq".to_owned(),
            audit: "journey.audit".to_owned(),
            erasure: "journey.erasure".to_owned(),
            create_topics: false,
            new_topic_partitions: 1,
            new_topic_replication_factor: None,
            new_topic_retention: Duration::from_secs(7 * 86_400),
        }
    }
}

impl OutputsConfig {
    /// The topic of output `kind`.
    pub fn topic(&self, kind: OutputKind) -> &str {
        match kind {
            OutputKind::StageChanges => &self.stage_changes,
            OutputKind::ChurnRisk => &self.churn_risk,
            OutputKind::Funnel => &self.funnel,
            OutputKind::Moments => &self.moments,
            OutputKind::Audit => &self.audit,
        }
    }

    /// Every topic of this section with its key, in file order: the
    /// derived outputs ([`OutputKind::ALL`]), the dead-letter topic, the
    /// audit topic and the erasure topic.
    pub fn topics(&self) -> Vec<(&'static str, &str)> {
        let derived = OutputKind::ALL.map(|kind| (kind.as_str(), self.topic(kind)));
        let audit = OutputKind::Audit;
        (derived.into_iter())
            .chain([
                ("dlq", self.dlq.as_str()),
                (audit.as_str(), self.topic(audit)),
                ("erasure", self.erasure.as_str()),
            ])
            .collect()
    }
}

/// Where Avro schemas come from: a Confluent Schema Registry, or local
/// files and fixed ids for deployments without one.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SchemaRegistryConfig {
    /// Base URL of a Confluent Schema Registry, e.g. `http://registry:8081`.
    /// Credentials in it are hidden from `Debug` and serialized output.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_url"
    )]
    pub url: Option<String>,
    /// A directory of writer schemas named `<id>.avsc`, for decoding the
    /// Confluent wire format without a registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schemas_dir: Option<PathBuf>,
    /// Schema ids to write in the wire format of Avro outputs, instead of
    /// looking them up in (or registering them with) the registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema_ids: Option<OutputSchemaIds>,
    /// The schema id to write in Avro `CustomerErased` records on the audit
    /// topic (`schemas/customer_erased.avsc`), instead of registering the
    /// schema. With `output_schema_ids`, no registry and no `audit_schema_id`,
    /// audit records are written as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_schema_id: Option<u32>,
    /// The schema id to write in Avro `CustomerEvicted` records on the
    /// audit topic (`schemas/customer_evicted.avsc`), instead of registering
    /// the schema under `<audit topic>-journeyd.v1.CustomerEvicted`. Without
    /// it and without a registry, evictions are announced as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evicted_schema_id: Option<u32>,
    /// The longest a request to the registry may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How long a look-up of an unknown schema id keeps retrying a registry
    /// that cannot be reached before the records waiting for it are
    /// dead-lettered; also how long start-up keeps trying to register the
    /// output schemas (start-up does not poll meanwhile, so this stays well
    /// below the consumer's `max.poll.interval.ms`).
    #[serde(with = "humantime_serde")]
    pub retry_for: Duration,
    /// Per input partition, how many bytes of records (key and value) wait
    /// at most for the look-up of a schema id: the record whose id is
    /// looked up and those behind it, which keep their order. When full,
    /// the partition's consumption is paused until the look-up ends.
    pub max_held_bytes: usize,
}

/// The longest `schema_registry.retry_for` accepted: start-up does not
/// poll while it registers the output schemas, and a consumer that does
/// not poll within `max.poll.interval.ms` (5 minutes by default) leaves
/// its group.
pub const MAX_REGISTRY_RETRY: Duration = Duration::from_secs(120);

/// The default of `schema_registry.max_held_bytes`: 8 MiB per partition.
pub const DEFAULT_MAX_HELD_BYTES: usize = 8 << 20;

impl Default for SchemaRegistryConfig {
    fn default() -> Self {
        SchemaRegistryConfig {
            url: None,
            schemas_dir: None,
            output_schema_ids: None,
            audit_schema_id: None,
            evicted_schema_id: None,
            timeout: Duration::from_secs(5),
            retry_for: Duration::from_secs(10),
            max_held_bytes: DEFAULT_MAX_HELD_BYTES,
        }
    }
}

/// `Debug` hides credentials given in the URL (`https://key:secret@host`).
impl fmt::Debug for SchemaRegistryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaRegistryConfig")
            .field("url", &self.url.as_deref().map(without_userinfo))
            .field("schemas_dir", &self.schemas_dir)
            .field("output_schema_ids", &self.output_schema_ids)
            .field("audit_schema_id", &self.audit_schema_id)
            .field("evicted_schema_id", &self.evicted_schema_id)
            .field("timeout", &self.timeout)
            .field("retry_for", &self.retry_for)
            .field("max_held_bytes", &self.max_held_bytes)
            .finish()
    }
}

/// Serializes the registry URL without its credentials.
fn serialize_url<S: Serializer>(url: &Option<String>, serializer: S) -> Result<S::Ok, S::Error> {
    url.as_deref().map(without_userinfo).serialize(serializer)
}

/// `url` with the user information of its authority (`user:password@`)
/// replaced by [`REDACTED`].
pub fn without_userinfo(url: &str) -> Cow<'_, str> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..authority_end].rfind('@') {
        Some(at) => Cow::Owned(format!("{}{REDACTED}{}", &url[..start], &url[start + at..])),
        None => Cow::Borrowed(url),
    }
}

/// The schema ids of the Avro outputs, one per output schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSchemaIds {
    /// The id of `schemas/stage_changed.avsc`.
    pub stage_changes: u32,
    /// The id of `schemas/churn_risk_changed.avsc`.
    pub churn_risk: u32,
    /// The id of `schemas/funnel_window.avsc`.
    pub funnel: u32,
    /// The id of `schemas/moment_ended.avsc`.
    pub moments: u32,
}

impl OutputSchemaIds {
    /// The id of output `kind`; `None` for [`OutputKind::Audit`], whose
    /// ids are held apart.
    pub const fn get(&self, kind: OutputKind) -> Option<u32> {
        match kind {
            OutputKind::StageChanges => Some(self.stage_changes),
            OutputKind::ChurnRisk => Some(self.churn_risk),
            OutputKind::Funnel => Some(self.funnel),
            OutputKind::Moments => Some(self.moments),
            OutputKind::Audit => None,
        }
    }

    /// The ids `id` gives each kind of [`OutputKind::ALL`], in that order;
    /// the first error stops it.
    pub fn try_from_fn<E>(mut id: impl FnMut(OutputKind) -> Result<u32, E>) -> Result<Self, E> {
        let mut ids = OutputSchemaIds {
            stage_changes: 0,
            churn_risk: 0,
            funnel: 0,
            moments: 0,
        };
        for kind in OutputKind::ALL {
            let slot = match kind {
                OutputKind::StageChanges => &mut ids.stage_changes,
                OutputKind::ChurnRisk => &mut ids.churn_risk,
                OutputKind::Funnel => &mut ids.funnel,
                OutputKind::Moments => &mut ids.moments,
                OutputKind::Audit => continue,
            };
            *slot = id(kind)?;
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_hidden_and_the_rest_kept() {
        assert_eq!(
            without_userinfo("https://key:s3cret@registry.example.com/path?q=a@b"),
            "https://<redacted>@registry.example.com/path?q=a@b"
        );
        assert_eq!(
            without_userinfo("http://registry:8081"),
            "http://registry:8081"
        );
        let config = SchemaRegistryConfig {
            url: Some("https://key:s3cret@host".into()),
            ..SchemaRegistryConfig::default()
        };
        assert!(!format!("{config:?}").contains("s3cret"));
        let serialized = toml::to_string(&config).unwrap();
        assert!(
            serialized.contains("url = \"https://<redacted>@host\""),
            "{serialized}"
        );
    }
}
