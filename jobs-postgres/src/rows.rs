//! Reading rows back into the core's types.

use std::future::Future;
use std::sync::LazyLock;
use std::task::{Context, Poll, Waker};

use jobs_core::{
    JobEvent, JobGetParams, JobId, JobInsertManyParams, JobRow, JobState, MemoryStore, NewJob,
    RecurringOrigin, ServerId, ServerInfo, Store, Timestamp,
};
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

/// A `JobRow` to clone and overwrite field by field.
///
/// `JobRow` is `#[non_exhaustive]` and has no constructor, so another crate
/// cannot build one with a literal; its fields are public, though, so any
/// existing value can be overwritten completely. The one source of a value is
/// a store: the in-memory store's insert and get complete on their first poll
/// (they never await), so this runs them once, synchronously.
/// TODO(core): replace with `JobRow::new` once the core offers one.
static TEMPLATE: LazyLock<JobRow> = LazyLock::new(|| {
    let store = MemoryStore::new();
    let job = NewJob::new("__jobs_postgres_template", serde_json::Value::Null);
    let id = poll_once(store.job_insert_many(JobInsertManyParams::new(vec![job])))
        .ok()
        .and_then(|ids| ids.first().copied())
        .unwrap_or(JobId(0));
    poll_once(store.job_get(JobGetParams::new(id)))
        .ok()
        .flatten()
        .map(|detail| detail.job)
        .expect("the in-memory store returns the job it was just given")
});

fn poll_once<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the in-memory store is expected never to wait"),
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
    let mut job = TEMPLATE.clone();
    job.id = JobId(row.try_get("id")?);
    job.name = row.try_get("name")?;
    job.queue = row.try_get("queue")?;
    job.args = row.try_get("args")?;
    job.state = state(row, "state")?;
    job.priority = row.try_get("priority")?;
    job.attempt = row.try_get("attempt")?;
    job.max_attempts = row.try_get("max_attempts")?;
    job.run_at = row.try_get("run_at")?;
    job.created_at = row.try_get("created_at")?;
    job.finished_at = row.try_get("finished_at")?;
    job.claim_token = row.try_get("claim_token")?;
    job.server_id = row.try_get::<Option<Uuid>, _>("server_id")?.map(ServerId);
    job.lease_expires_at = row.try_get("lease_expires_at")?;
    job.cancel_requested = row.try_get("cancel_requested")?;
    job.last_error = row.try_get("last_error")?;
    let recurring_id: Option<String> = row.try_get("recurring_id")?;
    let scheduled_for: Option<Timestamp> = row.try_get("scheduled_for")?;
    job.recurring = match (recurring_id, scheduled_for) {
        (Some(id), Some(at)) => Some(recurring_origin(id, at)?),
        _ => None,
    };
    Ok(job)
}

/// `RecurringOrigin` is `#[non_exhaustive]` without a constructor; it
/// deserializes, though.
fn recurring_origin(id: String, at: Timestamp) -> Result<RecurringOrigin, sqlx::Error> {
    serde_json::from_value(serde_json::json!({ "id": id, "scheduled_for": at })).map_err(|e| {
        sqlx::Error::ColumnDecode {
            index: "recurring_id".to_owned(),
            source: Box::new(e),
        }
    })
}

/// A history event from `at, state, attempt, server_id, error`.
pub(crate) fn job_event(row: &PgRow) -> Result<JobEvent, sqlx::Error> {
    Ok(JobEvent::new(
        row.try_get("at")?,
        state(row, "state")?,
        row.try_get("attempt")?,
        row.try_get::<Option<Uuid>, _>("server_id")?.map(ServerId),
        row.try_get("error")?,
    ))
}

/// A server from the columns of `servers`.
pub(crate) fn server_info(row: &PgRow) -> Result<ServerInfo, sqlx::Error> {
    let pid: i64 = row.try_get("pid")?;
    let concurrency: i64 = row.try_get("concurrency")?;
    let mut info = ServerInfo::new(
        ServerId(row.try_get("id")?),
        row.try_get("host")?,
        u32::try_from(pid).unwrap_or(u32::MAX),
        row.try_get("queues")?,
        u32::try_from(concurrency).unwrap_or(u32::MAX),
        row.try_get("job_names")?,
        row.try_get("started_at")?,
    );
    info.heartbeat_at = row.try_get("heartbeat_at")?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    #[test]
    fn template_builds() {
        assert_eq!(super::TEMPLATE.attempt, 0);
    }
}
