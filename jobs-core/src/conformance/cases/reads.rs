//! `job_get`, `job_list` and `job_count`.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{
    claim_only, claim_params, claim_with, complete, counts, get, insert, insert_one, job_with,
    list, sorted_counts, try_get, HOUR, JOB,
};
use crate::model::{JobId, JobState, RunAt, ServerId};
use crate::store::{JobOutcome, Store};

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

/// `job_throughput` counts each job that succeeded or failed for good in
/// the minute it ended, however many ended in one completion call; a retry
/// or a snooze is not an end, a job's later delete changes no minute, and
/// a job retried by hand counts again when it ends again.
pub async fn throughput_counts_each_end_in_its_minute<S: Store>(store: S) {
    let totals = |minutes: Vec<crate::model::ThroughputMinute>| {
        minutes
            .iter()
            .fold((0, 0), |(s, f), m| (s + m.succeeded, f + m.failed))
    };
    let read = || async {
        let minutes = store
            .job_throughput(crate::store::JobThroughputParams::new())
            .await
            .expect("job_throughput failed");
        let sorted = minutes.windows(2).all(|w| w[0].minute < w[1].minute);
        assert!(sorted, "oldest first, one row per minute: {minutes:?}");
        assert!(
            minutes.iter().all(|m| m.minute.timestamp() % 60 == 0),
            "whole minutes: {minutes:?}"
        );
        totals(minutes)
    };
    assert_eq!(read().await, (0, 0), "nothing has ended");
    let server = ServerId::new();
    let ids = insert(&store, (0..5).map(|_| job_with(|_| {})).collect()).await;
    let rows = super::claim(&store, server, 5).await;
    assert_eq!(rows.len(), 5);
    let outcomes = [
        JobOutcome::Succeeded,
        JobOutcome::Succeeded,
        JobOutcome::Succeeded,
        JobOutcome::Failed {
            error: "e".to_owned(),
        },
        JobOutcome::Retry {
            error: "again".to_owned(),
            after: HOUR,
        },
    ];
    let completions = rows
        .iter()
        .zip(outcomes)
        .map(|(row, outcome)| crate::store::JobCompletion::new(row.claim(), outcome))
        .collect();
    super::complete_many(&store, server, completions).await;
    assert_eq!(read().await, (3, 1));
    let failed = rows[3].id;
    store
        .job_delete(crate::store::JobDeleteParams::new(rows[0].id))
        .await
        .unwrap();
    store
        .job_retry(crate::store::JobRetryParams::new(failed))
        .await
        .unwrap();
    assert_eq!(read().await, (3, 1), "a delete and a retry end nothing");
    let again = claim_only(&store, server, failed).await;
    assert!(complete(&store, server, again.claim(), JobOutcome::Succeeded).await);
    assert_eq!(read().await, (4, 1));
    assert_eq!(ids.len(), 5);
}
