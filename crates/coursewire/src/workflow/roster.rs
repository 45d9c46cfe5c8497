//! Who may view a section's recordings, as the catalog says now: the section's students, TAs
//! and teachers enrolled and not yet gone: active, invited or pending (a student the registrar
//! enrolled who has not yet accepted Canvas's invitation is on the roster: access before first
//! use is the point); inactive, completed and deleted enrollments are not. Canvas is the truth when the catalog knows the section there
//! (its Live Events keep enrollments current: a drop or a late add arrives within seconds);
//! before the first Canvas sync, the SIS export's enrollments stand in.

use serde_json::Value;

use crate::catalog::{EntityId, EntityKind, EntityRef, StoredEntity};
use crate::store::{Store, StoreResult};

/// A member's role in the section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Student,
    Ta,
    Teacher,
}

/// A member, by login (their Panopto user key is `<provider>\<login>`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    pub login: String,
    pub role: Role,
}

fn text<'a>(e: &'a StoredEntity, k: &str) -> Option<&'a str> {
    e.state.get(k).and_then(Value::as_str)
}

fn canvas_role(kind: &str) -> Option<Role> {
    match kind {
        "StudentEnrollment" => Some(Role::Student),
        "TaEnrollment" => Some(Role::Ta),
        "TeacherEnrollment" => Some(Role::Teacher),
        _ => None,
    }
}

fn sis_role(role: &str) -> Option<Role> {
    match role {
        "student" => Some(Role::Student),
        "ta" => Some(Role::Ta),
        "teacher" => Some(Role::Teacher),
        _ => None,
    }
}

/// The section's members now (sorted, one per login: the highest role wins).
pub async fn members(store: &Store, sis_section_id: &str) -> StoreResult<Vec<Member>> {
    let canvas_section = store
        .catalog_rows(EntityKind::Section)
        .await?
        .into_iter()
        .find(|s| !s.deleted && text(s, "sis_source_id") == Some(sis_section_id));
    let mut out: Vec<Member> = Vec::new();
    match canvas_section.and_then(|s| s.entity.id.as_number()) {
        Some(section) => {
            for e in store.section_enrollments(section).await? {
                let (Some(role), Some("active" | "invited" | "creation_pending")) = (
                    text(&e, "type").and_then(canvas_role),
                    text(&e, "workflow_state"),
                ) else {
                    continue;
                };
                let Some(user) = e.state.get("user_id").and_then(|v| match v {
                    Value::String(s) => EntityId::parse(s).ok(),
                    Value::Number(n) => EntityId::parse(&n.to_string()).ok(),
                    _ => None,
                }) else {
                    continue;
                };
                let user = store
                    .catalog_entity(&EntityRef::new(EntityKind::User, user))
                    .await?;
                if let Some(login) = user.as_ref().and_then(|u| text(u, "login")) {
                    out.push(Member {
                        login: login.to_owned(),
                        role,
                    });
                }
            }
        }
        None => {
            for e in store
                .catalog_under(EntityKind::SisEnrollment, sis_section_id)
                .await?
            {
                let (Some(role), Some("active")) =
                    (text(&e, "role").and_then(sis_role), text(&e, "status"))
                else {
                    continue;
                };
                let Some(user) = text(&e, "user_id").and_then(|u| EntityId::parse(u).ok()) else {
                    continue;
                };
                let user = store
                    .catalog_entity(&EntityRef::new(EntityKind::SisUser, user))
                    .await?;
                if let Some(login) = user.as_ref().and_then(|u| text(u, "login_id")) {
                    out.push(Member {
                        login: login.to_owned(),
                        role,
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| a.login.cmp(&b.login).then(b.role.cmp(&a.role)));
    out.dedup_by(|a, b| a.login == b.login);
    Ok(out)
}
