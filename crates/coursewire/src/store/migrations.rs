//! Migrations, embedded in the binary so `coursewire migrate` works wherever the binary is.
//! Each backend has its own SQL files under `crates/coursewire/migrations/<backend>/`; sqlx's
//! migrator records checksums, so an applied migration that was edited is refused at start.
//! Never edit an applied migration: add a new one.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

type Embedded = (i64, &'static str, &'static str);

const SQLITE: &[Embedded] = &[
    (
        1,
        "inbox",
        include_str!("../../migrations/sqlite/0001_inbox.sql"),
    ),
    (
        2,
        "processing",
        include_str!("../../migrations/sqlite/0002_processing.sql"),
    ),
    (
        3,
        "delivery",
        include_str!("../../migrations/sqlite/0003_delivery.sql"),
    ),
    (
        4,
        "quota",
        include_str!("../../migrations/sqlite/0004_quota.sql"),
    ),
    (
        5,
        "delivery cursor",
        include_str!("../../migrations/sqlite/0005_delivery_cursor.sql"),
    ),
    (
        6,
        "lease columns",
        include_str!("../../migrations/sqlite/0006_lease_columns.sql"),
    ),
];

const POSTGRES: &[Embedded] = &[
    (
        1,
        "inbox",
        include_str!("../../migrations/postgres/0001_inbox.sql"),
    ),
    (
        2,
        "processing",
        include_str!("../../migrations/postgres/0002_processing.sql"),
    ),
    (
        3,
        "delivery",
        include_str!("../../migrations/postgres/0003_delivery.sql"),
    ),
    (
        4,
        "quota",
        include_str!("../../migrations/postgres/0004_quota.sql"),
    ),
    (
        5,
        "delivery cursor",
        include_str!("../../migrations/postgres/0005_delivery_cursor.sql"),
    ),
    (
        6,
        "lease columns",
        include_str!("../../migrations/postgres/0006_lease_columns.sql"),
    ),
];

fn migrator(embedded: &[Embedded]) -> Migrator {
    let migrations = embedded
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

pub fn sqlite() -> Migrator {
    migrator(SQLITE)
}

pub fn postgres() -> Migrator {
    migrator(POSTGRES)
}
