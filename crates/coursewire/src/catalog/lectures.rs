//! Meeting patterns expanded to lectures: a `meeting` (a section in a room on some weekdays,
//! local start and end times in its time zone, from a first to a last date) takes place on
//! every such date, except the dates its `cancellation`s name (kept, with their reason). The
//! start and end of each occurrence are the local times on that date in the meeting's zone, so
//! a 09:00 class is at 09:00 on both sides of a daylight-saving change (13:00Z in September,
//! 14:00Z in November in New York). Pure: the catalog's state in, occurrences out.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate, NaiveTime, TimeZone, Weekday};
use serde::Serialize;
use serde_json::{Map, Value};

use super::StoredEntity;

/// One section meeting on one date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Occurrence {
    pub meeting_id: String,
    /// Local date, `YYYY-MM-DD`.
    pub date: String,
    pub section_id: String,
    pub course_id: String,
    pub room_id: String,
    /// Unix ms.
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    /// RFC 3339 with the local offset (`2025-11-03T09:00:00-05:00`).
    pub starts_at: String,
    pub ends_at: String,
    pub cancelled: bool,
    pub cancelled_reason: Option<String>,
}

fn weekday(letter: char) -> Option<Weekday> {
    Some(match letter {
        'M' => Weekday::Mon,
        'T' => Weekday::Tue,
        'W' => Weekday::Wed,
        'R' => Weekday::Thu,
        'F' => Weekday::Fri,
        'S' => Weekday::Sat,
        'U' => Weekday::Sun,
        _ => return None,
    })
}

/// The meeting's occurrences from `from` to `to` (local dates, inclusive), with
/// `cancellations` (date → reason) applied. A meeting whose state cannot be read (a field
/// missing or malformed: the import validates, so only a hand-made row) yields none.
pub fn occurrences(
    meeting_id: &str,
    meeting: &Map<String, Value>,
    cancellations: &BTreeMap<String, Option<String>>,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<Occurrence> {
    let text = |k: &str| meeting.get(k).and_then(Value::as_str).unwrap_or("");
    let date = |k: &str| NaiveDate::parse_from_str(text(k), "%Y-%m-%d").ok();
    let time = |k: &str| NaiveTime::parse_from_str(text(k), "%H:%M").ok();
    let (Some(first), Some(last), Some(start), Some(end), Ok(zone)) = (
        date("first_date"),
        date("last_date"),
        time("start_time"),
        time("end_time"),
        text("time_zone").parse::<chrono_tz::Tz>(),
    ) else {
        return Vec::new();
    };
    let days: Vec<Weekday> = text("days").chars().filter_map(weekday).collect();
    let mut out = Vec::new();
    let mut d = first.max(from);
    while d <= last.min(to) {
        if days.contains(&d.weekday()) {
            // A local time skipped by a spring-forward change falls back to the instant after
            // the gap; an ambiguous one (fall back) takes the earlier.
            let local = |t: NaiveTime| {
                zone.from_local_datetime(&d.and_time(t))
                    .earliest()
                    .or_else(|| {
                        zone.from_local_datetime(&(d.and_time(t) + chrono::Duration::hours(1)))
                            .earliest()
                    })
            };
            if let (Some(s), Some(e)) = (local(start), local(end)) {
                let key = d.format("%Y-%m-%d").to_string();
                let cancelled = cancellations.get(&key);
                out.push(Occurrence {
                    meeting_id: meeting_id.to_owned(),
                    date: key,
                    section_id: text("section_id").to_owned(),
                    course_id: text("course_id").to_owned(),
                    room_id: text("room_id").to_owned(),
                    starts_at_ms: s.timestamp_millis(),
                    ends_at_ms: e.timestamp_millis(),
                    starts_at: s.to_rfc3339(),
                    ends_at: e.to_rfc3339(),
                    cancelled: cancelled.is_some(),
                    cancelled_reason: cancelled.cloned().flatten(),
                });
            }
        }
        let Some(next) = d.succ_opt() else { break };
        d = next;
    }
    out
}

/// The timetable's catalog rows a day's lectures are made of.
#[derive(Debug, Clone, Copy)]
pub struct TimetableRows<'a> {
    pub meetings: &'a [StoredEntity],
    pub cancellations: &'a [StoredEntity],
    /// SIS sections, for their status: a deleted section's meetings are no lectures (a
    /// section the import has not seen, a timetable without SIS files, is taken as it is).
    pub sections: &'a [StoredEntity],
}

/// Every lecture of `rows` from `from` to `to` (local dates, inclusive), of one section when
/// `section` is given, ordered by start and room; cancelled ones included, flagged.
pub fn lectures(
    rows: TimetableRows<'_>,
    section: Option<&str>,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<Occurrence> {
    let text =
        |e: &StoredEntity, k: &str| e.state.get(k).and_then(Value::as_str).map(str::to_owned);
    let deleted: BTreeSet<String> = rows
        .sections
        .iter()
        .filter(|s| text(s, "status").as_deref() != Some("active"))
        .map(|s| s.entity.id.as_str().to_owned())
        .collect();
    let mut cancelled: BTreeMap<String, BTreeMap<String, Option<String>>> = BTreeMap::new();
    for c in rows.cancellations {
        let meeting = c
            .state
            .get("meeting_id")
            .map(Value::to_string)
            .unwrap_or_default();
        cancelled
            .entry(meeting)
            .or_default()
            .insert(text(c, "date").unwrap_or_default(), text(c, "reason"));
    }
    let none = BTreeMap::new();
    let mut out = Vec::new();
    for m in rows.meetings {
        let of = text(m, "section_id").unwrap_or_default();
        if deleted.contains(&of) || section.is_some_and(|s| s != of) {
            continue;
        }
        let id = m.entity.id.as_str();
        out.extend(occurrences(
            id,
            &m.state,
            cancelled.get(id).unwrap_or(&none),
            from,
            to,
        ));
    }
    out.sort_by(|a, b| (a.starts_at_ms, &a.room_id).cmp(&(b.starts_at_ms, &b.room_id)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meeting() -> Map<String, Value> {
        let Value::Object(m) = serde_json::json!({
            "section_id": "S1", "course_id": "C1", "room_id": "KNE-120", "days": "MW",
            "start_time": "09:00", "end_time": "09:50", "time_zone": "America/New_York",
            "first_date": "2025-10-27", "last_date": "2025-11-05",
        }) else {
            unreachable!()
        };
        m
    }

    #[test]
    fn a_class_keeps_its_local_time_across_the_november_change_and_cancellations_are_kept() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let mut cancelled = BTreeMap::new();
        cancelled.insert("2025-10-29".to_owned(), Some("holiday: test".to_owned()));
        let all = occurrences(
            "7",
            &meeting(),
            &cancelled,
            d("2025-01-01"),
            d("2026-01-01"),
        );
        let dates: Vec<&str> = all.iter().map(|o| o.date.as_str()).collect();
        assert_eq!(
            dates,
            ["2025-10-27", "2025-10-29", "2025-11-03", "2025-11-05"]
        );
        // EDT before 2 November, EST after.
        assert_eq!(all[0].starts_at, "2025-10-27T09:00:00-04:00");
        assert_eq!(all[2].starts_at, "2025-11-03T09:00:00-05:00");
        assert_eq!(all[2].ends_at_ms - all[2].starts_at_ms, 50 * 60_000);
        assert!(all[1].cancelled);
        assert_eq!(all[1].cancelled_reason.as_deref(), Some("holiday: test"));
        assert!(!all[0].cancelled);
        // A window narrows it; a broken meeting yields nothing.
        assert_eq!(
            occurrences(
                "7",
                &meeting(),
                &cancelled,
                d("2025-11-03"),
                d("2025-11-03")
            )
            .len(),
            1
        );
        let mut broken = meeting();
        broken.insert("time_zone".into(), "Nowhere/Land".into());
        assert!(occurrences("7", &broken, &cancelled, d("2025-01-01"), d("2026-01-01")).is_empty());
    }
}
