//! The runtime shell around the pure engine: `journeyd run`
//! (docs/architecture.md is the map).
//!
//! - [`service`]: wiring of metrics, HTTP, producer, consumer and driver thread,
//!   and shutdown.
//! - [`driver`]: the single processing thread: poll, process, periodic work.
//! - [`pipeline`]: one record in, derived records out, commits behind acks;
//!   it puts together:
//!   - [`intake`]: routing, decoding (one codec entry point) and dead
//!     letters of consumed records, and the records held for schema
//!     look-ups;
//!   - [`outbox`]: encoding, topics, sending, re-sending and delivery
//!     reports into the commit tracker;
//!   - [`commit`]: the commit mode, at-least-once or transactional.
//! - [`changelog`]: customer state to the changelog topic, offsets
//!   committed behind it, and the crash-safety argument.
//! - [`restore`]: assigned partitions' state read back from the
//!   changelog, a batch at a time between polls.
//! - [`provision`]: the changelog topic created or checked at start-up.
//! - [`partitions`]: dense engine indices for `(topic, partition)`.
//! - [`acks`]: which input offsets may be committed, given the outputs
//!   Kafka has acknowledged so far and what the engine still buffers (pure,
//!   property-tested).

pub mod acks;
pub mod changelog;
pub mod commit;
pub mod driver;
pub mod intake;
pub mod outbox;
pub mod partitions;
pub mod pipeline;
pub mod provision;
pub mod restore;
pub mod service;

pub use service::{Service, run};
