//! The HTTP API through the router (no socket), plus one run over a real
//! socket. Customer lookups are answered by a thread that owns a real
//! engine, as the driver's thread does in the service.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use journeyd::config::{Config, TimeMode};
use journeyd::engine::Engine;
use journeyd::http::{
    self, CustomerQuery, ErasureCommand, Forwarded, HttpState, Readiness, ServerLimits,
};
use journeyd::model::{Channel, EventTime, Touchpoint};
use journeyd::telemetry::{EngineSnapshot, Metrics};
use serde_json::Value;
use tokio::sync::mpsc;
use tower::ServiceExt;

const DAY: i64 = 86_400_000;
/// 2026-01-01T00:00:00Z.
const BASE: EventTime = EventTime(1_767_225_600_000);
const TOKEN: &str = "correct-horse-battery-staple";

/// An engine that has seen alice reach purchase and bob browse.
fn engine() -> Engine {
    let mut config = Config::default();
    config.time.mode = TimeMode::Event;
    let mut engine = Engine::new(&config).expect("default config");
    let events = [
        ("alice", 0, "ad_click"),
        ("alice", 1, "pricing_view"),
        ("alice", 2, "purchase"),
        ("bob", 1, "page_view"),
    ];
    let mut out = Vec::new();
    for (i, (customer, day, action)) in events.into_iter().enumerate() {
        let tp = Touchpoint {
            event_id: Cow::Owned(format!("e{i}")),
            customer_id: Cow::Borrowed(customer),
            occurred_at: BASE.plus_ms(day * DAY),
            channel: Channel::Web,
            action: Cow::Borrowed(action),
            value: Some(25.0),
            session_id: None,
            attributes: Default::default(),
        };
        engine.ingest(0, &tp, EventTime(0), &mut out);
    }
    engine.finish(&mut out);
    engine
}

/// The router, its readiness state and the metrics, with a thread owning
/// the engine that answers lookups until the router is dropped, and one
/// that takes erasures, answering them with `forwarded` and passing the
/// customer ids on to `erased`.
struct App {
    router: Router,
    readiness: Readiness,
    erased: std::sync::mpsc::Receiver<String>,
}

fn app(token: Option<&str>) -> App {
    app_forwarding(token, Forwarded::Stored)
}

/// [`app`] without a token, with `http.allow_unauthenticated_erasure`.
fn open_app(forwarded: Forwarded) -> App {
    app_with(None, forwarded, true)
}

fn app_forwarding(token: Option<&str>, forwarded: Forwarded) -> App {
    app_with(token, forwarded, false)
}

fn app_with(token: Option<&str>, forwarded: Forwarded, allow_unauthenticated: bool) -> App {
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let (queries, mut rx) = mpsc::channel::<CustomerQuery>(16);
    let engine = engine();
    metrics.observe_engine(&EngineSnapshot::of(&engine, BASE.plus_ms(3 * DAY)));
    std::thread::spawn(move || {
        while let Some(query) = rx.blocking_recv() {
            query.answer(&engine);
        }
    });
    let (erasures, mut commands) = mpsc::channel::<ErasureCommand>(16);
    let (erased_tx, erased) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        while let Some(command) = commands.blocking_recv() {
            let _ = erased_tx.send(command.customer_id);
            let _ = command.reply.send(forwarded);
        }
    });
    let readiness = Readiness::new();
    let state = HttpState::new(
        metrics,
        readiness.clone(),
        queries,
        token.map(str::to_owned),
    )
    .with_erasures(erasures, "journey.audit")
    .allow_unauthenticated_erasure(allow_unauthenticated);
    App {
        router: http::router(state),
        readiness,
        erased,
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

async fn send(router: &Router, method: Method, uri: &str, token: Option<&str>) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let request = request.body(Body::empty()).expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    Reply {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).expect("UTF-8"),
    }
}

async fn get(router: &Router, uri: &str) -> Reply {
    send(router, Method::GET, uri, None).await
}

#[tokio::test]
async fn healthz_answers_ok() {
    let reply = get(&app(None).router, "/healthz").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "ok");
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let reply = get(&app(None).router, "/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.headers[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    for name in [
        "journeyd_events_invalid_total{reason=\"invalid_json\"} 0",
        "journeyd_events_unverified_total{reason=\"horizon\"} 0",
        "journeyd_events_unverified_total{reason=\"memory\"} 0",
        "journeyd_tracked_customers 2",
        "journeyd_customers{stage=\"purchase\"} 1",
        "journeyd_ready 0",
        "journeyd_build_info{version=",
    ] {
        assert!(reply.body.contains(name), "{name} missing:\n{}", reply.body);
    }
}

#[tokio::test]
async fn readyz_is_503_until_consuming_with_state_restored() {
    let app = app(None);
    let reply = get(&app.router, "/readyz").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["ready"], false);
    assert_eq!(reply.json()["reason"], "no_partitions_assigned");

    app.readiness.set_assigned_partitions(4);
    app.readiness.set_restoring_partitions(3);
    app.readiness.add_restored_records(500);
    app.readiness.set_consuming(true);
    let reply = get(&app.router, "/readyz").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["reason"], "restoring");
    assert_eq!(reply.json()["restoring_partitions"], 3);
    assert_eq!(reply.json()["restored_records"], 500);

    app.readiness.set_restoring_partitions(0);
    let reply = get(&app.router, "/readyz").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["ready"], true);
    assert!(reply.json().get("reason").is_none());
    let metrics = get(&app.router, "/metrics").await.body;
    assert!(metrics.contains("journeyd_ready 1"), "{metrics}");
    assert!(
        metrics.contains("journeyd_restore_records_total 500"),
        "{metrics}"
    );
}

#[tokio::test]
async fn known_customer_is_served_as_json() {
    let reply = get(&app(None).router, "/customers/alice").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/json");
    let view = reply.json();
    assert_eq!(view["customer_id"], "alice");
    assert_eq!(view["stage"], "purchase");
    assert_eq!(view["stage_ordinal"], 3);
    assert_eq!(view["stage_entered_at"], BASE.plus_ms(2 * DAY).to_rfc3339());
    assert_eq!(view["last_seen_at"], BASE.plus_ms(2 * DAY).to_rfc3339());
    assert_eq!(view["touchpoint_count"], 3);
    assert_eq!(view["churn"]["purchases"], 1);
    assert!(
        view["churn"]["band"].is_string(),
        "a buyer has a churn band"
    );
    assert_eq!(
        view["churn"]["first_purchase_at"],
        BASE.plus_ms(2 * DAY).to_rfc3339()
    );
    assert_eq!(view["sequences"]["stage_changes"], 3);
    assert_eq!(view["sequences"]["churn_risk"], 1);
}

#[tokio::test]
async fn a_customer_without_purchases_has_no_band() {
    let reply = get(&app(None).router, "/customers/bob").await;
    assert_eq!(reply.status, StatusCode::OK);
    let view = reply.json();
    assert_eq!(view["stage"], "awareness");
    assert_eq!(view["churn"]["band"], Value::Null);
    assert_eq!(view["churn"]["purchases"], 0);
    assert_eq!(view["churn"]["first_purchase_at"], Value::Null);
}

#[tokio::test]
async fn unknown_customer_is_404_json() {
    let reply = get(&app(None).router, "/customers/nobody").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["error"], "unknown_customer");
}

#[tokio::test]
async fn lookups_without_a_driver_are_503() {
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let (queries, rx) = mpsc::channel::<CustomerQuery>(1);
    let state = HttpState::new(metrics, Readiness::new(), queries.clone(), None)
        .with_query_timeout(Duration::from_millis(50));
    let router = http::router(state);
    let reply = get(&router, "/customers/alice").await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "nobody answers"
    );
    assert_eq!(reply.json()["error"], "engine_timeout");
    let reply = get(&router, "/customers/alice").await;
    assert_eq!(
        reply.json()["error"],
        "engine_busy",
        "the unanswered query fills the channel"
    );
    assert_eq!(reply.headers[header::RETRY_AFTER], "1");
    drop(rx);
    let reply = get(&router, "/customers/alice").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["error"], "engine_unavailable");
}

#[tokio::test]
async fn customers_need_the_token_when_one_is_set() {
    let router = app(Some(TOKEN)).router;
    let reply = send(&router, Method::GET, "/customers/alice", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.headers[header::WWW_AUTHENTICATE],
        "Bearer realm=\"journeyd\""
    );
    let reply = send(&router, Method::GET, "/customers/alice", Some("wrong")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(!reply.body.contains(TOKEN));
    let reply = send(&router, Method::GET, "/customers/alice", Some(TOKEN)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["stage"], "purchase");
}

#[tokio::test]
async fn erasure_needs_the_token_when_one_is_set() {
    let app = app(Some(TOKEN));
    let reply = send(&app.router, Method::DELETE, "/customers/alice", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["error"], "unauthorized");
    let reply = send(
        &app.router,
        Method::DELETE,
        "/customers/alice",
        Some("wrong"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        app.erased.try_recv().is_err(),
        "nothing reached the engine's thread"
    );
    let reply = send(&app.router, Method::DELETE, "/customers/alice", Some(TOKEN)).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(app.erased.try_recv().as_deref(), Ok("alice"));
}

#[tokio::test]
async fn probes_and_metrics_stay_open_with_a_token() {
    let router = app(Some(TOKEN)).router;
    assert_eq!(get(&router, "/healthz").await.status, StatusCode::OK);
    assert_eq!(
        get(&router, "/readyz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let metrics = get(&router, "/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(!metrics.body.contains(TOKEN));
}

#[tokio::test]
async fn erasure_is_accepted_once_the_request_is_stored() {
    let app = open_app(Forwarded::Stored);
    let reply = send(&app.router, Method::DELETE, "/customers/carol%20c", None).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/json");
    let body = reply.json();
    assert_eq!(body["customer_id"], "carol c");
    assert_eq!(body["status"], "accepted");
    assert_eq!(body["audit_topic"], "journey.audit");
    assert!(
        body["requested_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{body}"
    );
    assert_eq!(
        app.erased.try_recv().as_deref(),
        Ok("carol c"),
        "an unknown customer is erased too: they may live elsewhere"
    );
}

#[tokio::test]
async fn erasure_fails_closed_without_a_token() {
    let app = app(None);
    let reply = send(&app.router, Method::DELETE, "/customers/alice", None).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["error"], "erasure_disabled");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("http.auth_token")
            && message.contains("http.allow_unauthenticated_erasure"),
        "{message}"
    );
    assert!(
        app.erased.try_recv().is_err(),
        "nothing reached the engine's thread"
    );
    let lookup = send(&app.router, Method::GET, "/customers/alice", None).await;
    assert_eq!(lookup.status, StatusCode::OK, "look-ups stay as they were");

    let open = open_app(Forwarded::Stored);
    let reply = send(&open.router, Method::DELETE, "/customers/alice", None).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    assert_eq!(open.erased.try_recv().as_deref(), Ok("alice"));
}

#[tokio::test]
async fn the_configuration_decides_whether_erasure_runs_unauthenticated() {
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let (queries, _rx) = mpsc::channel::<CustomerQuery>(1);
    let (erasures, _commands) = mpsc::channel::<ErasureCommand>(1);
    let config = Config::from_toml_str(
        "[http]\nallow_unauthenticated_erasure = true\n",
        std::iter::empty(),
    )
    .expect("valid");
    let state = HttpState::new(metrics, Readiness::new(), queries, None)
        .with_erasures(erasures, "journey.audit")
        .with_erasure_timeout(Duration::from_millis(50));
    let closed = http::router(state.clone().with_config(&Config::default().http));
    let reply = send(&closed, Method::DELETE, "/customers/alice", None).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let open = http::router(state.with_config(&config.http));
    let reply = send(&open, Method::DELETE, "/customers/alice", None).await;
    assert_eq!(
        reply.json()["error"],
        "engine_timeout",
        "let through to the engine's thread"
    );
}

#[tokio::test]
async fn a_request_not_answered_in_time_is_503() {
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let (queries, _unanswered) = mpsc::channel::<CustomerQuery>(1);
    let limits = ServerLimits {
        request_timeout: Duration::from_millis(50),
        ..ServerLimits::default()
    };
    let state = HttpState::new(metrics, Readiness::new(), queries, None)
        .with_query_timeout(Duration::from_secs(30))
        .with_server_limits(limits);
    let router = http::router(state);
    let started = journeyd::clock::Stopwatch::start();
    let reply = get(&router, "/customers/alice").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["error"], "request_timeout");
    assert_eq!(reply.headers[header::RETRY_AFTER], "1");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(get(&router, "/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn erasure_failures_say_whether_to_retry() {
    let refused = open_app(Forwarded::Refused);
    let reply = send(&refused.router, Method::DELETE, "/customers/alice", None).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.json()["error"], "erasure_not_queued");

    let busy = open_app(Forwarded::Busy);
    let reply = send(&busy.router, Method::DELETE, "/customers/alice", None).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["error"], "engine_busy");
    assert_eq!(reply.headers[header::RETRY_AFTER], "1");

    let long = format!("/customers/{}", "x".repeat(1025));
    let reply = send(
        &open_app(Forwarded::Stored).router,
        Method::DELETE,
        &long,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn erasure_without_an_answer_is_503() {
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let (queries, _queries) = mpsc::channel::<CustomerQuery>(1);
    let (erasures, commands) = mpsc::channel::<ErasureCommand>(1);
    let state = HttpState::new(metrics, Readiness::new(), queries, None)
        .with_erasures(erasures, "journey.audit")
        .allow_unauthenticated_erasure(true)
        .with_erasure_timeout(Duration::from_millis(50));
    let router = http::router(state);
    let reply = send(&router, Method::DELETE, "/customers/alice", None).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["error"], "engine_timeout");
    let reply = send(&router, Method::DELETE, "/customers/alice", None).await;
    assert_eq!(reply.json()["error"], "engine_busy", "the channel is full");
    drop(commands);
    let reply = send(&router, Method::DELETE, "/customers/alice", None).await;
    assert_eq!(reply.json()["error"], "engine_unavailable");
}

#[tokio::test]
async fn erasure_without_an_engine_thread_is_not_available() {
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let (queries, _rx) = mpsc::channel::<CustomerQuery>(1);
    let state = HttpState::new(metrics, Readiness::new(), queries, None)
        .allow_unauthenticated_erasure(true);
    let router = http::router(state);
    let reply = send(&router, Method::DELETE, "/customers/alice", None).await;
    assert_eq!(reply.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(reply.json()["error"], "erasure_not_available");
}

#[test]
fn state_debug_never_shows_the_token() {
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let (queries, _rx) = mpsc::channel(1);
    let state = HttpState::new(metrics, Readiness::new(), queries, Some(TOKEN.into()));
    let shown = format!("{state:?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
}

/// One raw HTTP/1.1 exchange with `Connection: close` (a blocking client
/// on a blocking-pool thread: the test needs no HTTP client crate).
async fn raw_get(address: std::net::SocketAddr, path: &'static str) -> String {
    use std::io::{Read, Write};
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        response
    })
    .await
    .expect("client thread")
}

#[tokio::test]
async fn serves_over_a_real_socket_and_shuts_down_gracefully() {
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let (queries, _rx) = mpsc::channel(1);
    let state = HttpState::new(metrics, Readiness::new(), queries, None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(http::serve(listener, state, async {
        let _ = stopped.await;
    }));

    let health = raw_get(address, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
    assert!(health.ends_with("\r\n\r\nok"), "{health}");
    let metrics = raw_get(address, "/metrics").await;
    assert!(metrics.contains("journeyd_build_info"), "{metrics}");

    stop.send(()).expect("server running");
    let ended = tokio::time::timeout(Duration::from_secs(5), server).await;
    ended
        .expect("stops in time")
        .expect("no panic")
        .expect("clean exit");
    assert!(
        tokio::net::TcpStream::connect(address).await.is_err(),
        "listener closed"
    );
}

/// [`http::serve`] on 127.0.0.1 with `limits`; returns its address and
/// the sender that stops it.
async fn serve_with(
    limits: ServerLimits,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), http::HttpError>>,
) {
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let (queries, _rx) = mpsc::channel(1);
    let state = HttpState::new(metrics, Readiness::new(), queries, None).with_server_limits(limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(http::serve(listener, state, async {
        let _ = stopped.await;
    }));
    (address, stop, server)
}

/// Reads from `stream` until it closes or `within` passes: what was read,
/// and whether it closed. (Blocking: call from a blocking thread.)
fn read_until_closed(stream: &mut std::net::TcpStream, within: Duration) -> (String, bool) {
    use std::io::Read;
    let clock = journeyd::clock::Stopwatch::start();
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.saturating_sub(clock.elapsed());
        if left.is_zero() {
            return (String::from_utf8_lossy(&read).into_owned(), false);
        }
        stream.set_read_timeout(Some(left)).expect("timeout");
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&read).into_owned(), true),
            Ok(n) => read.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (String::from_utf8_lossy(&read).into_owned(), true),
        }
    }
}

/// Stops the server and checks that it ends cleanly and in time.
async fn stop_server(
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), http::HttpError>>,
) {
    stop.send(()).expect("server running");
    let ended = tokio::time::timeout(Duration::from_secs(5), server).await;
    ended
        .expect("stops in time")
        .expect("no panic")
        .expect("clean exit");
}

#[tokio::test]
async fn a_client_too_slow_to_send_its_headers_is_disconnected() {
    let limits = ServerLimits {
        header_read_timeout: Duration::from_millis(300),
        ..ServerLimits::default()
    };
    let (address, stop, server) = serve_with(limits).await;
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut slow = std::net::TcpStream::connect(address).expect("connect");
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: local")
            .expect("write");
        let (answer, closed) = read_until_closed(&mut slow, Duration::from_secs(5));
        assert!(closed, "the half-sent request is cut off: {answer:?}");
        assert!(!answer.contains("200 OK"), "{answer}");

        let mut idle = std::net::TcpStream::connect(address).expect("connect");
        let (_, closed) = read_until_closed(&mut idle, Duration::from_secs(5));
        assert!(closed, "a connection that sends nothing is closed too");
    })
    .await
    .expect("client thread");
    stop_server(stop, server).await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let limits = ServerLimits {
        max_connections: 1,
        ..ServerLimits::default()
    };
    let (address, stop, server) = serve_with(limits).await;
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        // Takes the only slot: connected, sending nothing yet.
        let mut first = std::net::TcpStream::connect(address).expect("connect");
        std::thread::sleep(Duration::from_millis(200));
        let mut second = std::net::TcpStream::connect(address).expect("connect");
        second.write_all(request).expect("write");
        let (answer, closed) = read_until_closed(&mut second, Duration::from_millis(500));
        assert!(
            answer.is_empty() && !closed,
            "not served while the slot is taken: {answer:?}"
        );

        first.write_all(request).expect("write");
        let (answer, _) = read_until_closed(&mut first, Duration::from_secs(5));
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        let (answer, closed) = read_until_closed(&mut second, Duration::from_secs(5));
        assert!(
            closed && answer.starts_with("HTTP/1.1 200 OK"),
            "served once the slot is free: {answer:?}"
        );
    })
    .await
    .expect("client thread");
    stop_server(stop, server).await;
}
