//! Choosing which lanes to claim: pure, so the rule is the same on both backends.

use std::collections::HashSet;

use crate::store::{Lane, PendingRef};

/// Adds to `picked`, up to `max` lanes in all, the lanes of pending rows (oldest first),
/// skipping lanes with a live lease (`leased` holds lane keys) and lanes already picked.
pub fn pick_lanes(
    rows: &[PendingRef],
    leased: &HashSet<String>,
    picked: &mut Vec<Lane>,
    max: usize,
) {
    let mut seen: HashSet<String> = picked.iter().map(Lane::key).collect();
    for row in rows {
        if picked.len() >= max {
            return;
        }
        let lane = Lane::of(row.subject.as_deref(), row.id);
        let key = lane.key();
        if leased.contains(&key) || !seen.insert(key) {
            continue;
        }
        picked.push(lane);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, subject: Option<&str>) -> PendingRef {
        PendingRef {
            id,
            subject: subject.map(str::to_owned),
        }
    }

    #[test]
    fn oldest_first_one_per_lane_leased_skipped() {
        let rows = [
            row(1, Some("enrollment/1")),
            row(2, Some("enrollment/1")),
            row(3, Some("course/5")),
            row(4, None),
            row(5, Some("user/9")),
        ];
        let leased: HashSet<String> = ["course/5".to_owned()].into();
        let mut picked = Vec::new();
        pick_lanes(&rows, &leased, &mut picked, 10);
        assert_eq!(
            picked,
            vec![
                Lane::Subject("enrollment/1".into()),
                Lane::Row(4),
                Lane::Subject("user/9".into()),
            ]
        );
        let mut capped = Vec::new();
        pick_lanes(&rows, &leased, &mut capped, 1);
        assert_eq!(capped.len(), 1);
        // A second page adds only new lanes.
        pick_lanes(
            &[row(6, Some("enrollment/1")), row(7, Some("user/10"))],
            &leased,
            &mut picked,
            10,
        );
        assert_eq!(picked.len(), 4);
    }
}
