//! `Server::health` through a PostgreSQL outage, on a cluster of the test's
//! own (another port: no other test is disturbed), and the axum example's
//! readiness route on it: healthy, unhealthy naming the store while
//! PostgreSQL is down, healthy again once it is back.

#![cfg(feature = "postgres")]

mod pg_support;

// The example's health routes, as the example serves them.
#[path = "../examples/axum_api/src/health.rs"]
mod health;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use jobs::postgres::PgStore;
use jobs::{job, HealthProbe, Server, ServerHealth};
use pg_support::{eventually, OwnCluster};
use tower::ServiceExt;

/// Generous: only for "eventually", never the property under test.
const DEADLINE: Duration = Duration::from_secs(90);

/// A job for the server to claim: a server that knows no job claims
/// nothing, and PostgreSQL is not even asked.
#[job(queue = "health_outage")]
async fn health_noop() -> anyhow::Result<()> {
    Ok(())
}

/// The status of `GET /health/ready` and its JSON body.
async fn ready(router: &axum::Router) -> (StatusCode, serde_json::Value) {
    let request = Request::get("/health/ready").body(Body::empty()).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

/// Waits until the server's health satisfies `check`.
async fn health_until(
    probe: &HealthProbe,
    what: &str,
    check: impl Fn(&ServerHealth) -> bool,
) -> ServerHealth {
    eventually(what, DEADLINE, || async {
        let health = probe.health();
        check(&health).then_some(health)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_is_unhealthy_naming_the_store_while_postgresql_is_down_and_healthy_after() {
    let cluster = OwnCluster::create(&format!("jobs_health_{}", std::process::id()), 5493);
    let store = PgStore::connect(&cluster.url("health_outage"))
        .await
        .unwrap();
    // Short intervals, so that the outage shows within seconds: store
    // failures count after a renewal interval (a third of the lease).
    let server = Server::builder(store.clone())
        .queues(["health_outage"])
        .lease(Duration::from_secs(3))
        .poll_interval(Duration::from_millis(200))
        .heartbeat_interval(Duration::from_secs(1))
        .store_timeout(Duration::from_secs(2))
        .start()
        .await
        .unwrap();
    let probe = server.health_probe();
    let router = health::routes(probe.clone());

    let health = health_until(&probe, "healthy after start", |h| {
        h.is_healthy() && h.last_claim.is_some() && h.last_heartbeat.is_some()
    })
    .await;
    assert!(health.store_reachable, "{health:?}");
    let (status, body) = ready(&router).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "healthy", "{body}");

    cluster.stop();
    let health = health_until(&probe, "unhealthy while PostgreSQL is down", |h| {
        !h.is_healthy()
    })
    .await;
    let reason = health.reason().unwrap().to_owned();
    assert!(reason.starts_with("store "), "{reason}: {health:?}");
    assert!(!health.store_reachable, "{health:?}");
    assert!(health.last_store_failure.is_some(), "{health:?}");
    let (status, body) = ready(&router).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "unhealthy", "{body}");
    let told = body["reason"].as_str().unwrap_or_default();
    assert!(told.starts_with("store "), "{body}");

    cluster.start();
    let health = health_until(&probe, "healthy once PostgreSQL is back", |h| {
        h.is_healthy()
    })
    .await;
    assert!(health.store_reachable, "{health:?}");
    let (status, body) = ready(&router).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    server.shutdown().await;
    store.pool().close().await;
}
