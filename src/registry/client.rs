//! A blocking client of the Confluent Schema Registry REST API, for the two
//! calls journeyd makes: `GET /schemas/ids/{id}` (the writer schema of a
//! Confluent-framed record) and `POST /subjects/{subject}/versions`
//! (registering an output schema, or finding the id it already has).
//!
//! Blocking on purpose: the processing loop is one plain thread, and a
//! look-up happens at most once per schema id. Credentials in the URL's
//! user information are taken out of it and sent as HTTP Basic
//! authentication, so no URL this client builds, logs or reports carries
//! them. Every request is bounded by `schema_registry.timeout` and emits a
//! [`SchemaRegistryRequest`] event.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use ureq::tls::{RootCerts, TlsConfig};

use super::error::RegistryError;
use super::error::code_suffix;
use super::url::RegistryUrl;
use crate::config::Secret;
use crate::telemetry::Metrics;
use crate::telemetry::events::{InternalEvent, SchemaRegistryRequest};
use crate::telemetry::{Operation, Outcome};

/// The media type of the registry's API (requests and responses).
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// What the client accepts, preferring the registry's own media type.
const ACCEPT: &str = "application/vnd.schemaregistry.v1+json, \
                      application/vnd.schemaregistry+json; qs=0.9, application/json; qs=0.5";

/// The largest response body read: schemas are kilobytes, not megabytes.
const MAX_BODY_BYTES: u64 = 8 << 20;

/// Registry messages and bodies are cut to this many characters in errors.
const MAX_MESSAGE_CHARS: usize = 300;

/// A client of one schema registry. Cheap to clone (the connection pool is
/// shared).
#[derive(Clone)]
pub struct RegistryClient {
    /// Pooled connections, with the timeout and TLS settings.
    agent: ureq::Agent,
    /// The base URL without credentials or trailing slash.
    base: String,
    /// `Basic ...` from the URL's user information; never logged.
    authorization: Option<Secret>,
    /// Where every request is counted.
    metrics: Arc<Metrics>,
}

/// `Debug` shows the base URL only: never the credentials.
impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base", &self.base)
            .field("authorization", &self.authorization)
            .finish_non_exhaustive()
    }
}

/// The body of `GET /schemas/ids/{id}`.
#[derive(Deserialize)]
struct SchemaResponse {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<serde::de::IgnoredAny>,
}

/// The body of `POST /subjects/{subject}/versions`.
#[derive(Deserialize)]
struct RegisterResponse {
    id: u32,
}

/// A registry error body: `{"error_code": 40403, "message": "..."}`.
#[derive(Deserialize)]
struct ErrorBody {
    error_code: Option<i64>,
    message: Option<String>,
}

impl RegistryClient {
    /// A client of the registry at `url` (`http://` or `https://`, with
    /// optional `user:password@`, percent-encoded), each request bounded by
    /// `timeout`. HTTPS certificates are checked against the platform's
    /// trust store, as librdkafka does for the brokers.
    pub fn new(
        url: &str,
        timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<RegistryClient, RegistryError> {
        let url = RegistryUrl::parse(url)?;
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::PlatformVerifier)
            .build();
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .tls_config(tls)
            .user_agent(concat!("journeyd/", env!("CARGO_PKG_VERSION")))
            .build();
        let authorization = url.credentials.map(|(user, password)| {
            let token = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                user.expose(),
                password.expose()
            ));
            Secret::new(format!("Basic {token}"))
        });
        Ok(RegistryClient {
            agent: ureq::Agent::new_with_config(config),
            base: url.base,
            authorization,
            metrics,
        })
    }

    /// The base URL, without credentials: safe to log.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The writer schema of `id`, as JSON text. Only Avro schemas
    /// (`schemaType` absent or `AVRO`) without references are accepted.
    pub fn schema(&self, id: u32) -> Result<String, RegistryError> {
        let uri = format!("{}/schemas/ids/{id}", self.base);
        let result = self
            .prepare(self.agent.get(&uri))
            .call()
            .map_err(transport)
            .and_then(read_answer)
            .and_then(|body| parse_schema(id, &body));
        self.observe(Operation::GetSchema, &result);
        result
    }

    /// Registers `schema` (Avro, as JSON text) under `subject` and returns
    /// its id; a schema registered before keeps its id.
    pub fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let uri = format!(
            "{}/subjects/{}/versions",
            self.base,
            encode_segment(subject)
        );
        let body = serde_json::json!({ "schema": schema }).to_string();
        let result = self
            .prepare(self.agent.post(&uri))
            .header("Content-Type", CONTENT_TYPE)
            .send(body)
            .map_err(transport)
            .and_then(read_answer)
            .and_then(|body| {
                serde_json::from_str::<RegisterResponse>(&body)
                    .map(|r| r.id)
                    .map_err(|e| RegistryError::BadResponse(format!("no schema id: {e}")))
            });
        self.observe(Operation::Register, &result);
        result
    }

    /// The headers of every request: what is accepted, and credentials.
    fn prepare<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        let request = request.header("Accept", ACCEPT);
        match &self.authorization {
            Some(authorization) => request.header("Authorization", authorization.expose()),
            None => request,
        }
    }

    /// Counts one request and logs a failure.
    fn observe<T>(&self, operation: Operation, result: &Result<T, RegistryError>) {
        let error = result.as_ref().err();
        SchemaRegistryRequest {
            operation,
            outcome: error.map_or(Outcome::Ok, RegistryError::outcome),
            error: error.map(|e| e as &dyn std::error::Error),
        }
        .emit(&self.metrics);
    }
}

/// The body of a 2xx answer; any other status as its error.
fn read_answer(mut response: ureq::http::Response<ureq::Body>) -> Result<String, RegistryError> {
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_BODY_BYTES)
        .read_to_string()
        .map_err(transport)?;
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        Err(status_error(status, &body))
    }
}

/// A transport failure: unreachable, unless the body was too large.
fn transport(error: ureq::Error) -> RegistryError {
    match error {
        ureq::Error::BodyExceedsLimit(limit) => {
            RegistryError::BadResponse(format!("the body is larger than {limit} bytes"))
        }
        other => RegistryError::Unavailable(other.to_string()),
    }
}

/// The error of a non-2xx answer, with the registry's code and message.
fn status_error(status: u16, body: &str) -> RegistryError {
    let parsed = serde_json::from_str::<ErrorBody>(body).ok();
    let code = parsed.as_ref().and_then(|b| b.error_code);
    let message = parsed
        .and_then(|b| b.message)
        .unwrap_or_else(|| body.trim().to_owned());
    let message = excerpt(&message);
    match status {
        404 => RegistryError::NotFound { code, message },
        408 | 429 | 500.. => {
            RegistryError::Unavailable(format!("HTTP {status}{}: {message}", code_suffix(code)))
        }
        _ => RegistryError::Refused {
            status,
            code,
            message,
        },
    }
}

/// The schema text of a `GET /schemas/ids/{id}` answer.
fn parse_schema(id: u32, body: &str) -> Result<String, RegistryError> {
    let response: SchemaResponse = serde_json::from_str(body)
        .map_err(|e| RegistryError::BadResponse(format!("schema id {id}: {e}")))?;
    match response.schema_type.as_deref() {
        None => {}
        Some(t) if t.eq_ignore_ascii_case("AVRO") => {}
        Some(other) => {
            return Err(RegistryError::Unsupported(format!(
                "a {} schema; journeyd reads only Avro",
                excerpt(other)
            )));
        }
    }
    if !response.references.is_empty() {
        return Err(RegistryError::Unsupported(
            "it refers to other schemas, which journeyd does not resolve".into(),
        ));
    }
    Ok(response.schema)
}

/// At most [`MAX_MESSAGE_CHARS`] characters of `text`.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// `segment` percent-encoded for a URL path: unreserved characters kept.
fn encode_segment(segment: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    utf8_percent_encode(segment, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Outcome;

    #[test]
    fn error_bodies_become_typed_errors() {
        let body = r#"{"error_code":40403,"message":"Schema 7 not found"}"#;
        let err = status_error(404, body);
        assert_eq!(
            err,
            RegistryError::NotFound {
                code: Some(40403),
                message: "Schema 7 not found".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "not found (HTTP 404, error 40403): Schema 7 not found"
        );
        assert!(!err.is_transient());
        let err = status_error(503, "<html>busy</html>");
        assert_eq!(
            err,
            RegistryError::Unavailable("HTTP 503: <html>busy</html>".into())
        );
        assert!(err.is_transient());
        assert_eq!(status_error(429, "").outcome(), Outcome::Unavailable);
        let err = status_error(409, r#"{"error_code":409,"message":"incompatible"}"#);
        assert_eq!(
            err.to_string(),
            "refused (HTTP 409, error 409): incompatible"
        );
        assert_eq!(err.outcome(), Outcome::Refused);
        let long = "x".repeat(1000);
        let RegistryError::Refused { message, .. } = status_error(401, &long) else {
            panic!("401 is refused");
        };
        assert_eq!(message.len(), MAX_MESSAGE_CHARS + 3);
    }

    #[test]
    fn only_plain_avro_schemas_are_accepted() {
        let avro = r#"{"schema":"\"string\""}"#;
        assert_eq!(parse_schema(1, avro).unwrap(), "\"string\"");
        let typed = r#"{"schema":"\"string\"","schemaType":"AVRO"}"#;
        assert_eq!(parse_schema(1, typed).unwrap(), "\"string\"");
        let proto = r#"{"schema":"syntax = \"proto3\";","schemaType":"PROTOBUF"}"#;
        let err = parse_schema(2, proto).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported schema: a PROTOBUF schema; journeyd reads only Avro"
        );
        let refs =
            r#"{"schema":"\"x.Y\"","references":[{"name":"x.Y","subject":"y","version":1}]}"#;
        assert_eq!(
            parse_schema(3, refs).unwrap_err().outcome(),
            Outcome::Unsupported
        );
        let err = parse_schema(4, "<html>").unwrap_err();
        assert!(matches!(err, RegistryError::BadResponse(_)), "{err}");
    }

    #[test]
    fn subjects_are_encoded_as_one_path_segment() {
        assert_eq!(
            encode_segment("journey.stage-changes-value"),
            "journey.stage-changes-value"
        );
        assert_eq!(encode_segment("a/b c%"), "a%2Fb%20c%25");
    }
}
