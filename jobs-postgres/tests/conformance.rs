//! The store conformance suite on `PgStore`: one test per case, each in a
//! fresh schema of its own on the database at `DATABASE_URL`, dropped when
//! the case ends (see `common::conformance_store`).

mod common;

jobs_core::conformance_tests!(async { common::conformance_store().await });
