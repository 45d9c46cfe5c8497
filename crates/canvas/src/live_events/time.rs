//! Lenient parsing of the timestamps found in Live Events, and their one output format.
//!
//! Canvas documents `event_time` as ISO-8601 with milliseconds in UTC, but published examples
//! also carry Ruby `Time#to_s` strings (`2019-11-05 07:38:00 -0800`), `... UTC` suffixes,
//! zone-less times and whole seconds. Ordering per entity depends on these times, so the decoder
//! parses everything it reasonably can and tells the caller *how* it parsed ([`TimeParse`]):
//! strict RFC 3339 is silent, any fallback becomes a warning on the event, and an unparseable
//! time is `None` plus a warning — never an error.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use serde_json::Value;

/// How a timestamp was understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeParse {
    /// Strict RFC 3339 / ISO-8601 with a `T` and a zone, as Canvas documents it.
    Iso(DateTime<Utc>),
    /// Understood only by a fallback rule (Ruby `Time#to_s`, no zone → UTC, date only, epoch
    /// number …).
    Lenient(DateTime<Utc>),
    /// Not a timestamp in any form we know.
    Invalid,
}

impl TimeParse {
    /// The instant, however it was parsed.
    pub fn instant(self) -> Option<DateTime<Utc>> {
        match self {
            Self::Iso(t) | Self::Lenient(t) => Some(t),
            Self::Invalid => None,
        }
    }
}

/// Formats an instant the way every CloudEvent `time` and normalized `*_at` field is written:
/// RFC 3339, UTC, millisecond precision, `Z` (e.g. `2019-11-05T13:38:00.218Z`).
pub fn format_rfc3339_ms(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses a JSON timestamp: strings by [`parse_time_str`], integers as Unix epoch seconds (or
/// milliseconds when larger than 10^11), always [`TimeParse::Lenient`] for numbers.
pub fn parse_time_value(value: &Value) -> TimeParse {
    match value {
        Value::String(s) => parse_time_str(s),
        Value::Number(n) => n.as_i64().map_or(TimeParse::Invalid, from_epoch),
        _ => TimeParse::Invalid,
    }
}

/// Offsets written numerically (`-0800`, `+00:00`), with `T` or space separators.
const OFFSET_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M:%S%.f %z",
    "%Y-%m-%d %H:%M:%S%.f %z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M%z",
    "%Y-%m-%d %H:%M %z",
    "%Y/%m/%d %H:%M:%S%.f %z",
];

/// Zone-less forms, read as UTC (after a `UTC`/`GMT`/`Z` suffix has been stripped).
const NAIVE_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S%.f",
];

/// Parses a timestamp string leniently; see the module documentation for the forms accepted.
pub fn parse_time_str(raw: &str) -> TimeParse {
    let s = raw.trim();
    if s.is_empty() || s.len() > 64 {
        return TimeParse::Invalid;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        let strict = s
            .as_bytes()
            .get(10)
            .is_some_and(|b| matches!(b, b'T' | b't'));
        let t = t.with_timezone(&Utc);
        return if strict && s == raw {
            TimeParse::Iso(t)
        } else {
            TimeParse::Lenient(t)
        };
    }
    for format in OFFSET_FORMATS {
        if let Ok(t) = DateTime::parse_from_str(s, format) {
            return TimeParse::Lenient(t.with_timezone(&Utc));
        }
    }
    let naive = strip_utc_suffix(s);
    for format in NAIVE_FORMATS {
        if let Ok(t) = NaiveDateTime::parse_from_str(naive, format) {
            return TimeParse::Lenient(Utc.from_utc_datetime(&t));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(naive, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return TimeParse::Lenient(Utc.from_utc_datetime(&t));
    }
    if !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_or(TimeParse::Invalid, from_epoch);
    }
    TimeParse::Invalid
}

fn strip_utc_suffix(s: &str) -> &str {
    for suffix in [" UTC", " GMT", " Z", "Z", "z", "UTC", "GMT"] {
        if let Some(rest) = s.strip_suffix(suffix) {
            return rest.trim_end();
        }
    }
    s
}

/// Unix epoch seconds, or milliseconds for values past 10^11 (year 5138 in seconds).
fn from_epoch(n: i64) -> TimeParse {
    let t = if n.abs() >= 100_000_000_000 {
        DateTime::from_timestamp_millis(n)
    } else {
        DateTime::from_timestamp(n, 0)
    };
    t.map_or(TimeParse::Invalid, TimeParse::Lenient)
}

/// `serde(serialize_with)` helper: `Option<DateTime<Utc>>` as [`format_rfc3339_ms`] or `null`.
pub(crate) fn serialize_opt_ms<S: serde::Serializer>(
    value: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(t) => serializer.serialize_str(&format_rfc3339_ms(t)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ms(t: TimeParse) -> Option<String> {
        t.instant().map(|t| format_rfc3339_ms(&t))
    }

    #[test]
    fn strict_iso_is_iso() {
        let t = parse_time_str("2019-11-05T13:38:00.218Z");
        assert!(matches!(t, TimeParse::Iso(_)));
        assert_eq!(ms(t).as_deref(), Some("2019-11-05T13:38:00.218Z"));
        let t = parse_time_str("2018-10-09T21:07:33Z");
        assert!(matches!(t, TimeParse::Iso(_)));
        assert_eq!(ms(t).as_deref(), Some("2018-10-09T21:07:33.000Z"));
        let t = parse_time_str("2019-11-05T07:38:00.5-08:00");
        assert!(matches!(t, TimeParse::Iso(_)));
        assert_eq!(ms(t).as_deref(), Some("2019-11-05T15:38:00.500Z"));
    }

    #[test]
    fn ruby_time_to_s_is_lenient() {
        let t = parse_time_str("2019-11-05 07:38:00 -0800");
        assert!(matches!(t, TimeParse::Lenient(_)));
        assert_eq!(ms(t).as_deref(), Some("2019-11-05T15:38:00.000Z"));
        let t = parse_time_str("2019-10-05 05:38:00 -0800");
        assert_eq!(ms(t).as_deref(), Some("2019-10-05T13:38:00.000Z"));
        let t = parse_time_str("2019-11-05 07:38:00 UTC");
        assert_eq!(ms(t).as_deref(), Some("2019-11-05T07:38:00.000Z"));
        let t = parse_time_str("2019-11-05 07:38:00.123 +0100");
        assert_eq!(ms(t).as_deref(), Some("2019-11-05T06:38:00.123Z"));
    }

    #[test]
    fn other_fallbacks_are_lenient() {
        let cases = [
            ("2019-11-05T07:38:00", "2019-11-05T07:38:00.000Z"),
            ("2019-11-05T07:38:00.218", "2019-11-05T07:38:00.218Z"),
            ("2019-11-05 07:38:00", "2019-11-05T07:38:00.000Z"),
            ("2019-11-05 07:38:00Z", "2019-11-05T07:38:00.000Z"),
            ("2019-11-05T07:38:00+0000", "2019-11-05T07:38:00.000Z"),
            ("2019-11-05T07:38+01:00", "2019-11-05T06:38:00.000Z"),
            ("2019-11-05", "2019-11-05T00:00:00.000Z"),
            (" 2019-11-05T13:38:00.218Z ", "2019-11-05T13:38:00.218Z"),
            ("1572961080", "2019-11-05T13:38:00.000Z"),
        ];
        for (input, want) in cases {
            let t = parse_time_str(input);
            assert!(matches!(t, TimeParse::Lenient(_)), "{input}: {t:?}");
            assert_eq!(ms(t).as_deref(), Some(want), "{input}");
        }
        assert_eq!(
            ms(parse_time_value(&json!(1_572_961_080_218_i64))).as_deref(),
            Some("2019-11-05T13:38:00.218Z")
        );
    }

    #[test]
    fn garbage_is_invalid_never_a_panic() {
        for bad in [
            "",
            "yesterday",
            "2019-13-45T99:99:99Z",
            "2019-11-05T25:00:00Z",
            "11/05/2019",
            "2019-11-05 07:38:00 PST",
            "\u{0}",
            "99999999999999999",
        ] {
            assert_eq!(parse_time_str(bad), TimeParse::Invalid, "{bad:?}");
        }
        assert_eq!(parse_time_value(&json!(null)), TimeParse::Invalid);
        assert_eq!(parse_time_value(&json!(["2019-11-05"])), TimeParse::Invalid);
        assert_eq!(parse_time_value(&json!(i64::MAX)), TimeParse::Invalid);
    }
}
