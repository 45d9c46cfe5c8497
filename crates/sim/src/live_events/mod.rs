//! Live Events: building Canvas-format messages ([`envelope`]), signing them ([`keys`]) and
//! delivering them to HTTPS subscriptions the way Canvas's Data Services do ([`delivery`]):
//! one POST per event, 15 s timeout, 4 tries with back-off and jitter over 10–20 simulated
//! minutes, then dropped; deactivation after the documented failure counts; no ordering and
//! no de-duplication promise, plus fault knobs that make duplicates, reordering, loss and
//! outages happen on demand.

pub mod delivery;
pub mod envelope;
pub mod keys;

pub use delivery::{DeliveryFaults, Hub, LiveEventCounters, SubscriptionInfo};
pub use keys::KeyRing;
