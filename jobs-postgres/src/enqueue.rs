//! Transactional enqueue in the typed form: [`EnqueueIn`] on a request and
//! [`PgJobs`] on the `Jobs` client, which find the [`PgStore`] behind the
//! client and insert on the application's own connection or transaction.
//! They live here, not on `Jobs` itself, because core knows no SQL.

use std::future::Future;

use jobs_core::{Job, JobId, Jobs, Request};
use sqlx::PgConnection;

use crate::error::{Error, Result};
use crate::store::PgStore;

mod private {
    pub trait Sealed {}
    impl<J: jobs_core::Job> Sealed for jobs_core::Request<J> {}
    impl Sealed for jobs_core::Jobs {}
}

/// Enqueues a request in the application's own PostgreSQL transaction, as
/// plainly as `enqueue`: `SendAccountConfirmationEmail::new(user_id).enqueue_in(&jobs, &mut tx)`.
/// If the transaction rolls back, the job never existed; servers are woken
/// when it commits.
///
/// `jobs` must be a client on a [`PgStore`] (`Jobs::new(store)`); on any
/// other store, a layered one included, the call fails with
/// [`Error::NotPgStore`] and inserts nothing.
///
/// ```no_run
/// # mod jobs { pub use jobs_core::*; pub mod postgres { pub use jobs_postgres::*; } }
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct SendAccountConfirmationEmail { user_id: i64 }
/// # impl jobs::Job for SendAccountConfirmationEmail { const NAME: &'static str = "send_account_confirmation_email"; }
/// # impl SendAccountConfirmationEmail { fn new(user_id: i64) -> jobs::Request<Self> { jobs::Request::new(Self { user_id }) } }
/// use jobs::postgres::EnqueueIn;
///
/// async fn sign_up(jobs: &jobs::Jobs, pool: &sqlx::PgPool, email: &str) -> anyhow::Result<()> {
///     let mut tx = pool.begin().await?;
///     let user_id: i64 = sqlx::query_scalar("INSERT INTO users (email) VALUES ($1) RETURNING id")
///         .bind(email)
///         .fetch_one(&mut *tx)
///         .await?;
///     SendAccountConfirmationEmail::new(user_id).enqueue_in(jobs, &mut tx).await?;
///     tx.commit().await?;
///     Ok(())
/// }
/// ```
pub trait EnqueueIn: private::Sealed {
    /// Stores the job on `conn` (`&mut tx` for a transaction); its id.
    fn enqueue_in(
        self,
        jobs: &Jobs,
        conn: &mut PgConnection,
    ) -> impl Future<Output = Result<JobId>> + Send;
}

impl<J: Job> EnqueueIn for Request<J> {
    async fn enqueue_in(self, jobs: &Jobs, conn: &mut PgConnection) -> Result<JobId> {
        jobs.pg_store()?.enqueue_in(conn, self).await
    }
}

/// The `Jobs` client's transactional enqueue, on the [`PgStore`] behind it:
/// `jobs.enqueue_in(&mut tx, request)`. Fails with [`Error::NotPgStore`]
/// on a client on any other store.
///
/// ```no_run
/// # mod jobs { pub use jobs_core::*; pub mod postgres { pub use jobs_postgres::*; } }
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct ArchiveOrder { order_id: i64 }
/// # impl jobs::Job for ArchiveOrder { const NAME: &'static str = "archive_order"; }
/// use jobs::postgres::PgJobs;
/// use jobs::Request;
///
/// async fn close_orders(jobs: &jobs::Jobs, pool: &sqlx::PgPool, ids: Vec<i64>) -> anyhow::Result<()> {
///     let mut tx = pool.begin().await?;
///     sqlx::query("UPDATE orders SET closed = true WHERE id = ANY($1)")
///         .bind(&ids)
///         .execute(&mut *tx)
///         .await?;
///     let requests = ids.iter().map(|&order_id| Request::new(ArchiveOrder { order_id }));
///     jobs.enqueue_many_in(&mut tx, requests).await?;
///     tx.commit().await?;
///     Ok(())
/// }
/// ```
pub trait PgJobs: private::Sealed {
    /// The [`PgStore`] behind this client, or [`Error::NotPgStore`].
    fn pg_store(&self) -> Result<&PgStore>;

    /// Stores one job on `conn` (`&mut tx` for a transaction); its id.
    fn enqueue_in<J: Job>(
        &self,
        conn: &mut PgConnection,
        request: Request<J>,
    ) -> impl Future<Output = Result<JobId>> + Send;

    /// Stores many jobs of one type in one statement on `conn`; their ids in order.
    fn enqueue_many_in<J: Job>(
        &self,
        conn: &mut PgConnection,
        requests: impl IntoIterator<Item = Request<J>> + Send,
    ) -> impl Future<Output = Result<Vec<JobId>>> + Send;
}

impl PgJobs for Jobs {
    fn pg_store(&self) -> Result<&PgStore> {
        self.store_as::<PgStore>().ok_or(Error::NotPgStore)
    }

    async fn enqueue_in<J: Job>(
        &self,
        conn: &mut PgConnection,
        request: Request<J>,
    ) -> Result<JobId> {
        self.pg_store()?.enqueue_in(conn, request).await
    }

    async fn enqueue_many_in<J: Job>(
        &self,
        conn: &mut PgConnection,
        requests: impl IntoIterator<Item = Request<J>> + Send,
    ) -> Result<Vec<JobId>> {
        self.pg_store()?.enqueue_many_in(conn, requests).await
    }
}
