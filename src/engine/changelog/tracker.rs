//! Bookkeeping for the changelog: which customers changed since the last
//! drain, which left, and which restored customers still wait for a
//! re-read of their buffered touchpoints.

use compact_str::CompactString;
use hashbrown::HashMap;

use crate::engine::customer::Slot;

/// Customers changed or removed since the last drain.
///
/// A changed customer is queued by slot, once: a flag per slot says whether
/// it is queued, so marking costs a bounds check and a store, and the queue
/// never holds a slot twice. A slot freed and reused while queued stays
/// queued; the drain looks at whoever holds it then. Removals are kept by
/// id, with the partition the tombstone goes to.
#[derive(Debug, Default)]
pub struct ChangeTracker {
    /// Off (the default) for replays and tests that write no changelog:
    /// then nothing is tracked and nothing grows.
    enabled: bool,
    /// Queued slots, in the order they first changed.
    queue: Vec<Slot>,
    /// Per slot, whether it is in `queue`.
    queued: Vec<bool>,
    /// Customers removed by eviction or erasure: id -> partition.
    removed: HashMap<CompactString, u32, foldhash::fast::FixedState>,
}

impl ChangeTracker {
    /// Starts or stops tracking. Stopping forgets what is queued.
    pub fn set_enabled(&mut self, enabled: bool) {
        self.enabled = enabled;
        if !enabled {
            self.queue = Vec::new();
            self.queued = Vec::new();
            self.removed = HashMap::default();
        }
    }

    /// The customer in `slot` changed.
    #[inline]
    pub fn mark(&mut self, slot: Slot) {
        if !self.enabled {
            return;
        }
        let i = slot as usize;
        if i >= self.queued.len() {
            self.queued.resize(i + 1, false);
        }
        if !self.queued[i] {
            self.queued[i] = true;
            self.queue.push(slot);
        }
    }

    /// The queued slots.
    pub fn queued_slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.queue.iter().copied()
    }

    /// Whether `slot` is queued.
    pub fn is_queued(&self, slot: Slot) -> bool {
        self.queued.get(slot as usize).copied().unwrap_or(false)
    }

    /// The customer `id` of `partition` left memory for good: its
    /// changelog record is to be deleted.
    pub fn removed(&mut self, id: &str, partition: u32) {
        if self.enabled {
            self.removed.insert(id.into(), partition);
        }
    }

    /// Forgets a pending tombstone for `id` (the customer was restored).
    pub fn forget_removal(&mut self, id: &str) {
        self.removed.remove(id);
    }

    /// Forgets the tombstones of a revoked partition: its changelog now
    /// belongs to the next owner.
    pub fn forget_partition(&mut self, partition: u32) {
        self.removed.retain(|_, p| *p != partition);
    }

    /// Number of records the next drain yields at most.
    pub fn len(&self) -> usize {
        self.queue.len() + self.removed.len()
    }

    /// Takes the queued slots, unqueuing them.
    pub fn take_queue(&mut self) -> Vec<Slot> {
        let queue = std::mem::take(&mut self.queue);
        for &slot in &queue {
            self.queued[slot as usize] = false;
        }
        queue
    }

    /// Gives back the (emptied) queue's allocation for reuse.
    pub fn return_queue(&mut self, mut queue: Vec<Slot>) {
        queue.clear();
        if self.queue.is_empty() {
            self.queue = queue;
        }
    }

    /// Takes the pending tombstones.
    pub fn take_removed(&mut self) -> impl Iterator<Item = (CompactString, u32)> + '_ {
        self.removed.drain()
    }
}

/// Per restored customer, the offsets it had ingested but not applied
/// when it was persisted: re-reads of these are applied, not skipped.
#[derive(Debug, Default)]
pub struct ReplayLists {
    /// Slot -> ascending offsets on the customer's partition.
    lists: HashMap<Slot, Vec<i64>, foldhash::fast::FixedState>,
}

impl ReplayLists {
    /// Whether no restored customer waits for anything.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    /// `slot` waits for re-reads of `offsets` (ascending).
    pub fn set(&mut self, slot: Slot, offsets: Vec<i64>) {
        if offsets.is_empty() {
            self.lists.remove(&slot);
        } else {
            self.lists.insert(slot, offsets);
        }
    }

    /// Whether `slot` waited for `offset`; it no longer does.
    pub fn take(&mut self, slot: Slot, offset: i64) -> bool {
        let Some(list) = self.lists.get_mut(&slot) else {
            return false;
        };
        let Ok(at) = list.binary_search(&offset) else {
            return false;
        };
        list.remove(at);
        if list.is_empty() {
            self.lists.remove(&slot);
        }
        true
    }

    /// Offsets `slot` still waits for, ascending.
    pub fn get(&self, slot: Slot) -> &[i64] {
        self.lists.get(&slot).map_or(&[], Vec::as_slice)
    }

    /// Stops waiting for `slot`; returns how many offsets were never re-read.
    pub fn forget(&mut self, slot: Slot) -> usize {
        self.lists.remove(&slot).map_or(0, |l| l.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_queued_once_until_taken() {
        let mut t = ChangeTracker::default();
        t.mark(3);
        assert_eq!(t.len(), 0, "disabled: nothing tracked");
        t.set_enabled(true);
        for slot in [3, 1, 3, 3, 1] {
            t.mark(slot);
        }
        assert_eq!(t.len(), 2);
        let queue = t.take_queue();
        assert_eq!(queue, [3, 1]);
        assert!(!t.is_queued(3));
        t.return_queue(queue);
        t.mark(1);
        assert_eq!(t.take_queue(), [1]);
    }

    #[test]
    fn removals_are_kept_once_per_id_and_dropped_with_their_partition() {
        let mut t = ChangeTracker::default();
        t.set_enabled(true);
        t.removed("ann", 0);
        t.removed("ann", 0);
        t.removed("bea", 1);
        assert_eq!(t.len(), 2);
        t.forget_partition(1);
        let removed: Vec<_> = t.take_removed().collect();
        assert_eq!(removed, [("ann".into(), 0)]);
    }

    #[test]
    fn replay_lists_hand_out_each_offset_once() {
        let mut r = ReplayLists::default();
        r.set(7, vec![10, 12]);
        assert!(!r.take(7, 11));
        assert!(r.take(7, 12));
        assert!(!r.take(7, 12));
        assert_eq!(r.get(7), [10]);
        assert_eq!(r.forget(7), 1);
        assert!(r.is_empty());
    }
}
