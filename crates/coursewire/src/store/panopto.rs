//! Panopto ingest rows: the request budget shared by the processes on one API client
//! (`panopto_requests`, one row per request of the last hour), the poller's progress
//! (`panopto_pollers`, leased) and what it last reported per subject (`panopto_observed`). A
//! poll's inbox rows, observations and cursor commit in one transaction, fenced by the
//! poller's lease: a poller that lost its lease writes nothing.

use super::dialect::Locking;
use super::lease::PANOPTO_POLLER;
use super::query::{placeholders, sql, sql_built};
use super::{InsertOutcome, NewInboxEntry, Store, StoreResult, inbox_insert, insert_outcomes};

/// What the poller last reported about one subject.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Observed {
    pub subject: String,
    /// The dedup key of the last event written for the subject.
    pub last_key: String,
    /// The state last reported (a JSON object's text).
    pub snapshot: String,
    /// The subject may change without appearing in the change feed.
    #[sqlx(try_from = "i64")]
    pub watch: WatchFlag,
    #[sqlx(rename = "starts_at")]
    pub starts_at_ms: Option<i64>,
    #[sqlx(rename = "observed_at")]
    pub observed_at_ms: i64,
}

/// `watch` as stored (an integer on both backends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchFlag(pub bool);

impl From<i64> for WatchFlag {
    fn from(v: i64) -> Self {
        WatchFlag(v != 0)
    }
}

/// A poller's durable progress.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct PollerProgress {
    pub name: String,
    pub cursor: Option<String>,
    #[sqlx(rename = "last_success_at")]
    pub last_success_at_ms: Option<i64>,
    #[sqlx(rename = "last_attempt_at")]
    pub last_attempt_at_ms: Option<i64>,
    pub last_error: Option<String>,
    pub polls: i64,
    pub lease_owner: Option<String>,
    #[sqlx(rename = "lease_until")]
    pub lease_until_ms: i64,
}

/// One successful poll, to commit at once.
#[derive(Debug, Clone)]
pub struct PollCommit {
    pub entries: Vec<NewInboxEntry>,
    pub observed: Vec<Observed>,
    pub cursor: Option<String>,
    pub now_ms: i64,
}

impl Store {
    /// Counts a request of `client_key` at `now_ms` if, for every `(span, cap)`, fewer than
    /// `cap` requests were counted in the last `span` ms; otherwise answers how many ms until
    /// the fullest window has room, and counts nothing.
    pub async fn take_panopto_slot(
        &self,
        client_key: &str,
        now_ms: i64,
        caps: &[(i64, u32)],
    ) -> StoreResult<Option<i64>> {
        let mut tx = self.pool.begin_write().await?;
        sql("INSERT INTO panopto_clients (client_key) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(client_key)
            .execute(&mut tx)
            .await?;
        let lock = tx.locking(Locking::ForUpdate);
        sql_built(format!(
            "SELECT client_key FROM panopto_clients WHERE client_key = $1{lock}"
        ))
        .bind(client_key)
        .fetch_one::<(String,)>(&mut tx)
        .await?;
        let mut wait = None::<i64>;
        for &(span, cap) in caps {
            // The cap-th newest request in the window must leave it first.
            let nth: Option<(i64,)> = sql(
                "SELECT at FROM panopto_requests WHERE client_key = $1 AND at > $2 \
                 ORDER BY at DESC LIMIT 1 OFFSET $3",
            )
            .bind(client_key)
            .bind(now_ms - span)
            .bind(i64::from(cap.max(1)) - 1)
            .fetch_optional(&mut tx)
            .await?;
            if let Some((at,)) = nth {
                wait = Some(wait.unwrap_or(0).max(at + span - now_ms).max(1));
            }
        }
        if wait.is_none() {
            let longest = caps.iter().map(|c| c.0).max().unwrap_or(0);
            sql("DELETE FROM panopto_requests WHERE client_key = $1 AND at <= $2")
                .bind(client_key)
                .bind(now_ms - longest)
                .execute(&mut tx)
                .await?;
            sql("INSERT INTO panopto_requests (client_key, at) VALUES ($1, $2)")
                .bind(client_key)
                .bind(now_ms)
                .execute(&mut tx)
                .await?;
        }
        tx.commit().await?;
        Ok(wait)
    }

    /// Requests of `client_key` counted in the last `span` ms, per span.
    pub async fn panopto_slots_used(
        &self,
        client_key: &str,
        now_ms: i64,
        spans: &[i64],
    ) -> StoreResult<Vec<u32>> {
        let mut used = Vec::with_capacity(spans.len());
        for span in spans {
            let (n,): (i64,) =
                sql("SELECT COUNT(*) FROM panopto_requests WHERE client_key = $1 AND at > $2")
                    .bind(client_key)
                    .bind(now_ms - span)
                    .fetch_one(&self.pool)
                    .await?;
            used.push(n as u32);
        }
        Ok(used)
    }

    /// Takes the poller `name` for `owner` until `until_ms` (creating its row the first
    /// time) if it is free, already `owner`'s, or its lease expired. True when taken.
    pub async fn claim_panopto_poller(
        &self,
        name: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin_write().await?;
        sql("INSERT INTO panopto_pollers (name) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(name)
            .execute(&mut tx)
            .await?;
        let taken = PANOPTO_POLLER
            .claim(vec![name.into()], owner, now_ms, until_ms)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(taken == 1)
    }

    /// Gives the poller up, if `owner` holds it.
    pub async fn release_panopto_poller(&self, name: &str, owner: &str) -> StoreResult<()> {
        PANOPTO_POLLER
            .release(vec![name.into()], owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn panopto_poller(&self, name: &str) -> StoreResult<Option<PollerProgress>> {
        sql("SELECT * FROM panopto_pollers WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
    }

    /// What was last reported for each of `subjects` (those never reported are absent).
    pub async fn panopto_observed(&self, subjects: &[String]) -> StoreResult<Vec<Observed>> {
        let mut found = Vec::with_capacity(subjects.len());
        for chunk in subjects.chunks(500) {
            let mut q = sql_built(format!(
                "SELECT * FROM panopto_observed WHERE subject IN ({})",
                placeholders(1, chunk.len())
            ));
            for s in chunk {
                q = q.bind(s);
            }
            found.extend(q.fetch_all::<Observed>(&self.pool).await?);
        }
        Ok(found)
    }

    /// Subjects still watched whose start lies in `[starts_after_ms, starts_before_ms]`,
    /// earliest first (sessions that may have started, stopped or finished processing since).
    pub async fn panopto_watched(
        &self,
        starts_after_ms: i64,
        starts_before_ms: i64,
    ) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = sql(
            "SELECT subject FROM panopto_observed WHERE watch = 1 AND starts_at >= $1 \
             AND starts_at <= $2 ORDER BY starts_at, subject",
        )
        .bind(starts_after_ms)
        .bind(starts_before_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(s,)| s).collect())
    }

    /// Commits one poll: its inbox rows, observations and the next cursor, while `owner`
    /// still holds the poller (the renewal to `until_ms` is the fence). `None`: the lease was
    /// lost and nothing was written.
    pub async fn commit_panopto_poll(
        &self,
        name: &str,
        owner: &str,
        until_ms: i64,
        poll: &PollCommit,
    ) -> StoreResult<Option<Vec<InsertOutcome>>> {
        let mut tx = self.pool.begin_write().await?;
        let held = PANOPTO_POLLER
            .renew_setting(
                vec![name.into()],
                owner,
                until_ms,
                ", cursor = $4, last_success_at = $5, last_attempt_at = $5, last_error = NULL, \
                 polls = polls + 1",
            )
            .bind(&poll.cursor)
            .bind(poll.now_ms)
            .execute(&mut tx)
            .await?;
        if held != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        let mut outcomes = Vec::with_capacity(poll.entries.len());
        for chunk in poll.entries.chunks(super::INSERT_CHUNK) {
            let inserted: Vec<(i64, String, String)> =
                inbox_insert(chunk).fetch_all(&mut tx).await?;
            outcomes.extend(insert_outcomes(chunk, inserted));
        }
        for o in &poll.observed {
            sql("INSERT INTO panopto_observed \
                 (subject, last_key, snapshot, watch, starts_at, observed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (subject) DO UPDATE SET \
                 last_key = excluded.last_key, snapshot = excluded.snapshot, \
                 watch = excluded.watch, \
                 starts_at = excluded.starts_at, observed_at = excluded.observed_at")
            .bind(&o.subject)
            .bind(&o.last_key)
            .bind(&o.snapshot)
            .bind(i64::from(o.watch.0))
            .bind(o.starts_at_ms)
            .bind(o.observed_at_ms)
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Some(outcomes))
    }

    /// Records a failed poll (the cursor stays where it was).
    pub async fn panopto_poll_failed(
        &self,
        name: &str,
        owner: &str,
        until_ms: i64,
        now_ms: i64,
        error: &str,
    ) -> StoreResult<()> {
        PANOPTO_POLLER
            .renew_setting(
                vec![name.into()],
                owner,
                until_ms,
                ", last_attempt_at = $4, last_error = $5",
            )
            .bind(now_ms)
            .bind(error)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
