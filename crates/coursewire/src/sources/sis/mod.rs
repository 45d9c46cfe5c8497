//! `coursewire import`: the SIS CSV files and the timetable files into the inbox (source
//! `sis`), so they take the path every other change takes (processor, catalog, change events,
//! audit). A file is read whole before anything is written: every bad line is reported as
//! `file:line: problem`, and nothing of a file with errors is applied unless `partial` is
//! asked for (then its good rows are). Rows whose entity the catalog already holds as they are
//! write nothing, so importing the same files twice changes nothing; a row's dedup key names
//! its content and the catalog version it follows, so a change back to an earlier state is
//! still applied.

pub mod spec;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use self::spec::{FILES, FileSpec};
use super::event::{Change, SourceEvent, chain_key};
use crate::catalog::{EntityKind, StoredEntity};
use crate::store::{InboxStatus, InsertOutcome, NewInboxEntry, Store, StoreResult};

/// The inbox `source` of imported rows.
pub const SOURCE: &str = "sis";

/// One file to import: its name (which says what it holds), where it came from, its text.
#[derive(Debug, Clone)]
pub struct ImportFile {
    pub name: String,
    pub path: PathBuf,
    pub text: String,
}

/// The files named by `paths`: each directory's known files, and each file itself (its name
/// must be a known one). Unknown names are an error naming the known ones.
pub fn collect(paths: &[PathBuf]) -> anyhow::Result<Vec<ImportFile>> {
    let known = || FILES.iter().map(|f| f.file).collect::<Vec<_>>().join(", ");
    let mut files = Vec::new();
    for path in paths {
        let read = |p: &Path| -> anyhow::Result<ImportFile> {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            let text = std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", p.display()))?;
            Ok(ImportFile {
                name,
                path: p.to_owned(),
                text,
            })
        };
        if path.is_dir() {
            let before = files.len();
            for spec in FILES {
                let p = path.join(spec.file);
                if p.is_file() {
                    files.push(read(&p)?);
                }
            }
            if files.len() == before {
                anyhow::bail!("{}: holds none of {}", path.display(), known());
            }
        } else {
            let f = read(path)?;
            if spec::spec(&f.name).is_none() {
                anyhow::bail!(
                    "{}: not an import file (its name says what it holds: {})",
                    path.display(),
                    known()
                );
            }
            files.push(f);
        }
    }
    Ok(files)
}

/// What the import did with one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileSummary {
    pub file: String,
    pub kind: String,
    pub rows: usize,
    pub new: usize,
    pub changed: usize,
    pub unchanged: usize,
    /// Lines refused.
    pub errors: usize,
    /// Whether its rows were written (no errors, or `partial`).
    pub applied: bool,
}

/// What the import did: per file, every problem as `file:line: problem`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub files: Vec<FileSummary>,
    pub errors: Vec<String>,
    /// Inbox rows written (rows already waiting in the inbox are not written again).
    pub written: usize,
}

impl ImportSummary {
    /// Counts per entity kind, over the files.
    pub fn by_kind(&self) -> BTreeMap<String, FileSummary> {
        let mut out: BTreeMap<String, FileSummary> = BTreeMap::new();
        for f in &self.files {
            let k = out.entry(f.kind.clone()).or_default();
            k.kind = f.kind.clone();
            k.rows += f.rows;
            k.new += f.new;
            k.changed += f.changed;
            k.unchanged += f.unchanged;
            k.errors += f.errors;
        }
        out
    }
}

/// The inbox rows of one file's rows: new or changed entities only.
fn entries(
    spec: &FileSpec,
    rows: &[spec::Row],
    current: &BTreeMap<String, StoredEntity>,
    now_ms: i64,
    summary: &mut FileSummary,
) -> Vec<NewInboxEntry> {
    let mut out = Vec::new();
    for row in rows {
        let deleted = row.state.get("workflow_state").and_then(|v| v.as_str())
            == Some(crate::catalog::DELETED_STATE);
        let before = current.get(&row.id);
        if before.is_some_and(|b| b.state == row.state && b.deleted == deleted) {
            summary.unchanged += 1;
            continue;
        }
        let change = match (before, deleted) {
            (_, true) => Change::Deleted,
            (None, false) => Change::Observed,
            (Some(_), false) => Change::Updated,
        };
        if before.is_some() {
            summary.changed += 1;
        } else {
            summary.new += 1;
        }
        let subject = format!("{}/{}", spec.kind.as_str(), row.id);
        // After the catalog's version, so a change back to an earlier state is a new row.
        let key = chain_key(&subject, before.map(|b| b.version.tie.as_str()), &row.state);
        let event = SourceEvent {
            id: key.clone(),
            source: "sis://import".to_owned(),
            kind: spec.kind.as_str().to_owned(),
            entity_id: row.id.clone(),
            change,
            observed_at_ms: now_ms,
            poll_started_at_ms: None,
            state: row.state.clone(),
        };
        out.push(NewInboxEntry {
            source: SOURCE.to_owned(),
            dedup_key: key,
            received_at_ms: now_ms,
            event_name: Some(event.event_name(spec.kind)),
            event_time_ms: Some(now_ms),
            subject: Some(subject),
            body: serde_json::to_vec(&event).unwrap_or_default(),
            headers: "{}".to_owned(),
            verification: format!("imported {}:{}", spec.file, row.line),
            status: InboxStatus::Pending,
            status_reason: None,
        });
    }
    out
}

/// Reads `files`, checks every line, and writes what changed into the inbox in one
/// transaction (see the module doc).
pub async fn import(
    store: &Store,
    files: &[ImportFile],
    partial: bool,
    now_ms: i64,
) -> StoreResult<ImportSummary> {
    let mut summary = ImportSummary::default();
    let mut all = Vec::new();
    // Parents first: the order of FILES, whatever order the files were named in.
    for spec in FILES {
        for file in files.iter().filter(|f| f.name == spec.file) {
            let mut fs = FileSummary {
                file: file.path.display().to_string(),
                kind: spec.kind.as_str().to_owned(),
                ..FileSummary::default()
            };
            let (rows, errors) = spec::read(spec, &file.text);
            fs.rows = rows.len() + errors.len();
            fs.errors = errors.len();
            for (line, problem) in &errors {
                summary
                    .errors
                    .push(format!("{}:{line}: {problem}", file.path.display()));
            }
            fs.applied = errors.is_empty() || partial;
            if fs.applied {
                let current: BTreeMap<String, StoredEntity> = store
                    .catalog_rows(spec.kind)
                    .await?
                    .into_iter()
                    .map(|e| (e.entity.id.as_str().to_owned(), e))
                    .collect();
                all.extend(entries(spec, &rows, &current, now_ms, &mut fs));
            }
            summary.files.push(fs);
        }
    }
    let outcomes = store.insert_inbox_batch(&all).await?;
    summary.written = outcomes
        .iter()
        .filter(|o| matches!(o, InsertOutcome::Inserted { .. }))
        .count();
    Ok(summary)
}

/// The kinds an import writes (the `sis` decoder accepts these only).
pub fn writes(kind: EntityKind) -> bool {
    FILES.iter().any(|f| f.kind == kind)
}
