//! `SessionManagement.svc`, sessions: `GetSessionsList` (filters: folder, recorder, start/end
//! date on the session start time, states; sort by Name, Date, Duration or State; paging)
//! and `GetSessionsById`.

use panopto::soap::{self, SoapError, SoapSession};

use super::{Context, Prepared};
use crate::clock::{iso_ms, parse_iso};
use crate::panopto::world::{self, PanoptoWorld};

pub fn prepare(op: &str, text: &str, ctx: &Context) -> Option<Prepared> {
    let now = ctx.now;
    let host = format!("https://{}", ctx.host);
    Some(match op {
        "GetSessionsList" => soap::decode_get_sessions_list_request(text).map(|call| {
            let auth = call.auth.clone();
            let work: super::Work = Box::new(move |w, _| list(&w.panopto, &call, &host, now));
            (auth, work)
        }),
        "GetSessionsById" => soap::decode_get_sessions_by_id_request(text).map(|(auth, ids)| {
            let work: super::Work = Box::new(move |w, _| {
                let w = &w.panopto;
                let found: Vec<SoapSession> = ids
                    .iter()
                    .filter_map(|id| w.sessions.get(id.as_str()))
                    .filter(|x| x.created_ms <= now && x.deleted_ms.is_none_or(|d| d > now))
                    .map(|x| soap_session(w, x, &host, now))
                    .collect();
                Ok(soap::encode_get_sessions_by_id_response(&found))
            });
            (auth, work)
        }),
        _ => return None,
    })
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
