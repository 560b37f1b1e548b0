//! Decoding touchpoints from bytes, and the reasons input is rejected.
//!
//! Owns every input encoding (docs/outputs.md#touchpoints-the-input): JSON ([`json`]), plain Avro
//! and Avro object container files ([`avro`]), the Confluent wire format
//! ([`confluent`]), replay files ([`file`]), the shipped Avro schemas
//! ([`schemas`]) and input validation ([`Validator`], with the field
//! length limits of [`FieldLimits`]), and which few attributes a touchpoint
//! keeps ([`AttributeSelection`]). Every rejected record
//! carries an [`InvalidReason`], the label of the dead-letter header and of
//! `journeyd_events_invalid_total`.
//!
//! On the way out it owns the bytes of what journeyd produces: derived
//! outputs as JSON or Confluent-framed Avro, with their keys ([`output`]),
//! and the value, key and headers of dead-letter records ([`dlq`]). Erasure
//! requests on the erasure topic are decoded (and, for the HTTP endpoint,
//! encoded) by [`erasure`].
//!
//! Decoders borrow from the input where the encoding allows, and never
//! panic, loop or allocate without bound on hostile bytes. This module does
//! no I/O beyond reading a replay file, reads no clock (wall time is an
//! argument) and knows no Kafka client and no journey rules.
//!
//! ```
//! use journeyd::codec::{Encoding, Validator};
//! use journeyd::model::EventTime;
//!
//! let v = Validator::default();
//! let msg = br#"{"event_id":"e1","customer_id":"c1","occurred_at":"2024-05-01T12:00:00Z","action":"login"}"#;
//! let tp = v.decode(Encoding::Json, msg, EventTime(1_714_564_800_000)).unwrap();
//! assert_eq!(tp.customer_id, "c1");
//! ```

pub mod avro;
mod avro_binary;
mod avro_container;
pub mod confluent;
pub mod dlq;
pub mod erasure;
pub mod file;
mod invalid;
pub mod json;
mod limits;
pub mod output;
mod parts;
pub mod schemas;
mod selection;
mod validate;

pub use invalid::{Invalid, InvalidReason};
pub use limits::FieldLimits;
pub use parts::into_owned;
pub use selection::{AttributeSelection, USER_ID};
pub use validate::{Encoding, Validator};

#[cfg(test)]
mod tests;
