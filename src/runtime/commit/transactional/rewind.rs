//! The rewind after an aborted transaction (steps 1 to 3 of the module
//! docs of [`super`]): back to the last commit, state restored from the
//! changelog.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

use crate::model::EventTime;
use crate::runtime::pipeline::Pipeline;

impl Pipeline {
    /// Forgets what the aborted transaction did: see the module docs.
    pub(super) fn rewind<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        wall: EventTime,
    ) {
        let assignment = consumer.assignment().unwrap_or_default();
        let mut inputs = Vec::new();
        let mut erasures = Vec::new();
        for element in assignment.elements() {
            let (topic, partition) = (element.topic(), element.partition());
            if !self.intake.is_input(topic) {
                continue;
            }
            let index = self.partitions.index(topic, partition);
            // Lost while the group consumer still lists it.
            if !self.partitions.is_owned(index) {
                continue;
            }
            inputs.push((index, topic.to_owned(), partition));
            if topic == self.intake.primary()
                && let Some(index) = self.partitions.find(self.intake.erasure_topic(), partition)
            {
                erasures.push((index, partition));
            }
        }
        let Some(txn) = self.mode.txn() else {
            return;
        };
        let indices: Vec<u32> = inputs.iter().map(|(index, ..)| *index).collect();
        for &index in &indices {
            self.restorer.cancel(index);
        }
        let dropped = self.engine.rewind(&txn.point, &indices);
        let mut paused = TopicPartitionList::new();
        for (index, topic, partition) in &inputs {
            let target = self.rewind_target(*index);
            // Where reading starts again is what each transaction carries
            // for the partition until it is read, committed or not before.
            if let (Some(txn), Some(offset)) = (self.mode.txn_mut(), target) {
                let checkpoint = txn.commit(*index).and_then(|(_, c)| c);
                txn.set_committed(*index, Some((offset, checkpoint)));
            }
            self.engine.assign(*index, wall);
            self.restorer.start(*index, topic, *partition);
            paused.add_partition(topic, *partition);
            if let Some(offset) = target
                && let Err(error) =
                    consumer.seek(topic, *partition, Offset::Offset(offset), Duration::ZERO)
            {
                tracing::error!(%error, topic, partition, offset, "Cannot rewind a partition to its last committed offset.");
            }
        }
        if paused.count() > 0
            && let Err(error) = consumer.pause(&paused)
        {
            tracing::warn!(%error, "Cannot pause partitions while their state is restored.");
        }
        for (index, partition) in erasures {
            if let Some(offset) = self.rewind_target(index)
                && let Some(txn) = self.mode.txn_mut()
            {
                txn.erasure_rewinds.push((partition, offset));
            }
        }
        tracing::info!(
            partitions = inputs.len(),
            customers = dropped,
            "Rewound to the last committed transaction; restoring state from the changelog."
        );
    }

    /// Where partition `index` is read again from: the offset the last
    /// committed transaction stored, else where reading started since its
    /// assignment (nothing of it committed since), else nowhere (nothing
    /// read). Forgets its read position and pending checkpoints.
    fn rewind_target(&mut self, index: u32) -> Option<i64> {
        let committed = self.mode.txn().and_then(|t| t.committed(index));
        let target = committed.or(self.partitions.first_offset(index));
        self.intake.awaiting.drop_partition(index);
        self.outbox.tracker.forget_partition(index);
        self.changelog.forget_partition(index);
        self.partitions.revoked(index);
        target
    }
}
