//! Recurring entries: `cron_upsert`, `cron_due`, `cron_pause`, `cron_remove`,
//! `cron_trigger` and `cron_list`.

use std::time::Duration;

use serde_json::json;

use super::{
    all_jobs, assert_about, assert_kind, assert_same_def, claim, claim_only, complete, cron_def,
    cron_due, cron_due_ids, cron_entry, cron_fire, cron_list, cron_now, cron_run, cron_set_next,
    cron_trigger, cron_upsert, insert_one, new_job, row, CRON_ID, HOURLY,
};
use crate::model::{JobState, ServerId};
use crate::recurring::{Misfire, Overlap};
use crate::store::{
    CronFireOutcome, CronPauseParams, CronRemoveParams, CronTriggerParams, JobOutcome, Store,
    StoreErrorKind,
};

/// `cron_upsert` creates an entry with its whole definition (policies, and
/// the job's timeout and backoff, included), not paused, with `next_run_at`
/// unset and no run yet; a new entry is due at once so that the next
/// scheduler pass computes its first tick.
pub async fn cron_upsert_creates_an_entry_due_at_once<S: Store>(store: S) {
    let mut def = cron_def(CRON_ID, "*/10 * * * * *");
    def.misfire = Misfire::RunAll { limit: 7 };
    def.overlap = Overlap::Skip;
    def.job.queue = "reports".to_owned();
    def.time_zone = "Europe/Berlin".to_owned();
    def.job.timeout = Some(Duration::from_secs(90));
    def.job.backoff = Some(crate::Backoff::fixed(Duration::from_millis(1500)));
    cron_upsert(&store, def.clone()).await;

    let rows = cron_list(&store).await;
    assert_eq!(rows.len(), 1, "one entry after one upsert");
    let row = &rows[0];
    assert_same_def(&row.def, &def);
    assert_eq!(
        row.def
            .cron()
            .expect("the stored schedule parses")
            .time_zone(),
        &crate::Tz::named("Europe/Berlin").unwrap()
    );
    assert!(!row.paused, "a new entry is not paused");
    assert_eq!(row.next_run_at, None, "a new entry has no next_run_at yet");
    assert_eq!(row.last_run_at, None);
    assert_eq!(row.last_job_id, None);
    assert_eq!(row.last_job_state, None);
    assert_eq!(row.last_error, None);
    assert_eq!(row.last_skipped, None);

    let due = cron_due(&store, 10).await;
    assert_eq!(due.due.len(), 1, "a new entry is due at once");
    assert_same_def(&due.due[0].def, &def);
    assert_eq!(due.due[0].next_run_at, None);
    assert!(
        all_jobs(&store).await.is_empty(),
        "an upsert inserts no job"
    );
}

/// `cron_due` returns the entries that are not paused and whose
/// `next_run_at` is unset or at or before the store's clock, at most `limit`
/// of them, with the store's clock (between the creation times of jobs
/// inserted just before and just after).
pub async fn cron_due_returns_unset_and_past_entries_with_the_store_clock<S: Store>(store: S) {
    for id in ["past", "unset", "future", "paused", "paused-unset"] {
        cron_upsert(&store, cron_def(id, HOURLY)).await;
    }
    let now = cron_now(&store).await;
    let hour = chrono::Duration::hours(1);
    cron_set_next(&store, "past", None, now - hour).await;
    cron_set_next(&store, "future", None, now + hour).await;
    cron_set_next(&store, "paused", None, now - hour).await;
    for id in ["paused", "paused-unset"] {
        store
            .cron_pause(CronPauseParams::pause(id.to_owned()))
            .await
            .expect("pausing");
    }
    assert_eq!(
        cron_due_ids(&store).await,
        ["past", "unset"],
        "due: not paused, next_run_at unset or passed"
    );
    let due = cron_due(&store, 10).await;
    let past = due.due.iter().find(|row| row.def.id == "past").unwrap();
    assert_eq!(past.next_run_at, Some(now - hour));
    assert!(!past.paused);
    assert_eq!(
        cron_due(&store, 1).await.due.len(),
        1,
        "cron_due returns at most `limit` entries"
    );

    let before = row(&store, insert_one(&store, new_job()).await)
        .await
        .created_at;
    let due = cron_due(&store, 10).await;
    let after = row(&store, insert_one(&store, new_job()).await)
        .await
        .created_at;
    assert!(
        before <= due.now && due.now <= after,
        "cron_due's now must be the store's clock: {} is not between {before} and {after}",
        due.now
    );
}

/// Calling `cron_upsert` again with an unchanged definition changes
/// nothing: `next_run_at` and the last run are kept (applications call
/// `add_or_update` at every start).
pub async fn cron_upsert_of_an_unchanged_def_keeps_next_run_at<S: Store>(store: S) {
    let def = cron_def(CRON_ID, HOURLY);
    cron_upsert(&store, def.clone()).await;
    let now = cron_now(&store).await;
    let tick = |n: i64| now + chrono::Duration::hours(n);
    cron_set_next(&store, CRON_ID, None, tick(1)).await;
    let fired = cron_fire(
        &store,
        CRON_ID,
        Some(tick(1)),
        tick(2),
        vec![cron_run(&def, tick(1))],
        false,
    )
    .await;
    assert!(matches!(fired, CronFireOutcome::Fired(_)));
    let before = cron_entry(&store, CRON_ID).await;
    for _ in 0..3 {
        cron_upsert(&store, def.clone()).await;
    }
    let rows = cron_list(&store).await;
    assert_eq!(rows.len(), 1, "upserting one id keeps one entry");
    assert_eq!(rows[0], before, "an unchanged definition changes nothing");
    assert_eq!(rows[0].next_run_at, Some(tick(2)));
}

/// A changed schedule or time zone resets `next_run_at` to `None` (due at
/// once, so the next pass computes the new first tick) and is stored; the
/// last run and pausing are kept.
pub async fn cron_upsert_with_a_changed_schedule_or_time_zone_resets_next_run_at<S: Store>(
    store: S,
) {
    let def = cron_def(CRON_ID, HOURLY);
    cron_upsert(&store, def.clone()).await;
    let now = cron_now(&store).await;
    let tick = |n: i64| now + chrono::Duration::hours(n);
    cron_set_next(&store, CRON_ID, None, tick(1)).await;
    let CronFireOutcome::Fired(ids) = cron_fire(
        &store,
        CRON_ID,
        Some(tick(1)),
        tick(2),
        vec![cron_run(&def, tick(1))],
        false,
    )
    .await
    else {
        panic!("expected a fire")
    };

    let mut rescheduled = def.clone();
    rescheduled.schedule = "30 * * * *".to_owned();
    cron_upsert(&store, rescheduled.clone()).await;
    let entry = cron_entry(&store, CRON_ID).await;
    assert_same_def(&entry.def, &rescheduled);
    assert_eq!(
        entry.next_run_at, None,
        "a changed schedule resets next_run_at"
    );
    assert_eq!(entry.last_job_id, Some(ids[0]), "the last run is kept");
    assert_eq!(entry.last_run_at, Some(tick(1)));
    assert_eq!(cron_due_ids(&store).await, [CRON_ID], "due at once");

    cron_set_next(&store, CRON_ID, None, tick(3)).await;
    let mut moved = rescheduled.clone();
    moved.time_zone = "America/New_York".to_owned();
    cron_upsert(&store, moved.clone()).await;
    let entry = cron_entry(&store, CRON_ID).await;
    assert_same_def(&entry.def, &moved);
    assert_eq!(
        entry.next_run_at, None,
        "a changed time zone resets next_run_at"
    );

    cron_set_next(&store, CRON_ID, None, tick(4)).await;
    store
        .cron_pause(CronPauseParams::pause(CRON_ID.to_owned()))
        .await
        .expect("pausing");
    let mut again = moved.clone();
    again.schedule = "45 * * * *".to_owned();
    cron_upsert(&store, again).await;
    let entry = cron_entry(&store, CRON_ID).await;
    assert!(entry.paused, "an upsert keeps the entry paused");
    assert_eq!(entry.next_run_at, None);
    assert!(cron_due_ids(&store).await.is_empty(), "paused: not due");
}

/// A change of the job (arguments, queue, priority, attempts) or of the
/// policies keeps `next_run_at`, and is what the next pass reads: `cron_due`
/// returns the new definition, so the next fire runs the new arguments, and
/// so does `cron_trigger`.
pub async fn cron_upsert_with_changed_args_keeps_next_run_at_and_the_next_fire_uses_them<
    S: Store,
>(
    store: S,
) {
    let def = cron_def(CRON_ID, HOURLY);
    cron_upsert(&store, def.clone()).await;
    let now = cron_now(&store).await;
    let past = now - chrono::Duration::hours(1);
    cron_set_next(&store, CRON_ID, None, past).await;

    let mut changed = def.clone();
    changed.job.args = json!({ "recurring": CRON_ID, "n": 2, "new": true });
    changed.job.queue = "reports".to_owned();
    changed.job.priority = 7;
    changed.job.max_attempts = 9;
    changed.misfire = Misfire::Skip;
    changed.overlap = Overlap::Skip;
    cron_upsert(&store, changed.clone()).await;
    let entry = cron_entry(&store, CRON_ID).await;
    assert_same_def(&entry.def, &changed);
    assert_eq!(
        entry.next_run_at,
        Some(past),
        "changing only the job or the policies keeps next_run_at"
    );

    // The next pass reads the new definition and fires it.
    let due = cron_due(&store, 10).await;
    assert_eq!(due.due.len(), 1);
    let read = &due.due[0];
    assert_same_def(&read.def, &changed);
    let outcome = cron_fire(
        &store,
        CRON_ID,
        read.next_run_at,
        now + chrono::Duration::hours(1),
        vec![cron_run(&read.def, past)],
        false,
    )
    .await;
    let CronFireOutcome::Fired(ids) = outcome else {
        panic!("expected a fire, got {outcome:?}")
    };
    let run = row(&store, ids[0]).await;
    assert_eq!(
        run.args, changed.job.args,
        "the next fire runs the new args"
    );
    assert_eq!(run.queue, "reports");
    assert_eq!(run.priority, 7);
    assert_eq!(run.max_attempts, 9);

    let triggered = row(&store, cron_trigger(&store, CRON_ID).await).await;
    assert_eq!(
        triggered.args, changed.job.args,
        "a trigger runs the new args"
    );
    assert_eq!(triggered.queue, "reports");
    assert_eq!(triggered.priority, 7);
    assert_eq!(triggered.max_attempts, 9);
}

/// A paused entry is never due (with `next_run_at` passed or unset) and is
/// listed as paused; resuming resets `next_run_at` to `None` (ticks passed
/// while paused are not run) and makes it due again. Pausing or resuming an
/// unknown id is `NotFound`.
pub async fn cron_pause_and_resume<S: Store>(store: S) {
    let def = cron_def(CRON_ID, HOURLY);
    cron_upsert(&store, def).await;
    let now = cron_now(&store).await;
    let past = now - chrono::Duration::hours(1);
    cron_set_next(&store, CRON_ID, None, past).await;
    assert_eq!(cron_due_ids(&store).await, [CRON_ID]);
    let pause = |paused: bool| {
        store.cron_pause(if paused {
            CronPauseParams::pause(CRON_ID)
        } else {
            CronPauseParams::resume(CRON_ID)
        })
    };

    pause(true).await.expect("pausing");
    let entry = cron_entry(&store, CRON_ID).await;
    assert!(entry.paused, "listed as paused");
    assert!(
        cron_due_ids(&store).await.is_empty(),
        "a paused entry is not due, though its next_run_at has passed"
    );
    pause(true).await.expect("pausing twice");
    assert!(cron_entry(&store, CRON_ID).await.paused);

    pause(false).await.expect("resuming");
    let entry = cron_entry(&store, CRON_ID).await;
    assert!(!entry.paused);
    assert_eq!(
        entry.next_run_at, None,
        "resuming resets next_run_at: ticks passed while paused are not run"
    );
    assert_eq!(cron_due_ids(&store).await, [CRON_ID], "due again");

    for paused in [true, false] {
        assert_kind(
            store
                .cron_pause(if paused {
                    CronPauseParams::pause("no-such-recurring-job")
                } else {
                    CronPauseParams::resume("no-such-recurring-job")
                })
                .await,
            StoreErrorKind::NotFound,
            "pausing or resuming an unknown recurring job",
        );
    }
    assert_eq!(cron_list(&store).await.len(), 1, "no entry created");
}

/// `cron_remove` removes the entry and says it existed; removing it again
/// says it did not. A removed entry is not listed, not due, cannot fire or be
/// triggered; its past runs stay.
pub async fn cron_remove_removes_once<S: Store>(store: S) {
    let def = cron_def(CRON_ID, HOURLY);
    cron_upsert(&store, def.clone()).await;
    cron_upsert(&store, cron_def("kept", HOURLY)).await;
    let now = cron_now(&store).await;
    cron_set_next(&store, CRON_ID, None, now).await;
    let CronFireOutcome::Fired(ids) = cron_fire(
        &store,
        CRON_ID,
        Some(now),
        now + chrono::Duration::hours(1),
        vec![cron_run(&def, now)],
        false,
    )
    .await
    else {
        panic!("expected a fire")
    };

    let remove = |id: &str| store.cron_remove(CronRemoveParams::new(id.to_owned()));
    assert!(remove(CRON_ID).await.expect("removing"), "it existed");
    assert!(
        !remove(CRON_ID).await.expect("removing again"),
        "it is gone"
    );
    assert!(!remove("never-existed")
        .await
        .expect("removing an unknown id"));
    let listed: Vec<String> = cron_list(&store)
        .await
        .into_iter()
        .map(|r| r.def.id)
        .collect();
    assert_eq!(listed, ["kept"], "a removed entry is not listed");
    assert_eq!(cron_due_ids(&store).await, ["kept"], "nor due");
    assert_eq!(
        cron_fire(
            &store,
            CRON_ID,
            Some(now + chrono::Duration::hours(1)),
            now + chrono::Duration::hours(2),
            vec![cron_run(&def, now)],
            false
        )
        .await,
        CronFireOutcome::Lost,
        "a removed entry cannot fire"
    );
    assert_kind(
        store
            .cron_trigger(CronTriggerParams::new(CRON_ID.to_owned()))
            .await,
        StoreErrorKind::NotFound,
        "triggering a removed recurring job",
    );
    assert_eq!(all_jobs(&store).await, ids, "its past runs stay");
}

/// `cron_trigger` enqueues a run now, off schedule: runnable at once, with
/// the definition's job (its timeout and backoff included) and a recurring
/// origin whose tick is the store's clock; it does not move `next_run_at`,
/// and the list shows it as the latest run. An unknown id is `NotFound`.
pub async fn cron_trigger_runs_now_without_moving_the_schedule<S: Store>(store: S) {
    let mut def = cron_def(CRON_ID, HOURLY);
    def.job.timeout = Some(Duration::from_secs(45));
    def.job.backoff = Some(crate::Backoff::fixed(Duration::from_secs(3)));
    cron_upsert(&store, def.clone()).await;
    let now = cron_now(&store).await;
    let next = now + chrono::Duration::hours(1);
    cron_set_next(&store, CRON_ID, None, next).await;

    let id = cron_trigger(&store, CRON_ID).await;
    let job = row(&store, id).await;
    assert_eq!(job.state, JobState::Enqueued, "a triggered run is runnable");
    assert_eq!(job.name, def.job.name);
    assert_eq!(job.args, def.job.args);
    assert_eq!(
        job.timeout, def.job.timeout,
        "the run keeps the job's timeout"
    );
    assert_eq!(
        job.backoff, def.job.backoff,
        "the run keeps the job's backoff"
    );
    let origin = job
        .recurring
        .clone()
        .expect("a triggered run has an origin");
    assert_eq!(origin.id, CRON_ID);
    assert_about(
        origin.scheduled_for - job.created_at,
        Duration::ZERO,
        "a triggered run's tick is the store's clock",
    );
    let entry = cron_entry(&store, CRON_ID).await;
    assert_eq!(entry.next_run_at, Some(next), "a trigger keeps next_run_at");
    assert_eq!(
        entry.last_job_id,
        Some(id),
        "the latest run is the triggered one"
    );
    assert_eq!(entry.last_job_state, Some(JobState::Enqueued));
    assert!(cron_due_ids(&store).await.is_empty(), "and it is not due");
    claim_only(&store, ServerId::new(), id).await;

    let second = cron_trigger(&store, CRON_ID).await;
    assert!(second > id, "each trigger enqueues a run");
    assert_kind(
        store
            .cron_trigger(CronTriggerParams::new("no-such-recurring-job".to_owned()))
            .await,
        StoreErrorKind::NotFound,
        "triggering an unknown recurring job",
    );
}

/// `cron_list` returns every entry ordered by id, each with its latest run:
/// its tick, its job, that job's current state, and its latest error once
/// it failed. An entry never run has none of these.
pub async fn cron_list_reports_the_last_run_ordered_by_id<S: Store>(store: S) {
    let (failing, passing, idle) = ("b-failing", "a-passing", "c-idle");
    for id in [idle, failing, passing] {
        cron_upsert(&store, cron_def(id, HOURLY)).await;
    }
    let ids: Vec<String> = cron_list(&store)
        .await
        .into_iter()
        .map(|r| r.def.id)
        .collect();
    assert_eq!(ids, [passing, failing, idle], "listed by id");

    let now = cron_now(&store).await;
    let mut runs = Vec::new();
    for id in [failing, passing] {
        cron_set_next(&store, id, None, now).await;
        let outcome = cron_fire(
            &store,
            id,
            Some(now),
            now + chrono::Duration::hours(1),
            vec![cron_run(&cron_def(id, HOURLY), now)],
            false,
        )
        .await;
        let CronFireOutcome::Fired(ids) = outcome else {
            panic!("expected a fire, got {outcome:?}")
        };
        runs.push(ids[0]);
    }
    let (failing_run, passing_run) = (runs[0], runs[1]);
    let server = ServerId::new();
    for claimed in claim(&store, server, 10).await {
        let outcome = if claimed.id == failing_run {
            JobOutcome::Failed {
                error: "the report server is down".to_owned(),
            }
        } else {
            JobOutcome::Succeeded
        };
        assert!(complete(&store, server, claimed.claim(), outcome).await);
    }

    let rows = cron_list(&store).await;
    let ids: Vec<&str> = rows.iter().map(|r| r.def.id.as_str()).collect();
    assert_eq!(ids, [passing, failing, idle], "still listed by id");
    let (passed, failed, never) = (&rows[0], &rows[1], &rows[2]);

    assert_eq!(failed.last_run_at, Some(now));
    assert_eq!(failed.last_job_id, Some(failing_run));
    assert_eq!(failed.last_job_state, Some(JobState::Failed));
    assert_eq!(
        failed.last_error.as_deref(),
        Some("the report server is down"),
        "the latest run's error"
    );
    assert_eq!(failed.next_run_at, Some(now + chrono::Duration::hours(1)));

    assert_eq!(passed.last_run_at, Some(now));
    assert_eq!(passed.last_job_id, Some(passing_run));
    assert_eq!(passed.last_job_state, Some(JobState::Succeeded));
    assert_eq!(passed.last_error, None);

    assert_eq!(never.last_run_at, None);
    assert_eq!(never.last_job_id, None);
    assert_eq!(never.last_job_state, None);
    assert_eq!(never.last_error, None);
    assert_eq!(never.next_run_at, None);
}
