//! The simulated clock: simulated time runs `speed` times faster than real time (600× by
//! default: a ten-hour teaching day in a minute), and tests can pause it, step it or set it.
//! Everything in the simulator that has a time (token expiry, the term timeline, lecture
//! states, Live Events retry schedules) reads this clock; nothing reads the system clock for
//! simulated facts. Real-time concerns (HTTP timeouts, Canvas's request throttle by default,
//! Panopto's per-second rate limits, JWT `iat`) deliberately do not.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy)]
struct State {
    /// Simulated time (ms since the Unix epoch) at `anchor_real`.
    anchor_sim_ms: f64,
    anchor_real: Instant,
    speed: f64,
    paused: bool,
}

impl State {
    fn now_ms(&self, real: Instant) -> f64 {
        if self.paused {
            self.anchor_sim_ms
        } else {
            self.anchor_sim_ms
                + real.duration_since(self.anchor_real).as_secs_f64() * 1000.0 * self.speed
        }
    }

    /// Re-anchor at `real` so later changes of speed or pause start from the current time.
    fn rebase(&mut self, real: Instant) {
        self.anchor_sim_ms = self.now_ms(real);
        self.anchor_real = real;
    }
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    /// Bumped on every manual change (pause, resume, step, set, speed), so sleepers re-plan.
    changed: watch::Sender<u64>,
}

/// A shareable handle on the simulated clock.
#[derive(Debug, Clone)]
pub struct SimClock {
    inner: Arc<Inner>,
}

/// Error for a request to move the clock backwards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the simulated clock cannot go backwards (now {now}, requested {requested})")]
pub struct Backwards {
    pub now: String,
    pub requested: String,
}

impl SimClock {
    pub fn new(start: DateTime<Utc>, speed: f64, paused: bool) -> SimClock {
        let (changed, _) = watch::channel(0);
        SimClock {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    anchor_sim_ms: start.timestamp_millis() as f64,
                    anchor_real: Instant::now(),
                    speed: sanitize_speed(speed),
                    paused,
                }),
                changed,
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut st = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(&mut st)
    }

    fn notify(&self) {
        self.inner.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Simulated time in whole milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        self.with(|s| s.now_ms(Instant::now()).floor() as i64)
    }

    pub fn now(&self) -> DateTime<Utc> {
        from_ms(self.now_ms())
    }

    pub fn is_paused(&self) -> bool {
        self.with(|s| s.paused)
    }

    pub fn speed(&self) -> f64 {
        self.with(|s| s.speed)
    }

    pub fn pause(&self) {
        self.with(|s| {
            s.rebase(Instant::now());
            s.paused = true;
        });
        self.notify();
    }

    pub fn resume(&self) {
        self.with(|s| {
            s.rebase(Instant::now());
            s.paused = false;
        });
        self.notify();
    }

    pub fn set_speed(&self, speed: f64) {
        self.with(|s| {
            s.rebase(Instant::now());
            s.speed = sanitize_speed(speed);
        });
        self.notify();
    }

    /// Step simulated time forward (works paused or running).
    pub fn advance(&self, by: Duration) {
        self.with(|s| {
            s.rebase(Instant::now());
            s.anchor_sim_ms += by.as_secs_f64() * 1000.0;
        });
        self.notify();
    }

    /// Jump to an absolute simulated time; never backwards (timers and expiries would break).
    pub fn set(&self, to: DateTime<Utc>) -> Result<(), Backwards> {
        let target = to.timestamp_millis() as f64;
        let result = self.with(|s| {
            s.rebase(Instant::now());
            if target < s.anchor_sim_ms.floor() {
                return Err(Backwards {
                    now: iso_ms(s.anchor_sim_ms as i64),
                    requested: iso_ms(target as i64),
                });
            }
            s.anchor_sim_ms = target;
            Ok(())
        });
        self.notify();
        result
    }

    /// A receiver that changes whenever the clock is manipulated (not as time passes).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    /// Real time until simulated `at_ms`, or `None` while paused (only a manual change helps).
    pub fn real_until(&self, at_ms: i64) -> Option<Duration> {
        self.with(|s| {
            let now = s.now_ms(Instant::now());
            if now >= at_ms as f64 {
                return Some(Duration::ZERO);
            }
            if s.paused {
                return None;
            }
            let real_ms = (at_ms as f64 - now) / s.speed;
            Some(Duration::from_secs_f64((real_ms / 1000.0).max(0.0)))
        })
    }

    /// Resolve once simulated time reaches `at_ms` (by running, stepping or setting).
    pub async fn sleep_until(&self, at_ms: i64) {
        let mut rx = self.subscribe();
        loop {
            match self.real_until(at_ms) {
                Some(d) if d.is_zero() => return,
                Some(d) => {
                    // Re-check at least every second of real time: speeds may change.
                    let d = d.min(Duration::from_secs(1));
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = rx.changed() => {}
                    }
                }
                None => {
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

fn sanitize_speed(speed: f64) -> f64 {
    if speed.is_finite() && speed > 0.0 {
        speed
    } else {
        1.0
    }
}

pub fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `2025-08-25T05:00:00Z`: the form Canvas REST and most event bodies use.
pub fn iso(ms: i64) -> String {
    from_ms(ms).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `2025-08-25T05:00:00.000Z`: Live Events `event_time` and Panopto times.
pub fn iso_ms(ms: i64) -> String {
    from_ms(ms).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Parse an ISO-8601 / RFC 3339 time (a trailing `Z` or an offset) into ms.
pub fn parse_iso(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| d.timestamp_millis())
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc().timestamp_millis())
        })
}

/// The Panopto client paces, backs off and judges token expiry on the simulated clock, so
/// limits counted in simulated time are kept at any speed.
impl panopto::client::Clock for SimClock {
    fn now_ms(&self) -> i64 {
        SimClock::now_ms(self)
    }

    fn sleep_until(&self, at_ms: i64) -> panopto::client::Sleep<'_> {
        Box::pin(SimClock::sleep_until(self, at_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 8, 25, 5, 0, 0)
            .single()
            .expect("valid")
    }

    #[test]
    fn paused_clock_moves_only_when_stepped() {
        let c = SimClock::new(start(), 600.0, true);
        let t0 = c.now_ms();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(c.now_ms(), t0);
        c.advance(Duration::from_secs(90));
        assert_eq!(c.now_ms(), t0 + 90_000);
        assert!(c.set(start()).is_err(), "backwards is refused");
        c.set(from_ms(t0 + 3_600_000)).expect("forward");
        assert_eq!(c.now_ms(), t0 + 3_600_000);
        assert_eq!(
            c.real_until(t0 + 3_700_000),
            None,
            "paused: no real deadline"
        );
    }

    #[test]
    fn running_clock_runs_at_speed() {
        let c = SimClock::new(start(), 1000.0, false);
        let t0 = c.now_ms();
        std::thread::sleep(Duration::from_millis(20));
        // At least 20 ms real × 1000 = 20 s simulated have passed.
        assert!(c.now_ms() - t0 >= 20_000);
        let d = c.real_until(c.now_ms() + 60_000).expect("running");
        assert!(d <= Duration::from_millis(60));
    }

    #[tokio::test]
    async fn sleepers_wake_on_step() {
        let c = SimClock::new(start(), 1.0, true);
        let target = c.now_ms() + 10_000;
        let c2 = c.clone();
        let waiter = tokio::spawn(async move { c2.sleep_until(target).await });
        tokio::task::yield_now().await;
        c.advance(Duration::from_secs(10));
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woke")
            .expect("joined");
    }

    #[test]
    fn formats() {
        let ms = start().timestamp_millis() + 218;
        assert_eq!(iso(ms), "2025-08-25T05:00:00Z");
        assert_eq!(iso_ms(ms), "2025-08-25T05:00:00.218Z");
        assert_eq!(parse_iso("2025-08-25T05:00:00.218Z"), Some(ms));
        assert_eq!(parse_iso("2025-08-25T00:00:00.218-05:00"), Some(ms));
        assert_eq!(parse_iso("nope"), None);
    }
}
