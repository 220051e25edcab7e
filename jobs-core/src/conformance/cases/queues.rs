//! `queue_pause`, `queue_list` and the claim's per-queue limits: a paused
//! queue is claimed by nobody, resuming makes it claimable (and wakes
//! servers), running jobs are left alone, one claim honours each queue's
//! limit, and the listing gives each queue's oldest due job.

use std::collections::HashMap;
use std::time::Duration;

use super::{
    claim_params, claim_with, complete, get, insert, insert_one, job_with, row, HOUR, JOB, QUEUE,
};
use crate::model::{JobId, JobState, RunAt, ServerId, Timestamp};
use crate::store::{JobCancelParams, JobOutcome, QueueListParams, QueuePauseParams, Store};

fn in_queue(queue: &str) -> crate::model::NewJob {
    job_with(|job| job.queue = queue.to_owned())
}

async fn pause<S: Store>(store: &S, queue: &str) {
    store
        .queue_pause(QueuePauseParams::pause(queue))
        .await
        .expect("queue_pause (pause) failed");
}

async fn resume<S: Store>(store: &S, queue: &str) {
    store
        .queue_pause(QueuePauseParams::resume(queue))
        .await
        .expect("queue_pause (resume) failed");
}

async fn paused_queues<S: Store>(store: &S) -> Vec<String> {
    store
        .queue_list(QueueListParams::new())
        .await
        .expect("queue_list failed")
        .into_iter()
        .filter(|q| q.paused)
        .map(|q| q.queue)
        .collect()
}

/// A paused queue's jobs stay waiting and no claim takes them, whatever the
/// server, while the other queues of the same claim are served; a listing
/// says which queue is paused and since when.
pub async fn paused_queue_is_claimed_by_nobody<S: Store>(store: S) {
    let mail = insert(&store, (0..3).map(|_| in_queue("mail")).collect()).await;
    let other = insert(&store, (0..2).map(|_| in_queue(QUEUE)).collect()).await;
    pause(&store, "mail").await;
    pause(&store, "mail").await; // twice: still paused, once
    for _ in 0..2 {
        let rows = claim_with(
            &store,
            claim_params(ServerId::new(), &["mail", QUEUE], &[JOB], 10),
        )
        .await;
        let ids: Vec<JobId> = rows.iter().map(|r| r.id).collect();
        assert!(
            ids.iter().all(|id| !mail.contains(id)),
            "a claim took jobs of the paused queue `mail`: {ids:?}"
        );
    }
    for id in &other {
        assert_eq!(
            row(&store, *id).await.state,
            JobState::Processing,
            "the queue that is not paused is served by the same claim"
        );
    }
    for id in &mail {
        assert_eq!(
            row(&store, *id).await.state,
            JobState::Enqueued,
            "a paused queue's jobs stay waiting"
        );
    }
    let queues = store.queue_list(QueueListParams::new()).await.unwrap();
    let names: Vec<&str> = queues.iter().map(|q| q.queue.as_str()).collect();
    assert!(
        names.contains(&"mail") && names.contains(&QUEUE),
        "queue_list names the queues with jobs: {names:?}"
    );
    let mail_info = queues.iter().find(|q| q.queue == "mail").unwrap();
    assert!(mail_info.paused && mail_info.paused_at.is_some());
    assert_eq!(paused_queues(&store).await, vec!["mail".to_owned()]);
}

/// Resuming a paused queue makes its jobs claimable at once, and raises the
/// store's signal if it has one; the queue stays listed, not paused.
pub async fn resumed_queue_is_claimable<S: Store>(store: S) {
    pause(&store, "mail").await;
    let ids = insert(&store, (0..2).map(|_| in_queue("mail")).collect()).await;
    let server = ServerId::new();
    assert!(
        claim_with(&store, claim_params(server, &["mail"], &[JOB], 10))
            .await
            .is_empty()
    );
    let mut rx = store.job_signal().map(|signal| signal.subscribe());
    if let Some(rx) = rx.as_mut() {
        rx.mark_unchanged();
    }
    resume(&store, "mail").await;
    if let Some(rx) = rx.as_mut() {
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .expect("resuming a queue must raise the store's signal")
            .expect("the signal's sender was dropped");
    }
    let mut claimed: Vec<JobId> = claim_with(&store, claim_params(server, &["mail"], &[JOB], 10))
        .await
        .iter()
        .map(|r| r.id)
        .collect();
    claimed.sort();
    assert_eq!(claimed, ids, "a resumed queue's jobs are claimable");
    assert!(paused_queues(&store).await.is_empty());
    let queues = store.queue_list(QueueListParams::new()).await.unwrap();
    let mail = queues.iter().find(|q| q.queue == "mail").expect("listed");
    assert!(!mail.paused && mail.paused_at.is_none());
}

/// Pausing a queue leaves its running jobs alone: they keep their claim and
/// complete normally; a retry of one waits while the queue is paused.
pub async fn pausing_does_not_touch_running_jobs<S: Store>(store: S) {
    let ids = insert(&store, (0..2).map(|_| in_queue("mail")).collect()).await;
    let server = ServerId::new();
    let rows = claim_with(&store, claim_params(server, &["mail"], &[JOB], 10)).await;
    assert_eq!(rows.len(), 2);
    pause(&store, "mail").await;
    for r in &rows {
        let now = row(&store, r.id).await;
        assert_eq!(now.state, JobState::Processing);
        assert_eq!(now.claim_token, r.claim_token, "the claim is untouched");
    }
    assert!(complete(&store, server, rows[0].claim(), JobOutcome::Succeeded).await);
    assert_eq!(get(&store, ids[0]).await.job.state, JobState::Succeeded);
    let retry = JobOutcome::Retry {
        error: "try again".to_owned(),
        after: Duration::ZERO,
    };
    assert!(complete(&store, server, rows[1].claim(), retry).await);
    assert!(
        claim_with(&store, claim_params(server, &["mail"], &[JOB], 10))
            .await
            .is_empty(),
        "a retried job of a paused queue waits"
    );
    resume(&store, "mail").await;
    let again = claim_with(&store, claim_params(server, &["mail"], &[JOB], 10)).await;
    assert_eq!(again.iter().map(|r| r.id).collect::<Vec<_>>(), vec![ids[1]]);
}

/// One claim across queues takes at most each queue's own limit from it, and
/// fills the rest of its limit from the other queues; a limit of 0 takes
/// nothing from its queue.
pub async fn claim_honours_per_queue_limits<S: Store>(store: S) {
    insert(&store, (0..10).map(|_| in_queue("mail")).collect()).await;
    insert(&store, (0..10).map(|_| in_queue(QUEUE)).collect()).await;
    insert(&store, (0..3).map(|_| in_queue("reports")).collect()).await;
    let p = claim_params(ServerId::new(), &["mail", QUEUE, "reports"], &[JOB], 8)
        .queue_limit("mail", 3)
        .queue_limit("reports", 0);
    let rows = claim_with(&store, p).await;
    let mut by_queue: HashMap<&str, usize> = HashMap::new();
    for r in &rows {
        *by_queue.entry(r.queue.as_str()).or_default() += 1;
    }
    assert_eq!(rows.len(), 8, "the claim's limit is filled: {by_queue:?}");
    assert_eq!(
        by_queue.get("mail"),
        Some(&3),
        "mail's own limit: {by_queue:?}"
    );
    assert_eq!(
        by_queue.get(QUEUE),
        Some(&5),
        "the rest from default: {by_queue:?}"
    );
    assert_eq!(by_queue.get("reports"), None, "a limit of 0 takes nothing");
    // A limit above what the claim asks for changes nothing.
    let p = claim_params(ServerId::new(), &["mail"], &[JOB], 2).queue_limit("mail", 50);
    assert_eq!(claim_with(&store, p).await.len(), 2);
}

/// The queue `queue` as `queue_list` gives it.
async fn listed<S: Store>(store: &S, queue: &str) -> crate::model::QueueInfo {
    let queues = store
        .queue_list(QueueListParams::new())
        .await
        .expect("queue_list failed");
    let found = queues.into_iter().find(|q| q.queue == queue);
    found.unwrap_or_else(|| panic!("queue_list does not name `{queue}`"))
}

/// `queue_list` gives each queue the run time of its oldest due job
/// (`enqueued`, or `scheduled` whose time has come), whatever the priority
/// of the jobs: a job delayed into the future does not count, nor a
/// running one, and a queue with no due job has none. When the oldest
/// leaves, the next oldest is given.
pub async fn queue_list_gives_each_queue_s_oldest_due_job<S: Store>(store: S) {
    let in_mail = |priority: i16| {
        job_with(|job| {
            job.queue = "mail".to_owned();
            job.priority = priority;
        })
    };
    // The oldest of `mail` has the lowest priority; newer ones rank higher.
    let old = insert_one(&store, in_mail(-5)).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let newer = insert(&store, vec![in_mail(7), in_mail(0)]).await;
    let mut delayed = in_mail(i16::MAX);
    delayed.run_at = RunAt::After(HOUR);
    insert_one(&store, delayed).await;
    // `backlog`: a job whose time came an hour ago. `later`: only a job
    // delayed by an hour. `busy`: only a running job.
    let past: Timestamp = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    let backlog = insert_one(
        &store,
        job_with(|job| {
            job.queue = "backlog".to_owned();
            job.priority = 3;
            job.run_at = RunAt::At(past);
        }),
    )
    .await;
    insert_one(
        &store,
        job_with(|job| {
            job.queue = "later".to_owned();
            job.run_at = RunAt::After(HOUR);
        }),
    )
    .await;
    insert_one(&store, job_with(|job| job.queue = "busy".to_owned())).await;
    let claimed = claim_with(&store, claim_params(ServerId::new(), &["busy"], &[JOB], 1)).await;
    assert_eq!(claimed.len(), 1, "the job of `busy` runs");

    assert_eq!(
        listed(&store, "mail").await.oldest_due,
        Some(row(&store, old).await.run_at),
        "the oldest due job of `mail`, of the lowest priority"
    );
    assert_eq!(
        listed(&store, "backlog").await.oldest_due,
        Some(row(&store, backlog).await.run_at),
        "a job whose time has come is due"
    );
    assert_eq!(
        listed(&store, "later").await.oldest_due,
        None,
        "a delayed job is not due"
    );
    assert_eq!(
        listed(&store, "busy").await.oldest_due,
        None,
        "a running job is not waiting"
    );

    store
        .job_cancel(JobCancelParams::new(old))
        .await
        .expect("job_cancel failed");
    let mut next = Vec::new();
    for id in &newer {
        next.push(row(&store, *id).await.run_at);
    }
    assert_eq!(
        listed(&store, "mail").await.oldest_due,
        next.into_iter().min(),
        "once the oldest has gone, the next oldest"
    );
}
