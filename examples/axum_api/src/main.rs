//! An axum API on PostgreSQL with the job server in the same process.
//!
//! - `POST /signup {"email": "..."}` inserts a user and enqueues
//!   `send_account_confirmation_email(user_id)` in the same transaction, then
//!   returns at once: if the insert rolls back, the job never existed.
//! - A daily recurring job, `invalidate-invoices`, marks offers older than 14
//!   days that were not accepted as invalid, through an injected pool. It is
//!   registered with `jobs.recurring().add_or_update` at every start (idempotent).
//! - `GET /jobs/{id}` shows a job's state and history as JSON.
//! - `/jobs`: the jobs dashboard (see `dashboard.rs`), behind basic auth
//!   when `JOBS_DASHBOARD_USER` and `JOBS_DASHBOARD_PASSWORD` are both set,
//!   else local-only (loopback peers); with only one of them set the
//!   process refuses to start. Its pages are static paths (`/jobs/queues`,
//!   `/jobs/jobs/5`), which axum prefers to `/jobs/{id}`: both live there.
//! - `GET /metrics`: the jobs' metrics for Prometheus (`JOBS_METRICS=stdout`
//!   prints them instead; `JOBS_TRACES=stdout` prints the traces, in which a
//!   signup and the run of its job are one trace). See `telemetry.rs`.
//! - `GET /health/ready` is 200 while the job server is healthy and 503 with
//!   the reason when not (the store unreachable, say); `GET /health/live` is
//!   200 always (see `health.rs`).
//! - Ctrl-c or SIGTERM (what a container runtime sends) stops the HTTP
//!   server, then the job server, gracefully.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run -p example-axum_api
//! curl -s localhost:3000/signup -H 'content-type: application/json' -d '{"email":"ada@example.com"}'
//! curl -s localhost:3000/jobs/1
//! curl -si localhost:3000/health/ready
//! # the dashboard: open http://127.0.0.1:3000/jobs (local-only), or
//! JOBS_DASHBOARD_USER=admin JOBS_DASHBOARD_PASSWORD=... DATABASE_URL=... cargo run -p example-axum_api
//! ```

mod dashboard;
mod health;
mod telemetry;

use std::net::SocketAddr;

use axum::extract::{Path, State as AppState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jobs::postgres::{EnqueueIn, PgStore};
use jobs::{job, Cron, HealthProbe, JobId, Jobs, Server, State};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// Mails the confirmation link to a new user (here: logs it).
#[job]
async fn send_account_confirmation_email(user_id: i64, db: State<PgPool>) -> anyhow::Result<()> {
    let email: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(&*db)
        .await?;
    tracing::info!(user_id, %email, "sending the account confirmation mail");
    Ok(())
}

/// Marks offers older than 14 days that were not accepted as invalid.
#[job(queue = "maintenance", max_attempts = 3)]
async fn invalidate_invoices(db: State<PgPool>) -> anyhow::Result<()> {
    let done = sqlx::query(
        "UPDATE offers SET is_valid = false
         WHERE is_valid AND NOT accepted AND created_at < now() - interval '14 days'",
    )
    .execute(&*db)
    .await?;
    tracing::info!(invalidated = done.rows_affected(), "invalidated old offers");
    Ok(())
}

/// What the handlers share.
#[derive(Clone)]
struct App {
    pool: PgPool,
    jobs: Jobs,
}

#[derive(Deserialize)]
struct Signup {
    email: String,
}

#[derive(Serialize)]
struct SignedUp {
    user_id: i64,
    confirmation_job: JobId,
}

/// Resolves on ctrl-c, or on SIGTERM, which container runtimes and
/// process managers send to stop a process before they kill it.
async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// In a span of its own: the enqueue inside it, and the job's run, join its trace.
#[tracing::instrument(skip_all)]
async fn signup(
    AppState(app): AppState<App>,
    Json(body): Json<Signup>,
) -> Result<Json<SignedUp>, AppError> {
    let mut tx = app.pool.begin().await?;
    let user_id: i64 = sqlx::query_scalar("INSERT INTO users (email) VALUES ($1) RETURNING id")
        .bind(&body.email)
        .fetch_one(&mut *tx)
        .await?;
    // The job is part of the transaction: no user, no mail; no mail lost.
    let confirmation_job = SendAccountConfirmationEmail::new(user_id)
        .enqueue_in(&app.jobs, &mut tx)
        .await?;
    tx.commit().await?;
    Ok(Json(SignedUp {
        user_id,
        confirmation_job,
    }))
}

#[derive(Serialize)]
struct JobView {
    id: JobId,
    name: String,
    state: String,
    attempt: i32,
    args: serde_json::Value,
    history: Vec<String>,
}

async fn show_job(AppState(app): AppState<App>, Path(id): Path<i64>) -> Result<Response, AppError> {
    let Some(detail) = app.jobs.get(JobId(id)).await? else {
        return Ok((StatusCode::NOT_FOUND, "no such job").into_response());
    };
    let history = detail
        .history
        .iter()
        .map(|e| match &e.error {
            Some(error) => format!("{} {} ({error})", e.at, e.state),
            None => format!("{} {}", e.at, e.state),
        })
        .collect();
    Ok(Json(JobView {
        id: detail.job.id,
        name: detail.job.name,
        state: detail.job.state.to_string(),
        attempt: detail.job.attempt,
        args: detail.job.args,
        history,
    })
    .into_response())
}

/// Any error becomes a 500 with its message (an example; hide details in production).
struct AppError(anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for AppError {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, format!("{:#}", self.0)).into_response()
    }
}

/// The application's routes: its API, the health probes, the dashboard.
fn routes(app: App, probe: HealthProbe, dashboard: &dashboard::Mode) -> Router {
    let jobs = app.jobs.clone();
    Router::new()
        .route("/signup", post(signup))
        .route("/jobs/{id}", get(show_job))
        .with_state(app)
        .merge(health::routes(probe))
        .merge(dashboard::routes(jobs, dashboard))
}

/// The application's own tables.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id bigserial PRIMARY KEY,
    email text NOT NULL
);
CREATE TABLE IF NOT EXISTS offers (
    id bigserial PRIMARY KEY,
    accepted boolean NOT NULL DEFAULT false,
    is_valid boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = telemetry::init()?;
    // Before anything else: a half-configured dashboard stops the start.
    let dashboard_mode = dashboard::Mode::from_env()?;
    let database_url = std::env::var("DATABASE_URL").map_err(|_| {
        anyhow::anyhow!("set DATABASE_URL, e.g. postgres://postgres@127.0.0.1:5432/test")
    })?;
    let address = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());

    // One pool for the app and its jobs, with the store's settings (no ping
    // before every statement); its connections are named in pg_stat_activity.
    let pool = PgStore::pool_options()
        .max_connections(20)
        .connect_with(PgStore::connect_options(&database_url)?.application_name("axum_api"))
        .await?;
    sqlx::raw_sql(SCHEMA).execute(&pool).await?;
    // The job tables live in their own schema ("jobs"), migrated here.
    let store = PgStore::from_pool(pool.clone()).await?;
    let jobs = Jobs::new(store.clone());

    // Called at every start: creates the schedule, or updates it if it changed.
    jobs.recurring()
        .add_or_update(
            "invalidate-invoices",
            Cron::daily(),
            InvalidateInvoices::new(),
        )
        .await?;

    let server = Server::builder(store.clone())
        .queues(["default", "maintenance"])
        .state(pool.clone())
        .start()
        .await?;

    let app = App { pool, jobs };
    let mut router = routes(app, server.health_probe(), &dashboard_mode);
    if let Some(registry) = telemetry.registry.clone() {
        router = router.merge(
            Router::new()
                .route("/metrics", get(telemetry::metrics))
                .with_state(registry),
        );
    }
    let listener = tokio::net::TcpListener::bind(&address).await?;
    tracing::info!("listening on http://{address}");
    tracing::info!(
        mode = %dashboard_mode.describe(),
        url = %format!("http://{address}{}", dashboard::MOUNT),
        "jobs dashboard mounted"
    );
    if dashboard_mode == dashboard::Mode::LocalOnly
        && address
            .parse::<SocketAddr>()
            .is_ok_and(|a| !a.ip().is_loopback())
    {
        tracing::warn!(
            "the dashboard is local-only: requests from other hosts get 403; set \
             JOBS_DASHBOARD_USER and JOBS_DASHBOARD_PASSWORD for basic auth"
        );
    }
    // With connect info: local-only reads the TCP peer's address.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop_requested())
    .await?;

    tracing::info!("HTTP server stopped; stopping the job server");
    server.shutdown().await;
    telemetry.shutdown();
    Ok(())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    use jobs::{Jobs, MemoryStore, Server};
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn the_api_and_the_dashboard_share_jobs_without_clashing() {
        // No database: the pool connects on first use, which never comes.
        let pool = sqlx::PgPool::connect_lazy("postgres://127.0.0.1:1/none").unwrap();
        let jobs = Jobs::new(MemoryStore::new());
        let server = Server::builder(MemoryStore::new())
            .queues(["routes_test"])
            .start()
            .await
            .unwrap();
        let mode = dashboard::Mode::from_vars(Some("admin".into()), Some("s3cret".into())).unwrap();
        let router = routes(App { pool, jobs }, server.health_probe(), &mode);
        let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();

        // The JSON view of a job, as before, without the dashboard's auth.
        let response = router.clone().oneshot(get("/jobs/1")).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "no such job");
        // The dashboard's pages, behind basic auth.
        for path in ["/jobs", "/jobs/queues", "/jobs/jobs", "/jobs/jobs/1"] {
            let response = router.clone().oneshot(get(path)).await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
            assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        }
        let response = router.clone().oneshot(get("/health/live")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        server.shutdown().await;
    }
}
