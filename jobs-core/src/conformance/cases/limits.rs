//! `queue_limit` and the claim's cluster-wide limits: no more of a queue's
//! jobs running than its concurrency limit under many claiming tasks, a
//! dead server's places freed with its leases, no more started per period
//! than its rate limit, limits changed and lifted without a restart and
//! listed, combined with a claim's own limits and with unlimited queues.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    assert_kind, claim_params, claim_with, complete, eventually, insert, job_with, rescue, row,
    JOB, QUEUE, SHORT_LEASE,
};
use crate::limits::{QueueLimits, RateLimit};
use crate::model::{JobId, JobState, NewJob, ServerId};
use crate::store::{
    JobCountParams, JobOutcome, QueueLimitParams, QueueListParams, QueuePauseParams, Store,
    StoreErrorKind,
};

fn in_queue(queue: &str) -> NewJob {
    job_with(|job| job.queue = queue.to_owned())
}

async fn set_limits<S: Store>(store: &S, queue: &str, limits: QueueLimits) {
    store
        .queue_limit(QueueLimitParams::new(queue, limits))
        .await
        .expect("queue_limit failed");
}

async fn running_in<S: Store>(store: &S, queue: &str) -> i64 {
    store
        .job_count(JobCountParams::new())
        .await
        .expect("job_count failed")
        .into_iter()
        .filter(|c| c.queue == queue && c.state == JobState::Processing)
        .map(|c| c.count)
        .sum()
}

async fn limits_of<S: Store>(store: &S, queue: &str) -> QueueLimits {
    store
        .queue_list(QueueListParams::new())
        .await
        .expect("queue_list failed")
        .into_iter()
        .find(|q| q.queue == queue)
        .unwrap_or_else(|| panic!("queue_list does not name `{queue}`"))
        .limits
}

/// Runs eight claiming tasks, each a server of its own, over the `jobs`
/// jobs of `queue` until all have run: each claims up to `per_claim`, holds
/// what it got a moment, then completes it. After each claim, the jobs the
/// claimers hold (counted between their claims and completions, so never
/// more than run) must not pass `limit`, nor, if `sample_store` is set, the
/// queue's running jobs as the store counts them.
async fn claim_and_finish_all<S: Store>(
    store: S,
    queue: &'static str,
    jobs: usize,
    per_claim: u32,
    limit: usize,
    sample_store: bool,
) {
    const CLAIMERS: usize = 8;
    let store = Arc::new(store);
    let held = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..CLAIMERS)
        .map(|_| {
            let (store, held, done) = (Arc::clone(&store), Arc::clone(&held), Arc::clone(&done));
            tokio::spawn(async move {
                let server = ServerId::new();
                let started = Instant::now();
                while done.load(Ordering::SeqCst) < jobs {
                    assert!(
                        started.elapsed() < Duration::from_secs(60),
                        "the limited jobs did not all run within 60 s"
                    );
                    let rows =
                        claim_with(&*store, claim_params(server, &[queue], &[JOB], per_claim))
                            .await;
                    let now_held = held.fetch_add(rows.len(), Ordering::SeqCst) + rows.len();
                    assert!(
                        now_held <= limit,
                        "{now_held} held by the claimers at once, over the limit of {limit}"
                    );
                    if sample_store {
                        let running = usize::try_from(running_in(&*store, queue).await).unwrap();
                        assert!(
                            running <= limit,
                            "{running} running in the store, over the limit of {limit}"
                        );
                    }
                    if rows.is_empty() {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        continue;
                    }
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    for r in rows {
                        held.fetch_sub(1, Ordering::SeqCst);
                        assert!(complete(&*store, server, r.claim(), JobOutcome::Succeeded).await);
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a claimer panicked");
    }
    assert_eq!(done.load(Ordering::SeqCst), jobs, "every job ran once");
}

/// Many claiming tasks, each a server of its own claiming and finishing
/// jobs of a queue limited to 3 at once: no sample of the queue's running
/// jobs, taken by the store after each claim and counted by the tasks
/// between their claims and completions, ever exceeds 3, and every job
/// runs.
pub async fn concurrency_limit_holds_under_many_claiming_tasks<S: Store>(store: S) {
    const JOBS: usize = 40;
    set_limits(&store, "mail", QueueLimits::none().concurrency(3)).await;
    insert(&store, (0..JOBS).map(|_| in_queue("mail")).collect()).await;
    claim_and_finish_all(store, "mail", JOBS, 2, 3, true).await;
}

/// A server that dies holding the limit's places keeps them only until its
/// leases expire: once the rescuer has put its jobs back, another server
/// claims up to the limit again.
pub async fn a_dead_server_s_places_come_back_with_its_leases<S: Store>(store: S) {
    set_limits(&store, "mail", QueueLimits::none().concurrency(2)).await;
    insert(&store, (0..5).map(|_| in_queue("mail")).collect()).await;
    let mut dying = claim_params(ServerId::new(), &["mail"], &[JOB], 10);
    dying.lease = SHORT_LEASE;
    assert_eq!(claim_with(&store, dying).await.len(), 2, "up to the limit");
    let other = ServerId::new();
    assert!(
        claim_with(&store, claim_params(other, &["mail"], &[JOB], 10))
            .await
            .is_empty(),
        "the dead server's places are taken while its leases last"
    );
    let rescued = eventually("the dead server's leases to expire", || async {
        let rescued = rescue(&store, 100).await;
        (!rescued.is_empty()).then_some(rescued)
    })
    .await;
    assert_eq!(rescued.len(), 2);
    let again = claim_with(&store, claim_params(other, &["mail"], &[JOB], 10)).await;
    assert_eq!(again.len(), 2, "its places came back with its leases");
}

/// A rate limit counts starts, across servers: three servers together take
/// no more than the limit, finishing the jobs frees nothing, and the next
/// jobs start only once the period has passed since the first claim.
pub async fn rate_limit_counts_starts_across_servers<S: Store>(store: S) {
    let rate = RateLimit::new(4, Duration::from_secs(1));
    set_limits(&store, "api", QueueLimits::none().rate(rate)).await;
    insert(&store, (0..12).map(|_| in_queue("api")).collect()).await;
    let before_first = Instant::now();
    let mut first = Vec::new();
    for _ in 0..3 {
        let server = ServerId::new();
        for r in claim_with(&store, claim_params(server, &["api"], &[JOB], 10)).await {
            first.push((server, r));
        }
    }
    assert_eq!(first.len(), 4, "three servers together start the limit");
    for (server, r) in &first {
        assert!(complete(&store, *server, r.claim(), JobOutcome::Succeeded).await);
    }
    let server = ServerId::new();
    assert!(
        claim_with(&store, claim_params(server, &["api"], &[JOB], 10))
            .await
            .is_empty(),
        "finished jobs still count against the rate"
    );
    let second = eventually("the next period's starts", || async {
        let rows = claim_with(&store, claim_params(server, &["api"], &[JOB], 10)).await;
        (!rows.is_empty()).then_some(rows.len())
    })
    .await;
    assert!(
        before_first.elapsed() >= rate.per,
        "more jobs started within {:?} of the first than the rate allows",
        rate.per
    );
    assert!(second <= 4, "{second} started in one period");
    assert_eq!(limits_of(&store, "api").await.rate, Some(rate));
}

/// Limits are applied from the next claim on: raised, they free places at
/// once; lifted, the queue is claimed without them; listed as set; refused
/// when no claim could honour them. A paused limited queue is claimed by
/// nobody.
pub async fn limits_change_without_a_restart_and_are_listed<S: Store>(store: S) {
    let ids = insert(&store, (0..8).map(|_| in_queue("mail")).collect()).await;
    let server = ServerId::new();
    let claim_mail = || claim_with(&store, claim_params(server, &["mail"], &[JOB], 10));
    set_limits(&store, "mail", QueueLimits::none().concurrency(1)).await;
    assert_eq!(
        limits_of(&store, "mail").await,
        QueueLimits::none().concurrency(1)
    );
    assert_eq!(claim_mail().await.len(), 1);
    assert!(claim_mail().await.is_empty(), "one at a time");
    set_limits(&store, "mail", QueueLimits::none().concurrency(3)).await;
    assert_eq!(claim_mail().await.len(), 2, "a raised limit frees places");
    store
        .queue_pause(QueuePauseParams::pause("mail"))
        .await
        .unwrap();
    set_limits(&store, "mail", QueueLimits::none().concurrency(10)).await;
    assert!(
        claim_mail().await.is_empty(),
        "a paused limited queue is claimed by nobody"
    );
    store
        .queue_pause(QueuePauseParams::resume("mail"))
        .await
        .unwrap();
    set_limits(&store, "mail", QueueLimits::none()).await;
    assert!(limits_of(&store, "mail").await.is_none(), "lifted");
    assert_eq!(claim_mail().await.len(), 5, "a lifted limit takes the rest");
    for id in ids {
        assert_eq!(row(&store, id).await.state, JobState::Processing);
    }
    for refused in [
        QueueLimits::none().concurrency(0),
        QueueLimits::none().rate(RateLimit::per_second(0)),
        QueueLimits::none().rate(RateLimit::new(1, Duration::from_millis(10))),
    ] {
        assert_kind(
            store
                .queue_limit(QueueLimitParams::new("mail", refused))
                .await,
            StoreErrorKind::Invalid,
            "a limit no claim can honour",
        );
    }
    // A queue that has no jobs yet can be limited, and is listed.
    set_limits(&store, "later", QueueLimits::none().concurrency(2)).await;
    assert_eq!(limits_of(&store, "later").await.concurrency, Some(2));
}

/// One claim across a limited queue and an unlimited one keeps the order of
/// preference: the limited queue gives what its limit and the claim's own
/// limit for it leave, and the rest comes from the other queue.
pub async fn limits_combine_with_a_claim_s_own_and_with_unlimited_queues<S: Store>(store: S) {
    insert(&store, (0..10).map(|_| in_queue("mail")).collect()).await;
    insert(&store, (0..10).map(|_| in_queue(QUEUE)).collect()).await;
    set_limits(&store, "mail", QueueLimits::none().concurrency(4)).await;
    let by_queue = |rows: &[crate::model::JobRow]| {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for r in rows {
            *counts.entry(r.queue.clone()).or_default() += 1;
        }
        counts
    };
    let p = claim_params(ServerId::new(), &["mail", QUEUE], &[JOB], 6).queue_limit("mail", 3);
    let rows = claim_with(&store, p).await;
    let counts = by_queue(&rows);
    assert_eq!(rows.len(), 6, "the claim is filled: {counts:?}");
    assert_eq!(counts.get("mail"), Some(&3), "its own limit: {counts:?}");
    let ids: Vec<JobId> = rows.iter().map(|r| r.id).collect();
    assert!(
        rows[..3].iter().all(|r| r.queue == "mail"),
        "the preferred queue first: {ids:?}"
    );
    let rows = claim_with(
        &store,
        claim_params(ServerId::new(), &["mail", QUEUE], &[JOB], 6),
    )
    .await;
    let counts = by_queue(&rows);
    assert_eq!(
        counts.get("mail"),
        Some(&1),
        "the cluster-wide limit leaves 1: {counts:?}"
    );
    assert_eq!(counts.get(QUEUE), Some(&5), "{counts:?}");
    assert_eq!(running_in(&store, "mail").await, 4);
}

fn keyed(key: &str, running: u32) -> NewJob {
    job_with(|job| job.limit_key = Some(crate::limits::LimitKey::new(key, running)))
}

/// Jobs with a key limit of 1 run one at a time per key while the other
/// keys and the jobs without a key proceed; a job whose key is busy waits,
/// `enqueued`, without spending an attempt, and runs once the key's job
/// has finished, whatever the outcome.
pub async fn keyed_jobs_run_one_at_a_time_per_key_and_others_proceed<S: Store>(store: S) {
    let a = insert(&store, (0..3).map(|_| keyed("customer:a", 1)).collect()).await;
    let b = insert(&store, (0..2).map(|_| keyed("customer:b", 1)).collect()).await;
    let free = insert(&store, vec![super::new_job()]).await;
    let server = ServerId::new();
    let claim_all = || claim_with(&store, claim_params(server, &[QUEUE], &[JOB], 10));
    let mut first: Vec<JobId> = claim_all().await.iter().map(|r| r.id).collect();
    first.sort();
    assert_eq!(
        first,
        vec![a[0], b[0], free[0]],
        "one job per key, and the job without a key"
    );
    assert!(claim_all().await.is_empty(), "both keys are busy");
    let waiting = row(&store, a[1]).await;
    assert_eq!(
        (waiting.state, waiting.attempt),
        (JobState::Enqueued, 0),
        "a job whose key is busy waits without spending an attempt"
    );
    let running_a = row(&store, a[0]).await;
    assert!(complete(&store, server, running_a.claim(), JobOutcome::Succeeded).await);
    let next: Vec<JobId> = claim_all().await.iter().map(|r| r.id).collect();
    assert_eq!(next, vec![a[1]], "the key's next job, once its job ended");
    // A retry gives the key back too, and the retried job queues for it.
    let retry = JobOutcome::Retry {
        error: "again".to_owned(),
        after: Duration::ZERO,
    };
    let running_b = row(&store, b[0]).await;
    assert!(complete(&store, server, running_b.claim(), retry).await);
    let mut after_retry: Vec<JobId> = claim_all().await.iter().map(|r| r.id).collect();
    after_retry.sort();
    assert_eq!(
        after_retry.len(),
        1,
        "one of customer b's jobs: {after_retry:?}"
    );
    assert!(b.contains(&after_retry[0]));
    let listed = row(&store, a[2]).await;
    assert_eq!(
        listed.limit_key,
        Some(crate::limits::LimitKey::new("customer:a", 1)),
        "the key is stored with the job"
    );
}

/// A key busy with many waiting jobs at the head of the queue does not hold
/// up the jobs behind it: one claim passes over them.
pub async fn a_busy_key_does_not_hold_up_the_jobs_behind_it<S: Store>(store: S) {
    let busy = insert(&store, (0..40).map(|_| keyed("tenant:big", 1)).collect()).await;
    let behind = insert(
        &store,
        vec![keyed("tenant:small", 1), super::new_job(), super::new_job()],
    )
    .await;
    let server = ServerId::new();
    let first = claim_with(&store, claim_params(server, &[QUEUE], &[JOB], 1)).await;
    assert_eq!(first[0].id, busy[0]);
    let mut rest: Vec<JobId> = claim_with(&store, claim_params(server, &[QUEUE], &[JOB], 10))
        .await
        .iter()
        .map(|r| r.id)
        .collect();
    rest.sort();
    assert_eq!(rest, behind, "the jobs behind the busy key are claimed");
}

/// Many claiming tasks over jobs of one key limited to 2: no sample of the
/// jobs the claimers hold ever exceeds 2, and every job runs.
pub async fn key_limit_holds_under_many_claiming_tasks<S: Store>(store: S) {
    const JOBS: usize = 30;
    insert(&store, (0..JOBS).map(|_| keyed("account:1", 2)).collect()).await;
    claim_and_finish_all(store, QUEUE, JOBS, 3, 2, false).await;
}

/// A dead server's keyed job holds its key only until its lease expires:
/// the rescue gives the key back, and the job (or the next) runs again.
pub async fn a_dead_server_s_key_comes_back_with_its_lease<S: Store>(store: S) {
    let ids = insert(&store, (0..2).map(|_| keyed("customer:c", 1)).collect()).await;
    let mut dying = claim_params(ServerId::new(), &[QUEUE], &[JOB], 10);
    dying.lease = SHORT_LEASE;
    assert_eq!(claim_with(&store, dying).await.len(), 1);
    let other = ServerId::new();
    assert!(
        claim_with(&store, claim_params(other, &[QUEUE], &[JOB], 10))
            .await
            .is_empty()
    );
    eventually("the dead server's lease to expire", || async {
        (!rescue(&store, 100).await.is_empty()).then_some(())
    })
    .await;
    let again = claim_with(&store, claim_params(other, &[QUEUE], &[JOB], 10)).await;
    assert_eq!(again.len(), 1, "the key came back with the lease");
    assert!(ids.contains(&again[0].id));
}

/// A key limit that could let nothing run is refused at the insert.
pub async fn a_key_limit_of_zero_or_an_empty_key_is_refused<S: Store>(store: S) {
    for wrong in [keyed("customer:d", 0), keyed("", 1)] {
        assert_kind(
            store
                .job_insert_many(crate::store::JobInsertManyParams::new(vec![wrong]))
                .await,
            StoreErrorKind::Invalid,
            "a key limit that lets nothing run",
        );
    }
}
