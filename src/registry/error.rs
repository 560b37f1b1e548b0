//! What a request to the schema registry can end with: the typed errors
//! callers branch on, each with its outcome label of
//! `journeyd_schema_registry_requests_total`.

use crate::telemetry::Outcome;

/// A request to the registry failed. The variants are what callers branch
/// on: an unknown id is dead-lettered at once, an unreachable registry is
/// retried.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// `schema_registry.url` cannot be used (checked at start-up).
    #[error("invalid schema registry URL: {0}")]
    InvalidUrl(&'static str),
    /// HTTP 404: no such schema id (error code 40403) or subject.
    #[error("not found (HTTP 404{}): {message}", code_suffix(*.code))]
    NotFound {
        /// The registry's `error_code`, when the body had one.
        code: Option<i64>,
        /// The registry's `message`, or the start of the body.
        message: String,
    },
    /// The registry answered but refused the request for good: bad
    /// credentials (401, 403), an incompatible or invalid schema (409,
    /// 422), or any other client error.
    #[error("refused (HTTP {status}{}): {message}", code_suffix(*.code))]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The registry's `error_code`, when the body had one.
        code: Option<i64>,
        /// The registry's `message`, or the start of the body.
        message: String,
    },
    /// The registry could not be reached, timed out, or answered with a
    /// server error (5xx), 408 or 429: worth retrying.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A successful answer that is not what the API promises.
    #[error("bad response: {0}")]
    BadResponse(String),
    /// A schema journeyd cannot read: not Avro, or with references to other
    /// schemas.
    #[error("unsupported schema: {0}")]
    Unsupported(String),
}

/// `, error 40403` when the registry sent an error code.
pub(super) fn code_suffix(code: Option<i64>) -> String {
    code.map(|c| format!(", error {c}")).unwrap_or_default()
}

impl RegistryError {
    /// Whether retrying the same request may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, RegistryError::Unavailable(_))
    }

    /// The metric label of this failure.
    pub fn outcome(&self) -> Outcome {
        match self {
            RegistryError::NotFound { .. } => Outcome::NotFound,
            RegistryError::Refused { .. } | RegistryError::InvalidUrl(_) => Outcome::Refused,
            RegistryError::Unavailable(_) => Outcome::Unavailable,
            RegistryError::BadResponse(_) => Outcome::BadResponse,
            RegistryError::Unsupported(_) => Outcome::Unsupported,
        }
    }
}
