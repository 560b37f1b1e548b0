//! The Kafka connection (`[kafka]`): brokers, consumer group, and the
//! librdkafka properties passed through for security and tuning.
//!
//! Property tables keep their values out of `Debug` and serialized output
//! when the property name marks a secret ([`is_secret_property`]), so a
//! logged configuration never shows a SASL password.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use super::secret::{REDACTED, is_secret_property};

/// How journeyd connects to Kafka (docs/operations.md#run-against-a-kafka-cluster).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port` separated by commas
    /// (librdkafka `bootstrap.servers`).
    pub brokers: String,
    /// The consumer group; instances in one group split the input
    /// partitions between them (`group.id`).
    pub group_id: String,
    /// Names this process to the brokers, in their logs and quotas (`client.id`).
    pub client_id: String,
    /// Static membership (`group.instance.id`): a restart within the session
    /// timeout rejoins without a rebalance. Unique per instance; absent by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_instance_id: Option<String>,
    /// librdkafka properties for both the consumer and the producer, e.g.
    /// TLS and SASL settings.
    pub properties: KafkaProperties,
    /// librdkafka properties for the consumer only; they win over `properties`.
    pub consumer_properties: KafkaProperties,
    /// librdkafka properties for the producer only; they win over `properties`.
    pub producer_properties: KafkaProperties,
    /// The longest one consumer poll waits for messages, which bounds how
    /// late a timer or a shutdown request is noticed on a quiet input.
    #[serde(with = "humantime_serde")]
    pub poll_timeout: Duration,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "localhost:9092".to_owned(),
            group_id: "journeyd".to_owned(),
            client_id: "journeyd".to_owned(),
            group_instance_id: None,
            properties: KafkaProperties::default(),
            consumer_properties: KafkaProperties::default(),
            producer_properties: KafkaProperties::default(),
            poll_timeout: Duration::from_millis(100),
        }
    }
}

impl KafkaConfig {
    /// The property tables by key, in the order they apply: `properties`,
    /// then the per-client table that overrides it.
    pub fn property_tables(&self) -> [(&'static str, &KafkaProperties); 3] {
        [
            ("properties", &self.properties),
            ("consumer_properties", &self.consumer_properties),
            ("producer_properties", &self.producer_properties),
        ]
    }

    /// The properties one client gets, in the order they apply: the shared
    /// `properties`, then `per_client` (`consumer_properties` or
    /// `producer_properties`), whose values override the shared ones.
    pub fn client_properties<'a>(
        &'a self,
        per_client: &'a KafkaProperties,
    ) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.properties.iter().chain(per_client.iter())
    }
}

/// A table of librdkafka properties, name to value.
///
/// In the file values are strings; numbers and booleans are accepted and
/// passed on as their text (`"linger.ms" = 5` is `"5"`). `Debug` and
/// `Serialize` show the value of a secret property (see
/// [`is_secret_property`]) as `<redacted>`; [`KafkaProperties::iter`] gives
/// the real values, for the client configuration only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KafkaProperties(BTreeMap<String, String>);

impl KafkaProperties {
    /// Every property as `(name, value)`, in name order. Values of secret
    /// properties are real: hand them to librdkafka, never to a log.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The value of property `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Sets property `name` to `value`.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }

    /// Whether no property is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value to show for property `name`: itself or [`REDACTED`].
    fn shown<'a>(name: &str, value: &'a str) -> &'a str {
        if is_secret_property(name) {
            REDACTED
        } else {
            value
        }
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for KafkaProperties {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        KafkaProperties(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl fmt::Debug for KafkaProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(k, v)| (k, KafkaProperties::shown(k, v))))
            .finish()
    }
}

impl Serialize for KafkaProperties {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.iter() {
            map.serialize_entry(name, KafkaProperties::shown(name, value))?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for KafkaProperties {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let table = BTreeMap::<String, PropertyValue>::deserialize(deserializer)?;
        Ok(table.into_iter().map(|(k, v)| (k, v.0)).collect())
    }
}

/// One property value: a string, or a number or boolean taken as its text.
struct PropertyValue(String);

impl<'de> Deserialize<'de> for PropertyValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PropertyVisitor)
    }
}

struct PropertyVisitor;

impl Visitor<'_> for PropertyVisitor {
    type Value = PropertyValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<PropertyValue, E> {
        Ok(PropertyValue(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<PropertyValue, E> {
        Ok(PropertyValue(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<PropertyValue, E> {
        Ok(PropertyValue(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<PropertyValue, E> {
        Ok(PropertyValue(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<PropertyValue, E> {
        Ok(PropertyValue(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<PropertyValue, E> {
        Ok(PropertyValue(v.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sasl() -> KafkaProperties {
        [
            ("security.protocol", "SASL_SSL"),
            ("sasl.password", "hunter2"),
            ("ssl.key.password", "k3y"),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn debug_and_serialize_hide_secret_values_only() {
        let properties = sasl();
        let shown = format!("{properties:?}");
        assert_eq!(
            shown,
            r#"{"sasl.password": "<redacted>", "security.protocol": "SASL_SSL", "ssl.key.password": "<redacted>"}"#
        );
        let json = serde_json::to_string(&properties).unwrap();
        assert!(!json.contains("hunter2") && !json.contains("k3y"), "{json}");
        assert_eq!(properties.get("sasl.password"), Some("hunter2"));
    }

    #[test]
    fn scalars_are_taken_as_their_text() {
        let table: toml::Table = toml::from_str(
            "\"linger.ms\" = 5\n\"enable.ssl.certificate.verification\" = false\n\"x\" = 0.5\n",
        )
        .unwrap();
        let properties: KafkaProperties = toml::Value::Table(table).try_into().unwrap();
        let all: Vec<(&str, &str)> = properties.iter().collect();
        assert_eq!(
            all,
            [
                ("enable.ssl.certificate.verification", "false"),
                ("linger.ms", "5"),
                ("x", "0.5"),
            ]
        );
    }
}
