//! The registration every `#[job]` submits to `inventory`, and the list of
//! them a server starts from.

use crate::job::{BoxError, Invocation, JobOptions, Requirement};
use crate::store::BoxFuture;

/// A registered job type, submitted to `inventory` by `#[job]`.
#[derive(Debug)]
pub struct JobRegistration {
    /// The stored name.
    pub name: &'static str,
    /// The generated type's path, for errors.
    pub type_name: &'static str,
    /// Where the function is defined (`file:line`), for errors.
    pub location: &'static str,
    /// The attribute's defaults.
    pub options: fn() -> JobOptions,
    /// The resources its parameters ask for.
    pub requirements: fn() -> Vec<Requirement>,
    /// Runs one attempt.
    pub run: fn(Invocation) -> BoxFuture<'static, Result<(), BoxError>>,
}

inventory::collect!(JobRegistration);

/// Every job registered in this program.
pub fn registered_jobs() -> impl Iterator<Item = &'static JobRegistration> {
    inventory::iter::<JobRegistration>.into_iter()
}
