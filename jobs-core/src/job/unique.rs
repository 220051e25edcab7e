//! Unique jobs: [`Unique`], what a job type or one enqueue declares, and
//! [`UniqueKey`], what it becomes for the store, which enforces it with an
//! index over the key (PostgreSQL) or a map of the keys held (memory).

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::model::JobState;

/// At most one job with the same key at a time: an enqueue whose key is held
/// by another job stores nothing and returns that job's id, saying it was a
/// duplicate ([`Inserted::duplicate`](crate::Inserted)). Declared on the job
/// (`#[job(unique)]`, `#[job(unique(args(user_id), period = "1h"))]`) or for
/// one enqueue ([`Request::unique`](crate::Request::unique),
/// [`Request::not_unique`](crate::Request::not_unique)); honoured by
/// `enqueue`, `enqueue_many`, the transactional enqueue and recurring runs
/// alike.
///
/// **The key** is the job's stored name and a SHA-256 digest of the chosen
/// arguments (all of them unless [`by_args`](Self::by_args) names some) in
/// a canonical JSON form: the order of fields does not matter, their values
/// do. The queue and the options of the enqueue are not part of it.
///
/// **Who holds it.** A job holds its key while it is unfinished
/// (`awaiting`, `scheduled`, `enqueued`, `processing`, and between attempts, which are
/// `scheduled`), and never once `deleted`. Whether it still holds it once
/// it has finished depends on the choice made here:
///
/// | made with | holds after `succeeded` | after `failed` | after `cancelled` |
/// | --- | --- | --- | --- |
/// | [`while_unfinished()`](Self::while_unfinished) | no | no | no |
/// | [`per_period(p)`](Self::per_period) | yes | no | no |
///
/// and each can be changed with [`held_after`](Self::held_after).
///
/// - `while_unfinished()`: "never two of these waiting or running at once".
///   Once the job has finished, the same arguments can be enqueued again.
/// - `per_period(Duration::from_secs(3600))`: "at most one of these per
///   hour". The hour is the job's **run time**, not when it was enqueued,
///   in periods counted from the Unix epoch in UTC (clock hours): a job
///   delayed to 10:30 and one for 10:59 are duplicates; one for 11:00 is
///   not. A succeeded job keeps its period, so a second one in the same
///   hour is a duplicate; a failed or cancelled one frees it, so that the
///   work can be enqueued again.
///
/// A held key also stops a manual retry of an older job with the same key
/// (a `Conflict` naming the holder): retrying it would make two.
///
/// ```
/// # use jobs_core as jobs;
/// use std::time::Duration;
/// use jobs::{JobState, Unique};
///
/// // One sync per customer waiting or running at once, whatever else the job takes.
/// const ONE_SYNC_AT_A_TIME: Unique = Unique::while_unfinished().by_args(&["customer_id"]);
/// // At most one report a day per account, even if the last one failed.
/// const DAILY: Unique = Unique::per_period(Duration::from_secs(24 * 3600))
///     .by_args(&["account_id"])
///     .held_after(JobState::Failed, true);
/// # let _ = (ONE_SYNC_AT_A_TIME, DAILY);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unique {
    args: Option<&'static [&'static str]>,
    period: Option<Duration>,
    held_after: HeldAfter,
}

impl Unique {
    /// Unique while a job with the key is unfinished; see the table above.
    pub const fn while_unfinished() -> Self {
        Self {
            args: None,
            period: None,
            held_after: HeldAfter {
                succeeded: false,
                failed: false,
                cancelled: false,
            },
        }
    }

    /// Unique within each period of run time (counted from the Unix epoch,
    /// UTC), held after success too; see the table above. A zero period is
    /// taken as one microsecond.
    pub const fn per_period(period: Duration) -> Self {
        Self {
            args: None,
            period: Some(period),
            held_after: HeldAfter {
                succeeded: true,
                failed: false,
                cancelled: false,
            },
        }
    }

    /// Only these arguments make the key (by their names in the `#[job]`
    /// function; `#[job(unique(args(...)))]` checks them at compile time).
    pub const fn by_args(mut self, args: &'static [&'static str]) -> Self {
        self.args = Some(args);
        self
    }

    /// Whether a job that ended in `state` (`Succeeded`, `Failed` or
    /// `Cancelled`) still holds its key. Other states are ignored: unfinished
    /// jobs always hold it, deleted ones never do.
    pub const fn held_after(mut self, state: JobState, held: bool) -> Self {
        match state {
            JobState::Succeeded => self.held_after.succeeded = held,
            JobState::Failed => self.held_after.failed = held,
            JobState::Cancelled => self.held_after.cancelled = held,
            _ => {}
        }
        self
    }

    /// The arguments that make the key; `None`: all of them.
    pub fn args(&self) -> Option<&'static [&'static str]> {
        self.args
    }

    /// The period, if the key is per period of run time.
    pub fn period(&self) -> Option<Duration> {
        self.period
    }

    /// The key of a job named `name` with these stored arguments. `Err`
    /// names an argument `by_args` chose that the arguments lack.
    pub fn key_of(&self, name: &str, args: &Value) -> Result<UniqueKey, String> {
        Ok(UniqueKey {
            key: args_key(name, args, self.args)?,
            period: self.period,
            held_after: self.held_after,
        })
    }
}

/// `name:` and the SHA-256 of the canonical JSON of the `chosen` arguments
/// (all of them if `None`): the same arguments give the same key whatever
/// the order of their fields. `Err` names a chosen argument `args` lacks.
pub(crate) fn args_key(
    name: &str,
    args: &Value,
    chosen: Option<&[&str]>,
) -> Result<String, String> {
    let mut canonical = String::new();
    match chosen {
        None => write_canonical(args, &mut canonical),
        Some(chosen) => {
            let mut chosen: Vec<&str> = chosen.to_vec();
            chosen.sort_unstable();
            chosen.dedup();
            canonical.push('{');
            for (i, arg) in chosen.into_iter().enumerate() {
                let value = args.get(arg).ok_or_else(|| arg.to_owned())?;
                if i > 0 {
                    canonical.push(',');
                }
                write_canonical(&Value::String(arg.to_owned()), &mut canonical);
                canonical.push(':');
                write_canonical(value, &mut canonical);
            }
            canonical.push('}');
        }
    }
    let digest = Sha256::digest(canonical.as_bytes());
    let mut key = String::with_capacity(name.len() + 1 + 64);
    key.push_str(name);
    key.push(':');
    for byte in digest {
        let _ = write!(key, "{byte:02x}");
    }
    Ok(key)
}

/// JSON with every object's keys in sorted order, so that the key does not
/// depend on field order (nor on whether serde_json keeps insertion order,
/// which a feature of another crate in the build can switch on).
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut fields: Vec<(&String, &Value)> = map.iter().collect();
            fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (name, value)) in fields.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(&Value::String(name.clone()), out);
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        // Scalars print as compact JSON (strings quoted and escaped).
        scalar => {
            let _ = write!(out, "{scalar}");
        }
    }
}

/// Which finished states keep holding a unique key (see [`Unique`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[non_exhaustive]
pub struct HeldAfter {
    /// After `succeeded`.
    pub succeeded: bool,
    /// After `failed` (for good: between attempts a job is `scheduled`).
    pub failed: bool,
    /// After `cancelled`.
    pub cancelled: bool,
}

impl HeldAfter {
    /// Whether a job in `state` holds its key.
    pub fn holds(self, state: JobState) -> bool {
        match state {
            JobState::Awaiting
            | JobState::Scheduled
            | JobState::Enqueued
            | JobState::Processing => true,
            JobState::Succeeded => self.succeeded,
            JobState::Failed => self.failed,
            JobState::Cancelled => self.cancelled,
            JobState::Deleted => false,
        }
    }

    /// As stored by PostgreSQL: bit 0 succeeded, bit 1 failed, bit 2 cancelled.
    pub fn bits(self) -> i16 {
        i16::from(self.succeeded) | i16::from(self.failed) << 1 | i16::from(self.cancelled) << 2
    }

    /// The inverse of [`bits`](Self::bits).
    pub fn from_bits(bits: i16) -> Self {
        Self {
            succeeded: bits & 1 != 0,
            failed: bits & 2 != 0,
            cancelled: bits & 4 != 0,
        }
    }
}

/// A job's unique key as the store enforces it ([`NewJob::unique`](crate::NewJob)).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct UniqueKey {
    /// The job's name and the digest of its chosen arguments. With a period
    /// the store appends `@` and the run time's period number (the run time
    /// in microseconds since the epoch divided by the period's, rounded
    /// down), so the stored key says which period it holds.
    pub key: String,
    /// The period, if per period of run time.
    pub period: Option<Duration>,
    /// Which finished states keep holding it.
    pub held_after: HeldAfter,
}

impl UniqueKey {
    /// A key given as it is, for stores' tests and for jobs enqueued
    /// without a [`Job`](crate::Job) type.
    pub fn new(key: impl Into<String>, period: Option<Duration>, held_after: HeldAfter) -> Self {
        Self {
            key: key.into(),
            period,
            held_after,
        }
    }

    /// The period in microseconds (at least 1), if any.
    pub fn period_micros(&self) -> Option<i64> {
        self.period
            .map(|p| i64::try_from(p.as_micros()).unwrap_or(i64::MAX).max(1))
    }

    /// A key with this period in microseconds and these holding states,
    /// the form a store keeps them in (see [`HeldAfter::bits`]).
    pub fn from_stored(key: String, period_micros: Option<i64>, held_after_bits: i16) -> Self {
        Self {
            key,
            period: period_micros.map(|us| Duration::from_micros(us.max(1).unsigned_abs())),
            held_after: HeldAfter::from_bits(held_after_bits),
        }
    }

    /// The key as stored for a job that runs at `run_at`.
    pub fn stored_for(&self, run_at: crate::Timestamp) -> String {
        match self.period_micros() {
            None => self.key.clone(),
            Some(period) => {
                let bucket = run_at.timestamp_micros().div_euclid(period);
                format!("{}@{bucket}", self.key)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_order_does_not_change_the_key_and_values_do() {
        let unique = Unique::while_unfinished();
        // Built by hand so the two maps differ in insertion order even if
        // serde_json keeps it.
        let mut a = serde_json::Map::new();
        a.insert("b".into(), json!(2));
        a.insert("a".into(), json!({"y": [1, {"q": 1, "p": 2}], "x": "s"}));
        let mut b = serde_json::Map::new();
        b.insert("a".into(), json!({"x": "s", "y": [1, {"p": 2, "q": 1}]}));
        b.insert("b".into(), json!(2));
        let key_a = unique.key_of("sync", &Value::Object(a)).unwrap();
        let key_b = unique.key_of("sync", &Value::Object(b)).unwrap();
        assert_eq!(key_a, key_b);
        assert!(key_a.key.starts_with("sync:"), "{}", key_a.key);
        let other = unique.key_of("sync", &json!({"a": 1, "b": 3})).unwrap();
        assert_ne!(key_a.key, other.key);
        let other_name = unique.key_of("other", &json!({"a": 1, "b": 3})).unwrap();
        assert_ne!(other.key, other_name.key);
    }

    #[test]
    fn chosen_arguments_alone_make_the_key() {
        let unique = Unique::while_unfinished().by_args(&["customer_id"]);
        let a = unique
            .key_of("sync", &json!({"customer_id": 7, "full": true}))
            .unwrap();
        let b = unique
            .key_of("sync", &json!({"full": false, "customer_id": 7}))
            .unwrap();
        assert_eq!(a.key, b.key);
        let c = unique.key_of("sync", &json!({"customer_id": 8})).unwrap();
        assert_ne!(a.key, c.key);
        assert_eq!(
            unique.key_of("sync", &json!({"full": true})).unwrap_err(),
            "customer_id"
        );
        // The chosen arguments' own order does not matter either.
        let two = Unique::while_unfinished().by_args(&["b", "a"]);
        let two_again = Unique::while_unfinished().by_args(&["a", "b", "a"]);
        let args = json!({"a": 1, "b": 2, "c": 3});
        assert_eq!(
            two.key_of("j", &args).unwrap().key,
            two_again.key_of("j", &args).unwrap().key
        );
    }

    #[test]
    fn which_states_hold_the_key() {
        let unfinished = Unique::while_unfinished().held_after;
        let period = Unique::per_period(Duration::from_secs(60)).held_after;
        for state in [
            JobState::Scheduled,
            JobState::Enqueued,
            JobState::Processing,
        ] {
            assert!(unfinished.holds(state) && period.holds(state));
        }
        assert!(!unfinished.holds(JobState::Succeeded));
        assert!(period.holds(JobState::Succeeded));
        for state in [JobState::Failed, JobState::Cancelled, JobState::Deleted] {
            assert!(!unfinished.holds(state) && !period.holds(state));
        }
        let all = Unique::while_unfinished()
            .held_after(JobState::Succeeded, true)
            .held_after(JobState::Failed, true)
            .held_after(JobState::Cancelled, true)
            .held_after(JobState::Deleted, true)
            .held_after;
        assert_eq!(all.bits(), 7);
        assert!(!all.holds(JobState::Deleted));
        assert_eq!(period.bits(), 1);
    }

    #[test]
    fn a_period_is_numbered_from_the_epoch_by_run_time() {
        let key = Unique::per_period(Duration::from_secs(3600))
            .key_of("report", &json!({}))
            .unwrap();
        let at = |s: &str| s.parse::<crate::Timestamp>().unwrap();
        let ten_thirty = key.stored_for(at("2026-12-03T10:30:00Z"));
        assert_eq!(
            ten_thirty,
            key.stored_for(at("2026-12-03T10:59:59.999999Z"))
        );
        assert_ne!(ten_thirty, key.stored_for(at("2026-12-03T11:00:00Z")));
        assert!(ten_thirty.starts_with(&key.key) && ten_thirty.contains('@'));
        let plain = Unique::while_unfinished()
            .key_of("report", &json!({}))
            .unwrap();
        assert_eq!(plain.stored_for(at("2026-12-03T10:30:00Z")), plain.key);
    }
}
