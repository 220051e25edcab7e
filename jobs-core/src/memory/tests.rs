//! What the conformance suite cannot check on every store: the paused
//! clock, the claim index, and edge cases of time arithmetic.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::index::Index;
use super::MemoryStore;
use crate::model::{JobId, JobRow, JobState, NewJob, RecurringOrigin, RunAt, ServerId, Timestamp};
use crate::store::{
    CronDueParams, CronFireOutcome, CronFireParams, CronListParams, CronPauseParams,
    CronRemoveParams, CronTriggerParams, CronUpsertParams, JobClaimParams, JobCompleteManyParams,
    JobCompletion, JobDeleteParams, JobGetParams, JobInsertManyParams, JobOutcome, JobPruneParams,
    JobRetryParams, LeaseRescueParams, Retention, Store, StoreErrorKind,
};

fn claim_params(server: ServerId, limit: u32, lease: Duration) -> JobClaimParams {
    JobClaimParams::new(server)
        .queues(["default"])
        .names(["job"])
        .limit(limit)
        .lease(lease)
}

async fn insert(store: &MemoryStore, job: NewJob) -> JobId {
    store
        .job_insert_many(JobInsertManyParams::new(vec![job]))
        .await
        .unwrap()[0]
        .id
}

fn job(run_at: RunAt) -> NewJob {
    let mut job = NewJob::new("job", serde_json::json!({}));
    job.run_at = run_at;
    job
}

async fn row(store: &MemoryStore, id: JobId) -> JobRow {
    store
        .job_get(JobGetParams::new(id))
        .await
        .unwrap()
        .unwrap()
        .job
}

#[tokio::test(start_paused = true)]
async fn clock_follows_paused_tokio_time() {
    let store = MemoryStore::new();
    let id = insert(&store, job(RunAt::After(Duration::from_secs(3600)))).await;
    let server = ServerId::new();
    let claimed = store
        .job_claim(claim_params(server, 10, Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(claimed.is_empty(), "an hour has not passed");

    // On a paused clock this returns at once.
    let started = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(started.elapsed() < Duration::from_secs(5));

    let claimed = store
        .job_claim(claim_params(server, 10, Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, id);
    let created = claimed[0].created_at;
    let lease = claimed[0].lease_expires_at.unwrap();
    assert!(lease - created >= chrono::Duration::seconds(3630));
}

#[tokio::test(start_paused = true)]
async fn leases_expire_and_backoff_elapses_on_paused_clock() {
    let store = MemoryStore::new();
    let id = insert(&store, job(RunAt::Now)).await;
    let server = ServerId::new();
    let lease = Duration::from_secs(30);
    let claimed = store
        .job_claim(claim_params(server, 1, lease))
        .await
        .unwrap();
    assert!(store
        .lease_rescue(LeaseRescueParams::new().limit(10))
        .await
        .unwrap()
        .is_empty());
    tokio::time::advance(Duration::from_secs(31)).await;
    assert_eq!(
        store
            .lease_rescue(LeaseRescueParams::new().limit(10))
            .await
            .unwrap(),
        vec![id]
    );
    let again = store
        .job_claim(claim_params(server, 1, lease))
        .await
        .unwrap();
    assert_eq!(again[0].attempt, 2);
    assert!(again[0].claim_token > claimed[0].claim_token);

    let applied = store
        .job_complete_many(JobCompleteManyParams::new(
            server,
            vec![JobCompletion::new(
                again[0].claim(),
                JobOutcome::Retry {
                    error: "boom".into(),
                    after: Duration::from_secs(600),
                },
            )],
        ))
        .await
        .unwrap();
    assert_eq!(applied, vec![true]);
    assert!(store
        .job_claim(claim_params(server, 1, lease))
        .await
        .unwrap()
        .is_empty());
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(
        store
            .job_claim(claim_params(server, 1, lease))
            .await
            .unwrap()[0]
            .attempt,
        3
    );
}

#[test]
fn clock_works_outside_a_runtime_and_never_goes_back() {
    let store = MemoryStore::new();
    let mut state = store.lock();
    let a = state.now(&store.inner.clock);
    let b = state.now(&store.inner.clock);
    assert!(b >= a);
    state.last_now = Some(a + chrono::Duration::hours(1));
    assert_eq!(
        state.now(&store.inner.clock),
        a + chrono::Duration::hours(1)
    );
}

#[tokio::test]
async fn huge_durations_saturate_instead_of_panicking() {
    let store = MemoryStore::new();
    let id = insert(&store, job(RunAt::After(Duration::MAX))).await;
    assert_eq!(row(&store, id).await.state, JobState::Scheduled);
    let server = ServerId::new();
    let other = insert(&store, job(RunAt::Now)).await;
    let claimed = store
        .job_claim(claim_params(server, 10, Duration::MAX))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, other);
    assert_eq!(claimed[0].lease_expires_at, Some(DateTime::<Utc>::MAX_UTC));
    let pruned = store
        .job_prune(
            JobPruneParams::new(
                Retention::default()
                    .succeeded(Duration::MAX)
                    .deleted(Duration::MAX)
                    .failed(Duration::MAX),
            )
            .limit(100),
        )
        .await
        .unwrap();
    assert_eq!(pruned, 0);
}

#[tokio::test]
async fn claim_skips_future_jobs_of_every_priority() {
    let store = MemoryStore::new();
    let mut ids = Vec::new();
    for priority in [i16::MAX, 3, 0, i16::MIN] {
        let mut later = job(RunAt::After(Duration::from_secs(3600)));
        later.priority = priority;
        insert(&store, later).await;
        let mut now = job(RunAt::Now);
        now.priority = priority;
        ids.push(insert(&store, now).await);
    }
    let claimed = store
        .job_claim(claim_params(ServerId::new(), 100, Duration::from_secs(30)))
        .await
        .unwrap();
    let claimed: Vec<JobId> = claimed.iter().map(|row| row.id).collect();
    assert_eq!(claimed, ids);
}

#[tokio::test]
async fn indexes_stay_consistent_through_every_transition() {
    let store = MemoryStore::new();
    let server = ServerId::new();
    let lease = Duration::from_secs(30);
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(insert(&store, job(RunAt::Now)).await);
    }
    let claimed = store
        .job_claim(claim_params(server, 6, lease))
        .await
        .unwrap();
    let outcomes = [
        JobOutcome::Succeeded,
        JobOutcome::Failed { error: "e".into() },
        JobOutcome::Cancelled { reason: "r".into() },
        JobOutcome::Released { reason: "r".into() },
        JobOutcome::Snooze {
            after: Duration::ZERO,
        },
        JobOutcome::Retry {
            error: "e".into(),
            after: Duration::ZERO,
        },
    ];
    let completions = claimed
        .iter()
        .zip(outcomes)
        .map(|(row, outcome)| JobCompletion::new(row.claim(), outcome))
        .collect();
    store
        .job_complete_many(JobCompleteManyParams::new(server, completions))
        .await
        .unwrap();
    store
        .job_delete(JobDeleteParams::new(ids[0]))
        .await
        .unwrap();
    store.job_retry(JobRetryParams::new(ids[1])).await.unwrap();

    let state = store.lock();
    let mut rebuilt = Index::default();
    for job in state.jobs.values() {
        rebuilt.add(job);
    }
    assert_eq!(rebuilt.waiting, state.index.waiting);
    assert_eq!(rebuilt.leases, state.index.leases);
    assert_eq!(rebuilt.finished, state.index.finished);
    assert_eq!(rebuilt.counts, state.index.counts);
    assert_eq!(rebuilt.unique, state.index.unique);
    for (job_state, ids) in &state.index.by_state {
        assert_eq!(
            rebuilt.by_state.get(job_state).cloned().unwrap_or_default(),
            *ids
        );
    }
}

#[tokio::test]
async fn recurring_jobs_fire_once_per_tick_and_skip_while_running() {
    use crate::recurring::{RecurringDef, RecurringOptions};
    use crate::Cron;

    let store = MemoryStore::new();
    let def = RecurringDef::new(
        "nightly".to_owned(),
        &Cron::daily(),
        job(RunAt::Now),
        RecurringOptions::new(),
    );
    store
        .cron_upsert(CronUpsertParams::new(def.clone()))
        .await
        .unwrap();
    let due = store
        .cron_due(CronDueParams::new().limit(10))
        .await
        .unwrap();
    assert_eq!(
        due.due.len(),
        1,
        "a new entry is due to get its next_run_at"
    );
    let tick = due.now;
    let run = |expected: Option<Timestamp>| {
        let mut run = job(RunAt::Now);
        run.recurring = Some(RecurringOrigin {
            id: "nightly".to_owned(),
            scheduled_for: tick,
        });
        CronFireParams::new("nightly".to_owned(), expected, tick)
            .jobs(vec![run])
            .skip_if_running(true)
    };
    let fired = store.cron_fire(run(None)).await.unwrap();
    let CronFireOutcome::Fired(ids) = fired else {
        panic!("expected a fire, got {fired:?}")
    };
    assert_eq!(ids.len(), 1);
    assert_eq!(
        store.cron_fire(run(None)).await.unwrap(),
        CronFireOutcome::Lost,
        "the same tick fires once"
    );
    assert_eq!(
        store.cron_fire(run(Some(tick))).await.unwrap(),
        CronFireOutcome::SkippedRunning,
        "the first run is still enqueued"
    );
    let list = store.cron_list(CronListParams::new()).await.unwrap();
    assert_eq!(list[0].last_job_id, Some(ids[0]));
    assert_eq!(list[0].last_job_state, Some(JobState::Enqueued));
    assert!(list[0].last_skipped.is_some());

    // An unchanged definition keeps next_run_at; pause and resume reset it.
    store.cron_upsert(CronUpsertParams::new(def)).await.unwrap();
    let list = store.cron_list(CronListParams::new()).await.unwrap();
    assert_eq!(list[0].next_run_at, Some(tick));
    let pause = |paused| {
        if paused {
            CronPauseParams::pause("nightly")
        } else {
            CronPauseParams::resume("nightly")
        }
    };
    store.cron_pause(pause(true)).await.unwrap();
    assert!(store
        .cron_due(CronDueParams::new().limit(10))
        .await
        .unwrap()
        .due
        .is_empty());
    store.cron_pause(pause(false)).await.unwrap();
    let list = store.cron_list(CronListParams::new()).await.unwrap();
    assert_eq!(list[0].next_run_at, None);

    let triggered = store
        .cron_trigger(CronTriggerParams::new("nightly".to_owned()))
        .await
        .unwrap();
    let row = row(&store, triggered).await;
    assert_eq!(row.recurring.unwrap().id, "nightly");
    assert!(store
        .cron_remove(CronRemoveParams::new("nightly".to_owned()))
        .await
        .unwrap());
    assert_eq!(
        store
            .cron_trigger(CronTriggerParams::new("nightly".to_owned()))
            .await
            .unwrap_err()
            .kind(),
        StoreErrorKind::NotFound
    );
}

#[tokio::test]
async fn clones_share_jobs_and_signal() {
    let store = MemoryStore::new();
    let clone = store.clone();
    let mut rx = clone.job_signal().unwrap().subscribe();
    rx.mark_unchanged();
    let id = insert(&store, job(RunAt::Now)).await;
    assert!(rx.has_changed().unwrap());
    assert_eq!(row(&clone, id).await.state, JobState::Enqueued);
    assert!(format!("{store:?}").contains("jobs: 1"));
}
