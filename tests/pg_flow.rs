//! Job flow on PostgreSQL, end to end with a server: a typed continuation
//! runs on its parent's output, a chain of continuations runs in order, and
//! a continuation on success of a parent that fails is cancelled naming it.

#![cfg(feature = "postgres")]

mod pg_support;

use std::time::Duration;

use jobs::postgres::PgStore;
use jobs::{job, JobState, Jobs, Server};
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

async fn setup() -> (TestSchema, PgStore, Jobs, Server) {
    let schema = TestSchema::new().await;
    let store = schema.store(&format!("{}_flow", schema.name)).await;
    let jobs = Jobs::new(store.clone());
    let server = Server::builder(store.clone())
        .queues(["it_flow"])
        .poll_interval(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    (schema, store, jobs, server)
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
    let (_schema, _store, jobs, server) = setup().await;
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
