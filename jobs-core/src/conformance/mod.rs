//! The store conformance suite: every operation of [`Store`] and every
//! guarantee the framework relies on, as cases generic over the store.
//! `MemoryStore` and `PgStore` pass the same suite; a new store is done when it
//! passes too (River's `riverdrivertest.Exercise`).
//!
//! # Running it
//!
//! In a test file of the store's crate (with `jobs-core`'s `conformance`
//! feature), one line makes one `#[test]` per case, named after the case, so
//! the cases run in parallel and a failure names the broken behaviour:
//!
//! ```ignore
//! // jobs-mystore/tests/conformance.rs
//! jobs_core::conformance_tests!(async { MyStore::connect_to_fresh_test_database().await });
//! ```
//!
//! The expression is evaluated once per case, inside that case's tokio
//! runtime (multi-threaded), and must give a fresh, empty store (for a SQL
//! store: its own schema or database). It may be any expression whose value
//! is a future of a store, typically an `async` block. The caller needs no
//! tokio dependency of its own: each case builds its own runtime.
//!
//! [`run_all`] runs every case one after another in the current runtime, for
//! callers that prefer one test; [`CASES`] lists the case names; the cases
//! themselves are in [`cases`], one module per area of the store's API,
//! each case documented with the behaviour it checks.
//!
//! # Time
//!
//! The suite runs on real time (a database clock cannot be paused), so cases
//! that wait for time use short durations (leases of a few hundred
//! milliseconds, delays of a second) and poll with a generous deadline. They
//! assert only "eventually, within the deadline" and "not before": never "within
//! X ms", so a loaded machine makes them slower, not flaky. The whole suite
//! takes a few seconds per store when its cases run in parallel.
//!
//! This module is for store authors; its API is not stable.

use std::future::Future;
use std::time::Duration;

use crate::store::Store;

pub mod cases;

pub use crate::slow::SlowCalls;

/// How long one case may take before it is reported as hung.
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs one case on a fresh store, in a new multi-threaded tokio runtime,
/// with a timeout. What [`conformance_tests!`](crate::conformance_tests) expands to.
///
/// # Panics
///
/// When the case fails (its assertion message says how), or takes longer
/// than two minutes.
pub fn run_case<S, M, MF, C, CF>(name: &str, make: M, case: C)
where
    S: Store,
    M: FnOnce() -> MF,
    MF: Future<Output = S>,
    C: FnOnce(S) -> CF,
    CF: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("the conformance suite could not build a tokio runtime");
    runtime.block_on(async {
        let store = make().await;
        if tokio::time::timeout(CASE_TIMEOUT, case(store))
            .await
            .is_err()
        {
            panic!("conformance case `{name}` did not finish within {CASE_TIMEOUT:?}");
        }
    });
}

/// Runs every case one after another, each on a fresh store from `make`, in
/// the current tokio runtime (use a multi-threaded one: some cases check
/// behaviour under concurrency). Prefer [`conformance_tests!`](crate::conformance_tests),
/// which runs the cases in parallel and names the failing one.
///
/// ```ignore
/// #[tokio::test(flavor = "multi_thread")]
/// async fn my_store_conforms() {
///     jobs_core::conformance::run_all(|| async { MyStore::fresh().await }).await;
/// }
/// ```
///
/// # Panics
///
/// At the first failing case; the message printed before it names the case.
pub async fn run_all<S, M, MF>(mut make: M)
where
    S: Store,
    M: FnMut() -> MF,
    MF: Future<Output = S>,
{
    macro_rules! run_each {
        ($($area:ident::$case:ident),* $(,)?) => {
            $(
                eprintln!("conformance case `{}`", stringify!($case));
                let store = make().await;
                if tokio::time::timeout(CASE_TIMEOUT, cases::$area::$case(store)).await.is_err() {
                    panic!("conformance case `{}` did not finish within {CASE_TIMEOUT:?}", stringify!($case));
                }
            )*
        };
    }
    crate::__jobs_conformance_cases!([run_each] []);
}

macro_rules! case_names {
    ($($area:ident::$case:ident),* $(,)?) => {
        /// The name of every case, in the order [`run_all`] runs them.
        pub const CASES: &[&str] = &[$(stringify!($case)),*];
    };
}
crate::__jobs_conformance_cases!([case_names] []);

/// Expands to one `#[test]` per conformance case, each named after its case
/// and given a fresh store by evaluating `$make` (a future of a store, such as
/// an `async` block) in that test's own multi-threaded tokio runtime.
///
/// ```ignore
/// // jobs-mystore/tests/conformance.rs
/// jobs_core::conformance_tests!(async { MyStore::fresh().await });
/// ```
///
/// Put it at the top level of a test file, or in a module of its own: it
/// defines functions named after the cases (see
/// [`conformance::CASES`](crate::conformance::CASES)).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr $(,)?) => {
        $crate::__jobs_conformance_cases!([$crate::__jobs_conformance_test_fns] [$make;]);
    };
}

/// Defines one test function per case. Not public API: used by
/// `conformance_tests!`.
#[doc(hidden)]
#[macro_export]
macro_rules! __jobs_conformance_test_fns {
    ($make:expr; $($area:ident::$case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run_case(
                    ::core::stringify!($case),
                    || $make,
                    $crate::conformance::cases::$area::$case,
                );
            }
        )*
    };
}

/// The list of cases, as `area::case` paths into `conformance::cases`, handed to a
/// callback macro. Not public API: the one place the list is written, so the
/// test functions, `CASES` and `run_all` cannot disagree. A new case is one
/// line here plus its function in its area's module.
#[doc(hidden)]
#[macro_export]
macro_rules! __jobs_conformance_cases {
    ([$($callback:tt)*] [$($prefix:tt)*]) => {
        $($callback)*! {
            $($prefix)*
            insert::insert_many_returns_ids_in_order,
            insert::insert_is_all_or_none,
            insert::insert_schedules_by_run_at,
            insert::delayed_job_is_not_claimable_before_its_time_and_is_after,
            insert::insert_keeps_a_timeout_and_backoff_for_claim_and_get,
            insert::insert_keeps_the_trace_context_for_claim_and_get,
            continuations::a_continuation_waits_for_its_parent_s_success,
            continuations::a_parent_s_other_ends_cancel_or_release_its_continuations,
            continuations::a_continuation_of_an_ended_parent_runs_at_once_or_is_refused,
            continuations::continuations_added_while_the_parent_ends_are_all_released_once,
            continuations::a_continuation_fed_by_the_output_runs_on_it,
            continuations::a_cancelled_continuation_ends_its_own_continuations,
            batches::a_batch_counts_its_members_and_releases_its_callback,
            batches::a_batch_s_other_ends_cancel_or_release_its_callback,
            batches::a_batch_without_members_has_ended_at_once,
            batches::members_ending_at_once_on_many_servers_release_the_callback_once,
            batches::cancelling_a_batch_cancels_its_waiting_jobs_and_callback,
            batches::a_member_retried_after_the_end_does_not_release_the_callback_again,
            batches::batches_and_their_members_list_in_pages,
            batches::a_batch_is_stored_all_or_none,
            batches::prune_forgets_ended_batches,
            unique::insert_of_a_held_key_returns_the_holder,
            unique::concurrent_inserts_of_one_key_give_one_job,
            unique::finished_jobs_hold_the_key_as_declared,
            unique::a_period_is_judged_on_run_time,
            unique::a_retry_never_makes_two_holders,
            claim::claim_marks_job_processing_with_a_lease,
            claim::claim_respects_queue_order_then_priority_then_run_at,
            claim::claim_respects_limit,
            claim::claim_skips_unknown_names_and_queues,
            claim::claim_is_exclusive_under_concurrency,
            complete::complete_success,
            complete::complete_retry_schedules_the_next_attempt,
            complete::complete_fail,
            complete::complete_snooze_does_not_count_the_attempt,
            complete::complete_cancel,
            complete::complete_release_hands_the_job_back_at_once,
            complete::complete_success_keeps_the_output,
            complete::complete_many_reports_each_completion,
            progress::progress_is_recorded_fenced_and_cleared_on_the_next_claim,
            fencing::stale_claim_completion_changes_nothing,
            fencing::stale_claim_after_manual_retry_changes_nothing,
            leases::lease_renew_keeps_job_from_rescue,
            leases::lease_renew_reports_lost_and_cancel_requested,
            leases::rescue_makes_expired_jobs_runnable_and_fails_exhausted_ones,
            leases::rescue_is_bounded_by_limit,
            leases::rescue_spares_the_jobs_it_is_told_to,
            leases::report_stuck_marks_the_attempt_and_its_history,
            reads::get_returns_history_with_times_servers_errors,
            reads::list_filters_and_pages,
            reads::counts_by_queue_and_state,
            reads::throughput_counts_each_end_in_its_minute,
            manage::run_now_runs_a_scheduled_job_at_once,
            manage::retry_by_hand,
            manage::cancel_waiting_and_running,
            manage::delete,
            manage::rescue_cancels_a_job_whose_cancel_was_requested,
            manage::release_of_a_job_whose_cancel_was_requested_cancels_it,
            matching::list_filters_by_name,
            matching::list_and_act_matching_filter_by_arguments,
            matching::list_scan_stops_at_its_bound_and_continues_below_it,
            matching::act_matching_retries_exactly_the_matching_jobs,
            matching::act_matching_cancels_waiting_and_asks_running_jobs_to_stop,
            matching::act_matching_deletes_all_but_running_jobs,
            matching::act_matching_runs_exactly_the_matching_scheduled_jobs_now,
            matching::act_matching_honours_the_cap_newest_first,
            matching::act_matching_dry_run_changes_nothing,
            matching::act_matching_refuses_a_state_the_action_never_accepts,
            matching::act_matching_raises_the_signal_for_retried_and_running_cancelled_jobs,
            prune::prune_is_bounded_and_respects_ages,
            prune::prune_keeps_jobs_younger_than_their_age,
            servers::server_heartbeat_list_remove,
            servers::server_heartbeat_keeps_running_and_claimed_ahead,
            stranded::stranded_lists_due_jobs_no_live_server_can_take,
            stranded::stranded_counts_only_servers_that_beat_within_live_within,
            signals::signal_fires_on_insert,
            signals::signal_fires_when_jobs_become_runnable_again,
            signals::signal_fires_on_cancel_of_a_running_job,
            queues::paused_queue_is_claimed_by_nobody,
            queues::resumed_queue_is_claimable,
            queues::pausing_does_not_touch_running_jobs,
            queues::claim_honours_per_queue_limits,
            queues::queue_list_gives_each_queue_s_oldest_due_job,
            limits::concurrency_limit_holds_under_many_claiming_tasks,
            limits::a_dead_server_s_places_come_back_with_its_leases,
            limits::rate_limit_counts_starts_across_servers,
            limits::limits_change_without_a_restart_and_are_listed,
            limits::limits_combine_with_a_claim_s_own_and_with_unlimited_queues,
            limits::keyed_jobs_run_one_at_a_time_per_key_and_others_proceed,
            limits::a_busy_key_does_not_hold_up_the_jobs_behind_it,
            limits::key_limit_holds_under_many_claiming_tasks,
            limits::a_dead_server_s_key_comes_back_with_its_lease,
            limits::a_key_limit_of_zero_or_an_empty_key_is_refused,
            recurring::cron_upsert_creates_an_entry_due_at_once,
            recurring::cron_due_returns_unset_and_past_entries_with_the_store_clock,
            recurring::cron_upsert_of_an_unchanged_def_keeps_next_run_at,
            recurring::cron_upsert_with_a_changed_schedule_or_time_zone_resets_next_run_at,
            recurring::cron_upsert_with_changed_args_keeps_next_run_at_and_the_next_fire_uses_them,
            recurring::cron_pause_and_resume,
            recurring::cron_remove_removes_once,
            recurring::cron_trigger_runs_now_without_moving_the_schedule,
            recurring::cron_list_reports_the_last_run_ordered_by_id,
            recurring_fire::cron_fire_inserts_runs_with_their_origin_and_moves_next_run_at,
            recurring_fire::cron_fire_with_a_stale_expected_value_is_lost_and_changes_nothing,
            recurring_fire::cron_fire_races_fire_each_tick_once,
            recurring_fire::cron_fire_skips_while_an_earlier_run_is_unfinished,
            recurring_fire::cron_fire_is_lost_after_a_pause_or_an_edit,
        }
    };
}
