//! The dashboard in a real browser: headless Chromium driven over WebDriver
//! (fantoccini) against Debian's `chromedriver`, the dashboard served on a
//! real listener over a `MemoryStore`. Every page loads, a failed job is
//! retried and moves, rows are bulk-deleted, a queue is paused and resumed,
//! a count changes by polling, and the browser reports no
//! Content-Security-Policy violation.
//!
//! Without `chromedriver` the test skips with a message, except in CI (`CI`
//! set), where a missing browser is a failure. Screenshots go to
//! `target/dashboard-screenshots/`.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{header, HeaderValue};
use axum::routing::{get, post};
use axum::Router;
use fantoccini::{Client, ClientBuilder, Locator};
use jobs::testing::run_until_empty;
use jobs::{job, JobState, Jobs, MemoryStore, NewJob, Server};
use jobs_dashboard::Dashboard;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Fails at once and for good.
#[job(queue = "hostile", max_attempts = 1)]
async fn explode(text: String) -> anyhow::Result<()> {
    anyhow::bail!("it broke: {text}")
}

/// Kills chromedriver when the test ends, however it ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let dir = target.join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The reports the browser sent to the test's CSP report endpoint.
type Reports = Arc<Mutex<Vec<String>>>;

/// The dashboard at `/jobs`, its CSP extended by a `report-uri` to the
/// test's endpoint (the policy itself is unchanged), and `/canary`: a page
/// under the same policy with an inline script, which must be reported, so
/// that the test knows reports arrive.
fn app(jobs: Jobs, reports: Reports) -> Router {
    let dashboard = Dashboard::builder(jobs).local_only().router();
    let canary = || async {
        (
            [(header::CONTENT_TYPE, "text/html")],
            "<!doctype html><title>canary</title><script>document.title = 'ran'</script>",
        )
    };
    Router::new()
        .nest("/jobs", dashboard)
        .route("/canary", get(canary))
        .route(
            "/csp-report",
            post(move |body: String| {
                let reports = reports.clone();
                async move {
                    reports.lock().unwrap().push(body);
                }
            }),
        )
        .layer(axum::middleware::map_response(
            |mut response: axum::response::Response| async move {
                let policy = response
                    .headers()
                    .get(header::CONTENT_SECURITY_POLICY)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
                    .unwrap_or_else(|| jobs_csp().to_owned());
                let policy = format!("{policy}; report-uri /csp-report");
                response.headers_mut().insert(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_str(&policy).unwrap(),
                );
                response
            },
        ))
}

/// The policy the canary page gets: the dashboard's own, as it sends it.
fn jobs_csp() -> &'static str {
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}

/// Waits, polling, until `check` holds in the page; fails after a minute
/// (a bound so a broken page ends the test, not a timing assertion).
async fn wait_until(browser: &Client, what: &str, check: &str) {
    for _ in 0..150 {
        let value = browser.execute(check, vec![]).await.unwrap();
        if value.as_bool() == Some(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let state = browser
        .execute(
            "return [document.visibilityState, document.body.dataset.refresh, \
             document.body.dataset.refreshed, document.body.innerText.slice(0, 400)]",
            vec![],
        )
        .await
        .unwrap();
    panic!("the page never showed {what}: {state}");
}

async fn body_text(browser: &Client) -> String {
    browser
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn click(browser: &Client, locator: Locator<'_>) {
    browser.find(locator).await.unwrap().click().await.unwrap();
}

/// Waits, bounded, until at least `n` CSP reports have arrived.
async fn wait_for_reports(reports: &Reports, n: usize) {
    for _ in 0..600 {
        if reports.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.unwrap();
    std::fs::write(screenshots_dir().join(name), png).unwrap();
}

async fn start_browser() -> Option<(Driver, Client)> {
    if !Path::new(CHROMEDRIVER).exists() {
        if std::env::var_os("CI").is_some() {
            panic!("{CHROMEDRIVER} is missing in CI: install chromium and chromium-driver");
        }
        eprintln!("skipped: {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)");
        return None;
    }
    let port = free_port();
    let driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,900"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let url = format!("http://127.0.0.1:{port}");
    // chromedriver takes a moment to listen: retry the session, bounded.
    for _ in 0..100 {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return Some((driver, client)),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    panic!("chromedriver on port {port} never accepted a session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_works_in_a_real_browser() {
    let Some((_driver, browser)) = start_browser().await else {
        return;
    };

    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    let failed = Explode::enqueue(&jobs, "<script>alert(1)</script>".to_owned())
        .await
        .unwrap();
    run_until_empty(Server::builder(store).queues(["hostile"]))
        .await
        .unwrap();
    let mut mail = Vec::new();
    for user in 1..=3 {
        let mut job = NewJob::new("send_mail", serde_json::json!({ "user_id": user }));
        job.queue = "mail".to_owned();
        mail.extend(jobs.insert(vec![job]).await.unwrap());
    }
    let photo = |n: u32| {
        let mut job = NewJob::new("resize_photo", serde_json::json!({ "photo": n }));
        job.queue = "photos".to_owned();
        job
    };
    let batch = jobs
        .store()
        .batch_insert(
            jobs::store::BatchInsertParams::new((1..=2).map(photo).collect())
                .callback(photo(0), jobs::ContinueOn::AnyEnd),
        )
        .await
        .unwrap();

    let reports: Reports = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let service =
        app(jobs.clone(), reports.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });

    // Reports arrive: the canary's inline script is refused and reported.
    browser.goto(&format!("{base}/canary")).await.unwrap();
    wait_for_reports(&reports, 1).await;
    assert_eq!(reports.lock().unwrap().len(), 1, "the canary was reported");
    assert_eq!(
        browser.title().await.unwrap(),
        "canary",
        "its script never ran"
    );

    // Every page loads, with its stylesheet applied and its script run.
    for (path, title) in [
        ("/jobs", "Overview · jobs"),
        ("/jobs/jobs", "Jobs · jobs"),
        ("/jobs/jobs?state=failed", "Jobs · jobs"),
        (
            &format!("/jobs/jobs/{}", failed.0) as &str,
            &format!("Job {} · jobs", failed.0) as &str,
        ),
        ("/jobs/recurring", "Recurring jobs · jobs"),
        ("/jobs/queues", "Queues · jobs"),
        ("/jobs/servers", "Servers · jobs"),
        ("/jobs/batches", "Batches · jobs"),
        (
            &format!("/jobs/batches/{}", batch.id) as &str,
            &format!("Batch {} · jobs", batch.id) as &str,
        ),
    ] {
        browser.goto(&format!("{base}{path}")).await.unwrap();
        assert_eq!(browser.title().await.unwrap(), title, "{path}");
        let styled = browser
            .execute(
                "return getComputedStyle(document.querySelector('header')).display === 'flex'",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            styled,
            serde_json::json!(true),
            "{path}: the stylesheet applies"
        );
    }
    browser.goto(&format!("{base}/jobs")).await.unwrap();
    screenshot(&browser, "overview.png").await;

    // A batch's page shows its progress; cancelling it cancels its jobs
    // and its callback.
    browser
        .goto(&format!("{base}/jobs/batches/{}", batch.id))
        .await
        .unwrap();
    let page = body_text(&browser).await;
    assert!(page.contains("0 of 2 jobs ended"), "{page}");
    screenshot(&browser, "batch.png").await;
    browser
        .execute("window.confirm = () => true", vec![])
        .await
        .unwrap();
    click(&browser, Locator::XPath("//button[text()='Cancel batch']")).await;
    wait_until(
        &browser,
        "the batch cancelled notice",
        "return document.body.innerText.includes('The batch was cancelled: 3 jobs')",
    )
    .await;
    let progress = jobs.batches().get(batch.id).await.unwrap().unwrap();
    assert_eq!((progress.pending, progress.cancelled), (0, 2));
    let page = body_text(&browser).await;
    assert!(page.contains("2 of 2 jobs ended"), "{page}");

    // The failed job's page shows the hostile text as text; retry moves it.
    browser
        .goto(&format!("{base}/jobs/jobs/{}", failed.0))
        .await
        .unwrap();
    let page = body_text(&browser).await;
    assert!(
        page.contains("it broke: <script>alert(1)</script>"),
        "{page}"
    );
    screenshot(&browser, "failed-job.png").await;
    click(&browser, Locator::XPath("//button[text()='Retry']")).await;
    wait_until(
        &browser,
        "the retried notice",
        "return document.body.innerText.includes('1 job retried.')",
    )
    .await;
    let state = browser
        .find(Locator::Css("h1 .state"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(state, "enqueued");
    assert_eq!(
        jobs.get(failed).await.unwrap().unwrap().job.state,
        JobState::Enqueued
    );

    // Bulk delete: select every row of queue `mail` (the script's box), delete.
    browser
        .goto(&format!("{base}/jobs/jobs?queue=mail"))
        .await
        .unwrap();
    click(&browser, Locator::Css("input.select-all")).await;
    // The script asks before deleting; answer yes.
    browser
        .execute("window.confirm = () => true", vec![])
        .await
        .unwrap();
    click(&browser, Locator::Css("button[value=delete-selected]")).await;
    wait_until(
        &browser,
        "the deleted notice",
        "return document.body.innerText.includes('3 jobs deleted.')",
    )
    .await;
    for id in &mail {
        assert_eq!(
            jobs.get(id.id).await.unwrap().unwrap().job.state,
            JobState::Deleted
        );
    }

    // Pause the queue `mail` from its row (the script asks first; the
    // answer is still yes), and see it marked paused.
    browser.goto(&format!("{base}/jobs/queues")).await.unwrap();
    browser
        .execute("window.confirm = () => true", vec![])
        .await
        .unwrap();
    click(
        &browser,
        Locator::XPath("//tr[th/a[text()='mail']]//button[@value='pause']"),
    )
    .await;
    wait_until(
        &browser,
        "the paused notice",
        "return document.body.innerText.includes('The queue was paused')",
    )
    .await;
    let row = browser
        .find(Locator::XPath("//tr[th/a[text()='mail']]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        row.contains("yes, since") && row.contains("Resume"),
        "{row}"
    );
    screenshot(&browser, "queues.png").await;
    let mail_queue = jobs.queues().list().await.unwrap();
    assert!(
        mail_queue.iter().any(|q| q.queue == "mail" && q.paused),
        "{mail_queue:?}"
    );
    click(
        &browser,
        Locator::XPath("//tr[th/a[text()='mail']]//button[@value='resume']"),
    )
    .await;
    wait_until(
        &browser,
        "the resumed notice",
        "return document.body.innerText.includes('The queue was resumed.')",
    )
    .await;

    // Polling: the overview at 2 s picks up a new job without a reload.
    browser
        .goto(&format!("{base}/jobs?refresh=2"))
        .await
        .unwrap();
    browser
        .execute("window.notReloaded = true", vec![])
        .await
        .unwrap();
    let before = browser
        .find(Locator::Css("#counts"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!before.contains("report"), "{before}");
    let mut job = NewJob::new("send_report", serde_json::json!({}));
    job.queue = "report".to_owned();
    jobs.insert(vec![job]).await.unwrap();
    wait_until(
        &browser,
        "the new queue in the counts",
        "return document.getElementById('counts').innerText.includes('report')",
    )
    .await;
    let kept = browser
        .execute("return window.notReloaded === true", vec![])
        .await
        .unwrap();
    assert_eq!(kept, serde_json::json!(true), "the page was not reloaded");

    // No violation on any dashboard page: a second canary's report arrives
    // after whatever the pages would have sent.
    browser.goto(&format!("{base}/canary")).await.unwrap();
    wait_for_reports(&reports, 2).await;
    let reports = reports.lock().unwrap().clone();
    assert_eq!(
        reports.len(),
        2,
        "only the canaries were reported: {reports:#?}"
    );
    assert!(
        reports.iter().all(|r| r.contains("/canary")),
        "{reports:#?}"
    );

    browser.close().await.unwrap();
}
