//! Per-customer journey state and the arena that holds it.
//!
//! A customer's state has a fixed size whatever they send: scalar fields
//! plus one flat slice of `i64` slots laid out by [`SlotLayout`]:
//!
//! ```text
//! [ windowed-signal timestamps | churn-signal times | de-dup fingerprints ]
//!   count per windowed signal    one per signal      limits.dedupe_per_customer
//! ```
//!
//! Customers live in a slab ([`Customers`]) addressed by a `u32` slot; an
//! id -> slot hash table stores only slot numbers, so each id is stored once,
//! inline in a [`CompactString`] for ids up to 24 bytes. Timers and buffered
//! events refer to customers by slot.

use compact_str::CompactString;
use hashbrown::HashTable;
use std::hash::BuildHasher;

use super::rules::{SlotLayout, StageIdx, Window};
use crate::model::{Band, EventTime};

/// No stage yet: the customer's first event is still in the reorder buffer.
pub const NO_STAGE: StageIdx = StageIdx::MAX;

/// One customer's journey.
#[derive(Clone, Debug)]
pub struct Customer {
    /// The customer id (the Kafka key).
    pub id: CompactString,
    /// Current stage, or [`NO_STAGE`].
    pub stage: StageIdx,
    /// Current churn band; `None` before the first purchase.
    pub band: Option<Band>,
    /// A conversion deadline from the current stage is running.
    pub conversion_pending: bool,
    /// A cancellation set the churn risk to 1 (cleared by the next purchase).
    pub cancelled: bool,
    /// Events of this customer waiting in the reorder buffer; a customer
    /// with pending events is never evicted.
    pub pending: u16,
    /// Next write position in the de-duplication ring.
    pub dedupe_cursor: u8,
    /// Sequence of the last `StageChanged` emitted.
    pub stage_seq: u32,
    /// Sequence of the last `ChurnRiskChanged` emitted.
    pub churn_seq: u32,
    /// Touchpoints processed.
    pub touchpoints: u32,
    /// Purchases seen (for the churn model; x = purchases - 1).
    pub purchases: u32,
    /// Funnel window (index, truncated) the customer was last counted active in.
    pub active_window: u32,
    /// When the current stage was entered.
    pub stage_since: EventTime,
    /// Latest event time of a processed touchpoint.
    pub last_seen: EventTime,
    pub first_purchase: EventTime,
    pub last_purchase: EventTime,
    /// Next churn-band change by time alone (or a signal expiring).
    pub churn_due: EventTime,
    /// Time of this customer's entry in the timer index; `MAX` if none.
    pub timer_at: EventTime,
    /// The flat slots, see the module docs.
    pub slots: Box<[i64]>,
}

impl Customer {
    fn new(id: &str, layout: &SlotLayout) -> Self {
        let mut slots = vec![i64::MIN; layout.len].into_boxed_slice();
        slots[layout.dedupe..].fill(0);
        Customer {
            id: id.into(),
            stage: NO_STAGE,
            band: None,
            conversion_pending: false,
            cancelled: false,
            pending: 0,
            dedupe_cursor: 0,
            stage_seq: 0,
            churn_seq: 0,
            touchpoints: 0,
            purchases: 0,
            active_window: u32::MAX,
            stage_since: EventTime::MIN,
            last_seen: EventTime::MIN,
            first_purchase: EventTime::MIN,
            last_purchase: EventTime::MIN,
            churn_due: EventTime::MAX,
            timer_at: EventTime::MAX,
            slots,
        }
    }

    /// Records `fingerprint` unless it is among the recent ones; returns
    /// `false` for a duplicate. Fingerprint 0 is reserved for "empty".
    pub fn remember(&mut self, fingerprint: u64, layout: &SlotLayout) -> bool {
        let fp = (fingerprint | 1) as i64;
        let ring = &mut self.slots[layout.dedupe..];
        if ring.contains(&fp) {
            return false;
        }
        let cursor = usize::from(self.dedupe_cursor) % ring.len();
        ring[cursor] = fp;
        self.dedupe_cursor = ((cursor + 1) % ring.len()) as u8;
        true
    }

    /// Adds `at` to a windowed signal's timestamps (keeping the latest
    /// `count`, sorted) and reports whether `at` is now one of `count`
    /// matching events spanning at most `within_ms` of event time.
    pub fn count_in_window(&mut self, window: &Window, at: EventTime) -> bool {
        let end = window.offset + window.count as usize;
        let ring = &mut self.slots[window.offset..end];
        // Ascending; i64::MIN marks unused. An event older than every kept
        // timestamp cannot complete a newer window than those already seen.
        if at.0 < ring[0] {
            return false;
        }
        ring[0] = at.0;
        ring.sort_unstable();
        let (first, last) = (ring[0], ring[ring.len() - 1]);
        first != i64::MIN && last.saturating_sub(first) <= window.within_ms
    }

    /// Latest occurrence of a churn signal, if any.
    pub fn churn_signal_at(&self, layout: &SlotLayout, slot: usize) -> Option<EventTime> {
        let t = self.slots[layout.churn + slot];
        (t != i64::MIN).then_some(EventTime(t))
    }

    /// Records an occurrence of a churn signal (the latest one wins).
    pub fn set_churn_signal(&mut self, layout: &SlotLayout, slot: usize, at: EventTime) {
        let s = &mut self.slots[layout.churn + slot];
        *s = (*s).max(at.0);
    }

    /// Approximate heap bytes owned by this customer besides the struct.
    pub fn heap_bytes(&self) -> usize {
        let id = if self.id.is_heap_allocated() {
            self.id.len()
        } else {
            0
        };
        id + self.slots.len() * size_of::<i64>()
    }
}

/// Slot number of a customer in [`Customers`].
pub type Slot = u32;

/// The arena of customers with an id index.
#[derive(Debug, Default)]
pub struct Customers {
    index: HashTable<Slot>,
    slots: Vec<Customer>,
    free: Vec<Slot>,
    hasher: foldhash::fast::FixedState,
}

impl Customers {
    /// An empty arena.
    pub fn new() -> Self {
        Customers::default()
    }

    /// Number of customers held.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Whether no customer is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slot of a known customer.
    pub fn find(&self, id: &str) -> Option<Slot> {
        let hash = self.hasher.hash_one(id);
        self.index
            .find(hash, |&s| self.slots[s as usize].id == id)
            .copied()
    }

    /// The slot of `id`, creating a fresh customer if it is unknown.
    /// Returns the slot and whether it was created.
    pub fn find_or_insert(&mut self, id: &str, layout: &SlotLayout) -> (Slot, bool) {
        let hash = self.hasher.hash_one(id);
        let slots = &self.slots;
        if let Some(&s) = self.index.find(hash, |&s| slots[s as usize].id == id) {
            return (s, false);
        }
        let customer = Customer::new(id, layout);
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = customer;
                s
            }
            None => {
                self.slots.push(customer);
                (self.slots.len() - 1) as Slot
            }
        };
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index.insert_unique(hash, slot, |&s| {
            hasher.hash_one(slots[s as usize].id.as_str())
        });
        (slot, true)
    }

    /// Removes a customer, returning their final state.
    pub fn remove(&mut self, slot: Slot) -> Customer {
        let hash = self.hasher.hash_one(self.slots[slot as usize].id.as_str());
        if let Ok(entry) = self.index.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
        self.free.push(slot);
        let empty = Customer::new(
            "",
            &SlotLayout {
                churn: 0,
                dedupe: 0,
                len: 0,
            },
        );
        std::mem::replace(&mut self.slots[slot as usize], empty)
    }

    /// The customer in `slot`.
    #[inline]
    pub fn get(&self, slot: Slot) -> &Customer {
        &self.slots[slot as usize]
    }

    /// The customer in `slot`, mutably.
    #[inline]
    pub fn get_mut(&mut self, slot: Slot) -> &mut Customer {
        &mut self.slots[slot as usize]
    }

    /// Every live customer, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (Slot, &Customer)> {
        let free: hashbrown::HashSet<Slot> = self.free.iter().copied().collect();
        self.slots
            .iter()
            .enumerate()
            .map(|(i, c)| (i as Slot, c))
            .filter(move |(i, _)| !free.contains(i))
    }

    /// Approximate bytes of memory held for customers.
    pub fn memory_bytes(&self) -> usize {
        let heap: usize = self.slots.iter().map(Customer::heap_bytes).sum();
        self.slots.capacity() * size_of::<Customer>()
            + heap
            + self.index.capacity() * (size_of::<Slot>() + 1)
            + self.free.capacity() * size_of::<Slot>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYOUT: SlotLayout = SlotLayout {
        churn: 3,
        dedupe: 3,
        len: 7,
    };

    #[test]
    fn dedupe_ring_remembers_the_latest() {
        let mut c = Customer::new("c", &LAYOUT);
        for fp in 1..=4u64 {
            assert!(c.remember(fp * 2, &LAYOUT));
        }
        assert!(!c.remember(8, &LAYOUT), "recent fingerprint is a duplicate");
        assert!(
            c.remember(10, &LAYOUT),
            "new fingerprint pushes out the oldest"
        );
        assert!(c.remember(2, &LAYOUT), "the oldest was forgotten");
    }

    #[test]
    fn windowed_count_in_event_time() {
        let w = Window {
            count: 3,
            within_ms: 7 * 86_400_000,
            offset: 0,
        };
        let day = |d: i64| EventTime(d * 86_400_000);
        let mut c = Customer::new("c", &LAYOUT);
        assert!(!c.count_in_window(&w, day(0)));
        assert!(!c.count_in_window(&w, day(5)));
        assert!(!c.count_in_window(&w, day(10)), "day 0 is 10 days before");
        assert!(
            c.count_in_window(&w, day(11)),
            "days 5, 10, 11 are within 7 days"
        );
    }

    #[test]
    fn arena_reuses_slots_and_finds_by_id() {
        let mut cs = Customers::new();
        let (a, new_a) = cs.find_or_insert("alice", &LAYOUT);
        let (b, _) = cs.find_or_insert("bob", &LAYOUT);
        assert!(new_a);
        assert_eq!(cs.find_or_insert("alice", &LAYOUT), (a, false));
        assert_eq!(cs.remove(a).id, "alice");
        assert_eq!(cs.find("alice"), None);
        assert_eq!(cs.find("bob"), Some(b));
        let (c, _) = cs.find_or_insert("carol", &LAYOUT);
        assert_eq!(c, a, "freed slot reused");
        assert_eq!(cs.len(), 2);
    }
}
