//! Unique jobs on PostgreSQL through the typed API: the key is held from the
//! insert inside the application's transaction, so a second enqueue of the
//! same key waits for that transaction, gets a duplicate if it commits and
//! stores its own job if it rolls back (the advisory-lock design of Oban's
//! open-source engine lost the job in that case, oban#1093). Batches and the
//! plain enqueue honour the key alike, and a recurring job of a unique type
//! fires no second run while its first is unfinished.

#![cfg(feature = "postgres")]

mod pg_support;

use std::time::Duration;

use jobs::postgres::{EnqueueIn, PgJobs, PgStore};
use jobs::{job, JobState, Jobs};
use pg_support::TestSchema;

#[job(queue = "it_unique", unique(by = [customer_id]))]
async fn sync_customer(customer_id: i64, full: bool) -> anyhow::Result<()> {
    let _ = (customer_id, full);
    Ok(())
}

async fn setup() -> (TestSchema, PgStore, Jobs) {
    let schema = TestSchema::new().await;
    let store = schema.store(&format!("{}_unique", schema.name)).await;
    let jobs = Jobs::new(store.clone());
    (schema, store, jobs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_holder_frees_the_key_for_the_waiting_enqueue() {
    let (_schema, store, jobs) = setup().await;

    // A transaction holds the key, uncommitted.
    let mut tx = store.pool().begin().await.unwrap();
    let in_tx = SyncCustomer::new(7, true)
        .enqueue_in(&jobs, &mut tx)
        .await
        .unwrap();

    // Another enqueue of the key waits for it.
    let waiting = tokio::spawn({
        let jobs = jobs.clone();
        async move { SyncCustomer::new(7, false).enqueue_detailed(&jobs).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the second enqueue waits for the holder's transaction"
    );

    tx.rollback().await.unwrap();
    let inserted = waiting.await.unwrap().unwrap();
    assert!(
        !inserted.duplicate,
        "the holder rolled back: this job is stored"
    );
    assert_ne!(inserted.id, in_tx);
    assert!(
        jobs.get(in_tx).await.unwrap().is_none(),
        "the rolled-back job never existed"
    );
    let stored = jobs.get(inserted.id).await.unwrap().unwrap().job;
    assert_eq!(stored.args["full"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_holder_makes_the_waiting_enqueue_a_duplicate() {
    let (_schema, store, jobs) = setup().await;
    let mut tx = store.pool().begin().await.unwrap();
    let holder = jobs
        .enqueue_in(&mut tx, SyncCustomer::new(8, true))
        .await
        .unwrap();
    let waiting = tokio::spawn({
        let jobs = jobs.clone();
        async move { SyncCustomer::new(8, false).enqueue_detailed(&jobs).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished());
    tx.commit().await.unwrap();
    let inserted = waiting.await.unwrap().unwrap();
    assert!(inserted.duplicate);
    assert_eq!(inserted.id, holder);

    // In a transaction too, a duplicate says so and stores nothing.
    let mut tx = store.pool().begin().await.unwrap();
    let again = store
        .enqueue_detailed_in(&mut tx, SyncCustomer::new(8, false))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.id, holder);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_per_request_rules_and_recurring_runs_honour_the_key() {
    let (_schema, store, jobs) = setup().await;
    let inserted = jobs
        .enqueue_many_detailed([
            SyncCustomer::new(1, true),
            SyncCustomer::new(2, true),
            SyncCustomer::new(1, false),
            SyncCustomer::new(1, false).not_unique(),
        ])
        .await
        .unwrap();
    let duplicates: Vec<bool> = inserted.iter().map(|i| i.duplicate).collect();
    assert_eq!(duplicates, [false, false, true, false]);
    assert_eq!(inserted[2].id, inserted[0].id);
    // The transactional batch too.
    let mut tx = store.pool().begin().await.unwrap();
    let ids = jobs
        .enqueue_many_in(
            &mut tx,
            [SyncCustomer::new(2, false), SyncCustomer::new(3, false)],
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        ids[0], inserted[1].id,
        "customer 2 is held by the earlier batch"
    );

    // A recurring run is an enqueue like any other: its key is kept with the
    // recurring job, and a trigger while a run waits gives that run.
    jobs.recurring()
        .add_or_update("sync-9", "0 3 * * *", SyncCustomer::new(9, true))
        .await
        .unwrap();
    let first = jobs.recurring().trigger("sync-9").await.unwrap();
    let second = jobs.recurring().trigger("sync-9").await.unwrap();
    assert_eq!(first, second, "the unfinished run holds the key");
    let job = jobs.get(first).await.unwrap().unwrap().job;
    assert_eq!(job.state, JobState::Enqueued);
    assert!(job
        .unique_key
        .is_some_and(|key| key.starts_with("sync_customer:")));
}
