//! Unique jobs (`NewJob::unique`): a held key makes an insert a duplicate
//! returning the holder, in batches and under concurrent inserts; which
//! states hold a key; periods judged on run time; retries that would make
//! two holders refused.

use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use serde_json::json;

use super::{claim_only, complete, get, insert_detailed, insert_one, job_with, list, LONG_LEASE};
use crate::job::{HeldAfter, Unique, UniqueKey};
use crate::model::{Inserted, JobId, JobState, NewJob, RunAt, ServerId};
use crate::store::{
    JobActMatchingParams, JobAction, JobCancelParams, JobDeleteParams, JobFilter, JobOutcome,
    JobRetryParams, Store, StoreErrorKind,
};

/// A job of the cases' name whose key is `key`, held while unfinished.
fn unique_job(key: &str) -> NewJob {
    unique_job_held(key, HeldAfter::default())
}

fn unique_job_held(key: &str, held_after: HeldAfter) -> NewJob {
    job_with(|job| {
        job.args = json!({ "key": key });
        job.unique = Some(UniqueKey::new(
            format!("conformance:{key}"),
            None,
            held_after,
        ));
    })
}

fn held(succeeded: bool, failed: bool, cancelled: bool) -> HeldAfter {
    HeldAfter {
        succeeded,
        failed,
        cancelled,
    }
}

/// A second insert of a held key stores nothing and returns the holder as a
/// duplicate, without a history event on the holder; other keys and jobs
/// without a key are inserted. In one batch, a key's first job stands for
/// the later ones, and ids still come back in input order.
pub async fn insert_of_a_held_key_returns_the_holder<S: Store>(store: S) {
    let first = insert_detailed(&store, vec![unique_job("a")]).await;
    assert_eq!(first.len(), 1);
    assert!(!first[0].duplicate, "the first job of a key is stored");
    let holder = first[0].id;
    assert_eq!(
        get(&store, holder).await.job.unique_key.as_deref(),
        Some("conformance:a"),
        "the stored key is readable on the row"
    );

    let again = insert_detailed(&store, vec![unique_job("a")]).await;
    assert_eq!(again, vec![Inserted::duplicate_of(holder)]);
    assert_eq!(
        get(&store, holder).await.history.len(),
        1,
        "a duplicate adds nothing to the holder's history"
    );

    let plain = job_with(|job| job.args = json!({ "key": "a" }));
    let batch = vec![
        unique_job("b"),
        plain.clone(),
        unique_job("a"),
        unique_job("b"),
        plain,
        unique_job("c"),
    ];
    let inserted = insert_detailed(&store, batch).await;
    let duplicates: Vec<bool> = inserted.iter().map(|i| i.duplicate).collect();
    assert_eq!(
        duplicates,
        vec![false, false, true, true, false, false],
        "{inserted:?}"
    );
    assert_eq!(inserted[2].id, holder, "held by the earlier job");
    assert_eq!(
        inserted[3].id, inserted[0].id,
        "held by the batch's first `b`"
    );
    let new: Vec<JobId> = [0, 1, 4, 5].iter().map(|&i| inserted[i].id).collect();
    assert!(
        new.windows(2).all(|w| w[0] < w[1]),
        "new jobs' ids increase in input order: {inserted:?}"
    );
    for (i, expected) in [
        (0, json!({"key": "b"})),
        (1, json!({"key": "a"})),
        (5, json!({"key": "c"})),
    ] {
        assert_eq!(get(&store, inserted[i].id).await.job.args, expected);
    }
    assert_eq!(
        list(&store, None, None, None, 100).await.len(),
        5,
        "a, b, c and the two plain jobs"
    );
}

/// Many tasks inserting one key at once get exactly one job, all of them
/// its id, and exactly one of them told it was not a duplicate.
pub async fn concurrent_inserts_of_one_key_give_one_job<S: Store>(store: S) {
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .job_insert_many(crate::store::JobInsertManyParams::new(vec![unique_job(
                        "race",
                    )]))
                    .await
                    .expect("job_insert_many failed")[0]
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("an inserting task panicked"));
    }
    let stored: Vec<&Inserted> = results.iter().filter(|i| !i.duplicate).collect();
    assert_eq!(
        stored.len(),
        1,
        "exactly one insert stores the job: {results:?}"
    );
    assert!(
        results.iter().all(|i| i.id == stored[0].id),
        "every insert returns the one job's id: {results:?}"
    );
    assert_eq!(
        list(&*store, None, None, None, 100).await,
        vec![stored[0].id]
    );
}

/// Unfinished jobs hold their key; a finished one holds it only if its
/// `held_after` says so for the state it ended in; a deleted one never.
pub async fn finished_jobs_hold_the_key_as_declared<S: Store>(store: S) {
    let server = ServerId::new();
    let insert_unique = |key: &'static str, held_after: HeldAfter| {
        let store = &store;
        async move { insert_detailed(store, vec![unique_job_held(key, held_after)]).await[0] }
    };

    // Succeeded: held or not.
    for (key, hold) in [("succeeded-free", false), ("succeeded-held", true)] {
        let held_after = held(hold, false, false);
        let id = insert_unique(key, held_after).await.id;
        let running = claim_only(&store, server, id).await;
        assert_eq!(
            insert_unique(key, held_after).await,
            Inserted::duplicate_of(id),
            "a running job holds its key"
        );
        assert!(complete(&store, server, running.claim(), JobOutcome::Succeeded).await);
        let after = insert_unique(key, held_after).await;
        assert_eq!(
            after.duplicate, hold,
            "after success, held = {hold}: {after:?}"
        );
        if !hold {
            assert_ne!(after.id, id);
            // Out of the way of the next key's claim.
            store
                .job_delete(JobDeleteParams::new(after.id))
                .await
                .unwrap();
        }
    }

    // Failed for good: held or not.
    for (key, hold) in [("failed-free", false), ("failed-held", true)] {
        let held_after = held(false, hold, false);
        let id = insert_unique(key, held_after).await.id;
        let running = claim_only(&store, server, id).await;
        let failed = JobOutcome::Failed {
            error: "boom".to_owned(),
        };
        assert!(complete(&store, server, running.claim(), failed).await);
        assert_eq!(get(&store, id).await.job.state, JobState::Failed);
        let after = insert_unique(key, held_after).await;
        assert_eq!(
            after.duplicate, hold,
            "after failure, held = {hold}: {after:?}"
        );
        if !hold {
            store
                .job_delete(JobDeleteParams::new(after.id))
                .await
                .unwrap();
        }
    }

    // A retry after a failed attempt is `scheduled`: still held.
    let id = insert_unique("retrying", HeldAfter::default()).await.id;
    let running = claim_only(&store, server, id).await;
    let retry = JobOutcome::Retry {
        error: "again".to_owned(),
        after: LONG_LEASE,
    };
    assert!(complete(&store, server, running.claim(), retry).await);
    assert_eq!(
        insert_unique("retrying", HeldAfter::default()).await,
        Inserted::duplicate_of(id),
        "a job waiting for its next attempt holds its key"
    );

    // Cancelled: held or not.
    for (key, hold) in [("cancelled-free", false), ("cancelled-held", true)] {
        let held_after = held(false, false, hold);
        let id = insert_unique(key, held_after).await.id;
        store.job_cancel(JobCancelParams::new(id)).await.unwrap();
        let after = insert_unique(key, held_after).await;
        assert_eq!(
            after.duplicate, hold,
            "after a cancel, held = {hold}: {after:?}"
        );
    }

    // Deleted: never held, whatever is declared.
    let all = held(true, true, true);
    let id = insert_unique("deleted", all).await.id;
    store.job_delete(JobDeleteParams::new(id)).await.unwrap();
    let after = insert_unique("deleted", all).await;
    assert!(!after.duplicate, "a deleted job frees its key: {after:?}");
}

/// A key with a period holds within the period the job's run time falls
/// in (periods counted from the epoch), not the time of the insert: two
/// jobs delayed into the same hour are duplicates, one in the next hour is
/// not. The stored key names the period.
pub async fn a_period_is_judged_on_run_time<S: Store>(store: S) {
    let hourly = Unique::per_period(Duration::from_secs(3600));
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    let job_at = |when: &str| {
        let run_at = at(when);
        job_with(move |job| {
            job.args = json!({ "report": 1 });
            job.unique = Some(hourly.key_of("report", &job.args).unwrap());
            job.run_at = RunAt::At(run_at);
        })
    };
    let first = insert_one(&store, job_at("2100-01-01T10:30:00Z")).await;
    let same_hour = insert_detailed(&store, vec![job_at("2100-01-01T10:59:59Z")]).await[0];
    assert_eq!(same_hour, Inserted::duplicate_of(first));
    let next_hour = insert_detailed(&store, vec![job_at("2100-01-01T11:00:00Z")]).await[0];
    assert!(!next_hour.duplicate, "the next hour is another period");
    let expected = hourly
        .key_of("report", &json!({ "report": 1 }))
        .unwrap()
        .stored_for(at("2100-01-01T10:30:00Z"));
    assert_eq!(get(&store, first).await.job.unique_key, Some(expected));

    // A delay is run time too: "in an hour" and "now" are different periods
    // unless the hour boundary is not crossed, so compare two delays of the
    // same far period instead.
    let delayed = |days: u64| {
        job_with(move |job| {
            job.args = json!({ "report": 2 });
            job.unique = Some(
                Unique::per_period(Duration::from_secs(100 * 365 * 24 * 3600))
                    .key_of("report", &job.args)
                    .unwrap(),
            );
            job.run_at = RunAt::After(Duration::from_secs(days * 24 * 3600));
        })
    };
    let a = insert_one(&store, delayed(1)).await;
    let b = insert_detailed(&store, vec![delayed(2)]).await[0];
    assert_eq!(
        b,
        Inserted::duplicate_of(a),
        "both delays fall in one century"
    );
}

/// A retry of a job whose unique key another job holds is refused with a
/// `Conflict` naming the holder, and the job is left as it was; a bulk retry
/// leaves such jobs (reported as `held`) and retries only one job per key.
/// Once the holder has finished, the retry goes through.
pub async fn a_retry_never_makes_two_holders<S: Store>(store: S) {
    let server = ServerId::new();
    let fail = |id: JobId| {
        let store = &store;
        async move {
            let running = claim_only(store, server, id).await;
            let failed = JobOutcome::Failed {
                error: "boom".to_owned(),
            };
            assert!(complete(store, server, running.claim(), failed).await);
        }
    };
    let old = insert_one(&store, unique_job("k")).await;
    fail(old).await;
    let newer = insert_one(&store, unique_job("k")).await;
    assert_ne!(
        old, newer,
        "a failed job frees its key (held while unfinished)"
    );

    let refused = store.job_retry(JobRetryParams::new(old)).await.unwrap_err();
    assert_eq!(refused.kind(), StoreErrorKind::Conflict, "{refused}");
    assert!(
        refused.to_string().contains(&newer.to_string()),
        "the error names the holder: {refused}"
    );
    assert_eq!(get(&store, old).await.job.state, JobState::Failed);

    let filter = JobFilter::new().state(JobState::Failed);
    let outcome = store
        .job_act_matching(JobActMatchingParams::new(JobAction::Retry, filter.clone()))
        .await
        .unwrap();
    assert!(outcome.changed.is_empty(), "{outcome:?}");
    assert_eq!(outcome.held, vec![old]);
    assert_eq!(get(&store, old).await.job.state, JobState::Failed);

    // The holder fails too: now two failed jobs share the key, and a bulk
    // retry retries the newer alone.
    fail(newer).await;
    let outcome = store
        .job_act_matching(JobActMatchingParams::new(JobAction::Retry, filter))
        .await
        .unwrap();
    assert_eq!(outcome.changed, vec![newer], "{outcome:?}");
    assert_eq!(outcome.held, vec![old], "{outcome:?}");
    assert_eq!(get(&store, newer).await.job.state, JobState::Enqueued);
    assert_eq!(get(&store, old).await.job.state, JobState::Failed);

    // Once the key is free again, the old job can be retried.
    let running = claim_only(&store, server, newer).await;
    assert!(complete(&store, server, running.claim(), JobOutcome::Succeeded).await);
    store.job_retry(JobRetryParams::new(old)).await.unwrap();
    assert_eq!(get(&store, old).await.job.state, JobState::Enqueued);
}
