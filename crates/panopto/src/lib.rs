//! Panopto client library and wire types: the JSON objects of REST v1 (`/Panopto/api/v1`, PascalCase, lists as
//! `{"Results":[...]}`), the OAuth2 token response, and the SOAP 4.6 calls that REST lacks:
//! session states (`GetSessionsList`, whose `Session.State` is the only way to tell
//! Processing from Complete), recorders by external id, folders by external id, external
//! groups and their members, access grants (`soap::encode_call` / `decode_call` for any
//! operation, typed data contracts in `soap::contracts`). Shapes follow `shared/data/panopto/`
//! (the captured SOAP envelopes included) and `reference/panopto.md`.
//!
//! The wire types (`rest`, `soap`, `xml`) hold data shapes and their encodings only: no HTTP,
//! no clock. The simulator serves these types and [`client`] reads them, so both sides agree
//! by construction. Deserialisation is lenient (unknown fields ignored, most fields optional)
//! because Panopto leaves many members `null` depending on rights and site settings.

pub mod client;
pub mod rest;
pub mod soap;
pub mod xml;

pub use rest::*;
pub use soap::{SessionState, SoapError, SoapSession};
