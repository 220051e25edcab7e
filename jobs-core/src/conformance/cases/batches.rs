//! Batches (`Store::batch_insert`): counters kept with each member's change
//! of state, whoever makes it; a callback `awaiting` until the last member
//! ends, then released exactly once, whatever order and on whichever
//! servers the members end; cancelling a batch; all or none.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{
    assert_kind, assert_nothing_claimable, claim_only, claim_params, claim_with, complete, get,
    insert, insert_one, job_with, new_job, states, JOB, QUEUE,
};
use crate::batch::{BatchId, BatchRow, EnqueuedBatch};
use crate::job::{HeldAfter, UniqueKey};
use crate::model::{After, ContinueOn, JobId, JobState, NewJob, ServerId};
use crate::store::{
    BatchCancelParams, BatchGetParams, BatchInsertParams, BatchListParams, BatchMembersParams,
    JobCancelParams, JobCompleteManyParams, JobCompletion, JobDeleteParams, JobOutcome,
    JobPruneParams, JobReleaseAwaitingParams, JobRetryParams, Retention, Store, StoreErrorKind,
};

/// The callback's job name: not claimed by the cases' claims of members.
const CALLBACK: &str = "conformance_callback";

fn member(n: u32) -> NewJob {
    job_with(|job| job.args = json!({ "member": n }))
}

fn members(n: u32) -> Vec<NewJob> {
    (0..n).map(member).collect()
}

fn callback() -> NewJob {
    NewJob::new(CALLBACK, json!({ "callback": true }))
}

async fn insert_batch<S: Store>(
    store: &S,
    members: Vec<NewJob>,
    on: Option<ContinueOn>,
) -> EnqueuedBatch {
    let n = members.len();
    let mut p = BatchInsertParams::new(members);
    if let Some(on) = on {
        p = p.callback(callback(), on);
    }
    let batch = store.batch_insert(p).await.expect("batch_insert failed");
    assert_eq!(batch.members.len(), n, "one result per member");
    assert_eq!(batch.callback.is_some(), on.is_some());
    batch
}

async fn batch<S: Store>(store: &S, id: BatchId) -> BatchRow {
    store
        .batch_get(BatchGetParams::new(id))
        .await
        .expect("batch_get failed")
        .expect("the batch exists")
}

/// `(pending, succeeded, failed, cancelled)`.
fn counters(row: &BatchRow) -> (i64, i64, i64, i64) {
    (row.pending, row.succeeded, row.failed, row.cancelled)
}

fn fail() -> JobOutcome {
    JobOutcome::Failed {
        error: "boom".to_owned(),
    }
}

/// How many times the job's history says it became runnable.
async fn releases<S: Store>(store: &S, id: JobId) -> usize {
    get(store, id)
        .await
        .history
        .iter()
        .filter(|e| e.state == JobState::Enqueued)
        .count()
}

async fn sweep<S: Store>(store: &S) {
    store
        .job_release_awaiting(JobReleaseAwaitingParams::new())
        .await
        .expect("job_release_awaiting failed");
}

/// A batch's members are ordinary runnable jobs that name their batch; its
/// callback is `awaiting` and not claimable; the counters follow each
/// member's end; when the last one succeeds the callback becomes runnable
/// and the batch has ended.
pub async fn a_batch_counts_its_members_and_releases_its_callback<S: Store>(store: S) {
    let server = ServerId::new();
    let enqueued = insert_batch(&store, members(3), Some(ContinueOn::Success)).await;
    let callback = enqueued.callback.unwrap();
    let progress = batch(&store, enqueued.id).await;
    assert_eq!((progress.total, counters(&progress)), (3, (3, 0, 0, 0)));
    assert_eq!(progress.callback, Some(callback));
    assert_eq!(progress.callback_on, Some(ContinueOn::Success));
    assert_eq!(progress.finished_at, None);
    for inserted in &enqueued.members {
        let row = get(&store, inserted.id).await.job;
        assert_eq!(row.batch, Some(enqueued.id));
        assert_eq!(row.state, JobState::Enqueued);
    }
    let waiting = get(&store, callback).await.job;
    assert_eq!(waiting.state, JobState::Awaiting);
    assert_eq!(waiting.batch, None, "the callback is not a member");

    for (done, inserted) in enqueued.members.iter().enumerate() {
        let running = claim_only(&store, server, inserted.id).await;
        let progress = batch(&store, enqueued.id).await;
        assert_eq!(
            progress.pending,
            3 - done as i64,
            "a running member is pending"
        );
        assert_eq!(get(&store, callback).await.job.state, JobState::Awaiting);
        assert!(complete(&store, server, running.claim(), JobOutcome::Succeeded).await);
    }
    let ended = batch(&store, enqueued.id).await;
    assert_eq!(counters(&ended), (0, 3, 0, 0));
    assert!(ended.is_finished() && ended.finished_at.is_some());
    let released = get(&store, callback).await;
    assert_eq!(released.job.state, JobState::Enqueued);
    assert_eq!(
        states(&released),
        vec![JobState::Awaiting, JobState::Enqueued]
    );
    let rows = claim_with(&store, claim_params(server, &[QUEUE], &[CALLBACK], 10)).await;
    assert_eq!(
        rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![callback]
    );
}

/// A callback on success is cancelled, with a reason naming the batch,
/// when a member failed for good; one on any end runs whatever the ends,
/// a user's cancel and delete of members included, which the counters
/// count as cancelled.
pub async fn a_batch_s_other_ends_cancel_or_release_its_callback<S: Store>(store: S) {
    let server = ServerId::new();
    let once = |n| {
        job_with(|job| {
            job.args = json!({ "member": n });
            job.max_attempts = 1;
        })
    };
    let on_success = insert_batch(&store, vec![once(0), once(1)], Some(ContinueOn::Success)).await;
    let first = claim_only(&store, server, on_success.members[0].id).await;
    assert!(complete(&store, server, first.claim(), fail()).await);
    let second = claim_only(&store, server, on_success.members[1].id).await;
    assert!(complete(&store, server, second.claim(), JobOutcome::Succeeded).await);
    assert_eq!(counters(&batch(&store, on_success.id).await), (0, 1, 1, 0));
    let cancelled = get(&store, on_success.callback.unwrap()).await;
    assert_eq!(cancelled.job.state, JobState::Cancelled);
    let reason = cancelled
        .history
        .last()
        .and_then(|e| e.error.clone())
        .unwrap_or_default();
    assert!(
        reason.contains(&format!("batch {}", on_success.id)) && reason.contains("1 failed"),
        "the reason names the batch and its failures: {reason}"
    );

    let on_any = insert_batch(&store, members(3), Some(ContinueOn::AnyEnd)).await;
    let ids: Vec<JobId> = on_any.members.iter().map(|i| i.id).collect();
    store
        .job_cancel(JobCancelParams::new(ids[0]))
        .await
        .unwrap();
    store
        .job_delete(JobDeleteParams::new(ids[1]))
        .await
        .unwrap();
    assert_eq!(counters(&batch(&store, on_any.id).await), (1, 0, 0, 2));
    let last = claim_only(&store, server, ids[2]).await;
    assert!(complete(&store, server, last.claim(), fail()).await);
    assert_eq!(counters(&batch(&store, on_any.id).await), (0, 0, 1, 2));
    let callback = on_any.callback.unwrap();
    assert_eq!(get(&store, callback).await.job.state, JobState::Enqueued);
    // From one end to another: the counters follow, the batch stays ended.
    store
        .job_delete(JobDeleteParams::new(ids[2]))
        .await
        .unwrap();
    let row = batch(&store, on_any.id).await;
    assert_eq!(counters(&row), (0, 0, 0, 3));
    assert!(row.finished_at.is_some());
    assert_eq!(releases(&store, callback).await, 1);
}

/// A batch with no member (none given, or every one a duplicate of a
/// unique job stored before) has ended as it is stored, and its callback
/// runs at once; a duplicate is reported and not counted.
pub async fn a_batch_without_members_has_ended_at_once<S: Store>(store: S) {
    let empty = insert_batch(&store, Vec::new(), Some(ContinueOn::Success)).await;
    let row = batch(&store, empty.id).await;
    assert_eq!((row.total, row.pending), (0, 0));
    assert!(row.finished_at.is_some());
    assert_eq!(
        get(&store, empty.callback.unwrap()).await.job.state,
        JobState::Enqueued
    );

    let unique = || {
        job_with(|job| {
            job.unique = Some(UniqueKey::new(
                format!("{JOB}:batch-key"),
                None,
                HeldAfter::default(),
            ));
        })
    };
    let holder = insert_one(&store, unique()).await;
    let duplicates = insert_batch(&store, vec![unique()], Some(ContinueOn::AnyEnd)).await;
    assert!(duplicates.members[0].duplicate);
    assert_eq!(duplicates.members[0].id, holder);
    let row = batch(&store, duplicates.id).await;
    assert_eq!((row.total, row.pending), (0, 0));
    assert_eq!(
        get(&store, holder).await.job.batch,
        None,
        "the holder joins no batch"
    );
    assert_eq!(
        get(&store, duplicates.callback.unwrap()).await.job.state,
        JobState::Enqueued
    );
}

/// Members ended at once by many servers, in any order and with mixed
/// outcomes, count exactly, and the callback is released exactly once:
/// one `enqueued` in its history, however many completions and sweeps saw
/// the batch end.
pub async fn members_ending_at_once_on_many_servers_release_the_callback_once<S: Store>(store: S) {
    let store = Arc::new(store);
    for round in 0..3 {
        let enqueued = insert_batch(&*store, members(40), Some(ContinueOn::AnyEnd)).await;
        let workers: Vec<_> = (0..8)
            .map(|worker| {
                let store = store.clone();
                tokio::spawn(async move {
                    let server = ServerId::new();
                    let mut done = 0;
                    loop {
                        let rows = store
                            .job_claim(claim_params(server, &[QUEUE], &[JOB], 3))
                            .await
                            .expect("job_claim failed");
                        if rows.is_empty() {
                            return done;
                        }
                        let completions = rows
                            .iter()
                            .map(|row| {
                                let outcome = if (row.id.0 + worker) % 3 == 0 {
                                    JobOutcome::Failed {
                                        error: "boom".to_owned(),
                                    }
                                } else {
                                    JobOutcome::Succeeded
                                };
                                JobCompletion::new(row.claim(), outcome)
                            })
                            .collect();
                        let applied = store
                            .job_complete_many(JobCompleteManyParams::new(server, completions))
                            .await
                            .expect("job_complete_many failed");
                        assert!(applied.iter().all(|a| *a));
                        done += rows.len();
                        // Sweeps race with the completions, as servers' do.
                        store
                            .job_release_awaiting(JobReleaseAwaitingParams::new())
                            .await
                            .expect("job_release_awaiting failed");
                    }
                })
            })
            .collect();
        let mut done = 0;
        for worker in workers {
            done += worker.await.expect("a worker panicked");
        }
        assert_eq!(done, 40, "round {round}: every member ran once");
        sweep(&*store).await;
        let row = batch(&*store, enqueued.id).await;
        assert_eq!(row.pending, 0, "round {round}");
        assert_eq!(row.succeeded + row.failed, 40, "round {round}: {row:?}");
        let callback = enqueued.callback.unwrap();
        assert_eq!(get(&*store, callback).await.job.state, JobState::Enqueued);
        assert_eq!(
            releases(&*store, callback).await,
            1,
            "round {round}: released once"
        );
    }
}

/// Cancelling a batch cancels its waiting members and its awaiting
/// callback (which then never runs), asks its running members to stop,
/// and leaves the ended ones as they are; the counters follow.
pub async fn cancelling_a_batch_cancels_its_waiting_jobs_and_callback<S: Store>(store: S) {
    let server = ServerId::new();
    let enqueued = insert_batch(&store, members(3), Some(ContinueOn::AnyEnd)).await;
    let ids: Vec<JobId> = enqueued.members.iter().map(|i| i.id).collect();
    let done = claim_only(&store, server, ids[0]).await;
    assert!(complete(&store, server, done.claim(), JobOutcome::Succeeded).await);
    let running = claim_only(&store, server, ids[1]).await;
    let changed = store
        .batch_cancel(BatchCancelParams::new(enqueued.id))
        .await
        .expect("batch_cancel failed");
    assert_eq!(
        changed, 3,
        "the waiting member, the running one and the callback"
    );
    assert_eq!(get(&store, ids[2]).await.job.state, JobState::Cancelled);
    let asked = get(&store, ids[1]).await.job;
    assert!(asked.state == JobState::Processing && asked.cancel_requested);
    let callback = enqueued.callback.unwrap();
    assert_eq!(get(&store, callback).await.job.state, JobState::Cancelled);
    assert_eq!(counters(&batch(&store, enqueued.id).await), (1, 1, 0, 1));
    let reason = JobOutcome::Cancelled {
        reason: "asked to stop".to_owned(),
    };
    assert!(complete(&store, server, running.claim(), reason).await);
    let ended = batch(&store, enqueued.id).await;
    assert_eq!(counters(&ended), (0, 1, 0, 2));
    assert!(ended.finished_at.is_some());
    assert_eq!(get(&store, callback).await.job.state, JobState::Cancelled);
    assert_eq!(
        releases(&store, callback).await,
        0,
        "a cancelled callback never runs"
    );
    assert_nothing_claimable(&store, "every job of the batch has ended").await;

    assert_kind(
        store
            .batch_cancel(BatchCancelParams::new(BatchId(i64::MAX)))
            .await,
        StoreErrorKind::NotFound,
        "cancel of an unknown batch",
    );
}

/// A member retried by hand after the batch ended makes it pending again
/// and the counters follow it, but the callback, released once, does not
/// run again.
pub async fn a_member_retried_after_the_end_does_not_release_the_callback_again<S: Store>(
    store: S,
) {
    let server = ServerId::new();
    let once = job_with(|job| job.max_attempts = 1);
    let enqueued = insert_batch(&store, vec![once], Some(ContinueOn::AnyEnd)).await;
    let id = enqueued.members[0].id;
    let running = claim_only(&store, server, id).await;
    assert!(complete(&store, server, running.claim(), fail()).await);
    assert_eq!(counters(&batch(&store, enqueued.id).await), (0, 0, 1, 0));
    let callback = enqueued.callback.unwrap();
    assert_eq!(releases(&store, callback).await, 1);

    store.job_retry(JobRetryParams::new(id)).await.unwrap();
    let again = batch(&store, enqueued.id).await;
    assert_eq!(counters(&again), (1, 0, 0, 0));
    assert_eq!(again.finished_at, None, "running again");
    let running = claim_only(&store, server, id).await;
    assert!(complete(&store, server, running.claim(), JobOutcome::Succeeded).await);
    let ended = batch(&store, enqueued.id).await;
    assert_eq!(counters(&ended), (0, 1, 0, 0));
    assert!(ended.finished_at.is_some());
    sweep(&store).await;
    assert_eq!(releases(&store, callback).await, 1, "released once");
}

/// Batches list newest first in keyset pages; a batch's members page the
/// same way; an unknown batch reads as `None` and has no members to list.
pub async fn batches_and_their_members_list_in_pages<S: Store>(store: S) {
    let first = insert_batch(&store, members(5), None).await;
    let second = insert_batch(&store, members(1), None).await;
    let ids = |rows: Vec<BatchRow>| rows.into_iter().map(|b| b.id).collect::<Vec<_>>();
    let all = store.batch_list(BatchListParams::new()).await.unwrap();
    assert_eq!(ids(all), vec![second.id, first.id]);
    let page = store
        .batch_list(BatchListParams::new().before(second.id).limit(1))
        .await
        .unwrap();
    assert_eq!(ids(page), vec![first.id]);

    let member_ids: Vec<JobId> = first.members.iter().rev().map(|i| i.id).collect();
    let page = store
        .batch_members(BatchMembersParams::new(first.id).limit(3))
        .await
        .unwrap();
    let page_ids: Vec<JobId> = page.iter().map(|r| r.id).collect();
    assert_eq!(page_ids, member_ids[..3]);
    let rest = store
        .batch_members(BatchMembersParams::new(first.id).before(page_ids[2]))
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|r| r.id).collect::<Vec<_>>(),
        member_ids[3..]
    );

    let unknown = BatchId(i64::MAX);
    assert!(store
        .batch_get(BatchGetParams::new(unknown))
        .await
        .unwrap()
        .is_none());
    assert_kind(
        store.batch_members(BatchMembersParams::new(unknown)).await,
        StoreErrorKind::NotFound,
        "members of an unknown batch",
    );
}

/// A batch is stored all or none: one whose member cannot be stored (a
/// continuation of a job that does not exist) stores no job and no batch;
/// a callback that is unique or a continuation is refused as invalid.
pub async fn a_batch_is_stored_all_or_none<S: Store>(store: S) {
    let before = insert(&store, vec![new_job()]).await[0];
    let orphan = job_with(|job| job.after = Some(After::new(JobId(i64::MAX), ContinueOn::AnyEnd)));
    let refused = store
        .batch_insert(
            BatchInsertParams::new(vec![member(0), orphan])
                .callback(callback(), ContinueOn::AnyEnd),
        )
        .await;
    assert_kind(
        refused,
        StoreErrorKind::NotFound,
        "a batch with an orphan continuation",
    );
    assert!(store
        .batch_list(BatchListParams::new())
        .await
        .unwrap()
        .is_empty());
    let after = insert(&store, vec![new_job()]).await[0];
    for id in (before.0 + 1)..after.0 {
        assert!(
            store
                .job_get(crate::store::JobGetParams::new(JobId(id)))
                .await
                .unwrap()
                .is_none(),
            "job {id} of a refused batch is not stored"
        );
    }

    let mut unique_callback = callback();
    unique_callback.unique = Some(UniqueKey::new("k", None, HeldAfter::default()));
    assert_kind(
        store
            .batch_insert(
                BatchInsertParams::new(members(1)).callback(unique_callback, ContinueOn::AnyEnd),
            )
            .await,
        StoreErrorKind::Invalid,
        "a unique callback",
    );
}

/// Pruning forgets a batch once it has ended longer ago than the longest
/// retention, and keeps one still running.
pub async fn prune_forgets_ended_batches<S: Store>(store: S) {
    let server = ServerId::new();
    let ended = insert_batch(&store, members(1), None).await;
    let running = insert_batch(&store, members(1), None).await;
    let row = claim_only(&store, server, ended.members[0].id).await;
    assert!(complete(&store, server, row.claim(), JobOutcome::Succeeded).await);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let zero = Retention::default()
        .succeeded(Duration::ZERO)
        .deleted(Duration::ZERO)
        .failed(Duration::ZERO);
    store.job_prune(JobPruneParams::new(zero)).await.unwrap();
    assert!(store
        .batch_get(BatchGetParams::new(ended.id))
        .await
        .unwrap()
        .is_none());
    assert!(store
        .batch_get(BatchGetParams::new(running.id))
        .await
        .unwrap()
        .is_some());
}
