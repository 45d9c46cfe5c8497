//! `UserManagement.svc`: users by key or id, groups by id or name and their members, and the
//! external groups an integration keeps in step with the LMS: `CreateExternalGroup`,
//! `AddMembersToExternalGroup`, `RemoveMembersFromExternalGroup` and `SyncExternalUser`
//! (the calling user's complete set of external groups of its provider: added to those
//! named, removed from the others, as Panopto's Moodle block relies on).

use std::collections::BTreeSet;

use panopto::soap::{SoapGroup, SoapGroupType, SoapUser, Value};

use super::{Context, Prepared, generic, refused};
use crate::panopto::people::{self, Group, GroupType, PanoptoUser};
use crate::panopto::world::{EMPTY_GUID, PanoptoWorld};
use crate::university::University;

fn group_contract(g: &Group) -> Vec<(&'static str, Value)> {
    SoapGroup {
        id: g.id.clone(),
        name: g.name.clone(),
        external_id: g.external_id.clone(),
        group_type: match g.kind {
            GroupType::Internal => SoapGroupType::Internal,
            GroupType::External => SoapGroupType::External,
        },
        membership_provider_name: g.provider.clone(),
    }
    .members()
}

fn user_contract(
    w: &PanoptoWorld,
    u: Option<&PanoptoUser>,
    host: &str,
) -> Vec<(&'static str, Value)> {
    let Some(u) = u else {
        // Panopto answers an unknown key with an empty user, not a fault.
        return SoapUser {
            user_id: EMPTY_GUID.to_owned(),
            user_key: String::new(),
            first_name: None,
            last_name: None,
            email: None,
            group_memberships: Vec::new(),
            system_role: "None".to_owned(),
        }
        .members(host);
    };
    SoapUser {
        user_id: u.id.clone(),
        user_key: u.key.clone(),
        first_name: Some(u.first_name.clone()),
        last_name: Some(u.last_name.clone()),
        email: Some(u.email.clone()),
        group_memberships: w
            .groups
            .values()
            .filter(|g| g.members.contains(&u.id))
            .map(|g| g.id.clone())
            .collect(),
        system_role: "None".to_owned(),
    }
    .members(host)
}

/// The member GUIDs named, each one a user Panopto knows.
fn known_members(
    u: &University,
    ids: Vec<String>,
) -> Result<BTreeSet<String>, panopto::soap::SoapError> {
    let users = people::users_by_guid(u);
    ids.into_iter()
        .map(|id| {
            if users.contains_key(&id) {
                Ok(id)
            } else {
                Err(refused(format!("user {id} does not exist")))
            }
        })
        .collect()
}

fn group<'a>(w: &'a PanoptoWorld, id: &str) -> Result<&'a Group, panopto::soap::SoapError> {
    w.groups
        .get(id)
        .ok_or_else(|| refused(format!("group {id} does not exist")))
}

fn external_group<'a>(
    w: &'a mut PanoptoWorld,
    provider: &str,
    external_id: &str,
) -> Result<&'a mut Group, panopto::soap::SoapError> {
    w.groups
        .values_mut()
        .find(|g| {
            g.kind == GroupType::External
                && g.provider.as_deref() == Some(provider)
                && g.external_id.as_deref() == Some(external_id)
        })
        .ok_or_else(|| refused(format!("no external group {provider}:{external_id}")))
}

pub fn prepare(op: &str, text: &str, ctx: &Context) -> Option<Prepared> {
    let host = ctx.host.clone();
    Some(match op {
        "CreateExternalGroup" => generic(text, move |w, _, call| {
            let name = call.text("groupName")?;
            let provider = call.text("externalProvider")?;
            let external_id = call.text("externalId")?;
            let members = known_members(&w.uni, call.list("memberIds"))?;
            let p = &mut w.panopto;
            if external_group(p, &provider, &external_id).is_ok() {
                return Err(refused(format!(
                    "an external group {provider}:{external_id} already exists"
                )));
            }
            let target = format!("{provider}:{external_id}");
            let added: Vec<String> = members
                .iter()
                .map(|m| format!("{external_id} {m}"))
                .collect();
            let id = p.new_guid();
            let group = Group {
                id: id.clone(),
                name,
                external_id: Some(external_id),
                course_id: None,
                kind: GroupType::External,
                provider: Some(provider),
                members,
            };
            let answer = group_contract(&group);
            p.groups.insert(id, group);
            w.writes.record("group.create", target);
            for m in added {
                w.writes.record("group.add_member", m);
            }
            Ok(Some(Value::Contract {
                ns: SoapGroup::NS,
                members: answer,
            }))
        }),
        "AddMembersToExternalGroup" | "RemoveMembersFromExternalGroup" => {
            let adding = op == "AddMembersToExternalGroup";
            generic(text, move |w, _, call| {
                let provider = call.text("externalProviderName")?;
                let external_id = call.text("externalGroupId")?;
                let members = known_members(&w.uni, call.list("memberIds"))?;
                external_group(&mut w.panopto, &provider, &external_id)?;
                let op = if adding {
                    "group.add_member"
                } else {
                    "group.remove_member"
                };
                for m in &members {
                    w.writes.record(op, format!("{external_id} {m}"));
                }
                let g = external_group(&mut w.panopto, &provider, &external_id)?;
                if adding {
                    g.members.extend(members);
                } else {
                    g.members.retain(|m| !members.contains(m));
                }
                Ok(None)
            })
        }
        "SyncExternalUser" => generic(text, move |w, caller, call| {
            let user = people::user_by_key(&w.uni, &caller.user_key).ok_or_else(|| {
                refused("SyncExternalUser needs a caller signed in as an identity-provider user")
            })?;
            let provider = caller
                .user_key
                .split_once('\\')
                .map(|(p, _)| p.to_owned())
                .unwrap_or_default();
            let wanted: BTreeSet<String> = call.list("externalGroupIds").into_iter().collect();
            for g in w.panopto.groups.values_mut().filter(|g| {
                g.kind == GroupType::External && g.provider.as_deref() == Some(provider.as_str())
            }) {
                if g.external_id.as_ref().is_some_and(|e| wanted.contains(e)) {
                    g.members.insert(user.id.clone());
                } else {
                    g.members.remove(&user.id);
                }
            }
            Ok(None)
        }),
        "GetGroup" => generic(text, move |w, _, call| {
            let g = group(&w.panopto, &call.text("groupId")?)?;
            Ok(Some(Value::Contract {
                ns: SoapGroup::NS,
                members: group_contract(g),
            }))
        }),
        "GetGroupsByName" => generic(text, move |w, _, call| {
            let name = call.text("groupName")?;
            Ok(Some(Value::List {
                ns: SoapGroup::NS,
                item: "Group",
                items: w
                    .panopto
                    .groups
                    .values()
                    .filter(|g| g.name.eq_ignore_ascii_case(&name))
                    .map(group_contract)
                    .collect(),
            }))
        }),
        "GetUsersInGroup" => generic(text, move |w, _, call| {
            let g = group(&w.panopto, &call.text("groupId")?)?;
            Ok(Some(Value::Guids(g.members.iter().cloned().collect())))
        }),
        "DeleteGroup" => generic(text, move |w, _, call| {
            let id = call.text("groupId")?;
            if w.panopto.groups.remove(&id).is_none() {
                return Err(refused(format!("group {id} does not exist")));
            }
            for f in w.panopto.folders.values_mut() {
                f.permissions.retain(|p| p.principal_id != id);
            }
            for x in w.panopto.sessions.values_mut() {
                x.permissions.retain(|p| p.principal_id != id);
            }
            Ok(None)
        }),
        "GetUserByKey" => generic(text, move |w, _, call| {
            let key = call.text("userKey")?;
            let user = people::user_by_key(&w.uni, &key);
            Ok(Some(Value::Contract {
                ns: SoapUser::NS,
                members: user_contract(&w.panopto, user.as_ref(), &host),
            }))
        }),
        "GetUsers" => generic(text, move |w, _, call| {
            let users = people::users_by_guid(&w.uni);
            Ok(Some(Value::List {
                ns: SoapUser::NS,
                item: "User",
                items: call
                    .list("userIds")
                    .iter()
                    .filter_map(|id| users.get(id))
                    .map(|u| user_contract(&w.panopto, Some(u), &host))
                    .collect(),
            }))
        }),
        _ => return None,
    })
}
