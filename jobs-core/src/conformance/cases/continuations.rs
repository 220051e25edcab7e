//! Continuations (`NewJob::after`): a job `awaiting` its parent, released
//! by the parent's end however it came (an attempt, a user's cancel or
//! delete), once, and refused or run at once when the parent has already
//! ended.

use std::sync::Arc;

use serde_json::json;

use super::{
    assert_kind, assert_nothing_claimable, claim, claim_only, complete, complete_many, get, insert,
    insert_one, job_with, list, new_job, states, LONG_LEASE,
};
use crate::model::{After, ContinueOn, JobId, JobState, NewJob, ServerId};
use crate::store::{
    JobCancelParams, JobCompletion, JobDeleteParams, JobInsertManyParams, JobOutcome,
    JobReleaseAwaitingParams, Store, StoreErrorKind,
};

fn after(parent: JobId, on: ContinueOn) -> NewJob {
    job_with(|job| {
        job.args = json!({ "after": parent.0 });
        job.after = Some(After::new(parent, on));
    })
}

fn boom() -> JobOutcome {
    JobOutcome::Failed {
        error: "boom".to_owned(),
    }
}

/// A continuation is stored `awaiting`, is not claimable, and becomes
/// `enqueued` (claimable) when its parent succeeds, with both states in its
/// history; its row names its parent.
pub async fn a_continuation_waits_for_its_parent_s_success<S: Store>(store: S) {
    let server = ServerId::new();
    let parent = insert_one(&store, new_job()).await;
    let child = insert_one(&store, after(parent, ContinueOn::Success)).await;
    let waiting = get(&store, child).await.job;
    assert_eq!(waiting.state, JobState::Awaiting);
    assert_eq!(waiting.after, Some(After::new(parent, ContinueOn::Success)));
    let running = claim_only(&store, server, parent).await;
    assert_nothing_claimable(&store, "the continuation awaits its running parent").await;
    assert!(complete(&store, server, running.claim(), JobOutcome::Succeeded).await);
    let released = get(&store, child).await;
    assert_eq!(released.job.state, JobState::Enqueued);
    assert_eq!(
        states(&released),
        vec![JobState::Awaiting, JobState::Enqueued]
    );
    claim_only(&store, server, child).await;
}

/// When the parent ends otherwise than by success (failed for good, or
/// cancelled or deleted by a user), a continuation on success is cancelled
/// with a reason naming the parent, and one on any end is released.
pub async fn a_parent_s_other_ends_cancel_or_release_its_continuations<S: Store>(store: S) {
    let server = ServerId::new();
    // Failed for good.
    let failing = insert_one(&store, job_with(|job| job.max_attempts = 1)).await;
    let on_success = insert_one(&store, after(failing, ContinueOn::Success)).await;
    let on_any = insert_one(&store, after(failing, ContinueOn::AnyEnd)).await;
    let running = claim_only(&store, server, failing).await;
    assert!(complete(&store, server, running.claim(), boom()).await);
    let cancelled = get(&store, on_success).await;
    assert_eq!(cancelled.job.state, JobState::Cancelled);
    let reason = cancelled
        .history
        .last()
        .and_then(|e| e.error.clone())
        .unwrap_or_default();
    assert!(
        reason.contains(&format!("job {failing} ended failed")),
        "the reason names the parent: {reason}"
    );
    assert_eq!(get(&store, on_any).await.job.state, JobState::Enqueued);
    claim_only(&store, server, on_any).await;

    // Cancelled and deleted by a user while waiting.
    for end in ["cancel", "delete"] {
        let parent = insert_one(
            &store,
            job_with(|job| job.run_at = crate::model::RunAt::After(LONG_LEASE)),
        )
        .await;
        let on_success = insert_one(&store, after(parent, ContinueOn::Success)).await;
        let on_any = insert_one(&store, after(parent, ContinueOn::AnyEnd)).await;
        match end {
            "cancel" => {
                store
                    .job_cancel(JobCancelParams::new(parent))
                    .await
                    .unwrap();
            }
            _ => store
                .job_delete(JobDeleteParams::new(parent))
                .await
                .unwrap(),
        }
        assert_eq!(
            get(&store, on_success).await.job.state,
            JobState::Cancelled,
            "after a {end} of the parent"
        );
        assert_eq!(
            get(&store, on_any).await.job.state,
            JobState::Enqueued,
            "after a {end} of the parent"
        );
        claim_only(&store, server, on_any).await;
    }
}

/// Added to a parent that has already ended, a continuation runs at once,
/// or is refused with a `Conflict` when it could never run (on success of
/// a failed parent); a parent that does not exist is `NotFound`. A batch
/// with a refused continuation stores nothing.
pub async fn a_continuation_of_an_ended_parent_runs_at_once_or_is_refused<S: Store>(store: S) {
    let server = ServerId::new();
    let ids = insert(
        &store,
        vec![new_job(), job_with(|job| job.max_attempts = 1)],
    )
    .await;
    let (succeeded, failed) = (ids[0], ids[1]);
    let claimed = claim(&store, server, 2).await;
    let claim_of = |id: JobId| claimed.iter().find(|r| r.id == id).unwrap().claim();
    complete_many(
        &store,
        server,
        vec![
            JobCompletion::new(claim_of(succeeded), JobOutcome::Succeeded),
            JobCompletion::new(claim_of(failed), boom()),
        ],
    )
    .await;

    let at_once = insert_one(&store, after(succeeded, ContinueOn::Success)).await;
    assert_eq!(get(&store, at_once).await.job.state, JobState::Enqueued);
    let any_end = insert_one(&store, after(failed, ContinueOn::AnyEnd)).await;
    assert_eq!(get(&store, any_end).await.job.state, JobState::Enqueued);

    let before = list(&store, None, None, None, 100).await;
    let refused = store
        .job_insert_many(JobInsertManyParams::new(vec![
            new_job(),
            after(failed, ContinueOn::Success),
        ]))
        .await;
    let error = refused.expect_err("a continuation that could never run is refused");
    assert_eq!(error.kind(), StoreErrorKind::Conflict, "{error}");
    assert!(
        error.to_string().contains(&format!("job {failed}")),
        "{error}"
    );
    let missing = store
        .job_insert_many(JobInsertManyParams::new(vec![after(
            JobId(i64::MAX),
            ContinueOn::AnyEnd,
        )]))
        .await;
    assert_kind(
        missing,
        StoreErrorKind::NotFound,
        "a continuation of no job",
    );
    assert_eq!(
        list(&store, None, None, None, 100).await,
        before,
        "a refused batch stores nothing"
    );
}

/// Continuations inserted while their parent completes, from many tasks at
/// once, all end released exactly once: none is left `awaiting` behind a
/// parent that has ended, and none has two releases in its history. (The
/// store's own release and the servers' sweep may both see a continuation:
/// it changes once.)
pub async fn continuations_added_while_the_parent_ends_are_all_released_once<S: Store>(store: S) {
    let store = Arc::new(store);
    let server = ServerId::new();
    for round in 0..3 {
        let parent = insert_one(&*store, new_job()).await;
        let running = claim_only(&*store, server, parent).await;
        let adders: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut added = Vec::new();
                    for _ in 0..5 {
                        let result = store
                            .job_insert_many(JobInsertManyParams::new(vec![after(
                                parent,
                                ContinueOn::AnyEnd,
                            )]))
                            .await
                            .expect("a continuation of a running or ended parent is stored");
                        added.push(result[0].id);
                    }
                    added
                })
            })
            .collect();
        let completer = {
            let store = store.clone();
            tokio::spawn(async move {
                let done = store
                    .job_complete_many(crate::store::JobCompleteManyParams::new(
                        server,
                        vec![JobCompletion::new(running.claim(), JobOutcome::Succeeded)],
                    ))
                    .await
                    .unwrap();
                assert_eq!(done, vec![true]);
            })
        };
        let mut children = Vec::new();
        for adder in adders {
            children.extend(adder.await.expect("an adding task panicked"));
        }
        completer.await.expect("the completing task panicked");
        // What a crash between a completion and its release would leave is
        // the sweep's: run it as servers do, twice (idempotent).
        for _ in 0..2 {
            store
                .job_release_awaiting(JobReleaseAwaitingParams::new())
                .await
                .unwrap();
        }
        for child in children {
            let detail = get(&*store, child).await;
            assert_eq!(
                detail.job.state,
                JobState::Enqueued,
                "round {round}: continuation {child} of ended job {parent}"
            );
            let enqueued = detail
                .history
                .iter()
                .filter(|e| e.state == JobState::Enqueued)
                .count();
            assert!(enqueued <= 1, "released once: {:?}", states(&detail));
        }
        // Out of the next round's way.
        for job in claim(&*store, server, 100).await {
            assert!(complete(&*store, server, job.claim(), JobOutcome::Succeeded).await);
        }
    }
}

/// A continuation fed by its parent's output (`After::output_into`) runs
/// with its input argument set to what the parent returned, whether it was
/// released by the parent's success or added after it; its other
/// arguments are kept.
pub async fn a_continuation_fed_by_the_output_runs_on_it<S: Store>(store: S) {
    let server = ServerId::new();
    let output = json!({ "number": "INV-7", "lines": [1, 2] });
    let parent = insert_one(&store, new_job()).await;
    let fed = job_with(|job| {
        job.args = json!({ "copies": 2 });
        job.after = Some(After::output_into(parent, "invoice"));
    });
    let waiting = insert_one(&store, fed.clone()).await;
    let running = claim_only(&store, server, parent).await;
    let done = complete_many(
        &store,
        server,
        vec![
            JobCompletion::new(running.claim(), JobOutcome::Succeeded).output(Some(output.clone()))
        ],
    )
    .await;
    assert_eq!(done, vec![true]);
    let released = get(&store, waiting).await.job;
    assert_eq!(released.state, JobState::Enqueued);
    assert_eq!(released.args, json!({ "copies": 2, "invoice": output }));
    let late = insert_one(&store, fed).await;
    let late = get(&store, late).await.job;
    assert_eq!(
        late.state,
        JobState::Enqueued,
        "its parent had already succeeded"
    );
    assert_eq!(late.args, json!({ "copies": 2, "invoice": output }));
}

/// A continuation cancelled because its parent did not succeed has ended
/// too: down a chain, its own continuations are released or cancelled at
/// once, as its end says.
pub async fn a_cancelled_continuation_ends_its_own_continuations<S: Store>(store: S) {
    let server = ServerId::new();
    let first = insert_one(&store, job_with(|job| job.max_attempts = 1)).await;
    let second = insert_one(&store, after(first, ContinueOn::Success)).await;
    let third_any = insert_one(&store, after(second, ContinueOn::AnyEnd)).await;
    let third_success = insert_one(&store, after(second, ContinueOn::Success)).await;
    let fourth = insert_one(&store, after(third_success, ContinueOn::AnyEnd)).await;
    let running = claim_only(&store, server, first).await;
    assert!(complete(&store, server, running.claim(), boom()).await);
    assert_eq!(get(&store, second).await.job.state, JobState::Cancelled);
    assert_eq!(get(&store, third_any).await.job.state, JobState::Enqueued);
    assert_eq!(
        get(&store, third_success).await.job.state,
        JobState::Cancelled
    );
    assert_eq!(get(&store, fourth).await.job.state, JobState::Enqueued);
}
