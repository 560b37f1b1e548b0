use std::borrow::Cow;

use apache_avro::DeflateSettings;

use super::*;
use crate::codec::avro::encode_datum;
use crate::model::{Channel, EventTime};

pub(crate) fn events(n: usize) -> Vec<Touchpoint<'static>> {
    (0..n)
        .map(|i| Touchpoint {
            event_id: format!("e{i}").into(),
            customer_id: format!("c{}", i % 3).into(),
            occurred_at: EventTime(1_700_000_000_000 + i as i64),
            channel: Channel::ALL[i % Channel::ALL.len()],
            action: "page_view".into(),
            value: (i % 2 == 0).then_some(i as f64),
            session_id: (i % 3 == 0).then(|| format!("s{i}").into()),
            attributes: Default::default(),
        })
        .collect()
}

fn file(events: &[Touchpoint<'_>], codec: Codec) -> Vec<u8> {
    write_container_with_codec(events, Vec::new(), codec).unwrap()
}

fn read_all(bytes: &[u8]) -> Vec<Result<Touchpoint<'static>, Invalid>> {
    ContainerReader::new(bytes).unwrap().collect()
}

#[test]
fn round_trips_with_every_supported_codec() {
    let written = events(50);
    for codec in [Codec::Null, Codec::Deflate(DeflateSettings::default())] {
        let bytes = file(&written, codec);
        let read: Vec<_> = read_all(&bytes).into_iter().map(Result::unwrap).collect();
        assert_eq!(read, written, "{codec:?}");
    }
}

#[test]
fn lends_borrowed_records_with_their_raw_bytes() {
    let written = events(3);
    let bytes = write_container(&written, Vec::new()).unwrap();
    let mut reader = ContainerReader::new(bytes.as_slice()).unwrap();
    for (i, tp) in written.iter().enumerate() {
        let record = reader.next_record().unwrap();
        assert_eq!(record.index, i as u64 + 1);
        let mut expected = Vec::new();
        encode_datum(tp, &mut expected);
        assert_eq!(record.raw, expected.as_slice());
        let got = record.result.unwrap();
        assert!(matches!(got.event_id, Cow::Borrowed(_)));
        assert_eq!(&got, tp);
    }
    assert!(reader.next_record().is_none());
    assert!(reader.next_record().is_none());
}

#[test]
fn resolves_a_file_written_with_another_schema() {
    let older = Schema::parse_str(
        r#"{"type":"record","name":"Touchpoint","fields":[
            {"name":"event_id","type":"string"},{"name":"customer_id","type":"string"},
            {"name":"occurred_at","type":"long"},{"name":"channel","type":"string"},
            {"name":"action","type":"string"}]}"#,
    )
    .unwrap();
    let mut writer = Writer::new(&older, Vec::new()).unwrap();
    for i in 0..3 {
        let record = Value::Record(vec![
            ("event_id".into(), Value::String(format!("e{i}"))),
            ("customer_id".into(), Value::String("c".into())),
            ("occurred_at".into(), Value::Long(1_700_000_000_000)),
            ("channel".into(), Value::String("web".into())),
            ("action".into(), Value::String("login".into())),
        ]);
        writer.append_value(record).unwrap();
    }
    let bytes = writer.into_inner().unwrap();
    let reader = ContainerReader::new(bytes.as_slice()).unwrap();
    assert_eq!(reader.writer_schema(), &older);
    let read: Vec<_> = reader.map(Result::unwrap).collect();
    assert_eq!(read.len(), 3);
    assert_eq!(
        (read[2].event_id.as_ref(), read[2].session_id.as_ref()),
        ("e2", None)
    );
}

#[test]
fn a_bad_record_does_not_end_the_file() {
    let mut written = events(3);
    written[1].customer_id = "".into();
    let reasons: Vec<_> = read_all(&file(&written, Codec::Null))
        .into_iter()
        .map(|r| r.err().map(|e| e.reason))
        .collect();
    assert_eq!(
        reasons,
        [None, Some(InvalidReason::MissingCustomerId), None]
    );
}

#[test]
fn a_truncated_file_yields_one_error_then_ends() {
    let written = events(20);
    let bytes = file(&written, Codec::Null);
    let header_len = {
        let empty = file(&[], Codec::Null);
        empty.len()
    };
    for cut in (header_len + 1..bytes.len()).step_by(7) {
        let read = read_all(&bytes[..cut]);
        let (last, good) = read.split_last().expect("at least the error");
        assert!(good.iter().all(Result::is_ok), "cut {cut}");
        let reason = last.as_ref().unwrap_err().reason;
        assert!(reason.is_structural(), "cut {cut}: {reason}");
    }
}

#[test]
fn a_truncated_header_is_rejected() {
    let bytes = file(&events(1), Codec::Null);
    for cut in 0..40 {
        let err = ContainerReader::new(&bytes[..cut]).err().expect("rejected");
        assert!(err.reason.is_structural(), "cut {cut}: {err}");
    }
}

#[test]
fn a_corrupt_sync_marker_is_invalid_avro() {
    let mut bytes = file(&events(5), Codec::Null);
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let read = read_all(&bytes);
    assert_eq!(read.len(), 1);
    assert_eq!(
        read[0].as_ref().unwrap_err().reason,
        InvalidReason::InvalidAvro
    );
}

#[test]
fn not_a_container_file_is_invalid_avro() {
    let err = ContainerReader::new(&b"{\"event_id\":1}\n"[..])
        .err()
        .unwrap();
    assert_eq!(err.reason, InvalidReason::InvalidAvro);
}

#[test]
fn an_empty_file_has_no_records() {
    assert!(read_all(&file(&[], Codec::Null)).is_empty());
}
