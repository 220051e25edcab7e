//! A graceful server shutdown on PgStore: what it leaves in the log and in
//! the database.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobs_core::{Cron, CronUpsertParams, NewJob, RecurringDef, RecurringOptions, Server, Store};
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// The events logged while it is the default subscriber, as `LEVEL target:
/// message`.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<String>>>);

impl Captured {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_owned();
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Captured {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        let meta = event.metadata();
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {}: {}", meta.level(), meta.target(), message.0));
    }
}

/// Regression (reliability issue: every graceful shutdown logged `WARN
/// sqlx::postgres::notice: there is no transaction in progress`). The server's
/// loops are cancelled at shutdown; the scheduler's store call was dropped
/// with its transaction's COMMIT in flight, and sqlx then queued a ROLLBACK
/// behind it. Here every commit that fires a recurring job takes two seconds
/// (a deferred trigger), and the server shuts down while one is under way:
/// the transaction ends on its own, and nothing warns.
///
/// A current-thread runtime, so that the subscriber set for this thread sees
/// the events of every task, sqlx's own included.
#[tokio::test]
async fn a_shutdown_during_a_commit_leaves_no_warning_and_the_commit_lands() {
    let captured = Captured::default();
    let _log =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(captured.clone()));
    let schema = common::TestSchema::new().await;
    let app = format!("{}_server", schema.name);
    let store = schema.store(&app).await;
    let s = format!("\"{}\"", schema.name);
    sqlx::raw_sql(&format!(
        "CREATE FUNCTION {s}.slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$;
         CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON {s}.jobs
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {s}.slow_commit();"
    ))
    .execute(&schema.admin)
    .await
    .unwrap();
    let every_second = Cron::parse("* * * * * *").unwrap();
    let def = RecurringDef::new(
        "tick".to_owned(),
        &every_second,
        NewJob::new("tick", json!({})),
        RecurringOptions::new(),
    );
    store.cron_upsert(CronUpsertParams::new(def)).await.unwrap();
    // It serves no queue the runs go to: only the scheduler works.
    let server = Server::builder(store.clone())
        .queues(["nothing_here"])
        .scheduler_interval(Duration::from_millis(100))
        .start()
        .await
        .unwrap();

    // Shut down while a fire's COMMIT runs (the trigger sleeping in it).
    let started = Instant::now();
    loop {
        let committing: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE application_name = $1 AND query = 'COMMIT' AND wait_event = 'PgSleep'",
        )
        .bind(&app)
        .fetch_one(&schema.admin)
        .await
        .unwrap();
        if committing > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the scheduler never committed a fire"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await;
    // Every connection comes back to the pool once the statement it was
    // running ended, and sqlx reads what is left on it (the notices
    // included) before it takes it back: once all are idle, whatever was to
    // be logged is. (Closing the pool first would not do: sqlx closes a
    // connection that comes back to a closed pool without reading it.)
    let started = Instant::now();
    while store.pool().num_idle() < store.pool().size() as usize {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the store's connections never came back to its pool"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.pool().close().await;

    let dbg: Vec<(i64, Option<String>, String)> = sqlx::query_as(&format!(
        "SELECT id, recurring_id, state FROM {}",
        schema.table("jobs")
    ))
    .fetch_all(&schema.admin)
    .await
    .unwrap();
    let rec: Vec<(Option<i64>, Option<chrono::DateTime<chrono::Utc>>)> = sqlx::query_as(&format!(
        "SELECT last_job_id, next_run_at FROM {}",
        schema.table("recurring")
    ))
    .fetch_all(&schema.admin)
    .await
    .unwrap();
    eprintln!("DBG jobs {dbg:?} rec {rec:?}");
    let lines = captured.lines();
    let warnings: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains("transaction in progress"))
        .collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
    let runs = schema
        .scalar(&format!(
            "SELECT count(*) FROM {} WHERE recurring_id = 'tick'",
            schema.table("jobs")
        ))
        .await;
    assert!(
        runs >= 1,
        "the fire the server stopped waiting for committed"
    );
    schema.drop().await;
}
