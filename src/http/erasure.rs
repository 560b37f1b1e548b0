//! `DELETE /customers/{id}`: erasure over HTTP (docs/erasure.md).
//!
//! The customer's state lives only on the instance that owns their
//! partition, and the request may reach any instance. So the endpoint does
//! not erase anything itself: it hands an [`ErasureCommand`] to the
//! engine's thread over a bounded channel, which produces the request to
//! the erasure topic keyed by customer id; the owner of that partition
//! erases the customer and publishes `CustomerErased` on the audit topic.
//!
//! Without `http.auth_token` the endpoint is off (`403`,
//! `erasure_disabled`) unless `http.allow_unauthenticated_erasure` is set:
//! an endpoint that deletes data fails closed.
//!
//! The answer is `202 Accepted` once Kafka has acknowledged the request
//! record: from then on the erasure happens even if this instance dies. A
//! full channel, a stopping engine thread or no acknowledgement within the
//! timeout is `503` (with `Retry-After`; erasure is idempotent, so retrying
//! is safe); a record the producer refuses outright (a missing topic, say)
//! is `500`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::customers::{LookupError, MAX_CUSTOMER_ID_BYTES};
use super::{HttpState, error_response};
use crate::clock::wall_now;
use crate::model::EventTime;

/// An erasure request for the engine's thread.
#[derive(Debug)]
pub struct ErasureCommand {
    /// The customer to erase.
    pub customer_id: String,
    /// When the request arrived.
    pub requested_at: EventTime,
    /// Where the outcome goes.
    pub reply: oneshot::Sender<Forwarded>,
}

/// What became of an [`ErasureCommand`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forwarded {
    /// Kafka acknowledged the request record on the erasure topic.
    Stored,
    /// The producer refused the record (no retry helps).
    Refused,
    /// Too many requests wait for acknowledgement, or (exactly-once mode)
    /// the transaction holding the record aborted: try again.
    Busy,
}

/// The body of a `202 Accepted`.
#[derive(Debug, Serialize)]
struct Accepted<'a> {
    /// The customer to be erased.
    customer_id: &'a str,
    /// Always `"accepted"`.
    status: &'static str,
    /// When the request arrived (RFC 3339); the audit record repeats it.
    requested_at: String,
    /// Where the owner of the customer's partition confirms the erasure.
    audit_topic: &'a str,
}

/// Takes up to `max` waiting commands without blocking and hands each to
/// `forward` (for the driver, between polls). Returns how many there were.
pub fn take_erasures(
    commands: &mut mpsc::Receiver<ErasureCommand>,
    max: usize,
    mut forward: impl FnMut(ErasureCommand),
) -> usize {
    let mut taken = 0;
    while taken < max {
        let Ok(command) = commands.try_recv() else {
            break;
        };
        forward(command);
        taken += 1;
    }
    taken
}

impl HttpState {
    /// Hands an erasure to the engine's thread and waits for the outcome.
    async fn forward_erasure(
        &self,
        customer_id: String,
    ) -> Result<(Forwarded, EventTime), LookupError> {
        let requested_at = wall_now();
        let (reply, answer) = oneshot::channel();
        let command = ErasureCommand {
            customer_id,
            requested_at,
            reply,
        };
        let Some(erasures) = &self.erasures else {
            return Err(LookupError::Gone);
        };
        erasures.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => LookupError::Busy,
            mpsc::error::TrySendError::Closed(_) => LookupError::Gone,
        })?;
        match tokio::time::timeout(self.erasure_timeout, answer).await {
            Ok(Ok(outcome)) => Ok((outcome, requested_at)),
            Ok(Err(_)) => Err(LookupError::Gone),
            Err(_) => Err(LookupError::Timeout),
        }
    }
}

/// `DELETE /customers/{id}`.
pub(super) async fn delete_customer(
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Response {
    if state.erasure_closed() {
        return disabled();
    }
    if id.len() > MAX_CUSTOMER_ID_BYTES {
        return error_response(StatusCode::BAD_REQUEST, "customer_id_too_long");
    }
    if state.erasures.is_none() {
        return error_response(StatusCode::NOT_IMPLEMENTED, "erasure_not_available");
    }
    match state.forward_erasure(id.clone()).await {
        Ok((Forwarded::Stored, requested_at)) => {
            let body = Accepted {
                customer_id: &id,
                status: "accepted",
                requested_at: requested_at.to_rfc3339(),
                audit_topic: &state.audit_topic,
            };
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
        Ok((Forwarded::Refused, _)) => {
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "erasure_not_queued")
        }
        Ok((Forwarded::Busy, _)) => retry_later(LookupError::Busy),
        Err(e) => retry_later(e),
    }
}

/// 403: erasure is off without a token, and says how to turn it on.
fn disabled() -> Response {
    let body = serde_json::json!({
        "error": "erasure_disabled",
        "message": "DELETE /customers/{id} is off because no http.auth_token is configured; \
                    set http.auth_token (then send Authorization: Bearer <token>), or set \
                    http.allow_unauthenticated_erasure = true",
    });
    (StatusCode::FORBIDDEN, Json(body)).into_response()
}

/// 503 with `Retry-After: 1`.
fn retry_later(error: LookupError) -> Response {
    tracing::debug!(%error, "Erasure request not confirmed.");
    let mut response = error_response(StatusCode::SERVICE_UNAVAILABLE, &error.to_string());
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
