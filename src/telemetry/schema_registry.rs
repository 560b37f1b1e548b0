//! Schema registry metrics: every request by operation and outcome, every
//! look-up of a schema id not known locally by how it ended, and the
//! records waiting for look-ups.
//!
//! Both label sets are closed enums of [`crate::registry`]; the handles are
//! resolved here once, so counting is an index and an atomic add.

use prometheus::{IntCounter, IntGauge};

use super::registry::{Made, Reg};
use crate::registry::{LookupResult, Operation, Outcome};

/// Pre-resolved schema registry counters.
pub(super) struct SchemaRegistryMetrics {
    /// `journeyd_schema_registry_requests_total{operation,outcome}`,
    /// indexed like [`Operation::ALL`], then [`Outcome::ALL`].
    requests: Vec<Vec<IntCounter>>,
    /// `journeyd_schema_lookups_total{result}`, indexed like
    /// [`LookupResult::ALL`].
    lookups: Vec<IntCounter>,
    /// `journeyd_schema_held_records`.
    held: IntGauge,
}

impl SchemaRegistryMetrics {
    pub fn new(r: &Reg<'_>) -> Made<Self> {
        let requests = r.counter_vec(
            "journeyd_schema_registry_requests_total",
            "Requests to the schema registry, by operation and outcome.",
            &["operation", "outcome"],
        )?;
        let lookups = r.counter_vec(
            "journeyd_schema_lookups_total",
            "Look-ups of schema ids not known locally, and records dead-lettered without \
             one, by result (all but \"fetched\" dead-letter as unknown_schema_id).",
            &["result"],
        )?;
        let held = r.gauge(
            "journeyd_schema_held_records",
            "Records waiting for the look-up of their schema id (with those behind them in \
             their partition), over all partitions.",
        )?;
        Ok(SchemaRegistryMetrics {
            requests: Operation::ALL
                .iter()
                .map(|op| {
                    Outcome::ALL
                        .iter()
                        .map(|outcome| requests.with_label_values(&[op.as_str(), outcome.as_str()]))
                        .collect()
                })
                .collect(),
            lookups: LookupResult::ALL
                .iter()
                .map(|result| lookups.with_label_values(&[result.as_str()]))
                .collect(),
            held,
        })
    }

    /// The counter of `operation` requests that ended with `outcome`.
    pub fn request(&self, operation: Operation, outcome: Outcome) -> &IntCounter {
        let op = Operation::ALL.iter().position(|o| *o == operation);
        let outcome = Outcome::ALL.iter().position(|o| *o == outcome);
        &self.requests[op.unwrap_or_default()][outcome.unwrap_or_default()]
    }

    /// Sets how many records wait for schema look-ups.
    pub fn set_held(&self, records: usize) {
        self.held.set(i64::try_from(records).unwrap_or(i64::MAX));
    }

    /// The counter of look-ups that ended with `result`.
    pub fn lookup(&self, result: LookupResult) -> &IntCounter {
        let i = LookupResult::ALL.iter().position(|r| *r == result);
        &self.lookups[i.unwrap_or_default()]
    }
}
