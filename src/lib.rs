//! Typed, durable background jobs for Rust.
//!
//! Mark a plain `async fn` with [`#[job]`](job); the macro adds a type beside
//! it whose `enqueue` stores the job and returns at once. A [`Server`] running
//! inside the same process picks jobs up on tokio tasks, retries failures with
//! backoff and records every state a job passes through.
//!
//! ```
//! use jobs::{job, Jobs};
//!
//! #[job]
//! async fn send_account_confirmation_email(user_id: i64) -> anyhow::Result<()> {
//!     println!("mailing user {user_id}");
//!     Ok(())
//! }
//!
//! pub async fn signup(jobs: Jobs) -> anyhow::Result<()> {
//!     SendAccountConfirmationEmail::enqueue(&jobs, 9).await?;
//!     Ok(())
//! }
//! ```

pub use jobs_core::{
    Backoff, CancelOutcome, Error, Job, JobContext, JobDetail, JobEvent, JobId, JobOptions,
    JobRow, JobState, Jobs, ListJobs, MemoryStore, Permanent, QueueStateCount, Request, Result,
    Server, ServerBuilder, ServerHandle, ServerId, ServerInfo, Snooze, State, Store, StoreError,
    StoreErrorKind, Timestamp, DEFAULT_MAX_ATTEMPTS, DEFAULT_QUEUE,
};
pub use jobs_macros::job;

/// The PostgreSQL store.
#[cfg(feature = "postgres")]
pub mod postgres {
    pub use jobs_postgres::*;
}

/// Helpers for your own tests: run what was enqueued on a paused clock, and
/// assert on it.
#[cfg(feature = "testing")]
pub mod testing {
    pub use jobs_core::testing::*;
}

// Used by the code `#[job]` generates; not public API, may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
    pub use jobs_core::{
        BoxError, BoxFuture, Inject, IntoJobResult, Invocation, Job, JobArg, JobContext,
        JobOptions, JobRegistration, Request, Requirement, State, Backoff,
    };
    pub use serde;
    pub use serde_json;
    pub use core;
    pub use std;
}
