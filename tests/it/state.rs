//! Durable state through the real `journeyd run` binary on librdkafka's
//! mock cluster: customers come back exactly after a `kill -9`, a partition
//! moved to another instance continues its journeys and sequences, evicted
//! customers are tombstoned in the changelog, a version-1 changelog value
//! restores, and start-up refuses a changelog that is not co-partitioned
//! with the input.
//!
//! The reference for "the same journeys" is the engine itself, fed every
//! touchpoint in one uninterrupted run (event-time mode, deterministic):
//! the service must publish the same stage changes, with the same
//! sequences, up to the last touchpoint's event time.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use journeyd::model::EventTime;
use rdkafka::producer::{BaseRecord, Producer};
use serde_json::Value;

use common::journeys::{by_sequence, produce, reference, sentinels, workload};
use common::service::{
    CHANGELOG, INPUT, Journeyd, Record, committed, committed_with_metadata, mock_cluster, producer,
    read_all, start_up_error, wait_for,
};
use common::{BASE, DAY, Ev};

const PARTITIONS: i32 = 3;
const GROUP: &str = "journeyd-under-test";
const STAGE_CHANGES: &str = "journey.stage-changes";

/// The service's settings for these tests: frequent commits, and no
/// partition ever idle (the end of input is marked by a late touchpoint
/// on every partition instead, as in the end-to-end suite).
const SETTINGS: &str = r#"
[time]
mode = "hybrid"
idle_timeout = "1h"

[runtime]
commit_interval = "200ms"
shutdown_timeout = "10s"
"#;

/// The published stage changes, once `want` distinct ones are there.
fn published(brokers: &str, cutoff: EventTime, want: usize) -> BTreeMap<(String, u64), Value> {
    wait_for(
        Duration::from_secs(60),
        "every stage change published",
        || {
            let records = read_all(brokers, STAGE_CHANGES, 1);
            let values = records
                .iter()
                .map(|r| serde_json::from_slice(r.value.as_deref().unwrap()).unwrap());
            let changes = by_sequence(values, cutoff);
            (changes.len() >= want).then_some(changes)
        },
    )
}

/// Every customer's `GET /customers/{id}` answer from this instance alone
/// (`None`: 404, or held by another instance).
fn views(journeyd: &Journeyd, customers: &[String]) -> BTreeMap<String, Option<Value>> {
    customers
        .iter()
        .map(|id| {
            let (status, body) = journeyd.get_here(&format!("/customers/{id}"));
            let elsewhere = status == 503 && body.contains("not_owner");
            assert!(
                status == 200 || status == 404 || elsewhere,
                "{id}: {status} {body}"
            );
            let view = (status == 200).then(|| serde_json::from_str(&body).unwrap());
            (id.clone(), view)
        })
        .collect()
}

fn customers_of(events: &[Ev]) -> Vec<String> {
    let mut ids: Vec<String> = events.iter().map(|e| e.customer.clone()).collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Waits until `journeyd` has consumed `count` touchpoints and its
/// committed offsets stay put over a few commit intervals.
fn wait_settled(journeyd: &mut Journeyd, brokers: &str, count: usize) {
    wait_for(Duration::from_secs(60), "every touchpoint consumed", || {
        journeyd.assert_running();
        (journeyd.metric("journeyd_events_consumed_total") as usize >= count).then_some(())
    });
    let mut last = committed(brokers, GROUP, INPUT, PARTITIONS);
    wait_for(Duration::from_secs(30), "the commits to settle", || {
        std::thread::sleep(Duration::from_millis(800));
        let now = committed(brokers, GROUP, INPUT, PARTITIONS);
        let settled = now == last && now.iter().all(|&o| o >= 0);
        last = now;
        settled.then_some(())
    });
}

/// Asserts that every customer's sequences are dense from 1.
fn assert_dense(changes: &BTreeMap<(String, u64), Value>) {
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    for (customer, sequence) in changes.keys() {
        let previous = last.insert(customer, *sequence).unwrap_or(0);
        assert_eq!(*sequence, previous + 1, "{customer}: sequences not dense");
    }
}

#[test]
fn a_restart_after_kill_9_restores_every_customer_and_continues_their_journeys() {
    let cluster = mock_cluster(PARTITIONS);
    let brokers = cluster.bootstrap_servers();
    let events = workload(80, 1);
    let (first, second) = events.split_at(events.len() / 2);
    let cutoff = events.last().unwrap().at;
    let customers = customers_of(&events);
    produce(&brokers, first);

    let dir = tempfile::tempdir().unwrap();
    let mut before = Journeyd::start(dir.path(), &brokers, SETTINGS);
    before.wait_assigned(3, Duration::from_secs(30));
    wait_settled(&mut before, &brokers, first.len());
    // Each commit carries where its partition's event time stood.
    for (offset, metadata) in committed_with_metadata(&brokers, GROUP, INPUT, PARTITIONS) {
        assert!(
            offset > 0 && metadata.starts_with("journeyd/1 "),
            "{offset} {metadata:?}"
        );
    }
    let held = views(&before, &customers);
    assert!(held.values().filter(|v| v.is_some()).count() > 30);
    before.kill();

    let mut after = Journeyd::start(dir.path(), &brokers, SETTINGS);
    after.wait_assigned(3, Duration::from_secs(30));
    assert!(after.metric("journeyd_restore_records_total") > 0.0);
    let restored = after.metric("journeyd_restore_customers_total");
    let expected = held.values().filter(|v| v.is_some()).count() as f64;
    assert_eq!(restored, expected, "customers restored");
    // Touchpoints that were still buffered are read again: then every
    // customer, buffered touchpoints included, is as it was.
    wait_for(Duration::from_secs(30), "every customer as before", || {
        (views(&after, &customers) == held).then_some(())
    });

    produce(&brokers, second);
    sentinels(&brokers, PARTITIONS, cutoff.plus_ms(10 * DAY));
    let want = reference(&events, cutoff);
    let got = published(&brokers, cutoff, want.len());
    assert_dense(&got);
    assert_eq!(got, want);
    assert!(after.terminate(Duration::from_secs(30)).success());
}

#[test]
fn a_partition_moved_to_another_instance_continues_the_same_journeys() {
    let cluster = mock_cluster(PARTITIONS);
    let brokers = cluster.bootstrap_servers();
    let events = workload(80, 2);
    let (first, second) = events.split_at(events.len() / 2);
    let cutoff = events.last().unwrap().at;
    let customers = customers_of(&events);
    produce(&brokers, first);

    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = Journeyd::start(dir_a.path(), &brokers, SETTINGS);
    a.wait_assigned(3, Duration::from_secs(30));
    wait_settled(&mut a, &brokers, first.len());
    let held = views(&a, &customers);

    // B joins: some of A's partitions move to B, which restores them.
    let mut b = Journeyd::start(dir_b.path(), &brokers, SETTINGS);
    wait_for(Duration::from_secs(60), "the partitions split", || {
        a.assert_running();
        let split = [&a, &b].map(|j| j.metric("journeyd_assigned_partitions"));
        (split[0] >= 1.0 && split[1] >= 1.0 && split[0] + split[1] == 3.0).then_some(())
    });
    b.wait_assigned(
        b.metric("journeyd_assigned_partitions") as usize,
        Duration::from_secs(30),
    );
    assert!(b.metric("journeyd_restore_customers_total") > 0.0);
    // Every customer is held by exactly one of them, with every touchpoint
    // A had received, applied or still buffered: none lost, none twice.
    // (Which are still buffered depends on each instance's watermark.)
    let received = |view: &Value| {
        view["touchpoint_count"].as_u64().unwrap() + view["pending_events"].as_u64().unwrap()
    };
    wait_for(Duration::from_secs(30), "every customer held once", || {
        let (on_a, on_b) = (views(&a, &customers), views(&b, &customers));
        let same = customers.iter().all(|c| match (&on_a[c], &on_b[c]) {
            (Some(view), None) | (None, Some(view)) => {
                held[c].as_ref().map(received) == Some(received(view))
            }
            (None, None) => held[c].is_none(),
            (Some(_), Some(_)) => false,
        });
        same.then_some(())
    });

    produce(&brokers, second);
    sentinels(&brokers, PARTITIONS, cutoff.plus_ms(10 * DAY));
    let want = reference(&events, cutoff);
    let got = published(&brokers, cutoff, want.len());
    assert_dense(&got);
    assert_eq!(got, want);
    assert!(b.metric("journeyd_events_consumed_total") > 0.0);
    assert!(a.terminate(Duration::from_secs(30)).success());
    assert!(b.terminate(Duration::from_secs(30)).success());
}

#[test]
fn an_evicted_customer_is_tombstoned_in_the_changelog() {
    let cluster = mock_cluster(PARTITIONS);
    let brokers = cluster.bootstrap_servers();
    let ann = Ev::new("ann-1", "ann", BASE, "ad_click");
    produce(&brokers, std::slice::from_ref(&ann));
    // Ann lapses after 2 days and is evicted after 3.
    let settings = SETTINGS.replace(
        "idle_timeout = \"1h\"",
        "idle_timeout = \"1h\"\nlapse_after = \"2d\"\nstate_ttl = \"3d\"",
    );
    let dir = tempfile::tempdir().unwrap();
    let mut journeyd = Journeyd::start(dir.path(), &brokers, &settings);
    journeyd.wait_assigned(3, Duration::from_secs(30));
    let of_ann = |records: Vec<Record>| -> Vec<Record> {
        let key = Some(&b"ann"[..]);
        records
            .into_iter()
            .filter(|r| r.key.as_deref() == key)
            .collect()
    };
    wait_for(
        Duration::from_secs(30),
        "ann's state in the changelog",
        || {
            let records = read_all(&brokers, CHANGELOG, PARTITIONS);
            of_ann(records)
                .first()
                .is_some_and(|r| r.value.is_some())
                .then_some(())
        },
    );

    // 10 days later on every partition: the watermark passes both.
    sentinels(&brokers, PARTITIONS, BASE.plus_ms(10 * DAY));
    let ann_records = wait_for(Duration::from_secs(30), "ann's tombstone", || {
        let records = read_all(&brokers, CHANGELOG, PARTITIONS);
        let ann = of_ann(records);
        ann.last().is_some_and(|r| r.value.is_none()).then_some(ann)
    });
    assert!(
        ann_records[..ann_records.len() - 1]
            .iter()
            .all(|r| r.value.is_some()),
        "ann's states, then her tombstone: {ann_records:?}"
    );
    assert_eq!(journeyd.get("/customers/ann").0, 404);
    assert!(journeyd.metric("journeyd_customers_evicted_total") >= 1.0);
    assert!(journeyd.metric("journeyd_changelog_records_total") >= 2.0);
    assert!(journeyd.terminate(Duration::from_secs(30)).success());
}

#[test]
fn a_version_1_changelog_value_restores_through_the_service() {
    let cluster = mock_cluster(PARTITIONS);
    let brokers = cluster.bootstrap_servers();
    let golden =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/state-v1.bin"))
            .unwrap();
    let producer = producer(&brokers);
    producer
        .send(
            BaseRecord::to(CHANGELOG)
                .partition(0)
                .key("golden-1")
                .payload(&golden),
        )
        .unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut journeyd = Journeyd::start(dir.path(), &brokers, SETTINGS);
    journeyd.wait_assigned(3, Duration::from_secs(30));
    let (status, body) = journeyd.get("/customers/golden-1");
    assert_eq!(status, 200, "{body}");
    let view: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(view["stage"], "purchase");
    assert_eq!(view["stage_entered_at"], "2026-03-02T10:15:00Z");
    assert_eq!(view["touchpoint_count"], 6);
    assert_eq!(view["conversion_pending"], true);
    assert_eq!(view["churn"]["band"], "medium");
    assert_eq!(view["churn"]["purchases"], 1);
    assert_eq!(view["sequences"]["stage_changes"], 3);
    assert_eq!(view["sequences"]["churn_risk"], 1);
    assert_eq!(journeyd.metric("journeyd_restore_customers_total"), 1.0);
    assert_eq!(journeyd.metric("journeyd_restore_errors_total"), 0.0);
    assert!(journeyd.terminate(Duration::from_secs(30)).success());
}

#[test]
fn start_up_refuses_a_changelog_with_another_partition_count() {
    let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
    cluster.create_topic(INPUT, 3, 1).unwrap();
    cluster.create_topic(CHANGELOG, 2, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("journeyd.toml");
    let text = format!(
        "[kafka]\nbrokers = \"{}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n",
        cluster.bootstrap_servers()
    );
    std::fs::write(&config, text).unwrap();
    let stderr = start_up_error(&config);
    assert!(
        stderr.contains(
            "runtime.changelog_topic: topic \"journeyd.state-changelog\" has 2 partitions but \
             input topic \"touchpoints\" has 3"
        ),
        "{stderr}"
    );
}
