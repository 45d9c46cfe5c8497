//! Any text as a Panopto SOAP request or response: the XML reader, every decoder and the
//! generic call/result reader with the typed contracts must answer, never panic (the
//! simulator and the client both read these).
#![no_main]

use libfuzzer_sys::fuzz_target;
use panopto::soap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = panopto::xml::parse(text);
    let _ = soap::operation_name(text);
    let _ = soap::decode_get_sessions_list_response(text);
    let _ = soap::decode_get_sessions_by_id_response(text);
    let _ = soap::decode_list_recorders_response(text);
    let _ = soap::decode_get_recorders_by_external_id_response(text);
    let _ = soap::decode_get_sessions_list_request(text);
    // The generic reader every folder, user and access operation goes through.
    if let Ok(call) = soap::decode_call(text) {
        let _ = call.text("folderId");
        let _ = call.bool("isPublic");
        let _ = call.list("memberIds");
    }
    if let Ok(Some(result)) = soap::decode_result(text, "GetSessionAccessDetails") {
        let _ = soap::SessionAccessDetails::from_element(&result);
        let _ = soap::FolderAccessDetails::from_element(&result);
        let _ = soap::SoapGroup::from_element(&result);
        let _ = soap::SoapUser::from_element(&result);
        let _ = soap::SoapFolder::from_element(&result);
    }
});
