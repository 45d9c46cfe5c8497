//! Managing subscriptions, shared by `coursewire subscriptions …` and `/api/v1/subscriptions`:
//! validates a request, fills in the defaults (a generated `whsec_` secret, the configured
//! retry schedule) and calls the store. The generated secret is returned once, at creation.

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::schedule;
use super::signature::{generate_secret, secret_key};
use super::target::TargetPolicy;
use crate::config::Config;
use crate::secrets::SecretsKey;
use crate::store::{NewSubscription, OnExhausted, Store, StoreError, Subscription};

/// A subscription to add, as the CLI and the API take it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddRequest {
    pub name: String,
    /// Where to push; empty (or absent) for a pull-only subscription, read through
    /// `GET /api/v1/subscriptions/{name}/events`.
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub types: Vec<String>,
    /// Delays after the 1st, 2nd … failed attempt, in ms; default `delivery.retry_schedule_ms`.
    #[serde(default)]
    pub retry_schedule_ms: Option<Vec<u64>>,
    /// `block` (default) or `skip`.
    #[serde(default)]
    pub on_exhausted: Option<String>,
    /// `beginning` (default: every change event in the outbox) or `now` (only those that
    /// come after the subscription is added).
    #[serde(default)]
    pub start: Option<String>,
    /// Who asks: the API token's name, `api.token` or `cli` (set by the caller, never read
    /// from the request body).
    #[serde(skip)]
    pub created_by: String,
}

/// A created subscription with its secret (shown this once).
#[derive(Debug, Clone, Serialize)]
pub struct Added {
    #[serde(flatten)]
    pub subscription: Subscription,
    pub secret: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("a subscription named {0:?} already exists")]
    Exists(String),
    #[error("no subscription named {0:?}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// What a new subscription is held to (from `[delivery]` and `[api]`).
#[derive(Debug, Clone)]
pub struct Limits {
    /// The retry schedule of a subscription that names none.
    pub default_schedule_ms: Vec<u64>,
    /// No delay of a schedule may be shorter (no retry storms).
    pub min_retry_delay_ms: u64,
    /// Which addresses a target may resolve to.
    pub targets: Arc<TargetPolicy>,
    /// How many subscriptions one creator may make; `None`: no cap (the shell).
    pub per_creator: Option<u64>,
    /// Seals the signing secret before it is stored (`secrets.key`).
    pub secrets: Arc<SecretsKey>,
}

impl Limits {
    /// The limits of `config`; `capped`: for API callers (`api.max_subscriptions_per_token`).
    pub fn from_config(config: &Config, capped: bool) -> anyhow::Result<Self> {
        let d = &config.delivery;
        Ok(Self {
            default_schedule_ms: d.retry_schedule_ms.clone(),
            min_retry_delay_ms: d.min_retry_delay_ms,
            targets: Arc::new(TargetPolicy::new(&d.allowed_networks).map_err(anyhow::Error::msg)?),
            per_creator: capped.then_some(config.api.max_subscriptions_per_token),
            secrets: Arc::new(SecretsKey::new(config.secrets.key.expose())?),
        })
    }
}

/// Checks a request and turns it into the row to store (the target's addresses are judged
/// by [`add`], which may resolve its name).
pub fn prepare(
    request: AddRequest,
    limits: &Limits,
    now_ms: i64,
) -> Result<(NewSubscription, String), AdminError> {
    if !valid_name(&request.name) {
        return Err(AdminError::Invalid(
            "name must be 1–100 characters of letters, digits, '-', '_' or '.'".into(),
        ));
    }
    let url = if request.url.trim().is_empty() {
        String::new() // pull only
    } else {
        let url = reqwest::Url::parse(&request.url)
            .map_err(|e| AdminError::Invalid(format!("url is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(AdminError::Invalid("url must be http(s)".into()));
        }
        url.to_string()
    };
    let secret = match request.secret {
        Some(secret) => {
            secret_key(&secret).map_err(|e| AdminError::Invalid(e.to_string()))?;
            secret
        }
        None => generate_secret(),
    };
    let types: Vec<String> = request
        .types
        .iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    let on_exhausted = OnExhausted::parse(request.on_exhausted.as_deref().unwrap_or("block"))
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    let from_now = match request.start.as_deref().unwrap_or("beginning") {
        "beginning" => false,
        "now" => true,
        other => {
            return Err(AdminError::Invalid(format!(
                "start must be beginning or now, not {other:?}"
            )));
        }
    };
    let retry_schedule_ms = request
        .retry_schedule_ms
        .unwrap_or_else(|| limits.default_schedule_ms.clone());
    let shortest = limits.min_retry_delay_ms;
    if retry_schedule_ms.len() > 100
        || retry_schedule_ms
            .iter()
            .any(|d| *d > 7 * 86_400_000 || *d < shortest)
    {
        return Err(AdminError::Invalid(format!(
            "retry schedule: at most 100 delays, each from {shortest} ms \
             (delivery.min_retry_delay_ms) to 7 days"
        )));
    }
    Ok((
        NewSubscription {
            name: request.name,
            url,
            secret: limits
                .secrets
                .seal(&secret)
                .map_err(|e| AdminError::Store(StoreError::Other(e.to_string())))?,
            types,
            retry_schedule_ms,
            on_exhausted,
            from_now,
            created_at_ms: now_ms,
            created_by: request.created_by,
        },
        secret,
    ))
}

/// Lanes listed by [`status`] at most.
const STATUS_LANES: i64 = 100;

/// A subscription with where its delivery stands: the cursor, the lag (age of the oldest
/// event not delivered yet), its failing subjects (lanes) and how many dead letters it has.
/// What an operator reads to answer "why did system X not get that change?".
pub async fn status(
    store: &Store,
    name: &str,
    now_ms: i64,
) -> Result<serde_json::Value, AdminError> {
    let subscription = store
        .subscription(name)
        .await?
        .ok_or_else(|| AdminError::NotFound(name.to_owned()))?;
    let lanes = store.lanes_of(subscription.id, STATUS_LANES).await?;
    let dead = store
        .dead_letters(subscription.id)
        .await?
        .iter()
        .filter(|d| d.state != "delivered")
        .count();
    let oldest = store
        .delivery_backlog()
        .await?
        .into_iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, oldest)| oldest);
    let mut out = serde_json::to_value(&subscription)
        .map_err(|e| AdminError::Store(StoreError::Other(e.to_string())))?;
    out["mode"] = (if subscription.pushes() {
        "push"
    } else {
        "pull"
    })
    .into();
    out["lag_seconds"] = oldest.map(|at| (now_ms - at).max(0) as f64 / 1000.0).into();
    out["failing_subjects"] = serde_json::to_value(&lanes)
        .map_err(|e| AdminError::Store(StoreError::Other(e.to_string())))?;
    out["dead_letters"] = dead.into();
    Ok(out)
}

/// Adds a subscription.
pub async fn add(
    store: &Store,
    request: AddRequest,
    limits: &Limits,
    now_ms: i64,
) -> Result<Added, AdminError> {
    let (new, secret) = prepare(request, limits, now_ms)?;
    if !new.url.is_empty() {
        let url = reqwest::Url::parse(&new.url)
            .map_err(|e| AdminError::Invalid(format!("url is not a URL: {e}")))?;
        limits
            .targets
            .check_url(&url)
            .await
            .map_err(|e| AdminError::Invalid(e.to_string()))?;
    }
    if let Some(cap) = limits.per_creator {
        let made = store.subscriptions_created_by(&new.created_by).await?;
        if made >= cap as i64 {
            return Err(AdminError::Invalid(format!(
                "{:?} has made {made} subscriptions, the most one token may \
                 (api.max_subscriptions_per_token)",
                new.created_by
            )));
        }
    }
    match store.create_subscription(&new).await? {
        Some(subscription) => Ok(Added {
            subscription,
            secret,
        }),
        None => Err(AdminError::Exists(new.name)),
    }
}

/// Seals every signing secret still stored in the clear (written before `secrets.key` was
/// set); returns how many.
pub async fn seal_stored_secrets(store: &Store, secrets: &SecretsKey) -> Result<usize, AdminError> {
    let mut sealed = 0;
    for (id, stored) in store.subscription_secrets().await? {
        if !SecretsKey::is_sealed(&stored) {
            store
                .set_subscription_secret(
                    id,
                    &secrets
                        .seal(&stored)
                        .map_err(|e| AdminError::Store(StoreError::Other(e.to_string())))?,
                )
                .await?;
            sealed += 1;
        }
    }
    Ok(sealed)
}

/// Parses the CLI's `--retry-schedule 5s,5m,30m`.
pub fn parse_schedule_arg(text: &str) -> Result<Vec<u64>, AdminError> {
    schedule::parse_schedule(text).ok_or_else(|| {
        AdminError::Invalid(format!(
            "retry schedule {text:?}: expected durations like 250ms,5s,5m,2h"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(default_schedule_ms: &[u64]) -> Limits {
        Limits {
            default_schedule_ms: default_schedule_ms.to_vec(),
            min_retry_delay_ms: 1,
            targets: Arc::new(TargetPolicy::default()),
            per_creator: None,
            secrets: Arc::new(SecretsKey::new("").unwrap()),
        }
    }

    fn request() -> AddRequest {
        AddRequest {
            name: "lms-sync".into(),
            url: "https://example.test/hook".into(),
            ..AddRequest::default()
        }
    }

    #[test]
    fn defaults_are_filled_in() {
        let (new, secret) = prepare(request(), &limits(&[5, 6]), 42).unwrap();
        assert!(secret.starts_with("whsec_"));
        assert_eq!(new.secret, secret);
        assert_eq!(new.retry_schedule_ms, vec![5, 6]);
        assert_eq!(new.on_exhausted, OnExhausted::Block);
        assert!(new.types.is_empty());
    }

    #[test]
    fn no_url_makes_a_pull_only_subscription() {
        let (new, _) = prepare(
            AddRequest {
                url: String::new(),
                ..request()
            },
            &limits(&[]),
            0,
        )
        .unwrap();
        assert_eq!(new.url, "");
    }

    #[test]
    fn bad_requests_are_refused() {
        for bad in [
            AddRequest {
                name: "has space".into(),
                ..request()
            },
            AddRequest {
                url: "ftp://x".into(),
                ..request()
            },
            AddRequest {
                secret: Some("plain".into()),
                ..request()
            },
            AddRequest {
                on_exhausted: Some("explode".into()),
                ..request()
            },
            AddRequest {
                start: Some("yesterday".into()),
                ..request()
            },
            AddRequest {
                retry_schedule_ms: Some(vec![5_000, 0, 5_000]),
                ..request()
            },
        ] {
            let strict = Limits {
                min_retry_delay_ms: 1_000,
                ..limits(&[])
            };
            assert!(matches!(
                prepare(bad, &strict, 0),
                Err(AdminError::Invalid(_))
            ));
        }
    }
}
