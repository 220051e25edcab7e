//! Recurring jobs end to end on `MemoryStore`: servers, their scheduler
//! passes and the store's compare-and-set together, on a paused tokio clock
//! (`start_paused`), so minutes of seconds-level ticks pass in no real time.
//! Jobs are declared with `#[job(crate = "jobs_core")]`, as users write them.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use jobs_core::conformance::SlowCalls;
use jobs_core::{
    BoxError, Cron, CronDueParams, JobContext, JobId, JobState, Jobs, Layered, ListJobs,
    MemoryStore, Misfire, Overlap, RecurringOptions, RecurringOrigin, RecurringRow, Request,
    Server, Store, Timestamp,
};

/// Every five seconds.
const EVERY_5S: &str = "*/5 * * * * *";
const FIVE: chrono::Duration = chrono::Duration::seconds(5);

/// What a run saw: its id, `JobContext::scheduled_for` and its argument.
type Seen = (JobId, Option<Timestamp>, u32);

fn record(seen: &Mutex<Vec<Seen>>, ctx: &jobs_core::JobContext, n: u32) {
    seen.lock()
        .unwrap()
        .push((ctx.id(), ctx.scheduled_for(), n));
}

/// The store's clock.
async fn now(store: &MemoryStore) -> Timestamp {
    store
        .cron_due(CronDueParams::new().limit(0))
        .await
        .unwrap()
        .now
}

async fn start_server(store: &MemoryStore) -> Server {
    Server::builder(store.clone()).start().await.unwrap()
}

async fn sleep_secs(secs: u64) {
    tokio::time::sleep(Duration::from_secs(secs)).await;
}

async fn entry(jobs: &Jobs, id: &str) -> RecurringRow {
    jobs.recurring()
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|row| row.def.id == id)
        .unwrap_or_else(|| panic!("recurring job `{id}` is listed"))
}

/// A run of a recurring job as the store has it.
#[derive(Debug, Clone)]
struct Run {
    id: JobId,
    tick: Timestamp,
    state: JobState,
    n: u64,
    created_at: Timestamp,
}

/// Every run of the recurring job `id`, in tick order (then id order).
async fn runs(jobs: &Jobs, id: &str) -> Vec<Run> {
    let mut runs: Vec<Run> = jobs
        .list(ListJobs::new().limit(100_000))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|row| {
            let origin = row.recurring.as_ref().filter(|o| o.id == id)?;
            Some(Run {
                id: row.id,
                tick: origin.scheduled_for,
                state: row.state,
                n: row.args["n"].as_u64().unwrap_or_default(),
                created_at: row.created_at,
            })
        })
        .collect();
    runs.sort_by_key(|run| (run.tick, run.id));
    runs
}

fn ticks(runs: &[Run]) -> Vec<Timestamp> {
    runs.iter().map(|run| run.tick).collect()
}

/// The ticks of `cron` from `first` (included) up to `end` (excluded).
fn expected_ticks(cron: &Cron, first: Timestamp, end: Timestamp) -> Vec<Timestamp> {
    let mut out = Vec::new();
    let mut tick = first;
    while tick < end {
        out.push(tick);
        tick = cron.next_after(tick).unwrap();
    }
    out
}

/// Asserts the ticks are those of `cron`, one after another, each once.
fn assert_consecutive(cron: &Cron, ticks: &[Timestamp], what: &str) {
    for pair in ticks.windows(2) {
        assert_eq!(
            cron.next_after(pair[0]),
            Some(pair[1]),
            "{what}: {} is not followed by the next tick (duplicate or missing tick) in {ticks:?}",
            pair[0]
        );
    }
}

/// Waits (in paused time, so instantly) until the job reaches `state`.
async fn wait_for(jobs: &Jobs, id: JobId, state: JobState) {
    for _ in 0..10_000 {
        let detail = jobs.get(id).await.unwrap().expect("the job exists");
        if detail.job.state == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {id} never reached {state}");
}

// ------------------------------------------------------- the run's origin

static SEEN_ORIGINS: Mutex<Vec<(Option<RecurringOrigin>, Option<Timestamp>)>> =
    Mutex::new(Vec::new());
#[jobs_macros::job(crate = "jobs_core", name = "recurring_knows_its_entry")]
async fn knows_its_entry(ctx: JobContext) -> Result<(), BoxError> {
    SEEN_ORIGINS
        .lock()
        .unwrap()
        .push((ctx.recurring().cloned(), ctx.scheduled_for()));
    Ok(())
}

/// A run asks its context which recurring entry fired it: the entry's id and
/// the tick, the same tick `JobContext::scheduled_for` gives.
#[tokio::test(start_paused = true)]
async fn a_recurring_run_sees_the_id_of_the_entry_that_fired_it() {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    jobs.recurring()
        .add_or_update("nightly-report", EVERY_5S, Request::new(KnowsItsEntry {}))
        .await
        .unwrap();
    let server = start_server(&store).await;
    sleep_secs(12).await;
    server.shutdown().await;

    let runs = runs(&jobs, "nightly-report").await;
    let seen = SEEN_ORIGINS.lock().unwrap().clone();
    assert!(!seen.is_empty(), "a tick ran");
    for (origin, scheduled_for) in seen {
        let origin = origin.expect("a recurring run knows its entry");
        assert_eq!(origin.id, "nightly-report");
        assert_eq!(Some(origin.scheduled_for), scheduled_for);
        assert!(runs.iter().any(|run| run.tick == origin.scheduled_for));
    }
}

// ------------------------------------------------------- exactly once

static SEEN_THREE_SERVERS: Mutex<Vec<Seen>> = Mutex::new(Vec::new());
#[jobs_macros::job(crate = "jobs_core", name = "recurring_every_five")]
async fn every_five(n: u32, ctx: JobContext) -> Result<(), BoxError> {
    record(&SEEN_THREE_SERVERS, &ctx, n);
    Ok(())
}

/// Three servers on one store, ten and more ticks of a seconds-level
/// schedule: each tick runs exactly once, none is missing, and each run's
/// `JobContext::scheduled_for` is its tick.
#[tokio::test(start_paused = true)]
async fn three_servers_run_each_tick_exactly_once_with_scheduled_for_the_tick() {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    let cron = Cron::parse(EVERY_5S).unwrap();
    jobs.recurring()
        .add_or_update("every-five", EVERY_5S, Request::new(EveryFive { n: 1 }))
        .await
        .unwrap();
    let started = now(&store).await;
    let servers = [
        start_server(&store).await,
        start_server(&store).await,
        start_server(&store).await,
    ];
    sleep_secs(62).await;
    for server in servers {
        server.shutdown().await;
    }

    let runs = runs(&jobs, "every-five").await;
    let next = entry(&jobs, "every-five")
        .await
        .next_run_at
        .expect("the schedule is running");
    // The first pass only computes the first tick after the start; from
    // then on every tick up to the next one to come ran once.
    let first = cron.next_after(started).unwrap();
    assert_eq!(
        ticks(&runs),
        expected_ticks(&cron, first, next),
        "one run per tick, from the first tick after the start to the last passed"
    );
    assert!(runs.len() >= 10, "only {} ticks ran", runs.len());
    for run in &runs {
        assert_eq!(run.tick.timestamp() % 5, 0, "a tick of */5 seconds");
        assert_eq!(run.tick.timestamp_subsec_nanos(), 0);
    }

    let seen = SEEN_THREE_SERVERS.lock().unwrap().clone();
    let mut executed = BTreeSet::new();
    for (id, scheduled_for, _) in &seen {
        let run = runs
            .iter()
            .find(|run| run.id == *id)
            .expect("every execution is a run of the recurring job");
        assert_eq!(
            *scheduled_for,
            Some(run.tick),
            "JobContext::scheduled_for is the run's tick"
        );
        assert!(executed.insert(*id), "run {id} executed twice");
    }
    // Runs fired by the last pass may not have been claimed before shutdown.
    let finished = runs
        .iter()
        .filter(|run| run.tick < next - FIVE - FIVE)
        .collect::<Vec<_>>();
    for run in finished {
        assert_eq!(
            run.state,
            JobState::Succeeded,
            "run {} of {}",
            run.id,
            run.tick
        );
        assert!(executed.contains(&run.id));
    }
}

static SEEN_SLOW_FIRE: Mutex<Vec<Seen>> = Mutex::new(Vec::new());
#[jobs_macros::job(crate = "jobs_core", name = "recurring_slow_fired")]
async fn slow_fired(n: u32, ctx: JobContext) -> Result<(), BoxError> {
    record(&SEEN_SLOW_FIRE, &ctx, n);
    Ok(())
}

/// Three servers whose scheduler passes overlap (each fire lands 700 ms
/// after its read, passes every 200 ms), so most ticks are fired several
/// times from the same read: each still runs exactly once, none is missing.
#[tokio::test(start_paused = true)]
async fn three_servers_with_overlapping_passes_run_each_tick_exactly_once() {
    let memory = MemoryStore::new();
    // Each fire lands 700 ms after the pass read the due entries, so the
    // passes of several servers overlap and fire the same tick from stale
    // reads: only the store's compare-and-set keeps each tick to one run (on
    // a paused clock passes never overlap otherwise).
    let store = Layered::new(
        memory.clone(),
        SlowCalls::new().fires(Duration::from_millis(700)),
    );
    let jobs = Jobs::new(memory.clone());
    let cron = Cron::parse(EVERY_5S).unwrap();
    jobs.recurring()
        .add_or_update("slow-fire", EVERY_5S, Request::new(SlowFired { n: 1 }))
        .await
        .unwrap();
    let mut servers = Vec::new();
    for _ in 0..3 {
        let server = Server::builder(store.clone())
            .scheduler_interval(Duration::from_millis(200))
            .start()
            .await
            .unwrap();
        servers.push(server);
    }
    sleep_secs(62).await;
    for server in servers {
        server.shutdown().await;
    }

    let runs = runs(&jobs, "slow-fire").await;
    let next = entry(&jobs, "slow-fire").await.next_run_at.unwrap();
    let first = runs.first().expect("the schedule ran").tick;
    assert_eq!(
        ticks(&runs),
        expected_ticks(&cron, first, next),
        "one run per tick"
    );
    assert!(runs.len() >= 10, "only {} ticks ran", runs.len());
    let seen = SEEN_SLOW_FIRE.lock().unwrap().clone();
    let executed: BTreeSet<JobId> = seen.iter().map(|s| s.0).collect();
    assert_eq!(executed.len(), seen.len(), "no run executed twice");
}

static SEEN_RACE: Mutex<Vec<Seen>> = Mutex::new(Vec::new());
#[jobs_macros::job(crate = "jobs_core", name = "recurring_raced")]
async fn raced(n: u32, ctx: JobContext) -> Result<(), BoxError> {
    record(&SEEN_RACE, &ctx, n);
    Ok(())
}

/// `add_or_update` called at the same instant by several starting
/// applications, while their servers start: one entry, one run per tick.
#[tokio::test(start_paused = true)]
async fn add_or_update_racing_at_start_makes_one_entry_and_no_duplicate_runs() {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    let cron = Cron::parse(EVERY_5S).unwrap();
    let started = now(&store).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let jobs = Jobs::new(store.clone());
            jobs.recurring()
                .add_or_update("raced", EVERY_5S, Request::new(Raced { n: 1 }))
                .await
                .unwrap();
            start_server(&store).await
        }));
    }
    let mut servers = Vec::new();
    for task in tasks {
        servers.push(task.await.unwrap());
    }
    assert_eq!(jobs.recurring().list().await.unwrap().len(), 1, "one entry");
    sleep_secs(41).await;
    for server in servers {
        server.shutdown().await;
    }

    let runs = runs(&jobs, "raced").await;
    let next = entry(&jobs, "raced").await.next_run_at.unwrap();
    let first = cron.next_after(started).unwrap();
    assert_eq!(ticks(&runs), expected_ticks(&cron, first, next));
    assert!(runs.len() >= 6, "only {} ticks ran", runs.len());
    let seen = SEEN_RACE.lock().unwrap().clone();
    let executed: BTreeSet<JobId> = seen.iter().map(|s| s.0).collect();
    assert_eq!(executed.len(), seen.len(), "no run executed twice");
}

// ------------------------------------------------------------- misfires

#[jobs_macros::job(crate = "jobs_core", name = "recurring_missed")]
#[allow(unused_variables)]
async fn missed(n: u32, _ctx: JobContext) -> Result<(), BoxError> {
    Ok(())
}

/// Long enough a downtime for every policy to see the ticks as missed
/// (`Misfire::Skip` runs ticks seen within a minute).
const DOWNTIME: u64 = 120;

/// Runs the schedule with `misfire` on one server, stops it for
/// [`DOWNTIME`], starts another: the runs of the missed ticks (those before
/// the restart), the runs after the restart, the first missed tick and the
/// restart time.
async fn after_downtime(misfire: Misfire) -> (Vec<Run>, Vec<Run>, Timestamp, Timestamp) {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    let id = "missed";
    jobs.recurring()
        .add_or_update_with(
            id,
            EVERY_5S,
            Request::new(Missed { n: 1 }),
            RecurringOptions::new().misfire(misfire),
        )
        .await
        .unwrap();
    let server = start_server(&store).await;
    sleep_secs(12).await;
    server.shutdown().await;
    let before = runs(&jobs, id).await;
    assert!(!before.is_empty(), "the schedule ran before the downtime");
    let first_missed = entry(&jobs, id).await.next_run_at.unwrap();
    assert!(before.iter().all(|run| run.tick < first_missed));

    sleep_secs(DOWNTIME).await;
    assert_eq!(
        runs(&jobs, id).await.len(),
        before.len(),
        "nothing runs while no server does"
    );
    let restarted = now(&store).await;
    let server = start_server(&store).await;
    sleep_secs(17).await;
    server.shutdown().await;

    let cron = Cron::parse(EVERY_5S).unwrap();
    let after: Vec<Run> = runs(&jobs, id)
        .await
        .into_iter()
        .filter(|run| run.tick >= first_missed)
        .collect();
    let (missed, resumed): (Vec<Run>, Vec<Run>) =
        after.into_iter().partition(|run| run.tick < restarted);
    assert_eq!(
        resumed.first().map(|run| run.tick),
        cron.next_after(restarted),
        "after catching up, the schedule goes on from the first tick after the restart"
    );
    assert_consecutive(&cron, &ticks(&resumed), "after the restart");
    assert!(resumed.len() >= 2);
    (missed, resumed, first_missed, restarted)
}

/// `Misfire::RunOnce` (the default): one run for all the missed ticks,
/// standing for the earliest of them.
#[tokio::test(start_paused = true)]
async fn misfire_run_once_runs_once_for_the_earliest_missed_tick() {
    let (missed, _, first_missed, _) = after_downtime(Misfire::RunOnce).await;
    assert_eq!(ticks(&missed), [first_missed]);
}

/// `Misfire::Skip`: no run for the missed ticks; the next tick runs.
#[tokio::test(start_paused = true)]
async fn misfire_skip_runs_nothing_for_missed_ticks_then_the_next_tick() {
    let (missed, _, _, _) = after_downtime(Misfire::Skip).await;
    assert!(ticks(&missed).is_empty(), "missed ticks ran: {missed:?}");
}

/// `Misfire::RunAll { limit }`: one run for each of the earliest `limit`
/// missed ticks.
#[tokio::test(start_paused = true)]
async fn misfire_run_all_runs_the_earliest_missed_ticks_up_to_the_limit() {
    let (missed, _, first_missed, _) = after_downtime(Misfire::RunAll { limit: 3 }).await;
    assert_eq!(
        ticks(&missed),
        [
            first_missed,
            first_missed + FIVE,
            first_missed + FIVE + FIVE
        ]
    );
}

// -------------------------------------------------------------- overlap

static SLOW_RUNNING: AtomicU32 = AtomicU32::new(0);
static SLOW_MAX: AtomicU32 = AtomicU32::new(0);
#[jobs_macros::job(crate = "jobs_core", name = "recurring_slow")]
#[allow(unused_variables)]
async fn slow(n: u32, _ctx: JobContext) -> Result<(), BoxError> {
    let running = SLOW_RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    SLOW_MAX.fetch_max(running, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(12)).await;
    SLOW_RUNNING.fetch_sub(1, Ordering::SeqCst);
    Ok(())
}

/// `Overlap::Skip` with a run (12 s) longer than the interval (5 s): the
/// ticks reached while it runs are skipped and recorded, so runs never
/// overlap; the first tick after it finished runs.
#[tokio::test(start_paused = true)]
async fn overlap_skip_skips_ticks_while_the_previous_run_is_running() {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    let cron = Cron::parse(EVERY_5S).unwrap();
    jobs.recurring()
        .add_or_update_with(
            "slow",
            EVERY_5S,
            Request::new(Slow { n: 1 }),
            RecurringOptions::new().overlap(Overlap::Skip),
        )
        .await
        .unwrap();
    let servers = [start_server(&store).await, start_server(&store).await];
    sleep_secs(80).await;
    let row = entry(&jobs, "slow").await;
    for server in servers {
        server.shutdown().await;
    }

    assert_eq!(SLOW_MAX.load(Ordering::SeqCst), 1, "runs never overlapped");
    let runs = runs(&jobs, "slow").await;
    assert!(runs.len() >= 4, "only {} runs", runs.len());
    for run in &runs {
        assert_eq!(
            cron.next_after(run.tick - chrono::Duration::seconds(1)),
            Some(run.tick),
            "runs stand for ticks of the schedule"
        );
    }
    for pair in runs.windows(2) {
        let gap = pair[1].tick - pair[0].tick;
        // Ticks +5 s and +10 s fall inside the 12 s run; +15 s is after it.
        assert_eq!(
            gap,
            FIVE * 3,
            "runs {} and {} are {gap} apart: the ticks during a run are skipped, the next one runs",
            pair[0].tick,
            pair[1].tick
        );
        assert_eq!(pair[0].state, JobState::Succeeded);
    }
    let (skipped_at, why) = row.last_skipped.expect("the skips are recorded");
    assert!(!why.is_empty());
    assert!(skipped_at > runs[0].tick);
}

// ------------------------------------------------- changes, pause, trigger

static SEEN_CHANGED: Mutex<Vec<Seen>> = Mutex::new(Vec::new());
#[jobs_macros::job(crate = "jobs_core", name = "recurring_changed")]
async fn changed(n: u32, ctx: JobContext) -> Result<(), BoxError> {
    record(&SEEN_CHANGED, &ctx, n);
    Ok(())
}

/// `add_or_update` on a running schedule: a new schedule takes effect
/// (its ticks only, from the next pass), and so do new arguments alone,
/// without moving the schedule.
#[tokio::test(start_paused = true)]
async fn add_or_update_changing_the_schedule_or_args_takes_effect() {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    let id = "changed";
    let every_5s = Cron::parse(EVERY_5S).unwrap();
    let every_10s = Cron::parse("*/10 * * * * *").unwrap();
    jobs.recurring()
        .add_or_update(id, EVERY_5S, Request::new(Changed { n: 1 }))
        .await
        .unwrap();
    let server = start_server(&store).await;
    sleep_secs(27).await;

    let changed = now(&store).await;
    jobs.recurring()
        .add_or_update(id, every_10s.clone(), Request::new(Changed { n: 2 }))
        .await
        .unwrap();
    assert_eq!(
        entry(&jobs, id).await.next_run_at,
        None,
        "a new schedule starts afresh"
    );
    sleep_secs(41).await;

    let args_changed = now(&store).await;
    let next = entry(&jobs, id).await.next_run_at.unwrap();
    jobs.recurring()
        .add_or_update(id, every_10s.clone(), Request::new(Changed { n: 3 }))
        .await
        .unwrap();
    assert_eq!(
        entry(&jobs, id).await.next_run_at,
        Some(next),
        "new arguments alone keep the schedule"
    );
    sleep_secs(31).await;
    server.shutdown().await;

    let all = runs(&jobs, id).await;
    // No tick before the schedule change fires after it (the entry starts
    // afresh), so the schedules split by tick. A run's arguments are those
    // of the definition when it was fired, so they split by creation time.
    let old: Vec<&Run> = all.iter().filter(|run| run.tick <= changed).collect();
    let new: Vec<&Run> = all.iter().filter(|run| run.tick > changed).collect();
    assert!(old.len() >= 4 && new.len() >= 6, "{all:?}");
    let ticks_of = |runs: &[&Run]| runs.iter().map(|run| run.tick).collect::<Vec<_>>();
    assert_consecutive(&every_5s, &ticks_of(&old), "the old schedule");
    assert!(old.iter().all(|run| run.n == 1));
    let after = ticks_of(&new);
    assert_consecutive(&every_10s, &after, "the new schedule");
    assert!(
        after.iter().all(|tick| tick.timestamp() % 10 == 0),
        "only ticks of the new schedule after the change: {after:?}"
    );
    assert!(
        new.iter()
            .filter(|run| run.created_at < args_changed)
            .all(|run| run.n == 2),
        "the new arguments run from the change: {all:?}"
    );
    let newest: Vec<&Run> = new
        .iter()
        .copied()
        .filter(|run| run.created_at > args_changed)
        .collect();
    assert!(newest.len() >= 2, "{all:?}");
    assert!(
        newest.iter().all(|run| run.n == 3),
        "arguments changed alone run from the next fire: {all:?}"
    );
    let seen = SEEN_CHANGED.lock().unwrap().clone();
    for (job, scheduled_for, n) in seen {
        let run = all.iter().find(|run| run.id == job).unwrap();
        assert_eq!((scheduled_for, u64::from(n)), (Some(run.tick), run.n));
    }
}

#[jobs_macros::job(crate = "jobs_core", name = "recurring_paused")]
#[allow(unused_variables)]
async fn paused(n: u32, _ctx: JobContext) -> Result<(), BoxError> {
    Ok(())
}

/// A paused schedule runs nothing; resumed, it goes on from its next tick
/// without running the ticks passed while paused.
#[tokio::test(start_paused = true)]
async fn pause_stops_the_runs_and_resume_goes_on_from_the_next_tick() {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    let cron = Cron::parse(EVERY_5S).unwrap();
    let id = "paused";
    jobs.recurring()
        .add_or_update(id, EVERY_5S, Request::new(Paused { n: 1 }))
        .await
        .unwrap();
    let server = start_server(&store).await;
    sleep_secs(16).await;
    jobs.recurring().pause(id).await.unwrap();
    let paused = now(&store).await;
    let before = runs(&jobs, id).await.len();
    assert!(before >= 2);
    sleep_secs(40).await;
    assert!(entry(&jobs, id).await.paused);
    assert_eq!(
        runs(&jobs, id).await.len(),
        before,
        "nothing runs while paused"
    );
    let resumed = now(&store).await;
    jobs.recurring().resume(id).await.unwrap();
    sleep_secs(21).await;
    server.shutdown().await;

    let all = runs(&jobs, id).await;
    assert!(
        all.iter()
            .all(|run| run.tick <= paused || run.tick > resumed),
        "no run for a tick passed while paused: {all:?}"
    );
    let after: Vec<Timestamp> = all
        .iter()
        .map(|run| run.tick)
        .filter(|tick| *tick > resumed)
        .collect();
    assert!(after.len() >= 3, "the schedule goes on after resuming");
    assert!(after[0] <= resumed + FIVE + FIVE, "from its next tick on");
    assert_consecutive(&cron, &after, "after resuming");
}

static SEEN_TRIGGERED: Mutex<Vec<Seen>> = Mutex::new(Vec::new());
#[jobs_macros::job(crate = "jobs_core", name = "recurring_triggered")]
async fn triggered(n: u32, ctx: JobContext) -> Result<(), BoxError> {
    record(&SEEN_TRIGGERED, &ctx, n);
    Ok(())
}

/// `trigger` runs the job now, off schedule, with `scheduled_for` the
/// store's time of the trigger, and does not move the schedule.
#[tokio::test(start_paused = true)]
async fn trigger_runs_now_without_moving_the_schedule() {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    let id = "triggered";
    jobs.recurring()
        .add_or_update(id, Cron::hourly(), Request::new(Triggered { n: 4 }))
        .await
        .unwrap();
    let server = start_server(&store).await;
    sleep_secs(3).await;
    let next = entry(&jobs, id).await.next_run_at.expect("scheduled");

    let at = now(&store).await;
    let job = jobs.recurring().trigger(id).await.unwrap();
    wait_for(&jobs, job, JobState::Succeeded).await;
    let row = entry(&jobs, id).await;
    assert_eq!(row.next_run_at, Some(next), "a trigger keeps the schedule");
    assert_eq!(row.last_job_id, Some(job));
    assert_eq!(row.last_job_state, Some(JobState::Succeeded));
    server.shutdown().await;

    let runs = runs(&jobs, id).await;
    assert_eq!(runs.len(), 1, "one run: the triggered one");
    assert_eq!(runs[0].id, job);
    let seen = SEEN_TRIGGERED.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (ran, scheduled_for, n) = seen[0];
    assert_eq!((ran, n), (job, 4));
    let scheduled_for = scheduled_for.expect("a triggered run knows its tick");
    assert_eq!(scheduled_for, runs[0].tick);
    assert!(
        scheduled_for >= at && scheduled_for - at < chrono::Duration::seconds(1),
        "the tick of a trigger is the time it was triggered"
    );
    assert!(jobs.recurring().trigger("no-such-job").await.is_err());
}
