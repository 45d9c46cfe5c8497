//! Any bytes as a Live Events body: decoding (Canvas and Caliper, with the envelope under a
//! claim or not) and the tenant lookup must answer, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = canvas::live_events::decode_bytes(data);
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = canvas::live_events::root_accounts(&value);
        if let Ok(envelope) = canvas::live_events::unwrap_envelope(value) {
            let _ = canvas::live_events::decode_value(&envelope);
            let _ = canvas::live_events::root_accounts(&envelope);
        }
    }
});
