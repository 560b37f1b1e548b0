//! What the changelog topic needs from the engine: changed customers to
//! write, customers to restore, removals to tombstone (docs/guarantees.md#what-is-durable).
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
//! Persisted per input partition, in a record of its own after the
//! partition's customers in every drain: the partition's share of the open
//! funnel windows ([`super::funnel::durable`]). It is state like the
//! customers': the counts of the touchpoints the fence skips when they are
//! read again are in it, and only those.
//!
//! # Restoring up to the last complete drain
//!
//! A drain's records of one partition are sent in order, the funnel
//! record last, so a changelog partition read in log order ends with
//! complete drains, possibly followed by part of one more (at-least-once
//! mode: the process died while sending it; exactly-once mode reads
//! committed transactions only, which are complete). The customers of that
//! unfinished drain have applied touchpoints whose funnel counts are not
//! in the funnel record before them. So the service restores the records
//! before a partition's last funnel record as they come, holds those after
//! it, and at the end of the partition hands the held ones to
//! [`Engine::supersede`] instead of restoring them: those customers stay
//! as the complete drains left them and read their touchpoints again, and
//! the next drain writes over what the unfinished one left. A changelog
//! without funnel records (written by an earlier version) is restored
//! whole, as before.
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
//! ones an uninterrupted run emits, byte for byte (`tests/it/engine_restore.rs`
//! checks this on random workloads). In `hybrid` mode the wall clock is part
//! of the watermark and of `detected_at`: outputs repeated after a crash
//! keep their sequences and journey, but their detection time, and their
//! order against touchpoints that arrive late, may differ.
//!
//! # The service's part, in order
//!
//! - At start: [`Engine::track_changes`].
//! - Periodically, and before committing: [`Engine::take_dirty`] and write
//!   each record (key = customer id, value or tombstone; the funnel
//!   records under a key of their own) in the order given to changelog
//!   partition = the record's input partition; when all are acknowledged,
//!   commit the offsets computed at that drain, each with its partition's
//!   [`Checkpoint`].
//! - On assignment: [`Engine::assign`], [`Engine::restore`] for every
//!   customer record of the changelog partition (tombstones included, in
//!   log order) and [`Engine::restore_funnel`] for its funnel record,
//!   [`Engine::supersede`] for the records after the last funnel record
//!   (see above), with [`Engine::hold`] while that takes time,
//!   [`Engine::resume`] with the assignment's committed checkpoints in one
//!   call, then read from the committed offsets.
//! - On revocation: drain, write, commit as above, then [`Engine::revoke`],
//!   which forgets the partition's pending tombstones: its changelog
//!   belongs to the next owner now.
//! - On erasure: [`Engine::erase`]; its tombstone comes with the next drain.

mod convert;
mod restore;
mod tracker;

use super::Engine;
use super::customer::{Customers, Slot};
use super::funnel::Funnel;
use super::reorder::PendingEvent;
use super::rules::Rules;
use super::snapshot::{self, CustomerState, DecodeError, FunnelState};
use crate::model::EventTime;
pub(super) use tracker::{ChangeTracker, ReplayLists};

/// One changelog record: a customer's latest state or tombstone, or a
/// partition's funnel windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change<'a> {
    /// Whose record it is.
    pub key: RecordKey<'a>,
    /// The engine partition the customer's touchpoints come from; the
    /// changelog partition is the input partition it stands for.
    pub partition: u32,
    /// The encoded state; `None` for a tombstone (the customer is gone).
    pub value: Option<&'a [u8]>,
}

/// What a [`Change`] is about, which decides its record key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKey<'a> {
    /// A customer, keyed by their id.
    Customer(&'a str),
    /// The partition's funnel windows: one record per input partition,
    /// under a key that no customer id can be (the service chooses it).
    Funnel,
}

impl<'a> Change<'a> {
    /// The customer id, unless this is a funnel record.
    pub fn customer_id(&self) -> Option<&'a str> {
        match self.key {
            RecordKey::Customer(id) => Some(id),
            RecordKey::Funnel => None,
        }
    }
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
    /// The partitions whose buffers a drain looks through.
    lanes: Vec<u32>,
    /// The offsets the customer being encoded awaits.
    awaiting: Vec<i64>,
    /// For the funnel records.
    funnel: FunnelScratch,
}

/// Buffers for a drain's funnel records.
#[derive(Debug, Default)]
pub(super) struct FunnelScratch {
    /// Per engine partition, whether the drain wrote a record of it.
    written: Vec<bool>,
    /// The record being encoded.
    state: FunnelState,
    /// Its encoding.
    bytes: Vec<u8>,
}

impl Engine {
    /// Starts (or stops) tracking changes for the changelog. Off by
    /// default: replays and benchmarks write no changelog, and an untaken
    /// set of removals would grow.
    pub fn track_changes(&mut self, on: bool) {
        self.changes.set_enabled(on);
        self.funnel.track_changes(on);
    }

    /// Sets the id stamped on this engine's funnel records: records of
    /// one writer are restored together (see [`super::funnel::durable`]).
    /// The service gives each process its own.
    pub fn set_writer(&mut self, writer: u64) {
        self.funnel.set_writer(writer);
    }

    /// Records the next [`Engine::take_dirty`] yields at most.
    pub fn dirty_len(&self) -> usize {
        self.changes.len()
    }

    /// Hands every customer changed since the last call to `sink`, once,
    /// with its current state, and every customer removed since as a
    /// tombstone (unless they came back since: then their state); then,
    /// last, the funnel record of every partition whose windows changed
    /// or that had a customer in this drain. Returns the number of
    /// records.
    pub fn take_dirty(&mut self, mut sink: impl FnMut(Change<'_>)) -> usize {
        let mut records = 0;
        self.scratch.funnel.written.clear();
        for (id, partition) in self.changes.take_removed() {
            if self.customers.find(&id).is_none() {
                let (funnel, scratch) = (&mut self.funnel, &mut self.scratch.funnel);
                records += open_partition(funnel, &self.rules, scratch, partition, &mut sink);
                sink(Change {
                    key: RecordKey::Customer(&id),
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
            let partition = u32::from(self.customers.get(slot).partition);
            let (funnel, scratch) = (&mut self.funnel, &mut self.scratch.funnel);
            records += open_partition(funnel, &self.rules, scratch, partition, &mut sink);
            self.encode_slot(slot);
            let c = self.customers.get(slot);
            sink(Change {
                key: RecordKey::Customer(&c.id),
                partition,
                value: Some(&self.scratch.bytes),
            });
            records += 1;
        }
        self.changes.return_queue(queue);
        records + self.take_funnel(sink)
    }

    /// The funnel records of a drain: after the customers, so that a
    /// changelog read up to one has the whole drain of its partition.
    fn take_funnel(&mut self, mut sink: impl FnMut(Change<'_>)) -> usize {
        let mut records = 0;
        let FunnelScratch {
            written,
            state,
            bytes,
        } = &mut self.scratch.funnel;
        let parts = self.funnel.parts().max(written.len() as u32);
        for partition in 0..parts {
            let wrote = written.get(partition as usize).copied().unwrap_or(false);
            if wrote || self.funnel.changed(partition) {
                self.funnel.capture(partition, &self.rules, state);
                bytes.clear();
                snapshot::encode_funnel(state, bytes);
                sink(Change {
                    key: RecordKey::Funnel,
                    partition,
                    value: Some(bytes),
                });
                mark(written, partition);
                records += 1;
            }
        }
        let written = &self.scratch.funnel.written;
        (self.funnel).drained(|p| written.get(p as usize).copied().unwrap_or(false));
        records
    }

    /// The encoded state of customer `id`, if held here.
    pub fn snapshot(&mut self, id: &str) -> Option<Vec<u8>> {
        let slot = self.customers.find(id)?;
        let out = &mut self.scratch.buffered;
        out.clear();
        let lane = u32::from(self.customers.get(slot).partition);
        buffered_of(
            self.lanes.buffer_of(lane),
            &self.customers,
            |s| s == slot,
            out,
        );
        out.sort_unstable();
        self.encode_slot(slot);
        Some(self.scratch.bytes.clone())
    }

    /// Finds the buffered offsets of queued customers that have any: one
    /// pass per drain over the reorder buffers of those customers'
    /// partitions (only their own partition's touchpoints count), and only
    /// when needed.
    fn collect_buffered(&mut self) {
        let (changes, customers) = (&self.changes, &self.customers);
        let wanted = |slot: Slot| changes.is_queued(slot) && customers.get(slot).pending > 0;
        let Scratch {
            buffered: out,
            lanes,
            ..
        } = &mut self.scratch;
        out.clear();
        lanes.clear();
        let of_wanted = changes.queued_slots().filter(|&s| wanted(s));
        lanes.extend(of_wanted.map(|s| u32::from(customers.get(s).partition)));
        lanes.sort_unstable();
        lanes.dedup();
        for &lane in lanes.iter() {
            buffered_of(self.lanes.buffer_of(lane), customers, wanted, out);
        }
        out.sort_unstable();
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
            ..
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

/// Before a drain's first record of `partition`: if the changelog holds
/// no funnel record of it yet, an empty one opens the drain (see
/// [`crate::engine::funnel::durable`]). Returns the records handed out.
fn open_partition(
    funnel: &mut Funnel,
    rules: &Rules,
    scratch: &mut FunnelScratch,
    partition: u32,
    sink: &mut impl FnMut(Change<'_>),
) -> usize {
    if !mark(&mut scratch.written, partition) || funnel.on_record(partition) {
        return 0;
    }
    funnel.capture_opening(rules, &mut scratch.state);
    scratch.bytes.clear();
    snapshot::encode_funnel(&scratch.state, &mut scratch.bytes);
    sink(Change {
        key: RecordKey::Funnel,
        partition,
        value: Some(&scratch.bytes),
    });
    1
}

/// Notes that the drain writes a record of `partition`; returns whether it
/// is the first.
fn mark(written: &mut Vec<bool>, partition: u32) -> bool {
    let i = partition as usize;
    if written.len() <= i {
        written.resize(i + 1, false);
    }
    !std::mem::replace(&mut written[i], true)
}

/// Appends `(slot, offset)` of every touchpoint of `buffer` read from its
/// customer's partition whose slot is `wanted`.
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
}
