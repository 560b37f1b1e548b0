//! Erasure (docs/erasure.md) with the real `journeyd run` binary against
//! librdkafka's mock cluster: `DELETE /customers/{id}` and records on the
//! erasure topic remove the customer (memory and de-duplication memory),
//! publish `CustomerErased` on the audit topic, commit the requests behind
//! their audit records, and send malformed requests to the dead-letter
//! topic.

use crate::common;

use std::time::Duration;

use journeyd::clock::wall_now;
use rdkafka::producer::{BaseRecord, Producer};
use serde_json::{Value, json};

use common::service::{
    Consumed, ERASURE, GROUP, INPUT, Journeyd, Launch, committed, consume, http_request,
    mock_cluster, producer, touchpoint, wait_for,
};

const TOKEN: &str = "erasure-test-token";
const WAIT: Duration = Duration::from_secs(60);

/// Hybrid time with short lateness and idleness, so that touchpoints are
/// processed within a second or so.
const TIME: &str = r#"
[time]
mode = "hybrid"
allowed_lateness = "100ms"
idle_timeout = "500ms"

[runtime]
commit_interval = "200ms"
shutdown_timeout = "10s"
"#;

fn send(brokers: &str, topic: &str, key: Option<&str>, value: &[u8]) {
    let producer = producer(brokers);
    let mut record = BaseRecord::<str, [u8]>::to(topic).payload(value);
    if let Some(key) = key {
        record = record.key(key);
    }
    producer.send(record).map_err(|(e, _)| e).expect("send");
    producer.flush(Duration::from_secs(10)).expect("flush");
}

fn send_touchpoint(brokers: &str, event_id: &str, customer: &str, action: &str) -> String {
    let value = touchpoint(event_id, customer, wall_now().millis(), action);
    send(brokers, INPUT, Some(customer), value.as_bytes());
    value
}

/// Waits until `GET /customers/{id}` answers `status`; the body.
fn wait_customer(journeyd: &Journeyd, id: &str, status: u16, token: Option<&str>) -> String {
    let path = format!("/customers/{id}");
    wait_for(
        WAIT,
        &format!("GET {path} to answer {status}"),
        || match http_request(journeyd.http(), "GET", &path, token) {
            Ok((s, body)) if s == status => Some(body),
            _ => None,
        },
    )
}

/// Waits until the customer's first touchpoint is processed (no longer
/// waiting for the watermark); the view.
fn wait_stage(journeyd: &Journeyd, id: &str, token: Option<&str>) -> Value {
    let path = format!("/customers/{id}");
    wait_for(WAIT, &format!("{id} to have a stage"), || {
        let (_, body) = http_request(journeyd.http(), "GET", &path, token).ok()?;
        let view: Value = serde_json::from_str(&body).ok()?;
        view["stage"].is_string().then_some(view)
    })
}

/// The records on `topic` whose key is `key`, once there are `count`.
fn wait_records(brokers: &str, topic: &str, key: &str, count: usize) -> Vec<Consumed> {
    wait_for(
        WAIT,
        &format!("{count} records for {key} on {topic}"),
        || {
            let found: Vec<Consumed> = consume(brokers, topic, usize::MAX, Duration::from_secs(1))
                .into_iter()
                .filter(|r| r.key.as_deref() == Some(key))
                .collect();
            (found.len() >= count).then_some(found)
        },
    )
}

/// `(sequence, to_stage, trigger_event_id)` of a customer's stage changes.
fn stage_changes(brokers: &str, customer: &str, count: usize) -> Vec<(u64, String, String)> {
    wait_records(brokers, "journey.stage-changes", customer, count)
        .iter()
        .map(|r| {
            let v = r.json();
            (
                v["sequence"].as_u64().unwrap_or_default(),
                v["to_stage"].as_str().unwrap_or_default().to_owned(),
                v["trigger_event_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

#[test]
fn delete_over_http_erases_the_customer_and_publishes_the_audit_record() {
    let cluster = mock_cluster(3);
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let http = format!("auth_token = \"{TOKEN}\"");
    let mut journeyd = Journeyd::launch(
        dir.path(),
        &brokers,
        Launch {
            extra: TIME,
            http: &http,
            ..Launch::default()
        },
    );
    journeyd.wait_ready(WAIT);
    let first = send_touchpoint(&brokers, "ann-1", "ann", "ad_click");
    assert_eq!(
        wait_stage(&journeyd, "ann", Some(TOKEN))["stage"],
        "awareness"
    );

    let (status, _) = http_request(journeyd.http(), "DELETE", "/customers/ann", None).unwrap();
    assert_eq!(status, 401, "no token");
    let (status, _) =
        http_request(journeyd.http(), "DELETE", "/customers/ann", Some("wrong")).unwrap();
    assert_eq!(status, 401, "wrong token");
    let before = wall_now().millis();
    let (status, body) =
        http_request(journeyd.http(), "DELETE", "/customers/ann", Some(TOKEN)).unwrap();
    assert_eq!(status, 202, "{body}");
    let accepted: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(accepted["customer_id"], "ann");
    assert_eq!(accepted["audit_topic"], "journey.audit");
    wait_customer(&journeyd, "ann", 404, Some(TOKEN));

    // The request went through the erasure topic, keyed by customer.
    let request = &wait_records(&brokers, ERASURE, "ann", 1)[0];
    assert_eq!(request.json()["source"], "http");
    let audit = wait_records(&brokers, "journey.audit", "ann", 1);
    let record = audit[0].json();
    assert_eq!(record["type"], "customer_erased");
    assert_eq!(record["customer_id"], "ann");
    assert_eq!(record["source"], "http");
    assert_eq!(record["state_found"], true);
    let requested_at = record["requested_at"].as_i64().unwrap();
    let completed_at = record["completed_at"].as_i64().unwrap();
    assert_eq!(
        requested_at,
        request.json()["requested_at"].as_i64().unwrap()
    );
    assert!(
        before <= requested_at && requested_at <= completed_at,
        "{record}"
    );

    // The same event again: de-duplication forgot it, a new journey starts
    // and its sequences start again at 1.
    send(&brokers, INPUT, Some("ann"), first.as_bytes());
    let changes = stage_changes(&brokers, "ann", 2);
    let awareness = (1, "awareness".to_owned(), "ann-1".to_owned());
    assert_eq!(changes, [awareness.clone(), awareness]);
    assert_eq!(
        wait_stage(&journeyd, "ann", Some(TOKEN))["touchpoint_count"],
        1
    );

    // A customer this instance never saw: erased all the same (they may
    // live elsewhere), and the audit record says nothing was found.
    let (status, _) =
        http_request(journeyd.http(), "DELETE", "/customers/zed", Some(TOKEN)).unwrap();
    assert_eq!(status, 202);
    let audit = wait_records(&brokers, "journey.audit", "zed", 1);
    assert_eq!(audit[0].json()["state_found"], false);
    assert_eq!(audit[0].json()["source"], "http");

    let metrics = wait_for(WAIT, "the erasure counters", || {
        let text = journeyd.metrics()?;
        let counted = text.contains("journeyd_erasures_total{source=\"http\",state=\"erased\"} 1")
            && text.contains("journeyd_erasures_total{source=\"http\",state=\"unknown\"} 1");
        counted.then_some(text)
    });
    assert!(!metrics.contains(TOKEN));
}

#[test]
fn records_on_the_erasure_topic_erase_and_are_committed_behind_their_audit_records() {
    let cluster = mock_cluster(1);
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let mut journeyd = Journeyd::start(dir.path(), &brokers, TIME);
    journeyd.wait_ready(WAIT);
    send_touchpoint(&brokers, "bob-1", "bob", "purchase");
    wait_stage(&journeyd, "bob", None);

    let requested_at = 1_767_225_600_000_i64;
    let value = json!({"requested_at": "2026-01-01T00:00:00Z"}).to_string();
    send(&brokers, ERASURE, Some("bob"), value.as_bytes());
    wait_customer(&journeyd, "bob", 404, None);
    let audit = wait_records(&brokers, "journey.audit", "bob", 1);
    let record = audit[0].json();
    assert_eq!(record["source"], "topic");
    assert_eq!(record["state_found"], true);
    assert_eq!(record["requested_at"], requested_at);

    // No value: the record's timestamp is the request time.
    let before = wall_now().millis();
    send(&brokers, ERASURE, Some("carl"), b"");
    let audit = wait_records(&brokers, "journey.audit", "carl", 1);
    let record = audit[0].json();
    assert_eq!(record["state_found"], false);
    let at = record["requested_at"].as_i64().unwrap();
    assert!(
        at >= before - 1_000 && at <= record["completed_at"].as_i64().unwrap(),
        "{record}"
    );

    // No key: nobody to erase; dead-lettered with the reason.
    send(&brokers, ERASURE, None, b"{}");
    let dead = wait_for(WAIT, "the keyless request on the dead-letter topic", || {
        consume(&brokers, "journey.dlq", 1, Duration::from_secs(1)).pop()
    });
    assert_eq!(dead.headers["journeyd.error.reason"], "missing_customer_id");
    assert_eq!(dead.headers["journeyd.source.topic"], ERASURE);
    assert!(dead.headers["journeyd.error.detail"].contains("without a key"));

    // All three requests are committed, in the group of the input.
    wait_for(WAIT, "the erasure offsets to be committed", || {
        (committed(&brokers, GROUP, ERASURE, 1) == [3]).then_some(())
    });
    let status = journeyd.stop(WAIT);
    assert!(status.success(), "{status}");

    // A restart resumes after them: only the new request is audited.
    let mut journeyd = Journeyd::start(dir.path(), &brokers, TIME);
    journeyd.wait_ready(WAIT);
    send(&brokers, ERASURE, Some("dora"), b"");
    wait_records(&brokers, "journey.audit", "dora", 1);
    let audited: Vec<Option<String>> = consume(&brokers, "journey.audit", 3, WAIT)
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(
        audited,
        [Some("bob".into()), Some("carl".into()), Some("dora".into())],
        "requests before the commit are not carried out twice"
    );
    let metrics = journeyd.metrics().unwrap_or_default();
    assert!(
        metrics.contains("journeyd_erasures_total{source=\"topic\",state=\"unknown\"} 1"),
        "{metrics}"
    );
}
