//! `job_claim`: what a claim marks, its order, its limit, what it skips, and
//! its exclusiveness under concurrency.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use super::{
    assert_about, assert_nothing_claimable, claim, claim_lease, claim_only, claim_params,
    claim_with, get, insert, insert_one, job_with, new_job, row, states, whole_second, JOB, QUEUE,
};
use crate::model::{JobId, JobState, RunAt, ServerId};
use crate::store::Store;

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
