//! Why an input record was rejected.
//!
//! [`InvalidReason`] is a closed set of low-cardinality labels: it becomes the
//! reason header on the dead-letter topic and the `reason` label of
//! `journeyd_events_invalid_total`. The free-form [`Invalid::detail`] is for
//! logs and the DLQ only and must never become a metric label.

use std::fmt;

use crate::engine::Ingested;

/// The reason a record was rejected. [`InvalidReason::as_str`] is stable:
/// dashboards and alert rules match on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InvalidReason {
    /// Not a JSON object: syntax error, invalid UTF-8, trailing garbage.
    InvalidJson,
    /// Avro bytes that do not decode: bad varint, bad union index, wrong
    /// magic byte, an incompatible writer schema, a corrupt container file.
    InvalidAvro,
    /// `event_id` absent or empty.
    MissingEventId,
    /// `customer_id` absent or empty.
    MissingCustomerId,
    /// `occurred_at` before 2000-01-01.
    TimestampTooOld,
    /// `occurred_at` further ahead of the wall clock than the allowed skew.
    TimestampInFuture,
    /// Larger than the configured maximum message size.
    Oversized,
    /// A Confluent schema id the processor has no writer schema for.
    UnknownSchemaId,
    /// Input ended early: a short Confluent header, a cut-off Avro datum or file.
    Truncated,
    /// A field of the wrong type, a bad timestamp string, a missing required
    /// field other than the ids, or a non-finite `value`.
    InvalidField,
    /// An id, the action, the channel or an attribute key or value longer
    /// than its configured limit (`limits.max_*_length`).
    FieldTooLong,
    /// Not an input record: a derived event its output topic refused for
    /// good (larger than the topic takes, or invalid there). Its dead
    /// letter carries the derived event's bytes, and the output topic as
    /// `journeyd.source.topic`; it is counted in
    /// `journeyd_output_delivery_errors_total`, not as invalid input.
    OutputRejected,
    /// A touchpoint of a new customer while the instance holds
    /// `limits.max_customers` already: refused so that a flood of new ids
    /// meets a counted limit instead of exhausting memory. Touchpoints of
    /// customers already held are not affected.
    Capacity,
    /// A late touchpoint that its customer's de-duplication memory can no
    /// longer tell from a redelivery (`limits.dedupe_per_customer` newer
    /// ones within `time.dedupe_horizon`): not applied, so that no
    /// duplicate is applied twice, but kept here, since it may be new.
    UnverifiedDuplicate,
}

impl InvalidReason {
    /// Every reason, for pre-registering metric labels.
    pub const ALL: [InvalidReason; 14] = [
        InvalidReason::InvalidJson,
        InvalidReason::InvalidAvro,
        InvalidReason::MissingEventId,
        InvalidReason::MissingCustomerId,
        InvalidReason::TimestampTooOld,
        InvalidReason::TimestampInFuture,
        InvalidReason::Oversized,
        InvalidReason::UnknownSchemaId,
        InvalidReason::Truncated,
        InvalidReason::InvalidField,
        InvalidReason::FieldTooLong,
        InvalidReason::OutputRejected,
        InvalidReason::Capacity,
        InvalidReason::UnverifiedDuplicate,
    ];

    /// The stable label: DLQ header value and metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            InvalidReason::InvalidJson => "invalid_json",
            InvalidReason::InvalidAvro => "invalid_avro",
            InvalidReason::MissingEventId => "missing_event_id",
            InvalidReason::MissingCustomerId => "missing_customer_id",
            InvalidReason::TimestampTooOld => "timestamp_too_old",
            InvalidReason::TimestampInFuture => "timestamp_in_future",
            InvalidReason::Oversized => "oversized",
            InvalidReason::UnknownSchemaId => "unknown_schema_id",
            InvalidReason::Truncated => "truncated",
            InvalidReason::InvalidField => "invalid_field",
            InvalidReason::FieldTooLong => "field_too_long",
            InvalidReason::OutputRejected => "output_rejected",
            InvalidReason::Capacity => "capacity",
            InvalidReason::UnverifiedDuplicate => "unverified_duplicate",
        }
    }

    /// Whether the bytes themselves are broken, so that a reader of a
    /// stream of records cannot know where the next record starts.
    pub(crate) const fn is_structural(self) -> bool {
        matches!(self, InvalidReason::InvalidAvro | InvalidReason::Truncated)
    }
}

impl fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected record: the reason label and a human-readable detail.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Invalid {
    /// What kind of problem; the DLQ header and metric label.
    pub reason: InvalidReason,
    /// What exactly was wrong, for logs and the DLQ. Never echoes more than a
    /// short excerpt of the input.
    pub detail: String,
}

impl Invalid {
    /// A rejection with the given reason and detail.
    pub fn new(reason: InvalidReason, detail: impl Into<String>) -> Invalid {
        Invalid {
            reason,
            detail: detail.into(),
        }
    }

    /// A touchpoint refused at `limits.max_customers`, built once: a flood
    /// refuses many. The detail names no customer id (the dead letter's key
    /// has it).
    pub fn capacity() -> &'static Invalid {
        static CAPACITY: std::sync::LazyLock<Invalid> = std::sync::LazyLock::new(|| {
            Invalid::new(
                InvalidReason::Capacity,
                "a new customer while limits.max_customers are held",
            )
        });
        &CAPACITY
    }

    /// A late touchpoint the de-duplication memory cannot verify as new,
    /// built once.
    pub fn unverified_duplicate() -> &'static Invalid {
        static UNVERIFIED: std::sync::LazyLock<Invalid> = std::sync::LazyLock::new(|| {
            Invalid::new(
                InvalidReason::UnverifiedDuplicate,
                "late, and older than the event ids its customer still remembers within \
                 time.dedupe_horizon: it may be a redelivery, so it is not applied",
            )
        });
        &UNVERIFIED
    }

    /// The dead letter of a touchpoint the engine did not take
    /// ([`Ingested::Refused`], [`Ingested::Unverified`]); `None` for one it
    /// took.
    pub fn not_ingested(ingested: Ingested) -> Option<&'static Invalid> {
        match ingested {
            Ingested::Refused => Some(Invalid::capacity()),
            Ingested::Unverified => Some(Invalid::unverified_duplicate()),
            Ingested::Accepted | Ingested::Late | Ingested::Duplicate => None,
        }
    }

    /// Classifies an Avro library error: end of input is `truncated`,
    /// anything else `invalid_avro`.
    /// The detail is cut short: library messages may quote the datum.
    pub(crate) fn from_avro(err: &apache_avro::Error) -> Invalid {
        let detail = err.to_string();
        let detail = match detail.char_indices().nth(200) {
            Some((end, _)) => format!("{}...", detail.get(..end).unwrap_or_default()),
            None => detail,
        };
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = source {
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::UnexpectedEof
            {
                return Invalid::new(InvalidReason::Truncated, detail);
            }
            source = e.source();
        }
        Invalid::new(InvalidReason::InvalidAvro, detail)
    }
}

/// At most 64 characters of `s`, for error details.
pub(crate) fn excerpt(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((end, _)) => s.get(..end).unwrap_or(s),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_snake_case() {
        let labels: std::collections::BTreeSet<_> =
            InvalidReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), InvalidReason::ALL.len());
        for l in labels {
            assert!(
                l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{l}"
            );
        }
    }

    #[test]
    fn displays_reason_then_detail() {
        let e = Invalid::new(InvalidReason::Oversized, "2000000 bytes");
        assert_eq!(e.to_string(), "oversized: 2000000 bytes");
    }

    #[test]
    fn excerpt_is_short_and_char_safe() {
        let long = "é".repeat(100);
        assert_eq!(excerpt(&long).chars().count(), 64);
        assert_eq!(excerpt("short"), "short");
    }
}
