//! Verification of signed Canvas Live Events.
//!
//! With "Sign Payload" on, Canvas posts a compact JWS (RS256) whose claims carry the event; the
//! key is chosen by the `kid` header from a JWKS that serves the previous, current and next key
//! (keys rotate monthly, canvas.md A3). This module owns that check and nothing else: it never
//! parses the event itself.
//!
//! Only RS256 is accepted, decided from the header *before* any key is touched, so `alg: none`
//! and algorithm confusion (an HS256 token "signed" with the public key as HMAC secret) are
//! refused outright. An unknown `kid` makes the verifier refetch the JWKS, at most once per
//! `min_refresh` (one fetch in flight at a time, and a failed fetch remembered as long), so a
//! rotation is picked up at once while a flood of forged `kid`s cannot make it hammer the
//! JWKS host, up or down. The JWKS is also refetched on a schedule ([`Verifier::keep_fresh`]);
//! a key it stops serving is dropped after a grace period; a fetch that fails, or brings no
//! usable key, never empties the cache. The response is capped in size, the JWS header is
//! size-checked before it is decoded, and `kid`/`alg` are cut short wherever they are echoed.
//!
//! Time claims, when present, are enforced: `exp` (past, beyond the leeway: expired), `nbf`
//! (future, beyond the leeway: not yet valid), and `iat` older than the maximum token age
//! (stale: a captured delivery replayed long after Canvas gave up retrying). A token with none
//! of them is judged by its signature alone: Canvas has sent tokens without them, and refusing
//! a signed event it will not resend would lose it; replays of such a token are caught by the
//! inbox's content-derived dedup key.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::sync::{Mutex, RwLock};

/// Why a signed body was refused. [`Rejection::reason`] gives a stable label for metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("not a compact JWS: {0}")]
    Malformed(String),
    #[error("algorithm {0:?} is not allowed (only RS256)")]
    AlgorithmNotAllowed(String),
    #[error("JWS header has no kid")]
    MissingKid,
    #[error("no signing key with kid {0:?} in the JWKS")]
    UnknownKid(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token issued {age_seconds} s ago, longer than the {max_seconds} s accepted")]
    Stale { age_seconds: i64, max_seconds: u64 },
}

impl Rejection {
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::AlgorithmNotAllowed(_) => "algorithm_not_allowed",
            Rejection::MissingKid => "missing_kid",
            Rejection::UnknownKid(_) => "unknown_kid",
            Rejection::BadSignature => "bad_signature",
            Rejection::Expired => "expired",
            Rejection::NotYetValid => "not_yet_valid",
            Rejection::Stale { .. } => "stale",
        }
    }
}

/// The outcome of verification: our failure to get keys is not the sender's fault, so it is
/// kept apart from [`Rejection`] (the receiver answers 503 and Canvas retries).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("signing keys unavailable: {0}")]
    KeysUnavailable(String),
}

/// A body whose signature checked out.
#[derive(Debug, Clone)]
pub struct Verified {
    pub kid: String,
    pub claims: serde_json::Value,
}

/// Where signing keys come from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    /// Fetched over HTTP(S), e.g. Instructure's published JWKS.
    Url {
        url: String,
        client: reqwest::Client,
    },
    /// A fixed set, e.g. read from a file by `coursewire decode --jwks`.
    Fixed(JwkSet),
}

/// A JWKS larger than this is refused (Instructure's holds three RSA keys, about 1.5 KiB).
const MAX_JWKS_BYTES: usize = 64 * 1024;
/// A JWS header longer than this (base64url) is malformed: it is refused before it is decoded.
const MAX_HEADER_CHARS: usize = 2048;
/// `kid` and `alg` are cut to this many characters wherever they are echoed, logged or stored.
const MAX_ECHOED_CHARS: usize = 64;

impl JwksSource {
    async fn fetch(&self) -> Result<JwkSet, String> {
        match self {
            JwksSource::Fixed(set) => Ok(set.clone()),
            JwksSource::Url { url, client } => {
                let mut response = client
                    .get(url)
                    .send()
                    .await
                    .map_err(|e| format!("GET {url}: {}", e.without_url()))?;
                if !response.status().is_success() {
                    return Err(format!("GET {url}: HTTP {}", response.status()));
                }
                if response
                    .content_length()
                    .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
                {
                    return Err(format!(
                        "GET {url}: JWKS larger than {MAX_JWKS_BYTES} bytes"
                    ));
                }
                let mut body = Vec::new();
                while let Some(chunk) = response
                    .chunk()
                    .await
                    .map_err(|e| format!("GET {url}: {}", e.without_url()))?
                {
                    if body.len() + chunk.len() > MAX_JWKS_BYTES {
                        return Err(format!(
                            "GET {url}: JWKS larger than {MAX_JWKS_BYTES} bytes"
                        ));
                    }
                    body.extend_from_slice(&chunk);
                }
                serde_json::from_slice::<JwkSet>(&body)
                    .map_err(|e| format!("GET {url}: not a JWKS: {e}"))
            }
        }
    }
}

/// A signing key and when the JWKS last served it.
#[derive(Clone)]
struct CachedKey {
    key: DecodingKey,
    last_served: Instant,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, CachedKey>,
    /// The last fetch that brought usable keys.
    fetched_at: Option<Instant>,
    /// The last fetch that failed, and why (cleared by a good one).
    failed: Option<(Instant, String)>,
}

/// What clones of a verifier share.
#[derive(Default)]
struct Shared {
    cache: RwLock<KeyCache>,
    /// One fetch in flight at a time: concurrent requests with a new `kid` cause one fetch.
    refresh: Mutex<()>,
}

/// Verifies compact-JWS Live Events against a cached JWKS. Clones share the cache.
#[derive(Clone)]
pub struct Verifier {
    source: JwksSource,
    min_refresh: Duration,
    refresh_every: Duration,
    key_grace: Duration,
    leeway_seconds: u64,
    check_expiry: bool,
    /// Oldest `iat` accepted; `None`: any.
    max_token_age: Option<Duration>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("source", &self.source)
            .field("min_refresh", &self.min_refresh)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// `min_refresh`: the shortest time between two fetches caused by unknown `kid`s (and how
    /// long a failed fetch is remembered).
    pub fn new(source: JwksSource, min_refresh: Duration, leeway_seconds: u64) -> Self {
        Self {
            source,
            min_refresh,
            refresh_every: Duration::from_secs(3600),
            key_grace: Duration::from_secs(86_400),
            leeway_seconds,
            check_expiry: true,
            max_token_age: None,
            shared: Arc::default(),
        }
    }

    /// Checks signatures but no time claim: for decoding captured deliveries after the fact.
    pub fn ignoring_expiry(mut self) -> Self {
        self.check_expiry = false;
        self
    }

    /// Refuses a token whose `iat` is older than `max_age` (plus the leeway) as stale.
    pub fn with_max_token_age(mut self, max_age: Duration) -> Self {
        self.max_token_age = Some(max_age);
        self
    }

    /// [`Verifier::keep_fresh`] refetches every `every`; a key the JWKS no longer serves is
    /// dropped once it has been missing for `grace`.
    pub fn with_schedule(mut self, every: Duration, grace: Duration) -> Self {
        self.refresh_every = every;
        self.key_grace = grace;
        self
    }

    /// Refetches the JWKS on the schedule until `stop` resolves, so keys Canvas stops serving
    /// are dropped (after the grace period) even when no unknown `kid` asks for a fetch.
    pub async fn keep_fresh(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.refresh_every) => {}
                _ = &mut stop => return,
            }
            let _guard = self.shared.refresh.lock().await;
            if let Err(err) = self.fetch_keys().await {
                tracing::warn!(error = %err, "scheduled JWKS refresh failed; cached keys kept");
            }
        }
    }

    /// Checks a compact JWS and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Verified, VerifyError> {
        let token = token.trim();
        let kid = check_header(token)?;
        let key = self.key_for(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.required_spec_claims.clear();
        validation.validate_aud = false;
        validation.validate_exp = self.check_expiry;
        validation.validate_nbf = self.check_expiry;
        validation.leeway = self.leeway_seconds;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).map_err(
            |e| match e.kind() {
                ErrorKind::InvalidSignature => Rejection::BadSignature,
                ErrorKind::ExpiredSignature => Rejection::Expired,
                ErrorKind::ImmatureSignature => Rejection::NotYetValid,
                ErrorKind::InvalidAlgorithm => Rejection::AlgorithmNotAllowed("RS256?".into()),
                _ => Rejection::Malformed(e.to_string()),
            },
        )?;
        if self.check_expiry {
            self.check_age(&data.claims)?;
        }
        Ok(Verified {
            kid,
            claims: data.claims,
        })
    }

    /// A present `iat` older than the maximum token age is stale.
    fn check_age(&self, claims: &serde_json::Value) -> Result<(), Rejection> {
        let (Some(max_age), Some(iat)) = (
            self.max_token_age,
            claims.get("iat").and_then(serde_json::Value::as_f64),
        ) else {
            return Ok(());
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let age = now - iat;
        if age > max_age.as_secs_f64() + self.leeway_seconds as f64 {
            return Err(Rejection::Stale {
                age_seconds: age as i64,
                max_seconds: max_age.as_secs(),
            });
        }
        Ok(())
    }

    /// The key for `kid`, refetching the JWKS once if it is unknown and neither a good nor a
    /// failed fetch happened within `min_refresh`: a burst of unknown `kid`s, with the JWKS
    /// host up or down, causes at most one fetch per `min_refresh`.
    async fn key_for(&self, kid: &str) -> Result<DecodingKey, VerifyError> {
        if let Some(cached) = self.shared.cache.read().await.keys.get(kid) {
            return Ok(cached.key.clone());
        }
        let _guard = self.shared.refresh.lock().await;
        {
            // Another request may have fetched while this one waited for the lock.
            let cache = self.shared.cache.read().await;
            if let Some(cached) = cache.keys.get(kid) {
                return Ok(cached.key.clone());
            }
            if let Some((at, why)) = &cache.failed
                && at.elapsed() < self.min_refresh
            {
                return Err(VerifyError::KeysUnavailable(why.clone()));
            }
            if cache
                .fetched_at
                .is_some_and(|at| at.elapsed() < self.min_refresh)
            {
                return Err(Rejection::UnknownKid(kid.to_string()).into());
            }
        }
        self.fetch_keys()
            .await
            .map_err(VerifyError::KeysUnavailable)?;
        self.shared
            .cache
            .read()
            .await
            .keys
            .get(kid)
            .map(|cached| cached.key.clone())
            .ok_or_else(|| Rejection::UnknownKid(kid.to_string()).into())
    }

    /// One fetch (the caller holds the refresh lock). Keys served now are (re)stamped; keys
    /// missing for longer than the grace are dropped; a failed fetch, or a JWKS with no usable
    /// key, leaves the cache as it was and is remembered for `min_refresh`.
    async fn fetch_keys(&self) -> Result<(), String> {
        let fetched = self.source.fetch().await.and_then(|set| {
            let keys = rsa_keys(&set);
            if keys.is_empty() {
                Err("the JWKS holds no usable RSA key".to_owned())
            } else {
                Ok(keys)
            }
        });
        let now = Instant::now();
        let mut cache = self.shared.cache.write().await;
        match fetched {
            Ok(keys) => {
                let served = keys.len();
                for (kid, key) in keys {
                    cache.keys.insert(
                        kid,
                        CachedKey {
                            key,
                            last_served: now,
                        },
                    );
                }
                let grace = self.key_grace;
                cache
                    .keys
                    .retain(|_, cached| now.duration_since(cached.last_served) <= grace);
                cache.fetched_at = Some(now);
                cache.failed = None;
                tracing::info!(
                    served,
                    cached = cache.keys.len(),
                    "fetched Canvas Live Events signing keys"
                );
                Ok(())
            }
            Err(why) => {
                tracing::warn!(error = %why, "JWKS fetch failed; cached keys kept");
                cache.failed = Some((now, why.clone()));
                Err(why)
            }
        }
    }
}

/// `text` cut to [`MAX_ECHOED_CHARS`] characters, for echoing a value the sender chose.
fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHOED_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Reads the JWS header without trusting it: only RS256 with a `kid` goes further.
fn check_header(token: &str) -> Result<String, Rejection> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed(
            "expected three dot-separated parts".into(),
        ));
    };
    if header.len() > MAX_HEADER_CHARS {
        return Err(Rejection::Malformed(format!(
            "header longer than {MAX_HEADER_CHARS} characters"
        )));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .map_err(|_| Rejection::Malformed("header is not base64url".into()))?;
    let header: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| Rejection::Malformed("header is not JSON".into()))?;
    let alg = header
        .get("alg")
        .and_then(|v| v.as_str())
        .ok_or_else(|| Rejection::Malformed("header has no alg".into()))?;
    if alg != "RS256" {
        return Err(Rejection::AlgorithmNotAllowed(clip(alg)));
    }
    header
        .get("kid")
        .and_then(|v| v.as_str())
        .map(clip)
        .ok_or(Rejection::MissingKid)
}

/// The RSA keys of a JWKS by `kid`. Other key types are ignored: Canvas signs with RS256 only,
/// and an `oct` key in the set must never become an HMAC secret.
fn rsa_keys(set: &JwkSet) -> HashMap<String, DecodingKey> {
    set.keys
        .iter()
        .filter(|jwk| matches!(jwk.algorithm, AlgorithmParameters::RSA(_)))
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((kid, key))
        })
        .collect()
}
