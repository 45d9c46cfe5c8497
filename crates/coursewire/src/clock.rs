//! Time, injected (DESIGN principle 7): every lease, timer and schedule reads a [`Clock`], so
//! tests and the demo can run on simulated time. Production uses [`SystemClock`].

use std::fmt;

/// A source of the current time, in unix milliseconds.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now_ms(&self) -> i64;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}
