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
    (
        7,
        "text entity ids",
        include_str!("../../migrations/sqlite/0007_text_entity_ids.sql"),
    ),
    (
        8,
        "api tokens",
        include_str!("../../migrations/sqlite/0008_api_tokens.sql"),
    ),
    (
        9,
        "panopto ingest",
        include_str!("../../migrations/sqlite/0009_panopto_ingest.sql"),
    ),
    (
        10,
        "publishing rules",
        include_str!("../../migrations/sqlite/0010_publishing_rules.sql"),
    ),
    (
        11,
        "recording workflow",
        include_str!("../../migrations/sqlite/0011_recording_workflow.sql"),
    ),
    (
        12,
        "workflow timings",
        include_str!("../../migrations/sqlite/0012_workflow_timings.sql"),
    ),
    (
        13,
        "catalog parent key",
        include_str!("../../migrations/sqlite/0013_catalog_parent_key.sql"),
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
    (
        7,
        "text entity ids",
        include_str!("../../migrations/postgres/0007_text_entity_ids.sql"),
    ),
    (
        8,
        "api tokens",
        include_str!("../../migrations/postgres/0008_api_tokens.sql"),
    ),
    (
        9,
        "panopto ingest",
        include_str!("../../migrations/postgres/0009_panopto_ingest.sql"),
    ),
    (
        10,
        "publishing rules",
        include_str!("../../migrations/postgres/0010_publishing_rules.sql"),
    ),
    (
        11,
        "recording workflow",
        include_str!("../../migrations/postgres/0011_recording_workflow.sql"),
    ),
    (
        12,
        "workflow timings",
        include_str!("../../migrations/postgres/0012_workflow_timings.sql"),
    ),
    (
        13,
        "catalog parent key",
        include_str!("../../migrations/postgres/0013_catalog_parent_key.sql"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::SqlitePoolOptions;

    /// An upgrade keeps what the older schema held: a catalog written with integer ids (before
    /// 0007) reads back with the same keys, now text.
    #[tokio::test]
    async fn text_entity_ids_keep_the_rows_of_integer_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .expect("sqlite");
        let before_text_ids = SQLITE
            .iter()
            .position(|(version, _, _)| *version == 7)
            .expect("migration 7");
        migrator(&SQLITE[..before_text_ids])
            .run(&pool)
            .await
            .expect("old schema");
        sqlx::query(
            "INSERT INTO catalog_entities (kind, id, state, deleted, version_time, version_tie, \
               sequence, course_id, written_at) VALUES ('course', 565, '{}', FALSE, 1, 't', 3, 565, 1)",
        )
        .execute(&pool)
        .await
        .expect("an integer-keyed row");
        sqlite().run(&pool).await.expect("upgrade");
        let (id, kind_of_id, sequence): (String, String, i64) = sqlx::query_as(
            "SELECT id, typeof(id), sequence FROM catalog_entities WHERE course_id = 565",
        )
        .fetch_one(&pool)
        .await
        .expect("the row survived");
        assert_eq!(
            (id.as_str(), kind_of_id.as_str(), sequence),
            ("565", "text", 3)
        );
        let indexes: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'catalog_entities' \
             AND name LIKE 'catalog_by_%' ORDER BY name",
        )
        .fetch_all(&pool)
        .await
        .expect("indexes");
        assert_eq!(indexes.len(), 4, "{indexes:?}"); // course, section, user (0007), parent key (0013)
    }

    /// Every SQL file of a backend's directory is embedded, in order: a file added without
    /// its line here would never run.
    #[test]
    fn every_migration_file_is_embedded() {
        for (backend, embedded) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(backend);
            let mut files: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|f| f.ends_with(".sql"))
                .collect();
            files.sort();
            let versions: Vec<i64> = embedded.iter().map(|(v, _, _)| *v).collect();
            let numbered: Vec<i64> = files.iter().map(|f| f[..4].parse().unwrap()).collect();
            assert_eq!(versions, numbered, "{backend}: {files:?}");
        }
    }
}
