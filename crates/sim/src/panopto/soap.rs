//! SOAP `SessionManagement.svc`: `GetSessionsList` (filters: folder, recorder, start/end
//! date on the session start time, states; sort by Name, Date, Duration or State; paging)
//! and `GetSessionsById`. Faults come back as SOAP faults with HTTP 500, as WCF sends them.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use panopto::soap::{self, SoapError, SoapSession};

use super::ApiClient;
use super::world::{self, PanoptoWorld};
use crate::clock::{iso_ms, parse_iso};
use crate::sim::AppState;

/// Work on the Panopto world that produces a response envelope.
type SoapWork = Box<dyn FnOnce(&PanoptoWorld) -> Result<String, SoapError> + Send>;

fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn fault(code: &str, message: &str) -> Response {
    xml(
        StatusCode::INTERNAL_SERVER_ERROR,
        soap::encode_fault(code, message),
    )
}

fn soap_session(w: &PanoptoWorld, x: &world::Session, host: &str, now: i64) -> SoapSession {
    let state = x.state_at(now);
    SoapSession {
        creator_id: Some(world::EMPTY_GUID.to_owned()),
        description: x.description.clone(),
        duration: x.duration_at(now),
        editor_url: Some(format!("{host}/Panopto/Pages/Editor/Default.aspx#{}", x.id)),
        external_id: x.external_id.clone(),
        folder_id: Some(x.folder_id.clone()),
        folder_name: w.folders.get(&x.folder_id).map(|f| f.name.clone()),
        id: x.id.clone(),
        ios_video_url: None,
        is_broadcast: x.is_broadcast,
        is_downloadable: false,
        mp3_url: None,
        mp4_url: None,
        name: x.name.clone(),
        notes_url: Some(format!(
            "{host}/Panopto/Pages/Viewer.aspx?id={}&notes=true",
            x.id
        )),
        outputs_page_url: Some(format!(
            "{host}/Panopto/Pages/Sessions/List.aspx?id={}&modalPage=SessionOutputs",
            x.id
        )),
        remote_recorder_ids: x.recorder_id.iter().cloned().collect(),
        share_page_url: Some(format!(
            "{host}/Panopto/Pages/Sessions/List.aspx?id={}&modalPage=SessionShare",
            x.id
        )),
        start_time: Some(iso_ms(x.start_ms)),
        state,
        status_message: Some(
            match state {
                panopto::SessionState::Scheduled => "Scheduled recording",
                panopto::SessionState::Recording | panopto::SessionState::Broadcasting => {
                    "Recording"
                }
                panopto::SessionState::Processing => "Processing",
                _ => "",
            }
            .to_owned(),
        ),
        thumb_url: None,
        viewer_url: Some(format!("{host}/Panopto/Pages/Viewer.aspx?id={}", x.id)),
    }
}

pub async fn session_management(State(s): State<AppState>, body: Bytes) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return fault("s:Client", "the request is not UTF-8");
    };
    let op = match soap::operation_name(text) {
        Ok(op) => op,
        Err(e) => return fault("s:Client", &e.to_string()),
    };
    let now = s.clock.now_ms();
    let host = format!("https://{}", s.config.panopto_hostname);
    let (auth, work): (panopto::soap::AuthenticationInfo, SoapWork) = match op.as_str() {
        "GetSessionsList" => match soap::decode_get_sessions_list_request(text) {
            Ok(call) => {
                let host = host.clone();
                (
                    call.auth.clone(),
                    Box::new(move |w: &PanoptoWorld| list(w, &call, &host, now)),
                )
            }
            Err(e) => return fault("s:Client", &e.to_string()),
        },
        "GetSessionsById" => match soap::decode_get_sessions_by_id_request(text) {
            Ok((auth, ids)) => {
                let host = host.clone();
                (
                    auth,
                    Box::new(move |w: &PanoptoWorld| {
                        let found: Vec<SoapSession> = ids
                            .iter()
                            .filter_map(|id| w.sessions.get(id.as_str()))
                            .filter(|x| x.created_ms <= now && x.deleted_ms.is_none_or(|d| d > now))
                            .map(|x| soap_session(w, x, &host, now))
                            .collect();
                        Ok(soap::encode_get_sessions_by_id_response(&found))
                    }),
                )
            }
            Err(e) => return fault("s:Client", &e.to_string()),
        },
        other => return fault("s:Client", &format!("operation {other} is not simulated")),
    };
    let Some(client) = s.panopto.soap_client(
        &s.config,
        auth.user_key.as_deref(),
        auth.password.as_deref(),
        now,
    ) else {
        return fault("s:Client", "Invalid user key or password");
    };
    let mut resp = if let Err(wait) = s.panopto.admit(&client, s.panopto_limits_now_ms()) {
        super::throttled(wait)
    } else {
        match s.with_world_read(|w| work(&w.panopto)) {
            Ok(body) => xml(StatusCode::OK, body),
            Err(e) => fault("s:Client", &e.to_string()),
        }
    };
    resp.extensions_mut().insert(ApiClient(client));
    resp
}

fn list(
    w: &PanoptoWorld,
    call: &soap::GetSessionsListCall,
    host: &str,
    now: i64,
) -> Result<String, SoapError> {
    let r = &call.request;
    let date = |v: &Option<String>, field: &'static str| -> Result<Option<i64>, SoapError> {
        match v {
            None => Ok(None),
            Some(t) => parse_iso(t).map(Some).ok_or_else(|| SoapError::Value {
                field,
                value: t.clone(),
            }),
        }
    };
    let start = date(&r.start_date, "StartDate")?;
    let end = date(&r.end_date, "EndDate")?;
    let q = call.search_query.as_ref().map(|q| q.to_lowercase());
    let mut hits: Vec<&world::Session> = w
        .sessions
        .values()
        .filter(|x| x.created_ms <= now && x.deleted_ms.is_none_or(|d| d > now))
        .filter(|x| r.folder_id.as_ref().is_none_or(|f| *f == x.folder_id))
        .filter(|x| {
            r.remote_recorder_id
                .as_ref()
                .is_none_or(|rid| x.recorder_id.as_ref() == Some(rid))
        })
        .filter(|x| start.is_none_or(|t| x.start_ms >= t) && end.is_none_or(|t| x.start_ms <= t))
        .filter(|x| r.states.is_empty() || r.states.contains(&x.state_at(now)))
        .filter(|x| q.as_ref().is_none_or(|q| x.name.to_lowercase().contains(q)))
        .collect();
    match r.sort_by.as_deref() {
        Some("Name") => hits.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id))),
        Some("Duration") => hits.sort_by_key(|x| (x.end_ms - x.start_ms, x.id.clone())),
        Some("State") => hits.sort_by_key(|x| (x.state_at(now), x.id.clone())),
        _ => hits.sort_by_key(|x| (x.start_ms, x.id.clone())),
    }
    if r.sort_increasing == Some(false) {
        hits.reverse();
    }
    let total = hits.len() as u64;
    let p = r.pagination.unwrap_or_default();
    let per = p.max_number_results.clamp(1, 1000) as usize;
    let page: Vec<SoapSession> = hits
        .into_iter()
        .skip((p.page_number as usize).saturating_mul(per))
        .take(per)
        .map(|x| soap_session(w, x, host, now))
        .collect();
    Ok(soap::encode_get_sessions_list_response(&page, total))
}

fn soap_recorder(
    w: &PanoptoWorld,
    r: &world::Recorder,
    now: i64,
) -> panopto::soap::SoapRemoteRecorder {
    let state = match w.recorder_state(&r.id, now) {
        panopto::RemoteRecorderState::RecorderRunning => "Stopped".to_owned(),
        other => format!("{other:?}"),
    };
    let upcoming = w
        .sessions_by_recorder
        .get(&r.id)
        .map(|ids| {
            ids.iter()
                .filter_map(|id| w.sessions.get(id))
                .filter(|x| {
                    x.deleted_ms.is_none()
                        && x.start_ms > now
                        && x.scheduled_recorder_id.as_deref() == Some(r.id.as_str())
                })
                .map(|x| x.id.clone())
                .collect()
        })
        .unwrap_or_default();
    let capturing = state == "Recording";
    panopto::soap::SoapRemoteRecorder {
        devices: ["Video", "Audio", "Screen"]
            .iter()
            .map(|d| panopto::soap::RecorderDevice {
                device_type: (*d).to_owned(),
                is_capturing: capturing,
                name: format!("{} {d}", r.name),
            })
            .collect(),
        external_id: Some(r.room_id.clone()),
        id: r.id.clone(),
        machine_ip: Some(r.machine_ip.clone()),
        name: r.name.clone(),
        preview_url: None,
        scheduled_recordings: upcoming,
        settings_url: None,
        state,
    }
}

/// `RemoteRecorderManagement.svc`: `ListRecorders` and `GetRemoteRecordersByExternalId`, the
/// calls that reveal a recorder's ExternalId (its room).
pub async fn remote_recorder_management(State(s): State<AppState>, body: Bytes) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return fault("s:Client", "the request is not UTF-8");
    };
    let op = match soap::operation_name(text) {
        Ok(op) => op,
        Err(e) => return fault("s:Client", &e.to_string()),
    };
    let now = s.clock.now_ms();
    let (auth, work): (panopto::soap::AuthenticationInfo, SoapWork) = match op.as_str() {
        "ListRecorders" => match soap::decode_list_recorders_request(text) {
            Ok((auth, page)) => (
                auth,
                Box::new(move |w: &PanoptoWorld| {
                    let mut all: Vec<&world::Recorder> = w.recorders.values().collect();
                    all.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
                    let per = page.max_number_results.clamp(1, 1000) as usize;
                    let items: Vec<_> = all
                        .iter()
                        .skip((page.page_number as usize).saturating_mul(per))
                        .take(per)
                        .map(|r| soap_recorder(w, r, now))
                        .collect();
                    Ok(soap::encode_list_recorders_response(
                        &items,
                        all.len() as u64,
                    ))
                }),
            ),
            Err(e) => return fault("s:Client", &e.to_string()),
        },
        "GetRemoteRecordersByExternalId" => {
            match soap::decode_get_recorders_by_external_id_request(text) {
                Ok((auth, ids)) => (
                    auth,
                    Box::new(move |w: &PanoptoWorld| {
                        let items: Vec<_> = ids
                            .iter()
                            .filter_map(|room| w.recorder_by_room.get(room))
                            .filter_map(|id| w.recorders.get(id))
                            .map(|r| soap_recorder(w, r, now))
                            .collect();
                        Ok(soap::encode_get_recorders_by_external_id_response(&items))
                    }),
                ),
                Err(e) => return fault("s:Client", &e.to_string()),
            }
        }
        other => return fault("s:Client", &format!("operation {other} is not simulated")),
    };
    let Some(client) = s.panopto.soap_client(
        &s.config,
        auth.user_key.as_deref(),
        auth.password.as_deref(),
        now,
    ) else {
        return fault("s:Client", "Invalid user key or password");
    };
    let mut resp = if let Err(wait) = s.panopto.admit(&client, s.panopto_limits_now_ms()) {
        super::throttled(wait)
    } else {
        match s.with_world_read(|w| work(&w.panopto)) {
            Ok(body) => xml(StatusCode::OK, body),
            Err(e) => fault("s:Client", &e.to_string()),
        }
    };
    resp.extensions_mut().insert(ApiClient(client));
    resp
}
