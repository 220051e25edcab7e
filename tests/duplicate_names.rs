//! Two `#[job]` functions stored under one name, in a program that only
//! enqueues as well as in one that serves. Its own test binary: the clash
//! is program-wide, so it would break every other test it shared one with.
//! On the in-memory store: the check is made before any store is asked.

use jobs::{Error, Jobs, MemoryStore, Server};

mod signup {
    #[jobs::job]
    pub(crate) async fn send_email() -> anyhow::Result<()> {
        Ok(())
    }
}

mod billing {
    #[jobs::job]
    pub(crate) async fn send_email() -> anyhow::Result<()> {
        Ok(())
    }
}

/// The clash names the stored name, both generated types and both places.
fn assert_names_both(message: &str) {
    assert!(
        message.contains("two jobs are stored as `send_email`"),
        "{message}"
    );
    assert!(
        message.contains("signup::SendEmail") && message.contains("billing::SendEmail"),
        "{message}"
    );
    assert_eq!(
        message.matches("tests/duplicate_names.rs:").count(),
        2,
        "both locations: {message}"
    );
    assert!(message.contains("#[job(name = \"...\")]"), "{message}");
}

#[tokio::test]
async fn enqueue_refuses_two_jobs_with_one_stored_name_naming_both() {
    let store = MemoryStore::new();
    let jobs = Jobs::new(store.clone());
    for _ in 0..2 {
        // Computed once, reported every time.
        let error = signup::SendEmail::enqueue(&jobs).await.unwrap_err();
        assert!(matches!(error, Error::DuplicateJobName(_)), "{error:?}");
        assert_names_both(&error.to_string());
    }
    let error = jobs
        .enqueue_many([billing::SendEmail::new()])
        .await
        .unwrap_err();
    assert!(matches!(error, Error::DuplicateJobName(_)), "{error:?}");
    let stored = jobs.list(jobs::ListJobs::new()).await.unwrap();
    assert!(stored.is_empty(), "nothing was stored: {stored:?}");
}

#[tokio::test]
async fn a_server_refuses_to_start_on_two_jobs_with_one_stored_name() {
    let error = Server::builder(MemoryStore::new())
        .start()
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error:?}");
    assert_names_both(&error.to_string());
}
