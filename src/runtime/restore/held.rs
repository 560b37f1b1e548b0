//! The changelog records after a partition's last funnel record, held
//! while the changelog partition is read.
//!
//! Each drain writes a partition's customers, then its funnel record
//! ([`crate::runtime::changelog`]), so the records after the last funnel
//! record of a partition belong to a drain the writer did not finish: its
//! customers applied touchpoints whose funnel counts are in no funnel
//! record. While a pass reads on, the records after a funnel record are
//! held; the next funnel record of the partition shows they were a
//! complete drain after all, and they are restored then, in log order.
//! Whatever is still held at the end of the pass was not, and the engine
//! supersedes it ([`crate::engine::Engine::supersede`]). Records before a
//! partition's first funnel record are restored as they come: in a
//! compacted log they are older drains, and a changelog written before
//! funnel records existed has only those. At most one drain's records of
//! the partition are held at a time.

use std::ops::Range;

/// One engine partition's held records; see the module docs.
#[derive(Debug, Default)]
pub struct Held {
    /// A funnel record of the partition was read in this pass: records
    /// are held from now on.
    after_funnel: bool,
    /// Keys and values, back to back.
    bytes: Vec<u8>,
    /// The records, in log order: offset, key, and value (`None`: a
    /// tombstone).
    records: Vec<(i64, Range<usize>, Option<Range<usize>>)>,
}

impl Held {
    /// Whether a record read now is to be held rather than restored.
    pub fn holds(&self) -> bool {
        self.after_funnel
    }

    /// Holds the record at `offset`.
    pub fn hold(&mut self, offset: i64, key: &[u8], value: Option<&[u8]>) {
        let key = append(&mut self.bytes, key);
        let value = value.map(|v| append(&mut self.bytes, v));
        self.records.push((offset, key, value));
    }

    /// A funnel record of the partition was read: hands the held records
    /// to `restore` (offset, key, value), in log order, and holds from
    /// now on.
    pub fn release(&mut self, restore: impl FnMut(i64, &[u8], Option<&[u8]>)) {
        self.drain(restore);
        self.after_funnel = true;
    }

    /// Hands the held records to `f` (offset, key, value), in log order,
    /// and forgets them.
    pub fn drain(&mut self, mut f: impl FnMut(i64, &[u8], Option<&[u8]>)) {
        for (offset, key, value) in &self.records {
            let value = value.clone().map(|v| &self.bytes[v]);
            f(*offset, &self.bytes[key.clone()], value);
        }
        self.records.clear();
        self.bytes.clear();
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }
}

fn append(bytes: &mut Vec<u8>, data: &[u8]) -> Range<usize> {
    let start = bytes.len();
    bytes.extend_from_slice(data);
    start..bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    type Taken = Vec<(i64, Vec<u8>, Option<Vec<u8>>)>;

    fn drained(held: &mut Held) -> Taken {
        let mut out = Vec::new();
        held.drain(|o, k, v| out.push((o, k.to_vec(), v.map(<[u8]>::to_vec))));
        out
    }

    #[test]
    fn records_are_held_only_after_a_funnel_record_and_released_in_order() {
        let mut held = Held::default();
        assert!(
            !held.holds(),
            "before the first funnel record: restored at once"
        );
        let mut released = 0;
        held.release(|_, _, _| released += 1);
        assert_eq!(released, 0);
        assert!(held.holds());
        held.hold(7, b"ann", Some(b"\x01"));
        held.hold(9, b"bea", None);
        assert_eq!(held.len(), 2);
        let mut order = Vec::new();
        held.release(|o, k, v| order.push((o, k.to_vec(), v.is_some())));
        assert_eq!(
            order,
            [(7, b"ann".to_vec(), true), (9, b"bea".to_vec(), false)]
        );
        held.hold(12, b"cid", Some(b"\x02"));
        let left = drained(&mut held);
        assert_eq!(left, [(12, b"cid".to_vec(), Some(b"\x02".to_vec()))]);
        assert_eq!(held.len(), 0);
    }
}
