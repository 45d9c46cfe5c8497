//! `coursewire subscriptions add|list|show|pause|resume|remove|retry`: the same management as
//! `/api/v1/subscriptions` (both go through `bus::delivery::admin`), against the configured
//! database, for an operator at a shell.

use std::process::ExitCode;

use anyhow::Context;

use super::print;
use crate::bus::delivery::admin::{self, AddRequest, AdminError};
use crate::cli::SubscriptionsAction;
use crate::config::Config;

/// Runs `coursewire subscriptions …` against the configured database and prints the result.
pub async fn run(config: &Config, action: SubscriptionsAction) -> anyhow::Result<ExitCode> {
    use SubscriptionsAction as A;
    let store = crate::store::open(config.database.url.expose())
        .await
        .with_context(|| format!("cannot open the store at {}", config.database.url))?;
    store.migrate().await.context("migrations failed")?;
    let missing = |name: &str| AdminError::NotFound(name.to_owned());
    let out = match action {
        A::Add {
            name,
            url,
            secret,
            types,
            retry_schedule,
            on_exhausted,
            start,
        } => {
            let retry_schedule_ms = retry_schedule
                .as_deref()
                .map(admin::parse_schedule_arg)
                .transpose()?;
            let request = AddRequest {
                name,
                url: url.unwrap_or_default(),
                secret,
                types,
                retry_schedule_ms,
                on_exhausted: Some(on_exhausted),
                start: Some(start),
                created_by: "cli".into(),
            };
            let now = chrono::Utc::now().timestamp_millis();
            let added = admin::add(
                store.as_ref(),
                request,
                &admin::Limits::from_config(config, false)?,
                now,
            )
            .await?;
            serde_json::to_string_pretty(&added)?
        }
        A::List => serde_json::to_string_pretty(&store.subscriptions().await?)?,
        A::Show { name } => {
            let now = chrono::Utc::now().timestamp_millis();
            serde_json::to_string_pretty(&admin::status(store.as_ref(), &name, now).await?)?
        }
        A::Pause { name } => {
            if !store.set_paused(&name, true).await? {
                Err(missing(&name))?
            }
            format!("{name}: paused")
        }
        A::Resume { name } => {
            if !store.set_paused(&name, false).await? {
                Err(missing(&name))?
            }
            format!("{name}: resumed")
        }
        A::Remove { name } => {
            if !store.remove_subscription(&name).await? {
                Err(missing(&name))?
            }
            format!("{name}: removed")
        }
        A::Retry { name } => match store.retry_subscription(&name).await? {
            Some(counts) => serde_json::to_string(&counts)?,
            None => Err(missing(&name))?,
        },
    };
    store.close().await;
    print(&out);
    Ok(ExitCode::SUCCESS)
}
