//! Any text as a signed Live Event: the JWS header checks (size, base64url, JSON, `alg`,
//! `kid`) run before any key is looked up, and must refuse, never panic.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use canvas::signature::{JwksSource, Verifier};
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let empty: jsonwebtoken::jwk::JwkSet =
            serde_json::from_str(r#"{"keys": []}"#).expect("an empty JWKS");
        Verifier::new(JwksSource::Fixed(empty), Duration::from_secs(3600), 60)
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = runtime().block_on(verifier().verify(text));
    }
});
