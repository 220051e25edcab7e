//! End to end on the in-memory store: `#[job]` functions enqueued through the
//! generated API, run by a `Server`, observed through `Jobs` and the testing
//! helpers. Paused clock: backoff and delays take no time.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs::testing::{
    assert_enqueued, assert_not_enqueued, enqueued, run_until_empty, Perform, Performed,
};
use jobs::{job, JobContext, JobState, Jobs, MemoryStore, Permanent, Server, Snooze, State};

/// What the jobs of this file did, shared with them as a resource.
#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    fn write(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

#[job]
async fn send_account_confirmation_email(
    user_id: i64,
    journal: State<Journal>,
) -> anyhow::Result<()> {
    journal.write(format!("mail to {user_id}"));
    Ok(())
}

static SNOOZED: AtomicU32 = AtomicU32::new(0);

#[job(max_attempts = 1)]
async fn wait_for_the_bank(transfer: String, journal: State<Journal>) -> anyhow::Result<()> {
    if SNOOZED.fetch_add(1, Ordering::SeqCst) < 2 {
        // anyhow carries the typed value through to the server.
        return Err(Snooze::after(Duration::from_secs(600)).into());
    }
    journal.write(format!("transfer {transfer} settled"));
    Ok(())
}

#[job]
async fn close_account(account: u64) -> anyhow::Result<()> {
    Err(Permanent::new(anyhow::anyhow!("account {account} does not exist")).into())
}

#[job(max_attempts = 3, backoff = fixed("30s"))]
async fn flaky_export(day: String, ctx: JobContext) -> anyhow::Result<()> {
    anyhow::ensure!(
        ctx.attempt() >= 3,
        "export of {day} failed on attempt {}",
        ctx.attempt()
    );
    Ok(())
}

#[job(max_attempts = 2, backoff = fixed("1s"))]
async fn explodes(_n: u8) {
    panic!("index out of bounds");
}

#[job]
async fn always_fails(report: u32) -> anyhow::Result<()> {
    anyhow::bail!("report {report} is not ready")
}

#[job(max_attempts = 4)]
async fn charge_card(order: u64, journal: State<Journal>, ctx: JobContext) -> anyhow::Result<()> {
    journal.write(format!(
        "charge {order} in {}, attempt {} of {}",
        ctx.queue(),
        ctx.attempt(),
        ctx.max_attempts()
    ));
    anyhow::ensure!(
        !ctx.is_cancelled(),
        "order stopped: the attempt was asked to stop"
    );
    Ok(())
}

#[job]
async fn wait_for_settlement(transfer: String) -> anyhow::Result<()> {
    let _ = transfer;
    Err(Snooze::after(Duration::from_secs(600)).into())
}

#[job]
async fn record_reading(celsius: f64) -> anyhow::Result<()> {
    anyhow::ensure!(celsius > -273.15, "below absolute zero");
    Ok(())
}

fn store_and_jobs() -> (MemoryStore, Jobs) {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    (store, jobs)
}

#[tokio::test(start_paused = true)]
async fn an_enqueued_job_runs_with_its_arguments_and_injected_state() {
    let (store, jobs) = store_and_jobs();
    let journal = Journal::default();
    let id = SendAccountConfirmationEmail::enqueue(&jobs, 9)
        .await
        .unwrap();
    assert_enqueued::<SendAccountConfirmationEmail>(&jobs, |job| job.user_id == 9).await;
    assert_not_enqueued::<SendAccountConfirmationEmail>(&jobs, |job| job.user_id == 10).await;

    let report = run_until_empty(Server::builder(store).state(journal.clone()))
        .await
        .unwrap();
    assert_eq!(report.succeeded, 1);
    assert_eq!(journal.lines(), ["mail to 9"]);
    let detail = jobs.get(id).await.unwrap().unwrap();
    assert_eq!(detail.job.state, JobState::Succeeded);
    assert_eq!(detail.job.args, serde_json::json!({ "user_id": 9 }));
    assert!(enqueued::<SendAccountConfirmationEmail>(&jobs)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_snooze_returned_through_anyhow_does_not_use_up_the_only_attempt() {
    let (store, jobs) = store_and_jobs();
    let journal = Journal::default();
    let id = WaitForTheBank::enqueue(&jobs, "T-1".to_owned())
        .await
        .unwrap();
    run_until_empty(Server::builder(store).state(journal.clone()))
        .await
        .unwrap();
    let detail = jobs.get(id).await.unwrap().unwrap();
    assert_eq!(detail.job.state, JobState::Succeeded, "{detail:?}");
    assert_eq!(detail.job.attempt, 1);
    assert_eq!(journal.lines(), ["transfer T-1 settled"]);
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_returned_through_anyhow_fails_at_once() {
    let (store, jobs) = store_and_jobs();
    let id = CloseAccount::enqueue(&jobs, 4).await.unwrap();
    let report = run_until_empty(Server::builder(store).state(Journal::default()))
        .await
        .unwrap();
    assert_eq!(report.failed, 1);
    let detail = jobs.get(id).await.unwrap().unwrap();
    assert_eq!(detail.job.attempt, 1);
    assert_eq!(
        detail.job.last_error.as_deref(),
        Some("account 4 does not exist")
    );
}

#[tokio::test(start_paused = true)]
async fn failures_are_retried_with_the_attribute_backoff_and_kept_in_the_history() {
    let (store, jobs) = store_and_jobs();
    let id = FlakyExport::enqueue(&jobs, "2026-11-27".to_owned())
        .await
        .unwrap();
    run_until_empty(Server::builder(store).state(Journal::default()))
        .await
        .unwrap();
    let detail = jobs.get(id).await.unwrap().unwrap();
    assert_eq!(detail.job.state, JobState::Succeeded);
    assert_eq!(detail.job.attempt, 3);
    let errors: Vec<_> = detail
        .history
        .iter()
        .filter_map(|e| e.error.clone())
        .collect();
    assert_eq!(
        errors,
        [
            "export of 2026-11-27 failed on attempt 1",
            "export of 2026-11-27 failed on attempt 2"
        ]
    );
    let claims: Vec<_> = detail
        .history
        .iter()
        .filter(|e| e.state == JobState::Processing)
        .map(|e| e.at)
        .collect();
    assert!(claims[1] - claims[0] >= chrono::Duration::seconds(30));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_job_ends_failed_with_the_panic_message() {
    let (store, jobs) = store_and_jobs();
    let id = Explodes::enqueue(&jobs, 1).await.unwrap();
    let report = run_until_empty(Server::builder(store).state(Journal::default()))
        .await
        .unwrap();
    assert_eq!(report.failed, 1);
    let detail = jobs.get(id).await.unwrap().unwrap();
    assert_eq!(detail.job.attempt, 2);
    assert_eq!(
        detail.job.last_error.as_deref(),
        Some("panicked: index out of bounds")
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_without_a_state_its_jobs_need_refuses_to_start_naming_job_and_type() {
    let (store, _jobs) = store_and_jobs();
    let error = Server::builder(store)
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("send_account_confirmation_email"), "{error}");
    assert!(error.contains("State<runtime::Journal>"), "{error}");
    assert!(error.contains(".state("), "{error}");
}

#[tokio::test(start_paused = true)]
async fn requests_carry_queue_priority_attempts_and_delay() {
    let (_store, jobs) = store_and_jobs();
    let id = SendAccountConfirmationEmail::new(9)
        .queue("mail")
        .priority(5)
        .max_attempts(2)
        .delay(Duration::from_secs(3600))
        .enqueue(&jobs)
        .await
        .unwrap();
    let job = jobs.get(id).await.unwrap().unwrap().job;
    assert_eq!(job.state, JobState::Scheduled);
    assert_eq!(
        (job.queue.as_str(), job.priority, job.max_attempts),
        ("mail", 5, 2)
    );
    assert!(job.run_at - job.created_at >= chrono::Duration::seconds(3600));

    let ids = jobs
        .enqueue_many((0..100).map(SendAccountConfirmationEmail::new))
        .await
        .unwrap();
    assert_eq!(ids.len(), 100);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test(start_paused = true)]
async fn recurring_jobs_fire_on_their_schedule_with_the_tick_they_stand_for() {
    let (store, jobs) = store_and_jobs();
    let journal = Journal::default();
    jobs.recurring()
        .add_or_update(
            "hourly-mail",
            "0 * * * *",
            SendAccountConfirmationEmail::new(1),
        )
        .await
        .unwrap();
    assert!(jobs
        .recurring()
        .add_or_update("broken", "0 25 * * *", SendAccountConfirmationEmail::new(1))
        .await
        .unwrap_err()
        .to_string()
        .contains("hour"));
    let server = Server::builder(store)
        .state(journal.clone())
        .start()
        .await
        .unwrap();
    // Three hours and a minute of (paused) time: three ticks.
    tokio::time::sleep(Duration::from_secs(3 * 3600 + 60)).await;
    server.shutdown().await;
    assert_eq!(journal.lines(), ["mail to 1", "mail to 1", "mail to 1"]);
    let recurring = jobs.recurring().list().await.unwrap();
    assert_eq!(recurring.len(), 1);
    let entry = &recurring[0];
    assert_eq!(entry.def.id, "hourly-mail");
    assert_eq!(entry.last_job_state, Some(JobState::Succeeded));
    let last = jobs
        .get(entry.last_job_id.unwrap())
        .await
        .unwrap()
        .unwrap()
        .job;
    let tick = last.recurring.unwrap().scheduled_for;
    assert_eq!(tick.format("%M:%S%.f").to_string(), "00:00");
    assert_eq!(Some(tick), entry.last_run_at);
}

#[tokio::test(start_paused = true)]
async fn draining_runs_a_job_delayed_by_a_day() {
    let (store, jobs) = store_and_jobs();
    let journal = Journal::default();
    let id = SendAccountConfirmationEmail::new(5)
        .delay(Duration::from_secs(24 * 3600))
        .enqueue(&jobs)
        .await
        .unwrap();
    let report = run_until_empty(Server::builder(store).state(journal.clone()))
        .await
        .unwrap();
    assert_eq!(report.succeeded, 1);
    assert_eq!(journal.lines(), ["mail to 5"]);
    let job = jobs.get(id).await.unwrap().unwrap().job;
    assert!(job.finished_at.unwrap() - job.created_at >= chrono::Duration::hours(24));
}

#[tokio::test(start_paused = true)]
async fn draining_runs_every_attempt_of_the_default_backoff_until_the_job_fails() {
    let (store, jobs) = store_and_jobs();
    let id = AlwaysFails::enqueue(&jobs, 3).await.unwrap();
    let report = run_until_empty(Server::builder(store).state(Journal::default()))
        .await
        .unwrap();
    assert_eq!(report.failed, 1);
    let job = jobs.get(id).await.unwrap().unwrap().job;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.attempt, jobs::DEFAULT_MAX_ATTEMPTS);
    assert_eq!(job.last_error.as_deref(), Some("report 3 is not ready"));
}

#[tokio::test]
async fn draining_on_a_running_clock_waits_in_real_time_for_a_delayed_job() {
    let (store, jobs) = store_and_jobs();
    let journal = Journal::default();
    SendAccountConfirmationEmail::new(6)
        .delay(Duration::from_millis(300))
        .enqueue(&jobs)
        .await
        .unwrap();
    let report = run_until_empty(Server::builder(store).state(journal.clone()))
        .await
        .unwrap();
    assert_eq!(report.succeeded, 1);
    assert_eq!(journal.lines(), ["mail to 6"]);
}

#[tokio::test(start_paused = true)]
async fn draining_gives_up_on_a_job_due_after_a_week_and_leaves_it_scheduled() {
    let (store, jobs) = store_and_jobs();
    let id = SendAccountConfirmationEmail::new(7)
        .delay(Duration::from_secs(30 * 24 * 3600))
        .enqueue(&jobs)
        .await
        .unwrap();
    let error = run_until_empty(Server::builder(store).state(Journal::default()))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("1 jobs were still waiting"), "{error}");
    let job = jobs.get(id).await.unwrap().unwrap().job;
    assert_eq!(job.state, JobState::Scheduled);
}

#[tokio::test]
async fn perform_runs_the_job_inline_with_its_state_and_a_fresh_context() {
    let journal = Journal::default();
    let performed = Perform::new()
        .state(journal.clone())
        .run(ChargeCard::new(5).queue("payments"))
        .await
        .unwrap();
    assert!(performed.is_succeeded(), "{performed:?}");
    assert_eq!(journal.lines(), ["charge 5 in payments, attempt 1 of 4"]);

    Perform::new()
        .state(journal.clone())
        .attempt(4)
        .run(ChargeCard::new(6))
        .await
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(journal.lines()[1], "charge 6 in default, attempt 4 of 4");
}

#[tokio::test]
async fn perform_says_how_the_job_ended_as_a_server_would_record_it() {
    let failed = Perform::new()
        .run(FlakyExport::new("2026-11-27".to_owned()))
        .await
        .unwrap();
    let Performed::Failed(error) = failed else {
        panic!("expected a failure, got {failed:?}");
    };
    assert_eq!(
        error.to_string(),
        "export of 2026-11-27 failed on attempt 1"
    );
    let last = Perform::new()
        .attempt(3)
        .run(FlakyExport::new("2026-11-27".to_owned()))
        .await
        .unwrap();
    assert!(last.is_succeeded(), "{last:?}");

    let permanent = Perform::new().run(CloseAccount::new(4)).await.unwrap();
    let Performed::Permanent(error) = permanent else {
        panic!("expected a permanent error, got {permanent:?}");
    };
    assert_eq!(error.to_string(), "account 4 does not exist");

    let snoozed = Perform::new()
        .run(WaitForSettlement::new("T-2".to_owned()))
        .await
        .unwrap();
    assert!(
        matches!(snoozed, Performed::Snoozed(after) if after == Duration::from_secs(600)),
        "{snoozed:?}"
    );
}

#[tokio::test]
async fn perform_without_a_state_the_job_takes_fails_naming_the_job_and_type() {
    let error = Perform::new()
        .run(ChargeCard::new(5))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("charge_card"), "{error}");
    assert!(error.contains("State<runtime::Journal>"), "{error}");
    assert!(error.contains("add `.state(value)`"), "{error}");
}

#[tokio::test]
async fn perform_refuses_arguments_that_do_not_survive_storage() {
    // JSON has no NaN: it is stored as `null`, which does not read back as
    // an `f64`, so a server would fail every attempt of this job. The
    // enqueue refuses it, naming the argument, and so does `Perform`.
    let error = Perform::new()
        .run(RecordReading::new(f64::NAN))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            jobs::Error::RoundTrip {
                job: "record_reading",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("argument `celsius`"), "{error}");
    let performed = Perform::new().run(RecordReading::new(21.5)).await.unwrap();
    assert!(performed.is_succeeded(), "{performed:?}");
}

#[tokio::test(start_paused = true)]
async fn draining_with_nothing_enqueued_still_refuses_a_server_missing_a_state() {
    let (store, _jobs) = store_and_jobs();
    let error = run_until_empty(Server::builder(store))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("State<runtime::Journal>"), "{error}");
}

#[tokio::test]
async fn perform_can_run_an_attempt_that_was_already_asked_to_stop() {
    let performed = Perform::new()
        .state(Journal::default())
        .cancelled()
        .run(ChargeCard::new(5))
        .await
        .unwrap();
    let Performed::Failed(error) = performed else {
        panic!("expected the job to notice, got {performed:?}");
    };
    assert_eq!(
        error.to_string(),
        "order stopped: the attempt was asked to stop"
    );
}
