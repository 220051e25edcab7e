//! The web dashboard of `jobs`: see and act on every job from pages mounted
//! in the application. Use it through `jobs::dashboard` (the `dashboard`
//! feature); this crate makes no semver promise of its own.
//!
//! [`Dashboard::builder`] gives an [`axum::Router`] that the application
//! nests under any path; it never binds a port. It reads and acts through
//! the [`Jobs`](jobs_core::Jobs) client only, so it works on every store.
//!
//! **No auth decision, no dashboard**: [`router`](DashboardBuilder::router)
//! does not compile until the builder was told who may see it, by
//! [`authorize`](DashboardBuilder::authorize) (the application's own async
//! check, answering [`Access::Full`], [`Access::ReadOnly`] or
//! [`Access::Deny`]), [`basic_auth`](DashboardBuilder::basic_auth),
//! [`local_only`](DashboardBuilder::local_only) (development) or
//! [`behind_application_auth`](DashboardBuilder::behind_application_auth).
//!
//! ```
//! use std::net::SocketAddr;
//! use jobs_core::{Jobs, MemoryStore};
//! use jobs_dashboard::Dashboard;
//!
//! # async fn serve() -> std::io::Result<()> {
//! let jobs = Jobs::new(MemoryStore::new());
//! let dashboard = Dashboard::builder(jobs.clone()).local_only().router();
//! let app = axum::Router::new().nest("/jobs", dashboard);
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! // Local-only reads the peer address: serve with connect info.
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
//! # }
//! ```
//!
//! What every response does for safety: actions are POSTs that redirect
//! back (303); requests that act are refused when they come from another
//! site (Fetch Metadata, else `Origin` against `Host`) or when the decision
//! was read-only; a strict Content-Security-Policy allows only the crate's
//! own stylesheet and script; every query parameter is parsed into a bounded
//! type (400 otherwise); every value is HTML-escaped; arguments pass through
//! the application's [`redact`](DashboardBuilder::redact) hook; every action
//! is logged as a tracing INFO event with the user's label, the action and
//! the job ids (or the queue, or the recurring id).

mod assets;
mod auth;
mod batches;
mod builder;
mod cache;
mod pages;
mod params;
mod routes;
mod view;

pub use auth::{Access, Decision};
pub use builder::{AuthDecision, Dashboard, DashboardBuilder};
