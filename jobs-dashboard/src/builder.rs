//! The dashboard's builder: no router until the application has decided who
//! may see it.

use std::future::Future;
use std::sync::Arc;

use axum::http::request::Parts;
use axum::Router;
use jobs_core::Jobs;

use crate::auth::{Auth, Decision};

/// Replaces a job's arguments before a page shows them: the stored name of
/// the job and its arguments in, what to show out.
pub(crate) type RedactFn = Arc<dyn Fn(&str, &serde_json::Value) -> serde_json::Value + Send + Sync>;

/// The dashboard: start with [`Dashboard::builder`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Dashboard;

impl Dashboard {
    /// A builder over the client the dashboard reads and acts through.
    ///
    /// It gives no router until one of [`authorize`](DashboardBuilder::authorize),
    /// [`basic_auth`](DashboardBuilder::basic_auth),
    /// [`local_only`](DashboardBuilder::local_only) or
    /// [`behind_application_auth`](DashboardBuilder::behind_application_auth)
    /// has said who may see it.
    pub fn builder(jobs: Jobs) -> DashboardBuilder<private::NoAuthDecision> {
        DashboardBuilder {
            jobs,
            options: Options::default(),
            auth: private::NoAuthDecision,
        }
    }
}

/// What the builder was told, apart from the auth decision.
#[derive(Clone, Default)]
pub(crate) struct Options {
    pub(crate) redact: Option<RedactFn>,
    pub(crate) hide_args_in_lists: bool,
}

/// Builds the dashboard's [`Router`]. The type parameter says whether the
/// auth decision was made: [`router`](DashboardBuilder::router) exists only
/// once it was.
#[must_use = "a builder does nothing until `.router()` is called"]
pub struct DashboardBuilder<A> {
    jobs: Jobs,
    options: Options,
    auth: A,
}

impl<A> std::fmt::Debug for DashboardBuilder<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardBuilder")
            .field("redact", &self.options.redact.is_some())
            .field("hide_args_in_lists", &self.options.hide_args_in_lists)
            .finish_non_exhaustive()
    }
}

impl DashboardBuilder<private::NoAuthDecision> {
    fn decide(self, auth: Auth) -> DashboardBuilder<private::AuthDecided> {
        DashboardBuilder {
            jobs: self.jobs,
            options: self.options,
            auth: private::AuthDecided(auth),
        }
    }

    /// Decides by the application's own async check of each request's parts
    /// (headers, extensions a session layer put there, the URI): it returns
    /// an [`Access`](crate::Access), or a [`Decision`] with a label for the
    /// logs (`Access::Full.user("alice")`).
    ///
    /// The closure gets the parts by reference and returns a future that
    /// does not borrow them: copy what the check needs first.
    ///
    /// ```
    /// use jobs_dashboard::{Access, Dashboard};
    /// # fn demo(jobs: jobs_core::Jobs) -> axum::Router {
    /// Dashboard::builder(jobs)
    ///     .authorize(|parts: &axum::http::request::Parts| {
    ///         let token = parts.headers.get("x-admin-token").cloned();
    ///         async move {
    ///             match token {
    ///                 Some(t) if t == "let-me-in" => Access::Full.user("admin"),
    ///                 Some(_) => Access::ReadOnly.user("visitor"),
    ///                 None => Access::Deny.into(),
    ///             }
    ///         }
    ///     })
    ///     .router()
    /// # }
    /// ```
    pub fn authorize<F, Fut, D>(self, check: F) -> DashboardBuilder<private::AuthDecided>
    where
        F: Fn(&Parts) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = D> + Send + 'static,
        D: Into<Decision>,
    {
        let check = Arc::new(check);
        self.decide(Auth::Authorize(Arc::new(move |parts: &Parts| {
            let fut = check(parts);
            Box::pin(async move { fut.await.into() })
        })))
    }

    /// Decides by HTTP basic auth against one user and password, compared in
    /// constant time: a missing or wrong pair gets 401 with
    /// `WWW-Authenticate`, the right one full access labelled by the user.
    /// Serve it over HTTPS only: basic auth sends the password in every request.
    pub fn basic_auth(
        self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> DashboardBuilder<private::AuthDecided> {
        self.decide(Auth::Basic {
            user: user.into().into_bytes(),
            password: password.into().into_bytes(),
        })
    }

    /// For development: full access for requests whose peer address is
    /// loopback, 403 for every other. The peer is the TCP peer axum saw
    /// (`ConnectInfo<SocketAddr>`), never a header such as `X-Forwarded-For`;
    /// serve the application with
    /// `into_make_service_with_connect_info::<SocketAddr>()`, or every
    /// request is refused (the address is unknown, so nothing says it is
    /// local). Behind a proxy on the same host every request looks local:
    /// use another decision there.
    pub fn local_only(self) -> DashboardBuilder<private::AuthDecided> {
        self.decide(Auth::LocalOnly)
    }

    /// Lets every request in with full access, because the application's own
    /// layer in front of the dashboard (a session check, an SSO proxy's
    /// middleware) has already refused the others. That layer may insert a
    /// [`Decision`] into the request's extensions to label the user or to
    /// make the request read-only.
    pub fn behind_application_auth(self) -> DashboardBuilder<private::AuthDecided> {
        self.decide(Auth::Application)
    }
}

impl<A> DashboardBuilder<A> {
    /// Shows what `redact` returns instead of a job's arguments, on every
    /// page: it gets the job's stored name and its arguments.
    ///
    /// ```
    /// # fn demo(jobs: jobs_core::Jobs) {
    /// use jobs_dashboard::Dashboard;
    /// let builder = Dashboard::builder(jobs).redact(|name: &str, args: &serde_json::Value| {
    ///     let mut args = args.clone();
    ///     if name == "send_password_reset" {
    ///         args["token"] = "[redacted]".into();
    ///     }
    ///     args
    /// });
    /// # let _ = builder;
    /// # }
    /// ```
    pub fn redact<F>(mut self, redact: F) -> Self
    where
        F: Fn(&str, &serde_json::Value) -> serde_json::Value + Send + Sync + 'static,
    {
        self.options.redact = Some(Arc::new(redact));
        self
    }

    /// Whether lists of jobs leave the arguments out (default `false`); the
    /// job's own page still shows them, redacted.
    pub fn hide_args_in_lists(mut self, hide: bool) -> Self {
        self.options.hide_args_in_lists = hide;
        self
    }

    /// The dashboard's router, to nest under any path:
    /// `Router::new().nest("/jobs", dashboard)`. It binds no port.
    ///
    /// Compiles only once the auth decision was made.
    pub fn router(self) -> Router
    where
        A: AuthDecision,
    {
        crate::routes::router(self.jobs, self.options, self.auth.into_auth())
    }
}

/// Marks a builder whose auth decision was made; only such a builder has a
/// [`router`](DashboardBuilder::router).
#[diagnostic::on_unimplemented(
    message = "the dashboard has no auth decision: say who may see it before `.router()`",
    label = "no auth decision made on this builder",
    note = "call one of `.authorize(|parts| async {{ Access::Full }})`, `.basic_auth(user, password)`, \
            `.local_only()` (development) or `.behind_application_auth()` on `Dashboard::builder(jobs)`"
)]
pub trait AuthDecision: private::Sealed {
    #[doc(hidden)]
    fn into_auth(self) -> Auth;
}

impl AuthDecision for private::AuthDecided {
    fn into_auth(self) -> Auth {
        self.0
    }
}

pub(crate) mod private {
    use crate::auth::Auth;

    /// The builder's state before the auth decision.
    #[derive(Debug)]
    pub struct NoAuthDecision;

    /// The builder's state after it.
    #[derive(Debug)]
    pub struct AuthDecided(pub(crate) Auth);

    pub trait Sealed {}
    impl Sealed for AuthDecided {}
}
