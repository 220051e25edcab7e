//! The dashboard workload (`jobs-bench dashboard`): a store of a million
//! jobs in mixed states, inserted by SQL, with recurring entries and live
//! servers, then every page and every filter of the dashboard requested
//! through its router, in process; p50 and p95 per page.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use jobs::dashboard::Dashboard;
use jobs::{Cron, Jobs, Server};
use tower::ServiceExt as _;

use crate::args::DashboardOptions;
use crate::{job, stores};

/// The finished states, as the store counts them (`job_counts`).
const FINISHED: &str = "('succeeded', 'failed', 'cancelled', 'deleted')";

/// Fills the schema with `n` jobs by SQL: 70 % succeeded, 10 % failed, 5 %
/// cancelled, 3 % deleted, 7 % enqueued, 3 % scheduled, 2 % running, over
/// five queues and twenty names, created a few hours back, one in ten
/// thousand failed ones with a long error; the finished-job counters set
/// to match, then `VACUUM ANALYZE`, as a database that has lived would be.
async fn fill(admin: &sqlx::PgPool, schema: &str, n: u64) -> Result<()> {
    let s = format!("\"{schema}\"");
    let insert = format!(
        "INSERT INTO {s}.jobs (name, queue, args, state, priority, attempt, max_attempts, run_at,
                               created_at, finished_at, claim_token, lease_expires_at, last_error)
         SELECT 'job_' || (i % 20), 'queue_' || (i % 5),
                jsonb_build_object('customer_id', i % 10000, 'order', i, 'note', 'x'),
                st, 0, CASE WHEN st IN ('enqueued', 'scheduled') THEN 0 ELSE 1 END, 3,
                CASE WHEN st = 'scheduled' THEN now() + interval '1 hour' ELSE t END,
                t, CASE WHEN st IN {FINISHED} THEN t + interval '1 second' END,
                CASE WHEN st IN ('enqueued', 'scheduled') THEN 0 ELSE 1 END,
                CASE WHEN st = 'processing' THEN now() + interval '1 hour' END,
                CASE WHEN st = 'failed' THEN 'boom: customer ' || (i % 10000) || ' refused' END
         FROM (SELECT i, now() - ($1 - i) * interval '10 milliseconds' AS t,
                      CASE WHEN i % 100 < 70 THEN 'succeeded' WHEN i % 100 < 80 THEN 'failed'
                           WHEN i % 100 < 85 THEN 'cancelled' WHEN i % 100 < 88 THEN 'deleted'
                           WHEN i % 100 < 95 THEN 'enqueued' WHEN i % 100 < 98 THEN 'scheduled'
                           ELSE 'processing' END AS st
               FROM generate_series(1, $1::int8) AS i) AS g"
    );
    sqlx::query(&insert)
        .bind(i64::try_from(n).unwrap_or(i64::MAX))
        .execute(admin)
        .await
        .context("inserting the jobs")?;
    let counts = format!(
        "INSERT INTO {s}.job_counts (queue, state, shard, n)
         SELECT queue, state, 0, count(*) FROM {s}.jobs WHERE state IN {FINISHED}
         GROUP BY queue, state"
    );
    sqlx::query(&counts)
        .execute(admin)
        .await
        .context("setting the counters")?;
    sqlx::query(&format!("VACUUM ANALYZE {s}.jobs"))
        .execute(admin)
        .await
        .context("vacuuming")?;
    Ok(())
}

/// The pages requested, each `requests` times: every page, and the jobs
/// list with each filter.
fn pages(failed: i64, middle: i64) -> Vec<(&'static str, String)> {
    vec![
        ("overview", "/".to_owned()),
        ("jobs", "/jobs".to_owned()),
        ("jobs state=failed", "/jobs?state=failed".to_owned()),
        (
            "jobs state=enqueued queue",
            "/jobs?state=enqueued&queue=queue_3".to_owned(),
        ),
        ("jobs name", "/jobs?name=job_7".to_owned()),
        (
            "jobs queue+name",
            "/jobs?queue=queue_2&name=job_12".to_owned(),
        ),
        (
            "jobs page (before)",
            format!("/jobs?state=succeeded&before={middle}"),
        ),
        (
            "jobs args (common)",
            "/jobs?args=%7B%22note%22%3A%22x%22%7D".to_owned(),
        ),
        (
            "jobs args (1 in 10,000)",
            "/jobs?state=failed&args=%7B%22customer_id%22%3A4210%7D".to_owned(),
        ),
        ("job", format!("/jobs/{failed}")),
        ("queues", "/queues".to_owned()),
        ("recurring", "/recurring".to_owned()),
        ("servers", "/servers".to_owned()),
        ("batches", "/batches".to_owned()),
    ]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub(crate) async fn run(o: DashboardOptions) -> Result<()> {
    let admin = stores::admin_pool(&o.url, 2).await?;
    let load = |label: &str| {
        let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        eprintln!(
            "# {label}: load average {}",
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    };
    load("before");
    let store = stores::fresh_pg(&admin, &o.url, &o.schema).await?;
    let started = Instant::now();
    fill(&admin, &o.schema, o.jobs).await?;
    eprintln!(
        "# {} jobs inserted in {:.1} s",
        o.jobs,
        started.elapsed().as_secs_f64()
    );
    let jobs = Jobs::new(store.clone());
    for (id, cron) in [
        ("nightly-report", Cron::daily()),
        ("hourly-sync", Cron::hourly()),
        ("every-minute", Cron::minutely()),
    ] {
        jobs.recurring()
            .add_or_update(id, cron, job::request(0))
            .await
            .with_context(|| format!("adding the recurring entry {id}"))?;
    }
    // Live servers with heartbeats, on a queue that holds no job: they
    // change nothing the pages read but their own rows.
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(
            Server::builder(store.clone())
                .queues(["bench_idle"])
                .start()
                .await
                .context("starting a server")?,
        );
    }
    let (failed, middle): (i64, i64) = sqlx::query_as(&format!(
        "SELECT (SELECT max(id) FROM \"{s}\".jobs WHERE state = 'failed'),
                (SELECT max(id) / 2 FROM \"{s}\".jobs)",
        s = o.schema
    ))
    .fetch_one(&admin)
    .await
    .context("finding a failed job")?;
    let app = Dashboard::builder(jobs.clone())
        .behind_application_auth()
        .router();
    load("measuring");
    println!(
        "{}",
        serde_json::json!({ "benchmark": "jobs-bench dashboard", "jobs": o.jobs, "requests": o.requests })
    );
    let mut table = Vec::new();
    for (label, uri) in pages(failed, middle) {
        let mut times = Vec::with_capacity(o.requests);
        // One request first, not timed: the statements are prepared on it.
        for i in 0..=o.requests {
            let request = Request::get(&uri).body(Body::empty())?;
            let t = Instant::now();
            let response = app.clone().oneshot(request).await?;
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 24).await?;
            let elapsed = t.elapsed();
            if status != StatusCode::OK {
                bail!(
                    "{uri} answered {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            if i > 0 {
                times.push(elapsed);
            }
        }
        times.sort();
        let (p50, p95) = (percentile(&times, 0.5), percentile(&times, 0.95));
        let ms = |d: Duration| (d.as_secs_f64() * 1e5).round() / 100.0;
        println!(
            "{}",
            serde_json::json!({ "page": label, "uri": uri, "p50_ms": ms(p50), "p95_ms": ms(p95), "max_ms": ms(times[times.len() - 1]) })
        );
        table.push((label, ms(p50), ms(p95)));
    }
    load("after");
    println!();
    println!(
        "{:<28} {:>9} {:>9}  target p95 <= 50 ms",
        "page", "p50 ms", "p95 ms"
    );
    for (label, p50, p95) in table {
        println!("{label:<28} {p50:>9.2} {p95:>9.2}");
    }
    for server in servers {
        server.shutdown().await;
    }
    store.close().await;
    stores::drop_schema(&admin, &o.schema).await?;
    Ok(())
}
