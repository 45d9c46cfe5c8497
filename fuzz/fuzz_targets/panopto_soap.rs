//! Any text as a Panopto SOAP response: the XML reader and every response decoder must
//! answer, never panic (the simulator and the client both read these).
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
});
