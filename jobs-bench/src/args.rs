//! The command line, parsed by hand (a dozen flags do not justify a parser
//! crate in the workspace's lock file).

use anyhow::{bail, Context as _, Result};

/// The usage text printed by `--help` and on a bad flag.
pub(crate) const USAGE: &str = "\
usage: jobs-bench [options]
       jobs-bench dashboard [--jobs N] [--requests N] [--schema NAME]

Runs the workloads of PERFORMANCE.md: W1, W1b, W2, W3 on PostgreSQL
(DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test, schema
`jobs_bench`, dropped and recreated before every repetition) and W2, W3 on
the in-memory store. Prints one JSON line per workload, then a table of
medians. Exits non-zero when a check of the store or of the handler's
count fails.

`jobs-bench dashboard` fills a schema (default jobs_bench_dashboard) with
--jobs jobs in mixed states by SQL (default 1000000), starts three servers
and three recurring entries, then requests every dashboard page and filter
--requests times (default 30) through the router; p50 and p95 per page.

options:
  --jobs N             jobs in W1, W1b, W2 and the floor (default 20000)
  --producers N        concurrent producers in W1 (default 8)
  --concurrency N      the server's concurrency in W2, W3 (default 16)
  --batch N            jobs per enqueue_many call in W1b and W2's setup (default 1000)
  --reps N             repetitions of each workload (default 3)
  --w3-jobs N          jobs enqueued one by one in W3 (default 500)
  --w3-interval-ms N   pause between W3's enqueues (default 10)
  --w3-warmup N        jobs enqueued the same way before W3's timed ones, not
                       timed: the first statements on a fresh connection are
                       prepared, which is not pickup latency (default 20)
  --w3-own-store       W3 on PostgreSQL enqueues through a store of its own (its
                       own pool, as a web process beside a worker process),
                       not the server's: the wake-up crosses connections
  --only LIST          comma-separated workloads: w1,w1b,w2,w3,floor (default all but floor)
  --store pg|memory|both   which stores (default both)
  --floor              also run the raw-SQL floor of W2 (same as adding floor to --only)
  --floor-clients LIST clients tried by the floor (default 2,4,8)
  --floor-batch LIST   claim sizes tried by the floor (default 20,100)
  --unique             W1 and W1b enqueue a unique job (keyed by its `i`, every
                       key distinct), to show the cost of a unique key
  --continuations      W2 on PostgreSQL drains jobs of which half are
                       continuations of the other half, each released by its
                       parent's completion: what continuations cost
  --batches            W2 on PostgreSQL drains jobs enqueued as batches of
                       --batch, each with its last job as the callback,
                       released when the others have ended: what batches cost
  --servers N          W2 on PostgreSQL drains with N server processes, each of
                       --concurrency (default 1)
  --queue-concurrency N  W2 on PostgreSQL with the queue limited to N jobs
                       running at once across all servers (Queues::set_limits)
  --queue-rate N/S     W2 on PostgreSQL with the queue limited to N jobs
                       started in any S seconds across all servers
  --keys N             W2 on PostgreSQL drains jobs with key limits, N distinct
                       keys, one job of each key at a time (Request::key_limit)
  --schema NAME        the PostgreSQL schema to use (default jobs_bench)
  -h, --help           this text
";

/// A workload of PERFORMANCE.md, or the raw-SQL floor of W2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workload {
    W1,
    W1b,
    W2,
    W3,
    Floor,
}

impl Workload {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Workload::W1 => "W1",
            Workload::W1b => "W1b",
            Workload::W2 => "W2",
            Workload::W3 => "W3",
            Workload::Floor => "floor",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        Ok(match text.trim().to_ascii_lowercase().as_str() {
            "w1" => Workload::W1,
            "w1b" => Workload::W1b,
            "w2" => Workload::W2,
            "w3" => Workload::W3,
            "floor" => Workload::Floor,
            other => bail!("unknown workload `{other}`: expected w1, w1b, w2, w3 or floor"),
        })
    }
}

/// Which stores to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreKind {
    Pg,
    Memory,
}

impl StoreKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            StoreKind::Pg => "pg",
            StoreKind::Memory => "memory",
        }
    }

    pub(crate) fn parse(text: &str) -> Result<Self> {
        match text {
            "pg" | "postgres" => Ok(StoreKind::Pg),
            "memory" | "mem" => Ok(StoreKind::Memory),
            other => bail!("unknown store `{other}`: expected pg or memory"),
        }
    }
}

/// The options of a benchmark run.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) url: String,
    pub(crate) schema: String,
    pub(crate) jobs: u64,
    pub(crate) producers: usize,
    pub(crate) concurrency: usize,
    pub(crate) batch: usize,
    pub(crate) reps: usize,
    pub(crate) w3_jobs: u64,
    pub(crate) w3_interval_ms: u64,
    pub(crate) w3_warmup: u64,
    pub(crate) workloads: Vec<Workload>,
    pub(crate) stores: Vec<StoreKind>,
    pub(crate) floor_clients: Vec<usize>,
    pub(crate) floor_batch: Vec<i64>,
    /// W1 and W1b enqueue the unique variant of the job.
    pub(crate) unique: bool,
    /// W2 on PostgreSQL drains continuations too.
    pub(crate) continuations: bool,
    /// W2 on PostgreSQL drains batches.
    pub(crate) batches: bool,
    /// W2 on PostgreSQL drains with this many server processes.
    pub(crate) servers: usize,
    /// W2 on PostgreSQL with the queue's cluster-wide concurrency limit.
    pub(crate) queue_concurrency: Option<u32>,
    /// W2 on PostgreSQL with the queue's rate limit: jobs per seconds.
    pub(crate) queue_rate: Option<(u32, u64)>,
    /// W2 on PostgreSQL drains jobs with this many distinct limit keys.
    pub(crate) keys: Option<u64>,
    /// W3 on PostgreSQL enqueues through a store of its own.
    pub(crate) w3_own_store: bool,
}

impl Options {
    /// The queue limits W2 sets on PostgreSQL (none by default).
    pub(crate) fn queue_limits(&self) -> jobs::QueueLimits {
        let mut limits = jobs::QueueLimits::none();
        if let Some(n) = self.queue_concurrency {
            limits = limits.concurrency(n);
        }
        if let Some((n, secs)) = self.queue_rate {
            limits = limits.rate(jobs::RateLimit::new(
                n,
                std::time::Duration::from_secs(secs),
            ));
        }
        limits
    }

    fn defaults() -> Self {
        Self {
            url: std::env::var("DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
            schema: "jobs_bench".to_owned(),
            jobs: 20_000,
            producers: 8,
            concurrency: 16,
            batch: 1_000,
            reps: 3,
            w3_jobs: 500,
            w3_interval_ms: 10,
            w3_warmup: 20,
            workloads: vec![Workload::W1, Workload::W1b, Workload::W2, Workload::W3],
            stores: vec![StoreKind::Pg, StoreKind::Memory],
            floor_clients: vec![2, 4, 8],
            floor_batch: vec![20, 100],
            unique: false,
            continuations: false,
            batches: false,
            servers: 1,
            queue_concurrency: None,
            queue_rate: None,
            keys: None,
            w3_own_store: false,
        }
    }

    /// Whether `workload` runs on `store` (W1, W1b and the floor are PostgreSQL only).
    pub(crate) fn runs(&self, workload: Workload, store: StoreKind) -> bool {
        let on_memory = matches!(workload, Workload::W2 | Workload::W3);
        self.workloads.contains(&workload)
            && self.stores.contains(&store)
            && (store == StoreKind::Pg || on_memory)
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Command {
    /// Print the usage.
    Help,
    /// Run the benchmark.
    Bench(Options),
    /// The hidden child of W2: run one server until `expect` jobs completed.
    Serve(ServeOptions),
    /// The dashboard workload.
    Dashboard(DashboardOptions),
}

/// The options of `jobs-bench dashboard`.
#[derive(Debug, Clone)]
pub(crate) struct DashboardOptions {
    pub(crate) url: String,
    pub(crate) schema: String,
    /// Jobs inserted (default 1,000,000).
    pub(crate) jobs: u64,
    /// Timed requests of each page (default 30).
    pub(crate) requests: usize,
}

fn parse_dashboard(args: impl Iterator<Item = String>) -> Result<DashboardOptions> {
    let mut o = DashboardOptions {
        url: std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
        schema: "jobs_bench_dashboard".to_owned(),
        jobs: 1_000_000,
        requests: 30,
    };
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--jobs" => o.jobs = value()?.parse().context("--jobs")?,
            "--requests" => o.requests = value()?.parse().context("--requests")?,
            "--schema" => o.schema = value()?,
            other => bail!("unknown flag `{other}` of `jobs-bench dashboard`"),
        }
    }
    if o.jobs == 0 || o.requests == 0 {
        bail!("--jobs and --requests must be at least 1");
    }
    Ok(o)
}

/// The options of the hidden `serve` subcommand.
#[derive(Debug, Clone)]
pub(crate) struct ServeOptions {
    pub(crate) store: StoreKind,
    pub(crate) expect: u64,
    /// One of several servers: done when the store shows `expect` jobs
    /// succeeded, whoever ran them (the handler counts only its own).
    pub(crate) shared: bool,
    pub(crate) concurrency: usize,
    pub(crate) batch: usize,
    pub(crate) url: String,
    pub(crate) schema: String,
}

fn number<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let value = value.with_context(|| format!("{flag} needs a value"))?;
    value
        .parse()
        .with_context(|| format!("{flag}: `{value}` is not a valid number"))
}

fn list<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<Vec<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let value = value.with_context(|| format!("{flag} needs a value"))?;
    let items = value
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .with_context(|| format!("{flag}: `{s}` is not a valid number"))
        })
        .collect::<Result<Vec<T>>>()?;
    if items.is_empty() {
        bail!("{flag} needs at least one value");
    }
    Ok(items)
}

/// Parses the arguments after the program name.
pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Command> {
    let mut args = args.into_iter().peekable();
    if args.peek().map(String::as_str) == Some("serve") {
        args.next();
        return parse_serve(args).map(Command::Serve);
    }
    if args.peek().map(String::as_str) == Some("dashboard") {
        args.next();
        return parse_dashboard(args).map(Command::Dashboard);
    }
    let mut o = Options::defaults();
    let mut floor = false;
    while let Some(arg) = args.next() {
        // Accept `--flag=value` as well as `--flag value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| args.next());
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--jobs" => o.jobs = number(&flag, value())?,
            "--producers" => o.producers = number(&flag, value())?,
            "--concurrency" => o.concurrency = number(&flag, value())?,
            "--batch" => o.batch = number(&flag, value())?,
            "--reps" => o.reps = number(&flag, value())?,
            "--w3-jobs" => o.w3_jobs = number(&flag, value())?,
            "--w3-interval-ms" => o.w3_interval_ms = number(&flag, value())?,
            "--w3-warmup" => o.w3_warmup = number(&flag, value())?,
            "--schema" => o.schema = value().context("--schema needs a value")?,
            "--floor" => floor = true,
            "--unique" => o.unique = true,
            "--continuations" => o.continuations = true,
            "--batches" => o.batches = true,
            "--servers" => o.servers = number(&flag, value())?,
            "--keys" => o.keys = Some(number(&flag, value())?),
            "--w3-own-store" => o.w3_own_store = true,
            "--queue-concurrency" => o.queue_concurrency = Some(number(&flag, value())?),
            "--queue-rate" => {
                let text = value().context("--queue-rate needs a value")?;
                let (n, secs) = text
                    .split_once('/')
                    .with_context(|| format!("--queue-rate: `{text}` is not N/S"))?;
                o.queue_rate = Some((
                    number(&flag, Some(n.to_owned()))?,
                    number(&flag, Some(secs.to_owned()))?,
                ));
            }
            "--floor-clients" => o.floor_clients = list(&flag, value())?,
            "--floor-batch" => o.floor_batch = list(&flag, value())?,
            "--only" => {
                let text = value().context("--only needs a value")?;
                o.workloads = text
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(Workload::parse)
                    .collect::<Result<_>>()?;
            }
            "--store" => {
                let text = value().context("--store needs a value")?;
                o.stores = match text.as_str() {
                    "both" => vec![StoreKind::Pg, StoreKind::Memory],
                    one => vec![StoreKind::parse(one)?],
                };
            }
            other => bail!("unknown option `{other}`\n\n{USAGE}"),
        }
    }
    if floor && !o.workloads.contains(&Workload::Floor) {
        o.workloads.push(Workload::Floor);
    }
    if o.jobs == 0 || o.producers == 0 || o.concurrency == 0 || o.batch == 0 || o.reps == 0 {
        bail!("--jobs, --producers, --concurrency, --batch and --reps must be at least 1");
    }
    if o.servers == 0 {
        bail!("--servers must be at least 1");
    }
    let pg_only = o.servers > 1 || !o.queue_limits().is_none() || o.keys.is_some();
    if pg_only && o.stores != [StoreKind::Pg] {
        bail!("--servers, --queue-concurrency, --queue-rate and --keys apply to W2 on PostgreSQL: add --store pg");
    }
    if o.keys == Some(0) {
        bail!("--keys must be at least 1");
    }
    o.queue_limits().check()?;
    if o.workloads.contains(&Workload::Floor) && !o.stores.contains(&StoreKind::Pg) {
        bail!("the floor runs on PostgreSQL: it needs --store pg or both");
    }
    Ok(Command::Bench(o))
}

fn parse_serve(args: impl Iterator<Item = String>) -> Result<ServeOptions> {
    let defaults = Options::defaults();
    let mut s = ServeOptions {
        store: StoreKind::Pg,
        expect: 0,
        shared: false,
        concurrency: defaults.concurrency,
        batch: defaults.batch,
        url: defaults.url,
        schema: defaults.schema,
    };
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        if flag == "--shared" {
            s.shared = true;
            continue;
        }
        let value = args.next();
        match flag.as_str() {
            "--store" => s.store = StoreKind::parse(&value.context("--store needs a value")?)?,
            "--expect" => s.expect = number(&flag, value)?,
            "--concurrency" => s.concurrency = number(&flag, value)?,
            "--batch" => s.batch = number(&flag, value)?,
            "--schema" => s.schema = value.context("--schema needs a value")?,
            other => bail!("serve: unknown option `{other}`"),
        }
    }
    if s.expect == 0 {
        bail!("serve: --expect must be at least 1");
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn defaults_follow_performance_md() {
        let Command::Bench(o) = parse(args("")).unwrap() else {
            panic!("expected a benchmark run")
        };
        assert_eq!(
            (o.jobs, o.producers, o.concurrency, o.batch, o.reps),
            (20_000, 8, 16, 1_000, 3)
        );
        assert_eq!((o.w3_jobs, o.w3_interval_ms, o.w3_warmup), (500, 10, 20));
        assert!(!o.workloads.contains(&Workload::Floor));
        assert!(o.runs(Workload::W2, StoreKind::Memory));
        assert!(!o.runs(Workload::W1, StoreKind::Memory));
    }

    #[test]
    fn flags_and_lists_are_read() {
        let Command::Bench(o) =
            parse(args("--jobs=100 --only w2,W3 --store memory --reps 1")).unwrap()
        else {
            panic!("expected a benchmark run")
        };
        assert_eq!(o.jobs, 100);
        assert_eq!(o.workloads, vec![Workload::W2, Workload::W3]);
        assert_eq!(o.stores, vec![StoreKind::Memory]);
        assert!(parse(args("--bogus")).is_err());
        assert!(parse(args("--floor --store memory")).is_err());
    }

    #[test]
    fn serve_is_parsed() {
        let Command::Serve(s) = parse(args("serve --store memory --expect 5")).unwrap() else {
            panic!("expected serve")
        };
        assert_eq!((s.store, s.expect), (StoreKind::Memory, 5));
    }
}
