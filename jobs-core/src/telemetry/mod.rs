//! What the framework tells tools about jobs beyond its log events: the
//! spans of an enqueue and of a run, named after the OpenTelemetry messaging
//! conventions, and with the `opentelemetry` feature the trace context that
//! joins them and the metrics (listed in the README's "Traces and metrics").
//!
//! Without the feature the trace context is not captured and every metric
//! function here is empty, so the calls cost nothing.

#[cfg(feature = "opentelemetry")]
mod otel;

use std::future::Future;
use std::time::Duration;

use tracing::field::Empty;
use tracing::Span;

use crate::model::{Inserted, JobRow, NewJob, Timestamp, TraceContext};
use crate::store::JobOutcome;

#[cfg(feature = "opentelemetry")]
pub(crate) use otel::{measured, refresh_waiting};

/// `messaging.system` of every span and metric.
#[cfg(feature = "opentelemetry")]
const SYSTEM: &str = "jobs";

/// Inserts `jobs` with `insert` inside an enqueue span (a producer span,
/// `send <queue>`), stamping each job with that span's trace context first,
/// and counts them as enqueued once the insert returns. For the stores'
/// transactional enqueue as well as `Jobs`; not public API.
#[doc(hidden)]
pub async fn enqueue<F, Fut, E>(mut jobs: Vec<NewJob>, insert: F) -> Result<Vec<Inserted>, E>
where
    F: FnOnce(Vec<NewJob>) -> Fut,
    Fut: Future<Output = Result<Vec<Inserted>, E>>,
{
    use tracing::Instrument;
    let span = enqueue_span(&jobs);
    stamp(&span, &mut jobs);
    let counted = Enqueued::of(&jobs);
    let inserted = insert(jobs).instrument(span).await?;
    counted.record(&inserted);
    Ok(inserted)
}

/// The span of an enqueue of `jobs` (a batch names its first job's queue).
fn enqueue_span(jobs: &[NewJob]) -> Span {
    let (queue, name) = jobs
        .first()
        .map_or(("", ""), |j| (j.queue.as_str(), j.name.as_str()));
    let span = tracing::info_span!(
        "enqueue",
        queue,
        name,
        jobs = jobs.len(),
        otel.name = Empty,
        otel.kind = Empty,
    );
    #[cfg(feature = "opentelemetry")]
    otel::producer(
        &span,
        otel::Producer {
            operation: "enqueue",
            queue,
            name: Some(name),
            count: Some(jobs.len()),
            recurring: None,
        },
    );
    span
}

/// The span a recurring schedule's fire enqueues in: the root of a trace of
/// its own, since no request asked for the run.
pub(crate) fn recurring_fire_span(recurring: &str, jobs: &mut [NewJob]) -> Span {
    let (queue, name) = jobs
        .first()
        .map_or(("", ""), |j| (j.queue.as_str(), j.name.as_str()));
    let span = tracing::info_span!(
        parent: None,
        "recurring fire",
        recurring,
        queue,
        otel.name = Empty,
        otel.kind = Empty,
    );
    #[cfg(feature = "opentelemetry")]
    otel::producer(
        &span,
        otel::Producer {
            operation: "recurring fire",
            queue,
            name: Some(name),
            count: None,
            recurring: Some(recurring),
        },
    );
    #[cfg(not(feature = "opentelemetry"))]
    let _ = name;
    stamp(&span, jobs);
    span
}

/// The span of a recurring job triggered by hand, in the caller's trace,
/// and the trace context its run continues.
pub(crate) fn recurring_trigger_span(recurring: &str) -> (Span, Option<TraceContext>) {
    let span = tracing::info_span!(
        "recurring trigger",
        recurring,
        otel.name = Empty,
        otel.kind = Empty,
    );
    #[cfg(feature = "opentelemetry")]
    let context = {
        otel::producer(
            &span,
            otel::Producer {
                operation: "recurring trigger",
                queue: "",
                name: None,
                count: None,
                recurring: Some(recurring),
            },
        );
        otel::context_of(&span)
    };
    #[cfg(not(feature = "opentelemetry"))]
    let context = None;
    (span, context)
}

/// Gives each job without one the trace context of `span`.
fn stamp(span: &Span, jobs: &mut [NewJob]) {
    #[cfg(feature = "opentelemetry")]
    otel::stamp(span, jobs);
    #[cfg(not(feature = "opentelemetry"))]
    let _ = (span, jobs);
}

/// The span of one attempt, which the job's own events sit in. With the
/// `opentelemetry` feature it is a consumer span (`process <queue>`) that
/// continues the trace of the job's enqueue: its parent, and a link to it.
/// The OpenTelemetry attributes are set on the OpenTelemetry span only, so
/// that log lines show just the job's fields.
pub(crate) fn run_span(row: &JobRow) -> Span {
    let span = tracing::info_span!(
        "job",
        id = %row.id,
        name = %row.name,
        queue = %row.queue,
        attempt = row.attempt,
        otel.name = Empty,
        otel.kind = Empty,
    );
    #[cfg(feature = "opentelemetry")]
    otel::consumer(&span, row);
    span
}

/// How many jobs of which queue and name an insert is about to store.
pub(crate) struct Enqueued {
    /// Each queue and name enqueued, and which of them each job is.
    #[cfg(feature = "opentelemetry")]
    groups: Vec<(String, String)>,
    #[cfg(feature = "opentelemetry")]
    group_of: Vec<usize>,
}

impl Enqueued {
    pub(crate) fn of(jobs: &[NewJob]) -> Self {
        #[cfg(feature = "opentelemetry")]
        {
            let mut groups: Vec<(String, String)> = Vec::new();
            let mut group_of = Vec::with_capacity(jobs.len());
            for job in jobs {
                let group = match groups
                    .iter()
                    .position(|(q, n)| *q == job.queue && *n == job.name)
                {
                    Some(group) => group,
                    None => {
                        groups.push((job.queue.clone(), job.name.clone()));
                        groups.len() - 1
                    }
                };
                group_of.push(group);
            }
            Self { groups, group_of }
        }
        #[cfg(not(feature = "opentelemetry"))]
        {
            let _ = jobs;
            Self {}
        }
    }

    /// Counts the jobs the insert stored (not the duplicates of unique jobs).
    pub(crate) fn record(self, inserted: &[Inserted]) {
        #[cfg(feature = "opentelemetry")]
        {
            let mut counts = vec![0_u64; self.groups.len()];
            for (group, inserted) in self.group_of.iter().zip(inserted) {
                if !inserted.duplicate {
                    counts[*group] += 1;
                }
            }
            for ((queue, name), n) in self.groups.iter().zip(counts) {
                if n > 0 {
                    otel::instruments().enqueued(queue, name, n);
                }
            }
        }
        #[cfg(not(feature = "opentelemetry"))]
        let _ = inserted;
    }
}

/// An attempt of a job due at `due` started running.
pub(crate) fn job_started(queue: &str, name: &str, due: Timestamp) {
    #[cfg(feature = "opentelemetry")]
    otel::instruments().started(queue, name, due);
    #[cfg(not(feature = "opentelemetry"))]
    let _ = (queue, name, due);
}

/// How an attempt ended, for the metrics: `ran` is how long it ran, `None`
/// when it never started; `outcome` is `None` when its lease was lost.
pub(crate) fn job_ended(
    queue: &str,
    name: &str,
    ran: Option<Duration>,
    outcome: Option<&JobOutcome>,
) {
    #[cfg(feature = "opentelemetry")]
    otel::instruments().ended(queue, name, ran, outcome);
    #[cfg(not(feature = "opentelemetry"))]
    let _ = (queue, name, ran, outcome);
}

/// Jobs whose leases had expired were made runnable again.
pub(crate) fn jobs_rescued(n: usize) {
    #[cfg(feature = "opentelemetry")]
    otel::instruments().rescued(n);
    #[cfg(not(feature = "opentelemetry"))]
    let _ = n;
}

/// A claim failed (the store did not answer, or answered with an error).
pub(crate) fn claim_failed() {
    #[cfg(feature = "opentelemetry")]
    otel::instruments().claim_failed();
}
