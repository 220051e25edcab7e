//! Each subcommand of the built `jobs` binary against PostgreSQL, in a
//! schema of its own per test: jobs seeded through the library, the binary
//! run, its output and the store afterwards checked.

mod support;

use jobs::store::{CronUpsertParams, JobOutcome, ServerHeartbeatParams};
use jobs::{Cron, JobId, JobState, NewJob, RecurringDef, RecurringOptions, ServerId, ServerInfo};
use jobs::{Store, Timestamp};
use serde_json::json;
use support::{ids, Setup, TestSchema};

#[tokio::test(flavor = "multi_thread")]
async fn migrate_applies_the_migrations_to_a_fresh_schema() {
    let schema = TestSchema::new().await;
    let run = support::run_with(
        &support::database_url(),
        &["--schema", &schema.name, "migrate"],
    );
    run.expect_code(0);
    assert!(run.stdout.contains("is migrated"), "{run:#?}");
    let applied = schema
        .scalar(&format!(
            "SELECT count(*) FROM {}",
            schema.table("jobs_migrations")
        ))
        .await;
    assert!(applied >= 6, "{applied} migrations recorded");
    // Again: nothing to do, still fine.
    support::run_with(
        &support::database_url(),
        &["--schema", &schema.name, "migrate"],
    )
    .expect_code(0);
    schema.drop().await;
}

#[test]
fn migrate_print_writes_the_sql_and_needs_no_database() {
    let run = support::run_with(
        "postgres://nobody@127.0.0.1:1/none",
        &["--schema", "billing_jobs", "migrate", "--print"],
    );
    run.expect_code(0);
    assert!(run.stdout.contains("CREATE TABLE"), "{run:#?}");
    assert!(
        run.stdout.contains("billing_jobs"),
        "the SQL is for the schema given"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_counts_servers_and_stranded_jobs() {
    let setup = Setup::new().await;
    for _ in 0..3 {
        setup.job("mail", "send_invoice", JobState::Enqueued).await;
    }
    setup.job("default", "cleanup", JobState::Failed).await;
    let server = ServerId::new();
    let info = ServerInfo::new(server, chrono::Utc::now())
        .host("worker-1")
        .pid(77)
        .queues(vec!["default".to_owned()])
        .concurrency(8)
        .job_names(vec!["cleanup".to_owned()]);
    setup
        .store
        .server_heartbeat(ServerHeartbeatParams::new(info))
        .await
        .unwrap();

    let run = setup.run(&["status"]);
    run.expect_code(0);
    let out = &run.stdout;
    let mail = out.lines().find(|l| l.starts_with("mail ")).expect(out);
    assert_eq!(
        mail.split_whitespace().collect::<Vec<_>>(),
        ["mail", "0", "0", "3", "0", "0", "0", "0", "0"],
        "mail: 3 enqueued\n{out}"
    );
    assert!(out.contains("ENQUEUED"), "{out}");
    assert!(
        out.contains(&server.to_string()),
        "the server is listed\n{out}"
    );
    assert!(out.contains("worker-1"), "{out}");
    assert!(out.contains("s ago"), "with its heartbeat age\n{out}");
    let stranded = out.split("STRANDED").nth(1).expect(out);
    assert!(
        stranded.contains("send_invoice") && stranded.contains("no live server serves the queue"),
        "the mail jobs have no server\n{out}"
    );

    let status = setup.run(&["status", "--json"]).json();
    let counts = status["counts"].as_array().unwrap();
    assert!(counts.contains(&json!({ "queue": "mail", "state": "enqueued", "count": 3 })));
    assert_eq!(status["servers"]["servers"][0]["host"], "worker-1");
    assert_eq!(status["servers"]["concurrency"], 8);
    assert_eq!(status["stranded"][0]["queue"], "mail");
    assert_eq!(status["stranded"][0]["reason"], "no_server_for_queue");
    assert!(status["now"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn list_filters_by_state_queue_and_name_newest_first() {
    let setup = Setup::new().await;
    let mut wanted = Vec::new();
    for _ in 0..3 {
        wanted.push(setup.job("mail", "send_invoice", JobState::Failed).await);
        setup.job("mail", "other_job", JobState::Failed).await;
        setup.job("other", "send_invoice", JobState::Failed).await;
        setup.job("mail", "send_invoice", JobState::Enqueued).await;
    }
    wanted.reverse();
    let filter = [
        "--state",
        "failed",
        "--queue",
        "mail",
        "--name",
        "send_invoice",
    ];

    let mut args = vec!["list"];
    args.extend(filter);
    let run = setup.run(&args);
    run.expect_code(0);
    let listed: Vec<JobId> = run
        .stdout
        .lines()
        .skip(1)
        .map(|l| JobId(l.split_whitespace().next().unwrap().parse().unwrap()))
        .collect();
    assert_eq!(listed, wanted, "{}", run.stdout);
    assert!(
        run.stdout.starts_with("ID "),
        "a header line\n{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("boom"),
        "with the last error\n{}",
        run.stdout
    );

    args.extend(["--json", "--limit", "2"]);
    let run = setup.run(&args);
    run.expect_code(0);
    assert_eq!(ids(&run.json()), wanted[..2].to_vec(), "bounded by --limit");
    assert_eq!(run.json()[0]["state"], "failed");
    assert_eq!(run.json()[0]["name"], "send_invoice");

    let before = wanted[0].to_string();
    let run = setup.run(&[
        "list",
        "--name",
        "send_invoice",
        "--state",
        "failed",
        "--before",
        &before,
        "--json",
    ]);
    let page: Vec<JobId> = ids(&run.json());
    assert!(page.iter().all(|id| *id < wanted[0]), "{page:?}");

    setup.run(&["list", "--limit", "0"]).expect_code(2);
    setup.run(&["list", "--limit", "1001"]).expect_code(2);
    let none = setup.run(&["list", "--name", "nope"]);
    none.expect_code(0);
    assert!(none.stdout.contains("no jobs match"));
}

#[tokio::test(flavor = "multi_thread")]
async fn show_prints_the_job_with_its_whole_history_and_each_error() {
    let setup = Setup::new().await;
    let mut job = NewJob::new("send_invoice", json!({ "invoice_id": 7 }));
    job.max_attempts = 2;
    let id = setup.jobs.insert(vec![job]).await.unwrap()[0].id;
    let retry = JobOutcome::Retry {
        error: "first failure:\nsmtp timed out".to_owned(),
        after: std::time::Duration::ZERO,
    };
    setup
        .claim_and_complete(id, "default", "send_invoice", Some(retry))
        .await;
    let failed = JobOutcome::Failed {
        error: "second failure".to_owned(),
    };
    setup
        .claim_and_complete(id, "default", "send_invoice", Some(failed))
        .await;

    let run = setup.run(&["show", &id.to_string()]);
    run.expect_code(0);
    let out = &run.stdout;
    assert!(out.contains("failed (attempt 2 of 2)"), "{out}");
    assert!(out.contains(r#"{"invoice_id":7}"#), "{out}");
    let history = out.split("HISTORY").nth(1).expect(out);
    for state in ["enqueued", "processing", "scheduled", "failed"] {
        assert!(history.contains(state), "{state} in the history\n{out}");
    }
    let errors = out.split("ERRORS").nth(1).expect(out);
    assert!(
        errors.contains("    first failure:\n    smtp timed out"),
        "the whole error\n{out}"
    );
    assert!(errors.contains("second failure"), "{out}");

    let detail = setup.run(&["show", &id.to_string(), "--json"]).json();
    assert_eq!(detail["job"]["id"], id.0);
    assert_eq!(detail["job"]["state"], "failed");
    let events = detail["history"].as_array().unwrap();
    assert_eq!(
        events.len(),
        5,
        "enqueued, processing, scheduled, processing, failed"
    );
    assert_eq!(events[2]["error"], "first failure:\nsmtp timed out");

    let missing = setup.run(&["show", "999999999"]);
    missing.expect_code(1);
    assert!(
        missing.stderr.contains("job 999999999 does not exist"),
        "{missing:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_by_id_reports_each_id_and_does_the_others_despite_a_missing_or_refused_one() {
    let setup = Setup::new().await;
    let failed = setup.job("mail", "send_invoice", JobState::Failed).await;
    let enqueued = setup.job("mail", "send_invoice", JobState::Enqueued).await;
    let cancelled = setup.job("mail", "send_invoice", JobState::Cancelled).await;
    let (a, b, c) = (
        failed.to_string(),
        enqueued.to_string(),
        cancelled.to_string(),
    );

    let run = setup.run(&["retry", &a, &b, "999999999", &c]);
    run.expect_code(1);
    assert!(
        run.stdout.contains(&format!("job {failed} retried")),
        "{run:#?}"
    );
    assert!(
        run.stdout.contains(&format!("job {cancelled} retried")),
        "{run:#?}"
    );
    assert!(
        run.stderr.contains(&format!(
            "job {enqueued} is enqueued; only failed, cancelled or deleted jobs can be retried"
        )),
        "{run:#?}"
    );
    assert!(
        run.stderr.contains("job 999999999 does not exist"),
        "{run:#?}"
    );
    assert_eq!(setup.state(failed).await, JobState::Enqueued);
    assert_eq!(setup.state(cancelled).await, JobState::Enqueued);

    let json = setup.run(&["retry", &a, "--json"]);
    json.expect_code(1);
    assert_eq!(json.json()[0]["result"], "conflict");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_by_id_cancels_waiting_jobs_and_asks_running_ones_to_stop() {
    let setup = Setup::new().await;
    let waiting = setup.job("mail", "send_invoice", JobState::Enqueued).await;
    let running = setup.job("mail", "other_job", JobState::Processing).await;
    let done = setup.job("mail", "send_invoice", JobState::Succeeded).await;
    let (a, b, c) = (waiting.to_string(), running.to_string(), done.to_string());

    let run = setup.run(&["cancel", &a, &b, &c, "--reason", "bad deploy"]);
    run.expect_code(1);
    assert!(
        run.stdout.contains(&format!("job {waiting} cancelled")),
        "{run:#?}"
    );
    assert!(
        run.stdout.contains(&format!("job {running} is running")),
        "{run:#?}"
    );
    assert!(
        run.stderr
            .contains(&format!("job {done} is succeeded and cannot be cancelled")),
        "{run:#?}"
    );
    let detail = setup.jobs.get(waiting).await.unwrap().unwrap();
    assert_eq!(detail.job.state, JobState::Cancelled);
    assert_eq!(
        detail.history.last().unwrap().error.as_deref(),
        Some("bad deploy")
    );
    let running_row = setup.jobs.get(running).await.unwrap().unwrap().job;
    assert!(running_row.cancel_requested);
    assert_eq!(setup.state(done).await, JobState::Succeeded);

    let again = setup.run(&["cancel", &b, "--json"]);
    again.expect_code(0);
    assert_eq!(again.json()[0]["result"], "cancel_requested");
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_by_id_deletes_but_refuses_a_running_job() {
    let setup = Setup::new().await;
    let waiting = setup.job("mail", "send_invoice", JobState::Scheduled).await;
    let running = setup.job("mail", "other_job", JobState::Processing).await;
    let (a, b) = (waiting.to_string(), running.to_string());

    let run = setup.run(&["delete", &b, &a]);
    run.expect_code(1);
    assert!(
        run.stdout.contains(&format!("job {waiting} deleted")),
        "{run:#?}"
    );
    assert!(
        run.stderr.contains("is running and cannot be deleted"),
        "{run:#?}"
    );
    assert_eq!(setup.state(waiting).await, JobState::Deleted);
    assert_eq!(setup.state(running).await, JobState::Processing);
    setup.run(&["delete", &a]).expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_all_without_yes_only_says_what_it_would_take_and_exits_1() {
    let setup = Setup::new().await;
    let mut failed = Vec::new();
    for _ in 0..3 {
        failed.push(setup.job("mail", "send_invoice", JobState::Failed).await);
    }
    let other = setup.job("mail", "other_job", JobState::Failed).await;

    let run = setup.run(&[
        "retry",
        "--all",
        "--state",
        "failed",
        "--queue",
        "mail",
        "--name",
        "send_invoice",
    ]);
    run.expect_code(1);
    assert!(run.stdout.contains("retry would take 3 jobs"), "{run:#?}");
    for id in &failed {
        assert!(
            run.stdout.contains(&format!("\n{id} ")),
            "job {id} is shown\n{run:#?}"
        );
    }
    assert!(!run.stdout.contains(&format!("\n{other} ")), "{run:#?}");
    assert!(run.stderr.contains("add --yes"), "{run:#?}");
    for id in failed.iter().chain([&other]) {
        assert_eq!(setup.state(*id).await, JobState::Failed, "nothing was done");
    }

    let json = setup.run(&["retry", "--all", "--name", "send_invoice", "--json"]);
    json.expect_code(1);
    let value = json.json();
    assert_eq!(value["dry_run"], true);
    assert_eq!(value["outcome"]["changed"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_all_with_yes_retries_exactly_the_matching_jobs_up_to_the_limit() {
    let setup = Setup::new().await;
    let mut failed = Vec::new();
    for _ in 0..3 {
        failed.push(setup.job("mail", "send_invoice", JobState::Failed).await);
    }
    let other_name = setup.job("mail", "other_job", JobState::Failed).await;
    let other_queue = setup.job("other", "send_invoice", JobState::Failed).await;
    let filter = [
        "--all",
        "--state",
        "failed",
        "--queue",
        "mail",
        "--name",
        "send_invoice",
    ];

    let mut args = vec!["retry"];
    args.extend(filter);
    args.extend(["--yes", "--limit", "2"]);
    let run = setup.run(&args);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains(&format!("retried 2 jobs: {}, {}", failed[2], failed[1])),
        "the newest two\n{run:#?}"
    );
    assert!(run.stdout.contains("run it again"), "more match\n{run:#?}");
    assert_eq!(
        setup.state(failed[0]).await,
        JobState::Failed,
        "past the limit"
    );

    let mut args = vec!["retry"];
    args.extend(filter);
    args.extend(["-y", "--json"]);
    let run = setup.run(&args);
    run.expect_code(0);
    let value = run.json();
    assert_eq!(ids(&value["outcome"]["changed"]), vec![failed[0]]);
    assert_eq!(value["outcome"]["more"], false);
    for id in &failed {
        assert_eq!(setup.state(*id).await, JobState::Enqueued);
    }
    assert_eq!(setup.state(other_name).await, JobState::Failed);
    assert_eq!(setup.state(other_queue).await, JobState::Failed);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_and_delete_all_act_on_the_matching_jobs_and_spare_running_ones_from_delete() {
    let setup = Setup::new().await;
    let waiting = setup.job("mail", "send_invoice", JobState::Enqueued).await;
    let running = setup
        .job("mail", "send_invoice", JobState::Processing)
        .await;
    let finished = setup.job("mail", "send_invoice", JobState::Succeeded).await;
    let elsewhere = setup.job("other", "send_invoice", JobState::Enqueued).await;

    let run = setup.run(&["cancel", "--all", "--queue", "mail", "--yes"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains(&format!("cancelled 1 jobs: {waiting}")),
        "{run:#?}"
    );
    assert!(
        run.stdout
            .contains(&format!("running jobs to stop them: {running}")),
        "{run:#?}"
    );
    assert_eq!(setup.state(waiting).await, JobState::Cancelled);
    assert!(
        setup
            .jobs
            .get(running)
            .await
            .unwrap()
            .unwrap()
            .job
            .cancel_requested
    );
    assert_eq!(setup.state(finished).await, JobState::Succeeded);
    assert_eq!(setup.state(elsewhere).await, JobState::Enqueued);

    let run = setup.run(&["delete", "--all", "--queue", "mail", "--yes", "--json"]);
    run.expect_code(0);
    let mut deleted = ids(&run.json()["outcome"]["changed"]);
    deleted.sort();
    assert_eq!(deleted, vec![waiting, finished], "all but the running job");
    assert_eq!(setup.state(running).await, JobState::Processing);
    assert_eq!(setup.state(elsewhere).await, JobState::Enqueued);
}

#[tokio::test(flavor = "multi_thread")]
async fn recurring_lists_triggers_pauses_and_resumes() {
    let setup = Setup::new().await;
    let cron = Cron::parse("0 3 * * *").unwrap();
    let mut job = NewJob::new("nightly_report", json!({}));
    job.queue = "reports".to_owned();
    let def = RecurringDef::new(
        "nightly-report".to_owned(),
        &cron,
        job,
        RecurringOptions::new(),
    );
    setup
        .store
        .cron_upsert(CronUpsertParams::new(def))
        .await
        .unwrap();

    let list = setup.run(&["recurring", "list"]);
    list.expect_code(0);
    let line = list
        .stdout
        .lines()
        .find(|l| l.starts_with("nightly-report"))
        .expect(&list.stdout);
    assert!(
        line.contains("0 3 * * *") && line.contains("nightly_report") && line.contains("reports"),
        "{line}"
    );

    let run = setup.run(&["recurring", "trigger", "nightly-report", "--json"]);
    run.expect_code(0);
    let job_id = JobId(run.json()["job_id"].as_i64().unwrap());
    let triggered = setup.jobs.get(job_id).await.unwrap().unwrap().job;
    assert_eq!(triggered.name, "nightly_report");
    assert_eq!(triggered.state, JobState::Enqueued);

    setup
        .run(&["recurring", "pause", "nightly-report"])
        .expect_code(0);
    let rows = setup.run(&["recurring", "list", "--json"]).json();
    assert_eq!(rows[0]["paused"], true);
    assert_eq!(rows[0]["def"]["id"], "nightly-report");
    assert_eq!(rows[0]["def"]["misfire"], "run_once");
    let resume = setup.run(&["recurring", "resume", "nightly-report"]);
    resume.expect_code(0);
    assert!(resume.stdout.contains("resumed"));
    assert_eq!(
        setup.run(&["recurring", "list", "--json"]).json()[0]["paused"],
        false
    );

    let missing = setup.run(&["recurring", "pause", "no-such-thing"]);
    missing.expect_code(1);
    assert!(missing.stderr.contains("no-such-thing"), "{missing:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn queues_lists_pauses_and_resumes() {
    let setup = Setup::new().await;
    for _ in 0..2 {
        setup.job("mail", "send_invoice", JobState::Enqueued).await;
    }
    setup.job("default", "cleanup", JobState::Enqueued).await;

    let pause = setup.run(&["queues", "pause", "mail"]);
    pause.expect_code(0);
    assert!(pause.stdout.contains("queue `mail` paused"), "{pause:#?}");
    let list = setup.run(&["queues", "list"]);
    list.expect_code(0);
    let line = |name: &str| {
        list.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}: {}", list.stdout))
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let mail = line("mail");
    assert_eq!(mail[1], "yes", "{mail:?}");
    assert_eq!(
        mail[mail.len() - 2..],
        ["2", "0"],
        "waiting and running: {mail:?}"
    );
    let default = line("default");
    assert_eq!(default, ["default", "no", "-", "-", "-", "1", "0"]);

    // The pause holds for every server: a claim takes only the other queue.
    let server = ServerId::new();
    let claimed = setup
        .store
        .job_claim(
            jobs::store::JobClaimParams::new(server)
                .queues(["mail", "default"])
                .names(["send_invoice", "cleanup"])
                .limit(10),
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].queue, "default");

    let rows = setup.run(&["queues", "list", "--json"]).json();
    let mail = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "mail")
        .unwrap();
    assert_eq!(mail["paused"], true);
    assert!(mail["paused_at"].is_string(), "{mail}");

    let resume = setup.run(&["queues", "resume", "mail", "--json"]);
    resume.expect_code(0);
    assert_eq!(resume.json(), json!({ "queue": "mail", "paused": false }));
    let rows = setup.run(&["queues", "list", "--json"]).json();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|q| q["paused"] == false),
        "{rows}"
    );

    // An empty name is a bad argument, as a bad filter is.
    setup.run(&["queues", "pause", ""]).expect_code(2);
}

#[tokio::test(flavor = "multi_thread")]
async fn queues_limit_sets_lists_and_lifts_limits() {
    let setup = Setup::new().await;
    for _ in 0..3 {
        setup.job("mail", "send_invoice", JobState::Enqueued).await;
    }
    let set = setup.run(&[
        "queues",
        "limit",
        "mail",
        "--concurrency",
        "2",
        "--rate",
        "100/1m",
    ]);
    set.expect_code(0);
    assert!(
        set.stdout
            .contains("at most 2 running at once, at most 100 started per 60 s"),
        "{set:#?}"
    );
    let list = setup.run(&["queues", "list"]);
    let mail: Vec<&str> = list
        .stdout
        .lines()
        .find(|l| l.starts_with("mail"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(mail, ["mail", "no", "-", "2", "100/60s", "3", "0"]);
    // Every server's claim applies it.
    let claimed = setup
        .store
        .job_claim(
            jobs::store::JobClaimParams::new(ServerId::new())
                .queues(["mail"])
                .names(["send_invoice"])
                .limit(10),
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let rows = setup.run(&["queues", "list", "--json"]).json();
    let limits = &rows.as_array().unwrap()[0]["limits"];
    assert_eq!(
        *limits,
        json!({ "concurrency": 2, "rate": { "jobs": 100, "per_seconds": 60.0 } })
    );

    let lifted = setup.run(&["queues", "limit", "mail", "--none", "--json"]);
    lifted.expect_code(0);
    assert_eq!(
        lifted.json(),
        json!({ "queue": "mail", "limits": { "concurrency": null, "rate": null } })
    );
    // Nothing to set, a limit of 0, a rate that does not parse: usage errors.
    setup.run(&["queues", "limit", "mail"]).expect_code(2);
    setup
        .run(&["queues", "limit", "mail", "--concurrency", "0"])
        .expect_code(2);
    let bad = setup.run(&["queues", "limit", "mail", "--rate", "100/week"]);
    bad.expect_code(2);
    assert!(bad.stderr.contains("N/PERIOD"), "{bad:#?}");
}

/// The times the command line prints are the store's own, as stored.
#[tokio::test(flavor = "multi_thread")]
async fn json_times_are_rfc3339() {
    let setup = Setup::new().await;
    let id = setup.job("mail", "send_invoice", JobState::Enqueued).await;
    let detail = setup.run(&["show", &id.to_string(), "--json"]).json();
    let created: Timestamp = detail["job"]["created_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let stored = setup.jobs.get(id).await.unwrap().unwrap().job.created_at;
    assert_eq!(created, stored);
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_lists_shows_and_cancels() {
    let setup = Setup::new().await;
    let members = (1..=3)
        .map(|n| NewJob::new("resize_photo", json!({ "photo": n })))
        .collect();
    let batch = setup
        .store
        .batch_insert(jobs::store::BatchInsertParams::new(members).callback(
            NewJob::new("publish_album", json!({})),
            jobs::ContinueOn::Success,
        ))
        .await
        .unwrap();

    let list = setup.run(&["batches", "list"]);
    list.expect_code(0);
    let line: Vec<&str> = list
        .stdout
        .lines()
        .find(|l| l.starts_with(&batch.id.to_string()))
        .unwrap_or_else(|| panic!("no line for the batch: {}", list.stdout))
        .split_whitespace()
        .collect();
    // id, created (date and time), total, pending, succeeded, failed, cancelled, ended, callback
    assert_eq!(line[3..9], ["3", "3", "0", "0", "0", "-"], "{line:?}");

    let show = setup.run(&["batches", "show", &batch.id.to_string()]);
    show.expect_code(0);
    assert!(show.stdout.contains("0 of 3 ended"), "{show:#?}");
    assert!(show.stdout.contains("when all succeeded"), "{show:#?}");
    for member in &batch.members {
        assert!(show.stdout.contains(&member.id.to_string()), "{show:#?}");
    }
    let json = setup
        .run(&["batches", "show", &batch.id.to_string(), "--json"])
        .json();
    assert_eq!(json["batch"]["pending"], 3);
    assert_eq!(json["jobs"].as_array().unwrap().len(), 3);

    let cancel = setup.run(&["batches", "cancel", &batch.id.to_string()]);
    cancel.expect_code(0);
    assert!(cancel.stdout.contains("4 jobs cancelled"), "{cancel:#?}");
    let progress = setup
        .store
        .batch_get(jobs::store::BatchGetParams::new(batch.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((progress.pending, progress.cancelled), (0, 3));

    // A batch that does not exist is a failed action, not a usage error.
    setup.run(&["batches", "show", "987654"]).expect_code(1);
    setup.run(&["batches", "cancel", "987654"]).expect_code(1);
    setup
        .run(&["batches", "list", "--limit", "0"])
        .expect_code(2);
}
