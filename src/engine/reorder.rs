//! The event-time reorder buffer.
//!
//! Each partition has one ([`super::lanes`]). Touchpoints wait here until
//! their partition's time passes them and are then processed in
//! `(occurred_at, fingerprint)` order, so the outcome does not depend on
//! arrival order within the allowed lateness: "3 product views in 7 days"
//! or a first-ever purchase followed by a pricing view give the same stage
//! changes however the source interleaved them. The buffers together are
//! bounded in events (`limits.max_buffered_events`) and in bytes
//! (`limits.max_buffered_bytes`, [`PendingEvent::bytes`]); when either is
//! full, the engine processes the oldest event of all early (counted in
//! `journeyd_events_forced_early_total`): its customer sees it before
//! touchpoints that may still arrive older, which is the price of a bound
//! on a stream whose event times run ahead of its partition time.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use compact_str::CompactString;

use super::consent::Signal;
use super::customer::Slot;
use super::rules::ActionId;
use crate::model::{Channel, EventTime};

/// A touchpoint reduced to what the engine needs, owning its event id.
#[derive(Clone, Debug)]
pub struct PendingEvent {
    pub at: EventTime,
    /// Hash of the event id: the tie-break between equal times.
    pub fingerprint: u64,
    pub slot: Slot,
    /// Where it was read: partition and offset (negative: untracked).
    pub partition: u32,
    pub offset: i64,
    pub action: ActionId,
    pub channel: Channel,
    pub value: Option<f64>,
    pub event_id: CompactString,
    pub action_name: CompactString,
    /// What it is for consent ([`super::consent`]).
    pub consent: Signal,
}

impl PendingEvent {
    /// Bytes the event holds in the buffer: the struct (its slot in the
    /// heap's vector) and ids longer than fit inline.
    pub fn bytes(&self) -> usize {
        let heap = |s: &CompactString| {
            if s.is_heap_allocated() {
                s.capacity()
            } else {
                0
            }
        };
        size_of::<PendingEvent>() + heap(&self.event_id) + heap(&self.action_name)
    }

    fn key(&self) -> (EventTime, u64, &str) {
        (self.at, self.fingerprint, &self.event_id)
    }
}

impl PartialEq for PendingEvent {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for PendingEvent {}

impl PartialOrd for PendingEvent {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PendingEvent {
    /// Reversed, so that the max-heap yields the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key().cmp(&self.key())
    }
}

/// Events waiting for the watermark, earliest first.
#[derive(Debug, Default)]
pub struct ReorderBuffer {
    heap: BinaryHeap<PendingEvent>,
}

impl ReorderBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        ReorderBuffer::default()
    }

    /// Adds an event.
    pub fn push(&mut self, event: PendingEvent) {
        self.heap.push(event);
    }

    /// Time of the earliest buffered event.
    pub fn next_time(&self) -> Option<EventTime> {
        self.heap.peek().map(|e| e.at)
    }

    /// Removes the earliest event.
    pub fn pop(&mut self) -> Option<PendingEvent> {
        self.heap.pop()
    }

    /// Number of buffered events.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Every buffered event, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &PendingEvent> {
        self.heap.iter()
    }

    /// Removes every event `keep` rejects, returning them.
    pub fn extract(&mut self, mut keep: impl FnMut(&PendingEvent) -> bool) -> Vec<PendingEvent> {
        let (kept, removed): (Vec<_>, Vec<_>) = std::mem::take(&mut self.heap)
            .into_iter()
            .partition(|e| keep(e));
        self.heap = BinaryHeap::from(kept);
        removed
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at: i64, fingerprint: u64) -> PendingEvent {
        PendingEvent {
            at: EventTime(at),
            fingerprint,
            slot: 0,
            partition: 0,
            offset: -1,
            action: ActionId::OTHER,
            channel: Channel::Web,
            value: None,
            event_id: CompactString::const_new("e"),
            action_name: CompactString::const_new("page_view"),
            consent: Signal::None,
        }
    }

    #[test]
    fn yields_in_event_time_then_fingerprint_order() {
        let mut buf = ReorderBuffer::new();
        for (at, fp) in [(5, 1), (3, 9), (3, 2), (4, 0)] {
            buf.push(event(at, fp));
        }
        let order: Vec<_> = std::iter::from_fn(|| buf.pop())
            .map(|e| (e.at.0, e.fingerprint))
            .collect();
        assert_eq!(order, [(3, 2), (3, 9), (4, 0), (5, 1)]);
    }
}
