//! The store conformance suite on `PgStore`: one test per case, each in a
//! fresh schema of its own on the database at `DATABASE_URL`.
//!
//! The schema of a case is dropped by the next run's sweep rather than at the
//! case's end (the suite owns the store until the case returns), see
//! `common::sweep_stale_schemas`.

mod common;

jobs_core::conformance_tests!(async { common::conformance_store().await });
