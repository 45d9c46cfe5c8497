//! Time, injected (DESIGN principle 7): every lease, timer and schedule reads a [`Clock`], so
//! tests and the demo can run on simulated time. Production uses [`SystemClock`]; the demo and
//! the tests that need days to pass use the simulator's [`SimClock`], which runs at a speed
//! (2,400× in the demo), pauses and steps.
//!
//! Two kinds of duration meet here. **Timers** (a retry schedule, a reconcile period, when an
//! endpoint is disabled, a lecture's grace) are the clock's: on the simulator's clock an hour's
//! retry passes in an hour of simulated time. **Leases** bound real work (an HTTP attempt, a
//! processing batch) and a dead process's hold: they are real durations, turned into the
//! clock's milliseconds with [`Clock::span_ms`], so a lease covers the same real time at any
//! speed, and a paused clock never lets one expire.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sim::SimClock;

/// A future that resolves when a clock reaches a time.
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A source of the current time, in unix milliseconds.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now_ms(&self) -> i64;

    /// How many of this clock's milliseconds pass in one real millisecond while it runs.
    fn rate(&self) -> f64 {
        1.0
    }

    /// A real duration (a lease, a liveness window) in this clock's milliseconds.
    fn span_ms(&self, real: Duration) -> i64 {
        let ms = real.as_millis() as f64 * self.rate();
        if ms >= i64::MAX as f64 {
            i64::MAX
        } else {
            ms as i64
        }
    }

    /// Resolves once the clock reads `at_ms` or later. The default looks every few real
    /// milliseconds, which suits a clock that only moves when a test steps it.
    fn sleep_until(&self, at_ms: i64) -> Sleep<'_> {
        Box::pin(async move {
            loop {
                let left = at_ms.saturating_sub(self.now_ms());
                if left <= 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(left.clamp(1, 20) as u64)).await;
            }
        })
    }

    /// Resolves once `duration` has passed on the clock.
    fn sleep(&self, duration: Duration) -> Sleep<'_> {
        let at = self
            .now_ms()
            .saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX));
        self.sleep_until(at)
    }
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    fn sleep_until(&self, at_ms: i64) -> Sleep<'_> {
        let left = at_ms.saturating_sub(self.now_ms()).max(0);
        Box::pin(tokio::time::sleep(Duration::from_millis(left as u64)))
    }
}

/// The simulator's clock: Canvas's and Panopto's time in the demo and the tests that run on
/// it, so coursewire and the systems it talks to agree on what time it is.
impl Clock for SimClock {
    fn now_ms(&self) -> i64 {
        SimClock::now_ms(self)
    }

    fn rate(&self) -> f64 {
        self.speed()
    }

    fn sleep_until(&self, at_ms: i64) -> Sleep<'_> {
        Box::pin(SimClock::sleep_until(self, at_ms))
    }
}

/// A simulator's clock followed over HTTP (`clock.follow`): for `serve` processes that take
/// part in a simulated run (the demo's chaos mode, crash tests) and must agree with the
/// simulator on the time. It reads `GET /_sim/clock` every [`FollowedClock::REFRESH`] and
/// extrapolates in between at the simulator's speed; it never goes backwards. Not for
/// production: a production process reads the wall clock.
#[derive(Debug)]
pub struct FollowedClock {
    anchor: std::sync::Mutex<Anchor>,
    last: std::sync::atomic::AtomicI64,
}

#[derive(Debug, Clone, Copy)]
struct Anchor {
    sim_ms: i64,
    at: std::time::Instant,
    speed: f64,
    paused: bool,
}

impl FollowedClock {
    pub const REFRESH: Duration = Duration::from_millis(100);

    async fn read(http: &reqwest::Client, url: &str) -> anyhow::Result<Anchor> {
        let v: serde_json::Value = http
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let sim_ms = v["now_ms"]
            .as_i64()
            .ok_or_else(|| anyhow::anyhow!("{url}: no now_ms in the answer"))?;
        Ok(Anchor {
            sim_ms,
            at: std::time::Instant::now(),
            speed: v["speed"].as_f64().unwrap_or(1.0),
            paused: v["paused"].as_bool().unwrap_or(false),
        })
    }

    /// Follows the simulator at `base` (its first answer is required) until `cancel`.
    pub async fn follow(
        base: &str,
        cancel: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<std::sync::Arc<FollowedClock>> {
        let url = format!("{}/_sim/clock", base.trim_end_matches('/'));
        let http = crate::app::http_client()?;
        let first = Self::read(&http, &url).await?;
        let clock = std::sync::Arc::new(FollowedClock {
            anchor: std::sync::Mutex::new(first),
            last: std::sync::atomic::AtomicI64::new(first.sim_ms),
        });
        let me = clock.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Self::REFRESH) => {}
                }
                if let Ok(a) = Self::read(&http, &url).await
                    && let Ok(mut anchor) = me.anchor.lock()
                {
                    *anchor = a;
                }
            }
        });
        Ok(clock)
    }
}

impl Clock for FollowedClock {
    fn now_ms(&self) -> i64 {
        use std::sync::atomic::Ordering;
        let a = self.anchor.lock().map(|a| *a).ok();
        let estimate = a.map_or(0, |a| {
            if a.paused {
                a.sim_ms
            } else {
                a.sim_ms + (a.at.elapsed().as_secs_f64() * 1000.0 * a.speed) as i64
            }
        });
        // Never backwards, whatever a late answer says.
        self.last
            .fetch_max(estimate, Ordering::AcqRel)
            .max(estimate)
    }

    fn rate(&self) -> f64 {
        self.anchor.lock().map_or(1.0, |a| a.speed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_lease_is_longer_on_a_faster_clock() {
        let sim = SimClock::new(chrono::Utc::now(), 2_400.0, true);
        assert_eq!(SystemClock.span_ms(Duration::from_secs(30)), 30_000);
        assert_eq!(sim.span_ms(Duration::from_secs(30)), 72_000_000);
        assert_eq!(sim.span_ms(Duration::MAX), i64::MAX);
    }

    #[tokio::test]
    async fn sleeping_on_a_paused_clock_waits_for_a_step() {
        let sim = SimClock::new(chrono::Utc::now(), 1.0, true);
        let at = Clock::now_ms(&sim) + 60_000;
        let woke = tokio::time::timeout(Duration::from_millis(100), Clock::sleep_until(&sim, at));
        assert!(
            woke.await.is_err(),
            "a paused clock does not reach a later time"
        );
        sim.advance(Duration::from_secs(60));
        tokio::time::timeout(Duration::from_secs(5), Clock::sleep_until(&sim, at))
            .await
            .expect("woken once stepped past the time");
    }
}
