//! The store conformance suite on `MemoryStore`: one test per case.
#![cfg(feature = "conformance")]

jobs_core::conformance_tests!(async { jobs_core::MemoryStore::new() });

/// `run_all` runs the same cases one after another.
#[tokio::test(flavor = "multi_thread")]
async fn run_all_passes_on_memory_store() {
    jobs_core::conformance::run_all(|| async { jobs_core::MemoryStore::new() }).await;
}
