//! Canvas LMS client library: Live Events decoding and signature checks, and (later) the REST
//! and GraphQL client with its quota governor.

pub mod client;
pub mod live_events;
pub mod signature;

pub use crate::live_events::{
    CloudEvent, DecodeError, DecodedEvent, Format, decode_bytes, decode_value,
};
