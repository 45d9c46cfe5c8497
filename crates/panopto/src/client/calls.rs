//! Typed calls: the REST v1 reads the poller needs (the search-index change feed, sessions,
//! folders) and the SOAP calls REST lacks (session states, recorders, folders by external id,
//! external groups and their members, access grants). Each names its priority; reads that
//! find nothing answer `None` or an empty list rather than an error. Encodings come from
//! [`crate::soap`] and [`crate::rest`], the same ones the simulator serves.

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::client::error::ClientError;
use crate::client::pace::Priority;
use crate::client::transport::{Body, PanoptoClient, Request, SoapAuth};
use crate::rest::{AccessSettings, Folder, SearchIndexContent, SearchIndexUpdates, Session};
use crate::soap::{
    self, AuthenticationInfo, FolderAccessDetails, ListSessionsRequest, Pagination,
    SessionAccessDetails, SoapError, SoapFolder, SoapGroup, SoapRemoteRecorder, SoapSession,
    SoapUser, Value,
};
use crate::xml::Element;

/// Who a folder grant is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    Group(String),
    /// User GUIDs.
    Users(Vec<String>),
}

/// Decodes one page of a SOAP list: its items and the total.
type DecodePage<T> = fn(&str) -> Result<(Vec<T>, u64), SoapError>;

const API: &str = "/Panopto/api/v1";
/// Ids per `GetSessionsById` call: one call per poll for a day's lectures.
pub const SESSION_IDS_PER_CALL: usize = 100;
/// Results per SOAP list page.
pub const SOAP_PAGE: u32 = 100;

/// The SOAP services and where they live.
#[derive(Debug, Clone, Copy)]
enum Service {
    Session,
    RemoteRecorder,
    User,
    Access,
}

impl Service {
    fn path(self) -> &'static str {
        match self {
            Service::Session => soap::SESSION_MANAGEMENT_PATH,
            Service::RemoteRecorder => soap::REMOTE_RECORDER_MANAGEMENT_PATH,
            Service::User => soap::USER_MANAGEMENT_PATH,
            Service::Access => soap::ACCESS_MANAGEMENT_PATH,
        }
    }

    fn contract(self) -> &'static str {
        match self {
            Service::Session => "ISessionManagement",
            Service::RemoteRecorder => "IRemoteRecorderManagement",
            Service::User => "IUserManagement",
            Service::Access => "IAccessManagement",
        }
    }
}

fn decode_error(what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::Decode {
        what: what.to_owned(),
        reason: e.to_string(),
    }
}

fn soap_error(op: &str, e: SoapError) -> ClientError {
    match e {
        SoapError::Fault { code, message } => ClientError::Fault {
            what: format!("SOAP {op}"),
            code,
            message,
        },
        other => decode_error(&format!("SOAP {op}"), other),
    }
}

impl PanoptoClient {
    async fn rest_get<T: DeserializeOwned>(&self, req: Request) -> Result<Option<T>, ClientError> {
        let what = req.what();
        match self.execute(&req).await {
            Ok(a) => serde_json::from_slice(&a.body)
                .map(Some)
                .map_err(|e| decode_error(&what, e)),
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `AuthenticationInfo` for the next SOAP call.
    async fn soap_auth(&self) -> Result<AuthenticationInfo, ClientError> {
        Ok(match &self.config().soap_auth {
            SoapAuth::Password { user_key, password } => AuthenticationInfo {
                user_key: Some(user_key.clone()),
                password: Some(password.expose().to_owned()),
                auth_code: None,
            },
            SoapAuth::AuthCode {
                user_key,
                application_key,
            } => AuthenticationInfo {
                user_key: Some(user_key.clone()),
                password: None,
                auth_code: Some(soap::auth_code(
                    user_key,
                    self.config().host(),
                    application_key.expose(),
                )),
            },
            SoapAuth::AccessToken { user_key } => AuthenticationInfo {
                user_key: Some(user_key.clone()),
                password: Some(self.tokens().access().await?.secret.expose().to_owned()),
                auth_code: None,
            },
        })
    }

    /// Posts a SOAP envelope made by `encode` (given the authentication) and returns the
    /// response text.
    async fn soap_text(
        &self,
        service: Service,
        op: &str,
        priority: Priority,
        read: bool,
        encode: impl FnOnce(&AuthenticationInfo) -> String,
    ) -> Result<String, ClientError> {
        let auth = self.soap_auth().await?;
        let req = Request {
            method: Method::POST,
            path: service.path().to_owned(),
            query: Vec::new(),
            body: Body::Soap {
                action: format!("{}{}/{op}", soap::TEMPURI, service.contract()),
                envelope: encode(&auth),
            },
            priority,
            idempotent: read,
        };
        let answer = self.execute(&req).await?;
        String::from_utf8(answer.body).map_err(|e| decode_error(&format!("SOAP {op}"), e))
    }

    /// A generic SOAP call: the result element, if the operation returns one.
    async fn soap_call(
        &self,
        service: Service,
        op: &str,
        priority: Priority,
        read: bool,
        params: &[(&str, Value)],
    ) -> Result<Option<Element>, ClientError> {
        let text = self
            .soap_text(service, op, priority, read, |auth| {
                soap::encode_call(op, auth, params)
            })
            .await?;
        soap::decode_result(&text, op).map_err(|e| soap_error(op, e))
    }

    /// A SOAP read whose one result is a contract decoded with `from`.
    async fn soap_contract<T>(
        &self,
        service: Service,
        op: &str,
        priority: Priority,
        params: &[(&str, Value)],
        from: fn(&Element) -> Result<T, SoapError>,
    ) -> Result<T, ClientError> {
        let el = self
            .soap_call(service, op, priority, true, params)
            .await?
            .ok_or_else(|| decode_error(op, "no result in the answer"))?;
        from(&el).map_err(|e| soap_error(op, e))
    }

    /// A SOAP write that returns nothing; `idempotent` when sending it twice leaves the same
    /// state (a grant, adding the same members).
    async fn soap_write(
        &self,
        service: Service,
        op: &str,
        idempotent: bool,
        params: &[(&str, Value)],
    ) -> Result<(), ClientError> {
        self.soap_call(service, op, Priority::Write, idempotent, params)
            .await
            .map(|_| ())
    }

    /// Items of an `ArrayOf<item>` result decoded with `from`.
    fn contracts<T>(
        op: &str,
        result: Option<Element>,
        item: &str,
        from: fn(&Element) -> Result<T, SoapError>,
    ) -> Result<Vec<T>, ClientError> {
        let Some(list) = result else {
            return Ok(Vec::new());
        };
        list.children
            .iter()
            .filter(|c| c.local_name() == item && !c.is_nil())
            .map(|c| from(c).map_err(|e| soap_error(op, e)))
            .collect()
    }

    // ---- REST ----------------------------------------------------------------------------

    /// One page of the search-index change feed: videos changed at or after `from_date`
    /// (ISO-8601 UTC), or after the position `next_token` names.
    pub async fn search_index_updates(
        &self,
        from_date: &str,
        next_token: Option<&str>,
        priority: Priority,
    ) -> Result<SearchIndexUpdates, ClientError> {
        let mut req = Request::get(format!("{API}/searchIndexSync/updates"), priority)
            .query("fromDate", from_date);
        if let Some(t) = next_token.filter(|t| !t.is_empty()) {
            req = req.query("nextToken", t);
        }
        let what = req.what();
        self.rest_get(req)
            .await?
            .ok_or_else(|| decode_error(&what, "the change feed answered 404"))
    }

    /// What the search index holds for a video (`Deleted`, transcriptions, principals).
    pub async fn search_index_content(
        &self,
        id: &str,
        priority: Priority,
    ) -> Result<Option<SearchIndexContent>, ClientError> {
        self.rest_get(
            Request::get(format!("{API}/searchIndexSync/content"), priority).query("id", id),
        )
        .await
    }

    /// A session by id; `None` if it does not exist (or was deleted).
    pub async fn session(
        &self,
        id: &str,
        priority: Priority,
    ) -> Result<Option<Session>, ClientError> {
        self.rest_get(Request::get(format!("{API}/sessions/{id}"), priority))
            .await
    }

    /// A folder by id; `None` if it does not exist.
    pub async fn folder(
        &self,
        id: &str,
        priority: Priority,
    ) -> Result<Option<Folder>, ClientError> {
        self.rest_get(Request::get(format!("{API}/folders/{id}"), priority))
            .await
    }

    /// A folder's access settings: whether it inherits its parent's, and its level.
    pub async fn folder_access_settings(
        &self,
        id: &str,
        priority: Priority,
    ) -> Result<Option<AccessSettings>, ClientError> {
        self.rest_get(Request::get(
            format!("{API}/folders/{id}/settings/access"),
            priority,
        ))
        .await
    }

    /// Sets a folder's access settings (a folder must stop inheriting before it can be
    /// granted to a group, panopto.md a7).
    pub async fn set_folder_access_settings(
        &self,
        id: &str,
        settings: &AccessSettings,
    ) -> Result<(), ClientError> {
        let body = serde_json::to_vec(settings).map_err(|e| decode_error("access settings", e))?;
        let req = Request {
            method: Method::PUT,
            body: Body::Json(body),
            idempotent: true,
            ..Request::get(
                format!("{API}/folders/{id}/settings/access"),
                Priority::Write,
            )
        };
        self.execute(&req).await.map(|_| ())
    }

    // ---- SOAP: sessions --------------------------------------------------------------------

    /// Sessions by id, with their states; ids that do not exist (deleted) are absent from the
    /// answer. Any number of ids: sent [`SESSION_IDS_PER_CALL`] at a time.
    pub async fn sessions_by_id(
        &self,
        ids: &[String],
        priority: Priority,
    ) -> Result<Vec<SoapSession>, ClientError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(SESSION_IDS_PER_CALL) {
            let text = self
                .soap_text(
                    Service::Session,
                    "GetSessionsById",
                    priority,
                    true,
                    |auth| soap::encode_get_sessions_by_id_request(auth, chunk),
                )
                .await?;
            found.extend(
                soap::decode_get_sessions_by_id_response(&text)
                    .map_err(|e| soap_error("GetSessionsById", e))?,
            );
        }
        Ok(found)
    }

    /// Every item of a paged SOAP list: pages of [`SOAP_PAGE`] until one is empty or the
    /// total is reached.
    async fn soap_pages<T>(
        &self,
        service: Service,
        op: &str,
        priority: Priority,
        encode: impl Fn(&AuthenticationInfo, Pagination) -> String,
        decode: DecodePage<T>,
    ) -> Result<Vec<T>, ClientError> {
        let mut all = Vec::new();
        for page_number in 0.. {
            let page = Pagination {
                max_number_results: SOAP_PAGE,
                page_number,
            };
            let text = self
                .soap_text(service, op, priority, true, |auth| encode(auth, page))
                .await?;
            let (items, total) = decode(&text).map_err(|e| soap_error(op, e))?;
            let n = items.len();
            all.extend(items);
            if n == 0 || all.len() as u64 >= total {
                break;
            }
        }
        Ok(all)
    }

    /// Every session `GetSessionsList` finds for `request` (its pagination is replaced: all
    /// pages are read).
    pub async fn sessions_list(
        &self,
        request: &ListSessionsRequest,
        priority: Priority,
    ) -> Result<Vec<SoapSession>, ClientError> {
        self.soap_pages(
            Service::Session,
            "GetSessionsList",
            priority,
            |auth, page| {
                let mut r = request.clone();
                r.pagination = Some(page);
                soap::encode_get_sessions_list_request(auth, &r, None)
            },
            soap::decode_get_sessions_list_response,
        )
        .await
    }

    // ---- SOAP: recorders -------------------------------------------------------------------

    /// Every remote recorder with its state (all pages of `ListRecorders`).
    pub async fn recorders(
        &self,
        priority: Priority,
    ) -> Result<Vec<SoapRemoteRecorder>, ClientError> {
        self.soap_pages(
            Service::RemoteRecorder,
            "ListRecorders",
            priority,
            soap::encode_list_recorders_request,
            soap::decode_list_recorders_response,
        )
        .await
    }

    /// Recorders by external id (a recorder's external id names its room).
    pub async fn recorders_by_external_id(
        &self,
        external_ids: &[String],
        priority: Priority,
    ) -> Result<Vec<SoapRemoteRecorder>, ClientError> {
        let text = self
            .soap_text(
                Service::RemoteRecorder,
                "GetRemoteRecordersByExternalId",
                priority,
                true,
                |auth| soap::encode_get_recorders_by_external_id_request(auth, external_ids),
            )
            .await?;
        soap::decode_get_recorders_by_external_id_response(&text)
            .map_err(|e| soap_error("GetRemoteRecordersByExternalId", e))
    }

    // ---- SOAP: folders ---------------------------------------------------------------------

    /// A SOAP read of an `ArrayOfFolder`.
    async fn soap_folders(
        &self,
        op: &str,
        param: (&str, Value),
        priority: Priority,
    ) -> Result<Vec<SoapFolder>, ClientError> {
        let result = self
            .soap_call(Service::Session, op, priority, true, &[param])
            .await?;
        Self::contracts(op, result, "Folder", SoapFolder::from_element)
    }

    /// Folders tagged with any of `external_ids` (by the calling user's provider).
    pub async fn folders_by_external_id(
        &self,
        external_ids: &[String],
        priority: Priority,
    ) -> Result<Vec<SoapFolder>, ClientError> {
        let ids = Value::Strings(external_ids.to_vec());
        self.soap_folders(
            "GetFoldersByExternalId",
            ("folderExternalIds", ids),
            priority,
        )
        .await
    }

    /// Folders by id (with their external ids, which REST does not show); ids that do not
    /// exist are absent.
    pub async fn folders_by_id(
        &self,
        ids: &[String],
        priority: Priority,
    ) -> Result<Vec<SoapFolder>, ClientError> {
        let ids = Value::Guids(ids.to_vec());
        self.soap_folders("GetFoldersById", ("folderIds", ids), priority)
            .await
    }

    /// Creates a folder `name` under `parent` (top level when `None`). Not idempotent: a
    /// caller that may have created it before looks among the parent's children first.
    pub async fn add_folder(
        &self,
        name: &str,
        parent: Option<&str>,
    ) -> Result<SoapFolder, ClientError> {
        let op = "AddFolder";
        let mut params = vec![("name", Value::text(name))];
        if let Some(p) = parent {
            params.push(("parentFolder", Value::text(p)));
        }
        params.push(("isPublic", Value::text("false")));
        let el = self
            .soap_call(Service::Session, op, Priority::Write, false, &params)
            .await?
            .ok_or_else(|| decode_error(op, "no folder in the answer"))?;
        SoapFolder::from_element(&el).map_err(|e| soap_error(op, e))
    }

    /// Tags a folder with `external_id` (under the calling user's provider).
    pub async fn update_folder_external_id(
        &self,
        folder_id: &str,
        external_id: &str,
    ) -> Result<(), ClientError> {
        self.soap_write(
            Service::Session,
            "UpdateFolderExternalId",
            true,
            &[
                ("folderId", Value::text(folder_id)),
                ("externalId", Value::text(external_id)),
            ],
        )
        .await
    }

    /// Moves sessions into a folder.
    pub async fn move_sessions(
        &self,
        folder_id: &str,
        session_ids: &[String],
    ) -> Result<(), ClientError> {
        self.soap_write(
            Service::Session,
            "MoveSessions",
            true,
            &[
                ("sessionIds", Value::Guids(session_ids.to_vec())),
                ("folderId", Value::text(folder_id)),
            ],
        )
        .await
    }

    /// Renames a session.
    pub async fn update_session_name(
        &self,
        session_id: &str,
        name: &str,
    ) -> Result<(), ClientError> {
        self.soap_write(
            Service::Session,
            "UpdateSessionName",
            true,
            &[
                ("sessionId", Value::text(session_id)),
                ("name", Value::text(name)),
            ],
        )
        .await
    }

    // ---- SOAP: external groups -------------------------------------------------------------

    /// Creates an external group (`provider`, `external_id`) with `member_ids` (user GUIDs).
    pub async fn create_external_group(
        &self,
        name: &str,
        provider: &str,
        external_id: &str,
        member_ids: &[String],
    ) -> Result<SoapGroup, ClientError> {
        let op = "CreateExternalGroup";
        let result = self
            .soap_call(
                Service::User,
                op,
                Priority::Write,
                false,
                &[
                    ("groupName", Value::text(name)),
                    ("externalProvider", Value::text(provider)),
                    ("externalId", Value::text(external_id)),
                    ("memberIds", Value::Guids(member_ids.to_vec())),
                ],
            )
            .await?
            .ok_or_else(|| decode_error(op, "no group in the answer"))?;
        SoapGroup::from_element(&result).map_err(|e| soap_error(op, e))
    }

    /// Adds (`add`) or removes members of an external group.
    pub async fn change_external_group_members(
        &self,
        provider: &str,
        external_id: &str,
        member_ids: &[String],
        add: bool,
    ) -> Result<(), ClientError> {
        let op = if add {
            "AddMembersToExternalGroup"
        } else {
            "RemoveMembersFromExternalGroup"
        };
        self.soap_write(
            Service::User,
            op,
            // Adding or removing the same members twice leaves the same group.
            true,
            &[
                ("externalProviderName", Value::text(provider)),
                ("externalGroupId", Value::text(external_id)),
                ("memberIds", Value::Guids(member_ids.to_vec())),
            ],
        )
        .await
    }

    /// Groups named `name`.
    pub async fn groups_by_name(
        &self,
        name: &str,
        priority: Priority,
    ) -> Result<Vec<SoapGroup>, ClientError> {
        let op = "GetGroupsByName";
        let result = self
            .soap_call(
                Service::User,
                op,
                priority,
                true,
                &[("groupName", Value::text(name))],
            )
            .await?;
        Self::contracts(op, result, "Group", SoapGroup::from_element)
    }

    /// The user GUIDs in a group.
    pub async fn users_in_group(
        &self,
        group_id: &str,
        priority: Priority,
    ) -> Result<Vec<String>, ClientError> {
        let result = self
            .soap_call(
                Service::User,
                "GetUsersInGroup",
                priority,
                true,
                &[("groupId", Value::text(group_id))],
            )
            .await?;
        Ok(result.as_ref().map(soap::items).unwrap_or_default())
    }

    /// A user by key (`Provider\username`); `None` if Panopto does not know them.
    pub async fn user_by_key(
        &self,
        user_key: &str,
        priority: Priority,
    ) -> Result<Option<SoapUser>, ClientError> {
        let op = "GetUserByKey";
        let result = self
            .soap_call(
                Service::User,
                op,
                priority,
                true,
                &[("userKey", Value::text(user_key))],
            )
            .await?;
        let Some(el) = result.filter(|e| !e.is_nil()) else {
            return Ok(None);
        };
        let user = SoapUser::from_element(&el).map_err(|e| soap_error(op, e))?;
        // Panopto answers an unknown key with an empty user (the empty GUID).
        Ok((!user.user_id.trim_matches(['0', '-']).is_empty()).then_some(user))
    }

    // ---- SOAP: access ----------------------------------------------------------------------

    /// Grants (`grant`) or revokes `role` (`Viewer`, `Creator`, …) on a folder for a group or
    /// for users.
    pub async fn folder_access_change(
        &self,
        folder_id: &str,
        who: &Grantee,
        role: &str,
        grant: bool,
    ) -> Result<(), ClientError> {
        let (op, principal) = match (who, grant) {
            (Grantee::Group(id), true) => {
                ("GrantGroupAccessToFolder", ("groupId", Value::text(id)))
            }
            (Grantee::Group(id), false) => {
                ("RevokeGroupAccessFromFolder", ("groupId", Value::text(id)))
            }
            (Grantee::Users(ids), true) => (
                "GrantUsersAccessToFolder",
                ("userIds", Value::Guids(ids.clone())),
            ),
            (Grantee::Users(ids), false) => (
                "RevokeUsersAccessFromFolder",
                ("userIds", Value::Guids(ids.clone())),
            ),
        };
        self.soap_write(
            Service::Access,
            op,
            true,
            &[
                ("folderId", Value::text(folder_id)),
                principal,
                ("role", Value::text(role)),
            ],
        )
        .await
    }

    /// Who may see a folder, by role.
    pub async fn folder_access(
        &self,
        folder_id: &str,
        priority: Priority,
    ) -> Result<FolderAccessDetails, ClientError> {
        self.soap_contract(
            Service::Access,
            "GetFolderAccessDetails",
            priority,
            &[("folderId", Value::text(folder_id))],
            FolderAccessDetails::from_element,
        )
        .await
    }

    /// Who may see a session: its direct grants and its folder's.
    pub async fn session_access(
        &self,
        session_id: &str,
        priority: Priority,
    ) -> Result<SessionAccessDetails, ClientError> {
        self.soap_contract(
            Service::Access,
            "GetSessionAccessDetails",
            priority,
            &[("sessionId", Value::text(session_id))],
            SessionAccessDetails::from_element,
        )
        .await
    }
}
