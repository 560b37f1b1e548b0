//! Exactly-once mode (`runtime.exactly_once = true`, docs/guarantees.md#exactly-once-mode).
//!
//! One Kafka transaction per commit interval holds everything the
//! interval produced: derived events, dead letters, audit records,
//! forwarded erasure requests, the changed customers' changelog records,
//! and the input offsets (with their checkpoints) through
//! `send_offsets_to_transaction` with the group member's metadata.
//!
//! ```text
//! begin ─► outputs, dead letters, audit records ... (the interval)
//!       ─► changelog drain (sent at once: no barrier needed)
//!       ─► send_offsets_to_transaction(positions + checkpoints, group metadata)
//!       ─► commit_transaction ─► commit point ─► begin
//! ```
//!
//! A `read_committed` consumer sees all of an interval or none of it, so
//! the at-least-once ordering of [`crate::runtime::changelog`] (outputs
//! acknowledged before state, state before offsets) is not needed here:
//! atomicity gives it. A process killed mid-transaction leaves the
//! transaction open; the broker aborts it when the next producer with the
//! same `transactional.id` initialises, or after `transaction.timeout.ms`.
//! The restarted instance restores the committed state and reads from the
//! committed offsets.
//!
//! # Failures
//!
//! A failed call is retried while librdkafka calls the error retriable.
//! Otherwise the transaction is aborted (a fatal error such as being
//! fenced also replaces the producer, whose `init_transactions` fences
//! any zombie with the same `transactional.id`), and the pipeline rewinds
//! without exiting:
//!
//! 1. every assigned input partition's customers, timers, buffered
//!    touchpoints and records held for a schema look-up are dropped, and
//!    the instance-wide state (funnel windows, watermarks) returns to the
//!    last commit point
//!    ([`crate::engine::rewind`]);
//! 2. the partitions are paused, sought back to the offsets the last
//!    committed transaction stored (or where reading started, when none
//!    has committed since the assignment), and restored from the
//!    changelog, read `read_committed`, so as of the last commit;
//! 3. the erasure partitions are sought back likewise.
//!
//! Reading again then derives exactly the records of the aborted
//! transaction: same keys, sequences and content (except `detected_at`,
//! the wall clock), which a `read_committed` consumer sees once, in the
//! transaction that commits. HTTP erasure requests produced into the
//! aborted transaction are not produced again: their requesters are told
//! to retry (`runtime/outbox/waiters.rs`).
//!
//! When the producer cannot be replaced (the brokers are unreachable),
//! no input is taken and no timer fires until a later commit interval
//! succeeds in replacing it.

use std::time::Duration;

use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;

use super::offsets_list;
use crate::engine::{Checkpoint, CommitPoint};
use crate::model::EventTime;
use crate::runtime::pipeline::Pipeline;
use crate::runtime::restore::Commit;
use crate::sink::OutputId;
use crate::sink::transactions::{Recovery, TxnError};
use crate::telemetry::events::{InternalEvent, TransactionAborted, TransactionCommitted};

mod doubt;
mod rewind;

/// How long one transactional call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Calls of a retriable failure, at most, and the pause between them.
const ATTEMPTS: u32 = 5;
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// The transaction side of the pipeline; see the module docs. (A record
/// of the open transaction that was not taken, refused by the producer or
/// failed, dooms it: the outbox keeps the error, and the transaction
/// aborts whatever its commit would say, so that the rewind produces the
/// record again.)
#[derive(Debug)]
pub(in crate::runtime) struct Transaction {
    /// Whether a transaction is open: records may be sent.
    open: bool,
    /// Per engine partition: the offset (and checkpoint) the last committed
    /// transaction stored, or where reading starts again.
    committed: Vec<Option<Commit>>,
    /// The engine's instance-wide state at the last commit.
    point: CommitPoint,
    /// The output id after the last commit: an interval that sent nothing
    /// and moved no offset commits nothing.
    last_id: OutputId,
    /// The offsets of the interval being committed; reused.
    offsets: Vec<(u32, i64, Option<Checkpoint>)>,
    /// The wall time in the last transaction's checkpoints: each
    /// transaction's is later, so that its offsets' metadata tell it apart
    /// from the one before even where no offset moved.
    last_wall: EventTime,
    /// The offsets (with metadata) of a transaction whose commit outcome is
    /// unknown, until the committed offsets tell; input waits meanwhile.
    in_doubt: Option<TopicPartitionList>,
    /// Erasure partitions to seek back after a rewind: `(partition, offset)`.
    erasure_rewinds: Vec<(i32, i64)>,
}

impl Transaction {
    /// No transaction open yet; rewinds go back to `point`.
    pub(in crate::runtime) fn new(point: CommitPoint) -> Transaction {
        Transaction {
            open: false,
            committed: Vec::new(),
            point,
            last_id: 0,
            offsets: Vec::new(),
            last_wall: EventTime::MIN,
            in_doubt: None,
            erasure_rewinds: Vec::new(),
        }
    }

    /// Whether records may be sent: a transaction is open and no earlier
    /// one is in doubt.
    pub(in crate::runtime) fn may_send(&self) -> bool {
        self.open && self.in_doubt.is_none()
    }

    /// Erasure partitions to read again from an offset after a rewind.
    pub(in crate::runtime) fn take_erasure_rewinds(&mut self) -> Vec<(i32, i64)> {
        std::mem::take(&mut self.erasure_rewinds)
    }

    /// Partition `index` was revoked: nothing of it is committed by this
    /// instance any more, and a rewind leaves it out of the watermark.
    pub(in crate::runtime) fn forget_partition(&mut self, index: u32) {
        self.set_committed(index, None);
        self.point.revoke(index);
    }

    fn committed(&self, index: u32) -> Option<i64> {
        self.commit(index).map(|(offset, _)| offset)
    }

    fn commit(&self, index: u32) -> Option<Commit> {
        self.committed.get(index as usize).copied().flatten()
    }

    pub(in crate::runtime) fn set_committed(&mut self, index: u32, offset: Option<Commit>) {
        let i = index as usize;
        if self.committed.len() <= i {
            self.committed.resize(i + 1, None);
        }
        self.committed[i] = offset;
    }

    /// Whether the interval's offsets are those committed already.
    fn offsets_unchanged(&self) -> bool {
        (self.offsets.iter()).all(|&(index, offset, _)| self.committed(index) == Some(offset))
    }
}

/// A transactional call that failed, and which.
type Failed = (&'static str, TxnError);

impl Pipeline {
    /// Registers the `transactional.id` (fencing older producers with it
    /// and aborting their open transaction) and opens the first
    /// transaction.
    pub(super) fn init_transaction(&mut self) -> Result<(), TxnError> {
        let producer = self.outbox.sink.transactions();
        producer.init_transactions(CALL_TIMEOUT)?;
        producer.begin_transaction()?;
        let next_id = self.outbox.tracker.next_id();
        if let Some(txn) = self.mode.txn_mut() {
            txn.open = true;
            txn.last_id = next_id;
        }
        Ok(())
    }

    /// Commits the interval's transaction (see the module docs) and opens
    /// the next; on failure aborts, rewinds and opens the next.
    pub(super) fn commit_transaction<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        wall: EventTime,
    ) {
        if !self.may_send() {
            if !self.mode.txn().is_some_and(|t| t.open) {
                self.open_with_new_producer();
            }
            self.settle_doubt(consumer, wall);
            return;
        }
        self.drain_deliveries();
        if let Some(error) = self.outbox.take_doomed() {
            return self.abort_and_rewind(consumer, "send", abortable(error), wall);
        }
        self.capture(wall);
        (self.changelog).send_now(
            &mut self.outbox.tracker,
            &self.outbox.sink,
            &self.partitions,
            &self.metrics,
        );
        self.collect_offsets(wall);
        let Some(txn) = self.mode.txn() else {
            return;
        };
        if txn.offsets_unchanged() && self.outbox.tracker.next_id() == txn.last_id {
            return;
        }
        let interval = self.mode.txn().map(|t| &t.offsets[..]);
        let offsets = offsets_list(&self.partitions, interval.unwrap_or_default());
        match self.send_offsets_and_commit(consumer, &offsets) {
            Ok(()) => self.committed(),
            // The commit may have completed on the broker before the call
            // failed: it is neither taken as aborted nor as committed.
            Err(("commit", error)) if error.recovery != Recovery::Abort => {
                self.doubt(consumer, offsets, &error, wall)
            }
            Err((call, error)) => self.abort_and_rewind(consumer, call, error, wall),
        }
    }

    /// The interval's commit positions, with checkpoints: of the partitions
    /// read whose changelog records were all accepted, and of every other
    /// partition owned whose committed offset is known (restored, not read
    /// since). So every transaction carries the offsets, and with them the
    /// group generation, of what it was produced for: a member that lost
    /// its partitions cannot commit a transaction, even one holding only
    /// what timers emitted. Each transaction's checkpoints carry a later
    /// wall time than the one before.
    fn collect_offsets(&mut self, wall: EventTime) {
        let Some(txn) = self.mode.txn_mut() else {
            return;
        };
        let wall = wall.max(txn.last_wall.plus_ms(1));
        txn.last_wall = wall;
        txn.offsets.clear();
        for position in &self.positions {
            if !self.changelog.is_stuck(position.partition) {
                let checkpoint = self.engine.checkpoint(position.partition, wall);
                txn.offsets
                    .push((position.partition, position.commit_offset(), checkpoint));
            }
        }
        for index in self.partitions.owned() {
            let listed = txn.offsets.iter().any(|&(p, ..)| p == index);
            let Some((offset, committed)) = txn.commit(index).filter(|_| !listed) else {
                continue;
            };
            // A partition being restored has no event time yet: its last
            // checkpoint goes again.
            let checkpoint = match self.restorer.is_restoring(index) {
                false => self.engine.checkpoint(index, wall),
                true => committed.map(|c| Checkpoint {
                    committed_at: wall,
                    ..c
                }),
            };
            txn.offsets.push((index, offset, checkpoint));
        }
    }

    fn send_offsets_and_commit<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        offsets: &TopicPartitionList,
    ) -> Result<(), Failed> {
        let producer = self.outbox.sink.transactions();
        if offsets.count() > 0 {
            let group = consumer.group_metadata().ok_or_else(|| {
                let error = KafkaError::Subscription("no consumer group metadata yet".into());
                ("send_offsets", abortable(error))
            })?;
            retrying(|| producer.send_offsets_to_transaction(offsets, &group, CALL_TIMEOUT))
                .map_err(|e| ("send_offsets", e))?;
        }
        retrying(|| producer.commit_transaction(CALL_TIMEOUT)).map_err(|e| ("commit", e))
    }

    /// The transaction committed: its offsets and the engine's
    /// instance-wide state become what a rewind returns to; the next
    /// transaction opens.
    fn committed(&mut self) {
        self.settle_committed();
        let Some(txn) = self.mode.txn_mut() else {
            return;
        };
        if let Err(error) = self.outbox.sink.transactions().begin_transaction() {
            tracing::error!(%error, "Cannot open the next transaction; replacing the producer.");
            txn.open = false;
            self.open_with_new_producer();
        }
    }

    /// What a committed transaction changes; see [`Pipeline::committed`].
    fn settle_committed(&mut self) {
        TransactionCommitted.emit(&self.metrics);
        // Delivery reports of the committed records, for the HTTP waiters.
        if let Err(error) = self.outbox.sink.flush(Duration::ZERO) {
            tracing::debug!(%error, "Delivery reports of a committed transaction are still due.");
        }
        self.drain_deliveries();
        self.outbox.waiters.committed();
        self.outbox.tracker.settle_all();
        let point = self.engine.commit_point();
        let next_id = self.outbox.tracker.next_id();
        let Some(txn) = self.mode.txn_mut() else {
            return;
        };
        for i in 0..txn.offsets.len() {
            let (index, offset, checkpoint) = txn.offsets[i];
            txn.set_committed(index, Some((offset, checkpoint)));
        }
        txn.point = point;
        txn.last_id = next_id;
    }

    /// A call failed for good: abort (or drop the producer when it is
    /// unusable), rewind to the last commit, open the next transaction.
    fn abort_and_rewind<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        call: &'static str,
        error: TxnError,
        wall: EventTime,
    ) {
        let mut renew = error.recovery == Recovery::Renew;
        if !renew
            && let Err(abort) = self
                .outbox
                .sink
                .transactions()
                .abort_transaction(CALL_TIMEOUT)
        {
            tracing::warn!(error = %abort, "Cannot abort the transaction; replacing the producer.");
            renew = true;
        }
        TransactionAborted {
            call,
            error: &error,
            renewed: renew,
        }
        .emit(&self.metrics);
        self.forget_aborted(consumer, wall);
        let Some(txn) = self.mode.txn_mut() else {
            return;
        };
        if renew {
            self.open_with_new_producer();
        } else if let Err(error) = self.outbox.sink.transactions().begin_transaction() {
            tracing::error!(%error, "Cannot open a transaction after an abort; replacing the producer.");
            self.open_with_new_producer();
        } else {
            txn.open = true;
        }
    }

    /// Forgets an aborted transaction: its HTTP erasure requesters are told
    /// to retry, its records are void, and the pipeline rewinds to the last
    /// commit. No transaction is open after it.
    fn forget_aborted<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>, wall: EventTime) {
        self.outbox.waiters.aborted();
        self.drain_deliveries();
        self.outbox.tracker.settle_all();
        self.rewind(consumer, wall);
        let next_id = self.outbox.tracker.next_id();
        let Some(txn) = self.mode.txn_mut() else {
            return;
        };
        txn.open = false;
        txn.last_id = next_id;
        // Failures reported for the aborted records doom nothing new.
        self.outbox.take_doomed();
    }

    /// Partitions were lost ([`Pipeline::lose`]): the open transaction may
    /// hold their records, so it is aborted, and the partitions still
    /// owned are rewound.
    pub(super) fn abort_after_loss<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        wall: EventTime,
    ) {
        if !self.mode.txn().is_some_and(|t| t.open) {
            return;
        }
        let error = abortable(KafkaError::Subscription(
            "partitions lost to another group member".into(),
        ));
        self.abort_and_rewind(consumer, "partitions_lost", error, wall);
    }

    /// Replaces the producer, initialises its transactions (fencing the
    /// old one) and opens a transaction. On failure the pipeline stays
    /// closed, and the next commit interval tries again.
    fn open_with_new_producer(&mut self) {
        let opened = (self.outbox.sink)
            .renew()
            .map_err(abortable)
            .and_then(|()| {
                self.outbox
                    .sink
                    .transactions()
                    .init_transactions(CALL_TIMEOUT)
            })
            .and_then(|()| self.outbox.sink.transactions().begin_transaction());
        // Records purged with the old producer are void.
        self.drain_deliveries();
        self.outbox.tracker.settle_all();
        let next_id = self.outbox.tracker.next_id();
        let Some(txn) = self.mode.txn_mut() else {
            return;
        };
        match opened {
            Ok(()) => {
                self.outbox.take_doomed();
                txn.open = true;
                txn.last_id = next_id;
                tracing::info!("A new transactional producer is ready.");
            }
            Err(error) => tracing::error!(
                %error,
                "Cannot create a transactional producer; input waits, trying again at the next \
                 commit interval."
            ),
        }
    }
}

/// Calls `call` again while it fails with a retriable error, up to
/// [`ATTEMPTS`] times.
fn retrying(call: impl Fn() -> Result<(), TxnError>) -> Result<(), TxnError> {
    let mut attempt = 1;
    loop {
        match call() {
            Err(error) if error.recovery == Recovery::Retry && attempt < ATTEMPTS => {
                tracing::debug!(%error, attempt, "Retriable transactional error; calling again.");
                attempt += 1;
                std::thread::sleep(RETRY_BACKOFF);
            }
            result => return result,
        }
    }
}

/// An error that aborts the transaction.
fn abortable(error: KafkaError) -> TxnError {
    TxnError {
        recovery: Recovery::Abort,
        error,
    }
}
