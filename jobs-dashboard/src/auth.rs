//! Who may see the dashboard: the decisions an application can make, and how
//! each one is checked against a request.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use subtle::ConstantTimeEq;

/// What a request may do on the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Access {
    /// See every page and act: retry, cancel, delete, run now, trigger, pause.
    Full,
    /// See every page; every action (every POST) is refused with 403.
    ReadOnly,
    /// Nothing: every request is refused with 403.
    Deny,
}

impl Access {
    /// This access, with the label the action logs name the user by
    /// (a user name, an email, a service).
    pub fn user(self, label: impl Into<String>) -> Decision {
        Decision {
            access: self,
            user: Some(label.into()),
        }
    }
}

/// An [`Access`] and, optionally, who was given it: what an
/// [`authorize`](crate::DashboardBuilder::authorize) closure returns
/// (an `Access` converts into one without a label).
///
/// The application's own layer in front of a dashboard built with
/// [`behind_application_auth`](crate::DashboardBuilder::behind_application_auth)
/// may insert one into the request's extensions, to give a label or to make
/// a request read-only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decision {
    access: Access,
    user: Option<String>,
}

impl Decision {
    /// What the request may do.
    pub fn access(&self) -> Access {
        self.access
    }

    /// The user's label, if the decision gave one.
    pub fn user_label(&self) -> Option<&str> {
        self.user.as_deref()
    }
}

impl From<Access> for Decision {
    fn from(access: Access) -> Self {
        Decision { access, user: None }
    }
}

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
pub(crate) type AuthorizeFn = Arc<dyn Fn(&Parts) -> BoxFuture<Decision> + Send + Sync>;

/// The decision the builder was given, in the form the middleware checks.
/// Public only to the crate's sealed [`AuthDecision`](crate::AuthDecision):
/// no path outside the crate names it.
#[derive(Clone)]
pub enum Auth {
    /// The application's closure decides.
    Authorize(AuthorizeFn),
    /// One user and password.
    Basic {
        /// The user.
        user: Vec<u8>,
        /// The password.
        password: Vec<u8>,
    },
    /// Loopback peers only.
    LocalOnly,
    /// The application's layer in front decided.
    Application,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the credentials.
        f.write_str(match self {
            Auth::Authorize(_) => "Authorize",
            Auth::Basic { .. } => "BasicAuth",
            Auth::LocalOnly => "LocalOnly",
            Auth::Application => "BehindApplicationAuth",
        })
    }
}

/// What the middleware does with a request: go on with a decision, or answer.
pub(crate) enum Checked {
    Allowed(Decision),
    Refused(Response),
}

impl Auth {
    pub(crate) async fn check(&self, parts: &Parts) -> Checked {
        match self {
            Auth::Authorize(f) => {
                let decision = f(parts).await;
                match decision.access {
                    Access::Deny => Checked::Refused(forbidden()),
                    _ => Checked::Allowed(decision),
                }
            }
            Auth::Basic { user, password } => match basic_credentials(parts) {
                Some((given_user, given_password))
                    if credentials_match(&given_user, &given_password, user, password) =>
                {
                    let label = String::from_utf8_lossy(&given_user).into_owned();
                    Checked::Allowed(Access::Full.user(label))
                }
                _ => Checked::Refused(unauthorized()),
            },
            Auth::LocalOnly => match parts.extensions.get::<ConnectInfo<SocketAddr>>() {
                Some(ConnectInfo(peer)) if peer.ip().to_canonical().is_loopback() => {
                    Checked::Allowed(Access::Full.user(format!("local {peer}")))
                }
                Some(ConnectInfo(peer)) => {
                    tracing::warn!(%peer, "dashboard refused a request: local-only allows loopback peers only");
                    Checked::Refused(forbidden())
                }
                None => {
                    // Fail closed: without the peer address nothing says the
                    // request is local (behind a proxy, every request would be).
                    tracing::warn!(
                        "dashboard refused a request: local-only needs the peer address; serve the \
                         application with `into_make_service_with_connect_info::<SocketAddr>()`"
                    );
                    Checked::Refused(forbidden())
                }
            },
            Auth::Application => Checked::Allowed(
                parts
                    .extensions
                    .get::<Decision>()
                    .cloned()
                    .unwrap_or_else(|| Access::Full.user("application")),
            ),
        }
    }
}

/// The user and password of an `Authorization: Basic` header.
fn basic_credentials(parts: &Parts) -> Option<(Vec<u8>, Vec<u8>)> {
    let value = parts.headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, encoded) = value.split_at(value.iter().position(|b| *b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim_ascii())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

/// Compares both parts, always both, in time that depends on the lengths of
/// the expected values only.
fn credentials_match(user: &[u8], password: &[u8], want_user: &[u8], want_password: &[u8]) -> bool {
    (ct_eq(user, want_user) & ct_eq(password, want_password)).into()
}

fn ct_eq(given: &[u8], want: &[u8]) -> subtle::Choice {
    // subtle returns early on slices of different lengths; walk the expected
    // value whatever was given, so the time says nothing about the match.
    let mut equal = (given.len() as u64).ct_eq(&(want.len() as u64));
    for (i, w) in want.iter().enumerate() {
        equal &= given.get(i).copied().unwrap_or(!*w).ct_eq(w);
    }
    equal
}

pub(crate) fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, "forbidden\n").into_response()
}

fn unauthorized() -> Response {
    let mut response = (StatusCode::UNAUTHORIZED, "authentication required\n").into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"jobs dashboard\", charset=\"UTF-8\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_comparison_matches_only_equal_values() {
        assert!(bool::from(ct_eq(b"secret", b"secret")));
        assert!(!bool::from(ct_eq(b"secreT", b"secret")));
        assert!(!bool::from(ct_eq(b"secret!", b"secret")));
        assert!(!bool::from(ct_eq(b"secre", b"secret")));
        assert!(!bool::from(ct_eq(b"", b"secret")));
        assert!(bool::from(ct_eq(b"", b"")));
    }
}
