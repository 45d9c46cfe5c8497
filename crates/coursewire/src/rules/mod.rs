//! Publishing rules: how each department (a Canvas sub-account, by its SIS id) publishes its
//! lectures, with defaults at the root and overrides per course (by SIS course id). Each scope
//! stores only what it sets ([`RuleSet`], every field optional); the rule a course follows is
//! the built-in defaults, then the root's, then its department's, then its own
//! ([`effective`]), and every field says where it came from. Every change is a new version of
//! its scope, kept with who made it, when and why; old versions stay readable. A rule set is
//! validated before it is saved: an unknown key or a template naming an unknown field is
//! refused with the key or field named. The CLI (`coursewire rules`) and the coming admin UI
//! use this module; the store only keeps the versions.

pub mod stored;
pub mod template;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a rule set applies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Root,
    /// A department: the Canvas sub-account's SIS id.
    Department(String),
    /// A course: its SIS id.
    Course(String),
}

impl Scope {
    /// How the store names it: `root`, `department:ENG`, `course:2025FA-BIO-101`.
    pub fn key(&self) -> String {
        match self {
            Scope::Root => "root".into(),
            Scope::Department(d) => format!("department:{d}"),
            Scope::Course(c) => format!("course:{c}"),
        }
    }

    pub fn parse(key: &str) -> Result<Scope, String> {
        match key.split_once(':') {
            None if key == "root" => Ok(Scope::Root),
            Some(("department", d)) if !d.is_empty() => Ok(Scope::Department(d.to_owned())),
            Some(("course", c)) if !c.is_empty() => Ok(Scope::Course(c.to_owned())),
            _ => Err(format!(
                "{key:?} is not a scope (root, department:ID or course:ID)"
            )),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// Who may view a section's recordings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Viewers {
    /// The section's students, TAs and instructors (one Panopto group per section).
    SectionRoster,
    /// Everyone enrolled in the course.
    CourseRoster,
    /// Every signed-in member of the university.
    Organization,
}

/// Where the recordings' module goes in the course.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    Top,
    Bottom,
}

/// What a caption escalation tier does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationAction {
    Warn,
    Page,
}

/// A tier of the caption SLA: after this many hours without captions (from the recording's
/// completion), do this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    pub after_hours: u32,
    pub action: EscalationAction,
}

/// What one scope sets; the rest comes from the scopes above it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// Where a section's recordings live, as a Panopto folder path (`/` between levels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folder_template: Option<String>,
    /// The name a recording is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_name_template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub viewers: Option<Viewers>,
    /// Captions are due this many hours after the recording completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption_sla_hours: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption_escalation: Option<Vec<Escalation>>,
    /// A lecture with no recording this long after class ends is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_grace_minutes: Option<u32>,
    /// The Canvas module the recordings are posted in (a template).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module_placement: Option<Placement>,
    /// Post only once captions are there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_waits_for_captions: Option<bool>,
    /// Post a placeholder item for a lecture that was not recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placeholder_for_missing: Option<bool>,
    /// Before class, create the Panopto scheduled recording if the room's recorder has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_missing_recording: Option<bool>,
    /// When an audit finds a person moved or renamed a filed recording: put it back (`true`)
    /// or only record the drift (`false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair_drift: Option<bool>,
}

/// Fields a folder template may name.
pub const FOLDER_FIELDS: &[(&str, bool)] = &[
    ("term", false),
    ("year", false),
    ("department", false),
    ("course_code", false),
    ("course_name", false),
    ("section", false),
    ("section_name", false),
];

/// Fields a session name template may name: the folder's, and the lecture's.
pub const SESSION_FIELDS: &[(&str, bool)] = &[
    ("term", false),
    ("year", false),
    ("department", false),
    ("course_code", false),
    ("course_name", false),
    ("section", false),
    ("section_name", false),
    ("date", true),
    ("start_time", false),
    ("room", false),
    ("instructor", false),
];

/// Fields a module name may name.
pub const MODULE_FIELDS: &[(&str, bool)] = &[("term", false), ("course_code", false)];

/// The rule a course follows, every field set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rules {
    pub folder_template: String,
    pub session_name_template: String,
    pub viewers: Viewers,
    pub caption_sla_hours: u32,
    pub caption_escalation: Vec<Escalation>,
    pub missing_grace_minutes: u32,
    pub module_name: String,
    pub module_placement: Placement,
    pub post_waits_for_captions: bool,
    pub placeholder_for_missing: bool,
    pub schedule_missing_recording: bool,
    pub repair_drift: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            folder_template: "{term}/{course_code}/{section}".into(),
            session_name_template: "{course_code} {section} — {date:%a %d %b}".into(),
            viewers: Viewers::SectionRoster,
            caption_sla_hours: 48,
            caption_escalation: vec![
                Escalation {
                    after_hours: 48,
                    action: EscalationAction::Warn,
                },
                Escalation {
                    after_hours: 72,
                    action: EscalationAction::Page,
                },
            ],
            missing_grace_minutes: 15,
            module_name: "Lecture recordings".into(),
            module_placement: Placement::Top,
            post_waits_for_captions: false,
            placeholder_for_missing: true,
            schedule_missing_recording: false,
            repair_drift: true,
        }
    }
}

impl RuleSet {
    /// Refuses what cannot be applied, naming the key (and the template field).
    pub fn validate(&self) -> Result<(), String> {
        let templates = [
            ("folder_template", &self.folder_template, FOLDER_FIELDS),
            (
                "session_name_template",
                &self.session_name_template,
                SESSION_FIELDS,
            ),
            ("module_name", &self.module_name, MODULE_FIELDS),
        ];
        for (key, value, fields) in templates {
            if let Some(t) = value {
                if t.trim().is_empty() {
                    return Err(format!("{key}: must not be empty"));
                }
                if t.chars().count() > 255 {
                    return Err(format!("{key}: longer than 255 characters"));
                }
                template::check(t, fields).map_err(|e| format!("{key}: {e}"))?;
            }
        }
        if let Some(t) = &self.folder_template
            && t.split('/').any(|level| level.trim().is_empty())
        {
            return Err(
                "folder_template: a folder level is empty (a leading, trailing or double /)".into(),
            );
        }
        if let Some(h) = self.caption_sla_hours
            && !(1..=720).contains(&h)
        {
            return Err(format!("caption_sla_hours: {h} is not 1…720"));
        }
        if let Some(m) = self.missing_grace_minutes
            && m > 240
        {
            return Err(format!("missing_grace_minutes: {m} is more than 240"));
        }
        if let Some(tiers) = &self.caption_escalation {
            let hours: Vec<u32> = tiers.iter().map(|t| t.after_hours).collect();
            if hours.contains(&0) || hours.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!(
                    "caption_escalation: after_hours must be positive and increasing ({hours:?})"
                ));
            }
        }
        Ok(())
    }

    /// Reads a rule set from TOML, refusing unknown keys by name.
    pub fn from_toml(table: toml::Table) -> Result<RuleSet, String> {
        let set: RuleSet = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| e.message().to_owned())?;
        set.validate()?;
        Ok(set)
    }

    pub fn to_toml(&self) -> toml::Table {
        toml::Value::try_from(self)
            .ok()
            .and_then(|v| v.as_table().cloned())
            .unwrap_or_default()
    }

    /// This set with `changes` (`key` → TOML value; an empty text unsets the key) applied.
    pub fn with_changes(&self, changes: &[(String, String)]) -> Result<RuleSet, String> {
        let mut table = self.to_toml();
        for (key, value) in changes {
            if value.is_empty() {
                table.remove(key);
                continue;
            }
            // A TOML value (`24`, `true`, `"text"`, `[{...}]`), or else the text itself.
            let parsed = format!("v = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(value.clone()));
            table.insert(key.clone(), parsed);
        }
        RuleSet::from_toml(table)
    }
}

/// The effective rule and, per field, the scope that set it (`default` for the built-in).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Effective {
    pub rules: Rules,
    pub origin: BTreeMap<String, String>,
}

/// The built-in defaults overlaid with `sets` in order (root, department, course).
pub fn effective(sets: &[(Scope, &RuleSet)]) -> Effective {
    let mut rules = Rules::default();
    let mut origin: BTreeMap<String, String> = BTreeMap::new();
    macro_rules! overlay {
        ($scope:expr, $set:expr, $($field:ident),*) => {
            $(if let Some(v) = &$set.$field {
                rules.$field = v.clone();
                origin.insert(stringify!($field).to_owned(), $scope.key());
            })*
        };
    }
    for (scope, set) in sets {
        overlay!(
            scope,
            set,
            folder_template,
            session_name_template,
            viewers,
            caption_sla_hours,
            caption_escalation,
            missing_grace_minutes,
            module_name,
            module_placement,
            post_waits_for_captions,
            placeholder_for_missing,
            schedule_missing_recording,
            repair_drift
        );
    }
    for key in [
        "folder_template",
        "session_name_template",
        "viewers",
        "caption_sla_hours",
        "caption_escalation",
        "missing_grace_minutes",
        "module_name",
        "module_placement",
        "post_waits_for_captions",
        "placeholder_for_missing",
        "schedule_missing_recording",
        "repair_drift",
    ] {
        origin
            .entry(key.to_owned())
            .or_insert_with(|| "default".into());
    }
    Effective { rules, origin }
}

/// Every scope's current set, as one TOML document (`rules export`, `rules import`):
/// `[root]`, `[department.<id>]`, `[course.<id>]`.
pub fn to_document(sets: &[(Scope, RuleSet)]) -> String {
    let mut doc = toml::Table::new();
    for (scope, set) in sets {
        let table = toml::Value::Table(set.to_toml());
        match scope {
            Scope::Root => {
                doc.insert("root".into(), table);
            }
            Scope::Department(id) | Scope::Course(id) => {
                let group = if matches!(scope, Scope::Department(_)) {
                    "department"
                } else {
                    "course"
                };
                if let Some(t) = doc
                    .entry(group)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                {
                    t.insert(id.clone(), table);
                }
            }
        }
    }
    toml::to_string_pretty(&doc).unwrap_or_default()
}

/// Reads a document of [`to_document`]'s shape; every problem names its scope and key.
pub fn from_document(text: &str) -> Result<Vec<(Scope, RuleSet)>, String> {
    let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    let mut out = Vec::new();
    for (group, value) in doc {
        let table = value
            .as_table()
            .cloned()
            .ok_or_else(|| format!("[{group}] must be a table"))?;
        match group.as_str() {
            "root" => out.push((
                Scope::Root,
                RuleSet::from_toml(table).map_err(|e| format!("[root] {e}"))?,
            )),
            "department" | "course" => {
                for (id, set) in table {
                    let scope = if group == "department" {
                        Scope::Department(id.clone())
                    } else {
                        Scope::Course(id.clone())
                    };
                    let set = set
                        .as_table()
                        .cloned()
                        .ok_or_else(|| format!("[{group}.{id}] must be a table"))?;
                    out.push((
                        scope,
                        RuleSet::from_toml(set).map_err(|e| format!("[{group}.\"{id}\"] {e}"))?,
                    ));
                }
            }
            other => {
                return Err(format!(
                    "[{other}] is not a scope (root, department.ID, course.ID)"
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_course_overrides_its_department_which_overrides_the_root_and_each_field_says_where() {
        let root = RuleSet {
            caption_sla_hours: Some(24),
            ..RuleSet::default()
        };
        let dept = RuleSet {
            viewers: Some(Viewers::CourseRoster),
            caption_sla_hours: Some(12),
            ..RuleSet::default()
        };
        let course = RuleSet {
            missing_grace_minutes: Some(30),
            ..RuleSet::default()
        };
        let e = effective(&[
            (Scope::Root, &root),
            (Scope::Department("ENG".into()), &dept),
            (Scope::Course("C1".into()), &course),
        ]);
        assert_eq!(e.rules.caption_sla_hours, 12);
        assert_eq!(e.rules.viewers, Viewers::CourseRoster);
        assert_eq!(e.rules.missing_grace_minutes, 30);
        assert_eq!(e.origin["caption_sla_hours"], "department:ENG");
        assert_eq!(e.origin["missing_grace_minutes"], "course:C1");
        assert_eq!(e.origin["folder_template"], "default");
    }

    #[test]
    fn unknown_keys_and_template_fields_are_refused_by_name() {
        let base = RuleSet::default();
        let err = base
            .with_changes(&[("caption_sla_hour".into(), "24".into())])
            .unwrap_err();
        assert!(err.contains("caption_sla_hour"), "{err}");
        let err = base
            .with_changes(&[(
                "session_name_template".into(),
                "{course_code} {lecturer}".into(),
            )])
            .unwrap_err();
        assert!(
            err.contains("session_name_template") && err.contains("{lecturer}"),
            "{err}"
        );
        let err = base
            .with_changes(&[("viewers".into(), "everyone".into())])
            .unwrap_err();
        assert!(err.contains("everyone"), "{err}");
        let ok = base
            .with_changes(&[
                ("caption_sla_hours".into(), "24".into()),
                ("viewers".into(), "organization".into()),
            ])
            .unwrap();
        assert_eq!(ok.caption_sla_hours, Some(24));
        assert_eq!(ok.viewers, Some(Viewers::Organization));
        assert_eq!(
            ok.with_changes(&[("viewers".into(), String::new())])
                .unwrap()
                .viewers,
            None
        );
    }

    #[test]
    fn a_document_round_trips_and_names_the_scope_of_a_problem() {
        let sets = vec![
            (
                Scope::Root,
                RuleSet {
                    caption_sla_hours: Some(24),
                    ..RuleSet::default()
                },
            ),
            (
                Scope::Department("ENG".into()),
                RuleSet {
                    viewers: Some(Viewers::CourseRoster),
                    ..RuleSet::default()
                },
            ),
            (
                Scope::Course("2025FA-BIO-101".into()),
                RuleSet {
                    caption_escalation: Some(vec![Escalation {
                        after_hours: 6,
                        action: EscalationAction::Page,
                    }]),
                    ..RuleSet::default()
                },
            ),
        ];
        let doc = to_document(&sets);
        let mut back = from_document(&doc).unwrap();
        back.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(back, sets);
        let err =
            from_document("[department.ENG]\nfolder_template = \"{term}/{nope}\"\n").unwrap_err();
        assert!(
            err.contains("[department.\"ENG\"]") && err.contains("{nope}"),
            "{err}"
        );
    }
}
