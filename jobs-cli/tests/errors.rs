//! The error paths of the built `jobs` binary: each a one-line message on
//! stderr and exit status 2 for the caller's mistakes and an unreachable
//! database.

mod support;

use std::time::{Duration, Instant};

use jobs::JobState;
use support::Setup;

/// A port nothing listens on: a dead database.
const DEAD: &str = "postgres://postgres@127.0.0.1:1/test";

#[test]
fn a_dead_database_is_exit_2_with_a_message_and_no_hang() {
    let started = Instant::now();
    let run = support::run_with(DEAD, &["status"]);
    run.expect_code(2);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "it must not hang"
    );
    assert!(
        run.stderr
            .starts_with("error: cannot reach the database at 127.0.0.1:1"),
        "{run:#?}"
    );
    assert_eq!(
        run.stderr.trim_end().lines().count(),
        1,
        "one line\n{run:#?}"
    );
    support::run_with(DEAD, &["retry", "1"]).expect_code(2);
}

#[test]
fn a_database_url_flag_overrides_the_environment() {
    let run = support::run_with(
        &support::database_url(),
        &["--database-url", DEAD, "status"],
    );
    run.expect_code(2);
    assert!(run.stderr.contains("127.0.0.1:1"), "{run:#?}");
}

#[test]
fn a_bad_state_filter_is_exit_2_naming_the_valid_states() {
    for args in [
        &["list", "--state", "broken"][..],
        &["retry", "--all", "--state", "broken", "--yes"][..],
    ] {
        let run = support::run_with(DEAD, args);
        run.expect_code(2);
        assert!(run.stderr.contains("unknown state `broken`"), "{run:#?}");
        assert!(run.stderr.contains("failed, cancelled"), "{run:#?}");
    }
}

#[test]
fn a_malformed_id_is_exit_2() {
    for args in [
        &["show", "abc"][..],
        &["retry", "1", "x2"][..],
        &["delete"][..],
    ] {
        support::run_with(DEAD, args).expect_code(2);
    }
}

#[test]
fn a_filter_with_ids_rather_than_all_is_exit_2() {
    let run = support::run_with(DEAD, &["retry", "5", "--state", "failed"]);
    run.expect_code(2);
    assert!(run.stderr.contains("--all"), "{run:#?}");
    support::run_with(DEAD, &["retry", "5", "--all"]).expect_code(2);
    support::run_with(DEAD, &["retry", "5", "--yes"]).expect_code(2);
}

#[test]
fn no_database_is_exit_2() {
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_jobs"))
        .arg("status")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("DATABASE_URL"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_filter_state_the_action_never_takes_is_exit_2_and_changes_nothing() {
    let setup = Setup::new().await;
    let enqueued = setup.job("mail", "send_invoice", JobState::Enqueued).await;
    let run = setup.run(&["retry", "--all", "--state", "enqueued", "--yes"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("cannot retry enqueued jobs"),
        "{run:#?}"
    );
    assert_eq!(setup.state(enqueued).await, JobState::Enqueued);
}

#[test]
fn an_unmigrated_schema_says_to_migrate() {
    let run = support::run_with(
        &support::database_url(),
        &["--schema", "jobs_cli_never_migrated", "list"],
    );
    run.expect_code(1);
    assert!(run.stderr.contains("run `jobs migrate`"), "{run:#?}");
    let bad = support::run_with(
        &support::database_url(),
        &["--schema", "Not-A-Schema", "list"],
    );
    bad.expect_code(2);
    assert!(bad.stderr.contains("invalid schema name"), "{bad:#?}");
}
