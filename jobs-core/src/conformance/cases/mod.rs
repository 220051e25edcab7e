//! The conformance cases, one function per behaviour, in one module per
//! area of the [`Store`] API (as River's driver tests group by operation).
//! Each takes a fresh, empty store and panics with a message naming what the
//! store got wrong. Here: the constants and helpers the cases share.
//!
//! Run them through [`conformance_tests!`](crate::conformance_tests) or
//! [`run_all`](super::run_all); calling one directly is fine too. A new case
//! is a function in its area's module and one line in the list of cases
//! (`__jobs_conformance_cases!` in `conformance/mod.rs`).

pub mod batches;
pub mod claim;
pub mod complete;
pub mod continuations;
pub mod fencing;
pub mod insert;
pub mod leases;
pub mod limits;
pub mod manage;
pub mod matching;
pub mod progress;
pub mod prune;
pub mod queues;
pub mod reads;
pub mod recurring;
pub mod recurring_fire;
pub mod servers;
pub mod signals;
pub mod stranded;
pub mod unique;

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::DateTime;
use serde_json::json;

use crate::cron::Cron;
use crate::model::{
    Claim, Inserted, JobDetail, JobId, JobRow, JobState, NewJob, QueueStateCount, RecurringOrigin,
    RunAt, ServerId, ServerInfo, Timestamp,
};
use crate::recurring::{RecurringDef, RecurringOptions, RecurringRow};
use crate::store::{
    CronDue, CronDueParams, CronFireOutcome, CronFireParams, CronListParams, CronTriggerParams,
    CronUpsertParams, JobClaimParams, JobCompleteManyParams, JobCompletion, JobCountParams,
    JobGetParams, JobInsertManyParams, JobListParams, JobOutcome, LeaseRenewManyParams,
    LeaseRescueParams, LeaseStatus, Store, StoreErrorKind, StoreResult,
};

/// The job name most cases use.
const JOB: &str = "conformance_job";
/// The queue most cases use.
const QUEUE: &str = crate::DEFAULT_QUEUE;
/// A lease long enough never to expire during a case.
const LONG_LEASE: Duration = Duration::from_secs(3600);
/// A lease short enough to expire quickly in cases about expiry.
const SHORT_LEASE: Duration = Duration::from_millis(300);
/// How long "eventually" may take.
const DEADLINE: Duration = Duration::from_secs(15);
/// How often "eventually" looks.
const POLL: Duration = Duration::from_millis(25);
/// Tolerance when comparing a duration the store computed with the one asked for.
const SLACK: Duration = Duration::from_secs(2);
/// An hour: a delay that never elapses during a case.
const HOUR: Duration = Duration::from_secs(3600);

// ----------------------------------------------------------------- helpers

fn new_job() -> NewJob {
    NewJob::new(JOB, json!({}))
}

fn job_with(f: impl FnOnce(&mut NewJob)) -> NewJob {
    let mut job = new_job();
    f(&mut job);
    job
}

async fn insert<S: Store>(store: &S, jobs: Vec<NewJob>) -> Vec<JobId> {
    let inserted = insert_detailed(store, jobs).await;
    assert!(
        inserted.iter().all(|i| !i.duplicate),
        "no job of these cases is unique: {inserted:?}"
    );
    inserted.into_iter().map(|i| i.id).collect()
}

async fn insert_detailed<S: Store>(store: &S, jobs: Vec<NewJob>) -> Vec<Inserted> {
    let n = jobs.len();
    let inserted = store
        .job_insert_many(JobInsertManyParams::new(jobs))
        .await
        .expect("job_insert_many failed");
    assert_eq!(
        inserted.len(),
        n,
        "job_insert_many must return one result per job"
    );
    inserted
}

async fn insert_one<S: Store>(store: &S, job: NewJob) -> JobId {
    insert(store, vec![job]).await[0]
}

fn claim_params(server: ServerId, queues: &[&str], names: &[&str], limit: u32) -> JobClaimParams {
    JobClaimParams::new(server)
        .queues(queues.iter().copied())
        .names(names.iter().copied())
        .limit(limit)
        .lease(LONG_LEASE)
}

async fn claim_with<S: Store>(store: &S, p: JobClaimParams) -> Vec<JobRow> {
    store.job_claim(p).await.expect("job_claim failed")
}

/// Claims up to `limit` jobs of the default queue and name, with a long lease.
async fn claim<S: Store>(store: &S, server: ServerId, limit: u32) -> Vec<JobRow> {
    claim_with(store, claim_params(server, &[QUEUE], &[JOB], limit)).await
}

async fn claim_lease<S: Store>(
    store: &S,
    server: ServerId,
    limit: u32,
    lease: Duration,
) -> Vec<JobRow> {
    let mut p = claim_params(server, &[QUEUE], &[JOB], limit);
    p.lease = lease;
    claim_with(store, p).await
}

/// Claims one job and checks it is `id`.
async fn claim_only<S: Store>(store: &S, server: ServerId, id: JobId) -> JobRow {
    let rows = claim(store, server, 1).await;
    let ids: Vec<JobId> = rows.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![id], "expected to claim job {id}");
    rows.into_iter().next().unwrap()
}

async fn assert_nothing_claimable<S: Store>(store: &S, why: &str) {
    let rows = claim(store, ServerId::new(), 100).await;
    let ids: Vec<JobId> = rows.iter().map(|r| r.id).collect();
    assert!(ids.is_empty(), "{why}, yet a claim returned {ids:?}");
}

async fn complete_many<S: Store>(
    store: &S,
    server: ServerId,
    completions: Vec<JobCompletion>,
) -> Vec<bool> {
    let n = completions.len();
    let applied = store
        .job_complete_many(JobCompleteManyParams::new(server, completions))
        .await
        .expect("job_complete_many failed");
    assert_eq!(
        applied.len(),
        n,
        "job_complete_many must answer each completion"
    );
    applied
}

async fn complete<S: Store>(
    store: &S,
    server: ServerId,
    claim: Claim,
    outcome: JobOutcome,
) -> bool {
    complete_many(store, server, vec![JobCompletion::new(claim, outcome)]).await[0]
}

async fn renew<S: Store>(
    store: &S,
    server: ServerId,
    claims: Vec<Claim>,
    lease: Duration,
) -> Vec<LeaseStatus> {
    let n = claims.len();
    let statuses = store
        .lease_renew_many(LeaseRenewManyParams::new(server, claims, lease))
        .await
        .expect("lease_renew_many failed");
    assert_eq!(statuses.len(), n, "lease_renew_many must answer each claim");
    statuses
}

async fn rescue<S: Store>(store: &S, limit: u32) -> Vec<JobId> {
    store
        .lease_rescue(LeaseRescueParams::new().limit(limit))
        .await
        .expect("lease_rescue failed")
}

async fn try_get<S: Store>(store: &S, id: JobId) -> Option<JobDetail> {
    store
        .job_get(JobGetParams::new(id))
        .await
        .expect("job_get failed")
}

async fn get<S: Store>(store: &S, id: JobId) -> JobDetail {
    try_get(store, id)
        .await
        .unwrap_or_else(|| panic!("job {id} should exist"))
}

async fn row<S: Store>(store: &S, id: JobId) -> JobRow {
    get(store, id).await.job
}

async fn list<S: Store>(
    store: &S,
    state: Option<JobState>,
    queue: Option<&str>,
    before: Option<JobId>,
    limit: u32,
) -> Vec<JobId> {
    store
        .job_list(JobListParams {
            state,
            queue: queue.map(str::to_owned),
            name: None,
            args: None,
            before,
            limit,
            scan: None,
        })
        .await
        .expect("job_list failed")
        .jobs
        .into_iter()
        .map(|row| row.id)
        .collect()
}

async fn counts<S: Store>(store: &S) -> Vec<(String, JobState, i64)> {
    let mut counts: Vec<(String, JobState, i64)> = store
        .job_count(JobCountParams::new())
        .await
        .expect("job_count failed")
        .into_iter()
        .map(
            |QueueStateCount {
                 queue,
                 state,
                 count,
             }| (queue, state, count),
        )
        .collect();
    counts.sort_by(|a, b| (&a.0, a.1.as_str()).cmp(&(&b.0, b.1.as_str())));
    counts
}

fn sorted_counts(mut expected: Vec<(&str, JobState, i64)>) -> Vec<(String, JobState, i64)> {
    expected.sort_by(|a, b| (a.0, a.1.as_str()).cmp(&(b.0, b.1.as_str())));
    expected
        .into_iter()
        .map(|(q, s, n)| (q.to_owned(), s, n))
        .collect()
}

fn assert_kind<T: std::fmt::Debug>(result: StoreResult<T>, kind: StoreErrorKind, what: &str) {
    match result {
        Err(error) => assert_eq!(error.kind(), kind, "{what}: wrong error kind ({error})"),
        Ok(value) => panic!("{what}: expected a {kind:?} error, got Ok({value:?})"),
    }
}

fn states(detail: &JobDetail) -> Vec<JobState> {
    detail.history.iter().map(|e| e.state).collect()
}

/// Polls `f` until it gives `Some`, failing after the deadline.
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = f().await {
            return value;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{what} did not happen within {DEADLINE:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Asserts `actual` is `expected` give or take [`SLACK`].
fn assert_about(actual: chrono::Duration, expected: Duration, what: &str) {
    let expected = chrono::Duration::from_std(expected).unwrap();
    let slack = chrono::Duration::from_std(SLACK).unwrap();
    assert!(
        actual >= expected - slack && actual <= expected + slack,
        "{what}: expected about {expected}, got {actual}"
    );
}

/// A whole second, so it survives any store's timestamp precision.
fn whole_second(t: Timestamp) -> Timestamp {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap()
}

fn server_info(id: ServerId, started_at: Timestamp, concurrency: u32) -> ServerInfo {
    ServerInfo::new(id, started_at)
        .host("conformance-host".to_owned())
        .pid(4242)
        .queues(vec![QUEUE.to_owned(), "mail".to_owned()])
        .concurrency(concurrency)
        .job_names(vec![JOB.to_owned(), "other_job".to_owned()])
}

// ------------------------------------------------------- recurring helpers

/// The recurring id most cases use.
const CRON_ID: &str = "conformance-recurring";
/// An hourly schedule: no tick of it passes during a case by accident.
const HOURLY: &str = "0 * * * *";

/// A definition of `id` running [`JOB`] on `schedule`, in UTC, with the
/// default policies and arguments naming the id.
fn cron_def(id: &str, schedule: &str) -> RecurringDef {
    let cron = Cron::parse(schedule).expect("a valid schedule");
    let job = job_with(|job| {
        job.args = json!({ "recurring": id, "n": 1 });
        job.priority = 2;
        job.max_attempts = 4;
    });
    RecurringDef::new(id.to_owned(), &cron, job, RecurringOptions::new())
}

/// What a scheduler pass would insert for `tick` of `def` (as `plan` does).
fn cron_run(def: &RecurringDef, tick: Timestamp) -> NewJob {
    let mut job = def.job.clone();
    job.run_at = RunAt::Now;
    job.recurring = Some(RecurringOrigin {
        id: def.id.clone(),
        scheduled_for: tick,
    });
    job
}

async fn cron_upsert<S: Store>(store: &S, def: RecurringDef) {
    store
        .cron_upsert(CronUpsertParams::new(def))
        .await
        .expect("cron_upsert failed");
}

async fn cron_list<S: Store>(store: &S) -> Vec<RecurringRow> {
    store
        .cron_list(CronListParams::new())
        .await
        .expect("cron_list failed")
}

/// The listed entry `id`.
async fn cron_entry<S: Store>(store: &S, id: &str) -> RecurringRow {
    cron_list(store)
        .await
        .into_iter()
        .find(|row| row.def.id == id)
        .unwrap_or_else(|| panic!("recurring job `{id}` should be listed"))
}

async fn cron_due<S: Store>(store: &S, limit: u32) -> CronDue {
    store
        .cron_due(CronDueParams::new().limit(limit))
        .await
        .expect("cron_due failed")
}

/// The ids of the due entries, sorted.
async fn cron_due_ids<S: Store>(store: &S) -> Vec<String> {
    let mut ids: Vec<String> = cron_due(store, 1000)
        .await
        .due
        .into_iter()
        .map(|row| row.def.id)
        .collect();
    ids.sort();
    ids
}

/// The store's clock, to a whole second (read through `cron_due`).
async fn cron_now<S: Store>(store: &S) -> Timestamp {
    whole_second(cron_due(store, 1).await.now)
}

async fn cron_fire<S: Store>(
    store: &S,
    id: &str,
    expected: Option<Timestamp>,
    next: Timestamp,
    jobs: Vec<NewJob>,
    skip_if_running: bool,
) -> CronFireOutcome {
    store
        .cron_fire(
            CronFireParams::new(id.to_owned(), expected, next)
                .jobs(jobs)
                .skip_if_running(skip_if_running),
        )
        .await
        .expect("cron_fire failed")
}

/// Moves `id`'s `next_run_at` from `expected` to `next` without runs, as a
/// scheduler pass does for a new entry.
async fn cron_set_next<S: Store>(
    store: &S,
    id: &str,
    expected: Option<Timestamp>,
    next: Timestamp,
) {
    let outcome = cron_fire(store, id, expected, next, Vec::new(), false).await;
    assert_eq!(
        outcome,
        CronFireOutcome::Fired(Vec::new()),
        "a fire without runs and with the right expected value moves next_run_at"
    );
}

async fn cron_trigger<S: Store>(store: &S, id: &str) -> JobId {
    store
        .cron_trigger(CronTriggerParams::new(id.to_owned()))
        .await
        .expect("cron_trigger failed")
}

/// The ids of every job in the store, oldest first.
async fn all_jobs<S: Store>(store: &S) -> Vec<JobId> {
    let mut ids = list(store, None, None, None, 10_000).await;
    ids.reverse();
    ids
}

/// Checks the definition read back is the one stored.
fn assert_same_def(actual: &RecurringDef, expected: &RecurringDef) {
    let id = &expected.id;
    assert_eq!(actual.id, expected.id);
    assert_eq!(actual.schedule, expected.schedule, "schedule of `{id}`");
    assert_eq!(actual.time_zone, expected.time_zone, "time zone of `{id}`");
    assert_eq!(actual.misfire, expected.misfire, "misfire of `{id}`");
    assert_eq!(actual.overlap, expected.overlap, "overlap of `{id}`");
    assert_eq!(actual.job.name, expected.job.name, "job name of `{id}`");
    assert_eq!(actual.job.args, expected.job.args, "job args of `{id}`");
    assert_eq!(actual.job.queue, expected.job.queue, "job queue of `{id}`");
    assert_eq!(
        actual.job.priority, expected.job.priority,
        "job priority of `{id}`"
    );
    assert_eq!(
        actual.job.max_attempts, expected.job.max_attempts,
        "job attempts of `{id}`"
    );
    assert_eq!(
        actual.job.timeout, expected.job.timeout,
        "job timeout of `{id}`"
    );
    assert_eq!(
        actual.job.backoff, expected.job.backoff,
        "job backoff of `{id}`"
    );
}
