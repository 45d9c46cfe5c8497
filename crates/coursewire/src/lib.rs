//! coursewire: the service and CLI. One module per stage of the data flow (DESIGN.md):
//! `ingest` (webhooks into the inbox), `store` (SQLite/PostgreSQL), `web` (HTTP surface),
//! plus `config`, `metrics` and the `app` that wires them together.

pub mod app;
pub mod cli;
pub mod config;
pub mod decode;
pub mod ingest;
pub mod metrics;
pub mod store;
pub mod web;
