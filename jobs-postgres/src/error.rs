//! The crate's own error (configuration and migrations) and the mapping of
//! sqlx errors onto the store error kinds the server acts on. SQLSTATE codes
//! stay in this file.

use jobs_core::{StoreError, StoreErrorKind};

/// The result of a `jobs_postgres` call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong when setting up the PostgreSQL store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The schema name is not a plain lowercase identifier.
    #[error(
        "invalid schema name `{0}`: use 1 to 63 lowercase letters, digits and underscores, not starting with a digit"
    )]
    InvalidSchema(String),
    /// The database could not be reached.
    #[error("could not connect to PostgreSQL")]
    Connect(#[source] sqlx::Error),
    /// Applying the migrations failed.
    #[error("could not migrate the jobs schema `{schema}`")]
    Migrate {
        /// The schema being migrated.
        schema: String,
        /// The database's error.
        #[source]
        source: sqlx::Error,
    },
    /// The database holds migrations newer than this version of the crate knows.
    #[error("the jobs schema `{schema}` is at migration {found}, newer than this build knows ({known}); upgrade the application")]
    SchemaTooNew {
        /// The schema.
        schema: String,
        /// The newest migration applied in the database.
        found: i32,
        /// The newest migration this build ships.
        known: i32,
    },
}

/// Maps a sqlx error to a [`StoreError`] whose kind says whether retrying
/// may help. `what` says what was being done ("claiming jobs").
pub(crate) fn store_error(what: &str, error: sqlx::Error) -> StoreError {
    let kind = kind_of(&error);
    StoreError::new(kind, format!("postgres: {what} failed")).with_source(error)
}

fn kind_of(error: &sqlx::Error) -> StoreErrorKind {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreErrorKind::Unavailable,
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some(code) => kind_of_sqlstate(code),
            None => StoreErrorKind::Other,
        },
        _ => StoreErrorKind::Other,
    }
}

/// The kind of a SQLSTATE.
fn kind_of_sqlstate(code: &str) -> StoreErrorKind {
    match code {
        // connection exceptions
        c if c.starts_with("08") => StoreErrorKind::Unavailable,
        // serialization failure, deadlock: the same statement may pass next time
        "40001" | "40P01" => StoreErrorKind::Unavailable,
        // admin/crash shutdown, cannot connect now, too many connections,
        // lock not available, query canceled (statement_timeout)
        "57P01" | "57P02" | "57P03" | "53300" | "55P03" | "57014" => StoreErrorKind::Unavailable,
        // read-only transaction (a failover in progress)
        "25006" => StoreErrorKind::Unavailable,
        // unique violation: a recurring tick already enqueued
        "23505" => StoreErrorKind::Conflict,
        _ => StoreErrorKind::Other,
    }
}

/// Ends a transaction on the store's pool: commits after `result` is `Ok`, and
/// rolls back explicitly after an error. sqlx only queues the rollback of a
/// dropped transaction until its connection is next used, and until then the
/// pooled connection sits "idle in transaction" holding its locks (a later
/// migration or `DROP SCHEMA` would wait on them indefinitely).
pub(crate) async fn finish<T, E>(
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    result: std::result::Result<T, E>,
    commit_error: impl FnOnce(sqlx::Error) -> E,
) -> std::result::Result<T, E> {
    match result {
        Ok(value) => {
            tx.commit().await.map_err(commit_error)?;
            Ok(value)
        }
        Err(error) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::debug!(error = %rollback, "jobs: rollback failed; the connection is dropped");
            }
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_to_kinds() {
        assert_eq!(kind_of_sqlstate("08006"), StoreErrorKind::Unavailable);
        assert_eq!(kind_of_sqlstate("57P01"), StoreErrorKind::Unavailable);
        assert_eq!(kind_of_sqlstate("40001"), StoreErrorKind::Unavailable);
        assert_eq!(kind_of_sqlstate("40P01"), StoreErrorKind::Unavailable);
        assert_eq!(kind_of_sqlstate("23505"), StoreErrorKind::Conflict);
        assert_eq!(kind_of_sqlstate("42P01"), StoreErrorKind::Other);
        assert_eq!(
            kind_of(&sqlx::Error::PoolTimedOut),
            StoreErrorKind::Unavailable
        );
        assert_eq!(
            kind_of(&sqlx::Error::PoolClosed),
            StoreErrorKind::Unavailable
        );
        assert_eq!(kind_of(&sqlx::Error::RowNotFound), StoreErrorKind::Other);
    }
}
