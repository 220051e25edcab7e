//! Reading rows back into the core's types.

use jobs_core::{
    JobEvent, JobId, JobRow, JobState, RecurringOrigin, ServerId, ServerInfo, Timestamp,
};
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

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
    let recurring_id: Option<String> = row.try_get("recurring_id")?;
    let scheduled_for: Option<Timestamp> = row.try_get("scheduled_for")?;
    job.recurring = match (recurring_id, scheduled_for) {
        (Some(id), Some(at)) => Some(RecurringOrigin::new(id, at)),
        _ => None,
    };
    Ok(job)
}

/// A job's history from the arrays `event_at`, `event_state`,
/// `event_attempt`, `event_server_id` and `event_error` (one element per
/// event, oldest first), as `sql::Queries::get_job` returns them.
pub(crate) fn job_history(row: &PgRow) -> Result<Vec<JobEvent>, sqlx::Error> {
    let at: Vec<Timestamp> = row.try_get("event_at")?;
    let states: Vec<String> = row.try_get("event_state")?;
    let attempts: Vec<i32> = row.try_get("event_attempt")?;
    let servers: Vec<Option<Uuid>> = row.try_get("event_server_id")?;
    let errors: Vec<Option<String>> = row.try_get("event_error")?;
    let n = at.len();
    if [states.len(), attempts.len(), servers.len(), errors.len()] != [n; 4] {
        return Err(sqlx::Error::Protocol(
            "the history arrays of a job differ in length".to_owned(),
        ));
    }
    at.into_iter()
        .zip(states)
        .zip(attempts)
        .zip(servers)
        .zip(errors)
        .map(|((((at, state), attempt), server), error)| {
            let state = state.parse().map_err(|e| sqlx::Error::ColumnDecode {
                index: "event_state".to_owned(),
                source: Box::new(e),
            })?;
            Ok(JobEvent::new(
                at,
                state,
                attempt,
                server.map(ServerId),
                error,
            ))
        })
        .collect()
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
