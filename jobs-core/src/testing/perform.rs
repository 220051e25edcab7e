//! [`Perform`]: one job run inline, in the test's own task, with the
//! resources the test gives it, after a round trip of its arguments through
//! JSON: what a server would run, without a store or a server.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::job::{
    registered_jobs, BoxError, Invocation, Job, JobContext, Permanent, Request, Resources, Snooze,
};
use crate::model::{Claim, JobId};

/// Runs one job inline, as a server would run an attempt of it: its
/// arguments go through JSON first (so an argument that does not survive
/// storage fails here, not in production), then the registered `#[job]`
/// function runs with the given [`State`](crate::State) resources and a fresh
/// [`JobContext`] (attempt 1 unless told otherwise, a cancellation token of
/// its own, not raised unless told otherwise, a claim of job id 0 that no
/// store knows).
///
/// ```
/// # use jobs_core as jobs;
/// use jobs::testing::{Perform, Performed};
/// use jobs::{JobContext, State};
///
/// #[derive(Clone)]
/// struct Mailer;
///
/// // Marked `#[job]`, which adds `SendInvoice`.
/// # #[jobs_macros::job(crate = "jobs")]
/// async fn send_invoice(invoice_id: i64, mailer: State<Mailer>, ctx: JobContext) -> anyhow::Result<()> {
///     let Mailer = *mailer;
///     anyhow::ensure!(ctx.attempt() > 1, "invoice {invoice_id}: the mail server is busy");
///     Ok(())
/// }
///
/// # async fn test() -> Result<(), jobs::BoxError> {
/// let first = Perform::new().state(Mailer).run(SendInvoice::new(7)).await?;
/// assert!(matches!(first, Performed::Failed(error) if error.to_string().contains("busy")));
///
/// let second = Perform::new().state(Mailer).attempt(2).run(SendInvoice::new(7)).await?;
/// assert!(second.is_succeeded());
/// // Or, in a test that returns a `Result`: an error unless it succeeded.
/// Perform::new().state(Mailer).attempt(2).run(SendInvoice::new(8)).await?.into_result()?;
///
/// // Without the `State<Mailer>` the job takes, nothing runs:
/// let error = Perform::new().run(SendInvoice::new(7)).await.unwrap_err();
/// assert!(error.to_string().contains("add `.state(value)`"));
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(test()).unwrap();
/// ```
///
/// The server's settings that wrap an attempt are not applied: no timeout, and
/// a panic in the job is the test's panic.
#[derive(Debug, Clone)]
#[must_use = "a `Perform` does nothing until it runs a job"]
pub struct Perform {
    resources: Resources,
    attempt: i32,
    cancelled: bool,
}

impl Default for Perform {
    fn default() -> Self {
        Self::new()
    }
}

/// How a job run by [`Perform::run`] ended: what a server would record.
/// The example of [`Perform`] shows it in use.
#[derive(Debug)]
#[non_exhaustive]
pub enum Performed {
    /// It returned `Ok`: with its output as a server stores it (`None` for
    /// `Ok(())`).
    Succeeded(Option<serde_json::Value>),
    /// It returned an error: a server retries it while attempts are left.
    Failed(BoxError),
    /// It returned [`Permanent`]: a server fails it at once. The error inside.
    Permanent(BoxError),
    /// It returned [`Snooze`]: a server runs it again after this long,
    /// without using up an attempt.
    Snoozed(std::time::Duration),
}

impl Performed {
    /// Whether the job succeeded.
    pub fn is_succeeded(&self) -> bool {
        matches!(self, Self::Succeeded(_))
    }

    /// The output of a job that succeeded with one, as stored.
    pub fn output(&self) -> Option<&serde_json::Value> {
        match self {
            Self::Succeeded(output) => output.as_ref(),
            _ => None,
        }
    }

    /// `Ok(())` if the job succeeded, else its error (a [`Snooze`] for a
    /// snooze), for a test that returns a `Result` and uses `?`.
    pub fn into_result(self) -> Result<(), BoxError> {
        match self {
            Self::Succeeded(_) => Ok(()),
            Self::Failed(error) | Self::Permanent(error) => Err(error),
            Self::Snoozed(after) => Err(Box::new(Snooze::after(after))),
        }
    }
}

impl Perform {
    /// No resources yet, attempt 1.
    pub fn new() -> Self {
        Self {
            resources: Resources::default(),
            attempt: 1,
            cancelled: false,
        }
    }

    /// Gives the job this resource, taken as `State<T>`: what
    /// `Server::builder(..).state(..)` does on a server.
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.resources.insert(value);
        self
    }

    /// Runs it as this attempt (from 1; capped at the job's attempts), to
    /// test what a job does on its last attempt, say.
    pub fn attempt(mut self, attempt: u16) -> Self {
        self.attempt = i32::from(attempt.max(1));
        self
    }

    /// Runs it with its cancellation already raised, as after a timeout, a
    /// user's cancel or a shutdown, to test that the job stops when asked.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// use jobs::testing::Perform;
    /// use jobs::JobContext;
    ///
    /// // Marked `#[job]`, which adds `Export`.
    /// # #[jobs_macros::job(crate = "jobs")]
    /// async fn export(rows: u32, ctx: JobContext) -> anyhow::Result<()> {
    ///     for row in 0..rows {
    ///         anyhow::ensure!(!ctx.is_cancelled(), "stopped at row {row}");
    ///     }
    ///     Ok(())
    /// }
    ///
    /// # async fn test() -> jobs::Result<()> {
    /// let performed = Perform::new().cancelled().run(Export::new(10)).await?;
    /// assert!(performed.into_result().unwrap_err().to_string().contains("stopped at row 0"));
    /// # Ok(()) }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(test()).unwrap();
    /// ```
    pub fn cancelled(mut self) -> Self {
        self.cancelled = true;
        self
    }

    /// Serializes the request's arguments to JSON text and back, and runs the
    /// registered job's function on them once.
    ///
    /// Fails before running the job when the arguments do not serialize or do
    /// not read back (the error an enqueue returns, `Error::RoundTrip`, for
    /// what JSON cannot keep), when no `#[job]` is registered under `J::NAME`, or when
    /// the job takes a `State<T>` this `Perform` was not given.
    pub async fn run<J: Job>(&self, request: Request<J>) -> Result<Performed> {
        let job = request.into_new_job()?;
        let text = serde_json::to_string(&job.args).map_err(|source| Error::Serialize {
            job: J::NAME,
            source,
        })?;
        let args: serde_json::Value = serde_json::from_str(&text)
            .and_then(|args| J::deserialize(&args).map(|_| args))
            .map_err(|error| Error::Deserialize {
                job: J::NAME,
                error,
            })?;
        let registration = registered_jobs()
            .filter(|r| r.name == J::NAME)
            .max_by_key(|r| r.type_name == std::any::type_name::<J>())
            .ok_or_else(|| {
                Error::Perform(format!(
                    "no job is registered as `{}`; mark its function with `#[job]`",
                    J::NAME
                ))
            })?;
        let mut missing: Vec<String> = (registration.requirements)()
            .iter()
            .filter(|r| !self.resources.contains(r.type_id))
            .map(|r| {
                format!(
                    "job `{}` ({}) takes `State<{}>`, but `Perform` was not given one; add `.state(value)` to it",
                    registration.name, registration.location, r.type_name
                )
            })
            .collect();
        if !missing.is_empty() {
            missing.sort();
            return Err(Error::Perform(missing.join("\n")));
        }
        let cancellation = CancellationToken::new();
        if self.cancelled {
            cancellation.cancel();
        }
        let context = JobContext::new(
            Claim {
                job_id: JobId(0),
                token: 1,
            },
            job.name,
            job.queue,
            self.attempt.min(job.max_attempts.max(1)),
            job.max_attempts,
            None,
            cancellation,
        );
        let invocation = Invocation {
            args,
            context,
            resources: Arc::new(self.resources.clone()),
        };
        Ok(match (registration.run)(invocation).await {
            Ok(output) => Performed::Succeeded(output),
            Err(error) => match error.downcast::<Snooze>() {
                Ok(snooze) => Performed::Snoozed(snooze.after),
                Err(error) => match error.downcast::<Permanent>() {
                    Ok(permanent) => Performed::Permanent(permanent.0),
                    Err(error) => Performed::Failed(error),
                },
            },
        })
    }
}
