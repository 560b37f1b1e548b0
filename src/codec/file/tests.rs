use std::io::Cursor;

use super::*;
use crate::codec::avro::write_container;
use crate::model::EventTime;

const GOOD: &str =
    r#"{"event_id":"e1","customer_id":"c1","occurred_at":1700000000000,"action":"login"}"#;

/// (position, raw, reason) of every record.
fn collect(input: &[u8], max: usize) -> Vec<(u64, Vec<u8>, Option<InvalidReason>)> {
    let mut reader = RecordReader::from_reader(Cursor::new(input))
        .unwrap()
        .with_max_record_bytes(max);
    let mut out = Vec::new();
    while let Some(r) = reader.next_record().unwrap() {
        out.push((r.position, r.raw.to_vec(), r.result.err().map(|e| e.reason)));
    }
    out
}

#[test]
fn reads_ndjson_lines_skipping_blank_ones() {
    let input = format!("{GOOD}\n\n   \n{GOOD}\r\nnot json\n{GOOD}");
    let got = collect(input.as_bytes(), 1 << 20);
    let positions: Vec<_> = got.iter().map(|r| (r.0, r.2)).collect();
    assert_eq!(
        positions,
        [
            (1, None),
            (4, None),
            (5, Some(InvalidReason::InvalidJson)),
            (6, None)
        ]
    );
    assert_eq!(got[1].1, GOOD.as_bytes());
    assert_eq!(got[2].1, b"not json");
}

#[test]
fn borrows_from_the_line_buffer() {
    let input = format!("{GOOD}\n{GOOD}\n");
    let mut reader = RecordReader::from_reader(input.as_bytes()).unwrap();
    assert_eq!(reader.format(), FileFormat::Ndjson);
    let record = reader.next_record().unwrap().unwrap();
    let tp = record.result.unwrap();
    assert!(matches!(tp.customer_id, std::borrow::Cow::Borrowed(_)));
    assert_eq!(tp.occurred_at, EventTime(1_700_000_000_000));
}

#[test]
fn long_lines_are_oversized_and_cut() {
    let long = format!(r#"{{"event_id":"{}"}}"#, "x".repeat(500));
    let input = format!("{GOOD}\n{long}\n{GOOD}\n");
    let got = collect(input.as_bytes(), 100);
    assert_eq!(got.len(), 3);
    assert_eq!((got[1].0, got[1].2), (2, Some(InvalidReason::Oversized)));
    assert_eq!(got[1].1.len(), 100);
    assert_eq!((got[2].0, got[2].2), (3, None));
}

#[test]
fn lines_longer_than_the_read_buffer_are_read_whole() {
    let line = format!(
        r#"{{"event_id":"e","customer_id":"c","occurred_at":1,"action":"a","pad":"{}"}}"#,
        "p".repeat(10_000)
    );
    let input = format!("{line}\n{GOOD}");
    let reader = std::io::BufReader::with_capacity(64, input.as_bytes());
    let mut reader = RecordReader::from_reader(reader).unwrap();
    let first = reader.next_record().unwrap().unwrap();
    assert_eq!(first.raw.len(), line.len());
    assert!(first.result.is_ok());
    assert!(reader.next_record().unwrap().unwrap().result.is_ok());
    assert!(reader.next_record().unwrap().is_none());
}

#[test]
fn invalid_utf8_and_bom() {
    let mut input = b"\xEF\xBB\xBF".to_vec();
    input.extend_from_slice(GOOD.as_bytes());
    input.extend_from_slice(b"\n{\"event_id\":\"\xff\"}\n");
    let got = collect(&input, 1 << 20);
    assert_eq!(got[0].2, None);
    assert_eq!(got[1].2, Some(InvalidReason::InvalidJson));
}

#[test]
fn empty_input_has_no_records() {
    assert!(collect(b"", 100).is_empty());
    assert!(collect(b"\n\n", 100).is_empty());
}

#[test]
fn detects_avro_container_files() {
    let events = crate::codec::avro_container::tests::events(4);
    let bytes = write_container(&events, Vec::new()).unwrap();
    let mut reader = RecordReader::from_reader(bytes.as_slice()).unwrap();
    assert_eq!(reader.format(), FileFormat::AvroContainer);
    let mut n = 0;
    while let Some(record) = reader.next_record().unwrap() {
        n += 1;
        assert_eq!(record.position, n);
        assert_eq!(record.result.unwrap(), events[n as usize - 1]);
    }
    assert_eq!(n, 4);
    let got = collect(&bytes, 10);
    assert!(got.iter().all(|r| r.2 == Some(InvalidReason::Oversized)));
}

#[test]
fn a_broken_avro_header_is_an_error() {
    let err = RecordReader::from_reader(&b"Obj\x01\x02"[..])
        .err()
        .unwrap();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
}

#[test]
fn opens_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.ndjson");
    std::fs::write(&path, format!("{GOOD}\n")).unwrap();
    let mut reader = RecordReader::open(&path).unwrap();
    assert!(reader.next_record().unwrap().unwrap().result.is_ok());
    assert!(RecordReader::open(dir.path().join("missing")).is_err());
}
