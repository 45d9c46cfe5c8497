//! The access-token lifecycle (canvas.md B1, B4): a static token, or OAuth2 refresh-token
//! grants ahead of expiry. It owns the one rule that matters under concurrency: **one refresh
//! at a time**, shared by every waiting caller (numbas-lti-provider #345: repeated token
//! requests were mistaken for throttling). Callers that saw an old token generation wait on the
//! refresh lock and then reuse the new token instead of refreshing again. It must never log or
//! `Debug`-print a token.
//!
//! Canvas does not rotate refresh tokens, but if a response ever carries one it replaces the
//! stored one. A refused refresh grant (400 `invalid_grant`, 401) means the grant was revoked:
//! the source turns *revoked* and every call fails fast with [`ClientError::Unauthorized`]
//! until it is re-authorised.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::client::error::ClientError;
use crate::client::secret::Secret;

/// Milliseconds since the Unix epoch; injectable so tests can follow a simulated clock.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    })
}

/// Developer-key credentials and the refresh token of one authorised user.
#[derive(Debug, Clone)]
pub struct OAuthCredentials {
    /// `https://canvas.example.edu/login/oauth2/token`
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Secret,
}

/// A token to send, with the generation it belongs to (to report a 401 against).
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub secret: Secret,
    pub generation: u64,
}

/// Token health for `/health` and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenHealth {
    /// `None` for a static token or before the first grant.
    pub seconds_to_expiry: Option<i64>,
    pub refreshes: u64,
    pub refresh_failures: u64,
    pub revoked: bool,
}

#[derive(Clone)]
struct Current {
    access: Secret,
    /// Milliseconds since the epoch; `None` = never expires (static).
    expires_at_ms: Option<i64>,
    generation: u64,
}

struct OAuthState {
    creds: OAuthCredentials,
    http: reqwest::Client,
}

struct Inner {
    oauth: Option<tokio::sync::Mutex<OAuthState>>,
    current: RwLock<Option<Current>>,
    clock: Clock,
    refresh_ahead: Duration,
    refreshes: AtomicU64,
    failures: AtomicU64,
    revoked: AtomicBool,
}

/// Shared handle; clones share the token and the refresh lock.
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("oauth", &self.inner.oauth.is_some())
            .field("health", &self.health())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Grant {
    access_token: String,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

impl TokenSource {
    /// A token that never expires (admin-generated tokens, the simulator's script token).
    pub fn fixed(token: impl Into<Secret>) -> TokenSource {
        TokenSource::build(
            None,
            Some(Current {
                access: token.into(),
                expires_at_ms: None,
                generation: 1,
            }),
        )
    }

    /// OAuth2: the first call performs a refresh grant unless `initial` (an access token and
    /// its `expires_in` seconds) is given.
    pub fn oauth(
        creds: OAuthCredentials,
        http: reqwest::Client,
        initial: Option<(Secret, i64)>,
    ) -> TokenSource {
        let clock = system_clock();
        let now = clock();
        let current = initial.map(|(access, expires_in)| Current {
            access,
            expires_at_ms: Some(now + expires_in * 1000),
            generation: 1,
        });
        let mut t = TokenSource::build(
            Some(tokio::sync::Mutex::new(OAuthState { creds, http })),
            current,
        );
        if let Some(inner) = Arc::get_mut(&mut t.inner) {
            inner.clock = clock;
        }
        t
    }

    fn build(oauth: Option<tokio::sync::Mutex<OAuthState>>, current: Option<Current>) -> Self {
        TokenSource {
            inner: Arc::new(Inner {
                oauth,
                current: RwLock::new(current),
                clock: system_clock(),
                refresh_ahead: Duration::from_secs(300),
                refreshes: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                revoked: AtomicBool::new(false),
            }),
        }
    }

    /// Use another clock (tests: the simulator's). Only before the source is shared; an
    /// initial token's expiry is re-based on the new clock.
    pub fn with_clock(mut self, clock: Clock) -> TokenSource {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            let old_now = (inner.clock)();
            let new_now = clock();
            if let Ok(mut cur) = inner.current.write()
                && let Some(c) = cur.as_mut()
            {
                c.expires_at_ms = c.expires_at_ms.map(|e| e - old_now + new_now);
            }
            inner.clock = clock;
        }
        self
    }

    /// Refresh when less than this is left (default 5 minutes).
    pub fn with_refresh_ahead(mut self, ahead: Duration) -> TokenSource {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.refresh_ahead = ahead;
        }
        self
    }

    fn current(&self) -> Option<Current> {
        self.inner.current.read().ok().and_then(|c| c.clone())
    }

    fn fresh(&self, c: &Current) -> bool {
        match c.expires_at_ms {
            None => true,
            Some(exp) => exp - (self.inner.clock)() > self.inner.refresh_ahead.as_millis() as i64,
        }
    }

    fn revoked_error() -> ClientError {
        ClientError::Unauthorized(
            "the OAuth grant was revoked or refused; re-authorise the integration".into(),
        )
    }

    /// A token to send now, refreshing first if it is about to expire.
    pub async fn access(&self) -> Result<AccessToken, ClientError> {
        if self.inner.revoked.load(Ordering::Acquire) {
            return Err(Self::revoked_error());
        }
        match self.current() {
            Some(c) if self.fresh(&c) => Ok(AccessToken {
                secret: c.access,
                generation: c.generation,
            }),
            Some(c) if self.inner.oauth.is_none() => Ok(AccessToken {
                secret: c.access,
                generation: c.generation,
            }),
            other => self.refresh(other.map(|c| c.generation), false).await,
        }
    }

    /// Canvas answered 401 to a request sent with `generation`: refresh (once, however many
    /// callers report it) and return the token to retry with.
    pub async fn on_unauthorized(&self, generation: u64) -> Result<AccessToken, ClientError> {
        if self.inner.oauth.is_none() {
            self.inner.revoked.store(true, Ordering::Release);
            return Err(ClientError::Unauthorized(
                "Canvas refused the static access token (expired or revoked)".into(),
            ));
        }
        self.refresh(Some(generation), true).await
    }

    async fn refresh(&self, seen: Option<u64>, forced: bool) -> Result<AccessToken, ClientError> {
        let Some(lock) = &self.inner.oauth else {
            return Err(ClientError::Unauthorized(
                "no access token configured".into(),
            ));
        };
        let oauth = lock.lock().await;
        if self.inner.revoked.load(Ordering::Acquire) {
            return Err(Self::revoked_error());
        }
        // Someone else refreshed while we waited: use theirs.
        if let Some(c) = self.current()
            && Some(c.generation) != seen
            && (forced || self.fresh(&c))
        {
            return Ok(AccessToken {
                secret: c.access,
                generation: c.generation,
            });
        }
        let result = self.grant(&oauth).await;
        match result {
            Ok(grant) => Ok(self.store(grant, oauth)),
            Err(e) => {
                self.inner.failures.fetch_add(1, Ordering::Relaxed);
                if matches!(e, ClientError::Unauthorized(_)) {
                    self.inner.revoked.store(true, Ordering::Release);
                }
                tracing::warn!(error = %e, "Canvas token refresh failed");
                Err(e)
            }
        }
    }

    fn store(
        &self,
        grant: Grant,
        mut oauth: tokio::sync::MutexGuard<'_, OAuthState>,
    ) -> AccessToken {
        if let Some(r) = grant.refresh_token {
            oauth.creds.refresh_token = Secret::new(r);
        }
        let generation = self.current().map_or(0, |c| c.generation) + 1;
        let now = (self.inner.clock)();
        let c = Current {
            access: Secret::new(grant.access_token),
            expires_at_ms: Some(now + grant.expires_in.unwrap_or(3_600) * 1000),
            generation,
        };
        if let Ok(mut cur) = self.inner.current.write() {
            *cur = Some(c.clone());
        }
        self.inner.refreshes.fetch_add(1, Ordering::Relaxed);
        tracing::info!(generation, "Canvas access token refreshed");
        AccessToken {
            secret: c.access,
            generation,
        }
    }

    async fn grant(&self, oauth: &OAuthState) -> Result<Grant, ClientError> {
        let c = &oauth.creds;
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.expose()),
            ("refresh_token", c.refresh_token.expose()),
        ];
        let unavailable = |reason: String| ClientError::Unavailable {
            method: "POST".into(),
            path: "/login/oauth2/token".into(),
            attempts: 1,
            reason,
        };
        let resp = oauth
            .http
            .post(&c.token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| unavailable(e.without_url().to_string()))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| unavailable(e.without_url().to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|source| ClientError::Decode {
                path: "/login/oauth2/token".into(),
                source,
            });
        }
        if status.as_u16() == 400 || status.as_u16() == 401 {
            // The OAuth error code (`invalid_grant`) is safe to show; it holds no secret.
            let code = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_else(|| status.to_string());
            return Err(ClientError::Unauthorized(format!(
                "refresh grant refused ({code}); re-authorise the integration"
            )));
        }
        Err(unavailable(format!("token endpoint answered {status}")))
    }

    pub fn health(&self) -> TokenHealth {
        let now = (self.inner.clock)();
        TokenHealth {
            seconds_to_expiry: self
                .current()
                .and_then(|c| c.expires_at_ms)
                // Nearest second: clock re-basing may be a few milliseconds off.
                .map(|e| (e - now + 500).div_euclid(1000)),
            refreshes: self.inner.refreshes.load(Ordering::Relaxed),
            refresh_failures: self.inner.failures.load(Ordering::Relaxed),
            revoked: self.inner.revoked.load(Ordering::Acquire),
        }
    }
}
