//! One module per benchmark scenario.

pub mod api_calls;
pub mod e2e;
pub mod ingest;
pub mod lectures;
pub mod panopto;
pub mod quota;
