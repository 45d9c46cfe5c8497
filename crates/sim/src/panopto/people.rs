//! Panopto's users and groups. Every Canvas user (but parents and deleted ones) is known to
//! Panopto through the university's identity provider `canvas-sim`, with the user key
//! `canvas-sim\<login>` and a GUID derived from the seed, as an LMS integration provisions
//! them. Groups are the two per course the provisioning made (internal, no members: LMS
//! launches would fill them, and the simulator makes none) and the external groups a client
//! creates through SOAP, with their members.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::world::named_guid;
use crate::university::{University, User, UserKind};

/// The identity provider of the university's users, as Panopto names it.
pub const PROVIDER: &str = "canvas-sim";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum GroupType {
    Internal,
    External,
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub external_id: Option<String>,
    pub course_id: Option<u64>,
    pub kind: GroupType,
    /// The external provider (`MembershipProviderName`) of an external group.
    pub provider: Option<String>,
    /// Member user GUIDs.
    pub members: BTreeSet<String>,
}

/// A user as Panopto sees one.
#[derive(Debug, Clone, PartialEq)]
pub struct PanoptoUser {
    pub id: String,
    pub key: String,
    pub canvas_id: u64,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
}

pub fn user_guid(seed: u64, canvas_id: u64) -> String {
    named_guid(seed, &format!("user:{canvas_id}"))
}

pub fn user_key(login: &str) -> String {
    format!("{PROVIDER}\\{login}")
}

fn known(u: &User) -> bool {
    u.kind != UserKind::Parent && u.workflow_state != "deleted"
}

fn as_panopto(seed: u64, u: &User) -> PanoptoUser {
    PanoptoUser {
        id: user_guid(seed, u.id),
        key: user_key(&u.login_id),
        canvas_id: u.id,
        first_name: u.first_name.clone(),
        last_name: u.last_name.clone(),
        email: u.email.clone(),
    }
}

/// Every user Panopto knows, in Canvas id order.
pub fn users(u: &University) -> impl Iterator<Item = PanoptoUser> + '_ {
    u.users
        .iter()
        .filter(|x| known(x))
        .map(|x| as_panopto(u.seed, x))
}

/// Users by GUID (for resolving many ids at once).
pub fn users_by_guid(u: &University) -> BTreeMap<String, PanoptoUser> {
    users(u).map(|x| (x.id.clone(), x)).collect()
}

/// The user with this key (`canvas-sim\login`, case-insensitive as Panopto's keys are).
pub fn user_by_key(u: &University, key: &str) -> Option<PanoptoUser> {
    let (provider, login) = key.split_once('\\')?;
    if !provider.eq_ignore_ascii_case(PROVIDER) {
        return None;
    }
    let login = login.to_lowercase();
    u.users
        .iter()
        .find(|x| known(x) && x.login_id.to_lowercase() == login)
        .map(|x| as_panopto(u.seed, x))
}
