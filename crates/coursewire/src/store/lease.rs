//! Leases: the one way a process holds a row that only one process may work on at a time —
//! a processor lane, a delivery lane, a subscription's cursor, the Panopto poller, the
//! workflow's side-effect commands, and next the monitors' timers.
//!
//! A leased table has two columns, `lease_owner` (the holding process, NULL when free) and
//! `lease_until` (unix ms). The four moves are the same SQL on every such table:
//!
//! * **claim**: take the row if it is free, already ours, or its lease has expired;
//! * **take over**: take it only when its lease has expired (its owner crashed or stalled on
//!   it: the caller may count that against the work);
//! * **renew**: extend our lease, only while it is still ours. This is the fence: once another
//!   process took the row over, a renewal matches nothing and the old owner must stop;
//! * **release**: give it up, only if ours. A lease-only row (a processor lane holds nothing but
//!   its lease) is deleted; a row with state of its own keeps it.
//!
//! Each move is a single statement, so it is atomic on both backends; the caller picks the
//! transaction it runs in. Time is whatever clock the caller reads: nothing here calls the
//! wall clock.

use super::query::{Sql, Value, placeholders, sql_built};

/// A table whose rows are held by lease, and how a row is named in it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Leased {
    table: &'static str,
    /// The key columns, bound in this order.
    key: &'static [&'static str],
    /// Whether a released row is deleted (it holds nothing but its lease).
    delete_on_release: bool,
}

/// Inbox lanes of the processor: a row exists while a process holds the lane.
pub(super) const PROCESSOR_LANE: Leased = Leased {
    table: "processor_lanes",
    key: &["lane"],
    delete_on_release: true,
};

/// Per-(subscription, subject) delivery lanes of failing subjects.
pub(super) const DELIVERY_LANE: Leased = Leased {
    table: "delivery_lanes",
    key: &["subscription_id", "subject"],
    delete_on_release: false,
};

/// A subscription's cursor (held by its pump).
pub(super) const CURSOR: Leased = Leased {
    table: "subscriptions",
    key: &["id"],
    delete_on_release: false,
};

/// The Panopto poller of a site (one polls at a time across processes).
pub(super) const PANOPTO_POLLER: Leased = Leased {
    table: "panopto_pollers",
    key: &["name"],
    delete_on_release: false,
};

/// A side-effect command of the recording workflow, held by the executor running it.
pub(super) const WORKFLOW_COMMAND: Leased = Leased {
    table: "workflow_commands",
    key: &["id"],
    delete_on_release: false,
};

impl Leased {
    /// `k1 = $first AND k2 = $first+1 …`
    fn key_condition(&self, first: usize) -> String {
        self.key
            .iter()
            .enumerate()
            .map(|(i, column)| format!("{column} = ${}", first + i))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    fn bind_key(&self, mut query: Sql, key: Vec<Value>) -> Sql {
        debug_assert_eq!(key.len(), self.key.len(), "key of {}", self.table);
        for value in key {
            query = query.bind(value);
        }
        query
    }

    /// Takes the row for `owner` until `until_ms` if it is free, already `owner`'s, or its
    /// lease expired before `now_ms`. Touches one row when taken; add `RETURNING …` to read it.
    pub fn claim(&self, key: Vec<Value>, owner: &str, now_ms: i64, until_ms: i64) -> Sql {
        self.take(
            key,
            owner,
            now_ms,
            until_ms,
            "lease_owner IS NULL OR lease_owner = $1 OR lease_until < $3",
        )
    }

    /// Takes for `owner` every row named by `keys` whose lease expired before `now_ms`, whoever
    /// held it (a holder that is still running finds out at its next renewal); in one
    /// statement, for a table keyed by one column. Add `RETURNING …` to learn which.
    pub fn take_over_any(&self, keys: Vec<Value>, owner: &str, now_ms: i64, until_ms: i64) -> Sql {
        debug_assert_eq!(self.key.len(), 1, "take_over_any on {}", self.table);
        let mut query = sql_built(format!(
            "UPDATE {} SET lease_owner = $1, lease_until = $2 WHERE {} IN ({}) \
             AND lease_until < $3",
            self.table,
            self.key[0],
            placeholders(4, keys.len())
        ))
        .bind(owner)
        .bind(until_ms)
        .bind(now_ms);
        for key in keys {
            query = query.bind(key);
        }
        query
    }

    /// [`Leased::renew`] of every row named by `keys` in one statement, for a table keyed by
    /// one column. Add `RETURNING …` to learn which are still `owner`'s.
    pub fn renew_any(&self, keys: Vec<Value>, owner: &str, until_ms: i64) -> Sql {
        debug_assert_eq!(self.key.len(), 1, "renew_any on {}", self.table);
        let mut query = sql_built(format!(
            "UPDATE {} SET lease_until = $2 WHERE {} IN ({}) AND lease_owner = $1",
            self.table,
            self.key[0],
            placeholders(3, keys.len())
        ))
        .bind(owner)
        .bind(until_ms);
        for key in keys {
            query = query.bind(key);
        }
        query
    }

    /// Sets the lease to (`$1` owner, `$2` until) where `condition` holds (`$3` is now).
    fn take(
        &self,
        key: Vec<Value>,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
        condition: &str,
    ) -> Sql {
        let query = sql_built(format!(
            "UPDATE {} SET lease_owner = $1, lease_until = $2 WHERE {} AND ({condition})",
            self.table,
            self.key_condition(4)
        ))
        .bind(owner)
        .bind(until_ms)
        .bind(now_ms);
        self.bind_key(query, key)
    }

    /// Extends `owner`'s lease to `until_ms`; touches no row once another owner holds it.
    pub fn renew(&self, key: Vec<Value>, owner: &str, until_ms: i64) -> Sql {
        self.renew_setting(key, owner, until_ms, "")
    }

    /// [`Leased::renew`] that also sets `assignments` (`, column = …`) in the same statement,
    /// only while the lease is `owner`'s. The assignments' placeholders start after the key's:
    /// at `$3` plus the number of key columns.
    pub fn renew_setting(
        &self,
        key: Vec<Value>,
        owner: &str,
        until_ms: i64,
        assignments: &str,
    ) -> Sql {
        let query = sql_built(format!(
            "UPDATE {} SET lease_until = $2{assignments} WHERE {} AND lease_owner = $1",
            self.table,
            self.key_condition(3)
        ))
        .bind(owner)
        .bind(until_ms);
        self.bind_key(query, key)
    }

    /// Gives `owner`'s lease up (nothing happens if another owner holds it now).
    pub fn release(&self, key: Vec<Value>, owner: &str) -> Sql {
        let text = if self.delete_on_release {
            format!(
                "DELETE FROM {} WHERE {} AND lease_owner = $1",
                self.table,
                self.key_condition(2)
            )
        } else {
            format!(
                "UPDATE {} SET lease_owner = NULL, lease_until = 0 WHERE {} AND lease_owner = $1",
                self.table,
                self.key_condition(2)
            )
        };
        self.bind_key(sql_built(text).bind(owner), key)
    }
}
