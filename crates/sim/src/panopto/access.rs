//! Panopto credentials and rate limits. OAuth2 at `/Panopto/oauth2/connect/token` with the
//! password grant (the service user) and the refresh grant; tokens live one simulated hour;
//! command-line tokens never expire. Each API client is limited to 5 requests a second, 100
//! a minute and 5,000 an hour (sliding windows, in real or simulated time), then gets 429 with
//! `Retry-After`: the seconds until the window that refused it has room again.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;

use crate::config::{PanoptoLimits, SimConfig};

#[derive(Debug)]
struct Token {
    client: String,
    expires_ms: i64,
}

#[derive(Debug)]
struct State {
    static_tokens: BTreeSet<String>,
    tokens: BTreeMap<String, Token>,
    refresh: BTreeMap<String, String>,
    /// Request times per client, in ms of the limits' clock.
    windows: BTreeMap<String, VecDeque<i64>>,
    rng: ChaCha20Rng,
}

#[derive(Debug)]
pub struct PanoptoAccess {
    state: Mutex<State>,
    limits: PanoptoLimits,
    ttl_ms: i64,
}

/// How long until a request at `now` fits every window, or `None` if it fits now.
fn wait_for(window: &VecDeque<i64>, now: i64, limits: &PanoptoLimits) -> Option<i64> {
    [
        (1_000, limits.per_second),
        (60_000, limits.per_minute),
        (3_600_000, limits.per_hour),
    ]
    .into_iter()
    .filter_map(|(span, limit)| {
        let limit = limit as usize;
        let recent: Vec<i64> = window
            .iter()
            .rev()
            .take_while(|t| now - **t < span)
            .copied()
            .collect();
        // Full: the limit-th most recent request must leave the window first.
        (limit == 0 || recent.len() >= limit).then(|| {
            recent
                .get(limit.saturating_sub(1))
                .map_or(span, |t| t + span - now)
        })
    })
    .max()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    Issued {
        access: String,
        refresh: Option<String>,
        expires_in: u64,
    },
    InvalidClient,
    Refused(&'static str),
    Unsupported,
}

impl PanoptoAccess {
    pub fn new(config: &SimConfig) -> PanoptoAccess {
        PanoptoAccess {
            state: Mutex::new(State {
                static_tokens: config.panopto_tokens.iter().cloned().collect(),
                tokens: BTreeMap::new(),
                refresh: BTreeMap::new(),
                windows: BTreeMap::new(),
                rng: crate::ids::rng(config.seed, "panopto-oauth"),
            }),
            limits: config.panopto_limits.clone(),
            ttl_ms: 3_600_000,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The API client behind a bearer token, if the token is valid at `now`.
    pub fn client_of(&self, token: &str, now: i64) -> Option<String> {
        let st = self.lock();
        if st.static_tokens.contains(token) {
            return Some(format!("static:{}", crate::ids::token_label(token)));
        }
        st.tokens
            .get(token)
            .filter(|t| t.expires_ms > now)
            .map(|t| t.client.clone())
    }

    /// Counts a request made at `now_ms` (the limits' clock) against the client's windows;
    /// refused: how long until it would be taken.
    pub fn admit(&self, client: &str, now_ms: i64) -> Result<(), Duration> {
        if !self.limits.enabled {
            return Ok(());
        }
        let mut st = self.lock();
        let w = st.windows.entry(client.to_owned()).or_default();
        while w.front().is_some_and(|t| now_ms - *t >= 3_600_000) {
            w.pop_front();
        }
        if let Some(wait_ms) = wait_for(w, now_ms, &self.limits) {
            return Err(Duration::from_millis(wait_ms.max(1) as u64));
        }
        w.push_back(now_ms);
        Ok(())
    }

    /// Revoke every OAuth2 token issued so far, access and refresh alike (an administrator
    /// resetting the API client): a client must log on with the password grant again.
    /// Returns how many access tokens were revoked. Command-line tokens are not affected.
    pub fn revoke_all(&self) -> usize {
        let mut st = self.lock();
        st.refresh.clear();
        std::mem::take(&mut st.tokens).len()
    }

    fn mint(&self, st: &mut State, client: &str, now: i64, with_refresh: bool) -> Grant {
        let access = crate::ids::hex_token(&mut st.rng, 32);
        st.tokens.insert(
            access.clone(),
            Token {
                client: client.to_owned(),
                expires_ms: now + self.ttl_ms,
            },
        );
        let refresh = with_refresh.then(|| {
            let r = crate::ids::hex_token(&mut st.rng, 16);
            st.refresh.insert(r.clone(), client.to_owned());
            r
        });
        Grant::Issued {
            access,
            refresh,
            expires_in: (self.ttl_ms / 1000) as u64,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn grant(
        &self,
        config: &SimConfig,
        grant_type: Option<&str>,
        client_id: Option<&str>,
        client_secret: Option<&str>,
        username: Option<&str>,
        password: Option<&str>,
        refresh_token: Option<&str>,
        scope: Option<&str>,
        now: i64,
    ) -> Grant {
        if client_id != Some(config.panopto_client_id.as_str())
            || client_secret != Some(config.panopto_client_secret.as_str())
        {
            return Grant::InvalidClient;
        }
        let client = config.panopto_client_id.clone();
        let mut st = self.lock();
        match grant_type {
            Some("password") => {
                if username != Some(config.panopto_username.as_str())
                    || password != Some(config.panopto_password.as_str())
                {
                    return Grant::Refused("invalid username or password");
                }
                let offline =
                    scope.is_some_and(|s| s.split_whitespace().any(|x| x == "offline_access"));
                self.mint(&mut st, &client, now, offline)
            }
            Some("refresh_token") => {
                let Some(owner) = refresh_token.and_then(|r| st.refresh.get(r)).cloned() else {
                    return Grant::Refused("unknown refresh token");
                };
                self.mint(&mut st, &owner, now, true)
            }
            _ => Grant::Unsupported,
        }
    }

    /// SOAP `AuthenticationInfo`: the service user's password; an identity-provider user's
    /// `AuthCode` (made with the provider's application key); or (a simulator convenience)
    /// any valid REST access token in `Password`.
    pub fn soap_caller(
        &self,
        config: &SimConfig,
        auth: &panopto::soap::AuthenticationInfo,
        now: i64,
    ) -> Option<crate::panopto::soap::Caller> {
        let key = auth.user_key.as_deref();
        if key == Some(config.panopto_username.as_str())
            && auth.password.as_deref() == Some(config.panopto_password.as_str())
        {
            return Some(crate::panopto::soap::Caller {
                client: format!("soap:{}", config.panopto_username),
                user_key: config.panopto_username.clone(),
            });
        }
        if let (Some(key), Some(code)) = (key, auth.auth_code.as_deref()) {
            let want = panopto::soap::auth_code(
                key,
                &config.panopto_hostname,
                &config.panopto_application_key,
            );
            let provider = key.split_once('\\').map(|(p, _)| p);
            if provider == Some(super::people::PROVIDER) && code.eq_ignore_ascii_case(&want) {
                return Some(crate::panopto::soap::Caller {
                    client: format!("soap:{}", super::people::PROVIDER),
                    user_key: key.to_owned(),
                });
            }
            return None;
        }
        let client = auth
            .password
            .as_deref()
            .and_then(|p| self.client_of(p, now))?;
        Some(crate::panopto::soap::Caller {
            user_key: key.unwrap_or(&config.panopto_username).to_owned(),
            client,
        })
    }
}
