//! Any instance answers for any customer (docs/architecture.md#any-instance-answers):
//! the partition journeyd computes for a customer id is the one librdkafka's
//! producer picks, and two routers, one holding the customer's partition
//! and one not, answer alike: the second forwards to the first (over a real
//! socket), once, and says 503 rather than 404 whenever it cannot know.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use journeyd::config::{Config, TimeMode};
use journeyd::engine::Engine;
use journeyd::http::routing::{
    FORWARDED_FROM, Forwarder, Owner, Owners, Partitioner, Refresh, Routing, SERVED_BY,
};
use journeyd::http::{self, CustomerQuery, Holding, HttpState, Readiness};
use journeyd::model::{Channel, EventTime, Touchpoint};
use journeyd::telemetry::Metrics;
use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

const PARTITIONS: u32 = 4;

#[tokio::test]
async fn the_partition_of_an_id_is_the_one_librdkafka_picks() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("keys", 7, 1).unwrap();
    for property in ["consistent_random", "murmur2_random", "fnv1a_random"] {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("partitioner", property)
            .create()
            .expect("producer");
        let ours = Partitioner::from_property(Some(property)).unwrap();
        for n in 0..60 {
            let key = format!("customer-{n}-é");
            let record = FutureRecord::to("keys").key(&key).payload("x");
            let delivery = producer
                .send(record, Duration::from_secs(10))
                .await
                .expect("delivered");
            assert_eq!(
                delivery.partition as u32,
                ours.partition(key.as_bytes(), 7),
                "{property}: {key}"
            );
        }
    }
}

/// An engine that has seen alice and bob.
fn engine() -> Engine {
    let mut config = Config::default();
    config.time.mode = TimeMode::Event;
    let mut engine = Engine::new(&config).expect("default config");
    let mut out = Vec::new();
    for (i, (customer, action)) in [("alice", "ad_click"), ("bob", "page_view")]
        .into_iter()
        .enumerate()
    {
        let tp = Touchpoint {
            event_id: Cow::Owned(format!("e{i}")),
            customer_id: Cow::Borrowed(customer),
            occurred_at: EventTime(1_767_225_600_000),
            channel: Channel::Web,
            action: Cow::Borrowed(action),
            value: None,
            session_id: None,
            attributes: Default::default(),
        };
        engine.ingest(0, &tp, EventTime(0), &mut out);
    }
    engine.finish(&mut out);
    engine
}

/// One instance: its HTTP state, answering lookups from an engine that
/// holds the partitions `holding` says, with the table `owners` and the
/// address `me`; the sender of its table.
fn instance(
    me: Option<&str>,
    holding: fn(i32) -> Holding,
    owners: Owners,
) -> (
    HttpState,
    watch::Sender<Arc<Owners>>,
    std::sync::mpsc::Receiver<()>,
) {
    let (queries, mut rx) = mpsc::channel::<CustomerQuery>(16);
    let engine = engine();
    std::thread::spawn(move || {
        while let Some(query) = rx.blocking_recv() {
            query.answer_holding(&engine, holding);
        }
    });
    let (table, receiver) = watch::channel(Arc::new(owners));
    let (refresh, pokes) = Refresh::channel();
    let routing = Routing {
        me: me.map(Arc::from),
        partitioner: Partitioner::Crc32,
        owners: receiver,
        refresh,
        forwarder: Forwarder::new(me),
    };
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let state = HttpState::new(metrics, Readiness::new(), queries, None).with_routing(routing);
    (state, table, pokes)
}

/// Every partition owned by `owner`.
fn all_owned_by(owner: Owner, version: u64) -> Owners {
    let mut owners = Owners::new(PARTITIONS, version, true);
    for p in 0..PARTITIONS as i32 {
        owners.claim(p, owner.clone());
    }
    owners
}

/// The owner, served on a socket; its address.
async fn serve_owner() -> String {
    serve_instance(|_| Holding::Held).await
}

/// An instance that the tables name as the owner of every partition,
/// served on a socket, holding what `holding` says; its address.
async fn serve_instance(holding: fn(i32) -> Holding) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let owners = all_owned_by(Owner::Advertised(url.as_str().into()), 1);
    let (state, table, _pokes) = instance(Some(&url), holding, owners);
    tokio::spawn(async move {
        let _table = table;
        let _ = http::serve(listener, state, std::future::pending()).await;
    });
    url
}

struct Reply {
    status: StatusCode,
    served_by: Option<String>,
    json: Value,
}

async fn get(router: &Router, uri: &str, guard: bool) -> Reply {
    let mut request = Request::get(uri);
    if guard {
        request = request.header(FORWARDED_FROM, "http://elsewhere:1");
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let served_by = (response.headers().get(SERVED_BY)).map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Reply {
        status,
        served_by,
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
    }
}

/// The front instance: holds nothing; its table names `owner` for every
/// partition.
fn front(
    owner: &str,
) -> (
    Router,
    watch::Sender<Arc<Owners>>,
    std::sync::mpsc::Receiver<()>,
) {
    let owners = all_owned_by(Owner::Advertised(owner.into()), 1);
    let (state, table, pokes) = instance(Some("http://front:1"), |_| Holding::NotHeld, owners);
    (http::router(state), table, pokes)
}

#[tokio::test]
async fn an_instance_that_does_not_hold_the_customer_forwards_to_the_owner() {
    let owner = serve_owner().await;
    let (router, _table, _pokes) = front(&owner);
    let reply = get(&router, "/customers/alice", false).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    assert_eq!(reply.json["customer_id"], "alice");
    assert_eq!(reply.served_by.as_deref(), Some(owner.as_str()));
    let reply = get(&router, "/customers/nobody", false).await;
    assert_eq!(
        (reply.status, reply.json["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_customer")),
        "the owner's 404: unknown to the group"
    );
    let reply = get(&router, "/customers/a%2Fb%20c", false).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "escaped on the hop");
}

#[tokio::test]
async fn a_forwarded_request_is_answered_where_it_lands() {
    let owner = serve_owner().await;
    let (router, _table, _pokes) = front(&owner);
    let reply = get(&router, "/customers/alice", true).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json["error"], "not_owner");
    assert!(reply.served_by.is_none(), "not forwarded again");
}

#[tokio::test]
async fn an_owner_that_does_not_answer_is_503_not_404() {
    let closed = format!("http://127.0.0.1:{}", crate::common::service::free_port());
    let (router, _table, pokes) = front(&closed);
    let reply = get(&router, "/customers/alice", false).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json["error"], "owner_unreachable");
    assert!(
        reply.json["message"]
            .as_str()
            .unwrap()
            .contains("did not answer")
    );
    assert!(pokes.try_recv().is_ok(), "the table is refreshed");
}

#[tokio::test]
async fn a_stale_table_is_refreshed_and_the_lookup_tried_once_more() {
    let owner = serve_owner().await;
    // The front's table still names the front itself.
    let (router, table, pokes) = front("http://front:1");
    let refreshed = all_owned_by(Owner::Advertised(owner.as_str().into()), 2);
    let directory = std::thread::spawn(move || {
        pokes.recv().unwrap();
        table.send_replace(Arc::new(refreshed));
        (table, pokes)
    });
    let reply = get(&router, "/customers/bob", false).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    assert_eq!(reply.served_by.as_deref(), Some(owner.as_str()));
    let (table, _pokes) = directory.join().unwrap();
    // With nobody holding the partition, the answer is 503, not 404.
    table.send_replace(Arc::new(Owners::new(PARTITIONS, 3, false)));
    let reply = get(&router, "/customers/bob", false).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json["error"], "owner_unknown");
}

#[tokio::test]
async fn an_owner_that_no_longer_holds_the_partition_is_asked_once_more_then_503() {
    let former = serve_instance(|_| Holding::NotHeld).await;
    let (router, _table, pokes) = front(&former);
    let reply = get(&router, "/customers/alice", false).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.json["error"], "owner_unknown",
        "not the former owner's not_owner, meant for the forwarder"
    );
    assert!(pokes.try_recv().is_ok(), "the table was refreshed");
}

#[tokio::test]
async fn the_owner_restoring_the_partition_is_503() {
    let owners = all_owned_by(Owner::Advertised("http://me:1".into()), 1);
    let (state, _table, _pokes) = instance(Some("http://me:1"), |_| Holding::Restoring, owners);
    let reply = get(&http::router(state), "/customers/nobody", false).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json["error"], "partition_restoring");
}
