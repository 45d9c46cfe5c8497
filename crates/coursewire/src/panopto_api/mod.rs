//! The Panopto API client of this process: one client, with one pacer, per API client
//! (`[panopto]`), built once and handed to everything that calls Panopto (the poller now; the
//! workflow's writes next). Processes on the same API client count their requests in one
//! ledger in the store ([`StoreLedger`]), so together they stay inside Panopto's windows.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use panopto::client::{
    ClientConfig, Credentials, Ledger, LedgerFuture, Pacer, PanoptoClient, SoapAuth, Take,
    TokenSource,
};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::config::{PanoptoConfig, PanoptoSoapAuth};
use crate::store::Store;

/// The client's clock is the service's (the simulator's in the demo and tests).
#[derive(Debug)]
struct ServiceClock(Arc<dyn Clock>);

impl panopto::client::Clock for ServiceClock {
    fn now_ms(&self) -> i64 {
        self.0.now_ms()
    }

    fn sleep_until(&self, at_ms: i64) -> panopto::client::Sleep<'_> {
        self.0.sleep_until(at_ms)
    }
}

/// The request ledger of one API client, in the store: exact across processes (see
/// `panopto::client::pace`).
#[derive(Debug)]
pub struct StoreLedger {
    store: Arc<Store>,
    client_key: String,
}

impl StoreLedger {
    pub fn new(store: Arc<Store>, client_key: String) -> StoreLedger {
        StoreLedger { store, client_key }
    }
}

impl Ledger for StoreLedger {
    fn take<'a>(&'a self, now_ms: i64, caps: &'a [panopto::client::Cap]) -> LedgerFuture<'a, Take> {
        Box::pin(async move {
            let caps: Vec<(i64, u32)> = caps.iter().map(|c| (c.span_ms, c.cap)).collect();
            match self
                .store
                .take_panopto_slot(&self.client_key, now_ms, &caps)
                .await
            {
                Ok(None) => Ok(Take::Taken),
                Ok(Some(wait)) => Ok(Take::WaitMs(wait)),
                Err(e) => Err(e.to_string()),
            }
        })
    }

    fn used<'a>(&'a self, now_ms: i64, spans: &'a [i64]) -> LedgerFuture<'a, Vec<u32>> {
        Box::pin(async move {
            self.store
                .panopto_slots_used(&self.client_key, now_ms, spans)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// The key processes on one API client share: a hash of the site and the client's identity,
/// so no secret is stored.
pub fn client_key(config: &PanoptoConfig) -> String {
    let mut hash = Sha256::new();
    hash.update(config.url.trim_end_matches('/').as_bytes());
    hash.update(b"\n");
    if config.token.is_empty() {
        hash.update(config.client_id.as_bytes());
    } else {
        hash.update(config.token.expose().as_bytes());
    }
    hex::encode(&hash.finalize()[..12])
}

/// The Panopto client of `[panopto]`, paced through the store's ledger; every wait and token
/// expiry on `clock` (Panopto's time: the simulator's in the demo).
pub fn client(
    config: &PanoptoConfig,
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<PanoptoClient> {
    let base = config.url.trim_end_matches('/');
    let clock: Arc<dyn panopto::client::Clock> = Arc::new(ServiceClock(clock));
    let http = panopto::client::http_client(Duration::from_secs(30))
        .context("cannot build the Panopto HTTP client")?;
    let tokens = if config.token.is_empty() {
        TokenSource::password(
            Credentials {
                token_url: format!("{base}/Panopto/oauth2/connect/token"),
                client_id: config.client_id.clone(),
                client_secret: config.client_secret.expose().into(),
                username: config.username.clone(),
                password: config.password.expose().into(),
            },
            http,
            clock.clone(),
        )
    } else {
        TokenSource::fixed(config.token.expose(), http, clock.clone())
    };
    let soap_auth = match config.soap_auth {
        PanoptoSoapAuth::Password => SoapAuth::Password {
            user_key: config.username.clone(),
            password: config.password.expose().into(),
        },
        PanoptoSoapAuth::AuthCode => SoapAuth::AuthCode {
            user_key: config.username.clone(),
            application_key: config.application_key.expose().into(),
        },
        PanoptoSoapAuth::AccessToken => SoapAuth::AccessToken {
            user_key: config.username.clone(),
        },
    };
    let ledger = Arc::new(StoreLedger::new(store, client_key(config)));
    let pacer = Arc::new(Pacer::new(config.pace(), ledger, clock.clone()));
    PanoptoClient::new(ClientConfig::new(base, soap_auth), tokens, pacer, clock)
        .context("cannot build the Panopto client")
}
