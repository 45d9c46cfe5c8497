//! Comparing one entity as the catalog holds it with the same entity as Canvas shows it. Shared
//! by the reconciler (which repairs what differs) and `coursewire verify` (which reports it).
//!
//! Both sides are compared in the catalog's normalized shape: the Canvas side is the state a
//! synthesized event decodes to (see `synthesize`), so a difference found here is exactly one
//! the processor can repair. Only the fields a Canvas read can vouch for are compared
//! ([`compared_fields`]): a field a read does not return (a course's `uuid`) says nothing.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::catalog::{DELETED_STATE, EntityId, EntityKind, EntityRef, StoredEntity};

/// How the catalog and Canvas disagree about one entity.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "divergence", rename_all = "snake_case")]
pub enum Difference {
    /// Canvas has it (not deleted); the catalog has no live entity.
    MissingInCatalog,
    /// The catalog has a live entity Canvas no longer shows (or shows as deleted).
    MissingInCanvas,
    /// Both have it; this field differs.
    Field {
        field: String,
        catalog: Value,
        canvas: Value,
    },
}

/// One divergence, by entity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Divergence {
    pub kind: EntityKind,
    pub id: EntityId,
    #[serde(flatten)]
    pub difference: Difference,
}

/// The normalized fields a Canvas course read returns for each kind. Denormalized copies (an
/// enrollment's `user_name`) and bookkeeping (`updated_at`) are left out: Canvas itself lets
/// them go stale without an event.
pub fn compared_fields(kind: EntityKind) -> &'static [&'static str] {
    match kind {
        EntityKind::Course => &["name", "account_id", "workflow_state"],
        EntityKind::Section => &["name", "course_id", "sis_source_id", "workflow_state"],
        EntityKind::Enrollment => &[
            "course_id",
            "section_id",
            "user_id",
            "type",
            "workflow_state",
            "limit_privileges_to_course_section",
            "associated_user_id",
        ],
        EntityKind::User => &["name", "short_name", "login", "sis_id"],
        EntityKind::Module => &["course_id", "name", "position", "workflow_state"],
        EntityKind::ModuleItem => &["course_id", "module_id", "position", "workflow_state"],
        EntityKind::Assignment => &[
            "course_id",
            "title",
            "points_possible",
            "due_at",
            "unlock_at",
            "lock_at",
            "submission_types",
            "workflow_state",
        ],
        // Not read per course: accounts and terms are not reconciled, and Panopto's entities
        // are the poller's, not Canvas's.
        _ => &[],
    }
}

fn is_deleted(state: &Map<String, Value>) -> bool {
    state.get("workflow_state").and_then(Value::as_str) == Some(DELETED_STATE)
}

/// A field's value for comparison: absent and `null` are the same, and Live Events and the
/// API name an unpublished course differently (`claimed`/`created` vs `unpublished`).
fn comparable(kind: EntityKind, field: &str, state: &Map<String, Value>) -> Value {
    let value = state.get(field).cloned().unwrap_or(Value::Null);
    match (kind, field, value.as_str()) {
        (EntityKind::Course, "workflow_state", Some("claimed" | "created")) => {
            Value::String("unpublished".to_owned())
        }
        _ => value,
    }
}

/// Compares the catalog's row (tombstones included) with Canvas's state of the same entity
/// (`None`: Canvas does not show it). Deleted on one side and absent on the other agree.
pub fn compare(
    entity: &EntityRef,
    catalog: Option<&StoredEntity>,
    canvas: Option<&Map<String, Value>>,
) -> Vec<Divergence> {
    let catalog = catalog.filter(|c| !c.deleted && !is_deleted(&c.state));
    let canvas = canvas.filter(|state| !is_deleted(state));
    let divergence = |difference| Divergence {
        kind: entity.kind,
        id: entity.id.clone(),
        difference,
    };
    match (catalog, canvas) {
        (None, None) => Vec::new(),
        (Some(_), None) => vec![divergence(Difference::MissingInCanvas)],
        (None, Some(_)) => vec![divergence(Difference::MissingInCatalog)],
        (Some(stored), Some(canvas)) => compared_fields(entity.kind)
            .iter()
            .filter_map(|field| {
                let ours = comparable(entity.kind, field, &stored.state);
                let theirs = comparable(entity.kind, field, canvas);
                (ours != theirs).then(|| {
                    divergence(Difference::Field {
                        field: (*field).to_owned(),
                        catalog: ours,
                        canvas: theirs,
                    })
                })
            })
            .collect(),
    }
}
