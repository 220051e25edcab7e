//! The stranded-jobs report: every `stranded_report_interval` (60 s by
//! default) one server of those sharing the store logs a warning for each
//! group of due jobs that no live server can take (`Store::job_stranded`),
//! naming the queue, the job, how many wait since when, why, and what to do.
//! A server never discards a job it does not know, so without this report
//! such jobs would wait forever without a sound.
//!
//! Which server reports: the oldest live one (earliest `started_at`, then
//! lowest id) among the server records, where live means a heartbeat within
//! the stale-server age of the newest heartbeat (both on the store's clock).
//! Every server reads the same records and so picks the same one, with no
//! lock and no write: each interval costs every server one read of the
//! server records, and the reporter alone one `job_stranded` query. A dead
//! reporter's record stops counting once it is stale, and the next oldest
//! server takes over; until then (at most the stale-server age) no one
//! reports. The first report waits one interval after the start, so that
//! servers starting together have sent their heartbeats first.

use std::sync::Arc;
use std::time::Duration;

use super::{stale_server_age, timeout_call, Shared};
use crate::model::{ServerId, ServerInfo, StrandedJobs, StrandedReason};
use crate::store::{JobStrandedParams, ServerListParams};

/// At most this many groups are logged per report; more are summed up in one line.
const REPORTED_GROUPS: u32 = 20;

/// Reports stranded jobs every interval until the server stops.
pub(crate) async fn reporter(shared: Arc<Shared>) {
    let every = shared.settings.stranded_report_interval;
    loop {
        // Scattered by up to 10 %, like the other loops.
        let pause = every.mul_f64(1.0 - 0.1 * fastrand::f64());
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shared.stop_background.cancelled() => return,
        }
        tokio::select! {
            _ = report(&shared) => {}
            _ = shared.stop_background.cancelled() => return,
        }
    }
}

/// One report, if this server is the one to make it.
async fn report(shared: &Shared) {
    let limit = shared.settings.store_timeout;
    let servers = match timeout_call(limit, shared.store.server_list(ServerListParams::new())).await
    {
        Ok(servers) => servers,
        Err(error) => {
            tracing::debug!(server = %shared.id, %error, "reading the servers for the stranded-jobs report failed");
            return;
        }
    };
    if reporter_of(&servers, stale_server_age(&shared.settings)) != Some(shared.id) {
        return;
    }
    let params = JobStrandedParams::new()
        .live_within(stale_server_age(&shared.settings))
        .limit(REPORTED_GROUPS + 1);
    let stranded = match timeout_call(limit, shared.store.job_stranded(params)).await {
        Ok(stranded) => stranded,
        Err(error) => {
            tracing::warn!(server = %shared.id, %error, "looking for jobs no server can take failed");
            return;
        }
    };
    for group in stranded.iter().take(REPORTED_GROUPS as usize) {
        tracing::warn!(
            server = %shared.id,
            queue = %group.queue,
            job = %group.name,
            count = group.count,
            since = %group.oldest_due,
            reason = %group.reason,
            "{}",
            warning(group)
        );
    }
    if stranded.len() > REPORTED_GROUPS as usize {
        tracing::warn!(server = %shared.id, "more queues and jobs have jobs no server can take; `Jobs::stranded` lists them all");
    }
}

/// The server that reports: the oldest live one. `None` without servers.
fn reporter_of(servers: &[ServerInfo], stale_after: Duration) -> Option<ServerId> {
    let newest = servers.iter().map(|s| s.heartbeat_at).max()?;
    let live_since = chrono::Duration::from_std(stale_after)
        .ok()
        .and_then(|age| newest.checked_sub_signed(age));
    servers
        .iter()
        .filter(|s| live_since.is_none_or(|since| s.heartbeat_at >= since))
        .min_by_key(|s| (s.started_at, s.id.0))
        .map(|s| s.id)
}

/// The warning for one group: what waits, why, and what to do.
fn warning(group: &StrandedJobs) -> String {
    let StrandedJobs {
        queue,
        name,
        count,
        oldest_due,
        ..
    } = group;
    let what = format!("{count} jobs `{name}` in queue `{queue}` have been due since {oldest_due} and no running server can take them");
    let todo = match group.reason {
        StrandedReason::NoServerForQueue => format!(
            "no running server serves queue `{queue}`: start one with `.queues([.., \"{queue}\"])`"
        ),
        StrandedReason::NoServerKnowsName => format!(
            "no running server for queue `{queue}` registers the job `{name}`: deploy the code \
             that defines it, or, if it was renamed, keep the stored name with `#[job(name = \"{name}\")]`"
        ),
    };
    format!(
        "{what}; {todo}; or cancel or delete them. They wait until a server takes them: \
         a server never discards a job it does not know"
    )
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;
    use std::sync::Mutex;

    use serde_json::json;
    use tracing::field::{Field, Visit};
    use tracing::span;

    use super::*;
    use crate::model::NewJob;
    use crate::{Jobs, MemoryStore, Server};

    /// The fields of one event, `message` included, as text.
    type Logged = Vec<(String, String)>;

    /// Every warning logged on this thread while it is the default
    /// subscriber.
    #[derive(Clone, Default)]
    struct Warnings(Arc<Mutex<Vec<Logged>>>);

    struct Fields(Logged);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
            self.0.push((field.name().to_owned(), format!("{value:?}")));
        }
    }

    impl tracing::Subscriber for Warnings {
        fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
            *metadata.level() <= tracing::Level::WARN
        }
        fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
            span::Id::from_u64(1)
        }
        fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
        fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut fields = Fields(Vec::new());
            event.record(&mut fields);
            self.0.lock().unwrap().push(fields.0);
        }
        fn enter(&self, _: &span::Id) {}
        fn exit(&self, _: &span::Id) {}
    }

    impl Warnings {
        /// The stranded-jobs warnings: those naming a job.
        fn stranded(&self) -> Vec<Logged> {
            let all = self.0.lock().unwrap();
            all.iter()
                .filter(|fields| fields.iter().any(|(k, _)| k == "job"))
                .cloned()
                .collect()
        }
    }

    fn field<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Due jobs of a name no server registers and of a queue no server
    /// serves are reported once an interval, by one server only, naming
    /// the queue, the job, the count and what to do.
    #[tokio::test(start_paused = true)]
    async fn the_oldest_live_server_warns_about_jobs_no_server_can_take() {
        let warnings = Warnings::default();
        let _subscriber = tracing::subscriber::set_default(warnings.clone());
        let store = MemoryStore::new();
        let jobs = Jobs::new(store.clone());
        let renamed = || NewJob::new("send_invoice_v1", json!({}));
        let mut unserved = NewJob::new("test_succeeds", json!({ "n": 0 }));
        unserved.queue = "reports".to_owned();
        jobs.insert(vec![renamed(), renamed(), unserved])
            .await
            .unwrap();
        let start = || {
            Server::builder(store.clone())
                .heartbeat_interval(Duration::from_secs(1))
                .stranded_report_interval(Duration::from_secs(10))
                .start()
        };
        let (first, second) = (start().await.unwrap(), start().await.unwrap());

        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(
            warnings.stranded().is_empty(),
            "the first report waits an interval"
        );
        tokio::time::sleep(Duration::from_secs(30)).await;
        let servers = jobs.servers().await.unwrap();
        let oldest = servers
            .iter()
            .min_by_key(|s| (s.started_at, s.id.0))
            .unwrap()
            .id;
        first.shutdown().await;
        second.shutdown().await;

        let reported = warnings.stranded();
        assert!(
            reported
                .iter()
                .all(|w| field(w, "server") == oldest.to_string()),
            "only the oldest server reports: {reported:?}"
        );
        let of = |job: &str| -> Vec<&Logged> {
            reported.iter().filter(|w| field(w, "job") == job).collect()
        };
        let renamed = of("send_invoice_v1");
        // Three intervals of 9 to 10 s passed: one report each.
        assert!((2..=4).contains(&renamed.len()), "{reported:?}");
        let warning = renamed[0];
        assert_eq!(field(warning, "queue"), "default");
        assert_eq!(field(warning, "count"), "2");
        let message = field(warning, "message");
        assert!(
            message.contains("2 jobs `send_invoice_v1` in queue `default`"),
            "{message}"
        );
        assert!(
            message.contains("#[job(name = \"send_invoice_v1\")]"),
            "{message}"
        );
        assert!(
            message.contains("a server never discards a job it does not know"),
            "{message}"
        );
        let unserved = of("test_succeeds");
        assert_eq!(unserved.len(), renamed.len(), "{reported:?}");
        let message = field(unserved[0], "message");
        assert!(
            message.contains("no running server serves queue `reports`"),
            "{message}"
        );
        assert!(message.contains(".queues([.., \"reports\"])"), "{message}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_report_interval_is_an_error_at_start() {
        let error = Server::builder(MemoryStore::new())
            .stranded_report_interval(Duration::ZERO)
            .start()
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("the stranded-jobs report interval must be longer than zero"),
            "{error}"
        );
    }

    #[test]
    fn jobs_stranded_judges_liveness_as_servers_with_default_settings_do() {
        assert_eq!(
            JobStrandedParams::new().live_within,
            stale_server_age(&crate::server::Settings::default())
        );
    }

    #[test]
    fn the_reporter_is_the_oldest_server_whose_heartbeat_is_fresh() {
        let at = |minutes: i64| chrono::Utc::now() - chrono::Duration::minutes(minutes);
        let server = |started: i64, beat: i64| {
            let mut info = ServerInfo::new(ServerId::new(), at(started));
            info.heartbeat_at = at(beat);
            info
        };
        let dead = server(600, 30);
        let old = server(300, 0);
        let young = server(10, 1);
        let stale = Duration::from_secs(100);
        let servers = vec![young.clone(), dead, old.clone()];
        assert_eq!(reporter_of(&servers, stale), Some(old.id));
        assert_eq!(
            reporter_of(std::slice::from_ref(&young), stale),
            Some(young.id)
        );
        assert_eq!(reporter_of(&[], stale), None);
    }
}
