//! `coursewire rules show|set|export|import`: publishing rules from the shell (the admin UI
//! will use the same `rules` module). Exit code 0, 1 when a rule set is refused (the message
//! names the key or template field), 2 when the store cannot be read.

use std::process::ExitCode;

use serde_json::json;

use super::print;
use crate::cli::{RuleScopeArgs, RulesAction};
use crate::clock::Clock as _;
use crate::config::Config;
use crate::rules::stored::{self, RulesError};
use crate::rules::{self, Scope};

fn scope(args: &RuleScopeArgs) -> Scope {
    match (&args.department, &args.course) {
        (Some(d), _) => Scope::Department(d.clone()),
        (None, Some(c)) => Scope::Course(c.clone()),
        (None, None) => Scope::Root,
    }
}

fn author(given: Option<String>) -> String {
    given.unwrap_or_else(|| {
        format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        )
    })
}

fn now() -> i64 {
    crate::clock::SystemClock.now_ms()
}

pub async fn run(config: &Config, action: RulesAction) -> anyhow::Result<ExitCode> {
    let store = crate::store::open(config.database.url.expose()).await?;
    store.migrate().await?;
    let result = act(&store, action).await;
    store.close().await;
    match result {
        Ok(code) => Ok(code),
        Err(RulesError::Store(e)) => {
            eprintln!("coursewire rules: {e}");
            Ok(ExitCode::from(2))
        }
        Err(e) => {
            eprintln!("coursewire rules: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

async fn act(store: &crate::store::Store, action: RulesAction) -> Result<ExitCode, RulesError> {
    match action {
        RulesAction::Show {
            scope: args,
            version,
            history,
        } => {
            let scope = scope(&args);
            if history {
                let versions = stored::history(store, &scope).await?;
                print(
                    &serde_json::to_string(&json!({ "scope": scope.key(), "versions": versions }))
                        .unwrap_or_default(),
                );
                return Ok(ExitCode::SUCCESS);
            }
            let own = stored::version(store, &scope, version).await?;
            let effective = stored::effective_for(store, &scope).await?;
            print(
                &serde_json::to_string(&json!({
                    "scope": scope.key(),
                    "own": own,
                    // With --version, what this scope sets in that version; the rule that
                    // applies is always the current one.
                    "effective": effective.rules,
                    "origin": effective.origin,
                }))
                .unwrap_or_default(),
            );
            Ok(ExitCode::SUCCESS)
        }
        RulesAction::Set {
            scope: args,
            changes,
            author: who,
            reason,
        } => {
            let scope = scope(&args);
            let mut pairs = Vec::new();
            for c in &changes {
                let Some((k, v)) = c.split_once('=') else {
                    return Err(RulesError::Invalid(format!(
                        "{c:?} is not KEY=VALUE (KEY= unsets)"
                    )));
                };
                pairs.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            let current = stored::version(store, &scope, None)
                .await?
                .map(|v| v.rules)
                .unwrap_or_default();
            let next = current.with_changes(&pairs).map_err(RulesError::Invalid)?;
            let (version, changed) =
                stored::save(store, &scope, &next, &author(who), reason.as_deref(), now()).await?;
            print(
                &serde_json::to_string(
                    &json!({ "scope": scope.key(), "version": version, "changed": changed }),
                )
                .unwrap_or_default(),
            );
            Ok(ExitCode::SUCCESS)
        }
        RulesAction::Export { output } => {
            let doc = rules::to_document(&stored::all_current(store).await?);
            match output {
                Some(path) => std::fs::write(&path, doc).map_err(|e| {
                    RulesError::Invalid(format!("cannot write {}: {e}", path.display()))
                })?,
                None => print(doc.trim_end()),
            }
            Ok(ExitCode::SUCCESS)
        }
        RulesAction::Import {
            file,
            author: who,
            reason,
        } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| RulesError::Invalid(format!("cannot read {}: {e}", file.display())))?;
            let sets = rules::from_document(&text)
                .map_err(|e| RulesError::Invalid(format!("{}: {e}", file.display())))?;
            let who = author(who);
            let mut saved = Vec::new();
            for (scope, set) in &sets {
                let (version, changed) =
                    stored::save(store, scope, set, &who, reason.as_deref(), now()).await?;
                saved.push(json!({ "scope": scope.key(), "version": version, "changed": changed }));
            }
            print(&serde_json::to_string(&json!({ "scopes": saved })).unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
    }
}
