//! Output encoding: JSON against the replay NDJSON, Avro against
//! apache_avro's reader and writer for the shipped schemas, keys.

use std::path::Path;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::RecordSchema;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use compact_str::CompactString;
use proptest::prelude::*;

use super::*;
use crate::codec::Validator;
use crate::codec::file::RecordReader;
use crate::config::{Config, TimeMode};
use crate::engine::Engine;
use crate::model::{
    CesScore, ChannelCount, ConversionTimes, CsatScore, EventTime, ExperienceScores, MomentCounts,
    NpsScore, StageScores,
};

const IDS: OutputSchemaIds = OutputSchemaIds {
    stage_changes: 7,
    churn_risk: 0x0102_0304,
    funnel: u32::MAX,
    moments: 0x00ab_cdef,
};

fn avro() -> OutputEncoder {
    OutputEncoder::new(OutputFormat::Avro, IDS)
}

fn s(v: &str) -> CompactString {
    CompactString::from(v)
}

fn stage_changed(from: Option<&str>) -> StageChanged {
    StageChanged {
        customer_id: s("cust-ü"),
        sequence: 3,
        from_stage: from.map(s),
        to_stage: s("purchase"),
        direction: Direction::Return,
        trigger_event_id: from.map(|_| s("e9")),
        trigger_action: from.map(|_| s("purchase")),
        trigger_channel: from.map(|_| "web"),
        event_time: 1_700_000_000_000,
        detected_at: 1_700_000_000_500,
        time_in_previous_stage_ms: -1,
        touchpoint_count: 200,
        time_since_first_touchpoint_ms: from.map(|_| 3_600_000),
    }
}

fn churn(previous: Option<Band>, signals: &[&str]) -> ChurnRiskChanged {
    ChurnRiskChanged {
        customer_id: s("c1"),
        sequence: 1,
        risk: 0.61,
        band: Band::High,
        previous_band: previous,
        p_alive: 0.42,
        signals: signals.iter().copied().map(s).collect(),
        cause: ChurnCause::Event,
        trigger_event_id: previous.map(|_| s("e1")),
        event_time: -5,
        detected_at: i64::MAX,
    }
}

fn funnel(entries: Vec<StageCount>, pairs: Vec<PairCount>) -> FunnelWindow {
    FunnelWindow {
        sequence: 9,
        window_start: 1_700_000_040_000,
        window_end: 1_700_000_100_000,
        entries,
        pairs,
        active_customers: 42,
        revenue: 99.5,
        late_events: 0,
        channels: vec![ChannelCount {
            channel: "web",
            touchpoints: 5,
        }],
        scores: scores(),
        scores_by_stage: vec![StageScores {
            stage: s("advocacy"),
            nps: scores().nps,
            csat: CsatScore::default(),
            ces: scores().ces,
        }],
        time_to_convert: vec![ConversionTimes {
            from_stage: s("consideration"),
            to_stage: s("purchase"),
            conversions: 3,
            buckets: vec![0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            p50_ms: Some(240_000),
            p90_ms: None,
        }],
        moments: vec![MomentCounts {
            moment: s("cart"),
            started: 5,
            completed: 2,
            abandoned: 1,
            abandonment_rate: Some(1.0 / 3.0),
            buckets: vec![1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            p50_ms: Some(60_000),
            p90_ms: Some(240_000),
        }],
    }
}

fn scores() -> ExperienceScores {
    ExperienceScores {
        nps: NpsScore {
            responses: 3,
            promoters: 2,
            passives: 0,
            detractors: 1,
            score: Some(100.0 / 3.0),
        },
        csat: CsatScore::default(),
        ces: CesScore {
            responses: 1,
            score: Some(2.0),
        },
    }
}

fn pair(ratio: Option<f64>) -> PairCount {
    PairCount {
        from_stage: s("consideration"),
        to_stage: s("purchase"),
        conversions: 3,
        dropoffs: 1,
        dropoff_ratio: ratio,
        in_flight: 2,
    }
}

fn moment(outcome: MomentOutcome) -> MomentEnded {
    let completed = outcome == MomentOutcome::Completed;
    MomentEnded {
        customer_id: s("c-7"),
        sequence: 2,
        moment: s("cart"),
        outcome,
        started_at: 1_700_000_000_000,
        event_time: 1_700_003_599_999,
        duration_ms: 3_599_999,
        trigger_event_id: completed.then(|| s("e-42")),
        detected_at: 1_700_003_600_500,
    }
}

fn samples() -> Vec<Output> {
    let entry = StageCount {
        stage: s("awareness"),
        count: 10,
    };
    vec![
        Output::StageChanged(stage_changed(None)),
        Output::StageChanged(stage_changed(Some("awareness"))),
        Output::ChurnRiskChanged(churn(None, &[])),
        Output::ChurnRiskChanged(churn(Some(Band::Low), &["support_ticket", "nps"])),
        Output::FunnelWindow(funnel(vec![], vec![])),
        Output::FunnelWindow(funnel(vec![entry], vec![pair(Some(0.25)), pair(None)])),
        Output::MomentCompleted(moment(MomentOutcome::Completed)),
        Output::MomentAbandoned(moment(MomentOutcome::Abandoned)),
    ]
}

mod arbitrary;
mod expected;

use expected::*;

// ---- decoding with apache_avro ----

fn schema(kind: OutputKind) -> Schema {
    Schema::parse_str(kind.schema()).unwrap()
}

/// Checks the Confluent header, then reads the body with apache_avro;
/// every byte must belong to the datum.
fn decode(output: &Output, bytes: &[u8]) -> Value {
    let kind = topic_kind(output);
    let (id, body) = crate::codec::confluent::split(bytes).unwrap();
    assert_eq!(Some(id), kind.schema_id(&IDS));
    let schema = schema(kind);
    let reader = GenericDatumReader::builder(&schema).build().unwrap();
    let mut rest = body;
    let value = reader.read_value(&mut rest).unwrap();
    assert!(rest.is_empty(), "{} bytes left after the datum", rest.len());
    value
}

/// apache_avro's own encoding of the expected value.
fn reference_datum(output: &Output) -> Vec<u8> {
    let schema = schema(topic_kind(output));
    GenericDatumWriter::builder(&schema)
        .build()
        .unwrap()
        .write_value_to_vec(expected(output))
        .unwrap()
}

#[test]
fn avro_decodes_to_every_field_value() {
    let mut buf = Vec::new();
    for output in samples() {
        avro().encode(&output, &mut buf);
        assert_eq!(decode(&output, &buf), expected(&output), "{output:?}");
        assert_eq!(buf[5..], reference_datum(&output), "{output:?}");
    }
}

#[test]
fn avro_header_carries_the_schema_id_of_the_kind() {
    let mut buf = Vec::new();
    let [stage, _, churn, _, funnel, _, completed, abandoned] = samples().try_into().unwrap();
    avro().encode(&stage, &mut buf);
    assert_eq!(buf[..5], [0, 0, 0, 0, 7]);
    avro().encode(&churn, &mut buf);
    assert_eq!(buf[..5], [0, 1, 2, 3, 4]);
    avro().encode(&funnel, &mut buf);
    assert_eq!(buf[..5], [0, 0xff, 0xff, 0xff, 0xff]);
    for moment in [completed, abandoned] {
        avro().encode(&moment, &mut buf);
        assert_eq!(buf[..5], [0, 0, 0xab, 0xcd, 0xef]);
    }
}

#[test]
fn empty_arrays_are_a_single_zero_block() {
    let mut buf = Vec::new();
    encode_avro_datum(&Output::FunnelWindow(funnel(vec![], vec![])), &mut buf);
    // sequence 9, two timestamps, then entries = [0] and pairs = [0].
    let after_times = 1 + 6 + 6;
    assert_eq!(buf[after_times..after_times + 2], [0, 0]);
}

#[test]
fn counts_above_i64_max_saturate() {
    let mut o = funnel(vec![], vec![]);
    o.sequence = u64::MAX;
    let output = Output::FunnelWindow(o);
    let mut buf = Vec::new();
    avro().encode(&output, &mut buf);
    let Value::Record(fields) = decode(&output, &buf) else {
        panic!("a record")
    };
    assert_eq!(fields[0], ("sequence".to_owned(), Value::Long(i64::MAX)));
}

fn enum_symbols(schema: &Schema, field: &str) -> Vec<String> {
    let Schema::Record(RecordSchema { fields, .. }) = schema else {
        panic!("not a record")
    };
    match &fields.iter().find(|f| f.name == field).unwrap().schema {
        Schema::Enum(e) => e.symbols.clone(),
        other => panic!("{field} is not an enum: {other:?}"),
    }
}

#[test]
fn avro_enum_symbols_are_in_the_rust_order_and_index() {
    let stage = schema(OutputKind::StageChanges);
    let churn = schema(OutputKind::ChurnRisk);
    let directions = enum_symbols(&stage, "direction");
    assert_eq!(directions, Direction::ALL.map(Direction::as_str));
    for d in Direction::ALL {
        assert_eq!(directions[direction_index(d) as usize], d.as_str());
    }
    let bands = enum_symbols(&churn, "band");
    assert_eq!(bands, Band::ALL.map(Band::as_str));
    for b in Band::ALL {
        assert_eq!(bands[band_index(b) as usize], b.as_str());
    }
    let causes = enum_symbols(&churn, "cause");
    for c in [ChurnCause::Event, ChurnCause::Timer] {
        let name = serde_json::to_value(c).unwrap();
        assert_eq!(causes[cause_index(c) as usize], name.as_str().unwrap());
    }
    assert_eq!(causes.len(), 2);
    let outcomes = enum_symbols(&schema(OutputKind::Moments), "outcome");
    assert_eq!(outcomes, MomentOutcome::ALL.map(MomentOutcome::as_str));
    for o in MomentOutcome::ALL {
        assert_eq!(outcomes[outcome_index(o) as usize], o.as_str());
    }
}

// ---- JSON ----

#[test]
fn json_is_the_tagged_object_without_newline() {
    let mut buf = b"stale".to_vec();
    let output = Output::StageChanged(stage_changed(None));
    OutputEncoder::json().encode(&output, &mut buf);
    assert_eq!(
        std::str::from_utf8(&buf).unwrap(),
        r#"{"type":"stage_changed","customer_id":"cust-ü","sequence":3,"from_stage":null,"to_stage":"purchase","direction":"return","trigger_event_id":null,"trigger_action":null,"trigger_channel":null,"event_time":1700000000000,"detected_at":1700000000500,"time_in_previous_stage_ms":-1,"touchpoint_count":200,"time_since_first_touchpoint_ms":null}"#
    );
    let completed = Output::MomentCompleted(moment(MomentOutcome::Completed));
    OutputEncoder::json().encode(&completed, &mut buf);
    assert_eq!(
        std::str::from_utf8(&buf).unwrap(),
        r#"{"type":"moment_completed","customer_id":"c-7","sequence":2,"moment":"cart","outcome":"completed","started_at":1700000000000,"event_time":1700003599999,"duration_ms":3599999,"trigger_event_id":"e-42","detected_at":1700003600500}"#
    );
    let abandoned = Output::MomentAbandoned(moment(MomentOutcome::Abandoned));
    OutputEncoder::json().encode(&abandoned, &mut buf);
    assert!(
        std::str::from_utf8(&buf).unwrap().starts_with(
            r#"{"type":"moment_abandoned","customer_id":"c-7","sequence":2,"moment":"cart","outcome":"abandoned","#
        ),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    for output in samples() {
        OutputEncoder::json().encode(&output, &mut buf);
        assert_eq!(buf, serde_json::to_vec(&output).unwrap());
        assert_eq!(buf.last(), Some(&b'}'));
    }
}

/// Runs the golden journeys through the engine the way `replay` does and
/// returns its outputs, with what `replay_into` wrote for the same input.
fn golden_outputs() -> (Vec<Output>, String) {
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/journeys.ndjson");
    let wall = EventTime(1_893_456_000_000);
    let mut config = Config::default();
    let options = crate::replay::ReplayOptions {
        input: input.clone(),
        output: None,
        progress: false,
    };
    let mut ndjson = Vec::new();
    crate::replay::replay_into(&config, &options, wall, &mut ndjson).unwrap();
    config.time.mode = TimeMode::Event;
    let mut engine = Engine::new(&config).unwrap();
    let validator = Validator::new(config.time.max_future_skew, config.limits.max_message_bytes);
    let mut reader = RecordReader::open(&input).unwrap();
    let (mut outputs, mut latest) = (Vec::new(), EventTime::MIN);
    while let Some(record) = reader.next_record().unwrap() {
        let tp = record.result.unwrap();
        validator.check(&tp, wall).unwrap();
        latest = latest.max(tp.occurred_at);
        engine.ingest(0, &tp, latest, &mut outputs);
    }
    engine.finish(&mut outputs);
    (outputs, String::from_utf8(ndjson).unwrap())
}

#[test]
fn json_equals_the_replay_ndjson_lines_and_avro_reads_back() {
    let (outputs, ndjson) = golden_outputs();
    let lines: Vec<&str> = ndjson.lines().collect();
    assert_eq!(outputs.len(), lines.len());
    assert!(
        OutputKind::ALL
            .iter()
            .all(|k| { outputs.iter().any(|o| topic_kind(o) == *k) })
    );
    let mut buf = Vec::with_capacity(1024);
    for (output, line) in outputs.iter().zip(lines) {
        OutputEncoder::json().encode(output, &mut buf);
        assert_eq!(std::str::from_utf8(&buf).unwrap(), line);
        avro().encode(output, &mut buf);
        assert_eq!(decode(output, &buf), expected(output), "{line}");
    }
}

// ---- keys, kinds, buffers ----

#[test]
fn keys_are_the_customer_id_or_the_decimal_window_start() {
    let mut key = b"stale".to_vec();
    for encoder in [avro(), OutputEncoder::json()] {
        let [stage, _, churn, _, funnel, _, moment, _] = samples().try_into().unwrap();
        encoder.key(&stage, &mut key);
        assert_eq!(key, "cust-ü".as_bytes());
        encoder.key(&churn, &mut key);
        assert_eq!(key, b"c1");
        encoder.key(&moment, &mut key);
        assert_eq!(key, b"c-7");
        encoder.key(&funnel, &mut key);
        assert_eq!(key, b"1700000040000");
    }
    let mut negative = funnel(vec![], vec![]);
    negative.window_start = i64::MIN;
    avro().key(&Output::FunnelWindow(negative), &mut key);
    assert_eq!(key, b"-9223372036854775808");
}

#[test]
fn kinds_name_their_config_keys_topics_and_schemas() {
    let outputs = OutputsConfig::default();
    let keys: Vec<_> = outputs.topics().iter().map(|(k, _)| *k).collect();
    for kind in OutputKind::ALL {
        assert!(keys.contains(&kind.as_str()), "{kind:?}");
    }
    assert_eq!(
        OutputKind::StageChanges.topic(&outputs),
        "journey.stage-changes"
    );
    assert_eq!(OutputKind::ChurnRisk.topic(&outputs), "journey.churn-risk");
    assert_eq!(OutputKind::Funnel.topic(&outputs), "journey.funnel");
    assert_eq!(OutputKind::Moments.topic(&outputs), "journey.moments");
    let kinds = samples().iter().map(topic_kind).collect::<Vec<_>>();
    let [stage, churn, funnel, moments] = OutputKind::ALL;
    assert_eq!(
        kinds,
        [stage, stage, churn, churn, funnel, funnel, moments, moments]
    );
    let names = OutputKind::ALL.map(|k| schema(k).name().unwrap().name().to_owned());
    assert_eq!(
        names,
        [
            "StageChanged",
            "ChurnRiskChanged",
            "FunnelWindow",
            "MomentEnded"
        ]
    );
}

#[test]
fn encoding_reuses_the_buffer() {
    let output = Output::FunnelWindow(funnel(vec![], vec![pair(Some(0.5)); 4]));
    for encoder in [avro(), OutputEncoder::json()] {
        let mut buf = Vec::new();
        encoder.encode(&output, &mut buf);
        let (first, ptr, cap) = (buf.clone(), buf.as_ptr(), buf.capacity());
        encoder.encode(&output, &mut buf);
        assert_eq!((buf.as_ptr(), buf.capacity()), (ptr, cap));
        assert_eq!(buf, first);
    }
}

// ---- the erasure confirmation ----

fn erased(source: ErasureSource, state_found: bool) -> CustomerErased {
    CustomerErased {
        customer_id: s("cust-ü"),
        requested_at: 1_700_000_000_000,
        completed_at: 1_700_000_000_250,
        source,
        state_found,
    }
}

#[test]
fn customer_erased_avro_decodes_to_every_field_value() {
    let schema = Schema::parse_str(crate::codec::schemas::CUSTOMER_ERASED).unwrap();
    let encoder = avro().with_audit_schema_id(0x0a0b_0c0d);
    let mut buf = Vec::new();
    for (source, found) in [(ErasureSource::Http, true), (ErasureSource::Topic, false)] {
        encoder.encode_erased(&erased(source, found), &mut buf);
        let (id, body) = crate::codec::confluent::split(&buf).unwrap();
        assert_eq!(id, 0x0a0b_0c0d);
        let reader = GenericDatumReader::builder(&schema).build().unwrap();
        let mut rest = body;
        let value = reader.read_value(&mut rest).unwrap();
        assert!(rest.is_empty(), "{} bytes left after the datum", rest.len());
        let index = source_index(source);
        let expected = record(vec![
            ("customer_id", string("cust-ü")),
            ("requested_at", Value::TimestampMillis(1_700_000_000_000)),
            ("completed_at", Value::TimestampMillis(1_700_000_000_250)),
            ("source", symbol(index, source)),
            ("state_found", Value::Boolean(found)),
        ]);
        assert_eq!(value, expected);
    }
    assert_eq!(
        enum_symbols(&schema, "source"),
        ErasureSource::ALL.map(ErasureSource::as_str)
    );
}

#[test]
fn customer_erased_json_is_tagged() {
    let mut buf = b"stale".to_vec();
    let json = r#"{"type":"customer_erased","customer_id":"cust-ü","requested_at":1700000000000,"completed_at":1700000000250,"source":"topic","state_found":false}"#;
    OutputEncoder::json().encode_erased(&erased(ErasureSource::Topic, false), &mut buf);
    assert_eq!(std::str::from_utf8(&buf).unwrap(), json);
    avro().encode_erased(&erased(ErasureSource::Topic, false), &mut buf);
    assert_eq!(
        std::str::from_utf8(&buf).unwrap(),
        json,
        "Avro without an audit schema id writes JSON"
    );
}

#[test]
fn a_consent_withdrawal_is_confirmed_like_an_erasure_request() {
    // The engine's output: the same bytes under the same schema id, on
    // the same topic, as the pipeline's confirmation of a request.
    let record = erased(ErasureSource::Consent, true);
    let output = Output::CustomerErased(record.clone());
    assert_eq!(topic_kind(&output), OutputKind::Audit);
    for encoder in [
        OutputEncoder::json(),
        avro()
            .with_audit_schema_id(0x0a0b_0c0d)
            .with_evicted_schema_id(0x0102_0305),
    ] {
        let (mut as_output, mut as_request, mut key) = (Vec::new(), Vec::new(), Vec::new());
        encoder.encode(&output, &mut as_output);
        encoder.encode_erased(&record, &mut as_request);
        assert_eq!(as_output, as_request);
        encoder.key(&output, &mut key);
        assert_eq!(key, "cust-ü".as_bytes());
    }
    let mut json = Vec::new();
    OutputEncoder::json().encode(&output, &mut json);
    assert!(
        std::str::from_utf8(&json)
            .unwrap()
            .contains(r#""source":"consent""#)
    );
}

// ---- the eviction announcement ----

fn evicted() -> Output {
    Output::CustomerEvicted(CustomerEvicted {
        customer_id: s("cust-ü"),
        last_seen: 1_700_000_000_000,
        evicted_at: 1_734_560_000_000,
        detected_at: 1_734_560_000_250,
        last_stage_sequence: 4,
        last_churn_sequence: 0,
    })
}

#[test]
fn customer_evicted_avro_round_trips_under_its_own_schema_id() {
    let schema = Schema::parse_str(crate::codec::schemas::CUSTOMER_EVICTED).unwrap();
    let encoder = avro()
        .with_audit_schema_id(0x0a0b_0c0d)
        .with_evicted_schema_id(0x0102_0305);
    let (mut key, mut buf) = (Vec::new(), Vec::new());
    encoder.encode(&evicted(), &mut buf);
    encoder.key(&evicted(), &mut key);
    assert_eq!(key, "cust-ü".as_bytes());
    assert_eq!(topic_kind(&evicted()), OutputKind::Audit);
    let (id, body) = crate::codec::confluent::split(&buf).unwrap();
    assert_eq!(id, 0x0102_0305);
    let reader = GenericDatumReader::builder(&schema).build().unwrap();
    let mut rest = body;
    let value = reader.read_value(&mut rest).unwrap();
    assert!(rest.is_empty(), "{} bytes left after the datum", rest.len());
    let expected = record(vec![
        ("customer_id", string("cust-ü")),
        ("last_seen", Value::TimestampMillis(1_700_000_000_000)),
        ("evicted_at", Value::TimestampMillis(1_734_560_000_000)),
        ("detected_at", Value::TimestampMillis(1_734_560_000_250)),
        ("last_stage_sequence", Value::Long(4)),
        ("last_churn_sequence", Value::Long(0)),
    ]);
    assert_eq!(value, expected);

    // The erasure confirmations beside it keep their schema and bytes.
    let mut erased_buf = Vec::new();
    encoder.encode_erased(&erased(ErasureSource::Http, true), &mut erased_buf);
    assert_eq!(
        crate::codec::confluent::split(&erased_buf).unwrap().0,
        0x0a0b_0c0d
    );
    let erased_schema = Schema::parse_str(crate::codec::schemas::CUSTOMER_ERASED).unwrap();
    let reader = GenericDatumReader::builder(&erased_schema).build().unwrap();
    let mut rest = crate::codec::confluent::split(&erased_buf).unwrap().1;
    reader.read_value(&mut rest).unwrap();
    assert!(rest.is_empty());
}

#[test]
fn customer_evicted_json_is_tagged_and_without_a_schema_id_avro_writes_json() {
    let json = r#"{"type":"customer_evicted","customer_id":"cust-ü","last_seen":1700000000000,"evicted_at":1734560000000,"detected_at":1734560000250,"last_stage_sequence":4,"last_churn_sequence":0}"#;
    let mut buf = b"stale".to_vec();
    OutputEncoder::json().encode(&evicted(), &mut buf);
    assert_eq!(std::str::from_utf8(&buf).unwrap(), json);
    avro().encode(&evicted(), &mut buf);
    assert_eq!(std::str::from_utf8(&buf).unwrap(), json);
}
