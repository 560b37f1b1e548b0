//! Invalid records: bytes derived from a valid event that the decoder must
//! reject, each labelled with the reason it should report.
//!
//! No invalid record contains a newline, so each stays one NDJSON line, and
//! none starts with the Avro magic byte 0.

use rand::RngExt;
use rand_pcg::Pcg64Mcg;

use super::GeneratedEvent;
use super::json::Variant;
use crate::model::EventTime;

/// What kind of invalid record to make, by the reason the decoder reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fault {
    /// Not JSON: garbage, or an object cut short.
    Json,
    /// No `event_id`.
    MissingEventId,
    /// No `customer_id`, or an empty one.
    MissingCustomerId,
    /// An `occurred_at` before 2000.
    TooOld,
    /// A field of the wrong type.
    BadField,
}

impl Fault {
    /// Every fault, in declaration order (the counts index by it).
    pub(super) const ALL: [Fault; 5] = [
        Fault::Json,
        Fault::MissingEventId,
        Fault::MissingCustomerId,
        Fault::TooOld,
        Fault::BadField,
    ];

    /// The reason label the decoder reports for this fault.
    pub(super) fn reason(self) -> &'static str {
        match self {
            Fault::Json => "invalid_json",
            Fault::MissingEventId => "missing_event_id",
            Fault::MissingCustomerId => "missing_customer_id",
            Fault::TooOld => "timestamp_too_old",
            Fault::BadField => "invalid_field",
        }
    }
}

/// Bytes that are not JSON at all (none starts with the Avro magic byte 0).
const GARBAGE: [&[u8]; 3] = [
    b"\xff\xfe\x00\x01garbage",
    b"not json",
    b"{\"event_id\":\"e-1-1\",}",
];

/// An invalid record derived from `event`, and its fault.
pub(super) fn corrupt(event: &GeneratedEvent, rng: &mut Pcg64Mcg) -> (Fault, Vec<u8>) {
    let fault = Fault::ALL[rng.random_range(0..Fault::ALL.len())];
    let variant = match fault {
        Fault::Json if rng.random_bool(0.3) => {
            return (fault, GARBAGE[rng.random_range(0..GARBAGE.len())].to_vec());
        }
        Fault::Json => Variant::Clean,
        Fault::MissingEventId => Variant::NoEventId,
        Fault::MissingCustomerId if rng.random_bool(0.5) => Variant::NoCustomerId,
        Fault::MissingCustomerId => Variant::EmptyCustomerId,
        // Seconds where milliseconds are expected: a classic producer bug.
        Fault::TooOld if rng.random_bool(0.5) => {
            Variant::OccurredAt(event.occurred_at.millis() / 1_000)
        }
        Fault::TooOld => {
            Variant::OccurredAt(rng.random_range(631_152_000_000..EventTime::Y2K.millis()))
        }
        Fault::BadField if rng.random_bool(0.5) => Variant::ValueAsText,
        Fault::BadField => Variant::ChannelAsNumber,
    };
    let mut bytes = Vec::with_capacity(256);
    event.write_variant(&mut bytes, variant);
    if fault == Fault::Json {
        // Cut short: the closing brace is always missing.
        bytes.truncate(rng.random_range(1..bytes.len()));
    }
    (fault, bytes)
}

#[cfg(test)]
mod tests {
    use super::super::{DEFAULT_START, test_rng};
    use super::*;
    use crate::model::Channel;

    #[test]
    fn invalid_records_have_no_newline_and_fail_as_labelled() {
        let mut rng = test_rng();
        let event = GeneratedEvent {
            event_id: "e-1-1".into(),
            customer_id: "c-0000000001".into(),
            occurred_at: DEFAULT_START,
            channel: Channel::Search,
            action: "search_click",
            value: None,
            session_id: None,
            // A tab, which the JSON must escape.
            attributes: &[("query", "gift ideas\tunder 50")],
        };
        for _ in 0..500 {
            let (fault, bytes) = corrupt(&event, &mut rng);
            assert!(!bytes.contains(&b'\n'));
            assert_ne!(bytes.first(), Some(&0));
            let parsed = serde_json::from_slice::<serde_json::Value>(&bytes);
            assert_eq!(parsed.is_err(), fault == Fault::Json, "{fault:?}");
        }
    }
}
