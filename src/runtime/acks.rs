//! Commit follows acknowledgement: which input offsets may be committed.
//!
//! The processing thread sends every derived output (and every dead-letter
//! record) to a Kafka producer and commits input offsets back to the group.
//! An input offset is safe to commit only when
//!
//! 1. every touchpoint before it has left the engine's event-time reorder
//!    buffer (the engine reports the lowest offset it still buffers), and
//! 2. every output produced so far, by any partition or by a timer, has been
//!    acknowledged by Kafka.
//!
//! [`CommitTracker`] owns that bookkeeping and nothing else. It is pure and
//! synchronous: it never talks to Kafka, reads no clock and knows no rdkafka
//! or tokio types. The caller numbers outputs with [`CommitTracker::sent`],
//! forwards delivery reports to [`CommitTracker::acked`] and
//! [`CommitTracker::resend`], records a [`Position`] per partition with
//! [`CommitTracker::checkpoint`] and commits whatever
//! [`CommitTracker::committable`] hands back.
//!
//! # The rule
//!
//! Output ids are dense and increasing. A checkpoint stores, per partition,
//! the candidate commit offset ([`Position::commit_offset`]) together with a
//! *barrier*: the id the next output will get. The checkpoint becomes
//! committable once every output id below its barrier is *settled*
//! (acknowledged, or failed and re-sent with the re-send settled). Because
//! ids only grow, the lowest unsettled id only grows too, so checkpoints
//! become committable in the order they were taken. `committable` returns,
//! per partition, the highest offset of its committable checkpoints, and
//! only when it is higher than the last offset it returned for that
//! partition: commits never go backwards and are never repeated.
//!
//! # Metadata
//!
//! A checkpoint may carry metadata per partition (`M`, `()` by default),
//! which comes back with the offset it was taken with: the service stores
//! where the partition's event time stood in the offset commit. When
//! entries merge (below), the metadata of the entry whose offset is kept
//! is kept with it, so an offset is never committed with another
//! checkpoint's metadata.
//!
//! # Failed deliveries
//!
//! Every id from `sent` or `resend` must get exactly one report: `acked(id)`
//! when Kafka stored the record, `resend(id)` when delivery failed for good.
//! `resend` returns a new id under which the caller sends the same record
//! again. The failed id is *not* released by the failure: it keeps blocking
//! until its re-send (or a re-send of that re-send) is acknowledged.
//! Releasing it earlier would be wrong: a checkpoint taken between the
//! original send and the re-send has a barrier below the new id, so it would
//! become committable while the only copy of the record is still in flight,
//! and a crash at that moment would lose it. An output that fails and is
//! never re-sent blocks commits for good, which is the point. Unknown and
//! repeated acknowledgements are ignored (`acked` returns `false`).
//!
//! # Bounds
//!
//! - Unsettled outputs are a ring of bits starting at the lowest unsettled
//!   id (acks arrive mostly in order): `sent`, `acked` and the low-water
//!   mark are O(1), and memory is one bit per id between the oldest
//!   unsettled output and the newest, bounded in practice by the producer's
//!   queue and its delivery timeout.
//! - Re-sends still in flight are kept in a small ordered map.
//! - Each partition keeps at most `pending_limit` checkpoints (default
//!   [`DEFAULT_PENDING_LIMIT`], never below 2). A checkpoint with the same
//!   barrier as the newest pending one merges into it. When the queue is
//!   full, the newest pending entry absorbs the new checkpoint: it takes the
//!   later barrier and the higher offset. That only delays that entry, never
//!   makes it unsafe, and the older entries keep their barriers, so commits
//!   keep moving under sustained load. (With a single slot, constant
//!   replacement could postpone a commit forever; hence the minimum of 2.)
//! - Candidate offsets of a partition are expected to be non-decreasing
//!   between [`CommitTracker::forget_partition`] calls; a lower one never
//!   lowers what is returned.
//!
//! # Worked example
//!
//! Two partitions; `p0@40` means offset 40 of partition 0. The commit offset
//! is Kafka's "next offset to read".
//!
//! ```text
//!  #  what happens                                 call           unsettled  committable
//!  1  p0@40 read (event 10:00:30): buffered        -              {}
//!  2  p0@41 read (event 10:00:01): output 0        sent() = 0     {0}
//!  3  p1@7 read: output 1                          sent() = 1     {0,1}
//!  4  checkpoint A (barrier 2): p0 40, p1 8        checkpoint     {0,1}
//!  5  Kafka acks output 1                          acked(1)       {0}        none: 0 unsettled
//!  6  a drop-off timer fires: output 2             sent() = 2     {0,2}
//!  7  watermark passes 10:00:30: p0@40 output 3    sent() = 3     {0,2,3}
//!  8  checkpoint B (barrier 4): p0 42, p1 8        checkpoint     {0,2,3}
//!  9  Kafka acks output 0                          acked(0)       {2,3}      A: p0 40, p1 8
//! 10  output 2 fails for good, re-sent as 4        resend(2) = 4  {2,3,4}
//! 11  Kafka acks output 3                          acked(3)       {2,4}      none: B waits for 2
//! 12  Kafka acks output 4, which settles 2         acked(4)       {}         B: p0 42
//! ```
//!
//! - Step 4: p0 was read up to 41 (next offset 42), but `p0@40` lives only
//!   in the reorder buffer, so A holds p0 at 40. Committing 42 would lose it
//!   in a crash; with 40, a restart reads `p0@41` again, which at-least-once
//!   allows.
//! - Step 5: acks arrive out of order; A needs every id below 2.
//! - Step 6: the timer output belongs to no partition, yet it blocks every
//!   later checkpoint of every partition: it reflects state built from
//!   their input.
//! - Step 9: A is committable, B is not (2 and 3 are unsettled).
//! - Steps 10-11: output 2 keeps blocking B although it has failed; had it
//!   been released on failure, B would commit p0 at 42 at step 11 with the
//!   only copy of the drop-off still in flight as output 4.
//! - Step 12: p1 is still at 8, already returned at step 9, so only p0 is
//!   returned.
//!
//! The same timeline as code:
//!
//! ```
//! use journeyd::runtime::acks::{CommitTracker, Position};
//!
//! let at = |partition, next_offset, buffered_low| Position { partition, next_offset, buffered_low };
//! let mut tracker = CommitTracker::new();
//! let mut commit = Vec::new();
//! let out0 = tracker.sent();
//! let out1 = tracker.sent();
//! tracker.checkpoint([at(0, 42, Some(40)), at(1, 8, None)]);
//! tracker.acked(out1);
//! tracker.committable(&mut commit);
//! assert!(commit.is_empty());
//! let out2 = tracker.sent();
//! let out3 = tracker.sent();
//! tracker.checkpoint([at(0, 42, None), at(1, 8, None)]);
//! tracker.acked(out0);
//! tracker.committable(&mut commit);
//! assert_eq!(commit, [(0, 40), (1, 8)]);
//! commit.clear();
//! let out4 = tracker.resend(out2);
//! tracker.acked(out3);
//! tracker.committable(&mut commit);
//! assert!(commit.is_empty());
//! tracker.acked(out4);
//! tracker.committable(&mut commit);
//! assert_eq!(commit, [(0, 42)]);
//! assert_eq!(tracker.in_flight(), 0);
//! ```

use std::collections::{BTreeMap, VecDeque};

pub use crate::sink::OutputId;

/// Pending checkpoints kept per partition by [`CommitTracker::new`].
pub const DEFAULT_PENDING_LIMIT: usize = 32;

/// Where one partition stands when a checkpoint is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// The input partition.
    pub partition: u32,
    /// One past the last offset read: the offset to commit when nothing of
    /// the partition is buffered.
    pub next_offset: i64,
    /// The lowest offset of the partition still in the engine's reorder
    /// buffer, `None` when nothing is buffered.
    pub buffered_low: Option<i64>,
}

impl Position {
    /// The offset it is safe to commit once the barrier is settled: the
    /// lowest buffered offset, or the next offset when nothing is buffered.
    pub fn commit_offset(&self) -> i64 {
        self.buffered_low
            .map_or(self.next_offset, |low| low.min(self.next_offset))
    }
}

/// Tracks unsettled outputs and pending checkpoints, each checkpoint
/// entry carrying metadata `M`; see the module docs.
#[derive(Debug)]
pub struct CommitTracker<M = ()> {
    /// Outputs sent and not yet settled.
    unsettled: Unsettled,
    /// Re-sends not yet settled, each mapped to the failed id it replaces.
    replaces: BTreeMap<OutputId, OutputId>,
    /// Checkpoints and commit progress per partition, in partition order.
    lanes: BTreeMap<u32, Lane<M>>,
    /// Most pending checkpoints per partition before the newest absorbs the
    /// next one.
    pending_limit: usize,
}

impl<M: Copy> Default for CommitTracker<M> {
    fn default() -> Self {
        CommitTracker::with_pending_limit(DEFAULT_PENDING_LIMIT)
    }
}

impl CommitTracker<()> {
    /// An empty tracker keeping [`DEFAULT_PENDING_LIMIT`] pending
    /// checkpoints per partition, without metadata.
    pub fn new() -> Self {
        CommitTracker::with_pending_limit(DEFAULT_PENDING_LIMIT)
    }

    /// Records a checkpoint: every position is committable once all outputs
    /// sent so far are settled.
    pub fn checkpoint(&mut self, positions: impl IntoIterator<Item = Position>) {
        self.checkpoint_with(positions.into_iter().map(|p| (p, ())));
    }

    /// Appends to `out`, in partition order, `(partition, offset)` for every
    /// partition whose committable offset rose since the last call.
    pub fn committable(&mut self, out: &mut Vec<(u32, i64)>) {
        self.committable_with(|partition, offset, ()| out.push((partition, offset)));
    }
}

impl<M: Copy> CommitTracker<M> {
    /// An empty tracker keeping at most `limit` pending checkpoints per
    /// partition (at least 2, see the module docs).
    pub fn with_pending_limit(limit: usize) -> Self {
        CommitTracker {
            unsettled: Unsettled::default(),
            replaces: BTreeMap::new(),
            lanes: BTreeMap::new(),
            pending_limit: limit.max(2),
        }
    }

    /// An output is about to be sent; returns its id.
    pub fn sent(&mut self) -> OutputId {
        self.unsettled.push()
    }

    /// The id the next output will get: a barrier for
    /// [`CommitTracker::settled_before`].
    pub fn next_id(&self) -> OutputId {
        self.unsettled.next
    }

    /// Whether every output with an id below `barrier` is settled.
    pub fn settled_before(&self, barrier: OutputId) -> bool {
        self.unsettled.low() >= barrier
    }

    /// Kafka acknowledged output `id`. Settles it and, if it is a re-send,
    /// the failed outputs it replaces. Returns `false` when `id` was not
    /// unsettled (unknown or already settled): nothing changes then.
    pub fn acked(&mut self, id: OutputId) -> bool {
        if !self.unsettled.remove(id) {
            return false;
        }
        let mut current = id;
        while let Some(failed) = self.replaces.remove(&current) {
            self.unsettled.remove(failed);
            current = failed;
        }
        true
    }

    /// Delivery of output `failed` failed for good. Returns the id under
    /// which the caller must send the same record again; `failed` stays
    /// unsettled until that re-send is acknowledged.
    pub fn resend(&mut self, failed: OutputId) -> OutputId {
        let id = self.unsettled.push();
        if self.unsettled.contains(failed) {
            self.replaces.insert(id, failed);
        }
        id
    }

    /// Records a checkpoint with metadata per position: every position is
    /// committable, with its metadata, once all outputs sent so far are
    /// settled.
    pub fn checkpoint_with(&mut self, positions: impl IntoIterator<Item = (Position, M)>) {
        let barrier = self.unsettled.next;
        let low = self.unsettled.low();
        for (position, meta) in positions {
            let lane = self.lanes.entry(position.partition).or_default();
            lane.settle(low);
            lane.push(barrier, position.commit_offset(), meta, self.pending_limit);
        }
    }

    /// Calls `commit(partition, offset, metadata)`, in partition order, for
    /// every partition whose committable offset rose since the last call.
    pub fn committable_with(&mut self, mut commit: impl FnMut(u32, i64, M)) {
        let low = self.unsettled.low();
        for (&partition, lane) in &mut self.lanes {
            lane.settle(low);
            if let Some((offset, meta)) = lane.take() {
                commit(partition, offset, meta);
            }
        }
    }

    /// Forgets `partition` (revoked): its pending checkpoints are dropped
    /// and, if it is assigned again, it starts fresh. Its outputs still in
    /// flight keep blocking, like every output.
    pub fn forget_partition(&mut self, partition: u32) {
        self.lanes.remove(&partition);
    }

    /// Settles every output sent so far and drops every pending checkpoint,
    /// keeping ids increasing: an aborted transaction's records are void,
    /// and reports about them that arrive later are ignored.
    pub fn settle_all(&mut self) {
        self.unsettled.words.clear();
        self.unsettled.count = 0;
        self.replaces.clear();
        self.lanes.clear();
    }

    /// Outputs not yet settled: sent and not acknowledged, including failed
    /// outputs whose re-send is not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.unsettled.count
    }

    /// Checkpoint entries waiting for their barrier, over all partitions.
    pub fn pending_checkpoints(&self) -> usize {
        self.lanes.values().map(|lane| lane.pending.len()).sum()
    }
}

/// One partition's checkpoints and commit progress.
#[derive(Debug)]
struct Lane<M> {
    /// `(barrier, offset, metadata)` not yet known to be settled, oldest
    /// first; barriers are non-decreasing.
    pending: VecDeque<(OutputId, i64, M)>,
    /// The highest offset whose barrier is settled, with its metadata.
    safe: Option<(i64, M)>,
    /// The highest offset `committable` has returned.
    returned: Option<i64>,
}

impl<M> Default for Lane<M> {
    fn default() -> Self {
        Lane {
            pending: VecDeque::new(),
            safe: None,
            returned: None,
        }
    }
}

impl<M: Copy> Lane<M> {
    /// Moves entries whose barrier is at or below `low` into `safe`.
    fn settle(&mut self, low: OutputId) {
        while let Some(&(barrier, offset, meta)) = self.pending.front() {
            if barrier > low {
                break;
            }
            self.pending.pop_front();
            if self.safe.is_none_or(|(safe, _)| offset >= safe) {
                self.safe = Some((offset, meta));
            }
        }
    }

    /// Queues `offset` behind `barrier`, merging into the newest entry when
    /// it has the same barrier or the queue is full. A merged entry keeps
    /// the higher offset with its own metadata (the newer one on a tie).
    fn push(&mut self, barrier: OutputId, offset: i64, meta: M, limit: usize) {
        let full = self.pending.len() >= limit;
        match self.pending.back_mut() {
            Some(back) if full || back.0 == barrier => {
                back.0 = barrier;
                if offset >= back.1 {
                    (back.1, back.2) = (offset, meta);
                }
            }
            _ => self.pending.push_back((barrier, offset, meta)),
        }
    }

    /// The safe offset and its metadata, if the offset is higher than the
    /// last one returned.
    fn take(&mut self) -> Option<(i64, M)> {
        let (safe, meta) = self.safe?;
        if self.returned.is_some_and(|returned| returned >= safe) {
            return None;
        }
        self.returned = Some(safe);
        Some((safe, meta))
    }
}

/// Unsettled output ids as a ring of bits starting at the lowest one.
#[derive(Debug, Default)]
struct Unsettled {
    /// Bit `b` of word `w` stands for id `base + 64 * w + b`; set means
    /// unsettled. The front word is never zero.
    words: VecDeque<u64>,
    /// The id of bit 0 of the front word; a multiple of 64.
    base: OutputId,
    /// The id the next output gets.
    next: OutputId,
    /// Set bits.
    count: usize,
}

impl Unsettled {
    /// Allocates the next id, unsettled. Ids are dense, so it always lands
    /// in the back word.
    fn push(&mut self) -> OutputId {
        let id = self.next;
        if self.words.is_empty() {
            self.base = id - id % 64;
        }
        if self.words.is_empty() || id.is_multiple_of(64) {
            self.words.push_back(0);
        }
        if let Some(back) = self.words.back_mut() {
            *back |= 1 << (id % 64);
        }
        self.next += 1;
        self.count += 1;
        id
    }

    /// Word index and bit mask of `id` if it lies inside the ring.
    fn locate(&self, id: OutputId) -> Option<(usize, u64)> {
        if id < self.base || id >= self.next {
            return None;
        }
        let word = usize::try_from((id - self.base) / 64).ok()?;
        (word < self.words.len()).then_some((word, 1 << (id % 64)))
    }

    /// Whether `id` is unsettled.
    fn contains(&self, id: OutputId) -> bool {
        self.locate(id)
            .is_some_and(|(word, bit)| self.words[word] & bit != 0)
    }

    /// Settles `id`; `false` if it was not unsettled.
    fn remove(&mut self, id: OutputId) -> bool {
        let Some((word, bit)) = self.locate(id) else {
            return false;
        };
        if self.words[word] & bit == 0 {
            return false;
        }
        self.words[word] &= !bit;
        self.count -= 1;
        while self.words.front() == Some(&0) {
            self.words.pop_front();
            self.base += 64;
        }
        true
    }

    /// The lowest unsettled id, or `next` when every output is settled.
    fn low(&self) -> OutputId {
        self.words
            .front()
            .map_or(self.next, |w| self.base + u64::from(w.trailing_zeros()))
    }
}

#[cfg(test)]
mod tests;
