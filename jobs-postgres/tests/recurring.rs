//! Recurring jobs on PostgreSQL: upsert, due, compare-and-set fire, skip
//! while running, pause, trigger, remove.

mod common;

use jobs_core::{
    Cron, CronDueParams, CronFireOutcome, CronFireParams, CronListParams, CronPauseParams,
    CronRemoveParams, CronTriggerParams, CronUpsertParams, JobState, NewJob, Overlap, RecurringDef,
    RecurringOptions, RecurringOrigin, Store, StoreErrorKind,
};
use serde_json::json;

fn def(id: &str) -> RecurringDef {
    let mut job = NewJob::new("invalidate_invoices", json!({}));
    job.queue = "maintenance".into();
    RecurringDef::new(
        id.to_owned(),
        &Cron::parse("0 3 * * *").unwrap(),
        job,
        RecurringOptions::new().overlap(Overlap::Skip),
    )
}

fn run_of(id: &str, tick: jobs_core::Timestamp) -> NewJob {
    let mut job = NewJob::new("invalidate_invoices", json!({}));
    job.recurring = Some(
        serde_json::from_value::<RecurringOrigin>(json!({ "id": id, "scheduled_for": tick }))
            .unwrap(),
    );
    job
}

#[tokio::test]
async fn fires_once_per_tick_and_skips_while_running() {
    let (store, _guard) = common::store().await;
    store
        .cron_upsert(CronUpsertParams::new(def("nightly")))
        .await
        .unwrap();
    let due = store
        .cron_due(CronDueParams::new().limit(10))
        .await
        .unwrap();
    assert_eq!(due.due.len(), 1);
    assert_eq!(due.due[0].def, def("nightly"));
    assert_eq!(due.due[0].next_run_at, None);

    let tick = due.now + chrono::Duration::hours(1);
    // First pass: set next_run_at, insert nothing.
    let first = store
        .cron_fire(CronFireParams::new("nightly", None, tick).skip_if_running(true))
        .await
        .unwrap();
    assert_eq!(first, CronFireOutcome::Fired(vec![]));
    // A racing server with the same expectation loses.
    let lost = store
        .cron_fire(CronFireParams::new("nightly", None, tick).skip_if_running(true))
        .await
        .unwrap();
    assert_eq!(lost, CronFireOutcome::Lost);
    assert!(store
        .cron_due(CronDueParams::new().limit(10))
        .await
        .unwrap()
        .due
        .is_empty());

    let next = tick + chrono::Duration::days(1);
    let fired = store
        .cron_fire(
            CronFireParams::new("nightly", Some(tick), next)
                .jobs(vec![run_of("nightly", tick)])
                .skip_if_running(true),
        )
        .await
        .unwrap();
    let CronFireOutcome::Fired(ids) = fired else {
        panic!("{fired:?}")
    };
    assert_eq!(ids.len(), 1);
    // The run is unfinished: the next tick is skipped.
    let skipped = store
        .cron_fire(
            CronFireParams::new("nightly", Some(next), next + chrono::Duration::days(1))
                .jobs(vec![run_of("nightly", next)])
                .skip_if_running(true),
        )
        .await
        .unwrap();
    assert_eq!(skipped, CronFireOutcome::SkippedRunning);
    let list = store.cron_list(CronListParams::new()).await.unwrap();
    assert_eq!(list[0].last_job_id, Some(ids[0]));
    assert_eq!(list[0].last_run_at, Some(tick));
    assert_eq!(list[0].last_job_state, Some(JobState::Enqueued));
    assert!(list[0].last_skipped.is_some());

    // Pause, resume (forgets next_run_at), trigger, remove.
    store
        .cron_pause(CronPauseParams::pause("nightly"))
        .await
        .unwrap();
    store
        .cron_pause(CronPauseParams::resume("nightly"))
        .await
        .unwrap();
    let list = store.cron_list(CronListParams::new()).await.unwrap();
    assert_eq!(list[0].next_run_at, None);
    let triggered = store
        .cron_trigger(CronTriggerParams::new("nightly"))
        .await
        .unwrap();
    let list = store.cron_list(CronListParams::new()).await.unwrap();
    assert_eq!(list[0].last_job_id, Some(triggered));
    assert!(store
        .cron_remove(CronRemoveParams::new("nightly"))
        .await
        .unwrap());
    assert!(!store
        .cron_remove(CronRemoveParams::new("nightly"))
        .await
        .unwrap());
    let err = store
        .cron_trigger(CronTriggerParams::new("nightly"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::NotFound);
    let err = store
        .cron_pause(CronPauseParams::pause("nightly"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::NotFound);
}
