//! API tokens: rows of `api_tokens`, looked up by the SHA-256 of the presented token. What a
//! role may do is decided in `crate::tokens`, not here.

use serde::Serialize;

use super::query::{sql, sql_built};
use super::{Store, StoreError, StoreResult};

/// A token as stored: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    pub name: String,
    pub role: String,
    /// The subscriptions a consumer token may read.
    pub subscriptions: Vec<String>,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

/// A token to store: its hash, never the token.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub name: String,
    pub role: String,
    pub token_sha256: String,
    pub subscriptions: Vec<String>,
    pub created_at_ms: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct ApiTokenRecord {
    name: String,
    role: String,
    subscriptions: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl TryFrom<ApiTokenRecord> for ApiToken {
    type Error = StoreError;

    fn try_from(r: ApiTokenRecord) -> StoreResult<Self> {
        Ok(ApiToken {
            name: r.name,
            role: r.role,
            subscriptions: serde_json::from_str(&r.subscriptions)
                .map_err(|e| StoreError::Other(format!("token subscriptions: {e}")))?,
            created_at_ms: r.created_at,
            revoked_at_ms: r.revoked_at,
        })
    }
}

impl Store {
    /// Stores a token; `None` when a live token already has the name.
    pub async fn create_token(&self, new: &NewApiToken) -> StoreResult<Option<ApiToken>> {
        let subscriptions = serde_json::to_string(&new.subscriptions)
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let inserted = sql(
            "INSERT INTO api_tokens (name, role, token_sha256, subscriptions, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&new.name)
        .bind(&new.role)
        .bind(&new.token_sha256)
        .bind(subscriptions)
        .bind(new.created_at_ms)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => self.token_named(&new.name).await,
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// The live token with this hash, if any.
    pub async fn live_token(&self, token_sha256: &str) -> StoreResult<Option<ApiToken>> {
        self.live_token_by("token_sha256", token_sha256).await
    }

    async fn token_named(&self, name: &str) -> StoreResult<Option<ApiToken>> {
        self.live_token_by("name", name).await
    }

    /// The live token whose `column` (`name` or `token_sha256`) is `value`.
    async fn live_token_by(
        &self,
        column: &'static str,
        value: &str,
    ) -> StoreResult<Option<ApiToken>> {
        let row: Option<ApiTokenRecord> = sql_built(format!(
            "SELECT name, role, subscriptions, created_at, revoked_at FROM api_tokens \
             WHERE {column} = $1 AND revoked_at IS NULL"
        ))
        .bind(value)
        .fetch_optional(&self.pool)
        .await?;
        row.map(ApiToken::try_from).transpose()
    }

    /// Every token, live and revoked, by name then age.
    pub async fn tokens(&self) -> StoreResult<Vec<ApiToken>> {
        let rows: Vec<ApiTokenRecord> = sql(
            "SELECT name, role, subscriptions, created_at, revoked_at FROM api_tokens \
             ORDER BY name, created_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(ApiToken::try_from).collect()
    }

    /// Revokes the live token of this name; false when there is none.
    pub async fn revoke_token(&self, name: &str, now_ms: i64) -> StoreResult<bool> {
        let done =
            sql("UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
                .bind(now_ms)
                .bind(name)
                .execute(&self.pool)
                .await?;
        Ok(done > 0)
    }

    /// How many subscriptions a caller created (for the per-token cap).
    pub async fn subscriptions_created_by(&self, caller: &str) -> StoreResult<i64> {
        let (count,): (i64,) = sql("SELECT COUNT(*) FROM subscriptions WHERE created_by = $1")
            .bind(caller)
            .fetch_one(&self.pool)
            .await?;
        Ok(count)
    }
}
