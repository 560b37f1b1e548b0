//! What the changelog topic needs from the engine: changed customers to
//! write, customers to restore, removals to tombstone (SPEC section 6).
//!
//! The engine stays pure: it encodes and decodes values ([`super::snapshot`])
//! and keeps the bookkeeping, the service moves the bytes to and from Kafka.
//!
//! # What is persisted, what is recomputed
//!
//! Persisted per customer, in the changelog value: everything the journey
//! continues from (stage, when it was entered, sequences, touchpoint and
//! purchase counts, churn inputs and band, windowed-signal times, the
//! funnel-window marker), the de-duplication ring, and two things about
//! input positions: the *fence*, the offset of the newest touchpoint
//! ingested from the customer's input partition, and the *awaiting*
//! offsets, touchpoints at or below the fence that were still in the
//! reorder buffer, not applied.
//!
//! Recomputed on restore: the timer (a function of the state,
//! [`super::journey::next_due`]), the partition (the one the record was
//! restored from: engine partition numbers are the service's and do not
//! survive a restart), and the gauges.
//!
//! Persisted by the service, not here: with each input offset commit, a
//! [`Checkpoint`] of the partition ([`Engine::checkpoint`]: its newest
//! event time and the commit's wall time), for instance in the commit's
//! metadata; it goes back in through [`Engine::resume`] when the partition
//! is assigned again. Re-reading from the committed offset recomputes most
//! of it (a partition's newest touchpoint is still buffered at a commit in
//! `event` mode), but not in `hybrid` mode, where the wall clock moves the
//! watermark past the newest touchpoint: without the checkpoint a restarted
//! quiet partition would hold the watermark at nothing, and with only the
//! event time, timers that fell due during the outage would wait for the
//! outage to pass a second time.
//!
//! Not persisted: open funnel windows. They aggregate every customer of
//! the instance, not one customer; the windows open at a restart are
//! emitted by the new owner with what it processes from then on.
//!
//! # Why a replay neither loses nor double-applies
//!
//! The offset the service commits for a partition is at most
//! [`Engine::buffered_low`] (the first touchpoint still to apply), computed
//! at a drain, and committed only once that drain's changelog records are
//! acknowledged.
//! After a crash or a move it restores the partition's customers, resumes
//! the watermark and reads again from the committed offset. A touchpoint
//! read again at offset `o` of customer `c`:
//!
//! - `o` above `c`'s fence (or `c` unknown): never ingested, or ingested
//!   after `c`'s last write, which was lost with the process: processed
//!   normally, the de-duplication ring catching producer retries.
//! - `o` at or below the fence and among the awaiting offsets: it was in the
//!   reorder buffer when `c` was written, not applied: it is buffered again
//!   (without touching the ring, which already holds it) and applied once.
//! - otherwise at or below the fence: applied before `c` was written (or
//!   dropped as a duplicate): skipped, counted as a duplicate.
//!
//! Every touchpoint below the committed offset was applied before the
//! drain whose commit it is, and every customer that changed before that
//! drain was written in it, so nothing below the committed offset is
//! needed again. The fence is exact where the ring alone is not: a
//! customer may apply more touchpoints past the committed offset than the
//! ring remembers (a touchpoint with a future timestamp holds the commit
//! back for minutes), and the ring also holds touchpoints that were still
//! buffered, which the ring alone would drop as duplicates when read again.
//!
//! The fence covers the partition the customer's touchpoints come from, so
//! it is exact when each customer is read from one input partition (one
//! input topic keyed by customer id). Touchpoints of a customer from a
//! second input topic move the fence to that topic; the other topic's
//! re-reads then fall back to the ring.
//!
//! A customer evicted or erased after touchpoints past the committed
//! offset is tombstoned; if the process dies before the commit passes
//! those touchpoints, reading them again starts a new journey for the
//! customer. Keeping a fence for removed customers would need a value
//! where the changelog wants a tombstone.
//!
//! # Timers across a restore
//!
//! A restored customer's timer is filed at its next due time in the lane
//! of its partition ([`super::lanes`]), whose time is the partition's own:
//! from nothing when the partition is assigned, then from its checkpoint
//! on [`Engine::resume`], however far this engine's other partitions are.
//! A partition taken over from another instance mid-catch-up therefore
//! fires its customers' timers in event-time order with its touchpoints
//! read again, as the previous owner would have, rather than all at once
//! at this instance's watermark. If a timer is already behind its
//! partition's frontier (in `hybrid` mode it fell due while nobody owned
//! the partition, and the resumed stream is quiet), it fires once on the
//! next [`Engine::ingest_at`] or [`Engine::tick`], before that call's
//! touchpoint, in event-time order with any others due; the customer's
//! persisted state already reflects every timer that fired before the
//! write, so none fires twice. The same rule makes a late touchpoint's
//! overdue deadline fire before the call that applied it returns, so at
//! the end of every call nothing is left due behind a frontier, and a
//! restored engine fires exactly what the original would have.
//!
//! In `event` mode a restored engine continues exactly: its outputs are the
//! ones an uninterrupted run emits, byte for byte (`tests/engine_restore.rs`
//! checks this on random workloads). In `hybrid` mode the wall clock is part
//! of the watermark and of `detected_at`: outputs repeated after a crash
//! keep their sequences and journey, but their detection time, and their
//! order against touchpoints that arrive late, may differ.
//!
//! # The service's part, in order
//!
//! - At start: [`Engine::track_changes`].
//! - Periodically, and before committing: [`Engine::take_dirty`] and write
//!   each record (key = customer id, value or tombstone) to changelog
//!   partition = the record's input partition; when all are acknowledged,
//!   commit the offsets computed at that drain, each with its partition's
//!   [`Checkpoint`].
//! - On assignment: [`Engine::assign`], [`Engine::restore`] for every record
//!   of the changelog partition (tombstones included, in log order), with
//!   [`Engine::hold`] while that takes time, [`Engine::resume`] with the
//!   assignment's committed checkpoints in one call, then read from the
//!   committed offsets.
//! - On revocation: drain, write, commit as above, then [`Engine::revoke`],
//!   which forgets the partition's pending tombstones: its changelog
//!   belongs to the next owner now.
//! - On erasure: [`Engine::erase`]; its tombstone comes with the next drain.

mod convert;
mod restore;
mod tracker;

use super::Engine;
use super::customer::{Customers, Slot};
use super::reorder::PendingEvent;
use super::snapshot::{self, CustomerState, DecodeError};
use crate::model::EventTime;
pub(super) use tracker::{ChangeTracker, ReplayLists};

/// One changelog record: the customer's latest state, or a tombstone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change<'a> {
    /// The record key.
    pub customer_id: &'a str,
    /// The engine partition the customer's touchpoints come from; the
    /// changelog partition is the input partition it stands for.
    pub partition: u32,
    /// The encoded state; `None` for a tombstone (the customer is gone).
    pub value: Option<&'a [u8]>,
}

/// Where a partition's event time stood at an offset commit: what the
/// service stores with the commit and hands back to [`Engine::resume`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The newest event time read from the partition.
    pub max_seen: EventTime,
    /// The wall time of the commit.
    pub committed_at: EventTime,
}

/// Why a changelog value could not be restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// The bytes are not a customer state.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The state's stage is not in the current journey model.
    #[error("customer state in stage ordinal {0}, which journey.stages does not define")]
    UnknownStage(u8),
}

impl RestoreError {
    /// A metric label for the error.
    pub fn reason(&self) -> &'static str {
        match self {
            RestoreError::Decode(e) => e.reason(),
            RestoreError::UnknownStage(_) => "unknown_stage",
        }
    }
}

/// Buffers reused from drain to drain.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    /// The customer being encoded.
    state: CustomerState,
    /// Its encoding.
    bytes: Vec<u8>,
    /// `(slot, offset)` of buffered touchpoints of queued customers, sorted.
    buffered: Vec<(Slot, i64)>,
    /// The offsets the customer being encoded awaits.
    awaiting: Vec<i64>,
}

impl Engine {
    /// Starts (or stops) tracking changes for the changelog. Off by
    /// default: replays and benchmarks write no changelog, and an untaken
    /// set of removals would grow.
    pub fn track_changes(&mut self, on: bool) {
        self.changes.set_enabled(on);
    }

    /// Records the next [`Engine::take_dirty`] yields at most.
    pub fn dirty_len(&self) -> usize {
        self.changes.len()
    }

    /// Hands every customer changed since the last call to `sink`, once,
    /// with its current state, and every customer removed since as a
    /// tombstone (unless they came back since: then their state). Returns
    /// the number of records.
    pub fn take_dirty(&mut self, mut sink: impl FnMut(Change<'_>)) -> usize {
        let mut records = 0;
        for (id, partition) in self.changes.take_removed() {
            if self.customers.find(&id).is_none() {
                sink(Change {
                    customer_id: &id,
                    partition,
                    value: None,
                });
                records += 1;
            }
        }
        self.collect_buffered();
        let queue = self.changes.take_queue();
        for &slot in &queue {
            if !self.customers.is_live(slot) {
                continue;
            }
            self.encode_slot(slot);
            let c = self.customers.get(slot);
            sink(Change {
                customer_id: &c.id,
                partition: u32::from(c.partition),
                value: Some(&self.scratch.bytes),
            });
            records += 1;
        }
        self.changes.return_queue(queue);
        records
    }

    /// The encoded state of customer `id`, if held here.
    pub fn snapshot(&mut self, id: &str) -> Option<Vec<u8>> {
        let slot = self.customers.find(id)?;
        let out = &mut self.scratch.buffered;
        out.clear();
        let buffered = self.lanes.buffered_events();
        buffered_of(buffered, &self.customers, |s| s == slot, out);
        self.encode_slot(slot);
        Some(self.scratch.bytes.clone())
    }

    /// Finds the buffered offsets of queued customers that have any: one
    /// pass over the reorder buffer per drain, only when needed.
    fn collect_buffered(&mut self) {
        let (changes, customers) = (&self.changes, &self.customers);
        let wanted = |slot: Slot| changes.is_queued(slot) && customers.get(slot).pending > 0;
        let out = &mut self.scratch.buffered;
        out.clear();
        if changes.queued_slots().any(wanted) {
            buffered_of(self.lanes.buffered_events(), customers, wanted, out);
        }
    }

    /// Encodes the customer in `slot` into `scratch.bytes`, with the
    /// offsets it awaits: those in `scratch.buffered` and those it still
    /// waits to read again since its restore.
    fn encode_slot(&mut self, slot: Slot) {
        let Scratch {
            state,
            bytes,
            buffered,
            awaiting,
        } = &mut self.scratch;
        let from = buffered.partition_point(|&(s, _)| s < slot);
        let to = buffered.partition_point(|&(s, _)| s <= slot);
        awaiting.clear();
        awaiting.extend(buffered[from..to].iter().map(|&(_, o)| o));
        awaiting.extend_from_slice(self.replay.get(slot));
        awaiting.sort_unstable();
        awaiting.dedup();
        let c = self.customers.get(slot);
        let words = self.customers.words(slot);
        convert::capture(state, c, words, &self.rules, awaiting.iter().copied());
        bytes.clear();
        snapshot::encode(state, bytes);
    }
}

/// Appends `(slot, offset)` of every buffered touchpoint read from its
/// customer's partition whose slot is `wanted`, then sorts `out`.
fn buffered_of<'a>(
    buffer: impl Iterator<Item = &'a PendingEvent>,
    customers: &Customers,
    wanted: impl Fn(Slot) -> bool,
    out: &mut Vec<(Slot, i64)>,
) {
    for e in buffer {
        let own = e.offset >= 0 && u32::from(customers.get(e.slot).partition) == e.partition;
        if own && wanted(e.slot) {
            out.push((e.slot, e.offset));
        }
    }
    out.sort_unstable();
}
