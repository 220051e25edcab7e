//! Jobs, the `job_*` half of the store, in files by caller: [`run`] and
//! [`claim`] are the server's hot path (insert, claim, complete, progress), [`manage`] what
//! clients and dashboards do to jobs (get, list, count, retry, cancel,
//! delete, prune). The decoding of a job row, which both use, is here.

pub(crate) mod batches;
pub(crate) mod claim;
pub(crate) mod manage;
pub(crate) mod run;

use jobs_core::{
    After, BatchId, JobId, JobRow, JobState, LimitKey, RecurringOrigin, ServerId, Timestamp,
};
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use crate::options::Schema;
use crate::sql::{backoff_of, duration_of_micros, trace_context_of};

/// The statements about jobs of one store.
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) run: run::Statements,
    pub(crate) claim: claim::Statements,
    pub(crate) manage: manage::Statements,
    pub(crate) batches: batches::Statements,
}

impl Statements {
    pub(crate) fn new(schema: &Schema) -> Self {
        let s = &schema.quoted();
        Self {
            run: run::Statements::new(s),
            claim: claim::Statements::new(s),
            manage: manage::Statements::new(s),
            batches: batches::Statements::new(s),
        }
    }
}

fn state(row: &PgRow, column: &str) -> Result<JobState, sqlx::Error> {
    let text: &str = row.try_get(column)?;
    text.parse().map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(e),
    })
}

/// A job from a row with the columns of `sql::JOB_COLUMNS`.
pub(crate) fn job_row(row: &PgRow) -> Result<JobRow, sqlx::Error> {
    let mut job = JobRow::new(
        JobId(row.try_get("id")?),
        row.try_get("name")?,
        row.try_get("queue")?,
        row.try_get("args")?,
        state(row, "state")?,
        row.try_get("created_at")?,
    );
    job.priority = row.try_get("priority")?;
    job.attempt = row.try_get("attempt")?;
    job.max_attempts = row.try_get("max_attempts")?;
    job.run_at = row.try_get("run_at")?;
    job.finished_at = row.try_get("finished_at")?;
    job.claim_token = row.try_get("claim_token")?;
    job.server_id = row.try_get::<Option<Uuid>, _>("server_id")?.map(ServerId);
    job.lease_expires_at = row.try_get("lease_expires_at")?;
    job.cancel_requested = row.try_get("cancel_requested")?;
    job.last_error = row.try_get("last_error")?;
    job.progress = row.try_get("progress")?;
    job.stuck_since = row.try_get("stuck_at")?;
    job.timeout = row
        .try_get::<Option<i64>, _>("timeout_us")?
        .map(duration_of_micros);
    job.backoff = backoff_of(row.try_get("backoff")?)?;
    job.trace_context = trace_context_of(row.try_get("trace_context")?);
    job.unique_key = row.try_get("unique_key")?;
    job.output = row.try_get("output")?;
    let parent: Option<i64> = row.try_get("parent_id")?;
    let on: Option<&str> = row.try_get("continue_on")?;
    let input: Option<String> = row.try_get("input_arg")?;
    job.after = match (parent, on) {
        (Some(parent), Some(on)) => {
            let on = on.parse().map_err(|e: String| sqlx::Error::ColumnDecode {
                index: "continue_on".to_owned(),
                source: e.into(),
            })?;
            let mut after = After::new(JobId(parent), on);
            after.input = input;
            Some(after)
        }
        _ => None,
    };
    job.batch = row.try_get::<Option<i64>, _>("batch_id")?.map(BatchId);
    let limit_key: Option<String> = row.try_get("limit_key")?;
    let limit_running: Option<i32> = row.try_get("limit_running")?;
    job.limit_key = limit_key.map(|key| {
        LimitKey::new(
            key,
            limit_running.map_or(1, |n| u32::try_from(n).unwrap_or(1)),
        )
    });
    let recurring_id: Option<String> = row.try_get("recurring_id")?;
    let scheduled_for: Option<Timestamp> = row.try_get("scheduled_for")?;
    job.recurring = match (recurring_id, scheduled_for) {
        (Some(id), Some(at)) => Some(RecurringOrigin::new(id, at)),
        _ => None,
    };
    Ok(job)
}
