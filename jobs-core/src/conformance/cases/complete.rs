//! `job_complete_many`: each outcome of an attempt, and a batch of completions.

use std::time::Duration;

use super::{
    assert_about, assert_nothing_claimable, claim, claim_only, complete, complete_many, get,
    insert, insert_one, job_with, new_job, row, states, HOUR,
};
use crate::model::{Claim, JobId, JobState, ServerId};
use crate::store::{JobCompletion, JobOutcome, Store};

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

/// A succeeded attempt's output is stored with the job and read back as
/// given, in a batch beside completions without one; the output of any
/// other outcome is ignored; a retry by hand clears it.
pub async fn complete_success_keeps_the_output<S: Store>(store: S) {
    let server = ServerId::new();
    let ids = insert(&store, vec![new_job(), new_job(), new_job()]).await;
    let claimed = claim(&store, server, 3).await;
    assert_eq!(claimed.len(), 3);
    let output = serde_json::json!({ "invoice": "INV-7", "lines": [1, 2, 3], "total": 12.5 });
    let by_id = |id: JobId| claimed.iter().find(|r| r.id == id).unwrap().claim();
    let failed = JobOutcome::Failed {
        error: "boom".to_owned(),
    };
    let applied = complete_many(
        &store,
        server,
        vec![
            JobCompletion::new(by_id(ids[0]), JobOutcome::Succeeded).output(Some(output.clone())),
            JobCompletion::new(by_id(ids[1]), JobOutcome::Succeeded),
            JobCompletion::new(by_id(ids[2]), failed).output(Some(serde_json::json!("ignored"))),
        ],
    )
    .await;
    assert_eq!(applied, vec![true, true, true]);
    assert_eq!(get(&store, ids[0]).await.job.output, Some(output));
    assert_eq!(
        get(&store, ids[1]).await.job.output,
        None,
        "no output given"
    );
    let failed = get(&store, ids[2]).await.job;
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.output, None, "only a success stores its output");

    // Deleted and retried: the new attempts start without the old output.
    store
        .job_delete(crate::store::JobDeleteParams::new(ids[0]))
        .await
        .unwrap();
    store
        .job_retry(crate::store::JobRetryParams::new(ids[0]))
        .await
        .unwrap();
    assert_eq!(get(&store, ids[0]).await.job.output, None);
}
