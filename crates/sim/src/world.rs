//! The simulated world behind one lock: the university (Canvas side), the Panopto site, the
//! term timeline and the outbox of Live Events produced by changes not yet handed to
//! delivery. Keeping them together makes every change and its events one atomic step: an
//! event is never delivered for a change a concurrent REST read cannot see yet.

use serde_json::Value;

use crate::live_events::envelope::{Context, Envelopes, Origin};
use crate::panopto::world::PanoptoWorld;
use crate::timeline::Timeline;
use crate::university::University;

#[derive(Debug)]
pub struct World {
    pub uni: University,
    pub panopto: PanoptoWorld,
    pub timeline: Timeline,
    pub envelopes: Envelopes,
    pub outbox: Vec<Value>,
    /// Writes made through the APIs (see [`crate::counters::Writes`]).
    pub writes: crate::counters::Writes,
}

impl World {
    /// Queue a Live Event for delivery once the current change is committed.
    pub fn emit(
        &mut self,
        event_name: &str,
        origin: &Origin,
        context: Context,
        body: Value,
        at_ms: i64,
    ) {
        let env = self
            .envelopes
            .envelope(&self.uni, event_name, origin, context, body, at_ms);
        self.outbox.push(env);
    }
}
