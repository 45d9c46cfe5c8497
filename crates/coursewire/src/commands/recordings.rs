//! `coursewire recordings list|show|replay|park|unpark`: the recording workflow from the
//! shell (the API and the admin UI call the same `workflow::operate`). Prints JSON. Exit code
//! 0; 1 when the request is refused (unknown recording, bad filter, a park without a reason);
//! 2 when the store cannot be read.

use std::process::ExitCode;

use serde_json::json;

use super::print;
use crate::cli::RecordingsAction;
use crate::clock::Clock as _;
use crate::config::Config;
use crate::workflow::operate::{self, Action, Filter, OperateError};

fn who(given: Option<String>) -> String {
    given.unwrap_or_else(|| {
        format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        )
    })
}

pub async fn run(config: &Config, action: RecordingsAction) -> anyhow::Result<ExitCode> {
    let store = crate::store::open(config.database.url.expose()).await?;
    store.migrate().await?;
    let result = act(&store, action).await;
    store.close().await;
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(OperateError::Store(e)) => {
            eprintln!("coursewire recordings: {e}");
            Ok(ExitCode::from(2))
        }
        Err(e) => {
            eprintln!("coursewire recordings: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

async fn act(store: &crate::store::Store, action: RecordingsAction) -> Result<(), OperateError> {
    let now = crate::clock::SystemClock.now_ms();
    match action {
        RecordingsAction::List {
            state,
            section,
            date,
        } => {
            let filter = Filter {
                state,
                section,
                date: date.map(|d| d.to_string()),
            };
            let list = operate::list(store, &filter).await?;
            print(&pretty(&json!({ "recordings": list })));
        }
        RecordingsAction::Show { id } => print(&pretty(&operate::show(store, &id).await?)),
        RecordingsAction::Replay {
            id,
            from,
            to,
            by,
            reason,
        } => {
            let by = who(by);
            let ids = match (id, from, to) {
                (Some(id), None, None) => {
                    operate::request(store, &id, Action::Replay, &by, reason.as_deref(), now)
                        .await?;
                    vec![id]
                }
                (None, Some(from), Some(to)) if from < to => {
                    operate::replay_window(
                        store,
                        from.timestamp_millis(),
                        to.timestamp_millis(),
                        &by,
                        reason.as_deref(),
                        now,
                    )
                    .await?
                }
                _ => {
                    return Err(OperateError::Invalid(
                        "replay takes a recording id, or --from and --to (from before to)".into(),
                    ));
                }
            };
            print(&pretty(&json!({ "replay_requested": ids })));
        }
        RecordingsAction::Park { id, by, reason } => {
            operate::request(store, &id, Action::Park, &who(by), Some(&reason), now).await?;
            print(&pretty(&json!({ "park_requested": id })));
        }
        RecordingsAction::Unpark { id, by, reason } => {
            operate::request(store, &id, Action::Unpark, &who(by), Some(&reason), now).await?;
            print(&pretty(&json!({ "unpark_requested": id })));
        }
    }
    Ok(())
}
