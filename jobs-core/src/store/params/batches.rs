//! Params of the `batch_*` operations: inserting a batch, reading its
//! progress and members, listing batches, cancelling one.

use crate::batch::{BatchId, MAX_BATCH_MEMBERS};
use crate::model::{ContinueOn, JobId, NewJob};
use crate::store::{StoreError, StoreErrorKind};

/// What a store is asked to insert for a batch: the members and the
/// optional callback, already serialized (see [`NewBatch`](crate::NewBatch) for the typed
/// way to build one).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BatchInsertParams {
    /// The members, inserted like [`Store::job_insert_many`](crate::Store::job_insert_many)
    /// does, all or none with the batch.
    pub members: Vec<NewJob>,
    /// The callback and when it runs.
    pub callback: Option<(NewJob, ContinueOn)>,
}

impl BatchInsertParams {
    /// A batch of `members` with no callback.
    pub fn new(members: Vec<NewJob>) -> Self {
        Self {
            members,
            callback: None,
        }
    }

    /// Runs `job` once when the batch ends as `on` says.
    pub fn callback(mut self, job: NewJob, on: ContinueOn) -> Self {
        self.callback = Some((job, on));
        self
    }

    /// `Invalid` unless the batch can be stored: at most
    /// [`MAX_BATCH_MEMBERS`] members, and a callback that is neither unique
    /// nor a continuation (it waits for the batch, not for a job, and a
    /// duplicate would leave the batch without its own callback).
    pub fn check(&self) -> crate::StoreResult<()> {
        if self.members.len() > MAX_BATCH_MEMBERS {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                format!(
                    "a batch holds at most {MAX_BATCH_MEMBERS} jobs, not {}; split it into several",
                    self.members.len()
                ),
            ));
        }
        if let Some((job, _)) = &self.callback {
            if job.unique.is_some() || job.after.is_some() {
                return Err(StoreError::new(
                    StoreErrorKind::Invalid,
                    format!(
                        "the callback of a batch (`{}`) cannot be unique or a continuation \
                         of another job; it runs after the batch",
                        job.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Read one batch's progress and callback.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BatchGetParams {
    /// The batch.
    pub id: BatchId,
}

impl BatchGetParams {
    /// Read this batch.
    pub fn new(id: BatchId) -> Self {
        Self { id }
    }
}

/// A page of batches, newest first.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BatchListParams {
    /// Only batches older than this one (the keyset page's cursor).
    pub before: Option<BatchId>,
    /// At most this many (default 50).
    pub limit: u32,
}

impl Default for BatchListParams {
    fn default() -> Self {
        Self {
            before: None,
            limit: 50,
        }
    }
}

impl BatchListParams {
    /// The newest 50 batches.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only batches older than `id`.
    pub fn before(mut self, id: BatchId) -> Self {
        self.before = Some(id);
        self
    }

    /// At most `limit` batches.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }
}

/// A page of one batch's members, newest first.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BatchMembersParams {
    /// The batch.
    pub id: BatchId,
    /// Only members older than this job (the keyset page's cursor).
    pub before: Option<JobId>,
    /// At most this many (default 50).
    pub limit: u32,
}

impl BatchMembersParams {
    /// The newest 50 members of batch `id`.
    pub fn new(id: BatchId) -> Self {
        Self {
            id,
            before: None,
            limit: 50,
        }
    }

    /// Only members older than `id`.
    pub fn before(mut self, id: JobId) -> Self {
        self.before = Some(id);
        self
    }

    /// At most `limit` members.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }
}

/// Cancel a batch: its waiting members are cancelled, its running ones
/// asked to stop (as [`JobCancelParams`](crate::JobCancelParams) does to
/// one job), and its callback, if it is still awaiting, is cancelled too.
/// Members that have ended are left as they are.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BatchCancelParams {
    /// The batch.
    pub id: BatchId,
    /// Why, kept in each job's history (default "batch cancelled by a user").
    pub reason: String,
}

impl BatchCancelParams {
    /// Cancel this batch.
    pub fn new(id: BatchId) -> Self {
        Self {
            id,
            reason: "batch cancelled by a user".to_owned(),
        }
    }

    /// Why, kept in each job's history.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }
}
