//! Rebalances: partitions assigned, revoked or lost, as the consumer's
//! callbacks report them ([`crate::source::kafka::PartitionOwner`]); see
//! the module docs of [`super`].

use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

use super::Pipeline;
use crate::model::EventTime;
use crate::source::kafka::{PartitionOwner, Source};

impl Pipeline {
    /// Reads the next batch of changelog records for partitions being
    /// restored at wall time `wall`, and resumes them when all are
    /// complete.
    pub fn restore_step<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        wall: EventTime,
    ) {
        self.restorer
            .step(&mut self.engine, (&self.partitions, consumer), wall);
        for (index, offset) in self.restorer.take_resumed() {
            self.resumed_at(index, offset);
        }
    }

    /// Partitions were assigned to this instance: input partitions are
    /// paused until their state is restored from the changelog.
    pub fn assign<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        list: &TopicPartitionList,
        wall: EventTime,
    ) {
        let mut paused = TopicPartitionList::new();
        for element in list.elements() {
            let (topic, partition) = (element.topic(), element.partition());
            let index = self.partitions.index(topic, partition);
            self.partitions.set_owned(index, true);
            self.engine.assign(index, wall);
            if self.intake.is_input(topic) {
                self.restorer.start(index, topic, partition);
                paused.add_partition(topic, partition);
            }
        }
        if paused.count() > 0
            && let Err(error) = consumer.pause(&paused)
        {
            // Records fetched anyway are handed back (`handle`) and read
            // again once the restore is complete.
            tracing::warn!(%error, "Cannot pause partitions while their state is restored.");
        }
    }

    /// Partitions are being revoked. Those still restoring are dropped at
    /// once. For the others: deliver everything in flight, write and
    /// deliver the final changelog drain, commit synchronously (with the
    /// erasure partitions that follow them), and only then drop their
    /// customers, timers and buffered touchpoints, which the next owner
    /// rebuilds from the changelog and the commit.
    pub fn revoke<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        list: &TopicPartitionList,
        flush_timeout: std::time::Duration,
        wall: EventTime,
    ) {
        let mut settled = Vec::new();
        for element in list.elements() {
            let index = self.partitions.index(element.topic(), element.partition());
            if self.restorer.cancel(index) {
                self.drop_partition(index);
            } else {
                settled.push(index);
            }
        }
        if !settled.is_empty() {
            self.flush_and_commit(consumer, flush_timeout, wall);
        }
        self.forget_followers(list);
        for index in settled {
            // A failed transaction rewinds and restores every partition,
            // these included.
            self.restorer.cancel(index);
            self.drop_partition(index);
        }
    }

    /// Partitions were *lost*: the group gave them to another member while
    /// this one was cut off from it (it missed its session timeout: the
    /// process was frozen, starved or partitioned away), so the new owner
    /// may be writing their state already. Unlike [`Pipeline::revoke`],
    /// nothing of theirs is written any more: no flush, no changelog
    /// drain, no commit. A changelog record written now would land after
    /// the new owner's, win compaction and roll its customers back; an
    /// offset committed now would move the new owner's position back.
    /// Their customers, timers and buffered touchpoints are dropped, and
    /// changelog records of theirs that the producer reports failed are
    /// not sent again ([`Pipeline::drain_deliveries`]).
    ///
    /// In exactly-once mode the open transaction may hold their records:
    /// it is aborted, and the partitions still owned are rewound to the
    /// last commit as after any abort. (Records the producer had already
    /// sent in at-least-once mode cannot be called back; exactly-once mode
    /// is the one that fences a member that lost its partitions.)
    pub fn lose<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        list: &TopicPartitionList,
        wall: EventTime,
    ) {
        for element in list.elements() {
            let index = self.partitions.index(element.topic(), element.partition());
            self.restorer.cancel(index);
            self.drop_partition(index);
        }
        self.forget_followers(list);
        self.after_loss(consumer, wall);
    }

    /// Forgets a revoked partition's customers, checkpoints, position and
    /// held records (the next owner reads them again).
    pub(super) fn drop_partition(&mut self, index: u32) {
        self.intake.awaiting.drop_partition(index);
        let dropped = self.engine.revoke(index);
        self.partitions.set_owned(index, false);
        self.forget_commit(index);
        self.changelog.forget_partition(index);
        self.partitions.revoked(index);
        if let Some((topic, partition)) = self.partitions.name(index) {
            tracing::debug!(
                topic,
                partition,
                customers = dropped,
                "Dropped a revoked partition's state."
            );
        }
    }
}

/// The consumer's rebalance callbacks ([`crate::source::kafka`]) drive the
/// pipeline through this.
impl PartitionOwner for Pipeline {
    fn assign(&mut self, consumer: &Source, list: &TopicPartitionList, wall: EventTime) {
        Pipeline::assign(self, consumer, list, wall);
    }

    fn revoke(
        &mut self,
        consumer: &Source,
        list: &TopicPartitionList,
        flush_timeout: std::time::Duration,
        wall: EventTime,
    ) {
        Pipeline::revoke(self, consumer, list, flush_timeout, wall);
    }

    fn lose(&mut self, consumer: &Source, list: &TopicPartitionList, wall: EventTime) {
        Pipeline::lose(self, consumer, list, wall);
    }

    fn commit_again(&mut self) {
        Pipeline::commit_again(self);
    }

    fn take_erasure_rewinds(&mut self) -> Vec<(i32, i64)> {
        Pipeline::take_erasure_rewinds(self)
    }
}
