//! The forwarding hop: one `GET /customers/{id}` to the owner's advertised
//! address, its answer passed back as it is.
//!
//! A reverse-proxy hop rather than a redirect (docs/operations.md#any-instance-answers):
//! the advertised addresses are usually pod addresses that only the
//! instances can reach, and HTTP clients drop the `Authorization` header
//! when a redirect leaves the host. The hop carries the client's
//! `Authorization` header (every instance has the same `http.auth_token`)
//! and the loop guard [`FORWARDED_FROM`]: an instance answers a request
//! that carries it from its own engine only, so a request is forwarded at
//! most once even while two instances' tables disagree.
//!
//! The client is ureq's (blocking, on tokio's blocking pool; there are at
//! most `http.max_connections` requests in flight), with a connection pool,
//! no redirects, no proxy from the environment and [`FORWARD_TIMEOUT`] for
//! the whole exchange.

use std::time::Duration;

use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use ureq::tls::{RootCerts, TlsConfig};

/// The loop guard: set on a forwarded request to the forwarding instance's
/// advertised address (or `unadvertised`).
pub const FORWARDED_FROM: HeaderName = HeaderName::from_static("journeyd-forwarded-from");

/// Set on a forwarded answer: the instance that answered.
pub const SERVED_BY: HeaderName = HeaderName::from_static("journeyd-served-by");

/// How long a forwarded request may take in all: longer than the owner's
/// own wait for its engine ([`crate::http::DEFAULT_QUERY_TIMEOUT`]), so the
/// owner's 503 comes back rather than a timeout here.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);

/// The largest answer passed back; a customer's view is a few hundred bytes.
const MAX_ANSWER_BYTES: u64 = 1 << 20;

/// What a customer id may contain unescaped in a path segment (RFC 3986
/// unreserved characters).
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Why the owner gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// No connection, no answer in time, or an unreadable answer.
    #[error("{0}")]
    Transport(String),
}

/// The owner's answer.
#[derive(Debug)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its `Content-Type`, if any.
    pub content_type: Option<HeaderValue>,
    /// Its `Retry-After`, if any.
    pub retry_after: Option<HeaderValue>,
    /// Its body.
    pub body: String,
}

impl Answer {
    /// Whether the owner says it does not hold the customer's partition
    /// (the table that chose it was stale).
    pub fn is_not_owner(&self) -> bool {
        self.status == StatusCode::SERVICE_UNAVAILABLE && self.body.contains("\"not_owner\"")
    }

    /// The answer for the client, naming the instance that gave it.
    pub fn into_response(self, owner: &str) -> Response {
        let mut response = (self.status, self.body).into_response();
        let headers = response.headers_mut();
        headers.remove(CONTENT_TYPE);
        if let Some(value) = self.content_type {
            headers.insert(CONTENT_TYPE, value);
        }
        if let Some(value) = self.retry_after {
            headers.insert(RETRY_AFTER, value);
        }
        if let Ok(value) = HeaderValue::from_str(owner) {
            headers.insert(SERVED_BY, value);
        }
        response
    }
}

/// Forwards lookups to other instances.
#[derive(Clone, Debug)]
pub struct Forwarder {
    agent: ureq::Agent,
    /// The loop guard's value: this instance's advertised address.
    from: HeaderValue,
}

impl Forwarder {
    /// A forwarder for the instance advertised at `me`.
    pub fn new(me: Option<&str>) -> Forwarder {
        // https advertised addresses are verified like the schema
        // registry's: against the platform's trust store.
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::PlatformVerifier)
            .build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .timeout_global(Some(FORWARD_TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .proxy(None)
            .user_agent(concat!("journeyd/", env!("CARGO_PKG_VERSION")))
            .build();
        let from = me
            .and_then(|url| HeaderValue::from_str(url).ok())
            .unwrap_or(HeaderValue::from_static("unadvertised"));
        Forwarder {
            agent: ureq::Agent::new_with_config(config),
            from,
        }
    }

    /// Asks the instance at `owner` about customer `id`, with the client's
    /// `authorization` header.
    pub async fn get(
        &self,
        owner: &str,
        id: &str,
        authorization: Option<HeaderValue>,
    ) -> Result<Answer, ForwardError> {
        let url = format!(
            "{}/customers/{}",
            owner.trim_end_matches('/'),
            utf8_percent_encode(id, PATH_SEGMENT)
        );
        let agent = self.agent.clone();
        let from = self.from.clone();
        let call = move || {
            let mut request = agent.get(&url).header(FORWARDED_FROM, from);
            if let Some(value) = authorization {
                request = request.header(axum::http::header::AUTHORIZATION, value);
            }
            let mut response = request.call().map_err(transport)?;
            let body = response
                .body_mut()
                .with_config()
                .limit(MAX_ANSWER_BYTES)
                .read_to_string()
                .map_err(transport)?;
            let header = |name| response.headers().get(name).cloned();
            Ok(Answer {
                status: StatusCode::from_u16(response.status().as_u16())
                    .unwrap_or(StatusCode::BAD_GATEWAY),
                content_type: header(CONTENT_TYPE),
                retry_after: header(RETRY_AFTER),
                body,
            })
        };
        match tokio::task::spawn_blocking(call).await {
            Ok(result) => result,
            Err(e) => Err(ForwardError::Transport(e.to_string())),
        }
    }
}

fn transport(error: ureq::Error) -> ForwardError {
    ForwardError::Transport(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_escaped_as_one_path_segment() {
        let escaped = utf8_percent_encode("a/b c?d#é-._~", PATH_SEGMENT).to_string();
        assert_eq!(escaped, "a%2Fb%20c%3Fd%23%C3%A9-._~");
    }

    #[test]
    fn only_the_owners_not_owner_answer_asks_for_a_refresh() {
        let answer = |status, body: &str| Answer {
            status,
            content_type: None,
            retry_after: None,
            body: body.to_owned(),
        };
        assert!(answer(StatusCode::SERVICE_UNAVAILABLE, r#"{"error":"not_owner"}"#).is_not_owner());
        assert!(
            !answer(
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"error":"engine_busy"}"#
            )
            .is_not_owner()
        );
        assert!(!answer(StatusCode::NOT_FOUND, r#"{"error":"unknown_customer"}"#).is_not_owner());
    }
}
