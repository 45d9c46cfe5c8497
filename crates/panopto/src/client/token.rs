//! The access-token lifecycle of a Panopto service user (panopto.md a1): the OAuth2 password
//! grant logs on, the refresh grant (with `offline_access`) renews ahead of expiry, and **one
//! refresh at a time** is shared by every waiting caller: callers that saw an old token
//! generation wait on the refresh lock and then reuse the new token.
//!
//! A refused refresh token (revoked, or the API client reset by an administrator) is not the
//! end: a service user can always log on again, so the source falls back to the password grant,
//! counts a revocation and warns. Only a refused *password* makes the source `revoked`: every
//! call then fails fast with [`ClientError::Unauthorized`], and the password grant is tried
//! again at most once per [`RELOGON_AFTER_MS`] (someone may have fixed the password).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::client::clock::Clock;
use crate::client::error::ClientError;
use crate::client::secret::Secret;
use crate::rest::TokenResponse;

/// After a refused password, how long (clock ms) calls fail fast before the next log-on.
pub const RELOGON_AFTER_MS: i64 = 60_000;

/// The API client and the service user it acts as.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// `https://panopto.example.edu/Panopto/oauth2/connect/token`
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub username: String,
    pub password: Secret,
}

/// A token to send, with the generation it belongs to (to report a 401 against).
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub secret: Secret,
    pub generation: u64,
}

/// Token health for metrics and `/api/v1/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHealth {
    /// `None` for a fixed token or before the first grant.
    pub seconds_to_expiry: Option<i64>,
    /// Grants made: password log-ons and refreshes.
    pub logons: u64,
    pub refreshes: u64,
    pub failures: u64,
    /// Refresh tokens Panopto refused (revoked or reset): each was followed by a log-on.
    pub revocations: u64,
    /// The password itself is refused.
    pub revoked: bool,
}

#[derive(Clone)]
struct Current {
    access: Secret,
    refresh: Option<Secret>,
    /// `None`: never expires (a fixed token).
    expires_at_ms: Option<i64>,
    generation: u64,
}

struct Inner {
    creds: Option<Credentials>,
    http: reqwest::Client,
    lock: tokio::sync::Mutex<()>,
    current: RwLock<Option<Current>>,
    clock: Arc<dyn Clock>,
    refresh_ahead_ms: i64,
    logons: AtomicU64,
    refreshes: AtomicU64,
    failures: AtomicU64,
    revocations: AtomicU64,
    revoked: AtomicBool,
    revoked_at_ms: AtomicI64,
}

/// Shared handle; clones share the token and the refresh lock.
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("oauth", &self.inner.creds.is_some())
            .field("health", &self.health())
            .finish_non_exhaustive()
    }
}

/// How a grant failed.
enum GrantError {
    /// 400/401 from the token endpoint (`invalid_grant`, `invalid_client`): the code.
    Refused(String),
    Other(ClientError),
}

impl TokenSource {
    /// A token that never expires (a simulator command-line token).
    pub fn fixed(token: impl Into<Secret>, http: reqwest::Client, clock: Arc<dyn Clock>) -> Self {
        TokenSource::build(
            None,
            http,
            clock,
            Some(Current {
                access: token.into(),
                refresh: None,
                expires_at_ms: None,
                generation: 1,
            }),
        )
    }

    /// The password grant for `creds` on first use, then refreshes.
    pub fn password(creds: Credentials, http: reqwest::Client, clock: Arc<dyn Clock>) -> Self {
        TokenSource::build(Some(creds), http, clock, None)
    }

    fn build(
        creds: Option<Credentials>,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
        current: Option<Current>,
    ) -> Self {
        TokenSource {
            inner: Arc::new(Inner {
                creds,
                http,
                lock: tokio::sync::Mutex::new(()),
                current: RwLock::new(current),
                clock,
                refresh_ahead_ms: 300_000,
                logons: AtomicU64::new(0),
                refreshes: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                revocations: AtomicU64::new(0),
                revoked: AtomicBool::new(false),
                revoked_at_ms: AtomicI64::new(0),
            }),
        }
    }

    /// Renew when less than this is left (default 5 minutes of the clock). Only before the
    /// source is shared.
    pub fn with_refresh_ahead_ms(mut self, ahead_ms: i64) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.refresh_ahead_ms = ahead_ms;
        }
        self
    }

    fn current(&self) -> Option<Current> {
        self.inner.current.read().ok().and_then(|c| c.clone())
    }

    fn fresh(&self, c: &Current) -> bool {
        c.expires_at_ms
            .is_none_or(|exp| exp - self.inner.clock.now_ms() > self.inner.refresh_ahead_ms)
    }

    fn token(c: &Current) -> AccessToken {
        AccessToken {
            secret: c.access.clone(),
            generation: c.generation,
        }
    }

    fn fail_fast(&self) -> Option<ClientError> {
        let since = self.inner.revoked_at_ms.load(Ordering::Acquire);
        (self.inner.revoked.load(Ordering::Acquire)
            && self.inner.clock.now_ms() - since < RELOGON_AFTER_MS)
            .then(|| {
                ClientError::Unauthorized(
                    "Panopto refused the service user's password; fix the credentials".into(),
                )
            })
    }

    /// A token to send now, renewing first if it is about to expire.
    pub async fn access(&self) -> Result<AccessToken, ClientError> {
        if let Some(e) = self.fail_fast() {
            return Err(e);
        }
        match self.current() {
            Some(c) if self.fresh(&c) || self.inner.creds.is_none() => Ok(Self::token(&c)),
            other => self.renew(other.map(|c| c.generation), false).await,
        }
    }

    /// Panopto answered 401 to a request sent with `generation`: renew (once, however many
    /// callers report it) and return the token to retry with.
    pub async fn on_unauthorized(&self, generation: u64) -> Result<AccessToken, ClientError> {
        if self.inner.creds.is_none() {
            return Err(ClientError::Unauthorized(
                "Panopto refused the fixed access token (expired or revoked)".into(),
            ));
        }
        self.renew(Some(generation), true).await
    }

    async fn renew(&self, seen: Option<u64>, forced: bool) -> Result<AccessToken, ClientError> {
        let Some(creds) = &self.inner.creds else {
            return Err(ClientError::Unauthorized("no Panopto credentials".into()));
        };
        let _one_at_a_time = self.inner.lock.lock().await;
        if let Some(e) = self.fail_fast() {
            return Err(e);
        }
        let current = self.current();
        // Someone else renewed while we waited: use theirs.
        if let Some(c) = &current
            && Some(c.generation) != seen
            && (forced || self.fresh(c))
        {
            return Ok(Self::token(c));
        }
        if let Some(refresh) = current.and_then(|c| c.refresh) {
            match self
                .grant(
                    creds,
                    &[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh.expose()),
                    ],
                )
                .await
            {
                Ok(t) => {
                    self.inner.refreshes.fetch_add(1, Ordering::Relaxed);
                    return Ok(self.store(t));
                }
                Err(GrantError::Refused(code)) => {
                    self.inner.revocations.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%code, "Panopto refused the refresh token (revoked or reset); logging on again");
                }
                Err(GrantError::Other(e)) => return Err(self.failed(e)),
            }
        }
        let form = [
            ("grant_type", "password"),
            ("username", creds.username.as_str()),
            ("password", creds.password.expose()),
            ("scope", "api offline_access"),
        ];
        match self.grant(creds, &form).await {
            Ok(t) => {
                self.inner.logons.fetch_add(1, Ordering::Relaxed);
                self.inner.revoked.store(false, Ordering::Release);
                Ok(self.store(t))
            }
            Err(GrantError::Refused(code)) => {
                self.inner.revoked.store(true, Ordering::Release);
                self.inner
                    .revoked_at_ms
                    .store(self.inner.clock.now_ms(), Ordering::Release);
                Err(self.failed(ClientError::Unauthorized(format!(
                    "Panopto refused the service user's log-on ({code}); fix the credentials"
                ))))
            }
            Err(GrantError::Other(e)) => Err(self.failed(e)),
        }
    }

    fn failed(&self, e: ClientError) -> ClientError {
        self.inner.failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, "Panopto token grant failed");
        e
    }

    fn store(&self, t: TokenResponse) -> AccessToken {
        let generation = self.current().map_or(0, |c| c.generation) + 1;
        let c = Current {
            access: Secret::new(t.access_token),
            refresh: t.refresh_token.map(Secret::new),
            expires_at_ms: Some(self.inner.clock.now_ms() + t.expires_in as i64 * 1000),
            generation,
        };
        if let Ok(mut cur) = self.inner.current.write() {
            *cur = Some(c.clone());
        }
        tracing::debug!(generation, "Panopto access token granted");
        Self::token(&c)
    }

    async fn grant(
        &self,
        creds: &Credentials,
        form: &[(&str, &str)],
    ) -> Result<TokenResponse, GrantError> {
        let what = "POST /Panopto/oauth2/connect/token".to_owned();
        let unavailable = |reason: String| {
            GrantError::Other(ClientError::Unavailable {
                what: what.clone(),
                attempts: 1,
                reason,
            })
        };
        let mut fields: Vec<(&str, &str)> = vec![
            ("client_id", creds.client_id.as_str()),
            ("client_secret", creds.client_secret.expose()),
        ];
        fields.extend_from_slice(form);
        let resp = self
            .inner
            .http
            .post(&creds.token_url)
            .form(&fields)
            .send()
            .await
            .map_err(|e| unavailable(e.without_url().to_string()))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| unavailable(e.without_url().to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| {
                GrantError::Other(ClientError::Decode {
                    what: what.clone(),
                    reason: e.to_string(),
                })
            });
        }
        if status.as_u16() == 400 || status.as_u16() == 401 {
            // The OAuth error code (`invalid_grant`) holds no secret.
            let code = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_else(|| status.to_string());
            return Err(GrantError::Refused(code));
        }
        Err(unavailable(format!("token endpoint answered {status}")))
    }

    pub fn health(&self) -> TokenHealth {
        let now = self.inner.clock.now_ms();
        TokenHealth {
            seconds_to_expiry: self
                .current()
                .and_then(|c| c.expires_at_ms)
                .map(|e| (e - now).div_euclid(1000)),
            logons: self.inner.logons.load(Ordering::Relaxed),
            refreshes: self.inner.refreshes.load(Ordering::Relaxed),
            failures: self.inner.failures.load(Ordering::Relaxed),
            revocations: self.inner.revocations.load(Ordering::Relaxed),
            revoked: self.inner.revoked.load(Ordering::Acquire),
        }
    }
}
