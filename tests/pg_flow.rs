//! Job flow on PostgreSQL, end to end with a server: a typed continuation
//! runs on its parent's output, a chain of continuations runs in order, and
//! a continuation on success of a parent that fails is cancelled naming it;
//! a batch's callback runs once after its jobs, finished by two servers;
//! one with a failed job cancels its callback on success; a batch enqueued
//! in a transaction that rolls back leaves nothing.

#![cfg(feature = "postgres")]

mod pg_support;

use std::time::Duration;

use jobs::postgres::PgStore;
use jobs::{job, JobState, Jobs, NewBatch, Server};
use pg_support::{eventually, TestSchema};

const DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Quote {
    order_id: i64,
    cents: i64,
}

#[job(queue = "it_flow")]
async fn price_order(order_id: i64) -> anyhow::Result<Quote> {
    Ok(Quote {
        order_id,
        cents: order_id * 250,
    })
}

/// Returns what it was given, so the test reads it back as its output.
#[job(queue = "it_flow")]
async fn confirm_quote(quote: Quote) -> anyhow::Result<String> {
    Ok(format!("order {} costs {}", quote.order_id, quote.cents))
}

#[job(queue = "it_flow", max_attempts = 1)]
async fn reject_order(order_id: i64) -> anyhow::Result<()> {
    anyhow::bail!("order {order_id} is rejected")
}

/// A batch's callback.
#[job(queue = "it_flow")]
async fn report_batch(label: String) -> anyhow::Result<String> {
    Ok(format!("{label} done"))
}

async fn setup() -> (TestSchema, PgStore, Jobs, Server) {
    let (schema, store, jobs) = setup_without_server().await;
    let server = serve(&store).await;
    (schema, store, jobs, server)
}

async fn setup_without_server() -> (TestSchema, PgStore, Jobs) {
    let schema = TestSchema::new().await;
    let store = schema.store(&format!("{}_flow", schema.name)).await;
    let jobs = Jobs::new(store.clone());
    (schema, store, jobs)
}

async fn serve(store: &PgStore) -> Server {
    Server::builder(store.clone())
        .queues(["it_flow"])
        .poll_interval(Duration::from_millis(100))
        .start()
        .await
        .unwrap()
}

async fn ended(jobs: &Jobs, id: jobs::JobId) -> JobState {
    eventually("the job to end", DEADLINE, || async {
        let state = jobs.get(id).await.unwrap().unwrap().job.state;
        state.is_finished().then_some(state)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_continuation_runs_on_its_parent_s_output_across_the_store() {
    let (_schema, _store, jobs, server) = setup().await;
    let price = PriceOrder::enqueue(&jobs, 12).await.unwrap();
    let confirm = ConfirmQuote::after_output_of::<PriceOrder>(price)
        .enqueue(&jobs)
        .await
        .unwrap();
    assert_eq!(ended(&jobs, confirm).await, JobState::Succeeded);
    assert_eq!(
        jobs.output::<ConfirmQuote>(confirm)
            .await
            .unwrap()
            .as_deref(),
        Some("order 12 costs 3000")
    );
    // Added once the parent has succeeded: it runs at once, on the output.
    let late = ConfirmQuote::after_output_of::<PriceOrder>(price)
        .enqueue(&jobs)
        .await
        .unwrap();
    assert_eq!(ended(&jobs, late).await, JobState::Succeeded);
    assert_eq!(
        jobs.output::<ConfirmQuote>(late).await.unwrap().as_deref(),
        Some("order 12 costs 3000")
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_parent_cancels_its_continuation_on_success_and_runs_the_other() {
    // The server starts once both continuations exist: a parent that had
    // already failed would refuse the one on its success.
    let (_schema, store, jobs) = setup_without_server().await;
    let reject = RejectOrder::enqueue(&jobs, 5).await.unwrap();
    let on_success = PriceOrder::new(5)
        .after(reject)
        .enqueue(&jobs)
        .await
        .unwrap();
    let on_any = PriceOrder::new(6)
        .after_any_end(reject)
        .enqueue(&jobs)
        .await
        .unwrap();
    let server = serve(&store).await;
    assert_eq!(ended(&jobs, reject).await, JobState::Failed);
    assert_eq!(ended(&jobs, on_success).await, JobState::Cancelled);
    let detail = jobs.get(on_success).await.unwrap().unwrap();
    let reason = detail.history.last().and_then(|e| e.error.clone()).unwrap();
    assert!(
        reason.contains(&format!("job {reject} ended failed")),
        "{reason}"
    );
    assert_eq!(ended(&jobs, on_any).await, JobState::Succeeded);
    // Refused at once when it could never run.
    let refused = PriceOrder::new(7)
        .after(reject)
        .enqueue(&jobs)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("would never run"), "{refused}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_s_callback_runs_once_after_its_jobs_on_two_servers() {
    let (schema, store, jobs, server) = setup().await;
    // A second server, on a store of its own, finishes members too.
    let other_store = schema.store(&format!("{}_flow", schema.name)).await;
    let other = Server::builder(other_store.clone())
        .queues(["it_flow"])
        .poll_interval(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let batch = NewBatch::new()
        .members((1..=60).map(PriceOrder::new))
        .on_success(ReportBatch::new("prices".to_owned()));
    let enqueued = jobs.batches().enqueue(batch).await.unwrap();
    let callback = enqueued.callback.unwrap();
    assert_eq!(ended(&jobs, callback).await, JobState::Succeeded);
    assert_eq!(
        jobs.output::<ReportBatch>(callback)
            .await
            .unwrap()
            .as_deref(),
        Some("prices done")
    );
    let progress = jobs.batches().get(enqueued.id).await.unwrap().unwrap();
    assert_eq!(
        (progress.total, progress.succeeded, progress.pending),
        (60, 60, 0)
    );
    assert!(progress.finished_at.is_some());
    let history = jobs.get(callback).await.unwrap().unwrap().history;
    let released = history
        .iter()
        .filter(|e| e.state == JobState::Enqueued)
        .count();
    assert_eq!(released, 1, "the callback was released once: {history:?}");
    let members = jobs
        .batches()
        .members(enqueued.id, None, 100)
        .await
        .unwrap();
    assert_eq!(members.len(), 60);
    assert!(members.iter().all(|m| m.batch == Some(enqueued.id)));
    other.shutdown().await;
    other_store.close().await;
    server.shutdown().await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_a_failed_job_cancels_its_callback_on_success() {
    let (_schema, _store, jobs, server) = setup().await;
    let batch = NewBatch::new()
        .member(PriceOrder::new(1))
        .member(RejectOrder::new(2))
        .on_success(ReportBatch::new("orders".to_owned()));
    let enqueued = jobs.batches().enqueue(batch).await.unwrap();
    let callback = enqueued.callback.unwrap();
    assert_eq!(ended(&jobs, callback).await, JobState::Cancelled);
    let detail = jobs.get(callback).await.unwrap().unwrap();
    let reason = detail.history.last().and_then(|e| e.error.clone()).unwrap();
    assert!(
        reason.contains(&format!("batch {} ended with 1 failed", enqueued.id)),
        "{reason}"
    );
    let progress = jobs.batches().get(enqueued.id).await.unwrap().unwrap();
    assert_eq!((progress.succeeded, progress.failed), (1, 1));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_enqueued_in_a_rolled_back_transaction_leaves_nothing() {
    let (_schema, store, jobs, server) = setup().await;
    let batch = || {
        NewBatch::new()
            .members((1..=3).map(PriceOrder::new))
            .on_any_end(ReportBatch::new("tx".to_owned()))
    };
    let mut tx = store.pool().begin().await.unwrap();
    let rolled_back = store.enqueue_batch_in(&mut tx, batch()).await.unwrap();
    tx.rollback().await.unwrap();
    assert!(jobs.batches().get(rolled_back.id).await.unwrap().is_none());
    for inserted in &rolled_back.members {
        assert!(jobs.get(inserted.id).await.unwrap().is_none());
    }
    let mut tx = store.pool().begin().await.unwrap();
    let committed = store.enqueue_batch_in(&mut tx, batch()).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        ended(&jobs, committed.callback.unwrap()).await,
        JobState::Succeeded
    );
    server.shutdown().await;
}
