//! The PostgreSQL store of the `jobs` framework, on sqlx.
//!
//! [`PgStore`] keeps jobs durable in PostgreSQL: versioned migrations of its
//! own (tracked in `<schema>.jobs_migrations`), a claim of many jobs in one
//! `FOR UPDATE SKIP LOCKED` statement, completions in batches, leases fenced
//! by claim tokens, LISTEN/NOTIFY wake-ups, and transactional enqueue through
//! the application's own transaction ([`PgStore::enqueue_in`], or typed on a
//! request or the `Jobs` client: [`EnqueueIn`], [`PgJobs`]).
//!
//! ```no_run
//! # mod jobs { pub use jobs_core::*; pub mod postgres { pub use jobs_postgres::*; } }
//! use jobs::postgres::{PgStore, PgStoreOptions};
//!
//! # async fn demo(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
//! let store = PgStore::with_options(pool, PgStoreOptions::new().schema("background")).await?;
//! # let _ = store;
//! # Ok(()) }
//! ```
//!
//! This crate is semver-exempt: depend on `jobs` with the `postgres` feature.

mod db;
mod enqueue;
mod error;
mod jobs;
mod leases;
mod listener;
mod migrate;
mod options;
mod queues;
mod recurring;
mod servers;
mod sql;
mod store;

pub use enqueue::{EnqueueIn, PgJobs};
pub use error::{Error, Result};
pub use options::{
    PgStoreOptions, DEFAULT_ENQUEUE_TIMEOUT, DEFAULT_MAX_ARGS_BYTES, DEFAULT_SCHEMA,
    DEFAULT_SERVER_CONNECTIONS,
};
pub use store::{PgStore, APPLICATION_NAME};
