//! The `opentelemetry` feature: the W3C trace context from enqueue to run,
//! and the instruments, made from the global meter provider the first time
//! a job is enqueued or a server starts. An application sets its provider
//! (`opentelemetry::global::set_meter_provider`) before that.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use opentelemetry::metrics::{Counter, Histogram, ObservableGauge, UpDownCounter};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::KeyValue;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::SYSTEM;
use crate::model::{JobRow, JobState, NewJob, QueueStateCount, ServerId, Timestamp, TraceContext};
use crate::store::{DynStore, JobOutcome, StoreOperation, StoreResult};

impl Injector for TraceContext {
    fn set(&mut self, key: &str, value: String) {
        self.insert(key, value);
    }
}

impl Extractor for TraceContext {
    fn get(&self, key: &str) -> Option<&str> {
        TraceContext::get(self, key)
    }

    fn keys(&self) -> Vec<&str> {
        self.fields().keys().map(String::as_str).collect()
    }
}

/// The W3C trace context of `span`; `None` without an OpenTelemetry layer
/// or when the span is disabled.
pub(super) fn context_of(span: &Span) -> Option<TraceContext> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = TraceContext::default();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    (!carrier.is_empty()).then_some(carrier)
}

pub(super) fn stamp(span: &Span, jobs: &mut [NewJob]) {
    let Some(context) = context_of(span) else {
        return;
    };
    for job in jobs.iter_mut().filter(|j| j.trace_context.is_none()) {
        job.trace_context = Some(context.clone());
    }
}

/// What a producer span is about.
pub(super) struct Producer<'a> {
    /// `messaging.operation.name`.
    pub(super) operation: &'static str,
    /// `messaging.destination.name`; empty when unknown.
    pub(super) queue: &'a str,
    pub(super) name: Option<&'a str>,
    /// `messaging.batch.message_count`, for an enqueue.
    pub(super) count: Option<usize>,
    pub(super) recurring: Option<&'a str>,
}

/// Makes `span` a producer span with the messaging conventions' attributes.
pub(super) fn producer(span: &Span, p: Producer<'_>) {
    if p.queue.is_empty() {
        span.record("otel.name", "send");
    } else {
        span.record("otel.name", format!("send {}", p.queue));
        span.set_attribute("messaging.destination.name", p.queue.to_owned());
    }
    span.record("otel.kind", "producer");
    span.set_attribute("messaging.system", SYSTEM);
    span.set_attribute("messaging.operation.type", "send");
    span.set_attribute("messaging.operation.name", p.operation);
    if let Some(name) = p.name {
        span.set_attribute("jobs.name", name.to_owned());
    }
    if let Some(count) = p.count {
        span.set_attribute(
            "messaging.batch.message_count",
            i64::try_from(count).unwrap_or(i64::MAX),
        );
    }
    if let Some(recurring) = p.recurring {
        span.set_attribute("jobs.recurring", recurring.to_owned());
    }
}

/// Makes `span` the consumer span of an attempt of `row`, continuing the
/// trace of its enqueue.
pub(super) fn consumer(span: &Span, row: &JobRow) {
    span.record("otel.name", format!("process {}", row.queue));
    span.record("otel.kind", "consumer");
    span.set_attribute("messaging.system", SYSTEM);
    span.set_attribute("messaging.operation.type", "process");
    span.set_attribute("messaging.operation.name", "run");
    span.set_attribute("messaging.destination.name", row.queue.clone());
    span.set_attribute("messaging.message.id", row.id.to_string());
    span.set_attribute("jobs.name", row.name.clone());
    span.set_attribute("jobs.attempt", i64::from(row.attempt));
    continue_trace(span, row.trace_context.as_ref());
}

fn continue_trace(span: &Span, stored: Option<&TraceContext>) {
    let Some(stored) = stored else { return };
    let cx = TraceContextPropagator::new().extract(stored);
    let enqueue = cx.span().span_context().clone();
    if !enqueue.is_valid() {
        return;
    }
    // The run is part of the story of the request that enqueued it (its
    // parent), and a link as the messaging conventions ask of a consumer
    // span, which tools that draw links show even across retention limits.
    let _ = span.set_parent(cx);
    span.add_link(enqueue);
}

/// Every instrument, made once per process.
pub(super) fn instruments() -> &'static Instruments {
    static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();
    INSTRUMENTS.get_or_init(Instruments::new)
}

/// The waiting jobs per queue as each running server of this process last
/// read them (see [`refresh_waiting`]); the `jobs.waiting` gauge reports,
/// per queue, the highest count (servers on one store read the same).
static WAITING: Mutex<Vec<(ServerId, QueueCounts)>> = Mutex::new(Vec::new());

/// Jobs per queue.
type QueueCounts = Vec<(String, i64)>;

fn waiting_of_servers() -> std::sync::MutexGuard<'static, Vec<(ServerId, QueueCounts)>> {
    WAITING.lock().unwrap_or_else(|e| e.into_inner())
}

/// How often a server reads the waiting counts for the `jobs.waiting`
/// gauge, whatever the export interval: one count query per period per
/// server, not one per scrape.
const WAITING_REFRESH: Duration = Duration::from_secs(15);

/// Reads the waiting counts for `server` every [`WAITING_REFRESH`] until
/// `stop`, then forgets them.
pub(crate) async fn refresh_waiting(
    server: ServerId,
    store: Arc<dyn DynStore>,
    stop: tokio_util::sync::CancellationToken,
    limit: Duration,
) {
    instruments();
    loop {
        let call = store.job_count(crate::store::JobCountParams::new());
        if let Ok(Ok(counts)) = tokio::time::timeout(limit, call).await {
            let counts = waiting(&counts);
            let mut servers = waiting_of_servers();
            match servers.iter_mut().find(|(id, _)| *id == server) {
                Some(entry) => entry.1 = counts,
                None => servers.push((server, counts)),
            }
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(WAITING_REFRESH) => {}
        }
    }
    waiting_of_servers().retain(|(id, _)| *id != server);
}

fn waiting(counts: &[QueueStateCount]) -> Vec<(String, i64)> {
    let mut by_queue: Vec<(String, i64)> = Vec::new();
    for count in counts.iter().filter(|c| c.state == JobState::Enqueued) {
        match by_queue.iter_mut().find(|(q, _)| *q == count.queue) {
            Some(entry) => entry.1 += count.count,
            None => by_queue.push((count.queue.clone(), count.count)),
        }
    }
    by_queue
}

/// Seconds, from a millisecond to an hour: pickup latency and run times.
const SECONDS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 300.0,
    3600.0,
];

pub(super) struct Instruments {
    enqueued: Counter<u64>,
    started: Counter<u64>,
    succeeded: Counter<u64>,
    failed: Counter<u64>,
    cancelled: Counter<u64>,
    snoozed: Counter<u64>,
    released: Counter<u64>,
    lost: Counter<u64>,
    rescued: Counter<u64>,
    running: UpDownCounter<i64>,
    run_time: Histogram<f64>,
    queue_wait: Histogram<f64>,
    claim_errors: Counter<u64>,
    store_errors: Counter<u64>,
    store_duration: Histogram<f64>,
    _waiting: ObservableGauge<i64>,
}

impl Instruments {
    fn new() -> Self {
        let meter = opentelemetry::global::meter("jobs");
        let counter = |name: &'static str, description: &'static str| {
            meter
                .u64_counter(name)
                .with_unit("{job}")
                .with_description(description)
                .build()
        };
        let seconds = |name: &'static str, description: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(SECONDS.to_vec())
                .build()
        };
        Self {
            enqueued: counter("jobs.enqueued", "Jobs stored by an enqueue or a recurring fire."),
            started: counter("jobs.started", "Attempts that started running."),
            succeeded: counter("jobs.succeeded", "Attempts that succeeded."),
            failed: counter(
                "jobs.failed",
                "Attempts that failed; `jobs.retryable` says whether the job will be retried or failed for good.",
            ),
            cancelled: counter("jobs.cancelled", "Attempts that ended cancelled."),
            snoozed: counter("jobs.snoozed", "Attempts that snoozed their job."),
            released: counter(
                "jobs.released",
                "Attempts handed back without spending an attempt (shutdown, a server that does not know the job).",
            ),
            lost: counter(
                "jobs.lost",
                "Attempts whose lease was lost (rescued by another server): their result was discarded.",
            ),
            rescued: counter(
                "jobs.rescued",
                "Jobs whose lease expired, made runnable again by this process's servers.",
            ),
            running: meter
                .i64_up_down_counter("jobs.running")
                .with_unit("{job}")
                .with_description("Attempts running now in this process.")
                .build(),
            run_time: seconds("jobs.run.duration", "How long attempts ran, by outcome."),
            queue_wait: seconds(
                "jobs.queue.wait",
                "From when a job was due to when its attempt started: the pickup latency.",
            ),
            claim_errors: meter
                .u64_counter("jobs.server.claim.errors")
                .with_unit("{call}")
                .with_description("Claims that failed.")
                .build(),
            store_errors: meter
                .u64_counter("jobs.store.errors")
                .with_unit("{call}")
                .with_description("Store calls of servers that failed or were abandoned, by operation.")
                .build(),
            store_duration: seconds(
                "jobs.store.duration",
                "How long store calls of servers took, by operation.",
            ),
            _waiting: meter
                .i64_observable_gauge("jobs.waiting")
                .with_unit("{job}")
                .with_description(
                    "Jobs enqueued per queue (due, not yet claimed), as a server of this process last counted them.",
                )
                .with_callback(|observer| {
                    let mut highest: Vec<(String, i64)> = Vec::new();
                    for (_, counts) in waiting_of_servers().iter() {
                        for (queue, n) in counts {
                            match highest.iter_mut().find(|(q, _)| q == queue) {
                                Some(entry) => entry.1 = entry.1.max(*n),
                                None => highest.push((queue.clone(), *n)),
                            }
                        }
                    }
                    for (queue, n) in &highest {
                        observer.observe(*n, &[system(), destination(queue)]);
                    }
                })
                .build(),
        }
    }

    pub(super) fn enqueued(&self, queue: &str, name: &str, n: u64) {
        self.enqueued.add(n, &job(queue, name));
    }

    pub(super) fn started(&self, queue: &str, name: &str, due: Timestamp) {
        let attributes = job(queue, name);
        self.started.add(1, &attributes);
        self.running.add(1, &attributes);
        // On this host's clock against the store's: skew shows here.
        let waited = (chrono::Utc::now() - due)
            .to_std()
            .unwrap_or(Duration::ZERO);
        self.queue_wait.record(waited.as_secs_f64(), &attributes);
    }

    pub(super) fn ended(
        &self,
        queue: &str,
        name: &str,
        ran: Option<Duration>,
        outcome: Option<&JobOutcome>,
    ) {
        let [system, destination, name] = job(queue, name);
        let attributes = [system, destination, name];
        let (counter, kind) = match outcome {
            None => (&self.lost, "lost"),
            Some(JobOutcome::Succeeded) => (&self.succeeded, "succeeded"),
            Some(JobOutcome::Retry { .. }) => (&self.failed, "retry"),
            Some(JobOutcome::Failed { .. }) => (&self.failed, "failed"),
            Some(JobOutcome::Cancelled { .. }) => (&self.cancelled, "cancelled"),
            Some(JobOutcome::Snooze { .. }) => (&self.snoozed, "snoozed"),
            Some(JobOutcome::Released { .. }) => (&self.released, "released"),
        };
        match outcome {
            Some(JobOutcome::Retry { .. } | JobOutcome::Failed { .. }) => {
                let retryable = matches!(outcome, Some(JobOutcome::Retry { .. }));
                let [a, b, c] = attributes.clone();
                counter.add(1, &[a, b, c, KeyValue::new("jobs.retryable", retryable)]);
            }
            _ => counter.add(1, &attributes),
        }
        if let Some(ran) = ran {
            self.running.add(-1, &attributes);
            let [a, b, c] = attributes;
            self.run_time.record(
                ran.as_secs_f64(),
                &[a, b, c, KeyValue::new("jobs.outcome", kind)],
            );
        }
    }

    pub(super) fn rescued(&self, n: usize) {
        self.rescued
            .add(u64::try_from(n).unwrap_or(u64::MAX), &[system()]);
    }

    pub(super) fn claim_failed(&self) {
        self.claim_errors.add(1, &[system()]);
    }

    fn store_call(&self, operation: StoreOperation, took: Duration, ok: Option<bool>) {
        let attributes = [
            system(),
            KeyValue::new("jobs.store.operation", operation.as_str()),
        ];
        self.store_duration.record(took.as_secs_f64(), &attributes);
        if ok != Some(true) {
            let [a, b] = attributes;
            let outcome = if ok.is_none() { "abandoned" } else { "error" };
            self.store_errors
                .add(1, &[a, b, KeyValue::new("jobs.store.outcome", outcome)]);
        }
    }
}

fn system() -> KeyValue {
    KeyValue::new("messaging.system", SYSTEM)
}

fn destination(queue: &str) -> KeyValue {
    KeyValue::new("messaging.destination.name", queue.to_owned())
}

fn job(queue: &str, name: &str) -> [KeyValue; 3] {
    [
        system(),
        destination(queue),
        KeyValue::new("jobs.name", name.to_owned()),
    ]
}

/// Measures one store call; a call dropped before it answered (its
/// caller's timeout) counts as abandoned.
struct Measure {
    operation: StoreOperation,
    started: Instant,
    ok: Option<bool>,
}

impl Drop for Measure {
    fn drop(&mut self) {
        instruments().store_call(self.operation, self.started.elapsed(), self.ok);
    }
}

/// `call`, measured for `jobs.store.duration` and `jobs.store.errors`.
pub(crate) async fn measured<T>(
    operation: StoreOperation,
    call: impl Future<Output = StoreResult<T>>,
) -> StoreResult<T> {
    let mut measure = Measure {
        operation,
        started: Instant::now(),
        ok: None,
    };
    let result = call.await;
    measure.ok = Some(result.is_ok());
    result
}
