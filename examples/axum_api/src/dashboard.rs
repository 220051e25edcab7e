//! The jobs dashboard, nested at `/jobs`, behind one of two auth decisions
//! chosen from the environment at startup:
//!
//! - `JOBS_DASHBOARD_USER` and `JOBS_DASHBOARD_PASSWORD` both set: HTTP
//!   basic auth with those credentials (serve it over HTTPS: basic auth
//!   sends the password with every request);
//! - neither set: local-only, for development (loopback peers only, read
//!   from the TCP connection: the app is served with connect info);
//! - only one set, or one empty: the process refuses to start, rather than
//!   fall back to another mode than the one its operator meant.

use std::fmt;

use axum::response::Redirect;
use axum::routing::get;
use axum::Router;
use jobs::dashboard::Dashboard;
use jobs::Jobs;

/// Where the dashboard is nested.
pub(crate) const MOUNT: &str = "/jobs";

const USER_VAR: &str = "JOBS_DASHBOARD_USER";
const PASSWORD_VAR: &str = "JOBS_DASHBOARD_PASSWORD";

/// Who may see the dashboard.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Basic auth with one user and password.
    BasicAuth { user: String, password: String },
    /// Loopback peers only.
    LocalOnly,
}

/// Never prints the password.
impl fmt::Debug for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::BasicAuth { user, .. } => f
                .debug_struct("BasicAuth")
                .field("user", user)
                .finish_non_exhaustive(),
            Mode::LocalOnly => f.write_str("LocalOnly"),
        }
    }
}

impl Mode {
    /// The mode the environment asks for, or why it is no mode at all.
    pub(crate) fn from_env() -> anyhow::Result<Self> {
        Self::from_vars(var(USER_VAR)?, var(PASSWORD_VAR)?)
    }

    /// The mode for the two variables' values (`None`: not set).
    pub(crate) fn from_vars(
        user: Option<String>,
        password: Option<String>,
    ) -> anyhow::Result<Self> {
        match (user, password) {
            (None, None) => Ok(Mode::LocalOnly),
            (Some(user), Some(password)) => {
                for (name, value) in [(USER_VAR, &user), (PASSWORD_VAR, &password)] {
                    if value.is_empty() {
                        anyhow::bail!(
                            "{name} is set but empty: set both {USER_VAR} and {PASSWORD_VAR} \
                             to protect the dashboard with basic auth, or neither for a \
                             local-only dashboard"
                        );
                    }
                }
                Ok(Mode::BasicAuth { user, password })
            }
            (Some(_), None) => Err(only_one(USER_VAR, PASSWORD_VAR)),
            (None, Some(_)) => Err(only_one(PASSWORD_VAR, USER_VAR)),
        }
    }

    /// What the startup log calls it.
    pub(crate) fn describe(&self) -> String {
        match self {
            Mode::BasicAuth { user, .. } => format!("basic auth (user {user:?})"),
            Mode::LocalOnly => "local-only (loopback peers only)".to_owned(),
        }
    }
}

fn only_one(set: &str, unset: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{set} is set but {unset} is not: set both to protect the dashboard with basic auth, \
         or neither for a local-only dashboard; refusing to start rather than pick a mode \
         that was not asked for"
    )
}

/// A variable's value, `None` when unset; an error when it is not Unicode.
fn var(name: &str) -> anyhow::Result<Option<String>> {
    match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            anyhow::bail!("{name} is not valid Unicode")
        }
    }
}

/// The dashboard nested at [`MOUNT`]; merge it into the application's router.
///
/// axum serves a nested router at `/jobs` and `/jobs/...`, not at `/jobs/`:
/// that one redirects to `/jobs`, relatively, so that it stays right behind
/// a proxy that adds a prefix.
pub(crate) fn routes(jobs: Jobs, mode: &Mode) -> Router {
    let builder = Dashboard::builder(jobs);
    let dashboard = match mode {
        Mode::BasicAuth { user, password } => builder.basic_auth(user, password).router(),
        Mode::LocalOnly => builder.local_only().router(),
    };
    let overview = format!("..{MOUNT}");
    Router::new()
        .route(
            &format!("{MOUNT}/"),
            get(move || async move { Redirect::permanent(&overview) }),
        )
        .nest(MOUNT, dashboard)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::{header, Request, StatusCode};
    use jobs::{Jobs, MemoryStore};
    use tower::ServiceExt;

    use super::*;

    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    #[test]
    fn both_variables_or_neither_and_nothing_in_between() {
        assert_eq!(
            Mode::from_vars(some("admin"), some("s3cret")).unwrap(),
            Mode::BasicAuth {
                user: "admin".to_owned(),
                password: "s3cret".to_owned()
            }
        );
        assert_eq!(Mode::from_vars(None, None).unwrap(), Mode::LocalOnly);
        let error = Mode::from_vars(some("admin"), None)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("JOBS_DASHBOARD_USER is set but JOBS_DASHBOARD_PASSWORD is not"),
            "{error}"
        );
        let error = Mode::from_vars(None, some("s3cret"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("JOBS_DASHBOARD_PASSWORD is set but JOBS_DASHBOARD_USER is not"),
            "{error}"
        );
        let error = Mode::from_vars(some("admin"), some(""))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("JOBS_DASHBOARD_PASSWORD is set but empty"),
            "{error}"
        );
        let error = Mode::from_vars(some(""), some("s3cret"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("JOBS_DASHBOARD_USER is set but empty"),
            "{error}"
        );
        // The password never reaches a log through `Debug`.
        let mode = Mode::from_vars(some("admin"), some("s3cret")).unwrap();
        assert!(!format!("{mode:?}").contains("s3cret"));
        assert!(!mode.describe().contains("s3cret"));
    }

    async fn status(router: &Router, request: Request<Body>) -> StatusCode {
        router.clone().oneshot(request).await.unwrap().status()
    }

    fn get(path: &str) -> Request<Body> {
        Request::get(path).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn basic_auth_mode_wants_the_credentials() {
        let mode = Mode::from_vars(some("admin"), some("s3cret")).unwrap();
        let router: Router = routes(Jobs::new(MemoryStore::new()), &mode);
        for path in ["/jobs", "/jobs/jobs", "/jobs/queues", "/jobs/nowhere"] {
            let response = router.clone().oneshot(get(path)).await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
            assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        }
        // `/jobs/` is only a way to `/jobs`, which asks for the credentials.
        let response = router.clone().oneshot(get("/jobs/")).await.unwrap();
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(response.headers()[header::LOCATION], "../jobs");
        // admin:s3cret
        let with_credentials = |path: &str| {
            Request::get(path)
                .header(header::AUTHORIZATION, "Basic YWRtaW46czNjcmV0")
                .body(Body::empty())
                .unwrap()
        };
        for path in ["/jobs", "/jobs/queues", "/jobs/servers"] {
            assert_eq!(
                status(&router, with_credentials(path)).await,
                StatusCode::OK,
                "{path}"
            );
        }
        // admin:wrong
        let wrong = Request::get("/jobs")
            .header(header::AUTHORIZATION, "Basic YWRtaW46d3Jvbmc=")
            .body(Body::empty())
            .unwrap();
        assert_eq!(status(&router, wrong).await, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn local_only_mode_lets_loopback_peers_in_only() {
        let router: Router = routes(Jobs::new(MemoryStore::new()), &Mode::LocalOnly);
        let from = |peer: &str| {
            let mut request = get("/jobs/queues");
            let peer: SocketAddr = peer.parse().unwrap();
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        };
        assert_eq!(
            status(&router, from("127.0.0.1:50000")).await,
            StatusCode::OK
        );
        assert_eq!(
            status(&router, from("10.0.0.7:50000")).await,
            StatusCode::FORBIDDEN
        );
        // No connect info: the peer is unknown, so it is refused.
        assert_eq!(status(&router, get("/jobs")).await, StatusCode::FORBIDDEN);
    }
}
