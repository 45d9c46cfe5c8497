//! Sharing one Canvas token's budget between processes: every `INTERVAL` each process
//! publishes the units its governor holds in flight and hands the sum of the others' to its
//! governor ([`canvas::client::QuotaGovernor::set_peer_units`]). Between two responses from
//! Canvas, a governor would otherwise learn of another process's admissions only from the next
//! bucket level, and several processes starting a crawl at once could all spend the same room.

use std::sync::Arc;
use std::time::Duration;

use canvas::client::QuotaGovernor;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::CanvasApiConfig;
use crate::store::Store;

/// How often a process publishes and reads: well under the time a request spends at Canvas.
pub const INTERVAL: Duration = Duration::from_millis(250);
/// A process that has not published for this long is gone (crashed or stopped).
pub const FRESH: Duration = Duration::from_secs(5);

/// The key processes on one token share: a hash of the Canvas URL and the token's identity
/// (the static token, or the OAuth client and refresh token), so the token itself is never
/// stored.
pub fn token_key(config: &CanvasApiConfig) -> String {
    let mut hash = Sha256::new();
    hash.update(config.url.trim_end_matches('/').as_bytes());
    hash.update(b"\n");
    if config.token.is_empty() {
        hash.update(config.oauth_client_id.as_bytes());
        hash.update(b"\n");
        hash.update(config.oauth_refresh_token.expose().as_bytes());
    } else {
        hash.update(config.token.expose().as_bytes());
    }
    hex::encode(&hash.finalize()[..12])
}

/// One publish-and-read round; returns the peers' units handed to the governor.
pub async fn share_once(
    store: &Store,
    governor: &QuotaGovernor,
    key: &str,
    owner: &str,
    clock: &dyn Clock,
) -> crate::store::StoreResult<f64> {
    // A process that has not published for FRESH of real time is gone, at any clock speed.
    let now_ms = clock.now_ms();
    let fresh_since = now_ms - clock.span_ms(FRESH);
    let peers = store
        .share_quota(key, owner, governor.reserved_units(), now_ms, fresh_since)
        .await?;
    governor.set_peer_units(peers);
    Ok(peers)
}

/// Runs [`share_once`] every [`INTERVAL`] until `cancel`.
pub async fn run(
    store: Arc<Store>,
    governor: Arc<QuotaGovernor>,
    key: String,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
) {
    let owner = format!(
        "pid{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let mut failing = false;
    loop {
        match share_once(store.as_ref(), &governor, &key, &owner, clock.as_ref()).await {
            Ok(_) => failing = false,
            Err(err) if !failing => {
                // The governor keeps its last view; the bucket headers still protect it.
                tracing::warn!(error = %err, "cannot share the Canvas quota with other processes");
                failing = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
    }
}
