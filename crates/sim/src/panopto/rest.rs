//! Panopto REST v1 handlers, serving the wire types of the `panopto` crate. Errors use
//! Panopto's `{"Error":{"ErrorCode","Message","Success":false}}` body for 400 and 404.
//! Lists page with `pageNumber` (from 0) and end with an empty page.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use panopto::{
    AccessSettings, ApiErrorBody, FolderCreate, ListResponse, NamedRef, PermissionCreate,
    PrincipalType, ScheduledRecordingCreate, ScheduledRecordingUpdate, SessionUpdate,
};
use serde::Deserialize;
use serde_json::json;

use super::PAGE_SIZE;
use super::people;
use super::world::{self, EMPTY_GUID, PanoptoWorld};
use crate::clock::{iso_ms, parse_iso};
use crate::panopto::access::Grant;
use crate::sim::AppState;
use crate::university::University;

type Res = Result<Response, PError>;

/// A Panopto REST error: status plus the `APIError` body.
#[derive(Debug)]
pub struct PError(StatusCode, ApiErrorBody);

impl IntoResponse for PError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> PError {
    PError(status, ApiErrorBody::new(code, message))
}

fn not_found(what: &str) -> PError {
    error(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("The requested {what} was not found"),
    )
}

fn invalid(message: &str) -> PError {
    error(StatusCode::BAD_REQUEST, "InvalidParameter", message)
}

fn json_body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, PError> {
    serde_json::from_slice(bytes).map_err(|e| invalid(&format!("invalid request body: {e}")))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    page_number: Option<String>,
    search_query: Option<String>,
    sort_field: Option<String>,
    sort_order: Option<String>,
}

impl ListQuery {
    fn page(&self) -> Result<usize, PError> {
        match &self.page_number {
            None => Ok(0),
            Some(p) => p
                .trim()
                .parse()
                .map_err(|_| invalid("pageNumber must be a non-negative integer")),
        }
    }

    fn query(&self) -> Result<String, PError> {
        self.search_query
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_lowercase)
            .ok_or_else(|| invalid("searchQuery is required"))
    }

    fn descending(&self) -> Result<bool, PError> {
        match self.sort_order.as_deref() {
            None | Some("Asc") => Ok(false),
            Some("Desc") => Ok(true),
            Some(_) => Err(invalid("sortOrder must be Asc or Desc")),
        }
    }
}

fn page<T: serde::Serialize>(all: Vec<T>, page: usize) -> Response {
    let items: Vec<T> = all
        .into_iter()
        .skip(page.saturating_mul(PAGE_SIZE))
        .take(PAGE_SIZE)
        .collect();
    Json(ListResponse::new(items)).into_response()
}

fn host(s: &AppState) -> String {
    format!("https://{}", s.config.panopto_hostname)
}

fn folder_json(w: &PanoptoWorld, f: &world::Folder, host: &str) -> panopto::Folder {
    panopto::Folder {
        id: f.id.clone(),
        name: f.name.clone(),
        description: f.description.clone(),
        parent_folder: f
            .parent
            .as_ref()
            .and_then(|p| w.folders.get(p))
            .map(|p| NamedRef {
                id: p.id.clone(),
                name: Some(p.name.clone()),
            }),
        urls: panopto::FolderUrls {
            folder_url: Some(format!(
                "{host}/Panopto/Pages/Sessions/List.aspx#folderID={}",
                f.id
            )),
            embed_url: Some(format!("{host}/Panopto/Pages/Embed.aspx?pid={}", f.id)),
            share_settings_url: Some(format!(
                "{host}/Panopto/Pages/Sessions/List.aspx#folderID={}&modalPage=FolderShare",
                f.id
            )),
        },
    }
}

fn session_json(
    w: &PanoptoWorld,
    s: &world::Session,
    host: &str,
    now: i64,
    full: bool,
) -> panopto::Session {
    let folder = w.folders.get(&s.folder_id);
    let viewer = format!("{host}/Panopto/Pages/Viewer.aspx?id={}", s.id);
    let thumb = Some(Some(format!(
        "{host}/Panopto/Services/FrameGrabber.svc/FrameRedirect?objectId={}",
        s.id
    )));
    let captions = s.has_captions_at(now).then(|| {
        format!(
            "{host}/Panopto/Pages/Transcription/GenerateSRT.ashx?id={}",
            s.id
        )
    });
    let urls = if full {
        panopto::SessionUrls {
            viewer_url: Some(viewer),
            embed_url: Some(Some(format!("{host}/Panopto/Pages/Embed.aspx?id={}", s.id))),
            share_settings_url: Some(Some(format!(
                "{host}/Panopto/Pages/Sessions/List.aspx?id={}&modalPage=SessionShare",
                s.id
            ))),
            download_url: Some(None),
            audio_description_download_url: Some(None),
            caption_download_url: Some(captions),
            editor_url: Some(Some(format!(
                "{host}/Panopto/Pages/Editor/Default.aspx#{}",
                s.id
            ))),
            thumbnail_url: thumb,
        }
    } else {
        panopto::SessionUrls {
            viewer_url: Some(viewer),
            thumbnail_url: thumb,
            ..Default::default()
        }
    };
    panopto::Session {
        id: s.id.clone(),
        name: s.name.clone(),
        description: s.description.clone(),
        start_time: Some(iso_ms(s.start_ms)),
        duration: s.duration_at(now),
        most_recent_view_position: Some(0.0),
        created_by: full.then(|| panopto::CreatedBy {
            id: EMPTY_GUID.to_owned(),
            username: None,
        }),
        urls,
        folder: Some(s.folder_id.clone()),
        folder_details: folder.map(|f| NamedRef {
            id: f.id.clone(),
            name: Some(f.name.clone()),
        }),
        context: None,
        percent_completed: full.then_some(None),
    }
}

/// Sessions visible at `now`: created, not deleted.
fn visible(s: &world::Session, now: i64) -> bool {
    s.created_ms <= now && s.deleted_ms.is_none_or(|d| d > now)
}

fn live_folder<'a>(w: &'a PanoptoWorld, id: &str) -> Result<&'a world::Folder, PError> {
    w.live_folder(id).ok_or_else(|| not_found("folder"))
}

// ------------------------------------------------------------------ OAuth2

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    username: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
}

pub async fn token(
    State(s): State<AppState>,
    headers: HeaderMap,
    axum::Form(f): axum::Form<TokenForm>,
) -> Response {
    let (client_id, client_secret) = crate::client_auth::client_credentials(
        &headers,
        f.client_id.as_deref(),
        f.client_secret.as_deref(),
    );
    let now = s.clock.now_ms();
    let grant = s.panopto.grant(
        &s.config,
        f.grant_type.as_deref(),
        client_id.as_deref(),
        client_secret.as_deref(),
        f.username.as_deref(),
        f.password.as_deref(),
        f.refresh_token.as_deref(),
        f.scope.as_deref(),
        now,
    );
    match grant {
        Grant::Issued {
            access,
            refresh,
            expires_in,
        } => Json(panopto::TokenResponse {
            access_token: access,
            expires_in,
            token_type: "Bearer".to_owned(),
            refresh_token: refresh,
            scope: Some(f.scope.unwrap_or_else(|| "openid api".to_owned())),
        })
        .into_response(),
        Grant::InvalidClient => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response(),
        Grant::Refused(why) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": why})),
        )
            .into_response(),
        Grant::Unsupported => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response(),
    }
}

// ------------------------------------------------------------------ folders

pub async fn get_folder(State(s): State<AppState>, Path(id): Path<String>) -> Res {
    let h = host(&s);
    s.with_world_read(|w| {
        let f = live_folder(&w.panopto, &id)?;
        Ok(Json(folder_json(&w.panopto, f, &h)).into_response())
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FolderUpdate {
    name: Option<String>,
    description: Option<String>,
    parent: Option<String>,
}

pub async fn update_folder(State(s): State<AppState>, Path(id): Path<String>, body: Bytes) -> Res {
    let u: FolderUpdate = json_body(&body)?;
    let h = host(&s);
    s.with_world(|w| {
        live_folder(&w.panopto, &id)?;
        if let Some(p) = &u.parent
            && p != EMPTY_GUID
        {
            live_folder(&w.panopto, p)?;
            if *p == id {
                return Err(invalid("a folder cannot be its own parent"));
            }
        }
        w.writes.record("folder.update", id.clone());
        let f = w
            .panopto
            .folders
            .get_mut(&id)
            .ok_or_else(|| not_found("folder"))?;
        if let Some(n) = u.name.filter(|n| !n.trim().is_empty()) {
            f.name = n;
        }
        if u.description.is_some() {
            f.description = u.description;
        }
        if let Some(p) = u.parent {
            f.parent = (p != EMPTY_GUID).then_some(p);
        }
        let f = w
            .panopto
            .folders
            .get(&id)
            .ok_or_else(|| not_found("folder"))?;
        Ok(Json(folder_json(&w.panopto, f, &h)).into_response())
    })
}

pub async fn delete_folder(State(s): State<AppState>, Path(id): Path<String>) -> Res {
    let now = s.clock.now_ms();
    s.with_world(|w| {
        live_folder(&w.panopto, &id)?;
        // Deletes the folder and all its contents.
        let mut doomed = vec![id.clone()];
        let mut i = 0;
        while i < doomed.len() {
            let parent = doomed[i].clone();
            doomed.extend(
                w.panopto
                    .folders
                    .values()
                    .filter(|f| f.parent.as_deref() == Some(&parent) && !f.deleted)
                    .map(|f| f.id.clone()),
            );
            i += 1;
        }
        for fid in &doomed {
            if let Some(f) = w.panopto.folders.get_mut(fid) {
                f.deleted = true;
            }
        }
        for sess in w
            .panopto
            .sessions
            .values_mut()
            .filter(|x| doomed.contains(&x.folder_id) && x.deleted_ms.is_none())
        {
            sess.deleted_ms = Some(now);
        }
        Ok(Json(json!("Folder deleted")).into_response())
    })
}

pub async fn create_folder(State(s): State<AppState>, body: Bytes) -> Res {
    let c: FolderCreate = json_body(&body)?;
    if c.name.trim().is_empty() {
        return Err(invalid("Name is required"));
    }
    let h = host(&s);
    s.with_world(|w| {
        let parent = c.parent.filter(|p| p != EMPTY_GUID);
        if let Some(p) = &parent {
            live_folder(&w.panopto, p)?;
        }
        let target = format!("{}/{}", parent.as_deref().unwrap_or(""), c.name);
        let id = w.panopto.create_folder(c.name, c.description, parent);
        w.writes.record("folder.create", target);
        let f = w
            .panopto
            .folders
            .get(&id)
            .ok_or_else(|| not_found("folder"))?;
        Ok(Json(folder_json(&w.panopto, f, &h)).into_response())
    })
}

pub async fn folder_children(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Res {
    let pg = q.page()?;
    let desc = q.descending()?;
    let h = host(&s);
    s.with_world_read(|w| {
        let parent = if id == EMPTY_GUID {
            None
        } else {
            Some(live_folder(&w.panopto, &id)?.id.clone())
        };
        let mut kids: Vec<&world::Folder> = w
            .panopto
            .folders
            .values()
            .filter(|f| !f.deleted && f.parent == parent)
            .collect();
        kids.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        if desc {
            kids.reverse();
        }
        Ok(page(
            kids.iter()
                .map(|f| folder_json(&w.panopto, f, &h))
                .collect(),
            pg,
        ))
    })
}

pub async fn search_folders(State(s): State<AppState>, Query(q): Query<ListQuery>) -> Res {
    let pg = q.page()?;
    let needle = q.query()?;
    let h = host(&s);
    s.with_world_read(|w| {
        let mut hits: Vec<&world::Folder> = w
            .panopto
            .folders
            .values()
            .filter(|f| !f.deleted && f.name.to_lowercase().contains(&needle))
            .collect();
        hits.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(page(
            hits.iter()
                .map(|f| folder_json(&w.panopto, f, &h))
                .collect(),
            pg,
        ))
    })
}

pub async fn folder_sessions(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Res {
    let pg = q.page()?;
    let desc = q.descending()?;
    let now = s.clock.now_ms();
    let h = host(&s);
    s.with_world_read(|w| {
        live_folder(&w.panopto, &id)?;
        let mut hits: Vec<&world::Session> = w
            .panopto
            .sessions
            .values()
            .filter(|x| x.folder_id == id && visible(x, now))
            .collect();
        match q.sort_field.as_deref() {
            Some("Name") => hits.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id))),
            None | Some("CreatedDate") | Some("Relevance") => {
                hits.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then(a.id.cmp(&b.id)))
            }
            Some(_) => return Err(invalid("sortField must be Name, CreatedDate or Relevance")),
        }
        if desc {
            hits.reverse();
        }
        Ok(page(
            hits.iter()
                .map(|x| session_json(&w.panopto, x, &h, now, false))
                .collect(),
            pg,
        ))
    })
}

// ------------------------------------------------------------------ sessions

fn live_session<'a>(w: &'a PanoptoWorld, id: &str, now: i64) -> Result<&'a world::Session, PError> {
    w.live_session(id, now).ok_or_else(|| not_found("session"))
}

pub async fn get_session(State(s): State<AppState>, Path(id): Path<String>) -> Res {
    let now = s.clock.now_ms();
    let h = host(&s);
    s.with_world_read(|w| {
        let x = live_session(&w.panopto, &id, now)?;
        Ok(Json(session_json(&w.panopto, x, &h, now, true)).into_response())
    })
}

pub async fn update_session(State(s): State<AppState>, Path(id): Path<String>, body: Bytes) -> Res {
    let u: SessionUpdate = json_body(&body)?;
    let now = s.clock.now_ms();
    let h = host(&s);
    s.with_world(|w| {
        live_session(&w.panopto, &id, now)?;
        if let Some(f) = &u.folder_id {
            live_folder(&w.panopto, f)?;
        }
        if u.name.as_ref().is_some_and(|n| !n.trim().is_empty()) {
            w.writes.record("session.rename", id.clone());
        }
        if u.folder_id.is_some() {
            w.writes.record("session.move", id.clone());
        }
        let x = w
            .panopto
            .sessions
            .get_mut(&id)
            .ok_or_else(|| not_found("session"))?;
        if let Some(n) = u.name.filter(|n| !n.trim().is_empty()) {
            x.name = n;
        }
        if u.description.is_some() {
            x.description = u.description;
        }
        x.updated_ms = now;
        if let Some(f) = u.folder_id {
            w.panopto.move_session(&id, f, now);
        }
        let x = live_session(&w.panopto, &id, now)?;
        Ok(Json(session_json(&w.panopto, x, &h, now, true)).into_response())
    })
}

pub async fn delete_session(State(s): State<AppState>, Path(id): Path<String>) -> Res {
    let now = s.clock.now_ms();
    s.with_world(|w| {
        live_session(&w.panopto, &id, now)?;
        w.writes.record("session.delete", id.clone());
        if let Some(x) = w.panopto.sessions.get_mut(&id) {
            x.deleted_ms = Some(now);
        }
        Ok(Json(json!("Session deleted")).into_response())
    })
}

pub async fn search_sessions(State(s): State<AppState>, Query(q): Query<ListQuery>) -> Res {
    let pg = q.page()?;
    let needle = q.query()?;
    let now = s.clock.now_ms();
    let h = host(&s);
    s.with_world_read(|w| {
        let hits: Vec<panopto::Session> = w
            .panopto
            .sessions
            .values()
            .filter(|x| visible(x, now) && x.name.to_lowercase().contains(&needle))
            .map(|x| session_json(&w.panopto, x, &h, now, false))
            .collect();
        Ok(page(hits, pg))
    })
}

pub async fn sessions_recording(State(s): State<AppState>, Query(q): Query<ListQuery>) -> Res {
    let pg = q.page()?;
    let now = s.clock.now_ms();
    let h = host(&s);
    s.with_world_read(|w| {
        let hits: Vec<panopto::Session> = w
            .panopto
            .sessions
            .values()
            .filter(|x| visible(x, now) && x.state_at(now) == panopto::SessionState::Recording)
            .map(|x| session_json(&w.panopto, x, &h, now, false))
            .collect();
        Ok(page(hits, pg))
    })
}

/// The `language` part of a multipart body (captions upload); the file part is accepted
/// but not kept.
fn multipart_language(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let boundary = ct
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))?
        .trim_matches('"');
    let text = String::from_utf8_lossy(body);
    let mut has_file = false;
    let mut language = None;
    for part in text.split(&format!("--{boundary}")) {
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        if head.contains("name=\"language\"") {
            language = Some(value.trim_end_matches("\r\n").trim().to_owned());
        } else if head.contains("filename=") {
            has_file = !value.trim().is_empty();
        }
    }
    if has_file { language } else { None }
}

pub async fn upload_captions(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Res {
    let Some(language) = multipart_language(&headers, &body) else {
        return Err(invalid(
            "expected multipart/form-data with a caption file and a language",
        ));
    };
    const LANGS: [&str; 26] = [
        "English_USA",
        "English_GBR",
        "Spanish_MEX",
        "Spanish_ESP",
        "German",
        "French",
        "Dutch",
        "Thai",
        "Chinese_Simplified",
        "Chinese_Traditional",
        "Korean",
        "Japanese",
        "Russian",
        "Portuguese",
        "Polish",
        "English_AUS",
        "Danish",
        "Finnish",
        "Hungarian",
        "Norwegian",
        "Swedish",
        "Italian",
        "Welsh",
        "Catalan",
        "Galician",
        "Basque",
    ];
    if !LANGS.contains(&language.as_str()) {
        return Err(invalid("language is not a ContentLanguage"));
    }
    let now = s.clock.now_ms();
    s.with_world(|w| {
        live_session(&w.panopto, &id, now)?;
        if let Some(x) = w.panopto.sessions.get_mut(&id) {
            x.uploaded_captions.insert(language);
            x.updated_ms = now;
        }
        Ok(StatusCode::OK.into_response())
    })
}

pub async fn delete_captions(State(s): State<AppState>, Path(id): Path<String>) -> Res {
    let now = s.clock.now_ms();
    s.with_world(|w| {
        live_session(&w.panopto, &id, now)?;
        if let Some(x) = w.panopto.sessions.get_mut(&id) {
            x.uploaded_captions.clear();
            x.captions_ms = None;
            x.updated_ms = now;
        }
        Ok(StatusCode::OK.into_response())
    })
}

// ------------------------------------------------------------------ access and permissions

enum Target {
    Folder(String),
    Session(String),
}

impl Target {
    fn id(&self) -> String {
        match self {
            Target::Folder(id) | Target::Session(id) => id.clone(),
        }
    }

    /// The write counter's name for `verb` on this kind of target.
    fn write(&self, verb: &str) -> &'static str {
        match (self, verb) {
            (Target::Folder(_), "grant") => "folder.grant",
            (Target::Folder(_), "revoke") => "folder.revoke",
            (Target::Folder(_), _) => "folder.access_settings",
            (Target::Session(_), "grant") => "session.grant",
            (Target::Session(_), "revoke") => "session.revoke",
            (Target::Session(_), _) => "session.access_settings",
        }
    }
}

fn target(kind: &str, id: String) -> Result<Target, PError> {
    match kind {
        "folders" => Ok(Target::Folder(id)),
        "sessions" => Ok(Target::Session(id)),
        _ => Err(not_found("resource")),
    }
}

pub async fn get_access(
    State(s): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
) -> Res {
    let t = target(&kind, id)?;
    let now = s.clock.now_ms();
    s.with_world_read(|w| {
        let (inherited, level) = match &t {
            Target::Folder(id) => {
                live_folder(&w.panopto, id).map(|f| (f.access_inherited, f.access_level))?
            }
            Target::Session(id) => {
                live_session(&w.panopto, id, now).map(|x| (x.access_inherited, x.access_level))?
            }
        };
        Ok(Json(AccessSettings {
            is_inherited: inherited,
            level,
        })
        .into_response())
    })
}

pub async fn put_access(
    State(s): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    body: Bytes,
) -> Res {
    let t = target(&kind, id)?;
    let a: AccessSettings = json_body(&body)?;
    let now = s.clock.now_ms();
    s.with_world(|w| {
        match &t {
            Target::Folder(id) => {
                let top = live_folder(&w.panopto, id)?.parent.is_none();
                if top && a.is_inherited {
                    return Err(invalid("a top-level folder cannot inherit access"));
                }
                if let Some(f) = w.panopto.folders.get_mut(id) {
                    f.access_inherited = a.is_inherited;
                    f.access_level = a.level;
                }
            }
            Target::Session(id) => {
                live_session(&w.panopto, id, now)?;
                // IsInherited is read-only for sessions.
                if let Some(x) = w.panopto.sessions.get_mut(id) {
                    x.access_level = a.level;
                }
            }
        }
        w.writes.record(t.write("access_settings"), t.id());
        Ok(StatusCode::OK.into_response())
    })
}

fn role_id(role: &str) -> String {
    world::named_guid(0, &format!("role:{role}"))
}

fn permissions_of<'a>(
    w: &'a PanoptoWorld,
    t: &Target,
    now: i64,
) -> Result<Vec<(bool, &'a world::Permission)>, PError> {
    match t {
        Target::Folder(id) => {
            let f = live_folder(w, id)?;
            let mut out: Vec<(bool, &world::Permission)> =
                f.permissions.iter().map(|p| (false, p)).collect();
            // Inherited permissions of ancestors.
            let mut parent = f.parent.clone();
            let mut depth = 0;
            while let (Some(pid), true) = (parent, depth < 32) {
                let Some(pf) = w.folders.get(&pid) else { break };
                out.extend(pf.permissions.iter().map(|p| (true, p)));
                parent = pf.parent.clone();
                depth += 1;
            }
            Ok(out)
        }
        Target::Session(id) => {
            let x = live_session(w, id, now)?;
            let mut out: Vec<(bool, &world::Permission)> =
                x.permissions.iter().map(|p| (false, p)).collect();
            if let Some(f) = w.folders.get(&x.folder_id) {
                out.extend(f.permissions.iter().map(|p| (true, p)));
            }
            Ok(out)
        }
    }
}

pub async fn list_permissions(
    State(s): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> Res {
    let t = target(&kind, id)?;
    let pg = q.page()?;
    let now = s.clock.now_ms();
    s.with_world_read(|w| {
        let all: Vec<panopto::Permission> = permissions_of(&w.panopto, &t, now)?
            .into_iter()
            .map(|(inherited, p)| panopto::Permission {
                is_inherited: inherited,
                principal: panopto::Principal {
                    id: p.principal_id.clone(),
                    kind: p.principal_type,
                },
                role: panopto::Role {
                    id: role_id(&p.role),
                    name: p.role.clone(),
                },
            })
            .collect();
        Ok(page(all, pg))
    })
}

pub async fn add_permission(
    State(s): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    body: Bytes,
) -> Res {
    let t = target(&kind, id)?;
    let c: PermissionCreate = json_body(&body)?;
    const ROLES: [&str; 7] = [
        "Viewer",
        "ViewerWithLink",
        "Creator",
        "Publisher",
        "CaptionRequester",
        "ContentOrganizer",
        "AnalyticsManager",
    ];
    let role = match (&c.role_type, &c.role_id) {
        (Some(r), _) if ["Viewer", "Creator", "Publisher"].contains(&r.as_str()) => r.clone(),
        (Some(r), _) if r == "None" => return Err(invalid("RoleType None grants nothing")),
        (_, Some(rid)) => ROLES
            .iter()
            .find(|r| role_id(r) == *rid)
            .map(|r| (*r).to_owned())
            .ok_or_else(|| invalid("unknown RoleId"))?,
        _ => return Err(invalid("RoleType or RoleId is required")),
    };
    let now = s.clock.now_ms();
    s.with_world(|w| {
        let principal_ok = match c.principal_type {
            PrincipalType::Group => w.panopto.groups.contains_key(&c.principal_id),
            PrincipalType::User => people::users(&w.uni).any(|u| u.id == c.principal_id),
        };
        if !principal_ok {
            return Err(not_found("principal"));
        }
        let written = format!("{} {role} {}", t.id(), c.principal_id);
        let perm = world::Permission {
            principal_type: c.principal_type,
            principal_id: c.principal_id.clone(),
            role,
        };
        match &t {
            Target::Folder(id) => {
                let f = live_folder(&w.panopto, id)?;
                if f.access_inherited {
                    return Err(invalid(
                        "permissions cannot be added while the folder inherits access",
                    ));
                }
                if let Some(f) = w.panopto.folders.get_mut(id)
                    && !f
                        .permissions
                        .iter()
                        .any(|p| p.principal_id == perm.principal_id && p.role == perm.role)
                {
                    f.permissions.push(perm);
                }
            }
            Target::Session(id) => {
                live_session(&w.panopto, id, now)?;
                if let Some(x) = w.panopto.sessions.get_mut(id)
                    && !x
                        .permissions
                        .iter()
                        .any(|p| p.principal_id == perm.principal_id && p.role == perm.role)
                {
                    x.permissions.push(perm);
                    x.updated_ms = now;
                }
            }
        }
        w.writes.record(t.write("grant"), written);
        Ok(StatusCode::OK.into_response())
    })
}

#[derive(Debug, Deserialize)]
pub struct PermissionDelete {
    #[serde(rename = "PrincipalId", alias = "principalId")]
    principal_id: Option<String>,
    #[serde(rename = "RoleType", alias = "roleType")]
    role_type: Option<String>,
}

pub async fn remove_permissions(
    State(s): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    Query(q): Query<PermissionDelete>,
) -> Res {
    let t = target(&kind, id)?;
    let Some(pid) = q.principal_id else {
        return Err(invalid("PrincipalId is required"));
    };
    let now = s.clock.now_ms();
    s.with_world(|w| {
        let keep = |p: &world::Permission| {
            !(p.principal_id == pid && q.role_type.as_ref().is_none_or(|r| *r == p.role))
        };
        match &t {
            Target::Folder(id) => {
                live_folder(&w.panopto, id)?;
                if let Some(f) = w.panopto.folders.get_mut(id) {
                    f.permissions.retain(keep);
                }
            }
            Target::Session(id) => {
                live_session(&w.panopto, id, now)?;
                if let Some(x) = w.panopto.sessions.get_mut(id) {
                    x.permissions.retain(keep);
                }
            }
        }
        w.writes
            .record(t.write("revoke"), format!("{} {pid}", t.id()));
        Ok(StatusCode::OK.into_response())
    })
}

// ------------------------------------------------------------------ recorders and scheduling

pub async fn search_recorders(State(s): State<AppState>, Query(q): Query<ListQuery>) -> Res {
    let pg = q.page()?;
    let needle = q.query()?;
    let now = s.clock.now_ms();
    s.with_world_read(|w| {
        let p = &w.panopto;
        let hits: Vec<panopto::RemoteRecorder> = p
            .recorders
            .values()
            .filter(|r| {
                r.name.to_lowercase().contains(&needle)
                    || r.room_id.to_lowercase().contains(&needle)
            })
            .map(|r| panopto::RemoteRecorder {
                id: r.id.clone(),
                name: r.name.clone(),
                state: p.recorder_state(&r.id, now),
                default_recording_folder: p.folders.get(&r.default_folder_id).map(|f| NamedRef {
                    id: f.id.clone(),
                    name: Some(f.name.clone()),
                }),
            })
            .collect();
        Ok(page(hits, pg))
    })
}

fn scheduled_json(w: &PanoptoWorld, x: &world::Session) -> panopto::ScheduledRecording {
    let rec = x
        .scheduled_recorder_id
        .as_ref()
        .and_then(|r| w.recorders.get(r));
    panopto::ScheduledRecording {
        id: x.id.clone(),
        name: Some(x.name.clone()),
        recorder_schedule_entries: rec
            .map(|r| {
                vec![panopto::RecorderScheduleEntry {
                    id: world::named_guid(0, &format!("entry:{}:{}", x.id, r.id)),
                    name: Some(r.name.clone()),
                    recorder_id: r.id.clone(),
                    suppress_primary_capture: false,
                    suppress_secondary_capture: false,
                    recorder_description: Some(r.name.clone()),
                }]
            })
            .unwrap_or_default(),
        start_time: iso_ms(x.start_ms),
        end_time: iso_ms(x.end_ms),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConflictQuery {
    resolve_conflicts: Option<String>,
}

fn times(start: &str, end: &str) -> Result<(i64, i64), PError> {
    let s = parse_iso(start).ok_or_else(|| invalid("StartTime must be ISO-8601"))?;
    let e = parse_iso(end).ok_or_else(|| invalid("EndTime must be ISO-8601"))?;
    if e <= s {
        return Err(invalid("EndTime must be after StartTime"));
    }
    Ok((s, e))
}

pub async fn create_scheduled_recording(
    State(s): State<AppState>,
    Query(q): Query<ConflictQuery>,
    body: Bytes,
) -> Res {
    let resolve = match q.resolve_conflicts.as_deref() {
        Some("true") => true,
        Some("false") => false,
        _ => return Err(invalid("resolveConflicts is required (true or false)")),
    };
    let c: ScheduledRecordingCreate = json_body(&body)?;
    let (start, end) = times(&c.start_time, &c.end_time)?;
    if c.recorders.len() != 1 {
        return Err(invalid("exactly one recorder can be specified"));
    }
    let now = s.clock.now_ms();
    if end <= now {
        return Err(invalid("EndTime must be in the future"));
    }
    s.with_world(|w| {
        live_folder(&w.panopto, &c.folder_id)?;
        let rid = c.recorders[0].remote_recorder_id.clone();
        if !w.panopto.recorders.contains_key(&rid) {
            return Err(not_found("remote recorder"));
        }
        let conflict = w.panopto.sessions.values().any(|x| {
            x.scheduled_recorder_id.as_deref() == Some(rid.as_str())
                && x.deleted_ms.is_none()
                && x.start_ms < end
                && start < x.end_ms
        });
        if conflict && !resolve {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "ScheduleConflict",
                "the recorder is already scheduled at that time",
            ));
        }
        let name = c
            .name
            .clone()
            .unwrap_or_else(|| format!("Scheduled recording {}", iso_ms(start)));
        let id = w.panopto.schedule(name, rid, start, end, None, now);
        if let Some(x) = w.panopto.sessions.get_mut(&id) {
            x.description = c.description.clone();
            x.is_broadcast = c.is_broadcast;
        }
        w.panopto.move_session(&id, c.folder_id.clone(), now);
        let x = w
            .panopto
            .sessions
            .get(&id)
            .ok_or_else(|| not_found("session"))?;
        Ok(Json(scheduled_json(&w.panopto, x)).into_response())
    })
}

pub async fn get_scheduled_recording(State(s): State<AppState>, Path(id): Path<String>) -> Res {
    let now = s.clock.now_ms();
    s.with_world_read(|w| {
        let x = live_session(&w.panopto, &id, now)?;
        if x.scheduled_recorder_id.is_none() {
            return Err(not_found("scheduled recording"));
        }
        Ok(Json(scheduled_json(&w.panopto, x)).into_response())
    })
}

pub async fn update_scheduled_recording(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Res {
    let u: ScheduledRecordingUpdate = json_body(&body)?;
    let (start, end) = times(&u.start_time, &u.end_time)?;
    let now = s.clock.now_ms();
    if end <= now {
        return Err(invalid("EndTime must be in the future"));
    }
    s.with_world(|w| {
        live_session(&w.panopto, &id, now)?;
        let x = w
            .panopto
            .sessions
            .get_mut(&id)
            .ok_or_else(|| not_found("session"))?;
        let shift = end - x.end_ms;
        x.start_ms = if x.start_ms <= now { x.start_ms } else { start };
        x.end_ms = end;
        x.settle();
        x.captions_ms = x.captions_ms.map(|c| c + shift);
        x.updated_ms = now;
        if x.start_ms > now {
            w.panopto.decide_again(&id, now);
        }
        let x = live_session(&w.panopto, &id, now)?;
        Ok(Json(scheduled_json(&w.panopto, x)).into_response())
    })
}

pub async fn delete_scheduled_recording(State(s): State<AppState>, Path(id): Path<String>) -> Res {
    let now = s.clock.now_ms();
    s.with_world(|w| {
        let x = live_session(&w.panopto, &id, now)?;
        if x.start_ms <= now {
            return Err(invalid("the recording has already started"));
        }
        if let Some(x) = w.panopto.sessions.get_mut(&id) {
            x.deleted_ms = Some(now);
        }
        Ok(StatusCode::OK.into_response())
    })
}

// ------------------------------------------------------------------ users and groups

pub async fn search_users(State(s): State<AppState>, Query(q): Query<ListQuery>) -> Res {
    let pg = q.page()?;
    let needle = q.query()?;
    s.with_world_read(|w| {
        let hits: Vec<panopto::User> = people::users(&w.uni)
            .filter(|u| {
                let login = u.key.split_once('\\').map_or("", |(_, l)| l).to_lowercase();
                format!("{} {}", u.first_name, u.last_name)
                    .to_lowercase()
                    .contains(&needle)
                    || login.contains(&needle)
                    || u.email.to_lowercase().contains(&needle)
            })
            .map(|u| panopto::User {
                id: u.id,
                username: Some(u.key),
                first_name: Some(u.first_name),
                last_name: Some(u.last_name),
                email: Some(u.email),
            })
            .collect();
        Ok(page(hits, pg))
    })
}

pub async fn search_groups(State(s): State<AppState>, Query(q): Query<ListQuery>) -> Res {
    let pg = q.page()?;
    let needle = q.query()?;
    s.with_world_read(|w| {
        let hits: Vec<panopto::Group> = w
            .panopto
            .groups
            .values()
            .filter(|g| g.name.to_lowercase().contains(&needle))
            .map(|g| panopto::Group {
                id: g.id.clone(),
                name: g.name.clone(),
            })
            .collect();
        Ok(page(hits, pg))
    })
}

// ------------------------------------------------------------------ searchIndexSync

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdatesQuery {
    from_date: Option<String>,
    next_token: Option<String>,
}

const UPDATES_PAGE: usize = 100;

fn encode_token(t: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{t}|{id}"))
}

fn decode_token(tok: &str) -> Option<(i64, String)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(tok).ok()?).ok()?;
    let (t, id) = raw.split_once('|')?;
    Some((t.parse().ok()?, id.to_owned()))
}

/// Videos changed since `fromDate` (or after `nextToken`), oldest first, 100 a page.
pub async fn index_updates(State(s): State<AppState>, Query(q): Query<UpdatesQuery>) -> Res {
    let now = s.clock.now_ms();
    let after = match (&q.next_token, &q.from_date) {
        (Some(t), _) if !t.is_empty() => {
            let (t, id) = decode_token(t).ok_or_else(|| invalid("invalid nextToken"))?;
            (t, Some(id))
        }
        (_, Some(d)) => (
            parse_iso(d).ok_or_else(|| invalid("fromDate must be ISO-8601"))?,
            None,
        ),
        _ => return Err(invalid("fromDate is required")),
    };
    s.with_world_read(|w| {
        let mut changed: Vec<(i64, &str)> = w
            .panopto
            .sessions
            .values()
            .filter(|x| x.created_ms <= now)
            .map(|x| (x.last_update_at(now), x.id.as_str()))
            .filter(|(t, id)| match &after.1 {
                None => *t >= after.0,
                Some(last) => (*t, *id) > (after.0, last.as_str()),
            })
            .collect();
        changed.sort_unstable();
        let more = changed.len() > UPDATES_PAGE;
        changed.truncate(UPDATES_PAGE);
        let next = if more {
            changed.last().map(|(t, id)| encode_token(*t, id))
        } else {
            None
        };
        Ok(Json(panopto::SearchIndexUpdates {
            updates: changed
                .iter()
                .map(|(t, id)| panopto::SearchIndexUpdate {
                    video_id: (*id).to_owned(),
                    update_time: iso_ms(*t),
                })
                .collect(),
            next_token: next,
        })
        .into_response())
    })
}

#[derive(Debug, Deserialize)]
pub struct ContentQuery {
    id: Option<String>,
}

pub async fn index_content(State(s): State<AppState>, Query(q): Query<ContentQuery>) -> Res {
    let Some(id) = q.id else {
        return Err(invalid("id is required"));
    };
    let now = s.clock.now_ms();
    let h = host(&s);
    let seed = s.config.seed;
    s.with_world_read(|w| {
        let x = w
            .panopto
            .sessions
            .get(&id)
            .filter(|x| x.created_ms <= now)
            .ok_or_else(|| not_found("video"))?;
        let deleted = x.deleted_ms.is_some_and(|d| d <= now);
        let captions = x.has_captions_at(now);
        let mut principals = Vec::new();
        let mut groups: BTreeMap<&str, ()> = BTreeMap::new();
        for p in x.permissions.iter().chain(
            w.panopto
                .folders
                .get(&x.folder_id)
                .map(|f| f.permissions.as_slice())
                .unwrap_or(&[]),
        ) {
            if p.principal_type == PrincipalType::Group
                && let Some(g) = w.panopto.groups.get(&p.principal_id)
                && groups.insert(g.name.as_str(), ()).is_none()
            {
                principals.push(panopto::IndexPrincipal {
                    username: None,
                    group_name: Some(g.name.clone()),
                    identity_provider: Some("canvas-sim".to_owned()),
                    email: None,
                });
            }
        }
        let teacher = x.section_id.and_then(|sec| {
            University::ids(&w.uni.section_enrollments, sec)
                .iter()
                .filter_map(|e| w.uni.enrollments.get(*e))
                .find(|e| e.kind == crate::university::EnrollmentType::TeacherEnrollment)
                .and_then(|e| w.uni.users.get(e.user_id))
        });
        let _ = seed;
        Ok(Json(panopto::SearchIndexContent {
            id: x.id.clone(),
            deleted,
            video_content: (!deleted).then(|| panopto::VideoContent {
                id: x.id.clone(),
                title: Some(x.name.clone()),
                type_name: Some("Panopto Video".to_owned()),
                url: Some(format!("{h}/Panopto/Pages/Viewer.aspx?id={}", x.id)),
                thumbnail_url: None,
                language: Some("English".to_owned()),
                deleted: false,
                summary: x.description.clone(),
                machine_transcription: (captions && x.captions_ms.is_some())
                    .then(|| format!("transcript of {}", x.name)),
                human_transcription: (!x.uploaded_captions.is_empty())
                    .then(|| format!("captions of {}", x.name)),
                screen_capture: None,
                presentation: None,
                presenters: teacher
                    .map(|t| {
                        vec![panopto::Presenter {
                            first_name: Some(t.first_name.clone()),
                            last_name: Some(t.last_name.clone()),
                            username: Some(t.login_id.clone()),
                        }]
                    })
                    .unwrap_or_default(),
                principals,
            }),
        })
        .into_response())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use panopto::AccessLevel;

    #[test]
    fn multipart_language_is_found() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=XyZ".parse().expect("header"),
        );
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.vtt\"\r\nContent-Type: text/vtt\r\n\r\nWEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHi\r\n--XyZ\r\nContent-Disposition: form-data; name=\"language\"\r\n\r\nEnglish_USA\r\n--XyZ--\r\n";
        assert_eq!(
            multipart_language(&h, body.as_bytes()).as_deref(),
            Some("English_USA")
        );
        assert_eq!(multipart_language(&h, b"junk"), None);
    }

    #[test]
    fn tokens_round_trip() {
        let t = encode_token(1234, "abc");
        assert_eq!(decode_token(&t), Some((1234, "abc".to_owned())));
        assert_eq!(decode_token("%%%"), None);
    }

    #[test]
    fn access_levels_parse() {
        let a: AccessSettings =
            serde_json::from_str(r#"{"IsInherited":false,"Level":"Public"}"#).expect("parses");
        assert_eq!(a.level, AccessLevel::Public);
    }
}
