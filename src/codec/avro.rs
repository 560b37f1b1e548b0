//! Avro touchpoints: the reader schema, writer-to-reader schema resolution,
//! and the entry points for plain datums and object container files.
//!
//! Data written with the shipped schema (the usual case) takes the
//! hand-written, allocation-free path of `avro_binary`; data written with
//! any other schema is decoded by apache_avro against its writer schema and
//! resolved to the reader schema, so that producers on an older or newer
//! compatible schema keep working. This module only decodes: time
//! plausibility is [`super::Validator`]'s job.

use std::borrow::Cow;
use std::io::{self, Read};
use std::sync::LazyLock;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;

use super::avro_binary::Cursor;
use super::invalid::{Invalid, InvalidReason};
use super::limits::{AttributeSizes, FieldLimits};
use super::parts::Parts;
use super::schemas;
use super::selection::AttributeSelection;
use crate::model::{KeptAttributes, Touchpoint};

pub use super::avro_binary::{decode, encode_datum};
pub use super::avro_container::{
    ContainerReader, ContainerRecord, write_container, write_container_with_codec,
};

/// The most apache_avro may allocate for one string, array, map or
/// decompressed block while decoding: far above any plausible touchpoint or
/// container block, far below what a hostile length prefix could otherwise
/// request. apache_avro keeps one such limit per process; it is set here,
/// the first time the reader schema is used.
const MAX_ALLOCATION_BYTES: usize = 64 << 20;

/// The reader schema and its parsing canonical form, built once.
struct Reader {
    schema: Schema,
    canonical: String,
}

static READER: LazyLock<Reader> = LazyLock::new(|| {
    apache_avro::util::max_allocation_bytes(MAX_ALLOCATION_BYTES);
    let schema = Schema::parse_str(schemas::TOUCHPOINT)
        .expect("schemas/touchpoint.avsc parses (tested in codec::schemas)");
    let canonical = schema.canonical_form();
    Reader { schema, canonical }
});

/// The reader schema, `schemas/touchpoint.avsc`: every Avro touchpoint is
/// resolved to it.
pub fn reader_schema() -> &'static Schema {
    &READER.schema
}

/// Decodes datums written with one writer schema (a Confluent schema id's
/// registered schema, or a container file's header schema).
#[derive(Clone, Debug)]
pub struct DatumDecoder {
    /// The schema the producer wrote with.
    writer: Schema,
    /// How data of this writer schema is decoded.
    path: Path,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// The writer schema is the reader schema (same parsing canonical form,
    /// hence identical binary layout): the allocation-free decoder.
    Fast,
    /// Decode with the writer schema, then resolve to the reader schema.
    Resolve,
    /// A record that contains itself: decoding would recurse as deep as
    /// the input says, so its data is rejected.
    Recursive,
}

impl DatumDecoder {
    /// A decoder for data written with `writer`.
    pub fn new(writer: Schema) -> DatumDecoder {
        let path = if writer.canonical_form() == READER.canonical {
            Path::Fast
        } else if is_recursive(&writer, &mut Vec::new()) {
            Path::Recursive
        } else {
            Path::Resolve
        };
        DatumDecoder { writer, path }
    }

    /// The schema the data was written with.
    pub fn writer_schema(&self) -> &Schema {
        &self.writer
    }

    /// Whether data is decoded without schema resolution (borrowing strings).
    pub fn is_reader_schema(&self) -> bool {
        self.path == Path::Fast
    }

    /// Decodes one datum, with the default [`FieldLimits`]; the whole of
    /// `bytes` must be that datum.
    pub fn decode<'a>(&self, bytes: &'a [u8]) -> Result<Touchpoint<'a>, Invalid> {
        let none = AttributeSelection::none();
        self.parts(bytes, &none)?.finish(&FieldLimits::default())
    }

    /// The fields of one datum that is the whole of `bytes`, before the
    /// checks shared by every encoding, keeping the attributes `keep`
    /// selects.
    pub(crate) fn parts<'a>(
        &self,
        bytes: &'a [u8],
        keep: &AttributeSelection,
    ) -> Result<Parts<'a>, Invalid> {
        let mut cursor = Cursor::new(bytes);
        let parts = self.read(&mut cursor, keep)?;
        cursor.expect_end()?;
        Ok(parts)
    }

    /// Reads one datum's fields from the cursor, advancing past it.
    pub(crate) fn read<'a>(
        &self,
        cursor: &mut Cursor<'a>,
        keep: &AttributeSelection,
    ) -> Result<Parts<'a>, Invalid> {
        match self.path {
            Path::Fast => cursor.touchpoint(keep),
            Path::Resolve => resolve(&self.writer, cursor, keep),
            Path::Recursive => Err(Invalid::new(
                InvalidReason::InvalidAvro,
                "recursive writer schemas are not supported",
            )),
        }
    }
}

/// Whether a named record in `schema` contains itself. `open` holds the
/// records being walked: a reference to one of them closes a cycle. (A
/// reference to a finished record cannot: names are defined before use.)
fn is_recursive(schema: &Schema, open: &mut Vec<String>) -> bool {
    match schema {
        Schema::Record(record) => {
            open.push(record.name.fullname(None));
            let found = record.fields.iter().any(|f| is_recursive(&f.schema, open));
            open.pop();
            found
        }
        Schema::Array(array) => is_recursive(&array.items, open),
        Schema::Map(map) => is_recursive(&map.types, open),
        Schema::Union(union) => union.variants().iter().any(|v| is_recursive(v, open)),
        Schema::Ref { name } => open.contains(&name.fullname(None)),
        _ => false,
    }
}

/// Decodes one datum written with `writer_schema`, resolving it to the
/// reader schema: fields the writer lacks take their defaults, fields the
/// reader does not know are skipped. Field lengths are checked against the
/// default [`FieldLimits`]. Always goes through schema resolution; prefer a
/// [`DatumDecoder`] kept per writer schema.
pub fn decode_datum(bytes: &[u8], writer_schema: &Schema) -> Result<Touchpoint<'static>, Invalid> {
    if is_recursive(writer_schema, &mut Vec::new()) {
        return Err(Invalid::new(
            InvalidReason::InvalidAvro,
            "recursive writer schemas are not supported",
        ));
    }
    let mut cursor = Cursor::new(bytes);
    let parts = resolve(writer_schema, &mut cursor, &AttributeSelection::none())?;
    cursor.expect_end()?;
    parts.finish(&FieldLimits::default())
}

/// Decodes with apache_avro and resolves to the reader schema.
fn resolve(
    writer: &Schema,
    cursor: &mut Cursor<'_>,
    keep: &AttributeSelection,
) -> Result<Parts<'static>, Invalid> {
    let datum_reader = GenericDatumReader::builder(writer)
        .reader_schema(reader_schema())
        .build()
        .map_err(|e| Invalid::from_avro(&e))?;
    let mut input = EofWatch {
        rest: cursor.rest,
        hit_eof: false,
    };
    let value = datum_reader.read_value(&mut input);
    cursor.rest = input.rest;
    if input.hit_eof {
        // apache_avro reads a string cut short as null; never trust such a value.
        return Err(Invalid::new(
            InvalidReason::Truncated,
            "input ended inside the datum",
        ));
    }
    parts_from_value(value.map_err(|e| Invalid::from_avro(&e))?, keep)
}

/// A byte slice reader that remembers whether anyone read past its end.
struct EofWatch<'a> {
    rest: &'a [u8],
    hit_eof: bool,
}

impl Read for EofWatch<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.rest.read(buf)?;
        self.hit_eof |= n == 0 && !buf.is_empty();
        Ok(n)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        if buf.len() > self.rest.len() {
            self.hit_eof = true;
            self.rest = &[];
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.rest.read_exact(buf)
    }
}

/// Moves the fields of a resolved record into [`Parts`], without copying
/// the strings, keeping the attributes `keep` selects.
fn parts_from_value(value: Value, keep: &AttributeSelection) -> Result<Parts<'static>, Invalid> {
    let Value::Record(fields) = value else {
        return Err(Invalid::new(
            InvalidReason::InvalidAvro,
            "datum is not a record",
        ));
    };
    let mut parts = Parts::default();
    for (name, value) in fields {
        let value = match value {
            Value::Union(_, inner) => *inner,
            other => other,
        };
        match name.as_str() {
            "event_id" => parts.event_id = Some(Cow::Owned(string(value, &name)?)),
            "customer_id" => parts.customer_id = Some(Cow::Owned(string(value, &name)?)),
            "occurred_at" => parts.occurred_at = Some(long(value, &name)?),
            "channel" => parts.channel = Some(Cow::Owned(string(value, &name)?)),
            "action" => parts.action = Some(Cow::Owned(string(value, &name)?)),
            "value" => parts.value = optional(value, &name, double)?,
            "session_id" => parts.session_id = optional(value, &name, string)?.map(Cow::Owned),
            "attributes" => parts.attributes = string_map(value, &name, keep, &mut parts.kept)?,
            _ => {}
        }
    }
    Ok(parts)
}

/// The sizes of a resolved map of strings, keeping the key of the longest
/// value and the values of the selected attributes (moved, not copied).
/// apache_avro resolves a map into a hash map: a key written twice has
/// kept its last value, as in the other decoders.
fn string_map(
    value: Value,
    field: &str,
    keep: &AttributeSelection,
    kept: &mut KeptAttributes<'static>,
) -> Result<AttributeSizes<'static>, Invalid> {
    let Value::Map(entries) = value else {
        return Err(wrong_type(field, &value));
    };
    let mut sizes = AttributeSizes::default();
    for (key, value) in entries {
        let value = string(value, field)?;
        let slot = keep.slot(&key);
        sizes.add(key.len(), Some(Cow::Owned(key)), value.len());
        if let Some(slot) = slot {
            kept.set(slot, Cow::Owned(value));
        }
    }
    Ok(sizes)
}

fn optional<T>(
    value: Value,
    field: &str,
    read: fn(Value, &str) -> Result<T, Invalid>,
) -> Result<Option<T>, Invalid> {
    match value {
        Value::Null => Ok(None),
        other => read(other, field).map(Some),
    }
}

fn string(value: Value, field: &str) -> Result<String, Invalid> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(wrong_type(field, &other)),
    }
}

fn long(value: Value, field: &str) -> Result<i64, Invalid> {
    match value {
        Value::TimestampMillis(v) | Value::Long(v) => Ok(v),
        Value::Int(v) => Ok(i64::from(v)),
        other => Err(wrong_type(field, &other)),
    }
}

fn double(value: Value, field: &str) -> Result<f64, Invalid> {
    match value {
        Value::Double(v) => Ok(v),
        Value::Float(v) => Ok(f64::from(v)),
        other => Err(wrong_type(field, &other)),
    }
}

fn wrong_type(field: &str, value: &Value) -> Invalid {
    let kind = apache_avro::schema::SchemaKind::from(value);
    Invalid::new(
        InvalidReason::InvalidField,
        format!("{field}: unexpected {kind:?}"),
    )
}

#[cfg(test)]
mod tests;
