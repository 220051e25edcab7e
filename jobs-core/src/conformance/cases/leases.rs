//! `lease_renew_many` and `lease_rescue`: renewals, and the rescue of expired
//! leases.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::{
    claim, claim_lease, claim_only, complete, eventually, get, insert, insert_one, job_with,
    new_job, renew, rescue, row, LONG_LEASE, SHORT_LEASE,
};
use crate::model::{Claim, JobId, JobState, ServerId};
use crate::store::{CancelOutcome, JobCancelParams, JobOutcome, LeaseStatus, Store};

/// A lease renewed in time is never rescued, however long the job runs;
/// once renewals stop, it is rescued.
pub async fn lease_renew_keeps_job_from_rescue<S: Store>(store: S) {
    let lease = Duration::from_secs(1);
    let id = insert_one(&store, new_job()).await;
    let server = ServerId::new();
    let claimed = claim_lease(&store, server, 1, lease).await;
    assert_eq!(claimed.len(), 1);
    let first_expiry = claimed[0].lease_expires_at.unwrap();
    let started = Instant::now();
    while started.elapsed() < lease + lease / 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            renew(&store, server, vec![claimed[0].claim()], lease).await,
            vec![LeaseStatus::Held]
        );
        assert!(
            !rescue(&store, 100).await.contains(&id),
            "a job whose lease is renewed must not be rescued"
        );
    }
    let job = row(&store, id).await;
    assert_eq!(job.state, JobState::Processing);
    assert!(
        job.lease_expires_at.unwrap() > first_expiry,
        "renewing moves the lease forward"
    );
    eventually("rescuing the job once renewals stopped", || async {
        rescue(&store, 100).await.contains(&id).then_some(())
    })
    .await;
}

/// Renewal answers per claim, in order: `Held` for a current claim,
/// `CancelRequested` once a user asked to cancel the job, `Lost` for a wrong
/// token, an unknown job, or a job that finished.
pub async fn lease_renew_reports_lost_and_cancel_requested<S: Store>(store: S) {
    let ids = insert(&store, vec![new_job(), new_job()]).await;
    let server = ServerId::new();
    let mut rows = claim(&store, server, 2).await;
    rows.sort_by_key(|r| r.id);
    let (a, b) = (rows[0].claim(), rows[1].claim());
    let wrong = Claim {
        job_id: a.job_id,
        token: a.token + 1,
    };
    let missing = Claim {
        job_id: JobId(i64::MAX - 1),
        token: 1,
    };
    assert_eq!(
        renew(&store, server, vec![a, b, wrong, missing], LONG_LEASE).await,
        vec![
            LeaseStatus::Held,
            LeaseStatus::Held,
            LeaseStatus::Lost,
            LeaseStatus::Lost
        ]
    );
    let outcome = store
        .job_cancel(JobCancelParams::new(ids[1]).reason("user asked"))
        .await
        .expect("cancelling a running job");
    assert_eq!(outcome, CancelOutcome::Requested);
    assert_eq!(
        renew(&store, server, vec![a, b], LONG_LEASE).await,
        vec![LeaseStatus::Held, LeaseStatus::CancelRequested]
    );
    let cancelled = JobOutcome::Cancelled {
        reason: "user asked".to_owned(),
    };
    assert!(complete(&store, server, b, cancelled).await);
    let job = row(&store, ids[1]).await;
    assert_eq!(job.state, JobState::Cancelled);
    assert!(
        !job.cancel_requested,
        "completion clears the cancel request"
    );
    assert!(complete(&store, server, a, JobOutcome::Succeeded).await);
    assert_eq!(
        renew(&store, server, vec![a, b], LONG_LEASE).await,
        vec![LeaseStatus::Lost, LeaseStatus::Lost],
        "finished jobs' leases are lost"
    );
    assert!(renew(&store, server, Vec::new(), LONG_LEASE)
        .await
        .is_empty());
}

/// Rescue makes jobs whose lease expired runnable again (`scheduled`, the
/// error saying the lease expired) or `failed` when they have no attempts
/// left; it leaves live leases alone.
pub async fn rescue_makes_expired_jobs_runnable_and_fails_exhausted_ones<S: Store>(store: S) {
    let ids = insert(
        &store,
        vec![
            job_with(|job| job.max_attempts = 3),
            job_with(|job| job.max_attempts = 1),
            job_with(|job| job.max_attempts = 3),
        ],
    )
    .await;
    let (retried, exhausted, alive) = (ids[0], ids[1], ids[2]);
    let (dead, live) = (ServerId::new(), ServerId::new());
    assert_eq!(claim_lease(&store, dead, 2, SHORT_LEASE).await.len(), 2);
    assert_eq!(claim_lease(&store, live, 1, LONG_LEASE).await.len(), 1);
    let rescued = std::sync::Mutex::new(BTreeSet::new());
    eventually("rescuing both expired jobs", || async {
        let got = rescue(&store, 100).await;
        let mut rescued = rescued.lock().unwrap();
        rescued.extend(got);
        (rescued.contains(&retried) && rescued.contains(&exhausted)).then_some(())
    })
    .await;
    let rescued = rescued.into_inner().unwrap();
    assert!(
        !rescued.contains(&alive),
        "a live lease must not be rescued"
    );
    assert!(
        rescue(&store, 100).await.is_empty(),
        "nothing left to rescue"
    );

    let detail = get(&store, retried).await;
    assert_eq!(detail.job.state, JobState::Scheduled);
    assert_eq!(detail.job.attempt, 1);
    assert_eq!(detail.job.server_id, None);
    assert_eq!(detail.job.lease_expires_at, None);
    let error = detail.job.last_error.clone().unwrap_or_default();
    assert!(
        error.contains("lease expired"),
        "unexpected error {error:?}"
    );
    let event = detail.history.last().unwrap();
    assert_eq!(event.state, JobState::Scheduled);
    assert!(event
        .error
        .as_deref()
        .unwrap_or_default()
        .contains("lease expired"));
    let states_and_servers: Vec<_> = detail
        .history
        .iter()
        .map(|e| (e.state, e.attempt, e.server_id))
        .collect();
    assert_eq!(
        states_and_servers,
        vec![
            (JobState::Enqueued, 0, None),
            (JobState::Processing, 1, Some(dead)),
            (JobState::Scheduled, 1, None),
        ],
        "the rescued attempt's claim stays in the history, with its server"
    );

    let detail = get(&store, exhausted).await;
    assert_eq!(detail.job.state, JobState::Failed, "no attempts left");
    assert!(detail.job.finished_at.is_some());
    let error = detail.job.last_error.clone().unwrap_or_default();
    assert!(
        error.contains("lease expired"),
        "unexpected error {error:?}"
    );

    assert_eq!(row(&store, alive).await.state, JobState::Processing);
    let again = claim_only(&store, live, retried).await;
    assert_eq!(again.attempt, 2);
}

/// Rescue takes at most `limit` jobs per call.
pub async fn rescue_is_bounded_by_limit<S: Store>(store: S) {
    insert(&store, vec![new_job(), new_job(), new_job()]).await;
    let server = ServerId::new();
    assert_eq!(claim_lease(&store, server, 3, SHORT_LEASE).await.len(), 3);
    let first = eventually("the leases expiring", || async {
        let got = rescue(&store, 2).await;
        (!got.is_empty()).then_some(got)
    })
    .await;
    let mut all: BTreeSet<JobId> = first.iter().copied().collect();
    assert!(
        first.len() <= 2,
        "rescued {} jobs with limit 2",
        first.len()
    );
    while all.len() < 3 {
        let more = rescue(&store, 2).await;
        assert!(more.len() <= 2 && !more.is_empty());
        all.extend(more);
    }
    assert!(rescue(&store, 2).await.is_empty());
    assert!(rescue(&store, 0).await.is_empty());
}

/// A rescue never takes the jobs it is told to spare (the rescuer's own
/// claims), however expired their leases; the others it rescues.
pub async fn rescue_spares_the_jobs_it_is_told_to<S: Store>(store: S) {
    insert(&store, vec![new_job(), new_job()]).await;
    let server = ServerId::new();
    let mut claimed = claim_lease(&store, server, 2, SHORT_LEASE).await;
    claimed.sort_by_key(|r| r.id);
    let (spared, other) = (claimed[0].id, claimed[1].id);
    let rescued = eventually("the other lease expiring", || async {
        let params = crate::store::LeaseRescueParams::new().except([spared]);
        let got = store.lease_rescue(params).await.unwrap();
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert_eq!(rescued, vec![other]);
    assert_eq!(row(&store, spared).await.state, JobState::Processing);
    // Not spared any more: rescued like any other.
    assert_eq!(rescue(&store, 10).await, vec![spared]);
}

/// A stuck report of a current claim sets `stuck_since` (once: a second
/// report keeps the first time) and adds a `processing` event with the
/// reason; the job stays `processing` and its lease renewable. A report of
/// a stale claim changes nothing. The next claim clears `stuck_since`.
pub async fn report_stuck_marks_the_attempt_and_its_history<S: Store>(store: S) {
    let id = insert_one(&store, new_job()).await;
    let server = ServerId::new();
    let claimed = claim_lease(&store, server, 1, LONG_LEASE).await;
    let current = claimed[0].claim();
    let stale = Claim {
        job_id: id,
        token: current.token + 1,
    };
    let report = |claim: Claim, reason: &str| {
        crate::store::LeaseReportStuckParams::new(server, vec![(claim, reason.to_owned())])
    };
    assert_eq!(
        store
            .lease_report_stuck(report(stale, "stale"))
            .await
            .unwrap(),
        vec![false]
    );
    assert_eq!(row(&store, id).await.stuck_since, None);
    assert_eq!(
        store
            .lease_report_stuck(report(current, "stuck: first"))
            .await
            .unwrap(),
        vec![true]
    );
    let first = row(&store, id).await.stuck_since.expect("stuck_since set");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        store
            .lease_report_stuck(report(current, "stuck: again"))
            .await
            .unwrap(),
        vec![true]
    );
    let job = get(&store, id).await;
    assert_eq!(job.job.state, JobState::Processing);
    assert_eq!(
        job.job.stuck_since,
        Some(first),
        "the first report's time stays"
    );
    let reasons: Vec<_> = job
        .history
        .iter()
        .filter(|e| e.state == JobState::Processing)
        .filter_map(|e| e.error.clone())
        .collect();
    assert_eq!(reasons, ["stuck: first", "stuck: again"]);
    assert!(job
        .history
        .iter()
        .all(|e| e.error.as_deref() != Some("stale")));
    assert_eq!(
        renew(&store, server, vec![current], LONG_LEASE).await,
        vec![LeaseStatus::Held]
    );
    // Handed back and claimed again: a new attempt, not stuck.
    let released = JobOutcome::Released {
        reason: "test".to_owned(),
    };
    assert!(complete(&store, server, current, released).await);
    claim(&store, server, 1).await;
    assert_eq!(row(&store, id).await.stuck_since, None);
}
