//! The erasure topic's reader: erasure partition `p` is read by the
//! instance that owns input partition `p` (docs/erasure.md#carrying-it-out-and-the-proof).
//!
//! Erasure requests are keyed by customer id like the touchpoints, so a
//! request for a customer lands on the partition number their touchpoints
//! use, and only the instance that owns that input partition holds the
//! customer. Subscribing to the erasure topic in the consumer group would
//! not guarantee that: the cooperative-sticky assignor balances partitions
//! without regard to partition numbers, so erasure partition 2 may go to one
//! instance and input partition 2 to another.
//!
//! So the erasure topic is read by a second consumer that does not join the
//! group and whose assignment follows the group member's. When partitions
//! of the primary input topic (the first of `[[inputs]]`) are assigned, the
//! same-numbered erasure partitions are assigned to the reader, from the
//! offsets the group has committed for them; when they are revoked, the
//! pipeline first commits the erasure partitions' final positions with the
//! input's, then the reader lets them go. Offsets are committed by the group
//! member, in the same group and behind the same acknowledgements as the
//! input offsets: a request's offset is committed only once its audit
//! record is acknowledged.
//!
//! Co-partitioning needs the erasure topic to have as many partitions as the
//! primary input and its producers to partition keys the same way. The
//! partition counts are compared at the first assignment that finds both
//! topics; a mismatch is logged as an error naming `outputs.erasure`, and
//! only erasure partitions that exist are read. While the erasure topic does
//! not exist nothing is read from it (an error says so at every assignment).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::config::Config;
use crate::kafka::Context;
use crate::telemetry::{KafkaLog, Metrics};

/// How long the co-partitioning check waits for metadata.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// The erasure topic's partition count before it is known.
const UNKNOWN: usize = usize::MAX;

/// The reader's client context: logs and lag, no rebalances (it is not a
/// group member).
pub type ReaderContext = Context;

/// Reads the erasure partitions that follow this instance's input
/// partitions; see the module docs.
pub struct ErasureReader {
    consumer: BaseConsumer<ReaderContext>,
    /// `outputs.erasure`.
    topic: String,
    /// The input topic whose partitions the reader follows.
    primary: String,
    /// Erasure partitions assigned now.
    assigned: Mutex<BTreeSet<i32>>,
    /// The erasure topic's partition count, once compared with the
    /// primary's; [`UNKNOWN`] before.
    partitions: AtomicUsize,
    metrics: Arc<Metrics>,
}

impl ErasureReader {
    /// A reader for `outputs.erasure`, assigned nothing yet.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> KafkaResult<ErasureReader> {
        let context = Context::new(KafkaLog::new(&config.kafka), ()).with_lag(metrics.clone());
        let consumer = reader_config(config).create_with_context(context)?;
        Ok(ErasureReader {
            consumer,
            topic: config.outputs.erasure.clone(),
            primary: config
                .inputs
                .first()
                .map(|i| i.topic.clone())
                .unwrap_or_default(),
            assigned: Mutex::new(BTreeSet::new()),
            partitions: AtomicUsize::new(UNKNOWN),
            metrics,
        })
    }

    /// The next erasure request, without waiting. Each call serves at most
    /// one event of the reader's queue: `None` means either that the queue
    /// was empty or that a log line, statistics or similar was served.
    pub fn poll(&self) -> Option<KafkaResult<BorrowedMessage<'_>>> {
        self.consumer.poll(Duration::ZERO)
    }

    /// Seeks back to `message`, so that it is read again.
    pub fn read_again(&self, message: &BorrowedMessage<'_>) {
        use rdkafka::message::Message;
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        if let Err(error) =
            self.consumer
                .seek(topic, partition, Offset::Offset(offset), Duration::ZERO)
        {
            tracing::error!(%error, topic, partition, offset, "Cannot seek back to an erasure request held back by a restore.");
        }
    }

    /// Reads erasure partition `partition` again from `offset` (exactly-once
    /// mode, after an aborted transaction: from its last committed offset).
    pub fn rewind(&self, partition: i32, offset: i64) {
        if let Err(error) = self.consumer.seek(
            &self.topic,
            partition,
            Offset::Offset(offset),
            Duration::ZERO,
        ) {
            tracing::error!(%error, topic = self.topic.as_str(), partition, offset, "Cannot rewind an erasure partition to its last committed offset.");
        }
    }

    fn assigned(&self) -> MutexGuard<'_, BTreeSet<i32>> {
        self.assigned.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Input partitions were assigned: read the same-numbered erasure
    /// partitions from the group's committed offsets.
    pub fn follow(&self, inputs: &TopicPartitionList) {
        let Some(existing) = self.check_partitions() else {
            return;
        };
        let mut list = TopicPartitionList::new();
        let mut assigned = self.assigned();
        let exists = |p: i32| usize::try_from(p).is_ok_and(|p| p < existing);
        for p in self.followed(inputs).filter(|&p| exists(p)) {
            if assigned.insert(p)
                && let Err(error) = list.add_partition_offset(&self.topic, p, Offset::Stored)
            {
                tracing::error!(%error, topic = %self.topic, partition = p, "Cannot list an erasure partition.");
            }
        }
        if list.count() > 0
            && let Err(error) = self.consumer.incremental_assign(&list)
        {
            tracing::error!(%error, topic = %self.topic, "Cannot read the erasure partitions.");
        }
    }

    /// Input partitions were revoked (and the pipeline has committed): stop
    /// reading the same-numbered erasure partitions.
    pub fn unfollow(&self, inputs: &TopicPartitionList) {
        let mut list = TopicPartitionList::new();
        let mut assigned = self.assigned();
        for p in self.followed(inputs) {
            if assigned.remove(&p) {
                list.add_partition(&self.topic, p);
                self.metrics.remove_consumer_lag(&self.topic, p);
            }
        }
        if list.count() > 0
            && let Err(error) = self.consumer.incremental_unassign(&list)
        {
            tracing::error!(%error, topic = %self.topic, "Cannot release the erasure partitions.");
        }
    }

    /// The erasure partitions that follow the primary-topic partitions of
    /// `inputs`.
    fn followed<'a>(&'a self, inputs: &'a TopicPartitionList) -> impl Iterator<Item = i32> + 'a {
        inputs
            .elements()
            .into_iter()
            .filter(|e| e.topic() == self.primary)
            .map(|e| e.partition())
    }

    /// Compares the partition counts of the erasure topic and the primary
    /// input once both are known, logging an error on a mismatch; the
    /// erasure topic's partition count (as many as assignment may ask for
    /// while it is not known), or `None` when it does not exist.
    fn check_partitions(&self) -> Option<usize> {
        let known = self.partitions.load(Ordering::Relaxed);
        if known != UNKNOWN {
            return Some(known);
        }
        let (Some(erasure), Some(primary)) = (
            self.partition_count(&self.topic),
            self.partition_count(&self.primary),
        ) else {
            return Some(UNKNOWN);
        };
        if erasure == 0 {
            tracing::error!(
                topic = %self.topic,
                partitions = primary,
                "outputs.erasure: the erasure topic does not exist; erasure requests are not \
                 read until it is created, with as many partitions as the input topic, and \
                 partitions are assigned again."
            );
            return None;
        }
        if erasure != primary {
            tracing::error!(
                topic = %self.topic,
                partitions = erasure,
                input = %self.primary,
                input_partitions = primary,
                "outputs.erasure: the erasure topic must have as many partitions as the input \
                 topic; requests on partitions without an input twin are not read, and others \
                 may reach an instance that does not hold the customer."
            );
        }
        self.partitions.store(erasure, Ordering::Relaxed);
        Some(erasure)
    }

    /// The partition count of `topic` (0: it does not exist), or `None`
    /// when the brokers did not answer.
    fn partition_count(&self, topic: &str) -> Option<usize> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(topic), METADATA_TIMEOUT)
            .ok()?;
        let found = metadata.topics().iter().find(|t| t.name() == topic)?;
        Some(if found.error().is_some() {
            0
        } else {
            found.partitions().len()
        })
    }
}

/// A consumer in the group's name that never joins it: it only reads what
/// it is assigned, and never commits.
fn reader_config(config: &Config) -> ClientConfig {
    let kafka = &config.kafka;
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", &kafka.group_id)
        .set("client.id", &kafka.client_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("statistics.interval.ms", "5000");
    for (name, value) in kafka.client_properties(&kafka.consumer_properties) {
        client.set(name, value);
    }
    client
}
