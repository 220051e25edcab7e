//! Typed, durable background jobs for Rust.
//!
//! Mark a plain `async fn` with [`#[job]`](job); the macro adds a type beside
//! it whose `enqueue` stores the job and returns at once. A [`Server`] running
//! inside the same process picks jobs up on tokio tasks, retries failures with
//! backoff and records every state a job passes through.
//!
//! ```
//! use jobs::{job, Jobs};
//!
//! #[job]
//! async fn send_account_confirmation_email(user_id: i64) -> anyhow::Result<()> {
//!     println!("mailing user {user_id}");
//!     Ok(())
//! }
//!
//! pub async fn signup(jobs: Jobs) -> anyhow::Result<()> {
//!     SendAccountConfirmationEmail::enqueue(&jobs, 9).await?;
//!     Ok(())
//! }
//! ```
//!
//! Shared resources and the run's context are injected by type, settings go
//! in the attribute, and the generated `new` builds a request that carries
//! per-enqueue options (see [`job`] for everything it generates):
//!
//! ```
//! use std::time::Duration;
//! use jobs::{job, JobContext, Jobs, MemoryStore, Server, State};
//!
//! #[derive(Clone)]
//! struct Mailer; // a pool, a client, config: anything `Clone + Send + Sync`
//!
//! /// Mails the invoice; the generated `SendInvoice` carries this comment.
//! #[job(queue = "mail", max_attempts = 5, backoff = exponential("30s", "1h"), timeout = "2m")]
//! async fn send_invoice(invoice_id: i64, mailer: State<Mailer>, ctx: JobContext) -> anyhow::Result<()> {
//!     let Mailer = *mailer;
//!     println!("invoice {invoice_id}, attempt {} of {}", ctx.attempt(), ctx.max_attempts());
//!     Ok(())
//! }
//!
//! # async fn run() -> anyhow::Result<()> {
//! let store = MemoryStore::new();
//! let jobs = Jobs::new(store.clone());
//! SendInvoice::enqueue(&jobs, 7).await?;
//! SendInvoice::new(8).delay(Duration::from_secs(60)).priority(5).enqueue(&jobs).await?;
//! assert_eq!(SendInvoice::NAME, "send_invoice");
//!
//! let server = Server::builder(store).queues(["mail"]).state(Mailer).start().await?;
//! server.shutdown().await;
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
//! ```

pub use jobs_core::{
    Backoff, CancelOutcome, Cron, Error, IntoCron, Job, JobContext, JobDetail, JobEvent, JobId,
    JobOptions, JobRow, JobState, Jobs, ListJobs, MemoryStore, Misfire, Overlap, Permanent,
    QueueStateCount, RecurringOptions, RecurringRow, Request, Result, Server, ServerBuilder,
    ServerHandle, ServerId, ServerInfo, Snooze, State, Store, StoreError, StoreErrorKind,
    Timestamp, Tz, DEFAULT_MAX_ATTEMPTS, DEFAULT_QUEUE,
};
pub use jobs_macros::job;

/// The PostgreSQL store.
#[cfg(feature = "postgres")]
pub mod postgres {
    pub use jobs_postgres::*;
}

/// Helpers for your own tests: run what was enqueued on a paused clock, and
/// assert on it.
#[cfg(feature = "testing")]
pub mod testing {
    pub use jobs_core::testing::*;
}

// Used by the code `#[job]` generates; not public API, may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use core;
    pub use inventory;
    pub use jobs_core::{
        registered_jobs, Backoff, BoxError, BoxFuture, Error, Inject, IntoJobResult, Invocation,
        Job, JobArg, JobContext, JobId, JobOptions, JobRegistration, Jobs, Request, Requirement,
        State,
    };
    pub use serde;
    pub use serde_json;
    pub use std;

    use serde::de::{self, Deserializer, MapAccess, Visitor};
    use serde::ser::{self, SerializeStruct};
    use serde_json::{Map, Value};

    /// How the generated `Serialize`/`Deserialize` impls store one argument.
    ///
    /// Only [`assert_job_arg`] builds one, and only for a `T: JobArg`: every
    /// place that needs `T` to be storable calls it with the same span (the
    /// parameter's type), so rustc reports one `JobArg` error per parameter
    /// (identical diagnostics are deduplicated) instead of serde's bounds.
    pub struct ArgCodec<T> {
        to_json: fn(&T) -> serde_json::Result<Value>,
        from_json: fn(Value) -> serde_json::Result<T>,
    }

    impl<T> Clone for ArgCodec<T> {
        fn clone(&self) -> Self {
            *self
        }
    }

    impl<T> Copy for ArgCodec<T> {}

    /// Checks that `T` can be a job argument, and how to store it.
    pub fn assert_job_arg<T: JobArg>() -> ArgCodec<T> {
        ArgCodec {
            to_json: |value| serde_json::to_value(value),
            from_json: |value| serde_json::from_value(value),
        }
    }

    impl<T> ArgCodec<T> {
        /// Writes `value` as the field `key`.
        pub fn serialize_field<S: SerializeStruct>(
            self,
            state: &mut S,
            key: &'static str,
            value: &T,
        ) -> Result<(), S::Error> {
            let value = (self.to_json)(value).map_err(|e| {
                <S::Error as ser::Error>::custom(format_args!("argument `{key}`: {e}"))
            })?;
            state.serialize_field(key, &value)
        }

        /// Takes the field `key` out of the stored arguments. A missing field
        /// reads as `null`, so an `Option` parameter added later reads as `None`
        /// in jobs stored before.
        pub fn take<E: de::Error>(
            self,
            map: &mut Map<String, Value>,
            key: &'static str,
        ) -> Result<T, E> {
            match map.remove(key) {
                Some(value) => (self.from_json)(value)
                    .map_err(|e| E::custom(format_args!("argument `{key}`: {e}"))),
                None => (self.from_json)(Value::Null).map_err(|_| E::missing_field(key)),
            }
        }
    }

    /// Reads a job's stored arguments: a JSON object, by field name.
    pub fn args_map<'de, D: Deserializer<'de>>(
        deserializer: D,
        job: &'static str,
    ) -> Result<Map<String, Value>, D::Error> {
        struct ArgsVisitor(&'static str);

        impl<'de> Visitor<'de> for ArgsVisitor {
            type Value = Map<String, Value>;

            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "the arguments of job `{}` as a JSON object", self.0)
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Map::new())
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut map = Map::new();
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    map.insert(key, value);
                }
                Ok(map)
            }
        }

        deserializer.deserialize_map(ArgsVisitor(job))
    }

    /// What a `#[job]` function may return. Reported instead of
    /// `IntoJobResult`'s inner bounds, so the message names the return type.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is not a return type `#[job]` accepts",
        label = "a job returns `()` or `Result<(), E>`",
        note = "the error type `E` must convert into `Box<dyn std::error::Error + Send + Sync>`: return `anyhow::Result<()>`, or implement `std::error::Error` for your error type (for example with `thiserror`)"
    )]
    pub trait JobReturn {
        /// The outcome as the server sees it.
        fn into_job_result(self) -> Result<(), BoxError>;
    }

    #[diagnostic::do_not_recommend]
    impl<R: IntoJobResult> JobReturn for R {
        fn into_job_result(self) -> Result<(), BoxError> {
            IntoJobResult::into_job_result(self)
        }
    }

    /// Converts what a job function returned; the bound is checked at the
    /// return type's span.
    pub fn job_result<R: JobReturn>(result: R) -> Result<(), BoxError> {
        result.into_job_result()
    }

    /// A parameter the server can provide. Reported instead of `Inject`'s
    /// inner bounds, so the message names the parameter's type.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be given to a job by the server",
        label = "the server hands each job a clone of this resource",
        note = "a resource taken as `State<T>` must be `Clone + Send + Sync + 'static`; wrap it in an `Arc` if it is not `Clone`"
    )]
    pub trait InjectParam: Sized {
        /// See [`Inject::requirement`].
        fn requirement() -> Option<Requirement>;
        /// See [`Inject::inject`].
        fn inject(invocation: &Invocation) -> Result<Self, BoxError>;
    }

    #[diagnostic::do_not_recommend]
    impl<I: Inject> InjectParam for I {
        fn requirement() -> Option<Requirement> {
            I::requirement()
        }
        fn inject(invocation: &Invocation) -> Result<Self, BoxError> {
            I::inject(invocation)
        }
    }

    /// How the generated runner obtains one injected parameter; built only
    /// by [`injector`], for the same reason as [`ArgCodec`].
    pub struct Injector<I> {
        /// Takes the value out of the invocation.
        pub inject: fn(&Invocation) -> Result<I, BoxError>,
        /// The resource the server must have.
        pub requirement: fn() -> Option<Requirement>,
    }

    /// Checks that `I` can be injected, and how.
    pub fn injector<I: InjectParam>() -> Injector<I> {
        Injector {
            inject: I::inject,
            requirement: I::requirement,
        }
    }
}
