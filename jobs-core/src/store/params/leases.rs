//! Params and answers of the `lease_*` operations: renew the leases of
//! running attempts, rescue the jobs of dead servers.

use std::time::Duration;

use super::MAINTENANCE_BATCH;
use crate::model::{Claim, ServerId};

/// Extend the leases of running attempts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LeaseRenewManyParams {
    /// The server holding them.
    pub server_id: ServerId,
    /// The attempts.
    pub claims: Vec<Claim>,
    /// The new lease, from now on the store's clock.
    pub lease: Duration,
}

impl LeaseRenewManyParams {
    /// This server renews these claims for `lease` from now.
    pub fn new(server_id: ServerId, claims: Vec<Claim>, lease: Duration) -> Self {
        Self {
            server_id,
            claims,
            lease,
        }
    }
}

/// What a lease renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaseStatus {
    /// Still ours, renewed.
    Held,
    /// Still ours and renewed, but a user asked to cancel the job.
    CancelRequested,
    /// No longer ours (rescued, claimed again, finished): the attempt must stop
    /// and its result will be ignored.
    Lost,
}

/// Make the jobs of dead servers runnable again: every `processing` job whose
/// lease ran out is retried (`scheduled` now, the error saying the lease
/// expired), or `failed` when it has no attempts left, or `cancelled` when a
/// user had asked to cancel it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LeaseRescueParams {
    /// At most this many jobs per call (default [`MAINTENANCE_BATCH`]).
    pub limit: u32,
}

impl Default for LeaseRescueParams {
    fn default() -> Self {
        Self {
            limit: MAINTENANCE_BATCH,
        }
    }
}

impl LeaseRescueParams {
    /// A rescue of at most [`MAINTENANCE_BATCH`] jobs.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most this many jobs.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }
}
