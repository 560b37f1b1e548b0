use std::borrow::Cow;

use super::*;
use crate::model::{Channel, EventTime};

const GOOD: &str = r#"{"event_id":"e1","customer_id":"c1","occurred_at":1700000000000,
    "channel":"web","action":"product_view","value":12.5,"session_id":"s1",
    "attributes":{"page":"/p/1","utm_source":"news"}}"#;

fn reason(input: &str) -> InvalidReason {
    match decode(input.as_bytes()) {
        Ok(tp) => panic!("accepted {input}: {tp:?}"),
        Err(e) => e.reason,
    }
}

#[test]
fn decodes_a_full_event_borrowing_its_strings() {
    let tp = decode(GOOD.as_bytes()).unwrap();
    assert_eq!(tp.event_id, "e1");
    assert_eq!(tp.customer_id, "c1");
    assert_eq!(tp.occurred_at, EventTime(1_700_000_000_000));
    assert_eq!(tp.channel, Channel::Web);
    assert_eq!(tp.action, "product_view");
    assert_eq!(tp.value, Some(12.5));
    assert_eq!(tp.session_id.as_deref(), Some("s1"));
    assert!(matches!(tp.event_id, Cow::Borrowed(_)));
    assert!(matches!(tp.customer_id, Cow::Borrowed(_)));
    assert!(matches!(tp.action, Cow::Borrowed(_)));
    assert!(matches!(tp.session_id, Some(Cow::Borrowed(_))));
}

#[test]
fn unescapes_strings_with_escapes() {
    let tp = decode(
        br#"{"event_id":"e\"1","customer_id":"caf\u00e9","occurred_at":1700000000000,"action":"login"}"#,
    )
    .unwrap();
    assert_eq!(tp.event_id, "e\"1");
    assert_eq!(tp.customer_id, "café");
    assert!(matches!(tp.customer_id, Cow::Owned(_)));
    assert!(matches!(tp.action, Cow::Borrowed(_)));
}

#[test]
fn accepts_rfc3339_and_millis_timestamps() {
    let at = |ts: &str| {
        let json =
            format!(r#"{{"event_id":"e","customer_id":"c","occurred_at":{ts},"action":"a"}}"#);
        decode(json.as_bytes()).map(|tp| tp.occurred_at.millis())
    };
    assert_eq!(at("1700000000123"), Ok(1_700_000_000_123));
    assert_eq!(at("1.7e12"), Ok(1_700_000_000_000));
    assert_eq!(at(r#""2023-11-14T22:13:20.123Z""#), Ok(1_700_000_000_123));
    assert_eq!(
        at(r#""2023-11-14T23:13:20.123+01:00""#),
        Ok(1_700_000_000_123)
    );
    assert_eq!(at(r#""2000-01-01T00:00:00Z""#), Ok(946_684_800_000));
    assert_eq!(at("-5"), Ok(-5));
    for bad in [
        r#""yesterday""#,
        r#""2023-11-14""#,
        "1.5",
        "true",
        "null",
        "18446744073709551615",
    ] {
        assert_eq!(
            at(bad).unwrap_err().reason,
            InvalidReason::InvalidField,
            "{bad}"
        );
    }
}

#[test]
fn optional_fields_may_be_absent_or_null() {
    let tp = decode(
        br#"{"event_id":"e","customer_id":"c","occurred_at":1,"action":"a","value":null,"session_id":null,"attributes":null}"#,
    )
    .unwrap();
    assert_eq!(
        (tp.value, tp.session_id, tp.channel),
        (None, None, Channel::Other)
    );
}

#[test]
fn unknown_channel_is_other_and_unknown_fields_are_ignored() {
    let tp = decode(
        br#"{"schema":3,"event_id":"e","nested":{"a":[1,{"b":null}]},"customer_id":"c",
            "occurred_at":1,"channel":"carrier-pigeon","action":"a","extra":"x"}"#,
    )
    .unwrap();
    assert_eq!(tp.channel, Channel::Other);
    assert_eq!(tp.event_id, "e");
}

#[test]
fn bad_json_is_invalid_json() {
    for bad in [
        "",
        "   ",
        "{",
        r#"{"event_id":"e",}"#,
        "[1,2]",
        "42",
        "nul",
        r#"{"event_id":"e","customer_id":"c","occurred_at":1,"action":"a"} trailing"#,
    ] {
        assert_eq!(reason(bad), InvalidReason::InvalidJson, "{bad:?}");
    }
}

#[test]
fn invalid_utf8_is_invalid_json() {
    let mut bytes = br#"{"event_id":"e","customer_id":"c"#.to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.extend_from_slice(br#"","occurred_at":1,"action":"a"}"#);
    assert_eq!(
        decode(&bytes).unwrap_err().reason,
        InvalidReason::InvalidJson
    );
}

#[test]
fn missing_or_empty_ids_are_rejected() {
    use InvalidReason::{MissingCustomerId, MissingEventId};
    assert_eq!(
        reason(r#"{"customer_id":"c","occurred_at":1,"action":"a"}"#),
        MissingEventId
    );
    assert_eq!(
        reason(r#"{"event_id":"","customer_id":"c","occurred_at":1,"action":"a"}"#),
        MissingEventId
    );
    assert_eq!(
        reason(r#"{"event_id":"e","occurred_at":1,"action":"a"}"#),
        MissingCustomerId
    );
    assert_eq!(
        reason(r#"{"event_id":"e","customer_id":"","occurred_at":1,"action":"a"}"#),
        MissingCustomerId
    );
    assert_eq!(
        reason(r#"{"event_id":"e","customer_id":null,"occurred_at":1,"action":"a"}"#),
        MissingCustomerId
    );
}

#[test]
fn missing_time_or_action_is_invalid_field() {
    assert_eq!(
        reason(r#"{"event_id":"e","customer_id":"c","action":"a"}"#),
        InvalidReason::InvalidField
    );
    assert_eq!(
        reason(r#"{"event_id":"e","customer_id":"c","occurred_at":1}"#),
        InvalidReason::InvalidField
    );
    assert_eq!(
        reason(r#"{"event_id":"e","customer_id":"c","occurred_at":1,"action":""}"#),
        InvalidReason::InvalidField
    );
}

#[test]
fn wrong_types_are_invalid_field() {
    for bad in [
        r#"{"event_id":1,"customer_id":"c","occurred_at":1,"action":"a"}"#,
        r#"{"event_id":"e","customer_id":["c"],"occurred_at":1,"action":"a"}"#,
        r#"{"event_id":"e","customer_id":"c","occurred_at":1,"action":"a","value":"12"}"#,
        r#"{"event_id":"e","customer_id":"c","occurred_at":1,"action":"a","channel":7}"#,
        r#"{"event_id":"e","customer_id":"c","occurred_at":1,"action":"a","attributes":{"k":1}}"#,
        r#"{"event_id":"e","customer_id":"c","occurred_at":1,"action":"a","attributes":["k"]}"#,
        r#"{"event_id":"e","customer_id":"c","occurred_at":{},"action":"a"}"#,
        r#"{"event_id":"e","event_id":"f","customer_id":"c","occurred_at":1,"action":"a"}"#,
    ] {
        assert_eq!(reason(bad), InvalidReason::InvalidField, "{bad}");
    }
}

#[test]
fn details_do_not_echo_long_input() {
    let long = "x".repeat(10_000);
    let json =
        format!(r#"{{"event_id":"e","customer_id":"c","occurred_at":"{long}","action":"a"}}"#);
    let err = decode(json.as_bytes()).unwrap_err();
    assert_eq!(err.reason, InvalidReason::InvalidField);
    assert!(err.detail.len() < 300, "{}", err.detail);
}

#[test]
fn over_long_fields_are_field_too_long_naming_field_and_limit() {
    let long = |n: usize| "x".repeat(n);
    let event = |field: &str, value: &str| {
        let mut object = serde_json::json!({
            "event_id": "e", "customer_id": "c", "occurred_at": 1, "action": "a",
            "channel": "web", "attributes": {"plan": "pro"},
        });
        object[field] = serde_json::Value::String(value.to_owned());
        object.to_string()
    };
    let cases = [
        (
            event("customer_id", &long(257)),
            "customer_id is 257 bytes long, limit 256",
        ),
        (
            event("event_id", &long(257)),
            "event_id is 257 bytes long, limit 256",
        ),
        (
            event("action", &long(65)),
            "action is 65 bytes long, limit 64",
        ),
        (
            event("channel", &long(65)),
            "channel is 65 bytes long, limit 64",
        ),
    ];
    for (text, detail) in cases {
        let err = decode(text.as_bytes()).unwrap_err();
        assert_eq!(
            (err.reason, err.detail.as_str()),
            (InvalidReason::FieldTooLong, detail)
        );
    }
    for (text, field) in [
        (event("customer_id", &long(256)), "id"),
        (event("action", &long(64)), "action"),
    ] {
        assert!(decode(text.as_bytes()).is_ok(), "{field} at its limit");
    }
}

#[test]
fn over_long_attributes_are_field_too_long() {
    let key = "k".repeat(129);
    let text = format!(
        r#"{{"event_id":"e","customer_id":"c","occurred_at":1,"action":"a","attributes":{{"{key}":"v"}}}}"#
    );
    let err = decode(text.as_bytes()).unwrap_err();
    assert_eq!(err.reason, InvalidReason::FieldTooLong);
    assert_eq!(err.detail, "an attribute key is 129 bytes long, limit 128");

    let value = "v".repeat(1025);
    let text = format!(
        r#"{{"event_id":"e","customer_id":"c","occurred_at":1,"action":"a","attributes":{{"a":"1","note":"{value}","z":"{}"}}}}"#,
        "v".repeat(1024)
    );
    let err = decode(text.as_bytes()).unwrap_err();
    assert_eq!(err.reason, InvalidReason::FieldTooLong);
    assert_eq!(
        err.detail,
        "attributes[\"note\"] is 1025 bytes long, limit 1024"
    );

    // An escaped key is measured unescaped and not copied to be named.
    let text = format!(
        r#"{{"event_id":"e","customer_id":"c","occurred_at":1,"action":"a","attributes":{{"n\u00f6te":"{value}"}}}}"#
    );
    let err = decode(text.as_bytes()).unwrap_err();
    assert_eq!(
        err.detail,
        "an attribute value is 1025 bytes long, limit 1024"
    );
}

#[test]
fn limits_apply_to_unescaped_lengths() {
    // Six bytes of input, one byte decoded: "\u0041" is "A".
    let id = r"\u0041".repeat(256);
    let text = format!(r#"{{"event_id":"e","customer_id":"{id}","occurred_at":1,"action":"a"}}"#);
    assert_eq!(decode(text.as_bytes()).unwrap().customer_id.len(), 256);
}
