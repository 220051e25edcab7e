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
    /// Raised only by `ServerBuilder::start`.
    #[error("the job server cannot start:\n{0}")]
    Config(String),
    /// A recurring job's id was refused (`add_or_update` and the calls that
    /// name an entry).
    #[error("invalid recurring job id `{id}`: {reason}")]
    InvalidRecurringId {
        /// What was given.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A misfire or overlap policy's stored name is not one this version knows.
    #[error("unknown {policy} policy `{value}`")]
    UnknownPolicy {
        /// Which policy: `"misfire"` or `"overlap"`.
        policy: &'static str,
        /// The name that was read.
        value: String,
    },
    /// `testing::run_until_empty` gave up: jobs were still waiting after its
    /// limit of (paused) time.
    #[error("{pending} jobs were still waiting after {limit:?} of running them")]
    DrainTimeout {
        /// How many jobs were still `scheduled` or `enqueued`.
        pending: i64,
        /// How long they were run.
        limit: std::time::Duration,
    },
    /// A cron expression or schedule was refused.
    #[error("invalid schedule `{expression}`: {reason}")]
    Schedule {
        /// What was given.
        expression: String,
        /// What is wrong with it.
        reason: String,
    },
}
