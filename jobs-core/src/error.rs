//! The one error type of the core crate.

use crate::store::StoreError;

/// The result of a `jobs` call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong when enqueueing, managing or serving jobs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed; its kind says whether retrying may help.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A job's arguments could not be serialized.
    #[error("could not serialize the arguments of job `{job}`")]
    Serialize {
        /// The job's stored name.
        job: &'static str,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// Stored arguments no longer match the job's parameters.
    #[error("the stored arguments of job `{job}` do not match its parameters: {source}")]
    Deserialize {
        /// The job's stored name.
        job: &'static str,
        /// serde's error (quoted in the message: it is the whole point of it).
        source: serde_json::Error,
    },
    /// The server's configuration is wrong; the message names every problem.
    #[error("the job server cannot start:\n{0}")]
    Config(String),
    /// A cron expression or schedule was refused.
    #[error("invalid schedule `{expression}`: {reason}")]
    Schedule {
        /// What was given.
        expression: String,
        /// What is wrong with it.
        reason: String,
    },
}
