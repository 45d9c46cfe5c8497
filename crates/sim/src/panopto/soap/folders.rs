//! `SessionManagement.svc`, folders and filing: folders found and tagged by external id
//! (`GetFoldersByExternalId`, `GetAllFoldersByExternalId`, `UpdateFolderExternalId[WithProvider]`),
//! read by id (`GetFoldersById`), made (`AddFolder`); sessions moved, renamed and tagged
//! (`MoveSessions`, `UpdateSessionName`, `UpdateSessionExternalId`). Unknown ids in a lookup
//! are left out of the answer, as Panopto does; a write naming an unknown object is a fault.

use panopto::soap::{SoapFolder, Value};

use super::{Context, Prepared, generic, refused};
use crate::panopto::people::PROVIDER;
use crate::panopto::world::{Folder, PanoptoWorld};

fn contract(w: &PanoptoWorld, f: &Folder, now: i64, host: &str) -> Vec<(&'static str, Value)> {
    SoapFolder {
        id: f.id.clone(),
        name: f.name.clone(),
        description: f.description.clone(),
        parent_folder: f.parent.clone(),
        child_folders: w
            .folders
            .values()
            .filter(|c| !c.deleted && c.parent.as_deref() == Some(f.id.as_str()))
            .map(|c| c.id.clone())
            .collect(),
        sessions: w
            .sessions
            .values()
            .filter(|x| x.folder_id == f.id && w.live_session(&x.id, now).is_some())
            .map(|x| x.id.clone())
            .collect(),
        is_public: f.access_level == panopto::AccessLevel::Public,
        external_id: f.external_id.clone(),
    }
    .members(host)
}

fn folders(w: &PanoptoWorld, found: Vec<&Folder>, now: i64, host: &str) -> Option<Value> {
    Some(Value::List {
        ns: SoapFolder::NS,
        item: "Folder",
        items: found
            .into_iter()
            .map(|f| contract(w, f, now, host))
            .collect(),
    })
}

pub fn prepare(op: &str, text: &str, ctx: &Context) -> Option<Prepared> {
    let now = ctx.now;
    let host = ctx.host.clone();
    Some(match op {
        "GetFoldersByExternalId" | "GetAllFoldersByExternalId" => {
            let all = op == "GetAllFoldersByExternalId";
            generic(text, move |w, _, call| {
                let p = &w.panopto;
                let wanted = call.list("folderExternalIds");
                let providers = call.list("providerNames");
                let found: Vec<&Folder> = p
                    .folders
                    .values()
                    .filter(|f| !f.deleted)
                    .filter(|f| f.external_id.as_ref().is_some_and(|e| wanted.contains(e)))
                    .filter(|f| {
                        !all || providers.is_empty()
                            || f.external_provider
                                .as_ref()
                                .is_some_and(|p| providers.contains(p))
                    })
                    .collect();
                Ok(folders(p, found, now, &host))
            })
        }
        "GetFoldersById" => generic(text, move |w, _, call| {
            let p = &w.panopto;
            let found = call
                .list("folderIds")
                .iter()
                .filter_map(|id| p.live_folder(id))
                .collect();
            Ok(folders(p, found, now, &host))
        }),
        "UpdateFolderExternalId" | "UpdateFolderExternalIdWithProvider" => {
            let with_provider = op == "UpdateFolderExternalIdWithProvider";
            generic(text, move |w, _, call| {
                let id = call.text("folderId")?;
                let external = call.text("externalId")?;
                let provider = if with_provider {
                    // Panopto's contract spells it with a capital S, unlike its neighbours.
                    call.text("SiteMembershipProviderName")?
                } else {
                    PROVIDER.to_owned()
                };
                let p = &mut w.panopto;
                if p.live_folder(&id).is_none() {
                    return Err(refused(format!("folder {id} does not exist")));
                }
                let taken = p.folders.values().any(|f| {
                    !f.deleted
                        && f.id != id
                        && f.external_id.as_deref() == Some(external.as_str())
                        && f.external_provider.as_deref() == Some(provider.as_str())
                });
                if taken {
                    return Err(refused(format!(
                        "another folder already has external id {external}"
                    )));
                }
                w.writes.record("folder.external_id", id.clone());
                let p = &mut w.panopto;
                if let Some(f) = p.folders.get_mut(&id) {
                    f.external_id = Some(external);
                    f.external_provider = Some(provider);
                }
                Ok(None)
            })
        }
        "AddFolder" => generic(text, move |w, _, call| {
            let name = call.text("name")?;
            if name.trim().is_empty() {
                return Err(refused("a folder needs a name"));
            }
            let parent = call.optional("parentFolder")?;
            let public = call.optional("isPublic")?.as_deref() == Some("true");
            let p = &mut w.panopto;
            if let Some(parent) = &parent
                && p.live_folder(parent).is_none()
            {
                return Err(refused(format!("parent folder {parent} does not exist")));
            }
            let target = format!("{}/{name}", parent.as_deref().unwrap_or(""));
            let id = p.create_folder(name, None, parent);
            w.writes.record("folder.create", target);
            let p = &mut w.panopto;
            if let Some(f) = p.folders.get_mut(&id)
                && public
            {
                f.access_inherited = false;
                f.access_level = panopto::AccessLevel::Public;
            }
            let f = p
                .live_folder(&id)
                .ok_or_else(|| refused("folder vanished"))?;
            Ok(Some(Value::Contract {
                ns: SoapFolder::NS,
                members: contract(p, f, now, &host),
            }))
        }),
        "MoveSessions" => generic(text, move |w, _, call| {
            let folder = call.text("folderId")?;
            let ids = call.list("sessionIds");
            let p = &mut w.panopto;
            if p.live_folder(&folder).is_none() {
                return Err(refused(format!("folder {folder} does not exist")));
            }
            if let Some(missing) = ids.iter().find(|id| p.live_session(id, now).is_none()) {
                return Err(refused(format!("session {missing} does not exist")));
            }
            for id in &ids {
                p.move_session(id, folder.clone(), now);
            }
            for id in ids {
                w.writes.record("session.move", id);
            }
            Ok(None)
        }),
        "UpdateSessionName" | "UpdateSessionExternalId" => {
            let naming = op == "UpdateSessionName";
            generic(text, move |w, _, call| {
                let id = call.text("sessionId")?;
                let value = call.text(if naming { "name" } else { "externalId" })?;
                let p = &mut w.panopto;
                if p.live_session(&id, now).is_none() {
                    return Err(refused(format!("session {id} does not exist")));
                }
                if naming && value.trim().is_empty() {
                    return Err(refused("a session needs a name"));
                }
                w.writes.record(
                    if naming {
                        "session.rename"
                    } else {
                        "session.external_id"
                    },
                    id.clone(),
                );
                let p = &mut w.panopto;
                if let Some(x) = p.sessions.get_mut(&id) {
                    if naming {
                        x.name = value;
                    } else {
                        x.external_id = Some(value);
                    }
                    x.updated_ms = now;
                }
                Ok(None)
            })
        }
        _ => return None,
    })
}
