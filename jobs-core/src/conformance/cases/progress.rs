//! `job_progress_many`: a running attempt's progress.

use serde_json::json;

use super::{claim_only, complete, insert_one, new_job, row};
use crate::model::{Claim, ServerId};
use crate::store::{JobOutcome, JobProgressManyParams, Store};

/// `job_progress_many` records a running attempt's progress, visible in
/// `job_get`; an update naming a stale claim changes nothing; the next claim
/// of the job clears it.
pub async fn progress_is_recorded_fenced_and_cleared_on_the_next_claim<S: Store>(store: S) {
    let server = ServerId::new();
    let id = insert_one(&store, new_job()).await;
    let first = claim_only(&store, server, id).await;
    let report = |claim: Claim, percent: u8| {
        store.job_progress_many(JobProgressManyParams::new(
            server,
            vec![(claim, json!({ "percent": percent }))],
        ))
    };
    assert_eq!(report(first.claim(), 40).await.expect("progress"), [true]);
    assert_eq!(
        row(&store, id).await.progress,
        Some(json!({ "percent": 40 }))
    );

    let stale = Claim {
        job_id: id,
        token: first.claim_token + 1,
    };
    assert_eq!(
        report(stale, 90).await.expect("progress"),
        [false],
        "a stale claim"
    );
    assert_eq!(
        row(&store, id).await.progress,
        Some(json!({ "percent": 40 }))
    );

    let released = JobOutcome::Released {
        reason: "shutdown".to_owned(),
    };
    assert!(complete(&store, server, first.claim(), released).await);
    assert_eq!(
        report(first.claim(), 50).await.expect("progress"),
        [false],
        "not running"
    );
    let second = claim_only(&store, server, id).await;
    assert_eq!(second.progress, None, "a new claim starts without progress");
    assert_eq!(row(&store, id).await.progress, None);
}
