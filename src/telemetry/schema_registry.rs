//! Schema registry metrics: every request by operation and outcome, and
//! every look-up of a schema id not known locally by how it ended.
//!
//! Both label sets are closed enums of [`crate::registry`]; the handles are
//! resolved here once, so counting is an index and an atomic add.

use prometheus::IntCounter;

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
            "Records whose schema id was not known locally, by how its look-up ended \
             (all but \"fetched\" are dead-lettered as unknown_schema_id).",
            &["result"],
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
        })
    }

    /// The counter of `operation` requests that ended with `outcome`.
    pub fn request(&self, operation: Operation, outcome: Outcome) -> &IntCounter {
        let op = Operation::ALL.iter().position(|o| *o == operation);
        let outcome = Outcome::ALL.iter().position(|o| *o == outcome);
        &self.requests[op.unwrap_or_default()][outcome.unwrap_or_default()]
    }

    /// The counter of look-ups that ended with `result`.
    pub fn lookup(&self, result: LookupResult) -> &IntCounter {
        let i = LookupResult::ALL.iter().position(|r| *r == result);
        &self.lookups[i.unwrap_or_default()]
    }
}
