//! `job_insert_many`: ids, stored fields, all-or-none batches, and run times.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{
    assert_about, claim, counts, eventually, get, insert, insert_one, job_with, list, new_job, row,
    states, HOUR,
};
use crate::model::{JobId, JobState, NewJob, RecurringOrigin, RunAt, ServerId, TraceContext};
use crate::retry::Backoff;
use crate::store::{JobInsertManyParams, Store};

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

/// A job's own timeout and backoff (set on its enqueue) are stored with it
/// and read back by `job_claim` and `job_get`, whether inserted alone or in
/// a batch; a job without them reads back without them, leaving the job
/// type's options to the server.
pub async fn insert_keeps_a_timeout_and_backoff_for_claim_and_get<S: Store>(store: S) {
    let exponential = Backoff::Exponential {
        base: Duration::from_millis(1500),
        max: Duration::from_secs(600),
        jitter_per_mille: 100,
    };
    let fixed = Backoff::fixed(Duration::from_secs(7));
    let both = job_with(|job| {
        job.timeout = Some(Duration::from_secs(90));
        job.backoff = Some(exponential);
    });
    let timeout_only = job_with(|job| job.timeout = Some(Duration::from_millis(2500)));
    let backoff_only = job_with(|job| job.backoff = Some(fixed));
    let alone = job_with(|job| {
        job.timeout = Some(Duration::from_secs(30));
        job.backoff = Some(fixed);
    });
    let jobs = vec![both, timeout_only, backoff_only, new_job()];
    let mut ids = insert(&store, jobs.clone()).await;
    ids.push(insert_one(&store, alone.clone()).await);
    let expected: Vec<&NewJob> = jobs.iter().chain([&alone]).collect();

    for (id, new) in ids.iter().zip(&expected) {
        let job = get(&store, *id).await.job;
        assert_eq!(job.timeout, new.timeout, "timeout of job {id} from job_get");
        assert_eq!(job.backoff, new.backoff, "backoff of job {id} from job_get");
    }
    let claimed = claim(&store, ServerId::new(), 10).await;
    assert_eq!(claimed.len(), ids.len(), "every job is claimable");
    for row in claimed {
        let i = ids
            .iter()
            .position(|id| *id == row.id)
            .expect("a job we inserted");
        let new = expected[i];
        assert_eq!(
            row.timeout, new.timeout,
            "timeout of job {} from job_claim",
            row.id
        );
        assert_eq!(
            row.backoff, new.backoff,
            "backoff of job {} from job_claim",
            row.id
        );
    }
}

/// A job's trace context (the enqueue's `traceparent` and `tracestate`) is
/// stored with it and read back by `job_claim` and `job_get`, alone or in a
/// batch, so that its run continues the enqueue's trace on any server; a
/// job without one reads back without one.
pub async fn insert_keeps_the_trace_context_for_claim_and_get<S: Store>(store: S) {
    let context = |parent: &str, state: Option<&str>| {
        let mut context = TraceContext::default();
        context.insert("traceparent", parent);
        if let Some(state) = state {
            context.insert("tracestate", state);
        }
        context
    };
    let traced = job_with(|job| {
        job.trace_context = Some(context(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            Some("vendor=a,other=\"b\""),
        ))
    });
    let alone = job_with(|job| {
        job.trace_context = Some(context(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            None,
        ))
    });
    let jobs = vec![traced, new_job()];
    let mut ids = insert(&store, jobs.clone()).await;
    ids.push(insert_one(&store, alone.clone()).await);
    let expected: Vec<&NewJob> = jobs.iter().chain([&alone]).collect();

    for (id, new) in ids.iter().zip(&expected) {
        let job = get(&store, *id).await.job;
        assert_eq!(
            job.trace_context, new.trace_context,
            "trace context of job {id} from job_get"
        );
    }
    let claimed = claim(&store, ServerId::new(), 10).await;
    assert_eq!(claimed.len(), ids.len(), "every job is claimable");
    for row in claimed {
        let i = ids
            .iter()
            .position(|id| *id == row.id)
            .expect("a job we inserted");
        assert_eq!(
            row.trace_context, expected[i].trace_context,
            "trace context of job {} from job_claim",
            row.id
        );
    }
}
