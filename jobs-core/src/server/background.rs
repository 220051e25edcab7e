//! The loops beside the workers: the completer (writes outcomes in batches),
//! the lease keeper, the progress writer, the heartbeat, the rescuer, the
//! pruner and the recurring scheduler. Each store call has a timeout; each
//! loop logs a failure and tries again, forever.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::Instrument;

use super::fetch::retry_pause;
use super::{stale_server_age, timeout_call, Shared, StopReason};
use crate::model::{Inserted, ServerInfo};
use crate::recurring::{self, Overlap};
use crate::store::{
    CronDueParams, CronFireOutcome, CronFireParams, DynStore, JobCompleteManyParams, JobCompletion,
    JobGetParams, JobProgressManyParams, JobPruneParams, JobReleaseAwaitingParams,
    LeaseRenewManyParams, LeaseRescueParams, LeaseStatus, QueueListParams, ServerHeartbeatParams,
    ServerRemoveParams, MAINTENANCE_BATCH,
};

/// At most this many outcomes are written in one store call.
const COMPLETION_BATCH: usize = 512;
/// Outcome writes that retrying cannot fix (or that fail during shutdown) are
/// given up after this many tries; the jobs are then rescued when their leases
/// expire, and run again (at least once).
const MAX_TRIES_FOR_PERMANENT_ERRORS: u32 = 3;

/// Writes attempts' outcomes, as many per call as have queued up. Runs until
/// shutdown, then writes what is left.
pub(crate) async fn completer(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<JobCompletion>) {
    let mut batch = Vec::with_capacity(COMPLETION_BATCH);
    loop {
        let closing = tokio::select! {
            biased;
            received = rx.recv() => match received {
                Some(completion) => { batch.push(completion); false }
                None => true,
            },
            _ = shared.stop_completer.cancelled() => true,
        };
        while batch.len() < COMPLETION_BATCH {
            match rx.try_recv() {
                Ok(completion) => batch.push(completion),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            write_completions(&shared, std::mem::take(&mut batch), closing).await;
        }
        if closing && rx.is_empty() {
            return;
        }
    }
}

async fn write_completions(shared: &Shared, batch: Vec<JobCompletion>, closing: bool) {
    let mut failures = 0u32;
    loop {
        let params = JobCompleteManyParams::new(shared.id, batch.clone());
        let written = timeout_call(
            shared.settings.store_timeout,
            shared.own_writes.job_complete_many(params),
        )
        .await;
        shared.note(&written);
        match written {
            Ok(applied) => {
                if shared.cluster_limited.load(Ordering::Relaxed) {
                    // The places these jobs held in a limit are free now.
                    shared.completions_written.notify_one();
                }
                for (completion, applied) in batch.iter().zip(applied) {
                    if !applied {
                        explain_unrecorded(shared, completion).await;
                    }
                }
                break;
            }
            Err(error) => {
                failures += 1;
                // Unavailable stores are retried forever, except while shutting
                // down, where there is no "later"; other errors will not go away.
                // Giving up is safe: the jobs run again once their leases expire.
                if failures >= MAX_TRIES_FOR_PERMANENT_ERRORS && (closing || !error.is_retryable())
                {
                    tracing::error!(server = %shared.id, %error, jobs = batch.len(), "giving up on writing job outcomes; the jobs will run again after their leases expire");
                    break;
                }
                let pause = retry_pause(failures);
                tracing::warn!(server = %shared.id, %error, retry_in = ?pause, "writing job outcomes failed");
                tokio::time::sleep(pause).await;
            }
        }
    }
    let mut running = shared.running();
    for completion in &batch {
        // Only this claim: the job may have been claimed again meanwhile.
        let id = completion.claim.job_id;
        if running
            .get(&id)
            .is_some_and(|r| r.claim == completion.claim)
        {
            running.remove(&id);
        }
    }
}

/// Logs why an outcome was not recorded. Usually nothing is wrong: the job
/// completed itself in its own transaction, or an earlier try of this write
/// committed before its connection died. Only a claim that is no longer
/// current (the job was rescued and claimed again) deserves a warning.
async fn explain_unrecorded(shared: &Shared, completion: &JobCompletion) {
    let id = completion.claim.job_id;
    let read = shared.own_writes.job_get(JobGetParams::new(id));
    let job = timeout_call(shared.settings.store_timeout, read).await;
    match job {
        Ok(Some(detail))
            if detail.job.claim_token == completion.claim.token
                && detail.job.state.is_finished() =>
        {
            tracing::debug!(job = %id, state = %detail.job.state, "the outcome was already recorded under this claim");
        }
        Ok(Some(detail)) => {
            let job = &detail.job;
            tracing::warn!(job = %id, name = %job.name, queue = %job.queue, attempt = job.attempt, state = %job.state, "the outcome of job {id} ({}) was not recorded: its claim is no longer current (it was rescued, cancelled or claimed again)", job.name);
        }
        _ => {
            tracing::warn!(job = %id, "the outcome of job {id} was not recorded: its claim is no longer current (it was deleted, or could not be read)");
        }
    }
}

/// Renews the leases of every claim this server holds, every renewal
/// interval (a third of the lease by default), and passes on cancel requests
/// and lost leases to the attempts. A renewal that failed is retried sooner,
/// with a growing pause up to the interval, so that after an outage the
/// leases are renewed as soon as the store is back. A cancel wake-up from
/// the store renews at once, so that a cancel reaches its job in a round
/// trip rather than at the next renewal; without one (a store with no
/// signal, a lost NOTIFY), the renewal still brings it.
pub(crate) async fn lease_keeper(shared: Arc<Shared>) {
    let every = shared.settings.renewal_interval();
    let mut cancels = shared.store.job_signal().map(|s| s.subscribe_cancels());
    let mut failures = 0u32;
    loop {
        let renewed = renew_leases(&shared).await;
        let pause = if renewed {
            shared.health_record().note_renewal_pass();
            failures = 0;
            every.mul_f64(1.0 - 0.1 * fastrand::f64())
        } else {
            failures = failures.saturating_add(1);
            retry_pause(failures).min(every)
        };
        let cancelled = async {
            match cancels.as_mut() {
                Some(cancels) => cancels.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            alive = cancelled => {
                if !alive {
                    // The store dropped its signal: renewals alone from now on.
                    cancels = None;
                }
            }
            _ = shared.stop_background.cancelled() => return,
        }
    }
}

/// One renewal of every held claim; whether it reached the store.
async fn renew_leases(shared: &Shared) -> bool {
    let held: Vec<_> = shared.running().values().map(|r| r.claim).collect();
    if held.is_empty() {
        return true;
    }
    let params = LeaseRenewManyParams::new(shared.id, held.clone(), shared.settings.lease);
    let call = shared.own_writes.lease_renew_many(params);
    let renewed = tokio::select! {
        renewed = timeout_call(shared.settings.store_timeout, call) => renewed,
        _ = shared.stop_background.cancelled() => return true,
    };
    shared.health_record().note_renewal(&renewed);
    match renewed {
        Ok(statuses) => {
            let running = shared.running();
            for (claim, status) in held.iter().zip(statuses) {
                let Some(entry) = running.get(&claim.job_id) else {
                    continue;
                };
                if entry.claim != *claim {
                    continue;
                }
                match status {
                    LeaseStatus::Held => {}
                    LeaseStatus::CancelRequested => entry.stop.stop(StopReason::UserCancel),
                    LeaseStatus::Lost => entry.stop.stop(StopReason::LeaseLost),
                }
            }
            true
        }
        Err(error) => {
            tracing::warn!(server = %shared.id, %error, jobs = held.len(), "renewing leases failed; retrying soon");
            false
        }
    }
}

/// How often reported progress is written.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Writes the progress running attempts reported since the last pass, in one
/// call, fenced by their claims. Costs nothing while no job reports progress.
pub(crate) async fn progress_writer(shared: Arc<Shared>) {
    every_until_stopped(&shared, PROGRESS_INTERVAL, || async {
        let updates: Vec<_> = shared
            .running()
            .values()
            .filter_map(|r| Some((r.claim, r.context.as_ref()?.progress_updates()?)))
            .collect();
        if updates.is_empty() {
            return;
        }
        let params = JobProgressManyParams::new(shared.id, updates);
        let write = shared.store.job_progress_many(params);
        if let Err(error) = timeout_call(shared.settings.store_timeout, write).await {
            // Progress is informative: the next report replaces this one.
            tracing::debug!(server = %shared.id, %error, "writing job progress failed");
        }
    })
    .await
}

/// Writes the server record now and every heartbeat interval, and removes
/// the records of servers that stopped beating.
pub(crate) async fn heartbeat(shared: Arc<Shared>) {
    let every = shared.settings.heartbeat_interval;
    every_until_stopped(&shared, every, || async {
        let info: ServerInfo = shared.heartbeat_info();
        let beat = shared
            .own_writes
            .server_heartbeat(ServerHeartbeatParams::new(info));
        let beat = timeout_call(shared.settings.store_timeout, beat).await;
        shared.health_record().note_heartbeat(&beat);
        if let Err(error) = beat {
            tracing::warn!(server = %shared.id, %error, "writing the heartbeat failed");
            return;
        }
        let remove = shared
            .own_writes
            .server_remove(ServerRemoveParams::silent_for(stale_server_age(
                &shared.settings,
            )));
        if let Err(error) = timeout_call(shared.settings.store_timeout, remove).await {
            tracing::warn!(server = %shared.id, %error, "removing dead servers failed");
        }
        // On the server's own connections: this runs on its own runtime.
        note_cluster_limits(&shared, shared.own_writes.as_ref()).await;
    })
    .await
}

/// Looks whether a queue this server serves has cluster-wide limits (see
/// [`Shared::cluster_limited`]). Only the fetch loop's waits depend on it,
/// never what a claim may take, which the store decides. `store` is the
/// handle of the runtime this runs on (a connection opened on a runtime
/// dies with it).
pub(crate) async fn note_cluster_limits(shared: &Shared, store: &dyn DynStore) {
    let list = store.queue_list(QueueListParams::new());
    match timeout_call(shared.settings.store_timeout, list).await {
        Ok(queues) => {
            let limited = queues
                .iter()
                .any(|q| !q.limits.is_none() && shared.settings.queues.contains(&q.queue));
            shared.cluster_limited.store(limited, Ordering::Relaxed);
        }
        Err(error) => {
            tracing::debug!(server = %shared.id, %error, "listing the queues' limits failed");
        }
    }
}

/// Makes jobs whose leases expired (their server died) runnable again:
/// never this server's own claims, which it still holds and renews, and
/// not while, or just after, the store was unreachable from here (see
/// [`StoreHealth::may_rescue`](super::StoreHealth::may_rescue)).
pub(crate) async fn rescuer(shared: Arc<Shared>) {
    let every = shared.settings.rescue_interval;
    // Two renewal intervals: each live server retries its renewal within
    // one once the store is back.
    let wait_after_outage = shared.settings.renewal_interval() * 2;
    every_until_stopped(&shared, every, || async {
        let may_rescue = shared
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .may_rescue(wait_after_outage);
        if !may_rescue {
            tracing::debug!(server = %shared.id, "not rescuing: the store was unreachable lately, and live servers renew first");
            return;
        }
        // Continuations a lost release left waiting: none, normally.
        let swept = timeout_call(
            shared.settings.store_timeout,
            shared.own_writes.job_release_awaiting(JobReleaseAwaitingParams::new()),
        )
        .await;
        match swept {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(server = %shared.id, jobs = n, "released continuations whose parent had ended without releasing them")
            }
            Err(error) => {
                tracing::warn!(server = %shared.id, %error, "releasing waiting continuations failed")
            }
        }
        loop {
            let own: Vec<_> = shared.running().keys().copied().collect();
            let call = shared.own_writes.lease_rescue(LeaseRescueParams::new().except(own));
            let rescued = timeout_call(shared.settings.store_timeout, call).await;
            shared.note(&rescued);
            match rescued {
                Ok(ids) => {
                    if !ids.is_empty() {
                        crate::telemetry::jobs_rescued(ids.len());
                        tracing::warn!(server = %shared.id, jobs = ids.len(), "rescued jobs whose server stopped renewing their leases");
                    }
                    if ids.len() < MAINTENANCE_BATCH as usize || shared.stop_background.is_cancelled() {
                        return;
                    }
                }
                Err(error) => {
                    tracing::warn!(server = %shared.id, %error, "rescuing expired leases failed");
                    return;
                }
            }
        }
    })
    .await
}

/// Removes finished jobs past their retention, in bounded batches.
pub(crate) async fn pruner(shared: Arc<Shared>) {
    let every = shared.settings.prune_interval;
    let settings = &shared.settings;
    every_until_stopped(&shared, every, || async {
        loop {
            let params = JobPruneParams::new(settings.retention).limit(settings.prune_batch);
            match timeout_call(settings.store_timeout, shared.store.job_prune(params)).await {
                Ok(removed) => {
                    if removed > 0 {
                        tracing::debug!(server = %shared.id, removed, "pruned finished jobs");
                    }
                    if removed < u64::from(settings.prune_batch)
                        || shared.stop_background.is_cancelled()
                    {
                        return;
                    }
                }
                Err(error) => {
                    tracing::warn!(server = %shared.id, %error, "pruning finished jobs failed");
                    return;
                }
            }
        }
    })
    .await
}

/// Fires due recurring jobs, once per tick across every server (the store's
/// compare-and-set decides; see `crate::recurring`).
pub(crate) async fn scheduler(shared: Arc<Shared>) {
    let every = shared.settings.scheduler_interval;
    let failures = AtomicU32::new(0);
    every_until_stopped(&shared, every, || {
        let (shared, failures) = (&shared, &failures);
        async move {
            let call = shared.store.cron_due(CronDueParams::new());
            let due = match timeout_call(shared.settings.store_timeout, call).await {
                Ok(due) => {
                    failures.store(0, Ordering::Relaxed);
                    due
                }
                Err(error) => {
                    // Logged on the first failure and then once a minute or so,
                    // not every second.
                    if failures.fetch_add(1, Ordering::Relaxed) % 60 == 0 {
                        tracing::warn!(server = %shared.id, %error, "reading due recurring jobs failed");
                    }
                    return;
                }
            };
            for row in due.due {
                let id = row.def.id.clone();
                let plan = match row.def.cron() {
                    Ok(cron) => recurring::plan(&row, &cron, due.now),
                    Err(error) => {
                        tracing::warn!(recurring = %id, %error, "recurring job has an invalid schedule and does not fire; fix it with add_or_update");
                        None
                    }
                };
                let Some(plan) = plan else {
                    // Invalid, or no tick left: park it far ahead so that it
                    // stops coming back on every pass; add_or_update with a
                    // new schedule makes it due again.
                    let park = CronFireParams::new(id, row.next_run_at, recurring::never())
                        .expected_revision(row.revision);
                    let _ = timeout_call(shared.settings.store_timeout, shared.store.cron_fire(park)).await;
                    continue;
                };
                let mut jobs = plan.jobs;
                let span = crate::telemetry::recurring_fire_span(&id, &mut jobs);
                let enqueued = crate::telemetry::Enqueued::of(&jobs);
                let params = CronFireParams::new(id.clone(), plan.expected_next_run_at, plan.next_run_at)
                    .expected_revision(row.revision)
                    .jobs(jobs)
                    .skip_if_running(row.def.overlap == Overlap::Skip);
                let fire = timeout_call(shared.settings.store_timeout, shared.store.cron_fire(params));
                match fire.instrument(span).await {
                    Ok(CronFireOutcome::Fired(ids)) if !ids.is_empty() => {
                        // A run that was a unique job's duplicate counts too:
                        // the fire's outcome gives ids only.
                        let runs: Vec<Inserted> = ids.iter().map(|&id| Inserted::new(id)).collect();
                        enqueued.record(&runs);
                        tracing::info!(recurring = %id, jobs = ?ids, next = %plan.next_run_at, "recurring job fired")
                    }
                    Ok(CronFireOutcome::SkippedRunning) => {
                        tracing::info!(recurring = %id, next = %plan.next_run_at, "recurring tick skipped: the previous run has not finished")
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(recurring = %id, %error, "firing a recurring job failed; the next pass tries again")
                    }
                }
            }
        }
    })
    .await
}

/// Runs `tick` at once and then every `every` (scattered by up to 10 % so that
/// servers started together do not hit the store together), until the
/// server's background work is stopped.
async fn every_until_stopped<F, Fut>(shared: &Shared, every: Duration, mut tick: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        tokio::select! {
            _ = tick() => {}
            _ = shared.stop_background.cancelled() => return,
        }
        let pause = every.mul_f64(1.0 - 0.1 * fastrand::f64());
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shared.stop_background.cancelled() => return,
        }
    }
}
