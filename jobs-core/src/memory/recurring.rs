//! The changes of recurring entries: upsert, fire (inserting the runs of a
//! tick, or skipping it while an earlier run is unfinished) and trigger.

use super::tables::Tables;
use crate::model::{JobId, JobState, NewJob, RecurringOrigin, RunAt, Timestamp};
use crate::recurring::RecurringRow;
use crate::store::{
    CronFireOutcome, CronFireParams, CronTriggerParams, CronUpsertParams, JobInsertManyParams,
    StoreError, StoreErrorKind, StoreResult,
};

impl Tables {
    /// A recurring row with its latest run's state and error filled in.
    pub(super) fn recurring_view(&self, row: &RecurringRow) -> RecurringRow {
        let mut row = row.clone();
        let last = row.last_job_id.and_then(|id| self.jobs.get(&id));
        row.last_job_state = last.map(|job| job.row.state);
        row.last_error = last.and_then(|job| job.row.last_error.clone());
        row
    }

    pub(super) fn recurring_mut(&mut self, id: &str) -> StoreResult<&mut RecurringRow> {
        self.recurring.get_mut(id).ok_or_else(|| {
            StoreError::new(
                StoreErrorKind::NotFound,
                format!("recurring job `{id}` does not exist"),
            )
        })
    }

    /// Whether a run of this recurring job is waiting or running.
    fn recurring_unfinished(&self, id: &str) -> bool {
        [
            JobState::Scheduled,
            JobState::Enqueued,
            JobState::Processing,
        ]
        .iter()
        .filter_map(|state| self.index.by_state.get(state))
        .flatten()
        .any(|job| {
            self.jobs[job]
                .row
                .recurring
                .as_ref()
                .is_some_and(|origin| origin.id == id)
        })
    }

    pub(super) fn cron_upsert(&mut self, p: CronUpsertParams) {
        let def = p.def;
        match self.recurring.get_mut(&def.id) {
            Some(row) => {
                if row.def.schedule != def.schedule || row.def.time_zone != def.time_zone {
                    row.next_run_at = None;
                }
                if row.def != def {
                    row.revision += 1;
                    row.def = def;
                }
            }
            None => {
                self.recurring
                    .insert(def.id.clone(), RecurringRow::new(def, false, None));
            }
        }
    }

    pub(super) fn cron_fire(
        &mut self,
        now: Timestamp,
        p: CronFireParams,
    ) -> (CronFireOutcome, bool) {
        match self.recurring.get(&p.id) {
            Some(row)
                if !row.paused
                    && row.next_run_at == p.expected_next_run_at
                    && p.expected_revision.is_none_or(|r| r == row.revision) => {}
            _ => return (CronFireOutcome::Lost, false),
        }
        if p.skip_if_running && !p.jobs.is_empty() && self.recurring_unfinished(&p.id) {
            let row = self.recurring.get_mut(&p.id).expect("checked above");
            row.next_run_at = Some(p.next_run_at);
            row.last_skipped = Some((now, "an earlier run is unfinished".to_owned()));
            return (CronFireOutcome::SkippedRunning, false);
        }
        let tick = p
            .jobs
            .last()
            .and_then(|job| job.recurring.as_ref())
            .map(|origin| origin.scheduled_for);
        // A recurring run is never a continuation: nothing to refuse.
        let ids: Vec<JobId> = self
            .insert_many(now, JobInsertManyParams::new(p.jobs))
            .unwrap_or_default()
            .into_iter()
            .map(|inserted| inserted.id)
            .collect();
        let row = self.recurring.get_mut(&p.id).expect("checked above");
        row.next_run_at = Some(p.next_run_at);
        if let Some(&last) = ids.last() {
            row.last_job_id = Some(last);
            row.last_run_at = tick.or(Some(now));
        }
        let runnable = !ids.is_empty();
        (CronFireOutcome::Fired(ids), runnable)
    }

    pub(super) fn cron_trigger(
        &mut self,
        now: Timestamp,
        p: CronTriggerParams,
    ) -> StoreResult<JobId> {
        let id = p.id.as_str();
        let mut job: NewJob = self.recurring_mut(id)?.def.job.clone();
        job.run_at = RunAt::Now;
        job.trace_context = p.trace_context;
        job.recurring = Some(RecurringOrigin {
            id: id.to_owned(),
            scheduled_for: now,
        });
        let job_id = self.insert_many(now, JobInsertManyParams::new(vec![job]))?[0].id;
        let row = self.recurring_mut(id)?;
        row.last_job_id = Some(job_id);
        row.last_run_at = Some(now);
        Ok(job_id)
    }
}
