//! `MemoryStore`: the embedded default store. Not durable. (Being written.)

/// An in-memory store, for the quickstart and for tests. Not durable: jobs
/// are lost when the process exits.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {}
