//! What each subcommand does, through the `Jobs` client: read, print as a
//! table or JSON, and say by the exit status whether everything asked for
//! was done.

use std::process::ExitCode;

use jobs::{
    BatchId, CancelOutcome, ContinueOn, JobActMatchingParams, JobActOutcome, JobAction, JobDetail,
    JobFilter, JobId, JobRow, JobState, ListJobs, QueueLimits, StoreErrorKind, Timestamp,
};
use serde_json::json;

use crate::args::{
    ActArgs, BatchesCommand, Cli, Command, ListArgs, QueuesCommand, RecurringCommand,
};
use crate::output::{self, age, one_line, time, time_or_dash, Table};
use crate::{Connection, FAILED};

/// How many of the jobs an `--all` without `--yes` would take are shown.
const PREVIEW_ROWS: usize = 10;

/// How many ids a done `--all` names before "and N more".
const SHOWN_IDS: usize = 20;

/// Runs the subcommand on the connected store.
pub(crate) async fn run(cli: &Cli, db: &Connection) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Migrate { .. } => {
            db.store.migrate().await?;
            if cli.json {
                output::json(&json!({ "schema": cli.schema, "migrated": true }))?;
            } else {
                println!("schema `{}` is migrated", cli.schema);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status => status(cli, db).await,
        Command::List(args) => list(cli, db, args).await,
        Command::Show { id } => show(cli, db, JobId(*id)).await,
        Command::Retry(act) => act_on(cli, db, act, JobAction::Retry).await,
        Command::Cancel { act, reason } => {
            let action = JobAction::Cancel {
                reason: reason.clone(),
            };
            act_on(cli, db, act, action).await
        }
        Command::Delete(act) => act_on(cli, db, act, JobAction::Delete).await,
        Command::Recurring(command) => recurring(cli, db, command).await,
        Command::Queues(command) => queues(cli, db, command).await,
        Command::Batches(command) => batches(cli, db, command).await,
    }
}

/// The database's clock, which every stored time is on.
async fn db_now(db: &Connection) -> anyhow::Result<Timestamp> {
    Ok(sqlx::query_scalar("SELECT now()")
        .fetch_one(&db.pool)
        .await?)
}

// ---- status

async fn status(cli: &Cli, db: &Connection) -> anyhow::Result<ExitCode> {
    let counts = db.jobs.counts().await?;
    let summary = db.jobs.server_summary().await?;
    let stranded = db.jobs.stranded().await?;
    let now = db_now(db).await?;
    if cli.json {
        output::json(&json!({
            "now": now,
            "counts": counts,
            "servers": summary,
            "stranded": stranded,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }

    println!("JOBS");
    if counts.is_empty() {
        println!("no jobs");
    } else {
        let mut header = vec!["QUEUE"];
        let upper: Vec<&'static str> = JobState::ALL.iter().map(|s| state_header(*s)).collect();
        header.extend(upper);
        let mut table = Table::new(&header);
        let mut queues: Vec<&str> = counts.iter().map(|c| c.queue.as_str()).collect();
        queues.dedup();
        for queue in queues {
            let mut row = vec![queue.to_owned()];
            for state in JobState::ALL {
                let n = counts
                    .iter()
                    .find(|c| c.queue == queue && c.state == state)
                    .map_or(0, |c| c.count);
                row.push(n.to_string());
            }
            table.row(row);
        }
        table.print();
    }

    println!();
    println!(
        "SERVERS  {} servers, running {} of {} slots, {} jobs claimed ahead",
        summary.servers.len(),
        summary.running,
        summary.concurrency,
        summary.claimed_ahead
    );
    if !summary.servers.is_empty() {
        let mut table = Table::new(&[
            "ID",
            "HOST",
            "PID",
            "QUEUES",
            "RUNNING",
            "AHEAD",
            "SLOTS",
            "STARTED",
            "HEARTBEAT",
        ]);
        for s in &summary.servers {
            // Each server by its own heartbeat interval (`stale_after`).
            let stale = s.is_stale_at(now);
            table.row(vec![
                s.id.to_string(),
                s.host.clone(),
                s.pid.to_string(),
                s.queues.join(","),
                s.running.to_string(),
                s.claimed_ahead.to_string(),
                s.concurrency.to_string(),
                time(s.started_at),
                format!(
                    "{} ago{}",
                    age(now, s.heartbeat_at),
                    if stale { " (stale)" } else { "" }
                ),
            ]);
        }
        table.print();
    }

    println!();
    println!("STRANDED  due jobs no live server can take");
    if stranded.is_empty() {
        println!("none");
    } else {
        let mut table = Table::new(&["QUEUE", "NAME", "COUNT", "WAITING", "REASON"]);
        for group in &stranded {
            table.row(vec![
                group.queue.clone(),
                group.name.clone(),
                group.count.to_string(),
                age(now, group.oldest_due),
                group.reason.to_string(),
            ]);
        }
        table.print();
    }
    Ok(ExitCode::SUCCESS)
}

fn state_header(state: JobState) -> &'static str {
    match state {
        JobState::Awaiting => "AWAITING",
        JobState::Scheduled => "SCHEDULED",
        JobState::Enqueued => "ENQUEUED",
        JobState::Processing => "PROCESSING",
        JobState::Succeeded => "SUCCEEDED",
        JobState::Failed => "FAILED",
        JobState::Cancelled => "CANCELLED",
        JobState::Deleted => "DELETED",
        _ => "OTHER",
    }
}

// ---- list and show

async fn list(cli: &Cli, db: &Connection, args: &ListArgs) -> anyhow::Result<ExitCode> {
    let mut which = ListJobs::new()
        .matching(args.filter.filter())
        .limit(args.limit);
    if let Some(before) = args.before {
        which = which.before(JobId(before));
    }
    let rows = db.jobs.list(which).await?;
    if cli.json {
        output::json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no jobs match");
        return Ok(ExitCode::SUCCESS);
    }
    jobs_table(&rows).print();
    if rows.len() == args.limit as usize {
        if let Some(last) = rows.last() {
            eprintln!(
                "(at most {} shown; the next page: --before {})",
                args.limit, last.id
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Jobs as `list` shows them.
fn jobs_table(rows: &[JobRow]) -> Table {
    let mut table = Table::new(&[
        "ID", "STATE", "QUEUE", "NAME", "ATTEMPT", "CREATED", "RUN AT", "ERROR",
    ]);
    for job in rows {
        table.row(vec![
            job.id.to_string(),
            job.state.to_string(),
            job.queue.clone(),
            job.name.clone(),
            format!("{}/{}", job.attempt, job.max_attempts),
            time(job.created_at),
            time(job.run_at),
            job.last_error
                .as_deref()
                .map_or_else(String::new, |e| one_line(e, 60)),
        ]);
    }
    table
}

async fn show(cli: &Cli, db: &Connection, id: JobId) -> anyhow::Result<ExitCode> {
    let Some(detail) = db.jobs.get(id).await? else {
        anyhow::bail!("job {id} does not exist");
    };
    if cli.json {
        output::json(&detail)?;
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", render_detail(&detail));
    Ok(ExitCode::SUCCESS)
}

/// A job's fields, one per line, then its history and every error in full.
fn render_detail(detail: &JobDetail) -> String {
    let job = &detail.job;
    let mut fields: Vec<(&str, String)> = vec![
        ("id", job.id.to_string()),
        ("name", job.name.clone()),
        ("queue", job.queue.clone()),
        (
            "state",
            format!(
                "{} (attempt {} of {})",
                job.state, job.attempt, job.max_attempts
            ),
        ),
        ("priority", job.priority.to_string()),
        ("args", job.args.to_string()),
        ("created", time(job.created_at)),
        ("run at", time(job.run_at)),
        ("finished", time_or_dash(job.finished_at)),
    ];
    if let Some(server) = job.server_id {
        fields.push(("server", server.to_string()));
    }
    if job.cancel_requested {
        fields.push((
            "cancel",
            "requested; its server was asked to stop it".to_owned(),
        ));
    }
    if let Some(origin) = &job.recurring {
        fields.push((
            "recurring",
            format!("{} (tick {})", origin.id, time(origin.scheduled_for)),
        ));
    }
    if let Some(limit) = &job.limit_key {
        fields.push((
            "key limit",
            format!("{}, at most {} running at once", limit.key, limit.running),
        ));
    }
    if let Some(progress) = &job.progress {
        fields.push(("progress", progress.to_string()));
    }
    if let Some(stuck) = job.stuck_since {
        fields.push(("stuck since", time(stuck)));
    }
    if let Some(timeout) = job.timeout {
        fields.push(("timeout", output::short_duration(timeout)));
    }
    if let Some(error) = &job.last_error {
        fields.push(("last error", one_line(error, 200)));
    }
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in &fields {
        out.push_str(&format!("{key:<width$}  {value}\n"));
    }

    out.push_str("\nHISTORY\n");
    if detail.history.is_empty() {
        out.push_str("no transitions recorded\n");
        return out;
    }
    let mut table = Table::new(&["AT", "STATE", "ATTEMPT", "SERVER", "ERROR"]);
    for event in &detail.history {
        table.row(vec![
            time(event.at),
            event.state.to_string(),
            event.attempt.to_string(),
            event
                .server_id
                .map_or_else(|| "-".to_owned(), |s| s.to_string()),
            event
                .error
                .as_deref()
                .map_or_else(String::new, |e| one_line(e, 80)),
        ]);
    }
    out.push_str(&table.render());

    let errors: Vec<_> = detail
        .history
        .iter()
        .filter_map(|e| e.error.as_ref().map(|text| (e, text)))
        .collect();
    if !errors.is_empty() {
        out.push_str("\nERRORS\n");
        for (event, text) in errors {
            out.push_str(&format!(
                "{} {} (attempt {}):\n",
                time(event.at),
                event.state,
                event.attempt
            ));
            for line in text.lines() {
                out.push_str(&format!("    {line}\n"));
            }
        }
    }
    out
}

// ---- retry, cancel, delete

async fn act_on(
    cli: &Cli,
    db: &Connection,
    args: &ActArgs,
    action: JobAction,
) -> anyhow::Result<ExitCode> {
    if args.all {
        act_matching(cli, db, args, action).await
    } else {
        act_on_ids(cli, db, &args.ids(), &action).await
    }
}

/// Each id in turn: every one is tried, each reported; exit 1 if any was
/// missing or refused. An unreachable database stops at once (exit 2).
async fn act_on_ids(
    cli: &Cli,
    db: &Connection,
    ids: &[JobId],
    action: &JobAction,
) -> anyhow::Result<ExitCode> {
    let mut reports = Vec::new();
    let mut failed = false;
    for &id in ids {
        let result = match action {
            JobAction::Retry => db.jobs.retry(id).await.map(|()| "retried"),
            JobAction::Cancel { reason } => {
                db.store_cancel(id, reason)
                    .await
                    .map(|outcome| match outcome {
                        CancelOutcome::Requested => "cancel_requested",
                        _ => "cancelled",
                    })
            }
            _ => db.jobs.delete(id).await.map(|()| "deleted"),
        };
        match result {
            Ok(done) => {
                if !cli.json {
                    println!("{}", done_message(id, done));
                }
                reports.push(json!({ "id": id, "result": done }));
            }
            Err(jobs::Error::Store(e)) if e.kind() != StoreErrorKind::Unavailable => {
                failed = true;
                if !cli.json {
                    eprintln!("error: {e}");
                }
                let kind = match e.kind() {
                    StoreErrorKind::NotFound => "not_found",
                    StoreErrorKind::Conflict => "conflict",
                    _ => "error",
                };
                reports.push(json!({ "id": id, "result": kind, "error": e.to_string() }));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if cli.json {
        output::json(&reports)?;
    }
    Ok(if failed {
        ExitCode::from(FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

fn done_message(id: JobId, done: &str) -> String {
    match done {
        "retried" => format!("job {id} retried: enqueued with fresh attempts"),
        "cancelled" => format!("job {id} cancelled"),
        "cancel_requested" => {
            format!("job {id} is running: its server was asked to stop it")
        }
        _ => format!("job {id} deleted"),
    }
}

impl Connection {
    /// `Jobs::cancel` takes no reason; the store's operation does.
    async fn store_cancel(&self, id: JobId, reason: &str) -> jobs::Result<CancelOutcome> {
        let p = jobs::store::JobCancelParams::new(id).reason(reason);
        Ok(self.jobs.store().job_cancel(p).await?)
    }
}

/// `--all`: one store call. Without `--yes`, a dry run: how many jobs it
/// would take, the first of them, and exit 1.
async fn act_matching(
    cli: &Cli,
    db: &Connection,
    args: &ActArgs,
    action: JobAction,
) -> anyhow::Result<ExitCode> {
    let filter = args.filter.filter();
    let verb = action.as_str();
    let p = JobActMatchingParams::new(action.clone(), filter.clone()).limit(args.limit);
    let dry_run = !args.yes;
    let outcome = db.jobs.act_matching(p.dry_run(dry_run)).await?;
    if cli.json {
        output::json(&json!({
            "action": verb,
            "dry_run": dry_run,
            "outcome": outcome,
        }))?;
    } else if dry_run {
        print_preview(db, &action, &filter, args.limit, &outcome).await?;
    } else {
        print_done(&action, args.limit, &outcome);
    }
    Ok(if dry_run {
        ExitCode::from(FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

fn describe(filter: &JobFilter) -> String {
    let mut parts = Vec::new();
    if let Some(state) = filter.state {
        parts.push(format!("--state {state}"));
    }
    if let Some(queue) = &filter.queue {
        parts.push(format!("--queue {queue}"));
    }
    if let Some(name) = &filter.name {
        parts.push(format!("--name {name}"));
    }
    if parts.is_empty() {
        "every job".to_owned()
    } else {
        parts.join(" ")
    }
}

async fn print_preview(
    db: &Connection,
    action: &JobAction,
    filter: &JobFilter,
    limit: u32,
    outcome: &JobActOutcome,
) -> anyhow::Result<()> {
    let verb = action.as_str();
    let more = if outcome.more {
        format!(" (more match: at most --limit {limit} per run)")
    } else {
        String::new()
    };
    println!(
        "{verb} would take {} jobs matching {}{more}",
        outcome.count(),
        describe(filter)
    );
    if !outcome.requested.is_empty() {
        println!(
            "of which {} are running: their servers would be asked to stop them",
            outcome.requested.len()
        );
    }
    let mut ids: Vec<JobId> = outcome
        .changed
        .iter()
        .chain(&outcome.requested)
        .copied()
        .collect();
    ids.sort_by(|a, b| b.cmp(a));
    let mut rows = Vec::new();
    for id in ids.iter().take(PREVIEW_ROWS) {
        if let Some(detail) = db.jobs.get(*id).await? {
            rows.push(detail.job);
        }
    }
    if !rows.is_empty() {
        jobs_table(&rows).print();
        if ids.len() > rows.len() {
            println!("... and {} more", ids.len() - rows.len());
        }
    }
    eprintln!("nothing was done: add --yes to {verb} them");
    Ok(())
}

fn print_done(action: &JobAction, limit: u32, outcome: &JobActOutcome) {
    let done = match action {
        JobAction::Retry => "retried",
        JobAction::Cancel { .. } => "cancelled",
        _ => "deleted",
    };
    println!(
        "{done} {} jobs{}",
        outcome.changed.len(),
        id_list(&outcome.changed)
    );
    if !outcome.requested.is_empty() {
        println!(
            "asked the servers of {} running jobs to stop them{}",
            outcome.requested.len(),
            id_list(&outcome.requested)
        );
    }
    if outcome.more {
        println!("more jobs match than --limit {limit}: run it again for the next ones");
    }
}

/// `: 42, 41, 40` (and how many more), or nothing for no ids.
fn id_list(ids: &[JobId]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = ids
        .iter()
        .take(SHOWN_IDS)
        .map(ToString::to_string)
        .collect();
    let rest = ids.len().saturating_sub(SHOWN_IDS);
    let tail = if rest > 0 {
        format!(" and {rest} more")
    } else {
        String::new()
    };
    format!(": {}{tail}", shown.join(", "))
}

// ---- recurring

async fn recurring(
    cli: &Cli,
    db: &Connection,
    command: &RecurringCommand,
) -> anyhow::Result<ExitCode> {
    let recurring = db.jobs.recurring();
    match command {
        RecurringCommand::List => {
            let rows = recurring.list().await?;
            if cli.json {
                output::json(&rows)?;
                return Ok(ExitCode::SUCCESS);
            }
            if rows.is_empty() {
                println!("no recurring jobs");
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = Table::new(&[
                "ID",
                "SCHEDULE",
                "ZONE",
                "JOB",
                "QUEUE",
                "PAUSED",
                "NEXT RUN",
                "LAST RUN",
                "LAST JOB",
                "LAST ERROR",
            ]);
            for row in &rows {
                let last_job = match (row.last_job_id, row.last_job_state) {
                    (Some(id), Some(state)) => format!("{id} ({state})"),
                    (Some(id), None) => format!("{id} (gone)"),
                    _ => "-".to_owned(),
                };
                table.row(vec![
                    row.def.id.clone(),
                    row.def.schedule.clone(),
                    row.def.time_zone.clone(),
                    row.def.job.name.clone(),
                    row.def.job.queue.clone(),
                    if row.paused { "yes" } else { "no" }.to_owned(),
                    time_or_dash(row.next_run_at),
                    time_or_dash(row.last_run_at),
                    last_job,
                    row.last_error
                        .as_deref()
                        .map_or_else(String::new, |e| one_line(e, 60)),
                ]);
            }
            table.print();
        }
        RecurringCommand::Trigger { id } => {
            let job = recurring.trigger(id).await?;
            if cli.json {
                output::json(&json!({ "id": id, "job_id": job }))?;
            } else {
                println!("recurring job `{id}` triggered: job {job} enqueued");
            }
        }
        RecurringCommand::Pause { id } => {
            recurring.pause(id).await?;
            if cli.json {
                output::json(&json!({ "id": id, "paused": true }))?;
            } else {
                println!("recurring job `{id}` paused");
            }
        }
        RecurringCommand::Resume { id } => {
            recurring.resume(id).await?;
            if cli.json {
                output::json(&json!({ "id": id, "paused": false }))?;
            } else {
                println!("recurring job `{id}` resumed");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

// ---- queues

async fn queues(cli: &Cli, db: &Connection, command: &QueuesCommand) -> anyhow::Result<ExitCode> {
    let queues = db.jobs.queues();
    match command {
        QueuesCommand::List => {
            let rows = queues.list().await?;
            if cli.json {
                output::json(&rows)?;
                return Ok(ExitCode::SUCCESS);
            }
            if rows.is_empty() {
                println!("no queues");
                return Ok(ExitCode::SUCCESS);
            }
            let counts = db.jobs.counts().await?;
            let count = |queue: &str, states: &[JobState]| -> i64 {
                counts
                    .iter()
                    .filter(|c| c.queue == queue && states.contains(&c.state))
                    .map(|c| c.count)
                    .sum()
            };
            let mut table = Table::new(&[
                "QUEUE",
                "PAUSED",
                "PAUSED AT",
                "CONCURRENCY",
                "RATE",
                "WAITING",
                "RUNNING",
            ]);
            for row in &rows {
                table.row(vec![
                    row.queue.clone(),
                    if row.paused { "yes" } else { "no" }.to_owned(),
                    time_or_dash(row.paused_at),
                    row.limits
                        .concurrency
                        .map_or_else(|| "-".to_owned(), |n| n.to_string()),
                    row.limits.rate.map_or_else(
                        || "-".to_owned(),
                        |r| format!("{}/{}s", r.jobs, r.per.as_secs()),
                    ),
                    count(&row.queue, &[JobState::Enqueued, JobState::Scheduled]).to_string(),
                    count(&row.queue, &[JobState::Processing]).to_string(),
                ]);
            }
            table.print();
        }
        QueuesCommand::Pause { name } => {
            queues.pause(name).await?;
            if cli.json {
                output::json(&json!({ "queue": name, "paused": true }))?;
            } else {
                println!("queue `{name}` paused: its jobs wait until it is resumed");
            }
        }
        QueuesCommand::Limit {
            name,
            concurrency,
            rate,
            none: _,
        } => {
            let mut limits = QueueLimits::none();
            if let Some(n) = concurrency {
                limits = limits.concurrency(*n);
            }
            if let Some(rate) = rate {
                limits = limits.rate(*rate);
            }
            queues.set_limits(name, limits).await?;
            if cli.json {
                output::json(&json!({ "queue": name, "limits": limits }))?;
            } else if limits.is_none() {
                println!("queue `{name}`: limits lifted");
            } else {
                let concurrency = limits
                    .concurrency
                    .map(|n| format!("at most {n} running at once"));
                let rate = limits
                    .rate
                    .map(|r| format!("at most {} started per {} s", r.jobs, r.per.as_secs()));
                let said: Vec<String> = concurrency.into_iter().chain(rate).collect();
                println!("queue `{name}`: {}, across all servers", said.join(", "));
            }
        }
        QueuesCommand::Resume { name } => {
            queues.resume(name).await?;
            if cli.json {
                output::json(&json!({ "queue": name, "paused": false }))?;
            } else {
                println!("queue `{name}` resumed");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

// ---- batches

/// How many of a batch's jobs `batches show` lists.
const BATCH_JOBS_SHOWN: u32 = 20;

async fn batches(cli: &Cli, db: &Connection, command: &BatchesCommand) -> anyhow::Result<ExitCode> {
    let batches = db.jobs.batches();
    match command {
        BatchesCommand::List { limit, before } => {
            let rows = batches.list(before.map(BatchId), *limit).await?;
            if cli.json {
                output::json(&rows)?;
                return Ok(ExitCode::SUCCESS);
            }
            if rows.is_empty() {
                println!("no batches");
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = Table::new(&[
                "ID",
                "CREATED",
                "TOTAL",
                "PENDING",
                "SUCCEEDED",
                "FAILED",
                "CANCELLED",
                "ENDED",
                "CALLBACK",
            ]);
            for row in &rows {
                table.row(vec![
                    row.id.to_string(),
                    time(row.created_at),
                    row.total.to_string(),
                    row.pending.to_string(),
                    row.succeeded.to_string(),
                    row.failed.to_string(),
                    row.cancelled.to_string(),
                    time_or_dash(row.finished_at),
                    row.callback
                        .map_or_else(|| "-".to_owned(), |id| id.to_string()),
                ]);
            }
            table.print();
        }
        BatchesCommand::Show { id } => {
            let Some(batch) = batches.get(BatchId(*id)).await? else {
                anyhow::bail!("batch {id} does not exist");
            };
            let jobs = batches
                .members(BatchId(*id), None, BATCH_JOBS_SHOWN)
                .await?;
            if cli.json {
                output::json(&json!({ "batch": batch, "jobs": jobs }))?;
                return Ok(ExitCode::SUCCESS);
            }
            let callback = match (batch.callback, batch.callback_on) {
                (Some(job), Some(ContinueOn::Success)) => format!("job {job}, when all succeeded"),
                (Some(job), _) => format!("job {job}, when all ended"),
                _ => "none".to_owned(),
            };
            for (field, value) in [
                ("id", batch.id.to_string()),
                ("created", time(batch.created_at)),
                (
                    "progress",
                    format!("{} of {} ended", batch.ended(), batch.total),
                ),
                ("pending", batch.pending.to_string()),
                ("succeeded", batch.succeeded.to_string()),
                ("failed", batch.failed.to_string()),
                ("cancelled", batch.cancelled.to_string()),
                ("ended", time_or_dash(batch.finished_at)),
                ("callback", callback),
            ] {
                println!("{field:<10} {value}");
            }
            println!();
            print!("{}", jobs_table(&jobs).render());
        }
        BatchesCommand::Cancel { id } => {
            let changed = batches.cancel(BatchId(*id)).await?;
            if cli.json {
                output::json(&json!({ "batch": id, "jobs": changed }))?;
            } else {
                println!("batch {id} cancelled: {changed} jobs cancelled or asked to stop");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
