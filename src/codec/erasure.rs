//! Erasure requests on the erasure topic (`[outputs] erasure`,
//! `journey.erasure`; docs/erasure.md).
//!
//! A request is one record:
//!
//! - **key**: the id of the customer to erase, UTF-8, not empty. Keyed like
//!   the touchpoints, the record lands on the partition whose owner holds
//!   the customer.
//! - **value**: optional. Absent or empty, or a JSON object with the
//!   optional fields `requested_at` (epoch milliseconds or an RFC 3339
//!   string; when absent the record's Kafka timestamp stands in) and
//!   `source` (`"http"` when journeyd's `DELETE /customers/{id}` wrote it,
//!   `"topic"` otherwise, the default). Other fields are ignored.
//!
//! A record that breaks these rules is rejected with an [`Invalid`] (no key:
//! `missing_customer_id`) and goes to the dead-letter topic; the customer is
//! not erased on the strength of a malformed request. Requests are rare:
//! decoding favours clarity over avoiding allocation.

use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::invalid::{Invalid, InvalidReason, excerpt};
use crate::model::{ErasureSource, EventTime};

/// A decoded erasure request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErasureRequest<'a> {
    /// The customer to erase (the record key).
    pub customer_id: &'a str,
    /// When it was requested, if the value says so.
    pub requested_at: Option<EventTime>,
    /// How it reached journeyd.
    pub source: ErasureSource,
}

/// The value as it arrives.
#[derive(Deserialize)]
struct RawRequest {
    #[serde(default)]
    requested_at: Option<serde_json::Value>,
    #[serde(default)]
    source: Option<String>,
}

/// Decodes the key and value of an erasure record.
pub fn decode<'a>(key: Option<&'a [u8]>, value: &[u8]) -> Result<ErasureRequest<'a>, Invalid> {
    let customer_id = customer_id(key)?;
    if value.iter().all(u8::is_ascii_whitespace) {
        return Ok(ErasureRequest {
            customer_id,
            requested_at: None,
            source: ErasureSource::Topic,
        });
    }
    if value.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Invalid::new(
            InvalidReason::InvalidJson,
            "an erasure request's value must be empty or a JSON object",
        ));
    }
    let raw: RawRequest = serde_json::from_slice(value).map_err(|e| {
        let reason = match e.classify() {
            serde_json::error::Category::Data => InvalidReason::InvalidField,
            _ => InvalidReason::InvalidJson,
        };
        Invalid::new(reason, format!("erasure request: {e}"))
    })?;
    Ok(ErasureRequest {
        customer_id,
        requested_at: raw.requested_at.as_ref().map(requested_at).transpose()?,
        source: raw
            .source
            .as_deref()
            .map_or(Ok(ErasureSource::Topic), source)?,
    })
}

/// Writes the value journeyd's HTTP endpoint produces for a request made
/// at `requested_at` into `buf` (replacing its contents).
pub fn encode_request(requested_at: EventTime, source: ErasureSource, buf: &mut Vec<u8>) {
    buf.clear();
    let value = serde_json::json!({
        "requested_at": requested_at.millis(),
        "source": source.as_str(),
    });
    serde_json::to_writer(&mut *buf, &value).expect("writing to a Vec cannot fail");
}

/// The key: present, not empty, UTF-8.
fn customer_id(key: Option<&[u8]>) -> Result<&str, Invalid> {
    let key = key.unwrap_or_default();
    if key.is_empty() {
        return Err(Invalid::new(
            InvalidReason::MissingCustomerId,
            "erasure request without a key: the key is the id of the customer to erase",
        ));
    }
    std::str::from_utf8(key).map_err(|_| {
        Invalid::new(
            InvalidReason::InvalidField,
            "erasure request: the key (the customer id) is not UTF-8",
        )
    })
}

/// `requested_at`: whole epoch milliseconds, or an RFC 3339 string.
fn requested_at(value: &serde_json::Value) -> Result<EventTime, Invalid> {
    let invalid = |what: String| Invalid::new(InvalidReason::InvalidField, what);
    match value {
        serde_json::Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|v| v.fract() == 0.0 && v.abs() < 9.0e18)
                    .map(|v| v as i64)
            })
            .map(EventTime)
            .ok_or_else(|| invalid(format!("requested_at is not whole milliseconds: {n}"))),
        serde_json::Value::String(text) => {
            let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
                invalid(format!(
                    "requested_at is not RFC 3339 ({e}): {:?}",
                    excerpt(text)
                ))
            })?;
            let millis = t.unix_timestamp_nanos().div_euclid(1_000_000);
            i64::try_from(millis)
                .map(EventTime)
                .map_err(|_| invalid("requested_at out of range".to_owned()))
        }
        _ => Err(invalid(
            "requested_at must be epoch milliseconds or an RFC 3339 string".to_owned(),
        )),
    }
}

/// `source`: one of the [`ErasureSource`] names.
fn source(name: &str) -> Result<ErasureSource, Invalid> {
    ErasureSource::parse(name).ok_or_else(|| {
        Invalid::new(
            InvalidReason::InvalidField,
            format!(
                "erasure request: source must be \"http\" or \"topic\", got {:?}",
                excerpt(name)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(key: &'static str, value: &str) -> ErasureRequest<'static> {
        decode(Some(key.as_bytes()), value.as_bytes()).expect("a valid request")
    }

    fn reason(key: Option<&[u8]>, value: &str) -> InvalidReason {
        decode(key, value.as_bytes()).expect_err("invalid").reason
    }

    #[test]
    fn the_value_is_optional() {
        for value in ["", "  \n", "{}", r#"{"reason": "customer asked"}"#] {
            let request = ok("c1", value);
            assert_eq!(request.customer_id, "c1");
            assert_eq!(request.requested_at, None, "{value:?}");
            assert_eq!(request.source, ErasureSource::Topic);
        }
    }

    #[test]
    fn requested_at_is_millis_or_rfc3339() {
        let at = |v: &str| ok("c1", v).requested_at;
        assert_eq!(
            at(r#"{"requested_at": 1700000000000}"#),
            Some(EventTime(1_700_000_000_000))
        );
        assert_eq!(
            at(r#"{"requested_at": 1.7e12}"#),
            Some(EventTime(1_700_000_000_000))
        );
        assert_eq!(
            at(r#"{"requested_at": "2000-01-01T00:00:00.5Z"}"#),
            Some(EventTime(946_684_800_500))
        );
        assert_eq!(at(r#"{"requested_at": null}"#), None);
    }

    #[test]
    fn what_journeyd_writes_it_reads_back() {
        let mut buf = b"stale".to_vec();
        encode_request(EventTime(1_700_000_000_123), ErasureSource::Http, &mut buf);
        let request = decode(Some(b"c9"), &buf).unwrap();
        assert_eq!(request.requested_at, Some(EventTime(1_700_000_000_123)));
        assert_eq!(request.source, ErasureSource::Http);
    }

    #[test]
    fn bad_requests_name_their_reason() {
        assert_eq!(reason(None, ""), InvalidReason::MissingCustomerId);
        assert_eq!(reason(Some(b""), "{}"), InvalidReason::MissingCustomerId);
        assert_eq!(reason(Some(b"\xff"), ""), InvalidReason::InvalidField);
        assert_eq!(reason(Some(b"c1"), "[1]"), InvalidReason::InvalidJson);
        assert_eq!(
            reason(Some(b"c1"), "{\"requested_at\":"),
            InvalidReason::InvalidJson
        );
        for value in [
            r#"{"requested_at": "yesterday"}"#,
            r#"{"requested_at": 1.5}"#,
            r#"{"requested_at": true}"#,
            r#"{"source": "crm"}"#,
            r#"{"source": 3}"#,
        ] {
            assert_eq!(
                reason(Some(b"c1"), value),
                InvalidReason::InvalidField,
                "{value}"
            );
        }
    }

    #[test]
    fn a_missing_key_is_explained() {
        let invalid = decode(None, b"{}").unwrap_err();
        assert!(
            invalid.detail.contains("without a key"),
            "{}",
            invalid.detail
        );
    }
}
