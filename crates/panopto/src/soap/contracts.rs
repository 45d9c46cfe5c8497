//! The data contracts of the folder, user and access services, each written and read in one
//! place: `to_value` gives the members in the order (and namespace) Panopto serialises them,
//! the captured responses in `shared/data/panopto/soap-captured/` being the reference;
//! `from_element` reads one back, tolerating members it does not know.

use serde::{Deserialize, Serialize};

use super::{V40, V46_SOAP, Value, items};
use crate::xml::Element;

fn text(el: &Element, name: &str) -> Option<String> {
    el.child(name)
        .filter(|c| !c.is_nil())
        .map(|c| c.text.trim().to_owned())
}

fn required(el: &Element, name: &'static str) -> Result<String, super::SoapError> {
    text(el, name).ok_or(super::SoapError::Value {
        field: name,
        value: "(missing)".to_owned(),
    })
}

fn flag(el: &Element, name: &str) -> bool {
    text(el, name).as_deref() == Some("true")
}

fn list(el: &Element, name: &str) -> Vec<String> {
    el.child(name).map_or_else(Vec::new, items)
}

/// `Folder` (`V46.Soap`): the members a client reads, the rest written as Panopto does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SoapFolder {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub parent_folder: Option<String>,
    pub child_folders: Vec<String>,
    pub sessions: Vec<String>,
    pub is_public: bool,
    pub external_id: Option<String>,
}

impl SoapFolder {
    pub const NS: &'static str = V46_SOAP;

    pub fn members(&self, host: &str) -> Vec<(&'static str, Value)> {
        let id = &self.id;
        let podcast = |kind: &str, scheme: &str| {
            Value::text(format!(
                "{scheme}://{host}/Panopto/Podcast/Podcast.ashx?courseid={id}&type={kind}"
            ))
        };
        vec![
            ("AllowPublicNotes", Value::Bool(false)),
            ("AllowSessionDownload", Value::Bool(false)),
            ("AudioPodcastITunesUrl", podcast("mp3", "itpc")),
            ("AudioRssUrl", podcast("mp3", "https")),
            ("ChildFolders", Value::Guids(self.child_folders.clone())),
            ("DeliveriesHaveSpecifiedOrder", Value::Bool(false)),
            ("Description", Value::opt(self.description.as_deref())),
            (
                "EmbedUploaderUrl",
                Value::text(format!(
                    "https://{host}/Panopto/Pages/Sessions/EmbeddedUpload.aspx?folderID={id}"
                )),
            ),
            (
                "EmbedUrl",
                Value::text(format!(
                    "https://{host}/Panopto/Pages/EmbeddedList.aspx?embedded=1&folderID={id}"
                )),
            ),
            ("EnablePodcast", Value::Bool(false)),
            ("Id", Value::text(id.clone())),
            ("IsPublic", Value::Bool(self.is_public)),
            (
                "ListUrl",
                Value::text(format!(
                    "https://{host}/Panopto/Pages/Sessions/List.aspx?folderID={id}"
                )),
            ),
            ("Name", Value::text(self.name.clone())),
            ("ParentFolder", Value::opt(self.parent_folder.as_deref())),
            ("Presenters", Value::Strings(Vec::new())),
            ("Sessions", Value::Guids(self.sessions.clone())),
            (
                "SettingsUrl",
                Value::text(format!(
                    "https://{host}/Panopto/Pages/Sessions/List.aspx?modalPage=FolderSettings&folderID={id}"
                )),
            ),
            ("VideoPodcastITunesUrl", podcast("mp4", "itpc")),
            ("VideoRssUrl", podcast("mp4", "https")),
            ("ExternalId", Value::opt(self.external_id.as_deref())),
        ]
    }

    pub fn from_element(el: &Element) -> Result<SoapFolder, super::SoapError> {
        Ok(SoapFolder {
            id: required(el, "Id")?,
            name: text(el, "Name").unwrap_or_default(),
            description: text(el, "Description"),
            parent_folder: text(el, "ParentFolder"),
            child_folders: list(el, "ChildFolders"),
            sessions: list(el, "Sessions"),
            is_public: flag(el, "IsPublic"),
            external_id: text(el, "ExternalId"),
        })
    }
}

/// `GroupType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SoapGroupType {
    ActiveDirectory,
    External,
    Internal,
}

/// `Group` (`V40`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoapGroup {
    pub id: String,
    pub name: String,
    pub external_id: Option<String>,
    pub group_type: SoapGroupType,
    pub membership_provider_name: Option<String>,
}

impl SoapGroup {
    pub const NS: &'static str = V40;

    pub fn members(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("ExternalId", Value::opt(self.external_id.as_deref())),
            ("GroupType", Value::text(format!("{:?}", self.group_type))),
            ("Id", Value::text(self.id.clone())),
            (
                "MembershipProviderName",
                Value::opt(self.membership_provider_name.as_deref()),
            ),
            ("Name", Value::text(self.name.clone())),
            ("SystemRole", Value::text("None")),
        ]
    }

    pub fn from_element(el: &Element) -> Result<SoapGroup, super::SoapError> {
        let group_type = match text(el, "GroupType").as_deref() {
            Some("External") => SoapGroupType::External,
            Some("ActiveDirectory") => SoapGroupType::ActiveDirectory,
            Some("Internal") | None => SoapGroupType::Internal,
            Some(other) => {
                return Err(super::SoapError::Value {
                    field: "GroupType",
                    value: other.to_owned(),
                });
            }
        };
        Ok(SoapGroup {
            id: required(el, "Id")?,
            name: text(el, "Name").unwrap_or_default(),
            external_id: text(el, "ExternalId"),
            group_type,
            membership_provider_name: text(el, "MembershipProviderName"),
        })
    }
}

/// `User` (`V40`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoapUser {
    pub user_id: String,
    pub user_key: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub group_memberships: Vec<String>,
    pub system_role: String,
}

impl SoapUser {
    pub const NS: &'static str = V40;

    pub fn members(&self, host: &str) -> Vec<(&'static str, Value)> {
        let key = self.user_key.replace('\\', "%5C%5C");
        vec![
            ("Email", Value::text(self.email.clone().unwrap_or_default())),
            ("EmailSessionNotifications", Value::Bool(false)),
            ("FirstName", Value::opt(self.first_name.as_deref())),
            (
                "GroupMemberships",
                Value::Guids(self.group_memberships.clone()),
            ),
            ("LastName", Value::opt(self.last_name.as_deref())),
            ("SystemRole", Value::text(self.system_role.clone())),
            ("UserBio", Value::text("")),
            ("UserId", Value::text(self.user_id.clone())),
            ("UserKey", Value::text(self.user_key.clone())),
            (
                "UserSettingsUrl",
                Value::text(format!(
                    "https://{host}/Panopto/Pages/Sessions/List.aspx#modalPage=%22UserInfo%22&modalHeader=%22{key}%22&modalParams=%22id%3D{key}%22"
                )),
            ),
        ]
    }

    pub fn from_element(el: &Element) -> Result<SoapUser, super::SoapError> {
        Ok(SoapUser {
            user_id: required(el, "UserId")?,
            user_key: text(el, "UserKey").unwrap_or_default(),
            first_name: text(el, "FirstName"),
            last_name: text(el, "LastName"),
            email: text(el, "Email").filter(|e| !e.is_empty()),
            group_memberships: list(el, "GroupMemberships"),
            system_role: text(el, "SystemRole").unwrap_or_else(|| "None".to_owned()),
        })
    }
}

/// `FolderAccessDetails` (`V40`): principals by role on a folder (inherited grants included).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FolderAccessDetails {
    pub folder_id: String,
    pub groups_with_creator_access: Vec<String>,
    pub groups_with_publisher_access: Vec<String>,
    pub groups_with_viewer_access: Vec<String>,
    pub is_public: bool,
    pub users_with_creator_access: Vec<String>,
    pub users_with_publisher_access: Vec<String>,
    pub users_with_viewer_access: Vec<String>,
}

impl FolderAccessDetails {
    pub const NS: &'static str = V40;

    pub fn members(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("FolderId", Value::text(self.folder_id.clone())),
            (
                "GroupsWithCreatorAccess",
                Value::Guids(self.groups_with_creator_access.clone()),
            ),
            (
                "GroupsWithPublisherAccess",
                Value::Guids(self.groups_with_publisher_access.clone()),
            ),
            (
                "GroupsWithViewerAccess",
                Value::Guids(self.groups_with_viewer_access.clone()),
            ),
            ("IsPublic", Value::Bool(self.is_public)),
            (
                "UsersWithCreatorAccess",
                Value::Guids(self.users_with_creator_access.clone()),
            ),
            (
                "UsersWithPublisherAccess",
                Value::Guids(self.users_with_publisher_access.clone()),
            ),
            (
                "UsersWithViewerAccess",
                Value::Guids(self.users_with_viewer_access.clone()),
            ),
        ]
    }

    pub fn from_element(el: &Element) -> Result<FolderAccessDetails, super::SoapError> {
        Ok(FolderAccessDetails {
            folder_id: required(el, "FolderId")?,
            groups_with_creator_access: list(el, "GroupsWithCreatorAccess"),
            groups_with_publisher_access: list(el, "GroupsWithPublisherAccess"),
            groups_with_viewer_access: list(el, "GroupsWithViewerAccess"),
            is_public: flag(el, "IsPublic"),
            users_with_creator_access: list(el, "UsersWithCreatorAccess"),
            users_with_publisher_access: list(el, "UsersWithPublisherAccess"),
            users_with_viewer_access: list(el, "UsersWithViewerAccess"),
        })
    }
}

/// `SessionAccessDetails` (`V40`): the session's folder access and its own viewers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionAccessDetails {
    pub folder_access: FolderAccessDetails,
    pub groups_with_direct_viewer_access: Vec<String>,
    pub inherit_viewer_access: bool,
    pub is_public: bool,
    pub session_id: String,
    pub users_with_direct_viewer_access: Vec<String>,
}

impl SessionAccessDetails {
    pub const NS: &'static str = V40;

    pub fn members(&self) -> Vec<(&'static str, Value)> {
        vec![
            (
                "FolderAccess",
                Value::Contract {
                    ns: V40,
                    members: self.folder_access.members(),
                },
            ),
            (
                "GroupsWithDirectViewerAccess",
                Value::Guids(self.groups_with_direct_viewer_access.clone()),
            ),
            (
                "InheritViewerAccess",
                Value::Bool(self.inherit_viewer_access),
            ),
            ("IsPublic", Value::Bool(self.is_public)),
            ("SessionId", Value::text(self.session_id.clone())),
            (
                "UsersWithDirectViewerAccess",
                Value::Guids(self.users_with_direct_viewer_access.clone()),
            ),
        ]
    }

    pub fn from_element(el: &Element) -> Result<SessionAccessDetails, super::SoapError> {
        let folder = el
            .child("FolderAccess")
            .ok_or(super::SoapError::Shape("no FolderAccess"))?;
        Ok(SessionAccessDetails {
            folder_access: FolderAccessDetails::from_element(folder)?,
            groups_with_direct_viewer_access: list(el, "GroupsWithDirectViewerAccess"),
            inherit_viewer_access: flag(el, "InheritViewerAccess"),
            is_public: flag(el, "IsPublic"),
            session_id: required(el, "SessionId")?,
            users_with_direct_viewer_access: list(el, "UsersWithDirectViewerAccess"),
        })
    }
}
