//! The dashboard on the in-memory store, with no set-up: jobs in every
//! state, a job that keeps failing, a recurring entry, a batch and a long
//! job that reports its progress. Run `cargo run -p example-dashboard` and open
//! <http://127.0.0.1:3000/jobs>.
//!
//! It is local-only, as a development dashboard should be: requests from
//! another machine are refused, and so is every request when the peer
//! address is unknown.

use std::net::SocketAddr;
use std::time::Duration;

use axum::response::Redirect;
use axum::routing::get;
use axum::Router;
use jobs::dashboard::Dashboard;
use jobs::{job, Cron, JobContext, Jobs, MemoryStore, NewBatch, NewJob, Request, Server};

/// Succeeds at once.
#[job]
async fn send_welcome_mail(user_id: i64) -> anyhow::Result<()> {
    println!("welcome, user {user_id}");
    Ok(())
}

/// Fails every attempt, so that it ends `failed` with its errors in the history.
#[job(queue = "payments", max_attempts = 3, backoff = exponential("2s", "5s"))]
async fn charge_card(order_id: i64, ctx: JobContext) -> anyhow::Result<()> {
    anyhow::bail!(
        "card declined for order {order_id} (attempt {} of {})",
        ctx.attempt(),
        ctx.max_attempts()
    )
}

/// A long job that reports how far it came, for the job page's progress bar.
#[job(queue = "reports", timeout = "30m")]
async fn export_report(report_id: i64, ctx: JobContext) -> anyhow::Result<()> {
    for step in 0..=600u32 {
        if ctx.is_cancelled() {
            return Ok(());
        }
        ctx.set_progress_with(
            (step / 6) as u8,
            format!("report {report_id}: row {}", step * 1000),
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

/// What the recurring entry enqueues every minute.
#[job(queue = "maintenance")]
async fn invalidate_offers() -> anyhow::Result<()> {
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    seed(&jobs).await?;

    let server = Server::builder(store)
        .queues(["default", "payments", "reports", "maintenance"])
        .concurrency(4)
        .start()
        .await?;

    let dashboard = Dashboard::builder(jobs).local_only().router();
    let app = Router::new()
        .route("/", get(|| async { Redirect::to("/jobs") }))
        .nest("/jobs", dashboard);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("the dashboard is at http://127.0.0.1:3000/jobs (Ctrl-C to stop)");
    // Local-only reads the TCP peer's address: serve with connect info.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    server.shutdown().await;
    Ok(())
}

/// Jobs in every state once the server has run a little.
async fn seed(jobs: &Jobs) -> anyhow::Result<()> {
    for user_id in 1..=5 {
        SendWelcomeMail::enqueue(jobs, user_id).await?; // succeeded soon
    }
    ChargeCard::enqueue(jobs, 4711).await?; // failed after three attempts
    ExportReport::enqueue(jobs, 12).await?; // processing, with progress
    SendWelcomeMail::new(6)
        .delay(Duration::from_secs(3600))
        .enqueue(jobs)
        .await?; // scheduled

    let cancelled = SendWelcomeMail::new(7)
        .delay(Duration::from_secs(60))
        .enqueue(jobs)
        .await?;
    jobs.cancel(cancelled).await?;
    let deleted = SendWelcomeMail::new(8)
        .delay(Duration::from_secs(60))
        .enqueue(jobs)
        .await?;
    jobs.delete(deleted).await?;

    // A batch: two mails that succeed and one charge that fails, so its
    // callback on success is cancelled; the Batches page shows it.
    let batch = NewBatch::new()
        .members((9..=10).map(SendWelcomeMail::new))
        .member(ChargeCard::new(4712))
        .on_success(SendWelcomeMail::new(11));
    jobs.batches().enqueue(batch).await?;

    // Enqueued for a queue no server serves: the overview shows it stranded.
    let mut stranded = NewJob::new("resize_image", serde_json::json!({ "image_id": 99 }));
    stranded.queue = "images".to_owned();
    jobs.insert(vec![stranded]).await?;

    jobs.recurring()
        .add_or_update(
            "invalidate-offers",
            Cron::minutely(),
            Request::new(InvalidateOffers {}),
        )
        .await?;
    Ok(())
}
