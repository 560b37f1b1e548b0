//! JSON touchpoints: one object per message.
//!
//! This is a hot path. For an ordinary event (no escapes in its strings) the
//! decoder allocates nothing: strings borrow from the input, `attributes` is
//! type-checked by a visitor that keeps only the longest key's and value's
//! lengths and the values of the selected attributes
//! ([`super::AttributeSelection`]), and unknown fields are skipped. It only decodes; time
//! plausibility is [`super::Validator`]'s job.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::invalid::{Invalid, InvalidReason, excerpt};
use super::limits::{AttributeSizes, FieldLimits};
use super::parts::Parts;
use super::selection::AttributeSelection;
use crate::model::Touchpoint;

/// Decodes one JSON object into a touchpoint, with the default
/// [`FieldLimits`] ([`super::Validator`] applies the configured ones) and
/// no attribute kept.
///
/// `occurred_at` is epoch milliseconds or an RFC 3339 string; `channel` is
/// optional (unknown or absent -> [`crate::model::Channel::Other`]);
/// `value`, `session_id` and `attributes` are optional (`attributes` must
/// map strings to strings; only selected ones are kept). Unknown fields
/// are ignored; a field given twice is `invalid_field`.
pub fn decode(bytes: &[u8]) -> Result<Touchpoint<'_>, Invalid> {
    parts(bytes, &AttributeSelection::none())?.finish(&FieldLimits::default())
}

/// The fields of one JSON object, before the checks they share with the
/// other encodings, keeping the attributes `keep` selects.
pub(crate) fn parts<'a>(bytes: &'a [u8], keep: &AttributeSelection) -> Result<Parts<'a>, Invalid> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(Invalid::new(
            InvalidReason::InvalidJson,
            "expected a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parts = TouchpointSeed(keep)
        .deserialize(&mut de)
        .and_then(|parts| de.end().map(|()| parts))
        .map_err(classify)?;
    Ok(parts)
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

/// The object as it arrives, every field optional so that absence is
/// reported with the right reason rather than a serde message. Written by
/// hand rather than derived so that the attribute selection reaches the
/// `attributes` visitor: the map is read once.
struct TouchpointSeed<'k>(&'k AttributeSelection);

/// The fields journeyd reads; any other is skipped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    EventId,
    CustomerId,
    OccurredAt,
    Channel,
    Action,
    Value,
    SessionId,
    Attributes,
    Other,
}

impl Field {
    const NAMES: [&'static str; 8] = [
        "event_id",
        "customer_id",
        "occurred_at",
        "channel",
        "action",
        "value",
        "session_id",
        "attributes",
    ];
    const ALL: [Field; 8] = [
        Field::EventId,
        Field::CustomerId,
        Field::OccurredAt,
        Field::Channel,
        Field::Action,
        Field::Value,
        Field::SessionId,
        Field::Attributes,
    ];
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                let i = Field::NAMES.iter().position(|&n| n == v);
                Ok(i.map_or(Field::Other, |i| Field::ALL[i]))
            }
        }
        d.deserialize_identifier(V)
    }
}

impl<'de> DeserializeSeed<'de> for TouchpointSeed<'_> {
    type Value = Parts<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Parts<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TouchpointSeed<'_> {
    type Value = Parts<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a touchpoint object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parts<'de>, A::Error> {
        let mut parts = Parts::default();
        let mut seen = [false; Field::ALL.len()];
        while let Some(field) = map.next_key::<Field>()? {
            if field == Field::Other {
                map.next_value::<de::IgnoredAny>()?;
                continue;
            }
            let i = field as usize;
            if std::mem::replace(&mut seen[i], true) {
                return Err(de::Error::custom(format_args!(
                    "duplicate field `{}`",
                    Field::NAMES[i]
                )));
            }
            let text = |s: Option<Str<'de>>| s.map(|s| s.0);
            match field {
                Field::EventId => parts.event_id = text(map.next_value()?),
                Field::CustomerId => parts.customer_id = text(map.next_value()?),
                Field::OccurredAt => {
                    parts.occurred_at = map.next_value::<Option<Millis>>()?.map(|t| t.0)
                }
                Field::Channel => parts.channel = text(map.next_value()?),
                Field::Action => parts.action = text(map.next_value()?),
                Field::Value => parts.value = map.next_value()?,
                Field::SessionId => parts.session_id = text(map.next_value()?),
                Field::Attributes => {
                    let seed = AttributesSeed {
                        keep: self.0,
                        parts: &mut parts,
                    };
                    map.next_value_seed(seed)?;
                }
                Field::Other => {}
            }
        }
        Ok(parts)
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

/// `attributes` (or `null`): checked to be an object of strings; the
/// lengths of the longest key and value go to `parts.attributes` (with the
/// key of the longest value, when it borrows from the input), and the
/// values of the selected attributes to `parts.kept`.
struct AttributesSeed<'k, 'p, 'de> {
    keep: &'k AttributeSelection,
    parts: &'p mut Parts<'de>,
}

impl<'de> DeserializeSeed<'de> for AttributesSeed<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for AttributesSeed<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of string values")
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut sizes = AttributeSizes::default();
        while let Some((key, slot)) = map.next_key_seed(KeySeed(self.keep))? {
            let name = key.borrowed.map(Cow::Borrowed);
            match slot {
                None => {
                    let value = map.next_value::<StrLen<'de>>()?;
                    sizes.add(key.len, name, value.len);
                }
                Some(slot) => {
                    let value = map.next_value::<Str<'de>>()?.0;
                    sizes.add(key.len, name, value.len());
                    self.parts.kept.set(slot, value);
                }
            }
        }
        self.parts.attributes = sizes;
        Ok(())
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
        Ok(KeySeed(&AttributeSelection::none()).deserialize(d)?.0)
    }
}

/// An attribute key: its [`StrLen`] and its slot in the selection, looked
/// up while the text is at hand (an escaped key is matched unescaped, and
/// not copied).
struct KeySeed<'k>(&'k AttributeSelection);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = (StrLen<'de>, Option<usize>);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = (StrLen<'de>, Option<usize>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        let len = StrLen {
            len: v.len(),
            borrowed: Some(v),
        };
        Ok((len, self.slot(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let len = StrLen {
            len: v.len(),
            borrowed: None,
        };
        Ok((len, self.slot(v)))
    }
}

impl KeySeed<'_> {
    #[inline]
    fn slot(&self, key: &str) -> Option<usize> {
        match self.0.is_empty() {
            true => None,
            false => self.0.slot(key),
        }
    }
}

#[cfg(test)]
mod tests;
