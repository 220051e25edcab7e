//! The command line, as clap reads it: the global options (database,
//! schema, output, timeout) and one variant per subcommand. Values that
//! clap cannot check by type (a state name) are parsed here too, so every
//! bad argument is a usage error with exit status 2.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use jobs::postgres::DEFAULT_SCHEMA;
use jobs::{JobFilter, JobId, JobState, RateLimit};

/// Operate the jobs stored in PostgreSQL: migrate the schema, look at
/// queues, servers and jobs, retry, cancel or delete jobs, manage
/// recurring jobs, and pause or resume queues.
///
/// Exit status: 0 on success; 1 when an action was refused or failed (a
/// missing job, a job in the wrong state, `--all` without `--yes`); 2 on a
/// usage error, a bad filter or id, or a database that cannot be reached.
#[derive(Debug, Parser)]
#[command(name = "jobs", version, max_term_width = 100)]
pub(crate) struct Cli {
    /// The PostgreSQL database, as a URL (postgres://user@host:5432/db).
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub(crate) database_url: Option<String>,

    /// The schema holding the jobs tables.
    #[arg(long, default_value = DEFAULT_SCHEMA, global = true)]
    pub(crate) schema: String,

    /// Print JSON (the stored model types) instead of tables, for scripts.
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// How long to wait for the database before giving up, in seconds.
    #[arg(long, default_value_t = 5, value_name = "SECONDS", global = true,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) timeout: u64,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

impl Cli {
    /// The checks clap cannot make, before anything touches the database.
    pub(crate) fn check(&self) -> Result<(), String> {
        match &self.command {
            Command::Retry(act) | Command::Cancel { act, .. } | Command::Delete(act) => act.check(),
            _ => Ok(()),
        }
    }

    /// `--timeout` as a duration.
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Apply the pending migrations of the schema (safe to run again, and
    /// from several processes at once).
    Migrate {
        /// Print the SQL of every migration instead, for your own migration
        /// tool (needs no database); then run servers with migrations off.
        #[arg(long)]
        print: bool,
    },
    /// Jobs per queue and state, the servers with their heartbeat age, and
    /// the jobs no live server can take.
    Status,
    /// List jobs, newest first.
    List(ListArgs),
    /// Show one job with its whole history and every error.
    Show {
        /// The job's id.
        id: i64,
    },
    /// Run failed, cancelled or deleted jobs again, with fresh attempts.
    Retry(ActArgs),
    /// Cancel jobs that have not finished (a running job's server is asked
    /// to stop it).
    Cancel {
        #[command(flatten)]
        act: ActArgs,
        /// Why, kept in each cancelled job's history.
        #[arg(long, default_value = "cancelled by an operator")]
        reason: String,
    },
    /// Delete jobs that are not running (kept as `deleted` until retention
    /// removes them).
    Delete(ActArgs),
    /// Recurring jobs: list, trigger, pause, resume.
    #[command(subcommand)]
    Recurring(RecurringCommand),
    /// Queues: list, pause, resume.
    #[command(subcommand)]
    Queues(QueuesCommand),
    /// Batches: list, show one's progress, cancel one.
    #[command(subcommand)]
    Batches(BatchesCommand),
}

/// What `list` shows.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub(crate) filter: FilterArgs,
    /// At most this many jobs (1 to 1000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) limit: u32,
    /// Only jobs older than this id: the next page after it.
    #[arg(long, value_name = "ID")]
    pub(crate) before: Option<i64>,
}

/// Which jobs a filter picks: `--state`, `--queue`, `--name`.
#[derive(Debug, Args)]
pub(crate) struct FilterArgs {
    /// Only jobs in this state: scheduled, enqueued, processing, succeeded,
    /// failed, cancelled or deleted.
    #[arg(long, value_parser = parse_state)]
    pub(crate) state: Option<JobState>,
    /// Only jobs in this queue.
    #[arg(long)]
    pub(crate) queue: Option<String>,
    /// Only jobs of this stored name.
    #[arg(long)]
    pub(crate) name: Option<String>,
}

impl FilterArgs {
    /// The filter, as the store takes it.
    pub(crate) fn filter(&self) -> JobFilter {
        let mut filter = JobFilter::new();
        if let Some(state) = self.state {
            filter = filter.state(state);
        }
        if let Some(queue) = &self.queue {
            filter = filter.queue(queue.clone());
        }
        if let Some(name) = &self.name {
            filter = filter.name(name.clone());
        }
        filter
    }

    fn is_empty(&self) -> bool {
        self.state.is_none() && self.queue.is_none() && self.name.is_none()
    }
}

/// The jobs `retry`, `cancel` and `delete` act on: ids, or `--all` with a
/// filter, a cap and `--yes`.
#[derive(Debug, Args)]
pub(crate) struct ActArgs {
    /// The jobs' ids.
    #[arg(
        value_name = "ID",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub(crate) ids: Vec<i64>,
    /// Act on every job the filter picks (the newest first, at most
    /// `--limit`), in one statement.
    #[arg(long)]
    pub(crate) all: bool,
    #[command(flatten)]
    pub(crate) filter: FilterArgs,
    /// With `--all`: at most this many jobs (1 to 100000).
    #[arg(long, default_value_t = 1000, requires = "all",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) limit: u32,
    /// With `--all`: do it. Without it, only say how many jobs it would take.
    #[arg(long, short = 'y', requires = "all")]
    pub(crate) yes: bool,
}

impl ActArgs {
    /// The ids, typed.
    pub(crate) fn ids(&self) -> Vec<JobId> {
        self.ids.iter().copied().map(JobId).collect()
    }

    /// A filter flag given with ids rather than `--all`: clap's `requires`
    /// cannot say "any of these needs that", so it is checked here.
    pub(crate) fn check(&self) -> Result<(), String> {
        if !self.all && !self.filter.is_empty() {
            return Err("--state, --queue and --name pick jobs for --all; \
                        give ids or --all, not both"
                .to_owned());
        }
        Ok(())
    }
}

/// `recurring` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum RecurringCommand {
    /// Every recurring job with its schedule, next and last run.
    List,
    /// Enqueue a run now, off schedule, without moving the schedule.
    Trigger {
        /// The recurring job's id.
        id: String,
    },
    /// Stop it from firing until it is resumed.
    Pause {
        /// The recurring job's id.
        id: String,
    },
    /// Let it fire again, from its next tick on.
    Resume {
        /// The recurring job's id.
        id: String,
    },
}

/// `queues` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum QueuesCommand {
    /// Every known queue: whether it is paused, its waiting and running jobs.
    List,
    /// Stop every server from claiming the queue's jobs (running ones
    /// finish) until it is resumed.
    Pause {
        /// The queue's name.
        name: String,
    },
    /// Let servers claim the queue's jobs again, at once.
    Resume {
        /// The queue's name.
        name: String,
    },
    /// Set the queue's limits across all servers, replacing those it had
    /// (a limit not given is lifted); every server applies them from its
    /// next claim on.
    #[command(group(clap::ArgGroup::new("limits").required(true).multiple(true)
        .args(["concurrency", "rate", "none"])))]
    Limit {
        /// The queue's name.
        name: String,
        /// At most this many of its jobs running at once, across all servers.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        concurrency: Option<u32>,
        /// At most N of its jobs started in any period, across all servers:
        /// `N/PERIOD`, the period in s, m, h or d (`100/1m`, `5/s`, `1000/24h`).
        #[arg(long, value_parser = parse_rate)]
        rate: Option<RateLimit>,
        /// Lift both limits.
        #[arg(long, conflicts_with_all = ["concurrency", "rate"])]
        none: bool,
    },
}

/// `batches` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum BatchesCommand {
    /// Batches, newest first, with their progress.
    List {
        /// At most this many batches (1 to 1000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// Only batches older than this id: the next page after it.
        #[arg(long)]
        before: Option<i64>,
    },
    /// One batch: its counters, its callback, and its newest jobs.
    Show {
        /// The batch's id.
        id: i64,
    },
    /// Cancel the batch's waiting jobs and its callback; its running jobs
    /// are asked to stop.
    Cancel {
        /// The batch's id.
        id: i64,
    },
}

/// A state name, or an error listing the valid ones.
fn parse_state(s: &str) -> Result<JobState, String> {
    s.to_ascii_lowercase().parse().map_err(|_| {
        let states: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
        format!(
            "unknown state `{s}`; expected one of: {}",
            states.join(", ")
        )
    })
}

/// `N/PERIOD`: `100/1m`, `5/s`, `1000/24h`, `30/90s`.
fn parse_rate(s: &str) -> Result<RateLimit, String> {
    let usage = || format!("`{s}` is not a rate; expected N/PERIOD, as 100/1m, 5/s or 1000/24h");
    let (jobs, period) = s.split_once('/').ok_or_else(usage)?;
    let jobs: u32 = jobs.trim().parse().map_err(|_| usage())?;
    let period = period.trim();
    let split = period
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(usage)?;
    let (count, unit) = period.split_at(split);
    let count: u64 = if count.is_empty() {
        1
    } else {
        count.parse().map_err(|_| usage())?
    };
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(usage()),
    };
    let rate = RateLimit::new(jobs, Duration::from_secs(count.saturating_mul(unit_secs)));
    jobs::QueueLimits::none()
        .rate(rate)
        .check()
        .map_err(|e| e.to_string())?;
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_state_name_is_parsed_in_any_case_and_a_wrong_one_lists_the_valid_ones() {
        assert_eq!(parse_state("Failed"), Ok(JobState::Failed));
        let error = parse_state("broken").unwrap_err();
        assert!(error.contains("scheduled, enqueued, processing"), "{error}");
    }

    #[test]
    fn a_rate_is_jobs_per_period_with_a_unit() {
        let secs = |s| parse_rate(s).map(|r| (r.jobs, r.per.as_secs()));
        assert_eq!(secs("100/1m"), Ok((100, 60)));
        assert_eq!(secs("5/s"), Ok((5, 1)));
        assert_eq!(secs("1000/24h"), Ok((1000, 86_400)));
        assert_eq!(secs("30/90s"), Ok((30, 90)));
        for wrong in ["100", "x/1m", "5/1w", "5/", "/s", "0/s"] {
            assert!(parse_rate(wrong).is_err(), "{wrong}");
        }
        assert!(parse_rate("1/400d").unwrap_err().contains("31 days"));
    }
}
