//! `cron_fire`: the runs of a tick, exactly once, fenced by `next_run_at` and
//! the revision, and skipped while an earlier run is unfinished.

use std::sync::Arc;

use super::{
    all_jobs, claim, complete, cron_def, cron_entry, cron_fire, cron_list, cron_now, cron_run,
    cron_set_next, cron_upsert, insert, new_job, row, CRON_ID, HOUR, HOURLY,
};
use crate::model::{JobId, JobState, NewJob, RecurringOrigin, ServerId, Timestamp};
use crate::store::{
    CronFireOutcome, CronFireParams, CronPauseParams, JobCancelParams, JobOutcome, Store,
};

/// A fire with the right expected `next_run_at` inserts its runs, in order,
/// with their recurring origin (id and tick, as `JobRow::recurring`) and the
/// definition's job fields; moves `next_run_at`; and records the latest tick
/// and job. A fire without runs (a new entry, or skipped misfires) moves
/// `next_run_at` only.
pub async fn cron_fire_inserts_runs_with_their_origin_and_moves_next_run_at<S: Store>(store: S) {
    let def = cron_def(CRON_ID, HOURLY);
    cron_upsert(&store, def.clone()).await;
    let now = cron_now(&store).await;
    let tick = |n: i64| now + chrono::Duration::hours(n);

    cron_set_next(&store, CRON_ID, None, tick(1)).await;
    let entry = cron_entry(&store, CRON_ID).await;
    assert_eq!(entry.next_run_at, Some(tick(1)));
    assert_eq!(entry.last_run_at, None, "a fire without runs is no run");
    assert_eq!(entry.last_job_id, None);
    assert!(all_jobs(&store).await.is_empty());

    let outcome = cron_fire(
        &store,
        CRON_ID,
        Some(tick(1)),
        tick(2),
        vec![cron_run(&def, tick(1))],
        false,
    )
    .await;
    let CronFireOutcome::Fired(ids) = outcome else {
        panic!("a fire with the right expected value fires, got {outcome:?}")
    };
    assert_eq!(ids.len(), 1, "one run inserted");
    let first = ids[0];
    let job = row(&store, first).await;
    assert_eq!(
        job.recurring,
        Some(RecurringOrigin {
            id: CRON_ID.to_owned(),
            scheduled_for: tick(1),
        }),
        "the run carries its recurring id and tick"
    );
    assert_eq!(job.name, def.job.name);
    assert_eq!(job.args, def.job.args);
    assert_eq!(job.queue, def.job.queue);
    assert_eq!(job.priority, def.job.priority);
    assert_eq!(job.max_attempts, def.job.max_attempts);
    assert_eq!(job.state, JobState::Enqueued, "a run is runnable at once");
    let entry = cron_entry(&store, CRON_ID).await;
    assert_eq!(entry.next_run_at, Some(tick(2)), "next_run_at moved on");
    assert_eq!(entry.last_run_at, Some(tick(1)));
    assert_eq!(entry.last_job_id, Some(first));
    assert_eq!(entry.last_job_state, Some(JobState::Enqueued));

    // Catching up (`Misfire::RunAll`): several runs in one fire.
    let runs = (2..5).map(|n| cron_run(&def, tick(n))).collect();
    let outcome = cron_fire(&store, CRON_ID, Some(tick(2)), tick(5), runs, false).await;
    let CronFireOutcome::Fired(ids) = outcome else {
        panic!("expected a fire, got {outcome:?}")
    };
    assert_eq!(ids.len(), 3, "every run of the fire inserted");
    assert!(ids.windows(2).all(|w| w[0] < w[1]) && ids[0] > first);
    for (n, id) in (2..5).zip(&ids) {
        assert_eq!(
            row(&store, *id).await.recurring.map(|o| o.scheduled_for),
            Some(tick(n)),
            "runs are inserted in order with their ticks"
        );
    }
    let entry = cron_entry(&store, CRON_ID).await;
    assert_eq!(entry.next_run_at, Some(tick(5)));
    assert_eq!(entry.last_run_at, Some(tick(4)), "the latest tick");
    assert_eq!(entry.last_job_id, Some(ids[2]), "the latest run");

    let mut claimed: Vec<JobId> = claim(&store, ServerId::new(), 10)
        .await
        .into_iter()
        .map(|r| r.id)
        .collect();
    claimed.sort();
    assert_eq!(
        claimed,
        [first, ids[0], ids[1], ids[2]],
        "runs are claimable"
    );
}

/// A fire whose expected `next_run_at` is stale (another server fired the
/// tick, or the entry changed) is `Lost` and changes nothing: no job, the
/// same `next_run_at` and last run. A fire of an unknown id is `Lost` too.
pub async fn cron_fire_with_a_stale_expected_value_is_lost_and_changes_nothing<S: Store>(store: S) {
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
    assert!(matches!(fired, CronFireOutcome::Fired(ref ids) if ids.len() == 1));
    let before = cron_entry(&store, CRON_ID).await;
    let jobs_before = all_jobs(&store).await;

    for stale in [None, Some(tick(1)), Some(tick(3)), Some(now)] {
        let outcome = cron_fire(
            &store,
            CRON_ID,
            stale,
            tick(9),
            vec![cron_run(&def, tick(2))],
            false,
        )
        .await;
        assert_eq!(
            outcome,
            CronFireOutcome::Lost,
            "a fire expecting next_run_at {stale:?} (it is {:?}) must be lost",
            before.next_run_at
        );
    }
    let outcome = cron_fire(
        &store,
        "no-such-recurring-job",
        None,
        tick(9),
        vec![],
        false,
    )
    .await;
    assert_eq!(outcome, CronFireOutcome::Lost, "firing an unknown id");

    assert_eq!(cron_entry(&store, CRON_ID).await, before, "nothing changed");
    assert_eq!(all_jobs(&store).await, jobs_before, "no job inserted");
    assert_eq!(cron_list(&store).await.len(), 1, "no entry created");
}

/// Exactly once per tick: many servers racing to fire the same tick (each
/// with the same plan) make exactly one `Fired` with one run; the others are
/// `Lost`. Holds for the first fire of a new entry and for later ticks.
pub async fn cron_fire_races_fire_each_tick_once<S: Store>(store: S) {
    const RACERS: usize = 8;
    const TICKS: i64 = 4;
    let def = cron_def(CRON_ID, HOURLY);
    cron_upsert(&store, def.clone()).await;
    let now = cron_now(&store).await;
    let tick = move |n: i64| now + chrono::Duration::hours(n);
    let store = Arc::new(store);

    let mut expected = None;
    for n in 0..=TICKS {
        let start = Arc::new(tokio::sync::Barrier::new(RACERS));
        let runs: Vec<NewJob> = expected.map_or_else(Vec::new, |t| vec![cron_run(&def, t)]);
        let tasks: Vec<_> = (0..RACERS)
            .map(|_| {
                let store = Arc::clone(&store);
                let start = Arc::clone(&start);
                let runs = runs.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    cron_fire(&*store, CRON_ID, expected, tick(n + 1), runs, false).await
                })
            })
            .collect();
        let mut fired = Vec::new();
        for task in tasks {
            match task.await.expect("a firing task panicked") {
                CronFireOutcome::Fired(ids) => fired.push(ids),
                CronFireOutcome::Lost => {}
                other => panic!("unexpected outcome {other:?}"),
            }
        }
        assert_eq!(
            fired.len(),
            1,
            "tick {n}: exactly one of {RACERS} racing fires must win, got {fired:?}"
        );
        assert_eq!(fired[0].len(), runs.len(), "the winner inserts the runs");
        expected = Some(tick(n + 1));
        assert_eq!(cron_entry(&*store, CRON_ID).await.next_run_at, expected);
    }

    let jobs = all_jobs(&*store).await;
    assert_eq!(jobs.len(), TICKS as usize, "one run per tick, no duplicate");
    let mut ticks = Vec::new();
    for id in jobs {
        ticks.push(row(&*store, id).await.recurring.unwrap().scheduled_for);
    }
    assert_eq!(ticks, (1..=TICKS).map(tick).collect::<Vec<_>>());
}

/// With `skip_if_running`, a fire while an earlier run of the same recurring
/// job is enqueued, processing or scheduled (waiting for a retry) is
/// `SkippedRunning`: no job, `next_run_at` moved on, the skip recorded in
/// `last_skipped`. Unfinished jobs of other recurring ids or none do not
/// count; once the run has finished the next tick fires; without
/// `skip_if_running` the tick fires whatever runs.
pub async fn cron_fire_skips_while_an_earlier_run_is_unfinished<S: Store>(store: S) {
    let def = cron_def(CRON_ID, HOURLY);
    let other = cron_def("other-recurring", HOURLY);
    cron_upsert(&store, def.clone()).await;
    let now = cron_now(&store).await;
    let tick = |n: i64| now + chrono::Duration::hours(n);
    let fire = |n: i64, skip: bool| {
        let store = &store;
        let def = &def;
        async move {
            cron_fire(
                store,
                CRON_ID,
                Some(tick(n)),
                tick(n + 1),
                vec![cron_run(def, tick(n))],
                skip,
            )
            .await
        }
    };
    // Unfinished jobs that are not runs of this recurring job.
    insert(&store, vec![new_job(), cron_run(&other, tick(0))]).await;
    cron_set_next(&store, CRON_ID, None, tick(1)).await;
    let CronFireOutcome::Fired(ids) = fire(1, true).await else {
        panic!("nothing of this recurring job runs: the tick must fire")
    };
    let first = ids[0];
    assert_eq!(cron_entry(&store, CRON_ID).await.last_skipped, None);
    let jobs_before = all_jobs(&store).await;

    // Enqueued.
    assert_eq!(fire(2, true).await, CronFireOutcome::SkippedRunning);
    let entry = cron_entry(&store, CRON_ID).await;
    assert_eq!(entry.next_run_at, Some(tick(3)), "a skip moves next_run_at");
    assert_eq!(entry.last_job_id, Some(first), "a skip is no run");
    assert_eq!(entry.last_run_at, Some(tick(1)));
    let (_, why) = entry
        .last_skipped
        .clone()
        .expect("the skip must be recorded in last_skipped");
    assert!(!why.trim().is_empty(), "the skip says why");
    assert_eq!(
        all_jobs(&store).await,
        jobs_before,
        "a skip inserts nothing"
    );

    // Processing.
    let server = ServerId::new();
    let claimed = claim(&store, server, 10).await;
    let run = claimed
        .iter()
        .find(|r| r.id == first)
        .expect("the run is claimable")
        .clone();
    for other in claimed.iter().filter(|r| r.id != first) {
        assert!(complete(&store, server, other.claim(), JobOutcome::Succeeded).await);
    }
    assert_eq!(fire(3, true).await, CronFireOutcome::SkippedRunning);

    // Scheduled for a retry.
    let retry = JobOutcome::Retry {
        error: "boom".to_owned(),
        after: HOUR,
    };
    assert!(complete(&store, server, run.claim(), retry).await);
    assert_eq!(row(&store, first).await.state, JobState::Scheduled);
    assert_eq!(fire(4, true).await, CronFireOutcome::SkippedRunning);
    assert_eq!(all_jobs(&store).await, jobs_before, "skips insert nothing");

    // Without skip_if_running the tick fires anyway.
    let CronFireOutcome::Fired(ids) = fire(5, false).await else {
        panic!("without skip_if_running a tick fires while a run is unfinished")
    };
    assert_eq!(ids.len(), 1);
    store
        .job_cancel(JobCancelParams::new(ids[0]).reason("done"))
        .await
        .expect("cancelling the extra run");

    // Finished: the next tick fires.
    store
        .job_cancel(JobCancelParams::new(first).reason("done"))
        .await
        .expect("cancelling the first run");
    let outcome = fire(6, true).await;
    assert!(
        matches!(outcome, CronFireOutcome::Fired(ref ids) if ids.len() == 1),
        "every run finished: the tick must fire, got {outcome:?}"
    );
    assert_eq!(cron_entry(&store, CRON_ID).await.next_run_at, Some(tick(7)));
}

/// A fire planned before a pause, a resume or an edit of the entry is lost:
/// the revision it names is stale. A paused entry never fires, and an edit
/// that keeps `next_run_at` still makes an older plan lose (so a schedule
/// changed while `next_run_at` is unset cannot be overwritten by a plan made
/// from the old schedule).
pub async fn cron_fire_is_lost_after_a_pause_or_an_edit<S: Store>(store: S) {
    let def = cron_def(CRON_ID, HOURLY);
    cron_upsert(&store, def.clone()).await;
    let now = cron_now(&store).await;
    let next = now + chrono::Duration::hours(1);
    let fire = |revision: i64, expected: Option<Timestamp>| {
        store.cron_fire(
            CronFireParams::new(CRON_ID.to_owned(), expected, next)
                .jobs(vec![cron_run(&def, now)])
                .expected_revision(revision),
        )
    };

    // A plan read before a pause loses, even with the right next_run_at.
    let before_pause = cron_entry(&store, CRON_ID).await.revision;
    store
        .cron_pause(CronPauseParams::pause(CRON_ID.to_owned()))
        .await
        .expect("pausing");
    assert_eq!(
        fire(before_pause, None).await.expect("fire"),
        CronFireOutcome::Lost,
        "paused"
    );
    let paused = cron_entry(&store, CRON_ID).await;
    assert_ne!(paused.revision, before_pause, "pausing bumps the revision");
    assert_eq!(
        fire(paused.revision, None).await.expect("fire"),
        CronFireOutcome::Lost,
        "a paused entry never fires"
    );
    store
        .cron_pause(CronPauseParams::resume(CRON_ID.to_owned()))
        .await
        .expect("resuming");

    // A plan read before an edit of the schedule loses.
    let before_edit = cron_entry(&store, CRON_ID).await.revision;
    cron_upsert(&store, cron_def(CRON_ID, "30 * * * *")).await;
    let edited = cron_entry(&store, CRON_ID).await;
    assert_eq!(edited.next_run_at, None);
    assert_ne!(edited.revision, before_edit, "an edit bumps the revision");
    assert_eq!(
        fire(before_edit, None).await.expect("fire"),
        CronFireOutcome::Lost,
        "stale plan"
    );
    assert!(
        cron_entry(&store, CRON_ID).await.next_run_at.is_none(),
        "nothing changed"
    );

    // An unchanged upsert keeps the revision, and the current plan fires.
    cron_upsert(&store, cron_def(CRON_ID, "30 * * * *")).await;
    assert_eq!(cron_entry(&store, CRON_ID).await.revision, edited.revision);
    assert!(matches!(
        fire(edited.revision, None).await.expect("fire"),
        CronFireOutcome::Fired(ids) if ids.len() == 1
    ));
}
