//! coursewire: the service and CLI. One module per stage of the data flow (DESIGN.md):
//! `ingest` (webhooks into the inbox), `processor` (inbox into `catalog` and change events),
//! `bus` (change events out), `store` (SQLite/PostgreSQL), `web` (HTTP surface), plus
//! `config`, `clock`, `metrics` and the `app` that wires them together.

pub mod app;
pub mod bus;
pub mod canvas_api;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod demo;
pub mod ingest;
pub mod metrics;
pub mod panopto_api;
pub mod processor;
pub mod reconcile;
pub mod rules;
pub mod secrets;
pub mod sources;
pub mod store;
pub mod tasks;
pub mod tokens;
pub mod wake;
pub mod web;
pub mod workflow;
