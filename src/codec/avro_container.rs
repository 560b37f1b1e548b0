//! Avro object container files: reading touchpoints with each record's raw
//! bytes, and writing files for tests and the generator.
//!
//! The reader parses the container format itself (header, blocks, sync
//! markers) so that it knows where every record starts and ends, can hand
//! out the raw bytes of a rejected record, and can take the allocation-free
//! path when the file's schema is the reader schema. Corrupt or truncated
//! input yields one error and ends the iteration: it never panics, never
//! loops, and never allocates more than a bounded block.

use std::collections::HashMap;
use std::io::{self, Read, Write};

use apache_avro::types::Value;
use apache_avro::{Codec, Schema, Writer};

use super::avro::{DatumDecoder, reader_schema};
use super::avro_binary::Cursor;
use super::invalid::{Invalid, InvalidReason};
use super::limits::FieldLimits;
use super::parts::into_owned;
use super::selection::AttributeSelection;
use crate::model::Touchpoint;

/// The four bytes every container file starts with.
pub(crate) const MAGIC: &[u8; 4] = b"Obj\x01";
/// Largest header metadata value (the schema JSON) accepted.
const MAX_METADATA_BYTES: u64 = 4 << 20;
/// Largest (compressed) data block accepted.
const MAX_BLOCK_BYTES: u64 = 64 << 20;

/// One record of a container file.
#[derive(Debug)]
pub struct ContainerRecord<'a> {
    /// 1-based index of the record in the file.
    pub index: u64,
    /// The record's bytes as written (uncompressed); empty when the error
    /// is about the file rather than one record.
    pub raw: &'a [u8],
    /// The decoded touchpoint, or why the record was rejected.
    pub result: Result<Touchpoint<'a>, Invalid>,
}

/// Reads touchpoints from an Avro object container file, resolving the
/// file's writer schema to the reader schema.
///
/// Use [`ContainerReader::next_record`] to borrow records (and their raw
/// bytes) from the current block, or iterate for owned touchpoints.
pub struct ContainerReader<R> {
    input: R,
    decoder: DatumDecoder,
    /// The field length limits records are checked against.
    limits: FieldLimits,
    /// The attributes records keep.
    keep: AttributeSelection,
    codec: Codec,
    sync: [u8; 16],
    /// The current block, decompressed; reused from block to block.
    block: Vec<u8>,
    /// Read position in `block`.
    pos: usize,
    /// Records of the current block not yet read.
    left: u64,
    /// Records handed out so far.
    index: u64,
    /// Set after the end of the file or the first structural error.
    done: bool,
}

impl<R: Read> ContainerReader<R> {
    /// Reads the file header. Pass a buffered reader: headers are read a
    /// byte at a time.
    pub fn new(mut input: R) -> Result<ContainerReader<R>, Invalid> {
        let header = read_header(&mut input)?;
        Ok(ContainerReader {
            input,
            decoder: DatumDecoder::new(header.schema),
            limits: FieldLimits::default(),
            keep: AttributeSelection::none(),
            codec: header.codec,
            sync: header.sync,
            block: Vec::new(),
            pos: 0,
            left: 0,
            index: 0,
            done: false,
        })
    }

    /// Checks records against `limits` instead of the default
    /// [`FieldLimits`].
    pub fn with_field_limits(mut self, limits: FieldLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Keeps the attributes `keep` selects (default: none).
    pub fn with_attributes(mut self, keep: AttributeSelection) -> Self {
        self.keep = keep;
        self
    }

    /// The schema the file was written with.
    pub fn writer_schema(&self) -> &Schema {
        self.decoder.writer_schema()
    }

    /// The next record, borrowing from the current block. After a
    /// structural error (truncated or corrupt file) this returns `None`.
    pub fn next_record(&mut self) -> Option<ContainerRecord<'_>> {
        if self.done {
            return None;
        }
        while self.left == 0 {
            match self.next_block() {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(e) => return Some(self.fail(e)),
            }
        }
        self.left -= 1;
        self.index += 1;
        let bytes = self.block.get(self.pos..).unwrap_or_default();
        let mut cursor = Cursor::new(bytes);
        let parts = self.decoder.read(&mut cursor, &self.keep);
        let used = bytes.len() - cursor.rest.len();
        let raw = bytes.get(..used).unwrap_or_default();
        self.pos += used;
        let result = match parts {
            Ok(parts) => parts.finish(&self.limits),
            Err(e) => {
                self.done = e.reason.is_structural();
                Err(e)
            }
        };
        Some(ContainerRecord {
            index: self.index,
            raw,
            result,
        })
    }

    /// Ends the iteration with a file-level error.
    fn fail(&mut self, e: Invalid) -> ContainerRecord<'_> {
        self.done = true;
        self.index += 1;
        ContainerRecord {
            index: self.index,
            raw: &[],
            result: Err(e),
        }
    }

    /// Loads the next block; `Ok(false)` at a clean end of file.
    fn next_block(&mut self) -> Result<bool, Invalid> {
        if self.pos != self.block.len() {
            let extra = self.block.len().saturating_sub(self.pos);
            return Err(corrupt(format!(
                "{extra} bytes after the last record of a block"
            )));
        }
        let Some(count) = read_long(&mut self.input, "block count")? else {
            return Ok(false);
        };
        let size = required(read_long(&mut self.input, "block size")?, "block size")?;
        let (Ok(count), Ok(size)) = (u64::try_from(count), u64::try_from(size)) else {
            return Err(corrupt(format!(
                "negative block count {count} or size {size}"
            )));
        };
        self.read_block(size)?;
        // Every record takes at least one byte.
        if count > self.block.len() as u64 {
            return Err(corrupt(format!(
                "{count} records in {} bytes",
                self.block.len()
            )));
        }
        (self.left, self.pos) = (count, 0);
        Ok(true)
    }

    /// Reads `size` bytes of block data, decompresses them into `block`
    /// and checks the sync marker that follows.
    fn read_block(&mut self, size: u64) -> Result<(), Invalid> {
        if size > MAX_BLOCK_BYTES {
            return Err(corrupt(format!(
                "block of {size} bytes exceeds {MAX_BLOCK_BYTES}"
            )));
        }
        self.block.clear();
        read_exactly(&mut self.input, size, &mut self.block, "block")?;
        self.codec
            .decompress(&mut self.block)
            .map_err(|e| Invalid::from_avro(&e))?;
        let mut sync = [0u8; 16];
        read_all(&mut self.input, &mut sync, "sync marker")?;
        if sync != self.sync {
            return Err(corrupt("sync marker mismatch".to_owned()));
        }
        Ok(())
    }
}

impl<R: Read> Iterator for ContainerReader<R> {
    type Item = Result<Touchpoint<'static>, Invalid>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().map(|r| r.result.map(into_owned))
    }
}

/// What the header says about the file.
struct Header {
    schema: Schema,
    codec: Codec,
    sync: [u8; 16],
}

fn read_header(input: &mut impl Read) -> Result<Header, Invalid> {
    let mut magic = [0u8; 4];
    read_all(input, &mut magic, "header")?;
    if &magic != MAGIC {
        return Err(corrupt("not an Avro object container file".to_owned()));
    }
    let Metadata { schema, codec } = read_metadata(input)?;
    let mut sync = [0u8; 16];
    read_all(input, &mut sync, "header sync marker")?;
    let schema = schema.ok_or_else(|| corrupt("no avro.schema in the header".to_owned()))?;
    let schema = std::str::from_utf8(&schema)
        .map_err(|_| corrupt("avro.schema is not UTF-8".to_owned()))
        .and_then(|text| Schema::parse_str(text).map_err(|e| Invalid::from_avro(&e)))?;
    Ok(Header {
        schema,
        codec: parse_codec(codec.as_deref())?,
        sync,
    })
}

/// The header metadata this reader uses.
#[derive(Default)]
struct Metadata {
    schema: Option<Vec<u8>>,
    codec: Option<Vec<u8>>,
}

/// Reads the header metadata map, keeping `avro.schema` and `avro.codec`.
fn read_metadata(input: &mut impl Read) -> Result<Metadata, Invalid> {
    let mut meta = Metadata::default();
    loop {
        let count = required(read_long(input, "metadata")?, "metadata")?;
        if count == 0 {
            return Ok(meta);
        }
        if count < 0 {
            required(read_long(input, "metadata")?, "metadata")?;
        }
        for _ in 0..count.unsigned_abs() {
            let key = read_bytes(input, "metadata key")?;
            let value = read_bytes(input, "metadata value")?;
            match key.as_slice() {
                b"avro.schema" => meta.schema = Some(value),
                b"avro.codec" => meta.codec = Some(value),
                _ => {}
            }
        }
    }
}

fn parse_codec(name: Option<&[u8]>) -> Result<Codec, Invalid> {
    match name {
        None | Some(b"null") => Ok(Codec::Null),
        Some(b"deflate") => Ok(Codec::Deflate(Default::default())),
        Some(other) => {
            let name = String::from_utf8_lossy(other.get(..32).unwrap_or(other)).into_owned();
            Err(corrupt(format!("unsupported codec {name:?}")))
        }
    }
}

fn corrupt(detail: String) -> Invalid {
    Invalid::new(InvalidReason::InvalidAvro, detail)
}

fn truncated(what: &str) -> Invalid {
    Invalid::new(InvalidReason::Truncated, format!("file ended in {what}"))
}

fn io_error(e: io::Error, what: &str) -> Invalid {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => truncated(what),
        _ => Invalid::new(InvalidReason::InvalidAvro, format!("reading {what}: {e}")),
    }
}

fn required<T>(v: Option<T>, what: &str) -> Result<T, Invalid> {
    v.ok_or_else(|| truncated(what))
}

fn read_all(input: &mut impl Read, buf: &mut [u8], what: &str) -> Result<(), Invalid> {
    input.read_exact(buf).map_err(|e| io_error(e, what))
}

/// Appends exactly `n` bytes to `buf`, growing it only as data arrives.
fn read_exactly(
    input: &mut impl Read,
    n: u64,
    buf: &mut Vec<u8>,
    what: &str,
) -> Result<(), Invalid> {
    let got = input
        .take(n)
        .read_to_end(buf)
        .map_err(|e| io_error(e, what))?;
    match got as u64 == n {
        true => Ok(()),
        false => Err(truncated(what)),
    }
}

fn read_bytes(input: &mut impl Read, what: &str) -> Result<Vec<u8>, Invalid> {
    let len = required(read_long(input, what)?, what)?;
    let len = u64::try_from(len)
        .ok()
        .filter(|&n| n <= MAX_METADATA_BYTES)
        .ok_or_else(|| corrupt(format!("{what} of length {len}")))?;
    let mut buf = Vec::new();
    read_exactly(input, len, &mut buf, what)?;
    Ok(buf)
}

/// A zigzag varint long, or `None` at end of input before its first byte.
fn read_long(input: &mut impl Read, what: &str) -> Result<Option<i64>, Invalid> {
    let mut z: u64 = 0;
    for (i, shift) in (0..64).step_by(7).enumerate() {
        let mut byte = [0u8; 1];
        match input.read_exact(&mut byte) {
            Ok(()) => {}
            Err(e) if i == 0 && e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(io_error(e, what)),
        }
        let [b] = byte;
        z |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(Some(((z >> 1) as i64) ^ -((z & 1) as i64)));
        }
    }
    Err(corrupt(format!("{what}: varint longer than 10 bytes")))
}

/// Writes `events` as an uncompressed container file with the reader
/// schema (for tests, benches and the generator).
pub fn write_container<'a, 'b: 'a, W: Write>(
    events: impl IntoIterator<Item = &'a Touchpoint<'b>>,
    writer: W,
) -> io::Result<W> {
    write_container_with_codec(events, writer, Codec::Null)
}

/// Like [`write_container`], with a compression codec.
pub fn write_container_with_codec<'a, 'b: 'a, W: Write>(
    events: impl IntoIterator<Item = &'a Touchpoint<'b>>,
    writer: W,
    codec: Codec,
) -> io::Result<W> {
    let mut out = Writer::with_codec(reader_schema(), writer, codec).map_err(io::Error::other)?;
    for tp in events {
        out.append_value(to_value(tp)).map_err(io::Error::other)?;
    }
    out.into_inner().map_err(io::Error::other)
}

/// A touchpoint as an Avro record of the reader schema.
fn to_value(tp: &Touchpoint<'_>) -> Value {
    let union = |v: Option<Value>| match v {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(v) => Value::Union(1, Box::new(v)),
    };
    Value::Record(vec![
        ("event_id".into(), Value::String(tp.event_id.to_string())),
        (
            "customer_id".into(),
            Value::String(tp.customer_id.to_string()),
        ),
        (
            "occurred_at".into(),
            Value::TimestampMillis(tp.occurred_at.millis()),
        ),
        (
            "channel".into(),
            Value::String(tp.channel.as_str().to_owned()),
        ),
        ("action".into(), Value::String(tp.action.to_string())),
        ("value".into(), union(tp.value.map(Value::Double))),
        (
            "session_id".into(),
            union(tp.session_id.as_ref().map(|s| Value::String(s.to_string()))),
        ),
        ("attributes".into(), Value::Map(HashMap::new())),
    ])
}

#[cfg(test)]
pub(crate) mod tests;
