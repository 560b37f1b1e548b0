//! Named telemetry events: one struct per happening.
//!
//! Each event's [`InternalEvent::emit`] writes the log line and updates the
//! metric together, so the two never drift apart and a reader finds every
//! place a metric moves by searching for the event's name. Log lines put
//! their fields first and end with a capitalised sentence; nothing that
//! happens per touchpoint logs above DEBUG. Error texts go into logs only,
//! never into metric labels.

use std::fmt;
use std::time::Duration;

use super::Metrics;
use super::schema_registry::{LookupResult, Operation, Outcome};
use crate::codec::InvalidReason;
use crate::model::{ErasureSource, FunnelWindow};

/// Something that happened, to be logged and counted.
pub trait InternalEvent {
    /// Writes the log line and updates the metrics.
    fn emit(&self, metrics: &Metrics);
}

/// A Kafka topic partition, as the events name it.
pub type TopicPartition<'a> = (&'a str, i32);

/// Formats partitions as `topic/partition` separated by commas.
struct PartitionList<'a>(&'a [TopicPartition<'a>]);

impl fmt::Display for PartitionList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (topic, partition)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{topic}/{partition}")?;
        }
        Ok(())
    }
}

/// An input record was rejected and sent to the dead-letter topic.
#[derive(Clone, Copy, Debug)]
pub struct InvalidRecord<'a> {
    /// The metric label and DLQ header.
    pub reason: InvalidReason,
    /// What exactly was wrong; logged, never a label.
    pub detail: &'a str,
    /// Where the record came from.
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

impl InternalEvent for InvalidRecord<'_> {
    fn emit(&self, metrics: &Metrics) {
        tracing::debug!(
            reason = self.reason.as_str(),
            detail = self.detail,
            topic = self.topic,
            partition = self.partition,
            offset = self.offset,
            "Input record rejected to the dead-letter topic."
        );
        metrics.invalid(self.reason).inc();
    }
}

/// A customer was erased on request (docs/erasure.md). The customer id is
/// not logged: the audit topic is the record of who was erased.
#[derive(Clone, Copy, Debug)]
pub struct CustomerErasure<'a> {
    /// How the request arrived.
    pub source: ErasureSource,
    /// Whether this instance held the customer.
    pub state_found: bool,
    /// Where the request was read.
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

impl InternalEvent for CustomerErasure<'_> {
    fn emit(&self, metrics: &Metrics) {
        tracing::info!(
            source = self.source.as_str(),
            state_found = self.state_found,
            topic = self.topic,
            partition = self.partition,
            offset = self.offset,
            "Customer erased on request; the audit record follows."
        );
        metrics.erasures(self.source, self.state_found).inc();
    }
}

/// Kafka did not acknowledge a derived event.
#[derive(Clone, Copy, Debug)]
pub struct OutputDeliveryFailed<'a> {
    /// The output topic.
    pub topic: &'a str,
    /// The producer's error; logged, never a label.
    pub error: &'a (dyn std::error::Error + 'a),
}

impl InternalEvent for OutputDeliveryFailed<'_> {
    fn emit(&self, metrics: &Metrics) {
        tracing::warn!(
            topic = self.topic,
            error = %self.error,
            "Output delivery failed."
        );
        metrics.output_delivery_failed(self.topic);
    }
}

/// The consumer reported an error (the poll loop goes on).
#[derive(Clone, Copy, Debug)]
pub struct ConsumeFailed<'a> {
    /// The consumer's error; logged, never a label.
    pub error: &'a (dyn std::error::Error + 'a),
}

impl InternalEvent for ConsumeFailed<'_> {
    fn emit(&self, metrics: &Metrics) {
        tracing::warn!(error = %self.error, "Kafka consumer error.");
        metrics.kafka.consumer_errors.inc();
    }
}

/// A rebalance gave this instance partitions.
#[derive(Clone, Copy, Debug)]
pub struct PartitionsAssigned<'a> {
    /// The partitions newly assigned (incremental assignment).
    pub partitions: &'a [TopicPartition<'a>],
}

impl InternalEvent for PartitionsAssigned<'_> {
    fn emit(&self, metrics: &Metrics) {
        tracing::info!(
            count = self.partitions.len(),
            partitions = %PartitionList(self.partitions),
            "Partitions assigned."
        );
        metrics.kafka.assigned.inc();
    }
}

/// A rebalance took partitions away from this instance.
#[derive(Clone, Copy, Debug)]
pub struct PartitionsRevoked<'a> {
    /// The partitions revoked (incremental assignment).
    pub partitions: &'a [TopicPartition<'a>],
}

impl InternalEvent for PartitionsRevoked<'_> {
    fn emit(&self, metrics: &Metrics) {
        tracing::info!(
            count = self.partitions.len(),
            partitions = %PartitionList(self.partitions),
            "Partitions revoked."
        );
        metrics.kafka.revoked.inc();
        for (topic, partition) in self.partitions {
            metrics.remove_consumer_lag(topic, *partition);
        }
    }
}

/// Revoked partitions were lost: the group gave them to another member
/// while this one was cut off from it (missed session timeout), so
/// nothing of theirs is written any more (see `Pipeline::lose`).
#[derive(Clone, Copy, Debug)]
pub struct PartitionsLost<'a> {
    /// The partitions lost.
    pub partitions: &'a [TopicPartition<'a>],
}

impl InternalEvent for PartitionsLost<'_> {
    fn emit(&self, metrics: &Metrics) {
        tracing::warn!(
            count = self.partitions.len(),
            partitions = %PartitionList(self.partitions),
            "Partitions lost to another group member; their state is dropped without writing."
        );
        metrics.kafka.lost.inc();
    }
}

/// The state of one input partition was restored from its changelog
/// partition. The record and partition counts behind `/readyz` follow the
/// shared readiness state; this event adds the customers and the duration.
#[derive(Clone, Copy, Debug)]
pub struct RestoreCompleted<'a> {
    /// The input topic and partition whose state was restored.
    pub topic: &'a str,
    pub partition: i32,
    /// Changelog records read for it.
    pub records: u64,
    /// Customers held for it afterwards.
    pub customers: u64,
    /// How long the restore took.
    pub elapsed: Duration,
}

impl InternalEvent for RestoreCompleted<'_> {
    fn emit(&self, metrics: &Metrics) {
        tracing::info!(
            topic = self.topic,
            partition = self.partition,
            records = self.records,
            customers = self.customers,
            elapsed_ms = self.elapsed.as_millis() as u64,
            "Partition state restored."
        );
        metrics.observe_restore(self.customers, self.elapsed);
    }
}

/// A changelog record could not be restored and was skipped: its customer
/// starts afresh when their next touchpoint arrives.
#[derive(Clone, Copy, Debug)]
pub struct RestoreRecordSkipped<'a> {
    /// The metric label.
    pub reason: &'static str,
    /// What was wrong; logged, never a label.
    pub error: &'a (dyn std::error::Error + 'a),
    /// Where the record is.
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

impl InternalEvent for RestoreRecordSkipped<'_> {
    fn emit(&self, metrics: &Metrics) {
        tracing::error!(
            reason = self.reason,
            error = %self.error,
            topic = self.topic,
            partition = self.partition,
            offset = self.offset,
            "A changelog record cannot be restored; its customer starts afresh."
        );
        metrics.restore_error(self.reason);
    }
}

/// A funnel window closed and was emitted.
#[derive(Clone, Copy, Debug)]
pub struct FunnelWindowClosed<'a> {
    /// The window as published on `journey.funnel`.
    pub window: &'a FunnelWindow,
}

impl InternalEvent for FunnelWindowClosed<'_> {
    fn emit(&self, metrics: &Metrics) {
        tracing::debug!(
            window_start = self.window.window_start,
            active_customers = self.window.active_customers,
            late_events = self.window.late_events,
            "Funnel window closed."
        );
        metrics.observe_funnel_window(self.window);
    }
}

/// One request to the schema registry ended. Failures are logged at WARN
/// (but an unknown id, a property of the data, at DEBUG).
#[derive(Clone, Copy, Debug)]
pub struct SchemaRegistryRequest<'a> {
    /// What was asked.
    pub operation: Operation,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it failed; `None` when it succeeded.
    pub error: Option<&'a dyn std::error::Error>,
}

impl InternalEvent for SchemaRegistryRequest<'_> {
    fn emit(&self, metrics: &Metrics) {
        let operation = self.operation.as_str();
        match (self.outcome, self.error) {
            (Outcome::Ok, _) | (_, None) => {
                tracing::debug!(operation, "Schema registry request succeeded.");
            }
            (Outcome::NotFound, Some(error)) => {
                tracing::debug!(operation, %error, "Schema registry request found nothing.");
            }
            (_, Some(error)) => {
                tracing::warn!(operation, %error, "Schema registry request failed.");
            }
        }
        metrics
            .schema_registry
            .request(self.operation, self.outcome)
            .inc();
    }
}

/// A record's schema id was not known locally and was looked up.
#[derive(Clone, Copy, Debug)]
pub struct SchemaLookup {
    /// The schema id.
    pub id: u32,
    /// How the look-up ended.
    pub result: LookupResult,
}

impl InternalEvent for SchemaLookup {
    fn emit(&self, metrics: &Metrics) {
        tracing::debug!(
            id = self.id,
            result = self.result.as_str(),
            "Schema id looked up."
        );
        metrics.schema_registry.lookup(self.result).inc();
    }
}

/// A writer schema was fetched from the registry and is kept from now on.
#[derive(Clone, Copy, Debug)]
pub struct SchemaFetched {
    /// The schema id.
    pub id: u32,
}

impl InternalEvent for SchemaFetched {
    fn emit(&self, _metrics: &Metrics) {
        tracing::info!(
            id = self.id,
            "Writer schema fetched from the schema registry."
        );
    }
}

/// The schema registry could not be reached even after retrying: records
/// with schema ids not known locally are dead-lettered until it answers.
#[derive(Clone, Copy, Debug)]
pub struct SchemaRegistryUnreachable<'a> {
    /// The last failure.
    pub error: &'a dyn std::error::Error,
    /// How long the look-up was retried.
    pub retried_for: Duration,
    /// When the registry is asked again.
    pub probe_in: Duration,
}

impl InternalEvent for SchemaRegistryUnreachable<'_> {
    fn emit(&self, _metrics: &Metrics) {
        tracing::error!(
            error = %self.error,
            retried_ms = self.retried_for.as_millis() as u64,
            probe_in_ms = self.probe_in.as_millis() as u64,
            "The schema registry is unreachable; records with schema ids not seen before go \
             to the dead-letter topic until it answers."
        );
    }
}

/// The schema registry answered again after being unreachable.
#[derive(Clone, Copy, Debug)]
pub struct SchemaRegistryRecovered;

impl InternalEvent for SchemaRegistryRecovered {
    fn emit(&self, _metrics: &Metrics) {
        tracing::info!("The schema registry answers again.");
    }
}

/// An output schema was registered (or found registered) at start-up.
#[derive(Clone, Copy, Debug)]
pub struct OutputSchemaRegistered<'a> {
    /// The subject, `<topic>-value`.
    pub subject: &'a str,
    /// The id written in the records of that topic.
    pub id: u32,
}

impl InternalEvent for OutputSchemaRegistered<'_> {
    fn emit(&self, _metrics: &Metrics) {
        tracing::info!(
            subject = self.subject,
            id = self.id,
            "Output schema registered."
        );
    }
}

/// A transaction committed (exactly-once mode).
#[derive(Clone, Copy, Debug)]
pub struct TransactionCommitted;

impl InternalEvent for TransactionCommitted {
    fn emit(&self, metrics: &Metrics) {
        metrics.transaction_ended("committed");
    }
}

/// A transaction's commit failed without saying whether it took effect
/// (exactly-once mode): input waits until the group's committed offsets
/// tell, and the transaction is then counted again as committed or
/// renewed.
#[derive(Clone, Copy, Debug)]
pub struct TransactionInDoubt<'a> {
    /// Why.
    pub error: &'a (dyn std::error::Error + 'a),
}

impl InternalEvent for TransactionInDoubt<'_> {
    fn emit(&self, metrics: &Metrics) {
        tracing::warn!(
            error = %self.error,
            "Transaction commit in doubt: replacing the producer, then reading the committed \
             offsets to learn whether it committed."
        );
        metrics.transaction_ended("in_doubt");
    }
}

/// A transaction failed and was aborted (exactly-once mode): the pipeline
/// rewinds to the last commit, with a new producer when `renewed`.
#[derive(Clone, Copy, Debug)]
pub struct TransactionAborted<'a> {
    /// The call that failed: `send_offsets`, `commit`, `abort`, ...
    pub call: &'static str,
    /// Why.
    pub error: &'a (dyn std::error::Error + 'a),
    /// Whether the producer is replaced.
    pub renewed: bool,
}

impl InternalEvent for TransactionAborted<'_> {
    fn emit(&self, metrics: &Metrics) {
        tracing::warn!(
            call = self.call,
            error = %self.error,
            renewed = self.renewed,
            "Transaction failed: aborted; rewinding to the last commit and restoring state."
        );
        metrics.transaction_ended(if self.renewed { "renewed" } else { "aborted" });
    }
}
