//! Canvas's request throttle: a leaky bucket per access token (canvas.md B3). A request is
//! refused while the bucket is at or above the high-water mark; otherwise it is charged the
//! up-front cost while it runs, which is refunded at the end when its real cost is added.
//! The bucket drains continuously at the outflow rate and stays within 0…maximum.

use std::collections::BTreeMap;

use crate::config::ThrottleConfig;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    at: f64,
}

#[derive(Debug, Default)]
pub struct Buckets {
    map: BTreeMap<String, Bucket>,
}

impl Buckets {
    fn drained(&mut self, key: &str, now: f64, cfg: &ThrottleConfig) -> &mut Bucket {
        let b = self.map.entry(key.to_owned()).or_insert(Bucket {
            level: 0.0,
            at: now,
        });
        let dt = (now - b.at).max(0.0);
        b.level = (b.level - dt * cfg.outflow_per_second).max(0.0);
        b.at = now;
        b
    }

    /// Admit a request (charging the up-front cost) or refuse it.
    pub fn admit(&mut self, key: &str, now: f64, cfg: &ThrottleConfig) -> bool {
        let b = self.drained(key, now, cfg);
        if b.level >= cfg.high_water_mark {
            return false;
        }
        b.level = (b.level + cfg.up_front_cost).min(cfg.maximum);
        true
    }

    /// Refund the up-front cost, charge the real cost; returns `X-Rate-Limit-Remaining`.
    pub fn finish(&mut self, key: &str, now: f64, cfg: &ThrottleConfig, cost: f64) -> f64 {
        let b = self.drained(key, now, cfg);
        b.level = (b.level - cfg.up_front_cost + cost).clamp(0.0, cfg.maximum);
        (cfg.high_water_mark - b.level).max(0.0)
    }

    pub fn remaining(&mut self, key: &str, now: f64, cfg: &ThrottleConfig) -> f64 {
        let b = self.drained(key, now, cfg);
        (cfg.high_water_mark - b.level).max(0.0)
    }
}

/// Canvas prints these as Ruby floats: always a decimal point.
pub fn format_units(x: f64) -> String {
    let r = (x * 10_000.0).round() / 10_000.0;
    if r.fract() == 0.0 {
        format!("{r:.1}")
    } else {
        format!("{r}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twelve_in_flight_reach_the_mark() {
        let cfg = ThrottleConfig::default();
        let mut b = Buckets::default();
        for _ in 0..12 {
            assert!(b.admit("t", 0.0, &cfg));
        }
        assert!(
            !b.admit("t", 0.0, &cfg),
            "13th concurrent request is refused"
        );
        // One second later 10 units have drained: one more fits.
        assert!(b.admit("t", 1.0, &cfg));
    }

    #[test]
    fn drains_at_outflow_and_reports_remaining() {
        let cfg = ThrottleConfig::default();
        let mut b = Buckets::default();
        assert!(b.admit("t", 0.0, &cfg));
        let r = b.finish("t", 0.0, &cfg, 100.0);
        assert_eq!(r, 500.0);
        assert_eq!(b.remaining("t", 5.0, &cfg), 550.0);
        assert_eq!(b.remaining("t", 100.0, &cfg), 600.0);
        assert_eq!(format_units(600.0), "600.0");
        assert_eq!(format_units(0.04), "0.04");
    }
}
