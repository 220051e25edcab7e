//! [`JobContext`]: which job and attempt is running, its cancellation, and
//! the progress it reports.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::model::{Claim, JobId, RecurringOrigin, Timestamp};

/// The per-run context a job can ask for as a parameter: which job and
/// attempt this is, and the cancellation that a timeout, a user's cancel or
/// a shutdown raises. A job that runs long should watch [`JobContext::cancelled`].
///
/// Ask for it by type, anywhere among the parameters; it is never stored
/// with the job:
///
/// ```
/// # extern crate jobs_core as jobs;
/// # use jobs_macros::job;
/// use std::time::Duration;
/// use jobs::JobContext;
///
/// #[job]
/// async fn export_report(report_id: i64, ctx: JobContext) -> anyhow::Result<()> {
///     println!("{} #{}: attempt {} of {}", ctx.name(), ctx.id().0, ctx.attempt(), ctx.max_attempts());
///     for page in 0..10u8 {
///         tokio::select! {
///             // Stop between pages when asked to (timeout, cancel, shutdown).
///             () = ctx.cancelled() => anyhow::bail!("stopped at page {page}"),
///             () = tokio::time::sleep(Duration::from_millis(1)) => {}
///         }
///         ctx.set_progress_with(page * 10, format!("report {report_id}: page {page}"));
///     }
///     Ok(())
/// }
/// # fn main() {}
/// ```
#[derive(Debug, Clone)]
pub struct JobContext {
    inner: Arc<ContextInner>,
}

#[derive(Debug)]
struct ContextInner {
    id: JobId,
    claim_token: i64,
    name: String,
    queue: String,
    attempt: i32,
    max_attempts: i32,
    recurring: Option<RecurringOrigin>,
    cancellation: CancellationToken,
    progress: ProgressSlot,
}

/// The latest progress an attempt reported, waiting for the server to write it.
#[derive(Debug, Default)]
pub(crate) struct ProgressSlot {
    latest: std::sync::Mutex<Option<serde_json::Value>>,
}

impl ProgressSlot {
    fn set(&self, value: serde_json::Value) {
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
    }

    /// The progress reported since the last call, if any.
    pub(crate) fn take(&self) -> Option<serde_json::Value> {
        self.latest.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl JobContext {
    /// A context; the server builds one per attempt. `recurring` is the
    /// row's origin when a recurring entry enqueued it.
    pub fn new(
        claim: Claim,
        name: String,
        queue: String,
        attempt: i32,
        max_attempts: i32,
        recurring: Option<RecurringOrigin>,
        cancellation: CancellationToken,
    ) -> Self {
        Self {
            inner: Arc::new(ContextInner {
                id: claim.job_id,
                claim_token: claim.token,
                name,
                queue,
                attempt,
                max_attempts,
                recurring,
                cancellation,
                progress: ProgressSlot::default(),
            }),
        }
    }

    /// The job's id.
    pub fn id(&self) -> JobId {
        self.inner.id
    }
    /// The claim of this attempt: what a store's writes about the attempt
    /// are fenced by (PostgreSQL's `complete_in` takes it from here).
    pub fn claim(&self) -> Claim {
        Claim {
            job_id: self.inner.id,
            token: self.inner.claim_token,
        }
    }
    /// The job's stored name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }
    /// The queue it was claimed from.
    pub fn queue(&self) -> &str {
        &self.inner.queue
    }
    /// This attempt's number, from 1.
    pub fn attempt(&self) -> i32 {
        self.inner.attempt
    }
    /// How many attempts the job has.
    pub fn max_attempts(&self) -> i32 {
        self.inner.max_attempts
    }
    /// For a run of a recurring job: the tick it stands for (the
    /// [`JobContext::recurring`] origin's `scheduled_for`).
    pub fn scheduled_for(&self) -> Option<Timestamp> {
        self.inner
            .recurring
            .as_ref()
            .map(|origin| origin.scheduled_for)
    }
    /// For a run of a recurring job: which entry fired it (the id given to
    /// `add_or_update`) and for which tick (the instant of the trigger for a
    /// run started by `trigger`). `None` for jobs enqueued directly.
    pub fn recurring(&self) -> Option<&RecurringOrigin> {
        self.inner.recurring.as_ref()
    }
    /// Whether the attempt has been asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancellation.is_cancelled()
    }
    /// Resolves when the attempt is asked to stop (timeout, cancel, shutdown).
    pub async fn cancelled(&self) {
        self.inner.cancellation.cancelled().await
    }
    /// Reports how far the attempt has come, in percent (capped at 100), for
    /// `Jobs::get` and the dashboard. Cheap to call often: the server writes
    /// the latest value about once a second, fenced by this attempt's claim.
    pub fn set_progress(&self, percent: u8) {
        self.inner
            .progress
            .set(serde_json::json!({ "percent": percent.min(100) }));
    }

    /// [`JobContext::set_progress`] with a line saying what is going on.
    pub fn set_progress_with(&self, percent: u8, message: impl Into<String>) {
        self.inner.progress.set(serde_json::json!({
            "percent": percent.min(100),
            "message": message.into(),
        }));
    }

    pub(crate) fn progress_updates(&self) -> Option<serde_json::Value> {
        self.inner.progress.take()
    }

    /// The token behind [`JobContext::cancelled`], to hand to other code.
    pub fn cancellation_token(&self) -> &CancellationToken {
        &self.inner.cancellation
    }
}
