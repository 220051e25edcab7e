//! The `#[job]` attribute of the `jobs` framework. Semver-exempt: use it
//! through `jobs`, which re-exports it as `jobs::job`.
//!
//! The attribute is built in three steps: `parse.rs` reads the settings,
//! `validate.rs` checks the function and the settings and reports every
//! mistake at once, `expand.rs` writes the code.

mod expand;
mod parse;
mod validate;

use proc_macro::TokenStream;

/// Turns an `async fn` into a typed, registered background job.
///
/// ```ignore
/// use jobs::{job, JobContext, Jobs, State};
///
/// /// Sends the confirmation mail.
/// #[job(queue = "mail", max_attempts = 5)]
/// async fn send_account_confirmation_email(
///     user_id: i64,           // stored with the job
///     db: State<PgPool>,      // given to the server once, injected
///     ctx: JobContext,        // this run: id, attempt, cancellation
/// ) -> anyhow::Result<()> {
///     Ok(())
/// }
///
/// async fn signup(jobs: &Jobs) -> anyhow::Result<()> {
///     SendAccountConfirmationEmail::enqueue(jobs, 9).await?;
///     Ok(())
/// }
/// ```
///
/// (A compiling version of this example is in the `jobs` crate docs; this
/// crate cannot depend on `jobs`.)
///
/// # What it generates
///
/// The function stays exactly as written, and can still be called directly
/// (in a unit test, say). Beside it, `#[job]` adds a type named after the
/// function in PascalCase, with the function's visibility and doc comment.
/// The code is roughly equivalent to:
///
/// ```ignore
/// /// Sends the confirmation mail.
/// pub struct SendAccountConfirmationEmail {
///     pub user_id: i64, // the ordinary parameters; injected ones are not stored
/// }
///
/// impl SendAccountConfirmationEmail {
///     /// The stored name.
///     pub const NAME: &'static str = "send_account_confirmation_email";
///     /// A request carrying per-enqueue options: `.delay(..)`, `.run_at(..)`,
///     /// `.queue(..)`, `.priority(..)`, `.max_attempts(..)`. Batch enqueue,
///     /// recurring jobs and transactional enqueue take this value too.
///     pub fn new(user_id: i64) -> jobs::Request<Self> { jobs::Request::new(Self { user_id }) }
///     /// Stores the job; returns its id once it is durable.
///     pub async fn enqueue(jobs: &jobs::Jobs, user_id: i64) -> Result<jobs::JobId, jobs::Error> {
///         Self::new(user_id).enqueue(jobs).await
///     }
/// }
///
/// // Stored as the JSON object {"user_id": 9}. Serialize and Deserialize are
/// // written by the macro, so your crate needs no serde dependency.
/// impl serde::Serialize for SendAccountConfirmationEmail { /* ... */ }
/// impl<'de> serde::Deserialize<'de> for SendAccountConfirmationEmail { /* ... */ }
///
/// impl jobs::Job for SendAccountConfirmationEmail {
///     const NAME: &'static str = "send_account_confirmation_email";
///     fn options() -> jobs::JobOptions {
///         jobs::JobOptions::default().queue("mail").max_attempts(5)
///     }
/// }
///
/// // Registered through `inventory`: no list of jobs to keep by hand. A
/// // server runs it by deserializing the arguments, taking `State<PgPool>`
/// // and `JobContext` from the server, calling the function and recording
/// // its result.
/// inventory::submit! { jobs::JobRegistration { name, type_name, location, options, requirements, run } }
/// ```
///
/// All generated paths go through `::jobs` (or the `crate` setting) and
/// `::core`, so the code compiles in crates that shadow `Result`, `Option`,
/// `serde` or `jobs`. Helper items sit inside `const _: () = { ... };`.
///
/// # Parameters
///
/// - A parameter of type `State<T>` (any path ending in `State<..>`) is a
///   shared resource given to the server with `Server::builder(..).state(..)`;
///   a server of the job's queue missing one refuses to start, naming the job
///   and the type. It must be `jobs::State`: in an axum application, rename
///   axum's (`use axum::extract::State as AppState`), as the compiler says.
/// - A parameter of type `JobContext` (any path ending in `JobContext`) is
///   this run's context. At most one, and each `State<T>` at most once.
/// - Every other parameter is a stored argument: it must be a plain name
///   (`user_id: i64`, `mut n: u32`) and its type must be
///   `Serialize + DeserializeOwned + Send + 'static` — a value or an id, not
///   a reference, a connection, a file or a closure. The compiler says so
///   under the parameter's type otherwise.
///
/// Injected parameters are recognised **by name**: `use jobs::State as Res;`
/// followed by `db: Res<PgPool>` is taken for a stored argument and rejected.
/// Import `State` and `JobContext` under their own names.
///
/// An `Option` argument missing from a stored row reads as `None`, so adding
/// one does not break jobs already queued. Unknown fields are ignored.
///
/// # Return type
///
/// `()` or `Result<T, E>` where `E` converts into
/// `Box<dyn std::error::Error + Send + Sync>` (`anyhow::Result<()>`, any
/// `std::error::Error + Send + Sync + 'static`, `String`). Return
/// `jobs::Snooze` or `jobs::Permanent` as the error to run again later or to
/// fail at once.
///
/// `T` is the job's output, stored with the job when it succeeds (as JSON,
/// up to `ServerBuilder::max_output_bytes`) and read back typed with
/// `jobs.output::<SendInvoice>(id)`; it must be storable as arguments are,
/// which the compiler checks under the return type. `()` stores nothing.
/// The generated type implements `jobs::Produces` with `Output = T`.
///
/// # Settings
///
/// All optional, comma-separated:
///
/// | setting | meaning | default |
/// | --- | --- | --- |
/// | `name = "mail.confirm"` | the stored name; pin it to rename the function safely | the function's name (never a module path) |
/// | `queue = "mail"` | the queue | `"default"` |
/// | `priority = 10` | higher runs first within a queue; an `i16` | `0` |
/// | `max_attempts = 5` | runs before the job is `failed`, the first included; at least 1 | `10` |
/// | `backoff = exponential("10s", "1h")` | delay before a retry: first delay doubling up to the longest, with ±25 % jitter | `exponential("10s", "1h")` |
/// | `backoff = fixed("30s")` | the same delay before every retry | |
/// | `timeout = "30s"` | an attempt running longer is cancelled and fails | none |
/// | `unique` | no second job with the same arguments while one is unfinished: an enqueue returns the existing job's id | not unique |
/// | `unique(by = [customer_id])` | the same, by these stored arguments only (checked at compile time) | every argument |
/// | `unique(period = "1h")` | at most one per hour of **run time** (clock hours, UTC), a succeeded one included | |
/// | `unique(held_after = [succeeded, failed, cancelled])` | which finished states still hold the key (replaces the default: none, or `[succeeded]` with a period) | |
/// | `key_limit(by = [customer_id])` | at most one job with the same values of these stored arguments running at once, across all servers; the others wait without spending an attempt (checked at compile time; `key_limit` alone: every argument) | no limit |
/// | `key_limit(by = [customer_id], running = 2)` | at most two at once per key | `running = 1` |
/// | `crate = "my_crate::jobs"` | where `jobs` is, for crates that re-export it | `::jobs` |
///
/// Durations are strings of a number and a unit, `ms`, `s`, `m`, `h` or `d`,
/// which may be combined: `"500ms"`, `"30s"`, `"1h30m"`, `"2d"`. They are
/// checked at compile time.
///
/// # Errors
///
/// Mistakes are reported at compile time, all at once, under the offending
/// token: a misspelt setting (with the list of valid ones), a bad value, a
/// function that is not `async`, generic, takes `self`, has a parameter
/// pattern that is not a name, asks for the same injected value twice, takes
/// an argument that cannot be stored, or returns something else than `()` or
/// `Result<T, E>` with a storable `T`. The function itself is still emitted, so editors keep
/// working.
#[proc_macro_attribute]
pub fn job(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::job(attr.into(), item.into()).into()
}
