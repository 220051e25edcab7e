//! Server unit tests, on MemoryStore with a paused clock, so backoff, delays,
//! timeouts and grace periods elapse instantly and deterministically.
//! Jobs are declared with `#[job(crate = "crate")]`, as users write them.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::*;
use crate::job::{BoxError, Invocation, JobContext, JobOptions, Permanent, Request, Snooze};
use crate::model::{JobDetail, JobState};
use crate::slow::SlowCalls;
use crate::store::{BoxFuture, CancelOutcome, JobClaimParams, Layered, Store};
use crate::{Jobs, MemoryStore};

async fn setup() -> (MemoryStore, Jobs) {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    (store, jobs)
}

async fn detail(jobs: &Jobs, id: crate::JobId) -> JobDetail {
    jobs.get(id).await.unwrap().expect("the job exists")
}

/// Waits (in paused time, so instantly) until the job reaches `state`.
async fn wait_for(jobs: &Jobs, id: crate::JobId, state: JobState) -> JobDetail {
    for _ in 0..40_000 {
        let d = detail(jobs, id).await;
        if d.job.state == state {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "job {id} never reached {state}: {:?}",
        detail(jobs, id).await
    );
}

static RAN: AtomicU32 = AtomicU32::new(0);
#[jobs_macros::job(crate = "crate", name = "test_succeeds", backoff = fixed("5s"))]
async fn succeeds(n: u32, _ctx: JobContext) -> Result<(), BoxError> {
    RAN.fetch_add(n, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn runs_an_enqueued_job_with_its_arguments() {
    let (store, jobs) = setup().await;
    let id = jobs.enqueue(Request::new(Succeeds { n: 7 })).await.unwrap();
    let server = Server::builder(store).start().await.unwrap();
    let d = wait_for(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
    assert!(RAN.load(Ordering::SeqCst) >= 7);
    assert_eq!(d.job.attempt, 1);
    let states: Vec<_> = d.history.iter().map(|e| e.state).collect();
    assert_eq!(
        states,
        [
            JobState::Enqueued,
            JobState::Processing,
            JobState::Succeeded
        ]
    );
}

#[jobs_macros::job(crate = "crate", name = "test_always_fails", backoff = fixed("5s"), max_attempts = 3)]
#[allow(unused_variables)]
async fn always_fails(n: u32, ctx: JobContext) -> Result<(), BoxError> {
    Err(format!("boom on attempt {}", ctx.attempt()).into())
}

#[tokio::test(start_paused = true)]
async fn retries_with_backoff_until_max_attempts_then_fails_keeping_every_error() {
    let (store, jobs) = setup().await;
    let id = jobs
        .enqueue(Request::new(AlwaysFails { n: 0 }))
        .await
        .unwrap();
    let server = Server::builder(store).start().await.unwrap();
    let d = wait_for(&jobs, id, JobState::Failed).await;
    server.shutdown().await;
    assert_eq!(d.job.attempt, 3);
    assert_eq!(d.job.last_error.as_deref(), Some("boom on attempt 3"));
    let errors: Vec<_> = d.history.iter().filter_map(|e| e.error.clone()).collect();
    assert_eq!(
        errors,
        [
            "boom on attempt 1",
            "boom on attempt 2",
            "boom on attempt 3"
        ]
    );
    // Retries wait for the backoff: each retry is scheduled, then claimed later.
    let retried: Vec<_> = d
        .history
        .iter()
        .filter(|e| e.state == JobState::Scheduled)
        .collect();
    assert_eq!(retried.len(), 2);
    let claims: Vec<_> = d
        .history
        .iter()
        .filter(|e| e.state == JobState::Processing)
        .collect();
    for (retry, next_claim) in retried.iter().zip(&claims[1..]) {
        assert!(next_claim.at - retry.at >= chrono::Duration::seconds(5));
    }
    // A failed job can be retried by hand, with fresh attempts.
    jobs.retry(id).await.unwrap();
    assert_eq!(detail(&jobs, id).await.job.state, JobState::Enqueued);
}

#[tokio::test(start_paused = true)]
async fn a_per_enqueue_max_attempts_overrides_the_attribute() {
    let (store, jobs) = setup().await;
    let id = jobs
        .enqueue(Request::new(AlwaysFails { n: 0 }).max_attempts(1))
        .await
        .unwrap();
    let server = Server::builder(store).start().await.unwrap();
    let d = wait_for(&jobs, id, JobState::Failed).await;
    server.shutdown().await;
    assert_eq!(d.job.attempt, 1);
}

#[tokio::test(start_paused = true)]
async fn a_per_enqueue_backoff_is_waited_between_attempts_instead_of_the_attribute() {
    let (store, jobs) = setup().await;
    let id = jobs
        .enqueue(
            Request::new(AlwaysFails { n: 0 })
                .backoff(crate::Backoff::fixed(Duration::from_secs(600))),
        )
        .await
        .unwrap();
    let server = Server::builder(store).start().await.unwrap();
    let d = wait_for(&jobs, id, JobState::Failed).await;
    server.shutdown().await;
    assert_eq!(d.job.attempt, 3);
    // Each retry is scheduled with the request's backoff, not the attribute's 5 s.
    let retried: Vec<_> = d
        .history
        .iter()
        .filter(|e| e.state == JobState::Scheduled)
        .collect();
    let claims: Vec<_> = d
        .history
        .iter()
        .filter(|e| e.state == JobState::Processing)
        .collect();
    assert_eq!(retried.len(), 2);
    for (retry, next_claim) in retried.iter().zip(&claims[1..]) {
        assert!(
            next_claim.at - retry.at >= chrono::Duration::seconds(600),
            "a retry was claimed before the request's backoff: {:?}",
            d.history
        );
    }
}

static PANICS: AtomicU32 = AtomicU32::new(0);
#[jobs_macros::job(crate = "crate", name = "test_panics_once", backoff = fixed("5s"))]
#[allow(unused_variables)]
async fn panics_once(n: u32, _ctx: JobContext) -> Result<(), BoxError> {
    if PANICS.fetch_add(1, Ordering::SeqCst) == 0 {
        panic!("the job blew up");
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_panic_is_a_failed_attempt_and_the_server_and_slot_survive() {
    let (store, jobs) = setup().await;
    let id = jobs
        .enqueue(Request::new(PanicsOnce { n: 0 }))
        .await
        .unwrap();
    // One slot: the retry can only run if the panic freed it.
    let server = Server::builder(store).concurrency(1).start().await.unwrap();
    let d = wait_for(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(d.job.attempt, 2);
    let errors: Vec<_> = d.history.iter().filter_map(|e| e.error.clone()).collect();
    assert_eq!(errors, ["panicked: the job blew up"]);
}

#[jobs_macros::job(crate = "crate", name = "test_slow_but_polite", backoff = fixed("5s"), max_attempts = 1, timeout = "2s")]
#[allow(unused_variables)]
async fn slow_but_polite(n: u32, ctx: JobContext) -> Result<(), BoxError> {
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(3600)) => Ok(()),
        _ = ctx.cancelled() => Err("stopped because I was asked to".into()),
    }
}

#[tokio::test(start_paused = true)]
async fn a_timeout_cancels_the_job_through_its_context_and_fails_the_attempt() {
    let (store, jobs) = setup().await;
    let id = jobs
        .enqueue(Request::new(SlowButPolite { n: 0 }))
        .await
        .unwrap();
    let server = Server::builder(store).start().await.unwrap();
    let d = wait_for(&jobs, id, JobState::Failed).await;
    server.shutdown().await;
    assert_eq!(d.job.last_error.as_deref(), Some("timed out after 2s"));
}

#[tokio::test(start_paused = true)]
async fn a_per_enqueue_timeout_overrides_the_attribute() {
    let (store, jobs) = setup().await;
    let id = jobs
        .enqueue(Request::new(SlowButPolite { n: 0 }).timeout(Duration::from_secs(30)))
        .await
        .unwrap();
    let server = Server::builder(store).start().await.unwrap();
    let d = wait_for(&jobs, id, JobState::Failed).await;
    server.shutdown().await;
    assert_eq!(d.job.last_error.as_deref(), Some("timed out after 30s"));
}

static STUBBORN_STOPPED: AtomicU32 = AtomicU32::new(0);
#[jobs_macros::job(crate = "crate", name = "test_stubborn", backoff = fixed("5s"), max_attempts = 1, timeout = "1s")]
#[allow(unused_variables)]
async fn stubborn(n: u32, _ctx: JobContext) -> Result<(), BoxError> {
    struct Dropped;
    impl Drop for Dropped {
        fn drop(&mut self) {
            STUBBORN_STOPPED.fetch_add(1, Ordering::SeqCst);
        }
    }
    let _guard = Dropped;
    // Ignores cancellation entirely.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_job_that_ignores_cancellation_is_aborted_after_the_grace_period() {
    let (store, jobs) = setup().await;
    let id = jobs.enqueue(Request::new(Stubborn { n: 0 })).await.unwrap();
    let server = Server::builder(store)
        .cancel_grace(Duration::from_secs(3))
        .start()
        .await
        .unwrap();
    let d = wait_for(&jobs, id, JobState::Failed).await;
    server.shutdown().await;
    assert_eq!(
        d.job.last_error.as_deref(),
        Some("timed out after 1s; aborted after it ignored cancellation")
    );
    assert_eq!(
        STUBBORN_STOPPED.load(Ordering::SeqCst),
        1,
        "the job's future was dropped"
    );
    let claimed = d
        .history
        .iter()
        .find(|e| e.state == JobState::Processing)
        .unwrap();
    let failed = d
        .history
        .iter()
        .find(|e| e.state == JobState::Failed)
        .unwrap();
    assert!(failed.at - claimed.at >= chrono::Duration::seconds(4));
}

static SNOOZES: AtomicU32 = AtomicU32::new(0);
#[jobs_macros::job(crate = "crate", name = "test_snoozes_twice", backoff = fixed("5s"), max_attempts = 1)]
#[allow(unused_variables)]
async fn snoozes_twice(n: u32, _ctx: JobContext) -> Result<(), BoxError> {
    if SNOOZES.fetch_add(1, Ordering::SeqCst) < 2 {
        return Err(Snooze::after(Duration::from_secs(60)).into());
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_snooze_runs_the_job_later_without_counting_an_attempt() {
    let (store, jobs) = setup().await;
    // One attempt allowed: two snoozes would fail it if they were counted.
    let id = jobs
        .enqueue(Request::new(SnoozesTwice { n: 0 }))
        .await
        .unwrap();
    let server = Server::builder(store).start().await.unwrap();
    let d = wait_for(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(d.job.attempt, 1);
    assert_eq!(SNOOZES.load(Ordering::SeqCst), 3);
}

static PERMANENT_RUNS: AtomicU32 = AtomicU32::new(0);
#[jobs_macros::job(crate = "crate", name = "test_gives_up", backoff = fixed("5s"))]
#[allow(unused_variables)]
async fn gives_up(n: u32, _ctx: JobContext) -> Result<(), BoxError> {
    PERMANENT_RUNS.fetch_add(1, Ordering::SeqCst);
    Err(Permanent::new("the account no longer exists").into())
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_fails_the_job_without_retrying() {
    let (store, jobs) = setup().await;
    let id = jobs.enqueue(Request::new(GivesUp { n: 0 })).await.unwrap();
    let server = Server::builder(store).start().await.unwrap();
    let d = wait_for(&jobs, id, JobState::Failed).await;
    server.shutdown().await;
    assert_eq!(d.job.attempt, 1);
    assert_eq!(PERMANENT_RUNS.load(Ordering::SeqCst), 1);
    assert_eq!(
        d.job.last_error.as_deref(),
        Some("the account no longer exists")
    );
}

#[tokio::test(start_paused = true)]
async fn arguments_that_no_longer_deserialize_fail_with_the_serde_error() {
    let (store, jobs) = setup().await;
    let mut bad = crate::NewJob::new(Succeeds::NAME, serde_json::json!({ "n": "not a number" }));
    bad.max_attempts = 2;
    let bad_id = jobs.insert(vec![bad]).await.unwrap()[0].id;
    let good_id = jobs.enqueue(Request::new(Succeeds { n: 1 })).await.unwrap();
    let server = Server::builder(store).concurrency(1).start().await.unwrap();
    let d = wait_for(&jobs, bad_id, JobState::Failed).await;
    wait_for(&jobs, good_id, JobState::Succeeded).await;
    server.shutdown().await;
    let error = d.job.last_error.unwrap();
    assert!(
        error.contains("test_succeeds")
            && error.contains("invalid type: string \"not a number\", expected u32"),
        "{error}"
    );
    assert_eq!(d.job.attempt, 2);
}

/// A resource only the servers of queue `reports` are given.
#[derive(Clone)]
struct ReportsDb;

#[jobs_macros::job(crate = "crate", name = "test_builds_report", queue = "reports", backoff = fixed("5s"))]
async fn builds_report(_db: crate::State<ReportsDb>) -> Result<(), BoxError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_server_starts_without_the_resources_of_jobs_of_queues_it_does_not_serve() {
    let (store, jobs) = setup().await;
    let server = Server::builder(store.clone())
        .queues(["mail"])
        .start()
        .await
        .expect("`test_builds_report` is of queue `reports`, which this server does not serve");
    let id = jobs
        .enqueue(Request::new(Succeeds { n: 0 }).queue("mail"))
        .await
        .unwrap();
    wait_for(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
    // A server of that queue is still checked.
    let error = Server::builder(store)
        .queues(["reports"])
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("takes `State<"), "{error}");
    assert!(error.contains("ReportsDb"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_job_put_into_a_served_queue_without_its_resource_fails_for_good_naming_the_type() {
    let (store, jobs) = setup().await;
    let server = Server::builder(store)
        .queues(["mail"])
        .start()
        .await
        .unwrap();
    let id = jobs
        .enqueue(Request::new(BuildsReport {}).queue("mail"))
        .await
        .unwrap();
    let d = wait_for(&jobs, id, JobState::Failed).await;
    // Retrying cannot give this server the resource: one attempt, not all.
    assert_eq!(d.job.attempt, 1);
    assert!(d.job.max_attempts > 1);
    let error = d.job.last_error.expect("the attempt's error is kept");
    assert!(
        error.contains("job `test_builds_report` takes `State<")
            && error.contains("ReportsDb")
            && error.contains("queue `mail`")
            && error.contains("`Server::builder(..).state(..)`"),
        "{error}"
    );
    // The server goes on running other jobs.
    let next = jobs
        .enqueue(Request::new(Succeeds { n: 0 }).queue("mail"))
        .await
        .unwrap();
    wait_for(&jobs, next, JobState::Succeeded).await;
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_job_this_server_does_not_know_is_left_for_one_that_does() {
    let (store, jobs) = setup().await;
    let unknown = jobs
        .insert(vec![crate::NewJob::new(
            "deployed_tomorrow",
            serde_json::json!({}),
        )])
        .await
        .unwrap()[0]
        .id;
    let known = jobs.enqueue(Request::new(Succeeds { n: 1 })).await.unwrap();
    let server = Server::builder(store).start().await.unwrap();
    wait_for(&jobs, known, JobState::Succeeded).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    server.shutdown().await;
    let d = detail(&jobs, unknown).await;
    assert_eq!(d.job.state, JobState::Enqueued);
    assert_eq!(d.job.attempt, 0);
}

#[tokio::test(start_paused = true)]
async fn a_delayed_job_runs_at_its_time_and_not_before() {
    let (store, jobs) = setup().await;
    let id = jobs
        .enqueue(Request::new(Succeeds { n: 1 }).delay(Duration::from_secs(30)))
        .await
        .unwrap();
    let server = Server::builder(store).start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert_eq!(detail(&jobs, id).await.job.state, JobState::Scheduled);
    let d = wait_for(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
    let created = d.job.created_at;
    let started = d
        .history
        .iter()
        .find(|e| e.state == JobState::Processing)
        .unwrap()
        .at;
    assert!(started - created >= chrono::Duration::seconds(30));
    // An idle server starts it within a second of its time (it polls every 500 ms).
    assert!(started - created <= chrono::Duration::seconds(31));
}

static LONG_DONE: AtomicU32 = AtomicU32::new(0);
#[jobs_macros::job(crate = "crate", name = "test_runs_ten_minutes", backoff = fixed("5s"))]
#[allow(unused_variables)]
async fn runs_ten_minutes(n: u32, _ctx: JobContext) -> Result<(), BoxError> {
    tokio::time::sleep(Duration::from_secs(600)).await;
    LONG_DONE.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_healthy_long_job_keeps_its_lease_and_runs_once() {
    let (store, jobs) = setup().await;
    let id = jobs
        .enqueue(Request::new(RunsTenMinutes { n: 0 }))
        .await
        .unwrap();
    // Leases of 3 s against a 10-minute job: only renewal keeps it.
    let server = Server::builder(store)
        .lease(Duration::from_secs(3))
        .rescue_interval(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    let d = wait_for(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(d.job.attempt, 1);
    assert_eq!(LONG_DONE.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn the_job_of_a_dead_server_is_rescued_and_run_again() {
    let (store, jobs) = setup().await;
    let id = jobs.enqueue(Request::new(Succeeds { n: 1 })).await.unwrap();
    // A server that claims the job and dies: it never renews nor completes.
    let dead = crate::ServerId::new();
    let claimed = Store::job_claim(
        &store,
        JobClaimParams::new(dead)
            .queues(["default"])
            .names([Succeeds::NAME])
            .limit(1)
            .lease(Duration::from_secs(30)),
    )
    .await
    .unwrap();
    assert_eq!(claimed.len(), 1);
    let server = Server::builder(store).start().await.unwrap();
    let d = wait_for(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(d.job.attempt, 2);
    let claim_at = d
        .history
        .iter()
        .find(|e| e.state == JobState::Processing)
        .unwrap()
        .at;
    let done_at = d.history.last().unwrap().at;
    // The recovery bound with default intervals: lease (30 s) + rescue interval (15 s).
    assert!(done_at - claim_at <= chrono::Duration::seconds(46), "{d:?}");
}

static DRAIN_DONE: AtomicU32 = AtomicU32::new(0);
#[jobs_macros::job(crate = "crate", name = "test_takes_ten_seconds", backoff = fixed("5s"))]
#[allow(unused_variables)]
async fn takes_ten_seconds(n: u32, _ctx: JobContext) -> Result<(), BoxError> {
    tokio::time::sleep(Duration::from_secs(10)).await;
    DRAIN_DONE.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_running_jobs_finish_within_the_timeout() {
    let (store, jobs) = setup().await;
    let id = jobs
        .enqueue(Request::new(TakesTenSeconds { n: 0 }))
        .await
        .unwrap();
    let server = Server::builder(store).start().await.unwrap();
    wait_for(&jobs, id, JobState::Processing).await;
    server.shutdown().await;
    assert_eq!(detail(&jobs, id).await.job.state, JobState::Succeeded);
    assert_eq!(DRAIN_DONE.load(Ordering::SeqCst), 1);
    assert!(
        jobs.servers().await.unwrap().is_empty(),
        "the server record is removed"
    );
}

#[jobs_macros::job(crate = "crate", name = "test_hangs", backoff = fixed("5s"))]
#[allow(unused_variables)]
async fn hangs(n: u32, ctx: JobContext) -> Result<(), BoxError> {
    ctx.cancelled().await;
    Err("interrupted".into())
}

#[tokio::test(start_paused = true)]
async fn shutdown_hands_back_unfinished_jobs_at_once_without_spending_an_attempt() {
    let (store, jobs) = setup().await;
    let id = jobs.enqueue(Request::new(Hangs { n: 0 })).await.unwrap();
    let other = jobs
        .enqueue(Request::new(Succeeds { n: 1 }).delay(Duration::from_secs(3600)))
        .await
        .unwrap();
    let server = Server::builder(store)
        .shutdown_timeout(Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    wait_for(&jobs, id, JobState::Processing).await;
    server.shutdown().await;
    let d = detail(&jobs, id).await;
    assert_eq!(d.job.state, JobState::Enqueued, "{d:?}");
    assert_eq!(d.job.attempt, 0, "the interrupted attempt is not counted");
    assert_eq!(detail(&jobs, other).await.job.state, JobState::Scheduled);
}

#[jobs_macros::job(crate = "crate", name = "test_waits_for_cancel", backoff = fixed("5s"))]
#[allow(unused_variables)]
async fn waits_for_cancel(n: u32, ctx: JobContext) -> Result<(), BoxError> {
    ctx.cancelled().await;
    Err("stopped".into())
}

#[tokio::test(start_paused = true)]
async fn a_running_job_can_be_cancelled_through_jobs() {
    let (store, jobs) = setup().await;
    let id = jobs
        .enqueue(Request::new(WaitsForCancel { n: 0 }))
        .await
        .unwrap();
    let server = Server::builder(store).start().await.unwrap();
    wait_for(&jobs, id, JobState::Processing).await;
    assert_eq!(jobs.cancel(id).await.unwrap(), CancelOutcome::Requested);
    let d = wait_for(&jobs, id, JobState::Cancelled).await;
    server.shutdown().await;
    assert_eq!(d.job.attempt, 1);
}

/// When [`notes_its_cancel`] saw its cancel, in (paused) tokio time.
static CANCEL_SEEN_AT: std::sync::Mutex<Option<tokio::time::Instant>> = std::sync::Mutex::new(None);

#[jobs_macros::job(crate = "crate", name = "test_notes_its_cancel", backoff = fixed("5s"))]
#[allow(unused_variables)]
async fn notes_its_cancel(n: u32, ctx: JobContext) -> Result<(), BoxError> {
    ctx.cancelled().await;
    *CANCEL_SEEN_AT.lock().unwrap() = Some(tokio::time::Instant::now());
    Err("stopped".into())
}

/// Regression (reliability issue: a cancel reached a running job only at its
/// next lease renewal, up to a third of the lease later). The store's cancel
/// wake-up makes the lease keeper renew at once, and the renewal reports the
/// cancel: with a 60 s lease, renewed 18 to 20 s apart, the job learns of it
/// before any of that (paused) time passes.
#[tokio::test(start_paused = true)]
async fn a_cancel_reaches_a_running_job_at_once_not_at_the_next_renewal() {
    let (store, jobs) = setup().await;
    let id = jobs
        .enqueue(Request::new(NotesItsCancel { n: 0 }))
        .await
        .unwrap();
    let server = Server::builder(store)
        .lease(Duration::from_secs(60))
        .start()
        .await
        .unwrap();
    wait_for(&jobs, id, JobState::Processing).await;
    let asked_at = tokio::time::Instant::now();
    assert_eq!(jobs.cancel(id).await.unwrap(), CancelOutcome::Requested);
    let d = wait_for(&jobs, id, JobState::Cancelled).await;
    server.shutdown().await;
    let seen_at = CANCEL_SEEN_AT
        .lock()
        .unwrap()
        .expect("the job saw its cancel");
    assert!(
        seen_at - asked_at < Duration::from_secs(1),
        "the cancel took {:?} to reach the job: it waited for a renewal",
        seen_at - asked_at
    );
    assert_eq!(d.job.attempt, 1);
}

#[jobs_macros::job(crate = "crate", name = "test_reports_progress", backoff = fixed("5s"))]
#[allow(unused_variables)]
async fn reports_progress(n: u32, ctx: JobContext) -> Result<(), BoxError> {
    ctx.set_progress_with(40, "halfway there");
    tokio::time::sleep(Duration::from_secs(30)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn progress_reported_by_a_running_job_is_written_for_readers() {
    let (store, jobs) = setup().await;
    let id = jobs
        .enqueue(Request::new(ReportsProgress { n: 0 }))
        .await
        .unwrap();
    let server = Server::builder(store).start().await.unwrap();
    wait_for(&jobs, id, JobState::Processing).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let running = detail(&jobs, id).await.job;
    assert_eq!(running.state, JobState::Processing);
    assert_eq!(
        running.progress,
        Some(serde_json::json!({ "percent": 40, "message": "halfway there" }))
    );
    wait_for(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_server_writes_heartbeats_with_a_fresh_identity() {
    let (store, jobs) = setup().await;
    let first = Server::builder(store.clone()).start().await.unwrap();
    let second = Server::builder(store)
        .queues(["default", "mail"])
        .start()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let servers = jobs.servers().await.unwrap();
    assert_eq!(servers.len(), 2);
    assert_ne!(first.id(), second.id());
    let info = servers.iter().find(|s| s.id == second.id()).unwrap();
    assert_eq!(info.queues, ["default", "mail"]);
    assert!(info.job_names.contains(&Succeeds::NAME.to_owned()));
    first.shutdown().await;
    second.shutdown().await;
}

fn fake_run(_: Invocation) -> BoxFuture<'static, crate::RunResult> {
    Box::pin(async { Ok(None) })
}

#[test]
fn two_jobs_with_one_name_are_an_error_at_start_naming_both() {
    static FIRST: JobRegistration = JobRegistration {
        name: "send_mail",
        type_name: "app::SendMail",
        location: "src/mail.rs:10",
        options: JobOptions::default,
        requirements: Vec::new,
        run: fake_run,
    };
    static SECOND: JobRegistration = JobRegistration {
        name: "send_mail",
        type_name: "app::legacy::SendMail",
        location: "src/legacy.rs:3",
        options: JobOptions::default,
        requirements: Vec::new,
        run: fake_run,
    };
    let error = Registry::check(
        [&FIRST, &SECOND].into_iter(),
        &Resources::default(),
        &Settings::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("two jobs are stored as `send_mail`"),
        "{error}"
    );
    assert!(
        error.contains("src/mail.rs:10") && error.contains("src/legacy.rs:3"),
        "{error}"
    );
}

#[test]
fn a_missing_state_is_an_error_at_start_naming_the_job_and_the_type() {
    fn needs_pool() -> Vec<crate::job::Requirement> {
        vec![<crate::State<std::sync::Arc<String>> as crate::job::Inject>::requirement().unwrap()]
    }
    static NEEDS: JobRegistration = JobRegistration {
        name: "invalidate_invoices",
        type_name: "InvalidateInvoices",
        location: "src/invoices.rs:4",
        options: JobOptions::default,
        requirements: needs_pool,
        run: fake_run,
    };
    let error = Registry::check(
        [&NEEDS].into_iter(),
        &Resources::default(),
        &Settings::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("job `invalidate_invoices` (src/invoices.rs:4) takes `State<alloc::sync::Arc<alloc::string::String>>`"), "{error}");
    let mut resources = Resources::default();
    resources.insert(std::sync::Arc::new(String::new()));
    assert!(Registry::check([&NEEDS].into_iter(), &resources, &Settings::default()).is_ok());
}

#[test]
fn invalid_settings_are_an_error_at_start() {
    let settings = Settings {
        concurrency: 0,
        queues: vec![],
        ..Settings::default()
    };
    let error = Registry::check(std::iter::empty(), &Resources::default(), &settings)
        .unwrap_err()
        .to_string();
    assert!(error.contains("concurrency must be at least 1"), "{error}");
    assert!(error.contains("at least one queue"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn invalid_maintenance_settings_are_an_error_at_start() {
    let error = Server::builder(MemoryStore::new())
        .prune_interval(Duration::ZERO)
        .prune_batch(0)
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("the prune interval must be longer than zero"),
        "{error}"
    );
    assert!(
        error.contains("the prune batch must be at least 1 job"),
        "{error}"
    );
}

/// Records how many jobs the store held before each `job_prune` call.
#[derive(Clone)]
struct PruneWatch {
    store: MemoryStore,
    before: std::sync::Arc<Mutex<Vec<i64>>>,
}

impl crate::store::StoreLayer for PruneWatch {
    async fn around<T, F>(&self, operation: crate::store::StoreOperation, call: F) -> StoreResult<T>
    where
        F: std::future::Future<Output = StoreResult<T>> + Send,
    {
        if operation == crate::store::StoreOperation::JobPrune {
            let counts = Store::job_count(&self.store, crate::store::JobCountParams::new());
            let total = counts.await.unwrap().iter().map(|c| c.count).sum();
            self.before.lock().unwrap().push(total);
        }
        call.await
    }
}

#[tokio::test(start_paused = true)]
async fn the_pruner_runs_at_its_interval_in_batches_of_its_size() {
    let (store, jobs) = setup().await;
    let watch = PruneWatch {
        store: store.clone(),
        before: Default::default(),
    };
    let server = Server::builder(Layered::new(store.clone(), watch.clone()))
        .retention(crate::store::Retention::default().succeeded(Duration::from_secs(1)))
        .prune_interval(Duration::from_secs(5))
        .prune_batch(2)
        .start()
        .await
        .unwrap();
    let requests = (0..5).map(|n| Request::new(Succeeds { n }));
    let ids = jobs.enqueue_many(requests).await.unwrap();
    for &id in &ids {
        wait_for(&jobs, id, JobState::Succeeded).await;
    }
    // Well before the default minute, a pass at the set interval has
    // removed them all.
    tokio::time::sleep(Duration::from_secs(20)).await;
    for id in ids {
        assert!(jobs.get(id).await.unwrap().is_none(), "job {id} was pruned");
    }
    server.shutdown().await;
    // One pass of calls back to back, two jobs each until one comes back short.
    let before = watch.before.lock().unwrap().clone();
    assert!(
        before.windows(4).any(|w| w == [5, 3, 1, 0]),
        "jobs held before each prune call: {before:?}"
    );
}

// Claiming ahead of free slots. The claims of these stores take 5 ms (of
// paused time): the round trip that decides how many jobs are worth claiming
// ahead.

fn slow_claims(store: &MemoryStore) -> Layered<MemoryStore, SlowCalls> {
    let slow = SlowCalls::new().claims(Duration::from_millis(5));
    Layered::new(store.clone(), slow)
}

/// A backlog of no-op jobs, runnable `after` from now: draining it shows the
/// server that its jobs are short. Jobs enqueued next with the same delay
/// are claimed after these (same run time, higher ids).
async fn quick_backlog(jobs: &Jobs, after: Duration) {
    let requests = (0..300).map(|_| Request::new(Succeeds { n: 0 }).delay(after));
    jobs.enqueue_many(requests).await.unwrap();
}

async fn processing(jobs: &Jobs) -> i64 {
    jobs.counts()
        .await
        .unwrap()
        .iter()
        .filter(|c| c.state == JobState::Processing)
        .map(|c| c.count)
        .sum()
}

#[jobs_macros::job(crate = "crate", name = "test_sleeps_ten_seconds", backoff = fixed("5s"))]
#[allow(unused_variables)]
async fn sleeps_ten_seconds(n: u32, _ctx: JobContext) -> Result<(), BoxError> {
    tokio::time::sleep(Duration::from_secs(10)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn jobs_longer_than_a_claim_are_claimed_only_for_free_slots() {
    let (store, jobs) = setup().await;
    let slow = slow_claims(&store);
    let server = Server::builder(slow.clone())
        .concurrency(2)
        .start()
        .await
        .unwrap();
    // Short jobs first, claimed ahead; then an idle spell: what the server
    // measured of short jobs must not make it hoard the long ones.
    quick_backlog(&jobs, Duration::ZERO).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(processing(&jobs).await, 0);
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(
            jobs.enqueue(Request::new(SleepsTenSeconds { n }))
                .await
                .unwrap(),
        );
    }
    // Three rounds of two: at no point does the server hold more than it runs.
    for _ in 0..70 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(processing(&jobs).await <= 2, "{:?}", jobs.counts().await);
    }
    for id in ids {
        wait_for(&jobs, id, JobState::Succeeded).await;
    }
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn short_jobs_keep_two_claims_in_flight() {
    let (store, jobs) = setup().await;
    let slow = slow_claims(&store);
    let server = Server::builder(slow.clone())
        .concurrency(2)
        .start()
        .await
        .unwrap();
    let requests = (0..2000).map(|_| Request::new(Succeeds { n: 0 }));
    let ids = jobs.enqueue_many(requests).await.unwrap();
    wait_for(&jobs, *ids.last().unwrap(), JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(slow.layer().most_claims_in_flight(), 2);
    let counts = jobs.counts().await.unwrap();
    assert!(
        counts.iter().all(|c| c.state == JobState::Succeeded),
        "{counts:?}"
    );
}

/// On a server of one slot: a job that holds the slot until shutdown, and
/// five runnable with it that wait claimed ahead, all `processing`.
async fn one_running_five_claimed_ahead(jobs: &Jobs) -> (crate::JobId, Vec<crate::JobId>) {
    // Runnable together after the backlog, so that one claim takes them all.
    let later = Duration::from_secs(1);
    quick_backlog(jobs, later).await;
    let blocker = jobs
        .enqueue(Request::new(Hangs { n: 0 }).delay(later))
        .await
        .unwrap();
    let mut waiting = Vec::new();
    for _ in 0..5 {
        let request = Request::new(Succeeds { n: 0 }).delay(later);
        waiting.push(jobs.enqueue(request).await.unwrap());
    }
    wait_for(jobs, blocker, JobState::Processing).await;
    for &id in &waiting {
        wait_for(jobs, id, JobState::Processing).await;
    }
    (blocker, waiting)
}

#[tokio::test(start_paused = true)]
async fn short_jobs_are_claimed_ahead_and_handed_back_unstarted_at_shutdown() {
    let (store, jobs) = setup().await;
    let server = Server::builder(slow_claims(&store))
        .concurrency(1)
        .shutdown_timeout(Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    let (blocker, waiting) = one_running_five_claimed_ahead(&jobs).await;
    // Their leases are renewed while they wait.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(processing(&jobs).await, 6);

    server.shutdown().await;
    for id in waiting {
        let d = detail(&jobs, id).await;
        assert_eq!(d.job.state, JobState::Enqueued, "{d:?}");
        assert_eq!(d.job.attempt, 0, "the claim is not counted: {d:?}");
        let last = d.history.last().unwrap();
        assert_eq!(
            last.error.as_deref(),
            Some("the server shut down before the job started"),
            "{d:?}"
        );
    }
    assert_eq!(detail(&jobs, blocker).await.job.state, JobState::Enqueued);
}

/// With jobs claimed ahead, `processing` counts them with the running ones;
/// the heartbeat tells the two apart.
#[tokio::test(start_paused = true)]
async fn heartbeats_tell_running_jobs_from_jobs_claimed_ahead() {
    let (store, jobs) = setup().await;
    let server = Server::builder(slow_claims(&store))
        .concurrency(1)
        .heartbeat_interval(Duration::from_secs(1))
        .shutdown_timeout(Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    one_running_five_claimed_ahead(&jobs).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(processing(&jobs).await, 6);
    let servers = jobs.servers().await.unwrap();
    let info = servers.iter().find(|s| s.id == server.id()).unwrap();
    assert_eq!((info.running, info.claimed_ahead), (1, 5), "{info:?}");
    let summary = jobs.server_summary().await.unwrap();
    assert_eq!(
        (summary.running, summary.claimed_ahead, summary.concurrency),
        (1, 5, 1)
    );
    server.shutdown().await;
}

static CANCELLED_RUNS: AtomicU32 = AtomicU32::new(0);
#[jobs_macros::job(crate = "crate", name = "test_counts_cancelled_runs", backoff = fixed("5s"))]
#[allow(unused_variables)]
async fn counts_cancelled_runs(n: u32, _ctx: JobContext) -> Result<(), BoxError> {
    CANCELLED_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_job_cancelled_while_claimed_ahead_is_cancelled_without_running() {
    let (store, jobs) = setup().await;
    let server = Server::builder(slow_claims(&store))
        .concurrency(1)
        .start()
        .await
        .unwrap();
    let later = Duration::from_secs(1);
    quick_backlog(&jobs, later).await;
    let first = jobs
        .enqueue(Request::new(SleepsTenSeconds { n: 0 }).delay(later))
        .await
        .unwrap();
    let second = jobs
        .enqueue(Request::new(CountsCancelledRuns { n: 0 }).delay(later))
        .await
        .unwrap();
    wait_for(&jobs, second, JobState::Processing).await;
    assert_eq!(jobs.cancel(second).await.unwrap(), CancelOutcome::Requested);
    let d = wait_for(&jobs, second, JobState::Cancelled).await;
    assert_eq!(CANCELLED_RUNS.load(Ordering::SeqCst), 0, "it never ran");
    assert_eq!(
        d.history.last().unwrap().error.as_deref(),
        Some("cancelled by a user before it started")
    );
    wait_for(&jobs, first, JobState::Succeeded).await;
    server.shutdown().await;
}

// ---- jobs that block their thread (real time, multi-thread runtimes)

static BLOCKING_STARTS: AtomicU32 = AtomicU32::new(0);

/// Blocks its thread, as a job calling a blocking driver would, far past its timeout.
#[jobs_macros::job(
    crate = "crate",
    name = "test_blocks_its_thread",
    queue = "test_blocking",
    timeout = "300ms",
    max_attempts = 1
)]
async fn blocks_its_thread(n: u32) -> Result<(), BoxError> {
    let _ = n;
    BLOCKING_STARTS.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(2500));
    Ok(())
}

/// Waits, in real time on a plain thread, until `check` holds.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn jobs_that_block_every_worker_keep_their_leases_are_reported_stuck_and_time_out() {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    // The application's runtime, whose two workers the jobs will block, and
    // another one for the test and a second server.
    let app = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let other = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let ids: Vec<_> = other.block_on(async {
        let mut ids = Vec::new();
        for n in 0..2 {
            ids.push(BlocksItsThread::enqueue(&jobs, n).await.unwrap());
        }
        ids
    });
    let builder = |store: &MemoryStore| {
        Server::builder(store.clone())
            .queues(["test_blocking"])
            .lease(Duration::from_millis(400))
            .rescue_interval(Duration::from_millis(100))
            .cancel_grace(Duration::from_millis(100))
    };
    let blocked = app
        .block_on(builder(&store).concurrency(2).start())
        .unwrap();
    eventually("both jobs started", || {
        BLOCKING_STARTS.load(Ordering::SeqCst) == 2
    });
    // A second server whose rescuer would take the jobs, were their leases
    // not renewed while the first server's workers are blocked.
    let rescuer = other.block_on(builder(&store).start()).unwrap();

    let get = |id| other.block_on(jobs.get(id)).unwrap().unwrap();
    for &id in &ids {
        eventually("the job is reported stuck while it blocks", || {
            get(id).job.stuck_since.is_some()
        });
        let d = get(id);
        assert_eq!(d.job.state, JobState::Processing, "{d:?}");
        assert!(
            d.history.iter().any(|e| e
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("stuck: it passed its timeout"))),
            "{:?}",
            d.history
        );
    }
    for &id in &ids {
        eventually("the job ends", || get(id).job.state == JobState::Failed);
        let error = get(id).job.last_error.unwrap();
        assert!(
            error.starts_with("timed out after 300ms; it was stuck and returned only after"),
            "{error}"
        );
    }
    // Neither was rescued and run again.
    assert_eq!(BLOCKING_STARTS.load(Ordering::SeqCst), 2);
    app.block_on(blocked.shutdown());
    other.block_on(rescuer.shutdown());
}

static CANCELLED_BLOCKING_STARTS: AtomicU32 = AtomicU32::new(0);

/// Blocks its thread, with no timeout.
#[jobs_macros::job(
    crate = "crate",
    name = "test_blocks_without_timeout",
    queue = "test_blocking_cancel",
    max_attempts = 1
)]
async fn blocks_without_timeout(n: u32) -> Result<(), BoxError> {
    let _ = n;
    CANCELLED_BLOCKING_STARTS.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(2500));
    Ok(())
}

#[test]
fn a_cancelled_job_that_blocks_is_reported_stuck_and_keeps_the_outcome_it_returns() {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    let app = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let other = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let id = other
        .block_on(BlocksWithoutTimeout::enqueue(&jobs, 0))
        .unwrap();
    let server = app
        .block_on(
            Server::builder(store.clone())
                .queues(["test_blocking_cancel"])
                .cancel_grace(Duration::from_millis(100))
                .start(),
        )
        .unwrap();
    eventually("the job started", || {
        CANCELLED_BLOCKING_STARTS.load(Ordering::SeqCst) == 1
    });
    other.block_on(jobs.cancel(id)).unwrap();
    let get = |id| other.block_on(jobs.get(id)).unwrap().unwrap();
    eventually("the job is reported stuck while it blocks", || {
        get(id).job.stuck_since.is_some()
    });
    assert!(
        get(id).history.iter().any(|e| e
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("stuck: a user cancelled it"))),
        "{:?}",
        get(id).history
    );
    // It did its work and returned: a cancel it never saw does not undo that.
    eventually("the job ends", || get(id).job.state == JobState::Succeeded);
    assert_eq!(CANCELLED_BLOCKING_STARTS.load(Ordering::SeqCst), 1);
    app.block_on(server.shutdown());
}

/// What a `fmt` subscriber writes, for assertions on log lines.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn under_a_warn_filter_a_job_failed_for_good_names_its_job_and_nothing_routine_shows() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let (store, jobs) = setup().await;
    let id = jobs
        .enqueue(Request::new(AlwaysFails { n: 0 }))
        .await
        .unwrap();
    let server = Server::builder(store).start().await.unwrap();
    wait_for(&jobs, id, JobState::Failed).await;
    server.shutdown().await;

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let failed: Vec<_> = text
        .lines()
        .filter(|l| l.contains("failed for good"))
        .collect();
    assert_eq!(failed.len(), 1, "{text}");
    for field in [
        format!("job={id}"),
        "name=\"test_always_fails\"".to_owned(),
        "queue=\"default\"".to_owned(),
        "attempt=3".to_owned(),
        "boom on attempt 3".to_owned(),
    ] {
        assert!(
            failed[0].contains(&field),
            "{field} missing from {}",
            failed[0]
        );
    }
    // The two retries before it are routine: not at WARN.
    assert!(!text.contains("will be retried"), "{text}");
}

// Health: what `Server::health` tells, read from memory.

/// A [`StoreLayer`](crate::store::StoreLayer) for outages: while down,
/// every call fails at once, as an unreachable store's do; while hung,
/// every call waits forever (until the server's store timeout), as calls to
/// a store behind a dead network do. Clones share the switch.
#[derive(Clone, Default)]
struct Outage(std::sync::Arc<AtomicU32>);

const UP: u32 = 0;
const DOWN: u32 = 1;
const HUNG: u32 = 2;

impl Outage {
    fn set(&self, state: u32) {
        self.0.store(state, Ordering::SeqCst);
    }
}

impl crate::store::StoreLayer for Outage {
    async fn around<T, F>(&self, _: crate::store::StoreOperation, call: F) -> StoreResult<T>
    where
        F: std::future::Future<Output = StoreResult<T>> + Send,
    {
        match self.0.load(Ordering::SeqCst) {
            DOWN => Err(StoreError::new(
                StoreErrorKind::Unavailable,
                "test outage: connection refused",
            )),
            HUNG => std::future::pending().await,
            _ => call.await,
        }
    }
}

/// Waits (in paused time) until `probe` says `healthy`; the last reading.
async fn wait_for_health(probe: &HealthProbe, healthy: bool) -> ServerHealth {
    for _ in 0..10_000 {
        let health = probe.health();
        if health.is_healthy() == healthy {
            return health;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the server never became healthy={healthy}: {:?}",
        probe.health()
    );
}

#[tokio::test(start_paused = true)]
async fn a_started_server_is_healthy_and_tells_what_it_saw() {
    let (store, _jobs) = setup().await;
    let server = Server::builder(store).concurrency(4).start().await.unwrap();
    assert!(server.health().is_healthy(), "{:?}", server.health());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let health = server.health();
    assert_eq!(health.status, HealthStatus::Healthy);
    assert_eq!(health.reason(), None);
    assert_eq!(health.server, server.id());
    assert!(health.store_reachable);
    assert!(health.store_failing_since.is_none());
    assert!(health.last_store_failure.is_none());
    for (what, seen) in [
        ("store success", health.last_store_success),
        ("claim", health.last_claim),
        ("heartbeat", health.last_heartbeat),
    ] {
        let seen = seen.unwrap_or_else(|| panic!("no {what} seen: {health:?}"));
        assert!(seen.ago <= Duration::from_secs(1), "{what}: {seen:?}");
    }
    assert!(health.started.ago >= Duration::from_secs(1));
    assert_eq!(
        health.last_lease_renewal, None,
        "nothing held, nothing renewed"
    );
    assert_eq!((health.running, health.concurrency), (0, 4));
    assert!(!health.shutting_down);
    let json = serde_json::to_value(&health).unwrap();
    assert_eq!(json["status"], "healthy");
    assert!(json["last_claim"]["ago_secs"].is_f64(), "{json}");
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_idle_server_on_an_empty_queue_stays_healthy() {
    let (store, _jobs) = setup().await;
    let server = Server::builder(store).start().await.unwrap();
    // Far longer than any threshold: empty claims and heartbeats keep coming.
    tokio::time::sleep(Duration::from_secs(600)).await;
    let health = server.health();
    assert!(health.is_healthy(), "{health:?}");
    assert!(
        health.last_claim.unwrap().ago <= Duration::from_secs(1),
        "{health:?}"
    );
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_server_whose_every_slot_is_taken_stays_healthy_without_claiming() {
    let (store, jobs) = setup().await;
    let id = jobs.enqueue(Request::new(Hangs { n: 0 })).await.unwrap();
    let server = Server::builder(store)
        .concurrency(1)
        .prefetch(0)
        .shutdown_timeout(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    wait_for(&jobs, id, JobState::Processing).await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    let health = server.health();
    assert!(health.is_healthy(), "{health:?}");
    assert_eq!(health.running, 1);
    // The claims stopped with the slot taken; the renewals prove the store.
    assert!(
        health.last_claim.unwrap().ago >= Duration::from_secs(100),
        "{health:?}"
    );
    assert!(
        health.last_lease_renewal.unwrap().ago <= Duration::from_secs(10),
        "{health:?}"
    );
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn while_the_store_fails_the_server_is_unhealthy_with_the_error_then_healthy_again() {
    let (store, _jobs) = setup().await;
    let outage = Outage::default();
    let server = Server::builder(Layered::new(store, outage.clone()))
        .start()
        .await
        .unwrap();
    let probe = server.health_probe();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(probe.health().is_healthy(), "{:?}", probe.health());

    outage.set(DOWN);
    // A blip shorter than the renewal interval (10 s) is not yet unhealthy.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let health = probe.health();
    assert!(health.is_healthy(), "{health:?}");
    assert!(!health.store_reachable);
    let failure = health.last_store_failure.unwrap();
    assert_eq!(failure.error, "test outage: connection refused");
    assert_eq!(failure.kind, StoreErrorKind::Unavailable);

    tokio::time::sleep(Duration::from_secs(10)).await;
    let health = probe.health();
    let reason = health.reason().unwrap_or_else(|| panic!("{health:?}"));
    assert!(reason.starts_with("store unreachable for 1"), "{reason}");
    assert!(
        reason.ends_with("s: test outage: connection refused"),
        "{reason}"
    );
    assert!(health.store_failing_since.unwrap().ago >= Duration::from_secs(10));
    let json = serde_json::to_value(&health).unwrap();
    assert_eq!(json["status"], "unhealthy");
    assert_eq!(json["reason"], reason);
    assert_eq!(json["last_store_failure"]["kind"], "unavailable");

    outage.set(UP);
    let health = wait_for_health(&probe, true).await;
    assert!(health.store_reachable);
    assert!(
        health.last_claim.unwrap().ago <= Duration::from_secs(1),
        "{health:?}"
    );
    // The failure is still told, for the record.
    assert!(health.last_store_failure.is_some());
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_server_shutting_down_is_unhealthy_and_then_stopped() {
    let (store, jobs) = setup().await;
    let id = jobs.enqueue(Request::new(Hangs { n: 0 })).await.unwrap();
    let server = Server::builder(store)
        .shutdown_timeout(Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    let probe = server.health_probe();
    wait_for(&jobs, id, JobState::Processing).await;
    assert!(probe.health().is_healthy(), "{:?}", probe.health());
    // The running job holds the shutdown up for its timeout.
    let stopping = tokio::spawn(server.shutdown());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let health = probe.health();
    assert_eq!(health.reason(), Some("shutting down"), "{health:?}");
    assert!(health.shutting_down);
    assert_eq!(health.running, 1);
    stopping.await.unwrap();
    let health = probe.health();
    assert_eq!(health.reason(), Some("stopped"), "{health:?}");
    assert_eq!(health.running, 0);
}

#[tokio::test(start_paused = true)]
async fn a_store_that_does_not_answer_is_named_before_its_calls_time_out() {
    let (store, _jobs) = setup().await;
    let outage = Outage::default();
    let server = Server::builder(Layered::new(store, outage.clone()))
        .start()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(server.health().is_healthy(), "{:?}", server.health());

    outage.set(HUNG);
    // Past the claim threshold (poll interval + renewal interval, 10.5 s),
    // before the store timeout (30 s): nothing has failed yet.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let health = server.health();
    let reason = health.reason().unwrap_or_else(|| panic!("{health:?}"));
    assert!(reason.starts_with("store not answering for 1"), "{reason}");
    assert!(reason.contains(": no successful claim for 1"), "{reason}");
    assert!(health.last_store_failure.is_none(), "{health:?}");

    // Once the calls time out, they are failures.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let health = server.health();
    let reason = health.reason().unwrap_or_else(|| panic!("{health:?}"));
    assert!(reason.starts_with("store unreachable for "), "{reason}");
    assert!(
        reason.ends_with("the store did not answer within 30s"),
        "{reason}"
    );

    outage.set(UP);
    wait_for_health(&server.health_probe(), true).await;
    server.shutdown().await;
}

// ---- per-queue caps (`ServerBuilder::queue_limit`)

/// How many `test_capped_*` jobs run now, by queue: mail, default.
static CAPPED_RUNNING: [AtomicU32; 2] = [AtomicU32::new(0), AtomicU32::new(0)];

async fn run_capped(queue: usize) {
    CAPPED_RUNNING[queue].fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    CAPPED_RUNNING[queue].fetch_sub(1, Ordering::SeqCst);
}

#[jobs_macros::job(crate = "crate", name = "test_capped_mail", queue = "mail")]
async fn capped_mail(n: u32) -> Result<(), BoxError> {
    let _ = n;
    run_capped(0).await;
    Ok(())
}

#[jobs_macros::job(crate = "crate", name = "test_capped_default")]
async fn capped_default(n: u32) -> Result<(), BoxError> {
    let _ = n;
    run_capped(1).await;
    Ok(())
}

/// With many jobs in both queues, a server of concurrency 8 capping `mail`
/// at 3 never runs more than 3 `mail` jobs at once, nor holds more in the
/// store (claimed ahead included), while `default` uses the other slots.
/// The running set is sampled; nothing is timed.
#[tokio::test(start_paused = true)]
async fn a_queue_limit_caps_the_queue_and_the_other_queue_uses_the_rest() {
    let (store, jobs) = setup().await;
    for n in 0..40 {
        jobs.enqueue(Request::new(CappedMail { n })).await.unwrap();
        jobs.enqueue(Request::new(CappedDefault { n }))
            .await
            .unwrap();
    }
    let server = Server::builder(store)
        .queues(["mail", "default"])
        .concurrency(8)
        .queue_limit("mail", 3)
        .start()
        .await
        .unwrap();
    let (mut max_mail, mut max_total, mut full_split) = (0, 0, false);
    let mut samples = 0;
    loop {
        let mail = CAPPED_RUNNING[0].load(Ordering::SeqCst);
        let default = CAPPED_RUNNING[1].load(Ordering::SeqCst);
        let counts = jobs.counts().await.unwrap();
        let held = |queue: &str| {
            counts
                .iter()
                .filter(|c| c.queue == queue && c.state == JobState::Processing)
                .map(|c| c.count)
                .sum::<i64>()
        };
        assert!(
            mail <= 3,
            "{mail} mail jobs ran at once, over the limit of 3"
        );
        assert!(
            held("mail") <= 3,
            "the server held {} mail jobs (claimed ahead included), over the limit of 3",
            held("mail")
        );
        max_mail = max_mail.max(mail);
        max_total = max_total.max(mail + default);
        full_split |= mail == 3 && default == 5;
        let waiting: i64 = counts
            .iter()
            .filter(|c| matches!(c.state, JobState::Enqueued | JobState::Processing))
            .map(|c| c.count)
            .sum();
        if waiting == 0 {
            break;
        }
        samples += 1;
        assert!(samples < 100_000, "the jobs never finished: {counts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.shutdown().await;
    assert!(max_total <= 8, "{max_total} jobs ran at once on 8 slots");
    assert_eq!(max_mail, 3, "mail used its 3 slots");
    assert!(full_split, "default used the 5 slots mail left free");
}

/// How many `test_uncapped` jobs run now.
static UNCAPPED_RUNNING: AtomicU32 = AtomicU32::new(0);

#[jobs_macros::job(crate = "crate", name = "test_uncapped")]
async fn uncapped(n: u32) -> Result<(), BoxError> {
    let _ = n;
    UNCAPPED_RUNNING.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    UNCAPPED_RUNNING.fetch_sub(1, Ordering::SeqCst);
    Ok(())
}

/// Without mail jobs, `default` may take every slot: the cap is on mail only.
#[tokio::test(start_paused = true)]
async fn a_queue_limit_leaves_other_queues_every_slot() {
    let (store, jobs) = setup().await;
    let mut ids = Vec::new();
    for n in 0..16 {
        ids.push(jobs.enqueue(Request::new(Uncapped { n })).await.unwrap());
    }
    let server = Server::builder(store)
        .queues(["mail", "default"])
        .concurrency(8)
        .queue_limit("mail", 1)
        .start()
        .await
        .unwrap();
    let mut max_default = 0;
    for _ in 0..100_000 {
        max_default = max_default.max(UNCAPPED_RUNNING.load(Ordering::SeqCst));
        if max_default >= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in ids {
        wait_for(&jobs, id, JobState::Succeeded).await;
    }
    server.shutdown().await;
    assert_eq!(
        max_default, 8,
        "default took every slot with no mail to run"
    );
}

/// A limit for a queue the server does not serve, a limit of 0 and one
/// above the concurrency stop the start, each named.
#[tokio::test(start_paused = true)]
async fn queue_limits_are_checked_at_start() {
    let error = Server::builder(MemoryStore::new())
        .queues(["mail", "default"])
        .concurrency(4)
        .queue_limit("reports", 2)
        .queue_limit("mail", 0)
        .queue_limit("default", 5)
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("`reports`") && error.contains("does not serve"),
        "{error}"
    );
    assert!(error.contains("`mail` is 0"), "{error}");
    assert!(
        error.contains("`default` (5) is above the server's concurrency (4)"),
        "{error}"
    );
    // The latest limit for a queue counts.
    let server = Server::builder(MemoryStore::new())
        .queues(["mail"])
        .concurrency(4)
        .queue_limit("mail", 0)
        .queue_limit("mail", 2)
        .start()
        .await
        .unwrap();
    server.shutdown().await;
}

/// How many `test_cluster_limited` jobs run now, and the most at once.
static CLUSTER_LIMITED_RUNNING: AtomicU32 = AtomicU32::new(0);
static CLUSTER_LIMITED_MOST: AtomicU32 = AtomicU32::new(0);

#[jobs_macros::job(crate = "crate", name = "test_cluster_limited", queue = "partner")]
async fn cluster_limited(n: u32) -> Result<(), BoxError> {
    let _ = n;
    let now = CLUSTER_LIMITED_RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    CLUSTER_LIMITED_MOST.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(10)).await;
    CLUSTER_LIMITED_RUNNING.fetch_sub(1, Ordering::SeqCst);
    Ok(())
}

/// A queue limited to 2 across the cluster, on a server of 8 slots whose
/// poll interval is an hour: it never runs more than 2, and its claims cut
/// short by the limit are made again as soon as its own completions are
/// written, not at the next poll, so 20 jobs of 10 ms take well under an
/// hour of the paused clock.
#[tokio::test(start_paused = true)]
async fn a_cluster_limit_holds_and_freed_places_are_claimed_without_waiting_for_the_poll() {
    let (store, jobs) = setup().await;
    jobs.queues()
        .set_limits("partner", crate::QueueLimits::none().concurrency(2))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(
            jobs.enqueue(Request::new(ClusterLimited { n }))
                .await
                .unwrap(),
        );
    }
    let started = tokio::time::Instant::now();
    let server = Server::builder(store)
        .queues(["partner"])
        .concurrency(8)
        .poll_interval(Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    for id in ids {
        wait_for(&jobs, id, JobState::Succeeded).await;
    }
    let took = started.elapsed();
    server.shutdown().await;
    assert_eq!(
        CLUSTER_LIMITED_MOST.load(Ordering::SeqCst),
        2,
        "the limit was used, never passed"
    );
    assert!(
        took < Duration::from_secs(3600),
        "the freed places waited for the poll: {took:?} on the paused clock"
    );
}

/// Jobs of one key, one at a time, on a server whose poll interval is an
/// hour: each ended job's key wakes the server for the next, so five of
/// them take well under an hour of the paused clock.
#[tokio::test(start_paused = true)]
async fn a_freed_key_wakes_the_server_for_the_next_job_of_the_key() {
    let (store, jobs) = setup().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let request = Request::new(Succeeds { n }).key_limit(crate::LimitKey::new("k", 1));
        ids.push(jobs.enqueue(request).await.unwrap());
    }
    let started = tokio::time::Instant::now();
    let server = Server::builder(store)
        .poll_interval(Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    for id in ids {
        wait_for(&jobs, id, JobState::Succeeded).await;
    }
    let took = started.elapsed();
    server.shutdown().await;
    assert!(
        took < Duration::from_secs(3600),
        "the next job of the key waited for the poll: {took:?} on the paused clock"
    );
}
