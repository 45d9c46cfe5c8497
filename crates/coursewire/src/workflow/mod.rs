//! The recording workflow (DESIGN "The recording workflow"): each Panopto session matched to
//! the lecture it records ([`matching`]), then filed, shared with its sections, captioned,
//! posted in Canvas and audited ([`steps`]). Both are pure; the processor applies their
//! answers in its transaction and the command executor performs the external writes.

pub mod matching;
pub mod steps;
