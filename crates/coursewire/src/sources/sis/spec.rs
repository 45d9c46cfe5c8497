//! What each import file holds: its columns, which are required, what each value must look
//! like, and which catalog entity a row is. Canvas's SIS CSV (canvas.md D: `accounts.csv`,
//! `terms.csv`, `courses.csv`, `sections.csv`, `users.csv`, `enrollments.csv`, `xlists.csv`)
//! and the timetable files the simulator documents (`rooms.csv`, `recorders.csv`,
//! `meetings.csv`, `cancellations.csv`). Reading is pure: text in, rows or `line: problem`
//! out. Columns a file has beyond these are ignored (Canvas adds columns over time).

use chrono::{NaiveDate, NaiveTime};
use serde_json::{Map, Value};

use crate::catalog::EntityKind;

/// What a value must be.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    Text,
    Int,
    Bool,
    /// `YYYY-MM-DD`.
    Date,
    /// ISO-8601 with a time (`2025-08-25T04:00:00Z`).
    DateTime,
    /// `HH:MM`, local.
    Time,
    /// Meeting days: letters of `MTWRFSU`, each once.
    Days,
    /// An IANA time zone.
    Zone,
    OneOf(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub required: bool,
    pub ty: Ty,
}

const fn req(name: &'static str, ty: Ty) -> Column {
    Column {
        name,
        required: true,
        ty,
    }
}

const fn opt(name: &'static str, ty: Ty) -> Column {
    Column {
        name,
        required: false,
        ty,
    }
}

/// One import file.
#[derive(Debug)]
pub struct FileSpec {
    pub file: &'static str,
    pub kind: EntityKind,
    /// The columns whose values, joined by `:`, are the entity's id (empty ones left out).
    pub key: &'static [&'static str],
    pub columns: &'static [Column],
}

const STATUS: Ty = Ty::OneOf(&["active", "deleted"]);

/// Every file `coursewire import` reads, in the order they are applied (parents first).
pub const FILES: &[FileSpec] = &[
    FileSpec {
        file: "accounts.csv",
        kind: EntityKind::SisAccount,
        key: &["account_id"],
        columns: &[
            req("account_id", Ty::Text),
            opt("parent_account_id", Ty::Text),
            req("name", Ty::Text),
            req("status", STATUS),
        ],
    },
    FileSpec {
        file: "terms.csv",
        kind: EntityKind::SisTerm,
        key: &["term_id"],
        columns: &[
            req("term_id", Ty::Text),
            req("name", Ty::Text),
            req("status", STATUS),
            opt("start_date", Ty::DateTime),
            opt("end_date", Ty::DateTime),
        ],
    },
    FileSpec {
        file: "courses.csv",
        kind: EntityKind::SisCourse,
        key: &["course_id"],
        columns: &[
            req("course_id", Ty::Text),
            req("short_name", Ty::Text),
            req("long_name", Ty::Text),
            opt("account_id", Ty::Text),
            opt("term_id", Ty::Text),
            req(
                "status",
                Ty::OneOf(&["active", "deleted", "completed", "published"]),
            ),
            opt("start_date", Ty::DateTime),
            opt("end_date", Ty::DateTime),
            opt(
                "course_format",
                Ty::OneOf(&["on_campus", "online", "blended"]),
            ),
        ],
    },
    FileSpec {
        file: "sections.csv",
        kind: EntityKind::SisSection,
        key: &["section_id"],
        columns: &[
            req("section_id", Ty::Text),
            req("course_id", Ty::Text),
            req("name", Ty::Text),
            req("status", STATUS),
            opt("start_date", Ty::DateTime),
            opt("end_date", Ty::DateTime),
        ],
    },
    FileSpec {
        file: "xlists.csv",
        kind: EntityKind::SisCrossListing,
        key: &["section_id"],
        columns: &[
            req("xlist_course_id", Ty::Text),
            req("section_id", Ty::Text),
            req("status", STATUS),
        ],
    },
    FileSpec {
        file: "users.csv",
        kind: EntityKind::SisUser,
        key: &["user_id"],
        columns: &[
            req("user_id", Ty::Text),
            req("login_id", Ty::Text),
            opt("first_name", Ty::Text),
            opt("last_name", Ty::Text),
            opt("full_name", Ty::Text),
            opt("sortable_name", Ty::Text),
            opt("short_name", Ty::Text),
            opt("email", Ty::Text),
            req("status", Ty::OneOf(&["active", "deleted", "suspended"])),
        ],
    },
    FileSpec {
        file: "enrollments.csv",
        kind: EntityKind::SisEnrollment,
        key: &["section_id", "user_id", "role", "associated_user_id"],
        columns: &[
            opt("course_id", Ty::Text),
            req("user_id", Ty::Text),
            req("role", Ty::Text),
            req("section_id", Ty::Text),
            req(
                "status",
                Ty::OneOf(&["active", "deleted", "completed", "inactive"]),
            ),
            opt("associated_user_id", Ty::Text),
            opt("limit_section_privileges", Ty::Bool),
        ],
    },
    FileSpec {
        file: "rooms.csv",
        kind: EntityKind::Room,
        key: &["room_id"],
        columns: &[
            req("room_id", Ty::Text),
            opt("building", Ty::Text),
            opt("name", Ty::Text),
            opt("capacity", Ty::Int),
            req("has_recorder", Ty::Bool),
            opt("recorder_id", Ty::Text),
        ],
    },
    FileSpec {
        file: "recorders.csv",
        kind: EntityKind::RoomRecorder,
        key: &["recorder_id"],
        columns: &[
            req("recorder_id", Ty::Text),
            opt("name", Ty::Text),
            req("external_id", Ty::Text),
            opt("default_folder_id", Ty::Text),
        ],
    },
    FileSpec {
        file: "meetings.csv",
        kind: EntityKind::Meeting,
        key: &["meeting_id"],
        columns: &[
            req("meeting_id", Ty::Int),
            req("section_id", Ty::Text),
            req("course_id", Ty::Text),
            req("room_id", Ty::Text),
            req("days", Ty::Days),
            req("start_time", Ty::Time),
            req("end_time", Ty::Time),
            opt("duration_minutes", Ty::Int),
            req("time_zone", Ty::Zone),
            req("first_date", Ty::Date),
            req("last_date", Ty::Date),
        ],
    },
    FileSpec {
        file: "cancellations.csv",
        kind: EntityKind::Cancellation,
        key: &["meeting_id", "date"],
        columns: &[
            req("date", Ty::Date),
            req("meeting_id", Ty::Int),
            opt("section_id", Ty::Text),
            opt("course_id", Ty::Text),
            opt("reason", Ty::Text),
        ],
    },
];

pub fn spec(file: &str) -> Option<&'static FileSpec> {
    FILES.iter().find(|f| f.file == file)
}

/// A row that passed its checks: the entity it is and its state.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: u64,
    pub id: String,
    pub state: Map<String, Value>,
}

/// `value` of column `c` as JSON, or why it is not acceptable.
fn typed(c: &Column, value: &str) -> Result<Value, String> {
    let bad = |what: &str| format!("{} = {value:?} is not {what}", c.name);
    Ok(match c.ty {
        Ty::Text => Value::String(value.to_owned()),
        Ty::Int => value
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| bad("a whole number"))?,
        Ty::Bool => match value.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Value::Bool(true),
            "false" | "0" | "no" => Value::Bool(false),
            _ => return Err(bad("true or false")),
        },
        Ty::Date => {
            NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| bad("a date YYYY-MM-DD"))?;
            Value::String(value.to_owned())
        }
        Ty::DateTime => {
            chrono::DateTime::parse_from_rfc3339(value)
                .map_err(|_| bad("an ISO-8601 time (2025-08-25T04:00:00Z)"))?;
            Value::String(value.to_owned())
        }
        Ty::Time => {
            NaiveTime::parse_from_str(value, "%H:%M").map_err(|_| bad("a local time HH:MM"))?;
            Value::String(value.to_owned())
        }
        Ty::Days => {
            let mut seen = String::new();
            for d in value.chars() {
                if !"MTWRFSU".contains(d) || seen.contains(d) {
                    return Err(bad("meeting days (letters of MTWRFSU, each once)"));
                }
                seen.push(d);
            }
            if seen.is_empty() {
                return Err(bad("meeting days"));
            }
            Value::String(value.to_owned())
        }
        Ty::Zone => {
            value
                .parse::<chrono_tz::Tz>()
                .map_err(|_| bad("an IANA time zone (America/New_York)"))?;
            Value::String(value.to_owned())
        }
        Ty::OneOf(allowed) => {
            if !allowed.contains(&value) {
                return Err(bad(&format!("one of {}", allowed.join(", "))));
            }
            Value::String(value.to_owned())
        }
    })
}

/// Checks across the columns of one row.
fn row_checks(spec: &FileSpec, state: &Map<String, Value>) -> Result<(), String> {
    let text = |k: &str| state.get(k).and_then(Value::as_str).unwrap_or("");
    if spec.kind == EntityKind::Meeting {
        if text("end_time") <= text("start_time") {
            return Err(format!(
                "end_time {} is not after start_time {}",
                text("end_time"),
                text("start_time")
            ));
        }
        if text("last_date") < text("first_date") {
            return Err(format!(
                "last_date {} is before first_date {}",
                text("last_date"),
                text("first_date")
            ));
        }
        let minutes = |t: &str| {
            NaiveTime::parse_from_str(t, "%H:%M")
                .map(|t| i64::from(chrono::Timelike::num_seconds_from_midnight(&t)) / 60)
                .unwrap_or(0)
        };
        let length = minutes(text("end_time")) - minutes(text("start_time"));
        if let Some(d) = state.get("duration_minutes").and_then(Value::as_i64)
            && d != length
        {
            return Err(format!(
                "duration_minutes {d} does not match {}–{} ({length} minutes)",
                text("start_time"),
                text("end_time")
            ));
        }
    }
    if spec.kind == EntityKind::Room
        && state.get("has_recorder") == Some(&Value::Bool(true))
        && text("recorder_id").is_empty()
    {
        return Err("has_recorder is true but recorder_id is empty".into());
    }
    Ok(())
}

/// The good rows of one file and every `line: problem` (line numbers as a person counts them:
/// the header is line 1).
pub fn read(spec: &FileSpec, text: &str) -> (Vec<Row>, Vec<(u64, String)>) {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return (Vec::new(), vec![(1, format!("no header row: {e}"))]),
    };
    let missing: Vec<&str> = spec
        .columns
        .iter()
        .filter(|c| c.required && !headers.iter().any(|h| h == c.name))
        .map(|c| c.name)
        .collect();
    if !missing.is_empty() {
        return (
            Vec::new(),
            vec![(1, format!("missing column(s): {}", missing.join(", ")))],
        );
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut keys = std::collections::BTreeMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push((line, format!("not a CSV row: {e}")));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let mut state = Map::new();
        let mut problems = Vec::new();
        for c in spec.columns {
            let value = headers
                .iter()
                .position(|h| h == c.name)
                .and_then(|i| record.get(i))
                .unwrap_or("");
            if value.is_empty() {
                if c.required {
                    problems.push(format!("{} is required", c.name));
                }
                state.insert(c.name.to_owned(), Value::Null);
                continue;
            }
            match typed(c, value) {
                Ok(v) => {
                    state.insert(c.name.to_owned(), v);
                }
                Err(p) => problems.push(p),
            }
        }
        if problems.is_empty()
            && let Err(p) = row_checks(spec, &state)
        {
            problems.push(p);
        }
        if !problems.is_empty() {
            errors.push((line, problems.join("; ")));
            continue;
        }
        let id = spec
            .key
            .iter()
            .filter_map(|k| match &state[*k] {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            })
            .collect::<Vec<_>>()
            .join(":");
        // The same row twice is one row (Canvas exports duplicate enrollments); two different
        // rows for one entity are ambiguous.
        if let Some((first, before)) = keys.get(&id) {
            if *before != state {
                errors.push((
                    line,
                    format!("{id} is already on line {first}, differently"),
                ));
            }
            continue;
        }
        keys.insert(id.clone(), (line, state.clone()));
        if state.get("status").and_then(Value::as_str) == Some("deleted") {
            state.insert(
                "workflow_state".into(),
                crate::catalog::DELETED_STATE.into(),
            );
        }
        rows.push(Row { line, id, state });
    }
    (rows, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_meetings_file_is_read_row_by_row_with_each_problem_on_its_line() {
        let spec = spec("meetings.csv").unwrap();
        let good = "meeting_id,section_id,course_id,room_id,days,start_time,end_time,duration_minutes,time_zone,first_date,last_date\n\
                    7,S1,C1,KNE-120,MWF,09:00,09:50,50,America/New_York,2025-08-25,2025-12-05\n";
        let (rows, errors) = read(spec, good);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].id, "7");
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].state["days"], "MWF");
        let bad = format!(
            "{good}8,S1,C1,KNE-120,MX,09:00,08:00,50,Mars/Olympus,2025-08-25,2025-12-05\n\
             9,S1,C1,KNE-120,TR,10:00,11:15,75,America/New_York,2025-12-05,2025-08-25\n\
             7,S1,C1,KNE-120,TR,10:00,11:15,75,America/New_York,2025-08-25,2025-12-05\n"
        );
        let (rows, errors) = read(spec, &bad);
        assert_eq!(rows.len(), 1, "the good row is still read");
        let lines: Vec<u64> = errors.iter().map(|e| e.0).collect();
        assert_eq!(lines, [3, 4, 5], "{errors:?}");
        assert!(errors[0].1.contains("days = \"MX\""), "{}", errors[0].1);
        assert!(errors[0].1.contains("time_zone"), "{}", errors[0].1);
        assert!(errors[1].1.contains("last_date"), "{}", errors[1].1);
        assert!(
            errors[2].1.contains("already on line 2, differently"),
            "{}",
            errors[2].1
        );
        // The same row again is not a problem.
        let twice = format!("{good}{}", good.lines().nth(1).unwrap());
        let (rows, errors) = read(spec, &twice);
        assert_eq!((rows.len(), errors.len()), (1, 0));
    }

    #[test]
    fn a_missing_column_or_value_is_named_and_deleted_rows_are_deletions() {
        let spec = spec("sections.csv").unwrap();
        let (_, errors) = read(spec, "section_id,name,status\nS1,A,active\n");
        assert_eq!(errors, [(1, "missing column(s): course_id".to_owned())]);
        let (_, errors) = read(spec, "section_id,course_id,name,status\nS1,,A,gone\n");
        assert_eq!(errors[0].0, 2);
        assert!(errors[0].1.contains("course_id is required"));
        assert!(errors[0].1.contains("one of active, deleted"));
        let (rows, _) = read(
            spec,
            "section_id,course_id,name,status,extra\n\"S,1\",C1,\"Lab \"\"A\"\"\",deleted,x\n",
        );
        assert_eq!(rows[0].id, "S,1");
        assert_eq!(rows[0].state["name"], "Lab \"A\"");
        assert_eq!(rows[0].state["workflow_state"], "deleted");
        assert!(!rows[0].state.contains_key("extra"));
    }
}
