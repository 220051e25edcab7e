//! The output: a header line, one JSON line per workload (every repetition
//! and the median) as soon as it finishes, and at the end a table of medians
//! beside the targets of PERFORMANCE.md.

use serde_json::{json, Value};

use crate::args::{Options, StoreKind, Workload};
use crate::serve::ServeReport;
use crate::workloads::Latency;

/// The median; the mean of the middle two for an even count.
pub(crate) fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// The 1, 5 and 15 minute load averages.
pub(crate) fn load() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut fields = text
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(f64::NAN));
    [(); 3].map(|()| fields.next().unwrap_or(f64::NAN))
}

fn round(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

fn rounded(values: &[f64], places: i32) -> Vec<f64> {
    values.iter().map(|v| round(*v, places)).collect()
}

/// The repetitions of one workload on one store.
#[derive(Debug)]
pub(crate) struct Line {
    workload: Workload,
    store: StoreKind,
    /// jobs/s (W1, W1b, W2, floor).
    rates: Vec<f64>,
    /// W2: jobs/s up to the handler's last completion, peak RSS, shutdown time.
    handler_rates: Vec<f64>,
    rss_mb: Vec<f64>,
    rss_before_start_mb: Vec<f64>,
    /// `[anonymous, file]` resident MB at the end of each W2 repetition.
    rss_split_mb: Vec<[f64; 2]>,
    shutdown_s: Vec<f64>,
    batching: Vec<crate::stores::Batching>,
    /// W3, in ms.
    p50: Vec<f64>,
    p95: Vec<f64>,
    p99: Vec<f64>,
    max: Vec<f64>,
    /// W3: `[enqueue p50, enqueue p99, after-return p50, after-return p99]` per rep.
    split: Vec<[f64; 4]>,
    /// The floor's configuration.
    floor: Option<(usize, i64)>,
    /// The 1-minute load average at the start of each repetition.
    loads: Vec<f64>,
    jobs: u64,
}

impl Line {
    pub(crate) fn new(workload: Workload, store: StoreKind) -> Self {
        Self {
            workload,
            store,
            rates: Vec::new(),
            handler_rates: Vec::new(),
            rss_mb: Vec::new(),
            rss_before_start_mb: Vec::new(),
            rss_split_mb: Vec::new(),
            shutdown_s: Vec::new(),
            batching: Vec::new(),
            p50: Vec::new(),
            p95: Vec::new(),
            p99: Vec::new(),
            max: Vec::new(),
            split: Vec::new(),
            floor: None,
            loads: Vec::new(),
            jobs: 0,
        }
    }

    pub(crate) fn floor(clients: usize, batch: i64) -> Self {
        let mut line = Self::new(Workload::Floor, StoreKind::Pg);
        line.floor = Some((clients, batch));
        line
    }

    pub(crate) fn note_load(&mut self) {
        self.loads.push(load()[0]);
    }

    pub(crate) fn push(&mut self, rate: f64) {
        self.rates.push(rate);
    }

    pub(crate) fn push_drain(&mut self, report: ServeReport) {
        self.jobs = report.completed;
        self.rates.push(report.completed as f64 / report.drain_s);
        self.handler_rates
            .push(report.completed as f64 / report.handler_s);
        self.rss_mb.push(report.rss_kb as f64 / 1024.0);
        self.rss_before_start_mb
            .push(report.rss_before_start_kb as f64 / 1024.0);
        self.rss_split_mb.push([
            report.rss_anon_kb as f64 / 1024.0,
            report.rss_file_kb as f64 / 1024.0,
        ]);
        self.batching.extend(report.batching);
        self.shutdown_s.push(report.shutdown_s);
    }

    pub(crate) fn push_latency(&mut self, latency: Latency) {
        self.p50.push(latency.p50);
        self.p95.push(latency.p95);
        self.p99.push(latency.p99);
        self.max.push(latency.max);
        self.split.push([
            latency.enqueue_p50,
            latency.enqueue_p99,
            latency.after_p50,
            latency.after_p99,
        ]);
    }

    fn json(&self, o: &Options) -> Value {
        let mut v = json!({
            "workload": self.workload.name(),
            "store": self.store.name(),
            "load1": self.loads,
        });
        let map = v.as_object_mut().expect("an object");
        match self.workload {
            Workload::W3 => {
                map.insert("jobs".into(), json!(o.w3_jobs));
                map.insert("interval_ms".into(), json!(o.w3_interval_ms));
                map.insert("warmup".into(), json!(o.w3_warmup));
                map.insert("concurrency".into(), json!(o.concurrency));
                map.insert("unit".into(), json!("ms"));
                map.insert("p50".into(), json!(rounded(&self.p50, 3)));
                map.insert("p95".into(), json!(rounded(&self.p95, 3)));
                map.insert("p99".into(), json!(rounded(&self.p99, 3)));
                map.insert("max".into(), json!(rounded(&self.max, 3)));
                let split =
                    |k: usize| rounded(&self.split.iter().map(|s| s[k]).collect::<Vec<_>>(), 3);
                map.insert("enqueue_call_p50".into(), json!(split(0)));
                map.insert("enqueue_call_p99".into(), json!(split(1)));
                map.insert("after_return_p50".into(), json!(split(2)));
                map.insert("after_return_p99".into(), json!(split(3)));
                map.insert(
                    "median".into(),
                    json!({
                        "p50": round(median(&self.p50), 3),
                        "p95": round(median(&self.p95), 3),
                        "p99": round(median(&self.p99), 3),
                    }),
                );
            }
            _ => {
                map.insert("jobs".into(), json!(o.jobs));
                match self.workload {
                    Workload::W1 => {
                        map.insert("producers".into(), json!(o.producers));
                    }
                    Workload::W1b => {
                        map.insert("batch".into(), json!(o.batch));
                    }
                    Workload::W2 => {
                        map.insert("concurrency".into(), json!(o.concurrency));
                    }
                    _ => {}
                }
                if let Some((clients, batch)) = self.floor {
                    map.insert("clients".into(), json!(clients));
                    map.insert("batch".into(), json!(batch));
                }
                map.insert("unit".into(), json!("jobs/s"));
                map.insert("reps".into(), json!(rounded(&self.rates, 0)));
                map.insert("median".into(), json!(round(median(&self.rates), 0)));
                if self.workload == Workload::W2 {
                    map.insert(
                        "until_last_handler_jobs_per_s".into(),
                        json!(rounded(&self.handler_rates, 0)),
                    );
                    map.insert("shutdown_s".into(), json!(rounded(&self.shutdown_s, 3)));
                    map.insert("rss_mb".into(), json!(rounded(&self.rss_mb, 1)));
                    map.insert(
                        "rss_mb_median".into(),
                        json!(round(median(&self.rss_mb), 1)),
                    );
                    map.insert(
                        "rss_before_start_mb".into(),
                        json!(rounded(&self.rss_before_start_mb, 1)),
                    );
                    let split = |k: usize| {
                        rounded(
                            &self.rss_split_mb.iter().map(|s| s[k]).collect::<Vec<_>>(),
                            1,
                        )
                    };
                    map.insert("rss_anon_mb_at_end".into(), json!(split(0)));
                    map.insert("rss_file_mb_at_end".into(), json!(split(1)));
                    if !self.batching.is_empty() {
                        let b = &self.batching;
                        let field = |f: fn(&crate::stores::Batching) -> f64, places| {
                            rounded(&b.iter().map(f).collect::<Vec<_>>(), places)
                        };
                        map.insert("claims".into(), json!(field(|b| b.claims as f64, 0)));
                        map.insert(
                            "jobs_per_claim".into(),
                            json!(field(|b| b.jobs_per_claim, 1)),
                        );
                        map.insert(
                            "ms_between_claims".into(),
                            json!(field(|b| b.ms_between_claims, 2)),
                        );
                        map.insert(
                            "completion_writes".into(),
                            json!(field(|b| b.completion_writes as f64, 0)),
                        );
                        map.insert(
                            "jobs_per_completion".into(),
                            json!(field(|b| b.jobs_per_completion, 1)),
                        );
                    }
                }
            }
        }
        v
    }
}

/// Everything measured in one run.
#[derive(Debug)]
pub(crate) struct Report {
    options: Options,
    lines: Vec<Line>,
}

impl Report {
    pub(crate) fn new(options: &Options) -> Self {
        Self {
            options: options.clone(),
            lines: Vec::new(),
        }
    }

    /// Prints what the run is about: options, machine, load.
    pub(crate) fn header(&self) {
        let o = &self.options;
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let unix_time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        println!(
            "{}",
            json!({
                "benchmark": "jobs-bench",
                "unix_time": unix_time,
                "cpus": cpus,
                "load": load(),
                "jobs": o.jobs, "producers": o.producers, "concurrency": o.concurrency,
                "batch": o.batch, "reps": o.reps, "w3_jobs": o.w3_jobs,
                "w3_interval_ms": o.w3_interval_ms, "w3_warmup": o.w3_warmup,
                "workloads": o.workloads.iter().map(|w| w.name()).collect::<Vec<_>>(),
                "stores": o.stores.iter().map(|s| s.name()).collect::<Vec<_>>(),
                "schema": o.schema,
                "unique": o.unique,
                "continuations": o.continuations,
                "batches": o.batches,
                "servers": o.servers,
                "queue_limits": o.queue_limits(),
                "keys": o.keys,
                "w3_own_store": o.w3_own_store,
            })
        );
    }

    /// Prints the workload's JSON line and keeps it for the table.
    pub(crate) fn add(&mut self, line: Line) {
        println!("{}", line.json(&self.options));
        self.lines.push(line);
    }

    /// Prints the table of medians, with the targets beside them.
    pub(crate) fn table(&self) {
        println!();
        println!(
            "{:<8} {:<7} {:>28}  {:<30}",
            "workload", "store", "median of reps", "target (PERFORMANCE.md)"
        );
        let best_floor = self
            .lines
            .iter()
            .filter(|l| l.workload == Workload::Floor)
            .map(|l| (median(&l.rates), l.floor))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let mut w2_pg = None;
        for line in &self.lines {
            let (figure, target) = match (line.workload, line.store) {
                (Workload::W3, store) => (
                    format!(
                        "p50 {:.2} p95 {:.2} p99 {:.2} ms",
                        median(&line.p50),
                        median(&line.p95),
                        median(&line.p99)
                    ),
                    match store {
                        StoreKind::Pg => "p50 <= 1.5, p99 <= 2.5 ms",
                        StoreKind::Memory => "p99 <= 1 ms",
                    },
                ),
                (workload, store) => {
                    let rate = median(&line.rates);
                    let target = match (workload, store) {
                        (Workload::W1, _) => ">= 8,000 jobs/s",
                        (Workload::W1b, _) => ">= 60,000 jobs/s",
                        (Workload::W2, StoreKind::Pg) => {
                            w2_pg = Some(rate);
                            ">= 12,000 jobs/s; RSS <= 8 MB"
                        }
                        (Workload::W2, StoreKind::Memory) => ">= 100,000 jobs/s",
                        _ => "",
                    };
                    let mut figure = format!("{:.0} jobs/s", rate);
                    if workload == Workload::W2 {
                        figure.push_str(&format!(", RSS {:.1} MB", median(&line.rss_mb)));
                    }
                    if let Some((clients, batch)) = line.floor {
                        figure = format!("{figure} ({clients}x{batch})");
                    }
                    (figure, target)
                }
            };
            println!(
                "{:<8} {:<7} {:>28}  {:<30}",
                line.workload.name(),
                line.store.name(),
                figure,
                target
            );
        }
        if let (Some((floor, Some((clients, batch)))), Some(ours)) = (best_floor, w2_pg) {
            println!(
                "\nW2 on pg / best floor ({clients} clients, batches of {batch}, {floor:.0} jobs/s): {:.2} (target >= 0.5)",
                ours / floor
            );
        }
        let [one, five, fifteen] = load();
        println!("load average at the end: {one:.2} {five:.2} {fifteen:.2}");
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
