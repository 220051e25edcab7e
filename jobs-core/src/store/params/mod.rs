//! What each [`Store`](crate::Store) operation takes and answers.
//!
//! Each operation takes one `#[non_exhaustive]` params struct, so a new field
//! breaks no caller (River's `*Params`). A constructor takes only what has no
//! sensible default, and only when each argument's type says its role (a
//! `JobId`, a `ServerId`, a `Vec<Claim>`); everything else is set by name with
//! a method, and stays at its documented default otherwise:
//!
//! ```
//! # use jobs_core::{JobClaimParams, ServerId};
//! # use std::time::Duration;
//! let claim = JobClaimParams::new(ServerId::new())
//!     .queues(["mail", "default"])
//!     .names(["send_invoice"])
//!     .limit(16)
//!     .lease(Duration::from_secs(30));
//! # let _ = claim;
//! ```

mod batches;
mod jobs;
mod leases;
mod queues;
mod recurring;
mod servers;

pub use batches::*;
pub use jobs::*;
pub use leases::*;
pub use queues::*;
pub use recurring::*;
pub use servers::*;

/// How many jobs a maintenance call (rescue, prune, due recurring jobs)
/// handles at most, unless told otherwise.
pub const MAINTENANCE_BATCH: u32 = 1000;
