//! The router: the guard every request passes (auth decision, read-only,
//! cross-site refusal, security headers), then the pages and the actions.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequestParts, OriginalUri, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use jobs_core::{Jobs, StoreErrorKind};

use crate::auth::{forbidden, Access, Auth, Checked, Decision};
use crate::builder::Options;
use crate::cache::ReadCache;
use crate::params::{Notice, Refresh};
use crate::{assets, batches, pages, view};

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) jobs: Jobs,
    pub(crate) options: Options,
    pub(crate) cache: ReadCache,
    auth: Auth,
}

pub(crate) fn router(jobs: Jobs, options: Options, auth: Auth) -> Router {
    let app = App {
        jobs,
        options,
        cache: ReadCache::default(),
        auth,
    };
    Router::new()
        .route("/", get(pages::overview))
        .route("/jobs", get(pages::jobs))
        .route("/jobs/bulk", post(pages::bulk))
        .route("/jobs/{id}", get(pages::job))
        .route("/jobs/{id}/{action}", post(pages::job_action))
        .route("/recurring", get(pages::recurring))
        .route("/recurring/action", post(pages::recurring_action))
        .route("/queues", get(pages::queues))
        .route("/queues/action", post(pages::queue_action))
        .route("/batches", get(batches::batches))
        .route("/batches/{id}", get(batches::batch))
        .route("/batches/{id}/cancel", post(batches::cancel))
        .route("/servers", get(pages::servers))
        .route("/assets/{file}", get(assets::serve))
        .fallback(pages::not_found)
        // Forms are small: a page of ids at most.
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// The Content-Security-Policy of every response: our own stylesheet and
/// script only, no inline code, fetches (the polling script's) and forms only
/// to ourselves, never in a frame.
pub(crate) const CSP: &str =
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; \
                              form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn guard(State(app): State<App>, request: Request<Body>, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let mut response = match app.auth.check(&parts).await {
        Checked::Refused(response) => response,
        Checked::Allowed(decision) => {
            let acts = !matches!(parts.method, Method::GET | Method::HEAD);
            if acts && decision.access() != Access::Full {
                // Read-only is enforced here, on every POST, whatever buttons
                // the pages show.
                forbidden()
            } else if acts && is_cross_site(&parts.headers) {
                (StatusCode::FORBIDDEN, "cross-site request refused\n").into_response()
            } else {
                parts.extensions.insert(decision);
                let response = next.run(Request::from_parts(parts, body)).await;
                if acts {
                    // The page the redirect shows counts what was done.
                    app.cache.clear().await;
                }
                response
            }
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Whether a request that acts came from another site, decided from the
/// request alone (no token, so it works across replicas): by Fetch Metadata
/// when the browser sends it (only `same-origin` passes: Chromium calls
/// another port of the same host `same-site`), else by `Origin` against
/// `Host`. A request with neither header is not a browser's cross-site
/// request (browsers send `Origin` on every cross-origin POST) and passes.
pub(crate) fn is_cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() != b"same-origin";
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return true;
    };
    // `null` and anything without a scheme fail here.
    let Some((scheme, authority)) = origin.split_once("://") else {
        return true;
    };
    // A default port may be written in `Host` but never in `Origin`.
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return true,
    };
    let host = host.strip_suffix(default_port).unwrap_or(host);
    !authority.eq_ignore_ascii_case(host)
}

/// What a handler knows of its request: the way back to the dashboard's
/// root, and the decision that let the request in.
pub(crate) struct Ctx {
    pub(crate) root: String,
    /// The link to the overview (see `view::home_from`).
    pub(crate) home: String,
    pub(crate) decision: Decision,
    /// How often the page's script refreshes its fragments (`refresh=`),
    /// if the request asked for it.
    pub(crate) refresh: Option<Refresh>,
    /// The request's query string, for links that change one parameter.
    pub(crate) query: String,
}

impl Ctx {
    /// The label the action logs name the user by.
    pub(crate) fn user(&self) -> &str {
        self.decision.user_label().unwrap_or("unnamed")
    }

    pub(crate) fn read_only(&self) -> bool {
        self.decision.access() != Access::Full
    }

    /// A 303 to `target` (a path under the dashboard's root, no leading `/`).
    pub(crate) fn redirect(&self, target: &str) -> Response {
        let location = format!("{}{target}", self.root);
        match HeaderValue::from_str(&location) {
            Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }
}

impl FromRequestParts<App> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &App) -> Result<Self, Self::Rejection> {
        let original = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.path().to_owned(), |o| o.0.path().to_owned());
        let root = view::root_from(&original, parts.uri.path());
        let query = parts.uri.query().unwrap_or_default().to_owned();
        let mut ctx = Ctx {
            home: view::home_from(&original, parts.uri.path(), &root),
            root,
            decision: parts
                .extensions
                .get::<Decision>()
                .cloned()
                .unwrap_or_else(|| Access::ReadOnly.into()),
            refresh: None,
            query,
        };
        // Every page takes `refresh`, so it is read here rather than in
        // each page's own parameters.
        match Refresh::from_query(&ctx.query) {
            Ok(refresh) => ctx.refresh = refresh,
            Err(message) => return Err(Failure::BadRequest(message).into_response(&ctx)),
        }
        Ok(ctx)
    }
}

/// A failed page: 400, 404 or 500 with a sentence.
#[derive(Debug)]
pub(crate) enum Failure {
    BadRequest(String),
    NotFound(String),
    Store(jobs_core::Error),
}

impl From<jobs_core::Error> for Failure {
    fn from(error: jobs_core::Error) -> Self {
        Failure::Store(error)
    }
}

impl Failure {
    pub(crate) fn into_response(self, ctx: &Ctx) -> Response {
        let (status, message) = match self {
            Failure::BadRequest(message) => (StatusCode::BAD_REQUEST, message),
            Failure::NotFound(message) => (StatusCode::NOT_FOUND, message),
            Failure::Store(error) => {
                tracing::warn!(%error, "dashboard: the store failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("The store failed: {error}"),
                )
            }
        };
        let mut response = pages::error_page(ctx, status, &message);
        *response.status_mut() = status;
        response
    }
}

/// Turns a handler's result into its response.
pub(crate) fn respond(ctx: &Ctx, result: Result<Response, Failure>) -> Response {
    result.unwrap_or_else(|failure| failure.into_response(ctx))
}

/// The notice for an action refused because of the job's state, or the
/// failure the error is.
pub(crate) fn refused_or(error: jobs_core::Error) -> Result<Notice, Failure> {
    match &error {
        jobs_core::Error::Store(e)
            if matches!(e.kind(), StoreErrorKind::Conflict | StoreErrorKind::Invalid) =>
        {
            Ok(Notice::Refused)
        }
        jobs_core::Error::Store(e) if e.kind() == StoreErrorKind::NotFound => {
            Err(Failure::NotFound("No such job.".to_owned()))
        }
        _ => Err(Failure::Store(error)),
    }
}

/// Renders a template into a page.
pub(crate) fn render(template: &impl askama::Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(%error, "dashboard: a template failed to render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    header::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn cross_site_matrix() {
        assert!(!is_cross_site(&headers(&[])));
        assert!(!is_cross_site(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "none")])));
        let same = [
            ("origin", "http://app.test:3000"),
            ("host", "app.test:3000"),
        ];
        assert!(!is_cross_site(&headers(&same)));
        let default_port = [("origin", "https://app.test"), ("host", "app.test:443")];
        assert!(!is_cross_site(&headers(&default_port)));
        let other = [("origin", "http://evil.test"), ("host", "app.test")];
        assert!(is_cross_site(&headers(&other)));
        let other_port = [
            ("origin", "http://app.test:4000"),
            ("host", "app.test:3000"),
        ];
        assert!(is_cross_site(&headers(&other_port)));
        assert!(is_cross_site(&headers(&[
            ("origin", "null"),
            ("host", "app.test")
        ])));
    }
}
