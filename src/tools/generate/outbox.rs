//! The outbox: records drawn but not yet emitted, ordered by emission key,
//! and the counts over the records that have left it.
//!
//! It draws nothing itself: the [`Generator`] draws each key, and records
//! with equal keys leave in the order they were pushed.
//!
//! [`Generator`]: super::Generator

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::GenerateStats;
use super::GeneratedRecord;
use super::action::Action;
use super::fault::Fault;

/// What an outbox entry is, for the counts.
#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
    /// A newly drawn event; `first` when it is its customer's first.
    Original { action: Action, first: bool },
    /// A redelivery of an earlier event.
    Duplicate,
    /// Invalid bytes derived from an event.
    Invalid(Fault),
}

/// Records waiting to be emitted, smallest `(key, push order)` first.
#[derive(Default)]
pub(super) struct Outbox {
    /// The waiting records.
    heap: BinaryHeap<Pending>,
    /// Tie-breaker for equal keys: the push order.
    seq: u64,
}

impl Outbox {
    /// Adds `record`, to leave in order of `key` (and after any record
    /// already waiting with the same key).
    pub(super) fn push(&mut self, key: i64, kind: Kind, record: GeneratedRecord) {
        self.seq += 1;
        self.heap.push(Pending {
            key,
            seq: self.seq,
            kind,
            record,
        });
    }

    /// The key of the record that leaves next.
    pub(super) fn first_key(&self) -> Option<i64> {
        self.heap.peek().map(|p| p.key)
    }

    /// Takes the record with the smallest key.
    pub(super) fn pop(&mut self) -> Option<(Kind, GeneratedRecord)> {
        self.heap.pop().map(|p| (p.kind, p.record))
    }
}

/// A record waiting in the outbox. Ordered so that the max-heap pops the
/// smallest `(key, seq)` first.
struct Pending {
    /// When it may leave: event time plus jitter, in epoch milliseconds.
    key: i64,
    /// The push order.
    seq: u64,
    /// What it is, for the counts.
    kind: Kind,
    /// The record itself.
    record: GeneratedRecord,
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.key, other.seq).cmp(&(self.key, self.seq))
    }
}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pending {}

/// Emitted records, counted in arrays on the hot path and turned into
/// [`GenerateStats`] on demand.
#[derive(Default)]
pub(super) struct Counts {
    /// Every record.
    records: u64,
    /// Valid records, duplicates included.
    valid: u64,
    /// Redelivered records.
    duplicates: u64,
    /// Customers whose first event was emitted.
    customers: u64,
    /// Invalid records, indexed by [`Fault`] declaration order.
    invalid: [u64; Fault::ALL.len()],
    /// Original valid records, indexed by [`Action`] declaration order.
    actions: [u64; Action::ALL.len()],
}

impl Counts {
    /// Counts one emitted record.
    pub(super) fn record(&mut self, kind: Kind) {
        self.records += 1;
        match kind {
            Kind::Original { action, first } => {
                self.valid += 1;
                self.actions[action as usize] += 1;
                self.customers += u64::from(first);
            }
            Kind::Duplicate => {
                self.valid += 1;
                self.duplicates += 1;
            }
            Kind::Invalid(fault) => self.invalid[fault as usize] += 1,
        }
    }

    /// The counts by name, zeros left out.
    pub(super) fn stats(&self) -> GenerateStats {
        let nonzero = |(name, &n): (&'static str, &u64)| (n > 0).then_some((name, n));
        GenerateStats {
            records: self.records,
            valid: self.valid,
            duplicates: self.duplicates,
            invalid: self.invalid.iter().sum(),
            invalid_by_reason: Fault::ALL
                .iter()
                .map(|f| f.reason())
                .zip(&self.invalid)
                .filter_map(nonzero)
                .collect(),
            customers: self.customers,
            actions: Action::ALL
                .iter()
                .map(|a| a.name())
                .zip(&self.actions)
                .filter_map(nonzero)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_tables_are_indexed_by_declaration_order() {
        for (i, action) in Action::ALL.iter().enumerate() {
            assert_eq!(*action as usize, i, "{}", action.name());
        }
        for (i, fault) in Fault::ALL.iter().enumerate() {
            assert_eq!(*fault as usize, i, "{}", fault.reason());
        }
    }

    #[test]
    fn equal_keys_leave_in_push_order() {
        let mut outbox = Outbox::default();
        for (key, n) in [(5, 1), (3, 2), (5, 3), (3, 4)] {
            let record = GeneratedRecord::Invalid {
                bytes: vec![n],
                expected_reason: "invalid_json",
            };
            outbox.push(key, Kind::Duplicate, record);
        }
        let mut order = Vec::new();
        while let Some((_, GeneratedRecord::Invalid { bytes, .. })) = outbox.pop() {
            order.push(bytes[0]);
        }
        assert_eq!(order, [2, 4, 1, 3]);
    }
}
