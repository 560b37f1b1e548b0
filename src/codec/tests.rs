//! Property tests: hostile bytes never panic, hang or loop any decoder, and
//! every encoding round-trips arbitrary touchpoints.

use apache_avro::Schema;
use proptest::prelude::*;

use super::avro::{self, ContainerReader, DatumDecoder};
use super::confluent::{self, WriterSchemas};
use super::file::RecordReader;
use super::{Encoding, Validator, json};
use crate::model::{Channel, EventTime, Touchpoint};

/// A writer schema with arrays, maps and nested records, to exercise the
/// resolution path.
const WIDE: &str = r#"{"type":"record","name":"Touchpoint","fields":[
    {"name":"tags","type":{"type":"array","items":"string"}},
    {"name":"customer_id","type":"string"},
    {"name":"event_id","type":"string"},
    {"name":"occurred_at","type":"long"},
    {"name":"extra","type":{"type":"map","values":{"type":"array","items":"long"}}},
    {"name":"channel","type":"string"},
    {"name":"action","type":"string"},
    {"name":"value","type":["null","float","double"]}]}"#;

fn touchpoint() -> impl Strategy<Value = Touchpoint<'static>> {
    (
        (".{1,12}", ".{1,12}", any::<i64>(), 0..Channel::ALL.len()),
        (
            ".{1,12}",
            proptest::option::of(-1e12..1e12f64),
            proptest::option::of(".{0,8}"),
        ),
    )
        .prop_map(|((e, c, t, ch), (a, v, s))| Touchpoint {
            event_id: e.into(),
            customer_id: c.into(),
            occurred_at: EventTime(t),
            channel: Channel::ALL[ch],
            action: a.into(),
            value: v,
            session_id: s.map(Into::into),
            attributes: Default::default(),
        })
}

fn container_bytes(events: &[Touchpoint<'_>]) -> Vec<u8> {
    avro::write_container(events, Vec::new()).unwrap_or_default()
}

/// Drains a container reader; at most one item per byte plus the error.
fn drain_container(bytes: &[u8]) {
    if let Ok(reader) = ContainerReader::new(bytes) {
        assert!(reader.count() <= bytes.len() + 1);
    }
}

fn drain_file(bytes: &[u8]) {
    if let Ok(mut reader) = RecordReader::from_reader(bytes) {
        let mut n = 0;
        while let Ok(Some(_)) = reader.next_record() {
            n += 1;
            assert!(n <= bytes.len() + 1);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = json::decode(&bytes);
        let _ = avro::decode(&bytes);
        let _ = avro::decode_datum(&bytes, avro::reader_schema());
        let wide = Schema::parse_str(WIDE).unwrap();
        let _ = avro::decode_datum(&bytes, &wide);
        let _ = confluent::split(&bytes);
        let mut schemas = WriterSchemas::new();
        schemas.insert(0, wide);
        let _ = schemas.decode(&bytes);
        let v = Validator::default();
        for enc in [Encoding::Json, Encoding::Avro, Encoding::Confluent(&schemas)] {
            let _ = v.decode(enc, &bytes, EventTime(1_700_000_000_000));
        }
        drain_container(&bytes);
        drain_file(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_container_header_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut bytes = container_bytes(&[]);
        bytes.extend_from_slice(&tail);
        drain_container(&bytes);
        drain_file(&bytes);
    }

    #[test]
    fn damaged_container_files_never_panic(
        events in proptest::collection::vec(touchpoint(), 1..8),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = container_bytes(&events);
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        drain_container(&bytes);
    }

    #[test]
    fn avro_round_trips(tp in touchpoint()) {
        let mut bytes = Vec::new();
        avro::encode_datum(&tp, &mut bytes);
        prop_assert_eq!(&avro::decode(&bytes).unwrap(), &tp);
        prop_assert_eq!(&avro::decode_datum(&bytes, avro::reader_schema()).unwrap(), &tp);
        let decoder = DatumDecoder::new(avro::reader_schema().clone());
        prop_assert_eq!(&decoder.decode(&bytes).unwrap(), &tp);
    }

    #[test]
    fn container_files_round_trip(events in proptest::collection::vec(touchpoint(), 0..20)) {
        let bytes = container_bytes(&events);
        let read: Vec<_> = ContainerReader::new(bytes.as_slice()).unwrap().collect();
        prop_assert_eq!(read, events.into_iter().map(Ok).collect::<Vec<_>>());
    }

    #[test]
    fn json_round_trips(tp in touchpoint()) {
        let json = serde_json::json!({
            "event_id": tp.event_id,
            "customer_id": tp.customer_id,
            "occurred_at": tp.occurred_at.millis(),
            "channel": tp.channel.as_str(),
            "action": tp.action,
            "value": tp.value,
            "session_id": tp.session_id,
            "attributes": {"k": "v"},
        });
        let text = serde_json::to_vec(&json).unwrap();
        let back = json::decode(&text).unwrap();
        // Without serde_json's float_roundtrip a parse may be off by an ulp.
        let close = match (back.value, tp.value) {
            (Some(a), Some(b)) => (a - b).abs() <= b.abs() * 1e-15,
            (a, b) => a == b,
        };
        prop_assert!(close, "{:?} != {:?}", back.value, tp.value);
        prop_assert_eq!(&Touchpoint { value: tp.value, ..back }, &tp);
    }
}
