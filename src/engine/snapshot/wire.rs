//! The primitives of the state encoding: LEB128 varints, zigzag, presence
//! masks, and a reader that reports truncation and nonsense as a
//! [`DecodeError`] naming the field, never by panicking.

use super::DecodeError;

/// Appends `v` as an unsigned LEB128 varint (1 to 10 bytes).
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Maps signed to unsigned so that small magnitudes stay small.
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag`].
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends a presence mask of `flags`: bit `i % 8` of byte `i / 8`.
pub fn put_mask(out: &mut Vec<u8>, flags: impl ExactSizeIterator<Item = bool>) {
    let start = out.len();
    out.resize(start + flags.len().div_ceil(8), 0);
    for (i, set) in flags.enumerate() {
        if set {
            out[start + i / 8] |= 1 << (i % 8);
        }
    }
}

/// Reads the encoding front to back.
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// One byte of `field`.
    pub fn byte(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        let (&b, rest) = self
            .bytes
            .split_first()
            .ok_or(DecodeError::Truncated(field))?;
        self.bytes = rest;
        Ok(b)
    }

    /// `n` bytes of `field`.
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.bytes.len() {
            return Err(DecodeError::Truncated(field));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    /// A little-endian `u64` of `field`.
    pub fn u64_le(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let raw = self.take(8, field)?;
        let mut le = [0u8; 8];
        le.copy_from_slice(raw);
        Ok(u64::from_le_bytes(le))
    }

    /// An unsigned varint of `field`; more than 64 bits is invalid.
    pub fn varint(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte(field)?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(DecodeError::Invalid(field));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::Invalid(field))
    }

    /// A varint that must fit in a `u32`.
    pub fn varint_u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        u32::try_from(self.varint(field)?).map_err(|_| DecodeError::Invalid(field))
    }

    /// A count of items of at least `min_bytes` each that must still fit
    /// in the input, so that no length read from the bytes can make the
    /// decoder allocate more than the input's size.
    pub fn count(&mut self, min_bytes: usize, field: &'static str) -> Result<usize, DecodeError> {
        let n = usize::try_from(self.varint(field)?).map_err(|_| DecodeError::Invalid(field))?;
        match n.checked_mul(min_bytes) {
            Some(needed) if needed <= self.remaining() => Ok(n),
            _ => Err(DecodeError::Truncated(field)),
        }
    }

    /// A presence mask of `n` flags (see [`put_mask`]); bits past `n` must be 0.
    pub fn mask(&mut self, n: usize, field: &'static str) -> Result<Mask<'a>, DecodeError> {
        let bytes = self.take(n.div_ceil(8), field)?;
        if !n.is_multiple_of(8) && bytes.last().is_some_and(|&b| b >> (n % 8) != 0) {
            return Err(DecodeError::Invalid(field));
        }
        Ok(Mask { bytes })
    }
}

/// A decoded presence mask.
#[derive(Clone, Copy)]
pub struct Mask<'a> {
    bytes: &'a [u8],
}

impl Mask<'_> {
    /// Whether flag `i` is set.
    pub fn get(&self, i: usize) -> bool {
        self.bytes
            .get(i / 8)
            .is_some_and(|b| b & (1 << (i % 8)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert!(out.len() <= 10);
            let mut r = Reader::new(&out);
            assert_eq!(r.varint("v"), Ok(v));
            assert_eq!(r.remaining(), 0);
        }
    }

    #[test]
    fn overlong_and_truncated_varints_are_errors() {
        let eleven = [0xff; 11];
        assert_eq!(
            Reader::new(&eleven).varint("v"),
            Err(DecodeError::Invalid("v"))
        );
        let too_big = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(
            Reader::new(&too_big).varint("v"),
            Err(DecodeError::Invalid("v"))
        );
        assert_eq!(
            Reader::new(&[0x80]).varint("v"),
            Err(DecodeError::Truncated("v"))
        );
    }

    #[test]
    fn zigzag_round_trips() {
        for v in [0, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn masks_round_trip_and_reject_stray_bits() {
        let flags = [true, false, false, true, false, false, false, false, true];
        let mut out = Vec::new();
        put_mask(&mut out, flags.iter().copied());
        assert_eq!(out, [0b0000_1001, 0b1]);
        let mask = Reader::new(&out).mask(flags.len(), "m").unwrap();
        let read: Vec<bool> = (0..flags.len()).map(|i| mask.get(i)).collect();
        assert_eq!(read, flags);
        assert_eq!(
            Reader::new(&[0b10]).mask(1, "m").err(),
            Some(DecodeError::Invalid("m"))
        );
    }

    #[test]
    fn counts_cannot_promise_more_than_the_input_holds() {
        let mut out = Vec::new();
        put_varint(&mut out, u64::MAX / 2);
        assert_eq!(
            Reader::new(&out).count(1, "n"),
            Err(DecodeError::Truncated("n"))
        );
        assert_eq!(Reader::new(&[2, 0, 0]).count(1, "n"), Ok(2));
    }
}
