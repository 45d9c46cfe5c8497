//! The client's one error type, grouped by what a caller does about it: fix the credentials
//! (`Unauthorized`), try later (`Throttled`, `Unavailable`, `Budget`), fix the request
//! (`Status` with a 4xx, `Fault` for a SOAP operation Panopto refused), or report a bug
//! (`Decode`). Messages never carry tokens, passwords or query strings.

use reqwest::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The service user's credentials were refused: a person must fix them. Retrying will not
    /// help.
    #[error("Panopto rejected the credentials: {0}")]
    Unauthorized(String),
    /// Panopto kept answering 429 after every retry (a bug signal: the pacer should prevent it).
    #[error("Panopto throttled {what} {attempts} times")]
    Throttled { what: String, attempts: u32 },
    /// 5xx or timeouts after every retry, or a write that failed in flight.
    #[error("Panopto unavailable for {what} after {attempts} attempts: {reason}")]
    Unavailable {
        what: String,
        attempts: u32,
        reason: String,
    },
    /// A non-retryable status (4xx other than 401 and 429).
    #[error("Panopto answered {status} to {what}")]
    Status {
        status: StatusCode,
        what: String,
        /// The first 512 bytes of the body, for diagnosis.
        body: String,
    },
    /// A SOAP operation answered with a fault (the operation was refused, not the transport).
    #[error("Panopto refused {what}: {code}: {message}")]
    Fault {
        what: String,
        code: String,
        message: String,
    },
    /// The body did not match the expected shape.
    #[error("could not decode the answer to {what}: {reason}")]
    Decode { what: String, reason: String },
    /// The shared request budget could not be read or written (the store is down).
    #[error("the Panopto request budget is unavailable: {0}")]
    Budget(String),
    /// The client was configured wrongly (bad base URL, TLS set-up).
    #[error("client configuration: {0}")]
    Config(String),
}

impl ClientError {
    /// True when retrying later (not fixing credentials or the request) may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ClientError::Throttled { .. }
                | ClientError::Unavailable { .. }
                | ClientError::Budget(_)
        )
    }

    /// The HTTP status, when Panopto answered with a non-retryable one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}
