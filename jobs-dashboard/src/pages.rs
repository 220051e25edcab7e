//! The pages and the actions: each handler reads through the `Jobs` client,
//! turns what it got into a view, and renders its template.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::body::Bytes;
use axum::extract::{rejection::QueryRejection, Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use jobs_core::{
    CancelOutcome, JobActMatchingParams, JobAction, JobDetail, JobFilter, JobId, JobRow, JobState,
    ListJobs, StoreErrorKind, StrandedJobs,
};

use crate::assets::NAMES;
use crate::params::{
    Act, ArgsFilter, BulkForm, JobsQuery, Notice, NoticeQuery, QueueAct, QueueForm, RecurringAct,
    RecurringForm, DEFAULT_PAGE, MATCHING_CAP, MAX_ARGS, REFRESH_CHOICES,
};
use crate::routes::{refused_or, render, respond, App, Ctx, Failure};
use crate::view::{duration, human, shorten, thousands, Chart, When, CHART_SPANS};

/// How much of a job's arguments a list shows.
pub(crate) const ARGS_IN_LISTS: usize = 80;
/// An arguments search examines at most this many jobs per page: the
/// newest, below the page's `before`, of those its state, queue and name
/// pick (`ListJobs::scan`). No store indexes arguments (a GIN index would
/// cost every insert), so without a bound a match that few jobs have reads
/// back through every job of its state: 95 / 122 ms (p50 / p95) among the
/// 100,000 failed jobs of a million, against a page target of 50 ms; 27 /
/// 36 ms with this bound on a busy machine that gave 82 / 110 ms without it
/// (jobs-bench/README.md). A page that ends at the bound says so and links
/// to the next window down.
const ARGS_SCAN: u32 = 20_000;

/// What every page's layout needs.
pub(crate) struct Layout {
    pub(crate) root: String,
    pub(crate) home: String,
    pub(crate) css: String,
    pub(crate) js: String,
    pub(crate) title: String,
    pub(crate) nav: &'static str,
    pub(crate) notice: Option<String>,
    pub(crate) user: String,
    pub(crate) read_only: bool,
    /// Seconds between fragment refreshes, for the script (`data-refresh`).
    pub(crate) refresh: Option<u32>,
    /// The refresh choices: label, link (this page with `refresh` changed), current.
    pub(crate) refresh_links: Vec<(String, String, bool)>,
}

impl Layout {
    pub(crate) fn new(
        ctx: &Ctx,
        nav: &'static str,
        title: impl Into<String>,
        notice: Option<String>,
    ) -> Self {
        Layout {
            root: ctx.root.clone(),
            home: ctx.home.clone(),
            css: format!("{}assets/{}", ctx.root, NAMES.css),
            js: format!("{}assets/{}", ctx.root, NAMES.js),
            title: title.into(),
            nav,
            notice,
            user: ctx.user().to_owned(),
            read_only: ctx.read_only(),
            refresh: ctx.refresh.map(|r| r.0),
            refresh_links: refresh_links(ctx),
        }
    }
}

/// "off, 2 s, 5 s, ...": links to this page with its other parameters kept
/// (`?` alone resolves against the current path, so no prefix is needed).
fn refresh_links(ctx: &Ctx) -> Vec<(String, String, bool)> {
    let kept: Vec<(String, String)> = form_urlencoded::parse(ctx.query.as_bytes())
        .filter(|(k, _)| k != "refresh" && k != "notice" && k != "count" && k != "more")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let link = |refresh: Option<u32>| {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &kept {
            out.append_pair(k, v);
        }
        if let Some(r) = refresh {
            out.append_pair("refresh", &r.to_string());
        }
        format!("?{}", out.finish())
    };
    let current = ctx.refresh.map(|r| r.0);
    let mut links = vec![("off".to_owned(), link(None), current.is_none())];
    links.extend(
        REFRESH_CHOICES
            .iter()
            .map(|&r| (format!("{r} s"), link(Some(r)), current == Some(r))),
    );
    links
}

/// `a=1&b=2`, encoded, from the pairs whose value is set.
fn query_string(pairs: &[(&str, Option<String>)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        if let Some(value) = value {
            out.append_pair(key, value);
        }
    }
    out.finish()
}

/// `jobs?state=..&queue=..`: the list for a filter.
fn jobs_link(state: Option<JobState>, queue: Option<&str>, name: Option<&str>) -> String {
    filtered_link(state, queue, name, None)
}

/// [`jobs_link`] with an arguments filter too (its JSON text).
fn filtered_link(
    state: Option<JobState>,
    queue: Option<&str>,
    name: Option<&str>,
    args: Option<&str>,
) -> String {
    let q = query_string(&[
        ("state", state.map(|s| s.as_str().to_owned())),
        ("queue", queue.map(str::to_owned)),
        ("name", name.map(str::to_owned)),
        ("args", args.map(str::to_owned)),
    ]);
    if q.is_empty() {
        "jobs".to_owned()
    } else {
        format!("jobs?{q}")
    }
}

pub(crate) fn notice_target(
    base: &str,
    notice: Notice,
    count: Option<usize>,
    more: bool,
) -> String {
    let q = query_string(&[
        ("notice", Some(notice.as_str().to_owned())),
        ("count", count.map(|c| c.to_string())),
        ("more", more.then(|| "true".to_owned())),
    ]);
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{q}")
}

// ---------------------------------------------------------------- overview

struct CountRow {
    queue: String,
    cells: Vec<(i64, String)>,
    total: i64,
    /// Since when its oldest due job has waited, if it has one.
    oldest_due: Option<When>,
}

struct StrandedView {
    queue: String,
    name: String,
    reason: String,
    count: i64,
    oldest: When,
    link: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    layout: Layout,
    states: Vec<(&'static str, String)>,
    rows: Vec<CountRow>,
    totals: Vec<(i64, String)>,
    /// The oldest due job of every queue.
    oldest_due: Option<When>,
    servers_up: usize,
    servers_stale: usize,
    running: u64,
    concurrency: u64,
    claimed_ahead: u64,
    stranded: Vec<StrandedView>,
    chart: Chart,
    /// The chart's spans: label, link (this page with `hours` changed), current.
    chart_links: Vec<(String, String, bool)>,
}

/// The overview's query: the chart's span, in hours (one of [`CHART_SPANS`]).
#[derive(serde::Deserialize)]
pub(crate) struct OverviewQuery {
    #[serde(default, deserialize_with = "crate::params::opt")]
    hours: Option<i64>,
}

/// "last hour, 6 h, 24 h": links to the overview with its other parameters
/// kept.
fn chart_links(ctx: &Ctx, current: i64) -> Vec<(String, String, bool)> {
    let kept: Vec<(String, String)> = form_urlencoded::parse(ctx.query.as_bytes())
        .filter(|(k, _)| k != "hours")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    CHART_SPANS
        .iter()
        .map(|&(hours, _)| {
            let mut out = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &kept {
                out.append_pair(k, v);
            }
            if hours != CHART_SPANS[0].0 {
                out.append_pair("hours", &hours.to_string());
            }
            let label = if hours == 1 {
                "last hour".to_owned()
            } else {
                format!("{hours} h")
            };
            (label, format!("?{}", out.finish()), hours == current)
        })
        .collect()
}

pub(crate) async fn overview(
    ctx: Ctx,
    State(app): State<App>,
    query: Result<Query<OverviewQuery>, QueryRejection>,
) -> Response {
    let result = async {
        let Query(query) = query.map_err(|e| Failure::BadRequest(e.body_text()))?;
        let span = match query.hours {
            None => CHART_SPANS[0],
            Some(hours) => CHART_SPANS
                .iter()
                .copied()
                .find(|&(h, _)| h == hours)
                .ok_or_else(|| Failure::BadRequest("`hours` must be 1, 6 or 24".to_owned()))?,
        };
        let now = Utc::now();
        let counts = app.cache.counts(&app.jobs).await?;
        let oldest: BTreeMap<String, chrono::DateTime<Utc>> = app
            .jobs
            .queues()
            .list()
            .await?
            .into_iter()
            .filter_map(|q| Some((q.queue, q.oldest_due?)))
            .collect();
        let summary = app.jobs.server_summary().await?;
        let stranded = app.cache.stranded(&app.jobs).await?;
        let window = std::time::Duration::from_secs(span.0.unsigned_abs() * 3600);
        let chart = Chart::new(&app.jobs.throughput(window).await?, now, span);

        let mut by_queue: BTreeMap<String, BTreeMap<&'static str, i64>> = BTreeMap::new();
        for c in counts.iter() {
            *by_queue
                .entry(c.queue.clone())
                .or_default()
                .entry(c.state.as_str())
                .or_default() += c.count;
        }
        let rows = by_queue
            .iter()
            .map(|(queue, per_state)| CountRow {
                queue: queue.clone(),
                cells: JobState::ALL
                    .iter()
                    .map(|s| {
                        let n = per_state.get(s.as_str()).copied().unwrap_or(0);
                        (n, jobs_link(Some(*s), Some(queue), None))
                    })
                    .collect(),
                total: per_state.values().sum(),
                oldest_due: oldest.get(queue).map(|t| When::new(*t, now)),
            })
            .collect();
        let totals = JobState::ALL
            .iter()
            .map(|s| {
                let n = counts
                    .iter()
                    .filter(|c| c.state == *s)
                    .map(|c| c.count)
                    .sum();
                (n, jobs_link(Some(*s), None, None))
            })
            .collect();
        let stale = summary
            .servers
            .iter()
            .filter(|s| s.is_stale_at(now))
            .count();
        let page = OverviewPage {
            layout: Layout::new(&ctx, "overview", "Overview", None),
            states: JobState::ALL
                .iter()
                .map(|s| (s.as_str(), jobs_link(Some(*s), None, None)))
                .collect(),
            rows,
            totals,
            oldest_due: oldest.values().min().map(|t| When::new(*t, now)),
            servers_up: summary.servers.len() - stale,
            servers_stale: stale,
            running: summary.running,
            concurrency: summary.concurrency,
            claimed_ahead: summary.claimed_ahead,
            stranded: stranded.iter().map(|g| stranded_view(g, now)).collect(),
            chart_links: chart_links(&ctx, chart.hours),
            chart,
        };
        Ok(render(&page))
    }
    .await;
    respond(&ctx, result)
}

fn stranded_view(g: &StrandedJobs, now: chrono::DateTime<Utc>) -> StrandedView {
    StrandedView {
        queue: g.queue.clone(),
        name: g.name.clone(),
        reason: g.reason.to_string(),
        count: g.count,
        oldest: When::new(g.oldest_due, now),
        link: jobs_link(None, Some(&g.queue), Some(&g.name)),
    }
}

// ---------------------------------------------------------------- jobs list

struct JobListRow {
    id: i64,
    name: String,
    queue: String,
    state: &'static str,
    attempt: String,
    args: Option<String>,
    created: When,
    run_at: When,
    error: Option<String>,
    stranded: bool,
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    layout: Layout,
    tabs: Vec<(&'static str, String, bool)>,
    state: String,
    queue: String,
    name: String,
    /// The arguments filter, as compact JSON.
    args: String,
    max_args: usize,
    /// Whether the arguments filter is offered (not where arguments are redacted).
    args_search: bool,
    limit: u32,
    show_args: bool,
    rows: Vec<JobListRow>,
    next: Option<String>,
    first: Option<String>,
    /// When an arguments search ended at [`ARGS_SCAN`] before the page was
    /// full: the oldest job examined, and the link that searches below it.
    scan_stopped: Option<(i64, String)>,
    /// [`ARGS_SCAN`], as text.
    args_scan: String,
    filter_text: String,
    matching_cap: u32,
    retry_allowed: bool,
    cancel_allowed: bool,
    delete_allowed: bool,
    run_now_allowed: bool,
}

pub(crate) async fn jobs(
    ctx: Ctx,
    State(app): State<App>,
    query: Result<Query<JobsQuery>, QueryRejection>,
) -> Response {
    let result = async {
        let Query(q) = query.map_err(|e| Failure::BadRequest(e.body_text()))?;
        if let Some(id) = q.id {
            // The lookup form: its page says whether the job exists.
            return Ok(ctx.redirect(&format!("jobs/{id}")));
        }
        if q.args.is_some() {
            refuse_args_search(&app)?;
        }
        let now = Utc::now();
        let limit = q.limit.map_or(DEFAULT_PAGE, |l| l.0);
        let queue = q.queue.map(|t| t.0);
        let name = q.name.map(|t| t.0);
        let args = q.args.as_ref().map(ArgsFilter::text);
        let mut which = ListJobs::new().limit(limit);
        if let Some(state) = q.state {
            which = which.state(state);
        }
        if let Some(queue) = &queue {
            which = which.queue(queue.clone());
        }
        if let Some(name) = &name {
            which = which.name(name.clone());
        }
        if let Some(filter) = &q.args {
            which = which.args(filter.0.clone()).scan(ARGS_SCAN);
        }
        if let Some(before) = q.before {
            which = which.before(JobId(before));
        }
        let page = app.jobs.list_page(which).await?;
        let rows = page.jobs;
        let stranded: BTreeSet<(String, String)> = app
            .cache
            .stranded(&app.jobs)
            .await?
            .iter()
            .map(|g| (g.queue.clone(), g.name.clone()))
            .collect();
        let page_link = |before: Option<i64>| {
            let q = query_string(&[
                ("state", q.state.map(|s| s.as_str().to_owned())),
                ("queue", queue.clone()),
                ("name", name.clone()),
                ("args", args.clone()),
                ("limit", (limit != DEFAULT_PAGE).then(|| limit.to_string())),
                ("before", before.map(|b| b.to_string())),
            ]);
            format!("jobs?{q}")
        };
        let next = (rows.len() == limit as usize)
            .then(|| rows.last().map(|r| page_link(Some(r.id.0))))
            .flatten();
        let first = q.before.is_some().then(|| page_link(None));
        let scan_stopped = page
            .scanned_to
            .map(|stop| (stop.0, page_link(Some(stop.0))));
        let show_args = !app.options.hide_args_in_lists;
        let view_rows = rows
            .iter()
            .map(|job| JobListRow {
                id: job.id.0,
                name: job.name.clone(),
                queue: job.queue.clone(),
                state: job.state.as_str(),
                attempt: format!("{} of {}", job.attempt, job.max_attempts),
                args: show_args.then(|| shorten(&shown_args(&app, job), ARGS_IN_LISTS)),
                created: When::new(job.created_at, now),
                run_at: When::new(job.run_at, now),
                error: job
                    .last_error
                    .as_ref()
                    .map(|e| shorten_text(e, ARGS_IN_LISTS)),
                stranded: matches!(job.state, JobState::Enqueued | JobState::Scheduled)
                    && stranded.contains(&(job.queue.clone(), job.name.clone())),
            })
            .collect();
        let tab = |state: Option<JobState>| {
            filtered_link(state, queue.as_deref(), name.as_deref(), args.as_deref())
        };
        let mut tabs = vec![("all", tab(None), q.state.is_none())];
        tabs.extend(
            JobState::ALL
                .iter()
                .map(|s| (s.as_str(), tab(Some(*s)), q.state == Some(*s))),
        );
        let filter_text = [
            q.state.map(|s| format!("state {s}")),
            queue.as_ref().map(|v| format!("queue {v}")),
            name.as_ref().map(|v| format!("name {v}")),
            args.as_ref().map(|v| format!("arguments containing {v}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        let accepts = |action: JobAction| {
            q.state
                .is_none_or(|s| action.accepted_states().contains(&s))
        };
        let page = JobsPage {
            layout: Layout::new(&ctx, "jobs", "Jobs", q.notice.text()),
            tabs,
            state: q.state.map(|s| s.as_str().to_owned()).unwrap_or_default(),
            queue: queue.clone().unwrap_or_default(),
            name: name.clone().unwrap_or_default(),
            args: args.clone().unwrap_or_default(),
            max_args: MAX_ARGS,
            args_search: app.options.redact.is_none(),
            limit,
            show_args,
            rows: view_rows,
            next,
            first,
            scan_stopped,
            args_scan: thousands(ARGS_SCAN),
            filter_text: if filter_text.is_empty() {
                "every job".to_owned()
            } else {
                filter_text
            },
            matching_cap: MATCHING_CAP,
            retry_allowed: accepts(JobAction::Retry),
            cancel_allowed: accepts(JobAction::cancel()),
            delete_allowed: accepts(JobAction::Delete),
            run_now_allowed: accepts(JobAction::RunNow),
        };
        Ok(render(&page))
    }
    .await;
    respond(&ctx, result)
}

pub(crate) fn shorten_text(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

/// The arguments as the application lets pages show them.
pub(crate) fn shown_args(app: &App, job: &JobRow) -> serde_json::Value {
    match &app.options.redact {
        Some(redact) => redact(&job.name, &job.args),
        None => job.args.clone(),
    }
}

/// Searching arguments is off where the application redacts them: the
/// search reads the stored arguments, so it would let a viewer test a guess
/// about a redacted value.
fn refuse_args_search(app: &App) -> Result<(), Failure> {
    if app.options.redact.is_some() {
        return Err(Failure::BadRequest(
            "Searching arguments is off: this dashboard redacts arguments, and a search \
             would test the stored ones."
                .to_owned(),
        ));
    }
    Ok(())
}

pub(crate) async fn bulk(ctx: Ctx, State(app): State<App>, body: Bytes) -> Response {
    let result = async {
        let form = BulkForm::parse(&body).map_err(Failure::BadRequest)?;
        if form.args.is_some() {
            refuse_args_search(&app)?;
        }
        let args = form.args.as_ref().map(ArgsFilter::text);
        let back = filtered_link(
            form.state,
            form.queue.as_ref().map(|t| t.0.as_str()),
            form.name.as_ref().map(|t| t.0.as_str()),
            args.as_deref(),
        );
        let action = match form.act {
            Act::Retry => JobAction::Retry,
            Act::Cancel => JobAction::cancel(),
            Act::Delete => JobAction::Delete,
            Act::RunNow => JobAction::RunNow,
        };
        let done = if form.matching {
            let mut filter = JobFilter::new();
            if let Some(state) = form.state {
                filter = filter.state(state);
            }
            if let Some(queue) = &form.queue {
                filter = filter.queue(queue.0.clone());
            }
            if let Some(name) = &form.name {
                filter = filter.name(name.0.clone());
            }
            if let Some(args) = &form.args {
                filter = filter.args(args.0.clone());
            }
            let params = JobActMatchingParams::new(action, filter.clone()).limit(MATCHING_CAP);
            match app.jobs.act_matching(params).await {
                Ok(outcome) => {
                    let ids: Vec<i64> = outcome
                        .changed
                        .iter()
                        .chain(&outcome.requested)
                        .map(|id| id.0)
                        .collect();
                    tracing::info!(
                        user = ctx.user(),
                        action = form.act.as_str(),
                        scope = "matching",
                        filter = ?filter,
                        job_ids = ?ids,
                        more = outcome.more,
                        "dashboard action"
                    );
                    notice_target(&back, done_notice(form.act), Some(ids.len()), outcome.more)
                }
                Err(error) => {
                    let notice = refused_or(error)?;
                    notice_target(&back, notice, None, false)
                }
            }
        } else {
            let mut changed = Vec::new();
            for id in &form.ids {
                let outcome = match form.act {
                    Act::Retry => app.jobs.retry(JobId(*id)).await,
                    Act::Cancel => app.jobs.cancel(JobId(*id)).await.map(|_| ()),
                    Act::Delete => app.jobs.delete(JobId(*id)).await,
                    Act::RunNow => app.jobs.run_now(JobId(*id)).await,
                };
                match outcome {
                    Ok(()) => changed.push(*id),
                    // A selected job that changed state meanwhile, or is gone: skipped.
                    Err(error) => {
                        refused_or(error).or_else(|f| match f {
                            Failure::NotFound(_) => Ok(Notice::Refused),
                            other => Err(other),
                        })?;
                    }
                }
            }
            tracing::info!(
                user = ctx.user(),
                action = form.act.as_str(),
                scope = "selected",
                job_ids = ?changed,
                "dashboard action"
            );
            notice_target(&back, done_notice(form.act), Some(changed.len()), false)
        };
        Ok(ctx.redirect(&done))
    }
    .await;
    respond(&ctx, result)
}

fn done_notice(act: Act) -> Notice {
    match act {
        Act::Retry => Notice::Retried,
        Act::Cancel => Notice::Cancelled,
        Act::Delete => Notice::Deleted,
        Act::RunNow => Notice::RanNow,
    }
}

// ---------------------------------------------------------------- one job

struct EventView {
    at: When,
    state: &'static str,
    attempt: i32,
    server: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage {
    layout: Layout,
    id: i64,
    name: String,
    queue: String,
    state: &'static str,
    attempt: i32,
    max_attempts: i32,
    priority: i16,
    args: String,
    created: When,
    run_at: When,
    finished: Option<When>,
    run_time: Option<String>,
    progress_percent: Option<u64>,
    progress_message: Option<String>,
    server: Option<String>,
    cancel_requested: bool,
    stuck_since: Option<When>,
    recurring: Option<(String, When)>,
    unique_key: Option<String>,
    /// Its key limit: the key, and how many with it may run at once.
    limit_key: Option<(String, u32)>,
    batch: Option<i64>,
    /// The job it continues, and on which of its ends.
    after: Option<(i64, &'static str)>,
    /// What it returned when it succeeded, pretty-printed.
    output: Option<String>,
    last_error: Option<String>,
    history: Vec<EventView>,
    can_retry: bool,
    can_cancel: bool,
    can_delete: bool,
    can_run_now: bool,
}

pub(crate) async fn job(
    ctx: Ctx,
    State(app): State<App>,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
    notice: Result<Query<NoticeQuery>, QueryRejection>,
) -> Response {
    let result = async {
        let Path(id) = id.map_err(|e| Failure::BadRequest(e.body_text()))?;
        let Some(detail) = app.jobs.get(JobId(id)).await? else {
            return Err(Failure::NotFound(format!("No job has the id {id}.")));
        };
        let Query(notice) = notice.map_err(|e| Failure::BadRequest(e.body_text()))?;
        let notice = notice.text();
        Ok(render(&job_page(&ctx, &app, detail, notice)))
    }
    .await;
    respond(&ctx, result)
}

fn job_page(ctx: &Ctx, app: &App, detail: JobDetail, notice: Option<String>) -> JobPage {
    let now = Utc::now();
    let job = &detail.job;
    let args = serde_json::to_string_pretty(&shown_args(app, job)).unwrap_or_default();
    // The run time of the latest attempt: from its `processing` event to the
    // next event, or to now while it runs.
    let started = detail
        .history
        .iter()
        .rposition(|e| e.state == JobState::Processing);
    let run_time = started.map(|i| {
        let from = detail.history[i].at;
        let to = detail.history.get(i + 1).map_or(now, |e| e.at);
        let text = duration(to - from);
        if job.state == JobState::Processing {
            format!("{text} so far")
        } else {
            text
        }
    });
    let progress = job.progress.as_ref();
    JobPage {
        layout: Layout::new(ctx, "jobs", format!("Job {}", job.id.0), notice),
        id: job.id.0,
        name: job.name.clone(),
        queue: job.queue.clone(),
        state: job.state.as_str(),
        attempt: job.attempt,
        max_attempts: job.max_attempts,
        priority: job.priority,
        args,
        created: When::new(job.created_at, now),
        run_at: When::new(job.run_at, now),
        finished: job.finished_at.map(|t| When::new(t, now)),
        run_time,
        progress_percent: progress
            .and_then(|p| p.get("percent"))
            .and_then(|p| p.as_u64()),
        progress_message: progress
            .and_then(|p| p.get("message"))
            .and_then(|m| m.as_str())
            .map(str::to_owned),
        server: job.server_id.map(|s| s.to_string()),
        cancel_requested: job.cancel_requested,
        stuck_since: job.stuck_since.map(|t| When::new(t, now)),
        recurring: job
            .recurring
            .as_ref()
            .map(|r| (r.id.clone(), When::new(r.scheduled_for, now))),
        unique_key: job.unique_key.clone(),
        limit_key: job.limit_key.as_ref().map(|l| (l.key.clone(), l.running)),
        batch: job.batch.map(|b| b.0),
        after: job.after.as_ref().map(|after| {
            let on = match (&after.input, after.on) {
                (Some(_), _) => "on its output",
                (None, jobs_core::ContinueOn::Success) => "on its success",
                _ => "on any end",
            };
            (after.parent.0, on)
        }),
        output: job
            .output
            .as_ref()
            .map(|output| serde_json::to_string_pretty(output).unwrap_or_default()),
        last_error: job.last_error.clone(),
        history: detail
            .history
            .iter()
            .map(|e| EventView {
                at: When::new(e.at, now),
                state: e.state.as_str(),
                attempt: e.attempt,
                server: e.server_id.map(|s| s.to_string()).unwrap_or_default(),
                error: e.error.clone(),
            })
            .collect(),
        can_retry: JobAction::Retry.accepted_states().contains(&job.state),
        can_cancel: JobAction::cancel().accepted_states().contains(&job.state),
        can_delete: JobAction::Delete.accepted_states().contains(&job.state),
        can_run_now: JobAction::RunNow.accepted_states().contains(&job.state),
    }
}

pub(crate) async fn job_action(
    ctx: Ctx,
    State(app): State<App>,
    path: Result<Path<(i64, String)>, axum::extract::rejection::PathRejection>,
) -> Response {
    let result = async {
        let Path((id, action)) = path.map_err(|e| Failure::BadRequest(e.body_text()))?;
        let act: Act = action.parse().map_err(Failure::BadRequest)?;
        let outcome = match act {
            Act::Retry => app.jobs.retry(JobId(id)).await.map(|()| Notice::Retried),
            Act::Cancel => app.jobs.cancel(JobId(id)).await.map(|o| match o {
                CancelOutcome::Requested => Notice::CancelRequested,
                _ => Notice::Cancelled,
            }),
            Act::Delete => app.jobs.delete(JobId(id)).await.map(|()| Notice::Deleted),
            Act::RunNow => app.jobs.run_now(JobId(id)).await.map(|()| Notice::RanNow),
        };
        let notice = match outcome {
            Ok(notice) => {
                tracing::info!(user = ctx.user(), action = act.as_str(), job_ids = ?[id], "dashboard action");
                notice
            }
            Err(error) => refused_or(error)?,
        };
        Ok(ctx.redirect(&notice_target(&format!("jobs/{id}"), notice, None, false)))
    }
    .await;
    respond(&ctx, result)
}

// ---------------------------------------------------------------- recurring

struct RecurringView {
    id: String,
    name: String,
    schedule: String,
    time_zone: String,
    next: Option<When>,
    last: Option<When>,
    last_job: Option<(i64, String)>,
    paused: bool,
    misfire: String,
    overlap: String,
}

#[derive(Template)]
#[template(path = "recurring.html")]
struct RecurringPage {
    layout: Layout,
    entries: Vec<RecurringView>,
}

pub(crate) async fn recurring(
    ctx: Ctx,
    State(app): State<App>,
    notice: Result<Query<NoticeQuery>, QueryRejection>,
) -> Response {
    let result = async {
        let Query(notice) = notice.map_err(|e| Failure::BadRequest(e.body_text()))?;
        let now = Utc::now();
        let rows = app.jobs.recurring().list().await?;
        let page = RecurringPage {
            layout: Layout::new(&ctx, "recurring", "Recurring jobs", notice.text()),
            entries: rows
                .into_iter()
                .map(|r| RecurringView {
                    id: r.def.id.clone(),
                    name: r.def.job.name.clone(),
                    schedule: r.def.schedule.clone(),
                    time_zone: r.def.time_zone.clone(),
                    next: r.next_run_at.map(|t| When::new(t, now)),
                    last: r.last_run_at.map(|t| When::new(t, now)),
                    last_job: r.last_job_id.map(|id| {
                        (
                            id.0,
                            r.last_job_state
                                .map_or("removed", |s| s.as_str())
                                .to_owned(),
                        )
                    }),
                    paused: r.paused,
                    misfire: r.def.misfire.to_string(),
                    overlap: r.def.overlap.to_string(),
                })
                .collect(),
        };
        Ok(render(&page))
    }
    .await;
    respond(&ctx, result)
}

pub(crate) async fn recurring_action(
    ctx: Ctx,
    State(app): State<App>,
    form: Result<Form<RecurringForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let result = async {
        let Form(form) = form.map_err(|e| Failure::BadRequest(e.body_text()))?;
        let recurring = app.jobs.recurring();
        let id = form.id.0.as_str();
        let done = match form.action {
            RecurringAct::Trigger => recurring
                .trigger(id)
                .await
                .map(|job| (Notice::Triggered, vec![job.0])),
            RecurringAct::Pause => recurring.pause(id).await.map(|()| (Notice::Paused, vec![])),
            RecurringAct::Resume => recurring
                .resume(id)
                .await
                .map(|()| (Notice::Resumed, vec![])),
            RecurringAct::Remove => match recurring.remove(id).await {
                Ok(true) => Ok((Notice::Removed, vec![])),
                Ok(false) => {
                    return Err(Failure::NotFound(format!(
                        "No recurring job has the id {id}."
                    )))
                }
                Err(e) => Err(e),
            },
        };
        let notice = match done {
            Ok((notice, job_ids)) => {
                tracing::info!(
                    user = ctx.user(),
                    action = form.action.as_str(),
                    recurring = id,
                    job_ids = ?job_ids,
                    "dashboard action"
                );
                notice
            }
            Err(error) => refused_or(error).map_err(|f| match f {
                Failure::NotFound(_) => {
                    Failure::NotFound(format!("No recurring job has the id {id}."))
                }
                other => other,
            })?,
        };
        Ok(ctx.redirect(&notice_target("recurring", notice, None, false)))
    }
    .await;
    respond(&ctx, result)
}

// ---------------------------------------------------------------- queues

/// A count on the queues page, and the list of its jobs.
struct QueueCell {
    count: i64,
    link: String,
}

struct QueueView {
    queue: String,
    link: String,
    /// Enqueued and scheduled: waiting.
    waiting: Vec<QueueCell>,
    /// Since when its oldest due job has waited, if it has one.
    oldest_due: Option<When>,
    /// Processing, failed.
    cells: Vec<QueueCell>,
    paused_since: Option<When>,
    paused: bool,
    /// Its cluster-wide limits in words, if it has any.
    limits: Option<String>,
}

/// A queue's cluster-wide limits in words: "at most 16 running, 100 started
/// per minute".
fn describe_limits(limits: &jobs_core::QueueLimits) -> Option<String> {
    let running = limits.concurrency.map(|n| format!("at most {n} running"));
    let rate = limits.rate.map(|r| {
        let secs = r.per.as_secs();
        let per = match secs {
            1 => "second".to_owned(),
            60 => "minute".to_owned(),
            3600 => "hour".to_owned(),
            86_400 => "day".to_owned(),
            _ if secs % 86_400 == 0 => format!("{} d", secs / 86_400),
            _ if secs % 3600 == 0 => format!("{} h", secs / 3600),
            _ if secs % 60 == 0 => format!("{} min", secs / 60),
            _ => format!("{secs} s"),
        };
        format!("{} started per {per}", r.jobs)
    });
    let said: Vec<String> = running.into_iter().chain(rate).collect();
    (!said.is_empty()).then(|| said.join(", "))
}

/// The states the queues page counts as waiting, in its columns' order.
const WAITING_COLUMNS: [JobState; 2] = [JobState::Enqueued, JobState::Scheduled];
/// The other states the queues page counts, after the oldest due job.
const QUEUE_COLUMNS: [JobState; 2] = [JobState::Processing, JobState::Failed];

#[derive(Template)]
#[template(path = "queues.html")]
struct QueuesPage {
    layout: Layout,
    queues: Vec<QueueView>,
}

pub(crate) async fn queues(
    ctx: Ctx,
    State(app): State<App>,
    notice: Result<Query<NoticeQuery>, QueryRejection>,
) -> Response {
    let result = async {
        let Query(notice) = notice.map_err(|e| Failure::BadRequest(e.body_text()))?;
        let now = Utc::now();
        // Every queue the store knows: those it lists (with jobs, or ever
        // paused) and those its counts name, by name.
        type Known = (
            bool,
            Option<chrono::DateTime<Utc>>,
            Option<chrono::DateTime<Utc>>,
            jobs_core::QueueLimits,
        );
        let mut known: BTreeMap<String, Known> = app
            .jobs
            .queues()
            .list()
            .await?
            .into_iter()
            .map(|q| (q.queue, (q.paused, q.paused_at, q.oldest_due, q.limits)))
            .collect();
        let mut counts: BTreeMap<(String, &'static str), i64> = BTreeMap::new();
        for c in app.cache.counts(&app.jobs).await?.iter().cloned() {
            known.entry(c.queue.clone()).or_default();
            *counts.entry((c.queue, c.state.as_str())).or_default() += c.count;
        }
        let cell = |queue: &str, state: JobState| QueueCell {
            count: counts
                .get(&(queue.to_owned(), state.as_str()))
                .copied()
                .unwrap_or(0),
            link: jobs_link(Some(state), Some(queue), None),
        };
        let page = QueuesPage {
            layout: Layout::new(&ctx, "queues", "Queues", notice.text()),
            queues: known
                .iter()
                .map(
                    |(queue, (paused, paused_at, oldest_due, limits))| QueueView {
                        queue: queue.clone(),
                        link: jobs_link(None, Some(queue), None),
                        waiting: WAITING_COLUMNS.iter().map(|s| cell(queue, *s)).collect(),
                        oldest_due: oldest_due.map(|t| When::new(t, now)),
                        cells: QUEUE_COLUMNS.iter().map(|s| cell(queue, *s)).collect(),
                        paused_since: paused_at.map(|t| When::new(t, now)),
                        paused: *paused,
                        limits: describe_limits(limits),
                    },
                )
                .collect(),
        };
        Ok(render(&page))
    }
    .await;
    respond(&ctx, result)
}

pub(crate) async fn queue_action(
    ctx: Ctx,
    State(app): State<App>,
    form: Result<Form<QueueForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let result = async {
        let Form(form) = form.map_err(|e| Failure::BadRequest(e.body_text()))?;
        let queue = form.queue.0.as_str();
        let queues = app.jobs.queues();
        let done = match form.action {
            QueueAct::Pause => queues.pause(queue).await.map(|()| Notice::QueuePaused),
            QueueAct::Resume => queues.resume(queue).await.map(|()| Notice::QueueResumed),
        };
        let notice = match done {
            Ok(notice) => {
                tracing::info!(
                    user = ctx.user(),
                    action = form.action.as_str(),
                    queue,
                    "dashboard action"
                );
                notice
            }
            // A name the store refuses is the request's fault, not the store's.
            Err(jobs_core::Error::Store(e)) if e.kind() == StoreErrorKind::Invalid => {
                return Err(Failure::BadRequest(format!(
                    "The queue name is refused: {e}"
                )))
            }
            Err(error) => return Err(Failure::Store(error)),
        };
        Ok(ctx.redirect(&notice_target("queues", notice, None, false)))
    }
    .await;
    respond(&ctx, result)
}

// ---------------------------------------------------------------- servers

struct ServerView {
    id: String,
    host: String,
    pid: u32,
    queues: String,
    concurrency: u32,
    running: u32,
    claimed_ahead: u32,
    started: When,
    heartbeat_age: String,
    /// The latest heartbeat in UTC.
    heartbeat_utc: String,
    /// The server's own `stale_after`, as text.
    stale_after: String,
    stale: bool,
}

#[derive(Template)]
#[template(path = "servers.html")]
struct ServersPage {
    layout: Layout,
    servers: Vec<ServerView>,
}

pub(crate) async fn servers(ctx: Ctx, State(app): State<App>) -> Response {
    let result = async {
        let now = Utc::now();
        let servers = app.jobs.servers().await?;
        let page = ServersPage {
            layout: Layout::new(&ctx, "servers", "Servers", None),
            servers: servers
                .into_iter()
                .map(|s| {
                    let age = (now - s.heartbeat_at).num_seconds().max(0);
                    // By the server's own heartbeat interval: servers
                    // sharing a store may beat at different intervals.
                    let stale = s.is_stale_at(now);
                    ServerView {
                        id: s.id.to_string(),
                        host: s.host,
                        pid: s.pid,
                        queues: s.queues.join(", "),
                        concurrency: s.concurrency,
                        running: s.running,
                        claimed_ahead: s.claimed_ahead,
                        started: When::new(s.started_at, now),
                        heartbeat_age: human(age as u64),
                        heartbeat_utc: When::new(s.heartbeat_at, now).utc,
                        stale_after: human(s.stale_after.as_secs()),
                        stale,
                    }
                })
                .collect(),
        };
        Ok(render(&page))
    }
    .await;
    respond(&ctx, result)
}

// ---------------------------------------------------------------- errors

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    status: u16,
    message: &'a str,
}

pub(crate) fn error_page(ctx: &Ctx, status: StatusCode, message: &str) -> Response {
    let page = ErrorPage {
        layout: Layout::new(ctx, "", status.canonical_reason().unwrap_or("Error"), None),
        status: status.as_u16(),
        message,
    };
    (status, render(&page)).into_response()
}

pub(crate) async fn not_found(ctx: Ctx) -> Response {
    error_page(&ctx, StatusCode::NOT_FOUND, "No such page.")
}
