//! The recording workflow (DESIGN "The recording workflow"): each Panopto session matched to
//! the lecture it records ([`matching`]), then filed, shared with its sections, captioned,
//! posted in Canvas and audited ([`steps`]), under the plan its rules render ([`plan`]). These
//! are pure; the processor applies their answers in its transaction ([`apply`]) and the
//! command executor ([`execute`]) performs the external writes ([`effects`]) for the section
//! rosters the catalog holds ([`roster`]).

pub mod apply;
pub mod effects;
pub mod execute;
pub mod matching;
pub mod operate;
pub mod plan;
pub mod roster;
pub mod steps;
