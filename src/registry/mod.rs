//! The Confluent Schema Registry: where writer schemas of Confluent-framed
//! input come from, and where the Avro output schemas are registered.
//!
//! - [`client`]: the blocking REST client (`GET /schemas/ids/{id}`,
//!   `POST /subjects/{subject}/versions`), with typed errors and Basic
//!   authentication from the URL.
//! - [`lookup`]: [`SchemaSource`], the writer schemas the pipeline decodes
//!   with: local ones first, the registry for ids seen for the first time
//!   (looked up on threads of their own, never on the processing thread),
//!   with a memory of unknown ids and a bounded wait for an unreachable
//!   registry.
//! - [`outputs`]: registering the output schemas at start-up.
//! - [`retry`]: bounded retries with exponential backoff.
//!
//! This module owns the network side of schemas; the wire format and the
//! decoding itself stay in [`crate::codec`], which does no I/O. Only the
//! look-up of an id not seen before touches the network: the decoding of
//! records whose schema is known stays allocation-free.

pub mod client;
mod error;
pub mod lookup;
pub mod outputs;
pub mod retry;
mod url;

pub use crate::telemetry::{LookupResult, Operation, Outcome};
pub use client::RegistryClient;
pub use error::RegistryError;
pub use lookup::{Completed, FetchSchema, LookupPolicy, Resolved, SchemaSource};
pub use outputs::{RegistrationError, register_outputs, value_subject};
pub use retry::Retry;
