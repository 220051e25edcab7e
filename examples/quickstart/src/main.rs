//! The quickstart: three jobs on the in-memory store, no set-up.
//!
//! A fire-and-forget job, a job delayed by two seconds, and a job that fails
//! twice before it succeeds (retried after a one-second backoff). The program
//! prints each job's states as they change and exits by itself once all three
//! have finished, or at ctrl-c, shutting the server down gracefully.
//!
//! ```sh
//! cargo run -p example-quickstart
//! ```

use std::collections::HashMap;
use std::time::Duration;

use jobs::{job, JobContext, JobId, JobState, Jobs, MemoryStore, Server};

/// Mails the account confirmation link (here: prints it).
#[job]
async fn send_account_confirmation_email(user_id: i64) -> anyhow::Result<()> {
    println!("    [job] mailing the confirmation link to user {user_id}");
    Ok(())
}

/// Reminds a user of something, later.
#[job(queue = "default", priority = 1)]
async fn send_reminder(user_id: i64, text: String) -> anyhow::Result<()> {
    println!("    [job] reminding user {user_id}: {text}");
    Ok(())
}

/// Pushes an account to a CRM that is down for the first two attempts.
#[job(max_attempts = 5, backoff = fixed("1s"))]
async fn sync_account_with_crm(account: String, ctx: JobContext) -> anyhow::Result<()> {
    let attempt = ctx.attempt();
    if attempt <= 2 {
        println!("    [job] attempt {attempt} to sync `{account}`: the CRM does not answer");
        anyhow::bail!("the CRM did not answer (attempt {attempt})");
    }
    println!("    [job] attempt {attempt} to sync `{account}`: done");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .init();

    // The embedded store: nothing to set up, nothing kept after exit.
    // In production: `jobs::postgres::PgStore::connect(&database_url).await?`.
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    let server = Server::builder(store).concurrency(4).start().await?;
    println!("server {} started", server.id());

    let mail = SendAccountConfirmationEmail::enqueue(&jobs, 9).await?;
    let reminder = SendReminder::new(9, "finish your profile".to_owned())
        .delay(Duration::from_secs(2))
        .enqueue(&jobs)
        .await?;
    let sync = SyncAccountWithCrm::enqueue(&jobs, "acme".to_owned()).await?;
    println!("enqueued: mail #{mail}, reminder #{reminder} (in 2 s), CRM sync #{sync}");

    let watched = [(mail, "mail"), (reminder, "reminder"), (sync, "CRM sync")];
    let finished = tokio::select! {
        result = watch(&jobs, &watched) => { result?; true }
        _ = tokio::signal::ctrl_c() => false,
    };
    if !finished {
        println!("ctrl-c: shutting down, unfinished jobs are handed back");
    }
    server.shutdown().await;

    if let Some(detail) = jobs.get(sync).await? {
        println!("history of the CRM sync #{sync}:");
        for event in detail.history {
            let error = event.error.map(|e| format!(" ({e})")).unwrap_or_default();
            println!(
                "  {}  {:<10} attempt {}{error}",
                event.at.format("%H:%M:%S%.3f"),
                event.state.to_string(),
                event.attempt
            );
        }
    }
    println!("server stopped");
    Ok(())
}

/// Prints each job's state whenever it changes, until all have finished.
async fn watch(jobs: &Jobs, watched: &[(JobId, &str)]) -> anyhow::Result<()> {
    let mut seen: HashMap<JobId, (JobState, i32)> = HashMap::new();
    loop {
        let mut all_finished = true;
        for &(id, label) in watched {
            let Some(detail) = jobs.get(id).await? else {
                anyhow::bail!("job #{id} vanished");
            };
            let now = (detail.job.state, detail.job.attempt);
            if seen.insert(id, now) != Some(now) {
                println!("{label} #{id}: {} (attempt {})", now.0, now.1);
            }
            all_finished &= now.0.is_finished();
        }
        if all_finished {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
