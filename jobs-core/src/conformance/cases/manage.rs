//! A user's `job_retry`, `job_cancel` and `job_delete`, and a cancel that
//! outlives a rescue or a hand-back.

use std::collections::BTreeSet;

use super::{
    assert_kind, assert_nothing_claimable, claim_lease, claim_only, claim_params, claim_with,
    complete, eventually, get, insert, insert_one, job_with, new_job, rescue, row, HOUR, JOB,
    QUEUE, SHORT_LEASE,
};
use crate::model::{JobId, JobState, RunAt, ServerId};
use crate::store::{
    CancelOutcome, JobCancelParams, JobDeleteParams, JobOutcome, JobRetryParams, Store,
    StoreErrorKind,
};

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
        .job_cancel(JobCancelParams::new(cancelled).reason("oops"))
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
        .job_cancel(JobCancelParams::new(waiting).reason("changed my mind"))
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
        .job_cancel(JobCancelParams::new(scheduled).reason("not needed"))
        .await
        .expect("cancelling a scheduled job");
    assert_eq!(outcome, CancelOutcome::Cancelled);
    assert_eq!(row(&store, scheduled).await.state, JobState::Cancelled);

    let outcome = store
        .job_cancel(JobCancelParams::new(running).reason("stop"))
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
            .job_cancel(JobCancelParams::new(running).reason("stop"))
            .await
            .expect("asking twice"),
        CancelOutcome::Requested
    );

    assert_kind(
        store
            .job_cancel(JobCancelParams::new(waiting).reason("again"))
            .await,
        StoreErrorKind::Conflict,
        "cancelling a cancelled job",
    );
    assert!(complete(&store, server, running_row.claim(), JobOutcome::Succeeded).await);
    assert_kind(
        store
            .job_cancel(JobCancelParams::new(running).reason("late"))
            .await,
        StoreErrorKind::Conflict,
        "cancelling a succeeded job",
    );
    assert_eq!(row(&store, running).await.state, JobState::Succeeded);
    assert_kind(
        store
            .job_cancel(JobCancelParams::new(JobId(i64::MAX - 1)).reason("x"))
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
        .job_cancel(JobCancelParams::new(cancelled).reason("not wanted"))
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
        .job_cancel(JobCancelParams::new(id).reason("not wanted"))
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

/// `job_run_now` makes a delayed job, and a retry waiting for its backoff,
/// `enqueued` and claimable at once, attempts kept, the change in the
/// history; an `enqueued` job is left as it is; a finished or running job
/// is a `Conflict`, an unknown one `NotFound`.
pub async fn run_now_runs_a_scheduled_job_at_once<S: Store>(store: S) {
    use crate::store::JobRunNowParams;
    let server = ServerId::new();
    let delayed = insert_one(&store, job_with(|job| job.run_at = RunAt::After(HOUR))).await;
    assert_nothing_claimable(&store, "the job is delayed an hour").await;
    store
        .job_run_now(JobRunNowParams::new(delayed))
        .await
        .unwrap();
    let detail = get(&store, delayed).await;
    assert_eq!(detail.job.state, JobState::Enqueued);
    assert_eq!(
        detail.history.iter().map(|e| e.state).collect::<Vec<_>>(),
        vec![JobState::Scheduled, JobState::Enqueued]
    );
    let running = claim_only(&store, server, delayed).await;
    assert_kind(
        store.job_run_now(JobRunNowParams::new(delayed)).await,
        StoreErrorKind::Conflict,
        "run now of a running job",
    );
    let retry = JobOutcome::Retry {
        error: "later".to_owned(),
        after: HOUR,
    };
    assert!(complete(&store, server, running.claim(), retry).await);
    store
        .job_run_now(JobRunNowParams::new(delayed))
        .await
        .unwrap();
    let again = claim_only(&store, server, delayed).await;
    assert_eq!(again.attempt, 2, "the attempts are kept");
    assert!(complete(&store, server, again.claim(), JobOutcome::Succeeded).await);
    assert_kind(
        store.job_run_now(JobRunNowParams::new(delayed)).await,
        StoreErrorKind::Conflict,
        "run now of a succeeded job",
    );
    let waiting = insert_one(&store, new_job()).await;
    store
        .job_run_now(JobRunNowParams::new(waiting))
        .await
        .unwrap();
    assert_eq!(row(&store, waiting).await.state, JobState::Enqueued);
    assert_kind(
        store
            .job_run_now(JobRunNowParams::new(JobId(i64::MAX)))
            .await,
        StoreErrorKind::NotFound,
        "run now of no job",
    );
}
