//! A tiny Confluent-compatible schema registry for tests, served by axum
//! on 127.0.0.1 with a free port and stopped on drop.
//!
//! It answers `GET /schemas/ids/{id}` and `POST /subjects/{subject}/versions`
//! like the real one (error bodies included), and can be told to require
//! Basic credentials, to answer 503, to take a while over the schema of
//! one id ([`FakeRegistry::delay_schema`]), or (under the `/slow` prefix)
//! to take longer than any test timeout.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// What the registry holds and how it behaves.
#[derive(Default)]
struct Inner {
    /// Schema text (and `schemaType`, when not Avro) by id.
    schemas: BTreeMap<u32, (String, Option<String>)>,
    /// Ids registered under each subject.
    subjects: BTreeMap<String, Vec<u32>>,
    /// `Authorization` every request must carry, when set.
    authorization: Option<String>,
    /// Answer 503 to everything.
    down: bool,
    /// Every request, as `METHOD path`.
    requests: Vec<String>,
    /// How long the answer to `GET /schemas/ids/{id}` takes, by id.
    delays: BTreeMap<u32, Duration>,
    /// Every answered schema request, as `GET /schemas/ids/{id}`, in the
    /// order the answers were sent.
    answered: Vec<String>,
}

type Shared = Arc<Mutex<Inner>>;

/// A running fake registry.
pub struct FakeRegistry {
    addr: SocketAddr,
    inner: Shared,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FakeRegistry {
    /// Starts serving on a free port of 127.0.0.1.
    pub fn start() -> FakeRegistry {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let inner = Shared::default();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(inner.clone());
        runtime.spawn(async move { axum::serve(listener, app).await });
        FakeRegistry {
            addr,
            inner,
            runtime: Some(runtime),
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A base URL under which every request takes 10 s.
    pub fn slow_url(&self) -> String {
        format!("{}/slow", self.url())
    }

    /// Serves `schema` (Avro) as `id`.
    pub fn add_schema(&self, id: u32, schema: &str) {
        self.add_typed_schema(id, schema, None);
    }

    /// Serves `schema` as `id`, with a `schemaType`.
    pub fn add_typed_schema(&self, id: u32, schema: &str, schema_type: Option<&str>) {
        let mut inner = self.inner.lock().unwrap();
        inner
            .schemas
            .insert(id, (schema.to_owned(), schema_type.map(str::to_owned)));
    }

    /// From now on, requires `Authorization: Basic base64(user:password)`.
    pub fn require_basic_auth(&self, user: &str, password: &str) {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.inner.lock().unwrap().authorization = Some(format!("Basic {token}"));
    }

    /// Answers 503 to everything while `down`.
    pub fn set_down(&self, down: bool) {
        self.inner.lock().unwrap().down = down;
    }

    /// From now on, answers requests for the schema of `id` only after
    /// `delay` (the request is logged at once, the answer when sent).
    pub fn delay_schema(&self, id: u32, delay: Duration) {
        self.inner.lock().unwrap().delays.insert(id, delay);
    }

    /// The schema requests answered so far, as `GET /schemas/ids/{id}`.
    pub fn answered(&self) -> Vec<String> {
        self.inner.lock().unwrap().answered.clone()
    }

    /// Every request so far, as `METHOD path`.
    pub fn requests(&self) -> Vec<String> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// The schema text of `id`, as registered.
    pub fn schema(&self, id: u32) -> Option<String> {
        let inner = self.inner.lock().unwrap();
        inner.schemas.get(&id).map(|(text, _)| text.clone())
    }

    /// The ids registered under `subject`.
    pub fn subject(&self, subject: &str) -> Vec<u32> {
        let inner = self.inner.lock().unwrap();
        inner.subjects.get(subject).cloned().unwrap_or_default()
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn router(inner: Shared) -> Router {
    let api = Router::new()
        .route("/schemas/ids/{id}", get(get_schema))
        .route("/subjects/{subject}/versions", post(register));
    let slow = Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        StatusCode::OK
    });
    api.nest("/slow", slow).with_state(inner)
}

/// A registry error body.
fn error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({ "error_code": code, "message": message });
    (status, body.to_string()).into_response()
}

/// The checks every request passes first: logged, up, authorised.
fn admit(inner: &mut Inner, request: String, headers: &HeaderMap) -> Option<Response> {
    inner.requests.push(request);
    check(inner, headers)
}

/// Whether the registry is up and the request authorised.
fn check(inner: &Inner, headers: &HeaderMap) -> Option<Response> {
    if inner.down {
        return Some(error(
            StatusCode::SERVICE_UNAVAILABLE,
            50003,
            "Error while forwarding the request to the leader",
        ));
    }
    let sent = headers.get("authorization").and_then(|v| v.to_str().ok());
    match &inner.authorization {
        Some(want) if sent != Some(want.as_str()) => {
            Some(error(StatusCode::UNAUTHORIZED, 40101, "Unauthorized"))
        }
        _ => None,
    }
}

fn ok(body: Value) -> Response {
    let headers = [("content-type", "application/vnd.schemaregistry.v1+json")];
    (StatusCode::OK, headers, body.to_string()).into_response()
}

async fn get_schema(
    State(inner): State<Shared>,
    Path(id): Path<u32>,
    headers: HeaderMap,
) -> Response {
    let request = format!("GET /schemas/ids/{id}");
    let delay = {
        let mut inner = inner.lock().unwrap();
        inner.requests.push(request.clone());
        inner.delays.get(&id).copied()
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut inner = inner.lock().unwrap();
    inner.answered.push(request);
    if let Some(refused) = check(&inner, &headers) {
        return refused;
    }
    match inner.schemas.get(&id) {
        Some((schema, None)) => ok(json!({ "schema": schema })),
        Some((schema, Some(kind))) => ok(json!({ "schema": schema, "schemaType": kind })),
        None => error(
            StatusCode::NOT_FOUND,
            40403,
            &format!("Schema {id} not found"),
        ),
    }
}

async fn register(
    State(inner): State<Shared>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = inner.lock().unwrap();
    let request = format!("POST /subjects/{subject}/versions");
    if let Some(refused) = admit(&mut inner, request, &headers) {
        return refused;
    }
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
    if content_type != Some("application/vnd.schemaregistry.v1+json") {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            415,
            "Unsupported media type",
        );
    }
    let Some(schema) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["schema"].as_str().map(str::to_owned))
    else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, 42201, "Invalid schema");
    };
    let existing = inner
        .schemas
        .iter()
        .find(|(_, (text, _))| *text == schema)
        .map(|(id, _)| *id);
    let id = existing.unwrap_or_else(|| inner.schemas.keys().last().map_or(1, |last| last + 1));
    inner.schemas.insert(id, (schema, None));
    let ids = inner.subjects.entry(subject).or_default();
    if !ids.contains(&id) {
        ids.push(id);
    }
    ok(json!({ "id": id }))
}
