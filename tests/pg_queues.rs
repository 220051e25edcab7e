//! Queue pause and resume across servers on PostgreSQL (issue 15): two
//! servers, each on a store of its own (as two processes are), serve a
//! queue that a third store pauses; jobs enqueued meanwhile wait, and the
//! resume wakes both servers through NOTIFY, so the jobs run long before
//! either server's next poll. And a key limit declared on a job holds
//! across two servers.

#![cfg(feature = "postgres")]

mod pg_support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use jobs::{job, JobState, Jobs, Server};
use pg_support::{eventually, TestSchema};

const JOBS: u32 = 20;
static RUNS: AtomicU32 = AtomicU32::new(0);

#[job(queue = "it_paused")]
async fn paused_queue_job(n: u32) -> anyhow::Result<()> {
    let _ = n;
    RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_queue_waits_on_every_server_and_a_resume_wakes_them() {
    let schema = TestSchema::new().await;
    // Polls far apart: only the wake-up can make the resumed jobs run
    // within the deadline below.
    let poll = Duration::from_secs(120);
    let mut servers = Vec::new();
    for i in 0..2 {
        let store = schema.store(&format!("{}_s{i}", schema.name)).await;
        let server = Server::builder(store)
            .queues(["it_paused"])
            .concurrency(4)
            .poll_interval(poll)
            .start()
            .await
            .unwrap();
        servers.push(server);
    }
    let client = schema.store(&format!("{}_client", schema.name)).await;
    let jobs = Jobs::new(client.clone());
    jobs.queues().pause("it_paused").await.unwrap();
    let mut ids = Vec::new();
    for n in 0..JOBS {
        ids.push(PausedQueueJob::enqueue(&jobs, n).await.unwrap());
    }
    // The inserts woke both servers; give them time to claim (they must not).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        RUNS.load(Ordering::SeqCst),
        0,
        "a job of the paused queue ran"
    );
    for id in &ids {
        let job = jobs.get(*id).await.unwrap().unwrap().job;
        assert_eq!(
            job.state,
            JobState::Enqueued,
            "job {id} left the paused queue"
        );
    }
    let listed = jobs.queues().list().await.unwrap();
    assert!(
        listed.iter().any(|q| q.queue == "it_paused" && q.paused),
        "{listed:?}"
    );

    jobs.queues().resume("it_paused").await.unwrap();
    eventually("every resumed job to run", poll / 4, || async {
        (RUNS.load(Ordering::SeqCst) == JOBS).then_some(())
    })
    .await;
    for id in &ids {
        let job = jobs.get(*id).await.unwrap().unwrap().job;
        assert_eq!(job.state, JobState::Succeeded);
    }
    for server in servers {
        server.shutdown().await;
    }
    client.close().await;
    schema.drop().await;
}

/// How many `sync_account` jobs run now, per account, and the most at once.
static SYNCING: std::sync::Mutex<Vec<(i64, u32, u32)>> = std::sync::Mutex::new(Vec::new());

fn syncing(account_id: i64, change: i32) {
    let mut syncing = SYNCING.lock().unwrap();
    let entry = match syncing.iter_mut().find(|(a, _, _)| *a == account_id) {
        Some(entry) => entry,
        None => {
            syncing.push((account_id, 0, 0));
            syncing.last_mut().unwrap()
        }
    };
    entry.1 = entry.1.checked_add_signed(change).unwrap();
    entry.2 = entry.2.max(entry.1);
}

#[job(queue = "it_keyed", key_limit(by = [account_id]))]
async fn sync_account(account_id: i64, n: u32) -> anyhow::Result<()> {
    let _ = n;
    syncing(account_id, 1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    syncing(account_id, -1);
    Ok(())
}

/// Two servers of 8 slots each, on stores of their own, run the syncs of
/// three accounts, ten each, declared `key_limit(by = [account_id])`: never
/// two of one account at once, every job at its first attempt (a job whose
/// key was busy waited without spending one).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_limit_runs_one_job_per_key_at_a_time_across_servers() {
    let schema = TestSchema::new().await;
    let client = schema.store(&format!("{}_client", schema.name)).await;
    let jobs = Jobs::new(client.clone());
    let mut ids = Vec::new();
    for n in 0..10 {
        for account_id in [1, 2, 3] {
            ids.push(SyncAccount::enqueue(&jobs, account_id, n).await.unwrap());
        }
    }
    let mut servers = Vec::new();
    for i in 0..2 {
        let store = schema.store(&format!("{}_k{i}", schema.name)).await;
        let server = Server::builder(store)
            .queues(["it_keyed"])
            .concurrency(8)
            .poll_interval(Duration::from_millis(50))
            .start()
            .await
            .unwrap();
        servers.push(server);
    }
    for id in &ids {
        eventually("every sync to succeed", Duration::from_secs(60), || async {
            let job = jobs.get(*id).await.unwrap().unwrap().job;
            (job.state == JobState::Succeeded).then_some(())
        })
        .await;
    }
    for server in servers {
        server.shutdown().await;
    }
    for id in &ids {
        assert_eq!(jobs.get(*id).await.unwrap().unwrap().job.attempt, 1);
    }
    let syncing = SYNCING.lock().unwrap().clone();
    assert_eq!(syncing.len(), 3, "{syncing:?}");
    for (account_id, running, most) in syncing {
        assert_eq!(running, 0);
        assert_eq!(most, 1, "account {account_id} ran {most} syncs at once");
    }
    client.close().await;
    schema.drop().await;
}
