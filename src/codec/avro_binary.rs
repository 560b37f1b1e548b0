//! Avro binary encoding of exactly `schemas/touchpoint.avsc`, by hand.
//!
//! This is the fast path for data written with the shipped schema: the
//! decoder borrows strings from the input and allocates nothing, and checks
//! every length against the bytes that remain before using it, so hostile
//! input can neither panic it nor make it allocate. It knows no other
//! schema: data from any other writer schema must go through schema
//! resolution in [`super::avro`].

use std::borrow::Cow;

use super::invalid::{Invalid, InvalidReason};
use super::limits::{AttributeSizes, FieldLimits};
use super::parts::Parts;
use super::selection::AttributeSelection;
use crate::model::{KeptAttributes, Touchpoint};

/// Decodes one datum written with the shipped touchpoint schema, with the
/// default [`FieldLimits`] ([`super::Validator`] applies the configured
/// ones).
///
/// Strings borrow from `bytes`; trailing bytes after the datum are
/// `invalid_avro`, a datum cut short is `truncated`.
pub fn decode(bytes: &[u8]) -> Result<Touchpoint<'_>, Invalid> {
    parts(bytes, &AttributeSelection::none())?.finish(&FieldLimits::default())
}

/// The fields of one datum, before the checks shared by every encoding,
/// keeping the attributes `keep` selects.
pub(crate) fn parts<'a>(bytes: &'a [u8], keep: &AttributeSelection) -> Result<Parts<'a>, Invalid> {
    let mut cursor = Cursor::new(bytes);
    let parts = cursor.touchpoint(keep)?;
    cursor.expect_end()?;
    Ok(parts)
}

/// Appends `tp` to `buf` as an Avro datum of the shipped touchpoint schema.
/// `attributes` is written as an empty map: a [`Touchpoint`] keeps only
/// the values of selected attributes, without their names.
pub fn encode_datum(tp: &Touchpoint<'_>, buf: &mut Vec<u8>) {
    put_str(buf, &tp.event_id);
    put_str(buf, &tp.customer_id);
    put_long(buf, tp.occurred_at.millis());
    put_str(buf, tp.channel.as_str());
    put_str(buf, &tp.action);
    match tp.value {
        None => put_long(buf, 0),
        Some(v) => {
            put_long(buf, 1);
            buf.extend_from_slice(&v.to_le_bytes());
        }
    }
    match &tp.session_id {
        None => put_long(buf, 0),
        Some(s) => {
            put_long(buf, 1);
            put_str(buf, s);
        }
    }
    put_long(buf, 0);
}

/// A zigzag varint `long`.
pub(super) fn put_long(buf: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

/// A `string`: its length as a `long`, then its bytes.
pub(super) fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_long(buf, s.len() as i64);
    buf.extend_from_slice(s.as_bytes());
}

/// Reads Avro primitives from a byte slice, advancing past them.
pub(crate) struct Cursor<'a> {
    /// The bytes not yet read.
    pub rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { rest: bytes }
    }

    /// The touchpoint fields, in schema order, keeping the attributes
    /// `keep` selects; structural checks only.
    pub fn touchpoint(&mut self, keep: &AttributeSelection) -> Result<Parts<'a>, Invalid> {
        let event_id = self.str("event_id")?;
        let customer_id = self.str("customer_id")?;
        let occurred_at = self.long("occurred_at")?;
        let channel = self.str("channel")?;
        let action = self.str("action")?;
        let value = match self.present("value")? {
            true => Some(self.double("value")?),
            false => None,
        };
        let session_id = match self.present("session_id")? {
            true => Some(Cow::Borrowed(self.str("session_id")?)),
            false => None,
        };
        let mut kept = KeptAttributes::default();
        let attributes = self.string_map("attributes", keep, &mut kept)?;
        Ok(Parts {
            event_id: Some(Cow::Borrowed(event_id)),
            customer_id: Some(Cow::Borrowed(customer_id)),
            occurred_at: Some(occurred_at),
            channel: Some(Cow::Borrowed(channel)),
            action: Some(Cow::Borrowed(action)),
            value,
            session_id,
            attributes,
            kept,
        })
    }

    /// Fails with `invalid_avro` unless every byte was read.
    pub fn expect_end(&self) -> Result<(), Invalid> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(Invalid::new(
                InvalidReason::InvalidAvro,
                format!("{n} bytes after the end of the datum"),
            )),
        }
    }

    /// A zigzag varint long.
    pub fn long(&mut self, field: &str) -> Result<i64, Invalid> {
        let mut z: u64 = 0;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.rest.split_first().ok_or_else(|| truncated(field))?;
            self.rest = rest;
            z |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
            }
        }
        Err(invalid(field, "varint longer than 10 bytes"))
    }

    /// `n` raw bytes.
    pub fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], Invalid> {
        let (taken, rest) = self
            .rest
            .split_at_checked(n)
            .ok_or_else(|| truncated(field))?;
        self.rest = rest;
        Ok(taken)
    }

    /// A length prefix: a non-negative long.
    pub fn length(&mut self, field: &str) -> Result<usize, Invalid> {
        let n = self.long(field)?;
        usize::try_from(n).map_err(|_| invalid(field, &format!("negative length {n}")))
    }

    /// Length-prefixed bytes.
    pub fn bytes(&mut self, field: &str) -> Result<&'a [u8], Invalid> {
        let n = self.length(field)?;
        self.take(n, field)
    }

    /// A length-prefixed UTF-8 string, borrowed.
    pub fn str(&mut self, field: &str) -> Result<&'a str, Invalid> {
        let bytes = self.bytes(field)?;
        std::str::from_utf8(bytes).map_err(|_| invalid(field, "not UTF-8"))
    }

    fn double(&mut self, field: &str) -> Result<f64, Invalid> {
        let bytes = self.take(8, field)?;
        let array: [u8; 8] = bytes.try_into().map_err(|_| truncated(field))?;
        Ok(f64::from_le_bytes(array))
    }

    /// The branch of a `["null", T]` union: false for null, true for T.
    fn present(&mut self, field: &str) -> Result<bool, Invalid> {
        match self.long(field)? {
            0 => Ok(false),
            1 => Ok(true),
            i => Err(invalid(field, &format!("union branch {i} out of range"))),
        }
    }

    /// Reads past a map of strings to strings, checking its structure and
    /// keeping only the sizes of its longest key and value, and the values
    /// of the attributes `keep` selects (borrowed). Every entry
    /// consumes at least two bytes, so a huge block count ends at the end
    /// of the input rather than looping.
    fn string_map(
        &mut self,
        field: &str,
        keep: &AttributeSelection,
        kept: &mut KeptAttributes<'a>,
    ) -> Result<AttributeSizes<'a>, Invalid> {
        let mut sizes = AttributeSizes::default();
        loop {
            let count = self.long(field)?;
            if count == 0 {
                return Ok(sizes);
            }
            if count < 0 {
                self.long(field)?;
            }
            for _ in 0..count.unsigned_abs() {
                let key = self.str(field)?;
                let value = self.str(field)?;
                sizes.add(key.len(), Some(Cow::Borrowed(key)), value.len());
                if let Some(slot) = (!keep.is_empty()).then(|| keep.slot(key)).flatten() {
                    kept.set(slot, Cow::Borrowed(value));
                }
            }
        }
    }
}

fn truncated(field: &str) -> Invalid {
    Invalid::new(InvalidReason::Truncated, format!("input ended in {field}"))
}

fn invalid(field: &str, what: &str) -> Invalid {
    Invalid::new(InvalidReason::InvalidAvro, format!("{field}: {what}"))
}

#[cfg(test)]
pub(crate) mod tests;
