//! `job_prune`: retention of finished jobs.

use std::time::Duration;

use super::{
    claim, claim_only, complete, complete_many, counts, insert, insert_one, list, new_job,
    sorted_counts, try_get, QUEUE,
};
use crate::model::{JobState, ServerId};
use crate::store::{
    JobCancelParams, JobCompletion, JobDeleteParams, JobOutcome, JobPruneParams, Retention, Store,
};

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
        .job_cancel(JobCancelParams::new(cancelled).reason("r"))
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
                .job_prune(
                    JobPruneParams::new(
                        Retention::default()
                            .succeeded(succeeded)
                            .deleted(deleted)
                            .failed(failed),
                    )
                    .limit(limit),
                )
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
        .job_prune(
            JobPruneParams::new(
                Retention::default()
                    .succeeded(Duration::from_secs(1))
                    .deleted(day)
                    .failed(day),
            )
            .limit(100),
        )
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
