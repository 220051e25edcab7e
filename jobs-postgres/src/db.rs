//! [`Db`], what the statements of every entity run with: the pool, the
//! schema's NOTIFY channel, the wake-ups (this store's own servers at once,
//! other processes' through the coalescing notifier, or the statement's own
//! NOTIFY for cancels) and the limit on the
//! size of job arguments. [`PgStore`](crate::PgStore) owns one; the entity
//! modules (`jobs`, `leases`, `servers`, `recurring`) take it with their own
//! statements, so they never reach back into the store. Here too:
//! [`to_completion`], which the store's transactions run through.

use std::future::Future;
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

    /// Tells this store's own servers that a running job was asked to cancel.
    pub(crate) fn wake_cancel(&self) {
        self.signal.notify_cancel();
    }

    /// The payload of this store's cancel wake-ups, which the listeners of
    /// other stores tell apart from the new-jobs wake-ups.
    pub(crate) fn cancel_payload(&self) -> String {
        listener::cancel_payload(&self.origin)
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

    /// Waits, up to `within`, until the wake-ups requested so far were sent
    /// (or given up on).
    pub(crate) async fn flush(&self, within: std::time::Duration) {
        if let Some(Some(notifier)) = self.notifier.get() {
            if tokio::time::timeout(within, notifier.flush())
                .await
                .is_err()
            {
                tracing::debug!("jobs: wake-ups still unsent after {within:?}; servers poll");
            }
        }
    }

    /// Ends the notifier once it sent what is pending; later inserts wake
    /// only this store's own servers.
    pub(crate) fn close_notifier(&self) {
        if let Some(notifier) = self.notifier.get_or_init(|| None) {
            notifier.close();
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

/// Runs `work`, which opens and ends a transaction of its own (see
/// `error::finish`), on a task of its own, so that the transaction always
/// reaches its end even when the caller stops waiting: a server loop
/// cancelled by a graceful shutdown, a timeout, a `select!`. A sqlx
/// transaction dropped mid-flight is not cancel-safe: dropped while its
/// `COMMIT` is in flight, it queues a `ROLLBACK` behind it (PostgreSQL then
/// warns "there is no transaction in progress", on every shutdown that caught
/// the scheduler committing); dropped while its `BEGIN` is in flight, its
/// connection goes back to the pool inside a transaction that the next
/// statements on it would join. The caller's result is the task's; a panic
/// in `work` is resumed in the caller, and a task cancelled because the
/// runtime is shutting down is reported by `cancelled`.
pub(crate) async fn to_completion<T, E>(
    work: impl Future<Output = Result<T, E>> + Send + 'static,
    cancelled: impl FnOnce(tokio::task::JoinError) -> E,
) -> Result<T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    match tokio::spawn(work).await {
        Ok(result) => result,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => Err(cancelled(error)),
    }
}
