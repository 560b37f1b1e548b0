//! The selected attributes' rules, the same in every decoder: JSON, the
//! Avro fast path (plain Avro and Confluent with the shipped schema) and
//! Avro schema resolution (Confluent with another writer schema).

use apache_avro::Schema;
use apache_avro::types::Value;

use super::*;
use crate::codec::avro_binary::{put_long, put_str};
use crate::codec::confluent::{self, WriterSchemas};
use crate::codec::{Encoding, FieldLimits, InvalidReason, Validator};
use crate::model::EventTime;

const NOW: EventTime = EventTime(1_700_000_000_000);

/// A writer schema other than the shipped one (an extra field first), so
/// that its data goes through schema resolution.
const RESOLVED: &str = r#"{"type":"record","name":"Touchpoint","namespace":"journeyd.v1","fields":[
    {"name":"source","type":"string"},
    {"name":"event_id","type":"string"},
    {"name":"customer_id","type":"string"},
    {"name":"occurred_at","type":"long"},
    {"name":"channel","type":"string"},
    {"name":"action","type":"string"},
    {"name":"attributes","type":{"type":"map","values":"string"}}]}"#;

fn validator() -> Validator {
    Validator::default()
        .with_field_limits(FieldLimits {
            attribute_value: 8,
            ..FieldLimits::default()
        })
        .with_attributes(AttributeSelection::of(["purpose", "user_id"]))
}

/// The three ways a touchpoint with `attributes` (in map order) is read.
enum Way {
    Json,
    Fast,
    Resolved,
}

fn json(attributes: &[(&str, &str)]) -> Vec<u8> {
    let map: Vec<String> = (attributes.iter())
        .map(|(k, v)| format!("{}:{}", serde_json::json!(k), serde_json::json!(v)))
        .collect();
    format!(
        r#"{{"event_id":"e","customer_id":"c","occurred_at":{},"action":"a","attributes":{{{}}}}}"#,
        NOW.0,
        map.join(",")
    )
    .into_bytes()
}

/// The shipped schema's datum, its map in one block as given (repeats
/// included).
fn avro(attributes: &[(&str, &str)]) -> Vec<u8> {
    let mut buf = Vec::new();
    for s in ["e", "c"] {
        put_str(&mut buf, s);
    }
    put_long(&mut buf, NOW.0);
    put_str(&mut buf, "web");
    put_str(&mut buf, "a");
    put_long(&mut buf, 0);
    put_long(&mut buf, 0);
    if !attributes.is_empty() {
        put_long(&mut buf, attributes.len() as i64);
        for (k, v) in attributes {
            put_str(&mut buf, k);
            put_str(&mut buf, v);
        }
    }
    put_long(&mut buf, 0);
    buf
}

fn resolved(attributes: &[(&str, &str)], schemas: &mut WriterSchemas) -> Vec<u8> {
    let schema = Schema::parse_str(RESOLVED).unwrap();
    let s = |v: &str| Value::String(v.into());
    let map = (attributes.iter()).map(|(k, v)| (k.to_string(), s(v)));
    let value = Value::Record(vec![
        ("source".into(), s("crm")),
        ("event_id".into(), s("e")),
        ("customer_id".into(), s("c")),
        ("occurred_at".into(), Value::Long(NOW.0)),
        ("channel".into(), s("web")),
        ("action".into(), s("a")),
        ("attributes".into(), Value::Map(map.collect())),
    ]);
    let body = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
        .build()
        .unwrap()
        .write_value_to_vec(value)
        .unwrap();
    schemas.insert(9, schema);
    let mut framed = Vec::new();
    confluent::frame(9, &body, &mut framed);
    framed
}

/// The kept purpose and user id, or why the touchpoint was rejected.
type Kept = Result<(Option<String>, Option<String>), InvalidReason>;

/// Decodes `attributes` every way, returning what each kept.
fn kept_every_way(attributes: &[(&str, &str)]) -> Vec<Kept> {
    let v = validator();
    let mut schemas = WriterSchemas::new();
    schemas.insert(7, crate::codec::avro::reader_schema().clone());
    let mut fast = Vec::new();
    confluent::frame(7, &avro(attributes), &mut fast);
    let plain = avro(attributes);
    let text = json(attributes);
    let framed = resolved(attributes, &mut schemas);
    let ways = [
        (Way::Json, Encoding::Json, &text),
        (Way::Fast, Encoding::Avro, &plain),
        (Way::Fast, Encoding::Confluent(&schemas), &fast),
        (Way::Resolved, Encoding::Confluent(&schemas), &framed),
    ];
    ways.into_iter()
        .map(|(_, encoding, bytes)| {
            let tp = v.decode(encoding, bytes, NOW).map_err(|e| e.reason)?;
            let get = |slot| tp.attributes.get(slot).map(str::to_owned);
            Ok((get(0), get(1)))
        })
        .collect()
}

fn all(expected: Result<(Option<&str>, Option<&str>), InvalidReason>, attributes: &[(&str, &str)]) {
    let expected = expected.map(|(p, u)| (p.map(str::to_owned), u.map(str::to_owned)));
    for (i, got) in kept_every_way(attributes).into_iter().enumerate() {
        assert_eq!(got, expected, "way {i}, attributes {attributes:?}");
    }
}

#[test]
fn a_selected_attribute_present_is_kept_in_every_decoder() {
    all(
        Ok((Some("ads"), Some("u-1"))),
        &[("page", "/p"), ("purpose", "ads"), ("user_id", "u-1")],
    );
    all(Ok((Some(""), None)), &[("purpose", "")]);
}

#[test]
fn an_absent_attribute_is_none_in_every_decoder() {
    all(Ok((None, None)), &[]);
    all(Ok((None, None)), &[("page", "/p"), ("Purpose", "ads")]);
}

#[test]
fn an_oversized_selected_value_is_rejected_like_any_attribute() {
    all(
        Err(InvalidReason::FieldTooLong),
        &[("purpose", "analytics")],
    );
    all(Ok((Some("12345678"), None)), &[("purpose", "12345678")]);
}

#[test]
fn a_repeated_key_keeps_its_last_value() {
    // JSON and Avro blocks may repeat a key; apache_avro resolves a map
    // into a hash map, where the last value is the one left.
    all(Ok((Some("b"), None)), &[("purpose", "a"), ("purpose", "b")]);
}

#[test]
fn a_selected_json_value_of_another_type_is_invalid_like_any_attribute() {
    let v = validator();
    for attributes in [
        r#"{"purpose":1}"#,
        r#"{"purpose":null}"#,
        r#"{"user_id":["u"]}"#,
    ] {
        let text = format!(
            r#"{{"event_id":"e","customer_id":"c","occurred_at":{},"action":"a","attributes":{attributes}}}"#,
            NOW.0
        );
        let err = v.decode(Encoding::Json, text.as_bytes(), NOW).unwrap_err();
        assert_eq!(err.reason, InvalidReason::InvalidField, "{attributes}");
    }
}

#[test]
fn kept_values_borrow_from_the_input_and_escapes_are_unescaped() {
    let v = validator();
    let text = json(&[("purpose", "ads")]);
    let tp = v.decode(Encoding::Json, &text, NOW).unwrap();
    assert!(points_into(&text, tp.attributes.get(0).unwrap()));
    let plain = avro(&[("purpose", "ads")]);
    let tp = v.decode(Encoding::Avro, &plain, NOW).unwrap();
    assert!(points_into(&plain, tp.attributes.get(0).unwrap()));

    let escaped = format!(
        r#"{{"event_id":"e","customer_id":"c","occurred_at":{},"action":"a","attributes":{{"purpos\u0065":"a\"d"}}}}"#,
        NOW.0
    );
    let tp = v.decode(Encoding::Json, escaped.as_bytes(), NOW).unwrap();
    assert_eq!(tp.attributes.get(0), Some("a\"d"));
}

/// Whether `s` lies inside `input`: borrowed, not copied.
fn points_into(input: &[u8], s: &str) -> bool {
    input.as_ptr_range().contains(&s.as_ptr())
}

#[test]
fn without_a_selection_nothing_is_kept() {
    let text = json(&[("purpose", "ads"), ("user_id", "u")]);
    let tp = crate::codec::json::decode(&text).unwrap();
    assert!(tp.attributes.is_empty());
    let plain = avro(&[("purpose", "ads")]);
    assert!(
        crate::codec::avro::decode(&plain)
            .unwrap()
            .attributes
            .is_empty()
    );
}
