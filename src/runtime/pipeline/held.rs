//! Releasing the records held for schema look-ups
//! (`runtime/intake/awaiting.rs`) once their look-ups end.

use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

use super::{Pipeline, Step};
use crate::config::InputEncoding;
use crate::model::EventTime;

/// Held records released per [`Pipeline::schemas_step`], at most: a long
/// queue is released over several turns of the loop, which polls (and
/// waits for delivery reports under backpressure) in between.
const RELEASE_BATCH: usize = 1024;

impl Pipeline {
    /// Between polls: applies the schema look-ups that ended, releases the
    /// records held for them, in order (at most [`RELEASE_BATCH`] per
    /// call), and pauses the partitions whose queue is full, resuming those
    /// that have room again (`intake/awaiting.rs`).
    pub fn schemas_step<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        wall: EventTime,
    ) {
        self.intake.schemas_completed(wall);
        if self.intake.awaiting.is_ready() && self.may_send() {
            self.release(wall);
        }
        self.intake.awaiting.flow(|(topic, partition, pause)| {
            let mut list = TopicPartitionList::new();
            list.add_partition(topic, partition);
            let done = if pause {
                consumer.pause(&list)
            } else {
                consumer.resume(&list)
            };
            match &done {
                Ok(()) if pause => {
                    tracing::debug!(topic, partition, "Paused a partition: its queue of records waiting for a schema look-up is full.");
                }
                Ok(()) => tracing::debug!(topic, partition, "Resumed a partition: its queue of records waiting for a schema look-up has room again."),
                Err(error) => {
                    tracing::warn!(%error, topic, partition, pause, "Cannot pause or resume a partition whose records wait for a schema look-up; trying again.");
                }
            }
            done.is_ok()
        });
    }

    /// Processes held records from the head of each queue up to one whose
    /// schema id is still being looked up.
    fn release(&mut self, wall: EventTime) {
        let mut budget = RELEASE_BATCH;
        let holding: Vec<u32> = self.intake.awaiting.holding().collect();
        for index in holding {
            let mut queue = self.intake.awaiting.take(index);
            while budget > 0
                && let Some(held) = queue.pop()
            {
                let input = queue.input(&held);
                let step = self.process(&input, index, InputEncoding::Confluent, held.polled, wall);
                if step == Step::Wait {
                    queue.unpop(held);
                    break;
                }
                budget -= 1;
            }
            self.intake.awaiting.put(index, queue);
        }
        if budget > 0 {
            self.intake.awaiting.released();
        }
    }
}
