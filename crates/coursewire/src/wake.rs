//! Wake-ups between the stages of one process: the inbox writer tells the processor that rows
//! arrived, the processor tells the deliverer that change events did. Each stage still polls
//! (`idle_poll_ms`) for work written by other processes; the wake-up only saves the wait.
//!
//! A `watch` channel rather than a `Notify`: a stage that was busy when the signal came finds
//! it marked as unseen on its next wait, so no wake-up is lost between a look and a wait.

use std::time::Duration;

use tokio::sync::watch;

/// The sending side: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct Wake(watch::Sender<u64>);

/// The waiting side of one stage.
#[derive(Debug, Clone)]
pub struct Waiter(watch::Receiver<u64>);

impl Wake {
    pub fn new() -> Self {
        Self(watch::Sender::new(0))
    }

    /// Signals that there is new work.
    pub fn notify(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn waiter(&self) -> Waiter {
        let mut rx = self.0.subscribe();
        rx.mark_changed();
        Waiter(rx)
    }
}

impl Default for Wake {
    fn default() -> Self {
        Self::new()
    }
}

impl Waiter {
    /// Returns at the first signal not yet seen, or after `timeout`.
    pub async fn wait(&mut self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.0.changed()).await;
    }
}

/// Waits on `waiter` if there is one, else sleeps `timeout`.
pub async fn wait_or_sleep(waiter: Option<&mut Waiter>, timeout: Duration) {
    match waiter {
        Some(waiter) => waiter.wait(timeout).await,
        None => tokio::time::sleep(timeout).await,
    }
}
