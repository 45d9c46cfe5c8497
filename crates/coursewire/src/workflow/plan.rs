//! Where and how a matched lecture is published: its rules (root, department, course) and the
//! facts the catalog holds about its course and section, rendered into a [`Plan`]. Pure, so
//! the plan a recording was filed under can be shown again, previewed for a rule not yet
//! saved, and compared on replay.
//!
//! Template fields: `{term}` the term's name, `{year}` its year (the lecture's when the term
//! has no start date), `{department}` the department's name, `{course_code}` and
//! `{course_name}` the SIS course's short and long names, `{section}` the SIS section id,
//! `{section_name}` its name, `{date}` the lecture's local date, `{start_time}` its local start
//! (`HH:MM`), `{room}` the room, `{instructor}` the section's first teacher by name.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::matching::Lecture;
use super::steps::Plan;
use crate::rules::template::{FieldValue, render};
use crate::rules::{Effective, Placement};

/// What the catalog says about the lecture's course and section (SIS rows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub term: String,
    pub term_year: Option<i32>,
    pub department: String,
    pub course_code: String,
    pub course_name: String,
    /// The SIS section id the folder is for (the first of cross-listed sections).
    pub section: String,
    pub section_name: String,
    pub instructor: String,
    /// The start as local `HH:MM`.
    pub start_time: String,
}

/// The section folder's Panopto external id: how it is found again, whatever a person
/// renamed it to.
pub fn section_folder_external_id(section: &str) -> String {
    format!("coursewire:section:{section}")
}

/// The rendered plan for `lecture` under `rules` (versions named by `rule_version`).
pub fn render_plan(
    lecture: &Lecture,
    facts: &Facts,
    rules: &Effective,
    rule_version: &str,
) -> Plan {
    let date = NaiveDate::parse_from_str(&lecture.date, "%Y-%m-%d").unwrap_or_default();
    let year = facts.term_year.unwrap_or_else(|| {
        use chrono::Datelike;
        date.year()
    });
    let mut values: BTreeMap<&str, FieldValue> = BTreeMap::new();
    let text = |v: &str| FieldValue::Text(v.to_owned());
    values.insert("term", text(&facts.term));
    values.insert("year", text(&year.to_string()));
    values.insert("department", text(&facts.department));
    values.insert("course_code", text(&facts.course_code));
    values.insert("course_name", text(&facts.course_name));
    values.insert("section", text(&facts.section));
    values.insert("section_name", text(&facts.section_name));
    values.insert("date", FieldValue::Date(date));
    values.insert("start_time", text(&facts.start_time));
    values.insert("room", text(&lecture.room_id));
    values.insert("instructor", text(&facts.instructor));
    let r = &rules.rules;
    let folder_path = r
        .folder_template
        .split('/')
        .map(|level| clean(&render(level, &values)))
        .collect();
    Plan {
        folder_path,
        folder_external_id: section_folder_external_id(&facts.section),
        session_name: clean(&render(&r.session_name_template, &values)),
        module_name: clean(&render(&r.module_name, &values)),
        module_at_top: r.module_placement == Placement::Top,
        post_waits_for_captions: r.post_waits_for_captions,
        repair_drift: r.repair_drift,
        rule_version: rule_version.to_owned(),
    }
}

/// One line, single spaces, no surrounding blanks: a field that rendered empty leaves no
/// double space, and a name is never blank.
fn clean(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.is_empty() {
        "Untitled".to_owned()
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{RuleSet, Scope, effective};

    fn lecture() -> Lecture {
        Lecture {
            meeting_id: "12".into(),
            date: "2025-11-03".into(),
            room_id: "KNE-120".into(),
            course_id: "2025FA-BIO-101".into(),
            sections: vec!["2025FA-BIO-101-A".into()],
            starts_at_ms: 0,
            ends_at_ms: 0,
            recorded_in: None,
        }
    }

    fn facts() -> Facts {
        Facts {
            term: "Fall 2025".into(),
            term_year: Some(2025),
            department: "Biology".into(),
            course_code: "BIO 101".into(),
            course_name: "Introductory Biology".into(),
            section: "2025FA-BIO-101-A".into(),
            section_name: "Section A".into(),
            instructor: "Ada Lovelace".into(),
            start_time: "09:00".into(),
        }
    }

    #[test]
    fn the_defaults_render_a_folder_path_a_name_and_the_module() {
        let plan = render_plan(&lecture(), &facts(), &effective(&[]), "default");
        assert_eq!(
            plan.folder_path,
            ["Fall 2025", "BIO 101", "2025FA-BIO-101-A"]
        );
        assert_eq!(plan.session_name, "BIO 101 2025FA-BIO-101-A — Mon 03 Nov");
        assert_eq!(
            plan.folder_external_id,
            "coursewire:section:2025FA-BIO-101-A"
        );
        assert_eq!(plan.module_name, "Lecture recordings");
        assert!(plan.module_at_top);
        assert!(plan.repair_drift);
    }

    #[test]
    fn a_department_template_and_an_empty_field_render_cleanly() {
        let set = RuleSet {
            session_name_template: Some("{course_code}  {instructor} {date:%d.%m.} {room}".into()),
            ..RuleSet::default()
        };
        let rules = effective(&[(Scope::Department("BIO".into()), &set)]);
        let mut f = facts();
        f.instructor.clear();
        let plan = render_plan(&lecture(), &f, &rules, "department:BIO@2");
        assert_eq!(plan.session_name, "BIO 101 03.11. KNE-120");
        assert_eq!(plan.rule_version, "department:BIO@2");
    }
}
