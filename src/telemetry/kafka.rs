//! Kafka-side metrics: consumer lag, rebalances, consumer errors and output
//! deliveries.
//!
//! Partition labels are bounded by the topics' partition counts, and a
//! revoked partition's lag series is removed so that an instance only
//! exports the partitions it owns.

use std::sync::OnceLock;

use prometheus::{IntCounter, IntCounterVec, IntGaugeVec};

use super::Metrics;
use super::registry::{Made, Reg};

/// Consumer and producer metrics.
pub(super) struct KafkaMetrics {
    pub lag: IntGaugeVec,
    /// `journeyd_rebalances_total{kind="assigned"}`.
    pub assigned: IntCounter,
    /// `journeyd_rebalances_total{kind="revoked"}`.
    pub revoked: IntCounter,
    /// `journeyd_rebalances_total{kind="lost"}`: revocations of partitions
    /// the group had already given to another member.
    pub lost: IntCounter,
    pub consumer_errors: IntCounter,
    pub outputs: IntCounterVec,
    pub delivery_errors: IntCounterVec,
    /// The delivery counters of the configured output topics, resolved
    /// once at start-up ([`Metrics::resolve_output_topics`]): a delivery
    /// report counts with an atomic add, no label look-up.
    resolved: OnceLock<Vec<(String, OutputCounters)>>,
}

impl KafkaMetrics {
    pub fn new(r: &Reg<'_>) -> Made<Self> {
        let rebalances = r.counter_vec(
            "journeyd_rebalances_total",
            "Consumer-group rebalance callbacks, by kind.",
            &["kind"],
        )?;
        Ok(KafkaMetrics {
            lag: r.gauge_vec(
                "journeyd_consumer_lag",
                "Messages between the committed offset and the high watermark, per partition.",
                &["topic", "partition"],
            )?,
            assigned: rebalances.with_label_values(&["assigned"]),
            revoked: rebalances.with_label_values(&["revoked"]),
            lost: rebalances.with_label_values(&["lost"]),
            consumer_errors: r.counter(
                "journeyd_consumer_errors_total",
                "Errors reported by the Kafka consumer.",
            )?,
            outputs: r.counter_vec(
                "journeyd_outputs_total",
                "Derived events acknowledged by Kafka, by topic.",
                &["topic"],
            )?,
            delivery_errors: r.counter_vec(
                "journeyd_output_delivery_errors_total",
                "Derived events Kafka failed to acknowledge, by topic.",
                &["topic"],
            )?,
            resolved: OnceLock::new(),
        })
    }
}

/// Pre-resolved counters of one output topic.
#[derive(Clone, Debug)]
pub struct OutputCounters {
    /// `journeyd_outputs_total{topic}`.
    pub delivered: IntCounter,
    /// `journeyd_output_delivery_errors_total{topic}`.
    pub failed: IntCounter,
}

impl Metrics {
    /// Pre-resolved delivery counters for an output topic (resolve once per
    /// topic at start-up, then count per acknowledgement).
    pub fn output_counters(&self, topic: &str) -> OutputCounters {
        OutputCounters {
            delivered: self.kafka.outputs.with_label_values(&[topic]),
            failed: self.kafka.delivery_errors.with_label_values(&[topic]),
        }
    }

    /// Resolves the delivery counters of `topics` (the topics of
    /// `[outputs]`; their series start at 0) once, for [`Metrics::output_delivered`] and
    /// [`Metrics::output_delivery_failed`]. Only the first call counts.
    pub fn resolve_output_topics<'a>(&self, topics: impl IntoIterator<Item = &'a str>) {
        let resolved = (topics.into_iter())
            .map(|topic| (topic.to_owned(), self.output_counters(topic)))
            .collect();
        let _ = self.kafka.resolved.set(resolved);
    }

    /// The resolved counters of `topic`, if it was resolved.
    fn resolved(&self, topic: &str) -> Option<&OutputCounters> {
        let resolved = self.kafka.resolved.get()?;
        resolved.iter().find(|(t, _)| t == topic).map(|(_, c)| c)
    }

    /// Kafka acknowledged a record of output `topic`.
    pub fn output_delivered(&self, topic: &str) {
        match self.resolved(topic) {
            Some(counters) => counters.delivered.inc(),
            // Not resolved at start-up (the changelog's failures, tests):
            // resolved now, the slow path.
            None => self.kafka.outputs.with_label_values(&[topic]).inc(),
        }
    }

    /// A record of output `topic` was not delivered.
    pub fn output_delivery_failed(&self, topic: &str) {
        match self.resolved(topic) {
            Some(counters) => counters.failed.inc(),
            None => self.kafka.delivery_errors.with_label_values(&[topic]).inc(),
        }
    }

    /// Sets the lag of one input partition.
    pub fn set_consumer_lag(&self, topic: &str, partition: i32, lag: i64) {
        let partition = partition.to_string();
        self.kafka
            .lag
            .with_label_values(&[topic, partition.as_str()])
            .set(lag);
    }

    /// The lag of every partition a consumer's statistics report (both
    /// the group member's and the erasure reader's).
    pub fn observe_consumer_statistics(&self, statistics: &rdkafka::statistics::Statistics) {
        for (topic, stats) in &statistics.topics {
            for (&partition, p) in &stats.partitions {
                if partition >= 0 && p.consumer_lag >= 0 {
                    self.set_consumer_lag(topic, partition, p.consumer_lag);
                }
            }
        }
    }

    /// Drops the lag series of a partition this instance no longer owns.
    pub fn remove_consumer_lag(&self, topic: &str, partition: i32) {
        let partition = partition.to_string();
        // Absent when no lag was ever reported for it: nothing to remove.
        let _ = self
            .kafka
            .lag
            .remove_label_values(&[topic, partition.as_str()]);
    }
}
