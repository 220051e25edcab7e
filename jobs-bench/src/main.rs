//! The benchmark program of the `jobs` framework: the workloads W1, W1b, W2
//! and W3 of `PERFORMANCE.md` on PostgreSQL and the in-memory store, and the
//! raw-SQL floor of W2.
//!
//! ```text
//! cargo run --release -p jobs-bench -- [--reps 3] [--only w1,w2] [--store pg|memory|both] [--floor]
//! ```
//!
//! It prints one JSON line per workload (every repetition and the median),
//! then a table of medians. It times, then checks: the handler counts its
//! completions and the store is asked (by state) after each repetition, and
//! a failed check exits non-zero, so a fast wrong run cannot pass. Nothing
//! here is part of the test suite: no timed assertions.

mod args;
mod dashboard;
mod floor;
mod job;
mod report;
mod serve;
mod stores;
mod workloads;

use anyhow::Result;

use crate::args::{Command, Options, StoreKind, Workload};
use crate::report::{Line, Report};

fn main() -> std::process::ExitCode {
    let command = match args::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("jobs-bench: {error:#}");
            return std::process::ExitCode::from(2);
        }
    };
    #[cfg(feature = "opentelemetry")]
    let _telemetry = telemetry::install();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = match command {
        Command::Help => {
            print!("{}", args::USAGE);
            Ok(())
        }
        Command::Serve(o) => runtime.block_on(serve::run(o)),
        Command::Dashboard(o) => runtime.block_on(dashboard::run(o)),
        Command::Bench(o) => runtime.block_on(bench(o)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("jobs-bench: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "opentelemetry")]
mod telemetry {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt;

    /// Metrics into an in-memory exporter every 10 s, and every INFO span
    /// built and recorded by an SDK tracer that exports nowhere: the work a
    /// traced, metered application does, without an exporter's.
    /// `JOBS_BENCH_OTEL=metrics` installs the metrics only.
    pub(crate) fn install() -> (SdkMeterProvider, SdkTracerProvider) {
        let reader = PeriodicReader::builder(InMemoryMetricExporter::default())
            .with_interval(std::time::Duration::from_secs(10))
            .build();
        let meters = SdkMeterProvider::builder().with_reader(reader).build();
        opentelemetry::global::set_meter_provider(meters.clone());
        let tracer = SdkTracerProvider::builder().build();
        // `JOBS_BENCH_OTEL=metrics` leaves the spans out, to split the cost.
        if std::env::var("JOBS_BENCH_OTEL").as_deref() != Ok("metrics") {
            let subscriber = tracing_subscriber::registry()
                .with(tracing_subscriber::filter::LevelFilter::INFO)
                .with(tracing_opentelemetry::layer().with_tracer(tracer.tracer("jobs-bench")));
            tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        }
        (meters, tracer)
    }
}

async fn bench(o: Options) -> Result<()> {
    let mut report = Report::new(&o);
    report.header();
    let admin = if o.stores.contains(&StoreKind::Pg) {
        Some(stores::admin_pool(&o.url, 4).await?)
    } else {
        None
    };
    let admin = admin.as_ref();
    for store in [StoreKind::Pg, StoreKind::Memory] {
        for workload in [Workload::W1, Workload::W1b, Workload::W2, Workload::W3] {
            if !o.runs(workload, store) {
                continue;
            }
            let mut line = Line::new(workload, store);
            for rep in 0..o.reps {
                eprintln!(
                    "# {} on {}: repetition {}/{}",
                    workload.name(),
                    store.name(),
                    rep + 1,
                    o.reps
                );
                line.note_load();
                match (workload, admin) {
                    (Workload::W1, Some(admin)) => line.push(workloads::w1(&o, admin).await?),
                    (Workload::W1b, Some(admin)) => line.push(workloads::w1b(&o, admin).await?),
                    (Workload::W2, _) => line.push_drain(workloads::w2(&o, store, admin).await?),
                    (Workload::W3, _) => line.push_latency(workloads::w3(&o, store, admin).await?),
                    _ => unreachable!("W1 and W1b run on PostgreSQL only"),
                }
            }
            report.add(line);
        }
    }
    if let (true, Some(admin)) = (o.runs(Workload::Floor, StoreKind::Pg), admin) {
        for &clients in &o.floor_clients {
            for &batch in &o.floor_batch {
                let mut line = Line::floor(clients, batch);
                for rep in 0..o.reps {
                    eprintln!(
                        "# floor with {clients} clients, batches of {batch}: repetition {}/{}",
                        rep + 1,
                        o.reps
                    );
                    line.note_load();
                    line.push(floor::run(&o, admin, clients, batch).await?);
                }
                report.add(line);
            }
        }
    }
    if let Some(admin) = admin {
        stores::drop_schema(admin, &o.schema).await?;
    }
    report.table();
    Ok(())
}
