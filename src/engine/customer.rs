//! Per-customer journey state and the arena that holds it.
//!
//! A customer's state has a fixed size whatever they send: a [`Customer`] of
//! scalar fields plus `layout.len` words (`i64`) laid out by [`SlotLayout`]:
//!
//! ```text
//! [ windowed-signal timestamps | churn-signal times | de-dup fingerprints ]
//!   count per windowed signal    one per signal      limits.dedupe_per_customer
//! ```
//!
//! Customers live in a slab ([`Customers`]) addressed by a `u32` slot. Their
//! words live in one flat vector at `slot * layout.len`, so a customer costs
//! no allocation of its own; an id -> slot hash table stores only slot
//! numbers, and each id is stored once, inline in a [`CompactString`] for ids
//! up to 24 bytes. Timers and buffered events refer to customers by slot.

use std::ops::{Deref, DerefMut};

use compact_str::CompactString;
use hashbrown::HashTable;
use std::hash::BuildHasher;

use super::rules::{SlotLayout, StageIdx, Window};
use crate::model::{Band, EventTime};

/// No stage yet: the customer's first event is still in the reorder buffer.
pub const NO_STAGE: StageIdx = StageIdx::MAX;

/// One customer's journey (the fixed part; see [`CustomerMut`] for the rest).
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
    /// Next write position in the de-duplication ring.
    pub dedupe_cursor: u8,
    /// The input partition the customer's touchpoints come from (the
    /// driver's dense partition index): their state moves with it.
    pub partition: u16,
    /// Events of this customer waiting in the reorder buffer, which refer
    /// to this slot: an evicted customer with pending events is reset in
    /// place rather than removed.
    pub pending: u32,
    /// Sequence of the last `StageChanged` emitted.
    pub stage_seq: u32,
    /// Sequence of the last `ChurnRiskChanged` emitted.
    pub churn_seq: u32,
    /// Offset of the newest touchpoint ingested from `partition`; negative
    /// if none (or offsets are not tracked). A touchpoint read again at or
    /// below it, as after a restore, was ingested before (see
    /// [`super::changelog`]).
    pub fence: i64,
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
    /// Event time of the first purchase; `MIN` before it.
    pub first_purchase: EventTime,
    /// Event time of the latest purchase; `MIN` before the first.
    pub last_purchase: EventTime,
    /// Next churn-band change by time alone (or a signal expiring).
    pub churn_due: EventTime,
    /// Time of this customer's entry in the timer index; `MAX` if none.
    pub timer_at: EventTime,
}

impl Customer {
    fn new(id: &str) -> Self {
        Customer {
            id: id.into(),
            stage: NO_STAGE,
            band: None,
            conversion_pending: false,
            cancelled: false,
            dedupe_cursor: 0,
            partition: 0,
            pending: 0,
            fence: -1,
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
        }
    }

    /// Heap bytes owned by this customer (an id longer than 24 bytes).
    pub fn heap_bytes(&self) -> usize {
        if self.id.is_heap_allocated() {
            self.id.len()
        } else {
            0
        }
    }
}

/// A customer with its words, borrowed mutably from the arena.
#[derive(Debug)]
pub struct CustomerMut<'a> {
    state: &'a mut Customer,
    words: &'a mut [i64],
}

impl Deref for CustomerMut<'_> {
    type Target = Customer;
    fn deref(&self) -> &Customer {
        self.state
    }
}

impl DerefMut for CustomerMut<'_> {
    fn deref_mut(&mut self) -> &mut Customer {
        self.state
    }
}

impl CustomerMut<'_> {
    /// The customer's words (see [`SlotLayout`]).
    pub fn words(&self) -> &[i64] {
        self.words
    }

    /// The customer's words, mutably.
    pub fn words_mut(&mut self) -> &mut [i64] {
        self.words
    }

    /// Records `fingerprint` unless it is among the recent ones; returns
    /// `false` for a duplicate. Fingerprint 0 is reserved for "empty".
    pub fn remember(&mut self, fingerprint: u64, layout: &SlotLayout) -> bool {
        let fp = (fingerprint | 1) as i64;
        let ring = &mut self.words[layout.dedupe..];
        if ring.contains(&fp) {
            return false;
        }
        let cursor = usize::from(self.state.dedupe_cursor) % ring.len();
        ring[cursor] = fp;
        self.state.dedupe_cursor = ((cursor + 1) % ring.len()) as u8;
        true
    }

    /// Adds `at` to a windowed signal's timestamps (keeping the latest
    /// `count`, sorted) and reports whether `at` is now one of `count`
    /// matching events spanning at most `within_ms` of event time.
    pub fn count_in_window(&mut self, window: &Window, at: EventTime) -> bool {
        let end = window.offset + window.count as usize;
        let ring = &mut self.words[window.offset..end];
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
        let t = self.words[layout.churn + slot];
        (t != i64::MIN).then_some(EventTime(t))
    }

    /// Records an occurrence of a churn signal (the latest one wins).
    pub fn set_churn_signal(&mut self, layout: &SlotLayout, slot: usize, at: EventTime) {
        let s = &mut self.words[layout.churn + slot];
        *s = (*s).max(at.0);
    }
}

/// Slot number of a customer in [`Customers`].
pub type Slot = u32;

/// The arena of customers with an id index.
#[derive(Debug)]
pub struct Customers {
    layout: SlotLayout,
    index: HashTable<Slot>,
    customers: Vec<Customer>,
    /// `layout.len` words per slot, slot after slot.
    words: Vec<i64>,
    free: Vec<Slot>,
    hasher: foldhash::fast::FixedState,
}

impl Customers {
    /// An empty arena for customers laid out by `layout`.
    pub fn new(layout: SlotLayout) -> Self {
        Customers {
            layout,
            index: HashTable::new(),
            customers: Vec::new(),
            words: Vec::new(),
            free: Vec::new(),
            hasher: foldhash::fast::FixedState::with_seed(0),
        }
    }

    /// Number of customers held.
    pub fn len(&self) -> usize {
        self.customers.len() - self.free.len()
    }

    /// Whether no customer is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slot of a known customer.
    pub fn find(&self, id: &str) -> Option<Slot> {
        let hash = self.hasher.hash_one(id);
        self.index
            .find(hash, |&s| self.customers[s as usize].id == id)
            .copied()
    }

    /// The slot of `id`, creating a fresh customer if it is unknown.
    /// Returns the slot and whether it was created.
    pub fn find_or_insert(&mut self, id: &str) -> (Slot, bool) {
        let hash = self.hasher.hash_one(id);
        let customers = &self.customers;
        if let Some(&s) = self.index.find(hash, |&s| customers[s as usize].id == id) {
            return (s, false);
        }
        let slot = match self.free.pop() {
            Some(s) => {
                self.customers[s as usize] = Customer::new(id);
                s
            }
            None => {
                self.customers.push(Customer::new(id));
                self.words.resize(self.customers.len() * self.layout.len, 0);
                (self.customers.len() - 1) as Slot
            }
        };
        self.reset_words(slot);
        let (customers, hasher) = (&self.customers, &self.hasher);
        self.index.insert_unique(hash, slot, |&s| {
            hasher.hash_one(customers[s as usize].id.as_str())
        });
        (slot, true)
    }

    /// Returns the words of `slot` to their fresh values.
    pub fn reset_words(&mut self, slot: Slot) {
        let layout = self.layout;
        let words = &mut self.words[slot as usize * layout.len..][..layout.len];
        words[..layout.dedupe].fill(i64::MIN);
        words[layout.dedupe..].fill(0);
    }

    /// Removes a customer, returning their final state.
    pub fn remove(&mut self, slot: Slot) -> Customer {
        let hash = self
            .hasher
            .hash_one(self.customers[slot as usize].id.as_str());
        if let Ok(entry) = self.index.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
        self.free.push(slot);
        std::mem::replace(&mut self.customers[slot as usize], Customer::new(""))
    }

    /// Ends the customer's journey but keeps the slot, for a customer whose
    /// later touchpoints are already buffered: the fresh state keeps the id,
    /// the pending count, the de-duplication memory and the replay fence.
    /// Returns the old state.
    pub fn reset(&mut self, slot: Slot) -> Customer {
        let current = &mut self.customers[slot as usize];
        let fresh = Customer {
            pending: current.pending,
            partition: current.partition,
            fence: current.fence,
            dedupe_cursor: current.dedupe_cursor,
            ..Customer::new(&current.id)
        };
        let old = std::mem::replace(current, fresh);
        let layout = self.layout;
        self.words[slot as usize * layout.len..][..layout.dedupe].fill(i64::MIN);
        old
    }

    /// The customer in `slot`.
    #[inline]
    pub fn get(&self, slot: Slot) -> &Customer {
        &self.customers[slot as usize]
    }

    /// The customer in `slot` with its words, mutably.
    #[inline]
    pub fn get_mut(&mut self, slot: Slot) -> CustomerMut<'_> {
        let len = self.layout.len;
        CustomerMut {
            state: &mut self.customers[slot as usize],
            words: &mut self.words[slot as usize * len..][..len],
        }
    }

    /// The words of the customer in `slot`.
    pub fn words(&self, slot: Slot) -> &[i64] {
        let len = self.layout.len;
        &self.words[slot as usize * len..][..len]
    }

    /// Whether `slot` holds a customer (it may have been freed).
    pub fn is_live(&self, slot: Slot) -> bool {
        self.customers
            .get(slot as usize)
            .is_some_and(|c| self.find(&c.id) == Some(slot))
    }

    /// The layout of every customer's words.
    pub fn layout(&self) -> &SlotLayout {
        &self.layout
    }

    /// Every live customer, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (Slot, &Customer)> {
        let free: hashbrown::HashSet<Slot> = self.free.iter().copied().collect();
        self.customers
            .iter()
            .enumerate()
            .map(|(i, c)| (i as Slot, c))
            .filter(move |(i, _)| !free.contains(i))
    }

    /// The stable timer tie-break of a customer: a 32-bit hash of their id.
    pub fn timer_key(&self, slot: Slot) -> u32 {
        let hash = self
            .hasher
            .hash_one(self.customers[slot as usize].id.as_str());
        (hash >> 32) as u32
    }

    /// Bytes held per customer slot, besides long ids: the struct and its words.
    pub fn bytes_per_slot(&self) -> usize {
        size_of::<Customer>() + self.layout.len * size_of::<i64>()
    }

    /// Approximate bytes of state held for the customers present: their
    /// slots, long ids and index entries. Freed slots are kept for reuse and
    /// not counted, so this falls when customers are evicted.
    pub fn memory_bytes(&self) -> usize {
        let long_ids: usize = self.customers.iter().map(Customer::heap_bytes).sum();
        // hashbrown keeps at most 7/8 of its buckets full; 1 control byte each.
        let index = self.len() * 8 / 7 * (size_of::<Slot>() + 1);
        self.len() * self.bytes_per_slot() + long_ids + index
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

    fn one() -> (Customers, Slot) {
        let mut cs = Customers::new(LAYOUT);
        let (slot, _) = cs.find_or_insert("c");
        (cs, slot)
    }

    #[test]
    fn dedupe_ring_remembers_the_latest() {
        let (mut cs, slot) = one();
        let mut c = cs.get_mut(slot);
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
        let (mut cs, slot) = one();
        let mut c = cs.get_mut(slot);
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
        let mut cs = Customers::new(LAYOUT);
        let (a, new_a) = cs.find_or_insert("alice");
        let (b, _) = cs.find_or_insert("bob");
        assert!(new_a);
        assert!(cs.get_mut(a).remember(42, &LAYOUT));
        assert_eq!(cs.find_or_insert("alice"), (a, false));
        assert_eq!(cs.remove(a).id, "alice");
        assert_eq!(cs.find("alice"), None);
        assert_eq!(cs.find("bob"), Some(b));
        let (c, _) = cs.find_or_insert("carol");
        assert_eq!(c, a, "freed slot reused");
        assert!(
            cs.get_mut(c).remember(42, &LAYOUT),
            "a reused slot starts with fresh words"
        );
        assert_eq!(cs.len(), 2);
    }
}
