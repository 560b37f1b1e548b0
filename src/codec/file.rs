//! Reading touchpoints from a replay file: NDJSON or an Avro object
//! container file, detected from the first bytes.
//!
//! Records are lent out one at a time, borrowing from a reused buffer, so
//! that reading an NDJSON file allocates nothing per ordinary line. Bad
//! records are yielded with their reason and raw bytes, never skipped
//! silently; only blank lines are skipped. This module reads; it does not
//! apply time checks or feed the engine.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use super::avro_container::{ContainerReader, MAGIC};
use super::invalid::{Invalid, InvalidReason};
use super::json;
use super::limits::FieldLimits;
use super::selection::AttributeSelection;
use crate::model::Touchpoint;

/// Read buffer size: large sequential reads.
const BUFFER_BYTES: usize = 1 << 20;
/// Default record size limit, the default `limits.max_message_bytes`.
const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

/// The detected file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// One JSON touchpoint per line.
    Ndjson,
    /// An Avro object container file (starts with `Obj\x01`).
    AvroContainer,
}

/// One record of a replay file.
#[derive(Debug)]
pub struct FileRecord<'a> {
    /// 1-based line number (NDJSON) or record index (Avro).
    pub position: u64,
    /// The record's bytes: the line without its line ending (at most the
    /// size limit of it), or the Avro datum.
    pub raw: &'a [u8],
    /// The decoded touchpoint, or why the record was rejected.
    pub result: Result<Touchpoint<'a>, Invalid>,
}

/// Reads the records of a replay file.
pub struct RecordReader<R = BufReader<File>> {
    inner: Inner<R>,
    /// Records larger than this are rejected as `oversized`.
    max_record_bytes: usize,
    /// Records with longer fields are rejected as `field_too_long`.
    limits: FieldLimits,
    /// The attributes touchpoints keep.
    keep: AttributeSelection,
}

enum Inner<R> {
    Ndjson(Lines<R>),
    Avro(Box<ContainerReader<R>>),
}

impl RecordReader<BufReader<File>> {
    /// Opens a file and detects its format. An Avro file whose header is
    /// unreadable is an `InvalidData` error.
    pub fn open(path: impl AsRef<Path>) -> io::Result<RecordReader<BufReader<File>>> {
        let file = File::open(path)?;
        RecordReader::from_reader(BufReader::with_capacity(BUFFER_BYTES, file))
    }
}

impl<R: BufRead> RecordReader<R> {
    /// Reads from any buffered reader, detecting the format from the first
    /// buffered bytes.
    pub fn from_reader(mut input: R) -> io::Result<RecordReader<R>> {
        let inner = if input.fill_buf()?.starts_with(MAGIC) {
            let reader = ContainerReader::new(input)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            Inner::Avro(Box::new(reader))
        } else {
            Inner::Ndjson(Lines {
                input,
                line: Vec::new(),
                line_no: 0,
            })
        };
        Ok(RecordReader {
            inner,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            limits: FieldLimits::default(),
            keep: AttributeSelection::none(),
        })
    }

    /// Sets the size limit for one record (default 1 MiB).
    pub fn with_max_record_bytes(mut self, max: usize) -> Self {
        self.max_record_bytes = max;
        self
    }

    /// Sets the field length limits (default: [`FieldLimits::default`]).
    pub fn with_field_limits(mut self, limits: FieldLimits) -> Self {
        self.limits = limits;
        self.inner = match self.inner {
            Inner::Avro(reader) => Inner::Avro(Box::new(reader.with_field_limits(limits))),
            ndjson => ndjson,
        };
        self
    }

    /// Sets the attributes touchpoints keep (default: none).
    pub fn with_attributes(mut self, keep: AttributeSelection) -> Self {
        self.inner = match self.inner {
            Inner::Avro(reader) => Inner::Avro(Box::new(reader.with_attributes(keep.clone()))),
            ndjson => ndjson,
        };
        self.keep = keep;
        self
    }

    /// The detected format.
    pub fn format(&self) -> FileFormat {
        match self.inner {
            Inner::Ndjson(_) => FileFormat::Ndjson,
            Inner::Avro(_) => FileFormat::AvroContainer,
        }
    }

    /// The next record, or `None` at the end of the file. I/O errors are
    /// returned as such; bad records come back as records.
    pub fn next_record(&mut self) -> io::Result<Option<FileRecord<'_>>> {
        let max = self.max_record_bytes;
        match &mut self.inner {
            Inner::Ndjson(lines) => lines.next_record(max, &self.limits, &self.keep),
            Inner::Avro(reader) => Ok(reader.next_record().map(|r| FileRecord {
                position: r.index,
                raw: r.raw,
                result: match r.result {
                    Ok(_) if r.raw.len() > max => Err(oversized(r.raw.len(), max)),
                    other => other,
                },
            })),
        }
    }
}

fn oversized(len: usize, max: usize) -> Invalid {
    Invalid::new(
        InvalidReason::Oversized,
        format!("record of {len} bytes, limit {max}"),
    )
}

/// NDJSON lines, read into one reused buffer.
struct Lines<R> {
    input: R,
    /// The current line, without its line ending, cut at the size limit.
    line: Vec<u8>,
    /// Number of the current line, 1-based.
    line_no: u64,
}

impl<R: BufRead> Lines<R> {
    fn next_record(
        &mut self,
        max: usize,
        limits: &FieldLimits,
        keep: &AttributeSelection,
    ) -> io::Result<Option<FileRecord<'_>>> {
        let len = loop {
            let Some(len) = self.read_line(max)? else {
                return Ok(None);
            };
            if !self.line.iter().all(u8::is_ascii_whitespace) {
                break len;
            }
        };
        let raw = self.line.as_slice();
        let result = match len > max {
            true => Err(oversized(len, max)),
            false => json::parts(raw, keep).and_then(|parts| parts.finish(limits)),
        };
        Ok(Some(FileRecord {
            position: self.line_no,
            raw,
            result,
        }))
    }

    /// Reads the next line into `self.line`, keeping at most `max` bytes of
    /// it; returns the full length, or `None` at the end of the input.
    fn read_line(&mut self, max: usize) -> io::Result<Option<usize>> {
        self.line.clear();
        let mut total = 0usize;
        let mut started = false;
        loop {
            let buf = match self.input.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                break;
            }
            started = true;
            let newline = buf.iter().position(|&b| b == b'\n');
            let content = buf.get(..newline.unwrap_or(buf.len())).unwrap_or_default();
            let room = max.saturating_sub(self.line.len());
            self.line
                .extend_from_slice(content.get(..room).unwrap_or(content));
            total = total.saturating_add(content.len());
            let consumed = newline.map_or(buf.len(), |i| i + 1);
            self.input.consume(consumed);
            if newline.is_some() {
                break;
            }
        }
        if !started {
            return Ok(None);
        }
        self.line_no += 1;
        Ok(Some(self.trim(total)))
    }

    /// Drops a `\r` before the newline and a UTF-8 byte order mark at the
    /// start of the file; returns the line's new full length.
    fn trim(&mut self, mut total: usize) -> usize {
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
            total = total.saturating_sub(1);
        }
        if self.line_no == 1 && self.line.starts_with(b"\xEF\xBB\xBF") {
            self.line.drain(..3);
            total = total.saturating_sub(3);
        }
        total
    }
}

#[cfg(test)]
mod tests;
