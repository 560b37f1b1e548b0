//! The producer seam, and Kafka transactions through it (exactly-once
//! mode, docs/guarantees.md#exactly-once-mode).
//!
//! [`super::kafka::Sink`] sends through a [`Producing`]: librdkafka's
//! threaded producer in the service, or a wrapper around it that a test
//! installs with a [`ProducerHook`] to record the calls and inject
//! failures. The transactional calls return a [`TxnError`] that says how
//! the caller recovers ([`Recovery`]), following librdkafka's
//! classification of transactional errors:
//!
//! | librdkafka says      | [`Recovery`] | what the pipeline does                                 |
//! |----------------------|--------------|--------------------------------------------------------|
//! | retriable            | `Retry`      | the same call again                                    |
//! | `txn_requires_abort` | `Abort`      | abort, rewind to the last committed offsets, rebuild   |
//! | fatal (fenced, ...)  | `Renew`      | a new producer, `init_transactions`, rewind, rebuild   |
//!
//! Any other error of a transactional call is treated as abortable.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::TopicPartitionList;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use super::kafka::{OutputMeta, SinkContext};

/// A record as the sink hands it to its producer.
pub type Record<'a> = BaseRecord<'a, [u8], [u8], Box<OutputMeta>>;

/// Wraps the producer the sink creates (tests record the calls through it
/// and inject failures). Called again for every producer the sink renews.
pub type ProducerHook =
    Arc<dyn Fn(ThreadedProducer<SinkContext>) -> Box<dyn Producing> + Send + Sync>;

/// How a failed transactional call is recovered from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Call again: the transaction is still good.
    Retry,
    /// Abort the transaction; the producer is still good.
    Abort,
    /// The producer is unusable (fenced by a newer one with the same
    /// `transactional.id`, or another fatal error): create a new one.
    Renew,
}

/// A failed transactional call.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct TxnError {
    /// How to recover.
    pub recovery: Recovery,
    /// librdkafka's error.
    pub error: KafkaError,
}

impl TxnError {
    /// librdkafka's error, classified by its transactional flags.
    pub fn classify(error: KafkaError) -> TxnError {
        let recovery = match &error {
            KafkaError::Transaction(e) if e.is_fatal() => Recovery::Renew,
            KafkaError::Transaction(e) if e.txn_requires_abort() => Recovery::Abort,
            KafkaError::Transaction(e) if e.is_retriable() => Recovery::Retry,
            _ => Recovery::Abort,
        };
        TxnError { recovery, error }
    }
}

/// What the sink needs of a producer: sending with backpressure, flushing,
/// and the transactional calls.
pub trait Producing: Send + Sync {
    /// Queues a record; gives it back with the error when it is refused
    /// (a full queue included).
    #[allow(
        clippy::result_large_err,
        reason = "the signature of librdkafka's send: a refused record comes back uncopied"
    )]
    fn send<'a>(&self, record: Record<'a>) -> Result<(), (KafkaError, Record<'a>)>;

    /// Waits until every queued record is delivered or `timeout` passes.
    fn flush(&self, timeout: Duration) -> KafkaResult<()>;

    /// Records queued or in flight.
    fn in_flight_count(&self) -> i32;

    /// Registers the `transactional.id`, fencing older producers with it
    /// and aborting their open transaction.
    fn init_transactions(&self, timeout: Duration) -> Result<(), TxnError>;

    /// Opens a transaction (local: nothing is sent until a record is).
    fn begin_transaction(&self) -> Result<(), TxnError>;

    /// Adds consumer offsets to the open transaction, fenced by the
    /// group's generation.
    fn send_offsets_to_transaction(
        &self,
        offsets: &TopicPartitionList,
        group: &ConsumerGroupMetadata,
        timeout: Duration,
    ) -> Result<(), TxnError>;

    /// Delivers every record of the open transaction and commits it.
    fn commit_transaction(&self, timeout: Duration) -> Result<(), TxnError>;

    /// Aborts the open transaction: its records are never visible to
    /// `read_committed` consumers and its offsets are not committed.
    fn abort_transaction(&self, timeout: Duration) -> Result<(), TxnError>;

    /// The group's committed offsets of `partitions` when the producer
    /// stands in for the transaction coordinator and keeps them itself (a
    /// test double); `None`, as librdkafka's producer answers, means: ask
    /// the group coordinator through the consumer.
    fn committed_offsets(
        &self,
        _partitions: &TopicPartitionList,
    ) -> Option<KafkaResult<TopicPartitionList>> {
        None
    }
}

impl Producing for ThreadedProducer<SinkContext> {
    fn send<'a>(&self, record: Record<'a>) -> Result<(), (KafkaError, Record<'a>)> {
        ThreadedProducer::send(self, record)
    }

    fn flush(&self, timeout: Duration) -> KafkaResult<()> {
        Producer::flush(self, timeout)
    }

    fn in_flight_count(&self) -> i32 {
        Producer::in_flight_count(self)
    }

    fn init_transactions(&self, timeout: Duration) -> Result<(), TxnError> {
        Producer::init_transactions(self, timeout).map_err(TxnError::classify)
    }

    fn begin_transaction(&self) -> Result<(), TxnError> {
        Producer::begin_transaction(self).map_err(TxnError::classify)
    }

    fn send_offsets_to_transaction(
        &self,
        offsets: &TopicPartitionList,
        group: &ConsumerGroupMetadata,
        timeout: Duration,
    ) -> Result<(), TxnError> {
        Producer::send_offsets_to_transaction(self, offsets, group, timeout)
            .map_err(TxnError::classify)
    }

    fn commit_transaction(&self, timeout: Duration) -> Result<(), TxnError> {
        Producer::commit_transaction(self, timeout).map_err(TxnError::classify)
    }

    fn abort_transaction(&self, timeout: Duration) -> Result<(), TxnError> {
        Producer::abort_transaction(self, timeout).map_err(TxnError::classify)
    }
}
