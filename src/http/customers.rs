//! `/customers/{id}`: asking the engine's thread about one customer.
//!
//! The engine is owned by the synchronous driver thread, so the HTTP side
//! never touches it. A lookup is a [`CustomerQuery`] sent over a bounded
//! channel with a one-shot reply; the driver drains the channel between
//! polls ([`answer_queries`]) and answers from the engine. When the channel
//! is full, the driver is gone or the answer takes too long, the request
//! gets 503 instead of piling up work on the processing loop.
//!
//! With [`Routing`] (as `journeyd run` has it) the lookup may reach any
//! instance: one that does not own the customer's partition forwards it
//! to the owner once (docs/operations.md#any-instance-answers). The engine's
//! thread says whether it holds the partition ([`Holding`]), so `404
//! unknown_customer` comes only from the owner of a restored partition:
//! it means the group does not know the customer. Every doubt is a 503
//! naming what is missing:
//!
//! | error | meaning |
//! |---|---|
//! | `partition_restoring` | the owner is still restoring the partition's state |
//! | `not_owner` | a forwarded request reached an instance that no longer holds the partition |
//! | `owner_unknown` | no member holds the partition now (the group is rebalancing) |
//! | `owner_not_advertised` | the owner has no `http.advertised_url` |
//! | `owner_unreachable` | the owner did not answer within the forwarding timeout |

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::{mpsc, oneshot};

use super::routing::{FORWARDED_FROM, Route, Routing, route, unavailable};
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
    /// The customer's partition of the primary input topic, when the
    /// lookup is routed: the answer then says whether it is held here.
    pub partition: Option<i32>,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Lookup>,
}

/// The engine thread's answer to a [`CustomerQuery`].
#[derive(Debug)]
pub enum Lookup {
    /// The customer's journey.
    Found(Box<CustomerView>),
    /// The partition is held here, restored, and the customer is not in it.
    Unknown,
    /// The partition is not assigned to this instance.
    NotHeld,
    /// The partition is assigned here but its state is still restoring.
    Restoring,
}

/// Whether this instance holds an input partition, for [`Lookup`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holding {
    /// Assigned here, state restored.
    Held,
    /// Assigned here, state still restoring.
    Restoring,
    /// Not assigned here.
    NotHeld,
}

impl CustomerQuery {
    /// Answers from `engine`, taking every partition as held (a single
    /// engine with nothing to route). A requester that gave up is ignored.
    pub fn answer(self, engine: &Engine) {
        self.answer_holding(engine, |_| Holding::Held);
    }

    /// Answers from `engine`, which holds the partitions `holding` says.
    pub fn answer_holding(self, engine: &Engine, holding: impl Fn(i32) -> Holding) {
        let held = self.partition.map_or(Holding::Held, holding);
        let answer = match held {
            Holding::NotHeld => Lookup::NotHeld,
            Holding::Restoring => Lookup::Restoring,
            Holding::Held => match CustomerView::from_engine(engine, &self.id) {
                Some(view) => Lookup::Found(Box::new(view)),
                None => Lookup::Unknown,
            },
        };
        // The receiver is gone when the request timed out: nothing to do.
        let _ = self.reply.send(answer);
    }
}

/// Answers up to `max` waiting queries without blocking (for the driver,
/// between polls), from `engine`, which holds the input partitions
/// `holding` says. Returns how many were answered.
pub fn answer_queries(
    queries: &mut mpsc::Receiver<CustomerQuery>,
    engine: &Engine,
    holding: impl Fn(i32) -> Holding,
    max: usize,
) -> usize {
    let mut answered = 0;
    while answered < max {
        let Ok(query) = queries.try_recv() else { break };
        query.answer_holding(engine, &holding);
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
    /// Asks the engine's thread about customer `id` on `partition`.
    async fn lookup(&self, id: String, partition: Option<i32>) -> Result<Lookup, LookupError> {
        let (reply, answer) = oneshot::channel();
        self.queries
            .try_send(CustomerQuery {
                id,
                partition,
                reply,
            })
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
    headers: HeaderMap,
) -> Response {
    if id.len() > MAX_CUSTOMER_ID_BYTES {
        return error_response(StatusCode::BAD_REQUEST, "customer_id_too_long");
    }
    let Some(routing) = &state.routing else {
        return match state.lookup(id, None).await {
            Ok(lookup) => local_answer(lookup),
            Err(e) => retry_later(&e.to_string()),
        };
    };
    let forwarded = headers.contains_key(FORWARDED_FROM);
    routed(&state, routing, id, forwarded, headers.get(AUTHORIZATION)).await
}

/// A lookup with [`Routing`]: answered here or by the owner, with at most
/// one refresh of a stale table and one more try.
async fn routed(
    state: &HttpState,
    routing: &Routing,
    id: String,
    forwarded: bool,
    authorization: Option<&HeaderValue>,
) -> Response {
    let me = routing.me.as_deref();
    let mut owners = routing.owners();
    for last_try in [false, true] {
        let count = owners.partition_count();
        if count == 0 {
            return retry_later("owner_unknown");
        }
        let partition = routing.partitioner.partition(id.as_bytes(), count);
        match route(&owners, me, partition, forwarded) {
            Route::Local => match state.lookup(id.clone(), Some(partition as i32)).await {
                Ok(Lookup::NotHeld) if forwarded => return retry_later("not_owner"),
                Ok(Lookup::NotHeld) if last_try => {
                    return retry_later(unavailable(&owners, me, partition));
                }
                Ok(Lookup::NotHeld) => {}
                Ok(lookup) => return local_answer(lookup),
                Err(e) => return retry_later(&e.to_string()),
            },
            Route::Forward(owner) => {
                match routing
                    .forwarder
                    .get(&owner, &id, authorization.cloned())
                    .await
                {
                    // The owner moved on: refresh and try again, once.
                    Ok(answer) if answer.is_not_owner() && !last_try => {}
                    Ok(answer) if answer.is_not_owner() => return retry_later("owner_unknown"),
                    Ok(answer) => return answer.into_response(&owner),
                    Err(error) => {
                        tracing::debug!(%error, %owner, "A forwarded customer lookup got no answer.");
                        routing.refresh.request();
                        return retry_later("owner_unreachable");
                    }
                }
            }
        }
        owners = routing.refreshed(owners.version).await;
    }
    retry_later("owner_unknown")
}

/// The answer of this instance's engine.
fn local_answer(lookup: Lookup) -> Response {
    match lookup {
        Lookup::Found(view) => Json(view).into_response(),
        Lookup::Unknown => error_response(StatusCode::NOT_FOUND, "unknown_customer"),
        Lookup::NotHeld => retry_later("not_owner"),
        Lookup::Restoring => retry_later("partition_restoring"),
    }
}

/// 503 with `Retry-After: 1` and `{"error": code, "message": ...}`.
fn retry_later(code: &str) -> Response {
    tracing::debug!(error = code, "Customer lookup got no answer.");
    let body = serde_json::json!({ "error": code, "message": explain(code) });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// What a 503's error code means, for the client reading it.
fn explain(code: &str) -> &'static str {
    match code {
        "engine_busy" => "this instance has too many lookups waiting; try again",
        "engine_unavailable" => "this instance is stopping; try again",
        "engine_timeout" => "this instance's engine did not answer in time; try again",
        "partition_restoring" => {
            "the customer's partition is still being restored on its owner; try again"
        }
        "not_owner" => {
            "this instance does not hold the customer's partition (a forwarded request is \
             never forwarded again); ask any instance without the journeyd-forwarded-from header"
        }
        "owner_not_advertised" => {
            "the instance that holds the customer's partition advertises no HTTP address \
             (http.advertised_url); ask it directly or configure the address"
        }
        "owner_unreachable" => {
            "the instance that holds the customer's partition could not be reached or did not \
             answer in time; try again"
        }
        _ => {
            "no instance of the consumer group holds the customer's partition now (the group is \
             rebalancing or not yet joined); try again"
        }
    }
}
