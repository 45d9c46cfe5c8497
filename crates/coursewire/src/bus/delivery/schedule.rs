//! When to try a failed delivery again: the subscription's retry schedule with ±20 % jitter,
//! never earlier than a subscriber's `Retry-After`, and what counts as "give up". Pure, so the
//! policy is unit-tested without a clock or a network.

use std::time::Duration;

/// The default schedule (Svix's, close to the Standard Webhooks recommendation): after the
/// first attempt fails wait 5 s, then 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; eight attempts in
/// about 27.6 hours.
pub const DEFAULT_SCHEDULE_MS: [u64; 7] = [
    5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
];

/// Longest `Retry-After` honoured: a subscriber cannot park a lane for more than a day.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The delay before attempt `attempts + 1`, after `attempts` failed ones; `None` when the
/// schedule is used up. `jitter` in `[0, 1)` spreads the delay over ±20 %.
pub fn next_delay(
    schedule_ms: &[u64],
    attempts: i64,
    jitter: f64,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let index = usize::try_from(attempts.checked_sub(1)?).ok()?;
    let base = *schedule_ms.get(index)?;
    let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    let delay = Duration::from_millis((base as f64 * factor) as u64);
    Some(match retry_after {
        Some(wait) => delay.max(wait.min(MAX_RETRY_AFTER)),
        None => delay,
    })
}

/// Parses `Retry-After`: delay-seconds (HTTP-dates are rare from webhook receivers and are
/// ignored).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Parses a duration like `250ms`, `5s`, `5m`, `2h` (a bare number is seconds).
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: u64 = number.parse().ok()?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// Parses a comma-separated schedule, `5s,5m,30m`.
pub fn parse_schedule(text: &str) -> Option<Vec<u64>> {
    text.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(parse_duration_ms)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_follow_the_schedule_with_bounded_jitter() {
        let s = [1_000, 10_000];
        assert_eq!(next_delay(&s, 0, 0.5, None), None, "no attempt yet");
        assert_eq!(
            next_delay(&s, 1, 0.5, None),
            Some(Duration::from_millis(1_000))
        );
        assert_eq!(
            next_delay(&s, 1, 0.0, None),
            Some(Duration::from_millis(800))
        );
        assert_eq!(
            next_delay(&s, 2, 0.999_999, None).map(|d| d.as_millis() / 100),
            Some(119)
        );
        assert_eq!(next_delay(&s, 3, 0.5, None), None, "used up");
        assert_eq!(next_delay(&[], 1, 0.5, None), None);
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let s = [1_000];
        let later = Some(Duration::from_secs(30));
        assert_eq!(next_delay(&s, 1, 0.5, later), Some(Duration::from_secs(30)));
        let huge = Some(Duration::from_secs(10 * 24 * 3600));
        assert_eq!(next_delay(&s, 1, 0.5, huge), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn durations_and_schedules_parse() {
        assert_eq!(parse_duration_ms("250ms"), Some(250));
        assert_eq!(parse_duration_ms("5s"), Some(5_000));
        assert_eq!(parse_duration_ms("5"), Some(5_000));
        assert_eq!(parse_duration_ms("2h"), Some(7_200_000));
        assert_eq!(parse_duration_ms("2d"), None);
        assert_eq!(
            parse_schedule("5s,5m, 30m"),
            Some(vec![5_000, 300_000, 1_800_000])
        );
        assert_eq!(parse_schedule("5s,x"), None);
    }
}
