//! The batches pages: the list of batches with their progress, one batch
//! with its callback and a page of its jobs, and cancelling a batch.

use askama::Template;
use axum::extract::{rejection::PathRejection, rejection::QueryRejection, Path, Query, State};
use axum::response::Response;
use chrono::Utc;
use jobs_core::{BatchId, BatchRow, ContinueOn, JobId, JobState};
use serde::Deserialize;

use crate::pages::{notice_target, shorten_text, shown_args, Layout, ARGS_IN_LISTS};
use crate::params::{opt, Notice, NoticeQuery, PageSize, DEFAULT_PAGE};
use crate::routes::{render, respond, App, Ctx, Failure};
use crate::view::When;

/// The batches list's and a batch page's parameters: the keyset cursor and
/// the page's size.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PageQuery {
    #[serde(default, deserialize_with = "opt")]
    before: Option<i64>,
    #[serde(default, deserialize_with = "opt")]
    limit: Option<PageSize>,
    #[serde(flatten)]
    notice: NoticeQuery,
}

/// A batch as the pages show it.
struct BatchView {
    id: i64,
    created: When,
    total: i64,
    pending: i64,
    succeeded: i64,
    failed: i64,
    cancelled: i64,
    /// Ended members, in percent of all (100 for an empty batch).
    percent: i64,
    finished: Option<When>,
    callback: Option<i64>,
    /// "on success" or "on any end".
    callback_on: &'static str,
}

impl BatchView {
    fn new(batch: &BatchRow, now: chrono::DateTime<Utc>) -> Self {
        let percent = match batch.total {
            0 => 100,
            total => batch.ended() * 100 / total,
        };
        BatchView {
            id: batch.id.0,
            created: When::new(batch.created_at, now),
            total: batch.total,
            pending: batch.pending,
            succeeded: batch.succeeded,
            failed: batch.failed,
            cancelled: batch.cancelled,
            percent,
            finished: batch.finished_at.map(|t| When::new(t, now)),
            callback: batch.callback.map(|id| id.0),
            callback_on: match batch.callback_on {
                Some(ContinueOn::Success) => "when all succeeded",
                Some(_) => "when all ended",
                None => "",
            },
        }
    }
}

#[derive(Template)]
#[template(path = "batches.html")]
struct BatchesPage {
    layout: Layout,
    batches: Vec<BatchView>,
    next: Option<String>,
}

pub(crate) async fn batches(
    ctx: Ctx,
    State(app): State<App>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let result = async {
        let Query(query) = query.map_err(|e| Failure::BadRequest(e.body_text()))?;
        let limit = query.limit.map_or(DEFAULT_PAGE, |l| l.0);
        let now = Utc::now();
        // One more than shown, to know whether an older page exists.
        let mut rows = app
            .jobs
            .batches()
            .list(query.before.map(BatchId), limit + 1)
            .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = more
            .then(|| {
                rows.last()
                    .map(|b| format!("batches?before={}&limit={limit}", b.id))
            })
            .flatten();
        let page = BatchesPage {
            layout: Layout::new(&ctx, "batches", "Batches", query.notice.text()),
            batches: rows.iter().map(|b| BatchView::new(b, now)).collect(),
            next,
        };
        Ok(render(&page))
    }
    .await;
    respond(&ctx, result)
}

struct MemberView {
    id: i64,
    name: String,
    state: &'static str,
    attempt: String,
    args: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "batch.html")]
struct BatchPage {
    layout: Layout,
    batch: BatchView,
    callback_state: Option<&'static str>,
    can_cancel: bool,
    show_args: bool,
    members: Vec<MemberView>,
    next: Option<String>,
    first: Option<String>,
}

pub(crate) async fn batch(
    ctx: Ctx,
    State(app): State<App>,
    id: Result<Path<i64>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let result = async {
        let Path(id) = id.map_err(|e| Failure::BadRequest(e.body_text()))?;
        let Query(query) = query.map_err(|e| Failure::BadRequest(e.body_text()))?;
        let batches = app.jobs.batches();
        let Some(batch) = batches.get(BatchId(id)).await? else {
            return Err(Failure::NotFound(format!("No batch has the id {id}.")));
        };
        let limit = query.limit.map_or(DEFAULT_PAGE, |l| l.0);
        let mut members = batches
            .members(BatchId(id), query.before.map(JobId), limit + 1)
            .await?;
        let more = members.len() > limit as usize;
        members.truncate(limit as usize);
        let next = more
            .then(|| {
                members
                    .last()
                    .map(|m| format!("batches/{id}?before={}&limit={limit}", m.id))
            })
            .flatten();
        let callback_state = match batch.callback {
            Some(callback) => app.jobs.get(callback).await?.map(|d| d.job.state.as_str()),
            None => None,
        };
        let can_cancel = batch.pending > 0 || callback_state == Some(JobState::Awaiting.as_str());
        let now = Utc::now();
        let page = BatchPage {
            layout: Layout::new(&ctx, "batches", format!("Batch {id}"), query.notice.text()),
            batch: BatchView::new(&batch, now),
            callback_state,
            can_cancel,
            show_args: !app.options.hide_args_in_lists,
            members: members
                .iter()
                .map(|m| MemberView {
                    id: m.id.0,
                    name: m.name.clone(),
                    state: m.state.as_str(),
                    attempt: format!("{} of {}", m.attempt, m.max_attempts),
                    args: (!app.options.hide_args_in_lists)
                        .then(|| shorten_text(&shown_args(&app, m).to_string(), ARGS_IN_LISTS)),
                    error: m
                        .last_error
                        .as_deref()
                        .map(|e| shorten_text(e, ARGS_IN_LISTS)),
                })
                .collect(),
            next,
            first: query.before.map(|_| format!("batches/{id}")),
        };
        Ok(render(&page))
    }
    .await;
    respond(&ctx, result)
}

/// `POST batches/{id}/cancel`: cancels the batch's waiting jobs and its
/// callback, asks its running ones to stop.
pub(crate) async fn cancel(
    ctx: Ctx,
    State(app): State<App>,
    id: Result<Path<i64>, PathRejection>,
) -> Response {
    let result = async {
        let Path(id) = id.map_err(|e| Failure::BadRequest(e.body_text()))?;
        let changed = match app.jobs.batches().cancel(BatchId(id)).await {
            Ok(changed) => changed,
            Err(jobs_core::Error::Store(e)) if e.kind() == jobs_core::StoreErrorKind::NotFound => {
                return Err(Failure::NotFound(format!("No batch has the id {id}.")))
            }
            Err(error) => return Err(Failure::Store(error)),
        };
        tracing::info!(
            user = ctx.user(),
            action = "cancel_batch",
            batch = id,
            jobs = changed,
            "dashboard action"
        );
        let count = usize::try_from(changed).unwrap_or(usize::MAX);
        Ok(ctx.redirect(&notice_target(
            &format!("batches/{id}"),
            Notice::BatchCancelled,
            Some(count),
            false,
        )))
    }
    .await;
    respond(&ctx, result)
}
