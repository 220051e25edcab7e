//! [`Db`], what the statements of every entity run with: the pool, the
//! schema's NOTIFY channel, the wake-ups (this store's own servers at once,
//! other processes' through the coalescing notifier) and the limit on the
//! size of job arguments. [`PgStore`](crate::PgStore) owns one; the entity
//! modules (`jobs`, `leases`, `servers`, `recurring`) take it with their own
//! statements, so they never reach back into the store.

use std::sync::OnceLock;

use jobs_core::{JobSignal, StoreError, StoreErrorKind, StoreResult};
use sqlx::PgPool;

use crate::listener::{self, ListenerGuard, Notifier};

/// The database side of one store, shared by its clones.
pub(crate) struct Db {
    pool: PgPool,
    /// The schema's LISTEN/NOTIFY channel, bound to every statement that notifies.
    channel: String,
    signal: JobSignal,
    /// The payload of this store's own NOTIFYs, so that its listener can
    /// skip them (the store woke its servers when it inserted).
    origin: String,
    /// Started on the first insert through the store's pool.
    notifier: OnceLock<Option<Notifier>>,
    /// `PgStoreOptions::max_args_bytes`.
    max_args_bytes: usize,
}

impl Db {
    /// A fresh origin and signal; the notifier starts on first use.
    pub(crate) fn new(pool: PgPool, channel: String, max_args_bytes: usize) -> Self {
        Self {
            pool,
            channel,
            signal: JobSignal::new(),
            origin: uuid::Uuid::new_v4().simple().to_string(),
            notifier: OnceLock::new(),
            max_args_bytes,
        }
    }

    /// The same database side on another pool (a server's own connections,
    /// see `PgStore::reserved_for_server`): the same channel, signal and
    /// origin, so what it does wakes this store's servers. Its notifier is
    /// its own and starts only if it inserts, which it does not.
    pub(crate) fn with_pool(&self, pool: PgPool) -> Self {
        Self {
            pool,
            channel: self.channel.clone(),
            signal: self.signal.clone(),
            origin: self.origin.clone(),
            notifier: OnceLock::new(),
            max_args_bytes: self.max_args_bytes,
        }
    }

    /// The pool the store runs on.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The LISTEN/NOTIFY channel, for statements that notify.
    pub(crate) fn channel(&self) -> &str {
        &self.channel
    }

    /// The signal that wakes this store's own servers.
    pub(crate) fn signal(&self) -> JobSignal {
        self.signal.clone()
    }

    /// Wakes this store's own servers.
    pub(crate) fn wake(&self) {
        self.signal.notify();
    }

    /// Wakes servers in other processes, through the coalescing notifier
    /// (started on first use).
    pub(crate) fn notify_others(&self) {
        let notifier = self.notifier.get_or_init(|| {
            listener::spawn_notifier(&self.pool, self.channel.clone(), self.origin.clone())
        });
        if let Some(notifier) = notifier {
            notifier.request();
        }
    }

    /// Starts the listener that raises [`Db::signal`] on other processes'
    /// NOTIFYs (`None` outside a tokio runtime).
    pub(crate) fn spawn_listener(&self) -> Option<ListenerGuard> {
        listener::spawn(
            &self.pool,
            self.channel.clone(),
            self.origin.clone(),
            self.signal.clone(),
        )
    }

    /// Refuses arguments over the configured limit.
    pub(crate) fn check_args_size(&self, name: &str, len: usize) -> StoreResult<()> {
        let max = self.max_args_bytes;
        if len > max {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                format!(
                    "the arguments of job `{name}` are {len} bytes, over the limit of {max} bytes; \
                     store large data elsewhere and pass its id (or raise \
                     `PgStoreOptions::max_args_bytes`)"
                ),
            ));
        }
        Ok(())
    }
}
