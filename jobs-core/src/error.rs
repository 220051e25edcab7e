//! The errors of the core crate: [`Error`], what its calls return, and
//! [`StoreError`], what a store's calls return (with a kind the server acts on).

use crate::model::JobId;

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
    /// A job's arguments serialize into a form that does not decode back into
    /// their types (a NaN or infinite float, which JSON stores as `null`):
    /// stored, the job would fail every attempt, so the enqueue refuses it.
    #[error("the arguments of job `{job}` would not decode back from the store: {error}")]
    RoundTrip {
        /// The job's stored name.
        job: &'static str,
        /// serde's error, naming the argument (quoted in the message).
        error: serde_json::Error,
    },
    /// A unique job's key names an argument the job does not have
    /// (`Unique::by_args` on a job written without `#[job]`, which checks
    /// the names at compile time).
    #[error("job `{job}` is unique by argument `{arg}`, which it does not have")]
    UniqueArgument {
        /// The job's stored name.
        job: &'static str,
        /// The argument named.
        arg: String,
    },
    /// Stored arguments no longer match the job's parameters.
    #[error("the stored arguments of job `{job}` do not match its parameters: {error}")]
    Deserialize {
        /// The job's stored name.
        job: &'static str,
        /// serde's error, quoted in the message (it is the whole point of it)
        /// and so not also a `source`, which error reports would print twice.
        error: serde_json::Error,
    },
    /// A stored output does not decode into the job's output type (it was
    /// stored by a version of the job that returned another type).
    #[error("the stored output of job `{job}` does not match its output type: {error}")]
    Output {
        /// The job's stored name.
        job: &'static str,
        /// serde's error.
        error: serde_json::Error,
    },
    /// `Jobs::output` was asked for a job of another type than the one named.
    #[error("job {id} is a `{found}` job, not a `{expected}` job")]
    OutputOfOtherJob {
        /// The job.
        id: JobId,
        /// The type asked for.
        expected: &'static str,
        /// The job's stored name.
        found: String,
    },
    /// The server's configuration is wrong; the message names every problem.
    /// Raised only by `ServerBuilder::start`.
    #[error("the job server cannot start:\n{0}")]
    Config(String),
    /// Two `#[job]` functions of this program are stored under one name, so
    /// a stored job could not say which one it runs. Raised by enqueueing
    /// (`ServerBuilder::start` lists it among its `Config` problems); the
    /// message names the name and both functions' locations.
    #[error("{0}")]
    DuplicateJobName(String),
    /// `testing::Perform` could not run the job; the message says why.
    #[error("cannot perform the job: {0}")]
    Perform(String),
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

/// The result of a store call.
pub type StoreResult<T> = std::result::Result<T, StoreError>;

/// What kind of failure a store call met. The server acts on it: `Unavailable`
/// is retried with backoff forever, the others are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store could not be reached or the call timed out; worth retrying.
    Unavailable,
    /// The job is not in a state that allows the call (retrying a running job, say).
    Conflict,
    /// No such job.
    NotFound,
    /// The input was refused (arguments too large, a bad identifier); not worth retrying.
    Invalid,
    /// Anything else.
    Other,
}

/// An error from a store, with a kind that says whether retrying is worthwhile.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl StoreError {
    /// An error of this kind with this message.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// Whether the same call may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        self.kind == StoreErrorKind::Unavailable
    }

    /// `NotFound` for a job id.
    pub fn job_not_found(id: JobId) -> Self {
        Self::new(StoreErrorKind::NotFound, format!("job {id} does not exist"))
    }

    /// `Conflict`: job `id` cannot run again while job `holder` holds its
    /// unique key.
    pub fn unique_key_held(id: JobId, holder: JobId) -> Self {
        Self::new(
            StoreErrorKind::Conflict,
            format!(
                "job {id} cannot be retried: job {holder} holds its unique key; \
                 retry it once job {holder} has finished, or delete job {holder} first"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report of the error with its chain (`{:#}` in anyhow) says serde's
    /// message once.
    #[test]
    fn a_deserialize_error_reports_serde_s_message_once() {
        let serde = serde_json::from_str::<u32>("\"nine\"").unwrap_err();
        let message = serde.to_string();
        let error = anyhow::Error::from(Error::Deserialize {
            job: "send_mail",
            error: serde,
        });
        let report = format!("{error:#}");
        assert_eq!(report.matches(&message).count(), 1, "{report}");
        assert!(report.contains("`send_mail`"));
    }
}
