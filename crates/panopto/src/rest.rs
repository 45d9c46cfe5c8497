//! REST v1 objects (`/Panopto/api/v1/...`). Field names are Panopto's PascalCase; times are
//! ISO-8601 UTC strings as Panopto sends them (kept as text so a client never rejects a
//! response for a timestamp variant it does not need); ids are GUID strings.

use serde::{Deserialize, Serialize};

/// Tells "member present with `null`" (`Some(None)`) from "member absent" (`None`), so list
/// and full session shapes both round-trip.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `ListResponseOfX`: every REST list is `{"Results":[...]}`, paged with `pageNumber` from 0
/// until a page comes back empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListResponse<T> {
    #[serde(rename = "Results", default = "Vec::new")]
    pub results: Vec<T>,
}

impl<T> ListResponse<T> {
    pub fn new(results: Vec<T>) -> Self {
        Self { results }
    }
}

/// `{Id, Name}` reference used for folders, parents and recorder default folders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NamedRef {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreatedBy {
    pub id: String,
    #[serde(default)]
    pub username: Option<String>,
}

/// `Session.Urls`. List and search responses carry only `ViewerUrl` and `ThumbnailUrl`, so
/// every member is optional and skipped when absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SessionUrls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewer_url: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub embed_url: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub share_settings_url: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub download_url: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub audio_description_download_url: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub caption_download_url: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub editor_url: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub thumbnail_url: Option<Option<String>>,
}

/// A search hit inside a session (`includeFields=Context`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SessionContext {
    pub text: String,
    pub time: f64,
    #[serde(default)]
    pub thumbnail_url: Option<String>,
}

/// `GET /api/v1/sessions/{id}` (full) or an element of a session list (no `CreatedBy`,
/// no `PercentCompleted`, reduced `Urls`). The REST Session has **no State**: use SOAP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Session {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub duration: Option<f64>,
    #[serde(default)]
    pub most_recent_view_position: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<CreatedBy>,
    #[serde(default)]
    pub urls: SessionUrls,
    #[serde(default)]
    pub folder: Option<String>,
    #[serde(default)]
    pub folder_details: Option<NamedRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Vec<SessionContext>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub percent_completed: Option<Option<f64>>,
}

/// `PUT /api/v1/sessions/{id}` body. The folder-move member is not visible in the published
/// spec copy; `FolderId` is the probable name (unverified) and is what the simulator accepts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SessionUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FolderUrls {
    #[serde(default)]
    pub folder_url: Option<String>,
    #[serde(default)]
    pub embed_url: Option<String>,
    #[serde(default)]
    pub share_settings_url: Option<String>,
}

/// `GET /api/v1/folders/{id}` and the elements of `folders/{id}/children`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Folder {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parent_folder: Option<NamedRef>,
    #[serde(default)]
    pub urls: FolderUrls,
}

/// `POST /api/v1/folders` body (field names unverified upstream; see the data README).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FolderCreate {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parent: Option<String>,
}

/// REST recorder states (SOAP adds `Blocked` and lacks `RecorderRunning`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemoteRecorderState {
    Stopped,
    Previewing,
    Recording,
    Paused,
    Faulted,
    Disconnected,
    RecorderRunning,
    Blocked,
}

/// `GET /api/v1/remoteRecorders/search` element.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemoteRecorder {
    pub id: String,
    pub name: String,
    pub state: RemoteRecorderState,
    #[serde(default)]
    pub default_recording_folder: Option<NamedRef>,
}

/// One recorder of a `ScheduledRecordingCreate` (only one is allowed today).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecorderSettings {
    pub remote_recorder_id: String,
    #[serde(default)]
    pub suppress_primary: bool,
    #[serde(default)]
    pub suppress_secondary: bool,
}

/// `POST /api/v1/scheduledRecordings?resolveConflicts=..` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduledRecordingCreate {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub start_time: String,
    pub end_time: String,
    pub folder_id: String,
    #[serde(default)]
    pub recorders: Vec<RecorderSettings>,
    pub is_broadcast: bool,
}

/// `PUT /api/v1/scheduledRecordings/{id}` body: only the times can change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduledRecordingUpdate {
    pub start_time: String,
    pub end_time: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecorderScheduleEntry {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub recorder_id: String,
    #[serde(default)]
    pub suppress_primary_capture: bool,
    #[serde(default)]
    pub suppress_secondary_capture: bool,
    #[serde(default)]
    pub recorder_description: Option<String>,
}

/// `GET /api/v1/scheduledRecordings/{id}` (the id is the session id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduledRecording {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub recorder_schedule_entries: Vec<RecorderScheduleEntry>,
    pub start_time: String,
    pub end_time: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessLevel {
    Restricted,
    OrganizationUnlisted,
    Organization,
    PublicUnlisted,
    Public,
}

/// `GET/PUT /api/v1/{folders|sessions}/{id}/settings/access`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccessSettings {
    pub is_inherited: bool,
    pub level: AccessLevel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PrincipalType {
    User,
    Group,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Principal {
    pub id: String,
    #[serde(rename = "Type")]
    pub kind: PrincipalType,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Role {
    pub id: String,
    pub name: String,
}

/// Element of `GET .../permissions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Permission {
    pub is_inherited: bool,
    pub principal: Principal,
    pub role: Role,
}

/// `POST .../permissions` body: `RoleType` or `RoleId`, plus the principal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PermissionCreate {
    #[serde(default)]
    pub role_type: Option<String>,
    #[serde(default)]
    pub role_id: Option<String>,
    pub principal_id: String,
    pub principal_type: PrincipalType,
}

/// `GET /api/v1/users/search` element.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// `GET /api/v1/groups/search` element.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Group {
    pub id: String,
    pub name: String,
}

/// Element of `searchIndexSync/updates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SearchIndexUpdate {
    pub video_id: String,
    pub update_time: String,
}

/// `GET /api/v1/searchIndexSync/updates?fromDate=..&nextToken=..`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SearchIndexUpdates {
    #[serde(default)]
    pub updates: Vec<SearchIndexUpdate>,
    #[serde(default)]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Presenter {
    #[serde(rename = "Firstname", default)]
    pub first_name: Option<String>,
    #[serde(rename = "Lastname", default)]
    pub last_name: Option<String>,
    #[serde(rename = "Username", default)]
    pub username: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexPrincipal {
    #[serde(rename = "Username", default)]
    pub username: Option<String>,
    #[serde(rename = "Groupname", default)]
    pub group_name: Option<String>,
    #[serde(rename = "IdentityProvider", default)]
    pub identity_provider: Option<String>,
    #[serde(rename = "Email", default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VideoContent {
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub type_name: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub thumbnail_url: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub machine_transcription: Option<String>,
    #[serde(default)]
    pub human_transcription: Option<String>,
    #[serde(default)]
    pub screen_capture: Option<String>,
    #[serde(default)]
    pub presentation: Option<String>,
    #[serde(default)]
    pub presenters: Vec<Presenter>,
    #[serde(default)]
    pub principals: Vec<IndexPrincipal>,
}

/// `GET /api/v1/searchIndexSync/content?id=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SearchIndexContent {
    pub id: String,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub video_content: Option<VideoContent>,
}

/// Body of a REST `400`/`404`: `{"Error":{"ErrorCode","Message","Success":false}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApiErrorBody {
    pub error: ApiErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApiErrorDetail {
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    pub success: bool,
}

impl ApiErrorBody {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            error: ApiErrorDetail {
                error_code: Some(code.to_owned()),
                message: Some(message.into()),
                success: false,
            },
        }
    }
}

/// Response of `POST /Panopto/oauth2/connect/token`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: u64,
    pub token_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str) -> serde_json::Value {
        let path = format!(
            "{}/../../../shared/data/panopto/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).expect("fixture is JSON")
    }

    /// Drop the `_note`/`_query` annotations the data README describes.
    fn strip_annotations(mut v: serde_json::Value) -> serde_json::Value {
        if let Some(map) = v.as_object_mut() {
            map.retain(|k, _| !k.starts_with('_'));
        }
        v
    }

    /// `312` and `312.0` are the same JSON number to Panopto; compare them as such.
    fn numbers_as_f64(v: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match v {
            Value::Number(n) => n
                .as_f64()
                .and_then(serde_json::Number::from_f64)
                .map_or(Value::Null, Value::Number),
            Value::Array(a) => Value::Array(a.into_iter().map(numbers_as_f64).collect()),
            Value::Object(o) => {
                Value::Object(o.into_iter().map(|(k, v)| (k, numbers_as_f64(v))).collect())
            }
            other => other,
        }
    }

    fn round_trips<T: serde::de::DeserializeOwned + Serialize>(name: &str) {
        let original = strip_annotations(data(name));
        let typed: T = serde_json::from_value(original.clone())
            .unwrap_or_else(|e| panic!("{name} does not decode: {e}"));
        let back = serde_json::to_value(&typed).expect("encodes");
        assert_eq!(
            numbers_as_f64(back),
            numbers_as_f64(original),
            "{name} does not round-trip"
        );
    }

    #[test]
    fn published_payloads_round_trip() {
        round_trips::<Session>("session.rest.json");
        round_trips::<ListResponse<Session>>("session-list.rest.json");
        round_trips::<Folder>("folder.rest.json");
        round_trips::<ListResponse<Folder>>("folder-children.rest.json");
        round_trips::<FolderCreate>("folder-create.request.json");
        round_trips::<AccessSettings>("access-settings.rest.json");
        round_trips::<ListResponse<Permission>>("permissions.rest.json");
        round_trips::<PermissionCreate>("permission-create.request.json");
        round_trips::<ListResponse<RemoteRecorder>>("remote-recorder.rest.json");
        round_trips::<ScheduledRecordingCreate>("scheduled-recording-create.request.json");
        round_trips::<ScheduledRecordingUpdate>("scheduled-recording-update.request.json");
        round_trips::<ScheduledRecording>("scheduled-recording.rest.json");
        round_trips::<SearchIndexUpdates>("search-index-sync-updates.rest.json");
        round_trips::<SearchIndexContent>("search-index-sync-content.rest.json");
        round_trips::<ApiErrorBody>("error.rest.json");
        round_trips::<SessionUpdate>("session-update.request.json");
    }

    #[test]
    fn token_response_decodes() {
        let v = strip_annotations(data("oauth-token.response.json"));
        let t: TokenResponse = serde_json::from_value(v).expect("decodes");
        assert_eq!(t.expires_in, 3600);
        assert_eq!(t.token_type, "Bearer");
    }
}
