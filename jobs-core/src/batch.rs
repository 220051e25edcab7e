//! Batches: a set of jobs enqueued together, whose progress is one read,
//! with an optional callback job that runs once when all of them have
//! ended (on their success, or on any end).
//!
//! A store keeps a batch's counters beside it and changes them in the same
//! statement as each member's change of state, so that reading the progress
//! never counts the members, and exactly one change sees the batch end.
//! The callback is stored `awaiting` from the start, like a continuation,
//! and released (made `enqueued`, or `cancelled` with the reason) by the
//! store once the batch has ended; a release that comes twice, from two
//! servers, changes it once.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::job::{Job, Request};
use crate::model::{ContinueOn, Inserted, JobId, JobRow, NewJob, Timestamp};
use crate::store::{
    BatchCancelParams, BatchGetParams, BatchInsertParams, BatchListParams, BatchMembersParams,
    DynStore, StoreError, StoreErrorKind,
};

/// The most members one batch takes: a store keeps the members' ids with
/// the batch, and inserts them in one statement.
pub const MAX_BATCH_MEMBERS: usize = 100_000;

/// The id of a stored batch, assigned by the store and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BatchId(pub i64);

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A batch as a store keeps it: its counters and its callback. The counters
/// are changed with the members' states, so `pending`, `succeeded`,
/// `failed` and `cancelled` always add up to `total`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BatchRow {
    /// The batch's id.
    pub id: BatchId,
    /// When it was enqueued.
    pub created_at: Timestamp,
    /// How many jobs it holds (a unique job that was a duplicate is not one
    /// of them).
    pub total: i64,
    /// Members that have not ended: awaiting, scheduled, enqueued or running.
    pub pending: i64,
    /// Members that succeeded.
    pub succeeded: i64,
    /// Members that failed for good.
    pub failed: i64,
    /// Members that were cancelled or deleted.
    pub cancelled: i64,
    /// When its last member ended (and its callback was released); `None`
    /// while members are pending. A member retried by hand after that makes
    /// it pending again, and its callback does not run a second time.
    pub finished_at: Option<Timestamp>,
    /// Its callback job, if it has one.
    pub callback: Option<JobId>,
    /// When the callback runs: when every member succeeded, or whatever
    /// their ends (`None` without a callback).
    pub callback_on: Option<ContinueOn>,
}

impl BatchRow {
    /// A batch of `total` pending members with no callback, as a store
    /// reads it back; stores set the other fields from their columns.
    pub fn new(id: BatchId, created_at: Timestamp, total: i64) -> Self {
        Self {
            id,
            created_at,
            total,
            pending: total,
            succeeded: 0,
            failed: 0,
            cancelled: 0,
            finished_at: None,
            callback: None,
            callback_on: None,
        }
    }

    /// Members that have ended, whatever the end.
    pub fn ended(&self) -> i64 {
        self.total - self.pending
    }

    /// Whether every member has ended.
    pub fn is_finished(&self) -> bool {
        self.pending == 0
    }

    /// Whether a callback on `on` runs for a batch that ended with these
    /// counters (`false`: it is cancelled).
    pub fn releases(&self, on: ContinueOn) -> bool {
        match on {
            ContinueOn::Success => self.succeeded == self.total,
            ContinueOn::AnyEnd => true,
        }
    }

    /// The reason a store records for a callback on success cancelled
    /// because some members of batch `id` did not succeed.
    pub fn cancel_reason(id: BatchId, failed: i64, cancelled: i64) -> String {
        format!(
            "batch {id} ended with {failed} failed and {cancelled} cancelled or deleted; \
             this job was to run only if all its jobs succeeded"
        )
    }
}

/// What a store did with a batch: its id, what became of each member in
/// order (a unique member whose key was held is a duplicate, not a member),
/// and the callback's id.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EnqueuedBatch {
    /// The batch's id.
    pub id: BatchId,
    /// What became of each member, in order.
    pub members: Vec<Inserted>,
    /// The callback job, `awaiting` until the batch ends.
    pub callback: Option<JobId>,
}

impl EnqueuedBatch {
    /// The result of an insert.
    pub fn new(id: BatchId, members: Vec<Inserted>, callback: Option<JobId>) -> Self {
        Self {
            id,
            members,
            callback,
        }
    }
}

/// A batch to enqueue, built from typed requests of any job types, with an
/// optional callback: enqueue it with
/// [`Jobs::batches`](crate::Jobs::batches)`().enqueue(..)`, or on
/// PostgreSQL in the application's transaction.
///
/// ```
/// # extern crate jobs_core as jobs;
/// # use jobs_macros::job;
/// # async fn demo() -> jobs::Result<()> {
/// use jobs::{Jobs, MemoryStore, NewBatch};
///
/// #[job]
/// async fn resize_image(image_id: i64) -> anyhow::Result<()> { Ok(()) }
///
/// #[job]
/// async fn publish_album(album_id: i64) -> anyhow::Result<()> { Ok(()) }
///
/// let jobs = Jobs::new(MemoryStore::new());
/// let batch = NewBatch::new()
///     .members((1..=3).map(ResizeImage::new))
///     .on_success(PublishAlbum::new(7)); // once all three succeeded
/// let enqueued = jobs.batches().enqueue(batch).await?;
/// let progress = jobs.batches().get(enqueued.id).await?.expect("stored");
/// assert_eq!((progress.total, progress.pending), (3, 3));
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
#[derive(Debug, Default)]
#[must_use = "a batch does nothing until it is enqueued"]
pub struct NewBatch {
    members: Vec<NewJob>,
    callback: Option<(NewJob, ContinueOn)>,
    /// The first request that could not be serialized: `enqueue` returns it.
    error: Option<Error>,
}

impl NewBatch {
    /// An empty batch (enqueued empty, it has ended at once, and its
    /// callback runs at once).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one job.
    pub fn member<J: Job>(mut self, request: Request<J>) -> Self {
        match request.into_new_job() {
            Ok(job) => self.members.push(job),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Adds jobs of one type.
    pub fn members<J: Job>(mut self, requests: impl IntoIterator<Item = Request<J>>) -> Self {
        for request in requests {
            self = self.member(request);
        }
        self
    }

    /// Runs `callback` once when every member has succeeded; if one failed
    /// for good, or was cancelled or deleted, the callback is cancelled
    /// instead, with the counts in its history.
    pub fn on_success<J: Job>(self, callback: Request<J>) -> Self {
        self.callback(callback, ContinueOn::Success)
    }

    /// Runs `callback` once when every member has ended, whatever the end.
    pub fn on_any_end<J: Job>(self, callback: Request<J>) -> Self {
        self.callback(callback, ContinueOn::AnyEnd)
    }

    fn callback<J: Job>(mut self, callback: Request<J>, on: ContinueOn) -> Self {
        match callback.into_new_job() {
            Ok(job) => self.callback = Some((job, on)),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// How many members it has so far.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether it has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// What a store inserts; the first error of a request that did not
    /// serialize, or of a batch that cannot be stored.
    pub fn into_params(self) -> Result<BatchInsertParams> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let params = BatchInsertParams {
            members: self.members,
            callback: self.callback,
        };
        params.check()?;
        Ok(params)
    }
}

/// Inserts a batch through `insert`, inside the enqueue's span: members and
/// callback carry its trace context, and count as enqueued jobs in the
/// metrics, as jobs inserted one by one do. Shared by [`Batches::enqueue`]
/// and the PostgreSQL store's transactional enqueue.
#[doc(hidden)]
pub async fn traced_batch_insert<F, Fut>(
    p: BatchInsertParams,
    insert: F,
) -> crate::StoreResult<EnqueuedBatch>
where
    F: FnOnce(BatchInsertParams) -> Fut,
    Fut: std::future::Future<Output = crate::StoreResult<EnqueuedBatch>>,
{
    let BatchInsertParams {
        mut members,
        callback,
    } = p;
    let n = members.len();
    let on = callback.as_ref().map(|(_, on)| *on);
    members.extend(callback.map(|(job, _)| job));
    let mut enqueued = None;
    let out = &mut enqueued;
    crate::telemetry::enqueue(members, |mut jobs: Vec<NewJob>| async move {
        let callback = on.and_then(|on| Some((jobs.pop()?, on)));
        let mut p = BatchInsertParams::new(jobs);
        p.callback = callback;
        let batch = insert(p).await?;
        let mut inserted = batch.members.clone();
        inserted.extend(batch.callback.map(Inserted::new));
        *out = Some(batch);
        Ok::<_, StoreError>(inserted)
    })
    .await?;
    debug_assert!(enqueued.as_ref().is_some_and(|b| b.members.len() == n));
    enqueued.ok_or_else(|| StoreError::new(StoreErrorKind::Other, "the batch insert did not run"))
}

/// The batches of a store, from [`Jobs::batches`](crate::Jobs::batches):
/// enqueue one, read its progress and members, list them, cancel one.
///
/// ```
/// # extern crate jobs_core as jobs;
/// # use jobs_macros::job;
/// # async fn demo() -> jobs::Result<()> {
/// use jobs::{Jobs, MemoryStore, NewBatch};
///
/// #[job]
/// async fn import_row(row: u32) -> anyhow::Result<()> { Ok(()) }
///
/// #[job]
/// async fn report_import(file_id: i64) -> anyhow::Result<()> { Ok(()) }
///
/// let jobs = Jobs::new(MemoryStore::new());
/// let batch = NewBatch::new()
///     .members((0..100).map(ImportRow::new))
///     .on_any_end(ReportImport::new(5)); // whatever became of the rows
/// let id = jobs.batches().enqueue(batch).await?.id;
///
/// let progress = jobs.batches().get(id).await?.expect("stored");
/// println!("{} of {} done, {} failed", progress.ended(), progress.total, progress.failed);
/// let first_page = jobs.batches().members(id, None, 20).await?;
/// assert_eq!(first_page.len(), 20);
///
/// jobs.batches().cancel(id).await?; // every waiting row, and the report
/// assert_eq!(jobs.batches().get(id).await?.unwrap().cancelled, 100);
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
#[derive(Clone, Copy)]
pub struct Batches<'a> {
    pub(crate) store: &'a dyn DynStore,
}

impl fmt::Debug for Batches<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batches").finish_non_exhaustive()
    }
}

impl Batches<'_> {
    /// Stores the batch, its members and its callback, all or none, and
    /// returns once they are durable.
    pub async fn enqueue(&self, batch: NewBatch) -> Result<EnqueuedBatch> {
        let p = batch.into_params()?;
        let store = self.store;
        let enqueued = traced_batch_insert(p, |p| store.batch_insert(p)).await?;
        tracing::debug!(
            batch = enqueued.id.0,
            jobs = enqueued.members.len(),
            "batch enqueued"
        );
        Ok(enqueued)
    }

    /// The batch's progress and callback, or `None` if there is no such
    /// batch (or it was pruned, with its members).
    pub async fn get(&self, id: BatchId) -> Result<Option<BatchRow>> {
        Ok(self.store.batch_get(BatchGetParams::new(id)).await?)
    }

    /// A page of batches, newest first: those older than `before`, at most
    /// `limit`.
    pub async fn list(&self, before: Option<BatchId>, limit: u32) -> Result<Vec<BatchRow>> {
        let mut p = BatchListParams::new().limit(limit);
        p.before = before;
        Ok(self.store.batch_list(p).await?)
    }

    /// A page of the batch's members, newest first: those older than
    /// `before`, at most `limit`.
    pub async fn members(
        &self,
        id: BatchId,
        before: Option<JobId>,
        limit: u32,
    ) -> Result<Vec<JobRow>> {
        let mut p = BatchMembersParams::new(id).limit(limit);
        p.before = before;
        Ok(self.store.batch_members(p).await?)
    }

    /// Cancels the batch: its waiting members and its callback are
    /// cancelled, its running members asked to stop; how many jobs that
    /// was.
    pub async fn cancel(&self, id: BatchId) -> Result<u64> {
        let changed = self.store.batch_cancel(BatchCancelParams::new(id)).await?;
        tracing::info!(batch = id.0, jobs = changed, "batch cancelled");
        Ok(changed)
    }
}
