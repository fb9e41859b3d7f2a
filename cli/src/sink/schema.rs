//! The sink's schema: versioned migrations, kept as SQL files under
//! `migrations/` and compiled into the binary, applied in order, each in a
//! transaction of its own together with its row in `schema_migrations`.
//!
//! A migration that fails leaves the database at the version before it.
//! A database whose schema is newer than this binary knows is refused
//! (an older `scf` must not write into a layout it does not understand).
//! Migrations are never edited once released: a change is a new file.

use tokio_postgres::Client;

use super::write::error_text;

/// Every migration, in order: (version, name, SQL). Versions start at 1
/// and follow each other.
const MIGRATIONS: &[(i32, &str, &str)] =
    &[(1, "initial", include_str!("migrations/0001_initial.sql"))];

/// The schema version this binary writes.
pub fn current_version() -> i32 {
    MIGRATIONS.last().map_or(0, |(version, _, _)| *version)
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "the database's sink schema is at version {found}, newer than this scf knows ({known}); run the scf that wrote it, or a newer one"
    )]
    Newer { found: i32, known: i32 },
    #[error("migration {version} ({name}) failed: {error}")]
    Migration {
        version: i32,
        name: &'static str,
        error: String,
    },
    #[error("reading schema_migrations: {0}")]
    Read(String),
}

/// Brings the schema to [`current_version`]; returns the versions applied
/// now (empty when it was up to date). The caller holds the sink's lock,
/// so no other sink migrates at the same time.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, SchemaError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version integer PRIMARY KEY,
                 name text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(|error| SchemaError::Read(error_text(&error)))?;
    let found: i32 = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(|error| SchemaError::Read(error_text(&error)))?
        .get(0);
    let known = current_version();
    if found > known {
        return Err(SchemaError::Newer { found, known });
    }
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS.iter().filter(|(version, _, _)| *version > found) {
        let failed = |error: tokio_postgres::Error| SchemaError::Migration {
            version: *version,
            name,
            error: error_text(&error),
        };
        let transaction = client.transaction().await.map_err(failed)?;
        transaction.batch_execute(sql).await.map_err(failed)?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await
            .map_err(failed)?;
        transaction.commit().await.map_err(failed)?;
        applied.push(*version);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_start_at_one_and_follow_each_other() {
        for (index, (version, _, sql)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version as usize, index + 1);
            assert!(!sql.trim().is_empty());
        }
    }
}
