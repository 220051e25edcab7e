//! The dashboard's handlers on PostgreSQL, through the router (`oneshot`):
//! the pages render from a `PgStore`, hostile text stays text, each action
//! changes the stored jobs (run now too), the arguments filter and the
//! oldest due job come from its statements, read-only is refused, an
//! unknown id is a 404.
//! The same cases on `MemoryStore`, and the rest of the matrix, are in
//! `jobs-dashboard/tests/dashboard.rs`. Each test has its own schema.

#![cfg(all(feature = "postgres", feature = "dashboard"))]

mod pg_support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use jobs::dashboard::{Access, Dashboard};
use jobs::{job, Cron, JobId, JobState, Jobs, ListJobs, NewJob, Request as JobRequest, Server};
use pg_support::{eventually, TestSchema};
use tower::ServiceExt;

/// Fails for good at once, with its argument in the error.
#[job(queue = "pg_dashboard_hostile", max_attempts = 1)]
async fn pg_dashboard_explode(text: String) -> anyhow::Result<()> {
    anyhow::bail!("it broke: {text}")
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn post(uri: &str, form: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body(Body::from(form.to_owned()))
        .unwrap()
}

async fn send(app: &Router, request: Request<Body>) -> Response {
    app.clone().oneshot(request).await.unwrap()
}

async fn text(response: Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

async fn state(jobs: &Jobs, id: JobId) -> JobState {
    jobs.get(id).await.unwrap().unwrap().job.state
}

/// A failed job with hostile args and error, and three waiting jobs in `mail`.
async fn seeded(schema: &TestSchema) -> (Jobs, JobId) {
    let store = schema.store(&format!("{}_dash", schema.name)).await;
    let jobs = Jobs::new(store.clone());
    let failed = PgDashboardExplode::enqueue(&jobs, "<script>alert(1)</script>".to_owned())
        .await
        .unwrap();
    let server = Server::builder(store)
        .queues(["pg_dashboard_hostile"])
        .start()
        .await
        .unwrap();
    eventually("the job to fail", Duration::from_secs(30), || {
        let jobs = jobs.clone();
        async move { (state(&jobs, failed).await == JobState::Failed).then_some(()) }
    })
    .await;
    server.shutdown().await;
    for user in 1..=3 {
        let mut job = NewJob::new("send_mail", serde_json::json!({ "user_id": user }));
        job.queue = "mail".to_owned();
        jobs.insert(vec![job]).await.unwrap();
    }
    (jobs, failed)
}

fn full(jobs: Jobs) -> Router {
    let dashboard = Dashboard::builder(jobs)
        .authorize(|_: &axum::http::request::Parts| async { Access::Full.user("tester") })
        .router();
    Router::new().nest("/admin/jobs", dashboard)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_from_postgres_and_escape_hostile_text() {
    let schema = TestSchema::new().await;
    let (jobs, failed) = seeded(&schema).await;
    let app = full(jobs);
    for uri in [
        "/admin/jobs".to_owned(),
        "/admin/jobs/jobs?state=failed".to_owned(),
        format!("/admin/jobs/jobs/{}", failed.0),
        "/admin/jobs/recurring".to_owned(),
        "/admin/jobs/servers".to_owned(),
    ] {
        let response = send(&app, get(&uri)).await;
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        assert!(response
            .headers()
            .contains_key(header::CONTENT_SECURITY_POLICY));
        let body = text(response).await;
        assert!(
            !body.contains("<script>alert"),
            "{uri} let a script through"
        );
    }
    let page = text(send(&app, get(&format!("/admin/jobs/jobs/{}", failed.0))).await).await;
    assert!(page.contains("it broke: &#60;script&#62;"), "{page}");
    let response = send(&app, get("/admin/jobs/jobs/987654321")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_change_the_jobs_in_postgres() {
    let schema = TestSchema::new().await;
    let (jobs, failed) = seeded(&schema).await;
    let app = full(jobs.clone());
    let mail: Vec<JobId> = jobs
        .list(ListJobs::new().queue("mail"))
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();

    let response = send(
        &app,
        post(&format!("/admin/jobs/jobs/{}/retry", failed.0), ""),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(state(&jobs, failed).await, JobState::Enqueued);

    send(
        &app,
        post(&format!("/admin/jobs/jobs/{}/cancel", mail[0].0), ""),
    )
    .await;
    assert_eq!(state(&jobs, mail[0]).await, JobState::Cancelled);
    let form = format!("do=delete-selected&id={}", mail[1].0);
    send(&app, post("/admin/jobs/jobs/bulk", &form)).await;
    assert_eq!(state(&jobs, mail[1]).await, JobState::Deleted);

    // Every enqueued job in `mail`, by filter, in one store call.
    let response = send(
        &app,
        post(
            "/admin/jobs/jobs/bulk",
            "do=cancel-matching&queue=mail&state=enqueued",
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(state(&jobs, mail[2]).await, JobState::Cancelled);

    jobs.recurring()
        .add_or_update(
            "pg-nightly",
            Cron::daily(),
            JobRequest::new(PgDashboardExplode { text: "x".into() }),
        )
        .await
        .unwrap();
    send(
        &app,
        post("/admin/jobs/recurring/action", "id=pg-nightly&action=pause"),
    )
    .await;
    assert!(jobs.recurring().list().await.unwrap()[0].paused);
    send(
        &app,
        post(
            "/admin/jobs/recurring/action",
            "id=pg-nightly&action=remove",
        ),
    )
    .await;
    assert!(jobs.recurring().list().await.unwrap().is_empty());
    schema.drop().await;
}

/// A job of `send_mail` in `mail`, an hour away.
async fn delayed(jobs: &Jobs) -> JobId {
    let mut job = NewJob::new("send_mail", serde_json::json!({ "user_id": 9 }));
    job.queue = "mail".to_owned();
    job.run_at = jobs::RunAt::After(Duration::from_secs(3600));
    jobs.insert(vec![job]).await.unwrap()[0].id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_now_arguments_filter_and_oldest_due_job_on_postgres() {
    let schema = TestSchema::new().await;
    let (jobs, _) = seeded(&schema).await;
    let app = full(jobs.clone());
    // Newest first: users 3, 2, 1.
    let mail: Vec<JobId> = jobs
        .list(ListJobs::new().queue("mail"))
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    let link = |id: JobId| format!("\"./jobs/{}\"", id.0);

    // {"user_id":2}, and the same with the state.
    let user_2 = "%7B%22user_id%22%3A2%7D";
    for uri in [
        format!("/admin/jobs/jobs?args={user_2}"),
        format!("/admin/jobs/jobs?state=enqueued&queue=mail&args={user_2}"),
    ] {
        let body = text(send(&app, get(&uri)).await).await;
        assert!(body.contains(&link(mail[1])), "{uri}: {body}");
        assert!(!body.contains(&link(mail[0])) && !body.contains(&link(mail[2])));
    }
    let body = text(
        send(
            &app,
            get(&format!("/admin/jobs/jobs?state=failed&args={user_2}")),
        )
        .await,
    )
    .await;
    assert!(body.contains("No jobs match."), "{body}");
    let response = send(&app, get("/admin/jobs/jobs?args=%5B2%5D")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Cancel all matching {"user_id":1}: one statement, one job.
    let form = "do=cancel-matching&queue=mail&args=%7B%22user_id%22%3A1%7D";
    let response = send(&app, post("/admin/jobs/jobs/bulk", form)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(state(&jobs, mail[2]).await, JobState::Cancelled);
    assert_eq!(state(&jobs, mail[1]).await, JobState::Enqueued);
    assert_eq!(state(&jobs, mail[0]).await, JobState::Enqueued);

    // The oldest due job of `mail` is now user 2's.
    let oldest = jobs.get(mail[1]).await.unwrap().unwrap().job.run_at;
    let utc = oldest.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    for uri in ["/admin/jobs", "/admin/jobs/queues"] {
        let body = text(send(&app, get(uri)).await).await;
        assert!(
            body.contains(&format!("<time>{utc}</time> (")),
            "{uri}: {body}"
        );
    }

    // Run now: one job from its page, the others by filter.
    let [a, b, c] = [
        delayed(&jobs).await,
        delayed(&jobs).await,
        delayed(&jobs).await,
    ];
    let response = send(&app, post(&format!("/admin/jobs/jobs/{}/run_now", a.0), "")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(state(&jobs, a).await, JobState::Enqueued);
    let form = "do=run_now-matching&queue=mail&state=scheduled";
    let response = send(&app, post("/admin/jobs/jobs/bulk", form)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    assert!(location.contains("notice=ran_now&count=2"), "{location}");
    assert_eq!(state(&jobs, b).await, JobState::Enqueued);
    assert_eq!(state(&jobs, c).await, JobState::Enqueued);
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_is_refused_on_postgres_too() {
    let schema = TestSchema::new().await;
    let (jobs, failed) = seeded(&schema).await;
    let app = Dashboard::builder(jobs.clone())
        .authorize(|_: &axum::http::request::Parts| async { Access::ReadOnly })
        .router();
    assert_eq!(send(&app, get("/")).await.status(), StatusCode::OK);
    for (uri, form) in [
        (format!("/jobs/{}/retry", failed.0), String::new()),
        (
            "/jobs/bulk".to_owned(),
            "do=retry-matching&state=failed".to_owned(),
        ),
    ] {
        assert_eq!(
            send(&app, post(&uri, &form)).await.status(),
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(state(&jobs, failed).await, JobState::Failed);
    schema.drop().await;
}
