//! The Canvas API client of this process: one client, with one quota governor, per credential
//! (`[canvas.api]`), built once and handed to everything that calls Canvas (the reconciler now;
//! the workflow's writes next). Processes sharing the credential share its budget through the
//! store ([`quota_share`]).

pub mod quota_share;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use canvas::client::{CanvasClient, ClientConfig, OAuthCredentials, TokenSource};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::CanvasApiConfig;
use crate::store::Store;
use crate::tasks::Tasks;

/// The Canvas client of `[canvas.api]`; OAuth2 token expiry is judged by `clock` (Canvas's
/// time: the simulator's in the demo).
pub fn client(config: &CanvasApiConfig, clock: Arc<dyn Clock>) -> anyhow::Result<CanvasClient> {
    config.require()?;
    let base = config.url.trim_end_matches('/');
    let tokens = if !config.token.is_empty() {
        TokenSource::fixed(config.token.expose())
    } else {
        let http = canvas::client::http_client(Duration::from_secs(30))
            .context("cannot build the Canvas token client")?;
        TokenSource::oauth(
            OAuthCredentials {
                token_url: format!("{base}/login/oauth2/token"),
                client_id: config.oauth_client_id.clone(),
                client_secret: config.oauth_client_secret.expose().into(),
                refresh_token: config.oauth_refresh_token.expose().into(),
            },
            http,
            None,
        )
        .with_clock(Arc::new(move || clock.now_ms()))
    };
    CanvasClient::new(
        ClientConfig::new(base).with_concurrency(config.concurrency),
        tokens,
    )
    .context("cannot build the Canvas client")
}

/// Builds the client and starts sharing its quota with the other processes on the same
/// credential, as a task of this process. `token_clock` judges token expiry (Canvas's time);
/// `clock` dates the shared quota.
pub fn start(
    config: &CanvasApiConfig,
    store: Arc<Store>,
    token_clock: Arc<dyn Clock>,
    clock: Arc<dyn Clock>,
    tasks: &mut Tasks,
    cancel: &CancellationToken,
) -> anyhow::Result<CanvasClient> {
    let client = client(config, token_clock)?;
    tasks.spawn(
        "canvas quota share",
        quota_share::run(
            store,
            client.governor().clone(),
            quota_share::token_key(config),
            clock,
            cancel.child_token(),
        ),
    );
    Ok(client)
}
