//! The in-process job server: what Hangfire calls the background job server.
//!
//! A server claims jobs in batches from its queues, runs each on its own tokio
//! task, renews the leases of what it runs, records outcomes in batches, and
//! keeps the store healthy (rescuing jobs of dead servers, pruning old ones,
//! writing heartbeats). The machinery lives in private submodules:
//! `builder` (the settings and the start), `fetch` (the fetch loop),
//! `attempt` (the supervisor of one attempt),
//! `outcome` (what an attempt's end means for the job), `background` (the
//! completer and the periodic loops), `report` (the warning about jobs no
//! live server can take) and `health` (what [`Server::health`] reads).
//!
//! # Intervals and the recovery bound
//!
//! | setting | default | what it does |
//! | --- | --- | --- |
//! | `lease` | 30 s | how long a claim stays valid without renewal |
//! | `lease_renewal_interval` | `lease / 3` | how often running jobs' leases are extended and cancels learnt of (at once on the store's cancel wake-up; a failed renewal is retried sooner) |
//! | `rescue_interval` | 15 s | how often expired leases are looked for |
//! | `heartbeat_interval` | 10 s | how often the server record (with the jobs it runs and holds claimed ahead) is refreshed |
//! | `prefetch` | 256 | the most jobs claimed ahead of free slots, while jobs finish faster than a claim's round trip |
//! | `poll_interval` | 500 ms | the longest an idle server waits before looking for work |
//! | `scheduler_interval` | 1 s | how often due recurring jobs are fired |
//! | `prune_interval` | 60 s | how often finished jobs past their retention are removed |
//! | `prune_batch` | 1000 | the most jobs one prune call removes; a pass calls again while calls come back full |
//! | `stranded_report_interval` | 60 s | how often the oldest live server warns about due jobs no live server can take |
//! | `shutdown_timeout` | 30 s | how long shutdown lets running jobs finish |
//! | `cancel_grace` | 5 s | how long a cancelled job may take to stop before it is aborted |
//! | `max_output_bytes` | 256 KiB | the largest output, as JSON, a job may return; a larger one fails the attempt |
//!
//! When a server dies, its jobs become runnable again within
//! `lease + rescue_interval` (45 s by default) and are claimed by the next
//! poll of a live server. A healthy job's lease is renewed three times per
//! lease period, so it is never rescued while its server lives, however
//! long it runs.
//!
//! # What jobs cannot starve
//!
//! On a multi-thread runtime the loops that keep these promises (the lease
//! keeper, the completer, the heartbeat, the rescuer and the timeout
//! watchdog) run on a thread of the server's own, with a single-threaded
//! runtime, and write through the store's reserved connections when it has
//! them (`Store::reserved_for_server`): a job that blocks its thread, even
//! every worker thread, does not delay a renewal. A server never rescues
//! its own claims, and after an outage it rescues nothing until two renewal
//! intervals after its own writes succeed again, so that live servers renew
//! first. On a current-thread runtime everything runs on that one thread.

mod attempt;
mod background;
mod builder;
mod caps;
mod fetch;
mod health;
mod outcome;
mod report;
mod watchdog;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::job::{duplicate_names, JobRegistration, Resources};
use crate::model::{Claim, JobId, ServerId, ServerInfo};
pub(crate) use builder::Settings;
pub use builder::{ServerBuilder, DEFAULT_MAX_OUTPUT_BYTES};
pub(crate) use health::StoreHealth;
pub use health::{HealthProbe, HealthStatus, LastSeen, ServerHealth, StoreFailure};

use crate::store::{
    DynStore, JobCompletion, ServerRemoveParams, Store, StoreError, StoreErrorKind, StoreResult,
};

/// The jobs this server can run, by stored name.
#[derive(Debug)]
pub(crate) struct Registry {
    by_name: HashMap<&'static str, &'static JobRegistration>,
}

impl Registry {
    fn check(
        registrations: impl Iterator<Item = &'static JobRegistration>,
        resources: &Resources,
        settings: &Settings,
    ) -> Result<Self> {
        let mut problems = Vec::new();
        if settings.concurrency == 0 {
            problems.push("concurrency must be at least 1".to_owned());
        }
        if settings.queues.is_empty() || settings.queues.iter().any(|q| q.is_empty()) {
            problems.push(
                "the server needs at least one queue, and queue names must not be empty".to_owned(),
            );
        }
        let mut capped = std::collections::HashSet::new();
        for (queue, limit) in &settings.queue_limits {
            if !capped.insert(queue.as_str()) {
                continue;
            }
            if !settings.queues.iter().any(|served| served == queue) {
                problems.push(format!(
                    "the queue limit for `{queue}` names a queue the server does not serve; add it to `.queues(...)` or remove the limit"
                ));
            }
            if *limit == 0 {
                problems.push(format!(
                    "the queue limit for `{queue}` is 0; to stop a queue's jobs for every server, pause it (`Jobs::queues().pause`)"
                ));
            } else if *limit > settings.concurrency {
                problems.push(format!(
                    "the queue limit for `{queue}` ({limit}) is above the server's concurrency ({}); lower it or raise the concurrency",
                    settings.concurrency
                ));
            }
        }
        if settings.lease < Duration::from_millis(30) {
            problems.push(format!("the lease ({:?}) is too short", settings.lease));
        }
        let renewal = settings.renewal_interval();
        if renewal.is_zero() || renewal * 2 >= settings.lease {
            problems.push(format!(
                "the lease renewal interval ({renewal:?}) must be above zero and under half the lease ({:?})",
                settings.lease
            ));
        }
        if settings.prune_interval.is_zero() {
            problems.push("the prune interval must be longer than zero".to_owned());
        }
        if settings.prune_batch == 0 {
            problems.push("the prune batch must be at least 1 job".to_owned());
        }
        if settings.stranded_report_interval.is_zero() {
            problems.push("the stranded-jobs report interval must be longer than zero".to_owned());
        }
        let registrations: Vec<&'static JobRegistration> = registrations.collect();
        problems.extend(duplicate_names(registrations.iter().copied()));
        let mut by_name: HashMap<&'static str, &'static JobRegistration> = HashMap::new();
        for registration in registrations {
            if by_name.contains_key(registration.name) {
                continue;
            }
            // Only jobs whose default queue is served are checked: a server
            // for `mail` need not hold the pool of a `reports` job. Every job
            // stays runnable (and claimed by name), since a request may put
            // it in a served queue; if its resource is missing then, that
            // attempt fails, naming the type (see `Inject for State<T>`).
            let queue = (registration.options)().queue;
            if settings.queues.iter().any(|served| served == queue) {
                for requirement in (registration.requirements)() {
                    if !resources.contains(requirement.type_id) {
                        problems.push(format!(
                            "job `{}` ({}) takes `State<{}>`, but the server was not given one; add `.state(value)` to the server builder",
                            registration.name, registration.location, requirement.type_name
                        ));
                    }
                }
            }
            by_name.insert(registration.name, registration);
        }
        if problems.is_empty() {
            Ok(Self { by_name })
        } else {
            problems.sort();
            Err(Error::Config(
                problems
                    .iter()
                    .map(|p| format!("- {p}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ))
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&'static JobRegistration> {
        self.by_name.get(name).copied()
    }

    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.by_name.keys().map(|n| (*n).to_owned()).collect();
        names.sort();
        names
    }
}

/// Why a running attempt was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    Timeout,
    UserCancel,
    Shutdown,
    LeaseLost,
}

/// The cancellation of one attempt, the first reason it was given, and what
/// the watchdog needs to know of it.
#[derive(Debug, Default)]
pub(crate) struct StopSignal {
    pub(crate) token: CancellationToken,
    reason: Mutex<Option<StopReason>>,
    watch: Mutex<Watch>,
}

/// An attempt as the watchdog sees it.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Watch {
    /// When its timeout runs out, once it started (if it has one).
    pub(crate) deadline: Option<Instant>,
    /// When it was first asked to stop.
    pub(crate) stopped_at: Option<Instant>,
    /// Its future returned, panicked or was dropped.
    pub(crate) ended: bool,
    /// It was reported stuck.
    pub(crate) stuck: bool,
}

impl StopSignal {
    pub(crate) fn stop(&self, reason: StopReason) {
        let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(reason);
            self.watch().stopped_at.get_or_insert_with(Instant::now);
        }
        drop(slot);
        self.token.cancel();
    }

    pub(crate) fn reason(&self) -> Option<StopReason> {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The watchdog's view, to read or change.
    pub(crate) fn watch(&self) -> std::sync::MutexGuard<'_, Watch> {
        // Every critical section is a plain read or write of fields.
        self.watch.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A claim this server holds: its lease is renewed until its completion is written.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) claim: Claim,
    /// The job's stored name, for the watchdog's reports.
    pub(crate) name: String,
    pub(crate) stop: Arc<StopSignal>,
    /// The attempt's context, once it started: where its progress waits.
    pub(crate) context: Option<crate::job::JobContext>,
}

/// What a server holds, as its heartbeats report it: attempts running, and
/// jobs claimed ahead waiting for a slot (both `processing` in the store).
/// Kept in memory, one atomic add per attempt and one store per turn of the
/// fetch loop; only the heartbeat writes them to the store.
#[derive(Debug, Default)]
pub(crate) struct Load {
    pub(crate) running: AtomicUsize,
    pub(crate) claimed_ahead: AtomicUsize,
}

/// Counts one attempt as running until dropped.
pub(crate) struct RunningAttempt<'a>(&'a Load);

impl<'a> RunningAttempt<'a> {
    pub(crate) fn start(load: &'a Load) -> Self {
        load.running.fetch_add(1, Ordering::Relaxed);
        Self(load)
    }
}

impl Drop for RunningAttempt<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What every task of one server shares.
pub(crate) struct Shared {
    pub(crate) id: ServerId,
    pub(crate) store: Arc<dyn DynStore>,
    /// The store for the server's own writes (renewals, outcomes,
    /// heartbeats, rescues, stuck reports): the store's reserved handle
    /// when it has one (see `Store::reserved_for_server`), else `store`.
    pub(crate) own_writes: Arc<dyn DynStore>,
    /// What the server's store calls saw of the store lately, and what
    /// its loops did (shared with [`HealthProbe`]s).
    pub(crate) health: Arc<Mutex<StoreHealth>>,
    /// Wakes the watchdog, which sleeps while nothing runs, when jobs are
    /// claimed while none were held.
    pub(crate) wake_watchdog: tokio::sync::Notify,
    pub(crate) settings: Settings,
    pub(crate) registry: Registry,
    pub(crate) names: Vec<String>,
    pub(crate) resources: Arc<Resources>,
    pub(crate) running: Mutex<HashMap<JobId, Running>>,
    pub(crate) slots: Arc<Semaphore>,
    /// Attempts ended (run or not) since the server started.
    pub(crate) finished: std::sync::atomic::AtomicU64,
    pub(crate) completions: mpsc::UnboundedSender<JobCompletion>,
    pub(crate) stop_fetching: CancellationToken,
    pub(crate) stop_completer: CancellationToken,
    pub(crate) stop_background: CancellationToken,
    pub(crate) info: ServerInfo,
    /// Shared with [`HealthProbe`]s.
    pub(crate) load: Arc<Load>,
    /// The per-queue caps on the slots (empty without `queue_limit`).
    pub(crate) caps: Arc<caps::QueueCaps>,
    /// Whether a queue this server serves has cluster-wide limits
    /// (`Queues::set_limits`), as the latest heartbeat found: a short claim
    /// may then be the limit's doing, and the places this server's own
    /// completions free are worth a claim once they are written.
    pub(crate) cluster_limited: std::sync::atomic::AtomicBool,
    /// Raised after each write of completions while `cluster_limited`.
    pub(crate) completions_written: tokio::sync::Notify,
}

impl Shared {
    /// Notes the result of one of the server's own store calls.
    pub(crate) fn note<T>(&self, result: &StoreResult<T>) {
        self.health_record().note(result);
    }

    /// What the server saw of the store and of its loops, to note more.
    pub(crate) fn health_record(&self) -> std::sync::MutexGuard<'_, StoreHealth> {
        // Every critical section is a few plain writes.
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn running(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Running>> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every critical section is a single insert, remove or read).
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The server record for a heartbeat: what it is, and what it holds now.
    pub(crate) fn heartbeat_info(&self) -> ServerInfo {
        let count = |n: &AtomicUsize| u32::try_from(n.load(Ordering::Relaxed)).unwrap_or(u32::MAX);
        self.info
            .clone()
            .running(count(&self.load.running))
            .claimed_ahead(count(&self.load.claimed_ahead))
    }
}

/// A running job server: what Hangfire calls the background job server.
/// Configure one with [`Server::builder`] and start it with
/// [`ServerBuilder::start`]; call [`Server::shutdown`] to stop it gracefully.
/// Dropping it starts the same shutdown without waiting for it.
/// [`Server::health`] tells whether it is healthy, for a readiness probe.
///
/// It runs inside the application's own process, its jobs on the tokio
/// runtime it was started on (on a multi-thread runtime, its lease renewals,
/// outcomes, heartbeats and timeouts on a thread of its own beside it, so
/// that a job that blocks its thread cannot delay them), and runs every job
/// in the binary whose queue it serves:
/// `#[job]` functions register themselves, wherever they are defined. Any
/// number of servers, in one process or many, can share a store.
///
/// ```
/// # extern crate jobs_core as jobs;
/// # use jobs_macros::job;
/// use std::time::Duration;
/// use jobs::{JobState, Jobs, MemoryStore, Server};
///
/// #[job]
/// async fn send_mail(user_id: i64) -> anyhow::Result<()> {
///     println!("mailing user {user_id}");
///     Ok(())
/// }
///
/// # async fn demo() -> anyhow::Result<()> {
/// let store = MemoryStore::new();
/// let jobs = Jobs::new(store.clone());
/// let server = Server::builder(store).start().await?;
///
/// let id = SendMail::enqueue(&jobs, 9).await?;
/// while jobs.get(id).await?.unwrap().job.state != JobState::Succeeded {
///     tokio::time::sleep(Duration::from_millis(10)).await;
/// }
/// server.shutdown().await;
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
pub struct Server {
    shared: Arc<Shared>,
    tasks: Option<Tasks>,
}

struct Tasks {
    fetcher: JoinHandle<()>,
    completer: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
    keeper: Keeper,
}

/// Where the loops that keep the server's promises run (the lease keeper,
/// the completer, the heartbeat, the rescuer and the watchdog): on a
/// multi-thread runtime, a thread of their own with a single-threaded
/// runtime, so that a job that blocks its thread (`std::thread::sleep`, a
/// CPU loop, a blocking driver call) cannot starve them, even when it
/// blocks every worker of the application's runtime; the store's reserved
/// connections (`Store::reserved_for_server`) live on that runtime too. On
/// a current-thread runtime (tests with a paused clock among them) they
/// run on it, like everything else: there, a job that blocks stops the
/// whole runtime, and nothing can be done about it.
struct Keeper {
    handle: tokio::runtime::Handle,
    /// The thread's stop (and its guard on the application's runtime), if
    /// the loops have a thread.
    thread: Option<(CancellationToken, JoinHandle<()>)>,
}

impl Keeper {
    fn start(id: ServerId) -> Self {
        let here = tokio::runtime::Handle::current();
        if here.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return Self {
                handle: here,
                thread: None,
            };
        }
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                tracing::warn!(server = %id, %error, "could not build the runtime of the server's own loops; they run on the application's runtime");
                return Self {
                    handle: here,
                    thread: None,
                };
            }
        };
        let handle = runtime.handle().clone();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("jobs-server".to_owned())
            .spawn(move || runtime.block_on(stopped.cancelled()));
        if let Err(error) = thread {
            tracing::warn!(server = %id, %error, "could not start the thread of the server's own loops; they run on the application's runtime");
            return Self {
                handle: here,
                thread: None,
            };
        }
        // The loops live as long as the application's runtime: when it is
        // dropped (without a shutdown), this task is dropped with it and
        // stops them, so that no lease is renewed for jobs that died.
        let guard = stop.clone().drop_guard();
        let watch = tokio::spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await
        });
        Self {
            handle,
            thread: Some((stop, watch)),
        }
    }

    /// Stops the thread (after the loops on it have ended).
    fn stop(self) {
        if let Some((stop, watch)) = self.thread {
            stop.cancel();
            watch.abort();
        }
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("id", &self.shared.id)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server on this store, with default settings: queue `"default"`,
    /// 16 jobs at once, the intervals in the module docs.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// use jobs::{MemoryStore, Server};
    /// let builder = Server::builder(MemoryStore::new());
    /// assert_eq!(builder.queue_names(), ["default"]);
    /// ```
    pub fn builder(store: impl Store) -> ServerBuilder {
        ServerBuilder::from_dyn(Arc::new(store))
    }

    fn spawn(
        store: Arc<dyn DynStore>,
        settings: Settings,
        registry: Registry,
        resources: Resources,
    ) -> Self {
        let id = ServerId::new();
        #[cfg(feature = "opentelemetry")]
        let store: Arc<dyn DynStore> = Arc::new(crate::store::Metered(store));
        let names = registry.names();
        let (completions, completion_rx) = mpsc::unbounded_channel();
        let info = ServerInfo::new(id, chrono::Utc::now())
            .host(host_name())
            .pid(std::process::id())
            .queues(settings.queues.clone())
            .concurrency(u32::try_from(settings.concurrency).unwrap_or(u32::MAX))
            .job_names(names.clone())
            .stale_after(stale_server_age(&settings));
        let keeper = Keeper::start(id);
        let own_writes = {
            // Entered so that what the store opens for these writes (its
            // own connections) belongs to the runtime they run on.
            let _entered = keeper.handle.enter();
            store.reserved_for_server().unwrap_or_else(|| store.clone())
        };
        let shared = Arc::new(Shared {
            id,
            store,
            own_writes,
            health: Arc::new(Mutex::new(StoreHealth::new())),
            wake_watchdog: tokio::sync::Notify::new(),
            slots: Arc::new(Semaphore::new(settings.concurrency)),
            finished: std::sync::atomic::AtomicU64::new(0),
            caps: Arc::new(caps::QueueCaps::new(&settings.queue_limits)),
            cluster_limited: std::sync::atomic::AtomicBool::new(false),
            completions_written: tokio::sync::Notify::new(),
            settings,
            registry,
            names,
            resources: Arc::new(resources),
            running: Mutex::new(HashMap::new()),
            completions,
            stop_fetching: CancellationToken::new(),
            stop_completer: CancellationToken::new(),
            stop_background: CancellationToken::new(),
            info,
            load: Arc::default(),
        });
        tracing::info!(server = %id, queues = ?shared.settings.queues, concurrency = shared.settings.concurrency, jobs = shared.names.len(), own_thread = keeper.thread.is_some(), "job server started");
        let own = &keeper.handle;
        let tasks = Tasks {
            fetcher: tokio::spawn(fetch::fetch_loop(shared.clone())),
            completer: own.spawn(background::completer(shared.clone(), completion_rx)),
            background: vec![
                own.spawn(background::lease_keeper(shared.clone())),
                own.spawn(background::heartbeat(shared.clone())),
                own.spawn(background::rescuer(shared.clone())),
                own.spawn(watchdog::watchdog(shared.clone())),
                tokio::spawn(background::pruner(shared.clone())),
                tokio::spawn(background::scheduler(shared.clone())),
                tokio::spawn(background::progress_writer(shared.clone())),
                tokio::spawn(report::reporter(shared.clone())),
                #[cfg(feature = "opentelemetry")]
                tokio::spawn(crate::telemetry::refresh_waiting(
                    shared.id,
                    shared.store.clone(),
                    shared.stop_background.clone(),
                    shared.settings.store_timeout,
                )),
            ],
            keeper,
        };
        Self {
            shared,
            tasks: Some(tasks),
        }
    }

    /// This start's identity, as shown in heartbeats and job history.
    pub fn id(&self) -> ServerId {
        self.shared.id
    }

    /// Whether the server is healthy, and what it saw lately: of the store
    /// (the outcome of its claims and its own writes), of its claims, lease
    /// renewals and heartbeats, and of the jobs it runs. Read from memory,
    /// without a store call, so a readiness probe may call it as often as it
    /// likes; [`ServerHealth`] lists the rules of the verdict and the
    /// thresholds, which follow from the server's settings.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// use jobs::{MemoryStore, Server};
    /// # async fn demo() -> jobs::Result<()> {
    /// let server = Server::builder(MemoryStore::new()).start().await?;
    /// let health = server.health();
    /// match health.reason() {
    ///     None => println!("healthy, running {} of {}", health.running, health.concurrency),
    ///     Some(reason) => println!("unhealthy: {reason}"), // "store unreachable for 12s: ..."
    /// }
    /// assert!(health.is_healthy());
    /// server.shutdown().await;
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub fn health(&self) -> ServerHealth {
        self.health_probe().health()
    }

    /// A handle that reads [`health`](Self::health) from elsewhere (an HTTP
    /// handler's state), also while and after the server shuts down.
    pub fn health_probe(&self) -> HealthProbe {
        let shared = &self.shared;
        HealthProbe::new(
            shared.id,
            shared.health.clone(),
            shared.load.clone(),
            health::HealthLimits::new(&shared.settings),
        )
    }

    /// Stops gracefully: stops claiming, lets running jobs finish up to the
    /// shutdown timeout, then cancels the rest (aborting them after the
    /// cancel grace) and hands them back as runnable at once without using
    /// up an attempt; writes the last outcomes and removes the server record.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// use jobs::{MemoryStore, Server};
    /// # async fn demo() -> jobs::Result<()> {
    /// let server = Server::builder(MemoryStore::new()).start().await?;
    /// // In an application: `tokio::signal::ctrl_c().await?;`
    /// server.shutdown().await; // returns once the server has stopped
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn shutdown(mut self) {
        if let Some(tasks) = self.tasks.take() {
            shutdown(self.shared.clone(), tasks).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tasks) = self.tasks.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(shutdown(self.shared.clone(), tasks));
            }
        }
    }
}

async fn shutdown(shared: Arc<Shared>, tasks: Tasks) {
    let settings = &shared.settings;
    let all_slots = u32::try_from(settings.concurrency).unwrap_or(u32::MAX);
    tracing::info!(server = %shared.id, "job server shutting down");
    shared.health_record().note_stopping();
    shared.stop_fetching.cancel();
    let _ = tasks.fetcher.await;

    // Every job holds a slot until its completion is queued: all slots back
    // means every job has ended.
    let drained = tokio::time::timeout(
        settings.shutdown_timeout,
        shared.slots.acquire_many(all_slots),
    )
    .await;
    if drained.is_err() {
        let unfinished: Vec<_> = shared.running().values().map(|r| r.stop.clone()).collect();
        tracing::warn!(server = %shared.id, jobs = unfinished.len(), "shutdown timeout reached; cancelling the jobs still running and handing them back");
        for stop in unfinished {
            stop.stop(StopReason::Shutdown);
        }
        // Cancelled jobs stop on their own or are aborted after the grace period.
        let grace = settings.cancel_grace + Duration::from_secs(1);
        let _ = tokio::time::timeout(grace, shared.slots.acquire_many(all_slots)).await;
    }

    shared.stop_completer.cancel();
    let _ = tasks.completer.await;
    shared.stop_background.cancel();
    for task in tasks.background {
        let _ = task.await;
    }
    tasks.keeper.stop();
    let remove = shared.store.server_remove(
        ServerRemoveParams::silent_for(stale_server_age(settings)).and_server(shared.id),
    );
    if let Err(error) = timeout_call(settings.store_timeout, remove).await {
        tracing::warn!(server = %shared.id, %error, "could not remove the server record");
    }
    shared.health_record().note_stopped();
    tracing::info!(server = %shared.id, "job server stopped");
}

/// Servers silent for this long are dead; their records are removed.
pub(crate) fn stale_server_age(settings: &Settings) -> Duration {
    (settings.heartbeat_interval * 10).max(Duration::from_secs(60))
}

/// A store call bounded by the store timeout; a timeout is an `Unavailable` error.
pub(crate) async fn timeout_call<T>(
    limit: Duration,
    call: impl std::future::Future<Output = StoreResult<T>>,
) -> StoreResult<T> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::new(
            StoreErrorKind::Unavailable,
            format!("the store did not answer within {limit:?}"),
        )),
    }
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests;
