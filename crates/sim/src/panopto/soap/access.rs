//! `AccessManagement.svc`: grants to groups and users on folders (by `AccessRole`: Creator,
//! Viewer, ViewerWithLink, Publisher) and viewer grants on sessions, their revocation, a
//! session's `InheritViewerAccess` and public flags, and the access details Panopto reports.
//! As with REST `POST …/permissions`, a folder takes grants only while it does not inherit
//! its access (a7). Who can then view a session is `viewers.rs`'s answer.

use panopto::PrincipalType;
use panopto::soap::{FolderAccessDetails, SessionAccessDetails, Value};

use super::{Context, Prepared, generic, refused};
use crate::panopto::people;
use crate::panopto::world::{PanoptoWorld, Permission};
use crate::world::World;

const ROLES: [&str; 4] = ["Creator", "Viewer", "ViewerWithLink", "Publisher"];

fn role(call: &panopto::soap::Call) -> Result<String, panopto::soap::SoapError> {
    let role = call.text("role")?;
    if ROLES.contains(&role.as_str()) {
        Ok(role)
    } else {
        Err(refused(format!("{role} is not an AccessRole")))
    }
}

fn principals(
    w: &World,
    call: &panopto::soap::Call,
) -> Result<Vec<(PrincipalType, String)>, panopto::soap::SoapError> {
    if let Some(group) = call.optional("groupId")? {
        if !w.panopto.groups.contains_key(&group) {
            return Err(refused(format!("group {group} does not exist")));
        }
        return Ok(vec![(PrincipalType::Group, group)]);
    }
    let users = people::users_by_guid(&w.uni);
    call.list("userIds")
        .into_iter()
        .map(|id| {
            if users.contains_key(&id) {
                Ok((PrincipalType::User, id))
            } else {
                Err(refused(format!("user {id} does not exist")))
            }
        })
        .collect()
}

fn grant(list: &mut Vec<Permission>, principal_type: PrincipalType, id: String, role: &str) {
    if !list.iter().any(|p| p.principal_id == id && p.role == role) {
        list.push(Permission {
            principal_type,
            principal_id: id,
            role: role.to_owned(),
        });
    }
}

fn folder_details(w: &PanoptoWorld, folder_id: &str) -> FolderAccessDetails {
    let grants = w.folder_grants(folder_id);
    let pick = |kind: PrincipalType, role: &str| -> Vec<String> {
        let mut ids: Vec<String> = grants
            .iter()
            .filter(|p| p.principal_type == kind && p.role == role)
            .map(|p| p.principal_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    FolderAccessDetails {
        folder_id: folder_id.to_owned(),
        groups_with_creator_access: pick(PrincipalType::Group, "Creator"),
        groups_with_publisher_access: pick(PrincipalType::Group, "Publisher"),
        groups_with_viewer_access: pick(PrincipalType::Group, "Viewer"),
        is_public: w.folder_level(folder_id) == panopto::AccessLevel::Public,
        users_with_creator_access: pick(PrincipalType::User, "Creator"),
        users_with_publisher_access: pick(PrincipalType::User, "Publisher"),
        users_with_viewer_access: pick(PrincipalType::User, "Viewer"),
    }
}

pub fn prepare(op: &str, text: &str, ctx: &Context) -> Option<Prepared> {
    let now = ctx.now;
    Some(match op {
        "GrantGroupAccessToFolder"
        | "GrantUsersAccessToFolder"
        | "RevokeGroupAccessFromFolder"
        | "RevokeUsersAccessFromFolder" => {
            let granting = op.starts_with("Grant");
            generic(text, move |w, _, call| {
                let folder = call.text("folderId")?;
                let role = role(call)?;
                let who = principals(w, call)?;
                let f = w
                    .panopto
                    .live_folder(&folder)
                    .ok_or_else(|| refused(format!("folder {folder} does not exist")))?;
                if granting && f.access_inherited {
                    return Err(refused(
                        "the folder inherits its access from its parent: grants cannot be added",
                    ));
                }
                let op = if granting {
                    "folder.grant"
                } else {
                    "folder.revoke"
                };
                for (_, id) in &who {
                    w.writes.record(op, format!("{folder} {role} {id}"));
                }
                if let Some(f) = w.panopto.folders.get_mut(&folder) {
                    for (kind, id) in who {
                        if granting {
                            grant(&mut f.permissions, kind, id, &role);
                        } else {
                            f.permissions
                                .retain(|p| !(p.principal_id == id && p.role == role));
                        }
                    }
                }
                Ok(None)
            })
        }
        "GrantGroupViewerAccessToSession"
        | "GrantUsersViewerAccessToSession"
        | "RevokeGroupViewerAccessFromSession"
        | "RevokeUsersViewerAccessFromSession" => {
            let granting = op.starts_with("Grant");
            generic(text, move |w, _, call| {
                let session = call.text("sessionId")?;
                let who = principals(w, call)?;
                if w.panopto.live_session(&session, now).is_none() {
                    return Err(refused(format!("session {session} does not exist")));
                }
                let op = if granting {
                    "session.grant"
                } else {
                    "session.revoke"
                };
                for (_, id) in &who {
                    w.writes.record(op, format!("{session} Viewer {id}"));
                }
                if let Some(x) = w.panopto.sessions.get_mut(&session) {
                    for (kind, id) in who {
                        if granting {
                            grant(&mut x.permissions, kind, id, "Viewer");
                        } else {
                            x.permissions.retain(|p| p.principal_id != id);
                        }
                    }
                    x.updated_ms = now;
                }
                Ok(None)
            })
        }
        "UpdateSessionInheritViewerAccess" | "UpdateSessionIsPublic" => {
            let inherit = op == "UpdateSessionInheritViewerAccess";
            generic(text, move |w, _, call| {
                let session = call.text("sessionId")?;
                let on = call.bool(if inherit {
                    "inheritViewerAccess"
                } else {
                    "isPublic"
                })?;
                if w.panopto.live_session(&session, now).is_none() {
                    return Err(refused(format!("session {session} does not exist")));
                }
                w.writes.record("session.access_settings", session.clone());
                if let Some(x) = w.panopto.sessions.get_mut(&session) {
                    if inherit {
                        x.access_inherited = on;
                    } else {
                        x.access_level = if on {
                            panopto::AccessLevel::Public
                        } else {
                            panopto::AccessLevel::Restricted
                        };
                    }
                    x.updated_ms = now;
                }
                Ok(None)
            })
        }
        "UpdateFolderIsPublic" => generic(text, move |w, _, call| {
            let folder = call.text("folderId")?;
            let on = call.bool("isPublic")?;
            w.writes.record("folder.access_settings", folder.clone());
            let f = w
                .panopto
                .folders
                .get_mut(&folder)
                .filter(|f| !f.deleted)
                .ok_or_else(|| refused(format!("folder {folder} does not exist")))?;
            f.access_inherited = false;
            f.access_level = if on {
                panopto::AccessLevel::Public
            } else {
                panopto::AccessLevel::Restricted
            };
            Ok(None)
        }),
        "GetFolderAccessDetails" => generic(text, move |w, _, call| {
            let folder = call.text("folderId")?;
            if w.panopto.live_folder(&folder).is_none() {
                return Err(refused(format!("folder {folder} does not exist")));
            }
            Ok(Some(Value::Contract {
                ns: FolderAccessDetails::NS,
                members: folder_details(&w.panopto, &folder).members(),
            }))
        }),
        "GetSessionAccessDetails" => generic(text, move |w, _, call| {
            let session = call.text("sessionId")?;
            let p = &w.panopto;
            let x = p
                .live_session(&session, now)
                .ok_or_else(|| refused(format!("session {session} does not exist")))?;
            let direct = |kind: PrincipalType| -> Vec<String> {
                x.permissions
                    .iter()
                    .filter(|q| q.principal_type == kind)
                    .map(|q| q.principal_id.clone())
                    .collect()
            };
            let details = SessionAccessDetails {
                folder_access: folder_details(p, &x.folder_id),
                groups_with_direct_viewer_access: direct(PrincipalType::Group),
                inherit_viewer_access: x.access_inherited,
                is_public: x.access_level == panopto::AccessLevel::Public,
                session_id: x.id.clone(),
                users_with_direct_viewer_access: direct(PrincipalType::User),
            };
            Ok(Some(Value::Contract {
                ns: SessionAccessDetails::NS,
                members: details.members(),
            }))
        }),
        _ => return None,
    })
}
