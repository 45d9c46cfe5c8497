//! The workflow's external writes, one function per command. Each first reads what is there
//! and writes only what differs, so a command run again after a crash (or by a replay) does
//! nothing twice: a folder is found by its external id (or, if a crash fell between creating
//! and tagging it, by its name among the course folder's children), a session is moved or
//! renamed only if it is elsewhere or named otherwise, a group gains or loses only the members
//! that differ, a module item is looked for before one is made.

use std::collections::BTreeSet;
use std::sync::Arc;

use canvas::client::{CanvasClient, ModuleItem};
use futures::TryStreamExt as _;
use panopto::client::{Grantee, PanoptoClient, Priority};
use panopto::{AccessLevel, AccessSettings};

use super::roster::{self, Member, Role};
use super::steps::{Command, Item, Outcome};
use crate::clock::Clock;
use crate::store::Store;

/// The provider coursewire's section groups are made under: not the LMS's, so a student's
/// LTI launch (which resets their groups of the LMS's provider) leaves them alone.
pub const GROUP_PROVIDER: &str = "coursewire";

/// Why a command did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth trying again later: Panopto or Canvas unavailable, throttled, the store busy.
    Transient(String),
    /// Will not succeed as things are (a refusal, a missing course folder); tried a few more
    /// times in case a person fixes it, then given up.
    Refused(String),
}

impl Failure {
    pub fn message(&self) -> &str {
        match self {
            Failure::Transient(m) | Failure::Refused(m) => m,
        }
    }
}

impl From<panopto::client::ClientError> for Failure {
    fn from(e: panopto::client::ClientError) -> Self {
        if e.is_transient() {
            Failure::Transient(format!("Panopto: {e}"))
        } else {
            Failure::Refused(format!("Panopto: {e}"))
        }
    }
}

impl From<canvas::client::ClientError> for Failure {
    fn from(e: canvas::client::ClientError) -> Self {
        if e.is_transient() {
            Failure::Transient(format!("Canvas: {e}"))
        } else {
            Failure::Refused(format!("Canvas: {e}"))
        }
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        Failure::Transient(format!("store: {e}"))
    }
}

/// What the commands act on.
#[derive(Debug, Clone)]
pub struct Targets {
    pub store: Arc<Store>,
    pub panopto: PanoptoClient,
    pub canvas: CanvasClient,
    pub clock: Arc<dyn Clock>,
    /// The LMS integration's provider in Panopto: user keys are `<provider>\<login>` and
    /// course folders carry `<provider>:<Canvas course id>`.
    pub provider: String,
    /// Panopto's base URL, for the viewer links posted in Canvas.
    pub panopto_url: String,
}

impl Targets {
    /// Performs `command` and says what it achieved.
    pub async fn perform(&self, command: &Command) -> Result<Outcome, Failure> {
        match command {
            Command::File {
                session_id,
                course_id,
                folder_path,
                folder_external_id,
                name,
            } => {
                let folder = self
                    .section_folder(course_id, folder_path, folder_external_id)
                    .await?;
                self.file_session(session_id, &folder, name).await?;
                Ok(Outcome::Filed { folder_id: folder })
            }
            Command::Grant {
                section_id,
                folder_id,
            } => {
                self.grant(section_id, folder_id).await?;
                Ok(Outcome::Granted {
                    section_id: section_id.clone(),
                })
            }
            Command::Post {
                session_id,
                course_id,
                module_name,
                module_at_top,
                title,
            } => {
                let item = self
                    .post(session_id, course_id, module_name, *module_at_top, title)
                    .await?;
                Ok(Outcome::Posted { item })
            }
            Command::Audit {
                session_id,
                folder_id,
                name,
                sections,
                item,
            } => {
                let drift = self
                    .audit(session_id, folder_id, name, sections, item)
                    .await?;
                Ok(Outcome::Audited { drift })
            }
            Command::SyncRoster { section_id } => {
                let members = roster::members(&self.store, section_id).await?;
                let ids = self.user_ids(&members).await?;
                self.sync_group(section_id, &ids).await?;
                Ok(Outcome::RosterSynced {
                    section_id: section_id.clone(),
                    members: ids.len(),
                })
            }
            Command::Withdraw { item, .. } => {
                self.canvas
                    .delete_module_item(
                        course_number(&item.course_id)?,
                        item.module_id,
                        item.item_id,
                    )
                    .await?;
                Ok(Outcome::Withdrawn)
            }
        }
    }

    async fn canvas_course(&self, sis_course_id: &str) -> Result<u64, Failure> {
        Ok(self.canvas.course_by_sis_id(sis_course_id).await?.id)
    }

    /// The course's Panopto folder, as the LMS integration made it.
    async fn course_folder(&self, sis_course_id: &str) -> Result<String, Failure> {
        let canvas_id = self.canvas_course(sis_course_id).await?;
        let external = format!("{}:{canvas_id}", self.provider);
        let found = self
            .panopto
            .folders_by_external_id(std::slice::from_ref(&external), Priority::Write)
            .await?;
        found.into_iter().next().map(|f| f.id).ok_or_else(|| {
            Failure::Refused(format!(
                "no Panopto folder for course {sis_course_id} (external id {external}): \
                 the LMS integration has not provisioned it"
            ))
        })
    }

    /// The section folder: found by external id, else under the course folder (one a crash
    /// left untagged is adopted by its name), else created there and tagged.
    async fn section_folder(
        &self,
        course_id: &str,
        path: &[String],
        external_id: &str,
    ) -> Result<String, Failure> {
        let p = &self.panopto;
        let tagged = p
            .folders_by_external_id(&[external_id.to_owned()], Priority::Write)
            .await?;
        if let Some(f) = tagged.into_iter().next() {
            return Ok(f.id);
        }
        let parent = self.course_folder(course_id).await?;
        let name = path
            .last()
            .cloned()
            .unwrap_or_else(|| external_id.to_owned());
        let course = p
            .folders_by_id(std::slice::from_ref(&parent), Priority::Write)
            .await?;
        let children = course
            .into_iter()
            .next()
            .map(|f| f.child_folders)
            .unwrap_or_default();
        let untagged = if children.is_empty() {
            None
        } else {
            p.folders_by_id(&children, Priority::Write)
                .await?
                .into_iter()
                .find(|f| f.name == name && f.external_id.is_none())
        };
        let folder = match untagged {
            Some(f) => f.id,
            None => p.add_folder(&name, Some(&parent)).await?.id,
        };
        p.update_folder_external_id(&folder, external_id).await?;
        Ok(folder)
    }

    /// Moves and renames the session, each only if it differs.
    async fn file_session(
        &self,
        session_id: &str,
        folder: &str,
        name: &str,
    ) -> Result<(), Failure> {
        let p = &self.panopto;
        let session = p
            .sessions_by_id(&[session_id.to_owned()], Priority::Write)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Failure::Refused(format!("session {session_id} is gone")))?;
        if session.folder_id.as_deref() != Some(folder) {
            p.move_sessions(folder, &[session_id.to_owned()]).await?;
        }
        if session.name != name {
            p.update_session_name(session_id, name).await?;
        }
        Ok(())
    }

    /// Panopto user GUIDs of `members`, looked up once per user and remembered.
    async fn user_ids(&self, members: &[Member]) -> Result<Vec<String>, Failure> {
        let keys: Vec<String> = members
            .iter()
            .map(|m| format!("{}\\{}", self.provider, m.login))
            .collect();
        let known: std::collections::BTreeMap<String, String> = self
            .store
            .panopto_user_ids(&keys)
            .await?
            .into_iter()
            .collect();
        let mut ids = Vec::with_capacity(keys.len());
        for key in &keys {
            if let Some(id) = known.get(key) {
                ids.push(id.clone());
                continue;
            }
            match self.panopto.user_by_key(key, Priority::Write).await? {
                Some(u) => {
                    self.store
                        .remember_panopto_user(key, &u.user_id, self.clock.now_ms())
                        .await?;
                    ids.push(u.user_id);
                }
                // Not provisioned in Panopto yet (never signed in through the LMS): granted
                // on the next roster change or replay once they are.
                None => tracing::info!(user_key = %key, "no Panopto user yet"),
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    fn group_external_id(section_id: &str) -> String {
        format!("coursewire:section:{section_id}")
    }

    /// The section's external group with exactly `members`, created if missing; its id.
    async fn sync_group(&self, section_id: &str, members: &[String]) -> Result<String, Failure> {
        let p = &self.panopto;
        let external = Self::group_external_id(section_id);
        let name = format!("coursewire section {section_id}");
        let existing = p
            .groups_by_name(&name, Priority::Write)
            .await?
            .into_iter()
            .find(|g| g.external_id.as_deref() == Some(external.as_str()));
        let Some(group) = existing else {
            return Ok(p
                .create_external_group(&name, GROUP_PROVIDER, &external, members)
                .await?
                .id);
        };
        let now: BTreeSet<String> = p
            .users_in_group(&group.id, Priority::Write)
            .await?
            .into_iter()
            .collect();
        let wanted: BTreeSet<String> = members.iter().cloned().collect();
        let add: Vec<String> = wanted.difference(&now).cloned().collect();
        let remove: Vec<String> = now.difference(&wanted).cloned().collect();
        if !add.is_empty() {
            p.change_external_group_members(GROUP_PROVIDER, &external, &add, true)
                .await?;
        }
        if !remove.is_empty() {
            p.change_external_group_members(GROUP_PROVIDER, &external, &remove, false)
                .await?;
        }
        Ok(group.id)
    }

    /// The section's group (its current roster) as Viewer on the folder, its teachers as
    /// Creator on the course folder above it.
    async fn grant(&self, section_id: &str, folder_id: &str) -> Result<(), Failure> {
        let p = &self.panopto;
        let members = roster::members(&self.store, section_id).await?;
        let ids = self.user_ids(&members).await?;
        let group = self.sync_group(section_id, &ids).await?;
        // The section folder is the section's alone: it stops inheriting the course folder's
        // viewers (everyone in the course), as Panopto requires before a group grant.
        let settings = p.folder_access_settings(folder_id, Priority::Write).await?;
        if settings.as_ref().is_none_or(|s| s.is_inherited) {
            p.set_folder_access_settings(
                folder_id,
                &AccessSettings {
                    is_inherited: false,
                    level: AccessLevel::Restricted,
                },
            )
            .await?;
        }
        let access = p.folder_access(folder_id, Priority::Write).await?;
        if !access.groups_with_viewer_access.contains(&group) {
            p.folder_access_change(folder_id, &Grantee::Group(group), "Viewer", true)
                .await?;
        }
        let teachers: Vec<Member> = members
            .into_iter()
            .filter(|m| m.role == Role::Teacher)
            .collect();
        if teachers.is_empty() {
            return Ok(());
        }
        let folder = p
            .folders_by_id(&[folder_id.to_owned()], Priority::Write)
            .await?
            .into_iter()
            .next();
        if let Some(course_folder) = folder.and_then(|f| f.parent_folder) {
            let teacher_ids = self.user_ids(&teachers).await?;
            let access = p.folder_access(&course_folder, Priority::Write).await?;
            let missing: Vec<String> = teacher_ids
                .into_iter()
                .filter(|t| !access.users_with_creator_access.contains(t))
                .collect();
            if !missing.is_empty() {
                p.folder_access_change(&course_folder, &Grantee::Users(missing), "Creator", true)
                    .await?;
            }
        }
        Ok(())
    }

    fn viewer_url(&self, session_id: &str) -> String {
        format!(
            "{}/Panopto/Pages/Viewer.aspx?id={session_id}",
            self.panopto_url.trim_end_matches('/')
        )
    }

    /// The module (published, at the top when asked) and exactly one published item linking
    /// the session.
    async fn post(
        &self,
        session_id: &str,
        course_id: &str,
        module_name: &str,
        at_top: bool,
        title: &str,
    ) -> Result<Item, Failure> {
        let c = &self.canvas;
        let course = self.canvas_course(course_id).await?;
        let module = c.create_module(course, module_name).await?;
        if module.published != Some(true) || (at_top && module.position != Some(1)) {
            c.publish_module(course, module.id, at_top.then_some(1))
                .await?;
        }
        let url = self.viewer_url(session_id);
        let item: ModuleItem = c
            .create_external_url_item(course, module.id, title, &url)
            .await?;
        if item.published != Some(true) {
            c.publish_module_item(course, module.id, item.id).await?;
        }
        Ok(Item {
            course_id: course.to_string(),
            module_id: module.id,
            item_id: item.id,
        })
    }

    /// Every step checked again; what differs, in words.
    async fn audit(
        &self,
        session_id: &str,
        folder_id: &str,
        name: &str,
        sections: &[String],
        item: &Item,
    ) -> Result<Vec<String>, Failure> {
        let p = &self.panopto;
        let mut drift = Vec::new();
        let Some(session) = p
            .sessions_by_id(&[session_id.to_owned()], Priority::Write)
            .await?
            .into_iter()
            .next()
        else {
            return Ok(vec!["session deleted".into()]);
        };
        if session.folder_id.as_deref() != Some(folder_id) {
            drift.push(format!(
                "moved to folder {} ({})",
                session.folder_id.as_deref().unwrap_or("none"),
                session.folder_name.as_deref().unwrap_or("")
            ));
        }
        if session.name != name {
            drift.push(format!("renamed to {:?}", session.name));
        }
        let access = p.folder_access(folder_id, Priority::Write).await?;
        for section in sections {
            let members = roster::members(&self.store, section).await?;
            let wanted: BTreeSet<String> = self.user_ids(&members).await?.into_iter().collect();
            let name = format!("coursewire section {section}");
            let external = Self::group_external_id(section);
            let group = p
                .groups_by_name(&name, Priority::Write)
                .await?
                .into_iter()
                .find(|g| g.external_id.as_deref() == Some(external.as_str()));
            match group {
                None => drift.push(format!("group of {section} missing")),
                Some(g) => {
                    if !access.groups_with_viewer_access.contains(&g.id) {
                        drift.push(format!("group of {section} not Viewer on the folder"));
                    }
                    let now: BTreeSet<String> = p
                        .users_in_group(&g.id, Priority::Write)
                        .await?
                        .into_iter()
                        .collect();
                    if now != wanted {
                        drift.push(format!(
                            "group of {section}: {} members, roster {}",
                            now.len(),
                            wanted.len()
                        ));
                    }
                }
            }
        }
        let course = course_number(&item.course_id)?;
        let url = self.viewer_url(session_id);
        let links: Vec<ModuleItem> = self
            .canvas
            .module_items(course, item.module_id, canvas::client::Priority::Write)
            .try_filter(|i| std::future::ready(i.external_url.as_deref() == Some(url.as_str())))
            .try_collect()
            .await?;
        match links.len() {
            1 if links[0].published == Some(true) => {}
            1 => drift.push("module item unpublished".into()),
            0 => drift.push("module item missing".into()),
            n => drift.push(format!("{n} module items link it")),
        }
        Ok(drift)
    }
}

fn course_number(id: &str) -> Result<u64, Failure> {
    id.parse()
        .map_err(|_| Failure::Refused(format!("Canvas course id {id:?} is not a number")))
}
