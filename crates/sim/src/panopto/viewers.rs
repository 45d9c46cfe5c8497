//! Who can view a session, as Panopto evaluates it from folders, groups and grants:
//!
//! * a session's own grants (users, groups) always count;
//! * while the session inherits viewer access (SOAP `InheritViewerAccess`, on by default),
//!   every grant on its folder counts, and a folder that inherits its access adds its
//!   parent's, up to the first folder that does not inherit; once it stops inheriting, only
//!   the folders' creators and publishers keep seeing it;
//! * a group grants its members; a user grants the user;
//! * the access level: a folder that inherits takes its parent's; a session's level combines
//!   with its folder's, the less restrictive one winning (a7: "if the session's Level is
//!   more restrictive than the inherited one, the inherited one wins"); `Organization` and
//!   `Public` (listed or not) open the session to every signed-in user or to anyone.

use std::collections::BTreeSet;

use panopto::AccessLevel;
use serde::Serialize;

use super::world::{PanoptoWorld, Permission};

/// The answer to "who can view session S".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Viewers {
    pub session_id: String,
    /// The effective access level.
    pub level: AccessLevel,
    /// `restricted` (only `users`), `organization` (every signed-in user) or `public`.
    pub audience: &'static str,
    /// Users granted viewing by name, through a group or directly (GUIDs, sorted).
    pub users: BTreeSet<String>,
}

fn openness(level: AccessLevel) -> u8 {
    match level {
        AccessLevel::Restricted => 0,
        AccessLevel::OrganizationUnlisted | AccessLevel::Organization => 1,
        AccessLevel::PublicUnlisted | AccessLevel::Public => 2,
    }
}

impl PanoptoWorld {
    /// The folder's effective level: its own, or (while it inherits) its parent's.
    pub fn folder_level(&self, folder_id: &str) -> AccessLevel {
        let mut id = folder_id.to_owned();
        for _ in 0..64 {
            let Some(f) = self.folders.get(&id) else {
                break;
            };
            match (&f.parent, f.access_inherited) {
                (Some(parent), true) => id = parent.clone(),
                _ => return f.access_level,
            }
        }
        AccessLevel::Restricted
    }

    /// The grants that reach a folder's sessions: its own and, while it inherits, its
    /// ancestors'.
    pub fn folder_grants(&self, folder_id: &str) -> Vec<&Permission> {
        let mut out = Vec::new();
        let mut id = Some(folder_id.to_owned());
        for _ in 0..64 {
            let Some(f) = id.as_ref().and_then(|i| self.folders.get(i)) else {
                break;
            };
            out.extend(f.permissions.iter());
            id = if f.access_inherited {
                f.parent.clone()
            } else {
                None
            };
        }
        out
    }

    fn users_of(&self, p: &Permission) -> Vec<String> {
        match p.principal_type {
            panopto::PrincipalType::User => vec![p.principal_id.clone()],
            panopto::PrincipalType::Group => self
                .groups
                .get(&p.principal_id)
                .map(|g| g.members.iter().cloned().collect())
                .unwrap_or_default(),
        }
    }

    /// Who can view `session_id`, or `None` if there is no such session.
    pub fn viewers(&self, session_id: &str) -> Option<Viewers> {
        let x = self.sessions.get(session_id)?;
        let mut users = BTreeSet::new();
        for p in &x.permissions {
            users.extend(self.users_of(p));
        }
        for p in self.folder_grants(&x.folder_id) {
            if x.access_inherited || p.role != "Viewer" {
                users.extend(self.users_of(p));
            }
        }
        let folder = self.folder_level(&x.folder_id);
        let level = if x.access_inherited && openness(folder) > openness(x.access_level) {
            folder
        } else {
            x.access_level
        };
        Some(Viewers {
            session_id: session_id.to_owned(),
            level,
            audience: match openness(level) {
                0 => "restricted",
                1 => "organization",
                _ => "public",
            },
            users,
        })
    }
}
