//! Pacing that Panopto never refuses. Panopto limits each API client to about 5 requests a
//! second, 100 a minute and 5,000 an hour (DESIGN.md, "Panopto facts"; sliding windows, 429
//! past them). Unlike Canvas's bucket, these are plain counts, and Panopto reports nothing about
//! them before refusing, so the client does not adapt: it counts. Every request takes one slot
//! in a [`Ledger`] of recent request times, admitted only while **every** window holds fewer
//! than its cap; otherwise it waits until the oldest request that fills the window leaves it.
//!
//! **Caps.** A window's cap is `limit × usable × share(class)`, rounded down, at least 1.
//! `usable` (0.8 by default) is the safety margin: our send times are not Panopto's arrival
//! times (latency varies by more than the gaps between requests), and another tool on the same
//! API client may spend a little. The classes partition what is left: a
//! [`Priority::Write`] (a workflow step waiting on Panopto) may use all of it, polling 75 % and
//! backfill 50 %, so a backfill can never take the room polling needs, nor polling the room
//! writes need. Within one process, waiters are also served highest class first.
//!
//! **Shared between processes.** Several processes using one API client must count together.
//! The [`Ledger`] is a trait: [`MemoryLedger`] for one process, and a store-backed ledger in
//! the service (one transaction per request: at 5 requests a second that costs nothing, and it
//! is exact, where publishing each process's counts every so often would let two processes
//! spend the same second).
//!
//! A 429 therefore means the caps are wrong for this site: the transport counts it, warns and
//! retries after `Retry-After`.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::client::clock::Clock;

/// Request classes in priority order (highest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    /// Workflow writes (file, rename, grant access) and the reads they depend on.
    Write = 0,
    /// The poller's regular calls.
    Poll = 1,
    /// First syncs, imports and repairs.
    Backfill = 2,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Priority::Write, Priority::Poll, Priority::Backfill];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Write => "write",
            Priority::Poll => "poll",
            Priority::Backfill => "backfill",
        }
    }
}

/// One of Panopto's windows: at most `limit` requests in any `span_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub span_ms: i64,
    pub limit: u32,
}

/// The windows, the margin and the class shares.
#[derive(Debug, Clone, PartialEq)]
pub struct PaceConfig {
    pub windows: Vec<Window>,
    /// Share of each limit the client uses at all (the safety margin is the rest).
    pub usable: f64,
    /// Share of the usable part per class, in [`Priority::ALL`] order.
    pub shares: [f64; 3],
}

impl Default for PaceConfig {
    fn default() -> Self {
        PaceConfig {
            windows: vec![
                Window {
                    span_ms: 1_000,
                    limit: 5,
                },
                Window {
                    span_ms: 60_000,
                    limit: 100,
                },
                Window {
                    span_ms: 3_600_000,
                    limit: 5_000,
                },
            ],
            usable: 0.8,
            shares: [1.0, 0.75, 0.5],
        }
    }
}

impl PaceConfig {
    /// The caps of `class`: (span, most requests it may find in the window and still go).
    /// The last one spaces requests evenly inside the shortest window (at most one per
    /// `span / usable cap`), whatever their class: a window's worth sent at once would reach
    /// Panopto bunched by network jitter, and a second's requests arriving a little late could
    /// share a window with the next second's.
    pub fn caps(&self, class: Priority) -> Vec<Cap> {
        let cap = |w: &Window, share: f64| {
            ((f64::from(w.limit) * self.usable * share).floor() as u32).max(1)
        };
        let share = self.shares[class as usize];
        let mut caps: Vec<Cap> = self
            .windows
            .iter()
            .map(|w| Cap {
                span_ms: w.span_ms,
                cap: cap(w, share),
            })
            .collect();
        if let Some(shortest) = self.windows.iter().min_by_key(|w| w.span_ms) {
            caps.push(Cap {
                span_ms: (shortest.span_ms / i64::from(cap(shortest, 1.0))).max(1),
                cap: 1,
            });
        }
        caps
    }

    /// Refuses a configuration that would not pace (no window, shares outside (0, 1]).
    pub fn validate(&self) -> Result<(), String> {
        if self.windows.is_empty() {
            return Err("at least one rate-limit window is needed".into());
        }
        if let Some(w) = self.windows.iter().find(|w| w.span_ms <= 0 || w.limit == 0) {
            return Err(format!("window {w:?} must have a positive span and limit"));
        }
        let in_unit = |x: f64| x > 0.0 && x <= 1.0;
        if !in_unit(self.usable) || !self.shares.iter().all(|s| in_unit(*s)) {
            return Err("usable and class shares must be in (0, 1]".into());
        }
        Ok(())
    }
}

/// A window's cap for one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub span_ms: i64,
    pub cap: u32,
}

/// What [`Ledger::take`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// The request is counted at the time asked.
    Taken,
    /// A window is full: try again in this many clock ms.
    WaitMs(i64),
}

pub type LedgerFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// Where an API client's recent requests are counted.
pub trait Ledger: Send + Sync + fmt::Debug {
    /// Counts a request at `now_ms` if each window holds fewer than its cap, atomically with
    /// respect to every other user of the ledger.
    fn take<'a>(&'a self, now_ms: i64, caps: &'a [Cap]) -> LedgerFuture<'a, Take>;

    /// Requests counted in the last `span_ms` of each span, at `now_ms`.
    fn used<'a>(&'a self, now_ms: i64, spans: &'a [i64]) -> LedgerFuture<'a, Vec<u32>>;
}

/// How long until a request at `now` fits every cap, given request times newest last.
pub fn wait_for(times: &VecDeque<i64>, now: i64, caps: &[Cap]) -> Option<i64> {
    caps.iter()
        .filter_map(|c| {
            let cap = c.cap as usize;
            let in_window = times.iter().rev().take_while(|t| now - **t < c.span_ms);
            // Full: the cap-th most recent request must leave the window first.
            in_window
                .enumerate()
                .nth(cap.saturating_sub(1))
                .map(|(_, t)| t + c.span_ms - now)
        })
        .max()
        .map(|w| w.max(1))
}

/// The ledger of one process.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    times: Mutex<VecDeque<i64>>,
}

impl Ledger for MemoryLedger {
    fn take<'a>(&'a self, now_ms: i64, caps: &'a [Cap]) -> LedgerFuture<'a, Take> {
        Box::pin(async move {
            let mut times = self.times.lock().unwrap_or_else(PoisonError::into_inner);
            let longest = caps.iter().map(|c| c.span_ms).max().unwrap_or(0);
            while times.front().is_some_and(|t| now_ms - *t >= longest) {
                times.pop_front();
            }
            if let Some(wait) = wait_for(&times, now_ms, caps) {
                return Ok(Take::WaitMs(wait));
            }
            times.push_back(now_ms);
            Ok(Take::Taken)
        })
    }

    fn used<'a>(&'a self, now_ms: i64, spans: &'a [i64]) -> LedgerFuture<'a, Vec<u32>> {
        Box::pin(async move {
            let times = self.times.lock().unwrap_or_else(PoisonError::into_inner);
            Ok(spans
                .iter()
                .map(|span| times.iter().filter(|t| now_ms - **t < *span).count() as u32)
                .collect())
        })
    }
}

/// Headroom of one window, for metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Headroom {
    pub span_ms: i64,
    pub limit: u32,
    /// Requests in the window now (every process on the ledger).
    pub used: u32,
}

impl Headroom {
    /// Share of the limit still free (0..=1).
    pub fn free_share(&self) -> f64 {
        1.0 - (f64::from(self.used) / f64::from(self.limit)).min(1.0)
    }
}

/// Admissions of one API client. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Pacer {
    config: PaceConfig,
    ledger: Arc<dyn Ledger>,
    clock: Arc<dyn Clock>,
    waiting: Mutex<[usize; 3]>,
    freed: tokio::sync::Notify,
    admitted: [AtomicU64; 3],
    waited_ms: AtomicU64,
}

/// Leaves the waiting count however `acquire` ends (admitted, failed or cancelled).
struct Waiting<'a>(&'a Pacer, Priority);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.lock_waiting()[self.1 as usize] -= 1;
        self.0.freed.notify_waiters();
    }
}

impl Pacer {
    pub fn new(config: PaceConfig, ledger: Arc<dyn Ledger>, clock: Arc<dyn Clock>) -> Pacer {
        Pacer {
            config,
            ledger,
            clock,
            waiting: Mutex::new([0; 3]),
            freed: tokio::sync::Notify::new(),
            admitted: Default::default(),
            waited_ms: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &PaceConfig {
        &self.config
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, [usize; 3]> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn higher_waiting(&self, class: Priority) -> bool {
        self.lock_waiting()[..class as usize].iter().any(|n| *n > 0)
    }

    /// Waits until a request of `class` may be sent now, and counts it.
    pub async fn acquire(&self, class: Priority) -> Result<(), String> {
        self.lock_waiting()[class as usize] += 1;
        let _waiting = Waiting(self, class);
        let caps = self.config.caps(class);
        let started = self.clock.now_ms();
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let now = self.clock.now_ms();
            let wait = if self.higher_waiting(class) {
                // Let the higher class go first; look again when it is served.
                1_000
            } else {
                match self.ledger.take(now, &caps).await? {
                    Take::Taken => {
                        self.admitted[class as usize].fetch_add(1, Ordering::Relaxed);
                        let waited = (now - started).max(0) as u64;
                        self.waited_ms.fetch_add(waited, Ordering::Relaxed);
                        return Ok(());
                    }
                    Take::WaitMs(ms) => ms,
                }
            };
            tokio::select! {
                _ = self.clock.sleep_until(now + wait) => {}
                _ = &mut freed => {}
            }
        }
    }

    /// Requests admitted so far per class, in [`Priority::ALL`] order.
    pub fn admitted(&self) -> [u64; 3] {
        [0, 1, 2].map(|i| self.admitted[i].load(Ordering::Relaxed))
    }

    /// Clock ms spent waiting for admission, summed over requests.
    pub fn waited_ms(&self) -> u64 {
        self.waited_ms.load(Ordering::Relaxed)
    }

    /// How full each of Panopto's windows is now, across every process on the ledger.
    pub async fn headroom(&self) -> Result<Vec<Headroom>, String> {
        let spans: Vec<i64> = self.config.windows.iter().map(|w| w.span_ms).collect();
        let used = self.ledger.used(self.clock.now_ms(), &spans).await?;
        Ok(self
            .config
            .windows
            .iter()
            .zip(used)
            .map(|(w, used)| Headroom {
                span_ms: w.span_ms,
                limit: w.limit,
                used,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(pairs: &[(i64, u32)]) -> Vec<Cap> {
        pairs
            .iter()
            .map(|&(span_ms, cap)| Cap { span_ms, cap })
            .collect()
    }

    #[test]
    fn default_caps_keep_a_margin_and_partition_by_class() {
        let c = PaceConfig::default();
        let cap = |p| c.caps(p).iter().map(|c| c.cap).collect::<Vec<_>>();
        assert_eq!(cap(Priority::Write), [4, 80, 4_000, 1]);
        assert_eq!(cap(Priority::Poll), [3, 60, 3_000, 1]);
        assert_eq!(cap(Priority::Backfill), [2, 40, 2_000, 1]);
        // One request per 250 ms at most, whatever the class.
        assert!(Priority::ALL.iter().all(|p| c.caps(*p)[3].span_ms == 250));
        assert!(c.validate().is_ok());
        let bad = PaceConfig {
            usable: 1.5,
            ..PaceConfig::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn a_full_window_waits_for_its_oldest_request_to_leave() {
        let times: VecDeque<i64> = [0, 100, 200].into_iter().collect();
        let c = caps(&[(1_000, 3)]);
        assert_eq!(wait_for(&times, 300, &c), Some(700));
        assert_eq!(wait_for(&times, 999, &c), Some(1));
        // The request at 0 has left the window at 1000.
        assert_eq!(wait_for(&times, 1_000, &c), None);
        // The tightest of several windows decides.
        let c = caps(&[(1_000, 5), (60_000, 3)]);
        assert_eq!(wait_for(&times, 300, &c), Some(59_700));
    }

    #[tokio::test]
    async fn the_memory_ledger_never_exceeds_any_cap_in_any_window() {
        let ledger = MemoryLedger::default();
        let c = caps(&[(1_000, 4), (60_000, 80)]);
        let mut sent = Vec::new();
        let mut now = 0;
        while now < 180_000 {
            match ledger.take(now, &c).await.unwrap() {
                Take::Taken => sent.push(now),
                Take::WaitMs(w) => now += w,
            }
        }
        for (i, t) in sent.iter().enumerate() {
            let in_second = sent[i..].iter().take_while(|u| **u - t < 1_000).count();
            let in_minute = sent[i..].iter().take_while(|u| **u - t < 60_000).count();
            assert!(in_second <= 4 && in_minute <= 80, "at {t}");
        }
        // And it uses what it may: 80 a minute, three minutes.
        assert_eq!(sent.len(), 240);
    }

    /// A clock that moves only when the test says.
    #[derive(Debug)]
    struct Manual(tokio::sync::watch::Sender<i64>);

    impl Clock for Manual {
        fn now_ms(&self) -> i64 {
            *self.0.borrow()
        }

        fn sleep_until(&self, at_ms: i64) -> crate::client::clock::Sleep<'_> {
            let mut rx = self.0.subscribe();
            Box::pin(async move {
                let _ = rx.wait_for(|now| *now >= at_ms).await;
            })
        }
    }

    #[tokio::test]
    async fn a_waiting_write_goes_before_a_backfill_that_waited_longer() {
        let clock = Arc::new(Manual(tokio::sync::watch::channel(0).0));
        let pacer = Arc::new(Pacer::new(
            PaceConfig::default(),
            Arc::new(MemoryLedger::default()),
            clock.clone(),
        ));
        // Fill the second: four writes, 250 ms apart (the spacing).
        for t in [0, 250, 500, 750] {
            clock.0.send_replace(t);
            pacer.acquire(Priority::Write).await.unwrap();
        }
        let order = Arc::new(Mutex::new(Vec::new()));
        let spawn = |class: Priority| {
            let (pacer, order) = (pacer.clone(), order.clone());
            tokio::spawn(async move {
                pacer.acquire(class).await.unwrap();
                order.lock().unwrap().push(class);
            })
        };
        let backfill = spawn(Priority::Backfill);
        tokio::task::yield_now().await;
        let write = spawn(Priority::Write);
        tokio::task::yield_now().await;
        clock.0.send_replace(1_000);
        write.await.unwrap();
        // The backfill's own cap (2 a second) holds it until the second has room for it.
        clock.0.send_replace(2_000);
        backfill.await.unwrap();
        assert_eq!(
            *order.lock().unwrap(),
            [Priority::Write, Priority::Backfill]
        );
        assert_eq!(pacer.admitted(), [5, 0, 1]);
    }
}
