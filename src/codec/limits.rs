//! How long a touchpoint's strings may be: `customer_id` and `event_id`,
//! `action`, `channel`, and each attribute key and value.
//!
//! A customer id becomes a key of the state map, a changelog key and a
//! label in every output; an action or channel is matched against the
//! rules; attributes carry segments. None of them has a business being
//! kilobytes long, and a producer that sends such values is broken, so a
//! touchpoint with one is rejected as `field_too_long` before it reaches
//! the engine. Lengths are counted in bytes of UTF-8, which is what they
//! cost, and compared without copying anything.
//!
//! The limits come from `[limits]` in the configuration; this module only
//! holds and applies them ([`FieldLimits::check`], called once per
//! touchpoint from the decoders' shared checks).

use std::borrow::Cow;

use super::invalid::{Invalid, InvalidReason, excerpt};

/// The longest string accepted for each touchpoint field, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldLimits {
    /// `customer_id` and `event_id`.
    pub id: usize,
    /// `action`.
    pub action: usize,
    /// `channel`, before it is mapped to a known channel or `other`.
    pub channel: usize,
    /// Each key of `attributes`.
    pub attribute_key: usize,
    /// Each value of `attributes`.
    pub attribute_value: usize,
}

impl FieldLimits {
    /// The default `limits.max_id_length`.
    pub const DEFAULT_ID: usize = 256;
    /// The default `limits.max_action_length`.
    pub const DEFAULT_ACTION: usize = 64;
    /// The default `limits.max_channel_length`.
    pub const DEFAULT_CHANNEL: usize = 64;
    /// The default `limits.max_attribute_key_length`.
    pub const DEFAULT_ATTRIBUTE_KEY: usize = 128;
    /// The default `limits.max_attribute_value_length`.
    pub const DEFAULT_ATTRIBUTE_VALUE: usize = 1024;

    /// Rejects `value` of `field` as `field_too_long` when it is longer
    /// than `limit` bytes.
    pub(crate) fn check(field: &str, value: &str, limit: usize) -> Result<(), Invalid> {
        match value.len() > limit {
            true => Err(too_long(field, value.len(), limit)),
            false => Ok(()),
        }
    }

    /// Rejects the attributes when their longest key or value is too long.
    pub(crate) fn check_attributes(&self, sizes: &AttributeSizes<'_>) -> Result<(), Invalid> {
        if sizes.longest_key > self.attribute_key {
            return Err(too_long(
                "an attribute key",
                sizes.longest_key,
                self.attribute_key,
            ));
        }
        if sizes.longest_value > self.attribute_value {
            let field = match &sizes.longest_value_key {
                Some(key) => format!("attributes[\"{}\"]", excerpt(key)),
                None => "an attribute value".to_owned(),
            };
            return Err(too_long(&field, sizes.longest_value, self.attribute_value));
        }
        Ok(())
    }
}

impl Default for FieldLimits {
    fn default() -> Self {
        FieldLimits {
            id: FieldLimits::DEFAULT_ID,
            action: FieldLimits::DEFAULT_ACTION,
            channel: FieldLimits::DEFAULT_CHANNEL,
            attribute_key: FieldLimits::DEFAULT_ATTRIBUTE_KEY,
            attribute_value: FieldLimits::DEFAULT_ATTRIBUTE_VALUE,
        }
    }
}

fn too_long(field: &str, len: usize, limit: usize) -> Invalid {
    Invalid::new(
        InvalidReason::FieldTooLong,
        format!("{field} is {len} bytes long, limit {limit}"),
    )
}

/// What the decoders remember of `attributes`, which a touchpoint does not
/// keep: the longest key and the longest value (with its key, when the
/// decoder has it without copying).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct AttributeSizes<'a> {
    /// Length of the longest key, in bytes.
    pub longest_key: usize,
    /// Length of the longest value, in bytes.
    pub longest_value: usize,
    /// The key of the longest value, for the rejection's detail.
    pub longest_value_key: Option<Cow<'a, str>>,
}

impl<'a> AttributeSizes<'a> {
    /// Takes one entry into account. `key` is its length and, if at hand
    /// without copying, its text.
    pub fn add(&mut self, key_len: usize, key: Option<Cow<'a, str>>, value_len: usize) {
        self.longest_key = self.longest_key.max(key_len);
        if value_len > self.longest_value {
            self.longest_value = value_len;
            self.longest_value_key = key;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_at_the_limit_passes_one_byte_more_does_not() {
        assert_eq!(FieldLimits::check("action", "abcd", 4), Ok(()));
        let err = FieldLimits::check("action", "abcde", 4).unwrap_err();
        assert_eq!(err.reason, InvalidReason::FieldTooLong);
        assert_eq!(err.detail, "action is 5 bytes long, limit 4");
    }

    #[test]
    fn lengths_are_bytes_not_characters() {
        let err = FieldLimits::check("customer_id", "ééé", 5).unwrap_err();
        assert_eq!(err.detail, "customer_id is 6 bytes long, limit 5");
    }

    #[test]
    fn attributes_name_the_key_of_a_long_value() {
        let limits = FieldLimits {
            attribute_key: 3,
            attribute_value: 5,
            ..FieldLimits::default()
        };
        let mut sizes = AttributeSizes::default();
        sizes.add(3, Some("abc".into()), 5);
        assert_eq!(limits.check_attributes(&sizes), Ok(()));
        sizes.add(2, Some("ok".into()), 6);
        let err = limits.check_attributes(&sizes).unwrap_err();
        assert_eq!(err.detail, "attributes[\"ok\"] is 6 bytes long, limit 5");
        sizes.add(4, None, 0);
        let err = limits.check_attributes(&sizes).unwrap_err();
        assert_eq!(err.reason, InvalidReason::FieldTooLong);
        assert_eq!(err.detail, "an attribute key is 4 bytes long, limit 3");
        let unnamed = AttributeSizes {
            longest_value: 9,
            ..AttributeSizes::default()
        };
        let err = limits.check_attributes(&unnamed).unwrap_err();
        assert_eq!(err.detail, "an attribute value is 9 bytes long, limit 5");
    }
}
