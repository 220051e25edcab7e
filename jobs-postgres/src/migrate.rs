//! Versioned migrations shipped in the crate, tracked in `<schema>.jobs_migrations`
//! (not the application's `_sqlx_migrations`), applied in one transaction
//! under an advisory lock so that several processes starting at once apply
//! each migration exactly once.

use sqlx::{Connection, Executor, PgConnection, PgPool, Row};

use crate::error::{Error, Result};
use crate::options::Schema;

/// One migration: a version and its SQL with `{{schema}}` and `{{channel}}` placeholders.
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
];

fn render(sql: &str, schema: &Schema) -> String {
    sql.replace("{{schema}}", &schema.quoted())
        .replace("{{channel}}", &schema.channel())
}

/// The statements that create the schema and the migrations table.
fn bootstrap_sql(schema: &Schema) -> String {
    let s = schema.quoted();
    format!(
        "CREATE SCHEMA IF NOT EXISTS {s};\n\
         CREATE TABLE IF NOT EXISTS {s}.jobs_migrations (\n    \
             version    integer     PRIMARY KEY,\n    \
             name       text        NOT NULL,\n    \
             applied_at timestamptz NOT NULL DEFAULT now()\n\
         );\n"
    )
}

/// The whole SQL of every migration, for users who apply migrations with
/// their own tool. It is idempotent only through the migrations table: apply
/// it once, to an empty schema.
pub(crate) fn full_sql(schema: &Schema) -> String {
    let mut sql = bootstrap_sql(schema);
    for m in MIGRATIONS {
        sql.push_str(&format!(
            "\n-- migration {} ({})\n{}\nINSERT INTO {}.jobs_migrations (version, name) VALUES ({}, '{}');\n",
            m.version,
            m.name,
            render(m.sql, schema),
            schema.quoted(),
            m.version,
            m.name
        ));
    }
    sql
}

/// A stable 64-bit key for the advisory lock of one schema's migrations (FNV-1a).
fn lock_key(schema: &Schema) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "jobs-migrate:".bytes().chain(schema.name().bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Applies the pending migrations in one transaction. The advisory lock is
/// taken first, before `CREATE SCHEMA IF NOT EXISTS` (which is itself racy
/// between sessions), so concurrent migrators run one after the other and the
/// later ones find nothing to do.
pub(crate) async fn run(pool: &PgPool, schema: &Schema) -> Result<()> {
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
            known: MIGRATIONS.last().map_or(0, |m| m.version),
        },
    })
}

enum MigrateError {
    Sqlx(sqlx::Error),
    TooNew(i32),
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
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(lock_key(schema))
        .execute(&mut *tx)
        .await?;
    let bootstrap = bootstrap_sql(schema);
    let conn: &mut PgConnection = tx;
    conn.execute(bootstrap.as_str()).await?;
    let select = format!(
        "SELECT version FROM {}.jobs_migrations ORDER BY version",
        schema.quoted()
    );
    let applied: Vec<i32> = sqlx::query(&select)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| row.try_get::<i32, _>(0))
        .collect::<Result<_, _>>()?;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if let Some(&newest) = applied.last() {
        if newest > known {
            return Err(MigrateError::TooNew(newest));
        }
    }
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        tracing::info!(
            schema = schema.name(),
            version = m.version,
            name = m.name,
            "applying jobs migration"
        );
        let sql = render(m.sql, schema);
        conn.execute(sql.as_str()).await?;
        let record = format!(
            "INSERT INTO {}.jobs_migrations (version, name) VALUES ($1, $2)",
            schema.quoted()
        );
        sqlx::query(&record)
            .bind(m.version)
            .bind(m.name)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
