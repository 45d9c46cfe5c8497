//! The Panopto client: OAuth2 for a service user (`token`), pacing inside Panopto's windows
//! with priority classes (`pace`), the HTTP transport with retries (`transport`) and typed
//! REST and SOAP calls (`calls`). Every wait and every token expiry is read from one injected
//! [`Clock`]. It owns every byte coursewire sends to Panopto and must not hold domain logic
//! (what to do with a session belongs to the service).
//!
//! ```no_run
//! # async fn demo() -> Result<(), panopto::client::ClientError> {
//! use std::sync::Arc;
//! use panopto::client::*;
//! let clock: Arc<dyn Clock> = Arc::new(SystemClock);
//! let http = http_client(std::time::Duration::from_secs(30))?;
//! let tokens = TokenSource::password(
//!     Credentials {
//!         token_url: "https://panopto.example.edu/Panopto/oauth2/connect/token".into(),
//!         client_id: "coursewire".into(),
//!         client_secret: "secret".into(),
//!         username: "svc-coursewire".into(),
//!         password: "password".into(),
//!     },
//!     http,
//!     clock.clone(),
//! );
//! let pacer = Arc::new(Pacer::new(PaceConfig::default(), Arc::new(MemoryLedger::default()), clock.clone()));
//! let auth = SoapAuth::Password { user_key: "svc-coursewire".into(), password: "password".into() };
//! let client = PanoptoClient::new(ClientConfig::new("https://panopto.example.edu", auth), tokens, pacer, clock)?;
//! let recorders = client.recorders(Priority::Poll).await?;
//! # Ok(()) }
//! ```

mod calls;
pub mod clock;
mod error;
pub mod pace;
mod secret;
pub mod token;
mod transport;

pub use calls::{Grantee, SESSION_IDS_PER_CALL, SOAP_PAGE};
pub use clock::{Clock, Sleep, SystemClock};
pub use error::ClientError;
pub use pace::{
    Cap, Headroom, Ledger, LedgerFuture, MemoryLedger, PaceConfig, Pacer, Priority, Take, Window,
};
pub use secret::Secret;
pub use token::{AccessToken, Credentials, TokenHealth, TokenSource};
pub use transport::{
    Answer, Body, ClientConfig, PanoptoClient, Request, SoapAuth, TransportCounts, http_client,
};
