//! The schema registry client, the schema look-ups of the pipeline and the
//! registration of output schemas, against a Confluent-compatible fake
//! registry on 127.0.0.1; and `journeyd run` on librdkafka's mock cluster
//! with a registry slow to answer.

use crate::common::registry as fake;
use crate::common::service;

use std::sync::Arc;
use std::time::Duration;

use journeyd::clock::Stopwatch;
use journeyd::codec::avro;
use journeyd::codec::confluent::{self, WriterSchemas};
use journeyd::codec::schemas::{STAGE_CHANGED, TOUCHPOINT};
use journeyd::codec::{InvalidReason, into_owned};
use journeyd::config::OutputsConfig;
use journeyd::model::{Channel, EventTime, Touchpoint};
use journeyd::registry::{
    LookupPolicy, RegistryClient, RegistryError, Retry, SchemaSource, register_outputs,
};
use journeyd::telemetry::Metrics;

use fake::FakeRegistry;

const NOW: EventTime = EventTime(1_767_225_600_000);

fn metrics() -> Arc<Metrics> {
    Arc::new(Metrics::new().unwrap())
}

fn client(url: &str) -> RegistryClient {
    RegistryClient::new(url, Duration::from_secs(5), metrics()).unwrap()
}

/// A URL nothing listens on.
fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn touchpoint() -> Touchpoint<'static> {
    Touchpoint {
        event_id: "e1".into(),
        customer_id: "c1".into(),
        occurred_at: NOW,
        channel: Channel::App,
        action: "login".into(),
        value: Some(4.5),
        session_id: None,
        attributes: Default::default(),
    }
}

fn framed(id: u32) -> Vec<u8> {
    let mut body = Vec::new();
    avro::encode_datum(&touchpoint(), &mut body);
    let mut out = Vec::new();
    confluent::frame(id, &body, &mut out);
    out
}

#[test]
fn schemas_are_fetched_by_id_with_typed_errors() {
    let registry = FakeRegistry::start();
    registry.add_schema(7, TOUCHPOINT);
    registry.add_typed_schema(8, "syntax = \"proto3\";", Some("PROTOBUF"));
    let client = client(&format!("{}/", registry.url()));
    assert_eq!(client.schema(7).unwrap(), TOUCHPOINT);
    assert_eq!(
        client.schema(9).unwrap_err(),
        RegistryError::NotFound {
            code: Some(40403),
            message: "Schema 9 not found".into()
        }
    );
    assert!(matches!(
        client.schema(8).unwrap_err(),
        RegistryError::Unsupported(_)
    ));
    assert_eq!(
        registry.requests(),
        [
            "GET /schemas/ids/7",
            "GET /schemas/ids/9",
            "GET /schemas/ids/8"
        ]
    );
}

#[test]
fn registering_returns_the_id_and_is_idempotent() {
    let registry = FakeRegistry::start();
    let client = client(&registry.url());
    let id = client
        .register("journey.stage-changes-value", STAGE_CHANGED)
        .unwrap();
    let again = client
        .register("journey.stage-changes-value", STAGE_CHANGED)
        .unwrap();
    assert_eq!(id, again);
    assert_eq!(registry.schema(id).as_deref(), Some(STAGE_CHANGED));
    assert_eq!(registry.subject("journey.stage-changes-value"), [id]);
}

#[test]
fn credentials_in_the_url_are_sent_as_basic_auth_and_never_shown() {
    let registry = FakeRegistry::start();
    registry.add_schema(1, TOUCHPOINT);
    registry.require_basic_auth("journeyd", "pa/ss@word");
    let anonymous = client(&registry.url());
    let refused = anonymous.schema(1).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "refused (HTTP 401, error 40101): Unauthorized"
    );
    let url = registry.url().replace("://", "://journeyd:pa%2Fss%40word@");
    let client = client(&url);
    assert_eq!(client.schema(1).unwrap(), TOUCHPOINT);
    assert_eq!(client.base_url(), registry.url());
    let shown = format!("{client:?}");
    assert!(
        !shown.contains("pa%2Fss") && !shown.contains("cGEv"),
        "{shown}"
    );
}

#[test]
fn each_request_is_bounded_by_the_timeout() {
    let registry = FakeRegistry::start();
    let client =
        RegistryClient::new(&registry.slow_url(), Duration::from_millis(200), metrics()).unwrap();
    let clock = Stopwatch::start();
    let error = client.schema(1).unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert!(
        clock.elapsed() < Duration::from_secs(9),
        "the slow endpoint answers after 10 s"
    );
}

#[test]
fn a_registry_that_is_down_or_unreachable_is_transient() {
    let registry = FakeRegistry::start();
    registry.set_down(true);
    let error = client(&registry.url()).schema(1).unwrap_err();
    assert_eq!(
        error,
        RegistryError::Unavailable(
            "HTTP 503, error 50003: Error while forwarding the request to the leader".into()
        )
    );
    let error = client(&closed_url()).schema(1).unwrap_err();
    assert!(error.is_transient(), "{error}");
}

#[test]
fn requests_are_counted_by_operation_and_outcome() {
    let registry = FakeRegistry::start();
    let metrics = metrics();
    let client =
        RegistryClient::new(&registry.url(), Duration::from_secs(5), metrics.clone()).unwrap();
    let _ = client.schema(3);
    let _ = client.register("s-value", "\"string\"");
    let text = metrics.encode_text();
    for line in [
        "journeyd_schema_registry_requests_total{operation=\"get_schema\",outcome=\"not_found\"} 1",
        "journeyd_schema_registry_requests_total{operation=\"register\",outcome=\"ok\"} 1",
        "journeyd_schema_registry_requests_total{operation=\"get_schema\",outcome=\"ok\"} 0",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
}

fn source(url: &str) -> SchemaSource {
    let mut policy = LookupPolicy::new(Duration::from_millis(50));
    policy.retry.first_backoff = Duration::from_millis(5);
    SchemaSource::with_registry(
        WriterSchemas::new(),
        Box::new(client(url)),
        policy,
        metrics(),
    )
}

#[test]
fn records_with_ids_only_the_registry_knows_decode() {
    let registry = FakeRegistry::start();
    registry.add_schema(21, TOUCHPOINT);
    let mut source = source(&registry.url());
    let bytes = framed(21);
    for _ in 0..3 {
        let schemas = source.resolve(&bytes, NOW).unwrap();
        let decoded = into_owned(schemas.decode(&bytes).unwrap());
        assert_eq!(decoded, touchpoint());
    }
    assert_eq!(registry.requests(), ["GET /schemas/ids/21"]);

    let unknown = framed(22);
    let invalid = source.resolve(&unknown, NOW).unwrap_err();
    assert_eq!(invalid.reason, InvalidReason::UnknownSchemaId);
    assert_eq!(
        invalid.detail,
        "schema id 22: not found (HTTP 404, error 40403): Schema 22 not found"
    );
    for _ in 0..2 {
        let invalid = source.resolve(&unknown, NOW).unwrap_err();
        assert_eq!(invalid.reason, InvalidReason::UnknownSchemaId);
    }
    assert_eq!(registry.requests().len(), 2, "unknown ids are remembered");
}

#[test]
fn an_unreachable_registry_dead_letters_with_a_detail_that_says_so() {
    let mut source = source(&closed_url());
    let invalid = source.resolve(&framed(5), NOW).unwrap_err();
    assert_eq!(invalid.reason, InvalidReason::UnknownSchemaId);
    assert!(
        invalid
            .detail
            .starts_with("schema id 5: the schema registry is unreachable (unavailable: "),
        "{invalid}"
    );
}

#[test]
fn output_schemas_are_registered_under_the_topic_subjects() {
    let registry = FakeRegistry::start();
    let outputs = OutputsConfig {
        funnel: "analytics.funnel".into(),
        ..OutputsConfig::default()
    };
    let metrics = metrics();
    let client = client(&registry.url());
    let ids = register_outputs(&client, &outputs, Retry::ONCE, &metrics).unwrap();
    assert_eq!(
        registry.subject("journey.stage-changes-value"),
        [ids.stage_changes]
    );
    assert_eq!(
        registry.subject("journey.churn-risk-value"),
        [ids.churn_risk]
    );
    assert_eq!(registry.subject("analytics.funnel-value"), [ids.funnel]);
    assert_eq!(
        registry.schema(ids.stage_changes).as_deref(),
        Some(STAGE_CHANGED)
    );
    let again = register_outputs(&client, &outputs, Retry::ONCE, &metrics).unwrap();
    assert_eq!(again, ids);

    registry.set_down(true);
    let error = register_outputs(&client, &outputs, Retry::ONCE, &metrics).unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot register the schema of outputs.stage_changes under subject \
         \"journey.stage-changes-value\": unavailable: HTTP 503, error 50003: Error while \
         forwarding the request to the leader"
    );
}

/// `(customer, sequence, to_stage, trigger_event_id)` of a JSON stage change.
fn stage_change(record: &service::Consumed) -> (String, u64, String, String) {
    let v = record.json();
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    (
        s("customer_id"),
        v["sequence"].as_u64().unwrap_or_default(),
        s("to_stage"),
        s("trigger_event_id"),
    )
}

/// Produces `(partition, key, value)` records to the input topic.
fn produce(brokers: &str, records: &[(i32, &str, Vec<u8>)]) {
    use rdkafka::producer::{BaseRecord, Producer};
    let producer = service::producer(brokers);
    for (partition, key, value) in records {
        producer
            .send(
                BaseRecord::to(service::INPUT)
                    .partition(*partition)
                    .key(*key)
                    .payload(value),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// A touchpoint in the Confluent wire format with schema id `id`.
fn framed_json(id: u32, event: &str, customer: &str, at: EventTime, action: &str) -> Vec<u8> {
    let text = service::touchpoint(event, customer, at.0, action);
    let decoded = journeyd::codec::json::decode(text.as_bytes()).unwrap();
    let mut body = Vec::new();
    avro::encode_datum(&decoded, &mut body);
    let mut out = Vec::new();
    confluent::frame(id, &body, &mut out);
    out
}

/// Partition 0 carries a schema id the registry takes 5 s to answer for;
/// partition 1 one it answers at once. Partition 1's derived events come
/// out, and its offsets are committed, while partition 0's records wait
/// for their look-up (their offsets not committed); then partition 0's
/// come out, in order.
#[test]
fn a_slow_look_up_holds_only_its_own_partition() {
    slow_look_up("");
}

/// The same with room for one record only: partition 0 is paused once its
/// first record is held, records fetched before the pause are read again,
/// and it resumes after the look-up.
#[test]
fn a_full_queue_pauses_its_partition_and_loses_nothing() {
    slow_look_up("max_held_bytes = 1\n");
}

fn slow_look_up(registry_keys: &str) {
    const SLOW: u32 = 31;
    const FAST: u32 = 30;
    const DAY: i64 = 86_400_000;
    let registry = FakeRegistry::start();
    registry.add_schema(SLOW, TOUCHPOINT);
    registry.add_schema(FAST, TOUCHPOINT);
    registry.delay_schema(SLOW, Duration::from_secs(5));
    let cluster = service::mock_cluster(2);
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[inputs]]\ntopic = \"{}\"\nencoding = \"confluent\"\n\n\
         [schema_registry]\nurl = \"{}\"\ntimeout = \"30s\"\n{registry_keys}\n\
         [time]\nidle_timeout = \"1s\"\n\n\
         [runtime]\ncommit_interval = \"200ms\"\n",
        service::INPUT,
        registry.url()
    );
    let mut journeyd = service::Journeyd::start(dir.path(), &brokers, &extra);
    journeyd.wait_assigned(2, Duration::from_secs(30));

    produce(
        &brokers,
        &[
            (0, "ana", framed_json(SLOW, "a1", "ana", NOW, "ad_click")),
            (
                0,
                "ana",
                framed_json(SLOW, "a2", "ana", NOW.plus_ms(DAY), "pricing_view"),
            ),
            (
                0,
                "ana",
                framed_json(SLOW, "a3", "ana", NOW.plus_ms(2 * DAY), "purchase"),
            ),
        ],
    );
    let slow = format!("GET /schemas/ids/{SLOW}");
    service::wait_for(Duration::from_secs(20), "the slow look-up", || {
        registry.requests().contains(&slow).then_some(())
    });
    let asked = Stopwatch::start();
    produce(
        &brokers,
        &[
            (1, "bob", framed_json(FAST, "b1", "bob", NOW, "ad_click")),
            (
                1,
                "bob",
                framed_json(FAST, "b2", "bob", NOW.plus_ms(DAY), "purchase"),
            ),
            // Moves partition 1's time on, so that bob's touchpoints are
            // processed; it stays buffered itself.
            (
                1,
                "clock",
                framed_json(FAST, "c1", "clock", NOW.plus_ms(30 * DAY), "page_view"),
            ),
        ],
    );

    let stage_changes = "journey.stage-changes";
    let early = service::consume(&brokers, stage_changes, 2, Duration::from_millis(4_000));
    let committed_early = service::committed(&brokers, service::GROUP, service::INPUT, 2);
    let answered_early = registry.answered().contains(&slow);
    let waited = asked.elapsed();
    let held = journeyd.metric("journeyd_schema_held_records");
    let early: Vec<_> = early.iter().map(stage_change).collect();
    assert!(
        !answered_early,
        "checked before the slow answer ({waited:?})"
    );
    assert_eq!(
        early,
        [
            ("bob".into(), 1, "awareness".into(), "b1".into()),
            ("bob".into(), 2, "purchase".into(), "b2".into()),
        ],
        "partition 1 flows while partition 0 waits ({waited:?})"
    );
    assert!(held >= 1.0, "{held} records held");
    assert!(
        committed_early[0] <= 0,
        "partition 0 committed past its held records: {committed_early:?}"
    );

    let all = service::consume(&brokers, stage_changes, 5, Duration::from_secs(20));
    let all: Vec<_> = all.iter().map(stage_change).collect();
    assert!(registry.answered().contains(&slow));
    assert_eq!(
        all[2..],
        [
            ("ana".into(), 1, "awareness".into(), "a1".into()),
            ("ana".into(), 2, "consideration".into(), "a2".into()),
            ("ana".into(), 3, "purchase".into(), "a3".into()),
        ],
        "partition 0 after its look-up, in order: {all:?}"
    );
    assert_eq!(journeyd.metric("journeyd_schema_held_records"), 0.0);
    service::wait_for(Duration::from_secs(20), "partition 0 committed", || {
        let committed = service::committed(&brokers, service::GROUP, service::INPUT, 2);
        (committed[0] > 0).then_some(())
    });
    assert_eq!(journeyd.stop(Duration::from_secs(30)).code(), Some(0));
    let lookups = registry.requests();
    assert_eq!(
        lookups.iter().filter(|r| **r == slow).count(),
        1,
        "{lookups:?}"
    );
}

/// Records held on an instance whose partition moves to another instance
/// are dropped there, not processed after the move: the new owner reads
/// them again from the committed offset, which they held back. Each stage
/// change comes out once.
#[test]
fn held_records_of_a_revoked_partition_are_left_to_the_new_owner() {
    const SLOW: u32 = 31;
    const DAY: i64 = 86_400_000;
    let registry = FakeRegistry::start();
    registry.add_schema(SLOW, TOUCHPOINT);
    registry.delay_schema(SLOW, Duration::from_secs(12));
    let cluster = service::mock_cluster(2);
    let brokers = cluster.bootstrap_servers();
    let extra = format!(
        "[[inputs]]\ntopic = \"{}\"\nencoding = \"confluent\"\n\n\
         [schema_registry]\nurl = \"{}\"\ntimeout = \"30s\"\n\n\
         [time]\nidle_timeout = \"1s\"\n\n\
         [runtime]\ncommit_interval = \"200ms\"\n",
        service::INPUT,
        registry.url()
    );
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = service::Journeyd::start(dir_a.path(), &brokers, &extra);
    a.wait_assigned(2, Duration::from_secs(30));
    let mut records = Vec::new();
    for (partition, customer) in [(0, "ana"), (1, "carl")] {
        let p = &customer[..1];
        for (n, (day, action)) in [(0, "ad_click"), (1, "pricing_view"), (2, "purchase")]
            .into_iter()
            .enumerate()
        {
            let event = format!("{p}{}", n + 1);
            let at = NOW.plus_ms(day * DAY);
            records.push((
                partition,
                customer,
                framed_json(SLOW, &event, customer, at, action),
            ));
        }
        // Moves the partition's time on past the journey; stays buffered.
        let clock = framed_json(
            SLOW,
            &format!("{p}-clock"),
            "clock",
            NOW.plus_ms(30 * DAY),
            "page_view",
        );
        records.push((partition, "clock", clock));
    }
    produce(&brokers, &records);
    let slow = format!("GET /schemas/ids/{SLOW}");
    service::wait_for(Duration::from_secs(20), "the slow look-up", || {
        registry.requests().contains(&slow).then_some(())
    });

    // B joins while A holds both partitions' records: one partition moves.
    let mut b = service::Journeyd::start(dir_b.path(), &brokers, &extra);
    service::wait_for(Duration::from_secs(60), "the partitions split", || {
        a.assert_running();
        let split = [&a, &b].map(|j| j.metric("journeyd_assigned_partitions"));
        (split == [1.0, 1.0]).then_some(())
    });
    assert!(
        !registry.answered().contains(&slow),
        "the split came before A's look-up ended"
    );

    let stage_changes = "journey.stage-changes";
    service::wait_for(Duration::from_secs(60), "both instances' look-ups", || {
        let asked = registry.requests().iter().filter(|r| **r == slow).count();
        let answered = registry.answered().iter().filter(|r| **r == slow).count();
        (asked == 2 && answered == 2).then_some(())
    });
    let mut got: Vec<_> = service::consume(&brokers, stage_changes, 6, Duration::from_secs(20))
        .iter()
        .map(stage_change)
        .collect();
    got.sort();
    let want: Vec<(String, u64, String, String)> = [
        ("ana", 1, "awareness", "a1"),
        ("ana", 2, "consideration", "a2"),
        ("ana", 3, "purchase", "a3"),
        ("carl", 1, "awareness", "c1"),
        ("carl", 2, "consideration", "c2"),
        ("carl", 3, "purchase", "c3"),
    ]
    .iter()
    .map(|(c, s, t, e)| ((*c).into(), *s, (*t).into(), (*e).into()))
    .collect();
    assert_eq!(got, want, "each stage change once");
    // Each of the 8 records processed once, by its partition's owner: A
    // did not process the ones it held for the partition that moved.
    let consumed = || [&a, &b].map(|j| j.metric("journeyd_events_consumed_total"));
    service::wait_for(Duration::from_secs(10), "8 records consumed", || {
        (consumed().iter().sum::<f64>() >= 8.0).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    let consumed = consumed();
    assert_eq!(consumed.iter().sum::<f64>(), 8.0, "{consumed:?}");
    assert!(a.terminate(Duration::from_secs(30)).success());
    assert!(b.terminate(Duration::from_secs(30)).success());
}
