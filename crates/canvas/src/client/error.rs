//! The client's one error type. Variants are grouped by what a caller does about them:
//! re-authorise (`Unauthorized`), slow down or try later (`Throttled`, `Unavailable`), fix the
//! request (`Status` with a 4xx), or report a bug (`Decode`, `Pagination`). Messages never
//! carry tokens or query strings.

use reqwest::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The credentials are invalid, revoked, or could not be refreshed: a human must
    /// re-authorise the integration. Retrying will not help.
    #[error("Canvas rejected the credentials: {0}")]
    Unauthorized(String),
    /// Canvas kept throttling after every retry (a bug signal: the governor should prevent it).
    #[error("Canvas throttled {method} {path} {attempts} times")]
    Throttled {
        method: String,
        path: String,
        attempts: u32,
    },
    /// 5xx or timeouts after every retry, or a non-idempotent write that failed in flight.
    #[error("Canvas unavailable for {method} {path} after {attempts} attempts: {reason}")]
    Unavailable {
        method: String,
        path: String,
        attempts: u32,
        reason: String,
    },
    /// A non-retryable status (4xx other than 401 and throttling).
    #[error("Canvas answered {status} to {method} {path}")]
    Status {
        status: StatusCode,
        method: String,
        path: String,
        /// The first 512 bytes of the body, for diagnosis.
        body: String,
    },
    /// The body did not match the expected shape.
    #[error("could not decode the answer to {path}: {source}")]
    Decode {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// The `Link` chain misbehaved (e.g. `next` pointing back at the current page).
    #[error("pagination of {0} does not progress")]
    Pagination(String),
    /// The client was configured wrongly (bad base URL, TLS set-up).
    #[error("client configuration: {0}")]
    Config(String),
}

impl ClientError {
    /// True when retrying later (not re-authorising or changing the request) may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ClientError::Throttled { .. } | ClientError::Unavailable { .. }
        )
    }

    /// The HTTP status, when Canvas answered with a non-retryable one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}
