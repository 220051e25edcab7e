//! Params and answers of the `lease_*` operations: renew the leases of
//! running attempts, rescue the jobs of dead servers.

use std::time::Duration;

use super::MAINTENANCE_BATCH;
use crate::model::{Claim, JobId, ServerId};

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
    /// Jobs never rescued by this call, whatever their lease says (default
    /// none): the rescuing server's own claims, which it still holds and
    /// renews, so that a server never rescues (and runs twice) its own
    /// healthy jobs when one of its renewals came late.
    pub except: Vec<JobId>,
}

impl Default for LeaseRescueParams {
    fn default() -> Self {
        Self {
            limit: MAINTENANCE_BATCH,
            except: Vec::new(),
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

    /// Never these jobs (the caller's own claims).
    pub fn except(mut self, ids: impl IntoIterator<Item = JobId>) -> Self {
        self.except = ids.into_iter().collect();
        self
    }
}

/// Record that running attempts are stuck: past their timeout, asked to
/// stop, and still not returned (a job that blocks its thread cannot be
/// stopped). Each report sets the job's `stuck_since` (kept until the
/// attempt ends) and adds a `processing` event with the reason to its
/// history; the job stays `processing`, its lease renewed, its slot taken.
/// A report whose claim is no longer current changes nothing.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LeaseReportStuckParams {
    /// The server holding the attempts.
    pub server_id: ServerId,
    /// Each stuck attempt's claim and why it is stuck.
    pub reports: Vec<(Claim, String)>,
}

impl LeaseReportStuckParams {
    /// This server reports these attempts as stuck.
    pub fn new(server_id: ServerId, reports: Vec<(Claim, String)>) -> Self {
        Self { server_id, reports }
    }
}
