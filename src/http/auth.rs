//! Bearer-token access control for the endpoints that serve personal data
//! or change state (docs/operations.md#http-endpoints).
//!
//! The token is compared in constant time: the work done depends only on
//! the length of what the client sent, never on how much of it matched or
//! on the configured token's length. The token never appears in logs or in
//! `Debug` output ([`AuthToken`] redacts it).

use std::fmt;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::{HttpState, error_response};

/// The configured bearer token. Its `Debug` output is redacted.
#[derive(Clone)]
pub struct AuthToken(Arc<str>);

impl AuthToken {
    /// Wraps the configured token.
    pub fn new(token: &str) -> Self {
        AuthToken(token.into())
    }

    /// Whether `headers` carry `Authorization: Bearer <this token>`. An
    /// empty configured token matches nothing (fail closed).
    pub fn authorizes(&self, headers: &HeaderMap) -> bool {
        let Some(presented) = headers.get(AUTHORIZATION).and_then(bearer) else {
            return false;
        };
        constant_time_eq(presented, self.0.as_bytes())
    }
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthToken(<redacted>)")
    }
}

/// The credentials of a `Bearer` authorization header (scheme matched
/// case-insensitively, RFC 7235).
fn bearer(value: &HeaderValue) -> Option<&[u8]> {
    let bytes = value.as_bytes();
    let scheme = bytes.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = &bytes[7..];
    let start = token.iter().position(|&b| b != b' ')?;
    Some(&token[start..])
}

/// Compares `presented` with `expected` in time that depends only on
/// `presented.len()`.
fn constant_time_eq(presented: &[u8], expected: &[u8]) -> bool {
    if expected.is_empty() {
        return false;
    }
    let mut diff = u8::from(presented.len() != expected.len());
    for (i, &p) in presented.iter().enumerate() {
        diff |= p ^ expected[i % expected.len()];
    }
    std::hint::black_box(diff) == 0
}

/// Middleware: 401 unless the request carries the configured token (when
/// one is configured).
pub(super) async fn require_token(
    State(state): State<HttpState>,
    request: Request,
    next: Next,
) -> Response {
    match &state.auth_token {
        Some(token) if !token.authorizes(request.headers()) => unauthorized(),
        _ => next.run(request).await,
    }
}

fn unauthorized() -> Response {
    let mut response = error_response(StatusCode::UNAUTHORIZED, "unauthorized");
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"journeyd\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).expect("header"));
        h
    }

    #[test]
    fn accepts_only_the_exact_token() {
        let token = AuthToken::new("s3cret");
        assert!(token.authorizes(&headers("Bearer s3cret")));
        assert!(token.authorizes(&headers("bearer s3cret")));
        assert!(!token.authorizes(&headers("Bearer s3cre")));
        assert!(!token.authorizes(&headers("Bearer s3cret2")));
        assert!(!token.authorizes(&headers("Bearer s3cret s3cret")));
        assert!(!token.authorizes(&headers("Basic s3cret")));
        assert!(!token.authorizes(&headers("Bearer")));
        assert!(!token.authorizes(&HeaderMap::new()));
    }

    #[test]
    fn empty_token_fails_closed() {
        let token = AuthToken::new("");
        assert!(!token.authorizes(&headers("Bearer ")));
        assert!(!constant_time_eq(b"", b""));
    }

    #[test]
    fn comparison_is_exact() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(
            !constant_time_eq(b"abcabc", b"abc"),
            "a repeat is not a match"
        );
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"abd", b"abc"));
    }

    #[test]
    fn debug_redacts() {
        let shown = format!("{:?}", AuthToken::new("s3cret"));
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
