//! `job_list` by name and by arguments, and `job_act_matching`: retry, cancel, delete or run now every
//! job a filter picks, capped, treating each job as the single-job operation
//! treats it.

use std::collections::BTreeMap;

use serde_json::json;

use super::{
    assert_kind, claim_params, claim_with, complete, counts, get, insert_one, job_with, row, HOUR,
};
use crate::model::{After, ContinueOn, JobId, JobState, RunAt, ServerId};
use crate::store::{
    JobActMatchingParams, JobActOutcome, JobAction, JobCancelParams, JobDeleteParams, JobFilter,
    JobListParams, JobOutcome, Store, StoreErrorKind,
};

/// A job of `name` in `queue`, driven to `state` (through a claim, for the
/// states only a server reaches). The job claimed is this one: it has the
/// highest priority, and no other job waits with that priority.
async fn job_in<S: Store>(store: &S, queue: &str, name: &str, state: JobState) -> JobId {
    // An `awaiting` job waits for a parent that never runs during the case,
    // in a queue of its own that no filter of these cases picks.
    let parent = match state {
        JobState::Awaiting => Some(
            insert_one(
                store,
                job_with(|job| {
                    job.queue = "parents".to_owned();
                    job.run_at = RunAt::After(HOUR);
                }),
            )
            .await,
        ),
        _ => None,
    };
    let id = insert_one(
        store,
        job_with(|job| {
            job.queue = queue.to_owned();
            job.name = name.to_owned();
            job.after = parent.map(|parent| After::new(parent, ContinueOn::Success));
            job.max_attempts = 1;
            match state {
                JobState::Scheduled => job.run_at = RunAt::After(HOUR),
                JobState::Processing | JobState::Succeeded | JobState::Failed => {
                    job.priority = i16::MAX
                }
                _ => {}
            }
        }),
    )
    .await;
    let outcome = match state {
        JobState::Awaiting | JobState::Scheduled | JobState::Enqueued => None,
        JobState::Processing => Some(None),
        JobState::Succeeded => Some(Some(JobOutcome::Succeeded)),
        JobState::Failed => Some(Some(JobOutcome::Failed {
            error: "boom".to_owned(),
        })),
        JobState::Cancelled => {
            store
                .job_cancel(JobCancelParams::new(id))
                .await
                .expect("job_cancel failed");
            None
        }
        _ => {
            store
                .job_delete(JobDeleteParams::new(id))
                .await
                .expect("job_delete failed");
            None
        }
    };
    if let Some(outcome) = outcome {
        let server = ServerId::new();
        let claimed = claim_with(store, claim_params(server, &[queue], &[name], 1)).await;
        assert_eq!(
            claimed.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![id],
            "claiming the job to drive it to {state}"
        );
        if let Some(outcome) = outcome {
            assert!(complete(store, server, claimed[0].claim(), outcome).await);
        }
    }
    assert_eq!(row(store, id).await.state, state, "job {id} set up");
    id
}

/// A job's queue, name and the state it was set up in.
type Key = (&'static str, &'static str, JobState);

/// Jobs by the [`Key`] they were set up with, in id order.
struct Set(Vec<(Key, JobId)>);

impl Set {
    fn iter(&self) -> impl Iterator<Item = (&Key, &JobId)> {
        self.0.iter().map(|(key, id)| (key, id))
    }

    fn values(&self) -> impl Iterator<Item = &JobId> {
        self.0.iter().map(|(_, id)| id)
    }
}

impl std::ops::Index<&Key> for Set {
    type Output = JobId;
    fn index(&self, key: &Key) -> &JobId {
        let found = self.0.iter().find(|(k, _)| k == key);
        &found.unwrap_or_else(|| panic!("no job {key:?}")).1
    }
}

/// One job in every state, in queues `mail` and `other`, of names
/// `send_invoice` and `other_job`: 28 jobs.
async fn one_of_each<S: Store>(store: &S) -> Set {
    let mut jobs = Vec::new();
    for queue in ["mail", "other"] {
        for name in ["send_invoice", "other_job"] {
            for state in JobState::ALL {
                let id = job_in(store, queue, name, state).await;
                jobs.push(((queue, name, state), id));
            }
        }
    }
    Set(jobs)
}

async fn act<S: Store>(store: &S, p: JobActMatchingParams) -> JobActOutcome {
    store
        .job_act_matching(p)
        .await
        .expect("job_act_matching failed")
}

/// The ids newest first.
fn newest_first(mut ids: Vec<JobId>) -> Vec<JobId> {
    ids.sort_by(|a, b| b.cmp(a));
    ids
}

/// The state of each job, in id order.
async fn states_of<S: Store>(
    store: &S,
    ids: impl IntoIterator<Item = JobId>,
) -> Vec<(JobId, JobState)> {
    let mut states = Vec::new();
    for id in ids {
        states.push((id, row(store, id).await.state));
    }
    states
}

/// Checks `job_count` against the jobs themselves: a store that keeps
/// counters must move them with every job the operation changes.
async fn assert_counts_agree<S: Store>(
    store: &S,
    ids: impl IntoIterator<Item = JobId>,
    what: &str,
) {
    let mut expected: BTreeMap<(String, &str), (JobState, i64)> = BTreeMap::new();
    for id in ids {
        let job = row(store, id).await;
        let entry = expected.entry((job.queue, job.state.as_str()));
        entry.or_insert((job.state, 0)).1 += 1;
    }
    let mut expected: Vec<(String, JobState, i64)> = expected
        .into_iter()
        .map(|((q, _), (s, n))| (q, s, n))
        .collect();
    expected.sort_by(|a, b| (&a.0, a.1.as_str()).cmp(&(&b.0, b.1.as_str())));
    // Without the parents of the `awaiting` jobs, which no case acts on.
    let mut counted = counts(store).await;
    counted.retain(|(queue, _, _)| queue != "parents");
    assert_eq!(counted, expected, "counts after {what}");
}

/// `job_list` filters by stored name, alone and with a state and a queue,
/// and `JobListParams::matching` lists what a `JobFilter` picks.
pub async fn list_filters_by_name<S: Store>(store: S) {
    let jobs = one_of_each(&store).await;
    let listed = |p: JobListParams| {
        let store = &store;
        async move {
            store
                .job_list(p)
                .await
                .expect("job_list failed")
                .jobs
                .into_iter()
                .map(|row| row.id)
                .collect::<Vec<_>>()
        }
    };
    let pick = |f: &dyn Fn(&(&str, &str, JobState)) -> bool| {
        newest_first(
            jobs.iter()
                .filter(|(k, _)| f(k))
                .map(|(_, id)| *id)
                .collect(),
        )
    };
    assert_eq!(
        listed(JobListParams::new().name("send_invoice").limit(100)).await,
        pick(&|(_, n, _)| *n == "send_invoice"),
        "name filter"
    );
    assert_eq!(
        listed(
            JobListParams::new()
                .name("send_invoice")
                .queue("mail")
                .limit(100)
        )
        .await,
        pick(&|(q, n, _)| *n == "send_invoice" && *q == "mail"),
        "name and queue filters"
    );
    for state in [JobState::Failed, JobState::Succeeded] {
        let filter = JobFilter::new()
            .state(state)
            .queue("mail")
            .name("other_job");
        assert_eq!(
            listed(JobListParams::new().matching(filter.clone()).limit(100)).await,
            vec![jobs[&("mail", "other_job", state)]],
            "name, queue and state ({state}) filters"
        );
        assert_eq!(
            JobListParams::new().matching(filter.clone()).filter(),
            filter
        );
        assert_eq!(
            listed(
                JobListParams::new()
                    .state(state)
                    .name("other_job")
                    .limit(100)
            )
            .await,
            pick(&|(_, n, s)| *n == "other_job" && *s == state),
            "name and state ({state}) filters"
        );
    }
    assert!(listed(JobListParams::new().name("nope")).await.is_empty());
}

/// `JobListParams::scan` bounds the jobs examined: the newest `scan` of
/// those the state, queue and name pick (jobs they leave out do not count),
/// of which those whose arguments match are listed; when the bound ends the
/// scan before the page is full, `scanned_to` is the oldest job examined,
/// and listing before it finds a match older than the window. A page that
/// fills first, a scan that runs out of jobs, and no bound say nothing.
pub async fn list_scan_stops_at_its_bound_and_continues_below_it<S: Store>(store: S) {
    let customer = |queue: &str, id: i64| {
        let queue = queue.to_owned();
        job_with(move |job| {
            job.queue = queue;
            job.args = json!({ "customer": id, "note": "x" });
        })
    };
    // Oldest first: a match, five others, a match; then a newer match in
    // another queue, which a queue filter leaves out.
    let old_match = insert_one(&store, customer("scan", 1)).await;
    let mut others = Vec::new();
    for _ in 0..5 {
        others.push(insert_one(&store, customer("scan", 2)).await);
    }
    let new_match = insert_one(&store, customer("scan", 1)).await;
    let elsewhere = insert_one(&store, customer("elsewhere", 1)).await;
    let page = |p: JobListParams| {
        let store = &store;
        async move {
            let page = store.job_list(p).await.expect("job_list failed");
            let ids: Vec<JobId> = page.jobs.iter().map(|row| row.id).collect();
            (ids, page.scanned_to)
        }
    };
    let search = || {
        JobListParams::new()
            .queue("scan")
            .args(json!({ "customer": 1 }))
            .limit(10)
    };
    assert_eq!(
        page(search().scan(3)).await,
        (vec![new_match], Some(others[3])),
        "three examined: the newest match and two others"
    );
    assert_eq!(
        page(search().scan(3).before(others[3])).await,
        (vec![], Some(others[0])),
        "three others examined, none matches"
    );
    assert_eq!(
        page(search().scan(3).before(others[0])).await,
        (vec![old_match], None),
        "the match older than both windows, and nothing older to examine"
    );
    assert_eq!(
        page(search()).await,
        (vec![new_match, old_match], None),
        "without a bound, every match"
    );
    assert_eq!(
        page(search().scan(3).limit(1)).await,
        (vec![new_match], None),
        "the page filled before the bound: the next page is before its last job"
    );
    assert_eq!(
        page(search().scan(7)).await,
        (vec![new_match, old_match], Some(old_match)),
        "a bound that ends on the oldest job exactly still says where it stopped"
    );
    // A job the state leaves out is not examined: the window reaches further.
    store
        .job_cancel(JobCancelParams::new(others[4]))
        .await
        .expect("job_cancel failed");
    assert_eq!(
        page(search().state(JobState::Enqueued).scan(3)).await,
        (vec![new_match], Some(others[2])),
        "the cancelled job does not count towards the bound"
    );
    // Without an arguments filter every examined job is listed; without a
    // queue filter the other queue's job is the newest.
    assert_eq!(
        page(JobListParams::new().queue("scan").scan(2)).await,
        (vec![new_match, others[4]], Some(others[4])),
        "no arguments filter: the bound is the page"
    );
    assert_eq!(
        page(JobListParams::new().args(json!({ "customer": 1 })).scan(2)).await,
        (vec![elsewhere, new_match], Some(new_match)),
        "no queue filter"
    );
}

/// `job_list` and `job_act_matching` filter by arguments with jsonb
/// containment (`args @>`), alone and with a state: a nested object's keys,
/// an array's elements in any order, numbers by value; a scalar is not
/// found inside an array below the top level; no match lists nothing and
/// acts on nothing.
pub async fn list_and_act_matching_filter_by_arguments<S: Store>(store: S) {
    let with_args = |args: serde_json::Value, delayed: bool| {
        job_with(|job| {
            job.queue = "mail".to_owned();
            job.name = "send_invoice".to_owned();
            job.args = args;
            if delayed {
                job.run_at = RunAt::After(HOUR);
            }
        })
    };
    let ada = json!({ "user": { "id": 7, "name": "Ada" }, "tags": ["vip", "eu"], "amount": 10 });
    let ada = insert_one(&store, with_args(ada, false)).await;
    let bob = json!({ "user": { "id": 7, "name": "Bob" }, "tags": ["eu"], "amount": 10.0 });
    let bob = insert_one(&store, with_args(bob, true)).await;
    let eve = json!({ "user": { "id": 8 }, "tags": [["nested"]], "amount": 3 });
    let eve = insert_one(&store, with_args(eve, false)).await;
    let old = json!({ "user": { "id": 7 }, "tags": "vip" });
    let old = insert_one(&store, with_args(old, false)).await;
    store
        .job_cancel(JobCancelParams::new(old))
        .await
        .expect("job_cancel failed");
    let listed = |filter: JobFilter| {
        let store = &store;
        async move {
            let p = JobListParams::new().matching(filter).limit(100);
            let rows = store.job_list(p).await.expect("job_list failed");
            rows.jobs.into_iter().map(|row| row.id).collect::<Vec<_>>()
        }
    };
    let by_args = |args: serde_json::Value| JobFilter::new().args(args);
    for (args, expected, what) in [
        (
            json!({ "user": { "id": 7 } }),
            vec![old, bob, ada],
            "a nested object",
        ),
        (
            json!({ "user": { "id": 7, "name": "Ada" } }),
            vec![ada],
            "two keys of a nested object",
        ),
        (json!({ "tags": ["vip"] }), vec![ada], "an array element"),
        (
            json!({ "tags": ["eu", "vip"] }),
            vec![ada],
            "array elements in any order",
        ),
        (
            json!({ "tags": [["nested"]] }),
            vec![eve],
            "an array in an array",
        ),
        (
            json!({ "tags": "vip" }),
            vec![old],
            "a scalar is not an array's element below the top",
        ),
        (json!({ "amount": 10 }), vec![bob, ada], "numbers by value"),
        (json!({}), vec![old, eve, bob, ada], "the empty object"),
        (json!({ "user": { "id": 9 } }), vec![], "no match"),
        (json!({ "missing": null }), vec![], "a missing key"),
    ] {
        assert_eq!(
            listed(by_args(args.clone())).await,
            expected,
            "{what}: {args}"
        );
        let preview = act(
            &store,
            JobActMatchingParams::new(JobAction::Delete, by_args(args.clone())).dry_run(true),
        )
        .await;
        assert_eq!(preview.changed, expected, "a delete's pick, {what}: {args}");
    }
    let user_7 = by_args(json!({ "user": { "id": 7 } }));
    for (state, expected) in [
        (JobState::Scheduled, vec![bob]),
        (JobState::Enqueued, vec![ada]),
        (JobState::Cancelled, vec![old]),
        (JobState::Failed, vec![]),
    ] {
        let filter = user_7.clone().state(state);
        assert_eq!(
            listed(filter.clone()).await,
            expected,
            "with the state {state}"
        );
        let filter = filter.queue("mail").name("send_invoice");
        assert_eq!(
            listed(filter.clone()).await,
            expected,
            "with the state {state}, the queue and the name"
        );
        let elsewhere = filter.clone().queue("other");
        assert!(listed(elsewhere).await.is_empty(), "another queue");
        assert_eq!(
            JobListParams::new().matching(filter.clone()).filter(),
            filter
        );
    }

    // Acting on what the filter picks: the enqueued job of user 7 only.
    let cancel = JobActMatchingParams::new(JobAction::cancel(), user_7.state(JobState::Enqueued));
    assert_eq!(
        act(&store, cancel).await,
        JobActOutcome::new(vec![ada], Vec::new(), false)
    );
    assert_eq!(row(&store, ada).await.state, JobState::Cancelled);
    assert_eq!(row(&store, bob).await.state, JobState::Scheduled);
    assert_eq!(row(&store, eve).await.state, JobState::Enqueued);
    let nothing =
        JobActMatchingParams::new(JobAction::Delete, by_args(json!({ "user": { "id": 9 } })));
    assert_eq!(act(&store, nothing).await, JobActOutcome::default());
    assert_eq!(row(&store, eve).await.state, JobState::Enqueued);
}

/// A retry of all matching jobs retries exactly the `failed`, `cancelled`
/// and `deleted` jobs the filter picks, as `job_retry` does (`enqueued`,
/// attempts reset, the transition in the history), newest first, and
/// changes no other job; the counts follow.
pub async fn act_matching_retries_exactly_the_matching_jobs<S: Store>(store: S) {
    let jobs = one_of_each(&store).await;
    let before = states_of(&store, jobs.values().copied()).await;

    let filter = JobFilter::new()
        .state(JobState::Failed)
        .queue("mail")
        .name("send_invoice");
    let outcome = act(&store, JobActMatchingParams::new(JobAction::Retry, filter)).await;
    let failed = jobs[&("mail", "send_invoice", JobState::Failed)];
    assert_eq!(outcome, JobActOutcome::new(vec![failed], Vec::new(), false));
    let detail = get(&store, failed).await;
    assert_eq!(detail.job.state, JobState::Enqueued);
    assert_eq!(detail.job.attempt, 0, "attempts are reset");
    assert_eq!(detail.job.finished_at, None);
    assert_eq!(
        detail.history.last().map(|e| e.state),
        Some(JobState::Enqueued)
    );

    // Without a state: every retryable job of the queue, and nothing else.
    let outcome = act(
        &store,
        JobActMatchingParams::new(JobAction::Retry, JobFilter::new().queue("other")),
    )
    .await;
    let retryable = |(q, _, s): &(&str, &str, JobState)| {
        *q == "other"
            && matches!(
                s,
                JobState::Failed | JobState::Cancelled | JobState::Deleted
            )
    };
    let expected = newest_first(
        jobs.iter()
            .filter(|(k, _)| retryable(k))
            .map(|(_, id)| *id)
            .collect(),
    );
    assert_eq!(
        outcome.changed, expected,
        "the retryable jobs of `other`, newest first"
    );
    assert!(outcome.requested.is_empty() && !outcome.more);

    let after = states_of(&store, jobs.values().copied()).await;
    for ((id, was), (_, now)) in before.iter().zip(&after) {
        let changed = *id == failed || expected.contains(id);
        let want = if changed { JobState::Enqueued } else { *was };
        assert_eq!(*now, want, "job {id}, {was} before the retries");
    }
    assert_counts_agree(&store, jobs.values().copied(), "the retries").await;
}

/// A cancel of all matching jobs cancels the waiting ones at once (the
/// reason in their history) and asks the servers of the running ones to
/// stop (`requested`, `cancel_requested`, still `processing`); finished
/// jobs are passed over; the counts follow.
pub async fn act_matching_cancels_waiting_and_asks_running_jobs_to_stop<S: Store>(store: S) {
    let jobs = one_of_each(&store).await;
    let reason = JobAction::Cancel {
        reason: "bad deploy".to_owned(),
    };
    let filter = JobFilter::new().queue("mail").name("send_invoice");
    let outcome = act(&store, JobActMatchingParams::new(reason, filter)).await;
    let id = |state| jobs[&("mail", "send_invoice", state)];
    let waiting = newest_first(vec![
        id(JobState::Awaiting),
        id(JobState::Scheduled),
        id(JobState::Enqueued),
    ]);
    assert_eq!(
        outcome,
        JobActOutcome::new(waiting.clone(), vec![id(JobState::Processing)], false)
    );
    for id in waiting {
        let detail = get(&store, id).await;
        assert_eq!(detail.job.state, JobState::Cancelled);
        assert!(detail.job.finished_at.is_some());
        let event = detail.history.last().unwrap();
        assert_eq!(event.state, JobState::Cancelled);
        assert_eq!(event.error.as_deref(), Some("bad deploy"));
    }
    let running = row(&store, id(JobState::Processing)).await;
    assert_eq!(
        running.state,
        JobState::Processing,
        "it runs until its server stops it"
    );
    assert!(running.cancel_requested);
    for (key, job) in jobs.iter() {
        let (queue, name, state) = *key;
        if (queue, name) != ("mail", "send_invoice") || state.is_finished() {
            assert_eq!(
                row(&store, *job).await.state,
                state,
                "job {job} ({key:?}) is untouched"
            );
        }
    }
    assert_counts_agree(&store, jobs.values().copied(), "the cancels").await;
}

/// A delete of all matching jobs deletes every job the filter picks but
/// the running ones (which stay `processing`) and those already deleted;
/// the counts follow.
pub async fn act_matching_deletes_all_but_running_jobs<S: Store>(store: S) {
    let jobs = one_of_each(&store).await;
    let outcome = act(
        &store,
        JobActMatchingParams::new(JobAction::Delete, JobFilter::new().name("other_job")),
    )
    .await;
    let deletable = |(_, n, s): &(&str, &str, JobState)| {
        *n == "other_job" && !matches!(s, JobState::Processing | JobState::Deleted)
    };
    let expected = newest_first(
        jobs.iter()
            .filter(|(k, _)| deletable(k))
            .map(|(_, id)| *id)
            .collect(),
    );
    assert_eq!(
        outcome,
        JobActOutcome::new(expected.clone(), Vec::new(), false)
    );
    for (key, id) in jobs.iter() {
        let detail = get(&store, *id).await;
        if expected.contains(id) {
            assert_eq!(detail.job.state, JobState::Deleted, "job {id} ({key:?})");
            assert_eq!(
                detail.history.last().map(|e| e.state),
                Some(JobState::Deleted)
            );
        } else {
            assert_eq!(detail.job.state, key.2, "job {id} ({key:?}) is untouched");
        }
    }
    assert_counts_agree(&store, jobs.values().copied(), "the deletes").await;
}

/// A run now of all matching jobs makes exactly the `scheduled` jobs the
/// filter picks `enqueued` and claimable at once, as `job_run_now` does
/// (attempts kept, the transition in the history), newest first, and
/// changes no other job, `enqueued` ones included; the counts follow. A
/// filter on another state is refused.
pub async fn act_matching_runs_exactly_the_matching_scheduled_jobs_now<S: Store>(store: S) {
    let jobs = one_of_each(&store).await;
    let before = states_of(&store, jobs.values().copied()).await;
    let outcome = act(
        &store,
        JobActMatchingParams::new(JobAction::RunNow, JobFilter::new().queue("mail")),
    )
    .await;
    let expected = newest_first(vec![
        jobs[&("mail", "send_invoice", JobState::Scheduled)],
        jobs[&("mail", "other_job", JobState::Scheduled)],
    ]);
    assert_eq!(
        outcome,
        JobActOutcome::new(expected.clone(), Vec::new(), false)
    );
    for id in &expected {
        let detail = get(&store, *id).await;
        assert_eq!(detail.job.state, JobState::Enqueued, "job {id}");
        assert_eq!(detail.job.attempt, 0, "attempts are kept");
        assert_eq!(
            detail.history.last().map(|e| e.state),
            Some(JobState::Enqueued)
        );
    }
    let after = states_of(&store, jobs.values().copied()).await;
    for ((id, was), (_, now)) in before.iter().zip(&after) {
        let want = if expected.contains(id) {
            JobState::Enqueued
        } else {
            *was
        };
        assert_eq!(*now, want, "job {id}, {was} before the run now");
    }
    assert_counts_agree(&store, jobs.values().copied(), "the run now").await;
    let claimed = claim_with(
        &store,
        claim_params(ServerId::new(), &["mail"], &["send_invoice"], 10),
    )
    .await;
    assert!(
        claimed
            .iter()
            .any(|r| r.id == expected[0] || r.id == expected[1]),
        "a job run now is claimable at once"
    );
    for dry_run in [false, true] {
        let p = JobActMatchingParams::new(
            JobAction::RunNow,
            JobFilter::new().state(JobState::Enqueued),
        )
        .dry_run(dry_run);
        assert_kind(
            store.job_act_matching(p).await,
            StoreErrorKind::Invalid,
            "run now of enqueued jobs",
        );
    }
}

/// The cap is honoured: the newest `limit` matching jobs are taken, `more`
/// says others match, and the next call takes the next ones. A limit of 0
/// changes nothing and says whether any job matches.
pub async fn act_matching_honours_the_cap_newest_first<S: Store>(store: S) {
    let mut failed = Vec::new();
    for _ in 0..5 {
        failed.push(job_in(&store, "mail", "send_invoice", JobState::Failed).await);
    }
    let other = job_in(&store, "mail", "other_job", JobState::Failed).await;
    let filter = JobFilter::new()
        .state(JobState::Failed)
        .name("send_invoice");
    let retry = |limit| JobActMatchingParams::new(JobAction::Retry, filter.clone()).limit(limit);

    assert_eq!(
        act(&store, retry(0)).await,
        JobActOutcome::new(Vec::new(), Vec::new(), true)
    );
    let first = act(&store, retry(2)).await;
    assert_eq!(
        first,
        JobActOutcome::new(vec![failed[4], failed[3]], Vec::new(), true)
    );
    let rest = act(&store, retry(3)).await;
    assert_eq!(
        rest,
        JobActOutcome::new(vec![failed[2], failed[1], failed[0]], Vec::new(), false),
        "exactly the limit left: no more"
    );
    assert_eq!(
        act(&store, retry(3)).await,
        JobActOutcome::default(),
        "nothing left"
    );
    for id in &failed {
        assert_eq!(row(&store, *id).await.state, JobState::Enqueued);
    }
    assert_eq!(
        row(&store, other).await.state,
        JobState::Failed,
        "another name"
    );
}

/// A dry run changes nothing and names the jobs the same call would take,
/// running jobs under `requested` for a cancel.
pub async fn act_matching_dry_run_changes_nothing<S: Store>(store: S) {
    let jobs = one_of_each(&store).await;
    let before = states_of(&store, jobs.values().copied()).await;
    for action in [JobAction::Retry, JobAction::cancel(), JobAction::Delete] {
        for limit in [1, 3, 100] {
            let p = JobActMatchingParams::new(action.clone(), JobFilter::new().queue("mail"))
                .limit(limit);
            let preview = act(&store, p.clone().dry_run(true)).await;
            assert!(preview.count() > 0, "{} has jobs to take", action.as_str());
            assert_eq!(
                states_of(&store, jobs.values().copied()).await,
                before,
                "a dry run of {} changed jobs",
                action.as_str()
            );
            if limit == 100 {
                let kinds = |o: &JobActOutcome| (o.changed.len(), o.requested.len(), o.more);
                let expected = match action {
                    JobAction::Retry => (6, 0, false),
                    JobAction::Cancel { .. } => (6, 2, false),
                    _ => (12, 0, false),
                };
                assert_eq!(kinds(&preview), expected, "dry run of {}", action.as_str());
            }
        }
    }
    for action in [JobAction::Retry, JobAction::cancel(), JobAction::Delete] {
        let p = JobActMatchingParams::new(action.clone(), JobFilter::new().queue("other")).limit(3);
        let preview = act(&store, p.clone().dry_run(true)).await;
        let done = act(&store, p).await;
        assert_eq!(
            preview,
            done,
            "the dry run of {} named what it took",
            action.as_str()
        );
    }
}

/// A filter whose state the action never accepts (retrying `enqueued`
/// jobs, cancelling `failed` ones, deleting `processing` ones) is refused
/// as `Invalid`, and changes nothing.
pub async fn act_matching_refuses_a_state_the_action_never_accepts<S: Store>(store: S) {
    let jobs = one_of_each(&store).await;
    let before = states_of(&store, jobs.values().copied()).await;
    for (action, state) in [
        (JobAction::Retry, JobState::Enqueued),
        (JobAction::Retry, JobState::Succeeded),
        (JobAction::cancel(), JobState::Failed),
        (JobAction::Delete, JobState::Processing),
        (JobAction::Delete, JobState::Deleted),
    ] {
        for dry_run in [false, true] {
            let p = JobActMatchingParams::new(action.clone(), JobFilter::new().state(state))
                .dry_run(dry_run);
            assert_kind(
                store.job_act_matching(p).await,
                StoreErrorKind::Invalid,
                &format!("{} of {state} jobs", action.as_str()),
            );
        }
    }
    assert_eq!(states_of(&store, jobs.values().copied()).await, before);
}

/// If the store has a [`JobSignal`](crate::JobSignal), a retry of matching
/// jobs raises it (they are runnable at once), and a cancel that reaches
/// running jobs raises its cancel wake-up, as the single-job operations do.
pub async fn act_matching_raises_the_signal_for_retried_and_running_cancelled_jobs<S: Store>(
    store: S,
) {
    let Some(signal) = store.job_signal() else {
        return;
    };
    let mut wakes = signal.subscribe();
    let mut cancels = signal.subscribe_cancels();
    let failed = job_in(&store, "mail", "send_invoice", JobState::Failed).await;
    let running = job_in(&store, "mail", "send_invoice", JobState::Processing).await;
    // A store's listener may raise both once as it starts: let that pass first.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    wakes.mark_unchanged();
    let retry = JobActMatchingParams::new(JobAction::Retry, JobFilter::new().queue("mail"));
    assert_eq!(act(&store, retry).await.changed, vec![failed]);
    let raised = tokio::time::timeout(super::DEADLINE, wakes.changed()).await;
    assert!(
        matches!(raised, Ok(Ok(()))),
        "retrying matching jobs must raise the store's signal"
    );

    cancels.mark_unchanged();
    let filter = JobFilter::new().state(JobState::Processing);
    let cancel = JobActMatchingParams::new(JobAction::cancel(), filter);
    assert_eq!(act(&store, cancel).await.requested, vec![running]);
    let raised = tokio::time::timeout(super::DEADLINE, cancels.changed()).await;
    assert!(
        matches!(raised, Ok(Ok(()))),
        "cancelling matching running jobs must raise the store's cancel signal"
    );
}
