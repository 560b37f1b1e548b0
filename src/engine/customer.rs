//! Per-customer journey state and the arena that holds it.
//!
//! A customer's state has a fixed size whatever they send: a [`Customer`] of
//! scalar fields plus `layout.len` words (`i64`) laid out by [`SlotLayout`]:
//!
//! ```text
//! [ windowed-signal timestamps | churn-signal times | open moments | de-dup floor, entries ]
//!   count per windowed signal    one per signal      two per moment 1 + limits.dedupe_per_customer
//! ```
//!
//! (the de-duplication words are described in [`super::dedupe`], the
//! moments' in [`super::moments`]).
//!
//! Customers live in a slab ([`Customers`]) addressed by a `u32` slot. Their
//! words live in one flat vector at `slot * layout.len`, so a customer costs
//! no allocation of its own; an id -> slot hash table stores only slot
//! numbers, and each id is stored once, inline in a [`CompactString`] for ids
//! up to 24 bytes. Timers and buffered events refer to customers by slot.
//!
//! # Per-partition lists, and figures kept as they change
//!
//! Every customer belongs to exactly one partition ([`Customer::partition`]).
//! What concerns one partition (a revocation, a rewind, a restore report)
//! walks that partition's customers only: each partition's slots form a
//! doubly linked list threaded through a `prev`/`next` pair kept beside
//! each slot (8 bytes a customer), so a customer joins, leaves or moves in
//! O(1). The lists are kept right by the three ways a slot changes hands:
//! [`Customers::find_or_insert`] links a new customer into partition 0,
//! [`Customers::set_partition`] moves it, [`Customers::remove`] unlinks it;
//! [`Customers::reset`] keeps it where it is. The partition is therefore
//! changed through [`Customers::set_partition`] only, never by writing the
//! field.
//!
//! The memory gauge reads figures kept up to date on the same paths (the
//! bytes of ids too long to be inline), so reading it costs O(1) however
//! many customers are held. [`Customers::check_index`] recomputes all of
//! it by a full scan, for tests.
//!
//! # Growth
//!
//! The slab and its words grow by an eighth at a time (at least
//! [`GROW_MIN`] slots), never past `limits.max_customers`, instead of
//! doubling: what a big instance reserves stays within an eighth of what
//! it uses, whatever the allocator does with a reservation. (With glibc,
//! which moves large blocks by remapping pages rather than copying them,
//! resident memory was the same either way: 1.29 GB at peak for 5 million
//! customers in `journeyd replay`.) The id index (about 6 bytes a customer,
//! against some 240 of slab) still doubles when it fills.

use std::ops::{Deref, DerefMut};

use compact_str::CompactString;
use hashbrown::HashTable;
use std::hash::BuildHasher;

use super::consent::ConsentState;
use super::dedupe::{self, Verdict};
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
    /// The input partition the customer's touchpoints come from (the
    /// driver's dense partition index): their state moves with it.
    /// Changed only through [`Customers::set_partition`], which keeps the
    /// partition's list of customers right.
    pub partition: u16,
    /// Events of this customer waiting in the reorder buffer, which refer
    /// to this slot: an evicted customer with pending events is reset in
    /// place rather than removed.
    pub pending: u32,
    /// Sequence of the last `StageChanged` emitted.
    pub stage_seq: u32,
    /// Sequence of the last `ChurnRiskChanged` emitted.
    pub churn_seq: u32,
    /// Sequence of the last `MomentCompleted` or `MomentAbandoned` emitted.
    pub moment_seq: u32,
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
    /// The latest NPS, CSAT and CES responses ([`NO_SCORE`]: none).
    pub latest_scores: [u8; 3],
    /// Event time of the journey's first touchpoint; `MIN` if unknown.
    pub first_seen: EventTime,
    /// Consent for `consent.purpose` ([`super::consent`]); kept when a
    /// withdrawal erases the rest.
    pub consent: ConsentState,
    /// Event time of the latest consent change; `MIN` if none.
    pub consent_at: EventTime,
}

/// A latest score the customer never gave.
pub const NO_SCORE: u8 = u8::MAX;

impl Customer {
    fn new(id: &str) -> Self {
        Customer {
            id: id.into(),
            stage: NO_STAGE,
            band: None,
            conversion_pending: false,
            cancelled: false,
            partition: 0,
            pending: 0,
            fence: -1,
            stage_seq: 0,
            churn_seq: 0,
            moment_seq: 0,
            touchpoints: 0,
            purchases: 0,
            active_window: u32::MAX,
            stage_since: EventTime::MIN,
            last_seen: EventTime::MIN,
            first_purchase: EventTime::MIN,
            last_purchase: EventTime::MIN,
            churn_due: EventTime::MAX,
            timer_at: EventTime::MAX,
            latest_scores: [NO_SCORE; 3],
            first_seen: EventTime::MIN,
            consent: ConsentState::Unknown,
            consent_at: EventTime::MIN,
        }
    }

    /// The customer's latest sign of life: their latest touchpoint, or a
    /// later consent change; `state_ttl` runs from it.
    pub fn seen(&self) -> EventTime {
        self.last_seen.max(self.consent_at)
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

    /// Checks a touchpoint about to be applied against the customer's
    /// de-duplication memory ([`dedupe::check`]), remembering it unless
    /// it is refused.
    pub fn dedupe(&mut self, entry: u64, horizon_ms: u64, layout: &SlotLayout) -> Verdict {
        dedupe::check(&mut self.words[layout.dedupe..], entry, horizon_ms)
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

/// No slot: the end of a partition's list.
const NIL: Slot = Slot::MAX;

/// A slot's neighbours in its partition's list ([`NIL`] at the ends; both
/// [`NIL`] for a free slot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Link {
    prev: Slot,
    next: Slot,
}

impl Link {
    const NONE: Link = Link {
        prev: NIL,
        next: NIL,
    };
}

/// One partition's list of customers.
#[derive(Clone, Copy, Debug)]
struct Members {
    /// The most recently linked slot, or [`NIL`].
    head: Slot,
    /// Customers in the list.
    len: u32,
}

impl Members {
    const EMPTY: Members = Members { head: NIL, len: 0 };
}

/// The fewest slots the slab grows by, so that a small one does not
/// reallocate at every new customer.
pub const GROW_MIN: usize = 4096;

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
    /// Per slot, its neighbours in its partition's list.
    links: Vec<Link>,
    /// Per partition tag, its list; grown when a new tag appears.
    members: Vec<Members>,
    /// Heap bytes of the ids held (those too long to be inline).
    long_ids: usize,
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
            links: Vec::new(),
            members: Vec::new(),
            long_ids: 0,
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
        self.find_or_insert_within(id, usize::MAX)
            .expect("no bound on customers")
    }

    /// [`Customers::find_or_insert`], unless `id` is unknown and `max`
    /// customers are held already: `None` then, and nothing is kept of it.
    pub fn find_or_insert_within(&mut self, id: &str, max: usize) -> Option<(Slot, bool)> {
        let hash = self.hasher.hash_one(id);
        let customers = &self.customers;
        if let Some(&s) = self.index.find(hash, |&s| customers[s as usize].id == id) {
            return Some((s, false));
        }
        if self.len() >= max {
            return None;
        }
        let slot = match self.free.pop() {
            Some(s) => {
                self.customers[s as usize] = Customer::new(id);
                s
            }
            None => {
                self.grow(max);
                self.customers.push(Customer::new(id));
                self.links.push(Link::NONE);
                self.words.resize(self.customers.len() * self.layout.len, 0);
                (self.customers.len() - 1) as Slot
            }
        };
        self.reset_words(slot);
        self.long_ids += self.customers[slot as usize].heap_bytes();
        self.link(slot);
        let (customers, hasher) = (&self.customers, &self.hasher);
        self.index.insert_unique(hash, slot, |&s| {
            hasher.hash_one(customers[s as usize].id.as_str())
        });
        Some((slot, true))
    }

    /// Makes room for one more slot when the slab is full: an eighth more
    /// (at least [`GROW_MIN`]), but not past `max` slots.
    fn grow(&mut self, max: usize) {
        let len = self.customers.len();
        if len < self.customers.capacity() {
            return;
        }
        let more = (len / 8).max(GROW_MIN).min(max.saturating_sub(len)).max(1);
        self.customers.reserve_exact(more);
        self.links.reserve_exact(more);
        self.words.reserve_exact(more * self.layout.len);
    }

    /// Slots the slab has room for without growing.
    pub fn slot_capacity(&self) -> usize {
        self.customers.capacity()
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
        self.unlink(slot);
        self.free.push(slot);
        let gone = std::mem::replace(&mut self.customers[slot as usize], Customer::new(""));
        self.long_ids -= gone.heap_bytes();
        gone
    }

    /// Moves the customer in `slot` to partition `tag`'s list.
    pub fn set_partition(&mut self, slot: Slot, tag: u16) {
        if self.customers[slot as usize].partition != tag {
            self.unlink(slot);
            self.customers[slot as usize].partition = tag;
            self.link(slot);
        }
    }

    /// Puts `slot` at the head of its partition's list.
    fn link(&mut self, slot: Slot) {
        let tag = usize::from(self.customers[slot as usize].partition);
        if tag >= self.members.len() {
            self.members.resize(tag + 1, Members::EMPTY);
        }
        let list = &mut self.members[tag];
        let head = std::mem::replace(&mut list.head, slot);
        list.len += 1;
        self.links[slot as usize] = Link {
            prev: NIL,
            next: head,
        };
        if head != NIL {
            self.links[head as usize].prev = slot;
        }
    }

    /// Takes `slot` out of its partition's list.
    fn unlink(&mut self, slot: Slot) {
        let Link { prev, next } = std::mem::replace(&mut self.links[slot as usize], Link::NONE);
        let list = &mut self.members[usize::from(self.customers[slot as usize].partition)];
        list.len -= 1;
        match prev {
            NIL => list.head = next,
            p => self.links[p as usize].next = next,
        }
        if next != NIL {
            self.links[next as usize].prev = prev;
        }
    }

    /// Number of customers of partition `tag`.
    pub fn partition_len(&self, tag: u16) -> usize {
        self.members
            .get(usize::from(tag))
            .map_or(0, |m| m.len as usize)
    }

    /// The first customer of partition `tag`'s list (most recently
    /// joined); [`Customers::next_in_partition`] gives the rest.
    pub fn first_in_partition(&self, tag: u16) -> Option<Slot> {
        let head = self.members.get(usize::from(tag)).map_or(NIL, |m| m.head);
        (head != NIL).then_some(head)
    }

    /// The customer after `slot` in its partition's list. Taking `slot`
    /// out ([`Customers::remove`]) leaves the one after it in place, so a
    /// walk may remove what it has visited.
    pub fn next_in_partition(&self, slot: Slot) -> Option<Slot> {
        let next = self.links[slot as usize].next;
        (next != NIL).then_some(next)
    }

    /// Every customer of partition `tag`, in list order.
    pub fn partition_slots(&self, tag: u16) -> impl Iterator<Item = Slot> + '_ {
        std::iter::successors(self.first_in_partition(tag), |&s| self.next_in_partition(s))
    }

    /// Recomputes the per-partition lists and the kept figures by a full
    /// scan and reports the first disagreement: for tests and debug
    /// assertions, never on a frequent path.
    pub fn check_index(&self) -> Result<(), String> {
        let free: hashbrown::HashSet<Slot> = self.free.iter().copied().collect();
        let mut seen = vec![false; self.customers.len()];
        let mut listed = 0;
        for (tag, list) in self.members.iter().enumerate() {
            let (mut prev, mut n) = (NIL, 0u32);
            for slot in self.partition_slots(tag as u16) {
                let i = slot as usize;
                if free.contains(&slot) || std::mem::replace(&mut seen[i], true) {
                    return Err(format!("slot {slot} free or listed twice"));
                }
                if usize::from(self.customers[i].partition) != tag {
                    return Err(format!("slot {slot} listed in partition {tag}"));
                }
                if self.links[i].prev != prev {
                    return Err(format!("slot {slot}: wrong back link"));
                }
                (prev, n) = (slot, n + 1);
            }
            if n != list.len {
                return Err(format!("partition {tag}: {n} listed, {} counted", list.len));
            }
            listed += n as usize;
        }
        if listed != self.len() {
            return Err(format!("{listed} listed, {} held", self.len()));
        }
        let long_ids: usize = self.iter().map(|(_, c)| c.heap_bytes()).sum();
        if long_ids != self.long_ids {
            return Err(format!("long ids {long_ids} B, counted {}", self.long_ids));
        }
        Ok(())
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

    /// Bytes held per customer slot, besides long ids: the struct, its
    /// words and its partition list links.
    pub fn bytes_per_slot(&self) -> usize {
        size_of::<Customer>() + self.layout.len * size_of::<i64>() + size_of::<Link>()
    }

    /// Approximate bytes of state held for the customers present: their
    /// slots, long ids and index entries. Freed slots are kept for reuse and
    /// not counted, so this falls when customers are evicted. O(1): the
    /// long ids' bytes are counted as customers come and go.
    pub fn memory_bytes(&self) -> usize {
        // hashbrown keeps at most 7/8 of its buckets full; 1 control byte each.
        let index = self.len() * 8 / 7 * (size_of::<Slot>() + 1);
        self.len() * self.bytes_per_slot() + self.long_ids + index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYOUT: SlotLayout = SlotLayout {
        churn: 3,
        moments: 3,
        dedupe: 3,
        len: 8,
    };
    const DAY: u64 = 86_400_000;

    fn at(fp: u64) -> u64 {
        dedupe::entry(EventTime(1_767_225_600_000 + fp as i64), fp << 40)
    }

    fn one() -> (Customers, Slot) {
        let mut cs = Customers::new(LAYOUT);
        let (slot, _) = cs.find_or_insert("c");
        (cs, slot)
    }

    #[test]
    fn dedupe_memory_lives_in_the_customer_words() {
        let (mut cs, slot) = one();
        let mut c = cs.get_mut(slot);
        for fp in 1..=4u64 {
            assert_eq!(c.dedupe(at(fp), DAY, &LAYOUT), Verdict::New);
        }
        assert_eq!(c.dedupe(at(4), DAY, &LAYOUT), Verdict::Duplicate);
        assert_eq!(c.dedupe(at(5), DAY, &LAYOUT), Verdict::New);
        assert_eq!(
            c.dedupe(at(1), DAY, &LAYOUT),
            Verdict::Unverified(dedupe::Reason::Memory),
            "the oldest was forgotten, and is below the floor"
        );
        assert_eq!(cs.words(slot)[3], at(1) as i64, "the floor");
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
    fn the_slab_grows_in_steps_of_an_eighth_and_never_past_the_bound() {
        let mut cs = Customers::new(LAYOUT);
        for i in 0..100_000 {
            let (_, new) = cs.find_or_insert_within(&format!("c{i}"), 150_000).unwrap();
            assert!(new);
            let len = cs.len();
            assert!(
                cs.slot_capacity() <= len + (len / 8).max(GROW_MIN),
                "{} slots for {len} customers",
                cs.slot_capacity()
            );
        }
        let mut bounded = Customers::new(LAYOUT);
        for i in 0..10_000 {
            bounded.find_or_insert_within(&format!("c{i}"), 5_000);
        }
        assert_eq!((bounded.len(), bounded.slot_capacity()), (5_000, 5_000));
    }

    #[test]
    fn arena_reuses_slots_and_finds_by_id() {
        let mut cs = Customers::new(LAYOUT);
        let (a, new_a) = cs.find_or_insert("alice");
        let (b, _) = cs.find_or_insert("bob");
        assert!(new_a);
        assert_eq!(cs.get_mut(a).dedupe(at(42), DAY, &LAYOUT), Verdict::New);
        assert_eq!(cs.find_or_insert("alice"), (a, false));
        assert_eq!(cs.remove(a).id, "alice");
        assert_eq!(cs.find("alice"), None);
        assert_eq!(cs.find("bob"), Some(b));
        let (c, _) = cs.find_or_insert("carol");
        assert_eq!(c, a, "freed slot reused");
        assert_eq!(
            cs.get_mut(c).dedupe(at(42), DAY, &LAYOUT),
            Verdict::New,
            "a reused slot starts with fresh words"
        );
        assert_eq!(cs.len(), 2);
    }

    fn listed(cs: &Customers, tag: u16) -> Vec<&str> {
        let mut ids: Vec<&str> = cs
            .partition_slots(tag)
            .map(|s| cs.get(s).id.as_str())
            .collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn each_partition_lists_its_customers_through_moves_and_removals() {
        let mut cs = Customers::new(LAYOUT);
        let long = "a-customer-id-too-long-to-be-inline";
        let slots: Vec<Slot> = ["ann", "bea", long, "dan"]
            .iter()
            .map(|id| cs.find_or_insert(id).0)
            .collect();
        cs.set_partition(slots[1], 3);
        cs.set_partition(slots[2], 3);
        assert_eq!(listed(&cs, 0), ["ann", "dan"]);
        assert_eq!(listed(&cs, 3), [long, "bea"]);
        let with_long = cs.memory_bytes();
        cs.remove(slots[2]);
        let (_, created) = cs.find_or_insert("ann-0");
        assert!(created);
        assert_eq!(
            cs.memory_bytes(),
            with_long - long.len(),
            "a long id's bytes go with it"
        );
        cs.remove(cs.find("ann-0").unwrap());
        cs.reset(slots[1]);
        cs.set_partition(slots[0], 3);
        assert_eq!(
            (listed(&cs, 0), listed(&cs, 3)),
            (vec!["dan"], vec!["ann", "bea"])
        );
        assert_eq!(cs.partition_len(3), 2);
        assert_eq!(cs.partition_len(9), 0);
        let (reused, _) = cs.find_or_insert("eve");
        assert_eq!(reused, slots[2]);
        assert_eq!(listed(&cs, 0), ["dan", "eve"]);
        assert_eq!(cs.check_index(), Ok(()));
        cs.customers[slots[3] as usize].partition = 3;
        assert!(
            cs.check_index().is_err(),
            "a partition written by hand is caught"
        );
    }
}
