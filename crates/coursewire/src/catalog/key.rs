//! What names a catalog entity: its kind, its id within the kind, and the subject both make.
//!
//! Ids are text (the store keeps them in a TEXT column): Canvas's local ids are numbers, but
//! Panopto's are GUIDs and rooms are codes such as `KNE-120`. A number is always kept in its
//! canonical decimal form, so `48` from one source and `"48"` from another are one key. Ids
//! sort by length, then text: numbers sort numerically that way, and so does the store's
//! `ORDER BY LENGTH(id), id` (for ASCII ids; a database's collation may order text of equal
//! length otherwise).

use std::cmp::Ordering;
use std::fmt;

use serde::{Serialize, Serializer};

/// The kinds of entity the catalog keeps for the Canvas side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Account,
    /// Enrollment terms: Canvas emits no Live Events for them; they come from SIS imports and
    /// REST backfill, through the same merge rule.
    Term,
    Course,
    Section,
    User,
    Enrollment,
    Module,
    ModuleItem,
    Assignment,
    /// A Panopto session (`recording/<guid>`), as the poller observed it.
    Recording,
    /// A Panopto remote recorder (`recorder/<guid>`); its external id names its room.
    Recorder,
    /// A Panopto folder (`folder/<guid>`) that holds observed sessions, with its external id
    /// (which course or section it belongs to).
    Folder,
    /// A teaching room (`room/KNE-120`), from the timetable.
    Room,
    /// The timetable's record of which recorder is in which room (`room_recorder/<guid>`).
    RoomRecorder,
    /// A section's meeting pattern (`meeting/<id>`): room, weekdays, local times, dates.
    Meeting,
    /// A class that does not take place (`cancellation/<meeting id>:<date>`).
    Cancellation,
    /// SIS rows, keyed by SIS ids (`sis_course/BIO101-F25`): what the registrar says, joined
    /// with Canvas's entities by their `sis_*` fields.
    SisAccount,
    SisTerm,
    SisCourse,
    SisSection,
    /// A section cross-listed into another course (`sis_xlist/<section id>`).
    SisCrossListing,
    SisUser,
    /// `sis_enrollment/<section>:<user>:<role>`.
    SisEnrollment,
}

impl EntityKind {
    pub const ALL: [EntityKind; 23] = [
        Self::Account,
        Self::Term,
        Self::Course,
        Self::Section,
        Self::User,
        Self::Enrollment,
        Self::Module,
        Self::ModuleItem,
        Self::Assignment,
        Self::Recording,
        Self::Recorder,
        Self::Folder,
        Self::Room,
        Self::RoomRecorder,
        Self::Meeting,
        Self::Cancellation,
        Self::SisAccount,
        Self::SisTerm,
        Self::SisCourse,
        Self::SisSection,
        Self::SisCrossListing,
        Self::SisUser,
        Self::SisEnrollment,
    ];

    /// The kind as it appears in subjects and in the store (`module_item`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Term => "term",
            Self::Course => "course",
            Self::Section => "section",
            Self::User => "user",
            Self::Enrollment => "enrollment",
            Self::Module => "module",
            Self::ModuleItem => "module_item",
            Self::Assignment => "assignment",
            Self::Recording => "recording",
            Self::Recorder => "recorder",
            Self::Folder => "folder",
            Self::Room => "room",
            Self::RoomRecorder => "room_recorder",
            Self::Meeting => "meeting",
            Self::Cancellation => "cancellation",
            Self::SisAccount => "sis_account",
            Self::SisTerm => "sis_term",
            Self::SisCourse => "sis_course",
            Self::SisSection => "sis_section",
            Self::SisCrossListing => "sis_xlist",
            Self::SisUser => "sis_user",
            Self::SisEnrollment => "sis_enrollment",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The system whose entity this is: the middle of change-event types
    /// (`edu.<system>.<entity>.<change>`).
    pub fn system(self) -> &'static str {
        match self {
            Self::Account
            | Self::Term
            | Self::Course
            | Self::Section
            | Self::User
            | Self::Enrollment
            | Self::Module
            | Self::ModuleItem
            | Self::Assignment => "canvas",
            Self::Recording | Self::Recorder | Self::Folder => "panopto",
            Self::Room | Self::RoomRecorder | Self::Meeting | Self::Cancellation => "coursewire",
            Self::SisAccount
            | Self::SisTerm
            | Self::SisCourse
            | Self::SisSection
            | Self::SisCrossListing
            | Self::SisUser
            | Self::SisEnrollment => "sis",
        }
    }

    /// The entity name used in CloudEvents types: the upstream system's own (`course_section`,
    /// Panopto's `session`), matching the decoders' upstream types.
    pub fn type_name(self) -> &'static str {
        match self {
            Self::Term => "enrollment_term",
            Self::Section => "course_section",
            Self::Recording => "session",
            Self::SisAccount => "account",
            Self::SisTerm => "term",
            Self::SisCourse => "course",
            Self::SisSection => "section",
            Self::SisCrossListing => "xlist",
            Self::SisUser => "user",
            Self::SisEnrollment => "enrollment",
            other => other.as_str(),
        }
    }

    /// The catalog entity a Canvas event name describes in full, if any. Events that carry only
    /// part of an entity, or something else (submissions, grades, logins), are not catalog
    /// events.
    pub fn for_event(event_name: &str) -> Option<Self> {
        Some(match event_name {
            "account_created" | "account_updated" => Self::Account,
            "course_created" | "course_updated" => Self::Course,
            "course_section_created" | "course_section_updated" => Self::Section,
            "user_created" | "user_updated" => Self::User,
            "enrollment_created" | "enrollment_updated" => Self::Enrollment,
            "module_created" | "module_updated" => Self::Module,
            "module_item_created" | "module_item_updated" => Self::ModuleItem,
            "assignment_created" | "assignment_updated" => Self::Assignment,
            _ => return None,
        })
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entity's id within its kind: a Canvas number or a text key (Panopto GUID, room code).
///
/// Built only through [`EntityId::number`] and [`EntityId::parse`], so every value is a valid
/// subject segment: 1 to [`EntityId::MAX_LEN`] characters, none of them `/`, whitespace or
/// control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntityId(String);

/// Why a text is not an entity id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entity id {text:?} is invalid: {why}")]
pub struct InvalidId {
    pub text: String,
    pub why: &'static str,
}

impl EntityId {
    /// Longest id accepted (a GUID is 36; SIS ids and room codes are short).
    pub const MAX_LEN: usize = 128;

    pub fn number(id: i64) -> Self {
        Self(id.to_string())
    }

    /// An id from text: canonical numbers become [`EntityId::number`] (`"048"` stays text: it
    /// is not how a number is written, and room `048` is not entity 48).
    pub fn parse(text: &str) -> Result<Self, InvalidId> {
        let invalid = |why| InvalidId {
            text: text.chars().take(Self::MAX_LEN + 1).collect(),
            why,
        };
        if text.is_empty() {
            return Err(invalid("empty"));
        }
        if text.chars().count() > Self::MAX_LEN {
            return Err(invalid("longer than 128 characters"));
        }
        if text.contains('/') {
            return Err(invalid(
                "contains '/', which separates kind and id in a subject",
            ));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("contains whitespace or a control character"));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a number, when it is one (every Canvas id).
    pub fn as_number(&self) -> Option<i64> {
        // Only the canonical spelling: "+5" and "05" are text, so Eq and Ord agree.
        let n: i64 = self.0.parse().ok()?;
        (n.to_string() == self.0).then_some(n)
    }
}

impl From<i64> for EntityId {
    fn from(id: i64) -> Self {
        Self::number(id)
    }
}

impl Ord for EntityId {
    /// Shorter first, then by text: numeric order for Canvas's (non-negative) ids.
    fn cmp(&self, other: &Self) -> Ordering {
        let length = |id: &Self| id.0.chars().count();
        length(self)
            .cmp(&length(other))
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for EntityId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EntityId {
    /// A number as a JSON number (as Canvas ids always were), text as a string.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.as_number() {
            Some(n) => serializer.serialize_i64(n),
            None => serializer.serialize_str(&self.0),
        }
    }
}

/// A catalog entity's identity: kind and id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct EntityRef {
    pub kind: EntityKind,
    pub id: EntityId,
}

impl EntityRef {
    pub fn new(kind: EntityKind, id: impl Into<EntityId>) -> Self {
        Self {
            kind,
            id: id.into(),
        }
    }

    /// `<kind>/<id>`: the change-event subject and the processing lane.
    pub fn subject(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_their_text_are_one_key() {
        assert_eq!(EntityId::parse("48"), Ok(EntityId::number(48)));
        assert_eq!(EntityId::number(48).as_number(), Some(48));
        assert_eq!(EntityId::parse("048").expect("text").as_number(), None);
        assert_eq!(EntityId::parse("KNE-120").expect("text").as_number(), None);
        assert_eq!(
            serde_json::to_value(EntityRef::new(EntityKind::Course, 565)).expect("json"),
            serde_json::json!({"kind": "course", "id": 565})
        );
        assert_eq!(
            serde_json::to_value(EntityId::parse("KNE-120").expect("text")).expect("json"),
            serde_json::json!("KNE-120")
        );
    }

    #[test]
    fn text_ids_are_checked_and_numbers_sort_numerically() {
        for bad in ["", "a/b", "a b", "x\u{0}", &"x".repeat(129)] {
            assert!(EntityId::parse(bad).is_err(), "{bad:?}");
        }
        let guid = EntityId::parse("3f1e1a52-2d55-4c6e-9a3e-b1c2d3e4f5a6").expect("guid");
        let room = EntityId::parse("KNE-120").expect("room");
        let mut ids = vec![
            guid.clone(),
            EntityId::number(100),
            room.clone(),
            EntityId::number(9),
        ];
        ids.sort();
        assert_eq!(
            ids,
            vec![EntityId::number(9), EntityId::number(100), room, guid]
        );
    }

    #[test]
    fn kinds_round_trip_and_name_their_types() {
        for kind in EntityKind::ALL {
            assert_eq!(EntityKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EntityKind::Section.type_name(), "course_section");
        assert_eq!(
            EntityKind::for_event("course_section_updated"),
            Some(EntityKind::Section)
        );
        assert_eq!(EntityKind::for_event("grade_change"), None);
    }
}
