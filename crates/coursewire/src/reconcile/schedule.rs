//! When the background reconciler reads which course: one pass over every course per period,
//! courses `period / courses` apart (so Canvas sees a steady trickle at background priority,
//! never a burst), and an immediate pass (a backfill) when Live Events have probably been lost:
//!
//! * **silence**: during teaching hours no Canvas inbox row for `silence_minutes` (Canvas is
//!   busy then; silence means delivery broke, canvas.md A4). Measured from the newest Canvas
//!   row or the last backfill, whichever is later, so a long silence backfills once per
//!   `silence_minutes`, not on every check;
//! * **declared outage**: an operator-declared window has ended (once per window and process).
//!
//! Time of day, the period and the checks are all the injected clock's: on the simulator's
//! clock a 4-hour period is 4 simulated hours.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, Timelike, Weekday};
use tokio_util::sync::CancellationToken;

use super::{Mode, Reconciler};
use crate::clock::Clock;
use crate::config::{OutageWindow, ReconcileConfig, UniversityConfig};

/// Scheduling settings, validated from `[reconcile]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub period: Duration,
    pub check: Duration,
    pub silence_ms: i64,
    pub teaching: TeachingHours,
    pub outages: Vec<OutageWindow>,
}

impl Settings {
    pub fn from_config(
        config: &ReconcileConfig,
        university: &UniversityConfig,
    ) -> anyhow::Result<Self> {
        let (start_minute, end_minute) = university.teaching_minutes()?;
        Ok(Self {
            period: Duration::from_secs(config.period_seconds),
            check: Duration::from_secs(config.check_seconds),
            silence_ms: i64::try_from(config.silence_minutes.saturating_mul(60_000))
                .unwrap_or(i64::MAX),
            teaching: TeachingHours {
                days: university.teaching_weekdays()?,
                start_minute,
                end_minute,
                zone: university.zone()?,
            },
            outages: config.outages.clone(),
        })
    }
}

/// When silence from Canvas is suspicious.
#[derive(Debug, Clone)]
pub struct TeachingHours {
    pub days: Vec<Weekday>,
    pub start_minute: u32,
    pub end_minute: u32,
    pub zone: chrono_tz::Tz,
}

impl TeachingHours {
    pub fn contains(&self, at_ms: i64) -> bool {
        let Some(utc) = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(at_ms) else {
            return false;
        };
        let local = utc.with_timezone(&self.zone);
        let minute = local.hour() * 60 + local.minute();
        self.days.contains(&local.weekday())
            && (self.start_minute..self.end_minute).contains(&minute)
    }
}

/// The backfill triggers' memory.
#[derive(Debug)]
pub struct Triggers {
    settings: Settings,
    started_ms: i64,
    last_backfill_ms: Option<i64>,
    fired_outages: Vec<bool>,
}

impl Triggers {
    pub fn new(settings: Settings, started_ms: i64) -> Self {
        let fired_outages = vec![false; settings.outages.len()];
        Self {
            settings,
            started_ms,
            last_backfill_ms: None,
            fired_outages,
        }
    }

    /// Why a backfill should start now, if it should; `last_canvas_ms` is the newest Canvas
    /// inbox row. A returned reason counts as the backfill having started.
    pub fn due(&mut self, now_ms: i64, last_canvas_ms: Option<i64>) -> Option<String> {
        let mut reason = None;
        for (window, fired) in self.settings.outages.iter().zip(&mut self.fired_outages) {
            if !*fired && window.to.timestamp_millis() <= now_ms {
                *fired = true;
                reason = Some(format!(
                    "declared Live Events outage {} … {} is over",
                    window.from, window.to
                ));
            }
        }
        if reason.is_none() && self.settings.teaching.contains(now_ms) {
            let heard = last_canvas_ms.unwrap_or(self.started_ms);
            let since = heard.max(self.last_backfill_ms.unwrap_or(i64::MIN));
            if now_ms.saturating_sub(since) >= self.settings.silence_ms {
                reason = Some(format!(
                    "no Canvas Live Event for {} s during teaching hours",
                    now_ms.saturating_sub(heard) / 1000
                ));
            }
        }
        if reason.is_some() {
            self.last_backfill_ms = Some(now_ms);
        }
        reason
    }
}

enum Woken {
    Due,
    Backfill(String),
    Cancelled,
}

/// Sleeps `gap` on the clock, checking the triggers every `check` of it.
async fn wait(
    reconciler: &Reconciler,
    triggers: &mut Triggers,
    clock: &dyn Clock,
    gap: Duration,
    check: Duration,
    cancel: &CancellationToken,
) -> Woken {
    let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let until = clock.now_ms().saturating_add(millis(gap));
    loop {
        let last = match reconciler.store().last_received_ms("canvas").await {
            Ok(last) => last,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the newest Canvas event; no silence check");
                Some(clock.now_ms())
            }
        };
        if let Some(reason) = triggers.due(clock.now_ms(), last) {
            return Woken::Backfill(reason);
        }
        let now = clock.now_ms();
        if now >= until {
            return Woken::Due;
        }
        tokio::select! {
            _ = cancel.cancelled() => return Woken::Cancelled,
            _ = clock.sleep_until(until.min(now.saturating_add(millis(check)))) => {}
        }
    }
}

/// The background loop: spaced passes forever, a backfill pass whenever a trigger fires.
pub async fn run(
    reconciler: Reconciler,
    settings: Settings,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
) {
    let check = settings.check;
    let period = settings.period;
    let mut triggers = Triggers::new(settings, clock.now_ms());
    tracing::info!(?period, "reconciler started");
    let mut backfill: Option<String> = None;
    while !cancel.is_cancelled() {
        if let Some(reason) = backfill.take() {
            tracing::warn!(%reason, "backfill: reconciling every course now");
            let report = tokio::select! {
                _ = cancel.cancelled() => break,
                report = reconciler.pass(None, Mode::Repair) => report,
            };
            tracing::info!(?report, "backfill pass done");
            continue;
        }
        let courses = match reconciler.courses().await {
            Ok(courses) => courses,
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "cannot plan a reconcile pass");
                match wait(
                    &reconciler,
                    &mut triggers,
                    clock.as_ref(),
                    check,
                    check,
                    &cancel,
                )
                .await
                {
                    Woken::Cancelled => break,
                    Woken::Backfill(reason) => backfill = Some(reason),
                    Woken::Due => {}
                }
                continue;
            }
        };
        let gap = period / u32::try_from(courses.len().max(1)).unwrap_or(u32::MAX);
        let mut report = super::PassReport::default();
        for course_id in courses {
            tokio::select! {
                _ = cancel.cancelled() => break,
                () = reconciler.course(course_id, Mode::Repair, &mut report) => {}
            }
            match wait(
                &reconciler,
                &mut triggers,
                clock.as_ref(),
                gap,
                check,
                &cancel,
            )
            .await
            {
                Woken::Cancelled => break,
                Woken::Backfill(reason) => {
                    backfill = Some(reason);
                    break;
                }
                Woken::Due => {}
            }
        }
        tracing::info!(?report, "reconcile pass done");
    }
    tracing::info!("reconciler stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(outages: Vec<OutageWindow>) -> Settings {
        Settings {
            period: Duration::from_secs(3600),
            check: Duration::from_secs(60),
            silence_ms: 30 * 60_000,
            teaching: TeachingHours {
                days: vec![Weekday::Mon, Weekday::Tue],
                start_minute: 8 * 60,
                end_minute: 18 * 60,
                zone: chrono_tz::Etc::GMTPlus5,
            },
            outages,
        }
    }

    fn at(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text)
            .expect("time")
            .timestamp_millis()
    }

    #[test]
    fn silence_counts_only_in_teaching_hours_and_fires_once_per_silence() {
        // Monday 1 September 2025 in a fixed UTC-5 zone.
        let mut t = Triggers::new(settings(vec![]), at("2025-09-01T12:00:00Z"));
        let heard = Some(at("2025-09-01T13:00:00Z"));
        assert_eq!(t.due(at("2025-09-01T13:29:00Z"), heard), None, "29 min");
        assert!(t.due(at("2025-09-01T13:30:00Z"), heard).is_some(), "30 min");
        assert_eq!(
            t.due(at("2025-09-01T13:31:00Z"), heard),
            None,
            "just backfilled"
        );
        assert!(
            t.due(at("2025-09-01T14:00:00Z"), heard).is_some(),
            "still silent"
        );
        // 07:00 local: before teaching hours.
        let mut t = Triggers::new(settings(vec![]), at("2025-09-01T00:00:00Z"));
        assert_eq!(t.due(at("2025-09-01T12:00:00Z"), Some(0)), None);
        // Wednesday is not a teaching day here.
        assert_eq!(t.due(at("2025-09-03T16:00:00Z"), Some(0)), None);
    }

    #[test]
    fn teaching_hours_follow_daylight_saving_time() {
        let hours = TeachingHours {
            zone: chrono_tz::America::New_York,
            ..settings(vec![]).teaching
        };
        // 12:30 UTC is 08:30 EDT on Monday 1 September, 07:30 EST on Monday 3 November.
        assert!(hours.contains(at("2025-09-01T12:30:00Z")));
        assert!(!hours.contains(at("2025-11-03T12:30:00Z")));
        assert!(hours.contains(at("2025-11-03T13:30:00Z")));
    }

    #[test]
    fn a_declared_outage_backfills_once_after_it_ends() {
        let window = OutageWindow {
            from: chrono::DateTime::parse_from_rfc3339("2025-09-06T10:00:00Z")
                .expect("t")
                .to_utc(),
            to: chrono::DateTime::parse_from_rfc3339("2025-09-06T11:00:00Z")
                .expect("t")
                .to_utc(),
        };
        let mut t = Triggers::new(settings(vec![window]), at("2025-09-06T09:00:00Z"));
        let heard = Some(at("2025-09-06T09:00:00Z"));
        assert_eq!(
            t.due(at("2025-09-06T10:30:00Z"), heard),
            None,
            "not over yet"
        );
        let reason = t.due(at("2025-09-06T11:00:00Z"), heard).expect("fires");
        assert!(reason.contains("outage"), "{reason}");
        assert_eq!(t.due(at("2025-09-06T12:00:00Z"), heard), None, "once");
    }
}
