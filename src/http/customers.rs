//! `/customers/{id}`: asking the engine's thread about one customer.
//!
//! The engine is owned by the synchronous driver thread, so the HTTP side
//! never touches it. A lookup is a [`CustomerQuery`] sent over a bounded
//! channel with a one-shot reply; the driver drains the channel between
//! polls ([`answer_queries`]) and answers from the engine. When the channel
//! is full, the driver is gone or the answer takes too long, the request
//! gets 503 instead of piling up work on the processing loop.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};
use tokio::sync::{mpsc, oneshot};

pub use super::view::{ChurnView, CustomerView, Sequences};
use super::{HttpState, error_response};
use crate::engine::Engine;

/// Customer ids longer than this are refused without asking the engine.
pub const MAX_CUSTOMER_ID_BYTES: usize = 1024;

/// A lookup of one customer, answered by the engine's thread.
#[derive(Debug)]
pub struct CustomerQuery {
    /// The customer id (the Kafka key).
    pub id: String,
    /// Where the answer goes; `None` when the customer is unknown here.
    pub reply: oneshot::Sender<Option<CustomerView>>,
}

impl CustomerQuery {
    /// Answers from `engine`. A requester that gave up is ignored.
    pub fn answer(self, engine: &Engine) {
        let view = CustomerView::from_engine(engine, &self.id);
        // The receiver is gone when the request timed out: nothing to do.
        let _ = self.reply.send(view);
    }
}

/// Answers up to `max` waiting queries without blocking (for the driver,
/// between polls). Returns how many were answered.
pub fn answer_queries(
    queries: &mut mpsc::Receiver<CustomerQuery>,
    engine: &Engine,
    max: usize,
) -> usize {
    let mut answered = 0;
    while answered < max {
        let Ok(query) = queries.try_recv() else { break };
        query.answer(engine);
        answered += 1;
    }
    answered
}

/// Why a lookup got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum LookupError {
    /// The request channel is full: the driver is behind.
    #[error("engine_busy")]
    Busy,
    /// The driver dropped the channel or the query: it is stopping.
    #[error("engine_unavailable")]
    Gone,
    /// No answer within the query timeout.
    #[error("engine_timeout")]
    Timeout,
}

impl HttpState {
    /// Asks the engine's thread about customer `id`.
    async fn lookup(&self, id: String) -> Result<Option<CustomerView>, LookupError> {
        let (reply, answer) = oneshot::channel();
        self.queries
            .try_send(CustomerQuery { id, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => LookupError::Busy,
                mpsc::error::TrySendError::Closed(_) => LookupError::Gone,
            })?;
        match tokio::time::timeout(self.query_timeout, answer).await {
            Ok(Ok(view)) => Ok(view),
            Ok(Err(_)) => Err(LookupError::Gone),
            Err(_) => Err(LookupError::Timeout),
        }
    }
}

/// `GET /customers/{id}`.
pub(super) async fn get_customer(
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Response {
    if id.len() > MAX_CUSTOMER_ID_BYTES {
        return error_response(StatusCode::BAD_REQUEST, "customer_id_too_long");
    }
    match state.lookup(id).await {
        Ok(Some(view)) => Json(view).into_response(),
        Ok(None) => error_response(StatusCode::NOT_FOUND, "unknown_customer"),
        Err(e) => {
            tracing::debug!(error = %e, "Customer lookup got no answer.");
            let mut response = error_response(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
            response
                .headers_mut()
                .insert(RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
            response
        }
    }
}
