use std::collections::HashMap;

use apache_avro::types::Value;

use super::*;
use crate::codec::avro::reader_schema;
use crate::model::{Channel, EventTime};

pub(crate) fn sample() -> Touchpoint<'static> {
    Touchpoint {
        event_id: "e-1".into(),
        customer_id: "cust-42".into(),
        occurred_at: EventTime(1_700_000_000_123),
        channel: Channel::Store,
        action: "purchase".into(),
        value: Some(129.95),
        session_id: Some("s-9".into()),
        attributes: Default::default(),
    }
}

fn encoded(tp: &Touchpoint<'_>) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_datum(tp, &mut buf);
    buf
}

/// The sample as apache_avro would write it, with some attributes.
fn reference_datum(attributes: &[(&str, &str)]) -> Vec<u8> {
    let tp = sample();
    let map: HashMap<String, Value> = attributes
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let value = Value::Record(vec![
        ("event_id".into(), Value::String(tp.event_id.to_string())),
        (
            "customer_id".into(),
            Value::String(tp.customer_id.to_string()),
        ),
        (
            "occurred_at".into(),
            Value::TimestampMillis(tp.occurred_at.millis()),
        ),
        ("channel".into(), Value::String("store".into())),
        ("action".into(), Value::String("purchase".into())),
        (
            "value".into(),
            Value::Union(1, Box::new(Value::Double(129.95))),
        ),
        (
            "session_id".into(),
            Value::Union(1, Box::new(Value::String("s-9".into()))),
        ),
        ("attributes".into(), Value::Map(map)),
    ]);
    to_datum(reader_schema(), value)
}

#[test]
fn encodes_exactly_like_apache_avro() {
    assert_eq!(encoded(&sample()), reference_datum(&[]));
}

#[test]
fn round_trips_borrowing_strings() {
    for tp in [
        sample(),
        Touchpoint {
            value: None,
            session_id: None,
            attributes: Default::default(),
            occurred_at: EventTime(-1),
            ..sample()
        },
        Touchpoint {
            occurred_at: EventTime(i64::MAX),
            value: Some(-0.0),
            ..sample()
        },
    ] {
        let bytes = encoded(&tp);
        let back = decode(&bytes).unwrap();
        assert_eq!(back, tp);
        assert!(matches!(back.customer_id, Cow::Borrowed(_)));
    }
}

#[test]
fn skips_attributes() {
    let bytes = reference_datum(&[("page", "/p/1"), ("utm_source", "news")]);
    assert_eq!(decode(&bytes).unwrap(), sample());
}

#[test]
fn accepts_map_blocks_with_byte_sizes() {
    let mut bytes = encoded(&sample());
    bytes.pop();
    // One block of -1 entries (negative count: a byte size follows).
    put_long(&mut bytes, -1);
    put_long(&mut bytes, 4);
    put_str(&mut bytes, "k");
    put_str(&mut bytes, "v");
    put_long(&mut bytes, 0);
    assert_eq!(decode(&bytes).unwrap(), sample());
}

#[test]
fn every_strict_prefix_is_truncated() {
    let bytes = encoded(&sample());
    for cut in 0..bytes.len() {
        let err = decode(&bytes[..cut]).unwrap_err();
        assert_eq!(err.reason, InvalidReason::Truncated, "cut at {cut}");
    }
}

#[test]
fn trailing_bytes_are_invalid_avro() {
    let mut bytes = encoded(&sample());
    bytes.push(0);
    assert_eq!(
        decode(&bytes).unwrap_err().reason,
        InvalidReason::InvalidAvro
    );
}

#[test]
fn structural_errors_are_invalid_avro() {
    let cases: [&[u8]; 4] = [
        &[0x01], // negative string length
        &[
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ], // varint too long
        &[0x04, 0xff, 0xfe], // not UTF-8
        &[0x02, b'e', 0x02, b'c', 0x02, 0x02, b'w', 0x02, b'a', 0x04], // union branch 2
    ];
    for bytes in cases {
        assert_eq!(
            decode(bytes).unwrap_err().reason,
            InvalidReason::InvalidAvro,
            "{bytes:?}"
        );
    }
}

#[test]
fn shared_field_checks_apply() {
    let check = |tp: Touchpoint<'_>| decode(&encoded(&tp)).map(|_| ()).map_err(|e| e.reason);
    assert_eq!(
        check(Touchpoint {
            event_id: "".into(),
            ..sample()
        }),
        Err(InvalidReason::MissingEventId)
    );
    assert_eq!(
        check(Touchpoint {
            customer_id: "".into(),
            ..sample()
        }),
        Err(InvalidReason::MissingCustomerId)
    );
    assert_eq!(
        check(Touchpoint {
            value: Some(f64::NAN),
            ..sample()
        }),
        Err(InvalidReason::InvalidField)
    );
}

#[test]
fn unknown_channel_is_other() {
    let mut bytes = Vec::new();
    put_str(&mut bytes, "e");
    put_str(&mut bytes, "c");
    put_long(&mut bytes, 1_700_000_000_000);
    put_str(&mut bytes, "carrier-pigeon");
    put_str(&mut bytes, "a");
    bytes.extend_from_slice(&[0, 0, 0]);
    assert_eq!(decode(&bytes).unwrap().channel, Channel::Other);
}

#[test]
fn zigzag_round_trips_extremes() {
    for v in [0, -1, 1, 63, -64, 64, i64::MIN, i64::MAX, 1_700_000_000_000] {
        let mut buf = Vec::new();
        put_long(&mut buf, v);
        let mut cursor = Cursor::new(&buf);
        assert_eq!(cursor.long("x"), Ok(v));
        assert!(cursor.rest.is_empty());
    }
}

/// Writes one datum with apache_avro, the reference encoder.
fn to_datum(schema: &apache_avro::Schema, value: apache_avro::types::Value) -> Vec<u8> {
    apache_avro::writer::datum::GenericDatumWriter::builder(schema)
        .build()
        .unwrap()
        .write_value_to_vec(value)
        .unwrap()
}

#[test]
fn over_long_fields_and_attributes_are_field_too_long() {
    let datum = |channel: &str, attributes: &[(&str, &str)]| {
        let mut bytes = Vec::new();
        put_str(&mut bytes, "e");
        put_str(&mut bytes, "c");
        put_long(&mut bytes, 1_700_000_000_000);
        put_str(&mut bytes, channel);
        put_str(&mut bytes, "a");
        bytes.extend_from_slice(&[0, 0]);
        if !attributes.is_empty() {
            put_long(&mut bytes, attributes.len() as i64);
            for (k, v) in attributes {
                put_str(&mut bytes, k);
                put_str(&mut bytes, v);
            }
        }
        put_long(&mut bytes, 0);
        bytes
    };
    let detail = |bytes: &[u8]| {
        let err = decode(bytes).unwrap_err();
        assert_eq!(err.reason, InvalidReason::FieldTooLong);
        err.detail
    };
    let long_channel = "c".repeat(65);
    assert_eq!(
        detail(&datum(&long_channel, &[])),
        "channel is 65 bytes long, limit 64"
    );
    let long_key = "k".repeat(129);
    assert_eq!(
        detail(&datum("web", &[("a", "b"), (&long_key, "v")])),
        "an attribute key is 129 bytes long, limit 128"
    );
    let long_value = "v".repeat(1025);
    assert_eq!(
        detail(&datum("web", &[("note", &long_value)])),
        "attributes[\"note\"] is 1025 bytes long, limit 1024"
    );
    let at_limit = "v".repeat(1024);
    assert!(decode(&datum("web", &[("note", &at_limit)])).is_ok());
}
