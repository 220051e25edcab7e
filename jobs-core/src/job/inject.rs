//! Parameters the server provides rather than the store: the shared
//! [`State<T>`] resources and the [`JobContext`], through [`Inject`], checked
//! at server start by their [`Requirement`]s.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::job::{BoxError, JobContext, Permanent};

/// A shared resource given to the server once (`Server::builder(..).state(pool)`)
/// and asked for by type in a job's parameters, axum-style: `db: State<PgPool>`.
/// Never stored with the job. The macro recognises it by the name `State`, so
/// import it under that name.
///
/// ```
/// # extern crate jobs_core as jobs;
/// # use jobs_macros::job;
/// use jobs::{MemoryStore, Server, State};
///
/// #[derive(Clone)]
/// struct Mailer { from: String } // a pool, a client, config: anything `Clone + Send + Sync`
///
/// #[job]
/// async fn send_welcome(user_id: i64, mailer: State<Mailer>) -> anyhow::Result<()> {
///     println!("mail from {} to user {user_id}", mailer.from); // `State` derefs to `Mailer`
///     Ok(())
/// }
///
/// # async fn demo() -> jobs::Result<()> {
/// // The server is given one `Mailer`; starting without it is an error naming `send_welcome`.
/// let server = Server::builder(MemoryStore::new())
///     .state(Mailer { from: "noreply@example.com".into() })
///     .start()
///     .await?;
/// server.shutdown().await;
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct State<T>(pub T);

impl<T> std::ops::Deref for State<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for State<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// The shared resources a server was given, by type.
#[derive(Default, Clone)]
pub struct Resources {
    by_type: HashMap<TypeId, (&'static str, Arc<dyn Any + Send + Sync>)>,
}

impl Resources {
    /// Adds a resource, replacing one of the same type.
    pub fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.by_type.insert(
            TypeId::of::<T>(),
            (std::any::type_name::<T>(), Arc::new(value)),
        );
    }

    /// A clone of the resource of type `T`, if there is one.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.by_type
            .get(&TypeId::of::<T>())
            .and_then(|(_, value)| value.downcast_ref::<T>())
            .cloned()
    }

    /// Whether a resource of this type is present.
    pub fn contains(&self, type_id: TypeId) -> bool {
        self.by_type.contains_key(&type_id)
    }
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.by_type.values().map(|(name, _)| name))
            .finish()
    }
}

/// What a server hands to a job's generated runner for one attempt.
#[derive(Debug)]
pub struct Invocation {
    /// The stored arguments.
    pub args: serde_json::Value,
    /// The attempt's context.
    pub context: JobContext,
    /// The server's shared resources.
    pub resources: Arc<Resources>,
}

impl Invocation {
    /// Deserializes the arguments; the error names the job and quotes serde.
    pub fn args<T: DeserializeOwned>(&self, job: &'static str) -> Result<T, BoxError> {
        T::deserialize(&self.args)
            .map_err(|error| Box::new(Error::Deserialize { job, error }) as BoxError)
    }
}

/// A resource a job needs, checked at server start.
#[derive(Debug, Clone, Copy)]
pub struct Requirement {
    /// The resource's type.
    pub type_id: TypeId,
    /// Its name, for the error.
    pub type_name: &'static str,
}

/// A parameter the server provides rather than the store: [`State<T>`] of a
/// resource given with `Server::builder(..).state(..)`, and [`JobContext`].
///
/// `#[job]` requires it of every parameter it recognises as injected (by the
/// name `State` or `JobContext`), at the parameter's type, so both mistakes
/// it can meet there are reported with this trait's message: another crate's
/// `State` (axum's, in an axum application) and a resource that cannot be
/// shared. rustc's `on_unimplemented` cannot choose a note by the type, so
/// the message gives both fixes, the foreign `State` first: it is the one a
/// user cannot guess from rustc's own words. Its methods are what the
/// generated runner calls and are not public API.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be given to a job by the server",
    label = "the server gives a job only `jobs::State<T>` and `JobContext`",
    note = "`State<T>` in a `#[job]` must be `jobs::State`; `axum::extract::State` is not injected by the job server: import `jobs::State`, and rename axum's (`use axum::extract::State as AppState`) or write `jobs::State<T>` in the job's parameters (`#[job]` knows injected resources by the name `State`, so `jobs::State` keeps its name)",
    note = "the `T` of `jobs::State<T>` must be `Clone + Send + Sync + 'static`; wrap it in an `Arc` if it is not `Clone`"
)]
pub trait Inject: Sized {
    /// The resource that must be present at server start, if any.
    #[doc(hidden)]
    fn requirement() -> Option<Requirement>;
    /// Takes the value out of the attempt's invocation.
    #[doc(hidden)]
    fn inject(invocation: &Invocation) -> Result<Self, BoxError>;
}

// Reported as `State<T>: Inject` rather than as the inner `T: Clone` bound,
// so the message names the parameter's type and says what to do.
#[diagnostic::do_not_recommend]
impl<T: Clone + Send + Sync + 'static> Inject for State<T> {
    fn requirement() -> Option<Requirement> {
        Some(Requirement {
            type_id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
        })
    }
    fn inject(invocation: &Invocation) -> Result<Self, BoxError> {
        // Reached only by a job whose default queue the server does not serve
        // (start checks the others), put into a served queue by its request.
        // Permanent: the server's resources are fixed at start, so a retry
        // would fail the same way on this server and succeed only if another
        // server happened to claim it, hiding the misconfiguration. Once the
        // resource is given, `Jobs::retry` runs it again.
        invocation.resources.get::<T>().map(State).ok_or_else(|| {
            let type_name = std::any::type_name::<T>();
            Box::new(Permanent::new(format!(
                "job `{}` takes `State<{type_name}>`, but the server that claimed it from queue `{}` has no `{type_name}`; \
                 give it with `Server::builder(..).state(..)` on every server of that queue",
                invocation.context.name(),
                invocation.context.queue(),
            ))) as BoxError
        })
    }
}

// Not offered as "implemented for `JobContext`" under a `State<T>` error.
#[diagnostic::do_not_recommend]
impl Inject for JobContext {
    fn requirement() -> Option<Requirement> {
        None
    }
    fn inject(invocation: &Invocation) -> Result<Self, BoxError> {
        Ok(invocation.context.clone())
    }
}
