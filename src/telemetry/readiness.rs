//! Whether this instance is ready to serve: the state behind `/readyz`.
//!
//! The driver thread writes it (partitions assigned, restore progress,
//! consuming, stopping); the HTTP side (`/readyz`) and the metrics
//! (`journeyd_ready` and the restore gauges, [`Metrics::observe_readiness`],
//! at the end of this file) read it. It is a handful of atomics
//! behind an `Arc`: no lock, so neither side ever waits for the other. The
//! values are independent and read with relaxed ordering, so a snapshot may
//! mix two neighbouring moments, which a probe polled every few seconds
//! does not notice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use serde::Serialize;

use prometheus::{IntCounter, IntGauge};

use super::Metrics;
use super::metrics::gauge_value;
use super::registry::{Made, Reg};

/// Shared readiness state. Clones share the same state.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<Inner>);

/// The atomics; see [`Readiness`]'s methods for their meaning.
#[derive(Debug, Default)]
struct Inner {
    consuming: AtomicBool,
    stopping: AtomicBool,
    assigned: AtomicU64,
    restoring: AtomicU64,
    restored_records: AtomicU64,
}

/// Why the instance is not ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotReady {
    /// Shutting down: load balancers should drain.
    Stopping,
    /// State of some assigned partitions is still being restored.
    Restoring,
    /// No partition assigned yet (the group has not rebalanced).
    NoPartitionsAssigned,
    /// Partitions are assigned but consumption has not started.
    Starting,
}

/// One reading of the readiness state, as `/readyz` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ReadinessSnapshot {
    /// Whether `/readyz` answers 200.
    pub ready: bool,
    /// Why not, when not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<NotReady>,
    /// Partition and restore counts.
    #[serde(flatten)]
    pub progress: RestoreProgress,
}

impl Readiness {
    /// A fresh state: not consuming, nothing assigned.
    pub fn new() -> Self {
        Readiness::default()
    }

    /// The driver is (or is no longer) consuming: set once its first
    /// assignment has been handled.
    pub fn set_consuming(&self, consuming: bool) {
        self.0.consuming.store(consuming, Relaxed);
    }

    /// Shutdown has begun; the instance stays not ready from now on.
    pub fn set_stopping(&self) {
        self.0.stopping.store(true, Relaxed);
    }

    /// Input partitions currently assigned to this instance.
    pub fn set_assigned_partitions(&self, partitions: u64) {
        self.0.assigned.store(partitions, Relaxed);
    }

    /// Assigned partitions whose state is still being restored.
    pub fn set_restoring_partitions(&self, partitions: u64) {
        self.0.restoring.store(partitions, Relaxed);
    }

    /// Counts changelog records restored.
    pub fn add_restored_records(&self, records: u64) {
        self.0.restored_records.fetch_add(records, Relaxed);
    }

    /// Reads the state.
    pub fn snapshot(&self) -> ReadinessSnapshot {
        let i = &self.0;
        let progress = RestoreProgress {
            assigned_partitions: i.assigned.load(Relaxed),
            restoring_partitions: i.restoring.load(Relaxed),
            restored_records: i.restored_records.load(Relaxed),
        };
        let reason = if i.stopping.load(Relaxed) {
            Some(NotReady::Stopping)
        } else if progress.restoring_partitions > 0 {
            Some(NotReady::Restoring)
        } else if i.consuming.load(Relaxed) {
            None
        } else if progress.assigned_partitions == 0 {
            Some(NotReady::NoPartitionsAssigned)
        } else {
            Some(NotReady::Starting)
        };
        ReadinessSnapshot {
            ready: reason.is_none(),
            reason,
            progress,
        }
    }
}

/// Restore progress as the readiness state reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RestoreProgress {
    /// Input partitions assigned to this instance.
    pub assigned_partitions: u64,
    /// Of those, partitions whose state is still being restored.
    pub restoring_partitions: u64,
    /// Changelog records restored since start-up.
    pub restored_records: u64,
}

/// Readiness and restore progress, copied from the shared readiness state.
pub(super) struct ReadinessMetrics {
    pub ready: IntGauge,
    pub assigned_partitions: IntGauge,
    pub restoring: IntGauge,
    pub restored_records: IntCounter,
}

impl ReadinessMetrics {
    pub fn new(r: &Reg<'_>) -> Made<Self> {
        Ok(ReadinessMetrics {
            ready: r.gauge("journeyd_ready", "1 when /readyz reports ready, else 0.")?,
            assigned_partitions: r.gauge(
                "journeyd_assigned_partitions",
                "Input partitions assigned to this instance.",
            )?,
            restoring: r.gauge(
                "journeyd_restore_partitions_restoring",
                "Assigned partitions whose state is still being restored.",
            )?,
            restored_records: r.counter(
                "journeyd_restore_records_total",
                "Changelog records restored into customer state.",
            )?,
        })
    }
}

impl Metrics {
    /// Publishes readiness and restore progress (the HTTP layer calls this
    /// before every scrape, from the shared readiness state). The restored
    /// records counter follows the state's running total.
    pub fn observe_readiness(&self, ready: bool, progress: RestoreProgress) {
        let m = &self.readiness;
        m.ready.set(i64::from(ready));
        m.assigned_partitions
            .set(gauge_value(progress.assigned_partitions));
        m.restoring.set(gauge_value(progress.restoring_partitions));
        let seen = m.restored_records.get();
        m.restored_records
            .inc_by(progress.restored_records.saturating_sub(seen));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_consuming_restored_and_not_stopping() {
        let r = Readiness::new();
        assert_eq!(r.snapshot().reason, Some(NotReady::NoPartitionsAssigned));
        r.set_assigned_partitions(4);
        assert_eq!(r.snapshot().reason, Some(NotReady::Starting));
        r.set_restoring_partitions(2);
        r.set_consuming(true);
        assert_eq!(r.snapshot().reason, Some(NotReady::Restoring));
        r.set_restoring_partitions(0);
        assert!(r.snapshot().ready);
        r.set_stopping();
        assert_eq!(r.snapshot().reason, Some(NotReady::Stopping));
    }

    #[test]
    fn clones_share_state_and_records_accumulate() {
        let r = Readiness::new();
        let driver = r.clone();
        driver.add_restored_records(10);
        driver.add_restored_records(5);
        assert_eq!(r.snapshot().progress.restored_records, 15);
    }

    #[test]
    fn snapshot_serializes_flat() {
        let r = Readiness::new();
        r.set_assigned_partitions(3);
        r.set_restoring_partitions(1);
        let json = serde_json::to_value(r.snapshot()).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "ready": false,
                "reason": "restoring",
                "assigned_partitions": 3,
                "restoring_partitions": 1,
                "restored_records": 0
            })
        );
    }
}
