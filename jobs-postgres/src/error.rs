//! The crate's own error, which every public function of `PgStore` returns
//! (the `Store` trait's methods return the trait's `StoreError`), and the
//! mapping of sqlx errors onto the store error kinds the server acts on.
//! SQLSTATE codes stay in this file.

use jobs_core::{JobState, StoreError, StoreErrorKind, StoreResult};

/// The result of a `jobs_postgres` call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong when setting up or calling the PostgreSQL store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A statement of the store failed; its kind says whether retrying may help.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A job could not be turned into a row: its arguments did not serialize.
    #[error(transparent)]
    Job(jobs_core::Error),
    /// A transactional enqueue through `Jobs` found another store than a
    /// `PgStore` behind the client.
    #[error(
        "this `Jobs` is not on a `PgStore`, so it cannot enqueue in a PostgreSQL transaction; build it with `Jobs::new(pg_store)`, or call `PgStore::enqueue_in` on the store"
    )]
    NotPgStore,
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
    /// An applied migration differs from this build's migration of the same
    /// version: the database was migrated by a different build.
    #[error(
        "migration {version:04} of the jobs schema `{schema}` was applied by a different build: \
         stored checksum {stored}, this build's {expected}"
    )]
    MigrationChanged {
        /// The schema.
        schema: String,
        /// The migration's version.
        version: i32,
        /// The checksum recorded when the migration was applied.
        stored: String,
        /// The checksum of this build's migration.
        expected: String,
    },
}

impl Error {
    /// Whether retrying may help, in the terms of the store errors: a
    /// [`StoreError`]'s own kind, `Unavailable` when the database could not
    /// be reached, `Invalid` for a bad schema name or unserializable
    /// arguments, `Other` for a schema this build cannot work with.
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            Self::Store(e) => e.kind(),
            Self::Connect(e) | Self::Migrate { source: e, .. } => kind_of(e),
            Self::InvalidSchema(_) | Self::Job(_) | Self::NotPgStore => StoreErrorKind::Invalid,
            Self::SchemaTooNew { .. } | Self::MigrationChanged { .. } => StoreErrorKind::Other,
        }
    }
}

impl From<jobs_core::Error> for Error {
    fn from(error: jobs_core::Error) -> Self {
        match error {
            jobs_core::Error::Store(e) => Self::Store(e),
            other => Self::Job(other),
        }
    }
}

/// Maps a sqlx error to a [`StoreError`] whose kind says whether retrying
/// may help. `what` says what was being done ("claiming jobs").
///
/// The message quotes the cause: the database's own message and SQLSTATE
/// (`postgres: renewing leases failed: deadlock detected (SQLSTATE 40P01)`),
/// or sqlx's description of a failure outside the database (a lost
/// connection, a pool timeout). The server logs store errors with `%error`,
/// which prints the message alone, and "renewing leases failed" without its
/// cause left operators guessing. The sqlx error stays the source, for code
/// that inspects it; a report that prints the whole chain shows the cause
/// twice, the lesser evil.
pub(crate) fn store_error(what: &str, error: sqlx::Error) -> StoreError {
    let kind = kind_of(&error);
    let cause = match &error {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("{} (SQLSTATE {code})", db.message()),
            None => db.message().to_owned(),
        },
        other => other.to_string(),
    };
    StoreError::new(kind, format!("postgres: {what} failed: {cause}")).with_source(error)
}

/// A `Conflict` store error with this message.
pub(crate) fn conflict(message: String) -> StoreError {
    StoreError::new(StoreErrorKind::Conflict, message)
}

/// A job state read back from the database.
pub(crate) fn parse_state(text: &str) -> StoreResult<JobState> {
    text.parse().map_err(|e| {
        StoreError::new(StoreErrorKind::Other, "postgres: unknown state").with_source(e)
    })
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
    use std::borrow::Cow;

    use super::*;

    /// A database error as PostgreSQL reports it: a message and a SQLSTATE.
    #[derive(Debug)]
    struct FakeDbError {
        message: &'static str,
        code: Option<&'static str>,
    }

    impl std::fmt::Display for FakeDbError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.message)
        }
    }

    impl std::error::Error for FakeDbError {}

    impl sqlx::error::DatabaseError for FakeDbError {
        fn message(&self) -> &str {
            self.message
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            self.code.map(Cow::Borrowed)
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn database_error(message: &'static str, code: Option<&'static str>) -> sqlx::Error {
        sqlx::Error::Database(Box::new(FakeDbError { message, code }))
    }

    #[test]
    fn a_store_error_displays_the_database_message_and_sqlstate() {
        let error = store_error(
            "renewing leases",
            database_error("deadlock detected", Some("40P01")),
        );
        assert_eq!(
            error.to_string(),
            "postgres: renewing leases failed: deadlock detected (SQLSTATE 40P01)"
        );
        assert_eq!(error.kind(), StoreErrorKind::Unavailable);
        // The sqlx error stays reachable for code that inspects it.
        let source = std::error::Error::source(&error).expect("the sqlx error is the source");
        assert!(source.downcast_ref::<sqlx::Error>().is_some());

        let error = store_error("claiming jobs", database_error("no code", None));
        assert_eq!(error.to_string(), "postgres: claiming jobs failed: no code");
    }

    #[test]
    fn a_store_error_displays_a_failure_outside_the_database() {
        let error = store_error("completing jobs", sqlx::Error::PoolTimedOut);
        assert_eq!(
            error.to_string(),
            format!(
                "postgres: completing jobs failed: {}",
                sqlx::Error::PoolTimedOut
            )
        );
        // The server's log line, `%error`, is the Display.
        assert!(error.to_string().contains("timed out"), "{error}");
    }

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
