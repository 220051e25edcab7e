//! Servers, the `server_*` half of the store: the heartbeats of running
//! servers, listing them, and removing stopped or stale ones.

use jobs_core::{
    ServerHeartbeatParams, ServerId, ServerInfo, ServerListParams, ServerRemoveParams, StoreResult,
};
use sqlx::postgres::PgRow;
use sqlx::Row;

use crate::db::Db;
use crate::error::store_error;
use crate::options::Schema;
use crate::sql::{duration_of_micros, micros};

/// The statements about servers of one store.
#[derive(Debug)]
pub(crate) struct Statements {
    heartbeat: String,
    list: String,
    remove: String,
}

impl Statements {
    pub(crate) fn new(schema: &Schema) -> Self {
        let s = &schema.quoted();
        Self {
            heartbeat: heartbeat_sql(s),
            list: list_sql(s),
            remove: remove_sql(s),
        }
    }
}

// ---- heartbeat

/// $1 id, $2 host, $3 pid, $4 queues, $5 concurrency, $6 job names, $7 start
/// time, $8 attempts running, $9 jobs claimed ahead (migration 0005), $10
/// the age in µs past which it counts itself dead (migration 0015). The
/// heartbeat's time is the database's.
fn heartbeat_sql(s: &str) -> String {
    format!(
        "INSERT INTO {s}.servers (id, host, pid, queues, concurrency, job_names, started_at,
                                  running, claimed_ahead, stale_after_us, heartbeat_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())
         ON CONFLICT (id) DO UPDATE SET
            host = EXCLUDED.host, pid = EXCLUDED.pid, queues = EXCLUDED.queues,
            concurrency = EXCLUDED.concurrency, job_names = EXCLUDED.job_names,
            started_at = EXCLUDED.started_at, running = EXCLUDED.running,
            claimed_ahead = EXCLUDED.claimed_ahead, stale_after_us = EXCLUDED.stale_after_us,
            heartbeat_at = now()"
    )
}

pub(crate) async fn heartbeat(
    db: &Db,
    sql: &Statements,
    p: ServerHeartbeatParams,
) -> StoreResult<()> {
    let info: ServerInfo = p.info;
    sqlx::query(&sql.heartbeat)
        .bind(info.id.0)
        .bind(info.host)
        .bind(i64::from(info.pid))
        .bind(info.queues)
        .bind(i64::from(info.concurrency))
        .bind(info.job_names)
        .bind(info.started_at)
        .bind(i64::from(info.running))
        .bind(i64::from(info.claimed_ahead))
        .bind(micros(info.stale_after))
        .execute(db.pool())
        .await
        .map_err(|e| store_error("recording a heartbeat", e))?;
    Ok(())
}

// ---- list

fn list_sql(s: &str) -> String {
    format!(
        "SELECT id, host, pid, queues, concurrency, job_names, started_at, heartbeat_at,
                running, claimed_ahead, stale_after_us
         FROM {s}.servers ORDER BY started_at DESC, id"
    )
}

pub(crate) async fn list(
    db: &Db,
    sql: &Statements,
    _p: ServerListParams,
) -> StoreResult<Vec<ServerInfo>> {
    sqlx::query(&sql.list)
        .fetch_all(db.pool())
        .await
        .map_err(|e| store_error("listing servers", e))?
        .iter()
        .map(server_info)
        .collect::<Result<_, _>>()
        .map_err(|e| store_error("reading servers", e))
}

/// A server from the columns [`list_sql`] selects.
fn server_info(row: &PgRow) -> Result<ServerInfo, sqlx::Error> {
    let pid: i64 = row.try_get("pid")?;
    let count = |column: &str| -> Result<u32, sqlx::Error> {
        let n: i64 = row.try_get(column)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    };
    let mut info = ServerInfo::new(ServerId(row.try_get("id")?), row.try_get("started_at")?)
        .host(row.try_get::<String, _>("host")?)
        .pid(u32::try_from(pid).unwrap_or(u32::MAX))
        .queues(row.try_get("queues")?)
        .concurrency(count("concurrency")?)
        .job_names(row.try_get("job_names")?)
        .running(count("running")?)
        .claimed_ahead(count("claimed_ahead")?)
        .stale_after(duration_of_micros(row.try_get("stale_after_us")?));
    info.heartbeat_at = row.try_get("heartbeat_at")?;
    Ok(info)
}

// ---- remove

/// $1 the server to remove (or NULL), $2 the age in µs past which a server
/// that stopped sending heartbeats is removed too. Every live server removes
/// the stale ones, so two of them may delete the same rows at once: the
/// rows are locked in id order first, so that they never wait on each other
/// in a cycle (a plain `DELETE` locks rows in its scan's order).
fn remove_sql(s: &str) -> String {
    format!(
        "WITH doomed AS MATERIALIZED (
            SELECT id FROM {s}.servers
            WHERE id = $1 OR heartbeat_at < now() - $2 * interval '1 microsecond'
            ORDER BY id
            FOR UPDATE
        )
        DELETE FROM {s}.servers v USING doomed d WHERE v.id = d.id"
    )
}

pub(crate) async fn remove(db: &Db, sql: &Statements, p: ServerRemoveParams) -> StoreResult<u64> {
    let done = sqlx::query(&sql.remove)
        .bind(p.id.map(|id| id.0))
        .bind(micros(p.stale_after))
        .execute(db.pool())
        .await
        .map_err(|e| store_error("removing servers", e))?;
    Ok(done.rows_affected())
}
