//! State changelog metrics: records written, and restores (docs/guarantees.md#restore).
//!
//! Restore progress for `/readyz` (records read, partitions still
//! restoring) follows the shared readiness state ([`super::kafka`]); this
//! module adds what an operator asks after a restore: how many customers it
//! brought back, how long it took, which records could not be read, and
//! whether touchpoints a restored customer waited for were never read
//! again.

use std::time::Duration;

use prometheus::{Histogram, IntCounter, IntCounterVec};

use super::Metrics;
use super::registry::{Made, Reg};
use crate::engine::EngineStats;

/// Buckets of one partition's restore duration: a millisecond (an empty
/// changelog partition) to half an hour.
const RESTORE_BUCKETS: [f64; 14] = [
    0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
];

/// Why a changelog record was not restored: [`crate::engine::RestoreError`]
/// reasons, and a key that is not a customer id.
pub const RESTORE_ERROR_REASONS: [&str; 7] = [
    "invalid_key",
    "unknown_stage",
    "empty",
    "unknown_version",
    "truncated",
    "invalid",
    "trailing_bytes",
];

/// Changelog and restore metrics.
pub(super) struct ChangelogMetrics {
    /// `journeyd_changelog_records_total{kind="state"}`.
    states: IntCounter,
    /// `journeyd_changelog_records_total{kind="tombstone"}`.
    tombstones: IntCounter,
    /// `journeyd_restore_customers_total`.
    customers: IntCounter,
    /// `journeyd_restore_duration_seconds`.
    duration: Histogram,
    /// `journeyd_restore_errors_total{reason}`.
    errors: IntCounterVec,
    /// Its series by [`RESTORE_ERROR_REASONS`], resolved once.
    error_reasons: Vec<IntCounter>,
    /// `journeyd_restore_replay_missed_total`, following the engine's count.
    replay_missed: IntCounter,
    /// `journeyd_transactions_total{result}`, by [`TRANSACTION_RESULTS`].
    transactions: [IntCounter; 4],
}

/// How a transaction ended (exactly-once mode): committed; aborted (the
/// pipeline rewound to the last commit); aborted with a new producer
/// (after a fatal error such as fencing); in doubt (its commit failed
/// without saying whether it took effect: it is counted again once the
/// committed offsets tell, as committed or renewed).
pub const TRANSACTION_RESULTS: [&str; 4] = ["committed", "aborted", "renewed", "in_doubt"];

impl ChangelogMetrics {
    pub fn new(r: &Reg<'_>) -> Made<Self> {
        let records = r.counter_vec(
            "journeyd_changelog_records_total",
            "State changelog records acknowledged by Kafka, by kind (state or tombstone).",
            &["kind"],
        )?;
        let errors = r.counter_vec(
            "journeyd_restore_errors_total",
            "Changelog records that could not be restored (the customer starts afresh), by reason.",
            &["reason"],
        )?;
        let error_reasons = (RESTORE_ERROR_REASONS.iter())
            .map(|reason| errors.with_label_values(&[reason]))
            .collect();
        let transactions = r.counter_vec(
            "journeyd_transactions_total",
            "Kafka transactions in exactly-once mode, by how they ended: committed, aborted \
             (rewound to the last commit), renewed (aborted, with a new producer), in_doubt \
             (the commit's outcome unknown until the committed offsets tell; counted again \
             then).",
            &["result"],
        )?;
        Ok(ChangelogMetrics {
            transactions: TRANSACTION_RESULTS.map(|r| transactions.with_label_values(&[r])),
            states: records.with_label_values(&["state"]),
            tombstones: records.with_label_values(&["tombstone"]),
            error_reasons,
            customers: r.counter(
                "journeyd_restore_customers_total",
                "Customers held after restoring their partition from the changelog.",
            )?,
            duration: r.histogram(
                "journeyd_restore_duration_seconds",
                "How long restoring one partition's state from the changelog took.",
                &RESTORE_BUCKETS,
            )?,
            errors,
            replay_missed: r.counter(
                "journeyd_restore_replay_missed_total",
                "Touchpoints a restored customer still waited for that were not read again: \
                 their effect is lost.",
            )?,
        })
    }
}

impl Metrics {
    /// Kafka acknowledged a changelog record (a tombstone or a state).
    pub fn changelog_record_acked(&self, tombstone: bool) {
        let c = &self.changelog;
        if tombstone { &c.tombstones } else { &c.states }.inc();
    }

    /// One partition's restore finished.
    pub(super) fn observe_restore(&self, customers: u64, elapsed: Duration) {
        self.changelog.customers.inc_by(customers);
        self.changelog.duration.observe(elapsed.as_secs_f64());
    }

    /// A transaction ended with `result`, one of [`TRANSACTION_RESULTS`].
    pub(super) fn transaction_ended(&self, result: &str) {
        if let Some(i) = TRANSACTION_RESULTS.iter().position(|r| *r == result) {
            self.changelog.transactions[i].inc();
        }
    }

    /// A changelog record was skipped for `reason`.
    pub(super) fn restore_error(&self, reason: &str) {
        let c = &self.changelog;
        match RESTORE_ERROR_REASONS.iter().position(|r| *r == reason) {
            Some(i) => c.error_reasons[i].inc(),
            None => c.errors.with_label_values(&[reason]).inc(),
        }
    }

    /// Follows the engine's count of touchpoints awaited and never read
    /// again (the engine lives as long as the process, so its count only
    /// grows).
    pub fn observe_changelog(&self, stats: &EngineStats) {
        let c = &self.changelog.replay_missed;
        c.inc_by(stats.replay_missed.saturating_sub(c.get()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RestoreError;
    use crate::engine::snapshot::DecodeError;

    #[test]
    fn every_restore_error_has_a_labelled_series() {
        let errors = [
            RestoreError::UnknownStage(9),
            RestoreError::Decode(DecodeError::Empty),
            RestoreError::Decode(DecodeError::UnknownVersion(7)),
            RestoreError::Decode(DecodeError::Truncated("ring")),
            RestoreError::Decode(DecodeError::Invalid("flags")),
            RestoreError::Decode(DecodeError::Trailing(3)),
        ];
        for error in errors {
            assert!(RESTORE_ERROR_REASONS.contains(&error.reason()), "{error}");
        }
        let metrics = Metrics::new().unwrap();
        metrics.restore_error("unknown_stage");
        metrics.changelog_record_acked(true);
        metrics.observe_restore(12, Duration::from_millis(5));
        let text = metrics.encode_text();
        for line in [
            "journeyd_restore_errors_total{reason=\"invalid_key\"} 0",
            "journeyd_restore_errors_total{reason=\"unknown_stage\"} 1",
            "journeyd_changelog_records_total{kind=\"tombstone\"} 1",
            "journeyd_restore_customers_total 12",
            "journeyd_restore_duration_seconds_count 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
