//! librdkafka's own log lines and errors, forwarded to `tracing` without
//! secrets.
//!
//! librdkafka logs through its client context. With its `debug` property
//! set it can print a great deal (connection details, the client
//! configuration with `debug = "conf"`); it redacts the properties it knows
//! to be sensitive, but journeyd does not rely on that: every forwarded line
//! has the values of the secret properties of `[kafka]` (see
//! [`crate::config::is_secret_property`]) replaced by
//! [`crate::config::REDACTED`] before it reaches a log. Lines keep the
//! `librdkafka` target, so `RUST_LOG=librdkafka=debug` selects them.

use std::borrow::Cow;

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;

use crate::config::{KafkaConfig, REDACTED, is_secret_property};

/// Forwards librdkafka logs with secret values scrubbed.
#[derive(Clone, Default)]
pub struct KafkaLog {
    /// Values of secret properties, longest first (so that a secret that
    /// contains another is replaced whole).
    secrets: Vec<String>,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl KafkaLog {
    /// A forwarder that hides the secret property values of `kafka`, from
    /// every property table.
    pub fn new(kafka: &KafkaConfig) -> KafkaLog {
        let tables = kafka.property_tables();
        KafkaLog::from_properties(tables.iter().flat_map(|(_, table)| table.iter()))
    }

    /// A forwarder that hides the values of the secret ones among
    /// `properties` (name, value).
    pub fn from_properties<'a>(
        properties: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> KafkaLog {
        let mut secrets: Vec<String> = properties
            .into_iter()
            .filter(|(name, value)| is_secret_property(name) && !value.is_empty())
            .map(|(_, value)| value.to_owned())
            .collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        KafkaLog { secrets }
    }

    /// `text` with every secret value replaced by [`REDACTED`].
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut text = Cow::Borrowed(text);
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = Cow::Owned(text.replace(secret.as_str(), REDACTED));
            }
        }
        text
    }

    /// Forwards one librdkafka log line at the matching level.
    pub fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let message = self.scrub(message);
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", facility, "librdkafka: {message}");
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", facility, "librdkafka: {message}");
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", facility, "librdkafka: {message}");
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", facility, "librdkafka: {message}");
            }
        }
    }

    /// Forwards a global client error (librdkafka goes on retrying).
    pub fn error(&self, error: &KafkaError, reason: &str) {
        let error = error.to_string();
        tracing::error!(
            target: "librdkafka",
            error = %self.scrub(&error),
            reason = %self.scrub(reason),
            "Kafka client error."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KafkaProperties;

    #[test]
    fn secret_values_are_scrubbed_from_every_table() {
        let kafka = KafkaConfig {
            properties: [("sasl.password", "hunter2"), ("sasl.username", "ann")]
                .into_iter()
                .collect(),
            consumer_properties: [("ssl.key.password", "hunter2-key")]
                .into_iter()
                .collect::<KafkaProperties>(),
            ..KafkaConfig::default()
        };
        let log = KafkaLog::new(&kafka);
        assert_eq!(
            log.scrub("user ann, password hunter2, key hunter2-key"),
            "user ann, password <redacted>, key <redacted>"
        );
        assert!(matches!(log.scrub("nothing secret"), Cow::Borrowed(_)));
        assert!(!format!("{log:?}").contains("hunter2"));
    }
}
