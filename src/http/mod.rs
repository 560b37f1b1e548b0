//! The HTTP port: metrics, probes and customer lookups (docs/operations.md#http-endpoints).
//!
//! [`router`] builds the whole API from an [`HttpState`]; [`serve`] runs
//! it on a listener until a shutdown future completes. Routes:
//!
//! | route | answer |
//! |---|---|
//! | `GET /metrics` | Prometheus text format 0.0.4 |
//! | `GET /healthz` | 200 `ok` while the process is alive |
//! | `GET /readyz` | 200 when ready, else 503; JSON with the reason and restore progress |
//! | `GET /customers/{id}` | the customer's journey as JSON, from whichever instance owns it ([`routing`]); 404 when the group does not know the customer |
//! | `DELETE /customers/{id}` | 202 once the erasure request is stored in Kafka ([`erasure`]) |
//!
//! With an auth token configured, `/customers/*` requires
//! `Authorization: Bearer <token>` (401 otherwise); the probes and
//! `/metrics` stay open. Without a token, erasure is off (403) unless the
//! configuration allows it unauthenticated: it fails closed. [`serve`]
//! bounds connections, header reading and request time ([`ServerLimits`]).
//! This module never touches the engine: lookups and erasures go to the
//! engine's thread over bounded channels ([`CustomerQuery`],
//! [`ErasureCommand`]), and readiness is shared atomics
//! ([`crate::telemetry::Readiness`], re-exported here).

mod auth;
pub mod customers;
pub mod erasure;
pub mod routing;
mod server;
mod view;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::mpsc;

pub use crate::telemetry::{NotReady, Readiness, ReadinessSnapshot};
pub use auth::AuthToken;
pub use customers::{
    ChurnView, CustomerQuery, CustomerView, Holding, Lookup, MAX_CUSTOMER_ID_BYTES, Sequences,
    answer_queries,
};
pub use erasure::{ErasureCommand, Forwarded, take_erasures};
pub use server::{ServerLimits, serve};

use crate::config::HttpConfig;
use crate::telemetry::Metrics;

/// The content type of the Prometheus text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How long a customer lookup waits for the engine's thread by default.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an erasure request waits for Kafka's acknowledgement by
/// default.
pub const DEFAULT_ERASURE_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP server failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Accepting or serving connections failed.
    #[error("HTTP server: {0}")]
    Io(#[from] std::io::Error),
}

/// What the handlers share. Cheap to clone (a few `Arc`s).
#[derive(Clone)]
pub struct HttpState {
    /// Encoded on every scrape.
    metrics: Arc<Metrics>,
    /// Written by the driver, read by `/readyz` and `/metrics`.
    readiness: Readiness,
    /// Lookups for the engine's thread; bounded, so a slow driver sheds
    /// load instead of queueing it.
    queries: mpsc::Sender<CustomerQuery>,
    /// `http.auth_token`; when set, `/customers/*` needs it.
    auth_token: Option<AuthToken>,
    /// How long a lookup waits for an answer before 503.
    query_timeout: Duration,
    /// Erasures for the engine's thread; bounded like `queries`. `None`
    /// when no engine thread takes them (`DELETE` answers 501).
    erasures: Option<mpsc::Sender<ErasureCommand>>,
    /// `outputs.audit`, named in the answer to an erasure.
    audit_topic: Arc<str>,
    /// How long an erasure waits for Kafka's acknowledgement before 503.
    erasure_timeout: Duration,
    /// `http.allow_unauthenticated_erasure`: whether `DELETE` runs without
    /// a token. Without a token and without this, erasure answers 403.
    allow_unauthenticated_erasure: bool,
    /// Connections, header reading and request time ([`serve`]).
    server: ServerLimits,
    /// Where lookups of customers held elsewhere go; `None`: every lookup
    /// is answered here, as by a single instance.
    routing: Option<routing::Routing>,
}

impl HttpState {
    /// State for the router. `auth_token` is `http.auth_token`.
    pub fn new(
        metrics: Arc<Metrics>,
        readiness: Readiness,
        queries: mpsc::Sender<CustomerQuery>,
        auth_token: Option<String>,
    ) -> Self {
        HttpState {
            metrics,
            readiness,
            queries,
            auth_token: auth_token.as_deref().map(AuthToken::new),
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            erasures: None,
            audit_topic: Arc::from(""),
            erasure_timeout: DEFAULT_ERASURE_TIMEOUT,
            allow_unauthenticated_erasure: false,
            server: ServerLimits::default(),
            routing: None,
        }
    }

    /// Routes lookups of customers whose partition another instance owns
    /// to that instance ([`routing`]).
    pub fn with_routing(mut self, routing: routing::Routing) -> Self {
        self.routing = Some(routing);
        self
    }

    /// Applies what `[http]` says besides the token (given to
    /// [`HttpState::new`]): whether erasure may run unauthenticated, and
    /// the server's limits.
    pub fn with_config(self, http: &HttpConfig) -> Self {
        self.allow_unauthenticated_erasure(http.allow_unauthenticated_erasure)
            .with_server_limits(ServerLimits::from_config(http))
    }

    /// Lets `DELETE /customers/{id}` run without a token when `allow` and
    /// no token is configured (`http.allow_unauthenticated_erasure`).
    pub fn allow_unauthenticated_erasure(mut self, allow: bool) -> Self {
        self.allow_unauthenticated_erasure = allow;
        self
    }

    /// Replaces the server's limits ([`ServerLimits::default`]).
    pub fn with_server_limits(mut self, limits: ServerLimits) -> Self {
        self.server = limits;
        self
    }

    /// Whether endpoints that change state are off: no token, and no
    /// permission to run them without one.
    fn erasure_closed(&self) -> bool {
        self.auth_token.is_none() && !self.allow_unauthenticated_erasure
    }

    /// Says at start-up how erasure over HTTP is protected, when it is not
    /// by a token.
    fn log_erasure_access(&self) {
        if self.erasures.is_none() || self.auth_token.is_some() {
            return;
        }
        if self.allow_unauthenticated_erasure {
            tracing::warn!(
                "DELETE /customers/{{id}} runs without authentication \
                 (http.allow_unauthenticated_erasure = true): anyone who reaches this port can \
                 erase customers."
            );
        } else {
            tracing::warn!(
                "DELETE /customers/{{id}} is off: no http.auth_token is set. Set one, or set \
                 http.allow_unauthenticated_erasure = true to allow erasure without \
                 authentication; the erasure topic works either way."
            );
        }
    }

    /// Replaces the lookup timeout ([`DEFAULT_QUERY_TIMEOUT`]).
    pub fn with_query_timeout(mut self, timeout: Duration) -> Self {
        self.query_timeout = timeout;
        self
    }

    /// Takes `DELETE /customers/{id}` to the engine's thread over
    /// `erasures`; `audit_topic` is where the erasure will be confirmed.
    pub fn with_erasures(
        mut self,
        erasures: mpsc::Sender<ErasureCommand>,
        audit_topic: &str,
    ) -> Self {
        self.erasures = Some(erasures);
        self.audit_topic = Arc::from(audit_topic);
        self
    }

    /// Replaces the erasure timeout ([`DEFAULT_ERASURE_TIMEOUT`]).
    pub fn with_erasure_timeout(mut self, timeout: Duration) -> Self {
        self.erasure_timeout = timeout;
        self
    }
}

impl fmt::Debug for HttpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpState")
            .field("readiness", &self.readiness)
            .field(
                "auth_token",
                &self.auth_token.as_ref().map(|_| "<redacted>"),
            )
            .field("query_timeout", &self.query_timeout)
            .field("audit_topic", &self.audit_topic)
            .field("erasure_timeout", &self.erasure_timeout)
            .field(
                "allow_unauthenticated_erasure",
                &self.allow_unauthenticated_erasure,
            )
            .field("server", &self.server)
            .field("routing", &self.routing.as_ref().map(|r| &r.me))
            .finish_non_exhaustive()
    }
}

/// The whole HTTP API.
pub fn router(state: HttpState) -> Router {
    let customers = Router::new()
        .route(
            "/customers/{id}",
            get(customers::get_customer).delete(erasure::delete_customer),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(customers)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            server::limit_request_time,
        ))
        .with_state(state)
}

/// `GET /metrics`: readiness gauges refreshed, then every metric encoded.
async fn metrics(State(state): State<HttpState>) -> Response {
    let snapshot = state.readiness.snapshot();
    state
        .metrics
        .observe_readiness(snapshot.ready, snapshot.progress);
    let text = state.metrics.encode_text();
    ([(CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response()
}

/// `GET /healthz`: the process is alive.
async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 when ready, 503 with the reason otherwise.
async fn readyz(State(state): State<HttpState>) -> Response {
    let snapshot = state.readiness.snapshot();
    let status = if snapshot.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(snapshot)).into_response()
}

/// A JSON error body: `{"error": code}`.
fn error_response(status: StatusCode, code: &str) -> Response {
    (status, Json(serde_json::json!({ "error": code }))).into_response()
}
