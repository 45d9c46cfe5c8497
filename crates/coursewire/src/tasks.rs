//! The background tasks of one process (inbox writer, processor, delivery, sinks, reconciler,
//! and next the poller, workflow and monitors), started and joined in one place so that adding
//! a worker is one line.
//!
//! A task is supposed to run until the process stops. One that returns or panics before then
//! is recorded as dead, and `/readyz` reports the instance not ready: an orchestrator restarts
//! it instead of leaving work silently undone.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Which tasks ended before the process was asked to stop.
#[derive(Debug, Default)]
pub struct TaskHealth {
    dead: Mutex<Vec<String>>,
}

impl TaskHealth {
    /// The tasks that ended early, each with how (`returned`, or the panic).
    pub fn dead(&self) -> Vec<String> {
        self.dead
            .lock()
            .map(|dead| dead.clone())
            .unwrap_or_default()
    }

    fn record(&self, what: String) {
        if let Ok(mut dead) = self.dead.lock() {
            dead.push(what);
        }
    }
}

/// The set of running tasks.
#[derive(Debug)]
pub struct Tasks {
    stopping: CancellationToken,
    health: Arc<TaskHealth>,
    running: Vec<Running>,
}

#[derive(Debug)]
struct Running {
    name: &'static str,
    task: tokio::task::AbortHandle,
    watcher: JoinHandle<Result<(), String>>,
}

impl Tasks {
    /// Tasks that are asked to stop through `stopping` (each gets a child token of it, or the
    /// token itself, from the caller).
    pub fn new(stopping: CancellationToken) -> Self {
        Self {
            stopping,
            health: Arc::default(),
            running: Vec::new(),
        }
    }

    pub fn health(&self) -> Arc<TaskHealth> {
        self.health.clone()
    }

    /// Starts `task` under `name`.
    pub fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let stopping = self.stopping.clone();
        let health = self.health.clone();
        let inner = tokio::spawn(task);
        let abort = inner.abort_handle();
        let watcher = tokio::spawn(async move {
            let ended = match inner.await {
                Ok(()) => Ok(()),
                Err(err) if err.is_cancelled() => {
                    Err(format!("{name} aborted: it did not stop when asked"))
                }
                Err(err) => Err(format!("{name} panicked: {err}")),
            };
            if !stopping.is_cancelled() {
                let how = match &ended {
                    Ok(()) => format!("{name} returned"),
                    Err(panic) => panic.clone(),
                };
                tracing::error!(task = name, how = %how, "background task ended before shutdown");
                health.record(how);
            }
            ended
        });
        self.running.push(Running {
            name,
            task: abort,
            watcher,
        });
    }

    /// Waits for every task, in the order they were started; the first panic is the error
    /// (every task is still waited for). A task still running `limit` after this call began
    /// is stuck on something that ignores cancellation (a bug): it is aborted and named, so a
    /// stop asked for by an init system or a test always ends.
    pub async fn join(self, limit: std::time::Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut first_panic = None;
        for Running {
            name,
            task,
            mut watcher,
        } in self.running
        {
            let ended = match tokio::time::timeout_at(deadline, &mut watcher).await {
                Ok(ended) => ended,
                Err(_) => {
                    tracing::error!(
                        task = name,
                        ?limit,
                        "background task did not stop when asked; aborted"
                    );
                    task.abort();
                    watcher.await
                }
            };
            if let Err(panic) = ended.unwrap_or_else(|err| Err(format!("{name}: {err}"))) {
                first_panic.get_or_insert(panic);
            }
        }
        match first_panic {
            Some(panic) => Err(anyhow::anyhow!(panic)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

    #[tokio::test]
    async fn a_task_that_ignores_the_stop_is_aborted_at_the_limit() {
        let stopping = CancellationToken::new();
        let mut tasks = Tasks::new(stopping.clone());
        let token = stopping.clone();
        tasks.spawn("polite", async move { token.cancelled().await });
        tasks.spawn("stuck", std::future::pending());
        stopping.cancel();
        let joined = tasks.join(std::time::Duration::from_millis(50)).await;
        assert!(joined.is_err(), "an aborted task is reported");
        assert!(format!("{:#}", joined.unwrap_err()).contains("stuck"));
    }

    #[tokio::test]
    async fn a_task_that_ends_before_shutdown_is_dead() {
        let stopping = CancellationToken::new();
        let mut tasks = Tasks::new(stopping.clone());
        let health = tasks.health();
        tasks.spawn("quitter", async {});
        let token = stopping.clone();
        tasks.spawn("worker", async move { token.cancelled().await });
        for _ in 0..100 {
            if !health.dead().is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(health.dead(), vec!["quitter returned".to_owned()]);
        stopping.cancel();
        tasks.join(LIMIT).await.unwrap();
        assert_eq!(
            health.dead().len(),
            1,
            "tasks ending at shutdown are not dead"
        );
    }

    #[tokio::test]
    async fn a_panic_is_dead_and_fails_the_join() {
        let stopping = CancellationToken::new();
        let mut tasks = Tasks::new(stopping.clone());
        let health = tasks.health();
        tasks.spawn("crasher", async { panic!("boom") });
        for _ in 0..100 {
            if !health.dead().is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(
            health.dead()[0].starts_with("crasher panicked"),
            "{:?}",
            health.dead()
        );
        stopping.cancel();
        assert!(tasks.join(LIMIT).await.is_err());
    }
}
