//! Scoped API tokens: who may call `/api/v1` and what each role may do there. Shared by
//! `coursewire tokens …` and `/api/v1/tokens`.
//!
//! A token is 256 random bits shown once at creation; only its SHA-256 is stored (a fast hash
//! is enough for a random secret of that length: there is nothing to guess from the hash).
//! Roles:
//! * `admin`: everything, tokens included. `api.token` from the config is a bootstrap admin.
//! * `operator`: subscriptions (create, change, remove), every event; replay and incidents as
//!   they get endpoints.
//! * `consumer`: only the pull endpoints and status of the subscriptions it was given; another
//!   subscription's events or settings, the unfiltered event feed, or any change → 403.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{ApiToken, NewApiToken, Store, StoreError};

/// What every token starts with, so a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "cwt_";

/// The name the bootstrap `api.token` acts under.
pub const BOOTSTRAP_NAME: &str = "api.token";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Operator,
    Consumer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Consumer => "consumer",
        }
    }

    pub fn parse(text: &str) -> Result<Self, TokenError> {
        match text {
            "admin" => Ok(Role::Admin),
            "operator" => Ok(Role::Operator),
            "consumer" => Ok(Role::Consumer),
            other => Err(TokenError::Invalid(format!(
                "role must be admin, operator or consumer, not {other:?}"
            ))),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is calling, and what their token lets them do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The token's name (what logs and `created_by` show; never the token).
    pub name: String,
    pub role: Role,
    /// The subscriptions a consumer may read.
    pub subscriptions: Vec<String>,
}

impl Grant {
    pub fn bootstrap() -> Self {
        Grant {
            name: BOOTSTRAP_NAME.to_owned(),
            role: Role::Admin,
            subscriptions: Vec::new(),
        }
    }

    /// Create, change, pause, retry or remove subscriptions.
    pub fn may_manage_subscriptions(&self) -> bool {
        self.role != Role::Consumer
    }

    /// Read the whole outbox (`/api/v1/events`, unfiltered by any subscription's types).
    pub fn may_read_every_event(&self) -> bool {
        self.role != Role::Consumer
    }

    /// Read this subscription's events and status.
    pub fn may_read_subscription(&self, name: &str) -> bool {
        self.role != Role::Consumer || self.subscriptions.iter().any(|s| s == name)
    }

    /// Read the instance's status and integration health.
    pub fn may_see_operations(&self) -> bool {
        self.role != Role::Consumer
    }

    /// Create, list and revoke tokens.
    /// Read recordings' workflows, and replay, park or unpark them.
    pub fn may_operate_recordings(&self) -> bool {
        self.role != Role::Consumer
    }

    pub fn may_manage_tokens(&self) -> bool {
        self.role == Role::Admin
    }
}

impl TryFrom<ApiToken> for Grant {
    type Error = TokenError;

    fn try_from(token: ApiToken) -> Result<Self, TokenError> {
        Ok(Grant {
            role: Role::parse(&token.role)?,
            name: token.name,
            subscriptions: token.subscriptions,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Invalid(String),
    #[error("a live token named {0:?} already exists (revoke it first)")]
    Exists(String),
    #[error("no live token named {0:?}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A token to create, as the CLI and the API take it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddToken {
    pub name: String,
    pub role: Role,
    /// For a consumer: the subscriptions it may read (each must exist).
    #[serde(default)]
    pub subscriptions: Vec<String>,
}

/// A created token: the stored row, and the token itself (shown this once).
#[derive(Debug, Clone, Serialize)]
pub struct AddedToken {
    #[serde(flatten)]
    pub stored: ApiToken,
    pub token: String,
}

/// The stored form of a presented token.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn generate() -> String {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name != BOOTSTRAP_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Creates a token; the returned token is the only time it is seen.
pub async fn add(store: &Store, request: AddToken, now_ms: i64) -> Result<AddedToken, TokenError> {
    if !valid_name(&request.name) {
        return Err(TokenError::Invalid(format!(
            "name must be 1–100 characters of letters, digits, '-', '_' or '.' (and not \
             {BOOTSTRAP_NAME:?})"
        )));
    }
    match (request.role, request.subscriptions.is_empty()) {
        (Role::Consumer, true) => {
            return Err(TokenError::Invalid(
                "a consumer token needs at least one subscription it may read".into(),
            ));
        }
        (Role::Admin | Role::Operator, false) => {
            return Err(TokenError::Invalid(format!(
                "subscriptions scope a consumer token; an {} may read every subscription",
                request.role
            )));
        }
        _ => {}
    }
    for name in &request.subscriptions {
        if store.subscription(name).await?.is_none() {
            return Err(TokenError::Invalid(format!(
                "no subscription named {name:?}"
            )));
        }
    }
    let token = generate();
    let new = NewApiToken {
        name: request.name.clone(),
        role: request.role.as_str().to_owned(),
        token_sha256: hash(&token),
        subscriptions: request.subscriptions,
        created_at_ms: now_ms,
    };
    match store.create_token(&new).await? {
        Some(stored) => Ok(AddedToken { stored, token }),
        None => Err(TokenError::Exists(request.name)),
    }
}

/// Revokes the live token of this name: it is refused (401) from the next request on.
pub async fn revoke(store: &Store, name: &str, now_ms: i64) -> Result<(), TokenError> {
    if store.revoke_token(name, now_ms).await? {
        Ok(())
    } else {
        Err(TokenError::NotFound(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer(of: &[&str]) -> Grant {
        Grant {
            name: "lms".into(),
            role: Role::Consumer,
            subscriptions: of.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_consumer_reads_only_its_subscriptions_and_changes_nothing() {
        let grant = consumer(&["lms-sync"]);
        assert!(grant.may_read_subscription("lms-sync"));
        assert!(!grant.may_read_subscription("library"));
        assert!(!grant.may_read_every_event());
        assert!(!grant.may_manage_subscriptions());
        assert!(!grant.may_manage_tokens());
    }

    #[test]
    fn an_operator_runs_subscriptions_but_not_tokens() {
        let grant = Grant {
            role: Role::Operator,
            ..consumer(&[])
        };
        assert!(grant.may_read_subscription("library"));
        assert!(grant.may_manage_subscriptions());
        assert!(!grant.may_manage_tokens());
        assert!(Grant::bootstrap().may_manage_tokens());
    }

    #[test]
    fn tokens_are_long_random_and_prefixed() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(
            a.starts_with(TOKEN_PREFIX) && a.len() >= TOKEN_PREFIX.len() + 43,
            "{a}"
        );
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
        assert!(!hash(&a).contains(&a));
    }

    #[test]
    fn roles_parse_strictly() {
        assert_eq!(Role::parse("consumer").unwrap(), Role::Consumer);
        assert!(Role::parse("Admin").is_err());
        assert!(Role::parse("root").is_err());
    }
}
