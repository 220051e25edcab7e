//! The `opentelemetry` feature, through the SDK's in-memory exporters: a run
//! continues the trace of its enqueue (through `enqueue` and `enqueue_many`;
//! a recurring fire starts a trace of its own), spans carry the messaging
//! conventions' attributes, and each metric counts a run of known jobs with
//! its attributes; on PostgreSQL, a transactional enqueue's trace context
//! is stored and its run continues it. One test: the providers are global
//! to the process.
#![cfg(all(feature = "opentelemetry", feature = "postgres"))]

mod pg_support;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use jobs::store::{Layered, StoreLayer, StoreOperation};
use jobs::{
    job, JobContext, JobId, JobState, Jobs, MemoryStore, Server, Snooze, StoreError,
    StoreErrorKind, StoreResult,
};
use opentelemetry::trace::{SpanId, SpanKind, TraceId, TracerProvider as _};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

#[job]
async fn send_receipt(order: u64) {
    let _ = order;
}

#[job(max_attempts = 2, backoff = fixed("10ms"))]
async fn sync_ledger(account: u32) -> anyhow::Result<()> {
    anyhow::bail!("ledger {account} refused the sync")
}

static RESTOCKED: AtomicBool = AtomicBool::new(false);

#[job]
async fn wait_for_stock(sku: u32) -> Result<(), Snooze> {
    let _ = sku;
    if RESTOCKED.swap(true, Ordering::SeqCst) {
        Ok(())
    } else {
        Err(Snooze::after(Duration::from_millis(10)))
    }
}

/// Still running at shutdown: handed back.
#[job]
async fn hold_on(ctx: JobContext) -> anyhow::Result<()> {
    ctx.cancelled().await;
    anyhow::bail!("stopped")
}

/// Fails the first two claims, as a store that does not answer would.
struct FailFirstClaims(AtomicU32);

impl StoreLayer for FailFirstClaims {
    fn around<T, F>(
        &self,
        operation: StoreOperation,
        call: F,
    ) -> impl Future<Output = StoreResult<T>> + Send
    where
        F: Future<Output = StoreResult<T>> + Send,
    {
        let fail =
            operation == StoreOperation::JobClaim && self.0.fetch_add(1, Ordering::SeqCst) < 2;
        async move {
            if fail {
                Err(StoreError::new(
                    StoreErrorKind::Unavailable,
                    "the test's store is away",
                ))
            } else {
                call.await
            }
        }
    }
}

#[job(queue = "otel_tx")]
async fn welcome(user: u64) {
    let _ = user;
}

#[job]
async fn long_report(ctx: JobContext) -> anyhow::Result<()> {
    ctx.cancelled().await;
    // Returning `Ok` now would count as a success that came in time.
    anyhow::bail!("the report was abandoned")
}

#[test]
fn runs_continue_their_enqueue_trace_and_every_metric_counts_known_jobs() {
    let spans = InMemorySpanExporter::default();
    let tracer_provider = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer_provider.tracer("test")));
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let metrics = InMemoryMetricExporter::default();
    let meter_provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(metrics.clone()).build())
        .build();
    opentelemetry::global::set_meter_provider(meter_provider.clone());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let export = || meter_provider.force_flush().unwrap();
    let (checkout_trace, operator_trace, long) = runtime.block_on(run_known_jobs(export));
    let signup_trace = runtime.block_on(enqueue_in_a_transaction());
    drop(runtime);
    tracer_provider.force_flush().unwrap();
    meter_provider.force_flush().unwrap();

    check_spans(
        &spans.get_finished_spans().unwrap(),
        checkout_trace,
        operator_trace,
    );
    check_transactional_spans(&spans.get_finished_spans().unwrap(), signup_trace);
    check_metrics(&metrics.get_finished_metrics().unwrap(), long);
}

/// Enqueues inside a `checkout` span, triggers a recurring job inside an
/// `operator` span, runs everything to its end; the two spans' trace ids
/// and the cancelled job.
/// `export` exports the metrics while the server runs, for the gauge.
async fn run_known_jobs(export: impl Fn()) -> (TraceId, TraceId, JobId) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    // Waiting in a queue no server serves, for the `jobs.waiting` gauge.
    SendReceipt::new(0)
        .queue("reports")
        .enqueue(&jobs)
        .await
        .unwrap();
    let checkout = tracing::info_span!("checkout");
    let trace_of = |span: &tracing::Span| {
        use opentelemetry::trace::TraceContextExt;
        span.context().span().span_context().trace_id()
    };
    let checkout_trace = trace_of(&checkout);
    let mut ids = async {
        let mut ids = vec![SendReceipt::enqueue(&jobs, 1).await.unwrap()];
        ids.extend(
            jobs.enqueue_many([SendReceipt::new(2), SendReceipt::new(3)])
                .await
                .unwrap(),
        );
        ids.push(SyncLedger::enqueue(&jobs, 7).await.unwrap());
        ids.push(WaitForStock::enqueue(&jobs, 12).await.unwrap());
        ids
    }
    .instrument(checkout)
    .await;
    let long = LongReport::enqueue(&jobs).await.unwrap();
    jobs.recurring()
        .add_or_update("receipts", "* * * * * *", SendReceipt::new(100))
        .await
        .unwrap();
    let operator = tracing::info_span!("operator");
    let operator_trace = trace_of(&operator);
    let triggered = jobs
        .recurring()
        .trigger("receipts")
        .instrument(operator)
        .await
        .unwrap();
    ids.push(triggered);

    let server = Server::builder(Layered::new(store, FailFirstClaims(AtomicU32::new(0))))
        .poll_interval(Duration::from_millis(20))
        .scheduler_interval(Duration::from_millis(50))
        .shutdown_timeout(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    for id in &ids {
        wait_until_finished(&jobs, *id).await;
    }
    while jobs.get(long).await.unwrap().unwrap().job.state != JobState::Processing {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    jobs.cancel(long).await.unwrap();
    wait_until_finished(&jobs, long).await;
    // One run fired by the schedule, ended.
    loop {
        let fired = jobs
            .list(jobs::ListJobs::new().state(JobState::Succeeded))
            .await
            .unwrap()
            .into_iter()
            .any(|row| row.recurring.is_some() && row.id != triggered);
        if fired {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    jobs.recurring().remove("receipts").await.unwrap();
    let held = HoldOn::enqueue(&jobs).await.unwrap();
    while jobs.get(held).await.unwrap().unwrap().job.state != JobState::Processing {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    export();
    server.shutdown().await;
    (checkout_trace, operator_trace, long)
}

/// Enqueues `welcome` in a transaction inside a `signup` span and runs it
/// on a PostgreSQL store; the signup's trace id.
async fn enqueue_in_a_transaction() -> TraceId {
    use jobs::postgres::EnqueueIn;
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let schema = pg_support::TestSchema::new().await;
    let store = schema.store(&format!("{}_otel", schema.name)).await;
    let jobs = Jobs::new(store.clone());
    let signup = tracing::info_span!("signup");
    let signup_trace = signup.context().span().span_context().trace_id();
    let id = async {
        let mut tx = store.pool().begin().await.unwrap();
        let id = Welcome::new(3).enqueue_in(&jobs, &mut tx).await.unwrap();
        tx.commit().await.unwrap();
        id
    }
    .instrument(signup)
    .await;
    let stored: Option<serde_json::Value> = sqlx::query_scalar(&format!(
        "SELECT trace_context FROM {} WHERE id = $1",
        schema.table("jobs")
    ))
    .bind(id.0)
    .fetch_one(&schema.admin)
    .await
    .unwrap();
    let parent = stored
        .as_ref()
        .and_then(|c| c.get("traceparent"))
        .and_then(serde_json::Value::as_str)
        .expect("the job's row keeps the enqueue's traceparent");
    assert!(parent.contains(&signup_trace.to_string()), "{parent}");

    let server = Server::builder(store.clone())
        .queues(["otel_tx"])
        .poll_interval(Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    wait_until_finished(&jobs, id).await;
    server.shutdown().await;
    store.close().await;
    signup_trace
}

fn check_transactional_spans(spans: &[SpanData], signup_trace: TraceId) {
    let in_signup: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.span_context.trace_id() == signup_trace)
        .collect();
    let enqueue = in_signup
        .iter()
        .find(|s| s.span_kind == SpanKind::Producer)
        .expect("the transactional enqueue's span in the signup's trace");
    assert_eq!(enqueue.name, "send otel_tx");
    let run = in_signup
        .iter()
        .find(|s| s.span_kind == SpanKind::Consumer)
        .expect("the run in the signup's trace");
    assert_eq!(run.name, "process otel_tx");
    assert_eq!(run.parent_span_id, enqueue.span_context.span_id());
}

async fn wait_until_finished(jobs: &Jobs, id: JobId) {
    for _ in 0..3000 {
        let job = jobs.get(id).await.unwrap().unwrap().job;
        if job.state.is_finished() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} did not finish");
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn check_spans(spans: &[SpanData], checkout_trace: TraceId, operator_trace: TraceId) {
    let checkout = spans.iter().find(|s| s.name == "checkout").unwrap();
    assert_eq!(checkout.span_context.trace_id(), checkout_trace);
    let enqueues: Vec<&SpanData> = spans
        .iter()
        .filter(|s| {
            s.span_kind == SpanKind::Producer && s.parent_span_id == checkout.span_context.span_id()
        })
        .collect();
    // `enqueue` once for send_receipt, once for the batch, once each for
    // sync_ledger and wait_for_stock.
    assert_eq!(
        enqueues.len(),
        4,
        "enqueue spans in the checkout: {enqueues:#?}"
    );
    for span in &enqueues {
        assert_eq!(span.name, "send default");
        assert_eq!(span.span_context.trace_id(), checkout_trace);
        assert_eq!(
            attribute(span, "messaging.system"),
            Some(&Value::from("jobs"))
        );
        assert_eq!(
            attribute(span, "messaging.operation.type"),
            Some(&Value::from("send"))
        );
        assert_eq!(
            attribute(span, "messaging.destination.name"),
            Some(&Value::from("default"))
        );
    }
    let batch = enqueues
        .iter()
        .find(|s| attribute(s, "messaging.batch.message_count") == Some(&Value::I64(2)))
        .unwrap_or_else(|| panic!("the enqueue_many span counts its two jobs: {enqueues:#?}"));

    let runs: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.span_kind == SpanKind::Consumer)
        .collect();
    let runs_in_checkout: Vec<&&SpanData> = runs
        .iter()
        .filter(|s| s.span_context.trace_id() == checkout_trace)
        .collect();
    // send_receipt 1, 2 and 3; sync_ledger twice (a retry continues the same
    // trace); wait_for_stock twice (snoozed, then run again).
    assert_eq!(
        runs_in_checkout.len(),
        7,
        "runs in the checkout's trace: {runs_in_checkout:#?}"
    );
    for run in &runs_in_checkout {
        assert_eq!(run.name, "process default");
        assert_eq!(
            attribute(run, "messaging.operation.type"),
            Some(&Value::from("process"))
        );
        let parent = enqueues
            .iter()
            .find(|e| e.span_context.span_id() == run.parent_span_id)
            .expect("a run's parent is the span of its enqueue");
        assert!(
            run.links.iter().any(|link| link.span_context.span_id()
                == parent.span_context.span_id()
                && link.span_context.trace_id() == parent.span_context.trace_id()),
            "a run links to its enqueue"
        );
    }
    assert_eq!(
        runs_in_checkout
            .iter()
            .filter(|run| run.parent_span_id == batch.span_context.span_id())
            .count(),
        2,
        "both jobs of the batch continue the batch's span"
    );

    let fires: Vec<&SpanData> = spans
        .iter()
        .filter(|s| {
            attribute(s, "messaging.operation.name") == Some(&Value::from("recurring fire"))
        })
        .collect();
    assert!(!fires.is_empty(), "a recurring fire span");
    for fire in &fires {
        assert_eq!(
            fire.parent_span_id,
            SpanId::INVALID,
            "a recurring fire starts its own trace"
        );
        assert_ne!(fire.span_context.trace_id(), checkout_trace);
    }
    assert!(
        runs.iter()
            .any(|run| fires.iter().any(|fire| run.span_context.trace_id()
                == fire.span_context.trace_id()
                && run.parent_span_id == fire.span_context.span_id())),
        "a recurring run continues its fire's trace"
    );
    // A recurring job triggered by hand continues the trace of the trigger.
    let trigger = spans
        .iter()
        .find(|s| {
            attribute(s, "messaging.operation.name") == Some(&Value::from("recurring trigger"))
        })
        .expect("the trigger's span");
    assert_eq!(trigger.span_context.trace_id(), operator_trace);
    assert!(
        runs.iter()
            .any(|run| run.parent_span_id == trigger.span_context.span_id()
                && run.span_context.trace_id() == operator_trace),
        "the triggered run continues the trigger's trace"
    );
    // The cancelled job was enqueued outside any span: its enqueue span
    // starts a trace, which its run continues.
    let root_enqueue = spans
        .iter()
        .find(|s| {
            s.span_kind == SpanKind::Producer
                && s.parent_span_id == SpanId::INVALID
                && attribute(s, "jobs.name") == Some(&Value::from("long_report"))
        })
        .expect("the enqueue span of a job enqueued outside any span, a root");
    assert!(runs
        .iter()
        .any(|run| run.parent_span_id == root_enqueue.span_context.span_id()));
}

/// The data points of the latest export that has `name`, as (attributes, value):
/// sums and gauges their value, histograms their count.
fn points(exports: &[ResourceMetrics], name: &str) -> Vec<(Vec<KeyValue>, f64)> {
    let metric = exports
        .iter()
        .rev()
        .flat_map(|e| e.scope_metrics())
        .flat_map(|s| s.metrics())
        .find(|m| m.name() == name)
        .unwrap_or_else(|| panic!("no metric {name}"));
    fn of<T: Copy>(data: &MetricData<T>, f: fn(T) -> f64) -> Vec<(Vec<KeyValue>, f64)> {
        match data {
            MetricData::Sum(sum) => sum
                .data_points()
                .map(|p| (p.attributes().cloned().collect(), f(p.value())))
                .collect(),
            MetricData::Gauge(gauge) => gauge
                .data_points()
                .map(|p| (p.attributes().cloned().collect(), f(p.value())))
                .collect(),
            MetricData::Histogram(histogram) => histogram
                .data_points()
                .map(|p| (p.attributes().cloned().collect(), p.count() as f64))
                .collect(),
            MetricData::ExponentialHistogram(_) => panic!("no exponential histograms here"),
        }
    }
    match metric.data() {
        AggregatedMetrics::F64(data) => of(data, |v| v),
        AggregatedMetrics::U64(data) => of(data, |v| v as f64),
        AggregatedMetrics::I64(data) => of(data, |v| v as f64),
    }
}

/// Sum of the points of `name` whose attributes include all of `with`.
fn total(exports: &[ResourceMetrics], name: &str, with: &[(&str, Value)]) -> f64 {
    points(exports, name)
        .iter()
        .filter(|(attributes, _)| {
            with.iter().all(|(key, value)| {
                attributes
                    .iter()
                    .any(|kv| kv.key.as_str() == *key && kv.value == *value)
            })
        })
        .map(|(_, value)| value)
        .sum()
}

fn check_metrics(exports: &[ResourceMetrics], long: JobId) {
    let name = |n: &'static str| ("jobs.name", Value::from(n));
    let queue = |q: &'static str| ("messaging.destination.name", Value::from(q));
    let system = ("messaging.system", Value::from("jobs"));
    let t = |metric, with: &[(&str, Value)]| total(exports, metric, with);

    // 0 (reports), 1, 2, 3, and at least one recurring fire.
    assert!(t("jobs.enqueued", &[name("send_receipt"), system.clone()]) >= 5.0);
    assert_eq!(
        t("jobs.enqueued", &[name("send_receipt"), queue("reports")]),
        1.0
    );
    assert_eq!(
        t("jobs.enqueued", &[name("sync_ledger"), queue("default")]),
        1.0
    );
    assert_eq!(t("jobs.enqueued", &[name("long_report")]), 1.0);

    assert_eq!(
        t("jobs.started", &[name("sync_ledger"), queue("default")]),
        2.0
    );
    assert_eq!(t("jobs.started", &[name("wait_for_stock")]), 2.0);
    assert!(t("jobs.succeeded", &[name("send_receipt")]) >= 4.0);
    assert_eq!(t("jobs.succeeded", &[name("wait_for_stock")]), 1.0);
    let retryable = |r: bool| ("jobs.retryable", Value::Bool(r));
    assert_eq!(
        t("jobs.failed", &[name("sync_ledger"), retryable(true)]),
        1.0
    );
    assert_eq!(
        t("jobs.failed", &[name("sync_ledger"), retryable(false)]),
        1.0
    );
    assert_eq!(t("jobs.snoozed", &[name("wait_for_stock")]), 1.0);
    assert_eq!(
        t("jobs.cancelled", &[name("long_report")]),
        1.0,
        "job {long}"
    );
    assert_eq!(
        t("jobs.running", &[]),
        0.0,
        "nothing runs after the shutdown"
    );
    assert_eq!(
        t("jobs.released", &[name("hold_on"), queue("default")]),
        1.0
    );

    let outcome = |o: &'static str| ("jobs.outcome", Value::from(o));
    assert_eq!(
        t(
            "jobs.run.duration",
            &[name("sync_ledger"), outcome("retry")]
        ),
        1.0
    );
    assert_eq!(
        t(
            "jobs.run.duration",
            &[name("sync_ledger"), outcome("failed")]
        ),
        1.0
    );
    assert_eq!(
        t(
            "jobs.run.duration",
            &[name("long_report"), outcome("cancelled")]
        ),
        1.0
    );
    assert_eq!(
        t("jobs.queue.wait", &[]),
        t("jobs.started", &[]),
        "one queue wait per started attempt"
    );

    assert_eq!(t("jobs.waiting", &[queue("reports")]), 1.0);
    let operation = |o: &'static str| ("jobs.store.operation", Value::from(o));
    assert!(t("jobs.store.duration", &[operation("job_claim")]) >= 1.0);
    assert!(t("jobs.store.duration", &[operation("job_complete_many")]) >= 1.0);
    assert_eq!(
        t("jobs.server.claim.errors", std::slice::from_ref(&system)),
        2.0
    );
    let store_outcome = |o: &'static str| ("jobs.store.outcome", Value::from(o));
    assert_eq!(
        t(
            "jobs.store.errors",
            &[operation("job_claim"), store_outcome("error")]
        ),
        2.0
    );
}
