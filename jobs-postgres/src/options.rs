//! How a [`PgStore`](crate::PgStore) is configured: the schema it lives in,
//! whether it migrates at start, the argument size limit, LISTEN/NOTIFY,
//! the time budget of an enqueue, and the pool `connect_with` builds.

use std::time::Duration;

use crate::error::{Error, Result};

/// The schema the store lives in unless told otherwise.
pub const DEFAULT_SCHEMA: &str = "jobs";

/// The largest serialized arguments accepted at enqueue unless told otherwise: 256 KiB.
pub const DEFAULT_MAX_ARGS_BYTES: usize = 256 * 1024;

/// How long an enqueue through the store's pool may take unless told otherwise: 5 s.
pub const DEFAULT_ENQUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// How many connections of its own each server on the store keeps for its
/// own writes unless told otherwise (see [`PgStoreOptions::server_connections`]).
pub const DEFAULT_SERVER_CONNECTIONS: u32 = 2;

/// Options of a [`PgStore`](crate::PgStore). Start from
/// [`PgStoreOptions::new`] (the defaults) and change what you need:
///
/// ```
/// # mod jobs { pub mod postgres { pub use jobs_postgres::*; } }
/// use jobs::postgres::PgStoreOptions;
///
/// let options = PgStoreOptions::new().schema("background").max_args_bytes(64 * 1024);
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct PgStoreOptions {
    pub(crate) schema: String,
    pub(crate) migrate: bool,
    pub(crate) max_args_bytes: usize,
    pub(crate) listen: bool,
    pub(crate) enqueue_timeout: Duration,
    pub(crate) max_connections: Option<u32>,
    pub(crate) application_name: Option<String>,
    pub(crate) server_connections: u32,
}

impl Default for PgStoreOptions {
    fn default() -> Self {
        Self {
            schema: DEFAULT_SCHEMA.to_owned(),
            migrate: true,
            max_args_bytes: DEFAULT_MAX_ARGS_BYTES,
            listen: true,
            enqueue_timeout: DEFAULT_ENQUEUE_TIMEOUT,
            max_connections: None,
            application_name: None,
            server_connections: DEFAULT_SERVER_CONNECTIONS,
        }
    }
}

impl PgStoreOptions {
    /// The defaults: schema `jobs`, migrate at start, 256 KiB arguments,
    /// LISTEN/NOTIFY on, enqueues bounded by 5 s.
    pub fn new() -> Self {
        Self::default()
    }

    /// The schema holding the store's tables (default `jobs`). It must be a
    /// plain identifier: 1 to 63 lowercase ASCII letters, digits and
    /// underscores, not starting with a digit; anything else is refused when
    /// the store is built. Several stores in one database use several schemas.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// How many connections of its own each server started on this store
    /// opens for its own writes: lease renewals, job outcomes, heartbeats,
    /// rescues (default 2, opened on first use, closed when the server
    /// stops). They are apart from the store's pool, so those writes never
    /// wait behind jobs that hold the pool's connections (a job given the
    /// store's pool as `State` say): a late renewal would let the lease run
    /// out and the job be run twice. Claims and everything else use the
    /// store's pool. `0` puts the server's writes on the store's pool too.
    ///
    /// The connection budget of one process is the store's pool, plus one
    /// listening connection per store (LISTEN/NOTIFY), plus this many per
    /// server.
    pub fn server_connections(mut self, connections: u32) -> Self {
        self.server_connections = connections;
        self
    }

    /// Whether building the store applies pending migrations (default `true`).
    /// Turn it off when you apply [`PgStore::migration_sql`](crate::PgStore::migration_sql)
    /// with your own tool.
    ///
    /// ```
    /// # mod jobs { pub mod postgres { pub use jobs_postgres::*; } }
    /// use jobs::postgres::{PgStore, PgStoreOptions};
    ///
    /// // Hand this to your migration tool...
    /// let sql = PgStore::migration_sql("background")?;
    /// assert!(sql.contains("background"));
    /// // ...and build the store with `PgStore::with_options(pool, options)`.
    /// let options = PgStoreOptions::new().schema("background").migrate(false);
    /// # let _ = options;
    /// # Ok::<(), jobs::postgres::Error>(())
    /// ```
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// The largest serialized arguments (JSON, in bytes) accepted at enqueue
    /// (default 256 KiB). Larger jobs are refused with an `Invalid` store error:
    /// store large data elsewhere and pass its id.
    pub fn max_args_bytes(mut self, bytes: usize) -> Self {
        self.max_args_bytes = bytes;
        self
    }

    /// Whether idle servers are woken by LISTEN/NOTIFY when jobs are inserted
    /// (default `true`). The listener uses one connection of its own, outside
    /// the pool. Servers poll either way; this only makes pickup faster.
    pub fn listen(mut self, listen: bool) -> Self {
        self.listen = listen;
        self
    }

    /// How long an enqueue through the store's pool (`Jobs::enqueue`, a
    /// batch, `Store::job_insert_many`) may take, waiting for a connection
    /// included (default 5 s). Past it the enqueue fails with an
    /// `Unavailable` store error instead of waiting for the pool's acquire
    /// timeout (sqlx's default is 30 s) while the database is unreachable.
    /// An enqueue that ran out of time may still have been stored, as with
    /// any error after the statement was sent. Enqueues in the
    /// application's own transaction (`enqueue_in`) are not bounded: they
    /// run on a connection the application already holds.
    pub fn enqueue_timeout(mut self, timeout: Duration) -> Self {
        self.enqueue_timeout = timeout;
        self
    }

    /// The most connections of the pool that
    /// [`PgStore::connect_with`](crate::PgStore::connect_with) builds
    /// (default: sqlx's, 10). A store built on your own pool uses
    /// that pool's size.
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = Some(max);
        self
    }

    /// The `application_name` of the connections that
    /// [`PgStore::connect_with`](crate::PgStore::connect_with) opens, shown
    /// in `pg_stat_activity` (default: the URL's, else `jobs`). It wins
    /// over the URL's.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = Some(name.into());
        self
    }
}

/// A schema name checked against `^[a-z_][a-z0-9_]{0,62}$`, so that it can
/// be spliced into SQL (quoted) without risk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Schema(String);

impl Schema {
    pub(crate) fn parse(name: &str) -> Result<Self> {
        let mut chars = name.chars();
        let valid_first = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        let valid_rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if valid_first && valid_rest && name.len() <= 63 {
            Ok(Self(name.to_owned()))
        } else {
            Err(Error::InvalidSchema(name.to_owned()))
        }
    }

    /// The bare name.
    pub(crate) fn name(&self) -> &str {
        &self.0
    }

    /// The name quoted as an identifier, ready to splice into SQL.
    pub(crate) fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }

    /// The LISTEN/NOTIFY channel of this schema (at most 63 bytes, the limit
    /// of a channel name; a truncated name can only cause spurious wake-ups).
    pub(crate) fn channel(&self) -> String {
        let mut channel = format!("jobs_wakeup.{}", self.0);
        channel.truncate(63);
        channel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_validated() {
        for good in ["jobs", "_x", "jobs_test_1", &"a".repeat(63)] {
            assert!(Schema::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "x; drop table",
            "\"x\"",
            "Jobs",
            "1jobs",
            "jobs-test",
            "jobs.x",
            "é",
            &"a".repeat(64),
        ] {
            assert!(
                matches!(Schema::parse(bad), Err(Error::InvalidSchema(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn channel_fits_in_a_name() {
        let schema = Schema::parse(&"a".repeat(63)).unwrap();
        assert!(schema.channel().len() <= 63);
        assert_eq!(Schema::parse("jobs").unwrap().channel(), "jobs_wakeup.jobs");
    }
}
