//! The input codec through its public API, with an allocation counter: an
//! ordinary event must decode without touching the heap.

use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::cell::Cell;
use std::io::BufReader;

use journeyd::codec::avro::{self, ContainerReader};
use journeyd::codec::confluent::{self, WriterSchemas};
use journeyd::codec::file::{FileFormat, RecordReader};
use journeyd::codec::{AttributeSelection, Encoding, FieldLimits, InvalidReason, Validator, json};
use journeyd::config::Config;
use journeyd::model::{Channel, EventTime, Touchpoint};

/// Counts allocations made by the current thread while counting is on.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns how many allocations it made on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get)
}

const NOW: EventTime = EventTime(1_700_000_100_000);
const LINE: &str = r#"{"event_id":"evt-000001","customer_id":"cust-42","occurred_at":1700000000000,"channel":"web","action":"product_view","value":19.99,"session_id":"s-1","attributes":{"page":"/p/42","referrer":"search"},"ingested_by":"collector-7"}"#;

fn sample() -> Touchpoint<'static> {
    Touchpoint {
        event_id: "evt-000001".into(),
        customer_id: "cust-42".into(),
        occurred_at: EventTime(1_700_000_000_000),
        channel: Channel::Web,
        action: "product_view".into(),
        value: Some(19.99),
        session_id: Some("s-1".into()),
        attributes: Default::default(),
    }
}

#[test]
fn json_decoding_does_not_allocate() {
    let v = Validator::default();
    let mut out = None;
    let n = allocations(|| out = Some(v.decode(Encoding::Json, LINE.as_bytes(), NOW)));
    let tp = out.unwrap().unwrap();
    assert_eq!(n, 0);
    assert_eq!(tp, sample());
    assert!(matches!(tp.event_id, Cow::Borrowed(_)));

    let rfc = LINE.replace("1700000000000", r#""2023-11-14T22:13:20.000Z""#);
    let mut out = None;
    let n = allocations(|| out = Some(v.decode(Encoding::Json, rfc.as_bytes(), NOW)));
    assert_eq!((out.unwrap().unwrap(), n), (sample(), 0));
}

#[test]
fn keeping_selected_attributes_does_not_allocate() {
    let v = Validator::default().with_attributes(AttributeSelection::of(["purpose", "user_id"]));
    // Neither selected attribute: nothing kept, nothing allocated.
    let mut out = None;
    let n = allocations(|| out = Some(v.decode(Encoding::Json, LINE.as_bytes(), NOW)));
    let tp = out.unwrap().unwrap();
    assert_eq!((n, tp.attributes.is_empty()), (0, true));
    // Both carried: kept, borrowed from the line.
    let line = LINE.replace(
        r#""referrer":"search""#,
        r#""referrer":"search","user_id":"u-7","purpose":"analytics""#,
    );
    let mut out = None;
    let n = allocations(|| out = Some(v.decode(Encoding::Json, line.as_bytes(), NOW)));
    let tp = out.unwrap().unwrap();
    assert_eq!(n, 0);
    assert_eq!(
        (tp.attributes.get(0), tp.attributes.get(1)),
        (Some("analytics"), Some("u-7"))
    );
}

#[test]
fn the_counter_counts() {
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8]))) > 0);
}

#[test]
fn avro_decoding_does_not_allocate() {
    let mut body = Vec::new();
    avro::encode_datum(&sample(), &mut body);
    let mut schemas = WriterSchemas::new();
    schemas.insert(3, avro::reader_schema().clone());
    let mut framed = Vec::new();
    confluent::frame(3, &body, &mut framed);
    let v = Validator::default();
    let mut plain = None;
    let mut registry = None;
    let n = allocations(|| {
        plain = Some(v.decode(Encoding::Avro, &body, NOW));
        registry = Some(v.decode(Encoding::Confluent(&schemas), &framed, NOW));
    });
    assert_eq!(n, 0);
    assert_eq!(plain.unwrap().unwrap(), sample());
    assert_eq!(registry.unwrap().unwrap(), sample());
}

#[test]
fn ndjson_files_do_not_allocate_per_line() {
    let text: String = (0..1000).map(|_| format!("{LINE}\n")).collect();
    let mut reader = RecordReader::from_reader(BufReader::new(text.as_bytes())).unwrap();
    assert_eq!(reader.format(), FileFormat::Ndjson);
    assert!(reader.next_record().unwrap().unwrap().result.is_ok());
    let mut ok = 0;
    let n = allocations(|| {
        while let Ok(Some(record)) = reader.next_record() {
            ok += u32::from(record.result.is_ok());
        }
    });
    assert_eq!((ok, n), (999, 0));
}

#[test]
fn container_files_do_not_allocate_per_record() {
    let events = vec![sample(); 200];
    let bytes = avro::write_container(&events, Vec::new()).unwrap();
    let mut reader = ContainerReader::new(bytes.as_slice()).unwrap();
    assert!(reader.next_record().unwrap().result.is_ok());
    let mut ok = 0;
    let n = allocations(|| {
        while let Some(record) = reader.next_record() {
            ok += u32::from(record.result.is_ok());
        }
    });
    assert_eq!((ok, n), (199, 0));
}

#[test]
fn every_reason_is_reachable_through_the_public_api() {
    let v = Validator::new(std::time::Duration::from_secs(300), 512);
    let schemas = WriterSchemas::new();
    let json_at =
        |t: i64| format!(r#"{{"event_id":"e","customer_id":"c","occurred_at":{t},"action":"a"}}"#);
    let cases: Vec<(Encoding<'_>, Vec<u8>, InvalidReason)> = vec![
        (Encoding::Json, b"{".to_vec(), InvalidReason::InvalidJson),
        (Encoding::Avro, vec![0x01], InvalidReason::InvalidAvro),
        (
            Encoding::Json,
            br#"{"customer_id":"c"}"#.to_vec(),
            InvalidReason::MissingEventId,
        ),
        (
            Encoding::Json,
            br#"{"event_id":"e"}"#.to_vec(),
            InvalidReason::MissingCustomerId,
        ),
        (
            Encoding::Json,
            json_at(1).into_bytes(),
            InvalidReason::TimestampTooOld,
        ),
        (
            Encoding::Json,
            json_at(NOW.millis() + 300_001).into_bytes(),
            InvalidReason::TimestampInFuture,
        ),
        (Encoding::Json, vec![b' '; 513], InvalidReason::Oversized),
        (
            Encoding::Confluent(&schemas),
            vec![0, 0, 0, 0, 9],
            InvalidReason::UnknownSchemaId,
        ),
        (
            Encoding::Confluent(&schemas),
            vec![0, 0],
            InvalidReason::Truncated,
        ),
        (
            Encoding::Json,
            br#"{"event_id":"e","customer_id":"c","occurred_at":"soon","action":"a"}"#.to_vec(),
            InvalidReason::InvalidField,
        ),
        (
            Encoding::Json,
            json_at(NOW.millis())
                .replace("\"c\"", &format!("\"{}\"", "c".repeat(257)))
                .into_bytes(),
            InvalidReason::FieldTooLong,
        ),
    ];
    let mut seen: Vec<_> = cases
        .into_iter()
        .map(|(encoding, bytes, expected)| {
            let err = v.decode(encoding, &bytes, NOW).unwrap_err();
            assert_eq!(err.reason, expected, "{err}");
            expected
        })
        .collect();
    seen.sort();
    // Every reason for input; `output_rejected` is for derived events, and
    // `capacity` and `unverified_duplicate` are the engine's refusals
    // (`tests/it/engine_capacity.rs`, `tests/it/replay.rs`).
    let engine = [
        InvalidReason::OutputRejected,
        InvalidReason::Capacity,
        InvalidReason::UnverifiedDuplicate,
    ];
    let input: Vec<_> = (InvalidReason::ALL.into_iter())
        .filter(|r| !engine.contains(r))
        .collect();
    assert_eq!(seen, input);
    assert!(json::decode(LINE.as_bytes()).is_ok());
}

/// A plain Avro datum of the shipped schema with `attributes`.
fn avro_with_attributes(tp: &Touchpoint<'_>, attributes: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    avro::encode_datum(tp, &mut body);
    // `encode_datum` ends with an empty map (a single 0): replace it.
    body.pop();
    fn long(v: i64, out: &mut Vec<u8>) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            out.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }
    let mut tail = Vec::new();
    long(attributes.len() as i64, &mut tail);
    for (k, v) in attributes {
        for s in [k, v] {
            long(s.len() as i64, &mut tail);
            tail.extend_from_slice(s.as_bytes());
        }
    }
    long(0, &mut tail);
    body.extend_from_slice(&tail);
    body
}

#[test]
fn avro_attributes_are_measured_without_allocating() {
    let body = avro_with_attributes(&sample(), &[("page", "/p/42"), ("referrer", "search")]);
    let v = Validator::default();
    let mut out = None;
    let n = allocations(|| out = Some(v.decode(Encoding::Avro, &body, NOW)));
    assert_eq!((out.unwrap().unwrap(), n), (sample(), 0));
}

#[test]
fn configured_field_limits_reject_over_long_fields_in_every_encoding() {
    let mut config = Config::default();
    config.limits.max_action_length = 8;
    config.limits.max_attribute_value_length = 4;
    let v = Validator::from_config(&config);
    assert_eq!(v.fields.action, 8);

    let expect_too_long = |result: Result<Touchpoint<'_>, journeyd::codec::Invalid>,
                           detail: &str| {
        let err = result.unwrap_err();
        assert_eq!(err.reason, InvalidReason::FieldTooLong, "{err}");
        assert_eq!(err.detail, detail);
    };
    // "product_view" is 12 bytes.
    let action = "action is 12 bytes long, limit 8";
    expect_too_long(v.decode(Encoding::Json, LINE.as_bytes(), NOW), action);
    let mut body = Vec::new();
    avro::encode_datum(&sample(), &mut body);
    expect_too_long(v.decode(Encoding::Avro, &body, NOW), action);
    let mut schemas = WriterSchemas::new();
    schemas.insert(3, avro::reader_schema().clone());
    let mut framed = Vec::new();
    confluent::frame(3, &body, &mut framed);
    expect_too_long(
        v.decode(Encoding::Confluent(&schemas), &framed, NOW),
        action,
    );

    let short = Touchpoint {
        action: "login".into(),
        ..sample()
    };
    let body = avro_with_attributes(&short, &[("page", "/p/42")]);
    expect_too_long(
        v.decode(Encoding::Avro, &body, NOW),
        "attributes[\"page\"] is 5 bytes long, limit 4",
    );
    // The default limits accept all of it.
    assert!(
        Validator::default()
            .decode(Encoding::Avro, &body, NOW)
            .is_ok()
    );
}

#[test]
fn replay_files_apply_the_field_limits_they_are_given() {
    let limits = FieldLimits {
        id: 6,
        ..FieldLimits::default()
    };
    let text = format!("{LINE}\n");
    let mut reader = RecordReader::from_reader(BufReader::new(text.as_bytes()))
        .unwrap()
        .with_field_limits(limits);
    let record = reader.next_record().unwrap().unwrap();
    let err = record.result.unwrap_err();
    assert_eq!(err.reason, InvalidReason::FieldTooLong);
    assert_eq!(err.detail, "customer_id is 7 bytes long, limit 6");

    let bytes = avro::write_container(&[sample()], Vec::new()).unwrap();
    let mut reader = RecordReader::from_reader(BufReader::new(bytes.as_slice()))
        .unwrap()
        .with_field_limits(limits);
    assert_eq!(reader.format(), FileFormat::AvroContainer);
    let record = reader.next_record().unwrap().unwrap();
    assert_eq!(
        record.result.unwrap_err().reason,
        InvalidReason::FieldTooLong
    );
}
