//! [`Request`]: a job's arguments and the options of one enqueue, and how it
//! becomes the [`NewJob`] a store inserts.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::job::{Job, Unique};
use crate::limits::LimitKey;
use crate::model::{After, ContinueOn, Inserted, JobId, NewJob, RunAt, Timestamp};
use crate::retry::Backoff;

/// A job ready to be enqueued: its arguments and the options of this one
/// enqueue. `SendMail::new(9)` builds one; `.enqueue(&jobs)` stores it. The
/// same value is what batch enqueue, recurring jobs and transactional
/// enqueue take.
///
/// ```
/// # use jobs_core as jobs;
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct SendMail { user_id: i64 }
/// # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
/// # impl SendMail { fn new(user_id: i64) -> jobs::Request<Self> { jobs::Request::new(Self { user_id }) } }
/// use std::time::Duration;
/// use jobs::{Jobs, MemoryStore};
///
/// # async fn demo() -> jobs::Result<()> {
/// let jobs = Jobs::new(MemoryStore::new());
/// // `SendMail` comes from `#[job] async fn send_mail(user_id: i64)`.
/// SendMail::new(9)
///     .queue("mail")                       // instead of the job's queue
///     .priority(10)                        // higher runs first
///     .max_attempts(3)                     // instead of the job's
///     .delay(Duration::from_secs(15 * 60)) // or `.run_at(instant)`
///     .enqueue(&jobs)
///     .await?;
///
/// // A batch: all or none, one round trip.
/// jobs.enqueue_many((1..=100).map(SendMail::new)).await?;
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
#[must_use = "a request does nothing until it is enqueued"]
#[derive(Debug, Clone)]
pub struct Request<J> {
    args: J,
    queue: Option<String>,
    priority: Option<i16>,
    max_attempts: Option<i32>,
    timeout: Option<Duration>,
    backoff: Option<Backoff>,
    run_at: RunAt,
    /// `None`: the job type's; `Some(None)`: not unique.
    unique: Option<Option<Unique>>,
    after: Option<After>,
    /// `None`: the job type's; `Some(None)`: no key limit.
    limit_key: Option<Option<LimitKey>>,
}

impl<J: Job> Request<J> {
    /// A request with the job type's defaults, to run now.
    pub fn new(args: J) -> Self {
        Self {
            args,
            queue: None,
            priority: None,
            max_attempts: None,
            timeout: None,
            backoff: None,
            run_at: RunAt::Now,
            unique: None,
            after: None,
            limit_key: None,
        }
    }

    /// The arguments.
    pub fn args(&self) -> &J {
        &self.args
    }

    /// Runs it in this queue instead of the job type's.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Higher runs first within a queue.
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Allows this many attempts (at least 1) instead of the job type's.
    pub fn max_attempts(mut self, max_attempts: u16) -> Self {
        self.max_attempts = Some(i32::from(max_attempts.max(1)));
        self
    }

    /// Cancels an attempt running longer than this instead of the job
    /// type's timeout. Stored with the job, so whichever server runs it
    /// applies it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Waits this backoff between attempts instead of the job type's.
    /// Stored with the job, so whichever server runs it applies it.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Runs it after this delay, measured on the store's clock.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.run_at = RunAt::After(delay);
        self
    }

    /// Runs it at this instant (at once if it has passed).
    pub fn run_at(mut self, at: Timestamp) -> Self {
        self.run_at = RunAt::At(at);
        self
    }

    /// Makes this job a continuation of job `parent`: it is stored at once,
    /// `awaiting`, and runs when `parent` succeeds. If `parent` fails for
    /// good, is cancelled or deleted, this job is cancelled with a reason
    /// naming it. Added to a parent that has already succeeded, it runs at
    /// once; to one that ended otherwise, the enqueue is refused with a
    /// `Conflict`, since it could never run. A parent that does not exist is
    /// a `NotFound`. Any store, any server, any transaction: the parent's
    /// end and the continuation's release are one step of the store.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct ChargeCard { order_id: i64 }
    /// # impl jobs::Job for ChargeCard { const NAME: &'static str = "charge_card"; }
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SendReceipt { order_id: i64 }
    /// # impl jobs::Job for SendReceipt { const NAME: &'static str = "send_receipt"; }
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct ReleaseStock { order_id: i64 }
    /// # impl jobs::Job for ReleaseStock { const NAME: &'static str = "release_stock"; }
    /// # async fn demo() -> jobs::Result<()> {
    /// use jobs::{JobState, Jobs, MemoryStore, Request};
    ///
    /// let jobs = Jobs::new(MemoryStore::new());
    /// let charge = jobs.enqueue(Request::new(ChargeCard { order_id: 7 })).await?;
    /// // A chain: the receipt after the charge succeeds, then the stock
    /// // released after the receipt, however the receipt ends.
    /// let receipt = jobs.enqueue(Request::new(SendReceipt { order_id: 7 }).after(charge)).await?;
    /// let stock = jobs.enqueue(Request::new(ReleaseStock { order_id: 7 }).after_any_end(receipt)).await?;
    /// assert_eq!(jobs.get(receipt).await?.unwrap().job.state, JobState::Awaiting);
    /// # let _ = stock;
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub fn after(mut self, parent: JobId) -> Self {
        self.after = Some(After::new(parent, ContinueOn::Success));
        self
    }

    /// Makes this job a continuation of job `parent` that runs whenever
    /// `parent` ends: succeeded, failed for good, cancelled or deleted (see
    /// [`after`](Self::after)).
    pub fn after_any_end(mut self, parent: JobId) -> Self {
        self.after = Some(After::new(parent, ContinueOn::AnyEnd));
        self
    }

    /// Makes this job unique as `unique` says, instead of as its type
    /// declares (see [`Unique`]).
    pub fn unique(mut self, unique: Unique) -> Self {
        self.unique = Some(Some(unique));
        self
    }

    /// Makes this job not unique, whatever its type declares.
    pub fn not_unique(mut self) -> Self {
        self.unique = Some(None);
        self
    }

    /// Runs this job only while fewer than `limit.running` jobs with the key
    /// `limit.key` run, across all servers, instead of as its type declares
    /// (see [`KeyLimit`](crate::KeyLimit)): the key is the caller's, so jobs
    /// of different types can share it. The enqueue refuses an empty key or
    /// a limit of 0 (`Invalid`).
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SyncCustomer { customer_id: i64 }
    /// # impl jobs::Job for SyncCustomer { const NAME: &'static str = "sync_customer"; }
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct InvoiceCustomer { customer_id: i64 }
    /// # impl jobs::Job for InvoiceCustomer { const NAME: &'static str = "invoice_customer"; }
    /// # async fn demo() -> jobs::Result<()> {
    /// use jobs::{Jobs, LimitKey, MemoryStore, Request};
    ///
    /// let jobs = Jobs::new(MemoryStore::new());
    /// // The sync and the invoice of customer 7 never run at the same time.
    /// let key = LimitKey::new("customer:7", 1);
    /// jobs.enqueue(Request::new(SyncCustomer { customer_id: 7 }).key_limit(key.clone())).await?;
    /// jobs.enqueue(Request::new(InvoiceCustomer { customer_id: 7 }).key_limit(key)).await?;
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub fn key_limit(mut self, limit: LimitKey) -> Self {
        self.limit_key = Some(Some(limit));
        self
    }

    /// No key limit for this job, whatever its type declares.
    pub fn no_key_limit(mut self) -> Self {
        self.limit_key = Some(None);
        self
    }

    /// Serializes the request into what a store inserts.
    ///
    /// Fails with [`Error::DuplicateJobName`] when two jobs of the program
    /// share a stored name (checked once per process), since the stored job
    /// could not say which of them to run; with [`Error::Serialize`] when the
    /// arguments do not serialize; and with [`Error::RoundTrip`], naming the
    /// argument, when what they serialize into does not decode back (an
    /// `f64::NAN` is stored as `null`), since the job could never run.
    pub fn into_new_job(self) -> Result<NewJob> {
        crate::job::registry::check_unique_names()?;
        let options = J::options();
        let args = serde_json::to_value(&self.args).map_err(|source| Error::Serialize {
            job: J::NAME,
            source,
        })?;
        // What cannot decode back would fail every attempt, silently until
        // it runs: refuse it here. It costs one decode of the arguments from
        // the value just built (see `Job::check_stored`).
        J::check_stored(&args).map_err(|error| Error::RoundTrip {
            job: J::NAME,
            error,
        })?;
        let unique = match self.unique.unwrap_or(options.unique) {
            None => None,
            Some(unique) => Some(
                unique
                    .key_of(J::NAME, &args)
                    .map_err(|arg| Error::UniqueArgument { job: J::NAME, arg })?,
            ),
        };
        let limit_key = match self.limit_key {
            Some(given) => given,
            None => options
                .key_limit
                .map(|limit| limit.key_of(J::NAME, &args))
                .transpose()
                .map_err(|arg| Error::UniqueArgument { job: J::NAME, arg })?,
        };
        if let Some(limit) = &limit_key {
            limit.check()?;
        }
        Ok(NewJob {
            name: J::NAME.to_owned(),
            args,
            queue: self.queue.unwrap_or_else(|| options.queue.to_owned()),
            priority: self.priority.unwrap_or(options.priority),
            max_attempts: self.max_attempts.unwrap_or(options.max_attempts),
            run_at: self.run_at,
            recurring: None,
            // Left `None` when unset rather than copied from the type: a
            // server then applies the type's options as it knows them.
            timeout: self.timeout,
            backoff: self.backoff,
            // Set by the enqueue, inside its span.
            trace_context: None,
            unique,
            after: self.after,
            limit_key,
        })
    }

    /// Stores the job; returns its id once it is durable (for a unique job
    /// whose key another job holds, that job's id).
    pub async fn enqueue(self, jobs: &crate::Jobs) -> Result<JobId> {
        jobs.enqueue(self).await
    }

    /// Stores the job and says whether it was a duplicate of a unique job
    /// already stored (see [`Jobs::enqueue_detailed`](crate::Jobs::enqueue_detailed)).
    pub async fn enqueue_detailed(self, jobs: &crate::Jobs) -> Result<Inserted> {
        jobs.enqueue_detailed(self).await
    }
}

/// A continuation that runs on its parent's output: `C`'s one argument is
/// what `P` returned, set when `P` succeeds (see [`Request::after`] for
/// the rest: it waits `awaiting`, and is cancelled if `P` ends otherwise).
/// Built by the generated `C::after_output_of::<P>(parent)`, which the
/// compiler refuses unless `C` takes `P`'s output type.
///
/// ```
/// # extern crate jobs_core as jobs;
/// # use jobs_macros::job;
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # pub struct Invoice { number: String }
/// # async fn demo() -> jobs::Result<()> {
/// use jobs::{Jobs, LimitKey, MemoryStore};
///
/// #[job]
/// async fn issue_invoice(order_id: i64) -> anyhow::Result<Invoice> {
///     Ok(Invoice { number: format!("INV-{order_id}") })
/// }
///
/// #[job]
/// async fn mail_invoice(invoice: Invoice) -> anyhow::Result<()> {
///     println!("mailing {}", invoice.number);
///     Ok(())
/// }
///
/// let jobs = Jobs::new(MemoryStore::new());
/// let issue = IssueInvoice::enqueue(&jobs, 7).await?;
/// let mail = MailInvoice::after_output_of::<IssueInvoice>(issue)
///     .queue("mail")
///     .key_limit(LimitKey::new("mailbox:7", 1)) // one mail at a time to this mailbox
///     .enqueue(&jobs)
///     .await?;
/// let stored = jobs.get(mail).await?.unwrap().job;
/// assert_eq!(stored.limit_key, Some(LimitKey::new("mailbox:7", 1)));
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
#[must_use = "a continuation does nothing until it is enqueued"]
pub struct OnOutput<P, C> {
    parent: JobId,
    queue: Option<String>,
    priority: Option<i16>,
    max_attempts: Option<i32>,
    limit_key: Option<LimitKey>,
    types: std::marker::PhantomData<fn() -> (P, C)>,
}

impl<P, C> std::fmt::Debug for OnOutput<P, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnOutput")
            .field("parent", &self.parent)
            .field("queue", &self.queue)
            .field("priority", &self.priority)
            .field("max_attempts", &self.max_attempts)
            .field("limit_key", &self.limit_key)
            .finish()
    }
}

impl<P, C> OnOutput<P, C>
where
    P: Job + crate::job::Produces,
    C: Job + crate::job::TakesOutput<<P as crate::job::Produces>::Output>,
{
    /// `C` on the output of job `parent`, with `C`'s defaults.
    pub fn new(parent: JobId) -> Self {
        Self {
            parent,
            queue: None,
            priority: None,
            max_attempts: None,
            limit_key: None,
            types: std::marker::PhantomData,
        }
    }

    /// Runs it in this queue instead of the job type's.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Higher runs first within a queue.
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Allows this many attempts (at least 1) instead of the job type's.
    pub fn max_attempts(mut self, max_attempts: u16) -> Self {
        self.max_attempts = Some(i32::from(max_attempts.max(1)));
        self
    }

    /// Runs it only while fewer than `limit.running` jobs with the key
    /// `limit.key` run (see [`Request::key_limit`]). A key limit `C`
    /// declares does not apply: its key would be made of arguments it does
    /// not have yet, so give the key here.
    pub fn key_limit(mut self, limit: LimitKey) -> Self {
        self.limit_key = Some(limit);
        self
    }

    /// What a store inserts: `C` with no arguments yet, awaiting `parent`.
    /// Not unique and without `C`'s declared key limit, whatever `C`
    /// declares: their keys would be made of arguments it does not have
    /// yet (a key limit given with [`key_limit`](Self::key_limit) applies).
    pub fn into_new_job(self) -> Result<NewJob> {
        crate::job::registry::check_unique_names()?;
        let options = C::options();
        let mut job = NewJob::new(C::NAME, serde_json::json!({}));
        job.queue = self.queue.unwrap_or_else(|| options.queue.to_owned());
        job.priority = self.priority.unwrap_or(options.priority);
        job.max_attempts = self.max_attempts.unwrap_or(options.max_attempts);
        job.after = Some(After::output_into(
            self.parent,
            <C as crate::job::TakesOutput<<P as crate::job::Produces>::Output>>::INPUT,
        ));
        if let Some(limit) = &self.limit_key {
            limit.check()?;
        }
        job.limit_key = self.limit_key;
        Ok(job)
    }

    /// Stores the continuation; its id.
    pub async fn enqueue(self, jobs: &crate::Jobs) -> Result<JobId> {
        let inserted = jobs.insert(vec![self.into_new_job()?]).await?;
        Ok(inserted[0].id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job written by hand, without `#[job]`: the default
    /// `Job::check_stored` decodes the whole stored value.
    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct Resize {
        ratio: f64,
    }

    impl Job for Resize {
        const NAME: &'static str = "resize";
    }

    #[test]
    fn a_hand_written_job_whose_arguments_would_not_decode_back_is_refused() {
        let error = Request::new(Resize { ratio: f64::NAN })
            .into_new_job()
            .unwrap_err();
        assert!(
            matches!(error, Error::RoundTrip { job: "resize", .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("job `resize`"), "{error}");
        let stored = Request::new(Resize { ratio: 2.0 }).into_new_job().unwrap();
        assert_eq!(stored.args, serde_json::json!({ "ratio": 2.0 }));
    }
}
