//! The Confluent Schema Registry wire format: magic byte `0`, a 4-byte
//! big-endian schema id, then an Avro datum written with that schema.
//!
//! This module frames and unframes, and keeps the writer schemas known by
//! id. It does not talk to a schema registry: whoever fetches schemas
//! (`crate::registry`) registers them in [`WriterSchemas`].

use std::collections::HashMap;

use apache_avro::Schema;

use super::avro::DatumDecoder;
use super::invalid::{Invalid, InvalidReason};
use super::limits::FieldLimits;
use super::parts::Parts;
use super::selection::AttributeSelection;
use crate::model::Touchpoint;

/// The first byte of every framed message.
pub const MAGIC: u8 = 0;
/// Magic byte plus schema id.
pub const HEADER_LEN: usize = 5;

/// Splits a framed message into its schema id and Avro body.
///
/// Shorter than the 5-byte header -> `truncated`; a first byte other than
/// 0 -> `invalid_avro` (often a JSON or plain-Avro message on a topic
/// configured for the Confluent format).
pub fn split(bytes: &[u8]) -> Result<(u32, &[u8]), Invalid> {
    let Some((&[magic, a, b, c, d], body)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Err(Invalid::new(
            InvalidReason::Truncated,
            format!(
                "{} bytes, shorter than the 5-byte Confluent header",
                bytes.len()
            ),
        ));
    };
    if magic != MAGIC {
        return Err(Invalid::new(
            InvalidReason::InvalidAvro,
            format!("magic byte is {magic:#04x}, expected 0x00 (Confluent wire format)"),
        ));
    }
    Ok((u32::from_be_bytes([a, b, c, d]), body))
}

/// The schema id of a framed message, or `None` when it is not framed
/// (too short, or a first byte other than 0). Allocation-free, for
/// routing; [`split`] says what is wrong with an unframed message.
pub fn schema_id(bytes: &[u8]) -> Option<u32> {
    match bytes.split_first_chunk::<HEADER_LEN>() {
        Some((&[MAGIC, a, b, c, d], _)) => Some(u32::from_be_bytes([a, b, c, d])),
        _ => None,
    }
}

/// Appends the Confluent header for `schema_id` and then `body` to `out`.
pub fn frame(schema_id: u32, body: &[u8], out: &mut Vec<u8>) {
    out.reserve(HEADER_LEN + body.len());
    out.push(MAGIC);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(body);
}

/// Writer schemas by Confluent schema id.
#[derive(Clone, Debug, Default)]
pub struct WriterSchemas {
    by_id: HashMap<u32, DatumDecoder>,
}

impl WriterSchemas {
    /// No schemas known yet.
    pub fn new() -> WriterSchemas {
        WriterSchemas::default()
    }

    /// Registers (or replaces) the writer schema of `id`.
    pub fn insert(&mut self, id: u32, writer: Schema) {
        self.by_id.insert(id, DatumDecoder::new(writer));
    }

    /// Registers the writer schema of `id` from its JSON text, as a schema
    /// registry returns it.
    pub fn insert_json(&mut self, id: u32, schema_json: &str) -> Result<(), apache_avro::Error> {
        self.insert(id, Schema::parse_str(schema_json)?);
        Ok(())
    }

    /// Whether the writer schema of `id` is known.
    pub fn contains(&self, id: u32) -> bool {
        self.by_id.contains_key(&id)
    }

    /// Decodes a framed message, with the default [`FieldLimits`]:
    /// `unknown_schema_id` when its id was never registered.
    pub fn decode<'a>(&self, bytes: &'a [u8]) -> Result<Touchpoint<'a>, Invalid> {
        let none = AttributeSelection::none();
        self.parts(bytes, &none)?.finish(&FieldLimits::default())
    }

    /// The fields of a framed message, before the checks shared by every
    /// encoding, keeping the attributes `keep` selects.
    pub(crate) fn parts<'a>(
        &self,
        bytes: &'a [u8],
        keep: &AttributeSelection,
    ) -> Result<Parts<'a>, Invalid> {
        let (id, body) = split(bytes)?;
        let decoder = self.by_id.get(&id).ok_or_else(|| {
            Invalid::new(InvalidReason::UnknownSchemaId, format!("schema id {id}"))
        })?;
        decoder.parts(body, keep)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::codec::avro;
    use crate::model::{Channel, EventTime};

    fn sample() -> Touchpoint<'static> {
        Touchpoint {
            event_id: "e1".into(),
            customer_id: "c1".into(),
            occurred_at: EventTime(1_700_000_000_000),
            channel: Channel::Email,
            action: "email_open".into(),
            value: None,
            session_id: None,
            attributes: Default::default(),
        }
    }

    #[test]
    fn frame_then_split_round_trips() {
        let mut out = vec![9];
        frame(0x0102_0304, b"body", &mut out);
        assert_eq!(out, [9, 0, 1, 2, 3, 4, b'b', b'o', b'd', b'y']);
        assert_eq!(split(&out[1..]), Ok((0x0102_0304, &b"body"[..])));
        assert_eq!(split(&[0, 0, 0, 0, 1]), Ok((1, &[][..])));
        assert_eq!(schema_id(&out[1..]), Some(0x0102_0304));
        assert_eq!(schema_id(&[0, 0, 0, 1]), None);
        assert_eq!(schema_id(&[1, 0, 0, 0, 1]), None);
    }

    #[test]
    fn short_header_is_truncated() {
        for len in 0..HEADER_LEN {
            let err = split(&[0u8; 4][..len.min(4)]).unwrap_err();
            assert_eq!(err.reason, InvalidReason::Truncated, "{len}");
        }
    }

    #[test]
    fn wrong_magic_is_invalid_avro_with_a_clear_detail() {
        let err = split(b"{\"event_id\":1}").unwrap_err();
        assert_eq!(err.reason, InvalidReason::InvalidAvro);
        assert!(err.detail.contains("magic byte is 0x7b"), "{}", err.detail);
    }

    #[test]
    fn decodes_by_schema_id_and_rejects_unknown_ids() {
        let mut schemas = WriterSchemas::new();
        schemas
            .insert_json(42, crate::codec::schemas::TOUCHPOINT)
            .unwrap();
        assert!(schemas.contains(42) && !schemas.contains(43));
        let mut body = Vec::new();
        avro::encode_datum(&sample(), &mut body);
        let mut framed = Vec::new();
        frame(42, &body, &mut framed);
        let tp = schemas.decode(&framed).unwrap();
        assert_eq!(tp, sample());
        assert!(matches!(tp.event_id, Cow::Borrowed(_)));
        framed[4] = 43;
        let err = schemas.decode(&framed).unwrap_err();
        assert_eq!(err.reason, InvalidReason::UnknownSchemaId);
        assert_eq!(err.detail, "schema id 43");
    }

    #[test]
    fn truncated_body_is_truncated() {
        let mut schemas = WriterSchemas::new();
        schemas.insert(1, avro::reader_schema().clone());
        let mut framed = Vec::new();
        let mut body = Vec::new();
        avro::encode_datum(&sample(), &mut body);
        frame(1, &body[..body.len() - 3], &mut framed);
        assert_eq!(
            schemas.decode(&framed).unwrap_err().reason,
            InvalidReason::Truncated
        );
    }
}
