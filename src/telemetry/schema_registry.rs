//! Schema registry metrics: every request by operation and outcome, every
//! look-up of a schema id not known locally by how it ended, and the
//! records waiting for look-ups.
//!
//! The label sets are the closed enums below, which the schema registry
//! client reports in ([`crate::registry`] re-exports them); the handles
//! are resolved here once, so counting is an index and an atomic add.

use prometheus::{IntCounter, IntGauge};

use super::registry::{Made, Reg};

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

/// The calls journeyd makes, as metric labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `GET /schemas/ids/{id}`.
    GetSchema,
    /// `POST /subjects/{subject}/versions`.
    Register,
}

impl Operation {
    /// Every operation, for pre-resolving metric handles.
    pub const ALL: [Operation; 2] = [Operation::GetSchema, Operation::Register];

    /// The stable metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Operation::GetSchema => "get_schema",
            Operation::Register => "register",
        }
    }
}

/// How a request ended, as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A usable answer.
    Ok,
    /// See [`crate::registry::RegistryError::NotFound`].
    NotFound,
    /// See [`crate::registry::RegistryError::Refused`].
    Refused,
    /// See [`crate::registry::RegistryError::Unavailable`].
    Unavailable,
    /// See [`crate::registry::RegistryError::BadResponse`].
    BadResponse,
    /// See [`crate::registry::RegistryError::Unsupported`].
    Unsupported,
}

impl Outcome {
    /// Every outcome, for pre-resolving metric handles.
    pub const ALL: [Outcome; 6] = [
        Outcome::Ok,
        Outcome::NotFound,
        Outcome::Refused,
        Outcome::Unavailable,
        Outcome::BadResponse,
        Outcome::Unsupported,
    ];

    /// The stable metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::NotFound => "not_found",
            Outcome::Refused => "refused",
            Outcome::Unavailable => "unavailable",
            Outcome::BadResponse => "bad_response",
            Outcome::Unsupported => "unsupported",
        }
    }
}

/// How one look-up of an id not known locally ended; a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupResult {
    /// The schema was fetched and is now known.
    Fetched,
    /// The registry does not know the id or its schema cannot be read
    /// (now, or remembered from an earlier look-up): dead-lettered.
    Unknown,
    /// The registry could not be reached or refused: dead-lettered.
    Unavailable,
    /// Too many unknown ids this second; not looked up: dead-lettered.
    Throttled,
}

impl LookupResult {
    /// Every result, for pre-resolving metric handles.
    pub const ALL: [LookupResult; 4] = [
        LookupResult::Fetched,
        LookupResult::Unknown,
        LookupResult::Unavailable,
        LookupResult::Throttled,
    ];

    /// The stable metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            LookupResult::Fetched => "fetched",
            LookupResult::Unknown => "unknown",
            LookupResult::Unavailable => "unavailable",
            LookupResult::Throttled => "throttled",
        }
    }
}
