//! What `#[job]` generates: the stored arguments, the options, the
//! registration, and the runner (injection, argument errors) on a server
//! with the in-memory store.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs::testing::run_until_empty;
use jobs::{job, Backoff, Job, JobContext, JobState, Jobs, MemoryStore, Server, State};
use serde::{Deserialize, Serialize};

/// Every user the mail job ran for. A set, not the last one: tests in this
/// file run in parallel and enqueue this job with different users.
static MAILED_USERS: Mutex<Vec<i64>> = Mutex::new(Vec::new());

/// Sends the mail.
#[job(queue = "mail", max_attempts = 5, priority = -3, timeout = "1m30s", backoff = fixed("5s"))]
async fn send_account_confirmation_email(user_id: i64, ctx: JobContext) -> anyhow::Result<()> {
    assert_eq!(ctx.name(), "send_account_confirmation_email");
    MAILED_USERS.lock().unwrap().push(user_id);
    Ok(())
}

#[derive(Clone)]
struct Mailer {
    sent: Arc<AtomicI64>,
}

#[job(name = "mail.welcome")]
async fn welcome(user_id: i64, nickname: Option<String>, mailer: State<Mailer>) {
    let _ = nickname;
    mailer.sent.store(user_id, Ordering::SeqCst);
}

#[job(max_attempts = 1)]
async fn failing(reason: String) -> Result<(), String> {
    Err(reason)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Invoice {
    number: String,
    lines: Vec<(String, u32)>,
}

type Received = (Invoice, Option<chrono::NaiveDate>, Vec<u8>);

static RECEIVED: Mutex<Vec<Received>> = Mutex::new(Vec::new());

#[job(queue = "billing")]
async fn file_invoice(
    invoice: Invoice,
    due: Option<chrono::NaiveDate>,
    raw: Vec<u8>,
) -> anyhow::Result<()> {
    RECEIVED.lock().unwrap().push((invoice, due, raw));
    Ok(())
}

fn mailer() -> Mailer {
    Mailer {
        sent: Arc::new(AtomicI64::new(0)),
    }
}

/// A server for this test binary: every job here runs in one of these
/// queues, and `welcome` needs a `Mailer`.
fn server(store: MemoryStore, mailer: Mailer) -> jobs::ServerBuilder {
    Server::builder(store)
        .queues(["default", "mail", "billing"])
        .state(mailer)
}

async fn detail(jobs: &Jobs, id: jobs::JobId) -> jobs::JobDetail {
    jobs.get(id).await.unwrap().expect("the job exists")
}

fn registration(name: &str) -> &'static jobs::__private::JobRegistration {
    jobs::__private::registered_jobs()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("job `{name}` is not registered"))
}

#[test]
fn names_and_options_come_from_the_attribute() {
    assert_eq!(
        SendAccountConfirmationEmail::NAME,
        "send_account_confirmation_email"
    );
    assert_eq!(<Welcome as Job>::NAME, "mail.welcome");
    let options = SendAccountConfirmationEmail::options();
    assert_eq!(options.queue, "mail");
    assert_eq!(options.max_attempts, 5);
    assert_eq!(options.priority, -3);
    assert_eq!(options.timeout, Some(Duration::from_secs(90)));
    assert_eq!(options.backoff, Backoff::fixed(Duration::from_secs(5)));
    assert_eq!(Welcome::options(), jobs::JobOptions::default());
}

#[test]
fn arguments_are_stored_as_a_json_object() {
    let request = SendAccountConfirmationEmail::new(9);
    let row = request.into_new_job().unwrap();
    assert_eq!(row.args, serde_json::json!({ "user_id": 9 }));
    assert_eq!(row.queue, "mail");
    let row = Welcome::new(1, Some("ann".into())).into_new_job().unwrap();
    assert_eq!(
        row.args,
        serde_json::json!({ "user_id": 1, "nickname": "ann" })
    );
}

#[test]
fn registration_describes_the_job() {
    let mail = registration("send_account_confirmation_email");
    assert!(mail.type_name.ends_with("::SendAccountConfirmationEmail"));
    assert!(
        mail.location.starts_with("tests/macro_behaviour.rs:"),
        "{}",
        mail.location
    );
    assert_eq!((mail.options)(), SendAccountConfirmationEmail::options());
    assert!(
        (mail.requirements)().is_empty(),
        "a JobContext is not a resource"
    );

    let requirements = (registration("mail.welcome").requirements)();
    assert_eq!(requirements.len(), 1);
    assert!(
        requirements[0].type_name.ends_with("::Mailer"),
        "{}",
        requirements[0].type_name
    );
    assert_eq!(requirements[0].type_id, std::any::TypeId::of::<Mailer>());
}

#[test]
fn the_function_stays_callable() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mailer = mailer();
    runtime.block_on(welcome(4, None, State(mailer.clone())));
    assert_eq!(mailer.sent.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn enqueued_jobs_run_with_their_arguments_intact() {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    let mailer = mailer();

    SendAccountConfirmationEmail::enqueue(&jobs, 9)
        .await
        .unwrap();
    Welcome::enqueue(&jobs, 12, Some("ann".into()))
        .await
        .unwrap();
    let invoice = Invoice {
        number: "F-1".into(),
        lines: vec![("tea".into(), 2)],
    };
    let due = chrono::NaiveDate::from_ymd_opt(2030, 1, 31);
    FileInvoice::enqueue(&jobs, invoice.clone(), due, vec![0, 255])
        .await
        .unwrap();

    let report = run_until_empty(server(store, mailer.clone()))
        .await
        .unwrap();
    assert_eq!(report.succeeded, 3);
    assert!(MAILED_USERS.lock().unwrap().contains(&9));
    assert_eq!(mailer.sent.load(Ordering::SeqCst), 12);
    let received = RECEIVED.lock().unwrap().clone();
    assert!(
        received.contains(&(invoice, due, vec![0, 255])),
        "{received:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn arguments_of_the_wrong_shape_fail_the_job_with_serdes_message() {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    let ids = jobs
        .insert(vec![
            jobs_core::NewJob::new(
                "send_account_confirmation_email",
                serde_json::json!({ "user_id": "nine" }),
            ),
            jobs_core::NewJob::new("send_account_confirmation_email", serde_json::json!({})),
            jobs_core::NewJob::new("send_account_confirmation_email", serde_json::json!([9])),
        ])
        .await
        .unwrap();
    // The server survives the bad rows and keeps running good ones.
    let good = SendAccountConfirmationEmail::enqueue(&jobs, 5)
        .await
        .unwrap();

    run_until_empty(server(store, mailer())).await.unwrap();

    let expected = [
        "argument `user_id`: invalid type: string \"nine\", expected i64",
        "missing field `user_id`",
        "expected the arguments of job `send_account_confirmation_email` as a JSON object",
    ];
    for (id, expected) in ids.into_iter().zip(expected) {
        let detail = detail(&jobs, id.id).await;
        assert_eq!(detail.job.state, JobState::Failed, "{detail:?}");
        let error = detail.job.last_error.clone().unwrap_or_default();
        assert!(
            error.contains(expected),
            "{error:?} should contain {expected:?}"
        );
        assert!(
            error.contains("send_account_confirmation_email"),
            "{error:?}"
        );
    }
    assert_eq!(detail(&jobs, good).await.job.state, JobState::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn an_option_argument_missing_from_the_stored_row_reads_as_none() {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    let mailer = mailer();
    let mut row = jobs_core::NewJob::new("mail.welcome", serde_json::json!({ "user_id": 77 }));
    row.queue = "mail".into();
    let id = jobs.insert(vec![row]).await.unwrap()[0].id;
    run_until_empty(server(store, mailer.clone()))
        .await
        .unwrap();
    assert_eq!(detail(&jobs, id).await.job.state, JobState::Succeeded);
    assert_eq!(mailer.sent.load(Ordering::SeqCst), 77);
}

#[tokio::test(start_paused = true)]
async fn an_error_returned_by_the_job_is_recorded() {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    let id = Failing::enqueue(&jobs, "smtp is down".into())
        .await
        .unwrap();
    run_until_empty(server(store, mailer())).await.unwrap();
    let detail = detail(&jobs, id).await;
    assert_eq!(detail.job.state, JobState::Failed);
    assert_eq!(detail.job.last_error.as_deref(), Some("smtp is down"));
}

#[tokio::test(start_paused = true)]
async fn a_server_without_a_requested_resource_does_not_start() {
    let started = Server::builder(MemoryStore::new())
        .queues(["default", "mail", "billing"])
        .start()
        .await;
    let Err(error) = started else {
        panic!("the server needs a Mailer")
    };
    let message = error.to_string();
    assert!(message.contains("Mailer"), "{message}");
    assert!(message.contains("mail.welcome"), "{message}");
}

#[job]
async fn total_by_pair(pairs: std::collections::HashMap<(i32, i32), i64>) -> anyhow::Result<()> {
    let _ = pairs;
    Ok(())
}

/// Arguments are serialized straight into the serializer, field by field, and
/// an argument that cannot be stored is named in the error.
#[test]
fn an_argument_that_fails_to_serialize_is_named_in_the_error() {
    let stored = serde_json::to_value(TotalByPair {
        pairs: Default::default(),
    })
    .unwrap();
    assert_eq!(stored, serde_json::json!({ "pairs": {} }));

    let pairs = [((1, 2), 3)].into_iter().collect();
    let error = serde_json::to_string(&TotalByPair { pairs }).unwrap_err();
    assert_eq!(error.to_string(), "argument `pairs`: key must be a string");
}

#[job]
async fn scale_readings(factor: f64, label: String) -> anyhow::Result<()> {
    let _ = (factor, label);
    Ok(())
}

/// A type whose `Serialize` and `Deserialize` disagree: its stored form
/// lacks the field that decoding requires.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sensor {
    id: i64,
    #[serde(skip_serializing)]
    calibration: f64,
}

#[job]
async fn read_sensor(sensor: Sensor) -> anyhow::Result<()> {
    let _ = (sensor.id, sensor.calibration);
    Ok(())
}

/// An argument that serializes into something that never decodes back (a
/// NaN is stored as JSON `null`) is refused at enqueue, naming the job and
/// the argument, and nothing is stored; before, it was stored and failed
/// every attempt.
#[tokio::test(start_paused = true)]
async fn an_argument_that_would_not_decode_back_is_refused_at_enqueue_naming_it() {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    for factor in [f64::NAN, f64::INFINITY] {
        let error = ScaleReadings::enqueue(&jobs, factor, "lab".into())
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                jobs::Error::RoundTrip {
                    job: "scale_readings",
                    ..
                }
            ),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains("job `scale_readings`"), "{message}");
        assert!(message.contains("argument `factor`"), "{message}");
        assert!(message.contains("stored as `null`"), "{message}");
    }
    let error = ReadSensor::new(Sensor {
        id: 3,
        calibration: 1.5,
    })
    .into_new_job()
    .unwrap_err()
    .to_string();
    assert!(error.contains("job `read_sensor`"), "{error}");
    assert!(
        error.contains("argument `sensor`: missing field `calibration`"),
        "{error}"
    );
    assert!(
        jobs.counts().await.unwrap().is_empty(),
        "nothing was stored"
    );

    // Finite values are stored and run as before.
    let id = ScaleReadings::enqueue(&jobs, 0.5, "lab".into())
        .await
        .unwrap();
    let report = run_until_empty(server(store, mailer())).await.unwrap();
    assert_eq!(report.succeeded, 1);
    assert_eq!(detail(&jobs, id).await.job.state, JobState::Succeeded);
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct IssuedInvoice {
    number: String,
    total_cents: i64,
}

/// Returns its output: a typed value stored with the job.
#[job(queue = "billing")]
async fn issue_invoice(order_id: i64) -> anyhow::Result<IssuedInvoice> {
    Ok(IssuedInvoice {
        number: format!("INV-{order_id}"),
        total_cents: order_id * 100,
    })
}

/// Returns an output larger than the server allows.
#[job(queue = "billing", max_attempts = 1)]
async fn export_everything(rows: usize) -> Result<Vec<u8>, std::io::Error> {
    Ok(vec![7; rows])
}

#[tokio::test(start_paused = true)]
async fn a_job_s_output_is_stored_and_read_back_typed() {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    let id = IssueInvoice::enqueue(&jobs, 12).await.unwrap();
    assert_eq!(jobs.output::<IssueInvoice>(id).await.unwrap(), None);
    let unit = SendAccountConfirmationEmail::enqueue(&jobs, 3)
        .await
        .unwrap();
    run_until_empty(server(store.clone(), mailer()))
        .await
        .unwrap();
    assert_eq!(
        jobs.output::<IssueInvoice>(id).await.unwrap(),
        Some(IssuedInvoice {
            number: "INV-12".to_owned(),
            total_cents: 1200
        })
    );
    assert_eq!(
        detail(&jobs, id).await.job.output,
        Some(serde_json::json!({ "number": "INV-12", "total_cents": 1200 }))
    );
    // `()` stores nothing: there is no output to read.
    assert_eq!(detail(&jobs, unit).await.job.state, JobState::Succeeded);
    assert_eq!(
        jobs.output::<SendAccountConfirmationEmail>(unit)
            .await
            .unwrap(),
        None
    );
    assert_eq!(detail(&jobs, unit).await.job.output, None);
    // Asked as another job's output: a clear error, not a decoding error.
    let error = jobs
        .output::<IssueInvoice>(unit)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("is a `send_account_confirmation_email` job, not a `issue_invoice` job"),
        "{error}"
    );
    let missing = jobs
        .output::<IssueInvoice>(jobs::JobId(999_999))
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("does not exist"), "{missing}");
}

#[tokio::test(start_paused = true)]
async fn an_output_over_the_limit_fails_the_attempt_with_its_size() {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    let small = ExportEverything::enqueue(&jobs, 10).await.unwrap();
    let big = ExportEverything::enqueue(&jobs, 1000).await.unwrap();
    run_until_empty(server(store, mailer()).max_output_bytes(512))
        .await
        .unwrap();
    assert_eq!(
        jobs.output::<ExportEverything>(small).await.unwrap(),
        Some(vec![7; 10])
    );
    let failed = detail(&jobs, big).await.job;
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.output, None);
    let error = failed.last_error.unwrap_or_default();
    // 1000 sevens and their commas, in brackets.
    assert!(
        error.contains("the job's output is 2001 bytes as JSON, over the limit of 512 bytes"),
        "{error}"
    );
}

/// What `mail_issued_invoice` received.
static MAILED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Runs on `issue_invoice`'s output.
#[job(queue = "billing")]
async fn mail_issued_invoice(invoice: IssuedInvoice) -> anyhow::Result<()> {
    MAILED.lock().unwrap().push(invoice.number);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_typed_continuation_runs_on_its_parent_s_output() {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    let issue = IssueInvoice::enqueue(&jobs, 31).await.unwrap();
    let mail = MailIssuedInvoice::after_output_of::<IssueInvoice>(issue)
        .priority(3)
        .enqueue(&jobs)
        .await
        .unwrap();
    let waiting = detail(&jobs, mail).await.job;
    assert_eq!(waiting.state, JobState::Awaiting);
    assert_eq!(waiting.priority, 3);
    run_until_empty(server(store, mailer())).await.unwrap();
    assert_eq!(detail(&jobs, mail).await.job.state, JobState::Succeeded);
    assert_eq!(*MAILED.lock().unwrap(), ["INV-31"]);
}
