//! Recurring jobs: a [`Cron`] schedule plus a job request, stored under an id
//! of the application's choosing (Hangfire's `RecurringJob.AddOrUpdate`).
//!
//! # Exactly once per tick
//!
//! Every server runs a scheduler pass every second. A pass reads the due
//! entries with the store's clock, works out which ticks to run (the misfire
//! policy), and asks the store to *fire* each entry: in one atomic step the
//! store compares the entry's `next_run_at` with the value the pass read and,
//! only if it is unchanged, inserts the jobs and moves `next_run_at` on. Two
//! servers racing for one tick compute the same plan; one wins the
//! compare-and-set, the other changes nothing. A server that dies mid-pass
//! either fired the tick (jobs and new `next_run_at` together) or did not
//! (the next pass of any server fires it), so correctness does not depend on
//! a leader. PostgreSQL also keeps a unique index on (recurring id, tick).
//!
//! # Misfires
//!
//! When no server ran at a tick's time (downtime), [`Misfire`] decides what
//! the next pass does; the default runs once for all the missed ticks, like
//! Hangfire. The run's [`JobContext::scheduled_for`](crate::JobContext::scheduled_for)
//! tells the job which tick it stands for.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::cron::Cron;
use crate::error::{Error, Result};
use crate::model::{JobId, JobState, NewJob, RecurringOrigin, RunAt, Timestamp};

/// What the scheduler does with ticks that passed while no server ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Misfire {
    /// One run for all the missed ticks, standing for the earliest of them (Hangfire's default).
    #[default]
    RunOnce,
    /// Run a tick only if a server sees it within a minute of its time; skip
    /// the others and wait for the next tick.
    Skip,
    /// One run per missed tick, the earliest `limit` of them.
    RunAll {
        /// At most this many runs to catch up.
        limit: u32,
    },
}

/// A tick is on time for [`Misfire::Skip`] if it is seen within this long.
pub const MISFIRE_GRACE: Duration = Duration::from_secs(60);

impl fmt::Display for Misfire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Misfire::RunOnce => f.write_str("run_once"),
            Misfire::Skip => f.write_str("skip"),
            Misfire::RunAll { limit } => write!(f, "run_all:{limit}"),
        }
    }
}

/// As its [`Display`](fmt::Display) form, the stored one (`run_all:5`).
impl serde::Serialize for Misfire {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl FromStr for Misfire {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "run_once" => Ok(Misfire::RunOnce),
            "skip" => Ok(Misfire::Skip),
            _ => s
                .strip_prefix("run_all:")
                .and_then(|n| n.parse().ok())
                .map(|limit| Misfire::RunAll { limit })
                .ok_or_else(|| Error::UnknownPolicy {
                    policy: "misfire",
                    value: s.to_owned(),
                }),
        }
    }
}

/// What the scheduler does at a tick while the previous run is unfinished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overlap {
    /// Run anyway (the default).
    #[default]
    Allow,
    /// Skip the tick, recording why, while an earlier run of the same
    /// recurring job is scheduled, enqueued or running.
    Skip,
}

/// As its [`Display`](fmt::Display) form, the stored one (`skip`).
impl serde::Serialize for Overlap {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Overlap::Allow => "allow",
            Overlap::Skip => "skip",
        })
    }
}

impl FromStr for Overlap {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "allow" => Ok(Overlap::Allow),
            "skip" => Ok(Overlap::Skip),
            _ => Err(Error::UnknownPolicy {
                policy: "overlap",
                value: s.to_owned(),
            }),
        }
    }
}

/// Options of a recurring job beyond its schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RecurringOptions {
    /// Ticks missed during downtime.
    pub misfire: Misfire,
    /// Ticks reached while the previous run is unfinished.
    pub overlap: Overlap,
}

impl RecurringOptions {
    /// The defaults: run once after downtime, allow overlap.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the misfire policy.
    pub fn misfire(mut self, misfire: Misfire) -> Self {
        self.misfire = misfire;
        self
    }
    /// Sets the overlap policy.
    pub fn overlap(mut self, overlap: Overlap) -> Self {
        self.overlap = overlap;
        self
    }
}

/// A schedule given to `add_or_update`: a [`Cron`], or an expression that is
/// parsed there (so a bad one is an error at that call).
pub trait IntoCron {
    /// The schedule, or why the expression does not parse.
    fn into_cron(self) -> Result<Cron>;
}

impl IntoCron for Cron {
    fn into_cron(self) -> Result<Cron> {
        Ok(self)
    }
}

impl IntoCron for &str {
    fn into_cron(self) -> Result<Cron> {
        Cron::parse(self)
    }
}

impl IntoCron for String {
    fn into_cron(self) -> Result<Cron> {
        Cron::parse(&self)
    }
}

/// What a store keeps of a recurring job's definition.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct RecurringDef {
    /// The application's id for it (`"invalidate-invoices"`).
    pub id: String,
    /// The cron expression.
    pub schedule: String,
    /// The IANA time zone the expression is read in.
    pub time_zone: String,
    /// The job each tick enqueues: name, arguments, queue, priority, attempts.
    /// Its `run_at` and `recurring` are ignored.
    pub job: NewJob,
    /// Ticks missed during downtime.
    pub misfire: Misfire,
    /// Ticks reached while the previous run is unfinished.
    pub overlap: Overlap,
}

impl RecurringDef {
    /// A definition.
    pub fn new(id: String, schedule: &Cron, job: NewJob, options: RecurringOptions) -> Self {
        Self {
            id,
            schedule: schedule.expression().to_owned(),
            time_zone: schedule.time_zone().name().to_owned(),
            job,
            misfire: options.misfire,
            overlap: options.overlap,
        }
    }

    /// The schedule, parsed again.
    pub fn cron(&self) -> Result<Cron> {
        Cron::parse(&self.schedule)?.in_time_zone(&self.time_zone)
    }
}

/// A recurring job as a store lists it: its definition and where it stands.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct RecurringRow {
    /// The definition.
    pub def: RecurringDef,
    /// Paused entries do not fire.
    pub paused: bool,
    /// The next tick; `None` until the next scheduler pass computes it (after
    /// a creation, a schedule change or a resume).
    pub next_run_at: Option<Timestamp>,
    /// The tick of the latest run.
    pub last_run_at: Option<Timestamp>,
    /// The job of the latest run.
    pub last_job_id: Option<JobId>,
    /// That job's state, if it still exists.
    pub last_job_state: Option<JobState>,
    /// That job's latest error, if any.
    pub last_error: Option<String>,
    /// When a tick was last skipped, and why.
    pub last_skipped: Option<(Timestamp, String)>,
    /// Bumped by every change of the definition and every pause or resume; a
    /// fire planned from an older revision is lost.
    pub revision: i64,
}

impl RecurringRow {
    /// A row; stores use this to build what they read back.
    pub fn new(def: RecurringDef, paused: bool, next_run_at: Option<Timestamp>) -> Self {
        Self {
            def,
            paused,
            next_run_at,
            last_run_at: None,
            last_job_id: None,
            last_job_state: None,
            last_error: None,
            last_skipped: None,
            revision: 0,
        }
    }
}

/// What one scheduler pass asks the store to do for one due entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FirePlan {
    pub(crate) expected_next_run_at: Option<Timestamp>,
    pub(crate) next_run_at: Timestamp,
    pub(crate) jobs: Vec<NewJob>,
}

/// Works out the runs and the next tick of a due entry at the store's `now`.
/// `None` when the schedule has no tick after `now` (a year field in the past).
pub(crate) fn plan(row: &RecurringRow, cron: &Cron, now: Timestamp) -> Option<FirePlan> {
    let next_run_at = cron.next_after(now)?;
    let Some(expected) = row.next_run_at else {
        // Created, changed or resumed: start from the next tick, nothing is missed.
        return Some(FirePlan {
            expected_next_run_at: None,
            next_run_at,
            jobs: Vec::new(),
        });
    };
    let ticks: Vec<Timestamp> = match row.def.misfire {
        Misfire::RunOnce => vec![expected],
        Misfire::Skip => {
            let late = (now - expected).to_std().unwrap_or_default();
            if late <= MISFIRE_GRACE {
                vec![expected]
            } else {
                Vec::new()
            }
        }
        Misfire::RunAll { limit } => {
            let limit = limit.max(1) as usize;
            let mut ticks = vec![expected];
            ticks.extend(cron.ticks_between(expected, now, limit - 1));
            ticks
        }
    };
    let jobs = ticks
        .into_iter()
        .map(|tick| {
            let mut job = row.def.job.clone();
            job.run_at = RunAt::Now;
            job.recurring = Some(RecurringOrigin {
                id: row.def.id.clone(),
                scheduled_for: tick,
            });
            job
        })
        .collect();
    Some(FirePlan {
        expected_next_run_at: Some(expected),
        next_run_at,
        jobs,
    })
}

/// The `next_run_at` of an entry that will never fire (an invalid schedule,
/// or one with no tick left): the last day of year 9999, which every store
/// can represent.
pub(crate) fn never() -> Timestamp {
    chrono::DateTime::from_timestamp(253_402_214_400, 0).expect("a valid instant")
}

/// Checks an application's recurring id.
pub(crate) fn check_id(id: &str) -> Result<()> {
    if id.trim().is_empty() || id.len() > 200 {
        return Err(Error::InvalidRecurringId {
            id: id.to_owned(),
            reason: "it must be 1 to 200 characters, and not all whitespace",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn row(misfire: Misfire, next: Option<Timestamp>) -> RecurringRow {
        let cron = Cron::parse("0 * * * *").unwrap();
        let def = RecurringDef::new(
            "hourly-report".into(),
            &cron,
            NewJob::new("report", serde_json::json!({})),
            RecurringOptions::new().misfire(misfire),
        );
        RecurringRow::new(def, false, next)
    }

    fn at(h: u32, m: u32) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 11, 28, h, m, 0).unwrap()
    }

    fn ticks(plan: &FirePlan) -> Vec<Timestamp> {
        plan.jobs
            .iter()
            .map(|j| j.recurring.as_ref().unwrap().scheduled_for)
            .collect()
    }

    #[test]
    fn a_new_entry_starts_at_the_next_tick_without_running() {
        let cron = Cron::parse("0 * * * *").unwrap();
        let fire = plan(&row(Misfire::RunOnce, None), &cron, at(10, 20)).unwrap();
        assert_eq!(fire.expected_next_run_at, None);
        assert_eq!(fire.next_run_at, at(11, 0));
        assert!(fire.jobs.is_empty());
    }

    #[test]
    fn an_on_time_tick_runs_once_under_every_policy() {
        let cron = Cron::parse("0 * * * *").unwrap();
        for misfire in [
            Misfire::RunOnce,
            Misfire::Skip,
            Misfire::RunAll { limit: 5 },
        ] {
            let fire = plan(&row(misfire, Some(at(10, 0))), &cron, at(10, 0)).unwrap();
            assert_eq!(ticks(&fire), [at(10, 0)], "{misfire}");
            assert_eq!(fire.next_run_at, at(11, 0));
            assert_eq!(fire.expected_next_run_at, Some(at(10, 0)));
        }
    }

    #[test]
    fn after_downtime_run_once_runs_one_job_for_the_earliest_missed_tick() {
        let cron = Cron::parse("0 * * * *").unwrap();
        let fire = plan(&row(Misfire::RunOnce, Some(at(6, 0))), &cron, at(10, 30)).unwrap();
        assert_eq!(ticks(&fire), [at(6, 0)]);
        assert_eq!(fire.next_run_at, at(11, 0));
    }

    #[test]
    fn after_downtime_skip_runs_nothing_and_waits_for_the_next_tick() {
        let cron = Cron::parse("0 * * * *").unwrap();
        let fire = plan(&row(Misfire::Skip, Some(at(6, 0))), &cron, at(10, 30)).unwrap();
        assert!(fire.jobs.is_empty());
        assert_eq!(fire.next_run_at, at(11, 0));
        // Within the grace it still runs.
        let fire = plan(
            &row(Misfire::Skip, Some(at(10, 0))),
            &cron,
            at(10, 0) + chrono::Duration::seconds(59),
        )
        .unwrap();
        assert_eq!(ticks(&fire), [at(10, 0)]);
    }

    #[test]
    fn after_downtime_run_all_runs_each_missed_tick_up_to_the_limit() {
        let cron = Cron::parse("0 * * * *").unwrap();
        let fire = plan(
            &row(Misfire::RunAll { limit: 3 }, Some(at(6, 0))),
            &cron,
            at(10, 30),
        )
        .unwrap();
        assert_eq!(ticks(&fire), [at(6, 0), at(7, 0), at(8, 0)]);
        let fire = plan(
            &row(Misfire::RunAll { limit: 10 }, Some(at(6, 0))),
            &cron,
            at(10, 30),
        )
        .unwrap();
        assert_eq!(
            ticks(&fire),
            [at(6, 0), at(7, 0), at(8, 0), at(9, 0), at(10, 0)]
        );
    }

    #[test]
    fn policies_round_trip_through_their_stored_names() {
        for misfire in [
            Misfire::RunOnce,
            Misfire::Skip,
            Misfire::RunAll { limit: 7 },
        ] {
            assert_eq!(misfire.to_string().parse::<Misfire>().unwrap(), misfire);
        }
        for overlap in [Overlap::Allow, Overlap::Skip] {
            assert_eq!(overlap.to_string().parse::<Overlap>().unwrap(), overlap);
        }
        assert!("sometimes".parse::<Misfire>().is_err());
    }

    #[test]
    fn recurring_ids_are_checked() {
        assert!(check_id("invalidate-invoices").is_ok());
        assert!(check_id(" ").is_err());
        assert!(check_id(&"x".repeat(201)).is_err());
    }
}
