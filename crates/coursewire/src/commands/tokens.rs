//! `coursewire tokens add|list|revoke`: the same management as `/api/v1/tokens` (both go
//! through `crate::tokens`), against the configured database.

use std::process::ExitCode;

use anyhow::Context;

use super::print;
use crate::cli::TokensAction;
use crate::config::Config;
use crate::tokens::{self, AddToken, Role};

pub async fn run(config: &Config, action: TokensAction) -> anyhow::Result<ExitCode> {
    let store = crate::store::open(config.database.url.expose())
        .await
        .with_context(|| format!("cannot open the store at {}", config.database.url))?;
    store.migrate().await.context("migrations failed")?;
    let now = chrono::Utc::now().timestamp_millis();
    let out = match action {
        TokensAction::Add {
            name,
            role,
            subscriptions,
        } => {
            let request = AddToken {
                name,
                role: Role::parse(&role)?,
                subscriptions,
            };
            serde_json::to_string_pretty(&tokens::add(&store, request, now).await?)?
        }
        TokensAction::List => serde_json::to_string_pretty(&store.tokens().await?)?,
        TokensAction::Revoke { name } => {
            tokens::revoke(&store, &name, now).await?;
            format!("{name}: revoked")
        }
    };
    store.close().await;
    print(&out);
    Ok(ExitCode::SUCCESS)
}
