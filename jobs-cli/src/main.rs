//! `jobs`, the operators' command line of the `jobs` framework: migrate the
//! PostgreSQL schema, see the queues, servers and stranded jobs, list and
//! show jobs, retry, cancel or delete them (by id, or every job a filter
//! picks, in one statement), manage recurring jobs, and pause or resume
//! queues.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@localhost/app jobs status
//! jobs list --state failed --queue mail
//! jobs retry --all --state failed --name send_invoice --yes
//! ```
//!
//! It talks to the store only through `jobs::Jobs` and `PgStore`, so it
//! sees and changes jobs exactly as the application's own client does. Run
//! `jobs help` for every option; the repository's README shows each
//! subcommand. Its flags and tables may change between releases (like the
//! inner crates, it makes no semver promise); `--json` prints the model
//! types' serde form.

mod args;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;
use jobs::postgres::{PgStore, PgStoreOptions};
use jobs::{Jobs, StoreError, StoreErrorKind};
use sqlx::PgPool;
use sqlx::{ConnectOptions, Connection as _};

use crate::args::{Cli, Command};

/// The `application_name` of the command line's connections, so operators
/// tell them apart from the application's in `pg_stat_activity`.
const APPLICATION_NAME: &str = "jobs-cli";

/// Exit status of an action refused or failed.
const FAILED: u8 = 1;
/// Exit status of a usage error or an unreachable database (clap's own
/// usage errors exit with it too).
const USAGE: u8 = 2;

/// An error that is the caller's: a bad argument or filter, no database
/// given. Exit status 2.
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The database could not be reached. Exit status 2.
#[derive(Debug)]
struct Unreachable(String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreachable {}

/// The store and the client on it, with the pool to close at the end.
pub(crate) struct Connection {
    pub(crate) jobs: Jobs,
    pub(crate) store: PgStore,
    pub(crate) pool: PgPool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(FAILED);
        }
    };
    match runtime.block_on(run(&cli)) {
        Ok(code) => code,
        Err(error) => {
            let code = exit_code(&error);
            eprintln!("error: {}", message(&error, &cli.schema));
            ExitCode::from(code)
        }
    }
}

async fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    cli.check().map_err(UsageError)?;
    if let Command::Migrate { print: true } = cli.command {
        let sql = PgStore::migration_sql(&cli.schema).map_err(|e| UsageError(e.to_string()))?;
        print!("{sql}");
        return Ok(ExitCode::SUCCESS);
    }
    let connection = connect(cli).await?;
    let result = commands::run(cli, &connection).await;
    connection.store.close().await;
    connection.pool.close().await;
    result
}

/// Connects with a short acquire timeout (`--timeout`), so a dead or
/// unreachable database is an error within seconds rather than a hang; the
/// store neither migrates (only `migrate` does) nor listens.
async fn connect(cli: &Cli) -> anyhow::Result<Connection> {
    let url = cli.database_url.as_deref().ok_or_else(|| {
        UsageError("no database given: set DATABASE_URL or pass --database-url".to_owned())
    })?;
    let options = PgStore::connect_options(url)
        .map_err(|e| UsageError(format!("invalid database URL: {}", cause(&e))))?
        .application_name(APPLICATION_NAME);
    let place = format!("{}:{}", options.get_host(), options.get_port());
    // One connection first, bounded by the timeout: a pool retries a
    // refused connection until its acquire timeout and then reports only
    // that it timed out, where this says why.
    let timeout = cli.timeout();
    match tokio::time::timeout(timeout, options.connect()).await {
        Ok(Ok(probe)) => drop(probe.close().await),
        Ok(Err(e)) => {
            return Err(Unreachable(format!("cannot reach the database at {place}: {e}")).into())
        }
        Err(_) => {
            return Err(Unreachable(format!(
                "cannot reach the database at {place}: no answer within {}s",
                cli.timeout
            ))
            .into())
        }
    }
    let pool = PgStore::pool_options()
        .max_connections(2)
        .acquire_timeout(timeout)
        .connect_lazy_with(options);
    let store_options = PgStoreOptions::new()
        .schema(cli.schema.clone())
        .migrate(false)
        .listen(false);
    let store = PgStore::with_options(pool.clone(), store_options)
        .await
        .map_err(|e| match e {
            jobs::postgres::Error::InvalidSchema(_) => {
                anyhow::Error::new(UsageError(e.to_string()))
            }
            other => anyhow::Error::new(other),
        })?;
    Ok(Connection {
        jobs: Jobs::new(store.clone()),
        store,
        pool,
    })
}

/// The innermost cause of an error, for a one-line message.
fn cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = error;
    while let Some(source) = inner.source() {
        inner = source;
    }
    inner.to_string()
}

/// The kind of the store error in `error`'s chain, if there is one.
fn store_kind(error: &anyhow::Error) -> Option<StoreErrorKind> {
    error.chain().find_map(|e| {
        if let Some(e) = e.downcast_ref::<StoreError>() {
            Some(e.kind())
        } else if let Some(jobs::Error::Store(e)) = e.downcast_ref::<jobs::Error>() {
            // `Error::Store` is transparent: the chain skips the store error.
            Some(e.kind())
        } else {
            e.downcast_ref::<jobs::postgres::Error>().map(|e| e.kind())
        }
    })
}

/// 2 for the caller's mistakes (a store's `Invalid` among them: a filter
/// state the action never takes, say) and an unreachable database, 1
/// otherwise.
fn exit_code(error: &anyhow::Error) -> u8 {
    let usage = error
        .chain()
        .any(|e| e.is::<UsageError>() || e.is::<Unreachable>());
    let kind = store_kind(error);
    if usage
        || matches!(
            kind,
            Some(StoreErrorKind::Unavailable | StoreErrorKind::Invalid)
        )
    {
        USAGE
    } else {
        FAILED
    }
}

/// The error on one line (its own message: the store's messages already
/// quote their cause), with a hint when the schema is not migrated
/// (PostgreSQL's "relation does not exist").
fn message(error: &anyhow::Error, schema: &str) -> String {
    let text = error.to_string().replace('\n', " ");
    if text.contains("SQLSTATE 42P01") {
        format!("{text}; is the schema `{schema}` migrated? run `jobs migrate`")
    } else {
        text
    }
}
