//! Versioned migrations shipped in the crate, tracked in `<schema>.jobs_migrations`
//! (not the application's `_sqlx_migrations`), applied in one transaction
//! under an advisory lock so that several processes starting at once apply
//! each migration exactly once.
//!
//! A migration is frozen once committed: the table records each applied
//! migration's checksum (64-bit FNV-1a of the file's text, before the schema
//! is filled in), and a database whose applied migration differs from this
//! build's is refused, naming the version. A change of schema is a new
//! migration file; the unit test `committed_migrations_are_frozen` fails when
//! one is edited in place. Rows recorded before checksums existed (NULL) are
//! given this build's checksum once, trusting them: no build that recorded
//! them was deployed.

use sqlx::{Connection, Executor, PgConnection, PgPool, Row};

use crate::db::to_completion;
use crate::error::{Error, Result};
use crate::options::Schema;

/// One migration: a version and its SQL with `{{schema}}` placeholders.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "recurring",
        sql: include_str!("../migrations/0002_recurring.sql"),
    },
    Migration {
        version: 3,
        name: "partial_state_index",
        sql: include_str!("../migrations/0003_partial_state_index.sql"),
    },
    Migration {
        version: 4,
        name: "job_timeout_backoff",
        sql: include_str!("../migrations/0004_job_timeout_backoff.sql"),
    },
    Migration {
        version: 5,
        name: "stuck_attempts",
        sql: include_str!("../migrations/0005_stuck_attempts.sql"),
    },
    Migration {
        version: 6,
        name: "stranded_index_server_counts",
        sql: include_str!("../migrations/0006_stranded_index_server_counts.sql"),
    },
    Migration {
        version: 7,
        name: "trace_context",
        sql: include_str!("../migrations/0007_trace_context.sql"),
    },
    Migration {
        version: 8,
        name: "queue_pause",
        sql: include_str!("../migrations/0008_queue_pause.sql"),
    },
    Migration {
        version: 9,
        name: "unique_jobs",
        sql: include_str!("../migrations/0009_unique_jobs.sql"),
    },
    Migration {
        version: 10,
        name: "job_output",
        sql: include_str!("../migrations/0010_job_output.sql"),
    },
    Migration {
        version: 11,
        name: "continuations",
        sql: include_str!("../migrations/0011_continuations.sql"),
    },
    Migration {
        version: 12,
        name: "batches",
        sql: include_str!("../migrations/0012_batches.sql"),
    },
    Migration {
        version: 13,
        name: "job_minutes",
        sql: include_str!("../migrations/0013_job_minutes.sql"),
    },
    Migration {
        version: 14,
        name: "queue_limits",
        sql: include_str!("../migrations/0014_queue_limits.sql"),
    },
    Migration {
        version: 15,
        name: "server_stale_after",
        sql: include_str!("../migrations/0015_server_stale_after.sql"),
    },
    Migration {
        version: 16,
        name: "key_limits",
        sql: include_str!("../migrations/0016_key_limits.sql"),
    },
];

/// The newest migration this build ships.
fn known() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

fn render(sql: &str, schema: &Schema) -> String {
    sql.replace("{{schema}}", &schema.quoted())
}

/// 64-bit FNV-1a: stable across builds and platforms, and enough to notice
/// an edit (the checksum guards against mistakes, not against an attacker).
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The checksum recorded for a migration: its file's text, hashed.
fn checksum(sql: &str) -> String {
    format!("{:016x}", fnv1a(sql.bytes()))
}

/// The statements that create the schema and the migrations table. The
/// `checksum` column is added to a table created before it existed.
fn bootstrap_sql(schema: &Schema) -> String {
    let s = schema.quoted();
    format!(
        "CREATE SCHEMA IF NOT EXISTS {s};\n\
         CREATE TABLE IF NOT EXISTS {s}.jobs_migrations (\n    \
             version    integer     PRIMARY KEY,\n    \
             name       text        NOT NULL,\n    \
             applied_at timestamptz NOT NULL DEFAULT now(),\n    \
             checksum   text\n\
         );\n\
         ALTER TABLE {s}.jobs_migrations ADD COLUMN IF NOT EXISTS checksum text;\n"
    )
}

/// The whole SQL of every migration, for users who apply migrations with
/// their own tool. It is idempotent only through the migrations table: apply
/// it once, to an empty schema.
pub(crate) fn full_sql(schema: &Schema) -> String {
    let mut sql = bootstrap_sql(schema);
    for m in MIGRATIONS {
        sql.push_str(&format!(
            "\n-- migration {} ({})\n{}\nINSERT INTO {}.jobs_migrations (version, name, checksum) \
             VALUES ({}, '{}', '{}');\n",
            m.version,
            m.name,
            render(m.sql, schema),
            schema.quoted(),
            m.version,
            m.name,
            checksum(m.sql),
        ));
    }
    sql
}

/// A stable 64-bit key for the advisory lock of one schema's migrations.
fn lock_key(schema: &Schema) -> i64 {
    let hash = fnv1a("jobs-migrate:".bytes().chain(schema.name().bytes()));
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Applies the pending migrations in one transaction, after checking the
/// applied ones. The advisory lock is taken first, before `CREATE SCHEMA IF
/// NOT EXISTS` (which is itself racy between sessions), so concurrent
/// migrators run one after the other and the later ones find nothing to do.
///
/// The transaction runs to its end even if the caller stops waiting (see
/// `db::to_completion`).
pub(crate) async fn run(pool: &PgPool, schema: &Schema) -> Result<()> {
    let (pool, schema) = (pool.clone(), schema.clone());
    let name = schema.name().to_owned();
    let work = async move { run_here(&pool, &schema).await };
    to_completion(work, |cancelled| Error::Migrate {
        schema: name,
        source: sqlx::Error::Io(std::io::Error::other(cancelled)),
    })
    .await
}

async fn run_here(pool: &PgPool, schema: &Schema) -> Result<()> {
    let err = |source| Error::Migrate {
        schema: schema.name().to_owned(),
        source,
    };
    let mut conn = pool.acquire().await.map_err(err)?;
    migrate_on(&mut conn, schema).await.map_err(|e| match e {
        MigrateError::Sqlx(source) => err(source),
        MigrateError::TooNew(found) => Error::SchemaTooNew {
            schema: schema.name().to_owned(),
            found,
            known: known(),
        },
        MigrateError::Changed {
            version,
            stored,
            expected,
        } => Error::MigrationChanged {
            schema: schema.name().to_owned(),
            version,
            stored,
            expected,
        },
    })
}

enum MigrateError {
    Sqlx(sqlx::Error),
    TooNew(i32),
    Changed {
        version: i32,
        stored: String,
        expected: String,
    },
}

impl From<sqlx::Error> for MigrateError {
    fn from(e: sqlx::Error) -> Self {
        Self::Sqlx(e)
    }
}

async fn migrate_on(conn: &mut PgConnection, schema: &Schema) -> Result<(), MigrateError> {
    let mut tx = conn.begin().await?;
    let applied = apply(&mut tx, schema).await;
    crate::error::finish(tx, applied, MigrateError::Sqlx).await
}

/// The migration's work, in the transaction `migrate_on` ends.
async fn apply(tx: &mut PgConnection, schema: &Schema) -> Result<(), MigrateError> {
    let s = schema.quoted();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(lock_key(schema))
        .execute(&mut *tx)
        .await?;
    let bootstrap = bootstrap_sql(schema);
    let conn: &mut PgConnection = tx;
    conn.execute(bootstrap.as_str()).await?;
    let select = format!("SELECT version, checksum FROM {s}.jobs_migrations ORDER BY version");
    let applied: Vec<(i32, Option<String>)> = sqlx::query(&select)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()?;
    if let Some(&(newest, _)) = applied.last() {
        if newest > known() {
            return Err(MigrateError::TooNew(newest));
        }
    }
    let backfill = format!(
        "UPDATE {s}.jobs_migrations SET checksum = $2 WHERE version = $1 AND checksum IS NULL"
    );
    for (version, stored) in &applied {
        let Some(m) = MIGRATIONS.iter().find(|m| m.version == *version) else {
            continue;
        };
        let expected = checksum(m.sql);
        match stored {
            None => {
                sqlx::query(&backfill)
                    .bind(version)
                    .bind(&expected)
                    .execute(&mut *conn)
                    .await?;
            }
            Some(stored) if *stored != expected => {
                return Err(MigrateError::Changed {
                    version: *version,
                    stored: stored.clone(),
                    expected,
                });
            }
            Some(_) => {}
        }
    }
    let record =
        format!("INSERT INTO {s}.jobs_migrations (version, name, checksum) VALUES ($1, $2, $3)");
    for m in MIGRATIONS
        .iter()
        .filter(|m| !applied.iter().any(|(v, _)| *v == m.version))
    {
        tracing::info!(
            schema = schema.name(),
            version = m.version,
            name = m.name,
            "applying jobs migration"
        );
        let sql = render(m.sql, schema);
        conn.execute(sql.as_str()).await?;
        sqlx::query(&record)
            .bind(m.version)
            .bind(m.name)
            .bind(checksum(m.sql))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checksums of the committed migrations. A migration may have been
    /// applied somewhere as soon as it is committed: never edit one, add a
    /// new migration (and its checksum here).
    const FROZEN: &[(i32, &str)] = &[
        (1, "552f261d54f5842c"),
        (2, "a44aa065f3ae9508"),
        (3, "54df82bb40869a34"),
        (4, "0d6989ee58747d33"),
        (5, "b1f571ad1e7102c1"),
        (6, "958ee68efbc821f5"),
        (7, "37bbfde034e4995a"),
        (8, "1d36c70f0ec59a00"),
        (9, "d7473e0076c7aeae"),
        (10, "0474f3c6a2de1325"),
        (11, "34a7a8a45c286fe4"),
        (12, "91d14185c90a9349"),
        (13, "9fb9ccf395975a55"),
        (14, "414dd11dcb555f4e"),
        (15, "1a910d4bbe46f01e"),
        (16, "a9bc1d4ecbfae7af"),
    ];

    #[test]
    fn committed_migrations_are_frozen() {
        assert_eq!(
            MIGRATIONS.len(),
            FROZEN.len(),
            "every migration has a frozen checksum: add the new one's to FROZEN"
        );
        for (m, (version, frozen)) in MIGRATIONS.iter().zip(FROZEN) {
            assert_eq!(m.version, *version);
            assert_eq!(
                checksum(m.sql),
                *frozen,
                "migration {:04} ({}) was edited after it was committed: revert it and add a new migration instead",
                m.version,
                m.name
            );
        }
    }

    #[test]
    fn versions_follow_each_other() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(usize::try_from(m.version).unwrap(), i + 1, "{}", m.name);
        }
    }

    #[test]
    fn checksums_and_lock_keys_are_stable() {
        // FNV-1a's published test vector: an edit of the hash would change
        // every recorded checksum.
        assert_eq!(fnv1a("a".bytes()), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(checksum(""), "cbf29ce484222325");
        let jobs = Schema::parse("jobs").unwrap();
        assert_eq!(lock_key(&jobs), lock_key(&Schema::parse("jobs").unwrap()));
        assert_ne!(lock_key(&jobs), lock_key(&Schema::parse("jobs2").unwrap()));
    }
}
