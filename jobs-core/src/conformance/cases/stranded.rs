//! `job_stranded`: the due jobs no live server can take.

use std::time::Duration;

use chrono::Utc;

use super::{
    claim_params, claim_with, insert, job_with, server_info, whole_second, HOUR, JOB, QUEUE,
};
use crate::model::{RunAt, ServerId, ServerInfo, StrandedJobs, StrandedReason, Timestamp};
use crate::store::{JobStrandedParams, ServerHeartbeatParams, Store};

/// A job name no server of these cases registers.
const RENAMED: &str = "conformance_renamed_job";
/// A queue no server of these cases serves.
const UNSERVED: &str = "conformance_unserved";

async fn heartbeat<S: Store>(store: &S, info: ServerInfo) {
    store
        .server_heartbeat(ServerHeartbeatParams::new(info))
        .await
        .expect("server_heartbeat failed");
}

async fn stranded<S: Store>(store: &S, p: JobStrandedParams) -> Vec<StrandedJobs> {
    store.job_stranded(p).await.expect("job_stranded failed")
}

/// `(queue, name, reason, count, oldest_due)` of each group, in order.
fn groups(stranded: &[StrandedJobs]) -> Vec<(&str, &str, StrandedReason, i64, Timestamp)> {
    stranded
        .iter()
        .map(|g| {
            (
                g.queue.as_str(),
                g.name.as_str(),
                g.reason,
                g.count,
                g.oldest_due,
            )
        })
        .collect()
}

/// Jobs due in a queue no live server serves, and jobs due whose name no
/// live server serving their queue registers, are listed by queue and name
/// with their count and oldest due time, the longest waiting first; jobs a
/// live server can take, jobs not yet due and claimed jobs are not; `limit`
/// bounds the groups.
pub async fn stranded_lists_due_jobs_no_live_server_can_take<S: Store>(store: S) {
    let base = whole_second(Utc::now());
    let ago = |minutes: i64| base - chrono::Duration::minutes(minutes);
    // Serves the default queue and `mail` with JOB and `other_job`.
    heartbeat(&store, server_info(ServerId::new(), ago(60), 4)).await;
    // Knows RENAMED, but serves only `mail`: no help for the default queue.
    let mail_only = ServerInfo::new(ServerId::new(), ago(60))
        .queues(vec!["mail".to_owned()])
        .job_names(vec![RENAMED.to_owned()]);
    heartbeat(&store, mail_only).await;
    assert!(
        stranded(&store, JobStrandedParams::new()).await.is_empty(),
        "nothing waits yet"
    );

    let job = |queue: &str, name: &str, run_at: RunAt| {
        let (queue, name) = (queue.to_owned(), name.to_owned());
        job_with(move |job| {
            job.queue = queue;
            job.name = name;
            job.run_at = run_at;
        })
    };
    insert(
        &store,
        vec![
            // Runnable by the first server.
            job(QUEUE, JOB, RunAt::At(ago(300))),
            job("mail", JOB, RunAt::At(ago(300))),
            // Renamed: three due, one not yet.
            job(QUEUE, RENAMED, RunAt::At(ago(30))),
            job(QUEUE, RENAMED, RunAt::At(ago(20))),
            job(QUEUE, RENAMED, RunAt::At(ago(40))),
            job(QUEUE, RENAMED, RunAt::After(HOUR)),
            // A queue nobody serves.
            job(UNSERVED, JOB, RunAt::At(ago(90))),
            job(UNSERVED, JOB, RunAt::Now),
            // Not due yet: not listed at all.
            job(UNSERVED, "conformance_later", RunAt::After(HOUR)),
        ],
    )
    .await;
    // A claimed job is not waiting. The claimer knows RENAMED but sends no
    // heartbeat: it is not a live server. It takes the oldest of them.
    let claimer = ServerId::new();
    let claimed = claim_with(&store, claim_params(claimer, &[QUEUE], &[RENAMED], 1)).await;
    assert_eq!(claimed.len(), 1, "one renamed job claimed");

    let all = stranded(&store, JobStrandedParams::new()).await;
    assert_eq!(
        groups(&all),
        vec![
            (UNSERVED, JOB, StrandedReason::NoServerForQueue, 2, ago(90)),
            (
                QUEUE,
                RENAMED,
                StrandedReason::NoServerKnowsName,
                2,
                ago(30)
            ),
        ],
        "the stranded groups, the longest waiting first"
    );
    let first = stranded(&store, JobStrandedParams::new().limit(1)).await;
    assert_eq!(groups(&first), groups(&all[..1]), "limit bounds the groups");

    // A live server of the default queue that knows RENAMED takes them.
    let knows_renamed = ServerInfo::new(ServerId::new(), ago(5))
        .queues(vec![QUEUE.to_owned()])
        .job_names(vec![RENAMED.to_owned()]);
    heartbeat(&store, knows_renamed).await;
    let after = stranded(&store, JobStrandedParams::new()).await;
    assert_eq!(
        groups(&after),
        groups(&all[..1]),
        "jobs a live server can take are not stranded"
    );
}

/// Only live servers count: a server whose latest heartbeat is older than
/// `live_within`, on the store's clock, serves nothing.
pub async fn stranded_counts_only_servers_that_beat_within_live_within<S: Store>(store: S) {
    let base = whole_second(Utc::now());
    heartbeat(&store, server_info(ServerId::new(), base, 4)).await;
    insert(&store, vec![job_with(|job| job.run_at = RunAt::Now)]).await;
    assert!(
        stranded(&store, JobStrandedParams::new().live_within(HOUR))
            .await
            .is_empty(),
        "the server is live"
    );
    // The store's clock decides, so this waits in real time, with margins
    // as wide as the stale-server case's.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let silent = stranded(
        &store,
        JobStrandedParams::new().live_within(Duration::from_millis(1500)),
    )
    .await;
    assert_eq!(silent.len(), 1, "{silent:?}");
    assert_eq!(
        (
            silent[0].queue.as_str(),
            silent[0].name.as_str(),
            silent[0].reason,
            silent[0].count
        ),
        (QUEUE, JOB, StrandedReason::NoServerForQueue, 1),
        "a silent server serves nothing"
    );
    assert!(
        stranded(&store, JobStrandedParams::new().live_within(HOUR))
            .await
            .is_empty(),
        "within a longer age it is live again"
    );
}
