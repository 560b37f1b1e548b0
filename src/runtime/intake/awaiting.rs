//! Records waiting for the look-up of their schema id, held per partition
//! so that a slow schema registry delays only the partitions that need it.
//!
//! A Confluent-framed record whose schema id is new starts a look-up on a
//! thread of its own ([`crate::registry::SchemaSource::try_resolve`]); the
//! record is copied into its partition's queue here, and so is every later
//! record of that partition, known id or not, so that the partition's
//! order is kept. Other partitions flow on. Between polls the pipeline
//! collects finished look-ups ([`crate::registry::SchemaSource::completed`])
//! and releases each queue from its head, in order, up to the next record
//! whose schema is still being looked up; the records of a look-up that
//! failed go to the dead-letter topic as `unknown_schema_id`, with the
//! detail of that failure (`Pipeline::schemas_step`).
//!
//! What bounds it, and what it must not break:
//!
//! - **Memory**: a queue holds at most `schema_registry.max_held_bytes` of
//!   keys and values (plus the one record that fills it). Once full, its
//!   partition is paused (rdkafka `pause`); a record librdkafka had fetched
//!   before the pause is handed back to be read again, like one that
//!   arrives while its partition's state is restored. The partition is
//!   resumed when its queue has room again. Nothing is dropped.
//! - **Commits**: a held record's offset is the lowest its partition may
//!   commit ([`Awaiting::low`] joins the engine's reorder buffer in the
//!   commit position), so a crash re-reads it rather than skipping it.
//! - **Rebalances**: a revoked or lost partition's held records are
//!   dropped unprocessed (the new owner reads them again from the
//!   committed offset, which they held back), and so are they when an
//!   aborted transaction rewinds the partition.
//! - **Time**: held records have not reached the engine, so their
//!   partition's watermark does not move for them; it goes idle after
//!   `time.idle_timeout` like a partition with nothing to read, and records
//!   released after the watermark has passed them count as late.

use std::collections::VecDeque;

use crate::clock::Stopwatch;
use crate::codec::Invalid;
use crate::codec::confluent;
use crate::registry::Completed;

use super::Input;

/// One held record: an owned copy of what the pipeline needs of it.
#[derive(Debug)]
pub(in crate::runtime) struct Held {
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    /// When it was polled: end-to-end latency includes the wait.
    pub polled: Stopwatch,
}

impl Held {
    /// Bytes it counts against the bound.
    fn size(&self) -> usize {
        self.payload.len() + self.key.as_ref().map_or(0, Vec::len)
    }
}

/// One partition's held records, oldest first.
#[derive(Debug, Default)]
pub(in crate::runtime) struct Queue {
    /// The partition's topic and number, set by its first held record.
    topic: String,
    partition: i32,
    records: VecDeque<Held>,
    /// Sum of the held records' sizes.
    bytes: usize,
    /// Whether the pipeline paused the partition because the queue is full.
    paused: bool,
}

impl Queue {
    /// Takes the oldest held record.
    pub fn pop(&mut self) -> Option<Held> {
        let held = self.records.pop_front()?;
        self.bytes -= held.size();
        Some(held)
    }

    /// Puts back a record [`Queue::pop`] took, as the oldest.
    pub fn unpop(&mut self, held: Held) {
        self.bytes += held.size();
        self.records.push_front(held);
    }

    /// `held` as an [`Input`] of this queue's partition.
    pub fn input<'a>(&'a self, held: &'a Held) -> Input<'a> {
        Input {
            topic: &self.topic,
            partition: self.partition,
            offset: held.offset,
            key: held.key.as_deref(),
            payload: &held.payload,
        }
    }
}

/// Per partition (by engine index), the records waiting for a schema.
#[derive(Debug)]
pub(in crate::runtime) struct Awaiting {
    queues: Vec<Queue>,
    /// `schema_registry.max_held_bytes`.
    max_bytes: usize,
    /// Look-ups that failed and whose records may still be held: they are
    /// dead-lettered with the failure's detail.
    failed: Vec<Completed>,
    /// A look-up ended since the queues were last released.
    ready: bool,
}

/// A pause or resume the consumer is to apply: `(topic, partition, pause)`.
pub(in crate::runtime) type Flow<'a> = (&'a str, i32, bool);

impl Awaiting {
    /// No record held; queues bounded to `max_bytes` each.
    pub fn new(max_bytes: usize) -> Awaiting {
        Awaiting {
            queues: Vec::new(),
            max_bytes: max_bytes.max(1),
            failed: Vec::new(),
            ready: false,
        }
    }

    /// How many records are held, over all partitions.
    pub fn len(&self) -> usize {
        self.queues.iter().map(|q| q.records.len()).sum()
    }

    /// Whether partition `index` has held records (its next records are
    /// held behind them).
    pub fn holds(&self, index: u32) -> bool {
        self.queue(index).is_some_and(|q| !q.records.is_empty())
    }

    /// Whether partition `index`'s queue is full: a record that arrives
    /// anyway is handed back to be read again.
    pub fn is_full(&self, index: u32) -> bool {
        self.queue(index).is_some_and(|q| q.bytes >= self.max_bytes)
    }

    /// The lowest held offset of partition `index`.
    pub fn low(&self, index: u32) -> Option<i64> {
        self.queue(index)?.records.front().map(|h| h.offset)
    }

    /// Holds a copy of `input`, behind the partition's other held records.
    pub fn hold(&mut self, index: u32, input: &Input<'_>, polled: Stopwatch) {
        let slot = usize::try_from(index).unwrap_or(usize::MAX);
        if self.queues.len() <= slot {
            self.queues.resize_with(slot + 1, Queue::default);
        }
        let queue = &mut self.queues[slot];
        if queue.topic != input.topic {
            input.topic.clone_into(&mut queue.topic);
        }
        queue.partition = input.partition;
        let held = Held {
            offset: input.offset,
            key: input.key.map(<[u8]>::to_vec),
            payload: input.payload.to_vec(),
            polled,
        };
        queue.bytes += held.size();
        queue.records.push_back(held);
    }

    /// Drops partition `index`'s held records (revoked, lost, rewound);
    /// how many there were.
    pub fn drop_partition(&mut self, index: u32) -> usize {
        let Some(queue) = usize::try_from(index)
            .ok()
            .and_then(|i| self.queues.get_mut(i))
        else {
            return 0;
        };
        let dropped = queue.records.len();
        *queue = Queue::default();
        dropped
    }

    /// Notes look-ups that ended: the held records are to be released.
    pub fn completed(&mut self, completed: Vec<Completed>) {
        if completed.is_empty() {
            return;
        }
        self.ready = true;
        (self.failed).extend(completed.into_iter().filter(|c| c.outcome.is_err()));
    }

    /// Whether the queues are to be released (a look-up ended).
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// The failure of the look-up `payload`'s schema id waited for, if it
    /// failed since the queues were last released completely.
    pub fn failure(&self, payload: &[u8]) -> Result<(), Invalid> {
        // Nothing failed: the usual case, with no parsing per record.
        if self.failed.is_empty() {
            return Ok(());
        }
        let Some(id) = confluent::schema_id(payload) else {
            return Ok(());
        };
        match self.failed.iter().find(|c| c.id == id) {
            Some(Completed {
                outcome: Err(invalid),
                ..
            }) => Err(invalid.clone()),
            _ => Ok(()),
        }
    }

    /// The partitions with held records.
    pub fn holding(&self) -> impl Iterator<Item = u32> + '_ {
        (self.queues.iter().enumerate())
            .filter(|(_, q)| !q.records.is_empty())
            .filter_map(|(i, _)| u32::try_from(i).ok())
    }

    /// Takes partition `index`'s queue out, to release records from it.
    pub fn take(&mut self, index: u32) -> Queue {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.queues.get_mut(i))
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Puts back a queue [`Awaiting::take`] took (releasing never holds,
    /// so no record was held in its place meanwhile).
    pub fn put(&mut self, index: u32, queue: Queue) {
        if let Some(slot) = usize::try_from(index)
            .ok()
            .and_then(|i| self.queues.get_mut(i))
        {
            *slot = queue;
        }
    }

    /// Every queue was released up to a record still waiting: the failures
    /// have been applied.
    pub fn released(&mut self) {
        self.ready = false;
        self.failed.clear();
    }

    /// Pauses and resumes due: full queues of running partitions, and
    /// paused partitions whose queue has room again. `apply` pauses or
    /// resumes one and says whether the consumer did it.
    pub fn flow(&mut self, mut apply: impl FnMut(Flow<'_>) -> bool) {
        let max = self.max_bytes;
        for queue in &mut self.queues {
            let full = queue.bytes >= max;
            if full != queue.paused && apply((&queue.topic, queue.partition, full)) {
                queue.paused = full;
            }
        }
    }

    fn queue(&self, index: u32) -> Option<&Queue> {
        self.queues.get(usize::try_from(index).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::InvalidReason;

    fn input(offset: i64, payload: &[u8]) -> Input<'_> {
        Input {
            topic: "t",
            partition: 3,
            offset,
            key: Some(b"k"),
            payload,
        }
    }

    #[test]
    fn records_are_held_in_order_and_hold_back_the_commit() {
        let mut awaiting = Awaiting::new(100);
        assert!(!awaiting.holds(2));
        awaiting.hold(2, &input(7, b"abc"), Stopwatch::start());
        awaiting.hold(2, &input(8, b"def"), Stopwatch::start());
        assert!(awaiting.holds(2) && !awaiting.holds(0));
        assert_eq!(awaiting.low(2), Some(7));
        assert_eq!(awaiting.holding().collect::<Vec<_>>(), [2]);
        let mut queue = awaiting.take(2);
        let first = queue.pop().unwrap();
        assert_eq!(queue.input(&first).offset, 7);
        assert_eq!(queue.input(&first).topic, "t");
        queue.unpop(first);
        awaiting.put(2, queue);
        assert_eq!(awaiting.low(2), Some(7));
        assert_eq!(awaiting.drop_partition(2), 2);
        assert_eq!(awaiting.low(2), None);
    }

    #[test]
    fn a_full_queue_pauses_its_partition_until_it_has_room() {
        let mut awaiting = Awaiting::new(8);
        awaiting.hold(0, &input(1, b"abc"), Stopwatch::start());
        let mut flows = Vec::new();
        awaiting.flow(|(t, p, pause)| {
            flows.push((t.to_owned(), p, pause));
            true
        });
        assert!(flows.is_empty(), "4 of 8 bytes");
        awaiting.hold(0, &input(2, b"def"), Stopwatch::start());
        assert!(awaiting.is_full(0));
        awaiting.flow(|(t, p, pause)| {
            flows.push((t.to_owned(), p, pause));
            true
        });
        assert_eq!(flows, [("t".to_owned(), 3, true)]);
        let mut queue = awaiting.take(0);
        queue.pop();
        awaiting.put(0, queue);
        assert!(!awaiting.is_full(0));
        awaiting.flow(|(t, p, pause)| {
            flows.push((t.to_owned(), p, pause));
            true
        });
        assert_eq!(flows[1], ("t".to_owned(), 3, false));
    }

    #[test]
    fn failed_look_ups_apply_until_released() {
        let mut awaiting = Awaiting::new(8);
        let invalid = Invalid::new(InvalidReason::UnknownSchemaId, "schema id 9: gone");
        awaiting.completed(vec![
            Completed {
                id: 9,
                outcome: Err(invalid.clone()),
            },
            Completed {
                id: 10,
                outcome: Ok(()),
            },
        ]);
        assert!(awaiting.is_ready());
        let mut framed = Vec::new();
        confluent::frame(9, b"body", &mut framed);
        assert_eq!(awaiting.failure(&framed), Err(invalid));
        let mut other = Vec::new();
        confluent::frame(10, b"body", &mut other);
        assert_eq!(awaiting.failure(&other), Ok(()));
        awaiting.released();
        assert!(!awaiting.is_ready());
        assert_eq!(awaiting.failure(&framed), Ok(()));
    }
}
