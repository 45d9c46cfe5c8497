//! The NATS JetStream sink (`[nats] url = …`, off when empty): publishes every change event of
//! the outbox to a stream, which it creates if missing (subjects `<subject_prefix>.>`).
//!
//! * Each event goes to `<subject_prefix>.<type>` with the CloudEvent JSON as payload and the
//!   header `Nats-Msg-Id` = the event id, so JetStream drops a re-publish inside the stream's
//!   duplicate window (after a crash between publish and cursor update, say).
//! * Per-subject order: a batch of outbox events is split by subject; each subject's events
//!   are published one at a time, each waiting for JetStream's ack before the next. Subjects
//!   proceed concurrently.
//! * The position published up to is stored (`sink_cursors`, name `nats:<stream>`) only after
//!   every event of the batch is acknowledged; a failure re-publishes the batch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream;
use tokio_util::sync::CancellationToken;

use crate::config::NatsConfig;
use crate::metrics::Metrics;
use crate::store::{ChangeEventRow, Store};

const BATCH: i64 = 512;
const IDLE_POLL: Duration = Duration::from_millis(100);
const RECONNECT_BACKOFF: Duration = Duration::from_secs(1);

/// The NATS subject of an event type under `prefix`: characters NATS gives meaning to in a
/// token (space, `*`, `>`) become `_`.
pub fn nats_subject(prefix: &str, event_type: &str) -> String {
    let token: String = event_type
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == '*' || c == '>' {
                '_'
            } else {
                c
            }
        })
        .collect();
    format!("{prefix}.{token}")
}

/// Publishes the outbox to JetStream until cancelled.
#[derive(Debug)]
pub struct NatsSink {
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    config: NatsConfig,
}

impl NatsSink {
    pub fn new(store: Arc<Store>, metrics: Arc<Metrics>, config: NatsConfig) -> Self {
        Self {
            store,
            metrics,
            config,
        }
    }

    fn cursor_name(&self) -> String {
        format!("nats:{}", self.config.stream)
    }

    pub async fn run(self, stop: CancellationToken) {
        while !stop.is_cancelled() {
            let result = async {
                let js = self.connect().await?;
                self.pump(&js, &stop).await
            }
            .await;
            if let Err(err) = result {
                tracing::warn!(error = format!("{err:#}"), "NATS sink: retrying");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(RECONNECT_BACKOFF) => {}
                }
            }
        }
    }

    async fn connect(&self) -> anyhow::Result<jetstream::Context> {
        let client = async_nats::connect(self.config.url.as_str())
            .await
            .context("cannot connect to NATS")?;
        let js = jetstream::new(client);
        js.get_or_create_stream(jetstream::stream::Config {
            name: self.config.stream.clone(),
            subjects: vec![format!("{}.>", self.config.subject_prefix)],
            ..Default::default()
        })
        .await
        .context("cannot create the JetStream stream")?;
        Ok(js)
    }

    async fn pump(&self, js: &jetstream::Context, stop: &CancellationToken) -> anyhow::Result<()> {
        let name = self.cursor_name();
        let mut cursor = self.store.sink_cursor(&name).await?;
        while !stop.is_cancelled() {
            let rows = self.store.change_events_after(cursor, BATCH).await?;
            let Some(last) = rows.last().map(|r| r.position) else {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                }
                continue;
            };
            let mut by_subject: BTreeMap<&str, Vec<&ChangeEventRow>> = BTreeMap::new();
            for row in &rows {
                by_subject.entry(&row.subject).or_default().push(row);
            }
            let results = futures::future::join_all(
                by_subject
                    .values()
                    .map(|events| self.publish_in_order(js, events)),
            )
            .await;
            for result in results {
                result?;
            }
            self.store.set_sink_cursor(&name, last).await?;
            cursor = last;
        }
        Ok(())
    }

    /// Publishes one subject's events, each acknowledged before the next.
    async fn publish_in_order(
        &self,
        js: &jetstream::Context,
        events: &[&ChangeEventRow],
    ) -> anyhow::Result<()> {
        for event in events {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, event.id.as_str());
            let ack = js
                .publish_with_headers(
                    nats_subject(&self.config.subject_prefix, &event.r#type),
                    headers,
                    event.event.to_string().into(),
                )
                .await
                .context("NATS publish failed")?
                .await
                .context("JetStream did not acknowledge")?;
            let outcome = if ack.duplicate {
                "nats_duplicate"
            } else {
                "nats_published"
            };
            self.metrics.delivery(&self.cursor_name(), outcome);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::nats_subject;

    #[test]
    fn subjects_are_prefix_and_type() {
        assert_eq!(
            nats_subject("cw", "edu.canvas.user.updated"),
            "cw.edu.canvas.user.updated"
        );
        assert_eq!(nats_subject("cw", "a b*>"), "cw.a_b__");
    }
}
