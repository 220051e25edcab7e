//! `Jobs`: the client handle applications enqueue and manage jobs through.
//! One concrete type whatever the store, cheap to clone, so an axum state or
//! a handler can name it without a type parameter.

use std::fmt;
use std::sync::Arc;

use crate::batch::Batches;
use crate::cron::Cron;
use crate::error::Error;
use crate::error::Result;
use crate::job::{Job, Produces, Request};
use crate::limits::QueueLimits;
use crate::model::{
    Inserted, JobDetail, JobId, JobPage, JobRow, NewJob, QueueInfo, QueueStateCount, ServerInfo,
    ServerSummary, StrandedJobs, ThroughputMinute,
};
use crate::recurring::{check_id, IntoCron, RecurringDef, RecurringOptions, RecurringRow};
use crate::store::{
    CancelOutcome, CronListParams, CronPauseParams, CronRemoveParams, CronTriggerParams,
    CronUpsertParams, DynStore, JobActMatchingParams, JobActOutcome, JobCancelParams,
    JobCountParams, JobDeleteParams, JobGetParams, JobInsertManyParams, JobListParams,
    JobRetryParams, JobRunNowParams, JobStrandedParams, JobThroughputParams, QueueLimitParams,
    QueueListParams, QueuePauseParams, ServerListParams, Store, StoreError, StoreErrorKind,
};

/// The client: enqueue jobs, look at them, retry, cancel or delete them,
/// and manage recurring jobs ([`Jobs::recurring`]).
///
/// Build one on a store and clone it wherever jobs are enqueued (an axum
/// state, a handler): clones share the store. The type `#[job]` generates
/// beside `async fn send_mail(user_id: i64)` enqueues through it with
/// `SendMail::enqueue(&jobs, 9)`, which is `jobs.enqueue(SendMail::new(9))`.
///
/// ```
/// # use jobs_core as jobs;
/// use jobs::{JobState, Jobs, MemoryStore, Request};
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct SendMail { user_id: i64 }
/// # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
///
/// # async fn demo() -> jobs::Result<()> {
/// let jobs = Jobs::new(MemoryStore::new());
/// let id = jobs.enqueue(Request::new(SendMail { user_id: 9 })).await?;
///
/// let detail = jobs.get(id).await?.expect("just enqueued");
/// assert_eq!(detail.job.state, JobState::Enqueued);
/// assert_eq!(detail.job.name, "send_mail");
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
#[derive(Clone)]
pub struct Jobs {
    store: Arc<dyn DynStore>,
}

impl fmt::Debug for Jobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jobs").finish_non_exhaustive()
    }
}

/// Which jobs [`Jobs::list`] returns: newest first, filtered, paged. The
/// same type the store's `job_list` takes.
pub type ListJobs = JobListParams;

impl Jobs {
    /// A client on this store.
    pub fn new(store: impl Store) -> Self {
        Self {
            store: Arc::new(store),
        }
    }

    /// A client on an already shared store.
    pub fn from_dyn(store: Arc<dyn DynStore>) -> Self {
        Self { store }
    }

    /// The store behind this client.
    pub fn store(&self) -> &Arc<dyn DynStore> {
        &self.store
    }

    /// The store behind this client if it is an `S`, to reach that store's
    /// own API: `None` for any other store, a [`Layered`](crate::Layered)
    /// one included.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// use jobs::{Jobs, MemoryStore};
    ///
    /// let jobs = Jobs::new(MemoryStore::new());
    /// assert!(jobs.store_as::<MemoryStore>().is_some());
    /// ```
    pub fn store_as<S: Store>(&self) -> Option<&S> {
        DynStore::as_any(&*self.store).downcast_ref::<S>()
    }

    /// Stores one job; its id once it is durable (for a unique job whose key
    /// another job holds, the holder's id: see [`enqueue_detailed`](Self::enqueue_detailed)).
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SendMail { user_id: i64 }
    /// # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// use jobs::Request;
    /// use std::time::Duration;
    ///
    /// let now = jobs.enqueue(Request::new(SendMail { user_id: 9 })).await?;
    /// let later = jobs
    ///     .enqueue(Request::new(SendMail { user_id: 10 }).delay(Duration::from_secs(3600)).priority(5))
    ///     .await?;
    /// assert_ne!(now, later);
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn enqueue<J: Job>(&self, request: Request<J>) -> Result<JobId> {
        Ok(self.enqueue_detailed(request).await?.id)
    }

    /// Stores one job, and says whether it was a duplicate: for a unique job
    /// (see [`Unique`](crate::Unique)) whose key another job holds, nothing
    /// is stored and the id is the holder's.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SyncCustomer { customer_id: i64 }
    /// # impl jobs::Job for SyncCustomer {
    /// #     const NAME: &'static str = "sync_customer";
    /// #     fn options() -> jobs::JobOptions { jobs::JobOptions::default().unique(jobs::Unique::while_unfinished()) }
    /// # }
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// use jobs::Request;
    /// // `SyncCustomer` comes from `#[job(unique)] async fn sync_customer(customer_id: i64)`.
    /// let first = jobs.enqueue_detailed(Request::new(SyncCustomer { customer_id: 7 })).await?;
    /// let again = jobs.enqueue_detailed(Request::new(SyncCustomer { customer_id: 7 })).await?;
    /// assert!(!first.duplicate && again.duplicate);
    /// assert_eq!(first.id, again.id);
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn enqueue_detailed<J: Job>(&self, request: Request<J>) -> Result<Inserted> {
        let inserted = self.insert(vec![request.into_new_job()?]).await?;
        inserted.first().copied().ok_or_else(|| {
            StoreError::new(
                StoreErrorKind::Other,
                "the store inserted the job but returned no id",
            )
            .into()
        })
    }

    /// Stores many jobs in one call, all or none; their ids in order (for a
    /// unique job's duplicate, the holder's id; see
    /// [`enqueue_many_detailed`](Self::enqueue_many_detailed)).
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SendMail { user_id: i64 }
    /// # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// use jobs::Request;
    /// let requests = (1..=3).map(|user_id| Request::new(SendMail { user_id }));
    /// let ids = jobs.enqueue_many(requests).await?;
    /// assert_eq!(ids.len(), 3);
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn enqueue_many<J: Job>(
        &self,
        requests: impl IntoIterator<Item = Request<J>>,
    ) -> Result<Vec<JobId>> {
        let inserted = self.enqueue_many_detailed(requests).await?;
        Ok(inserted.into_iter().map(|i| i.id).collect())
    }

    /// Stores many jobs in one call, all or none, and says of each whether
    /// it was a duplicate of a unique job (stored before, or earlier in the
    /// same batch).
    pub async fn enqueue_many_detailed<J: Job>(
        &self,
        requests: impl IntoIterator<Item = Request<J>>,
    ) -> Result<Vec<Inserted>> {
        let jobs = requests
            .into_iter()
            .map(Request::into_new_job)
            .collect::<Result<Vec<_>>>()?;
        self.insert(jobs).await
    }

    /// Stores already serialized jobs (of any types) in one call, all or
    /// none; what became of each, in order.
    pub async fn insert(&self, jobs: Vec<NewJob>) -> Result<Vec<Inserted>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let store = &self.store;
        let insert = |jobs| store.job_insert_many(JobInsertManyParams::new(jobs));
        Ok(crate::telemetry::enqueue(jobs, insert).await?)
    }

    /// A job with its history of states, times and errors.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SendMail { user_id: i64 }
    /// # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// use jobs::{JobId, Request};
    /// let id = jobs.enqueue(Request::new(SendMail { user_id: 9 })).await?;
    /// if let Some(detail) = jobs.get(id).await? {
    ///     println!("{} is {}", detail.job.id.0, detail.job.state.as_str());
    ///     for event in &detail.history {
    ///         println!("{}: {} (attempt {})", event.at, event.state.as_str(), event.attempt);
    ///     }
    /// }
    /// assert!(jobs.get(JobId(i64::MAX)).await?.is_none()); // no such job
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn get(&self, id: JobId) -> Result<Option<JobDetail>> {
        Ok(self.store.job_get(JobGetParams::new(id)).await?)
    }

    /// The output job `id` of type `J` returned when it succeeded, read
    /// back typed; `None` while it has none (not succeeded yet, or it
    /// returned `()`). A job that does not exist is a `NotFound` store
    /// error; one of another type, [`Error::OutputOfOtherJob`].
    ///
    /// ```
    /// # extern crate jobs_core as jobs;
    /// # use jobs_macros::job;
    /// # async fn demo() -> jobs::Result<()> {
    /// use jobs::{Jobs, MemoryStore, Server};
    ///
    /// #[job]
    /// async fn send_invoice(invoice_id: i64) -> anyhow::Result<String> {
    ///     Ok(format!("INV-{invoice_id}"))
    /// }
    ///
    /// let store = MemoryStore::new();
    /// let jobs = Jobs::new(store.clone());
    /// let id = SendInvoice::enqueue(&jobs, 7).await?;
    /// assert_eq!(jobs.output::<SendInvoice>(id).await?, None); // not run yet
    /// # #[cfg(feature = "testing")] {
    /// jobs::testing::run_until_empty(Server::builder(store)).await?;
    /// assert_eq!(jobs.output::<SendInvoice>(id).await?.as_deref(), Some("INV-7"));
    /// # }
    /// # Ok(()) }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn output<J>(&self, id: JobId) -> Result<Option<J::Output>>
    where
        J: Job + Produces,
        J::Output: serde::de::DeserializeOwned,
    {
        let detail = self
            .get(id)
            .await?
            .ok_or_else(|| StoreError::job_not_found(id))?;
        let job = detail.job;
        if job.name != J::NAME {
            return Err(Error::OutputOfOtherJob {
                id,
                expected: J::NAME,
                found: job.name,
            });
        }
        job.output
            .map(serde_json::from_value)
            .transpose()
            .map_err(|error| Error::Output {
                job: J::NAME,
                error,
            })
    }

    /// Runs a `failed`, `cancelled` or `deleted` job again, with fresh attempts.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SendMail { user_id: i64 }
    /// # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// use jobs::{JobState, Request};
    /// let id = jobs.enqueue(Request::new(SendMail { user_id: 9 })).await?;
    /// jobs.cancel(id).await?;
    /// jobs.retry(id).await?; // runnable again
    /// assert_eq!(jobs.get(id).await?.unwrap().job.state, JobState::Enqueued);
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn retry(&self, id: JobId) -> Result<()> {
        Ok(self.store.job_retry(JobRetryParams::new(id)).await?)
    }

    /// Runs a `scheduled` job now: a delayed job, or one waiting for its
    /// next attempt's backoff. It keeps its attempts. An `enqueued` job is
    /// left as it is; a job in any other state is a `Conflict`.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SendMail { user_id: i64 }
    /// # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// use std::time::Duration;
    /// use jobs::{JobState, Request};
    /// let id = jobs
    ///     .enqueue(Request::new(SendMail { user_id: 9 }).delay(Duration::from_secs(3600)))
    ///     .await?;
    /// jobs.run_now(id).await?;
    /// assert_eq!(jobs.get(id).await?.unwrap().job.state, JobState::Enqueued);
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn run_now(&self, id: JobId) -> Result<()> {
        Ok(self.store.job_run_now(JobRunNowParams::new(id)).await?)
    }

    /// Cancels a job that has not finished. A running job is asked to stop
    /// through its context and is aborted after its server's grace period.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SendMail { user_id: i64 }
    /// # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// use jobs::{CancelOutcome, JobState, Request};
    /// let id = jobs.enqueue(Request::new(SendMail { user_id: 9 })).await?;
    /// match jobs.cancel(id).await? {
    ///     CancelOutcome::Cancelled => println!("it had not started: it never will"),
    ///     CancelOutcome::Requested => println!("it is running: its server was asked to stop it"),
    ///     _ => {}
    /// }
    /// assert_eq!(jobs.get(id).await?.unwrap().job.state, JobState::Cancelled);
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn cancel(&self, id: JobId) -> Result<CancelOutcome> {
        Ok(self.store.job_cancel(JobCancelParams::new(id)).await?)
    }

    /// Deletes a job that is not running.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SendMail { user_id: i64 }
    /// # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// use jobs::{JobState, Request};
    /// let id = jobs.enqueue(Request::new(SendMail { user_id: 9 })).await?;
    /// jobs.delete(id).await?; // kept as `deleted` until retention removes it
    /// assert_eq!(jobs.get(id).await?.unwrap().job.state, JobState::Deleted);
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn delete(&self, id: JobId) -> Result<()> {
        Ok(self.store.job_delete(JobDeleteParams::new(id)).await?)
    }

    /// Retries, cancels, deletes or runs now every job a [`JobFilter`](crate::JobFilter)
    /// picks, at most `limit` of them (default 1000), in one store call (one
    /// statement on PostgreSQL, not a loop over ids). Each job is treated as
    /// [`retry`](Jobs::retry), [`cancel`](Jobs::cancel),
    /// [`delete`](Jobs::delete) or [`run_now`](Jobs::run_now) treat it, and jobs in states the action does
    /// not accept are passed over; a filter whose state the action never
    /// accepts is an error (see [`JobActMatchingParams`]). With
    /// [`dry_run`](JobActMatchingParams::dry_run) it changes nothing and says
    /// which jobs it would change.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SendMail { user_id: i64 }
    /// # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// use jobs::{JobAction, JobActMatchingParams, JobFilter, JobState, Request};
    /// jobs.enqueue_many((1..=3).map(|user_id| Request::new(SendMail { user_id }).queue("mail"))).await?;
    ///
    /// let mail = JobFilter::new().queue("mail").name("send_mail");
    /// let would = jobs
    ///     .act_matching(JobActMatchingParams::new(JobAction::cancel(), mail.clone()).dry_run(true))
    ///     .await?;
    /// assert_eq!(would.count(), 3); // nothing changed yet
    ///
    /// let done = jobs.act_matching(JobActMatchingParams::new(JobAction::cancel(), mail).limit(2)).await?;
    /// assert_eq!(done.changed.len(), 2);
    /// assert!(done.more, "one more job matched: call again for it");
    ///
    /// // Retrying takes only failed, cancelled and deleted jobs.
    /// let retry = JobActMatchingParams::new(JobAction::Retry, JobFilter::new().state(JobState::Cancelled));
    /// assert_eq!(jobs.act_matching(retry).await?.changed.len(), 2);
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn act_matching(&self, p: JobActMatchingParams) -> Result<JobActOutcome> {
        Ok(self.store.job_act_matching(p).await?)
    }

    /// A page of jobs, newest first.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SendMail { user_id: i64 }
    /// # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// use jobs::{JobState, ListJobs, Request};
    /// jobs.enqueue_many((1..=3).map(|user_id| Request::new(SendMail { user_id }))).await?;
    ///
    /// let first = jobs.list(ListJobs::new().state(JobState::Enqueued).limit(2)).await?;
    /// assert_eq!(first.len(), 2);
    /// // The next page starts below the last id of this one.
    /// let next = jobs.list(ListJobs::new().state(JobState::Enqueued).before(first[1].id)).await?;
    /// assert_eq!(next.len(), 1);
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    ///
    /// With [`ListJobs::scan`], [`Jobs::list_page`] also says where the scan
    /// stopped.
    pub async fn list(&self, which: ListJobs) -> Result<Vec<JobRow>> {
        Ok(self.store.job_list(which).await?.jobs)
    }

    /// A page of jobs, newest first, with where a scan bounded by
    /// [`ListJobs::scan`] stopped: what an arguments search of bounded cost
    /// reads (see [`ListJobs::scan`] for an example).
    pub async fn list_page(&self, which: ListJobs) -> Result<JobPage> {
        Ok(self.store.job_list(which).await?)
    }

    /// How many jobs succeeded and failed for good in each minute of the
    /// last `window` (at most a day is kept), oldest first; minutes with
    /// neither are left out. The dashboard's overview charts it.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// use std::time::Duration;
    /// for m in jobs.throughput(Duration::from_secs(3600)).await? {
    ///     println!("{}: {} succeeded, {} failed", m.minute, m.succeeded, m.failed);
    /// }
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn throughput(&self, window: std::time::Duration) -> Result<Vec<ThroughputMinute>> {
        Ok(self
            .store
            .job_throughput(JobThroughputParams::new().window(window))
            .await?)
    }

    /// How many jobs are in each state in each queue.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SendMail { user_id: i64 }
    /// # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// use jobs::Request;
    /// jobs.enqueue(Request::new(SendMail { user_id: 9 })).await?;
    /// for count in jobs.counts().await? {
    ///     println!("{} {}: {}", count.queue, count.state.as_str(), count.count);
    /// }
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn counts(&self) -> Result<Vec<QueueStateCount>> {
        Ok(self.store.job_count(JobCountParams::new()).await?)
    }

    /// The due jobs that no live server can take, by queue and job name,
    /// the longest waiting first (at most 100 groups): jobs whose queue no
    /// running server serves, and jobs whose name no running server of
    /// their queue registers. Live servers are those that sent a heartbeat
    /// within the last 100 s (ten heartbeats at the default interval; for
    /// another age, call [`job_stranded`](crate::Store::job_stranded) on
    /// [`store`](Jobs::store) with your own [`JobStrandedParams`]). Running
    /// servers log the same list as warnings, once a minute by default (see
    /// `ServerBuilder::stranded_report_interval`).
    ///
    /// Such jobs look fine when they are enqueued and then wait: **a server
    /// never discards or fails a job it does not know**, since another
    /// server (another service, the next deploy) may know it, so they wait
    /// until a server that can run them starts. What to do, by
    /// [`StrandedReason`](crate::StrandedReason):
    ///
    /// - `NoServerForQueue`: start a server whose `queues` include the
    ///   queue (or fix the `#[job(queue = "...")]` or `Request::queue` that
    ///   sent them there).
    /// - `NoServerKnowsName`: deploy a server that registers the job: the
    ///   code that defines it is not running yet (expected for a moment
    ///   during a rolling deploy), or the function was renamed (keep its
    ///   stored name with `#[job(name = "old_name")]`), or another service
    ///   enqueued it for servers that are not running.
    /// - Or, if they should never run, cancel or delete them.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SendMail { user_id: i64 }
    /// # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
    /// # async fn demo() -> jobs::Result<()> {
    /// use jobs::{JobState, Jobs, ListJobs, MemoryStore, Request, StrandedReason};
    /// let jobs = Jobs::new(MemoryStore::new());
    /// jobs.enqueue(Request::new(SendMail { user_id: 9 }).queue("mial")).await?; // a typo
    ///
    /// let stranded = jobs.stranded().await?;
    /// for group in &stranded {
    ///     println!(
    ///         "{} jobs `{}` in queue `{}` have waited since {}: {}",
    ///         group.count, group.name, group.queue, group.oldest_due, group.reason,
    ///     );
    /// }
    /// assert_eq!(stranded[0].reason, StrandedReason::NoServerForQueue); // no server serves `mial`
    ///
    /// // These should never run: delete them (they are kept, `deleted`, until retention).
    /// let waiting = jobs.list(ListJobs::new().queue("mial").state(JobState::Enqueued)).await?;
    /// for job in waiting.iter().filter(|job| job.name == "send_mail") {
    ///     jobs.delete(job.id).await?;
    /// }
    /// assert!(jobs.stranded().await?.is_empty());
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn stranded(&self) -> Result<Vec<StrandedJobs>> {
        Ok(self.store.job_stranded(JobStrandedParams::new()).await?)
    }

    /// The servers whose heartbeats the store has seen, most recently
    /// started first, each with what it ran and held claimed ahead at its
    /// latest heartbeat.
    pub async fn servers(&self) -> Result<Vec<ServerInfo>> {
        Ok(self.store.server_list(ServerListParams::new()).await?)
    }

    /// The servers, and how many jobs they run and hold claimed ahead in
    /// total: the two parts of the `processing` count that
    /// [`counts`](Jobs::counts) cannot tell apart. From the servers'
    /// heartbeats, so it costs the store one read of the server records and
    /// nothing per job.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # async fn demo() -> jobs::Result<()> {
    /// use jobs::{Jobs, MemoryStore, Server};
    /// let store = MemoryStore::new();
    /// let jobs = Jobs::new(store.clone());
    /// let server = Server::builder(store).concurrency(8).start().await?;
    ///
    /// let summary = jobs.server_summary().await?;
    /// println!(
    ///     "{} servers: {} of {} slots running, {} jobs claimed ahead",
    ///     summary.servers.len(), summary.running, summary.concurrency, summary.claimed_ahead,
    /// );
    /// for s in &summary.servers {
    ///     println!("{} on {}: {} running, {} claimed ahead", s.id, s.host, s.running, s.claimed_ahead);
    /// }
    /// server.shutdown().await;
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn server_summary(&self) -> Result<ServerSummary> {
        Ok(ServerSummary::new(self.servers().await?))
    }

    /// The recurring jobs: create, update, pause, resume, trigger, remove
    /// and list them. A running [`Server`](crate::Server) enqueues each tick.
    /// ```
    /// # use jobs_core as jobs;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SendMail { user_id: i64 }
    /// # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// use jobs::{Cron, Request};
    /// let recurring = jobs.recurring();
    /// recurring.add_or_update("nightly-mail", Cron::daily_at(3, 0)?, Request::new(SendMail { user_id: 9 })).await?;
    /// recurring.pause("nightly-mail").await?;
    /// recurring.resume("nightly-mail").await?;
    /// let run = recurring.trigger("nightly-mail").await?; // once now, off schedule
    /// assert!(jobs.get(run).await?.is_some());
    /// assert_eq!(recurring.list().await?.len(), 1);
    /// assert!(recurring.remove("nightly-mail").await?);
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub fn recurring(&self) -> Recurring<'_> {
        Recurring {
            store: self.store.as_ref(),
        }
    }

    /// The queues: pause and resume them for every server, and list them.
    /// A paused queue's jobs wait and no server claims them (each server
    /// sees the pause at its next claim); jobs already running finish
    /// normally. Resuming wakes idle servers at once.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SendMail { user_id: i64 }
    /// # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// use jobs::Request;
    /// let queues = jobs.queues();
    /// queues.pause("mail").await?; // mail jobs wait from the next claim on
    /// jobs.enqueue(Request::new(SendMail { user_id: 9 }).queue("mail")).await?;
    /// let mail = queues.list().await?.into_iter().find(|q| q.queue == "mail").unwrap();
    /// assert!(mail.paused);
    /// queues.resume("mail").await?; // idle servers claim them at once
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub fn queues(&self) -> Queues<'_> {
        Queues {
            store: self.store.as_ref(),
        }
    }

    /// The store's batches: enqueue a set of jobs as one, with a callback
    /// that runs once when they have all ended, and read its progress; see
    /// [`Batches`] and [`NewBatch`](crate::NewBatch).
    pub fn batches(&self) -> Batches<'_> {
        Batches {
            store: self.store.as_ref(),
        }
    }
}

/// The queues of a store, from [`Jobs::queues`]: pause and resume them,
/// durably and for every server, and list them. [`Jobs::queues`] shows each
/// method in use.
#[derive(Clone, Copy)]
pub struct Queues<'a> {
    store: &'a dyn DynStore,
}

impl fmt::Debug for Queues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queues").finish_non_exhaustive()
    }
}

impl Queues<'_> {
    /// Pauses the queue `queue`: from each server's next claim on, its jobs
    /// wait (new ones too) and nobody claims them; jobs already running
    /// finish normally. A queue that has no jobs yet can be paused. Pausing
    /// a paused queue changes nothing.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// jobs.queues().pause("mail").await?;
    /// assert!(jobs.queues().list().await?[0].paused);
    /// assert!(jobs.queues().pause("").await.is_err()); // queues have names
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn pause(&self, queue: &str) -> Result<()> {
        check_queue(queue)?;
        self.store
            .queue_pause(QueuePauseParams::pause(queue))
            .await?;
        tracing::info!(queue, "queue paused");
        Ok(())
    }

    /// Resumes the queue `queue`: its waiting jobs are claimable again, and
    /// idle servers are woken at once (servers of other processes too, if
    /// the store can reach them: PostgreSQL's NOTIFY). Resuming a queue that
    /// is not paused changes nothing.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// jobs.queues().pause("mail").await?;
    /// jobs.queues().resume("mail").await?;
    /// assert!(!jobs.queues().list().await?[0].paused);
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn resume(&self, queue: &str) -> Result<()> {
        check_queue(queue)?;
        self.store
            .queue_pause(QueuePauseParams::resume(queue))
            .await?;
        tracing::info!(queue, "queue resumed");
        Ok(())
    }

    /// Sets the cluster-wide limits of the queue `queue`, replacing those it
    /// had; `QueueLimits::none()` lifts them. They are stored, so every
    /// server applies the same values, from its next claim on, without a
    /// restart; the store enforces them inside the claim, so they hold
    /// however many servers claim at once (see [`QueueLimits`] and
    /// [`RateLimit`](crate::RateLimit)). Lowering a limit below what runs
    /// stops nothing: the queue's jobs wait until enough have finished.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// use jobs::{QueueLimits, RateLimit};
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// // One `reports` job at a time in the whole cluster, and at most 30
    /// // `partner_api` calls started in any minute.
    /// jobs.queues().set_limits("reports", QueueLimits::none().concurrency(1)).await?;
    /// jobs.queues()
    ///     .set_limits("partner_api", QueueLimits::none().rate(RateLimit::per_minute(30)))
    ///     .await?;
    /// let queues = jobs.queues().list().await?;
    /// assert_eq!(queues[1].limits.concurrency, Some(1));
    /// // Lifted:
    /// jobs.queues().set_limits("reports", QueueLimits::none()).await?;
    /// // Refused: a limit of 0 would be a pause.
    /// assert!(jobs.queues().set_limits("reports", QueueLimits::none().concurrency(0)).await.is_err());
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn set_limits(&self, queue: &str, limits: QueueLimits) -> Result<()> {
        check_queue(queue)?;
        limits.check()?;
        self.store
            .queue_limit(QueueLimitParams::new(queue, limits))
            .await?;
        tracing::info!(
            queue,
            concurrency = limits.concurrency,
            rate_jobs = limits.rate.map(|r| r.jobs),
            rate_per_secs = limits.rate.map(|r| r.per.as_secs()),
            "queue limits set"
        );
        Ok(())
    }

    /// The queues the store knows, by name: those with jobs, and those ever
    /// paused or limited, each with whether it is paused and since when, its
    /// limits, and since when
    /// its oldest due job has waited ([`QueueInfo::oldest_due`]). Counts by
    /// state are [`Jobs::counts`]'s.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// jobs.queues().pause("reports").await?;
    /// for q in jobs.queues().list().await? {
    ///     println!("{}: {}", q.queue, if q.paused { "paused" } else { "running" });
    /// }
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn list(&self) -> Result<Vec<QueueInfo>> {
        Ok(self.store.queue_list(QueueListParams::new()).await?)
    }
}

/// A queue name the store can be asked about: not empty.
fn check_queue(queue: &str) -> Result<()> {
    if queue.is_empty() {
        return Err(
            StoreError::new(StoreErrorKind::Invalid, "a queue name must not be empty").into(),
        );
    }
    Ok(())
}

/// The recurring jobs of a store, from [`Jobs::recurring`]: each has an id
/// chosen by the application, a cron schedule and the request each tick
/// enqueues. [`Jobs::recurring`] shows each method in use.
///
/// Calling [`add_or_update`](Recurring::add_or_update) at every start is the
/// intended use: it creates the entry or updates it when the schedule or
/// request changed, keeping its next tick unless the schedule changed.
#[derive(Clone, Copy)]
pub struct Recurring<'a> {
    store: &'a dyn DynStore,
}

impl fmt::Debug for Recurring<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recurring").finish_non_exhaustive()
    }
}

impl Recurring<'_> {
    /// Creates the recurring job `id`, or updates it: meant to be called at
    /// every start. Each tick of `schedule` enqueues `request` (its queue,
    /// priority and attempts; its delay is ignored). Changing the schedule,
    /// time zone or arguments of an existing id takes effect; calling it again
    /// with the same values changes nothing. A schedule given as a string is
    /// parsed here, and an invalid one is this call's error.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # use jobs::{Cron, Jobs, MemoryStore, Request};
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct InvalidateInvoices {}
    /// # impl jobs::Job for InvalidateInvoices { const NAME: &'static str = "invalidate_invoices"; }
    /// # async fn start(jobs: Jobs) -> jobs::Result<()> {
    /// let recurring = jobs.recurring();
    /// recurring.add_or_update("invalidate-invoices", Cron::daily(), Request::new(InvalidateInvoices {})).await?;
    /// recurring.add_or_update("hourly-report", "0 * * * *", Request::new(InvalidateInvoices {})).await?;
    /// assert!(recurring.add_or_update("broken", "0 25 * * *", Request::new(InvalidateInvoices {})).await.is_err());
    /// # Ok(()) }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    /// #     .block_on(start(Jobs::new(MemoryStore::new()))).unwrap();
    /// ```
    pub async fn add_or_update<J: Job>(
        &self,
        id: &str,
        schedule: impl IntoCron,
        request: Request<J>,
    ) -> Result<()> {
        self.add_or_update_with(id, schedule, request, RecurringOptions::default())
            .await
    }

    /// [`Recurring::add_or_update`] with a misfire or overlap policy.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SendMail { user_id: i64 }
    /// # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// use jobs::{Misfire, Overlap, RecurringOptions, Request};
    /// // After downtime skip the missed ticks; never run two at once.
    /// let options = RecurringOptions::new().misfire(Misfire::Skip).overlap(Overlap::Skip);
    /// jobs.recurring()
    ///     .add_or_update_with("report", "*/5 * * * *", Request::new(SendMail { user_id: 9 }), options)
    ///     .await?;
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn add_or_update_with<J: Job>(
        &self,
        id: &str,
        schedule: impl IntoCron,
        request: Request<J>,
        options: RecurringOptions,
    ) -> Result<()> {
        check_id(id)?;
        let schedule: Cron = schedule.into_cron()?;
        let def = RecurringDef::new(id.to_owned(), &schedule, request.into_new_job()?, options);
        Ok(self.store.cron_upsert(CronUpsertParams::new(def)).await?)
    }

    /// Removes the recurring job `id` if there is one (its past runs stay);
    /// whether there was.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SendMail { user_id: i64 }
    /// # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// use jobs::Request;
    /// jobs.recurring().add_or_update("report", "0 * * * *", Request::new(SendMail { user_id: 9 })).await?;
    /// assert!(jobs.recurring().remove("report").await?);
    /// assert!(!jobs.recurring().remove("report").await?); // already gone
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn remove(&self, id: &str) -> Result<bool> {
        Ok(self.store.cron_remove(CronRemoveParams::new(id)).await?)
    }

    /// Runs the recurring job `id` now, off schedule, without moving its schedule.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SendMail { user_id: i64 }
    /// # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// use jobs::{Cron, Request};
    /// jobs.recurring().add_or_update("report", Cron::daily(), Request::new(SendMail { user_id: 9 })).await?;
    /// let id = jobs.recurring().trigger("report").await?; // an ordinary job, enqueued now
    /// assert!(jobs.get(id).await?.is_some());
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn trigger(&self, id: &str) -> Result<JobId> {
        use tracing::Instrument;
        let (span, context) = crate::telemetry::recurring_trigger_span(id);
        let params = CronTriggerParams::new(id).trace_context(context);
        Ok(self.store.cron_trigger(params).instrument(span).await?)
    }

    /// Stops the recurring job `id` from firing until it is resumed.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SendMail { user_id: i64 }
    /// # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// use jobs::{Cron, Request};
    /// jobs.recurring().add_or_update("report", Cron::daily(), Request::new(SendMail { user_id: 9 })).await?;
    /// jobs.recurring().pause("report").await?;
    /// assert!(jobs.recurring().list().await?[0].paused);
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn pause(&self, id: &str) -> Result<()> {
        Ok(self.store.cron_pause(CronPauseParams::pause(id)).await?)
    }

    /// Lets the recurring job `id` fire again, from its next tick on (ticks
    /// passed while it was paused are not run).
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SendMail { user_id: i64 }
    /// # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// use jobs::{Cron, Request};
    /// jobs.recurring().add_or_update("report", Cron::daily(), Request::new(SendMail { user_id: 9 })).await?;
    /// jobs.recurring().pause("report").await?;
    /// jobs.recurring().resume("report").await?;
    /// assert!(!jobs.recurring().list().await?[0].paused);
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn resume(&self, id: &str) -> Result<()> {
        Ok(self.store.cron_pause(CronPauseParams::resume(id)).await?)
    }

    /// Every recurring job with its next and last run, the last run's job
    /// and state, and the last error.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SendMail { user_id: i64 }
    /// # impl jobs::Job for SendMail { const NAME: &'static str = "send_mail"; }
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// use jobs::{Cron, Request};
    /// jobs.recurring().add_or_update("report", Cron::hourly(), Request::new(SendMail { user_id: 9 })).await?;
    /// for row in jobs.recurring().list().await? {
    ///     println!("{} ({}): next {:?}, last {:?}", row.def.id, row.def.schedule, row.next_run_at, row.last_run_at);
    /// }
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn list(&self) -> Result<Vec<RecurringRow>> {
        Ok(self.store.cron_list(CronListParams::new()).await?)
    }
}
