//! What `--faults` does to the run, on the simulated clock: Live Events lost, duplicated and
//! reordered all along; on the first teaching day a subscriber down for an hour, a Live Events
//! signing-key rotation, a Canvas outage (API 5xx and no Live Events for half an hour, declared
//! to the reconciler as operators would), and every Canvas access token revoked (coursewire
//! re-issues itself one with the refresh grant). Times are local to the university (its time zone, daylight saving included).

use chrono::{DateTime, NaiveDate, Utc};

/// One step of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Live Events lost, duplicated and reordered from here on.
    LossyLiveEvents,
    SubscriberDown,
    SubscriberUp,
    RotateSigningKeys,
    CanvasOutageStarts,
    CanvasOutageEnds,
    RevokeAccessTokens,
    /// Back to a well-behaved Canvas before the final reconcile.
    Clear,
}

impl Fault {
    pub fn describe(self) -> &'static str {
        match self {
            Fault::LossyLiveEvents => "Live Events: 5% lost, 5% duplicated, 10% reordered",
            Fault::SubscriberDown => "a subscriber goes down for an hour",
            Fault::SubscriberUp => "the subscriber is back",
            Fault::RotateSigningKeys => "Canvas rotates its Live Events signing key",
            Fault::CanvasOutageStarts => "Canvas outage: API answers 503, no Live Events",
            Fault::CanvasOutageEnds => "Canvas outage over",
            Fault::RevokeAccessTokens => "every Canvas access token revoked",
            Fault::Clear => "faults cleared",
        }
    }
}

pub const LOSS: f64 = 0.05;
pub const DUPLICATION: f64 = 0.05;
pub const REORDERING: f64 = 0.10;
/// Simulated seconds a reordered event may be held back.
pub const REORDER_MAX_DELAY_SECONDS: f64 = 600.0;

/// `HH:MM` at the university on local `day`.
fn at(day: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    let ms = sim::university::local_ms(day, hour * 60 + minute);
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The local date at the university of `t`.
fn local_day(t: DateTime<Utc>) -> NaiveDate {
    sim::university::local_date(t.timestamp_millis())
}

/// The outage window, for the reconciler's `outages` (a declared window ends in a backfill).
pub fn outage_window(start: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let day = local_day(start);
    (at(day, 13, 0), at(day, 13, 30))
}

/// The plan for a run starting at `start`, in time order.
pub fn plan(start: DateTime<Utc>) -> Vec<(DateTime<Utc>, Fault)> {
    let day = local_day(start);
    let (outage_from, outage_to) = outage_window(start);
    let mut plan = vec![
        (start, Fault::LossyLiveEvents),
        (at(day, 9, 0), Fault::SubscriberDown),
        (at(day, 10, 0), Fault::SubscriberUp),
        (at(day, 11, 0), Fault::RotateSigningKeys),
        (outage_from, Fault::CanvasOutageStarts),
        (outage_to, Fault::CanvasOutageEnds),
        (at(day, 15, 0), Fault::RevokeAccessTokens),
    ];
    plan.retain(|(t, _)| *t >= start);
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_plan_is_in_time_order_on_the_first_local_day() {
        let start = Utc.with_ymd_and_hms(2025, 8, 25, 4, 0, 0).unwrap(); // 00:00 EDT
        let plan = plan(start);
        assert_eq!(plan.len(), 7);
        assert!(plan.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!(
            plan[1].0,
            Utc.with_ymd_and_hms(2025, 8, 25, 13, 0, 0).unwrap()
        );
        let (from, to) = outage_window(start);
        assert_eq!(to - from, chrono::Duration::minutes(30));
        assert!(plan.contains(&(from, Fault::CanvasOutageStarts)));
    }

    #[test]
    fn steps_before_a_late_start_are_left_out() {
        let start = Utc.with_ymd_and_hms(2025, 8, 25, 16, 0, 0).unwrap(); // 12:00 EDT
        let faults: Vec<Fault> = plan(start).into_iter().map(|(_, f)| f).collect();
        assert_eq!(
            faults,
            [
                Fault::LossyLiveEvents,
                Fault::CanvasOutageStarts,
                Fault::CanvasOutageEnds,
                Fault::RevokeAccessTokens
            ]
        );
    }
}
