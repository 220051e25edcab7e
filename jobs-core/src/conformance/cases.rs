//! The conformance cases, one function per behaviour. Each takes a fresh,
//! empty store and panics with a message naming what the store got wrong.
//!
//! Run them through [`conformance_tests!`](crate::conformance_tests) or
//! [`run_all`](super::run_all); calling one directly is fine too.

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::cron::Cron;
use crate::model::{
    Claim, JobDetail, JobId, JobRow, JobState, NewJob, QueueStateCount, RecurringOrigin, RunAt,
    ServerId, ServerInfo, Timestamp,
};
use crate::recurring::{Misfire, Overlap, RecurringDef, RecurringOptions, RecurringRow};
use crate::store::{
    CancelOutcome, CronDue, CronDueParams, CronFireOutcome, CronFireParams, CronListParams,
    CronPauseParams, CronRemoveParams, CronTriggerParams, CronUpsertParams, JobCancelParams,
    JobClaimParams, JobCompleteManyParams, JobCompletion, JobCountParams, JobDeleteParams,
    JobGetParams, JobInsertManyParams, JobListParams, JobOutcome, JobProgressManyParams,
    JobPruneParams, JobRetryParams, LeaseRenewManyParams, LeaseRescueParams, LeaseStatus,
    ServerHeartbeatParams, ServerListParams, ServerRemoveParams, Store, StoreErrorKind,
    StoreResult,
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
    let n = jobs.len();
    let ids = store
        .job_insert_many(JobInsertManyParams::new(jobs))
        .await
        .expect("job_insert_many failed");
    assert_eq!(ids.len(), n, "job_insert_many must return one id per job");
    ids
}

async fn insert_one<S: Store>(store: &S, job: NewJob) -> JobId {
    insert(store, vec![job]).await[0]
}

fn claim_params(server: ServerId, queues: &[&str], names: &[&str], limit: u32) -> JobClaimParams {
    JobClaimParams::new(
        server,
        queues.iter().map(|q| (*q).to_owned()).collect(),
        names.iter().map(|n| (*n).to_owned()).collect(),
        limit,
        LONG_LEASE,
    )
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
        .lease_rescue(LeaseRescueParams::new(limit))
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
        .job_list(JobListParams::new(
            state,
            queue.map(str::to_owned),
            before,
            limit,
        ))
        .await
        .expect("job_list failed")
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
    ServerInfo::new(
        id,
        "conformance-host".to_owned(),
        4242,
        vec![QUEUE.to_owned(), "mail".to_owned()],
        concurrency,
        vec![JOB.to_owned(), "other_job".to_owned()],
        started_at,
    )
}

// ------------------------------------------------------------------ insert

/// `job_insert_many` returns one id per job, in order and increasing, later
/// inserts get larger ids, and every field is stored as given: a waiting
/// job with attempt 0, claim token 0 and one `enqueued` event.
pub async fn insert_many_returns_ids_in_order<S: Store>(store: S) {
    let origin = RecurringOrigin {
        id: "nightly-report".to_owned(),
        scheduled_for: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
    };
    let jobs: Vec<NewJob> = (0..3)
        .map(|i| {
            job_with(|job| {
                job.args =
                    json!({ "n": i, "nested": { "list": [1, 2, 3], "text": "héllo \"quoted\"" } });
                job.queue = format!("queue-{i}");
                job.priority = i as i16 - 1;
                job.max_attempts = 3 + i;
                if i == 0 {
                    job.recurring = Some(origin.clone());
                }
            })
        })
        .collect();
    let ids = insert(&store, jobs.clone()).await;
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids must increase in insertion order: {ids:?}"
    );
    for (id, new) in ids.iter().zip(&jobs) {
        let detail = get(&store, *id).await;
        let job = &detail.job;
        assert_eq!(job.id, *id);
        assert_eq!(job.name, new.name);
        assert_eq!(job.args, new.args, "args must round-trip");
        assert_eq!(job.queue, new.queue);
        assert_eq!(job.priority, new.priority);
        assert_eq!(job.max_attempts, new.max_attempts);
        assert_eq!(
            job.recurring, new.recurring,
            "recurring origin must round-trip"
        );
        assert_eq!(job.state, JobState::Enqueued);
        assert_eq!(job.attempt, 0);
        assert_eq!(job.claim_token, 0);
        assert_eq!(job.finished_at, None);
        assert_eq!(job.server_id, None);
        assert_eq!(job.lease_expires_at, None);
        assert!(!job.cancel_requested);
        assert_eq!(job.last_error, None);
        assert_eq!(states(&detail), vec![JobState::Enqueued]);
        let event = &detail.history[0];
        assert_eq!(
            (event.attempt, event.server_id, &event.error),
            (0, None, &None)
        );
    }
    let more = insert(&store, vec![new_job(), new_job()]).await;
    assert!(
        more[0] > ids[2] && more[1] > more[0],
        "later inserts get larger ids: {ids:?} then {more:?}"
    );
    assert!(
        insert(&store, Vec::new()).await.is_empty(),
        "inserting nothing returns no ids"
    );
}

/// A batch is inserted whole or not at all. The batch holds a job with a
/// very large argument in the middle: a store may refuse it (then none of
/// the batch exists) or accept it (then all of it does), never a part.
pub async fn insert_is_all_or_none<S: Store>(store: S) {
    let huge = job_with(|job| job.args = json!({ "blob": "x".repeat(4 * 1024 * 1024) }));
    let batch = vec![new_job(), huge, new_job()];
    match store.job_insert_many(JobInsertManyParams::new(batch)).await {
        Ok(ids) => {
            assert_eq!(ids.len(), 3);
            assert_eq!(list(&store, None, None, None, 100).await.len(), 3);
        }
        Err(_) => {
            assert_eq!(
                list(&store, None, None, None, 100).await,
                Vec::<JobId>::new(),
                "a refused batch must leave no job behind"
            );
            assert!(counts(&store).await.is_empty());
        }
    }
}

/// `RunAt::Now` and a time in the past make an `enqueued` job; a delay or a
/// future time make a `scheduled` one, whose run time is the delay after
/// its creation on the store's clock.
pub async fn insert_schedules_by_run_at<S: Store>(store: S) {
    let now = Utc::now();
    let ids = insert(
        &store,
        vec![
            job_with(|job| job.run_at = RunAt::Now),
            job_with(|job| job.run_at = RunAt::After(HOUR)),
            job_with(|job| job.run_at = RunAt::At(now - chrono::Duration::hours(1))),
            job_with(|job| job.run_at = RunAt::At(now + chrono::Duration::hours(1))),
        ],
    )
    .await;
    let rows = [
        row(&store, ids[0]).await,
        row(&store, ids[1]).await,
        row(&store, ids[2]).await,
        row(&store, ids[3]).await,
    ];
    assert_eq!(rows[0].state, JobState::Enqueued, "RunAt::Now");
    assert_about(
        rows[0].run_at - rows[0].created_at,
        Duration::ZERO,
        "RunAt::Now runs at creation",
    );
    assert_eq!(rows[1].state, JobState::Scheduled, "RunAt::After(1 h)");
    assert_about(
        rows[1].run_at - rows[1].created_at,
        HOUR,
        "RunAt::After(1 h) runs an hour after creation",
    );
    assert_eq!(rows[2].state, JobState::Enqueued, "RunAt::At(an hour ago)");
    assert_eq!(rows[3].state, JobState::Scheduled, "RunAt::At(in an hour)");
    assert_eq!(
        states(&get(&store, ids[1]).await),
        vec![JobState::Scheduled],
        "a delayed job's history starts with `scheduled`"
    );
    let claimed: BTreeSet<JobId> = claim(&store, ServerId::new(), 10)
        .await
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        claimed,
        BTreeSet::from([ids[0], ids[2]]),
        "only the jobs due now are claimable"
    );
}

/// A job delayed by a second is `scheduled`, is not claimed before a second
/// has passed, and is claimed (straight from `scheduled`) once it has.
pub async fn delayed_job_is_not_claimable_before_its_time_and_is_after<S: Store>(store: S) {
    let delay = Duration::from_secs(1);
    let started = Instant::now();
    let id = insert_one(&store, job_with(|job| job.run_at = RunAt::After(delay))).await;
    assert_eq!(row(&store, id).await.state, JobState::Scheduled);
    let server = ServerId::new();
    let claimed = eventually("claiming the delayed job", || async {
        claim(&store, server, 10).await.into_iter().next()
    })
    .await;
    let elapsed = started.elapsed();
    assert_eq!(claimed.id, id);
    assert!(
        elapsed >= delay,
        "a job delayed by {delay:?} was claimed after {elapsed:?}"
    );
    assert_eq!(claimed.attempt, 1);
}

// ------------------------------------------------------------------- claim

/// A claimed job is `processing`, with attempt 1, a new claim token, the
/// claiming server and a lease of the asked length; `job_get` agrees and the
/// history records the claim with its server.
pub async fn claim_marks_job_processing_with_a_lease<S: Store>(store: S) {
    let id = insert_one(&store, job_with(|job| job.args = json!({ "user_id": 9 }))).await;
    let before = row(&store, id).await;
    let server = ServerId::new();
    let lease = Duration::from_secs(60);
    let rows = claim_lease(&store, server, 10, lease).await;
    assert_eq!(rows.len(), 1);
    let claimed = &rows[0];
    assert_eq!(claimed.id, id);
    assert_eq!(claimed.name, JOB);
    assert_eq!(claimed.args, json!({ "user_id": 9 }));
    assert_eq!(claimed.state, JobState::Processing);
    assert_eq!(claimed.attempt, 1);
    assert!(
        claimed.claim_token > before.claim_token,
        "a claim must give a new, larger token"
    );
    assert_eq!(claimed.server_id, Some(server));
    assert!(!claimed.cancel_requested);

    let detail = get(&store, id).await;
    assert_eq!(detail.job.state, JobState::Processing);
    assert_eq!(detail.job.claim_token, claimed.claim_token);
    assert_eq!(detail.job.server_id, Some(server));
    assert_eq!(
        states(&detail),
        vec![JobState::Enqueued, JobState::Processing]
    );
    let event = &detail.history[1];
    assert_eq!(event.server_id, Some(server));
    assert_eq!(event.attempt, 1);
    let expires = claimed.lease_expires_at.expect("a claimed job has a lease");
    assert_about(expires - event.at, lease, "the lease runs from the claim");
    assert_nothing_claimable(&store, "the only job is processing").await;
}

/// Claims take earlier queues in the given list first, whatever the
/// priorities; within a queue higher priority first, then earlier run time,
/// then lower id. Jobs in queues not listed are never taken.
pub async fn claim_respects_queue_order_then_priority_then_run_at<S: Store>(store: S) {
    let base = whole_second(Utc::now());
    let at = |minutes_ago: i64| RunAt::At(base - chrono::Duration::minutes(minutes_ago));
    let make = |queue: &str, priority: i16, run_at: RunAt| {
        job_with(|job| {
            job.queue = queue.to_owned();
            job.priority = priority;
            job.run_at = run_at;
        })
    };
    let ids = insert(
        &store,
        vec![
            make("a", 0, at(10)),      // a1
            make("a", 5, at(1)),       // a2
            make("a", 5, at(2)),       // a3
            make("a", 5, at(2)),       // a4: same run time as a3, larger id
            make("b", 10, RunAt::Now), // b1
            make("b", 10, RunAt::Now), // b2
            make("c", 100, RunAt::Now),
        ],
    )
    .await;
    let (a1, a2, a3, a4, b1, b2) = (ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]);
    let server = ServerId::new();
    let one = |queues: &'static [&'static str]| {
        let store = &store;
        async move {
            claim_with(store, claim_params(server, queues, &[JOB], 1))
                .await
                .into_iter()
                .map(|r| r.id)
                .next()
        }
    };
    assert_eq!(one(&["b", "a"]).await, Some(b1), "queue b listed first");
    let mut order = Vec::new();
    while let Some(id) = one(&["a", "b"]).await {
        order.push(id);
        assert!(order.len() <= 6, "claimed more jobs than exist: {order:?}");
    }
    assert_eq!(
        order,
        vec![a3, a4, a2, a1, b2],
        "expected queue a by priority, run time and id, then queue b"
    );
}

/// A claim returns at most `limit` jobs, and distinct ones.
pub async fn claim_respects_limit<S: Store>(store: S) {
    let ids = insert(&store, (0..5).map(|_| new_job()).collect()).await;
    let server = ServerId::new();
    let first = claim(&store, server, 2).await;
    assert_eq!(first.len(), 2, "limit 2");
    assert!(
        claim(&store, server, 0).await.is_empty(),
        "limit 0 claims nothing"
    );
    let rest = claim(&store, server, 10).await;
    assert_eq!(rest.len(), 3, "the 3 jobs left");
    let all: BTreeSet<JobId> = first.iter().chain(&rest).map(|r| r.id).collect();
    assert_eq!(all, ids.into_iter().collect(), "each job claimed once");
    assert!(claim(&store, server, 10).await.is_empty());
}

/// A claim takes only jobs whose name the server knows and whose queue it
/// serves; the others stay untouched for servers that can run them.
pub async fn claim_skips_unknown_names_and_queues<S: Store>(store: S) {
    let known = insert_one(&store, new_job()).await;
    let unknown = insert_one(&store, job_with(|job| job.name = "unknown_job".to_owned())).await;
    let elsewhere = insert_one(&store, job_with(|job| job.queue = "elsewhere".to_owned())).await;
    let server = ServerId::new();
    claim_only(&store, server, known).await;
    for id in [unknown, elsewhere] {
        let row = row(&store, id).await;
        assert_eq!(row.state, JobState::Enqueued, "job {id} must be left alone");
        assert_eq!(row.attempt, 0, "job {id} must be left alone");
    }
    assert!(
        claim_with(&store, claim_params(server, &[QUEUE], &[], 10))
            .await
            .is_empty(),
        "a server that knows no names claims nothing"
    );
    let got = claim_with(&store, claim_params(server, &[QUEUE], &["unknown_job"], 10)).await;
    assert_eq!(got.iter().map(|r| r.id).collect::<Vec<_>>(), vec![unknown]);
    let got = claim_with(&store, claim_params(server, &["elsewhere"], &[JOB], 10)).await;
    assert_eq!(
        got.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![elsewhere]
    );
}

/// Many claimers racing over the same jobs: every job is claimed exactly
/// once, by the server that got it.
pub async fn claim_is_exclusive_under_concurrency<S: Store>(store: S) {
    const JOBS: usize = 200;
    const CLAIMERS: usize = 8;
    let ids = insert(&store, (0..JOBS).map(|_| new_job()).collect()).await;
    let store = Arc::new(store);
    let start = Arc::new(tokio::sync::Barrier::new(CLAIMERS));
    let tasks: Vec<_> = (0..CLAIMERS)
        .map(|_| {
            let store = Arc::clone(&store);
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                let server = ServerId::new();
                let mut mine = Vec::new();
                start.wait().await;
                loop {
                    let rows = claim(&*store, server, 5).await;
                    if rows.is_empty() {
                        return (server, mine);
                    }
                    mine.extend(rows.into_iter().map(|r| r.id));
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for task in tasks {
        let (server, mine) = task.await.expect("a claimer panicked");
        for id in mine {
            assert!(seen.insert(id), "job {id} was claimed twice");
            let row = row(&*store, id).await;
            assert_eq!(
                row.server_id,
                Some(server),
                "job {id} is held by its claimer"
            );
            assert_eq!(row.attempt, 1, "job {id} was claimed once");
        }
    }
    assert_eq!(seen.len(), JOBS, "every job was claimed");
    assert_eq!(seen, ids.into_iter().collect::<HashSet<_>>());
    assert!(claim(&*store, ServerId::new(), 10).await.is_empty());
}

// ---------------------------------------------------------------- complete

/// `Succeeded` makes the job `succeeded` with a finish time, drops its
/// lease, and records the server; a second completion of the same claim
/// changes nothing.
pub async fn complete_success<S: Store>(store: S) {
    let id = insert_one(&store, new_job()).await;
    let server = ServerId::new();
    let claimed = claim_only(&store, server, id).await;
    assert!(complete(&store, server, claimed.claim(), JobOutcome::Succeeded).await);
    let detail = get(&store, id).await;
    let job = &detail.job;
    assert_eq!(job.state, JobState::Succeeded);
    assert!(
        job.finished_at.is_some(),
        "a succeeded job has a finish time"
    );
    assert_eq!(job.attempt, 1);
    assert_eq!(job.server_id, None);
    assert_eq!(job.lease_expires_at, None);
    assert_eq!(job.last_error, None);
    assert_eq!(
        states(&detail),
        vec![
            JobState::Enqueued,
            JobState::Processing,
            JobState::Succeeded
        ]
    );
    let event = &detail.history[2];
    assert_eq!((event.server_id, event.attempt), (Some(server), 1));
    assert_eq!(event.error, None);
    assert!(
        !complete(&store, server, claimed.claim(), JobOutcome::Succeeded).await,
        "completing a finished attempt again must be refused"
    );
    assert_eq!(row(&store, id).await.finished_at, job.finished_at);
    assert_nothing_claimable(&store, "the job succeeded").await;
}

/// `Retry` makes the job `scheduled` after the backoff with the error kept,
/// the attempt counted; a zero backoff makes it claimable at once (as
/// attempt 2, with a new token), an hour's backoff does not.
pub async fn complete_retry_schedules_the_next_attempt<S: Store>(store: S) {
    let id = insert_one(&store, job_with(|job| job.max_attempts = 5)).await;
    let server = ServerId::new();
    let first = claim_only(&store, server, id).await;
    let retry = JobOutcome::Retry {
        error: "first failure".to_owned(),
        after: Duration::ZERO,
    };
    assert!(complete(&store, server, first.claim(), retry).await);
    let detail = get(&store, id).await;
    let job = &detail.job;
    assert_eq!(job.state, JobState::Scheduled);
    assert_eq!(job.attempt, 1, "a retry counts the attempt");
    assert_eq!(job.last_error.as_deref(), Some("first failure"));
    assert_eq!(job.finished_at, None);
    assert_eq!(job.server_id, None);
    assert_eq!(job.lease_expires_at, None);
    let event = detail.history.last().unwrap();
    assert_eq!(event.state, JobState::Scheduled);
    assert_eq!(event.server_id, Some(server));
    assert_eq!(event.attempt, 1);
    assert_eq!(event.error.as_deref(), Some("first failure"));

    let second = claim_only(&store, server, id).await;
    assert_eq!(second.attempt, 2);
    assert!(second.claim_token > first.claim_token);
    let retry = JobOutcome::Retry {
        error: "second failure".to_owned(),
        after: HOUR,
    };
    assert!(complete(&store, server, second.claim(), retry).await);
    let detail = get(&store, id).await;
    assert_eq!(detail.job.state, JobState::Scheduled);
    assert_eq!(detail.job.last_error.as_deref(), Some("second failure"));
    let event = detail.history.last().unwrap();
    assert_about(
        detail.job.run_at - event.at,
        HOUR,
        "the retry runs after its backoff",
    );
    assert_nothing_claimable(&store, "the retry is an hour away").await;
}

/// `Failed` makes the job `failed` for good, with its error and finish time.
pub async fn complete_fail<S: Store>(store: S) {
    let id = insert_one(&store, new_job()).await;
    let server = ServerId::new();
    let claimed = claim_only(&store, server, id).await;
    let outcome = JobOutcome::Failed {
        error: "fatal: bad input".to_owned(),
    };
    assert!(complete(&store, server, claimed.claim(), outcome).await);
    let detail = get(&store, id).await;
    assert_eq!(detail.job.state, JobState::Failed);
    assert!(detail.job.finished_at.is_some());
    assert_eq!(detail.job.last_error.as_deref(), Some("fatal: bad input"));
    assert_eq!(detail.job.server_id, None);
    let event = detail.history.last().unwrap();
    assert_eq!(event.state, JobState::Failed);
    assert_eq!(event.server_id, Some(server));
    assert_eq!(event.error.as_deref(), Some("fatal: bad input"));
    assert_nothing_claimable(&store, "the job failed").await;
}

/// `Snooze` makes the job `scheduled` after the delay without counting the
/// attempt: snoozed for zero it is claimed again as attempt 1; snoozed for
/// an hour it is not claimable.
pub async fn complete_snooze_does_not_count_the_attempt<S: Store>(store: S) {
    let id = insert_one(&store, new_job()).await;
    let server = ServerId::new();
    let first = claim_only(&store, server, id).await;
    let snooze = JobOutcome::Snooze {
        after: Duration::ZERO,
    };
    assert!(complete(&store, server, first.claim(), snooze).await);
    let job = row(&store, id).await;
    assert_eq!(job.state, JobState::Scheduled);
    assert_eq!(job.attempt, 0, "a snooze does not count the attempt");
    assert_eq!(job.server_id, None);
    let second = claim_only(&store, server, id).await;
    assert_eq!(second.attempt, 1);
    assert!(second.claim_token > first.claim_token);
    let snooze = JobOutcome::Snooze { after: HOUR };
    assert!(complete(&store, server, second.claim(), snooze).await);
    let detail = get(&store, id).await;
    assert_eq!(detail.job.state, JobState::Scheduled);
    assert_eq!(detail.job.attempt, 0);
    assert_about(
        detail.job.run_at - detail.history.last().unwrap().at,
        HOUR,
        "the snooze lasts its delay",
    );
    assert_nothing_claimable(&store, "the job is snoozed for an hour").await;
}

/// `Cancelled` makes the job `cancelled` with its reason and finish time.
pub async fn complete_cancel<S: Store>(store: S) {
    let id = insert_one(&store, new_job()).await;
    let server = ServerId::new();
    let claimed = claim_only(&store, server, id).await;
    let outcome = JobOutcome::Cancelled {
        reason: "no longer needed".to_owned(),
    };
    assert!(complete(&store, server, claimed.claim(), outcome).await);
    let detail = get(&store, id).await;
    assert_eq!(detail.job.state, JobState::Cancelled);
    assert!(detail.job.finished_at.is_some());
    assert_eq!(detail.job.server_id, None);
    let event = detail.history.last().unwrap();
    assert_eq!(event.state, JobState::Cancelled);
    assert_eq!(event.server_id, Some(server));
    assert_eq!(event.error.as_deref(), Some("no longer needed"));
    assert_nothing_claimable(&store, "the job was cancelled").await;
}

/// `job_progress_many` records a running attempt's progress, visible in
/// `job_get`; an update naming a stale claim changes nothing; the next claim
/// of the job clears it.
pub async fn progress_is_recorded_fenced_and_cleared_on_the_next_claim<S: Store>(store: S) {
    let server = ServerId::new();
    let id = insert_one(&store, new_job()).await;
    let first = claim_only(&store, server, id).await;
    let report = |claim: Claim, percent: u8| {
        store.job_progress_many(JobProgressManyParams::new(
            server,
            vec![(claim, json!({ "percent": percent }))],
        ))
    };
    assert_eq!(report(first.claim(), 40).await.expect("progress"), [true]);
    assert_eq!(
        row(&store, id).await.progress,
        Some(json!({ "percent": 40 }))
    );

    let stale = Claim {
        job_id: id,
        token: first.claim_token + 1,
    };
    assert_eq!(
        report(stale, 90).await.expect("progress"),
        [false],
        "a stale claim"
    );
    assert_eq!(
        row(&store, id).await.progress,
        Some(json!({ "percent": 40 }))
    );

    let released = JobOutcome::Released {
        reason: "shutdown".to_owned(),
    };
    assert!(complete(&store, server, first.claim(), released).await);
    assert_eq!(
        report(first.claim(), 50).await.expect("progress"),
        [false],
        "not running"
    );
    let second = claim_only(&store, server, id).await;
    assert_eq!(second.progress, None, "a new claim starts without progress");
    assert_eq!(row(&store, id).await.progress, None);
}

/// `Released` (graceful shutdown) makes the job `enqueued` at once without
/// counting the attempt, with the reason in its history.
pub async fn complete_release_hands_the_job_back_at_once<S: Store>(store: S) {
    let id = insert_one(&store, new_job()).await;
    let server = ServerId::new();
    let first = claim_only(&store, server, id).await;
    let outcome = JobOutcome::Released {
        reason: "server shutting down".to_owned(),
    };
    assert!(complete(&store, server, first.claim(), outcome).await);
    let detail = get(&store, id).await;
    assert_eq!(detail.job.state, JobState::Enqueued);
    assert_eq!(
        detail.job.attempt, 0,
        "a release does not count the attempt"
    );
    assert_eq!(detail.job.server_id, None);
    assert_eq!(detail.job.lease_expires_at, None);
    assert_eq!(detail.job.finished_at, None);
    let event = detail.history.last().unwrap();
    assert_eq!(event.state, JobState::Enqueued);
    assert_eq!(event.server_id, Some(server));
    assert_eq!(event.error.as_deref(), Some("server shutting down"));
    let other = ServerId::new();
    let second = claim_only(&store, other, id).await;
    assert_eq!(second.attempt, 1);
    assert!(second.claim_token > first.claim_token);
    assert_eq!(second.server_id, Some(other));
}

/// One `job_complete_many` call applies each current completion and refuses
/// each stale one (wrong token, unknown job), answering in order.
pub async fn complete_many_reports_each_completion<S: Store>(store: S) {
    let ids = insert(&store, vec![new_job(), new_job(), new_job()]).await;
    let server = ServerId::new();
    let mut rows = claim(&store, server, 3).await;
    rows.sort_by_key(|r| r.id);
    assert_eq!(rows.len(), 3);
    let wrong_token = Claim {
        job_id: rows[1].id,
        token: rows[1].claim_token + 7,
    };
    let missing = Claim {
        job_id: JobId(i64::MAX - 1),
        token: 1,
    };
    let applied = complete_many(
        &store,
        server,
        vec![
            JobCompletion::new(rows[0].claim(), JobOutcome::Succeeded),
            JobCompletion::new(wrong_token, JobOutcome::Succeeded),
            JobCompletion::new(
                rows[2].claim(),
                JobOutcome::Failed {
                    error: "e".to_owned(),
                },
            ),
            JobCompletion::new(missing, JobOutcome::Succeeded),
        ],
    )
    .await;
    assert_eq!(applied, vec![true, false, true, false]);
    assert_eq!(row(&store, ids[0]).await.state, JobState::Succeeded);
    assert_eq!(
        row(&store, ids[1]).await.state,
        JobState::Processing,
        "a completion with the wrong token changes nothing"
    );
    assert_eq!(row(&store, ids[2]).await.state, JobState::Failed);
    assert_eq!(
        complete_many(&store, server, Vec::new()).await,
        Vec::<bool>::new()
    );
}

// ---------------------------------------------------------------- fencing

/// Fencing: a server whose lease expired and whose job was rescued and
/// claimed by another server cannot complete it any more; its late write
/// changes nothing and its renewals report `Lost`.
pub async fn stale_claim_completion_changes_nothing<S: Store>(store: S) {
    let id = insert_one(&store, new_job()).await;
    let (slow, fresh) = (ServerId::new(), ServerId::new());
    let old = claim_lease(&store, slow, 1, SHORT_LEASE).await;
    assert_eq!(old.len(), 1);
    let old = old[0].claim();
    eventually("rescuing the expired lease", || async {
        rescue(&store, 100).await.contains(&id).then_some(())
    })
    .await;
    let new = claim_only(&store, fresh, id).await;
    assert!(new.claim_token > old.token);
    assert_eq!(new.attempt, 2);

    assert!(
        !complete(&store, slow, old, JobOutcome::Succeeded).await,
        "a stale completion must be refused"
    );
    let job = row(&store, id).await;
    assert_eq!(
        job.state,
        JobState::Processing,
        "a stale completion changes nothing"
    );
    assert_eq!(job.claim_token, new.claim_token);
    assert_eq!(job.server_id, Some(fresh));
    assert_eq!(
        renew(&store, slow, vec![old], LONG_LEASE).await,
        vec![LeaseStatus::Lost]
    );
    assert_eq!(
        renew(&store, fresh, vec![new.claim()], LONG_LEASE).await,
        vec![LeaseStatus::Held]
    );
    assert!(complete(&store, fresh, new.claim(), JobOutcome::Succeeded).await);
    assert_eq!(row(&store, id).await.state, JobState::Succeeded);
}

/// Claim tokens keep increasing across a retry by hand: the claim of a
/// finished attempt stays stale after the job is retried and claimed again.
pub async fn stale_claim_after_manual_retry_changes_nothing<S: Store>(store: S) {
    let id = insert_one(&store, job_with(|job| job.max_attempts = 1)).await;
    let server = ServerId::new();
    let first = claim_only(&store, server, id).await;
    let failed = JobOutcome::Failed {
        error: "boom".to_owned(),
    };
    assert!(complete(&store, server, first.claim(), failed).await);
    store
        .job_retry(JobRetryParams::new(id))
        .await
        .expect("retrying a failed job");
    let second = claim_only(&store, server, id).await;
    assert!(
        second.claim_token > first.claim_token,
        "tokens must not restart when attempts are reset"
    );
    assert!(!complete(&store, server, first.claim(), JobOutcome::Succeeded).await);
    assert_eq!(
        renew(&store, server, vec![first.claim()], LONG_LEASE).await,
        vec![LeaseStatus::Lost]
    );
    assert_eq!(row(&store, id).await.state, JobState::Processing);
    assert!(complete(&store, server, second.claim(), JobOutcome::Succeeded).await);
}

// ------------------------------------------------------------------ leases

/// A lease renewed in time is never rescued, however long the job runs;
/// once renewals stop, it is rescued.
pub async fn lease_renew_keeps_job_from_rescue<S: Store>(store: S) {
    let lease = Duration::from_secs(1);
    let id = insert_one(&store, new_job()).await;
    let server = ServerId::new();
    let claimed = claim_lease(&store, server, 1, lease).await;
    assert_eq!(claimed.len(), 1);
    let first_expiry = claimed[0].lease_expires_at.unwrap();
    let started = Instant::now();
    while started.elapsed() < lease + lease / 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            renew(&store, server, vec![claimed[0].claim()], lease).await,
            vec![LeaseStatus::Held]
        );
        assert!(
            !rescue(&store, 100).await.contains(&id),
            "a job whose lease is renewed must not be rescued"
        );
    }
    let job = row(&store, id).await;
    assert_eq!(job.state, JobState::Processing);
    assert!(
        job.lease_expires_at.unwrap() > first_expiry,
        "renewing moves the lease forward"
    );
    eventually("rescuing the job once renewals stopped", || async {
        rescue(&store, 100).await.contains(&id).then_some(())
    })
    .await;
}

/// Renewal answers per claim, in order: `Held` for a current claim,
/// `CancelRequested` once a user asked to cancel the job, `Lost` for a wrong
/// token, an unknown job, or a job that finished.
pub async fn lease_renew_reports_lost_and_cancel_requested<S: Store>(store: S) {
    let ids = insert(&store, vec![new_job(), new_job()]).await;
    let server = ServerId::new();
    let mut rows = claim(&store, server, 2).await;
    rows.sort_by_key(|r| r.id);
    let (a, b) = (rows[0].claim(), rows[1].claim());
    let wrong = Claim {
        job_id: a.job_id,
        token: a.token + 1,
    };
    let missing = Claim {
        job_id: JobId(i64::MAX - 1),
        token: 1,
    };
    assert_eq!(
        renew(&store, server, vec![a, b, wrong, missing], LONG_LEASE).await,
        vec![
            LeaseStatus::Held,
            LeaseStatus::Held,
            LeaseStatus::Lost,
            LeaseStatus::Lost
        ]
    );
    let outcome = store
        .job_cancel(JobCancelParams::new(ids[1], "user asked".to_owned()))
        .await
        .expect("cancelling a running job");
    assert_eq!(outcome, CancelOutcome::Requested);
    assert_eq!(
        renew(&store, server, vec![a, b], LONG_LEASE).await,
        vec![LeaseStatus::Held, LeaseStatus::CancelRequested]
    );
    let cancelled = JobOutcome::Cancelled {
        reason: "user asked".to_owned(),
    };
    assert!(complete(&store, server, b, cancelled).await);
    let job = row(&store, ids[1]).await;
    assert_eq!(job.state, JobState::Cancelled);
    assert!(
        !job.cancel_requested,
        "completion clears the cancel request"
    );
    assert!(complete(&store, server, a, JobOutcome::Succeeded).await);
    assert_eq!(
        renew(&store, server, vec![a, b], LONG_LEASE).await,
        vec![LeaseStatus::Lost, LeaseStatus::Lost],
        "finished jobs' leases are lost"
    );
    assert!(renew(&store, server, Vec::new(), LONG_LEASE)
        .await
        .is_empty());
}

/// Rescue makes jobs whose lease expired runnable again (`scheduled`, the
/// error saying the lease expired) or `failed` when they have no attempts
/// left; it leaves live leases alone.
pub async fn rescue_makes_expired_jobs_runnable_and_fails_exhausted_ones<S: Store>(store: S) {
    let ids = insert(
        &store,
        vec![
            job_with(|job| job.max_attempts = 3),
            job_with(|job| job.max_attempts = 1),
            job_with(|job| job.max_attempts = 3),
        ],
    )
    .await;
    let (retried, exhausted, alive) = (ids[0], ids[1], ids[2]);
    let (dead, live) = (ServerId::new(), ServerId::new());
    assert_eq!(claim_lease(&store, dead, 2, SHORT_LEASE).await.len(), 2);
    assert_eq!(claim_lease(&store, live, 1, LONG_LEASE).await.len(), 1);
    let rescued = std::sync::Mutex::new(BTreeSet::new());
    eventually("rescuing both expired jobs", || async {
        let got = rescue(&store, 100).await;
        let mut rescued = rescued.lock().unwrap();
        rescued.extend(got);
        (rescued.contains(&retried) && rescued.contains(&exhausted)).then_some(())
    })
    .await;
    let rescued = rescued.into_inner().unwrap();
    assert!(
        !rescued.contains(&alive),
        "a live lease must not be rescued"
    );
    assert!(
        rescue(&store, 100).await.is_empty(),
        "nothing left to rescue"
    );

    let detail = get(&store, retried).await;
    assert_eq!(detail.job.state, JobState::Scheduled);
    assert_eq!(detail.job.attempt, 1);
    assert_eq!(detail.job.server_id, None);
    assert_eq!(detail.job.lease_expires_at, None);
    let error = detail.job.last_error.clone().unwrap_or_default();
    assert!(
        error.contains("lease expired"),
        "unexpected error {error:?}"
    );
    let event = detail.history.last().unwrap();
    assert_eq!(event.state, JobState::Scheduled);
    assert!(event
        .error
        .as_deref()
        .unwrap_or_default()
        .contains("lease expired"));
    let states_and_servers: Vec<_> = detail
        .history
        .iter()
        .map(|e| (e.state, e.attempt, e.server_id))
        .collect();
    assert_eq!(
        states_and_servers,
        vec![
            (JobState::Enqueued, 0, None),
            (JobState::Processing, 1, Some(dead)),
            (JobState::Scheduled, 1, None),
        ],
        "the rescued attempt's claim stays in the history, with its server"
    );

    let detail = get(&store, exhausted).await;
    assert_eq!(detail.job.state, JobState::Failed, "no attempts left");
    assert!(detail.job.finished_at.is_some());
    let error = detail.job.last_error.clone().unwrap_or_default();
    assert!(
        error.contains("lease expired"),
        "unexpected error {error:?}"
    );

    assert_eq!(row(&store, alive).await.state, JobState::Processing);
    let again = claim_only(&store, live, retried).await;
    assert_eq!(again.attempt, 2);
}

/// Rescue takes at most `limit` jobs per call.
pub async fn rescue_is_bounded_by_limit<S: Store>(store: S) {
    insert(&store, vec![new_job(), new_job(), new_job()]).await;
    let server = ServerId::new();
    assert_eq!(claim_lease(&store, server, 3, SHORT_LEASE).await.len(), 3);
    let first = eventually("the leases expiring", || async {
        let got = rescue(&store, 2).await;
        (!got.is_empty()).then_some(got)
    })
    .await;
    let mut all: BTreeSet<JobId> = first.iter().copied().collect();
    assert!(
        first.len() <= 2,
        "rescued {} jobs with limit 2",
        first.len()
    );
    while all.len() < 3 {
        let more = rescue(&store, 2).await;
        assert!(more.len() <= 2 && !more.is_empty());
        all.extend(more);
    }
    assert!(rescue(&store, 2).await.is_empty());
    assert!(rescue(&store, 0).await.is_empty());
}

// ------------------------------------------------------------------- reads

/// `job_get` returns the whole history, oldest first: each transition with
/// its state, attempt, server and error, at non-decreasing times. An
/// unknown id is `None`.
pub async fn get_returns_history_with_times_servers_errors<S: Store>(store: S) {
    let id = insert_one(&store, job_with(|job| job.max_attempts = 3)).await;
    let (one, two) = (ServerId::new(), ServerId::new());
    let first = claim_only(&store, one, id).await;
    let retry = JobOutcome::Retry {
        error: "e1".to_owned(),
        after: Duration::ZERO,
    };
    assert!(complete(&store, one, first.claim(), retry).await);
    let second = claim_only(&store, two, id).await;
    let failed = JobOutcome::Failed {
        error: "e2".to_owned(),
    };
    assert!(complete(&store, two, second.claim(), failed).await);

    let detail = get(&store, id).await;
    let got: Vec<_> = detail
        .history
        .iter()
        .map(|e| (e.state, e.attempt, e.server_id, e.error.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (JobState::Enqueued, 0, None, None),
            (JobState::Processing, 1, Some(one), None),
            (JobState::Scheduled, 1, Some(one), Some("e1".to_owned())),
            (JobState::Processing, 2, Some(two), None),
            (JobState::Failed, 2, Some(two), Some("e2".to_owned())),
        ]
    );
    assert!(
        detail.history.windows(2).all(|w| w[0].at <= w[1].at),
        "history is oldest first"
    );
    assert!(detail.job.finished_at.is_some());
    assert!(try_get(&store, JobId(i64::MAX - 1)).await.is_none());
}

/// `job_list` returns jobs newest first, filtered by state and queue, and
/// pages by `before` without gaps or repeats.
pub async fn list_filters_and_pages<S: Store>(store: S) {
    let jobs = (0..10)
        .map(|i| job_with(|job| job.queue = if i % 3 == 2 { "q2" } else { "q1" }.to_owned()))
        .collect();
    let ids = insert(&store, jobs).await;
    let server = ServerId::new();
    let claimed: BTreeSet<JobId> = claim_with(&store, claim_params(server, &["q1"], &[JOB], 2))
        .await
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(claimed.len(), 2);

    let mut newest_first = ids.clone();
    newest_first.reverse();
    let all = list(&store, None, None, None, 100).await;
    assert_eq!(all, newest_first, "all jobs, newest first");
    let q2: Vec<JobId> = newest_first
        .iter()
        .copied()
        .filter(|id| ids.iter().position(|x| x == id).unwrap() % 3 == 2)
        .collect();
    assert_eq!(
        list(&store, None, Some("q2"), None, 100).await,
        q2,
        "queue filter"
    );
    let processing: Vec<JobId> = claimed.iter().rev().copied().collect();
    assert_eq!(
        list(&store, Some(JobState::Processing), None, None, 100).await,
        processing,
        "state filter"
    );
    let enqueued_q1: Vec<JobId> = newest_first
        .iter()
        .copied()
        .filter(|id| !claimed.contains(id) && !q2.contains(id))
        .collect();
    assert_eq!(
        list(&store, Some(JobState::Enqueued), Some("q1"), None, 100).await,
        enqueued_q1,
        "state and queue filters together"
    );
    assert!(list(&store, Some(JobState::Failed), None, None, 100)
        .await
        .is_empty());
    assert!(list(&store, None, Some("nope"), None, 100).await.is_empty());

    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = list(&store, None, None, before, 3).await;
        assert!(page.len() <= 3, "a page holds at most `limit` jobs");
        let Some(&last) = page.last() else { break };
        paged.extend(page);
        before = Some(last);
        assert!(paged.len() <= 10, "paging repeats jobs: {paged:?}");
    }
    assert_eq!(paged, newest_first, "pages cover every job once, in order");
    assert_eq!(
        list(&store, None, None, Some(newest_first[0]), 100).await,
        newest_first[1..].to_vec(),
        "`before` excludes that job"
    );
    assert_eq!(
        list(
            &store,
            Some(JobState::Enqueued),
            Some("q1"),
            Some(enqueued_q1[0]),
            2
        )
        .await,
        enqueued_q1[1..3].to_vec(),
        "paging with filters"
    );
}

/// `job_count` counts jobs by queue and state and leaves out empty pairs.
pub async fn counts_by_queue_and_state<S: Store>(store: S) {
    assert!(
        counts(&store).await.is_empty(),
        "an empty store counts nothing"
    );
    let in_q = |queue: &str, run_at: RunAt| {
        job_with(|job| {
            job.queue = queue.to_owned();
            job.run_at = run_at;
        })
    };
    insert(
        &store,
        vec![
            in_q("q1", RunAt::Now),
            in_q("q1", RunAt::Now),
            in_q("q1", RunAt::Now),
            in_q("q2", RunAt::After(HOUR)),
            in_q("q2", RunAt::Now),
        ],
    )
    .await;
    let server = ServerId::new();
    let rows = claim_with(&store, claim_params(server, &["q1"], &[JOB], 2)).await;
    assert_eq!(rows.len(), 2);
    assert!(complete(&store, server, rows[0].claim(), JobOutcome::Succeeded).await);
    assert_eq!(
        counts(&store).await,
        sorted_counts(vec![
            ("q1", JobState::Enqueued, 1),
            ("q1", JobState::Processing, 1),
            ("q1", JobState::Succeeded, 1),
            ("q2", JobState::Scheduled, 1),
            ("q2", JobState::Enqueued, 1),
        ])
    );
}

// ------------------------------------------------------------- management

/// A `failed`, `cancelled` or `deleted` job can be retried by hand: it
/// becomes `enqueued` with its attempts reset and its history kept. Other
/// states are a `Conflict`; an unknown job is `NotFound`.
pub async fn retry_by_hand<S: Store>(store: S) {
    let server = ServerId::new();
    let failed = insert_one(&store, job_with(|job| job.max_attempts = 1)).await;
    let claimed = claim_only(&store, server, failed).await;
    let outcome = JobOutcome::Failed {
        error: "boom".to_owned(),
    };
    assert!(complete(&store, server, claimed.claim(), outcome).await);
    let before = get(&store, failed).await;
    store
        .job_retry(JobRetryParams::new(failed))
        .await
        .expect("retrying a failed job");
    let after = get(&store, failed).await;
    assert_eq!(after.job.state, JobState::Enqueued);
    assert_eq!(after.job.attempt, 0, "attempts are reset");
    assert_eq!(after.job.finished_at, None);
    assert_eq!(
        after.history[..before.history.len()],
        before.history[..],
        "history is kept"
    );
    assert_eq!(after.history.last().unwrap().state, JobState::Enqueued);
    assert_eq!(claim_only(&store, server, failed).await.attempt, 1);

    let cancelled = insert_one(&store, new_job()).await;
    store
        .job_cancel(JobCancelParams::new(cancelled, "oops".to_owned()))
        .await
        .unwrap();
    store
        .job_retry(JobRetryParams::new(cancelled))
        .await
        .expect("retrying a cancelled job");
    assert_eq!(row(&store, cancelled).await.state, JobState::Enqueued);

    let deleted = insert_one(&store, new_job()).await;
    store
        .job_delete(JobDeleteParams::new(deleted))
        .await
        .unwrap();
    store
        .job_retry(JobRetryParams::new(deleted))
        .await
        .expect("retrying a deleted job");
    assert_eq!(row(&store, deleted).await.state, JobState::Enqueued);

    // `failed` is processing now, `cancelled` and `deleted` enqueued.
    let succeeded = claim_only(&store, server, cancelled).await;
    assert!(complete(&store, server, succeeded.claim(), JobOutcome::Succeeded).await);
    let scheduled = insert_one(&store, job_with(|job| job.run_at = RunAt::After(HOUR))).await;
    for (id, what) in [
        (deleted, "an enqueued job"),
        (scheduled, "a scheduled job"),
        (failed, "a processing job"),
        (cancelled, "a succeeded job"),
    ] {
        let state = row(&store, id).await.state;
        assert_kind(
            store.job_retry(JobRetryParams::new(id)).await,
            StoreErrorKind::Conflict,
            &format!("retrying {what}"),
        );
        assert_eq!(
            row(&store, id).await.state,
            state,
            "a refused retry changes nothing"
        );
    }
    assert_kind(
        store
            .job_retry(JobRetryParams::new(JobId(i64::MAX - 1)))
            .await,
        StoreErrorKind::NotFound,
        "retrying a missing job",
    );
}

/// Cancelling a waiting job (`enqueued` or `scheduled`) makes it `cancelled`
/// at once with the reason in its history; cancelling a running job asks
/// its server to stop (`Requested`, `cancel_requested`); a finished job is a
/// `Conflict`; an unknown job is `NotFound`.
pub async fn cancel_waiting_and_running<S: Store>(store: S) {
    let server = ServerId::new();
    let ids = insert(
        &store,
        vec![
            new_job(),
            job_with(|job| job.run_at = RunAt::After(HOUR)),
            new_job(),
        ],
    )
    .await;
    let (running, waiting, scheduled) = (ids[0], ids[1], ids[2]);
    let running_row = claim_only(&store, server, running).await;
    let outcome = store
        .job_cancel(JobCancelParams::new(waiting, "changed my mind".to_owned()))
        .await
        .expect("cancelling an enqueued job");
    assert_eq!(outcome, CancelOutcome::Cancelled);

    let detail = get(&store, waiting).await;
    assert_eq!(detail.job.state, JobState::Cancelled);
    assert!(detail.job.finished_at.is_some());
    let event = detail.history.last().unwrap();
    assert_eq!(event.state, JobState::Cancelled);
    assert_eq!(event.error.as_deref(), Some("changed my mind"));

    let outcome = store
        .job_cancel(JobCancelParams::new(scheduled, "not needed".to_owned()))
        .await
        .expect("cancelling a scheduled job");
    assert_eq!(outcome, CancelOutcome::Cancelled);
    assert_eq!(row(&store, scheduled).await.state, JobState::Cancelled);

    let outcome = store
        .job_cancel(JobCancelParams::new(running, "stop".to_owned()))
        .await
        .expect("cancelling a running job");
    assert_eq!(outcome, CancelOutcome::Requested);
    let job = row(&store, running).await;
    assert_eq!(
        job.state,
        JobState::Processing,
        "a running job keeps running until its server stops it"
    );
    assert!(job.cancel_requested);
    assert_eq!(
        store
            .job_cancel(JobCancelParams::new(running, "stop".to_owned()))
            .await
            .expect("asking twice"),
        CancelOutcome::Requested
    );

    assert_kind(
        store
            .job_cancel(JobCancelParams::new(waiting, "again".to_owned()))
            .await,
        StoreErrorKind::Conflict,
        "cancelling a cancelled job",
    );
    assert!(complete(&store, server, running_row.claim(), JobOutcome::Succeeded).await);
    assert_kind(
        store
            .job_cancel(JobCancelParams::new(running, "late".to_owned()))
            .await,
        StoreErrorKind::Conflict,
        "cancelling a succeeded job",
    );
    assert_eq!(row(&store, running).await.state, JobState::Succeeded);
    assert_kind(
        store
            .job_cancel(JobCancelParams::new(JobId(i64::MAX - 1), "x".to_owned()))
            .await,
        StoreErrorKind::NotFound,
        "cancelling a missing job",
    );
    assert_nothing_claimable(&store, "every job is cancelled or finished").await;
}

/// A job that is not running can be deleted: it becomes `deleted` (kept,
/// with the transition in its history) and is never claimed. A running job
/// is a `Conflict`; an unknown job is `NotFound`.
pub async fn delete<S: Store>(store: S) {
    let server = ServerId::new();
    let ids = insert(
        &store,
        vec![
            new_job(),
            new_job(),
            job_with(|job| job.run_at = RunAt::After(HOUR)),
        ],
    )
    .await;
    let (running, waiting, scheduled) = (ids[0], ids[1], ids[2]);
    claim_with(&store, claim_params(server, &[QUEUE], &[JOB], 1)).await;
    assert_eq!(row(&store, running).await.state, JobState::Processing);

    for id in [waiting, scheduled] {
        store
            .job_delete(JobDeleteParams::new(id))
            .await
            .expect("deleting a waiting job");
        let detail = get(&store, id).await;
        assert_eq!(detail.job.state, JobState::Deleted);
        assert_eq!(detail.history.last().unwrap().state, JobState::Deleted);
    }
    assert_nothing_claimable(&store, "the waiting jobs are deleted").await;

    assert_kind(
        store.job_delete(JobDeleteParams::new(running)).await,
        StoreErrorKind::Conflict,
        "deleting a running job",
    );
    assert_eq!(row(&store, running).await.state, JobState::Processing);

    let claim = row(&store, running).await.claim();
    let failed = JobOutcome::Failed {
        error: "e".to_owned(),
    };
    assert!(complete(&store, server, claim, failed).await);
    store
        .job_delete(JobDeleteParams::new(running))
        .await
        .expect("deleting a failed job");
    assert_eq!(row(&store, running).await.state, JobState::Deleted);

    assert_kind(
        store
            .job_delete(JobDeleteParams::new(JobId(i64::MAX - 1)))
            .await,
        StoreErrorKind::NotFound,
        "deleting a missing job",
    );
}

// --------------------------------------------------------------- retention

/// Prune removes finished jobs older than the age for their state
/// (`succeeded`; `deleted` and `cancelled`; `failed`), with their history,
/// at most `limit` per call, and never touches unfinished jobs.
pub async fn prune_is_bounded_and_respects_ages<S: Store>(store: S) {
    let server = ServerId::new();
    let ids = insert(&store, (0..6).map(|_| new_job()).collect()).await;
    let mut rows = claim(&store, server, 4).await;
    rows.sort_by_key(|r| r.id);
    let outcomes = [
        JobOutcome::Succeeded,
        JobOutcome::Succeeded,
        JobOutcome::Succeeded,
        JobOutcome::Failed {
            error: "e".to_owned(),
        },
    ];
    let completions = rows
        .iter()
        .zip(outcomes)
        .map(|(row, outcome)| JobCompletion::new(row.claim(), outcome))
        .collect();
    assert_eq!(
        complete_many(&store, server, completions).await,
        vec![true; 4]
    );
    let (succeeded, failed) = (&ids[..3], ids[3]);
    let (cancelled, deleted) = (ids[4], ids[5]);
    store
        .job_cancel(JobCancelParams::new(cancelled, "r".to_owned()))
        .await
        .unwrap();
    store
        .job_delete(JobDeleteParams::new(deleted))
        .await
        .unwrap();
    let unfinished = insert(&store, vec![new_job(), new_job()]).await;
    claim_only(&store, server, unfinished[0]).await;

    let day = Duration::from_secs(86_400);
    let tiny = Duration::from_millis(1);
    let prune = |succeeded: Duration, deleted: Duration, failed: Duration, limit: u32| {
        let store = &store;
        async move {
            store
                .job_prune(JobPruneParams::new(succeeded, deleted, failed, limit))
                .await
                .expect("job_prune failed")
        }
    };
    assert_eq!(prune(day, day, day, 100).await, 0, "nothing is a day old");
    tokio::time::sleep(Duration::from_millis(50)).await;

    assert_eq!(prune(tiny, day, day, 2).await, 2, "bounded by limit");
    assert_eq!(prune(tiny, day, day, 2).await, 1);
    assert_eq!(prune(tiny, day, day, 2).await, 0);
    for &id in succeeded {
        assert!(try_get(&store, id).await.is_none(), "job {id} was pruned");
    }
    for id in [failed, cancelled, deleted] {
        assert!(
            try_get(&store, id).await.is_some(),
            "job {id} is not old enough for its age"
        );
    }
    assert_eq!(prune(day, tiny, day, 100).await, 2, "cancelled and deleted");
    assert!(try_get(&store, cancelled).await.is_none());
    assert!(try_get(&store, deleted).await.is_none());
    assert_eq!(prune(day, day, tiny, 100).await, 1, "failed");
    assert!(try_get(&store, failed).await.is_none());

    assert_eq!(
        prune(tiny, tiny, tiny, 100).await,
        0,
        "unfinished jobs stay"
    );
    assert_eq!(
        counts(&store).await,
        sorted_counts(vec![
            (QUEUE, JobState::Enqueued, 1),
            (QUEUE, JobState::Processing, 1),
        ])
    );
    assert_eq!(
        list(&store, None, None, None, 100).await,
        vec![unfinished[1], unfinished[0]]
    );
}

/// Prune measures age from when a job finished: a job finished well over
/// the age ago is removed, one finished just now is kept.
pub async fn prune_keeps_jobs_younger_than_their_age<S: Store>(store: S) {
    let server = ServerId::new();
    let old = insert_one(&store, new_job()).await;
    let claimed = claim_only(&store, server, old).await;
    assert!(complete(&store, server, claimed.claim(), JobOutcome::Succeeded).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let young = insert_one(&store, new_job()).await;
    let claimed = claim_only(&store, server, young).await;
    assert!(complete(&store, server, claimed.claim(), JobOutcome::Succeeded).await);
    let day = Duration::from_secs(86_400);
    let removed = store
        .job_prune(JobPruneParams::new(Duration::from_secs(1), day, day, 100))
        .await
        .expect("job_prune failed");
    assert_eq!(removed, 1);
    assert!(
        try_get(&store, old).await.is_none(),
        "the old job is pruned"
    );
    assert!(
        try_get(&store, young).await.is_some(),
        "the young job is kept"
    );
}

// ----------------------------------------------------------------- servers

/// Heartbeats insert or update a server's record with `heartbeat_at` set by
/// the store; servers are listed most recently started first; removal takes
/// the named server and those silent for longer than `stale_after`.
pub async fn server_heartbeat_list_remove<S: Store>(store: S) {
    let list_ids = || {
        let store = &store;
        async move {
            store
                .server_list(ServerListParams::new())
                .await
                .expect("server_list failed")
        }
    };
    let heartbeat = |info: ServerInfo| {
        let store = &store;
        async move {
            store
                .server_heartbeat(ServerHeartbeatParams::new(info))
                .await
                .expect("server_heartbeat failed")
        }
    };
    let remove = |id: Option<ServerId>, stale_after: Duration| {
        let store = &store;
        async move {
            store
                .server_remove(ServerRemoveParams::new(id, stale_after))
                .await
                .expect("server_remove failed")
        }
    };
    assert!(list_ids().await.is_empty());
    let base = whole_second(Utc::now()) - chrono::Duration::hours(1);
    let (s1, s2, s3) = (ServerId::new(), ServerId::new(), ServerId::new());
    let info1 = server_info(s1, base, 8);
    let info2 = server_info(s2, base + chrono::Duration::minutes(10), 16);
    heartbeat(info1.clone()).await;
    heartbeat(info2.clone()).await;
    let servers = list_ids().await;
    assert_eq!(
        servers.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![s2, s1],
        "most recently started first"
    );
    let got = &servers[1];
    assert_eq!(
        (
            &got.host,
            got.pid,
            &got.queues,
            got.concurrency,
            &got.job_names,
            got.started_at
        ),
        (
            &info1.host,
            info1.pid,
            &info1.queues,
            info1.concurrency,
            &info1.job_names,
            info1.started_at
        ),
        "the record round-trips"
    );
    assert!(
        got.heartbeat_at > base + chrono::Duration::minutes(30),
        "heartbeat_at is the store's time, not the given one"
    );

    heartbeat(server_info(s1, base, 32)).await;
    let servers = list_ids().await;
    assert_eq!(servers.len(), 2, "a heartbeat updates, not duplicates");
    assert_eq!(servers.iter().find(|s| s.id == s1).unwrap().concurrency, 32);

    assert_eq!(remove(Some(s1), HOUR).await, 1, "remove by id");
    assert_eq!(
        list_ids().await.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![s2]
    );

    heartbeat(server_info(s3, base + chrono::Duration::minutes(20), 4)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    heartbeat(info2.clone()).await;
    assert_eq!(
        remove(None, Duration::from_millis(750)).await,
        1,
        "the silent server is stale"
    );
    assert_eq!(
        list_ids().await.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![s2]
    );
    assert_eq!(remove(Some(ServerId::new()), HOUR).await, 0);
    assert_eq!(remove(Some(s2), HOUR).await, 1);
    assert!(list_ids().await.is_empty());
}

// ----------------------------------------------------------------- signals

/// Waits for the signal to fire after `act`, retrying `act` while the
/// store's listener may still be starting. Returns false if it never fired.
async fn fires_after<F, Fut>(rx: &mut tokio::sync::watch::Receiver<u64>, mut act: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let started = Instant::now();
    while started.elapsed() < DEADLINE {
        rx.mark_unchanged();
        act().await;
        if let Ok(changed) = tokio::time::timeout(Duration::from_millis(500), rx.changed()).await {
            changed.expect("the signal's sender was dropped");
            return true;
        }
    }
    false
}

/// If the store has a [`JobSignal`](crate::JobSignal), inserting a job raises it.
pub async fn signal_fires_on_insert<S: Store>(store: S) {
    let Some(signal) = store.job_signal() else {
        return;
    };
    let mut rx = signal.subscribe();
    assert!(
        fires_after(&mut rx, || async {
            insert_one(&store, new_job()).await;
        })
        .await,
        "inserting a job must raise the store's signal"
    );
}

/// If the store has a [`JobSignal`](crate::JobSignal), it is raised when jobs
/// become runnable again: released by a server, or retried by hand.
pub async fn signal_fires_when_jobs_become_runnable_again<S: Store>(store: S) {
    let Some(signal) = store.job_signal() else {
        return;
    };
    let mut rx = signal.subscribe();
    // Make sure the store's listener is up before testing what is not an insert.
    assert!(
        fires_after(&mut rx, || async {
            insert_one(&store, job_with(|job| job.max_attempts = 1)).await;
        })
        .await,
        "inserting a job must raise the store's signal"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let server = ServerId::new();
    let rows = claim(&store, server, 100).await;
    assert!(!rows.is_empty());
    let claimed = rows[0].claim();
    let mut released = false;
    assert!(
        fires_after(&mut rx, || {
            let first = !released;
            released = true;
            let store = &store;
            async move {
                if first {
                    let outcome = JobOutcome::Released {
                        reason: "shutdown".to_owned(),
                    };
                    assert!(complete(store, server, claimed, outcome).await);
                }
            }
        })
        .await,
        "releasing a job must raise the store's signal"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = claim_only(&store, server, claimed.job_id).await;
    let failed = JobOutcome::Failed {
        error: "e".to_owned(),
    };
    assert!(complete(&store, server, again.claim(), failed).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut retried = false;
    assert!(
        fires_after(&mut rx, || {
            let first = !retried;
            retried = true;
            let store = &store;
            async move {
                if first {
                    store
                        .job_retry(JobRetryParams::new(claimed.job_id))
                        .await
                        .expect("retrying a failed job");
                }
            }
        })
        .await,
        "retrying a job by hand must raise the store's signal"
    );
}

// ------------------------------------------------------- rescue and cancel

/// A user's cancel outlives the server asked to carry it out: a running job
/// whose cancel was requested and whose lease then expired is `cancelled` by
/// the rescue (with a finish time), not retried, and never claimed again. A
/// job beside it without a cancel request is retried as usual.
pub async fn rescue_cancels_a_job_whose_cancel_was_requested<S: Store>(store: S) {
    let ids = insert(
        &store,
        vec![
            job_with(|job| job.max_attempts = 3),
            job_with(|job| job.max_attempts = 3),
        ],
    )
    .await;
    let (cancelled, retried) = (ids[0], ids[1]);
    let dead = ServerId::new();
    assert_eq!(claim_lease(&store, dead, 2, SHORT_LEASE).await.len(), 2);
    let outcome = store
        .job_cancel(JobCancelParams::new(cancelled, "not wanted".to_owned()))
        .await
        .expect("cancelling a running job");
    assert_eq!(outcome, CancelOutcome::Requested);

    let rescued = std::sync::Mutex::new(BTreeSet::new());
    eventually("rescuing both expired jobs", || async {
        let got = rescue(&store, 100).await;
        let mut rescued = rescued.lock().unwrap();
        rescued.extend(got);
        (rescued.contains(&cancelled) && rescued.contains(&retried)).then_some(())
    })
    .await;

    let detail = get(&store, cancelled).await;
    assert_eq!(
        detail.job.state,
        JobState::Cancelled,
        "a job whose cancel was requested is cancelled when its lease expires, not retried"
    );
    assert!(
        detail.job.finished_at.is_some(),
        "a cancelled job is finished"
    );
    assert_eq!(detail.job.server_id, None);
    assert_eq!(detail.job.lease_expires_at, None);
    assert_eq!(
        detail.history.last().map(|e| e.state),
        Some(JobState::Cancelled)
    );
    assert_eq!(row(&store, retried).await.state, JobState::Scheduled);
    let again = claim_only(&store, ServerId::new(), retried).await;
    assert_eq!(again.attempt, 2);
    assert_nothing_claimable(&store, "the cancelled job must never run again").await;
}

/// A user's cancel outlives a hand-back too: a running job whose cancel was
/// requested and that its server then hands back (shutting down, or never
/// having started it) is `cancelled`, not made runnable again.
pub async fn release_of_a_job_whose_cancel_was_requested_cancels_it<S: Store>(store: S) {
    let id = insert_one(&store, new_job()).await;
    let server = ServerId::new();
    let claimed = claim_only(&store, server, id).await;
    let outcome = store
        .job_cancel(JobCancelParams::new(id, "not wanted".to_owned()))
        .await
        .expect("cancelling a running job");
    assert_eq!(outcome, CancelOutcome::Requested);
    let release = JobOutcome::Released {
        reason: "the server shut down before the job started".to_owned(),
    };
    assert!(complete(&store, server, claimed.claim(), release).await);

    let detail = get(&store, id).await;
    assert_eq!(detail.job.state, JobState::Cancelled, "{detail:?}");
    assert!(
        detail.job.finished_at.is_some(),
        "a cancelled job is finished"
    );
    assert!(!detail.job.cancel_requested);
    assert_eq!(
        detail.history.last().map(|e| e.state),
        Some(JobState::Cancelled)
    );
    assert_nothing_claimable(&store, "the cancelled job must never run again").await;
}

// --------------------------------------------------------------- recurring

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
        .cron_due(CronDueParams::new(limit))
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
        .cron_fire(CronFireParams::new(
            id.to_owned(),
            expected,
            next,
            jobs,
            skip_if_running,
        ))
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
}

/// `cron_upsert` creates an entry with its whole definition (policies
/// included), not paused, with `next_run_at` unset and no run yet; a new
/// entry is due at once so that the next scheduler pass computes its first
/// tick.
pub async fn cron_upsert_creates_an_entry_due_at_once<S: Store>(store: S) {
    let mut def = cron_def(CRON_ID, "*/10 * * * * *");
    def.misfire = Misfire::RunAll { limit: 7 };
    def.overlap = Overlap::Skip;
    def.job.queue = "reports".to_owned();
    def.time_zone = "Europe/Berlin".to_owned();
    cron_upsert(&store, def.clone()).await;

    let rows = cron_list(&store).await;
    assert_eq!(rows.len(), 1, "one entry after one upsert");
    let row = &rows[0];
    assert_same_def(&row.def, &def);
    assert_eq!(
        row.def
            .cron()
            .expect("the stored schedule parses")
            .time_zone(),
        &crate::Tz::named("Europe/Berlin").unwrap()
    );
    assert!(!row.paused, "a new entry is not paused");
    assert_eq!(row.next_run_at, None, "a new entry has no next_run_at yet");
    assert_eq!(row.last_run_at, None);
    assert_eq!(row.last_job_id, None);
    assert_eq!(row.last_job_state, None);
    assert_eq!(row.last_error, None);
    assert_eq!(row.last_skipped, None);

    let due = cron_due(&store, 10).await;
    assert_eq!(due.due.len(), 1, "a new entry is due at once");
    assert_same_def(&due.due[0].def, &def);
    assert_eq!(due.due[0].next_run_at, None);
    assert!(
        all_jobs(&store).await.is_empty(),
        "an upsert inserts no job"
    );
}

/// `cron_due` returns the entries that are not paused and whose
/// `next_run_at` is unset or at or before the store's clock, at most `limit`
/// of them, with the store's clock (between the creation times of jobs
/// inserted just before and just after).
pub async fn cron_due_returns_unset_and_past_entries_with_the_store_clock<S: Store>(store: S) {
    for id in ["past", "unset", "future", "paused", "paused-unset"] {
        cron_upsert(&store, cron_def(id, HOURLY)).await;
    }
    let now = cron_now(&store).await;
    let hour = chrono::Duration::hours(1);
    cron_set_next(&store, "past", None, now - hour).await;
    cron_set_next(&store, "future", None, now + hour).await;
    cron_set_next(&store, "paused", None, now - hour).await;
    for id in ["paused", "paused-unset"] {
        store
            .cron_pause(CronPauseParams::new(id.to_owned(), true))
            .await
            .expect("pausing");
    }
    assert_eq!(
        cron_due_ids(&store).await,
        ["past", "unset"],
        "due: not paused, next_run_at unset or passed"
    );
    let due = cron_due(&store, 10).await;
    let past = due.due.iter().find(|row| row.def.id == "past").unwrap();
    assert_eq!(past.next_run_at, Some(now - hour));
    assert!(!past.paused);
    assert_eq!(
        cron_due(&store, 1).await.due.len(),
        1,
        "cron_due returns at most `limit` entries"
    );

    let before = row(&store, insert_one(&store, new_job()).await)
        .await
        .created_at;
    let due = cron_due(&store, 10).await;
    let after = row(&store, insert_one(&store, new_job()).await)
        .await
        .created_at;
    assert!(
        before <= due.now && due.now <= after,
        "cron_due's now must be the store's clock: {} is not between {before} and {after}",
        due.now
    );
}

/// A fire with the right expected `next_run_at` inserts its runs, in order,
/// with their recurring origin (id and tick, as `JobRow::recurring`) and the
/// definition's job fields; moves `next_run_at`; and records the latest tick
/// and job. A fire without runs (a new entry, or skipped misfires) moves
/// `next_run_at` only.
pub async fn cron_fire_inserts_runs_with_their_origin_and_moves_next_run_at<S: Store>(store: S) {
    let def = cron_def(CRON_ID, HOURLY);
    cron_upsert(&store, def.clone()).await;
    let now = cron_now(&store).await;
    let tick = |n: i64| now + chrono::Duration::hours(n);

    cron_set_next(&store, CRON_ID, None, tick(1)).await;
    let entry = cron_entry(&store, CRON_ID).await;
    assert_eq!(entry.next_run_at, Some(tick(1)));
    assert_eq!(entry.last_run_at, None, "a fire without runs is no run");
    assert_eq!(entry.last_job_id, None);
    assert!(all_jobs(&store).await.is_empty());

    let outcome = cron_fire(
        &store,
        CRON_ID,
        Some(tick(1)),
        tick(2),
        vec![cron_run(&def, tick(1))],
        false,
    )
    .await;
    let CronFireOutcome::Fired(ids) = outcome else {
        panic!("a fire with the right expected value fires, got {outcome:?}")
    };
    assert_eq!(ids.len(), 1, "one run inserted");
    let first = ids[0];
    let job = row(&store, first).await;
    assert_eq!(
        job.recurring,
        Some(RecurringOrigin {
            id: CRON_ID.to_owned(),
            scheduled_for: tick(1),
        }),
        "the run carries its recurring id and tick"
    );
    assert_eq!(job.name, def.job.name);
    assert_eq!(job.args, def.job.args);
    assert_eq!(job.queue, def.job.queue);
    assert_eq!(job.priority, def.job.priority);
    assert_eq!(job.max_attempts, def.job.max_attempts);
    assert_eq!(job.state, JobState::Enqueued, "a run is runnable at once");
    let entry = cron_entry(&store, CRON_ID).await;
    assert_eq!(entry.next_run_at, Some(tick(2)), "next_run_at moved on");
    assert_eq!(entry.last_run_at, Some(tick(1)));
    assert_eq!(entry.last_job_id, Some(first));
    assert_eq!(entry.last_job_state, Some(JobState::Enqueued));

    // Catching up (`Misfire::RunAll`): several runs in one fire.
    let runs = (2..5).map(|n| cron_run(&def, tick(n))).collect();
    let outcome = cron_fire(&store, CRON_ID, Some(tick(2)), tick(5), runs, false).await;
    let CronFireOutcome::Fired(ids) = outcome else {
        panic!("expected a fire, got {outcome:?}")
    };
    assert_eq!(ids.len(), 3, "every run of the fire inserted");
    assert!(ids.windows(2).all(|w| w[0] < w[1]) && ids[0] > first);
    for (n, id) in (2..5).zip(&ids) {
        assert_eq!(
            row(&store, *id).await.recurring.map(|o| o.scheduled_for),
            Some(tick(n)),
            "runs are inserted in order with their ticks"
        );
    }
    let entry = cron_entry(&store, CRON_ID).await;
    assert_eq!(entry.next_run_at, Some(tick(5)));
    assert_eq!(entry.last_run_at, Some(tick(4)), "the latest tick");
    assert_eq!(entry.last_job_id, Some(ids[2]), "the latest run");

    let mut claimed: Vec<JobId> = claim(&store, ServerId::new(), 10)
        .await
        .into_iter()
        .map(|r| r.id)
        .collect();
    claimed.sort();
    assert_eq!(
        claimed,
        [first, ids[0], ids[1], ids[2]],
        "runs are claimable"
    );
}

/// A fire whose expected `next_run_at` is stale (another server fired the
/// tick, or the entry changed) is `Lost` and changes nothing: no job, the
/// same `next_run_at` and last run. A fire of an unknown id is `Lost` too.
pub async fn cron_fire_with_a_stale_expected_value_is_lost_and_changes_nothing<S: Store>(store: S) {
    let def = cron_def(CRON_ID, HOURLY);
    cron_upsert(&store, def.clone()).await;
    let now = cron_now(&store).await;
    let tick = |n: i64| now + chrono::Duration::hours(n);
    cron_set_next(&store, CRON_ID, None, tick(1)).await;
    let fired = cron_fire(
        &store,
        CRON_ID,
        Some(tick(1)),
        tick(2),
        vec![cron_run(&def, tick(1))],
        false,
    )
    .await;
    assert!(matches!(fired, CronFireOutcome::Fired(ref ids) if ids.len() == 1));
    let before = cron_entry(&store, CRON_ID).await;
    let jobs_before = all_jobs(&store).await;

    for stale in [None, Some(tick(1)), Some(tick(3)), Some(now)] {
        let outcome = cron_fire(
            &store,
            CRON_ID,
            stale,
            tick(9),
            vec![cron_run(&def, tick(2))],
            false,
        )
        .await;
        assert_eq!(
            outcome,
            CronFireOutcome::Lost,
            "a fire expecting next_run_at {stale:?} (it is {:?}) must be lost",
            before.next_run_at
        );
    }
    let outcome = cron_fire(
        &store,
        "no-such-recurring-job",
        None,
        tick(9),
        vec![],
        false,
    )
    .await;
    assert_eq!(outcome, CronFireOutcome::Lost, "firing an unknown id");

    assert_eq!(cron_entry(&store, CRON_ID).await, before, "nothing changed");
    assert_eq!(all_jobs(&store).await, jobs_before, "no job inserted");
    assert_eq!(cron_list(&store).await.len(), 1, "no entry created");
}

/// Exactly once per tick: many servers racing to fire the same tick (each
/// with the same plan) make exactly one `Fired` with one run; the others are
/// `Lost`. Holds for the first fire of a new entry and for later ticks.
pub async fn cron_fire_races_fire_each_tick_once<S: Store>(store: S) {
    const RACERS: usize = 8;
    const TICKS: i64 = 4;
    let def = cron_def(CRON_ID, HOURLY);
    cron_upsert(&store, def.clone()).await;
    let now = cron_now(&store).await;
    let tick = move |n: i64| now + chrono::Duration::hours(n);
    let store = Arc::new(store);

    let mut expected = None;
    for n in 0..=TICKS {
        let start = Arc::new(tokio::sync::Barrier::new(RACERS));
        let runs: Vec<NewJob> = expected.map_or_else(Vec::new, |t| vec![cron_run(&def, t)]);
        let tasks: Vec<_> = (0..RACERS)
            .map(|_| {
                let store = Arc::clone(&store);
                let start = Arc::clone(&start);
                let runs = runs.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    cron_fire(&*store, CRON_ID, expected, tick(n + 1), runs, false).await
                })
            })
            .collect();
        let mut fired = Vec::new();
        for task in tasks {
            match task.await.expect("a firing task panicked") {
                CronFireOutcome::Fired(ids) => fired.push(ids),
                CronFireOutcome::Lost => {}
                other => panic!("unexpected outcome {other:?}"),
            }
        }
        assert_eq!(
            fired.len(),
            1,
            "tick {n}: exactly one of {RACERS} racing fires must win, got {fired:?}"
        );
        assert_eq!(fired[0].len(), runs.len(), "the winner inserts the runs");
        expected = Some(tick(n + 1));
        assert_eq!(cron_entry(&*store, CRON_ID).await.next_run_at, expected);
    }

    let jobs = all_jobs(&*store).await;
    assert_eq!(jobs.len(), TICKS as usize, "one run per tick, no duplicate");
    let mut ticks = Vec::new();
    for id in jobs {
        ticks.push(row(&*store, id).await.recurring.unwrap().scheduled_for);
    }
    assert_eq!(ticks, (1..=TICKS).map(tick).collect::<Vec<_>>());
}

/// With `skip_if_running`, a fire while an earlier run of the same recurring
/// job is enqueued, processing or scheduled (waiting for a retry) is
/// `SkippedRunning`: no job, `next_run_at` moved on, the skip recorded in
/// `last_skipped`. Unfinished jobs of other recurring ids or none do not
/// count; once the run has finished the next tick fires; without
/// `skip_if_running` the tick fires whatever runs.
pub async fn cron_fire_skips_while_an_earlier_run_is_unfinished<S: Store>(store: S) {
    let def = cron_def(CRON_ID, HOURLY);
    let other = cron_def("other-recurring", HOURLY);
    cron_upsert(&store, def.clone()).await;
    let now = cron_now(&store).await;
    let tick = |n: i64| now + chrono::Duration::hours(n);
    let fire = |n: i64, skip: bool| {
        let store = &store;
        let def = &def;
        async move {
            cron_fire(
                store,
                CRON_ID,
                Some(tick(n)),
                tick(n + 1),
                vec![cron_run(def, tick(n))],
                skip,
            )
            .await
        }
    };
    // Unfinished jobs that are not runs of this recurring job.
    insert(&store, vec![new_job(), cron_run(&other, tick(0))]).await;
    cron_set_next(&store, CRON_ID, None, tick(1)).await;
    let CronFireOutcome::Fired(ids) = fire(1, true).await else {
        panic!("nothing of this recurring job runs: the tick must fire")
    };
    let first = ids[0];
    assert_eq!(cron_entry(&store, CRON_ID).await.last_skipped, None);
    let jobs_before = all_jobs(&store).await;

    // Enqueued.
    assert_eq!(fire(2, true).await, CronFireOutcome::SkippedRunning);
    let entry = cron_entry(&store, CRON_ID).await;
    assert_eq!(entry.next_run_at, Some(tick(3)), "a skip moves next_run_at");
    assert_eq!(entry.last_job_id, Some(first), "a skip is no run");
    assert_eq!(entry.last_run_at, Some(tick(1)));
    let (_, why) = entry
        .last_skipped
        .clone()
        .expect("the skip must be recorded in last_skipped");
    assert!(!why.trim().is_empty(), "the skip says why");
    assert_eq!(
        all_jobs(&store).await,
        jobs_before,
        "a skip inserts nothing"
    );

    // Processing.
    let server = ServerId::new();
    let claimed = claim(&store, server, 10).await;
    let run = claimed
        .iter()
        .find(|r| r.id == first)
        .expect("the run is claimable")
        .clone();
    for other in claimed.iter().filter(|r| r.id != first) {
        assert!(complete(&store, server, other.claim(), JobOutcome::Succeeded).await);
    }
    assert_eq!(fire(3, true).await, CronFireOutcome::SkippedRunning);

    // Scheduled for a retry.
    let retry = JobOutcome::Retry {
        error: "boom".to_owned(),
        after: HOUR,
    };
    assert!(complete(&store, server, run.claim(), retry).await);
    assert_eq!(row(&store, first).await.state, JobState::Scheduled);
    assert_eq!(fire(4, true).await, CronFireOutcome::SkippedRunning);
    assert_eq!(all_jobs(&store).await, jobs_before, "skips insert nothing");

    // Without skip_if_running the tick fires anyway.
    let CronFireOutcome::Fired(ids) = fire(5, false).await else {
        panic!("without skip_if_running a tick fires while a run is unfinished")
    };
    assert_eq!(ids.len(), 1);
    store
        .job_cancel(JobCancelParams::new(ids[0], "done".to_owned()))
        .await
        .expect("cancelling the extra run");

    // Finished: the next tick fires.
    store
        .job_cancel(JobCancelParams::new(first, "done".to_owned()))
        .await
        .expect("cancelling the first run");
    let outcome = fire(6, true).await;
    assert!(
        matches!(outcome, CronFireOutcome::Fired(ref ids) if ids.len() == 1),
        "every run finished: the tick must fire, got {outcome:?}"
    );
    assert_eq!(cron_entry(&store, CRON_ID).await.next_run_at, Some(tick(7)));
}

/// Calling `cron_upsert` again with an unchanged definition changes
/// nothing: `next_run_at` and the last run are kept (applications call
/// `add_or_update` at every start).
pub async fn cron_upsert_of_an_unchanged_def_keeps_next_run_at<S: Store>(store: S) {
    let def = cron_def(CRON_ID, HOURLY);
    cron_upsert(&store, def.clone()).await;
    let now = cron_now(&store).await;
    let tick = |n: i64| now + chrono::Duration::hours(n);
    cron_set_next(&store, CRON_ID, None, tick(1)).await;
    let fired = cron_fire(
        &store,
        CRON_ID,
        Some(tick(1)),
        tick(2),
        vec![cron_run(&def, tick(1))],
        false,
    )
    .await;
    assert!(matches!(fired, CronFireOutcome::Fired(_)));
    let before = cron_entry(&store, CRON_ID).await;
    for _ in 0..3 {
        cron_upsert(&store, def.clone()).await;
    }
    let rows = cron_list(&store).await;
    assert_eq!(rows.len(), 1, "upserting one id keeps one entry");
    assert_eq!(rows[0], before, "an unchanged definition changes nothing");
    assert_eq!(rows[0].next_run_at, Some(tick(2)));
}

/// A changed schedule or time zone resets `next_run_at` to `None` (due at
/// once, so the next pass computes the new first tick) and is stored; the
/// last run and pausing are kept.
pub async fn cron_upsert_with_a_changed_schedule_or_time_zone_resets_next_run_at<S: Store>(
    store: S,
) {
    let def = cron_def(CRON_ID, HOURLY);
    cron_upsert(&store, def.clone()).await;
    let now = cron_now(&store).await;
    let tick = |n: i64| now + chrono::Duration::hours(n);
    cron_set_next(&store, CRON_ID, None, tick(1)).await;
    let CronFireOutcome::Fired(ids) = cron_fire(
        &store,
        CRON_ID,
        Some(tick(1)),
        tick(2),
        vec![cron_run(&def, tick(1))],
        false,
    )
    .await
    else {
        panic!("expected a fire")
    };

    let mut rescheduled = def.clone();
    rescheduled.schedule = "30 * * * *".to_owned();
    cron_upsert(&store, rescheduled.clone()).await;
    let entry = cron_entry(&store, CRON_ID).await;
    assert_same_def(&entry.def, &rescheduled);
    assert_eq!(
        entry.next_run_at, None,
        "a changed schedule resets next_run_at"
    );
    assert_eq!(entry.last_job_id, Some(ids[0]), "the last run is kept");
    assert_eq!(entry.last_run_at, Some(tick(1)));
    assert_eq!(cron_due_ids(&store).await, [CRON_ID], "due at once");

    cron_set_next(&store, CRON_ID, None, tick(3)).await;
    let mut moved = rescheduled.clone();
    moved.time_zone = "America/New_York".to_owned();
    cron_upsert(&store, moved.clone()).await;
    let entry = cron_entry(&store, CRON_ID).await;
    assert_same_def(&entry.def, &moved);
    assert_eq!(
        entry.next_run_at, None,
        "a changed time zone resets next_run_at"
    );

    cron_set_next(&store, CRON_ID, None, tick(4)).await;
    store
        .cron_pause(CronPauseParams::new(CRON_ID.to_owned(), true))
        .await
        .expect("pausing");
    let mut again = moved.clone();
    again.schedule = "45 * * * *".to_owned();
    cron_upsert(&store, again).await;
    let entry = cron_entry(&store, CRON_ID).await;
    assert!(entry.paused, "an upsert keeps the entry paused");
    assert_eq!(entry.next_run_at, None);
    assert!(cron_due_ids(&store).await.is_empty(), "paused: not due");
}

/// A change of the job (arguments, queue, priority, attempts) or of the
/// policies keeps `next_run_at`, and is what the next pass reads: `cron_due`
/// returns the new definition, so the next fire runs the new arguments, and
/// so does `cron_trigger`.
pub async fn cron_upsert_with_changed_args_keeps_next_run_at_and_the_next_fire_uses_them<
    S: Store,
>(
    store: S,
) {
    let def = cron_def(CRON_ID, HOURLY);
    cron_upsert(&store, def.clone()).await;
    let now = cron_now(&store).await;
    let past = now - chrono::Duration::hours(1);
    cron_set_next(&store, CRON_ID, None, past).await;

    let mut changed = def.clone();
    changed.job.args = json!({ "recurring": CRON_ID, "n": 2, "new": true });
    changed.job.queue = "reports".to_owned();
    changed.job.priority = 7;
    changed.job.max_attempts = 9;
    changed.misfire = Misfire::Skip;
    changed.overlap = Overlap::Skip;
    cron_upsert(&store, changed.clone()).await;
    let entry = cron_entry(&store, CRON_ID).await;
    assert_same_def(&entry.def, &changed);
    assert_eq!(
        entry.next_run_at,
        Some(past),
        "changing only the job or the policies keeps next_run_at"
    );

    // The next pass reads the new definition and fires it.
    let due = cron_due(&store, 10).await;
    assert_eq!(due.due.len(), 1);
    let read = &due.due[0];
    assert_same_def(&read.def, &changed);
    let outcome = cron_fire(
        &store,
        CRON_ID,
        read.next_run_at,
        now + chrono::Duration::hours(1),
        vec![cron_run(&read.def, past)],
        false,
    )
    .await;
    let CronFireOutcome::Fired(ids) = outcome else {
        panic!("expected a fire, got {outcome:?}")
    };
    let run = row(&store, ids[0]).await;
    assert_eq!(
        run.args, changed.job.args,
        "the next fire runs the new args"
    );
    assert_eq!(run.queue, "reports");
    assert_eq!(run.priority, 7);
    assert_eq!(run.max_attempts, 9);

    let triggered = row(&store, cron_trigger(&store, CRON_ID).await).await;
    assert_eq!(
        triggered.args, changed.job.args,
        "a trigger runs the new args"
    );
    assert_eq!(triggered.queue, "reports");
    assert_eq!(triggered.priority, 7);
    assert_eq!(triggered.max_attempts, 9);
}

/// A paused entry is never due (with `next_run_at` passed or unset) and is
/// listed as paused; resuming resets `next_run_at` to `None` (ticks passed
/// while paused are not run) and makes it due again. Pausing or resuming an
/// unknown id is `NotFound`.
pub async fn cron_pause_and_resume<S: Store>(store: S) {
    let def = cron_def(CRON_ID, HOURLY);
    cron_upsert(&store, def).await;
    let now = cron_now(&store).await;
    let past = now - chrono::Duration::hours(1);
    cron_set_next(&store, CRON_ID, None, past).await;
    assert_eq!(cron_due_ids(&store).await, [CRON_ID]);
    let pause = |paused: bool| store.cron_pause(CronPauseParams::new(CRON_ID.to_owned(), paused));

    pause(true).await.expect("pausing");
    let entry = cron_entry(&store, CRON_ID).await;
    assert!(entry.paused, "listed as paused");
    assert!(
        cron_due_ids(&store).await.is_empty(),
        "a paused entry is not due, though its next_run_at has passed"
    );
    pause(true).await.expect("pausing twice");
    assert!(cron_entry(&store, CRON_ID).await.paused);

    pause(false).await.expect("resuming");
    let entry = cron_entry(&store, CRON_ID).await;
    assert!(!entry.paused);
    assert_eq!(
        entry.next_run_at, None,
        "resuming resets next_run_at: ticks passed while paused are not run"
    );
    assert_eq!(cron_due_ids(&store).await, [CRON_ID], "due again");

    for paused in [true, false] {
        assert_kind(
            store
                .cron_pause(CronPauseParams::new(
                    "no-such-recurring-job".to_owned(),
                    paused,
                ))
                .await,
            StoreErrorKind::NotFound,
            "pausing or resuming an unknown recurring job",
        );
    }
    assert_eq!(cron_list(&store).await.len(), 1, "no entry created");
}

/// A fire planned before a pause, a resume or an edit of the entry is lost:
/// the revision it names is stale. A paused entry never fires, and an edit
/// that keeps `next_run_at` still makes an older plan lose (so a schedule
/// changed while `next_run_at` is unset cannot be overwritten by a plan made
/// from the old schedule).
pub async fn cron_fire_is_lost_after_a_pause_or_an_edit<S: Store>(store: S) {
    let def = cron_def(CRON_ID, HOURLY);
    cron_upsert(&store, def.clone()).await;
    let now = cron_now(&store).await;
    let next = now + chrono::Duration::hours(1);
    let fire = |revision: i64, expected: Option<Timestamp>| {
        store.cron_fire(
            CronFireParams::new(
                CRON_ID.to_owned(),
                expected,
                next,
                vec![cron_run(&def, now)],
                false,
            )
            .expected_revision(revision),
        )
    };

    // A plan read before a pause loses, even with the right next_run_at.
    let before_pause = cron_entry(&store, CRON_ID).await.revision;
    store
        .cron_pause(CronPauseParams::new(CRON_ID.to_owned(), true))
        .await
        .expect("pausing");
    assert_eq!(
        fire(before_pause, None).await.expect("fire"),
        CronFireOutcome::Lost,
        "paused"
    );
    let paused = cron_entry(&store, CRON_ID).await;
    assert_ne!(paused.revision, before_pause, "pausing bumps the revision");
    assert_eq!(
        fire(paused.revision, None).await.expect("fire"),
        CronFireOutcome::Lost,
        "a paused entry never fires"
    );
    store
        .cron_pause(CronPauseParams::new(CRON_ID.to_owned(), false))
        .await
        .expect("resuming");

    // A plan read before an edit of the schedule loses.
    let before_edit = cron_entry(&store, CRON_ID).await.revision;
    cron_upsert(&store, cron_def(CRON_ID, "30 * * * *")).await;
    let edited = cron_entry(&store, CRON_ID).await;
    assert_eq!(edited.next_run_at, None);
    assert_ne!(edited.revision, before_edit, "an edit bumps the revision");
    assert_eq!(
        fire(before_edit, None).await.expect("fire"),
        CronFireOutcome::Lost,
        "stale plan"
    );
    assert!(
        cron_entry(&store, CRON_ID).await.next_run_at.is_none(),
        "nothing changed"
    );

    // An unchanged upsert keeps the revision, and the current plan fires.
    cron_upsert(&store, cron_def(CRON_ID, "30 * * * *")).await;
    assert_eq!(cron_entry(&store, CRON_ID).await.revision, edited.revision);
    assert!(matches!(
        fire(edited.revision, None).await.expect("fire"),
        CronFireOutcome::Fired(ids) if ids.len() == 1
    ));
}

/// `cron_remove` removes the entry and says it existed; removing it again
/// says it did not. A removed entry is not listed, not due, cannot fire or be
/// triggered; its past runs stay.
pub async fn cron_remove_removes_once<S: Store>(store: S) {
    let def = cron_def(CRON_ID, HOURLY);
    cron_upsert(&store, def.clone()).await;
    cron_upsert(&store, cron_def("kept", HOURLY)).await;
    let now = cron_now(&store).await;
    cron_set_next(&store, CRON_ID, None, now).await;
    let CronFireOutcome::Fired(ids) = cron_fire(
        &store,
        CRON_ID,
        Some(now),
        now + chrono::Duration::hours(1),
        vec![cron_run(&def, now)],
        false,
    )
    .await
    else {
        panic!("expected a fire")
    };

    let remove = |id: &str| store.cron_remove(CronRemoveParams::new(id.to_owned()));
    assert!(remove(CRON_ID).await.expect("removing"), "it existed");
    assert!(
        !remove(CRON_ID).await.expect("removing again"),
        "it is gone"
    );
    assert!(!remove("never-existed")
        .await
        .expect("removing an unknown id"));
    let listed: Vec<String> = cron_list(&store)
        .await
        .into_iter()
        .map(|r| r.def.id)
        .collect();
    assert_eq!(listed, ["kept"], "a removed entry is not listed");
    assert_eq!(cron_due_ids(&store).await, ["kept"], "nor due");
    assert_eq!(
        cron_fire(
            &store,
            CRON_ID,
            Some(now + chrono::Duration::hours(1)),
            now + chrono::Duration::hours(2),
            vec![cron_run(&def, now)],
            false
        )
        .await,
        CronFireOutcome::Lost,
        "a removed entry cannot fire"
    );
    assert_kind(
        store
            .cron_trigger(CronTriggerParams::new(CRON_ID.to_owned()))
            .await,
        StoreErrorKind::NotFound,
        "triggering a removed recurring job",
    );
    assert_eq!(all_jobs(&store).await, ids, "its past runs stay");
}

/// `cron_trigger` enqueues a run now, off schedule: runnable at once, with
/// the definition's job and a recurring origin whose tick is the store's
/// clock; it does not move `next_run_at`, and the list shows it as the
/// latest run. An unknown id is `NotFound`.
pub async fn cron_trigger_runs_now_without_moving_the_schedule<S: Store>(store: S) {
    let def = cron_def(CRON_ID, HOURLY);
    cron_upsert(&store, def.clone()).await;
    let now = cron_now(&store).await;
    let next = now + chrono::Duration::hours(1);
    cron_set_next(&store, CRON_ID, None, next).await;

    let id = cron_trigger(&store, CRON_ID).await;
    let job = row(&store, id).await;
    assert_eq!(job.state, JobState::Enqueued, "a triggered run is runnable");
    assert_eq!(job.name, def.job.name);
    assert_eq!(job.args, def.job.args);
    let origin = job
        .recurring
        .clone()
        .expect("a triggered run has an origin");
    assert_eq!(origin.id, CRON_ID);
    assert_about(
        origin.scheduled_for - job.created_at,
        Duration::ZERO,
        "a triggered run's tick is the store's clock",
    );
    let entry = cron_entry(&store, CRON_ID).await;
    assert_eq!(entry.next_run_at, Some(next), "a trigger keeps next_run_at");
    assert_eq!(
        entry.last_job_id,
        Some(id),
        "the latest run is the triggered one"
    );
    assert_eq!(entry.last_job_state, Some(JobState::Enqueued));
    assert!(cron_due_ids(&store).await.is_empty(), "and it is not due");
    claim_only(&store, ServerId::new(), id).await;

    let second = cron_trigger(&store, CRON_ID).await;
    assert!(second > id, "each trigger enqueues a run");
    assert_kind(
        store
            .cron_trigger(CronTriggerParams::new("no-such-recurring-job".to_owned()))
            .await,
        StoreErrorKind::NotFound,
        "triggering an unknown recurring job",
    );
}

/// `cron_list` returns every entry ordered by id, each with its latest run:
/// its tick, its job, that job's current state, and its latest error once
/// it failed. An entry never run has none of these.
pub async fn cron_list_reports_the_last_run_ordered_by_id<S: Store>(store: S) {
    let (failing, passing, idle) = ("b-failing", "a-passing", "c-idle");
    for id in [idle, failing, passing] {
        cron_upsert(&store, cron_def(id, HOURLY)).await;
    }
    let ids: Vec<String> = cron_list(&store)
        .await
        .into_iter()
        .map(|r| r.def.id)
        .collect();
    assert_eq!(ids, [passing, failing, idle], "listed by id");

    let now = cron_now(&store).await;
    let mut runs = Vec::new();
    for id in [failing, passing] {
        cron_set_next(&store, id, None, now).await;
        let outcome = cron_fire(
            &store,
            id,
            Some(now),
            now + chrono::Duration::hours(1),
            vec![cron_run(&cron_def(id, HOURLY), now)],
            false,
        )
        .await;
        let CronFireOutcome::Fired(ids) = outcome else {
            panic!("expected a fire, got {outcome:?}")
        };
        runs.push(ids[0]);
    }
    let (failing_run, passing_run) = (runs[0], runs[1]);
    let server = ServerId::new();
    for claimed in claim(&store, server, 10).await {
        let outcome = if claimed.id == failing_run {
            JobOutcome::Failed {
                error: "the report server is down".to_owned(),
            }
        } else {
            JobOutcome::Succeeded
        };
        assert!(complete(&store, server, claimed.claim(), outcome).await);
    }

    let rows = cron_list(&store).await;
    let ids: Vec<&str> = rows.iter().map(|r| r.def.id.as_str()).collect();
    assert_eq!(ids, [passing, failing, idle], "still listed by id");
    let (passed, failed, never) = (&rows[0], &rows[1], &rows[2]);

    assert_eq!(failed.last_run_at, Some(now));
    assert_eq!(failed.last_job_id, Some(failing_run));
    assert_eq!(failed.last_job_state, Some(JobState::Failed));
    assert_eq!(
        failed.last_error.as_deref(),
        Some("the report server is down"),
        "the latest run's error"
    );
    assert_eq!(failed.next_run_at, Some(now + chrono::Duration::hours(1)));

    assert_eq!(passed.last_run_at, Some(now));
    assert_eq!(passed.last_job_id, Some(passing_run));
    assert_eq!(passed.last_job_state, Some(JobState::Succeeded));
    assert_eq!(passed.last_error, None);

    assert_eq!(never.last_run_at, None);
    assert_eq!(never.last_job_id, None);
    assert_eq!(never.last_job_state, None);
    assert_eq!(never.last_error, None);
    assert_eq!(never.next_run_at, None);
}
