//! Input validation that needs configuration or the wall clock: message
//! size, field lengths and timestamp plausibility.
//!
//! Structural checks (ids present, fields well-typed) are the decoders' job;
//! this module never parses bytes itself. Field lengths are checked where
//! every decoder's fields meet ([`super::parts`]), with the limits held
//! here. The wall clock comes in as an argument so that tests control it
//! exactly.

use std::time::Duration;

use super::confluent::WriterSchemas;
use super::erasure::{self, ErasureRequest};
use super::invalid::{Invalid, InvalidReason};
use super::limits::FieldLimits;
use super::selection::AttributeSelection;
use super::{avro_binary, json};
use crate::config::{Config, InputEncoding};
use crate::model::{EventTime, Touchpoint};

/// How the messages of a topic are encoded.
#[derive(Clone, Copy, Debug)]
pub enum Encoding<'s> {
    /// One JSON object per message.
    Json,
    /// A plain Avro datum written with `schemas/touchpoint.avsc`.
    Avro,
    /// Confluent Schema Registry framing: magic byte, schema id, Avro datum
    /// written with the registered schema of that id.
    Confluent(&'s WriterSchemas),
}

/// Rejects oversized messages, over-long fields and implausible timestamps,
/// and says which attributes touchpoints keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    /// How far ahead of the wall clock an event may be timestamped, in
    /// milliseconds; producers' clocks drift, but not by hours.
    pub max_future_skew_ms: i64,
    /// The largest message accepted, in bytes; protects memory from a
    /// runaway producer.
    pub max_message_bytes: usize,
    /// The longest ids, action, channel and attributes accepted; they end
    /// up as map keys, labels and output fields.
    pub fields: FieldLimits,
    /// The attributes whose values touchpoints keep (none by default).
    pub attributes: AttributeSelection,
}

impl Default for Validator {
    /// The defaults: 5 minutes of skew, 1 MiB messages, the default field
    /// limits.
    fn default() -> Self {
        Validator::new(Duration::from_secs(300), 1 << 20)
    }
}

impl Validator {
    /// A validator with the given skew and size limit, and the default
    /// field limits.
    pub fn new(max_future_skew: Duration, max_message_bytes: usize) -> Validator {
        Validator {
            max_future_skew_ms: i64::try_from(max_future_skew.as_millis()).unwrap_or(i64::MAX),
            max_message_bytes,
            fields: FieldLimits::default(),
            attributes: AttributeSelection::none(),
        }
    }

    /// The validator `config` asks for: `time.max_future_skew`, the
    /// `[limits]` on messages and fields, and the attributes the
    /// configured features read ([`AttributeSelection::from_config`]).
    pub fn from_config(config: &Config) -> Validator {
        Validator::new(config.time.max_future_skew, config.limits.max_message_bytes)
            .with_field_limits(config.limits.field_limits())
            .with_attributes(AttributeSelection::from_config(config))
    }

    /// The same validator keeping other attributes.
    pub fn with_attributes(self, attributes: AttributeSelection) -> Validator {
        Validator { attributes, ..self }
    }

    /// The same validator with other field limits.
    pub fn with_field_limits(self, fields: FieldLimits) -> Validator {
        Validator { fields, ..self }
    }

    /// Rejects a message longer than `max_message_bytes` as `oversized`.
    pub fn check_size(&self, len: usize) -> Result<(), Invalid> {
        if len > self.max_message_bytes {
            return Err(Invalid::new(
                InvalidReason::Oversized,
                format!("{len} bytes, limit {}", self.max_message_bytes),
            ));
        }
        Ok(())
    }

    /// Rejects a timestamp before 2000 (`timestamp_too_old`) or more than
    /// the allowed skew ahead of `wall_now` (`timestamp_in_future`).
    pub fn check(&self, tp: &Touchpoint<'_>, wall_now: EventTime) -> Result<(), Invalid> {
        if tp.occurred_at < EventTime::Y2K {
            return Err(Invalid::new(
                InvalidReason::TimestampTooOld,
                format!("occurred_at {} is before 2000", tp.occurred_at.millis()),
            ));
        }
        let ahead = tp.occurred_at.since(wall_now);
        if ahead > self.max_future_skew_ms {
            return Err(Invalid::new(
                InvalidReason::TimestampInFuture,
                format!(
                    "occurred_at {} is {ahead} ms ahead of the wall clock",
                    tp.occurred_at.millis()
                ),
            ));
        }
        Ok(())
    }

    /// Size check, decode (with the field checks), then
    /// [`Validator::check`]: everything a message must pass before it
    /// reaches the engine.
    pub fn decode<'a>(
        &self,
        encoding: Encoding<'_>,
        bytes: &'a [u8],
        wall_now: EventTime,
    ) -> Result<Touchpoint<'a>, Invalid> {
        self.check_size(bytes.len())?;
        self.decode_sized(encoding, bytes, wall_now)
    }

    /// The one way a consumed record of an input topic is decoded: its
    /// size checked once, then, for the Confluent wire format, its writer
    /// schema found by `schemas` (`Ok(None)`: the schema id is being looked
    /// up, and the record waits: this returns `Ok(None)` too), then the
    /// touchpoint decoded and validated. `schemas` is not called for the
    /// other encodings.
    pub fn decode_input<'a, 's>(
        &self,
        encoding: InputEncoding,
        bytes: &'a [u8],
        wall_now: EventTime,
        schemas: impl FnOnce(&[u8]) -> Result<Option<&'s WriterSchemas>, Invalid>,
    ) -> Result<Option<Touchpoint<'a>>, Invalid> {
        self.check_size(bytes.len())?;
        let encoding = match encoding {
            InputEncoding::Json => Encoding::Json,
            InputEncoding::Avro => Encoding::Avro,
            InputEncoding::Confluent => match schemas(bytes)? {
                Some(schemas) => Encoding::Confluent(schemas),
                None => return Ok(None),
            },
        };
        self.decode_sized(encoding, bytes, wall_now).map(Some)
    }

    /// The one way a record of the erasure topic is decoded: its size
    /// checked, then the request ([`super::erasure::decode`]).
    pub fn decode_erasure<'a>(
        &self,
        key: Option<&'a [u8]>,
        bytes: &[u8],
    ) -> Result<ErasureRequest<'a>, Invalid> {
        self.check_size(bytes.len())?;
        erasure::decode(key, bytes)
    }

    /// [`Validator::decode`] of a record whose size was checked.
    fn decode_sized<'a>(
        &self,
        encoding: Encoding<'_>,
        bytes: &'a [u8],
        wall_now: EventTime,
    ) -> Result<Touchpoint<'a>, Invalid> {
        let parts = match encoding {
            Encoding::Json => json::parts(bytes, &self.attributes)?,
            Encoding::Avro => avro_binary::parts(bytes, &self.attributes)?,
            Encoding::Confluent(schemas) => schemas.parts(bytes, &self.attributes)?,
        };
        let tp = parts.finish(&self.fields)?;
        self.check(&tp, wall_now)?;
        Ok(tp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{avro, confluent};

    const NOW: EventTime = EventTime(1_700_000_000_000);

    fn json_at(millis: i64) -> String {
        format!(r#"{{"event_id":"e","customer_id":"c","occurred_at":{millis},"action":"a"}}"#)
    }

    fn reason(v: &Validator, enc: Encoding<'_>, bytes: &[u8]) -> Option<InvalidReason> {
        v.decode(enc, bytes, NOW).err().map(|e| e.reason)
    }

    #[test]
    fn accepts_plausible_times() {
        let v = Validator::default();
        for t in [
            EventTime::Y2K.millis(),
            NOW.millis(),
            NOW.millis() + 300_000,
        ] {
            assert_eq!(
                reason(&v, Encoding::Json, json_at(t).as_bytes()),
                None,
                "{t}"
            );
        }
    }

    #[test]
    fn rejects_timestamps_before_2000() {
        let v = Validator::default();
        let too_old = json_at(EventTime::Y2K.millis() - 1);
        assert_eq!(
            reason(&v, Encoding::Json, too_old.as_bytes()),
            Some(InvalidReason::TimestampTooOld)
        );
        let rfc = br#"{"event_id":"e","customer_id":"c","occurred_at":"1999-12-31T23:59:59Z","action":"a"}"#;
        assert_eq!(
            reason(&v, Encoding::Json, rfc),
            Some(InvalidReason::TimestampTooOld)
        );
    }

    #[test]
    fn rejects_timestamps_beyond_the_skew() {
        let v = Validator::new(Duration::from_secs(60), 1024);
        let ahead = json_at(NOW.millis() + 60_001);
        assert_eq!(
            reason(&v, Encoding::Json, ahead.as_bytes()),
            Some(InvalidReason::TimestampInFuture)
        );
        let max = json_at(i64::MAX);
        assert_eq!(
            reason(&v, Encoding::Json, max.as_bytes()),
            Some(InvalidReason::TimestampInFuture)
        );
    }

    #[test]
    fn rejects_oversized_before_decoding() {
        let v = Validator::new(Duration::from_secs(60), 16);
        assert_eq!(
            reason(&v, Encoding::Json, &[b'x'; 17]),
            Some(InvalidReason::Oversized)
        );
        assert_eq!(v.check_size(16), Ok(()));
    }

    #[test]
    fn decodes_every_encoding() {
        let v = Validator::default();
        let text = json_at(NOW.millis());
        let tp = json::decode(text.as_bytes()).unwrap();
        let mut body = Vec::new();
        avro::encode_datum(&tp, &mut body);
        assert_eq!(v.decode(Encoding::Avro, &body, NOW), Ok(tp.clone()));

        let mut schemas = WriterSchemas::new();
        schemas.insert(7, avro::reader_schema().clone());
        let mut framed = Vec::new();
        confluent::frame(7, &body, &mut framed);
        assert_eq!(
            v.decode(Encoding::Confluent(&schemas), &framed, NOW),
            Ok(tp)
        );
        framed.clear();
        confluent::frame(8, &body, &mut framed);
        assert_eq!(
            reason(&v, Encoding::Confluent(&schemas), &framed),
            Some(InvalidReason::UnknownSchemaId)
        );
    }

    #[test]
    fn applies_its_field_limits_to_every_encoding() {
        let v = Validator::default().with_field_limits(FieldLimits {
            id: 8,
            ..FieldLimits::default()
        });
        let long = r#"{"event_id":"e","customer_id":"customer9","occurred_at":1700000000000,"action":"a"}"#;
        let err = v.decode(Encoding::Json, long.as_bytes(), NOW).unwrap_err();
        assert_eq!(err.reason, InvalidReason::FieldTooLong);
        assert_eq!(err.detail, "customer_id is 9 bytes long, limit 8");
        assert!(
            Validator::default()
                .decode(Encoding::Json, long.as_bytes(), NOW)
                .is_ok()
        );

        let tp = json::decode(long.as_bytes()).unwrap();
        let mut body = Vec::new();
        avro::encode_datum(&tp, &mut body);
        assert_eq!(
            reason(&v, Encoding::Avro, &body),
            Some(InvalidReason::FieldTooLong)
        );
        let mut schemas = WriterSchemas::new();
        schemas.insert(7, avro::reader_schema().clone());
        let mut framed = Vec::new();
        confluent::frame(7, &body, &mut framed);
        assert_eq!(
            reason(&v, Encoding::Confluent(&schemas), &framed),
            Some(InvalidReason::FieldTooLong)
        );
    }

    #[test]
    fn takes_its_limits_from_the_configuration() {
        let mut config = Config::default();
        config.limits.max_action_length = 3;
        config.limits.max_message_bytes = 4096;
        let v = Validator::from_config(&config);
        assert_eq!(v.fields.action, 3);
        assert_eq!(v.max_message_bytes, 4096);
        assert_eq!(v.max_future_skew_ms, 300_000);
    }
}
