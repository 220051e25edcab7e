//! Fencing by claim token: a stale claim's late writes change nothing.

use super::{
    claim_lease, claim_only, complete, eventually, insert_one, job_with, new_job, renew, rescue,
    row, LONG_LEASE, SHORT_LEASE,
};
use crate::model::{JobState, ServerId};
use crate::store::{JobOutcome, JobRetryParams, LeaseStatus, Store};

/// Fencing: a server whose lease expired and whose job was rescued and
/// claimed by another server cannot complete it any more; its late write
/// changes nothing and its renewals report `Lost`.
pub async fn stale_claim_completion_changes_nothing<S: Store>(store: S) {
    let id = insert_one(&store, new_job()).await;
    let (slow, fresh) = (ServerId::new(), ServerId::new());
    let old = claim_lease(&store, slow, 1, SHORT_LEASE).await;
    assert_eq!(old.len(), 1);
    let old = old[0].claim();
    eventually("rescuing the expired lease", || async {
        rescue(&store, 100).await.contains(&id).then_some(())
    })
    .await;
    let new = claim_only(&store, fresh, id).await;
    assert!(new.claim_token > old.token);
    assert_eq!(new.attempt, 2);

    assert!(
        !complete(&store, slow, old, JobOutcome::Succeeded).await,
        "a stale completion must be refused"
    );
    let job = row(&store, id).await;
    assert_eq!(
        job.state,
        JobState::Processing,
        "a stale completion changes nothing"
    );
    assert_eq!(job.claim_token, new.claim_token);
    assert_eq!(job.server_id, Some(fresh));
    assert_eq!(
        renew(&store, slow, vec![old], LONG_LEASE).await,
        vec![LeaseStatus::Lost]
    );
    assert_eq!(
        renew(&store, fresh, vec![new.claim()], LONG_LEASE).await,
        vec![LeaseStatus::Held]
    );
    assert!(complete(&store, fresh, new.claim(), JobOutcome::Succeeded).await);
    assert_eq!(row(&store, id).await.state, JobState::Succeeded);
}

/// Claim tokens keep increasing across a retry by hand: the claim of a
/// finished attempt stays stale after the job is retried and claimed again.
pub async fn stale_claim_after_manual_retry_changes_nothing<S: Store>(store: S) {
    let id = insert_one(&store, job_with(|job| job.max_attempts = 1)).await;
    let server = ServerId::new();
    let first = claim_only(&store, server, id).await;
    let failed = JobOutcome::Failed {
        error: "boom".to_owned(),
    };
    assert!(complete(&store, server, first.claim(), failed).await);
    store
        .job_retry(JobRetryParams::new(id))
        .await
        .expect("retrying a failed job");
    let second = claim_only(&store, server, id).await;
    assert!(
        second.claim_token > first.claim_token,
        "tokens must not restart when attempts are reset"
    );
    assert!(!complete(&store, server, first.claim(), JobOutcome::Succeeded).await);
    assert_eq!(
        renew(&store, server, vec![first.claim()], LONG_LEASE).await,
        vec![LeaseStatus::Lost]
    );
    assert_eq!(row(&store, id).await.state, JobState::Processing);
    assert!(complete(&store, server, second.claim(), JobOutcome::Succeeded).await);
}
