//! The event-time timer index: at most one entry per customer.
//!
//! Absence of events (lapse, a conversion deadline, a churn band crossing,
//! state TTL) fires from here, never from scanning customers. Each
//! partition's lane ([`super::lanes`]) has an index of its own, which fires
//! in the partition's time. Each customer has a single entry, in their
//! partition's index, at the earliest of its due times. An entry may be
//! *early* but never late: a touchpoint that pushes the lapse out leaves the
//! entry where it is (no index work on the common path), and when it fires
//! the engine finds nothing due yet and re-files the customer at its true
//! next due time. Only when a due time moves *earlier* than the entry is the
//! entry moved ([`TimerIndex::reschedule`]).
//!
//! Entries due at the same time fire in the order of a 32-bit hash of the
//! customer id, not of the slot: slots are handed out in arrival order, and the
//! outcome must not depend on it.

use std::collections::BTreeSet;

use super::customer::Slot;
use crate::model::EventTime;

/// Customers ordered by their next due time.
#[derive(Debug, Default)]
pub struct TimerIndex {
    entries: BTreeSet<(EventTime, u32, Slot)>,
}

impl TimerIndex {
    /// An empty index.
    pub fn new() -> Self {
        TimerIndex::default()
    }

    /// Moves `slot`'s entry from `current` (`MAX`: none) to `due` (`MAX`:
    /// none) and returns the new entry time. `key` is the customer's stable
    /// tie-break (a hash of the id), the same on every call for a customer.
    pub fn reschedule(
        &mut self,
        slot: Slot,
        key: u32,
        current: EventTime,
        due: EventTime,
    ) -> EventTime {
        if current == due {
            return due;
        }
        if current != EventTime::MAX {
            self.entries.remove(&(current, key, slot));
        }
        if due != EventTime::MAX {
            self.entries.insert((due, key, slot));
        }
        due
    }

    /// The earliest entry's time.
    pub fn next_due(&self) -> Option<EventTime> {
        self.entries.first().map(|&(t, _, _)| t)
    }

    /// Removes and returns the earliest entry if it is due before `limit`.
    pub fn pop_before(&mut self, limit: EventTime) -> Option<(EventTime, Slot)> {
        match self.entries.first() {
            Some(&(t, _, _)) if t < limit => self.entries.pop_first().map(|(t, _, slot)| (t, slot)),
            _ => None,
        }
    }

    /// Whether `slot` (with tie-break `key`) has its entry at `at`.
    pub fn contains(&self, slot: Slot, key: u32, at: EventTime) -> bool {
        self.entries.contains(&(at, key, slot))
    }

    /// Number of customers with a timer.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no timer is set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Approximate bytes held (B-tree nodes hold ~11 entries of 16 bytes).
    pub fn memory_bytes(&self) -> usize {
        self.entries.len() * (size_of::<(EventTime, u32, Slot)>() + 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_order_and_moves_entries() {
        let mut idx = TimerIndex::new();
        let a = idx.reschedule(1, 7, EventTime::MAX, EventTime(30));
        idx.reschedule(2, 3, EventTime::MAX, EventTime(20));
        idx.reschedule(1, 7, a, EventTime(10));
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.pop_before(EventTime(10)), None, "limit is exclusive");
        assert_eq!(idx.pop_before(EventTime(25)), Some((EventTime(10), 1)));
        assert_eq!(idx.pop_before(EventTime(25)), Some((EventTime(20), 2)));
        assert!(idx.is_empty());
    }

    #[test]
    fn equal_times_fire_in_key_order_not_slot_order() {
        let mut idx = TimerIndex::new();
        idx.reschedule(1, 9, EventTime::MAX, EventTime(5));
        idx.reschedule(2, 4, EventTime::MAX, EventTime(5));
        assert_eq!(idx.pop_before(EventTime(6)), Some((EventTime(5), 2)));
    }
}
