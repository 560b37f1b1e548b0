//! journeyd: a real-time customer-journey processor.
//!
//! # Layout
//!
//! Data flows one way: **source -> decode -> engine -> sinks**.
//!
//! - [`model`]: the shared vocabulary: event time, touchpoints, stages and
//!   the derived outputs.
//! - [`config`]: `journeyd.toml` as data (stages, rules, time, churn model),
//!   environment overrides and validation that names every offending key.
//! - [`codec`]: bytes -> [`model::Touchpoint`]: JSON, Avro (plain, object
//!   container files, Confluent wire format) and input validation. Every
//!   rejected record carries an [`codec::InvalidReason`].
//! - [`registry`]: the Confluent Schema Registry client: writer schemas
//!   looked up by id for the decoders, output schemas registered at
//!   start-up.
//! - [`engine`]: the pure journey engine. Touchpoints and time go in, derived
//!   outputs come out; no I/O, no clock reads, no async. Inside: per-customer
//!   state, compiled rules, the stage machine, watermarks, the event-time
//!   reorder buffer, the timer index, funnel windows and churn risk.
//! - [`source`]: the Kafka consumer and its rebalance handshake, and the
//!   reader of the erasure topic that follows its assignment.
//! - [`sink`]: the Kafka producer; delivery reports become acks.
//! - [`kafka`]: the one client context of every Kafka consumer and
//!   producer (logs without secrets, lag, callbacks).
//! - [`runtime`]: `journeyd run`: the processing thread, the pipeline from
//!   record to derived records, commits behind acknowledgements, wiring.
//! - [`replay`]: the engine fed from a file, writing NDJSON.
//! - [`tools`]: the synthetic workload generator.
//! - [`telemetry`]: Prometheus metrics and the named events that move them.
//! - [`http`]: `/metrics`, `/healthz`, `/readyz` and `/customers/{id}`
//!   (look-up and erasure).
//! - [`cli`]: the `journeyd` command line.
//! - [`clock`]: the only place that reads clocks.

pub mod cli;
pub mod clock;
pub mod codec;
pub mod config;
pub mod engine;
pub mod http;
pub mod kafka;
pub mod model;
pub mod registry;
pub mod replay;
pub mod runtime;
pub mod sink;
pub mod source;
pub mod telemetry;
pub mod tools;
