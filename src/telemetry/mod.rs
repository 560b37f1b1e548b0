//! Telemetry: the Prometheus metrics and the named events that move them.
//!
//! - [`Metrics`] owns the registry and every `journeyd_*` metric, with
//!   low-cardinality labels only; `/metrics` encodes it
//!   ([`Metrics::encode_text`]).
//! - [`Metrics::observe_engine`] publishes the engine's plain counters
//!   from a periodic [`EngineSnapshot`]: the engine itself never touches
//!   Prometheus.
//! - [`events`]: one struct per happening (`InvalidRecord`,
//!   `PartitionsAssigned`, ...) whose `emit` writes the log line and the
//!   metric together.
//! - [`Readiness`]: whether the instance is ready (`/readyz`,
//!   `journeyd_ready`), written by the driver thread and the consumer.
//! - [`KafkaLog`]: librdkafka's own log lines, forwarded with the values of
//!   secret properties scrubbed.
//!
//! Nothing here reads a clock, holds customer ids in labels or logs secrets.

mod changelog;
mod consumed;
mod convert_time;
mod engine;
pub mod events;
mod funnel;
mod kafka;
mod kafka_log;
mod metrics;
mod readiness;
mod registry;
mod schema_registry;

#[cfg(test)]
mod tests;

pub use changelog::RESTORE_ERROR_REASONS;
pub use consumed::{ConsumedCounters, OTHER_ACTION, rule_actions};
pub use engine::{ENTRY_LABEL, EngineSnapshot};
pub use events::InternalEvent;
pub use kafka::OutputCounters;
pub use kafka_log::KafkaLog;
pub use metrics::{Metrics, MetricsError};
pub use readiness::{NotReady, Readiness, ReadinessSnapshot, RestoreProgress};
pub use schema_registry::{LookupResult, Operation, Outcome};
