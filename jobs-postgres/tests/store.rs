//! Direct tests of the PostgreSQL store: claim, complete, fencing, leases,
//! history, counts, pruning, wake-ups.

mod common;

use std::time::Duration;

use jobs_core::{
    CancelOutcome, Claim, JobCancelParams, JobClaimParams, JobCompleteManyParams, JobCompletion,
    JobCountParams, JobDeleteParams, JobGetParams, JobId, JobInsertManyParams, JobListParams,
    JobOutcome, JobPruneParams, JobRetryParams, JobState, LeaseRenewManyParams, LeaseRescueParams,
    LeaseStatus, NewJob, Retention, RunAt, ServerId, Store, StoreErrorKind,
};
use serde_json::json;

fn job(name: &str, i: i64) -> NewJob {
    NewJob::new(name, json!({ "i": i }))
}

fn claim_params(server: ServerId, limit: u32) -> JobClaimParams {
    JobClaimParams::new(server)
        .queues(["default"])
        .names(["a", "b"])
        .limit(limit)
        .lease(Duration::from_secs(30))
}

async fn insert(store: &impl Store, jobs: Vec<NewJob>) -> Vec<JobId> {
    store
        .job_insert_many(JobInsertManyParams::new(jobs))
        .await
        .unwrap()
        .into_iter()
        .map(|inserted| inserted.id)
        .collect()
}

#[tokio::test]
async fn insert_claim_complete_round_trip() {
    let (store, _guard) = common::store().await;
    let ids = insert(&store, vec![job("a", 1), job("a", 2), job("b", 3)]).await;
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    let server = ServerId::new();
    let claimed = store.job_claim(claim_params(server, 2)).await.unwrap();
    assert_eq!(claimed.iter().map(|r| r.id).collect::<Vec<_>>(), ids[..2]);
    for row in &claimed {
        assert_eq!(row.state, JobState::Processing);
        assert_eq!(row.attempt, 1);
        assert_eq!(row.claim_token, 1);
        assert_eq!(row.server_id, Some(server));
        assert!(row.lease_expires_at.is_some());
    }
    let applied = store
        .job_complete_many(JobCompleteManyParams::new(
            server,
            vec![
                JobCompletion::new(claimed[0].claim(), JobOutcome::Succeeded),
                JobCompletion::new(
                    claimed[1].claim(),
                    JobOutcome::Failed {
                        error: "boom".into(),
                    },
                ),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(applied, vec![true, true]);

    let detail = store
        .job_get(JobGetParams::new(ids[1]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.job.state, JobState::Failed);
    assert_eq!(detail.job.last_error.as_deref(), Some("boom"));
    assert!(detail.job.finished_at.is_some());
    assert_eq!(detail.job.server_id, None);
    let states: Vec<_> = detail.history.iter().map(|e| e.state).collect();
    assert_eq!(
        states,
        vec![JobState::Enqueued, JobState::Processing, JobState::Failed]
    );
    assert_eq!(detail.history[1].server_id, Some(server));
    assert_eq!(detail.history[2].error.as_deref(), Some("boom"));

    let counts = store.job_count(JobCountParams::new()).await.unwrap();
    let count = |s: JobState| counts.iter().find(|c| c.state == s).map_or(0, |c| c.count);
    assert_eq!(count(JobState::Succeeded), 1);
    assert_eq!(count(JobState::Failed), 1);
    assert_eq!(count(JobState::Enqueued), 1);
}

#[tokio::test]
async fn stale_claims_change_nothing() {
    let (store, _guard) = common::store().await;
    let ids = insert(&store, vec![job("a", 1)]).await;
    let server = ServerId::new();
    let first = store.job_claim(claim_params(server, 1)).await.unwrap();
    let old = first[0].claim();
    // The lease runs out; the job is rescued and claimed again.
    sqlx::query(&format!(
        "UPDATE {}.jobs SET lease_expires_at = now() - interval '1 second'",
        store.schema()
    ))
    .execute(store.pool())
    .await
    .unwrap();
    let rescued = store
        .lease_rescue(LeaseRescueParams::new().limit(10))
        .await
        .unwrap();
    assert_eq!(rescued, ids);
    let second = store.job_claim(claim_params(server, 1)).await.unwrap();
    assert_eq!(second[0].claim_token, old.token + 1);
    assert_eq!(second[0].attempt, 2);

    let stale = store
        .job_complete_many(JobCompleteManyParams::new(
            server,
            vec![JobCompletion::new(old, JobOutcome::Succeeded)],
        ))
        .await
        .unwrap();
    assert_eq!(stale, vec![false]);
    let renew = store
        .lease_renew_many(LeaseRenewManyParams::new(
            server,
            vec![old, second[0].claim()],
            Duration::from_secs(30),
        ))
        .await
        .unwrap();
    assert_eq!(renew, vec![LeaseStatus::Lost, LeaseStatus::Held]);
    let row = store
        .job_get(JobGetParams::new(ids[0]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.job.state, JobState::Processing);
    let history: Vec<_> = row.history.iter().map(|e| e.state).collect();
    assert_eq!(
        history,
        vec![
            JobState::Enqueued,
            JobState::Processing,
            JobState::Scheduled,
            JobState::Processing
        ]
    );
    assert!(row.history[2]
        .error
        .as_deref()
        .unwrap()
        .starts_with("lease expired"));
}

#[tokio::test]
async fn claim_order_queues_priority_and_names() {
    let (store, _guard) = common::store().await;
    let mut low = job("a", 1);
    low.queue = "later".into();
    let mut high = job("a", 2);
    high.priority = 5;
    let mut unknown = job("zzz", 3);
    unknown.priority = 9;
    let mut delayed = job("a", 4);
    delayed.run_at = RunAt::After(Duration::from_secs(3600));
    delayed.priority = 10;
    let ids = insert(&store, vec![low, job("a", 5), high, unknown, delayed]).await;
    let server = ServerId::new();
    let claimed = store
        .job_claim(
            JobClaimParams::new(server)
                .queues(["default", "later"])
                .names(["a"])
                .limit(10)
                .lease(Duration::from_secs(30)),
        )
        .await
        .unwrap();
    let got: Vec<_> = claimed.iter().map(|r| r.id).collect();
    assert_eq!(got, vec![ids[2], ids[1], ids[0]]);
    let delayed = store
        .job_get(JobGetParams::new(ids[4]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delayed.job.state, JobState::Scheduled);
}

#[tokio::test]
async fn concurrent_claims_never_share_a_job() {
    let (store, _guard) = common::store().await;
    insert(&store, (0..400).map(|i| job("a", i)).collect()).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let server = ServerId::new();
            let mut mine = Vec::new();
            loop {
                let got = store.job_claim(claim_params(server, 7)).await.unwrap();
                if got.is_empty() {
                    break mine;
                }
                mine.extend(got.into_iter().map(|r| r.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, 400);
    assert_eq!(all.len(), 400);
}

#[tokio::test]
async fn outcomes_snooze_release_retry() {
    let (store, _guard) = common::store().await;
    let ids = insert(&store, vec![job("a", 1), job("a", 2), job("a", 3)]).await;
    let server = ServerId::new();
    let c = store.job_claim(claim_params(server, 3)).await.unwrap();
    let applied = store
        .job_complete_many(JobCompleteManyParams::new(
            server,
            vec![
                JobCompletion::new(
                    c[0].claim(),
                    JobOutcome::Snooze {
                        after: Duration::from_secs(60),
                    },
                ),
                JobCompletion::new(
                    c[1].claim(),
                    JobOutcome::Released {
                        reason: "shutdown".into(),
                    },
                ),
                JobCompletion::new(
                    c[2].claim(),
                    JobOutcome::Retry {
                        error: "try again".into(),
                        after: Duration::ZERO,
                    },
                ),
                // The same claim twice: applied once.
                JobCompletion::new(c[2].claim(), JobOutcome::Succeeded),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(applied, vec![true, true, true, false]);
    let get = |id| store.job_get(JobGetParams::new(id));
    let snoozed = get(ids[0]).await.unwrap().unwrap().job;
    assert_eq!((snoozed.state, snoozed.attempt), (JobState::Scheduled, 0));
    assert!(snoozed.run_at > chrono::Utc::now() + chrono::Duration::seconds(30));
    let released = get(ids[1]).await.unwrap().unwrap().job;
    assert_eq!((released.state, released.attempt), (JobState::Enqueued, 0));
    let retried = get(ids[2]).await.unwrap().unwrap().job;
    assert_eq!((retried.state, retried.attempt), (JobState::Scheduled, 1));
    assert_eq!(retried.last_error.as_deref(), Some("try again"));
    // Both runnable now, the snoozed one not.
    let again = store.job_claim(claim_params(server, 10)).await.unwrap();
    let mut got: Vec<_> = again.iter().map(|r| r.id).collect();
    got.sort();
    assert_eq!(got, vec![ids[1], ids[2]]);
}

#[tokio::test]
async fn retry_cancel_delete_and_counts() {
    let (store, _guard) = common::store().await;
    let ids = insert(&store, vec![job("a", 1), job("a", 2), job("a", 3)]).await;
    let server = ServerId::new();
    // Waiting: cancelled at once.
    let out = store
        .job_cancel(JobCancelParams::new(ids[0]).reason("no"))
        .await
        .unwrap();
    assert_eq!(out, CancelOutcome::Cancelled);
    let c = store.job_claim(claim_params(server, 1)).await.unwrap();
    assert_eq!(c[0].id, ids[1]);
    // Running: requested, seen at renewal; not deletable, not retryable.
    let out = store
        .job_cancel(JobCancelParams::new(ids[1]).reason("stop"))
        .await
        .unwrap();
    assert_eq!(out, CancelOutcome::Requested);
    let renew = store
        .lease_renew_many(LeaseRenewManyParams::new(
            server,
            vec![c[0].claim()],
            Duration::from_secs(30),
        ))
        .await
        .unwrap();
    assert_eq!(renew, vec![LeaseStatus::CancelRequested]);
    let err = store
        .job_delete(JobDeleteParams::new(ids[1]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Conflict);
    let err = store
        .job_retry(JobRetryParams::new(ids[1]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Conflict);
    let err = store
        .job_retry(JobRetryParams::new(JobId(999_999)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::NotFound);
    // Finished: cannot be cancelled.
    let err = store
        .job_cancel(JobCancelParams::new(ids[0]).reason("again"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Conflict);
    // Delete a waiting job, then retry it: enqueued again with attempts reset.
    store
        .job_delete(JobDeleteParams::new(ids[2]))
        .await
        .unwrap();
    store
        .job_delete(JobDeleteParams::new(ids[2]))
        .await
        .unwrap();
    let counts = store.job_count(JobCountParams::new()).await.unwrap();
    let count = |counts: &[jobs_core::QueueStateCount], s| {
        counts.iter().find(|c| c.state == s).map_or(0, |c| c.count)
    };
    assert_eq!(count(&counts, JobState::Deleted), 1);
    assert_eq!(count(&counts, JobState::Cancelled), 1);
    assert_eq!(count(&counts, JobState::Processing), 1);
    store.job_retry(JobRetryParams::new(ids[2])).await.unwrap();
    store.job_retry(JobRetryParams::new(ids[0])).await.unwrap();
    let counts = store.job_count(JobCountParams::new()).await.unwrap();
    assert_eq!(count(&counts, JobState::Deleted), 0);
    assert_eq!(count(&counts, JobState::Cancelled), 0);
    assert_eq!(count(&counts, JobState::Enqueued), 2);
    assert!(counts.iter().all(|c| c.count > 0));
    let row = store
        .job_get(JobGetParams::new(ids[0]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.job.state, JobState::Enqueued);
    assert_eq!(row.job.finished_at, None);
}

#[tokio::test]
async fn list_pages_by_id() {
    let (store, _guard) = common::store().await;
    let ids = insert(&store, (0..5).map(|i| job("a", i)).collect()).await;
    let mut other = job("a", 9);
    other.queue = "other".into();
    let other_id = insert(&store, vec![other]).await[0];
    let page = store
        .job_list(JobListParams::new().limit(3))
        .await
        .unwrap()
        .jobs;
    assert_eq!(
        page.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![other_id, ids[4], ids[3]]
    );
    let page = store
        .job_list(
            JobListParams::new()
                .state(JobState::Enqueued)
                .queue("default")
                .before(ids[3])
                .limit(10),
        )
        .await
        .unwrap()
        .jobs;
    assert_eq!(
        page.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[2], ids[1], ids[0]]
    );
    let page = store
        .job_list(JobListParams::new().queue("other").limit(10))
        .await
        .unwrap()
        .jobs;
    assert_eq!(page.len(), 1);
    let page = store
        .job_list(JobListParams::new().state(JobState::Failed).limit(10))
        .await
        .unwrap()
        .jobs;
    assert!(page.is_empty());
}

#[tokio::test]
async fn prune_removes_old_finished_jobs_in_batches() {
    let (store, _guard) = common::store().await;
    let ids = insert(&store, (0..5).map(|i| job("a", i)).collect()).await;
    let server = ServerId::new();
    let c = store.job_claim(claim_params(server, 5)).await.unwrap();
    store
        .job_complete_many(JobCompleteManyParams::new(
            server,
            c.iter()
                .map(|r| JobCompletion::new(r.claim(), JobOutcome::Succeeded))
                .collect(),
        ))
        .await
        .unwrap();
    let never = Duration::from_secs(u64::MAX);
    let p = |limit| {
        JobPruneParams::new(
            Retention::default()
                .succeeded(Duration::ZERO)
                .deleted(never)
                .failed(never),
        )
        .limit(limit)
    };
    assert_eq!(store.job_prune(p(2)).await.unwrap(), 2);
    assert_eq!(store.job_prune(p(10)).await.unwrap(), 3);
    assert_eq!(store.job_prune(p(10)).await.unwrap(), 0);
    assert!(store
        .job_get(JobGetParams::new(ids[0]))
        .await
        .unwrap()
        .is_none());
    let counts = store.job_count(JobCountParams::new()).await.unwrap();
    assert!(counts.is_empty(), "{counts:?}");
    let events: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {}.job_events",
        store.schema()
    ))
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(events, 0);
}

#[tokio::test]
async fn rescue_fails_jobs_without_attempts_left() {
    let (store, _guard) = common::store().await;
    let mut one = job("a", 1);
    one.max_attempts = 1;
    let ids = insert(&store, vec![one]).await;
    let server = ServerId::new();
    store
        .job_claim(
            JobClaimParams::new(server)
                .queues(["default"])
                .names(["a"])
                .limit(1)
                .lease(Duration::from_millis(1)),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        store
            .lease_rescue(LeaseRescueParams::new().limit(10))
            .await
            .unwrap(),
        ids
    );
    let row = store
        .job_get(JobGetParams::new(ids[0]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.job.state, JobState::Failed);
    let counts = store.job_count(JobCountParams::new()).await.unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[0].state, JobState::Failed);
}

#[tokio::test]
async fn recurring_tick_is_inserted_once() {
    let (store, _guard) = common::store().await;
    let origin: jobs_core::RecurringOrigin = serde_json::from_value(json!({
        "id": "daily", "scheduled_for": "2030-01-01T00:00:00Z"
    }))
    .unwrap();
    let mut a = job("a", 1);
    a.recurring = Some(origin.clone());
    let ids = insert(&store, vec![a.clone()]).await;
    let row = store
        .job_get(JobGetParams::new(ids[0]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.job.recurring, Some(origin));
    let err = store
        .job_insert_many(JobInsertManyParams::new(vec![a]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Conflict);
}

// ------------------------------------------------------------ lock order

/// The order in which task `task` sends `claims`: `(i * stride + offset) %
/// n`, reversed for odd tasks, with a stride and offset of the task's own
/// (the strides are coprime with the 300 rows, so every row comes once).
fn permuted(claims: &[Claim], task: usize) -> Vec<Claim> {
    const STRIDES: [usize; 8] = [1, 7, 11, 13, 17, 19, 23, 29];
    let (n, stride, offset) = (claims.len(), STRIDES[task % STRIDES.len()], task * 37);
    let mut order: Vec<Claim> = (0..n).map(|i| claims[(i * stride + offset) % n]).collect();
    if task % 2 == 1 {
        order.reverse();
    }
    order
}

/// The SQLSTATE of a store error's database cause, if it has one.
fn sqlstate(error: &jobs_core::StoreError) -> Option<String> {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(sqlx::Error::Database(db)) = cause.downcast_ref::<sqlx::Error>() {
            return db.code().map(|code| code.into_owned());
        }
        source = cause.source();
    }
    None
}

/// Regression (reliability issue, deadlocks between a server's own
/// statements): PostgreSQL logged `deadlock detected` between the lease
/// renewal and the batched completion of one server under pool pressure,
/// both updating many rows in no particular order. Here renewals, progress
/// writes and completions of the same 300 claimed rows run at once from
/// several tasks, each sending the rows in an order of its own; every
/// multi-row write locks its rows in id order, so none of them waits in a
/// cycle, and every call succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn renewals_progress_and_completions_in_conflicting_orders_never_deadlock() {
    const JOBS: usize = 300;
    const ROUNDS: usize = 3;
    let schema = common::TestSchema::new().await;
    // More tasks than connections: the pool pressure of a busy server.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(6)
        .connect(&common::database_url())
        .await
        .unwrap();
    let store = jobs_postgres::PgStore::with_options(
        pool,
        jobs_postgres::PgStoreOptions::new().schema(schema.name.clone()),
    )
    .await
    .unwrap();
    insert(&store, (0..JOBS as i64).map(|i| job("a", i)).collect()).await;
    let server = ServerId::new();
    let mut failures: Vec<String> = Vec::new();
    for round in 0..ROUNDS {
        let claimed = store
            .job_claim(claim_params(server, JOBS as u32))
            .await
            .unwrap();
        assert_eq!(claimed.len(), JOBS, "round {round}: every job is claimed");
        let claims: Vec<Claim> = claimed.iter().map(|row| row.claim()).collect();
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..4 {
            let (store, order) = (store.clone(), permuted(&claims, t));
            tasks.spawn(async move {
                let mut errors = Vec::new();
                for _ in 0..6 {
                    let p =
                        LeaseRenewManyParams::new(server, order.clone(), Duration::from_secs(30));
                    if let Err(e) = store.lease_renew_many(p).await {
                        errors.push(("renewal", sqlstate(&e), e.to_string()));
                    }
                }
                errors
            });
        }
        for t in 4..6 {
            let (store, order) = (store.clone(), permuted(&claims, t));
            tasks.spawn(async move {
                let mut errors = Vec::new();
                for k in 0..4 {
                    let updates = order.iter().map(|c| (*c, json!({ "k": k }))).collect();
                    let p = jobs_core::JobProgressManyParams::new(server, updates);
                    if let Err(e) = store.job_progress_many(p).await {
                        errors.push(("progress", sqlstate(&e), e.to_string()));
                    }
                }
                errors
            });
        }
        // Each completer hands back every job, in batches of 100 in its own
        // order: the first to reach a claim applies it, the others find it
        // stale; all of them lock the same rows.
        for t in 6..8 {
            let (store, order) = (store.clone(), permuted(&claims, t));
            tasks.spawn(async move {
                let mut errors = Vec::new();
                for batch in order.chunks(100) {
                    let completions = batch
                        .iter()
                        .map(|c| {
                            JobCompletion::new(
                                *c,
                                JobOutcome::Released {
                                    reason: "again".into(),
                                },
                            )
                        })
                        .collect();
                    let p = JobCompleteManyParams::new(server, completions);
                    if let Err(e) = store.job_complete_many(p).await {
                        errors.push(("completion", sqlstate(&e), e.to_string()));
                    }
                }
                errors
            });
        }
        while let Some(errors) = tasks.join_next().await {
            for (call, code, message) in errors.unwrap() {
                failures.push(format!("round {round}: {call}: {code:?}: {message}"));
            }
        }
        // A completion that failed left its jobs claimed: hand them back so
        // that the next round claims them all again.
        let left: Vec<JobCompletion> = claims
            .iter()
            .map(|c| {
                JobCompletion::new(
                    *c,
                    JobOutcome::Released {
                        reason: "again".into(),
                    },
                )
            })
            .collect();
        store
            .job_complete_many(JobCompleteManyParams::new(server, left))
            .await
            .unwrap();
    }
    let deadlocks = failures
        .iter()
        .filter(|f| f.contains("Some(\"40P01\")"))
        .count();
    assert!(
        failures.is_empty(),
        "{deadlocks} deadlocks (SQLSTATE 40P01) among {} failed calls: {:#?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    schema.drop().await;
}
