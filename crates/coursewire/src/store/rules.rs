//! Publishing rule versions (`publishing_rules`): appended, never changed. The store keeps
//! the bodies as the rules module hands them (JSON text) and does not read them.

use super::query::sql;
use super::{ProcessingTx, Store, StoreError, StoreResult};

/// One version of one scope's rule set.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct RuleVersion {
    pub scope: String,
    pub version: i64,
    pub body: String,
    pub author: String,
    pub reason: Option<String>,
    #[sqlx(rename = "created_at")]
    pub created_at_ms: i64,
}

impl Store {
    /// Appends the next version of `scope`; returns its number. Two writers racing for one
    /// scope: the loser's insert conflicts and is retried on the new latest.
    pub async fn append_rule_version(
        &self,
        scope: &str,
        body: &str,
        author: &str,
        reason: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<i64> {
        for _ in 0..5 {
            let mut tx = self.pool.begin_write().await?;
            let (latest,): (i64,) =
                sql("SELECT COALESCE(MAX(version), 0) FROM publishing_rules WHERE scope = $1")
                    .bind(scope)
                    .fetch_one(&mut tx)
                    .await?;
            let inserted = sql(
                "INSERT INTO publishing_rules (scope, version, body, author, reason, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(scope)
            .bind(latest + 1)
            .bind(body)
            .bind(author)
            .bind(reason)
            .bind(now_ms)
            .execute(&mut tx)
            .await;
            match inserted {
                Ok(_) => {
                    tx.commit().await?;
                    return Ok(latest + 1);
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Unavailable(format!(
            "rules of {scope} kept changing under this write"
        )))
    }

    /// The latest version of every scope, by scope.
    pub async fn current_rules(&self) -> StoreResult<Vec<RuleVersion>> {
        sql("SELECT r.* FROM publishing_rules r WHERE r.version = \
             (SELECT MAX(version) FROM publishing_rules WHERE scope = r.scope) ORDER BY r.scope")
        .fetch_all(&self.pool)
        .await
    }

    /// One version of a scope (`None`: the latest).
    pub async fn rule_version(
        &self,
        scope: &str,
        version: Option<i64>,
    ) -> StoreResult<Option<RuleVersion>> {
        match version {
            Some(v) => {
                sql("SELECT * FROM publishing_rules WHERE scope = $1 AND version = $2")
                    .bind(scope)
                    .bind(v)
                    .fetch_optional(&self.pool)
                    .await
            }
            None => {
                sql("SELECT * FROM publishing_rules WHERE scope = $1 ORDER BY version DESC LIMIT 1")
                    .bind(scope)
                    .fetch_optional(&self.pool)
                    .await
            }
        }
    }

    /// Every version of a scope, oldest first.
    pub async fn rule_history(&self, scope: &str) -> StoreResult<Vec<RuleVersion>> {
        sql("SELECT * FROM publishing_rules WHERE scope = $1 ORDER BY version")
            .bind(scope)
            .fetch_all(&self.pool)
            .await
    }
}

impl ProcessingTx {
    /// The latest version of each of `scopes` that has one, inside the processing
    /// transaction (the workflow renders a recording's plan from them).
    pub async fn current_rules_of(&mut self, scopes: &[String]) -> StoreResult<Vec<RuleVersion>> {
        let mut out = Vec::new();
        for scope in scopes {
            let row: Option<RuleVersion> = sql(
                "SELECT * FROM publishing_rules WHERE scope = $1 ORDER BY version DESC LIMIT 1",
            )
            .bind(scope)
            .fetch_optional(&mut self.tx)
            .await?;
            out.extend(row);
        }
        Ok(out)
    }
}
