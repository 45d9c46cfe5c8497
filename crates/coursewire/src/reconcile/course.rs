//! One course: read it from Canvas, pair every entity with the catalog's row, compare, and
//! (when repairing) write the differences into the inbox as synthesized events.

use std::collections::{BTreeMap, BTreeSet};

use canvas::client::NestedCourse;
use serde_json::{Map, Value};

use super::compare::{Divergence, compare};
use super::synthesize::{self, ReadContext, SynthesizeError, Synthesized};
use crate::catalog::{EntityKind, EntityRef, StoredEntity};
use crate::store::Store;
use crate::store::{InsertOutcome, StoreResult};

/// What Canvas shows of one course: each entity's Live Event body, by entity.
#[derive(Debug, Default)]
pub struct CanvasCourse {
    pub course_id: u64,
    pub bodies: BTreeMap<EntityRef, Map<String, Value>>,
}

fn entity(kind: EntityKind, id: u64) -> Option<EntityRef> {
    i64::try_from(id).ok().map(|id| EntityRef::new(kind, id))
}

impl CanvasCourse {
    /// The course read as Live Event bodies; users come from the roster's user stubs.
    pub fn from_read(read: &NestedCourse) -> CanvasCourse {
        let course_id = read.course.id;
        let mut bodies = BTreeMap::new();
        let mut put = |kind, id, body| {
            if let Some(e) = entity(kind, id) {
                bodies.insert(e, body);
            }
        };
        put(
            EntityKind::Course,
            course_id,
            synthesize::course_body(&read.course),
        );
        for s in &read.sections {
            put(
                EntityKind::Section,
                s.id,
                synthesize::section_body(course_id, s),
            );
        }
        for e in &read.enrollments {
            put(
                EntityKind::Enrollment,
                e.id,
                synthesize::enrollment_body(course_id, e),
            );
            if let Some(user) = &e.user {
                put(EntityKind::User, user.id, synthesize::user_body(user));
            }
        }
        for a in &read.assignments {
            put(
                EntityKind::Assignment,
                a.id,
                synthesize::assignment_body(course_id, a),
            );
        }
        for m in &read.modules {
            put(
                EntityKind::Module,
                m.module.id,
                synthesize::module_body(course_id, &m.module),
            );
            for item in &m.items {
                put(
                    EntityKind::ModuleItem,
                    item.id,
                    synthesize::module_item_body(course_id, m.module.id, item),
                );
            }
        }
        CanvasCourse { course_id, bodies }
    }

    fn user_ids(&self) -> Vec<i64> {
        self.bodies
            .keys()
            .filter(|e| e.kind == EntityKind::User)
            .filter_map(|e| e.id.as_number())
            .collect()
    }
}

/// The catalog rows a course read is compared with: the course's own rows plus the users its
/// roster names.
pub async fn catalog_for(
    store: &Store,
    canvas: &CanvasCourse,
) -> StoreResult<BTreeMap<EntityRef, StoredEntity>> {
    let course_id = i64::try_from(canvas.course_id).unwrap_or(i64::MAX);
    let mut rows = store.catalog_of_course(course_id).await?;
    rows.extend(
        store
            .catalog_by_ids(EntityKind::User, &canvas.user_ids())
            .await?,
    );
    Ok(rows
        .into_iter()
        // Accounts and terms are not reconciled per course; users only through rosters.
        .filter(|r| !matches!(r.entity.kind, EntityKind::Account | EntityKind::Term))
        .map(|r| (r.entity.clone(), r))
        .collect())
}

/// The outcome of comparing one course.
#[derive(Debug, Default)]
pub struct Examined {
    pub compared: usize,
    pub divergences: Vec<Divergence>,
    /// One repair event per divergent entity.
    pub repairs: Vec<Synthesized>,
}

/// Pairs Canvas's entities with the catalog's and finds what differs. A user missing from a
/// roster is not missing from Canvas (users outlive enrollments): users are only added or
/// updated here.
pub fn examine(
    ctx: &ReadContext,
    canvas: &CanvasCourse,
    catalog: &BTreeMap<EntityRef, StoredEntity>,
    now_ms: i64,
) -> Result<Examined, SynthesizeError> {
    let mut out = Examined::default();
    let entities: BTreeSet<EntityRef> = canvas
        .bodies
        .keys()
        .chain(catalog.keys().filter(|e| e.kind != EntityKind::User))
        .cloned()
        .collect();
    for entity in entities {
        let stored = catalog.get(&entity);
        let body = match canvas.bodies.get(&entity) {
            Some(body) => {
                let mut body = body.clone();
                if let Some(stored) = stored {
                    synthesize::carry_over(entity.kind, &mut body, stored);
                }
                body
            }
            None => match stored {
                Some(stored) => synthesize::deletion_body(stored),
                None => continue,
            },
        };
        let event =
            synthesize::synthesize(ctx, &entity, Some(canvas.course_id), body, stored, now_ms)?;
        let canvas_state = canvas
            .bodies
            .contains_key(&entity)
            .then_some(&event.observation.state);
        let found = compare(&entity, stored, canvas_state);
        out.compared += 1;
        if !found.is_empty() {
            out.divergences.extend(found);
            out.repairs.push(event);
        }
    }
    Ok(out)
}

/// Writes the repairs in one batch: returns (new rows, rows already in the inbox).
pub async fn write(store: &Store, repairs: &[Synthesized]) -> StoreResult<(usize, usize)> {
    if repairs.is_empty() {
        return Ok((0, 0));
    }
    let entries: Vec<_> = repairs.iter().map(|r| r.entry.clone()).collect();
    let outcomes = store.insert_inbox_batch(&entries).await?;
    let written = outcomes
        .iter()
        .filter(|o| matches!(o, InsertOutcome::Inserted { .. }))
        .count();
    Ok((written, outcomes.len() - written))
}
