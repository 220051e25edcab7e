//! The dashboard's handlers called through the router (`oneshot`) on a
//! `MemoryStore`: each auth decision, the cross-site matrix, escaping, links
//! under a nested prefix, bounded parameters, and each action's effect on the
//! store.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use jobs::testing::run_until_empty;
use jobs::{job, Cron, JobId, JobState, Jobs, MemoryStore, NewJob, Request as JobRequest, Server};
use jobs_dashboard::{Access, Dashboard};
use tower::ServiceExt;

const HOSTILE: &str = "<script>alert(1)</script>";

/// Fails at once and for good, with its argument in the error.
#[job(queue = "hostile", max_attempts = 1)]
async fn explode(text: String) -> anyhow::Result<()> {
    anyhow::bail!("it broke: {text}")
}

/// A store with a failed job (hostile args and error) and three enqueued
/// jobs in queue `mail` that no server runs. Returns the failed job's id.
async fn seeded() -> (Jobs, JobId) {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    let failed = Explode::enqueue(&jobs, HOSTILE.to_owned()).await.unwrap();
    let report = run_until_empty(Server::builder(store).queues(["hostile"]))
        .await
        .unwrap();
    assert_eq!(report.failed, 1);
    for user in 1..=3 {
        let mut job = NewJob::new("send_mail", serde_json::json!({ "user_id": user }));
        job.queue = "mail".to_owned();
        jobs.insert(vec![job]).await.unwrap();
    }
    (jobs, failed)
}

fn full(jobs: Jobs) -> Router {
    Dashboard::builder(jobs)
        .authorize(|_: &axum::http::request::Parts| async { Access::Full.user("tester") })
        .router()
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

/// A POST as a browser sends it from the dashboard's own page.
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

/// Every POST the dashboard answers, for a job and a recurring entry.
fn every_post(id: JobId) -> Vec<(String, String)> {
    let mut posts = Vec::new();
    for action in ["retry", "cancel", "delete", "run_now"] {
        posts.push((format!("/jobs/{}/{action}", id.0), String::new()));
        posts.push((
            "/jobs/bulk".to_owned(),
            format!("do={action}-selected&id={}", id.0),
        ));
        posts.push((
            "/jobs/bulk".to_owned(),
            format!("do={action}-matching&queue=mail"),
        ));
    }
    for action in ["trigger", "pause", "resume", "remove"] {
        posts.push((
            "/recurring/action".to_owned(),
            format!("id=nightly&action={action}"),
        ));
    }
    for action in ["pause", "resume"] {
        posts.push((
            "/queues/action".to_owned(),
            format!("queue=mail&action={action}"),
        ));
    }
    posts.push(("/batches/1/cancel".to_owned(), String::new()));
    posts
}

#[tokio::test]
async fn deny_refuses_every_page_with_403() {
    let (jobs, id) = seeded().await;
    let app = Dashboard::builder(jobs)
        .authorize(|_: &axum::http::request::Parts| async { Access::Deny })
        .router();
    for uri in [
        "/",
        "/jobs",
        &format!("/jobs/{}", id.0),
        "/recurring",
        "/queues",
        "/servers",
        "/batches",
        "/batches/1",
    ] {
        assert_eq!(
            send(&app, get(uri)).await.status(),
            StatusCode::FORBIDDEN,
            "{uri}"
        );
    }
    let response = send(&app, post(&format!("/jobs/{}/retry", id.0), "")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn read_only_sees_pages_and_every_post_is_refused() {
    let (jobs, id) = seeded().await;
    jobs.recurring()
        .add_or_update(
            "nightly",
            Cron::daily(),
            JobRequest::new(Explode { text: "x".into() }),
        )
        .await
        .unwrap();
    let app = Dashboard::builder(jobs.clone())
        .authorize(|parts: &axum::http::request::Parts| {
            let admin = parts.headers.contains_key("x-admin");
            async move {
                if admin {
                    Access::Full.user("admin")
                } else {
                    Access::ReadOnly.user("visitor")
                }
            }
        })
        .router();
    let page = send(&app, get(&format!("/jobs/{}", id.0))).await;
    assert_eq!(page.status(), StatusCode::OK);
    let body = text(page).await;
    assert!(body.contains("read-only"));
    assert!(
        !body.contains("/retry\""),
        "a read-only page shows no action buttons"
    );
    for (uri, form) in every_post(id) {
        let response = send(&app, post(&uri, &form)).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{uri} {form}");
    }
    assert_eq!(state(&jobs, id).await, JobState::Failed, "nothing changed");
    assert_eq!(jobs.recurring().list().await.unwrap().len(), 1);
    assert!(
        jobs.queues()
            .list()
            .await
            .unwrap()
            .iter()
            .all(|q| !q.paused),
        "no queue was paused"
    );
    let queues = text(send(&app, get("/queues")).await).await;
    assert!(queues.contains("mail"), "{queues}");
    assert!(
        !queues.contains("queues/action"),
        "a read-only page shows no queue actions: {queues}"
    );

    // The same request with full access acts.
    let mut request = post(&format!("/jobs/{}/retry", id.0), "");
    request
        .headers_mut()
        .insert("x-admin", "1".parse().unwrap());
    assert_eq!(send(&app, request).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(state(&jobs, id).await, JobState::Enqueued);
}

#[tokio::test]
async fn basic_auth_wants_the_right_user_and_password() {
    let (jobs, _) = seeded().await;
    let app = Dashboard::builder(jobs)
        .basic_auth("admin", "s3cret")
        .router();
    let with = |value: &str| {
        Request::get("/")
            .header(header::AUTHORIZATION, value)
            .body(Body::empty())
            .unwrap()
    };
    // admin:s3cret, admin:wrong, root:s3cret
    for request in [
        get("/"),
        with("Basic YWRtaW46d3Jvbmc="),
        with("Basic cm9vdDpzM2NyZXQ="),
        with("Bearer YWRtaW46czNjcmV0"),
        with("Basic !!!"),
    ] {
        let response = send(&app, request).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(challenge.starts_with("Basic realm="), "{challenge}");
    }
    let response = send(&app, with("Basic YWRtaW46czNjcmV0")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        text(response).await.contains("admin"),
        "the page names the user"
    );
}

fn from_peer(uri: &str, peer: Option<&str>) -> Request<Body> {
    let mut request = get(uri);
    if let Some(peer) = peer {
        let peer: SocketAddr = peer.parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
    }
    request
}

#[tokio::test]
async fn local_only_allows_loopback_peers_only_and_fails_closed() {
    let (jobs, _) = seeded().await;
    let app = Dashboard::builder(jobs).local_only().router();
    for peer in ["127.0.0.1:50000", "[::1]:50000", "[::ffff:127.0.0.1]:50000"] {
        let response = send(&app, from_peer("/", Some(peer))).await;
        assert_eq!(response.status(), StatusCode::OK, "{peer}");
    }
    for peer in ["10.0.0.7:50000", "[2001:db8::1]:50000", "192.168.1.2:1"] {
        let response = send(&app, from_peer("/", Some(peer))).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{peer}");
    }
    // No connect info: the peer is unknown, so the request is refused.
    assert_eq!(
        send(&app, from_peer("/", None)).await.status(),
        StatusCode::FORBIDDEN
    );
    // A header saying "local" changes nothing.
    let mut request = from_peer("/", Some("10.0.0.7:50000"));
    request
        .headers_mut()
        .insert("x-forwarded-for", "127.0.0.1".parse().unwrap());
    request
        .headers_mut()
        .insert("x-real-ip", "127.0.0.1".parse().unwrap());
    request
        .headers_mut()
        .insert("forwarded", "for=127.0.0.1".parse().unwrap());
    assert_eq!(send(&app, request).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn behind_application_auth_takes_the_layers_decision() {
    let (jobs, id) = seeded().await;
    let app = Dashboard::builder(jobs).behind_application_auth().router();
    assert_eq!(send(&app, get("/")).await.status(), StatusCode::OK);
    let mut request = post(&format!("/jobs/{}/retry", id.0), "");
    request
        .extensions_mut()
        .insert(jobs_dashboard::Decision::from(Access::ReadOnly));
    assert_eq!(send(&app, request).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn cross_site_requests_are_refused() {
    let (jobs, id) = seeded().await;
    let app = full(jobs.clone());
    let uri = format!("/jobs/{}/delete", id.0);
    let request = |headers: &[(&'static str, &'static str)]| {
        let mut request = Request::post(uri.as_str()).header(header::HOST, "app.test");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(Body::empty()).unwrap()
    };
    let refused: &[&[(&str, &str)]] = &[
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
        &[
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://app.test"),
        ],
        &[("origin", "http://evil.test")],
        &[("origin", "http://app.test:8080")],
        &[("origin", "null")],
    ];
    for headers in refused {
        let response = send(&app, request(headers)).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{headers:?}");
        assert_eq!(state(&jobs, id).await, JobState::Failed);
    }
    let accepted: &[&[(&str, &str)]] = &[
        &[("sec-fetch-site", "same-origin")],
        &[("origin", "http://app.test")],
        &[],
    ];
    for headers in accepted {
        let response = send(&app, request(headers)).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{headers:?}");
    }
    assert_eq!(state(&jobs, id).await, JobState::Deleted);
}

#[tokio::test]
async fn hostile_arguments_and_errors_are_shown_as_text() {
    let (jobs, id) = seeded().await;
    let app = full(jobs);
    for uri in [
        format!("/jobs/{}", id.0),
        "/jobs?state=failed".to_owned(),
        "/jobs".to_owned(),
    ] {
        let response = send(&app, get(&uri)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = text(response).await;
        assert!(
            !body.contains("<script>alert"),
            "{uri} let a script through"
        );
        let escaped = [
            "&lt;script&gt;alert(1)&lt;/script&gt;",
            "&#60;script&#62;alert(1)&#60;/script&#62;",
        ];
        assert!(
            escaped.iter().any(|e| body.contains(e)),
            "{uri} lost the text: {body}"
        );
        assert!(!body.contains("<script>"), "no inline script at all");
    }
}

/// Succeeds with its argument in its output.
#[job(queue = "hostile", unique)]
async fn echo(text: String) -> anyhow::Result<String> {
    Ok(format!("echo: {text}"))
}

#[tokio::test]
async fn the_job_page_shows_the_output_and_the_unique_key_as_text() {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    let id = Echo::enqueue(&jobs, HOSTILE.to_owned()).await.unwrap();
    run_until_empty(Server::builder(store).queues(["hostile"]))
        .await
        .unwrap();
    let key = jobs.get(id).await.unwrap().unwrap().job.unique_key.unwrap();
    let body = text(send(&full(jobs), get(&format!("/jobs/{}", id.0))).await).await;
    assert!(body.contains("<h2>Output</h2>"), "{body}");
    assert!(
        body.contains("echo: &lt;script&gt;alert(1)&lt;/script&gt;")
            || body.contains("echo: &#60;script&#62;alert(1)&#60;/script&#62;"),
        "the output is shown, escaped: {body}"
    );
    assert!(!body.contains("<script>"), "no inline script at all");
    assert!(body.contains(&key), "the unique key is shown: {body}");
}

#[tokio::test]
async fn the_job_page_shows_a_key_limit_escaped() {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    let mut job = NewJob::new("send_mail", serde_json::json!({ "user_id": 1 }));
    job.limit_key = Some(jobs::LimitKey::new("<b>customer</b>:7", 2));
    let id = jobs.insert(vec![job]).await.unwrap()[0].id;
    let body = text(send(&full(jobs), get(&format!("/jobs/{}", id.0))).await).await;
    assert!(body.contains("<dt>key limit</dt>"), "{body}");
    assert!(
        body.contains("&lt;b&gt;customer&lt;/b&gt;:7</code>, at most 2 running at once")
            || body.contains("&#60;b&#62;customer&#60;/b&#62;:7</code>, at most 2 running at once"),
        "{body}"
    );
}

#[tokio::test]
async fn a_continuation_s_page_links_to_its_parent() {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    let parent = Echo::enqueue(&jobs, "first".to_owned()).await.unwrap();
    let child = Echo::new("second".to_owned())
        .after(parent)
        .enqueue(&jobs)
        .await
        .unwrap();
    let body = text(send(&full(jobs), get(&format!("/jobs/{}", child.0))).await).await;
    assert!(body.contains("state-awaiting"), "{body}");
    assert!(
        body.contains(&format!(
            "href=\"../jobs/{}\">job {}</a>, on its success",
            parent.0, parent.0
        )),
        "{body}"
    );
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let (jobs, _) = seeded().await;
    let app = full(jobs.clone());
    let denied = Dashboard::builder(jobs)
        .authorize(|_: &axum::http::request::Parts| async { Access::Deny })
        .router();
    for response in [
        send(&app, get("/")).await,
        send(&app, get("/jobs/999999")).await,
        send(&app, get("/jobs?limit=0")).await,
        send(&denied, get("/")).await,
    ] {
        let headers = response.headers();
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        );
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::REFERRER_POLICY], "same-origin");
    }
}

/// Resolves `href` against the path `base` as a browser does (paths only).
fn resolve(base: &str, href: &str) -> String {
    // A query alone keeps the whole path (RFC 3986 5.2.2).
    if let Some(query) = href.strip_prefix('?') {
        return format!("{base}?{query}");
    }
    let (href, query) = href
        .split_once('?')
        .map_or((href, None), |(h, q)| (h, Some(q)));
    let mut segments: Vec<&str> = base.split('/').collect();
    segments.pop(); // the base's last segment is replaced
    for part in href.split('/') {
        match part {
            "." => {}
            ".." => {
                if segments.len() > 1 {
                    segments.pop();
                }
            }
            other => segments.push(other),
        }
    }
    if href.ends_with("/.") || href == "." || href.ends_with("/..") {
        segments.push("");
    }
    let path = segments.join("/");
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    }
}

/// Every `href`, `src` and `action` of a page.
fn links(body: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in ["href=\"", "src=\"", "action=\""] {
        for piece in body.split(attr).skip(1) {
            let value = &piece[..piece.find('"').unwrap()];
            found.push(
                value
                    .replace("&amp;", "&")
                    .replace("&#38;", "&")
                    .replace("&#x3d;", "=")
                    .replace("&#61;", "="),
            );
        }
    }
    found
}

#[tokio::test]
async fn links_stay_under_a_nested_prefix() {
    let (jobs, id) = seeded().await;
    let batch = with_batch(&jobs).await;
    let app = Router::new().nest("/admin/jobs", full(jobs));
    let pages = [
        "/admin/jobs".to_owned(),
        "/admin/jobs/jobs".to_owned(),
        "/admin/jobs/jobs?state=enqueued&limit=1".to_owned(),
        format!("/admin/jobs/jobs/{}", id.0),
        "/admin/jobs/recurring".to_owned(),
        "/admin/jobs/queues".to_owned(),
        "/admin/jobs/servers".to_owned(),
        "/admin/jobs/batches".to_owned(),
        format!("/admin/jobs/batches/{}", batch.id),
        format!("/admin/jobs/batches/{}?limit=1", batch.id),
    ];
    let mut checked = 0;
    for page in &pages {
        let response = send(&app, get(page)).await;
        assert_eq!(response.status(), StatusCode::OK, "{page}");
        let body = text(response).await;
        let path = page.split('?').next().unwrap();
        for link in links(&body) {
            assert!(!link.starts_with('/'), "{page}: {link} names the prefix");
            let target = resolve(path, &link);
            assert!(
                target.starts_with("/admin/jobs"),
                "{page}: {link} -> {target}"
            );
            if body.contains(&format!("action=\"{link}\"")) {
                continue; // a form's POST target
            }
            let response = send(&app, get(&target)).await;
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "{page}: {link} -> {target}"
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} links followed");

    // An action redirects back under the prefix.
    let response = send(&app, post(&format!("/admin/jobs/jobs/{}/retry", id.0), "")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let target = resolve(&format!("/admin/jobs/jobs/{}/retry", id.0), &location);
    assert_eq!(target, format!("/admin/jobs/jobs/{}?notice=retried", id.0));
    let body = text(send(&app, get(&target)).await).await;
    assert!(body.contains("1 job retried."), "{body}");
}

#[tokio::test]
async fn assets_are_versioned_and_cached_forever() {
    let (jobs, _) = seeded().await;
    let app = full(jobs);
    let body = text(send(&app, get("/")).await).await;
    let assets: Vec<String> = links(&body)
        .into_iter()
        .filter(|l| l.contains("assets/"))
        .collect();
    assert_eq!(assets.len(), 2, "{assets:?}");
    for asset in assets {
        let response = send(&app, get(&resolve("/", &asset))).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
    }
    assert_eq!(
        send(&app, get("/assets/app-0.css")).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn refresh_reaches_the_script_and_keeps_the_other_parameters() {
    let (jobs, _) = seeded().await;
    let app = full(jobs);
    let page = text(send(&app, get("/jobs?queue=mail&refresh=5")).await).await;
    assert!(page.contains(r#"<body data-refresh="5">"#), "{page}");
    // The choices keep the filter: `?` resolves against the current path.
    assert!(
        page.contains(r#"href="?queue=mail&#38;refresh=15""#)
            || page.contains(r#"href="?queue=mail&amp;refresh=15""#),
        "{page}"
    );
    assert!(page.contains(r#"href="?queue=mail""#), "{page}");
    let page = text(send(&app, get("/")).await).await;
    assert!(page.contains("<body>"), "no refresh unless asked: {page}");
}

#[tokio::test]
async fn out_of_range_parameters_are_refused() {
    let (jobs, _) = seeded().await;
    let app = full(jobs);
    let long = "q".repeat(201);
    let long_queue_form = format!("queue={long}&action=pause");
    for uri in [
        "/jobs?limit=0".to_owned(),
        "/jobs?limit=201".to_owned(),
        "/jobs?limit=-3".to_owned(),
        "/jobs?limit=ten".to_owned(),
        "/jobs?state=exploded".to_owned(),
        "/jobs?before=abc".to_owned(),
        "/jobs?before=99999999999999999999".to_owned(),
        format!("/jobs?queue={long}"),
        "/jobs?notice=hacked".to_owned(),
        "/jobs/abc".to_owned(),
        "/jobs/1?count=-1".to_owned(),
        "/jobs?id=seven".to_owned(),
        "/?refresh=1".to_owned(),
        "/?refresh=601".to_owned(),
        "/servers?refresh=often".to_owned(),
        "/queues?notice=hacked".to_owned(),
        "/queues?refresh=1".to_owned(),
    ] {
        let response = send(&app, get(&uri)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
    }
    for (uri, form) in [
        ("/jobs/1/explode", ""),
        ("/jobs/bulk", "do=retry-everything"),
        ("/jobs/bulk", "do=retry-selected&id=x"),
        ("/recurring/action", "id=&action=pause"),
        ("/recurring/action", "id=x&action=explode"),
        ("/queues/action", "queue=&action=pause"),
        ("/queues/action", "action=pause"),
        ("/queues/action", "queue=mail&action=explode"),
        ("/queues/action", "queue=mail"),
        ("/queues/action", "queue=a%0Ab&action=pause"),
        ("/queues/action", &long_queue_form),
    ] {
        let response = send(&app, post(uri, form)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri} {form}");
    }
    let within = send(&app, get("/jobs?limit=200&state=failed&before=9")).await;
    assert_eq!(within.status(), StatusCode::OK);
}

/// `value` encoded for a query string or a form.
fn encoded(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The ids of the jobs a list page links to, in its order.
fn listed_ids(body: &str) -> Vec<i64> {
    body.split(r#"<td><a href="./jobs/"#)
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.parse().ok())
        .collect()
}

#[tokio::test]
async fn the_jobs_list_filters_by_arguments_alone_and_with_a_state() {
    let (jobs, failed) = seeded().await;
    let app = full(jobs.clone());
    let mail = jobs
        .list(jobs::ListJobs::new().queue("mail"))
        .await
        .unwrap();
    // Newest first: user 3, 2, 1.
    let [user_3, user_2, user_1] = [mail[0].id.0, mail[1].id.0, mail[2].id.0];

    let args = encoded(r#"{"user_id": 2}"#);
    let body = text(send(&app, get(&format!("/jobs?args={args}"))).await).await;
    assert_eq!(listed_ids(&body), [user_2], "{body}");
    // The field keeps the filter (as compact JSON, escaped), and the tabs
    // and the bulk form carry it.
    assert!(
        body.contains(r#"name="args" value="{&#34;user_id&#34;:2}""#),
        "{body}"
    );
    let in_links = encoded(r#"{"user_id":2}"#);
    assert!(
        body.contains(&format!("state=enqueued&#38;args={in_links}"))
            || body.contains(&format!("state=enqueued&amp;args={in_links}")),
        "{body}"
    );
    assert!(
        body.contains("arguments containing {&#34;user_id&#34;:2}"),
        "{body}"
    );

    let body = text(send(&app, get(&format!("/jobs?state=enqueued&args={args}"))).await).await;
    assert_eq!(listed_ids(&body), [user_2]);
    let body = text(send(&app, get(&format!("/jobs?state=failed&args={args}"))).await).await;
    assert!(listed_ids(&body).is_empty() && body.contains("No jobs match."));
    let none = encoded(r#"{"user_id": 99}"#);
    let body = text(send(&app, get(&format!("/jobs?args={none}"))).await).await;
    assert!(listed_ids(&body).is_empty(), "{body}");
    let body = text(send(&app, get(&format!("/jobs?args={}", encoded("{}")))).await).await;
    assert_eq!(listed_ids(&body), [user_3, user_2, user_1, failed.0]);

    // A hostile filter finds the hostile job, and is shown as text.
    let hostile = encoded(&serde_json::json!({ "text": HOSTILE }).to_string());
    let body = text(send(&app, get(&format!("/jobs?args={hostile}"))).await).await;
    assert_eq!(listed_ids(&body), [failed.0]);
    assert!(!body.contains("<script>alert"), "{body}");

    // Pages keep the filter.
    let body = text(send(&app, get(&format!("/jobs?limit=1&args={}", encoded("{}")))).await).await;
    assert!(body.contains(&format!("args={}", encoded("{}"))), "{body}");
}

#[tokio::test]
async fn an_arguments_search_reads_a_bounded_window_and_links_to_the_older_one() {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store);
    let customer = |id: i64| NewJob::new("send_mail", serde_json::json!({ "customer": id }));
    // The only match is older than the 20,000 newest jobs.
    let old_match = jobs.insert(vec![customer(1)]).await.unwrap()[0].id;
    for _ in 0..4 {
        jobs.insert((0..5_000).map(|_| customer(2)).collect())
            .await
            .unwrap();
    }
    let newer = jobs.insert(vec![customer(2)]).await.unwrap()[0].id;
    let app = full(jobs.clone());
    let args = encoded(r#"{"customer":1}"#);

    let body = text(send(&app, get(&format!("/jobs?args={args}"))).await).await;
    assert!(listed_ids(&body).is_empty(), "{body}");
    assert!(
        body.contains("No jobs match among the 20,000 jobs examined."),
        "{body}"
    );
    // The window is the 20,000 newest: it ends on the job 19,999 below
    // the newest, and the link searches below it.
    let stop = newer.0 - 19_999;
    assert!(body.contains(&format!("down to job {stop}")), "{body}");
    let older = format!("jobs?args={args}&before={stop}");
    let link = format!(
        r#"<a href="./{}" rel="next">Search older jobs</a>"#,
        older.replace('&', "&#38;")
    );
    assert!(body.contains(&link), "{body}");

    let body = text(send(&app, get(&format!("/{older}"))).await).await;
    assert_eq!(listed_ids(&body), [old_match.0], "{body}");
    assert!(
        !body.contains("Search older jobs"),
        "nothing older is left: {body}"
    );
    // A search without arguments reads no bound.
    let body = text(send(&app, get("/jobs?limit=1")).await).await;
    assert!(!body.contains("examined"), "{body}");
}

#[tokio::test]
async fn a_malformed_arguments_filter_is_a_400_page() {
    let (jobs, _) = seeded().await;
    let app = full(jobs.clone());
    let long = format!(r#"{{"a":"{}"}}"#, "x".repeat(1100));
    for (filter, says) in [
        ("{oops", "not valid JSON"),
        ("[1, 2]", "is a JSON object"),
        ("\"user\"", "is a JSON object"),
        ("7", "is a JSON object"),
        (long.as_str(), "at most 1024 bytes"),
    ] {
        let response = send(&app, get(&format!("/jobs?args={}", encoded(filter)))).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{filter}");
        let body = text(response).await;
        assert!(body.contains(says), "{filter}: {body}");
        assert!(body.contains("<body"), "an error page: {body}");
        let form = format!("do=cancel-matching&queue=mail&args={}", encoded(filter));
        let response = send(&app, post("/jobs/bulk", &form)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{form}");
        assert!(text(response).await.contains(says), "{form}");
    }
    let mail = jobs
        .list(
            jobs::ListJobs::new()
                .queue("mail")
                .state(JobState::Enqueued),
        )
        .await
        .unwrap();
    assert_eq!(mail.len(), 3, "no bulk action acted");
}

#[tokio::test]
async fn bulk_actions_on_all_matching_take_the_arguments_filter() {
    let (jobs, _) = seeded().await;
    let app = full(jobs.clone());
    let mail = jobs
        .list(jobs::ListJobs::new().queue("mail"))
        .await
        .unwrap();
    let [user_3, user_2, user_1] = [mail[0].id, mail[1].id, mail[2].id];
    let args = encoded(r#"{"user_id":1}"#);
    let form = format!("do=cancel-matching&queue=mail&args={args}");
    let response = send(&app, post("/jobs/bulk", &form)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    assert!(
        location.contains(&format!("queue=mail&args={args}")) && location.contains("count=1"),
        "{location}"
    );
    assert_eq!(state(&jobs, user_1).await, JobState::Cancelled);
    assert_eq!(state(&jobs, user_2).await, JobState::Enqueued);
    assert_eq!(state(&jobs, user_3).await, JobState::Enqueued);
    // The page it goes back to lists what the filter picks.
    let back = text(send(&app, get(&resolve("/jobs/bulk", location))).await).await;
    assert_eq!(listed_ids(&back), [user_1.0], "{back}");
}

#[tokio::test]
async fn an_unknown_job_is_a_404_page() {
    let (jobs, _) = seeded().await;
    let app = full(jobs);
    let response = send(&app, get("/jobs/987654")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(text(response).await.contains("No job has the id 987654"));
    let response = send(&app, post("/jobs/987654/retry", "")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        send(&app, get("/nowhere")).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_lookup_form_goes_to_the_job_page() {
    let (jobs, id) = seeded().await;
    let app = Router::new().nest("/admin/jobs", full(jobs));
    let response = send(&app, get(&format!("/admin/jobs/jobs?id={}", id.0))).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let target = resolve("/admin/jobs/jobs", &location);
    assert_eq!(target, format!("/admin/jobs/jobs/{}", id.0));
    assert_eq!(send(&app, get(&target)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn job_actions_change_the_store() {
    let (jobs, failed) = seeded().await;
    let app = full(jobs.clone());
    let mail = jobs
        .list(jobs::ListJobs::new().queue("mail"))
        .await
        .unwrap();
    let [a, b, c] = [mail[0].id, mail[1].id, mail[2].id];

    let response = send(&app, post(&format!("/jobs/{}/retry", failed.0), "")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(state(&jobs, failed).await, JobState::Enqueued);

    send(&app, post(&format!("/jobs/{}/cancel", a.0), "")).await;
    assert_eq!(state(&jobs, a).await, JobState::Cancelled);
    send(&app, post(&format!("/jobs/{}/delete", b.0), "")).await;
    assert_eq!(state(&jobs, b).await, JobState::Deleted);

    // A retry of an enqueued job is refused with a notice, not an error page.
    let response = send(&app, post(&format!("/jobs/{}/retry", c.0), "")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .ends_with("notice=refused"));
    assert_eq!(state(&jobs, c).await, JobState::Enqueued);

    // The job page shows the history, with the error.
    let body = text(send(&app, get(&format!("/jobs/{}", failed.0))).await).await;
    assert!(body.contains("it broke:"), "{body}");
    assert!(body.contains("attempt"));
}

#[tokio::test]
async fn bulk_actions_on_selected_rows_and_on_a_filter() {
    let (jobs, failed) = seeded().await;
    let app = full(jobs.clone());
    let mail = jobs
        .list(jobs::ListJobs::new().queue("mail"))
        .await
        .unwrap();
    let ids: Vec<JobId> = mail.iter().map(|j| j.id).collect();

    let form = format!("do=cancel-selected&id={}&id={}", ids[0].0, ids[1].0);
    let response = send(&app, post("/jobs/bulk", &form)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(state(&jobs, ids[0]).await, JobState::Cancelled);
    assert_eq!(state(&jobs, ids[1]).await, JobState::Cancelled);
    assert_eq!(state(&jobs, ids[2]).await, JobState::Enqueued);

    // Every cancelled job in `mail`, by filter: the failed job elsewhere stays.
    let response = send(
        &app,
        post(
            "/jobs/bulk",
            "do=delete-matching&queue=mail&state=cancelled",
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        location.contains("queue=mail") && location.contains("count=2"),
        "{location}"
    );
    assert_eq!(state(&jobs, ids[0]).await, JobState::Deleted);
    assert_eq!(state(&jobs, ids[1]).await, JobState::Deleted);
    assert_eq!(state(&jobs, ids[2]).await, JobState::Enqueued);

    let response = send(&app, post("/jobs/bulk", "do=retry-matching&state=failed")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(state(&jobs, failed).await, JobState::Enqueued);
}

/// Inserts a job of `send_mail` in `mail` that waits an hour.
async fn delayed(jobs: &Jobs) -> JobId {
    let mut job = NewJob::new("send_mail", serde_json::json!({ "user_id": 9 }));
    job.queue = "mail".to_owned();
    job.run_at = jobs::RunAt::After(std::time::Duration::from_secs(3600));
    jobs.insert(vec![job]).await.unwrap()[0].id
}

#[tokio::test]
async fn run_now_enqueues_a_scheduled_job_and_refuses_other_states() {
    let (jobs, failed) = seeded().await;
    let app = full(jobs.clone());
    let scheduled = delayed(&jobs).await;

    // The button is on a scheduled job's page only.
    let page = text(send(&app, get(&format!("/jobs/{}", scheduled.0))).await).await;
    assert!(
        page.contains(&format!("jobs/{}/run_now\"", scheduled.0)),
        "{page}"
    );
    let page = text(send(&app, get(&format!("/jobs/{}", failed.0))).await).await;
    assert!(!page.contains("/run_now\""), "{page}");

    let response = send(&app, post(&format!("/jobs/{}/run_now", scheduled.0), "")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    assert!(location.ends_with("notice=ran_now"), "{location}");
    assert_eq!(state(&jobs, scheduled).await, JobState::Enqueued);
    let page = text(send(&app, get(&format!("/jobs/{}?notice=ran_now", scheduled.0))).await).await;
    assert!(page.contains("1 job enqueued to run now."), "{page}");

    // Enqueued already: left as it is. Failed: refused with a notice.
    let response = send(&app, post(&format!("/jobs/{}/run_now", scheduled.0), "")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(state(&jobs, scheduled).await, JobState::Enqueued);
    let response = send(&app, post(&format!("/jobs/{}/run_now", failed.0), "")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .ends_with("notice=refused"));
    assert_eq!(state(&jobs, failed).await, JobState::Failed);
    let response = send(&app, post("/jobs/987654/run_now", "")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bulk_run_now_on_selected_rows_and_on_a_filter() {
    let (jobs, failed) = seeded().await;
    let app = full(jobs.clone());
    let [a, b, c] = [
        delayed(&jobs).await,
        delayed(&jobs).await,
        delayed(&jobs).await,
    ];

    let list = text(send(&app, get("/jobs?state=scheduled")).await).await;
    assert!(list.contains("value=\"run_now-selected\""), "{list}");
    assert!(list.contains("value=\"run_now-matching\""), "{list}");
    let list = text(send(&app, get("/jobs?state=failed")).await).await;
    assert!(
        !list.contains("value=\"run_now-matching\""),
        "no run now of all failed jobs: {list}"
    );

    // The failed job among the selected rows is skipped.
    let form = format!("do=run_now-selected&id={}&id={}", a.0, failed.0);
    let response = send(&app, post("/jobs/bulk", &form)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    assert!(location.contains("notice=ran_now&count=1"), "{location}");
    assert_eq!(state(&jobs, a).await, JobState::Enqueued);
    assert_eq!(state(&jobs, failed).await, JobState::Failed);
    assert_eq!(state(&jobs, b).await, JobState::Scheduled);

    let response = send(
        &app,
        post(
            "/jobs/bulk",
            "do=run_now-matching&queue=mail&state=scheduled",
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    assert!(location.contains("count=2"), "{location}");
    assert_eq!(state(&jobs, b).await, JobState::Enqueued);
    assert_eq!(state(&jobs, c).await, JobState::Enqueued);

    // A filter on a state run now never takes: refused with a notice.
    let response = send(&app, post("/jobs/bulk", "do=run_now-matching&state=failed")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    assert!(location.contains("notice=refused"), "{location}");
    assert_eq!(state(&jobs, failed).await, JobState::Failed);
}

#[tokio::test]
async fn recurring_actions_change_the_store() {
    let (jobs, _) = seeded().await;
    jobs.recurring()
        .add_or_update(
            "nightly",
            Cron::daily(),
            JobRequest::new(Explode { text: "x".into() }),
        )
        .await
        .unwrap();
    let app = full(jobs.clone());
    let body = text(send(&app, get("/recurring")).await).await;
    assert!(body.contains("nightly") && body.contains("Trigger now"));

    let before = jobs
        .list(jobs::ListJobs::new().queue("hostile"))
        .await
        .unwrap()
        .len();
    let response = send(&app, post("/recurring/action", "id=nightly&action=trigger")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let after = jobs
        .list(jobs::ListJobs::new().queue("hostile"))
        .await
        .unwrap()
        .len();
    assert_eq!(after, before + 1);

    send(&app, post("/recurring/action", "id=nightly&action=pause")).await;
    assert!(jobs.recurring().list().await.unwrap()[0].paused);
    send(&app, post("/recurring/action", "id=nightly&action=resume")).await;
    assert!(!jobs.recurring().list().await.unwrap()[0].paused);
    send(&app, post("/recurring/action", "id=nightly&action=remove")).await;
    assert!(jobs.recurring().list().await.unwrap().is_empty());
    let response = send(&app, post("/recurring/action", "id=nightly&action=remove")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn overview_and_servers_show_counts_servers_and_stranded_jobs() {
    let (jobs, _) = seeded().await;
    let app = full(jobs.clone());
    let body = text(send(&app, get("/")).await).await;
    assert!(body.contains("mail") && body.contains("hostile"));
    // The oldest due job of `mail` (an enqueued one), in UTC and relative;
    // `hostile` has none.
    let oldest = jobs
        .list(jobs::ListJobs::new().queue("mail"))
        .await
        .unwrap()
        .iter()
        .map(|j| j.run_at)
        .min()
        .unwrap();
    let utc = oldest.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let mail = &body[body.find(">mail</th>").unwrap()..];
    let mail = &mail[..mail.find("</tr>").unwrap()];
    assert!(mail.contains(&format!("<time>{utc}</time> (")), "{mail}");
    let hostile = &body[body.find(">hostile</th>").unwrap()..];
    let hostile = &hostile[..hostile.find("</tr>").unwrap()];
    assert!(hostile.contains("none due"), "{hostile}");
    // Nothing serves `mail`: its jobs are stranded.
    assert!(body.contains("Stranded jobs") && body.contains("send_mail"));
    let list = text(send(&app, get("/jobs?queue=mail")).await).await;
    assert!(list.contains("stranded"));
    let servers = send(&app, get("/servers")).await;
    assert_eq!(servers.status(), StatusCode::OK);
}

/// The `<tr>` of the servers page that names `host`.
fn server_row<'a>(body: &'a str, host: &str) -> &'a str {
    let at = body.find(&format!("<td>{host}</td>")).expect(body);
    let start = body[..at].rfind("<tr").unwrap();
    let end = at + body[at..].find("</tr>").unwrap();
    &body[start..end]
}

#[tokio::test]
async fn a_server_is_stale_by_its_own_stale_after_not_a_fixed_age() {
    use jobs::store::{ServerHeartbeatParams, ServerListParams};
    use jobs::{ServerId, ServerInfo, Store};
    use std::time::Duration;

    let store = MemoryStore::new();
    let beat = |host: &str, stale_after: Duration| {
        let info = ServerInfo::new(ServerId::new(), chrono::Utc::now())
            .host(host)
            .stale_after(stale_after);
        store.server_heartbeat(ServerHeartbeatParams::new(info))
    };
    // Both beat once, then fall silent for the same time: longer than the
    // quick one's own stale age, far shorter than the slow one's.
    beat("quick", Duration::from_millis(300)).await.unwrap();
    beat("slow", Duration::from_secs(3600)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let app = full(Jobs::new(store.clone()));
    let body = text(send(&app, get("/servers")).await).await;
    let quick = server_row(&body, "quick");
    let slow = server_row(&body, "slow");
    assert!(quick.contains(r#"class="stale""#), "{quick}");
    assert!(!slow.contains(r#"class="stale""#), "{slow}");
    assert!(
        slow.contains("<td>1 h</td>"),
        "its stale age is shown: {slow}"
    );
    // The heartbeat's time in UTC beside its age (issue 11: times in UTC
    // and relative).
    let servers = store.server_list(ServerListParams::new()).await.unwrap();
    let at = servers
        .iter()
        .find(|s| s.host == "slow")
        .unwrap()
        .heartbeat_at;
    let utc = at.format("%Y-%m-%d %H:%M:%S UTC");
    assert!(slow.contains(&format!(r#"<time title="{utc}">"#)), "{slow}");
    let overview = text(send(&app, get("/")).await).await;
    assert!(
        overview.contains("1 up") && overview.contains("1 stale"),
        "{overview}"
    );
}

#[tokio::test]
async fn redaction_reaches_every_page_and_lists_can_hide_arguments() {
    let (jobs, id) = seeded().await;
    let app = Dashboard::builder(jobs)
        .authorize(|_: &axum::http::request::Parts| async { Access::Full })
        .redact(|name: &str, _: &serde_json::Value| serde_json::json!({ "redacted": name }))
        .hide_args_in_lists(true)
        .router();
    let page = text(send(&app, get(&format!("/jobs/{}", id.0))).await).await;
    assert!(page.contains("redacted") && page.contains("explode"));
    assert!(
        !page.contains("alert(1)&#60;/script&#62;&#34;"),
        "the raw args are not shown"
    );
    let list = text(send(&app, get("/jobs?queue=mail")).await).await;
    assert!(
        !list.contains("user_id") && !list.contains("redacted"),
        "{list}"
    );
    assert!(!list.contains("<th>arguments</th>"));
    // Searching the stored arguments would test guesses about redacted
    // ones: it is off, in the list and in the bulk actions.
    assert!(
        !list.contains("name=\"args\""),
        "no arguments field: {list}"
    );
    let search = send(&app, get("/jobs?args=%7B%22user_id%22%3A1%7D")).await;
    assert_eq!(search.status(), StatusCode::BAD_REQUEST);
    assert!(text(search).await.contains("Searching arguments is off"));
    let bulk = send(
        &app,
        post(
            "/jobs/bulk",
            "do=delete-matching&queue=mail&args=%7B%22user_id%22%3A1%7D",
        ),
    )
    .await;
    assert_eq!(bulk.status(), StatusCode::BAD_REQUEST);
}

/// Collects what the fmt subscriber writes.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn every_action_is_logged_with_the_user_the_action_and_the_ids() {
    let (jobs, id) = seeded().await;
    let app = full(jobs.clone());
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    send(&app, post(&format!("/jobs/{}/retry", id.0), "")).await;
    send(&app, post("/jobs/bulk", "do=cancel-matching&queue=mail")).await;
    send(&app, post("/queues/action", "queue=mail&action=pause")).await;
    let scheduled = delayed(&jobs).await;
    send(&app, post(&format!("/jobs/{}/run_now", scheduled.0), "")).await;
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("dashboard action"))
        .collect();
    assert_eq!(lines.len(), 4, "{log}");
    assert!(
        lines[0].contains("INFO") && lines[0].contains("user=\"tester\""),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("action=\"retry\"") && lines[0].contains(&format!("[{}]", id.0)));
    assert!(lines[1].contains("action=\"cancel\"") && lines[1].contains("scope=\"matching\""));
    assert!(
        lines[2].contains("user=\"tester\"")
            && lines[2].contains("action=\"pause\"")
            && lines[2].contains("queue=\"mail\""),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].contains("action=\"run_now\"") && lines[3].contains(&format!("[{}]", scheduled.0)),
        "{}",
        lines[3]
    );
}

/// Set by the test that holds a `hold` job running, to let it finish.
static RELEASE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Runs until the test releases it.
#[job(queue = "slow", max_attempts = 1)]
async fn hold() -> anyhow::Result<()> {
    while !RELEASE.load(std::sync::atomic::Ordering::SeqCst) {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Ok(())
}

/// The cells of the queues page's row for `queue`, tags stripped: the
/// queue, enqueued, scheduled, oldest due, running, failed, paused[, actions].
fn queue_row(body: &str, queue: &str) -> Vec<String> {
    let marker = format!(">{queue}</a></th>");
    let at = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no row for {queue}: {body}"));
    let start = body[..at].rfind("<tr").unwrap();
    let end = at + body[at..].find("</tr>").unwrap();
    let row = &body[start..end];
    row.split("</t")
        .filter_map(|cell| {
            let cell = &cell[cell.find("<t")?..];
            let mut text = String::new();
            let mut in_tag = false;
            for c in cell.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            Some(text.trim().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn the_queues_page_lists_every_queue_with_its_counts() {
    let (jobs, _) = seeded().await;
    // In the seeded store: a scheduled job in `mail`, a paused queue with
    // no jobs, and a job held running in `slow`.
    let mut later = NewJob::new("send_mail", serde_json::json!({ "user_id": 4 }));
    later.queue = "mail".to_owned();
    later.run_at = jobs::RunAt::After(std::time::Duration::from_secs(3600));
    jobs.insert(vec![later]).await.unwrap();
    jobs.queues().pause("reports").await.unwrap();
    jobs.queues()
        .set_limits(
            "mail",
            jobs::QueueLimits::none()
                .concurrency(16)
                .rate(jobs::RateLimit::per_minute(100)),
        )
        .await
        .unwrap();
    let held = Hold::enqueue(&jobs).await.unwrap();
    let store = jobs.store_as::<MemoryStore>().unwrap().clone();
    let server = Server::builder(store)
        .queues(["slow"])
        .start()
        .await
        .unwrap();
    for _ in 0..500 {
        if state(&jobs, held).await == JobState::Processing {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(state(&jobs, held).await, JobState::Processing);

    let app = full(jobs.clone());
    let response = send(&app, get("/queues")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = text(response).await;
    assert!(body.contains("<title>Queues · jobs</title>"), "{body}");
    assert!(
        body.contains(r#"id="queue-list" data-poll"#),
        "a polled fragment"
    );
    assert!(
        body.contains(r#"aria-current="page">Queues</a>"#),
        "in the nav"
    );
    let mail = queue_row(&body, "mail");
    assert_eq!(mail[..3], ["mail", "3", "1"]);
    assert_eq!(mail[4..7], ["0", "0", "no"]);
    // The oldest of the three enqueued jobs, in UTC and relative.
    let oldest = jobs
        .list(
            jobs::ListJobs::new()
                .queue("mail")
                .state(JobState::Enqueued),
        )
        .await
        .unwrap()
        .iter()
        .map(|j| j.run_at)
        .min()
        .unwrap();
    let utc = oldest.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    assert_eq!(mail[3], utc, "{mail:?}");
    assert_eq!(
        mail[7], "at most 16 running, 100 started per minute",
        "{mail:?}"
    );
    assert_eq!(queue_row(&body, "slow")[7], "none");
    assert!(body.contains(&format!("<time>{utc}</time> (")), "{body}");
    assert_eq!(
        queue_row(&body, "hostile")[..7],
        ["hostile", "0", "0", "none due", "0", "1", "no"]
    );
    assert_eq!(
        queue_row(&body, "slow")[..7],
        ["slow", "0", "0", "none due", "1", "0", "no"]
    );
    let reports = queue_row(&body, "reports");
    assert_eq!(reports[..6], ["reports", "0", "0", "none due", "0", "0"]);
    assert!(reports[6].starts_with("yes, since"), "{reports:?}");
    // The name links to the jobs of the queue; a count to those in its state.
    assert!(
        body.contains(r#"href="./jobs?queue=mail">mail</a>"#),
        "{body}"
    );
    assert!(
        body.contains(r#"href="./jobs?state=scheduled&#38;queue=mail">1</a>"#)
            || body.contains(r#"href="./jobs?state=scheduled&amp;queue=mail">1</a>"#),
        "{body}"
    );
    // Each row offers the action its state allows.
    assert!(body.contains(r#"value="resume">Resume</button>"#));
    assert_eq!(body.matches(r#"value="pause""#).count(), 3);

    RELEASE.store(true, std::sync::atomic::Ordering::SeqCst);
    server.shutdown().await;
}

#[tokio::test]
async fn queue_pause_and_resume_change_the_store() {
    let (jobs, _) = seeded().await;
    let app = full(jobs.clone());
    let paused = |jobs: Jobs| async move {
        jobs.queues()
            .list()
            .await
            .unwrap()
            .into_iter()
            .find(|q| q.queue == "mail")
            .unwrap()
            .paused
    };
    assert!(!paused(jobs.clone()).await);

    let response = send(&app, post("/queues/action", "queue=mail&action=pause")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    assert_eq!(
        resolve("/queues/action", location),
        "/queues?notice=queue_paused"
    );
    assert!(paused(jobs.clone()).await);
    let body = text(send(&app, get("/queues?notice=queue_paused")).await).await;
    assert!(body.contains("The queue was paused"), "{body}");
    assert!(queue_row(&body, "mail")[6].starts_with("yes"));
    // Pausing twice changes nothing, and is no error.
    let response = send(&app, post("/queues/action", "queue=mail&action=pause")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(paused(jobs.clone()).await);

    let response = send(&app, post("/queues/action", "queue=mail&action=resume")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    assert_eq!(
        resolve("/queues/action", location),
        "/queues?notice=queue_resumed"
    );
    assert!(!paused(jobs.clone()).await);
    let body = text(send(&app, get("/queues?notice=queue_resumed")).await).await;
    assert!(body.contains("The queue was resumed."), "{body}");
    assert_eq!(queue_row(&body, "mail")[6], "no");

    // A queue the store does not know yet can be paused: it is listed from then on.
    send(&app, post("/queues/action", "queue=later&action=pause")).await;
    let body = text(send(&app, get("/queues")).await).await;
    assert!(queue_row(&body, "later")[6].starts_with("yes"));

    // Under a prefix, the redirect comes back to the queues page there.
    let nested = Router::new().nest("/admin/jobs", full(jobs.clone()));
    let response = send(
        &nested,
        post("/admin/jobs/queues/action", "queue=mail&action=pause"),
    )
    .await;
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    assert_eq!(
        resolve("/admin/jobs/queues/action", location),
        "/admin/jobs/queues?notice=queue_paused"
    );
    assert!(paused(jobs).await);
}

#[tokio::test]
async fn cross_site_queue_actions_are_refused() {
    let (jobs, _) = seeded().await;
    let app = full(jobs.clone());
    let request = |headers: &[(&'static str, &'static str)]| {
        let mut request = Request::post("/queues/action")
            .header(header::HOST, "app.test")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(Body::from("queue=mail&action=pause")).unwrap()
    };
    for headers in [
        &[("sec-fetch-site", "cross-site")][..],
        &[("sec-fetch-site", "same-site")],
        &[("origin", "http://evil.test")],
        &[("origin", "null")],
    ] {
        let response = send(&app, request(headers)).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{headers:?}");
    }
    assert!(jobs
        .queues()
        .list()
        .await
        .unwrap()
        .iter()
        .all(|q| !q.paused));
    let response = send(&app, request(&[("origin", "http://app.test")])).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(jobs.queues().list().await.unwrap().iter().any(|q| q.paused));
}

/// A batch of three `send_mail` jobs (one with hostile arguments) and a
/// callback, none run. Returns the batch.
async fn with_batch(jobs: &Jobs) -> jobs::EnqueuedBatch {
    let mut p = jobs::store::BatchInsertParams::new(
        [1, 2]
            .into_iter()
            .map(|user| NewJob::new("send_mail", serde_json::json!({ "user_id": user })))
            .chain([NewJob::new(
                "send_mail",
                serde_json::json!({ "note": HOSTILE }),
            )])
            .collect(),
    );
    p = p.callback(
        NewJob::new("report", serde_json::json!({})),
        jobs::ContinueOn::Success,
    );
    jobs.store().batch_insert(p).await.unwrap()
}

#[tokio::test]
async fn the_batches_pages_show_progress_members_and_the_callback() {
    let (jobs, _) = seeded().await;
    let batch = with_batch(&jobs).await;
    let app = full(jobs.clone());
    let list = text(send(&app, get("/batches")).await).await;
    assert!(list.contains(&format!("batches/{}\"", batch.id)), "{list}");
    assert!(list.contains("0 of 3"), "{list}");
    let page = send(&app, get(&format!("/batches/{}", batch.id))).await;
    assert_eq!(page.status(), StatusCode::OK);
    let body = text(page).await;
    let callback = batch.callback.unwrap();
    assert!(
        body.contains(&format!("jobs/{callback}\"")),
        "links to the callback"
    );
    assert!(body.contains("awaiting"), "the callback's state");
    for member in &batch.members {
        assert!(body.contains(&format!("jobs/{}\"", member.id)), "{body}");
    }
    assert!(!body.contains(HOSTILE), "arguments are escaped: {body}");
    assert!(body.contains("&#60;script&#62;"), "{body}");
    // A page of one, and the next.
    let first = text(send(&app, get(&format!("/batches/{}?limit=1", batch.id))).await).await;
    let newest = batch.members[2].id;
    assert!(first.contains(&format!("jobs/{newest}\"")));
    assert!(
        first.contains(&format!("before={newest}")),
        "a link to older jobs"
    );
    // A member's page links to its batch.
    let member = text(send(&app, get(&format!("/jobs/{}", newest.0))).await).await;
    assert!(
        member.contains(&format!("batches/{}\"", batch.id)),
        "{member}"
    );
}

#[tokio::test]
async fn cancelling_a_batch_changes_the_store_and_is_refused_read_only() {
    let (jobs, _) = seeded().await;
    let batch = with_batch(&jobs).await;
    let read_only = Dashboard::builder(jobs.clone())
        .authorize(|_: &axum::http::request::Parts| async { Access::ReadOnly.user("visitor") })
        .router();
    let uri = format!("/batches/{}/cancel", batch.id);
    let page = text(send(&read_only, get(&format!("/batches/{}", batch.id))).await).await;
    assert!(
        !page.contains(&uri),
        "a read-only page shows no cancel button"
    );
    assert_eq!(
        send(&read_only, post(&uri, "")).await.status(),
        StatusCode::FORBIDDEN
    );
    let mut cross_site = post(&uri, "");
    cross_site
        .headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().unwrap());
    let app = full(jobs.clone());
    assert_eq!(send(&app, cross_site).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        jobs.batches().get(batch.id).await.unwrap().unwrap().pending,
        3
    );

    let page = text(send(&app, get(&format!("/batches/{}", batch.id))).await).await;
    assert!(page.contains(&uri), "the cancel button");
    let response = send(&app, post(&uri, "")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = resolve(&uri, response.headers()[header::LOCATION].to_str().unwrap());
    assert!(
        location.contains("notice=batch_cancelled&count=4"),
        "{location}"
    );
    let progress = jobs.batches().get(batch.id).await.unwrap().unwrap();
    assert_eq!((progress.pending, progress.cancelled), (0, 3));
    assert_eq!(
        state(&jobs, batch.callback.unwrap()).await,
        JobState::Cancelled
    );
    let after = text(send(&app, get(&location)).await).await;
    assert!(
        after.contains("4 jobs cancelled or asked to stop"),
        "{after}"
    );
    assert!(!after.contains(&uri), "nothing left to cancel");
}

#[tokio::test]
async fn an_unknown_batch_is_a_404_and_bad_batch_parameters_a_400() {
    let (jobs, _) = seeded().await;
    let app = full(jobs);
    let response = send(&app, get("/batches/987654")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(text(response).await.contains("No batch has the id 987654"));
    assert_eq!(
        send(&app, post("/batches/987654/cancel", ""))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    for uri in [
        "/batches/abc",
        "/batches?before=abc",
        "/batches?limit=0",
        "/batches/1?limit=201",
        "/batches?notice=hacked",
    ] {
        assert_eq!(
            send(&app, get(uri)).await.status(),
            StatusCode::BAD_REQUEST,
            "{uri}"
        );
    }
}

#[tokio::test]
async fn the_overview_charts_the_last_hours_succeeded_and_failed_jobs() {
    let (jobs, _) = seeded().await;
    let app = full(jobs);
    let body = text(send(&app, get("/")).await).await;
    assert!(body.contains("<svg class=\"chart\""), "{body}");
    assert!(
        body.contains("class=\"chart-failed\""),
        "the failed job's bar: {body}"
    );
    assert!(
        !body.contains("class=\"chart-ok\""),
        "nothing succeeded: {body}"
    );
    assert!(body.contains("0 succeeded,"), "{body}");
    assert!(body.contains("1 failed"), "{body}");
    assert!(
        body.contains(" 0 succeeded, 1 failed</title>"),
        "the bar's tooltip: {body}"
    );
    assert!(
        body.contains(r#"aria-current="true">last hour</a>"#),
        "{body}"
    );
    // Six and 24 hours, in bars of several minutes; other spans refused.
    let six = text(send(&app, get("/?hours=6")).await).await;
    assert!(six.contains("The last 6 hours: 0 succeeded,"), "{six}");
    assert!(six.contains("per 5 minutes</h2>"), "{six}");
    assert!(six.contains(r#"aria-current="true">6 h</a>"#), "{six}");
    assert!(six.contains(" UTC: 0 succeeded, 1 failed</title>"), "{six}");
    let day = text(send(&app, get("/?hours=24&refresh=5")).await).await;
    assert!(day.contains("per 20 minutes</h2>"), "{day}");
    assert!(
        day.contains(r#"href="?refresh=5&amp;hours=6""#)
            || day.contains(r#"href="?refresh=5&#38;hours=6""#),
        "the other spans keep the page's parameters: {day}"
    );
    for uri in ["/?hours=2", "/?hours=-1", "/?hours=x", "/?hours=1000000"] {
        assert_eq!(
            send(&app, get(uri)).await.status(),
            StatusCode::BAD_REQUEST,
            "{uri}"
        );
    }
}

#[tokio::test]
async fn an_action_refreshes_the_counts_every_page_shares() {
    let (jobs, _) = seeded().await;
    let app = full(jobs.clone());
    let before = text(send(&app, get("/queues")).await).await;
    assert!(!before.contains("reports"), "{before}");
    let mut job = NewJob::new("send_report", serde_json::json!({}));
    job.queue = "reports".to_owned();
    jobs.insert(vec![job]).await.unwrap();
    // Any action drops the shared counts: the page after it is fresh.
    let paused = send(&app, post("/queues/action", "queue=mail&action=pause")).await;
    assert_eq!(paused.status(), StatusCode::SEE_OTHER);
    let after = text(send(&app, get("/queues")).await).await;
    assert!(after.contains("reports"), "{after}");
}
