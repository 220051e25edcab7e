//! The LISTEN/NOTIFY wake-up: a background task that listens on the store's
//! channel and raises the store's [`JobSignal`] on every notification but
//! its own store's: the notifier's NOTIFY carries the store's origin, and
//! the store raised its signal already when it inserted. A payload
//! `cancel:<origin>` is a cancel wake-up (a running job was asked to
//! cancel) and raises the signal's cancel side instead, again unless it is
//! the store's own. Servers of an older build, which know no such payload,
//! take it for a new-jobs wake-up: one empty claim.
//!
//! It holds one connection of its own, from a one-connection pool built from
//! the store pool's options, so it never takes a connection from the
//! application's budget. When the connection is lost it raises the signal
//! (notifications may have been missed), logs, and reconnects with
//! exponential backoff, forever. It stops when the last clone of the store
//! is dropped, or when the store closes. Servers poll whatever happens here:
//! NOTIFY only makes pickup faster. The [`Notifier`], which sends the store's
//! own wake-ups, is here too.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobs_core::JobSignal;
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// The start of a cancel wake-up's payload; the sending store's origin follows.
const CANCEL_PREFIX: &str = "cancel:";

/// The payload of the cancel wake-ups of the store of `origin`.
pub(crate) fn cancel_payload(origin: &str) -> String {
    format!("{CANCEL_PREFIX}{origin}")
}

/// What a notification on the channel asks for.
#[derive(Debug, PartialEq, Eq)]
enum Wake {
    /// Jobs may be runnable.
    Jobs,
    /// A running job was asked to cancel.
    Cancel,
    /// This store's own: it raised its signal already.
    Own,
}

fn wake_of(payload: &str, origin: &str) -> Wake {
    match payload.strip_prefix(CANCEL_PREFIX) {
        Some(from) if from == origin => Wake::Own,
        Some(_) => Wake::Cancel,
        None if payload == origin => Wake::Own,
        None => Wake::Jobs,
    }
}

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Aborts the listener task when dropped (with the store's last clone), or
/// when the store closes.
#[derive(Debug)]
pub(crate) struct ListenerGuard {
    task: JoinHandle<()>,
    /// The listener's own pool, closed with it.
    pool: PgPool,
}

impl ListenerGuard {
    /// Stops listening and closes the listening connection.
    pub(crate) async fn stop(&self) {
        self.task.abort();
        self.pool.close().await;
    }
}

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the listener on the current tokio runtime, or returns `None` (with
/// a warning) outside one.
pub(crate) fn spawn(
    pool: &PgPool,
    channel: String,
    origin: String,
    signal: JobSignal,
) -> Option<ListenerGuard> {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(
            "jobs: no tokio runtime, LISTEN/NOTIFY wake-ups are off (servers still poll)"
        );
        return None;
    };
    let base = pool.connect_options();
    let name = format!("{}:listener", base.get_application_name().unwrap_or("jobs"));
    let options = (*base).clone().application_name(&name);
    // A pool of its own: the listening connection is outside the store
    // pool's budget, and the listener can replace it at will.
    let listen_pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(options);
    let task = runtime.spawn(run(listen_pool.clone(), channel, origin, signal));
    Some(ListenerGuard {
        task,
        pool: listen_pool,
    })
}

async fn run(pool: PgPool, channel: String, origin: String, signal: JobSignal) {
    let mut backoff = MIN_BACKOFF;
    loop {
        match listen(&pool, &channel, &origin, &signal).await {
            Ok(()) => {
                backoff = MIN_BACKOFF;
                tokio::time::sleep(MIN_BACKOFF).await;
            }
            Err(error) => {
                tracing::warn!(
                    error = %error,
                    channel = %channel,
                    retry_in = ?backoff,
                    "jobs: LISTEN connection failed; servers poll until it is back"
                );
                // Whatever was notified meanwhile is lost: wake everyone once.
                signal.notify();
                signal.notify_cancel();
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Connects, listens, and forwards notifications until the connection fails.
/// `Ok` after a lost connection was noticed, `Err` when (re)connecting failed.
async fn listen(
    pool: &PgPool,
    channel: &str,
    origin: &str,
    signal: &JobSignal,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    tracing::debug!(channel, "jobs: listening for wake-ups");
    // Jobs inserted, and cancels asked for, while we were not listening.
    signal.notify();
    signal.notify_cancel();
    loop {
        match listener.try_recv().await? {
            Some(notification) => match wake_of(notification.payload(), origin) {
                Wake::Jobs => signal.notify(),
                Wake::Cancel => signal.notify_cancel(),
                // Our own inserts and cancels woke our servers already;
                // waking them again would only cost an empty claim.
                Wake::Own => {}
            },
            None => {
                tracing::warn!(channel, "jobs: LISTEN connection lost, reconnecting");
                signal.notify();
                signal.notify_cancel();
                // Start from a fresh listener: simpler to reason about than
                // the half-reconnected state of the old one.
                return Ok(());
            }
        }
    }
}

/// Sends the store's NOTIFY for inserts made through its own pool, after they
/// committed, with the store's origin as the payload. Requests that arrive
/// while one is being sent are coalesced into the next, so a burst of
/// enqueues costs one NOTIFY or two. The NOTIFY runs in a transaction of its
/// own with `synchronous_commit` off: NOTIFY holds a global lock until its
/// commit is flushed, and a wake-up needs no durability (servers poll
/// anyway).
///
/// [`Notifier::flush`] waits until the requests made so far were dealt with
/// (sent, or given up on after a failure). Dropped with the store's last
/// clone, or closed, the task sends what is pending and ends: a wake-up is
/// lost only with the runtime itself, which is why a process that is about
/// to exit flushes first (`PgStore::close`).
#[derive(Debug)]
pub(crate) struct Notifier {
    state: Arc<NotifierState>,
    /// How many requests the task has dealt with; its sender goes with the
    /// task, so a flush never waits for a task that is gone.
    settled: watch::Receiver<u64>,
}

#[derive(Debug, Default)]
struct NotifierState {
    /// How many wake-ups were requested.
    requested: AtomicU64,
    wake: Notify,
    /// Set when the store closes or its last clone is dropped.
    closing: AtomicBool,
}

impl Notifier {
    /// Asks for one NOTIFY soon; never waits.
    pub(crate) fn request(&self) {
        self.state.requested.fetch_add(1, Ordering::AcqRel);
        self.state.wake.notify_one();
    }

    /// Waits until every NOTIFY requested so far was sent or given up on.
    pub(crate) async fn flush(&self) {
        let target = self.state.requested.load(Ordering::Acquire);
        let mut settled = self.settled.clone();
        // An error means the task is gone: nothing more will be sent.
        let _ = settled.wait_for(|&n| n >= target).await;
    }

    /// Lets the task send what is pending, then end.
    pub(crate) fn close(&self) {
        self.state.closing.store(true, Ordering::Release);
        self.state.wake.notify_one();
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.close();
    }
}

/// Starts the notifier on the current tokio runtime, or returns `None`
/// outside one (other processes' servers then find the jobs by polling).
pub(crate) fn spawn_notifier(pool: &PgPool, channel: String, origin: String) -> Option<Notifier> {
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let state = Arc::new(NotifierState::default());
    let (settled_tx, settled) = watch::channel(0);
    runtime.spawn(notify_loop(
        pool.clone(),
        channel,
        origin,
        state.clone(),
        settled_tx,
    ));
    Some(Notifier { state, settled })
}

async fn notify_loop(
    pool: PgPool,
    channel: String,
    origin: String,
    state: Arc<NotifierState>,
    settled: watch::Sender<u64>,
) {
    // One statement, so one implicit transaction: the local setting holds
    // for its commit.
    const NOTIFY: &str = "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)";
    let mut backoff = MIN_BACKOFF;
    loop {
        let target = state.requested.load(Ordering::Acquire);
        if target == *settled.borrow() {
            if state.closing.load(Ordering::Acquire) {
                return;
            }
            // A request made since the load left a permit: no wake-up is lost.
            state.wake.notified().await;
            continue;
        }
        let send = sqlx::query(NOTIFY)
            .bind(&channel)
            .bind(&origin)
            .execute(&pool);
        let sent = tokio::time::timeout(MAX_BACKOFF, send).await;
        // Sent or not, these requests are dealt with: a failed wake-up is
        // not retried (servers poll), and a flush must not wait for it.
        settled.send_replace(target);
        match sent {
            Ok(Ok(_)) => backoff = MIN_BACKOFF,
            Ok(Err(error)) => {
                tracing::debug!(%error, "jobs: sending a wake-up failed; servers poll meanwhile");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(_) => tracing::debug!("jobs: sending a wake-up timed out; servers poll meanwhile"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_say_what_to_wake() {
        let origin = "9f1c";
        assert_eq!(wake_of("", origin), Wake::Jobs);
        assert_eq!(wake_of("other", origin), Wake::Jobs);
        assert_eq!(wake_of(origin, origin), Wake::Own);
        assert_eq!(wake_of(&cancel_payload("other"), origin), Wake::Cancel);
        assert_eq!(wake_of(&cancel_payload(origin), origin), Wake::Own);
    }
}
