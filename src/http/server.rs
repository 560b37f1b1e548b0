//! Serving the router on a TCP listener, within limits: how many
//! connections at once, how long a client may take to send a request's
//! headers, and how long a request may take to be answered.
//!
//! The port is reachable by whatever can reach the pod, so a client that
//! opens connections and sends nothing, or sends a header a byte at a time,
//! must not be able to take the probes and `/metrics` down with it:
//!
//! - at most `max_connections` connections are served at once; the next
//!   one is accepted only when one of them closes (until then it waits in
//!   the kernel's backlog);
//! - a connection that has not sent a complete request head within
//!   `header_read_timeout` of opening (or of its previous response) is
//!   closed, so idle and slow connections give their slot back;
//! - a request not answered within `request_timeout` gets 503
//!   `request_timeout` (the handlers have tighter timeouts of their own;
//!   this bounds everything else).
//!
//! On shutdown the listener stops accepting, idle connections are closed
//! and requests in flight are answered; every wait is bounded by the
//! limits above.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::{HttpError, HttpState, error_response, router};
use crate::config::HttpConfig;

/// How the server protects itself from slow and numerous clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// A request's headers must arrive within this long of the connection
    /// opening or of the previous response.
    pub header_read_timeout: Duration,
    /// A request must be answered within this long.
    pub request_timeout: Duration,
    /// Connections served at once, at most.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    /// The defaults of `[http]`.
    fn default() -> Self {
        ServerLimits::from_config(&HttpConfig::default())
    }
}

impl ServerLimits {
    /// The limits `http` configures.
    pub fn from_config(http: &HttpConfig) -> ServerLimits {
        ServerLimits {
            header_read_timeout: http.header_read_timeout,
            request_timeout: http.request_timeout,
            max_connections: http.max_connections,
        }
    }
}

/// Serves [`router`] on `listener` until `shutdown` completes, then stops
/// accepting, closes idle connections and waits for requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HttpError> {
    let address = listener.local_addr()?;
    let limits = state.server;
    state.log_erasure_access();
    tracing::info!(
        %address,
        max_connections = limits.max_connections,
        header_read_timeout = %humantime::format_duration(limits.header_read_timeout),
        request_timeout = %humantime::format_duration(limits.request_timeout),
        "HTTP server listening."
    );
    let app = router(state);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener, &slots) => accepted,
        };
        let (stream, slot) = accepted;
        let connection = serve_connection(stream, app.clone(), limits, stopping.clone());
        connections.spawn(async move {
            connection.await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    tracing::info!(%address, "HTTP server stopped.");
    Ok(())
}

/// Waits for a free connection slot, then for a connection. Errors that
/// concern one connection (reset before it was accepted) are skipped;
/// others (out of file descriptors) are logged and retried after a pause.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> (TcpStream, tokio::sync::OwnedSemaphorePermit) {
    let Ok(slot) = slots.clone().acquire_owned().await else {
        unreachable!("the semaphore is never closed");
    };
    loop {
        match listener.accept().await {
            Ok((stream, _)) => return (stream, slot),
            Err(e) if is_connection_error(&e) => {}
            Err(error) => {
                tracing::warn!(%error, "Cannot accept an HTTP connection.");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Serves one connection over HTTP/1.1 until it closes, the header read
/// timeout closes it, or shutdown closes it once it is idle.
async fn serve_connection(
    stream: TcpStream,
    app: Router,
    limits: ServerLimits,
    mut stopping: watch::Receiver<bool>,
) {
    let service = TowerToHyperService::new(app);
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = async { let _ = stopping.wait_for(|stop| *stop).await; } => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "HTTP connection ended with an error.");
    }
}

/// Middleware: 503 `request_timeout` (with `Retry-After`) for a request
/// not answered within `request_timeout`.
pub(super) async fn limit_request_time(
    State(state): State<HttpState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.server.request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let mut response = error_response(StatusCode::SERVICE_UNAVAILABLE, "request_timeout");
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
}
