//! `coursewire import PATH… [--partial]`: the SIS and timetable files of the directories and
//! files named into the inbox (see `sources::sis`), then a JSON summary: counts per entity
//! kind and per file, and every problem as `file:line: problem` (also on stderr). Exit code 0:
//! every line was good; 1: some lines were refused (with `--partial` the good rows of those
//! files were still applied, without it nothing of them was); 2: the files or the store could
//! not be read.

use std::path::PathBuf;
use std::process::ExitCode;

use super::print;
use crate::clock::Clock as _;
use crate::config::Config;
use crate::sources::sis;

pub async fn run(config: &Config, paths: Vec<PathBuf>, partial: bool) -> anyhow::Result<ExitCode> {
    let files = match sis::collect(&paths) {
        Ok(f) => f,
        Err(err) => {
            eprintln!("coursewire import: {err:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let store = crate::store::open(config.database.url.expose()).await?;
    store.migrate().await?;
    let summary = sis::import(&store, &files, partial, crate::clock::SystemClock.now_ms()).await;
    store.close().await;
    let summary = summary?;
    for e in &summary.errors {
        eprintln!("{e}");
    }
    print(&serde_json::to_string(&serde_json::json!({
        "kinds": summary.by_kind(),
        "files": summary.files,
        "written": summary.written,
        "errors": summary.errors,
    }))?);
    Ok(if summary.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
