//! [`ServerBuilder`]: a server's settings, with their defaults, and the
//! start that checks them and the registered jobs.

use std::sync::Arc;
use std::time::Duration;

use super::{Registry, Server};
use crate::error::Result;
use crate::job::{registered_jobs, Resources};
use crate::store::{DynStore, Retention, MAINTENANCE_BATCH};

/// How many jobs a server may claim ahead of its free slots by default.
const DEFAULT_PREFETCH: usize = 256;

/// Configures and starts a [`Server`]: [`Server::builder`] makes one with
/// the defaults, each setter changes one setting, [`start`](ServerBuilder::start)
/// checks the whole and starts the server.
///
/// ```
/// # use jobs_core as jobs;
/// use std::time::Duration;
/// use jobs::{MemoryStore, Server};
///
/// #[derive(Clone)]
/// struct Mailer; // what jobs ask for as `State<Mailer>`
///
/// # async fn demo() -> jobs::Result<()> {
/// let server = Server::builder(MemoryStore::new())
///     .queues(["mail", "default"])             // mail first
///     .concurrency(32)                         // jobs running at once
///     .state(Mailer)                           // shared resources, by type
///     .shutdown_timeout(Duration::from_secs(60))
///     .start()
///     .await?;
/// server.shutdown().await;
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
#[must_use = "a server does nothing until it is started"]
#[derive(Clone)]
pub struct ServerBuilder {
    store: Arc<dyn DynStore>,
    settings: Settings,
    resources: Resources,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("settings", &self.settings)
            .field("resources", &self.resources)
            .finish_non_exhaustive()
    }
}

/// The default of [`ServerBuilder::max_output_bytes`].
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) queues: Vec<String>,
    /// The per-queue caps on the slots, latest per queue.
    pub(crate) queue_limits: Vec<(String, usize)>,
    pub(crate) concurrency: usize,
    pub(crate) prefetch: usize,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) cancel_grace: Duration,
    /// The largest output, as JSON, a job may return.
    pub(crate) max_output_bytes: usize,
    pub(crate) poll_interval: Duration,
    pub(crate) lease: Duration,
    /// `None`: a third of the lease.
    pub(crate) renewal_interval: Option<Duration>,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) rescue_interval: Duration,
    pub(crate) store_timeout: Duration,
    pub(crate) prune_interval: Duration,
    pub(crate) prune_batch: u32,
    pub(crate) scheduler_interval: Duration,
    pub(crate) stranded_report_interval: Duration,
    pub(crate) retention: Retention,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            queues: vec![crate::DEFAULT_QUEUE.to_owned()],
            queue_limits: Vec::new(),
            concurrency: 16,
            prefetch: DEFAULT_PREFETCH,
            shutdown_timeout: Duration::from_secs(30),
            cancel_grace: Duration::from_secs(5),
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            poll_interval: Duration::from_millis(500),
            lease: Duration::from_secs(30),
            renewal_interval: None,
            heartbeat_interval: Duration::from_secs(10),
            rescue_interval: Duration::from_secs(15),
            store_timeout: Duration::from_secs(30),
            prune_interval: Duration::from_secs(60),
            prune_batch: MAINTENANCE_BATCH,
            scheduler_interval: Duration::from_secs(1),
            stranded_report_interval: Duration::from_secs(60),
            retention: Retention::default(),
        }
    }
}

impl Settings {
    /// How often running jobs' leases are renewed.
    pub(crate) fn renewal_interval(&self) -> Duration {
        self.renewal_interval.unwrap_or(self.lease / 3)
    }
}

impl ServerBuilder {
    /// A builder on an already shared store (what `Jobs::store` returns).
    pub fn from_dyn(store: Arc<dyn DynStore>) -> Self {
        Self {
            store,
            settings: Settings::default(),
            resources: Resources::default(),
        }
    }

    /// The store the server will run on.
    pub fn store(&self) -> &Arc<dyn DynStore> {
        &self.store
    }

    /// The queues the server will serve.
    pub fn queue_names(&self) -> &[String] {
        &self.settings.queues
    }

    /// The queues to serve, in the order they are preferred (default `["default"]`).
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// use jobs::{MemoryStore, Server};
    /// let builder = Server::builder(MemoryStore::new()).queues(["critical", "default", "maintenance"]);
    /// assert_eq!(builder.queue_names(), ["critical", "default", "maintenance"]);
    /// ```
    pub fn queues<Q: Into<String>>(mut self, queues: impl IntoIterator<Item = Q>) -> Self {
        self.settings.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// How many jobs run at once (default 16).
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// use jobs::{MemoryStore, Server};
    /// // Few slots for jobs that each hold a database connection for long.
    /// let builder = Server::builder(MemoryStore::new()).concurrency(4);
    /// # let _ = builder;
    /// ```
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.settings.concurrency = concurrency;
        self
    }

    /// At most `limit` of this server's slots run jobs of `queue` (default:
    /// no limit; any queue may take every slot). A server with
    /// concurrency 16 serving `mail` and `default` with
    /// `.queue_limit("mail", 5)` runs at most 5 `mail` jobs at once, and
    /// `default` may use the rest, so a slow queue cannot take every slot.
    /// Jobs claimed ahead count against the limit, from their claim; one
    /// claim still serves every queue. The limit is this server's: each
    /// server (each replica) has its own. Called again for the same queue,
    /// the latest limit counts.
    ///
    /// The queue must be one the server serves, and the limit between 1
    /// and the concurrency: [`start`](ServerBuilder::start) says otherwise.
    /// To stop a queue for every server, pause it
    /// ([`Jobs::queues`](crate::Jobs::queues)).
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// use jobs::{MemoryStore, Server};
    /// # async fn demo() -> jobs::Result<()> {
    /// let server = Server::builder(MemoryStore::new())
    ///     .queues(["mail", "default"])
    ///     .concurrency(16)
    ///     .queue_limit("mail", 5) // at most 5 mail jobs at once; default may use all 16
    ///     .start()
    ///     .await?;
    /// server.shutdown().await;
    ///
    /// let wrong = Server::builder(MemoryStore::new()).queue_limit("reports", 2).start().await;
    /// assert!(wrong.unwrap_err().to_string().contains("does not serve"));
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub fn queue_limit(mut self, queue: impl Into<String>, limit: usize) -> Self {
        let queue = queue.into();
        self.settings.queue_limits.retain(|(q, _)| *q != queue);
        self.settings.queue_limits.push((queue, limit));
        self
    }

    /// The most jobs the server may claim ahead of its free slots (default
    /// 256; 0 claims only for free slots).
    ///
    /// Jobs are claimed ahead only while they finish faster than a claim's
    /// round trip to the store, and only as many as the slots finished
    /// lately during a few round trips, so that slots running short jobs
    /// never wait for the store. Servers running jobs longer than that (or
    /// just back from idling) claim only what their free slots can start,
    /// leaving the rest to other servers. A job claimed ahead is
    /// `processing` (its lease renewed) from its claim (heartbeats count it
    /// apart from running jobs: see `Jobs::server_summary`), is cancelled without
    /// running if a user cancels it meanwhile, and is handed back without
    /// spending an attempt if the server shuts down before starting it; if
    /// the server dies, it is rescued like a running job, its attempt spent.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// use jobs::{MemoryStore, Server};
    /// // Every server claims only what it can start at once.
    /// let builder = Server::builder(MemoryStore::new()).prefetch(0);
    /// # let _ = builder;
    /// ```
    pub fn prefetch(mut self, jobs: usize) -> Self {
        self.settings.prefetch = jobs;
        self
    }

    /// Gives the server a shared resource that jobs ask for as `State<T>`.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// use jobs::{MemoryStore, Server};
    /// // A job declared `async fn send(user_id: i64, mailer: State<Mailer>)` gets a clone.
    /// #[derive(Clone)]
    /// struct Mailer { from: String }
    ///
    /// let builder = Server::builder(MemoryStore::new()).state(Mailer { from: "noreply@example.com".into() });
    /// # let _ = builder;
    /// ```
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.resources.insert(value);
        self
    }

    /// How long shutdown lets running jobs finish before cancelling them (default 30 s).
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// use jobs::{MemoryStore, Server};
    /// use std::time::Duration;
    ///
    /// // Finish within the grace period the orchestrator gives the process.
    /// let builder = Server::builder(MemoryStore::new()).shutdown_timeout(Duration::from_secs(25));
    /// # let _ = builder;
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.settings.shutdown_timeout = timeout;
        self
    }

    /// The largest output a job may return, in bytes of JSON (default
    /// 256 KiB, as PostgreSQL's default limit on arguments). A larger one
    /// is an error of the attempt, with its size in the message, retried as
    /// any other: store large results elsewhere and return their id.
    pub fn max_output_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_output_bytes = bytes;
        self
    }

    /// How long a cancelled job (timeout, user cancel, shutdown) may take to
    /// stop on its own before its task is aborted (default 5 s).
    pub fn cancel_grace(mut self, grace: Duration) -> Self {
        self.settings.cancel_grace = grace;
        self
    }

    /// The longest an idle server waits before looking for work (default
    /// 500 ms). Stores that signal new jobs wake it sooner.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.settings.poll_interval = interval;
        self
    }

    /// How long a claim stays valid without renewal (default 30 s); renewed
    /// every third of it unless [`lease_renewal_interval`](Self::lease_renewal_interval) says otherwise.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.settings.lease = lease;
        self
    }

    /// How often the leases of running jobs are renewed (default a third of
    /// the lease). It must be shorter than half the lease, so that one late
    /// or failed renewal does not let a lease run out. A renewal that failed
    /// is retried sooner, with a growing pause up to this interval.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// use std::time::Duration;
    /// use jobs::{MemoryStore, Server};
    /// // A long lease that is renewed often: a dead server's jobs wait up to
    /// // two minutes, a live server's renewals have many chances.
    /// let builder = Server::builder(MemoryStore::new())
    ///     .lease(Duration::from_secs(120))
    ///     .lease_renewal_interval(Duration::from_secs(10));
    /// # let _ = builder;
    /// ```
    pub fn lease_renewal_interval(mut self, interval: Duration) -> Self {
        self.settings.renewal_interval = Some(interval);
        self
    }

    /// How often the server record is refreshed (default 10 s).
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.settings.heartbeat_interval = interval;
        self
    }

    /// How often expired leases are rescued (default 15 s).
    pub fn rescue_interval(mut self, interval: Duration) -> Self {
        self.settings.rescue_interval = interval;
        self
    }

    /// How often due recurring jobs are looked for (default 1 s): the longest
    /// a tick waits for its run to be enqueued while servers are up.
    pub fn scheduler_interval(mut self, interval: Duration) -> Self {
        self.settings.scheduler_interval = interval;
        self
    }

    /// The longest any single store call may take before it counts as failed
    /// and is retried (default 30 s).
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.settings.store_timeout = timeout;
        self
    }

    /// How long finished jobs are kept, by how they ended (defaults: succeeded
    /// 24 h, deleted or cancelled 24 h, failed 7 days). Pruned in bounded
    /// batches every [`prune_interval`](ServerBuilder::prune_interval).
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// use std::time::Duration;
    /// use jobs::{MemoryStore, Retention, Server};
    ///
    /// let server = Server::builder(MemoryStore::new())
    ///     .retention(Retention::default().failed(Duration::from_secs(30 * 24 * 3600)));
    /// # let _ = server;
    /// ```
    pub fn retention(mut self, retention: Retention) -> Self {
        self.settings.retention = retention;
        self
    }

    /// How often finished jobs past their [`retention`](ServerBuilder::retention)
    /// are removed (default 60 s; must be longer than zero). Each pass
    /// removes them in batches of [`prune_batch`](ServerBuilder::prune_batch)
    /// until a batch comes back short, so a shorter interval makes smaller
    /// passes, not more work.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// use std::time::Duration;
    /// use jobs::{MemoryStore, Retention, Server};
    ///
    /// // A test that checks retention without waiting a minute.
    /// let builder = Server::builder(MemoryStore::new())
    ///     .retention(Retention::default().succeeded(Duration::from_secs(1)))
    ///     .prune_interval(Duration::from_millis(200));
    /// # let _ = builder;
    /// ```
    pub fn prune_interval(mut self, interval: Duration) -> Self {
        self.settings.prune_interval = interval;
        self
    }

    /// The most finished jobs one prune call removes, with their history
    /// (default [`MAINTENANCE_BATCH`], 1000; at least 1). Larger batches
    /// catch up faster after a burst; smaller ones keep each delete's locks
    /// and its share of the store's write load short.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// use jobs::{MemoryStore, Server};
    /// let builder = Server::builder(MemoryStore::new()).prune_batch(200);
    /// # let _ = builder;
    /// ```
    pub fn prune_batch(mut self, jobs: u32) -> Self {
        self.settings.prune_batch = jobs;
        self
    }

    /// How often the jobs no live server can take are reported (default
    /// 60 s; must be longer than zero): due jobs in a queue no running
    /// server serves, or whose name no running server of their queue
    /// registers, which would otherwise wait forever without a sound. Each
    /// report is a warning per queue and job name, naming them, saying how
    /// many wait since when and what to do (the same list as
    /// `Jobs::stranded`).
    ///
    /// Of the servers sharing a store only the oldest live one reports,
    /// chosen from the server records with no lock or write, so the report
    /// costs every server one read of the server records per interval and
    /// the store one stranded-jobs query. The interval that counts is the
    /// reporting server's. The first report comes one interval after the
    /// start, once servers starting together have all sent a heartbeat.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// use std::time::Duration;
    /// use jobs::{MemoryStore, Server};
    /// let builder = Server::builder(MemoryStore::new())
    ///     .stranded_report_interval(Duration::from_secs(15 * 60));
    /// # let _ = builder;
    /// ```
    pub fn stranded_report_interval(mut self, interval: Duration) -> Self {
        self.settings.stranded_report_interval = interval;
        self
    }

    /// Checks the configuration and the registered jobs, then starts the
    /// server on the current tokio runtime.
    ///
    /// Fails, naming every culprit, when two jobs share a stored name, a job
    /// whose default queue the server serves asks for a `State<T>` the server
    /// was not given, or a setting is invalid. Jobs of other queues are not
    /// checked: a job put into a served queue by `Request::queue` whose
    /// resource is missing fails that attempt for good, naming the type.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// use jobs::{MemoryStore, Server};
    /// # async fn demo() -> jobs::Result<()> {
    /// let server = Server::builder(MemoryStore::new()).start().await?; // runs on tokio tasks
    /// println!("server {} started", server.id().0);
    /// server.shutdown().await;
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn start(self) -> Result<Server> {
        let registry = Registry::check(registered_jobs(), &self.resources, &self.settings)?;
        Ok(Server::spawn(
            self.store,
            self.settings,
            registry,
            self.resources,
        ))
    }
}
