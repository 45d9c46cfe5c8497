//! Canvas ids as they appear in Live Events, reduced to the local ids the catalog is keyed on.
//!
//! Canvas sends ids as JSON strings in most events and as numbers in a few; older events carry
//! *global* ids (`shard × 10^13 + local`, e.g. `"21070000000000565"` is id 565 on shard 2107),
//! newer ones local ids, and Caliper wraps them in URNs such as
//! `urn:instructure:canvas:course:565:section:4811`. Global ids change when an account moves
//! between shards, so everything downstream keys on the **local** id; this module is the one
//! place that knows how to get there. It never fails loudly: an unparseable id is `None`, and
//! the caller decides whether that is worth a warning.

use serde_json::Value;

/// Multiplier of the shard number in a Canvas global id (`shard × 10^13 + local`).
pub const SHARD_FACTOR: i64 = 10_000_000_000_000;

/// The local part of a Canvas id; a local id is returned unchanged.
///
/// ```
/// use canvas::live_events::ids::local_id;
/// assert_eq!(local_id(21_070_000_000_000_565), 565);
/// assert_eq!(local_id(565), 565);
/// ```
pub fn local_id(id: i64) -> i64 {
    id.rem_euclid(SHARD_FACTOR)
}

/// The shard part of a Canvas global id; `0` for a local id.
pub fn shard_id(id: i64) -> i64 {
    id.div_euclid(SHARD_FACTOR)
}

/// The global id of `local` on `shard`, or `None` on overflow or out-of-range input.
pub fn global_id(shard: i64, local: i64) -> Option<i64> {
    if shard < 0 || !(0..SHARD_FACTOR).contains(&local) {
        return None;
    }
    shard.checked_mul(SHARD_FACTOR)?.checked_add(local)
}

/// Parses an id as Canvas sends it — JSON number or string — into the id *as sent* (global or
/// local). Accepted strings: decimal digits (`"21070000000000565"`), Canvas's `shard~local`
/// shorthand (`"2107~565"`, returned as the global id), and URNs whose last numeric segment is
/// the id (`"urn:instructure:canvas:course:565:section:4811"` → 4811). Negative, fractional,
/// overflowing or otherwise malformed ids are `None`.
pub fn parse_id(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                (i >= 0).then_some(i)
            } else if let Some(f) = n.as_f64() {
                // Some producers serialize integers as floats (`3.0`). The cast is exact because
                // the value is integral and within the range checked here.
                #[allow(clippy::cast_possible_truncation)]
                let whole = f as i64;
                (f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < 9.0e18).then_some(whole)
            } else {
                None
            }
        }
        Value::String(s) => parse_id_str(s),
        _ => None,
    }
}

/// [`parse_id`] for a string.
pub fn parse_id_str(raw: &str) -> Option<i64> {
    let s = raw.trim();
    if let Some(id) = parse_digits(s) {
        return Some(id);
    }
    if let Some((shard, local)) = s.split_once('~') {
        return global_id(parse_digits(shard)?, parse_digits(local)?);
    }
    if s.contains(':') {
        return s.rsplit(':').find_map(parse_digits);
    }
    None
}

/// [`parse_id`] followed by [`local_id`]: the id the catalog is keyed on.
pub fn parse_local_id(value: &Value) -> Option<i64> {
    parse_id(value).map(local_id)
}

/// The `(kind, id)` pairs of a Canvas URN, outermost first:
/// `urn:instructure:canvas:course:565:section:4811` → `[("course", 565), ("section", 4811)]`.
/// Ids are returned as sent (global or local). Anything that is not such a URN gives an empty
/// list.
pub fn urn_parts(urn: &str) -> Vec<(&str, i64)> {
    let Some(rest) = urn.trim().strip_prefix("urn:instructure:canvas:") else {
        return Vec::new();
    };
    let segments: Vec<&str> = rest.split(':').collect();
    segments
        .windows(2)
        .filter_map(|pair| {
            let [kind, id] = pair else { return None };
            let id = parse_digits(id)?;
            (!kind.is_empty() && parse_digits(kind).is_none()).then_some((*kind, id))
        })
        .collect()
}

/// The innermost `(kind, id)` of a Canvas URN, e.g. `("section", 4811)` for a section URN.
pub fn urn_last(urn: &str) -> Option<(&str, i64)> {
    urn_parts(urn).pop()
}

fn parse_digits(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn global_ids_reduce_to_local() {
        assert_eq!(local_id(21_070_000_000_000_565), 565);
        assert_eq!(shard_id(21_070_000_000_000_565), 2107);
        assert_eq!(local_id(21_070_000_000_046_825), 46_825);
        assert_eq!(local_id(565), 565);
        assert_eq!(shard_id(565), 0);
        // An 18-digit id from the published examples: shard 21070, local 101907.
        assert_eq!(local_id(210_700_000_000_101_907), 101_907);
        assert_eq!(global_id(2107, 565), Some(21_070_000_000_000_565));
        assert_eq!(global_id(2107, SHARD_FACTOR), None);
        assert_eq!(global_id(i64::MAX, 1), None);
    }

    #[test]
    fn ids_parse_from_strings_numbers_and_urns() {
        assert_eq!(
            parse_id(&json!("21070000000000565")),
            Some(21_070_000_000_000_565)
        );
        assert_eq!(parse_local_id(&json!("21070000000000565")), Some(565));
        assert_eq!(parse_local_id(&json!(" 565 ")), Some(565));
        assert_eq!(parse_local_id(&json!(3)), Some(3));
        assert_eq!(parse_local_id(&json!(3.0)), Some(3));
        assert_eq!(parse_local_id(&json!("2107~565")), Some(565));
        assert_eq!(parse_id(&json!("2107~565")), Some(21_070_000_000_000_565));
        assert_eq!(
            parse_local_id(&json!(
                "urn:instructure:canvas:enrollment:21070000000046825"
            )),
            Some(46_825)
        );
        assert_eq!(
            parse_local_id(&json!(
                "urn:instructure:canvas:course:21070000000000565:section:21070000000004811"
            )),
            Some(4811)
        );
    }

    #[test]
    fn malformed_ids_are_none() {
        for bad in [
            json!(null),
            json!(true),
            json!(-5),
            json!(1.5),
            json!(""),
            json!("abc"),
            json!("12a"),
            json!("-12"),
            json!("99999999999999999999999"),
            json!([1]),
            json!({"id": 1}),
            json!("~5"),
        ] {
            assert_eq!(parse_id(&bad), None, "{bad}");
        }
    }

    #[test]
    fn urns_split_into_kind_and_id() {
        assert_eq!(
            urn_parts("urn:instructure:canvas:course:565:section:4811"),
            vec![("course", 565), ("section", 4811)]
        );
        assert_eq!(
            urn_last("urn:instructure:canvas:user:21070000000020064"),
            Some(("user", 21_070_000_000_020_064))
        );
        assert_eq!(
            urn_parts("urn:uuid:3f672715-6aa8-4293-b62a-3b3319ff5701"),
            vec![]
        );
        assert_eq!(urn_last("http://oxana.instructure.com/"), None);
    }
}
