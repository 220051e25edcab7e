//! The store's [`JobSignal`](crate::JobSignal), for stores that have one:
//! its wake-ups for runnable jobs and for cancels of running ones.

use std::future::Future;
use std::time::{Duration, Instant};

use super::{claim, claim_only, complete, insert_one, job_with, new_job, DEADLINE};
use crate::model::ServerId;
use crate::store::{CancelOutcome, JobCancelParams, JobOutcome, JobRetryParams, Store};

/// Waits for the signal to fire after `act`, retrying `act` while the
/// store's listener may still be starting. Returns false if it never fired.
async fn fires_after<F, Fut>(rx: &mut tokio::sync::watch::Receiver<u64>, mut act: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let started = Instant::now();
    while started.elapsed() < DEADLINE {
        rx.mark_unchanged();
        act().await;
        if let Ok(changed) = tokio::time::timeout(Duration::from_millis(500), rx.changed()).await {
            changed.expect("the signal's sender was dropped");
            return true;
        }
    }
    false
}

/// If the store has a [`JobSignal`](crate::JobSignal), inserting a job raises it.
pub async fn signal_fires_on_insert<S: Store>(store: S) {
    let Some(signal) = store.job_signal() else {
        return;
    };
    let mut rx = signal.subscribe();
    assert!(
        fires_after(&mut rx, || async {
            insert_one(&store, new_job()).await;
        })
        .await,
        "inserting a job must raise the store's signal"
    );
}

/// If the store has a [`JobSignal`](crate::JobSignal), it is raised when jobs
/// become runnable again: released by a server, or retried by hand.
pub async fn signal_fires_when_jobs_become_runnable_again<S: Store>(store: S) {
    let Some(signal) = store.job_signal() else {
        return;
    };
    let mut rx = signal.subscribe();
    // Make sure the store's listener is up before testing what is not an insert.
    assert!(
        fires_after(&mut rx, || async {
            insert_one(&store, job_with(|job| job.max_attempts = 1)).await;
        })
        .await,
        "inserting a job must raise the store's signal"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let server = ServerId::new();
    let rows = claim(&store, server, 100).await;
    assert!(!rows.is_empty());
    let claimed = rows[0].claim();
    let mut released = false;
    assert!(
        fires_after(&mut rx, || {
            let first = !released;
            released = true;
            let store = &store;
            async move {
                if first {
                    let outcome = JobOutcome::Released {
                        reason: "shutdown".to_owned(),
                    };
                    assert!(complete(store, server, claimed, outcome).await);
                }
            }
        })
        .await,
        "releasing a job must raise the store's signal"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = claim_only(&store, server, claimed.job_id).await;
    let failed = JobOutcome::Failed {
        error: "e".to_owned(),
    };
    assert!(complete(&store, server, again.claim(), failed).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut retried = false;
    assert!(
        fires_after(&mut rx, || {
            let first = !retried;
            retried = true;
            let store = &store;
            async move {
                if first {
                    store
                        .job_retry(JobRetryParams::new(claimed.job_id))
                        .await
                        .expect("retrying a failed job");
                }
            }
        })
        .await,
        "retrying a job by hand must raise the store's signal"
    );
}

/// If the store has a [`JobSignal`](crate::JobSignal), cancelling a running
/// job raises its cancel wake-up
/// ([`notify_cancel`](crate::JobSignal::notify_cancel)), so that the server
/// running the job renews its leases at once and learns of the cancel, rather
/// than at its next renewal.
pub async fn signal_fires_on_cancel_of_a_running_job<S: Store>(store: S) {
    let Some(signal) = store.job_signal() else {
        return;
    };
    let mut rx = signal.subscribe_cancels();
    let id = insert_one(&store, new_job()).await;
    claim_only(&store, ServerId::new(), id).await;
    // A store's listener may raise it once when it starts listening (cancels
    // may have been missed before): let that pass first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    rx.mark_unchanged();
    let outcome = store
        .job_cancel(JobCancelParams::new(id))
        .await
        .expect("cancelling a running job");
    assert_eq!(outcome, CancelOutcome::Requested);
    let raised = tokio::time::timeout(DEADLINE, rx.changed()).await;
    assert!(
        matches!(raised, Ok(Ok(()))),
        "cancelling a running job must raise the store's cancel signal"
    );
}
