//! Logs, metrics and traces of the API and its jobs, through OpenTelemetry
//! (the `opentelemetry` feature of `jobs`).
//!
//! - Metrics: by default a Prometheus endpoint, `GET /metrics`; with
//!   `JOBS_METRICS=stdout` they are printed to stdout every 10 s instead.
//! - Traces: with `JOBS_TRACES=stdout` the spans are printed to stdout. A
//!   signup's span, the enqueue inside it and the job's run share one trace.
//! - Logs: `RUST_LOG` as usual (default `info`).

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use prometheus::{Encoder, Registry, TextEncoder};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The providers, kept to flush them at exit.
pub(crate) struct Telemetry {
    /// Where `GET /metrics` reads from; `None` when metrics go to stdout.
    pub(crate) registry: Option<Registry>,
    meters: SdkMeterProvider,
    tracer: Option<SdkTracerProvider>,
}

/// Installs the log subscriber and the global meter provider, before any
/// job is enqueued or server started (the framework makes its instruments
/// from the global provider then).
pub(crate) fn init() -> anyhow::Result<Telemetry> {
    let (registry, meters) = match std::env::var("JOBS_METRICS").as_deref() {
        Ok("stdout") => {
            let reader = PeriodicReader::builder(opentelemetry_stdout::MetricExporter::default())
                .with_interval(Duration::from_secs(10))
                .build();
            (
                None,
                SdkMeterProvider::builder().with_reader(reader).build(),
            )
        }
        Ok("prometheus") | Err(_) => {
            let registry = Registry::new();
            let exporter = opentelemetry_prometheus::exporter()
                .with_registry(registry.clone())
                .build()?;
            let meters = SdkMeterProvider::builder().with_reader(exporter).build();
            (Some(registry), meters)
        }
        Ok(other) => anyhow::bail!("JOBS_METRICS={other}: expected `prometheus` or `stdout`"),
    };
    opentelemetry::global::set_meter_provider(meters.clone());

    let tracer = match std::env::var("JOBS_TRACES").as_deref() {
        Ok("stdout") => Some(
            SdkTracerProvider::builder()
                .with_simple_exporter(opentelemetry_stdout::SpanExporter::default())
                .build(),
        ),
        Ok(other) => anyhow::bail!("JOBS_TRACES={other}: expected `stdout`"),
        Err(_) => None,
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer())
        .with(
            tracer
                .as_ref()
                .map(|t| tracing_opentelemetry::layer().with_tracer(t.tracer("axum_api"))),
        )
        .init();
    Ok(Telemetry {
        registry,
        meters,
        tracer,
    })
}

impl Telemetry {
    /// Exports what is left.
    pub(crate) fn shutdown(self) {
        let _ = self.meters.shutdown();
        if let Some(tracer) = self.tracer {
            let _ = tracer.shutdown();
        }
    }
}

/// `GET /metrics`: the Prometheus text format.
pub(crate) async fn metrics(State(registry): State<Registry>) -> Response {
    let mut body = Vec::new();
    match TextEncoder::new().encode(&registry.gather(), &mut body) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                TextEncoder::new().format_type().to_owned(),
            )],
            body,
        )
            .into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}
