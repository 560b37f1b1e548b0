//! The commit mode: how what the outbox got acknowledged becomes committed
//! input. [`Mode`] owns everything that differs between the two modes;
//! the rest of the pipeline asks it, and never which mode runs.
//!
//! # At-least-once (the default)
//!
//! ```text
//! poll ─► decode ─► engine ─► outputs ─► sink.send(id = tracker.sent())
//!                                             │ delivery report
//!          every commit_interval:             ▼
//!          capture drain D (changes,     tracker.acked(id)
//!            positions, barrier)              │ outputs before D acked
//!          send D's changelog records ◄───────┘
//!          tracker.checkpoint(positions) ◄─ D's records acked
//!          tracker.committable() ─► consumer.commit(offsets + checkpoints)
//! ```
//!
//! A partition's position is the lowest offset still in the engine's reorder
//! buffer or held for a schema look-up, or the next offset to read when
//! nothing is; it becomes committable once every output sent before it,
//! and the changelog records of the customers that changed before it, are
//! acknowledged. A crash therefore restores the state the committed offsets
//! left behind (or a later one) and re-reads from them;
//! [`super::changelog`] says why that neither loses nor repeats anything.
//! A record Kafka did not take is sent again ([`super::outbox`]).
//!
//! # Exactly-once (`runtime.exactly_once = true`)
//!
//! The same pieces run inside one Kafka transaction per commit interval:
//! the changelog drain is sent at once, the positions go with the
//! transaction, a record Kafka did not take aborts it, and a failed
//! transaction rewinds the pipeline to the last commit
//! ([`transactional`]).

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

use crate::clock::Stopwatch;
use crate::config::Config;
use crate::engine::Engine;
use crate::model::EventTime;
use crate::runtime::restore::Commit;
use crate::sink::transactions::TxnError;

use super::acks::Position;
use super::changelog::{CommitMeta, encode_checkpoint};
use super::outbox::Failures;
use super::partitions::PartitionMap;
use super::pipeline::Pipeline;

pub(super) mod transactional;

use transactional::Transaction;

/// The commit mode; see the module docs.
#[derive(Debug)]
pub(super) enum Mode {
    /// Offsets committed to the group behind acknowledgements.
    AtLeastOnce(AtLeastOnce),
    /// One Kafka transaction per commit interval.
    Transactional(Box<Transaction>),
}

/// The at-least-once mode's own state.
#[derive(Debug, Default)]
pub(super) struct AtLeastOnce {
    /// Per partition, the newest committable offset and checkpoint: each
    /// commit sends them all, so that one a failed commit left behind is
    /// sent again even when no newer one follows.
    committable: Vec<(u32, i64, CommitMeta)>,
    /// A commit may not have reached the group (it failed, or a rebalance
    /// moved the generation on while it was in flight): the next interval
    /// commits again.
    recommit: bool,
    /// Intervals since offsets were last sent; see [`RESEND_AFTER`].
    quiet: u32,
}

/// After this many commit intervals without a commit, the newest offsets
/// are sent again even when nothing says a commit failed: librdkafka
/// reports the outcome of an asynchronous commit to no one unless a commit
/// callback is configured, which the client library does not, so a commit
/// lost in a rebalance or refused by the coordinator would otherwise stay
/// behind once the input is read and no newer offset comes to carry it.
const RESEND_AFTER: u32 = 10;

impl Mode {
    /// The mode `config` asks for; a rewind of the transactional mode
    /// returns `engine` to where it is now.
    pub(super) fn new(config: &Config, engine: &Engine) -> Mode {
        match config.runtime.exactly_once {
            false => Mode::AtLeastOnce(AtLeastOnce::default()),
            true => Mode::Transactional(Box::new(Transaction::new(engine.commit_point()))),
        }
    }

    /// What a record Kafka did not take leads to.
    pub(super) fn failures(&self) -> Failures {
        match self {
            Mode::AtLeastOnce(_) => Failures::Resend,
            Mode::Transactional(_) => Failures::Abort,
        }
    }

    /// The transaction side, in exactly-once mode.
    pub(super) fn txn(&self) -> Option<&Transaction> {
        match self {
            Mode::AtLeastOnce(_) => None,
            Mode::Transactional(txn) => Some(txn),
        }
    }

    /// The transaction side, in exactly-once mode.
    pub(super) fn txn_mut(&mut self) -> Option<&mut Transaction> {
        match self {
            Mode::AtLeastOnce(_) => None,
            Mode::Transactional(txn) => Some(txn),
        }
    }
}

impl Pipeline {
    /// Exactly-once mode: registers the `transactional.id` (fencing older
    /// producers with it and aborting their open transaction) and opens the
    /// first transaction. Does nothing in at-least-once mode.
    pub fn init_transactions(&mut self) -> Result<(), TxnError> {
        match &self.mode {
            Mode::AtLeastOnce(_) => Ok(()),
            Mode::Transactional(_) => self.init_transaction(),
        }
    }

    /// Whether records may be sent now: always in at-least-once mode,
    /// while a transaction is open and no earlier one is in doubt in
    /// exactly-once mode.
    pub(super) fn may_send(&self) -> bool {
        self.mode.txn().is_none_or(Transaction::may_send)
    }

    /// Whether input is taken: `false` only in exactly-once mode while no
    /// producer could be created after a failed transaction.
    pub fn accepts_input(&self) -> bool {
        self.may_send()
    }

    /// Applies delivery reports (acks settle outputs, failures are re-sent
    /// or abort the transaction), then, in at-least-once mode, sends the
    /// pending changelog drain if its barrier is settled.
    pub fn drain_deliveries(&mut self) {
        self.outbox.drain(&self.partitions);
        if let Mode::AtLeastOnce(_) = self.mode {
            self.changelog.send_ready(
                &mut self.outbox.tracker,
                &self.outbox.sink,
                &self.partitions,
                &self.metrics,
            );
        }
    }

    /// Backpressure: waits up to `timeout` for the next delivery report
    /// (the producer's delivery callback sends it, which wakes this thread
    /// at once), then applies it and every other report waiting, like
    /// [`Pipeline::drain_deliveries`].
    pub fn await_deliveries(&mut self, timeout: Duration) {
        self.outbox.await_delivery(&self.partitions, timeout);
        self.drain_deliveries();
    }

    /// Once per commit interval: captures a changelog drain (unless one is
    /// still pending), sends it if it is ready, and commits what has become
    /// committable (asynchronously, or synchronously with `mode`), each
    /// offset with its checkpoint in the commit metadata; or, in
    /// exactly-once mode, commits the interval's transaction.
    pub fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        mode: CommitMode,
        wall: EventTime,
    ) {
        if let Mode::Transactional(_) = self.mode {
            return self.commit_transaction(consumer, wall);
        }
        self.drain_deliveries();
        self.capture(wall);
        self.drain_deliveries();
        self.commit_committable(consumer, mode);
    }

    /// Captures a drain of the engine's changes with every read
    /// partition's position ([`super::changelog::ChangelogWriter::capture`]).
    pub(super) fn capture(&mut self, wall: EventTime) {
        self.positions.clear();
        for (partition, next_offset) in self.partitions.consumed_positions() {
            // Records held for a schema look-up are not processed yet.
            let buffered_low = match (
                self.engine.buffered_low(partition),
                self.intake.awaiting.low(partition),
            ) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            self.positions.push(Position {
                partition,
                next_offset,
                buffered_low,
            });
        }
        let barrier = self.outbox.tracker.next_id();
        let positions = self.positions.iter().copied();
        self.changelog
            .capture(&mut self.engine, positions, barrier, wall);
    }

    /// Commits every offset that has become committable (at-least-once).
    fn commit_committable<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        mode: CommitMode,
    ) {
        let Mode::AtLeastOnce(commits) = &mut self.mode else {
            return;
        };
        let mut rose = false;
        let latest = &mut commits.committable;
        self.outbox
            .tracker
            .committable_with(|partition, offset, meta| {
                rose = true;
                match latest.iter_mut().find(|(p, ..)| *p == partition) {
                    Some(entry) => *entry = (partition, offset, meta),
                    None => latest.push((partition, offset, meta)),
                }
            });
        commits.quiet = commits.quiet.saturating_add(1);
        let due = rose || commits.recommit || commits.quiet >= RESEND_AFTER;
        if !due || commits.committable.is_empty() {
            return;
        }
        commits.recommit = false;
        commits.quiet = 0;
        let list = offsets_list(&self.partitions, &commits.committable);
        if let Err(error) = consumer.commit(&list, mode) {
            commits.recommit = true;
            tracing::warn!(%error, "Offset commit failed; it is retried at the next interval.");
        }
    }

    /// The offsets committed may not have reached the group (an
    /// asynchronous commit failed, or a rebalance ran while commits were in
    /// flight): the next interval sends the newest offsets again.
    pub fn commit_again(&mut self) {
        if let Mode::AtLeastOnce(commits) = &mut self.mode {
            commits.recommit = true;
        }
    }

    /// Partition `index` was revoked: forgets the offset it would commit;
    /// nothing of it is committed by this instance any more, and a rewind
    /// leaves it out of the watermark.
    pub(super) fn forget_commit(&mut self, index: u32) {
        self.outbox.tracker.forget_partition(index);
        match &mut self.mode {
            Mode::AtLeastOnce(commits) => commits.committable.retain(|(p, ..)| *p != index),
            Mode::Transactional(txn) => txn.forget_partition(index),
        }
    }

    /// Restored partition `index` resumes from its `commit`, offset and
    /// checkpoint (`None`: never committed): in exactly-once mode, what a
    /// rewind returns to and what each transaction carries for it until it
    /// is read.
    pub(super) fn resumed_at(&mut self, index: u32, commit: Option<Commit>) {
        if let (Some(txn), Some(_)) = (self.mode.txn_mut(), commit) {
            txn.set_committed(index, commit);
        }
    }

    /// Erasure partitions to read again from an offset after a rewind
    /// (exactly-once), for the caller to seek the erasure reader to.
    pub fn take_erasure_rewinds(&mut self) -> Vec<(i32, i64)> {
        (self.mode.txn_mut())
            .map(Transaction::take_erasure_rewinds)
            .unwrap_or_default()
    }

    /// Partitions were lost ([`Pipeline::lose`]): in exactly-once mode the
    /// open transaction may hold their records, so it is aborted, and the
    /// partitions still owned are rewound. Nothing happens in at-least-once
    /// mode.
    pub(super) fn after_loss<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        wall: EventTime,
    ) {
        if let Mode::Transactional(_) = self.mode {
            self.abort_after_loss(consumer, wall);
        }
    }

    /// Final flush, changelog drain and synchronous commit on shutdown.
    pub fn shutdown<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        timeout: Duration,
        wall: EventTime,
    ) {
        self.flush_and_commit(consumer, timeout, wall);
    }

    /// Delivers the outputs in flight, then the pending drain, then a
    /// final drain of every change so far, and commits synchronously; all
    /// within about `timeout`. When outputs are not delivered in time the
    /// newest state is not written and the commit stays where the
    /// delivered ones allow. In exactly-once mode: commits the transaction,
    /// which delivers everything in it first.
    pub(super) fn flush_and_commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        timeout: Duration,
        wall: EventTime,
    ) {
        if let Mode::Transactional(_) = self.mode {
            return self.commit_transaction(consumer, wall);
        }
        let clock = Stopwatch::start();
        let left = || timeout.saturating_sub(clock.elapsed());
        // Outputs, then the pending drain they held back.
        self.flush(left());
        self.flush(left());
        if self.changelog.is_pending() {
            tracing::warn!(
                "Outputs were not all delivered in time: the newest customer state is not                  written, and the commit stays behind it."
            );
        } else {
            self.capture(wall);
            self.drain_deliveries();
            self.flush(left());
        }
        self.commit_committable(consumer, CommitMode::Sync);
    }

    /// Waits for the producer's queue to empty (or `timeout`), then
    /// applies the delivery reports.
    fn flush(&mut self, timeout: Duration) {
        self.outbox.flush(timeout);
        self.drain_deliveries();
    }
}

/// Offsets to commit, `(engine partition, offset, checkpoint)`, as Kafka
/// wants them: by topic and partition, each checkpoint in the metadata.
pub(super) fn offsets_list(
    partitions: &PartitionMap,
    offsets: &[(u32, i64, CommitMeta)],
) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for &(index, offset, checkpoint) in offsets {
        let Some((topic, partition)) = partitions.name(index) else {
            continue;
        };
        let mut element = list.add_partition(topic, partition);
        if element.set_offset(Offset::Offset(offset)).is_err() {
            continue;
        }
        if let Some(checkpoint) = checkpoint {
            element.set_metadata(encode_checkpoint(&checkpoint));
        }
    }
    list
}
