//! The Canvas REST client: transport (retries, back-off, throttle handling), OAuth2 token
//! lifecycle, the quota governor that keeps Canvas's leaky bucket below its high-water mark,
//! `Link` pagination as streams, and typed calls for the objects coursewire syncs. It owns
//! every byte coursewire sends to Canvas's REST API and must not hold domain logic (what to
//! do with a course or an enrollment belongs to the service).
//!
//! ```no_run
//! # async fn demo() -> Result<(), canvas::client::ClientError> {
//! use canvas::client::{CanvasClient, ClientConfig, Priority, TokenSource};
//! use futures::TryStreamExt as _;
//! let client = CanvasClient::new(
//!     ClientConfig::new("https://canvas.example.edu").with_concurrency(16),
//!     TokenSource::fixed("token"),
//! )?;
//! let courses: Vec<_> = client.account_courses(1, Priority::Bulk).try_collect().await?;
//! # Ok(()) }
//! ```

mod error;
pub mod governor;
pub mod graphql;
pub mod link;
mod pages;
mod rest;
mod secret;
pub mod token;
mod transport;
pub mod types;

pub use error::ClientError;
pub use governor::{GovernorConfig, GovernorSnapshot, Permit, Priority, QuotaGovernor};
pub use graphql::{CourseRead, EnrollmentState, GraphQlError, ModuleWithItems, NestedCourse};
pub use rest::Items;
pub use secret::Secret;
pub use token::{AccessToken, Clock, OAuthCredentials, TokenHealth, TokenSource};
pub use transport::{
    Answer, Call, CanvasClient, ClientConfig, TransportCounts, TransportStats, http_client,
};
pub use types::{
    Assignment, CompletionRequirement, Course, Enrollment, Module, ModuleItem, Section, User,
    UserStub,
};
