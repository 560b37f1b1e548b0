use apache_avro::types::Value;

use super::*;
use crate::model::{Channel, EventTime};

/// A writer schema from the time before `session_id` and `attributes`.
const OLDER: &str = r#"{"type":"record","name":"Touchpoint","namespace":"journeyd.v1","fields":[
    {"name":"event_id","type":"string"},
    {"name":"customer_id","type":"string"},
    {"name":"occurred_at","type":"long"},
    {"name":"channel","type":"string"},
    {"name":"action","type":"string"},
    {"name":"value","type":["null","double"],"default":null}]}"#;

/// A newer writer schema: extra fields, another order, `value` as a float.
const NEWER: &str = r#"{"type":"record","name":"Touchpoint","namespace":"journeyd.v1","fields":[
    {"name":"customer_id","type":"string"},
    {"name":"event_id","type":"string"},
    {"name":"device","type":{"type":"record","name":"Device","fields":[{"name":"os","type":"string"}]}},
    {"name":"occurred_at","type":{"type":"long","logicalType":"timestamp-millis"}},
    {"name":"channel","type":"string"},
    {"name":"action","type":"string"},
    {"name":"value","type":["null","float"],"default":null},
    {"name":"session_id","type":["null","string"],"default":null},
    {"name":"tags","type":{"type":"array","items":"string"}},
    {"name":"attributes","type":{"type":"map","values":"string"},"default":{}}]}"#;

/// Lacks `customer_id`, which the reader requires and has no default for.
const INCOMPATIBLE: &str = r#"{"type":"record","name":"Touchpoint","fields":[
    {"name":"event_id","type":"string"},
    {"name":"occurred_at","type":"long"},
    {"name":"channel","type":"string"},
    {"name":"action","type":"string"}]}"#;

fn s(v: &str) -> Value {
    Value::String(v.into())
}

fn older_datum(customer: &str) -> (Schema, Vec<u8>) {
    let schema = Schema::parse_str(OLDER).unwrap();
    let value = Value::Record(vec![
        ("event_id".into(), s("e1")),
        ("customer_id".into(), s(customer)),
        ("occurred_at".into(), Value::Long(1_700_000_000_000)),
        ("channel".into(), s("ads")),
        ("action".into(), s("ad_click")),
        (
            "value".into(),
            Value::Union(1, Box::new(Value::Double(0.5))),
        ),
    ]);
    let bytes = to_datum(&schema, value);
    (schema, bytes)
}

fn newer_datum() -> (Schema, Vec<u8>) {
    let schema = Schema::parse_str(NEWER).unwrap();
    let device = Value::Record(vec![("os".into(), s("ios"))]);
    let value = Value::Record(vec![
        ("customer_id".into(), s("c2")),
        ("event_id".into(), s("e2")),
        ("device".into(), device),
        (
            "occurred_at".into(),
            Value::TimestampMillis(1_700_000_000_001),
        ),
        ("channel".into(), s("app")),
        ("action".into(), s("login")),
        ("value".into(), Value::Union(1, Box::new(Value::Float(2.5)))),
        ("session_id".into(), Value::Union(1, Box::new(s("s2")))),
        ("tags".into(), Value::Array(vec![s("a"), s("b")])),
        (
            "attributes".into(),
            Value::Map([("k".to_owned(), s("v"))].into()),
        ),
    ]);
    let bytes = to_datum(&schema, value);
    (schema, bytes)
}

#[test]
fn reader_schema_is_the_shipped_one() {
    assert_eq!(
        reader_schema().name().map(|n| n.fullname(None)),
        Some("journeyd.v1.Touchpoint".to_owned())
    );
    assert!(DatumDecoder::new(reader_schema().clone()).is_reader_schema());
}

#[test]
fn older_writer_schema_resolves_with_defaults() {
    let (schema, bytes) = older_datum("c1");
    let tp = decode_datum(&bytes, &schema).unwrap();
    assert_eq!(tp.customer_id, "c1");
    assert_eq!(tp.occurred_at, EventTime(1_700_000_000_000));
    assert_eq!(
        (tp.channel, tp.value, &tp.session_id),
        (Channel::Ads, Some(0.5), &None)
    );
    let decoder = DatumDecoder::new(schema);
    assert!(!decoder.is_reader_schema());
    assert_eq!(decoder.decode(&bytes).unwrap(), tp);
}

#[test]
fn newer_writer_schema_skips_unknown_fields() {
    let (schema, bytes) = newer_datum();
    let tp = decode_datum(&bytes, &schema).unwrap();
    assert_eq!(
        (tp.event_id.as_ref(), tp.customer_id.as_ref()),
        ("e2", "c2")
    );
    assert_eq!((tp.channel, tp.action.as_ref()), (Channel::App, "login"));
    assert_eq!(tp.value, Some(2.5));
    assert_eq!(tp.session_id.as_deref(), Some("s2"));
    assert_eq!(DatumDecoder::new(schema).decode(&bytes).unwrap(), tp);
}

#[test]
fn resolution_path_equals_fast_path() {
    let tp = crate::codec::avro_binary::tests::sample();
    let mut bytes = Vec::new();
    encode_datum(&tp, &mut bytes);
    assert_eq!(decode_datum(&bytes, reader_schema()).unwrap(), tp);
    let fast = DatumDecoder::new(reader_schema().clone());
    let borrowed = fast.decode(&bytes).unwrap();
    assert!(matches!(borrowed.event_id, Cow::Borrowed(_)));
    assert_eq!(borrowed, tp);
}

#[test]
fn incompatible_writer_schema_is_invalid_avro() {
    let schema = Schema::parse_str(INCOMPATIBLE).unwrap();
    let value = Value::Record(vec![
        ("event_id".into(), s("e")),
        ("occurred_at".into(), Value::Long(1)),
        ("channel".into(), s("web")),
        ("action".into(), s("a")),
    ]);
    let bytes = to_datum(&schema, value);
    let err = decode_datum(&bytes, &schema).unwrap_err();
    assert_eq!(err.reason, InvalidReason::InvalidAvro, "{err}");
}

#[test]
fn resolved_empty_customer_id_is_missing() {
    let (schema, bytes) = older_datum("");
    let err = decode_datum(&bytes, &schema).unwrap_err();
    assert_eq!(err.reason, InvalidReason::MissingCustomerId);
}

#[test]
fn every_strict_prefix_is_truncated_on_the_resolution_path() {
    for (schema, bytes) in [older_datum("c1"), newer_datum()] {
        for cut in 0..bytes.len() {
            let err = decode_datum(&bytes[..cut], &schema).unwrap_err();
            assert_eq!(err.reason, InvalidReason::Truncated, "cut at {cut}: {err}");
        }
    }
}

#[test]
fn trailing_bytes_are_invalid_avro_on_the_resolution_path() {
    let (schema, mut bytes) = older_datum("c1");
    bytes.extend_from_slice(&[0, 0]);
    let err = decode_datum(&bytes, &schema).unwrap_err();
    assert_eq!(err.reason, InvalidReason::InvalidAvro);
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
fn recursive_writer_schemas_are_rejected_without_recursing() {
    let linked = Schema::parse_str(
        r#"{"type":"record","name":"Touchpoint","namespace":"x","fields":[
            {"name":"event_id","type":"string"},
            {"name":"next","type":["null","Touchpoint"]}]}"#,
    )
    .unwrap();
    // Deep enough to overflow the stack if it were decoded.
    let bytes: Vec<u8> = std::iter::repeat_n([0x02, 0x02, b'e'], 200_000)
        .flatten()
        .collect();
    let err = decode_datum(&bytes, &linked).unwrap_err();
    assert_eq!(err.reason, InvalidReason::InvalidAvro);
    let err = DatumDecoder::new(linked).decode(&bytes).unwrap_err();
    assert_eq!(err.reason, InvalidReason::InvalidAvro);

    let shared = Schema::parse_str(
        r#"{"type":"record","name":"T","fields":[
            {"name":"a","type":{"type":"record","name":"Addr","fields":[{"name":"z","type":"string"}]}},
            {"name":"b","type":"Addr"}]}"#,
    )
    .unwrap();
    assert!(!is_recursive(&shared, &mut Vec::new()));
}

#[test]
fn over_long_fields_are_field_too_long_on_the_resolution_path() {
    let (schema, bytes) = older_datum(&"c".repeat(257));
    let err = decode_datum(&bytes, &schema).unwrap_err();
    assert_eq!(err.reason, InvalidReason::FieldTooLong);
    assert_eq!(err.detail, "customer_id is 257 bytes long, limit 256");

    let schema = Schema::parse_str(NEWER).unwrap();
    let value = Value::Record(vec![
        ("customer_id".into(), s("c2")),
        ("event_id".into(), s("e2")),
        (
            "device".into(),
            Value::Record(vec![("os".into(), s("ios"))]),
        ),
        ("occurred_at".into(), Value::TimestampMillis(1)),
        ("channel".into(), s("app")),
        ("action".into(), s("login")),
        ("value".into(), Value::Union(0, Box::new(Value::Null))),
        ("session_id".into(), Value::Union(0, Box::new(Value::Null))),
        ("tags".into(), Value::Array(vec![])),
        (
            "attributes".into(),
            Value::Map([("note".to_owned(), s(&"v".repeat(1025)))].into()),
        ),
    ]);
    let bytes = to_datum(&schema, value);
    let err = decode_datum(&bytes, &schema).unwrap_err();
    assert_eq!(err.reason, InvalidReason::FieldTooLong);
    assert_eq!(
        err.detail,
        "attributes[\"note\"] is 1025 bytes long, limit 1024"
    );
}
