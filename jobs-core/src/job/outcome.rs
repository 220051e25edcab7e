//! What a job's run comes to: the typed outcomes it can ask for ([`Snooze`],
//! [`Permanent`]) and [`IntoJobResult`], which turns its return value into
//! what the server acts on.

use std::any::Any;
use std::fmt;
use std::time::Duration;

use crate::job::BoxError;

/// Returned (as the error) by a job that wants to run again later, without
/// using up an attempt: `return Err(Snooze::after(Duration::from_secs(30)).into())`.
///
/// ```
/// # extern crate jobs_core as jobs;
/// # use jobs_macros::job;
/// use std::time::Duration;
/// use jobs::Snooze;
///
/// # fn rate_limited() -> bool { false }
/// #[job]
/// async fn sync_account(account_id: i64) -> anyhow::Result<()> {
///     if rate_limited() {
///         // Not a failure: try again in a minute, with the same attempt count.
///         return Err(Snooze::after(Duration::from_secs(60)).into());
///     }
///     println!("syncing {account_id}");
///     Ok(())
/// }
/// # fn main() {}
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snooze {
    /// How long to wait.
    pub after: Duration,
}

impl Snooze {
    /// Run again after this delay.
    pub fn after(after: Duration) -> Self {
        Self { after }
    }
}

impl fmt::Display for Snooze {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "snoozed for {:?}", self.after)
    }
}

impl std::error::Error for Snooze {}

/// Returned (as the error) by a job whose failure will not go away by
/// retrying: the job is `failed` at once, whatever attempts it has left.
///
/// ```
/// # extern crate jobs_core as jobs;
/// # use jobs_macros::job;
/// use jobs::Permanent;
///
/// #[job]
/// async fn charge_card(card: String) -> anyhow::Result<()> {
///     if card.is_empty() {
///         // Retrying will not make the card number appear.
///         return Err(Permanent::new("no card on file").into());
///     }
///     Ok(())
/// }
/// # fn main() {}
/// ```
#[derive(Debug)]
pub struct Permanent(pub BoxError);

impl Permanent {
    /// Wraps the error that makes retrying pointless.
    pub fn new(error: impl Into<BoxError>) -> Self {
        Self(error.into())
    }
}

impl fmt::Display for Permanent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Permanent {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// What a job function may return: `()`, or `Result<T, E>` with an error
/// that converts into [`BoxError`], as `anyhow::Error` and every
/// `std::error::Error + Send + Sync + 'static` do. `T` is the job's output,
/// stored with the job when it succeeds (see [`JobOutput`](crate::JobOutput));
/// `()` stores none.
///
/// `#[job]` requires it of the function's return type, at that type, so a
/// return type that does not fit is reported there with this trait's message.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a return type `#[job]` accepts",
    label = "a job returns `()` or `Result<T, E>`",
    note = "the error type `E` must convert into `Box<dyn std::error::Error + Send + Sync>`, as `anyhow::Error` and every `std::error::Error + Send + Sync + 'static` do: return `anyhow::Result<T>`, or implement `std::error::Error` for your error type (for example with `thiserror`)"
)]
pub trait IntoJobResult {
    /// What a success gives: `()` for none.
    type Output;
    /// The outcome as the server sees it.
    fn into_job_result(self) -> Result<Self::Output, BoxError>;
}

// Not offered as "implemented for `()`" in the error above: the message
// already says what a job returns.
#[diagnostic::do_not_recommend]
impl IntoJobResult for () {
    type Output = ();
    fn into_job_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

// Reported as `Result<T, E>: IntoJobResult` rather than as the inner
// `E: Into<BoxError>` bound, so the message names the return type. Whether
// `T` can be stored is checked apart (`job_result`), with its own message.
#[diagnostic::do_not_recommend]
impl<T, E: Into<BoxError> + 'static> IntoJobResult for Result<T, E> {
    type Output = T;
    fn into_job_result(self) -> Result<T, BoxError> {
        self.map_err(into_box_error)
    }
}

/// Boxes a job's error so that the server can downcast a [`Snooze`] or a
/// [`Permanent`] in it. `anyhow::Error` boxes itself around the original
/// error, which would hide them, so those two are taken out of it first.
fn into_box_error<E: Into<BoxError> + 'static>(error: E) -> BoxError {
    let error: Box<dyn Any> = Box::new(error);
    match error.downcast::<anyhow::Error>() {
        Ok(error) => match error.downcast::<Snooze>() {
            Ok(snooze) => Box::new(snooze),
            Err(error) => match error.downcast::<Permanent>() {
                Ok(permanent) => Box::new(permanent),
                Err(error) => error.into(),
            },
        },
        Err(error) => match error.downcast::<E>() {
            Ok(error) => (*error).into(),
            Err(_) => unreachable!("the box holds an `E`"),
        },
    }
}
