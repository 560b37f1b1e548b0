//! Secrets in the configuration: the HTTP bearer token and the credentials
//! among the librdkafka properties.
//!
//! A [`Secret`] reads like a string from the file but never shows its text
//! in `Debug`, `Display` or serialized output; [`Secret::expose`] is the one
//! way to read it, at the place that hands it to a client. Errors about a
//! secret never echo its value either: a token written as a number is
//! reported as "invalid type: integer", without the digits.

use std::fmt;

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// What a secret looks like in `Debug`, `Display` and serialized output.
pub const REDACTED: &str = "<redacted>";

/// Parts of a librdkafka property name that mark its value as a secret
/// (`sasl.password`, `ssl.key.password`, `sasl.oauthbearer.client.secret`,
/// `ssl.key.pem`, ...). Matched case-insensitively anywhere in the name.
/// Over-matching (`ssl.key.location`, a path) only hides a harmless value.
pub const SECRET_PROPERTY_MARKERS: [&str; 6] = [
    "password",
    "secret",
    "token",
    "key",
    "credential",
    "oauthbearer.config",
];

/// Whether the value of librdkafka property `name` is a secret, to be kept
/// out of logs and `Debug` output.
pub fn is_secret_property(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PROPERTY_MARKERS
        .iter()
        .any(|marker| name.contains(marker))
}

/// A string that must not appear in logs: `Debug`, `Display` and
/// `Serialize` all give [`REDACTED`]. Deserializes from a plain string.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `text`.
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The secret text, for handing to the component that uses it. Never
    /// log or format the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        // `any`, so that the visitor (not the format) reports a wrong type.
        deserializer.deserialize_any(SecretVisitor)
    }
}

/// Accepts a string; rejects anything else without echoing the value.
struct SecretVisitor;

impl SecretVisitor {
    fn reject<E: de::Error>(&self, kind: &'static str) -> Result<Secret, E> {
        Err(E::invalid_type(Unexpected::Other(kind), self))
    }
}

impl Visitor<'_> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret::new(v))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret(v))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
        self.reject("boolean")
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secret, E> {
        self.reject("integer")
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secret, E> {
        self.reject("integer")
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
        self.reject("float")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_and_serializing_redact() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "<redacted> <redacted>");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"<redacted>\"");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn a_wrong_type_is_reported_without_its_value() {
        let error = serde_json::from_str::<Secret>("123456").unwrap_err();
        let shown = error.to_string();
        assert!(
            shown.starts_with("invalid type: integer, expected a string"),
            "{shown}"
        );
        assert!(!shown.contains("123456"), "{shown}");
        let error = toml::from_str::<toml::Table>("t = 0.123456")
            .map(toml::Value::Table)
            .unwrap()["t"]
            .clone()
            .try_into::<Secret>()
            .unwrap_err();
        assert_eq!(error.message(), "invalid type: float, expected a string");
    }

    #[test]
    fn secret_properties_are_recognised_by_name() {
        for name in [
            "sasl.password",
            "ssl.key.password",
            "SSL.KEYSTORE.PASSWORD",
            "sasl.oauthbearer.client.secret",
            "ssl.key.pem",
            "sasl.oauthbearer.config",
        ] {
            assert!(is_secret_property(name), "{name}");
        }
        for name in [
            "security.protocol",
            "sasl.mechanism",
            "sasl.username",
            "linger.ms",
        ] {
            assert!(!is_secret_property(name), "{name}");
        }
    }
}
