//! Registering the Avro output schemas at start-up.
//!
//! Each output schema of `schemas/` is registered under the subject of the
//! TopicNameStrategy, `<output topic>-value`, and the id the registry
//! returns is the one written in the Confluent header of that topic's
//! records. Registering a schema the subject already has is idempotent: the
//! registry returns its existing id.

use super::client::RegistryClient;
use super::error::RegistryError;
use super::retry::Retry;
use crate::codec::output::{OutputKind, OutputSchemaIds};
use crate::config::OutputsConfig;
use crate::telemetry::Metrics;
use crate::telemetry::events::{InternalEvent, OutputSchemaRegistered};

/// An output schema could not be registered.
#[derive(Debug, thiserror::Error)]
#[error("cannot register the schema of outputs.{key} under subject \"{subject}\": {error}")]
pub struct RegistrationError {
    /// The `[outputs]` key of the topic.
    pub key: &'static str,
    /// The subject it was registered under.
    pub subject: String,
    /// What the registry said, or why it could not be asked.
    pub error: RegistryError,
}

/// The subject of the values of `topic` (TopicNameStrategy).
pub fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}

/// Registers the schema of every output kind under its topic's subject,
/// retrying an unreachable registry as `retry` says; the ids to write.
pub fn register_outputs(
    client: &RegistryClient,
    outputs: &OutputsConfig,
    retry: Retry,
    metrics: &Metrics,
) -> Result<OutputSchemaIds, RegistrationError> {
    let id = |kind: OutputKind| -> Result<u32, RegistrationError> {
        let subject = value_subject(kind.topic(outputs));
        match retry.run(|| client.register(&subject, kind.schema())) {
            Ok(id) => {
                OutputSchemaRegistered {
                    subject: &subject,
                    id,
                }
                .emit(metrics);
                Ok(id)
            }
            Err(error) => Err(RegistrationError {
                key: kind.as_str(),
                subject,
                error,
            }),
        }
    };
    OutputSchemaIds::try_from_fn(id)
}
