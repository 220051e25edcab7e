//! Helpers of the command line's tests: a fresh schema per test (the helper
//! the jobs-postgres tests use, dropped at the end, also when the test
//! panics), jobs seeded through the library in the states a test needs, and
//! the built `jobs` binary run against the schema.

#![allow(dead_code, unreachable_pub)]

use std::process::Command;

use jobs::store::{JobClaimParams, JobCompleteManyParams, JobCompletion, JobOutcome};
use jobs::{JobId, JobState, Jobs, NewJob, ServerId, Store};
use jobs_postgres::PgStore;
use serde_json::json;

#[path = "../../../jobs-postgres/tests/common/mod.rs"]
mod common;

pub use common::{database_url, TestSchema};

/// A migrated schema of its own, a store and a client on it.
pub struct Setup {
    pub schema: TestSchema,
    pub store: PgStore,
    pub jobs: Jobs,
}

impl Setup {
    pub async fn new() -> Self {
        let schema = TestSchema::new().await;
        let store = schema.store("jobs_cli_test").await;
        Self {
            jobs: Jobs::new(store.clone()),
            store,
            schema,
        }
    }

    /// Runs `jobs --schema <schema> args...` on the test database.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut all = vec!["--schema", self.schema.name.as_str()];
        all.extend_from_slice(args);
        run_with(&database_url(), &all)
    }

    /// Inserts a job of `name` in `queue` and drives it to `state` (through
    /// a claim and an outcome for `processing`, `succeeded` and `failed`;
    /// the failed attempt's error is `boom`).
    pub async fn job(&self, queue: &str, name: &str, state: JobState) -> JobId {
        let mut job = NewJob::new(name, json!({ "n": 1 }));
        job.queue = queue.to_owned();
        job.max_attempts = 1;
        match state {
            JobState::Scheduled => {
                job.run_at = jobs::RunAt::After(std::time::Duration::from_secs(3600));
            }
            // Claimed ahead of the jobs left waiting in its queue.
            JobState::Processing | JobState::Succeeded | JobState::Failed => {
                job.priority = i16::MAX;
            }
            _ => {}
        }
        let id = self.jobs.insert(vec![job]).await.expect("insert")[0].id;
        let outcome = match state {
            JobState::Processing => None,
            JobState::Succeeded => Some(JobOutcome::Succeeded),
            JobState::Failed => Some(JobOutcome::Failed {
                error: "boom".to_owned(),
            }),
            JobState::Cancelled => {
                self.jobs.cancel(id).await.expect("cancel");
                return id;
            }
            JobState::Deleted => {
                self.jobs.delete(id).await.expect("delete");
                return id;
            }
            _ => return id,
        };
        self.claim_and_complete(id, queue, name, outcome).await;
        id
    }

    /// Claims `id` (the waiting job of its queue and name with the highest
    /// priority, or the oldest) and
    /// completes it with `outcome`, or leaves it running for `None`.
    pub async fn claim_and_complete(
        &self,
        id: JobId,
        queue: &str,
        name: &str,
        outcome: Option<JobOutcome>,
    ) {
        let server = ServerId::new();
        let claimed = self
            .store
            .job_claim(JobClaimParams::new(server).queues([queue]).names([name]))
            .await
            .expect("claim");
        assert_eq!(
            claimed.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![id],
            "claiming job {id}"
        );
        if let Some(outcome) = outcome {
            let completion = JobCompletion::new(claimed[0].claim(), outcome);
            let applied = self
                .store
                .job_complete_many(JobCompleteManyParams::new(server, vec![completion]))
                .await
                .expect("complete");
            assert_eq!(applied, vec![true]);
        }
    }

    /// The state of job `id`.
    pub async fn state(&self, id: JobId) -> JobState {
        self.jobs
            .get(id)
            .await
            .expect("get")
            .expect("the job exists")
            .job
            .state
    }
}

/// What a run of the binary printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts the exit status, showing both outputs when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "exit status of the run:\n{self:#?}");
        self
    }

    /// stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// Runs the built `jobs` binary with `DATABASE_URL` set to `url`.
pub fn run_with(url: &str, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_jobs"))
        .args(args)
        .env("DATABASE_URL", url)
        .output()
        .expect("running the jobs binary");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The ids in a JSON array of jobs (`list --json`) or of ids.
pub fn ids(value: &serde_json::Value) -> Vec<JobId> {
    value
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|v| JobId(v.get("id").unwrap_or(v).as_i64().expect("an id")))
        .collect()
}
