//! The registration every `#[job]` submits to `inventory`, the list of
//! them a server starts from, and the check that no two share a stored name.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::job::{Invocation, JobOptions, Requirement, RunResult};
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
    pub run: fn(Invocation) -> BoxFuture<'static, RunResult>,
}

inventory::collect!(JobRegistration);

/// Every job registered in this program.
pub fn registered_jobs() -> impl Iterator<Item = &'static JobRegistration> {
    inventory::iter::<JobRegistration>.into_iter()
}

/// One line per registration whose stored name an earlier one already has,
/// naming both: what a server refuses to start on and an enqueue refuses.
pub(crate) fn duplicate_names<'a>(
    registrations: impl IntoIterator<Item = &'a JobRegistration>,
) -> Vec<String> {
    let mut first_by_name: HashMap<&str, &JobRegistration> = HashMap::new();
    let mut problems = Vec::new();
    for registration in registrations {
        match first_by_name.get(registration.name) {
            Some(first) => problems.push(format!(
                "two jobs are stored as `{}`: `{}` at {} and `{}` at {}; give one a different `#[job(name = \"...\")]`",
                registration.name,
                first.type_name,
                first.location,
                registration.type_name,
                registration.location
            )),
            None => {
                first_by_name.insert(registration.name, registration);
            }
        }
    }
    problems.sort();
    problems
}

/// Fails with [`Error::DuplicateJobName`] when two jobs of this program share
/// a stored name. A process that only enqueues never starts a server, so
/// the first enqueue checks; the registry cannot change while the program
/// runs, so the answer is computed once and every later call reads it.
pub(crate) fn check_unique_names() -> Result<()> {
    static DUPLICATES: OnceLock<Option<String>> = OnceLock::new();
    let duplicates = DUPLICATES.get_or_init(|| {
        let problems = duplicate_names(registered_jobs());
        (!problems.is_empty()).then(|| problems.join("\n"))
    });
    match duplicates {
        None => Ok(()),
        Some(problems) => Err(Error::DuplicateJobName(problems.clone())),
    }
}
