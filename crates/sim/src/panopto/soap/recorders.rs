//! `RemoteRecorderManagement.svc`: `ListRecorders` and `GetRemoteRecordersByExternalId`, the
//! calls that reveal a recorder's ExternalId (its room).

use panopto::soap;

use super::{Context, Prepared};
use crate::panopto::world::{self, PanoptoWorld};

pub fn prepare(op: &str, text: &str, ctx: &Context) -> Option<Prepared> {
    let now = ctx.now;
    Some(match op {
        "ListRecorders" => soap::decode_list_recorders_request(text).map(|(auth, page)| {
            let work: super::Work = Box::new(move |w, _| {
                let w = &w.panopto;
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
            });
            (auth, work)
        }),
        "GetRemoteRecordersByExternalId" => soap::decode_get_recorders_by_external_id_request(text)
            .map(|(auth, ids)| {
                let work: super::Work = Box::new(move |w, _| {
                    let w = &w.panopto;
                    let items: Vec<_> = ids
                        .iter()
                        .filter_map(|room| w.recorder_by_room.get(room))
                        .filter_map(|id| w.recorders.get(id))
                        .map(|r| soap_recorder(w, r, now))
                        .collect();
                    Ok(soap::encode_get_recorders_by_external_id_response(&items))
                });
                (auth, work)
            }),
        _ => return None,
    })
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
        .sessions_by_scheduled_recorder
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
