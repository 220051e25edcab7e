//! The supervisor of one attempt: builds the job's context, runs its future
//! (catching a panic, enforcing its timeout, giving a stopped job its grace
//! period), asks [`decide`] what the end means, and queues that outcome for
//! the completer.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::caps::Slot;
use tokio::time::Instant;

use super::outcome::{decide, Ended};
use super::{RunningAttempt, Shared, StopReason, StopSignal};
use crate::job::{Invocation, JobContext, RunResult};
use crate::model::{Claim, JobRow};
use crate::store::{BoxFuture, JobCompletion, JobOutcome};

/// Runs one attempt to its end and queues its outcome.
pub(super) async fn supervise(
    shared: Arc<Shared>,
    row: JobRow,
    stop: Arc<StopSignal>,
    permit: Slot,
) {
    let _running = RunningAttempt::start(&shared.load);
    let claim = row.claim();
    let Some(registration) = shared.registry.get(&row.name) else {
        // Claims name only known jobs, so this is a registry race at most:
        // hand the job back for a server that knows it.
        let outcome = JobOutcome::Released {
            reason: format!("server {} does not know job `{}`", shared.id, row.name),
        };
        crate::telemetry::job_ended(&row.queue, &row.name, None, Some(&outcome));
        finish(&shared, JobCompletion::new(claim, outcome), permit);
        return;
    };
    let mut options = (registration.options)();
    // What the enqueue set travels in the row and wins over the type's.
    if let Some(timeout) = row.timeout {
        options.timeout = Some(timeout);
    }
    if let Some(backoff) = row.backoff {
        options.backoff = backoff;
    }
    let context = JobContext::new(
        claim,
        row.name.clone(),
        row.queue.clone(),
        row.attempt,
        row.max_attempts,
        row.recurring.clone(),
        stop.token.clone(),
    );
    if let Some(running) = shared.running().get_mut(&row.id) {
        running.context = Some(context.clone());
    }
    let invocation = Invocation {
        args: row.args,
        context,
        resources: shared.resources.clone(),
    };
    let started = Instant::now();
    let ran_at_all = stop.reason().is_none();
    let mut output = None;
    let ended = if !ran_at_all {
        // Cancelled, or its lease lost, while it waited claimed ahead.
        Ended::NotStarted
    } else {
        tracing::debug!("job started");
        crate::telemetry::job_started(&row.queue, &row.name, row.run_at);
        if let Some(limit) = options.timeout {
            // No wake-up per job: the watchdog looks at least every second
            // while jobs run, and the job's own timer stops it when it yields.
            stop.watch().deadline = Some(started + limit);
        }
        let (ended, returned) = run_attempt(
            (registration.run)(invocation),
            options.timeout,
            &stop,
            shared.settings.cancel_grace,
        )
        .await;
        let ended =
            match returned.map(|value| checked_output(value, shared.settings.max_output_bytes)) {
                Some(Err(error)) => Ended::Returned(Err(error.into())),
                Some(Ok(value)) => {
                    output = Some(value);
                    ended
                }
                None => ended,
            };
        // An attempt that comes back after its timeout timed out, whatever
        // it returned: its thread was blocked past the deadline, so neither
        // its own timer nor the watchdog could stop it in time.
        if options
            .timeout
            .is_some_and(|limit| started.elapsed() >= limit)
        {
            stop.stop(StopReason::Timeout);
        }
        ended
    };
    let was_stuck = {
        let mut watch = stop.watch();
        watch.ended = true;
        watch.stuck
    };

    let mut outcome = decide(
        &row.name,
        row.attempt,
        row.max_attempts,
        &options,
        stop.reason(),
        ended,
    );
    if was_stuck {
        let note = format!(
            "; it was stuck and returned only after {:?}",
            started.elapsed()
        );
        if let Some(JobOutcome::Retry { error, .. } | JobOutcome::Failed { error }) = &mut outcome {
            error.push_str(&note);
        }
    }
    let about = About {
        name: &row.name,
        queue: &row.queue,
        attempt: row.attempt,
        max_attempts: row.max_attempts,
    };
    let ran = ran_at_all.then(|| started.elapsed());
    crate::telemetry::job_ended(&row.queue, &row.name, ran, outcome.as_ref());
    // Only a success keeps its output.
    let output = output.filter(|_| matches!(outcome, Some(JobOutcome::Succeeded)));
    report(&shared, claim, &about, outcome, output, permit);
}

/// The output, or the attempt's error when it is larger than `max` bytes
/// as JSON.
fn checked_output(value: serde_json::Value, max: usize) -> Result<serde_json::Value, String> {
    let size = serde_json::to_vec(&value).map_or(usize::MAX, |json| json.len());
    if size > max {
        return Err(format!(
            "the job's output is {size} bytes as JSON, over the limit of {max} bytes; \
             store large results elsewhere and return their id (or raise \
             ServerBuilder::max_output_bytes)"
        ));
    }
    Ok(value)
}

/// Runs an attempt's future to its end: it returns, panics, or is asked to
/// stop (by its timeout, a user, shutdown or a lost lease) and then gets the
/// grace period to return on its own before it is dropped. Returns how it
/// ended, with the output of a run that returned one.
async fn run_attempt(
    future: BoxFuture<'static, RunResult>,
    timeout: Option<Duration>,
    stop: &StopSignal,
    grace: Duration,
) -> (Ended, Option<serde_json::Value>) {
    let mut attempt = CatchUnwind(future);
    let timeout = async {
        match timeout {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    let first = tokio::select! {
        ended = &mut attempt => Some(ended),
        _ = timeout => { stop.stop(StopReason::Timeout); None }
        _ = stop.token.cancelled() => None,
    };
    let returned = match first {
        Some(returned) => Ok(returned),
        // The job sees the stop through its context.
        None => tokio::time::timeout(grace, &mut attempt).await,
    };
    match returned {
        Ok(Ok(Ok(output))) => (Ended::Returned(Ok(())), output),
        Ok(Ok(Err(error))) => (Ended::Returned(Err(error)), None),
        Ok(Err(panic)) => (Ended::Panicked(panic), None),
        Err(_) => (Ended::Aborted, None),
    }
}

/// Queues the outcome of an attempt, or forgets the claim when its lease was
/// lost (`None`: nothing may be written).
fn report(
    shared: &Shared,
    claim: Claim,
    about: &About<'_>,
    outcome: Option<JobOutcome>,
    output: Option<serde_json::Value>,
    permit: Slot,
) {
    match outcome {
        None => {
            tracing::warn!(job = %claim.job_id, name = about.name, queue = about.queue, attempt = about.attempt, "the lease of job {} ({}) was lost (rescued by another server or cancelled); its result is discarded", claim.job_id, about.name);
            shared.running().remove(&claim.job_id);
            shared.finished.fetch_add(1, Ordering::Relaxed);
            drop(permit);
        }
        Some(outcome) => {
            log_outcome(claim, about, &outcome);
            let completion = JobCompletion::new(claim, outcome).output(output);
            finish(shared, completion, permit);
        }
    }
}

/// Queues the completion for the completer, then frees the slot. The claim
/// stays in the running set (its lease renewed) until the completion is written.
fn finish(shared: &Shared, completion: JobCompletion, permit: Slot) {
    if shared.completions.send(completion).is_err() {
        tracing::error!(
            "the completer has stopped; the job will be rescued when its lease expires"
        );
    }
    shared.finished.fetch_add(1, Ordering::Relaxed);
    drop(permit);
}

/// What the events about an attempt's end say of its job, in fields of
/// their own: the per-job span is at INFO, and a `warn` filter drops it.
struct About<'a> {
    name: &'a str,
    queue: &'a str,
    attempt: i32,
    max_attempts: i32,
}

/// Logs how an attempt ended. A failure that needs a person (failed for
/// good) is a warning; a retry, a snooze, a cancel and a hand-back are
/// routine, at INFO or DEBUG.
fn log_outcome(claim: Claim, about: &About<'_>, outcome: &JobOutcome) {
    let (job, name, queue, attempt) = (claim.job_id, about.name, about.queue, about.attempt);
    match outcome {
        JobOutcome::Succeeded => {
            tracing::debug!(%job, name, queue, attempt, "job succeeded")
        }
        JobOutcome::Retry { error, after } => {
            tracing::info!(%job, name, queue, attempt, max_attempts = about.max_attempts, %error, retry_in = ?after, "job failed; it will be retried")
        }
        JobOutcome::Failed { error } => {
            tracing::warn!(%job, name, queue, attempt, max_attempts = about.max_attempts, %error, "job {job} ({name}) failed for good")
        }
        JobOutcome::Snooze { after } => {
            tracing::debug!(%job, name, queue, attempt, ?after, "job snoozed")
        }
        JobOutcome::Cancelled { reason } => {
            tracing::info!(%job, name, queue, attempt, %reason, "job cancelled")
        }
        JobOutcome::Released { reason } => {
            tracing::info!(%job, name, queue, attempt, %reason, "job handed back")
        }
    }
}

/// Turns a panic inside the attempt's future into an error value, so the
/// server, the task and the slot survive it.
struct CatchUnwind(Pin<Box<dyn Future<Output = RunResult> + Send>>);

impl Future for CatchUnwind {
    type Output = Result<RunResult, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => Poll::Ready(Ok(result)),
            Err(payload) => Poll::Ready(Err(panic_message(payload))),
        }
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(message) => (*message).to_owned(),
            Err(_) => "a panic with a non-string payload".to_owned(),
        },
    }
}
