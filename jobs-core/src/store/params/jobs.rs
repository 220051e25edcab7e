//! Params and answers of the `job_*` operations: insert, claim, complete,
//! progress, read, manage (one job, or all a filter picks) and prune jobs.

use std::time::Duration;

use super::MAINTENANCE_BATCH;
use crate::error::{StoreError, StoreErrorKind, StoreResult};
use crate::job::DEFAULT_QUEUE;
use crate::model::{Claim, JobId, JobRow, JobState, NewJob, ServerId};

/// Insert jobs, all or none.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobInsertManyParams {
    /// The jobs, in order; their ids come back in the same order.
    pub jobs: Vec<NewJob>,
}

impl JobInsertManyParams {
    /// Insert these jobs.
    pub fn new(jobs: Vec<NewJob>) -> Self {
        Self { jobs }
    }
}

/// Claim up to `limit` runnable jobs (`enqueued`, or `scheduled` whose time
/// has come) in one step: earlier queues in `queues` first, then higher
/// priority, then earlier run time, then lower id. Each claimed job becomes
/// `processing` with `attempt + 1`, a new claim token and a lease. A paused
/// queue (see [`QueuePauseParams`](super::QueuePauseParams)) gives nothing,
/// and a queue with a limit in `queue_limits` gives at most that many.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobClaimParams {
    /// The claiming server.
    pub server_id: ServerId,
    /// The queues to take from, in order of preference (default `["default"]`).
    pub queues: Vec<String>,
    /// The stored names this server can run; other jobs are left for servers
    /// that can (default: none, so set it).
    pub names: Vec<String>,
    /// At most this many jobs (default 1).
    pub limit: u32,
    /// How long the lease lasts before it must be renewed (default 30 s).
    pub lease: Duration,
    /// At most this many jobs of a queue in this claim, for the queues
    /// named (default: none, every queue takes up to `limit`). A server
    /// with a per-queue cap asks for what its cap leaves free. A queue named
    /// twice: the first counts.
    pub queue_limits: Vec<(String, u32)>,
}

impl JobClaimParams {
    /// A claim by this server, with the defaults above.
    pub fn new(server_id: ServerId) -> Self {
        Self {
            server_id,
            queues: vec![DEFAULT_QUEUE.to_owned()],
            names: Vec::new(),
            limit: 1,
            lease: Duration::from_secs(30),
            queue_limits: Vec::new(),
        }
    }

    /// At most `limit` jobs of `queue` in this claim (replacing a limit
    /// given before for it).
    pub fn queue_limit(mut self, queue: impl Into<String>, limit: u32) -> Self {
        let queue = queue.into();
        self.queue_limits.retain(|(q, _)| *q != queue);
        self.queue_limits.push((queue, limit));
        self
    }

    /// The limit of `queue` in this claim, if it has one.
    pub fn limit_of(&self, queue: &str) -> Option<u32> {
        self.queue_limits
            .iter()
            .find(|(q, _)| q == queue)
            .map(|&(_, limit)| limit)
    }

    /// The queues to take from, in order of preference.
    pub fn queues<Q: Into<String>>(mut self, queues: impl IntoIterator<Item = Q>) -> Self {
        self.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// The stored names this server can run.
    pub fn names<N: Into<String>>(mut self, names: impl IntoIterator<Item = N>) -> Self {
        self.names = names.into_iter().map(Into::into).collect();
        self
    }

    /// At most this many jobs.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// How long the lease lasts before it must be renewed.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }
}

/// How an attempt ended, as the server reports it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum JobOutcome {
    /// It succeeded: `succeeded`.
    Succeeded,
    /// It failed and will be tried again after `after`: `scheduled`.
    Retry {
        /// The attempt's error.
        error: String,
        /// The backoff before the next attempt.
        after: Duration,
    },
    /// It failed for good: `failed`.
    Failed {
        /// The attempt's error.
        error: String,
    },
    /// The job asked to run again later; the attempt is not counted: `scheduled`.
    Snooze {
        /// When to run it again.
        after: Duration,
    },
    /// Cancelled by a user or by the job: `cancelled`.
    Cancelled {
        /// Why.
        reason: String,
    },
    /// Handed back unfinished (graceful shutdown): runnable again at once,
    /// the attempt not counted: `enqueued`.
    Released {
        /// Why.
        reason: String,
    },
}

/// One attempt's end, fenced by its claim.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobCompletion {
    /// The attempt.
    pub claim: Claim,
    /// How it ended.
    pub outcome: JobOutcome,
    /// What a succeeded attempt returned, stored as the job's
    /// [`output`](crate::JobRow::output); ignored for other outcomes.
    pub output: Option<serde_json::Value>,
}

impl JobCompletion {
    /// This attempt ended this way, with no output.
    pub fn new(claim: Claim, outcome: JobOutcome) -> Self {
        Self {
            claim,
            outcome,
            output: None,
        }
    }

    /// The same completion with this output (`None`: none).
    pub fn output(mut self, output: Option<serde_json::Value>) -> Self {
        self.output = output;
        self
    }
}

/// Record how attempts ended. A completion whose claim is no longer current
/// (the job was rescued and claimed again, or cancelled) changes nothing.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobCompleteManyParams {
    /// The server reporting.
    pub server_id: ServerId,
    /// The completions.
    pub completions: Vec<JobCompletion>,
}

impl JobCompleteManyParams {
    /// This server reports these completions.
    pub fn new(server_id: ServerId, completions: Vec<JobCompletion>) -> Self {
        Self {
            server_id,
            completions,
        }
    }
}

/// Record the progress running attempts reported. An update whose claim is
/// no longer current changes nothing.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobProgressManyParams {
    /// The server reporting.
    pub server_id: ServerId,
    /// Each attempt's claim and its latest progress.
    pub updates: Vec<(Claim, serde_json::Value)>,
}

impl JobProgressManyParams {
    /// This server reports these updates.
    pub fn new(server_id: ServerId, updates: Vec<(Claim, serde_json::Value)>) -> Self {
        Self { server_id, updates }
    }
}

/// Read one job with its history.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobGetParams {
    /// The job.
    pub id: JobId,
}

impl JobGetParams {
    /// Read this job.
    pub fn new(id: JobId) -> Self {
        Self { id }
    }
}

/// Which jobs a call picks: those in this state, in this queue, of this
/// stored name and whose arguments contain this JSON; a criterion left out
/// matches every job. What
/// [`JobActMatchingParams`] acts on, and what [`JobListParams::matching`]
/// lists, so a dashboard or a command line shows the jobs an action on "all
/// matching" would take.
///
/// ```
/// # use jobs_core::{JobFilter, JobState};
/// let failed_invoices = JobFilter::new()
///     .state(JobState::Failed)
///     .queue("mail")
///     .name("send_invoice")
///     .args(serde_json::json!({ "customer": { "id": 7 } }));
/// # let _ = failed_invoices;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobFilter {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs in this queue.
    pub queue: Option<String>,
    /// Only jobs of this stored name (`Job::NAME`).
    pub name: Option<String>,
    /// Only jobs whose arguments contain this JSON, as PostgreSQL's jsonb
    /// containment (`args @> ...`) decides, so every store picks the same
    /// jobs: an object contains an object whose every key it has, with a
    /// value that contains that key's value; an array contains an array
    /// whose every element is contained by one of its own elements (in any
    /// order, repeats allowed); other values contain only an equal value,
    /// numbers compared by value (`1` and `1.0` are equal). At the top level
    /// only, an array also contains a scalar it has among its elements.
    pub args: Option<serde_json::Value>,
}

impl JobFilter {
    /// Every job.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only this state.
    pub fn state(mut self, state: JobState) -> Self {
        self.state = Some(state);
        self
    }

    /// Only this queue.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Only this stored name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Only jobs whose arguments contain `args` (see [`JobFilter::args`]).
    ///
    /// ```
    /// # use jobs_core::{JobFilter, JobId, JobRow, JobState};
    /// use serde_json::json;
    /// let args = json!({ "user": { "id": 7, "name": "Ada" }, "tags": ["a", "b"] });
    /// let job = JobRow::new(JobId(1), "send".into(), "mail".into(), args, JobState::Enqueued, chrono::Utc::now());
    /// let picks = |args| JobFilter::new().args(args).matches(&job);
    /// assert!(picks(json!({ "user": { "id": 7 } })));
    /// assert!(picks(json!({ "tags": ["b"] })));
    /// assert!(!picks(json!({ "tags": "b" })));
    /// assert!(!picks(json!({ "user": { "id": 8 } })));
    /// ```
    pub fn args(mut self, args: serde_json::Value) -> Self {
        self.args = Some(args);
        self
    }

    /// Whether `job` passes every criterion.
    pub fn matches(&self, job: &JobRow) -> bool {
        self.state.is_none_or(|state| state == job.state)
            && self.queue.as_ref().is_none_or(|queue| *queue == job.queue)
            && self.name.as_ref().is_none_or(|name| *name == job.name)
            && self
                .args
                .as_ref()
                .is_none_or(|args| args_contain(&job.args, args))
    }
}

/// Whether the arguments `args` contain `wanted` (see [`JobFilter::args`]).
fn args_contain(args: &serde_json::Value, wanted: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (args, wanted) {
        (
            Value::Array(elements),
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_),
        ) => elements.iter().any(|element| contains(element, wanted)),
        _ => contains(args, wanted),
    }
}

/// [`args_contain`] below the top level.
fn contains(have: &serde_json::Value, wanted: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (have, wanted) {
        (Value::Object(have), Value::Object(wanted)) => wanted
            .iter()
            .all(|(key, value)| have.get(key).is_some_and(|have| contains(have, value))),
        (Value::Array(have), Value::Array(wanted)) => wanted
            .iter()
            .all(|value| have.iter().any(|have| contains(have, value))),
        (Value::Number(have), Value::Number(wanted)) => {
            match (
                have.as_i64(),
                wanted.as_i64(),
                have.as_u64(),
                wanted.as_u64(),
            ) {
                (Some(a), Some(b), _, _) => a == b,
                (_, _, Some(a), Some(b)) => a == b,
                _ => have.as_f64() == wanted.as_f64(),
            }
        }
        (Value::Object(_) | Value::Array(_), _) | (_, Value::Object(_) | Value::Array(_)) => false,
        _ => have == wanted,
    }
}

/// List jobs, newest first, filtered and paged by id. `Jobs::list` takes it
/// under the name `ListJobs`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobListParams {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs in this queue.
    pub queue: Option<String>,
    /// Only jobs of this stored name.
    pub name: Option<String>,
    /// Only jobs whose arguments contain this JSON (see [`JobFilter::args`]).
    pub args: Option<serde_json::Value>,
    /// Only jobs with ids below this one (the next page after it).
    pub before: Option<JobId>,
    /// At most this many (default 50).
    pub limit: u32,
    /// Examine at most this many jobs, the newest (below `before`) of those
    /// the state, queue and name pick, and check the arguments filter on
    /// those alone (default `None`: read on until the page is full). See
    /// [`JobListParams::scan`].
    pub scan: Option<u32>,
}

impl Default for JobListParams {
    fn default() -> Self {
        Self {
            state: None,
            queue: None,
            name: None,
            args: None,
            before: None,
            limit: 50,
            scan: None,
        }
    }
}

impl JobListParams {
    /// The first page of all jobs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only this state.
    pub fn state(mut self, state: JobState) -> Self {
        self.state = Some(state);
        self
    }

    /// Only this queue.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Only this stored name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Only jobs whose arguments contain `args` (see [`JobFilter::args`]).
    pub fn args(mut self, args: serde_json::Value) -> Self {
        self.args = Some(args);
        self
    }

    /// Only the jobs `filter` picks: its state, queue, name and arguments
    /// replace those set so far.
    pub fn matching(mut self, filter: JobFilter) -> Self {
        self.state = filter.state;
        self.queue = filter.queue;
        self.name = filter.name;
        self.args = filter.args;
        self
    }

    /// The state, queue, name and arguments criteria, as a [`JobFilter`].
    pub fn filter(&self) -> JobFilter {
        JobFilter {
            state: self.state,
            queue: self.queue.clone(),
            name: self.name.clone(),
            args: self.args.clone(),
        }
    }

    /// The page after this id (pass the last id of the previous page).
    pub fn before(mut self, id: JobId) -> Self {
        self.before = Some(id);
        self
    }

    /// Page size.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// Bounds the cost of an arguments search: examine at most `rows` jobs,
    /// the newest (below `before`) of those the state, queue and name pick,
    /// and return those of them whose arguments match. No store indexes
    /// arguments, so without a bound a match that few jobs have reads back
    /// through every job of the other criteria. When the scan ends at its
    /// bound before the page is full, [`JobPage::scanned_to`](crate::JobPage::scanned_to) says where, and
    /// the search continues below it with [`before`](JobListParams::before).
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// # async fn demo() -> jobs::Result<()> {
    /// # let jobs = jobs::Jobs::new(jobs::MemoryStore::new());
    /// use jobs::ListJobs;
    /// let search = ListJobs::new().args(serde_json::json!({ "customer_id": 7 })).scan(20_000);
    /// let mut page = jobs.list_page(search.clone()).await?;
    /// while page.jobs.is_empty() {
    ///     let Some(stop) = page.scanned_to else { break }; // nothing older
    ///     page = jobs.list_page(search.clone().before(stop)).await?;
    /// }
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub fn scan(mut self, rows: u32) -> Self {
        self.scan = Some(rows);
        self
    }
}

/// Count jobs by queue and state. Pairs with no jobs are left out.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct JobCountParams {}

impl JobCountParams {
    /// Count every queue and state.
    pub fn new() -> Self {
        Self::default()
    }
}

/// How many jobs succeeded and failed for good in each minute of the last
/// `window` (the current minute included), oldest first; minutes with
/// neither are left out. Stores count them as jobs end, once per change of
/// state (a batch of completions adds to its minute once), and keep
/// [`THROUGHPUT_KEPT`] of them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobThroughputParams {
    /// How far back (default an hour; at most [`THROUGHPUT_KEPT`] is kept).
    pub window: Duration,
}

/// How long stores keep the per-minute counts of [`JobThroughputParams`]:
/// pruning removes older minutes.
pub const THROUGHPUT_KEPT: Duration = Duration::from_secs(24 * 3600);

impl Default for JobThroughputParams {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(3600),
        }
    }
}

impl JobThroughputParams {
    /// The last hour.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last `window`.
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }
}

/// List the due jobs no live server can take, grouped by queue and name:
/// jobs `enqueued`, or `scheduled` whose time has come, that are in a queue
/// no live server serves, or whose name no live server serving their queue
/// registers. Live servers are those whose latest heartbeat is at most
/// `live_within` old, on the store's clock. At most `limit` groups, the
/// longest waiting first (oldest due time, then queue, then name).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobStrandedParams {
    /// Servers silent for longer than this are not live (default 100 s:
    /// ten heartbeats of a server with the default heartbeat interval, the
    /// age past which servers remove a silent server's record).
    pub live_within: Duration,
    /// At most this many groups (default 100).
    pub limit: u32,
}

impl Default for JobStrandedParams {
    fn default() -> Self {
        Self {
            live_within: Duration::from_secs(100),
            limit: 100,
        }
    }
}

impl JobStrandedParams {
    /// The first 100 groups, with servers live for 100 s after a heartbeat.
    pub fn new() -> Self {
        Self::default()
    }

    /// Servers silent for longer than this are not live.
    pub fn live_within(mut self, age: Duration) -> Self {
        self.live_within = age;
        self
    }

    /// At most this many groups.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }
}

/// Run a finished job again (`failed`, `cancelled` or `deleted`): it becomes
/// `enqueued` with its attempts reset. Its history is kept.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobRetryParams {
    /// The job.
    pub id: JobId,
}

impl JobRetryParams {
    /// Retry this job.
    pub fn new(id: JobId) -> Self {
        Self { id }
    }
}

/// Run a `scheduled` job now (a delayed job, or a retry waiting for its
/// backoff): it becomes `enqueued`, runnable at once, its attempts kept. An
/// `enqueued` job is left as it is.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobRunNowParams {
    /// The job.
    pub id: JobId,
}

impl JobRunNowParams {
    /// Run this job now.
    pub fn new(id: JobId) -> Self {
        Self { id }
    }
}

/// Cancel a job that has not finished. A waiting job is `cancelled` at once;
/// a running one is asked to stop (its server sees the request when it
/// renews the lease).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobCancelParams {
    /// The job.
    pub id: JobId,
    /// Why, kept in its history (default "cancelled by a user").
    pub reason: String,
}

impl JobCancelParams {
    /// Cancel this job.
    pub fn new(id: JobId) -> Self {
        Self {
            id,
            reason: "cancelled by a user".to_owned(),
        }
    }

    /// Why, kept in its history.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }
}

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CancelOutcome {
    /// The job was waiting and is now `cancelled`.
    Cancelled,
    /// The job is running; its server was asked to stop it.
    Requested,
}

/// Delete a job that is not running: it becomes `deleted` (kept until
/// retention removes it).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobDeleteParams {
    /// The job.
    pub id: JobId,
}

impl JobDeleteParams {
    /// Delete this job.
    pub fn new(id: JobId) -> Self {
        Self { id }
    }
}

/// What [`JobActMatchingParams`] does to each job it picks: the action of
/// `job_retry`, `job_cancel`, `job_delete` or `job_run_now`, on the states
/// that operation accepts (see [`JobAction::accepts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobAction {
    /// Run `failed`, `cancelled` and `deleted` jobs again, as `job_retry`
    /// does: `enqueued`, attempts reset, history kept.
    Retry,
    /// Cancel unfinished jobs, as `job_cancel` does: a waiting one is
    /// `cancelled` at once, a running one's server is asked to stop it.
    Cancel {
        /// Why, kept in each cancelled job's history.
        reason: String,
    },
    /// Delete jobs that are not running, as `job_delete` does: `deleted`,
    /// kept until retention removes them. Jobs already `deleted` are left
    /// as they are.
    Delete,
    /// Run `scheduled` jobs now, as `job_run_now` does: `enqueued`,
    /// runnable at once, attempts kept. Jobs already `enqueued` are left as
    /// they are.
    RunNow,
}

impl JobAction {
    /// Cancel, with the reason `job_cancel` records by default ("cancelled by a user").
    pub fn cancel() -> Self {
        JobAction::Cancel {
            reason: "cancelled by a user".to_owned(),
        }
    }

    /// The states of the jobs this action changes: those the single-job
    /// operation accepts, less those it leaves as they are (`job_delete` of
    /// a `deleted` job). Jobs in other states are never picked.
    pub fn accepted_states(&self) -> &'static [JobState] {
        match self {
            JobAction::Retry => &[JobState::Failed, JobState::Cancelled, JobState::Deleted],
            JobAction::Cancel { .. } => &[
                JobState::Awaiting,
                JobState::Scheduled,
                JobState::Enqueued,
                JobState::Processing,
            ],
            JobAction::Delete => &[
                JobState::Awaiting,
                JobState::Scheduled,
                JobState::Enqueued,
                JobState::Succeeded,
                JobState::Failed,
                JobState::Cancelled,
            ],
            JobAction::RunNow => &[JobState::Scheduled],
        }
    }

    /// Whether this action changes a job in `state`.
    pub fn accepts(&self, state: JobState) -> bool {
        self.accepted_states().contains(&state)
    }

    /// The verb, for messages: `retry`, `cancel`, `delete` or `run now`.
    pub fn as_str(&self) -> &'static str {
        match self {
            JobAction::Retry => "retry",
            JobAction::Cancel { .. } => "cancel",
            JobAction::Delete => "delete",
            JobAction::RunNow => "run now",
        }
    }
}

/// Retry, cancel, delete or run now every job a [`JobFilter`] picks, up to a cap, in
/// one call (one statement on PostgreSQL): "retry every failed `send_invoice`
/// of the `mail` queue". Each job is treated as the single-job operation
/// treats it, and jobs in states the action does not accept are passed
/// over (see [`JobAction::accepted_states`]). A filter whose state the action
/// never accepts (retrying `enqueued` jobs, say) is refused as `Invalid`,
/// rather than quietly matching nothing.
///
/// The newest `limit` jobs the action accepts are taken, in the order
/// `job_list` shows them, so a caller can show what a call would take with
/// `job_list` and [`JobListParams::matching`], or ask the store itself with
/// [`dry_run`](JobActMatchingParams::dry_run). A job that changed state
/// between the pick and the action (a server finished it) is re-checked
/// and passed over if the action no longer accepts it. Call again while
/// [`JobActOutcome::more`] says more jobs match.
///
/// ```
/// # use jobs_core::{JobAction, JobActMatchingParams, JobFilter, JobState};
/// let retry_failed_invoices = JobActMatchingParams::new(
///     JobAction::Retry,
///     JobFilter::new().state(JobState::Failed).queue("mail").name("send_invoice"),
/// )
/// .limit(500);
/// # let _ = retry_failed_invoices;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobActMatchingParams {
    /// What to do to each job.
    pub action: JobAction,
    /// Which jobs.
    pub filter: JobFilter,
    /// At most this many jobs (default [`MAINTENANCE_BATCH`]).
    pub limit: u32,
    /// Only say which jobs the call would change, changing nothing (default `false`).
    pub dry_run: bool,
}

impl JobActMatchingParams {
    /// Do `action` to the jobs `filter` picks, at most [`MAINTENANCE_BATCH`] of them.
    pub fn new(action: JobAction, filter: JobFilter) -> Self {
        Self {
            action,
            filter,
            limit: MAINTENANCE_BATCH,
            dry_run: false,
        }
    }

    /// At most this many jobs.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// Whether to only say which jobs the call would change.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Refuses (`Invalid`) a filter whose state the action never accepts,
    /// naming the states it does; every store calls it first, so all of
    /// them refuse the same calls with the same words.
    pub fn check(&self) -> StoreResult<()> {
        let Some(state) = self.filter.state else {
            return Ok(());
        };
        if self.action.accepts(state) {
            return Ok(());
        }
        let accepted: Vec<&str> = self
            .action
            .accepted_states()
            .iter()
            .map(|s| s.as_str())
            .collect();
        Err(StoreError::new(
            StoreErrorKind::Invalid,
            format!(
                "cannot {} {state} jobs; only {} jobs can be",
                self.action.as_str(),
                accepted.join(", "),
            ),
        ))
    }
}

/// What a [`JobActMatchingParams`] call did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct JobActOutcome {
    /// The jobs changed, newest first: retried or run now (now
    /// `enqueued`), cancelled (now `cancelled`) or deleted (now `deleted`).
    pub changed: Vec<JobId>,
    /// For a cancel, the running jobs whose servers were asked to stop
    /// them (they stay `processing` until they do), newest first; empty
    /// for the other actions.
    pub requested: Vec<JobId>,
    /// For a retry, the unique jobs left as they are because another job
    /// holds their key (see [`StoreError::unique_key_held`](crate::StoreError::unique_key_held)),
    /// newest first; empty for the other actions.
    pub held: Vec<JobId>,
    /// Whether more jobs the action accepts matched than `limit` let it
    /// take: those were left as they are.
    pub more: bool,
}

impl JobActOutcome {
    /// An outcome; stores use this to build what they return.
    pub fn new(changed: Vec<JobId>, requested: Vec<JobId>, more: bool) -> Self {
        Self {
            changed,
            requested,
            held: Vec::new(),
            more,
        }
    }

    /// The same outcome, with these retries left undone for their held
    /// unique keys.
    pub fn with_held(mut self, held: Vec<JobId>) -> Self {
        self.held = held;
        self
    }

    /// How many jobs were acted on: changed plus asked to stop.
    pub fn count(&self) -> usize {
        self.changed.len() + self.requested.len()
    }
}

/// How long finished jobs are kept before they are pruned, by how they
/// ended. The server's pruner removes them in bounded batches.
///
/// ```
/// # use jobs_core as jobs;
/// use std::time::Duration;
/// use jobs::{MemoryStore, Retention, Server};
///
/// const DAY: Duration = Duration::from_secs(24 * 3600);
/// let keep_failures_longer = Retention::default().failed(30 * DAY);
/// assert_eq!(keep_failures_longer.succeeded, DAY);
///
/// let server = Server::builder(MemoryStore::new()).retention(keep_failures_longer);
/// # let _ = server;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// `succeeded` jobs (default 24 h).
    pub succeeded: Duration,
    /// `deleted` and `cancelled` jobs (default 24 h).
    pub deleted: Duration,
    /// `failed` jobs (default 7 days).
    pub failed: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        const DAY: Duration = Duration::from_secs(24 * 3600);
        Self {
            succeeded: DAY,
            deleted: DAY,
            failed: DAY * 7,
        }
    }
}

impl Retention {
    /// The longest of the three ages: how long a batch, or anything kept as
    /// long as any of its jobs could be, is kept.
    pub fn longest(&self) -> Duration {
        self.succeeded.max(self.deleted).max(self.failed)
    }

    /// Keeps `succeeded` jobs this long.
    pub fn succeeded(mut self, age: Duration) -> Self {
        self.succeeded = age;
        self
    }

    /// Keeps `deleted` and `cancelled` jobs this long.
    pub fn deleted(mut self, age: Duration) -> Self {
        self.deleted = age;
        self
    }

    /// Keeps `failed` jobs this long.
    pub fn failed(mut self, age: Duration) -> Self {
        self.failed = age;
        self
    }
}

/// Release the `awaiting` continuations whose parent has ended (or no
/// longer exists), as the parent's end would have: what a store's own
/// release missed (a process that died between a parent's completion and
/// the release of its continuations). Servers call it with their rescue.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct JobReleaseAwaitingParams {}

impl JobReleaseAwaitingParams {
    /// A sweep of every parent.
    pub fn new() -> Self {
        Self {}
    }
}

/// Remove finished jobs older than their [`Retention`], and their history,
/// at most `limit` per call.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobPruneParams {
    /// How long each kind of finished job is kept.
    pub retention: Retention,
    /// At most this many jobs per call (default [`MAINTENANCE_BATCH`]).
    pub limit: u32,
}

impl JobPruneParams {
    /// Prune what is past this retention.
    pub fn new(retention: Retention) -> Self {
        Self {
            retention,
            limit: MAINTENANCE_BATCH,
        }
    }

    /// At most this many jobs per call.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::args_contain;

    /// Each case as PostgreSQL answers `args @> wanted` (checked with psql).
    #[test]
    fn args_contain_as_jsonb_containment() {
        for (args, wanted, contained) in [
            (json!({ "tags": ["vip"] }), json!({ "tags": "vip" }), false),
            (json!({ "amount": 10.0 }), json!({ "amount": 10 }), true),
            (json!(["a", "b"]), json!("a"), true),
            (json!([["a"]]), json!("a"), false),
            (json!({ "t": [["n"]] }), json!({ "t": [["n"]] }), true),
            (json!({ "t": [1, [2]] }), json!({ "t": [2] }), false),
            (json!({ "a": 1 }), json!({}), true),
            (
                json!({ "a": [{ "x": 1, "y": 2 }] }),
                json!({ "a": [{ "x": 1 }] }),
                true,
            ),
            (json!({ "a": null }), json!({ "a": null }), true),
            (json!({ "a": 1 }), json!({ "b": null }), false),
            (json!([1, 2]), json!([2, 2, 1]), true),
            (json!({ "a": "1" }), json!({ "a": 1 }), false),
            (json!({ "a": { "b": 1 } }), json!({ "a": [] }), false),
            (json!({ "a": -3 }), json!({ "a": -3.0 }), true),
            (json!({ "a": u64::MAX }), json!({ "a": u64::MAX }), true),
        ] {
            assert_eq!(
                args_contain(&args, &wanted),
                contained,
                "{args} @> {wanted}"
            );
        }
    }
}
