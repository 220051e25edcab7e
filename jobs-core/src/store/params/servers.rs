//! Params of the `server_*` operations: heartbeats and the server records.

use std::time::Duration;

use crate::model::{ServerId, ServerInfo};

/// Record that a server is alive (insert or update its record).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerHeartbeatParams {
    /// The server; `heartbeat_at` is set by the store.
    pub info: ServerInfo,
}

impl ServerHeartbeatParams {
    /// A heartbeat of this server.
    pub fn new(info: ServerInfo) -> Self {
        Self { info }
    }
}

/// List known servers, most recently started first.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServerListParams {}

impl ServerListParams {
    /// Every known server.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Forget servers whose heartbeat is older than `stale_after`, and the one
/// named by `id` (a server at its shutdown).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerRemoveParams {
    /// Also remove this server, whatever its heartbeat.
    pub id: Option<ServerId>,
    /// Remove servers silent for longer than this.
    pub stale_after: Duration,
}

impl ServerRemoveParams {
    /// Remove the servers silent for longer than `stale_after`.
    pub fn silent_for(stale_after: Duration) -> Self {
        Self {
            id: None,
            stale_after,
        }
    }

    /// Also remove this server (at its shutdown).
    pub fn and_server(mut self, id: ServerId) -> Self {
        self.id = Some(id);
        self
    }
}
