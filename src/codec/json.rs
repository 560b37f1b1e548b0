//! JSON touchpoints: one object per message.
//!
//! This is a hot path. For an ordinary event (no escapes in its strings) the
//! decoder allocates nothing: strings borrow from the input, `attributes` is
//! type-checked by a visitor that keeps only the longest key's and value's
//! lengths, and unknown fields are skipped. It only decodes; time
//! plausibility is [`super::Validator`]'s job.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::invalid::{Invalid, InvalidReason, excerpt};
use super::limits::{AttributeSizes, FieldLimits};
use super::parts::Parts;
use crate::model::Touchpoint;

/// Decodes one JSON object into a touchpoint, with the default
/// [`FieldLimits`] ([`super::Validator`] applies the configured ones).
///
/// `occurred_at` is epoch milliseconds or an RFC 3339 string; `channel` is
/// optional (unknown or absent -> [`crate::model::Channel::Other`]);
/// `value`, `session_id` and `attributes` are optional (`attributes` must
/// map strings to strings but is not kept). Unknown fields are ignored.
pub fn decode(bytes: &[u8]) -> Result<Touchpoint<'_>, Invalid> {
    parts(bytes)?.finish(&FieldLimits::default())
}

/// The fields of one JSON object, before the checks they share with the
/// other encodings.
pub(crate) fn parts(bytes: &[u8]) -> Result<Parts<'_>, Invalid> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(Invalid::new(
            InvalidReason::InvalidJson,
            "expected a JSON object",
        ));
    }
    let raw: RawTouchpoint<'_> = serde_json::from_slice(bytes).map_err(classify)?;
    Ok(raw.into_parts())
}

/// Syntax errors are `invalid_json`; well-formed JSON with a field of the
/// wrong type is `invalid_field`.
fn classify(err: serde_json::Error) -> Invalid {
    let reason = match err.classify() {
        serde_json::error::Category::Data => InvalidReason::InvalidField,
        _ => InvalidReason::InvalidJson,
    };
    Invalid::new(reason, err.to_string())
}

/// The object as it arrives; every field optional so that absence is
/// reported with the right reason rather than a serde message.
#[derive(Deserialize)]
struct RawTouchpoint<'a> {
    #[serde(borrow, default)]
    event_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    customer_id: Option<Str<'a>>,
    #[serde(default)]
    occurred_at: Option<Millis>,
    #[serde(borrow, default)]
    channel: Option<Str<'a>>,
    #[serde(borrow, default)]
    action: Option<Str<'a>>,
    #[serde(default)]
    value: Option<f64>,
    #[serde(borrow, default)]
    session_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    attributes: Option<StringMap<'a>>,
}

impl<'a> RawTouchpoint<'a> {
    fn into_parts(self) -> Parts<'a> {
        Parts {
            event_id: self.event_id.map(|s| s.0),
            customer_id: self.customer_id.map(|s| s.0),
            occurred_at: self.occurred_at.map(|t| t.0),
            channel: self.channel.map(|c| c.0),
            action: self.action.map(|s| s.0),
            value: self.value,
            session_id: self.session_id.map(|s| s.0),
            attributes: self.attributes.map(|a| a.0).unwrap_or_default(),
        }
    }
}

/// A string that borrows from the input unless it contains escapes.
/// (`Cow<str>` alone always allocates when nested in an `Option`.)
struct Str<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// `occurred_at`: epoch milliseconds, or an RFC 3339 string.
struct Millis(i64);

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MillisVisitor)
    }
}

struct MillisVisitor;

impl Visitor<'_> for MillisVisitor {
    type Value = Millis;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("epoch milliseconds or an RFC 3339 timestamp")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Millis, E> {
        Ok(Millis(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Millis, E> {
        i64::try_from(v)
            .map(Millis)
            .map_err(|_| E::custom(format!("occurred_at out of range: {v}")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Millis, E> {
        // `1.7e12` is a valid way to write an integer in JSON.
        let whole = v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e18;
        if whole {
            Ok(Millis(v as i64))
        } else {
            Err(E::custom(format!(
                "occurred_at is not whole milliseconds: {v}"
            )))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Millis, E> {
        let t = OffsetDateTime::parse(v, &Rfc3339).map_err(|e| {
            E::custom(format!(
                "occurred_at is not RFC 3339 ({e}): {:?}",
                excerpt(v)
            ))
        })?;
        let millis = t.unix_timestamp_nanos().div_euclid(1_000_000);
        i64::try_from(millis)
            .map(Millis)
            .map_err(|_| E::custom("occurred_at out of range"))
    }
}

/// `attributes`: checked to be an object of strings; only the lengths of
/// the longest key and value are kept (and the key of the longest value,
/// when it borrows from the input).
struct StringMap<'a>(AttributeSizes<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for StringMap<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(StringMapVisitor)
    }
}

struct StringMapVisitor;

impl<'de> Visitor<'de> for StringMapVisitor {
    type Value = StringMap<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of string values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StringMap<'de>, A::Error> {
        let mut sizes = AttributeSizes::default();
        while let Some(key) = map.next_key::<StrLen<'de>>()? {
            let value = map.next_value::<StrLen<'de>>()?;
            sizes.add(key.len, key.borrowed.map(Cow::Borrowed), value.len);
        }
        Ok(StringMap(sizes))
    }
}

/// Any string, kept only by its length, and by reference when it borrows
/// from the input (an escaped string is never copied).
struct StrLen<'a> {
    len: usize,
    borrowed: Option<&'a str>,
}

impl<'de: 'a, 'a> Deserialize<'de> for StrLen<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrLen<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<StrLen<'de>, E> {
                Ok(StrLen {
                    len: v.len(),
                    borrowed: Some(v),
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StrLen<'de>, E> {
                Ok(StrLen {
                    len: v.len(),
                    borrowed: None,
                })
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests;
