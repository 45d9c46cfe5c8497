//! One HTTP attempt: the signed request and how its answer is classified. Only 2xx is
//! success; redirects are not followed (they count as failures); 410 Gone asks us to stop
//! sending; 429 and 503 (and any answer) may carry `Retry-After`. A failure without an answer
//! is recorded by its class (timed out, connection refused, could not connect, refused by the
//! target policy), never with the address or the error text.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};

use super::schedule::parse_retry_after;
use super::signature::sign;
use super::target::Refused;

/// The Content-Type of a structured-mode CloudEvent.
pub const CONTENT_TYPE_CLOUDEVENTS: &str = "application/cloudevents+json";

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Delivered {
        status: u16,
    },
    Failed {
        status: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
        /// 410 Gone: the endpoint asks not to be called again.
        gone: bool,
    },
}

/// The headers of one signed request, for the sender and for tests.
pub fn webhook_headers(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> [(String, String); 3] {
    [
        ("webhook-id".to_owned(), id.to_owned()),
        ("webhook-timestamp".to_owned(), timestamp.to_string()),
        (
            "webhook-signature".to_owned(),
            sign(key, id, timestamp, body),
        ),
    ]
}

/// Classifies an HTTP status (and its `Retry-After`).
pub fn classify(status: u16, retry_after: Option<&str>) -> Answer {
    if (200..300).contains(&status) {
        return Answer::Delivered { status };
    }
    Answer::Failed {
        status: Some(status),
        error: format!("HTTP {status}"),
        retry_after: retry_after.and_then(parse_retry_after),
        gone: status == 410,
    }
}

/// Sends one attempt with the given timeout.
pub async fn send(
    client: &reqwest::Client,
    url: &str,
    key: &[u8],
    id: &str,
    timestamp: i64,
    body: &str,
    timeout: Duration,
) -> Answer {
    let mut request = client.post(url).timeout(timeout).header(
        CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE_CLOUDEVENTS),
    );
    for (name, value) in webhook_headers(key, id, timestamp, body.as_bytes()) {
        request = request.header(name, value);
    }
    match request.body(body.to_owned()).send().await {
        Ok(response) => {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            classify(response.status().as_u16(), retry_after.as_deref())
        }
        Err(err) => {
            let error = failure_class(&err, timeout);
            // The error's own text names the URL, credentials and all: log it without.
            let detail = err.without_url();
            tracing::debug!(url = %crate::secrets::redact_url(url), error = %detail, "delivery attempt failed");
            Answer::Failed {
                status: None,
                error,
                retry_after: None,
                gone: false,
            }
        }
    }
}

/// What an attempt that got no answer is recorded (and shown to API callers) as: the class
/// of failure only. The error itself names the address and what answered there, which would
/// let a subscriber map the network coursewire runs in; it goes to the debug log.
fn failure_class(err: &reqwest::Error, timeout: Duration) -> String {
    if err.is_timeout() {
        return format!("timed out after {timeout:?}");
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            return refused_class(refused);
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "connection refused".into(),
                std::io::ErrorKind::TimedOut => return format!("timed out after {timeout:?}"),
                _ => {}
            }
        }
        source = cause.source();
    }
    if err.is_connect() {
        "could not connect".into()
    } else {
        "request failed".into()
    }
}

/// The recorded failure of a target the policy refuses.
pub fn refused_class(refused: &Refused) -> String {
    format!(
        "refused by coursewire: a {} address (see delivery.allowed_networks)",
        refused.class.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_2xx_is_delivered() {
        assert_eq!(classify(204, None), Answer::Delivered { status: 204 });
        assert!(matches!(classify(302, None), Answer::Failed { .. }));
        assert!(matches!(
            classify(410, None),
            Answer::Failed { gone: true, .. }
        ));
        assert_eq!(
            classify(429, Some("3")),
            Answer::Failed {
                status: Some(429),
                error: "HTTP 429".into(),
                retry_after: Some(Duration::from_secs(3)),
                gone: false
            }
        );
    }
}
