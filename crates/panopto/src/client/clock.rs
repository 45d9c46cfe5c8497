//! The time the client paces and waits by. Panopto counts its windows in its own time and the
//! simulator can run faster than the wall clock, so every wait (pacing, back-off, `Retry-After`)
//! and every token expiry is read from one injected [`Clock`]; [`SystemClock`] in production.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A future that resolves once a clock reads a time.
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Resolves once [`Clock::now_ms`] reads `at_ms` or later.
    fn sleep_until(&self, at_ms: i64) -> Sleep<'_>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }

    fn sleep_until(&self, at_ms: i64) -> Sleep<'_> {
        let left = at_ms.saturating_sub(self.now_ms()).max(0) as u64;
        Box::pin(tokio::time::sleep(Duration::from_millis(left)))
    }
}
