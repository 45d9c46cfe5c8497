//! Ingest: turns a webhook request into an inbox row, or a refusal, and nothing more.
//!
//! The order of checks is the contract with Canvas (DESIGN principles 2 and 8):
//! 1. a body that fails verification is refused with 401, counted by reason and kept in the
//!    capped rejected-requests log, never stored as an event;
//! 2. a verified body is stored *before* it is answered; one that cannot be parsed is stored
//!    `quarantined` with the reason and still answered 2xx, so Canvas does not retry a message
//!    that will never parse, and nobody loses it;
//! 3. the same event delivered twice is stored once, and both deliveries get 2xx.
//!
//! Processing the event (catalog, change events) is not done here.

mod writer;

use std::sync::Arc;
use std::time::Instant;

use canvas::live_events::{self, DecodedEvent};
use canvas::signature::{Verifier, VerifyError};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::store::{
    InboxStatus, InsertOutcome, NewInboxEntry, REJECTED_BODY_PREFIX_BYTES, RejectedRequest,
};
pub use writer::{InboxWriter, Stored};

/// Headers worth keeping with an event: enough to trace a delivery, nothing secret.
const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "user-agent",
    "x-request-id",
    "x-forwarded-for",
    "x-amzn-trace-id",
];

/// A webhook request as ingest sees it, free of any HTTP framework.
#[derive(Debug)]
pub struct HookRequest<'a> {
    pub body: &'a [u8],
    pub headers: Vec<(String, String)>,
    pub remote_addr: Option<String>,
}

/// How a request was answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum HookOutcome {
    Accepted {
        inbox_id: i64,
    },
    Duplicate,
    Quarantined {
        inbox_id: i64,
        reason: String,
    },
    /// 401: failed verification.
    Rejected {
        reason: String,
        detail: String,
    },
    /// 503: we could not decide or could not store; Canvas should retry.
    Unavailable {
        detail: String,
    },
}

impl HookOutcome {
    pub fn http_status(&self) -> u16 {
        match self {
            HookOutcome::Accepted { .. }
            | HookOutcome::Duplicate
            | HookOutcome::Quarantined { .. } => 200,
            HookOutcome::Rejected { .. } => 401,
            HookOutcome::Unavailable { .. } => 503,
        }
    }
}

/// Settings ingest needs, taken from the config.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub allow_unsigned: bool,
    /// Our root accounts; empty: events of any root account are taken (only allowed with
    /// unsigned bodies, see `CanvasConfig::require_for_serve`).
    pub account_uuids: Vec<String>,
}

/// The Canvas Live Events receiver.
#[derive(Debug)]
pub struct CanvasIngest {
    verifier: Verifier,
    writer: InboxWriter,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    settings: IngestSettings,
}

/// A body that passed verification (or was allowed unsigned), not yet parsed.
struct Admitted {
    verification: String,
    payload: Result<serde_json::Value, String>,
}

impl CanvasIngest {
    pub fn new(
        verifier: Verifier,
        writer: InboxWriter,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        settings: IngestSettings,
    ) -> Self {
        Self {
            verifier,
            writer,
            metrics,
            clock,
            settings,
        }
    }

    pub fn writer(&self) -> &InboxWriter {
        &self.writer
    }

    pub async fn receive(&self, request: HookRequest<'_>) -> HookOutcome {
        let started = Instant::now();
        self.metrics.events_received.inc();
        let outcome = match self.admit(request.body).await {
            Ok(admitted) => self.store(&request, admitted).await,
            Err(outcome) => outcome,
        };
        match &outcome {
            HookOutcome::Accepted { .. } => {
                self.metrics.events_accepted.inc();
            }
            HookOutcome::Duplicate => {
                self.metrics.events_duplicate.inc();
            }
            HookOutcome::Quarantined { .. } => {
                self.metrics.events_quarantined.inc();
            }
            HookOutcome::Rejected { reason, detail } => {
                self.metrics.rejected(reason);
                tracing::warn!(reason, detail, remote = ?request.remote_addr, "Canvas event rejected");
                self.writer.log_rejection(rejected_request(
                    &request,
                    reason,
                    detail,
                    self.clock.now_ms(),
                ));
            }
            HookOutcome::Unavailable { detail } => {
                self.metrics.rejected("unavailable");
                tracing::error!(detail, "Canvas event not taken; answered 503");
            }
        }
        self.metrics
            .ingest_latency
            .observe(started.elapsed().as_secs_f64());
        outcome
    }

    /// Records a request refused before it reached ingest (413 from the body limit).
    pub fn refuse_oversized(&self, remote_addr: Option<String>, limit: usize) {
        self.metrics.events_received.inc();
        self.metrics.rejected("too_large");
        let request = HookRequest {
            body: b"",
            headers: Vec::new(),
            remote_addr,
        };
        self.writer.log_rejection(rejected_request(
            &request,
            "too_large",
            &format!("body over {limit} bytes"),
            self.clock.now_ms(),
        ));
    }

    /// Verification: signature, then tenant; decides whether the body may enter the inbox.
    async fn admit(&self, body: &[u8]) -> Result<Admitted, HookOutcome> {
        let admitted = self.authenticate(body).await?;
        self.check_tenant(&admitted)?;
        Ok(admitted)
    }

    /// Tenant binding: every event of an envelope must name one of our root accounts. A
    /// payload with no recognisable envelope cannot touch the catalog and is quarantined as
    /// before; an envelope that names no root account, or another, is refused.
    fn check_tenant(&self, admitted: &Admitted) -> Result<(), HookOutcome> {
        let ours = &self.settings.account_uuids;
        let Ok(payload) = &admitted.payload else {
            return Ok(());
        };
        if ours.is_empty() {
            return Ok(());
        }
        let refuse = |detail: String| {
            Err(HookOutcome::Rejected {
                reason: "foreign_account".into(),
                detail,
            })
        };
        for named in live_events::root_accounts(payload) {
            match named {
                Some(uuid) if ours.contains(&uuid) => {}
                Some(uuid) => {
                    return refuse(format!(
                        "root account {} is not in canvas.account_uuids",
                        truncated(&uuid)
                    ));
                }
                None => return refuse("the event names no root account".into()),
            }
        }
        Ok(())
    }

    /// Signature (or the unsigned allowance): decides whether the body may enter at all.
    async fn authenticate(&self, body: &[u8]) -> Result<Admitted, HookOutcome> {
        let text = String::from_utf8_lossy(body);
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            if !self.settings.allow_unsigned {
                return Err(HookOutcome::Rejected {
                    reason: "unsigned".into(),
                    detail: "unsigned body and canvas.allow_unsigned is false".into(),
                });
            }
            return Ok(Admitted {
                verification: "unsigned-allowed".into(),
                payload: serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}")),
            });
        }
        match self.verifier.verify(trimmed).await {
            Ok(verified) => Ok(Admitted {
                verification: format!("kid:{}", verified.kid),
                payload: live_events::unwrap_envelope(verified.claims).map_err(|e| e.to_string()),
            }),
            Err(VerifyError::Rejected(rejection)) => Err(HookOutcome::Rejected {
                reason: rejection.reason().to_string(),
                detail: rejection.to_string(),
            }),
            Err(VerifyError::KeysUnavailable(detail)) => {
                tracing::warn!(detail, "Canvas signing keys unavailable");
                Err(HookOutcome::Unavailable {
                    detail: "the signing keys cannot be fetched now; retry".into(),
                })
            }
        }
    }

    async fn store(&self, request: &HookRequest<'_>, admitted: Admitted) -> HookOutcome {
        let decoded = admitted
            .payload
            .and_then(|value| live_events::decode_value(&value).map_err(|e| e.to_string()));
        let entry = inbox_entry(request, admitted.verification, decoded, self.clock.now_ms());
        let quarantine_reason = entry.status_reason.clone();
        match self.writer.submit(entry).await {
            Ok(Stored {
                outcome: InsertOutcome::Inserted { id },
                as_received: Some(reason),
            }) => HookOutcome::Quarantined {
                inbox_id: id,
                reason,
            },
            Ok(Stored {
                outcome: InsertOutcome::Inserted { id },
                ..
            }) => match quarantine_reason {
                Some(reason) => HookOutcome::Quarantined {
                    inbox_id: id,
                    reason,
                },
                None => HookOutcome::Accepted { inbox_id: id },
            },
            Ok(Stored {
                outcome: InsertOutcome::Duplicate,
                ..
            }) => HookOutcome::Duplicate,
            // The writer logged the store's own error; Canvas is told only to come back.
            Err(_) => HookOutcome::Unavailable {
                detail: "the inbox cannot store events now; retry".into(),
            },
        }
    }
}

/// Builds the inbox row for an admitted body: `pending` when it decoded, `quarantined` with
/// the reason when it did not.
fn inbox_entry(
    request: &HookRequest<'_>,
    verification: String,
    decoded: Result<Vec<DecodedEvent>, String>,
    received_at_ms: i64,
) -> NewInboxEntry {
    let headers = kept_headers(&request.headers);
    let base = NewInboxEntry {
        source: "canvas".into(),
        dedup_key: String::new(),
        received_at_ms,
        event_name: None,
        event_time_ms: None,
        subject: None,
        body: request.body.to_vec(),
        headers,
        verification,
        status: InboxStatus::Pending,
        status_reason: None,
    };
    match decoded {
        Ok(events) if !events.is_empty() => {
            let first = &events[0];
            NewInboxEntry {
                dedup_key: dedup_key(&events),
                event_name: Some(first.event_name.clone()),
                event_time_ms: first.event_time.map(|t| t.timestamp_millis()),
                subject: first.cloud.subject.clone(),
                ..base
            }
        }
        Ok(_) => NewInboxEntry {
            dedup_key: raw_key(request.body),
            status: InboxStatus::Quarantined,
            status_reason: Some("envelope holds no event".into()),
            ..base
        },
        Err(reason) => NewInboxEntry {
            dedup_key: raw_key(request.body),
            status: InboxStatus::Quarantined,
            status_reason: Some(reason),
            ..base
        },
    }
}

/// One delivery is one inbox row. A Caliper envelope may carry several events; its key then
/// combines theirs, so a re-delivery of the same envelope still deduplicates.
fn dedup_key(events: &[DecodedEvent]) -> String {
    match events {
        [one] => one.dedup_key.clone(),
        many => {
            let mut hash = Sha256::new();
            for event in many {
                hash.update(event.dedup_key.as_bytes());
                hash.update(b"\n");
            }
            format!("batch:{}", hex::encode(hash.finalize()))
        }
    }
}

/// For a body that does not decode, only its bytes can identify it.
fn raw_key(body: &[u8]) -> String {
    format!("raw:{}", hex::encode(Sha256::digest(body)))
}

fn kept_headers(headers: &[(String, String)]) -> String {
    let kept: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .filter(|(name, _)| KEPT_HEADERS.contains(&name.to_ascii_lowercase().as_str()))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone().into()))
        .collect();
    serde_json::Value::Object(kept).to_string()
}

/// A value from a request, cut short before it is echoed or logged.
fn truncated(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

fn rejected_request(
    request: &HookRequest<'_>,
    reason: &str,
    detail: &str,
    received_at_ms: i64,
) -> RejectedRequest {
    let prefix = &request.body[..request.body.len().min(REJECTED_BODY_PREFIX_BYTES)];
    RejectedRequest {
        received_at_ms,
        source: "canvas".into(),
        reason: reason.to_string(),
        detail: detail.to_string(),
        remote_addr: request.remote_addr.clone(),
        body_prefix: String::from_utf8_lossy(prefix).into_owned(),
    }
}
