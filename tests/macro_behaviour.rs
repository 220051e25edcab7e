//! What `#[job]` generates, exercised through the registry: the stored
//! arguments, the options, the runner's injection and its errors.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobs::{job, Backoff, Job, JobContext, State};

static LAST_USER: AtomicI64 = AtomicI64::new(0);

/// Sends the mail.
#[job(queue = "mail", max_attempts = 5, priority = -3, timeout = "1m30s", backoff = fixed("5s"))]
async fn send_account_confirmation_email(user_id: i64, ctx: JobContext) -> anyhow::Result<()> {
    assert_eq!(ctx.name(), "send_account_confirmation_email");
    LAST_USER.store(user_id, Ordering::SeqCst);
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

#[job]
async fn failing(reason: String) -> Result<(), String> {
    Err(reason)
}

fn registration(name: &str) -> &'static jobs::__private::JobRegistration {
    jobs::__private::registered_jobs()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("job `{name}` is not registered"))
}

#[test]
fn names_and_options_come_from_the_attribute() {
    assert_eq!(SendAccountConfirmationEmail::NAME, "send_account_confirmation_email");
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
    assert_eq!(row.args, serde_json::json!({ "user_id": 1, "nickname": "ann" }));
}
