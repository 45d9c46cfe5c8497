//! The one error type of the Live Events decoder.
//!
//! A decode error means "this payload cannot be turned into events at all": it is not JSON, not
//! an object, not a shape we know, or lacks the one field nothing can be derived without
//! (`metadata.event_name`). Everything softer — odd timestamps, ids of the wrong type, unknown
//! event names — is a warning on the decoded event instead, because the ingest must never reject
//! a signed event for a field it does not need. Variants are grouped by what the caller does:
//! all of them mean "quarantine the raw payload with this message".

use thiserror::Error;

/// Deepest JSON nesting the decoder accepts; the same limit `serde_json` applies when parsing
/// text, enforced again for [`serde_json::Value`]s built in memory so that nothing recursive in
/// the decoder can overflow the stack.
pub const MAX_DEPTH: usize = 128;

/// Why a payload could not be decoded into Live Events. Each message is one line, fit for an
/// inbox `quarantined` reason.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The bytes are not JSON (syntax error, truncated, not UTF-8, trailing garbage).
    #[error("payload is not valid JSON: {0}")]
    NotJson(String),
    /// The JSON nests deeper than [`MAX_DEPTH`] levels.
    #[error("payload JSON nests deeper than 128 levels")]
    TooDeep,
    /// The top-level JSON value is not an object.
    #[error("payload is JSON but not an object")]
    NotAnObject,
    /// An object that is neither a Canvas-format event nor a Caliper envelope.
    #[error(
        "payload is neither a Canvas live event {{metadata, body}} nor a Caliper 1.1 envelope {{sensor, data: [...]}}"
    )]
    UnknownFormat,
    /// A field without which no event can be built is absent (or null, or empty).
    #[error("required field `{0}` is missing")]
    MissingField(&'static str),
    /// A required field, or a structural one, has the wrong JSON type.
    #[error("field `{field}` has the wrong type: expected {expected}")]
    WrongType {
        /// Path of the field, e.g. `metadata.event_name` or `data[2]`.
        field: String,
        /// What was expected there, e.g. "a string".
        expected: &'static str,
    },
    /// [`unwrap_envelope`](super::unwrap_envelope): no claim holds an event envelope.
    #[error("JWT claims hold no Canvas or Caliper event envelope")]
    NoEnvelope,
    /// [`unwrap_envelope`](super::unwrap_envelope): more than one claim holds an envelope.
    #[error("JWT claims hold more than one event envelope (claims: {0})")]
    AmbiguousEnvelope(String),
}

impl DecodeError {
    /// Classifies a `serde_json` parse error: its recursion-limit error becomes [`Self::TooDeep`],
    /// everything else [`Self::NotJson`].
    pub(crate) fn from_json(err: &serde_json::Error) -> Self {
        let text = err.to_string();
        if text.contains("recursion limit exceeded") {
            Self::TooDeep
        } else {
            Self::NotJson(text)
        }
    }

    pub(crate) fn wrong_type(field: impl Into<String>, expected: &'static str) -> Self {
        Self::WrongType {
            field: field.into(),
            expected,
        }
    }
}
