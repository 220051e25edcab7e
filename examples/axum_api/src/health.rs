//! The health endpoints of the axum example, in a file of their own so that
//! the PostgreSQL outage test (`tests/pg_health.rs`) runs the same router.
//!
//! - `GET /health/live`: 200 while the process answers HTTP, whatever the
//!   job server's state; for a liveness probe, which restarts the process.
//! - `GET /health/ready`: 200 while the job server is healthy, else 503, each
//!   with the server's `jobs::ServerHealth` as JSON: `status`
//!   (`healthy` or `unhealthy`), the `reason` when unhealthy ("store
//!   unreachable for 12s: ..."), what the server saw of the store and its
//!   loops (ages in seconds), its load. For a readiness probe, which takes
//!   the instance out of service until the store is back. It reads memory
//!   only (no query), so a probe may call it as often as it likes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use jobs::{HealthProbe, ServerHealth};

/// The two routes, reading the job server's health through `probe`; merge
/// them into the application's router.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(probe: HealthProbe) -> Router<S> {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .with_state(probe)
}

async fn live() -> &'static str {
    "ok"
}

async fn ready(State(probe): State<HealthProbe>) -> (StatusCode, Json<ServerHealth>) {
    let health = probe.health();
    let status = if health.is_healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use jobs::{MemoryStore, Server};
    use tower::ServiceExt;

    /// The status and JSON body of a GET on the health routes.
    async fn get(router: &axum::Router, path: &str) -> (StatusCode, String) {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn ready_is_200_while_the_server_is_healthy_and_503_with_the_reason_once_it_stops() {
        // A queue of its own: the example's jobs need a pool, which their
        // queues' servers are given.
        let server = Server::builder(MemoryStore::new())
            .queues(["health_test"])
            .start()
            .await
            .unwrap();
        let router = super::routes(server.health_probe());
        let (status, body) = get(&router, "/health/ready").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["status"], "healthy", "{body}");

        server.shutdown().await;
        let (status, body) = get(&router, "/health/ready").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["status"], "unhealthy", "{body}");
        assert_eq!(json["reason"], "stopped", "{body}");
        // Alive all along: the process still answers.
        assert_eq!(get(&router, "/health/live").await.0, StatusCode::OK);
    }
}
