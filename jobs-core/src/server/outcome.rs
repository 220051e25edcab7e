//! How an attempt ended, and the pure decision of what that means for the
//! job ([`decide`]): succeeded, retried after its backoff, failed, snoozed,
//! cancelled, handed back, or nothing to record when its lease was lost.

use super::StopReason;
use crate::job::{BoxError, Permanent, Snooze};
use crate::store::JobOutcome;

/// The reason recorded for a job cancelled while it waited, claimed ahead, for a slot.
pub(super) const CANCELLED_BEFORE_START: &str = "cancelled by a user before it started";

/// How an attempt's future ended.
pub(super) enum Ended {
    Returned(Result<(), BoxError>),
    Panicked(String),
    /// Cancelled and still running after the grace period: dropped.
    Aborted,
    /// Asked to stop (cancelled, or its lease lost) while it waited for a
    /// slot after being claimed ahead: never started.
    NotStarted,
}

/// The outcome to record, or `None` when the lease was lost and nothing may be written.
pub(super) fn decide(
    name: &str,
    attempt: i32,
    max_attempts: i32,
    options: &crate::job::JobOptions,
    reason: Option<StopReason>,
    ended: Ended,
) -> Option<JobOutcome> {
    // A stop that came too late for the job to see it does not undo its
    // success, except its timeout: an attempt that returned after its
    // deadline timed out (the store fences a lost claim).
    if let Ended::Returned(Ok(())) = ended {
        if reason != Some(StopReason::Timeout) {
            return Some(JobOutcome::Succeeded);
        }
    }
    let error = match reason {
        Some(StopReason::LeaseLost) => return None,
        Some(StopReason::Shutdown) => {
            return Some(JobOutcome::Released {
                reason: "the server shut down before the job finished".to_owned(),
            })
        }
        Some(StopReason::UserCancel) => {
            let reason = match ended {
                Ended::NotStarted => CANCELLED_BEFORE_START,
                _ => "cancelled by a user while running",
            };
            return Some(JobOutcome::Cancelled {
                reason: reason.to_owned(),
            });
        }
        Some(StopReason::Timeout) => {
            let limit = options.timeout.unwrap_or_default();
            match ended {
                Ended::Aborted => {
                    format!("timed out after {limit:?}; aborted after it ignored cancellation")
                }
                _ => format!("timed out after {limit:?}"),
            }
        }
        None => match ended {
            Ended::Returned(Err(error)) => {
                if let Some(snooze) = error.downcast_ref::<Snooze>() {
                    return Some(JobOutcome::Snooze {
                        after: snooze.after,
                    });
                }
                let text = error_chain(&*error);
                if error.is::<Permanent>() {
                    return Some(JobOutcome::Failed { error: text });
                }
                text
            }
            Ended::Panicked(message) => format!("panicked: {message}"),
            Ended::Returned(Ok(())) | Ended::Aborted | Ended::NotStarted => {
                unreachable!("success without a timeout returns early; abort and not starting need a stop reason")
            }
        },
    };
    if attempt >= max_attempts {
        Some(JobOutcome::Failed { error })
    } else {
        let after = options.backoff.delay(attempt);
        tracing::debug!(job = name, ?after, "retrying after backoff");
        Some(JobOutcome::Retry { error, after })
    }
}

/// An error and its causes, joined with `: `.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors repeat their cause in their own message; don't print it twice.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    //! Each branch of [`decide`], without a server or a store.

    use std::time::Duration;

    use super::*;
    use crate::job::JobOptions;
    use crate::retry::Backoff;

    const BACKOFF: Duration = Duration::from_secs(7);
    const TIMEOUT: Duration = Duration::from_secs(2);

    fn options() -> JobOptions {
        JobOptions {
            backoff: Backoff::Fixed(BACKOFF),
            timeout: Some(TIMEOUT),
            ..JobOptions::default()
        }
    }

    /// Attempt `attempt` of 3, ended as `ended` with `reason` given to stop it.
    fn outcome(attempt: i32, reason: Option<StopReason>, ended: Ended) -> Option<JobOutcome> {
        decide("job", attempt, 3, &options(), reason, ended)
    }

    fn failed_with(message: &str) -> Ended {
        Ended::Returned(Err(message.into()))
    }

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("sending the email failed")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn success_is_succeeded() {
        assert_eq!(
            outcome(1, None, Ended::Returned(Ok(()))),
            Some(JobOutcome::Succeeded)
        );
    }

    #[test]
    fn success_after_the_timeout_is_a_timeout() {
        assert_eq!(
            outcome(1, Some(StopReason::Timeout), Ended::Returned(Ok(()))),
            Some(JobOutcome::Retry {
                error: "timed out after 2s".to_owned(),
                after: BACKOFF,
            })
        );
    }

    #[test]
    fn success_counts_even_when_another_stop_came_too_late() {
        // The job returned before it saw the stop; the store fences a lost claim.
        for reason in [
            StopReason::UserCancel,
            StopReason::Shutdown,
            StopReason::LeaseLost,
        ] {
            assert_eq!(
                outcome(1, Some(reason), Ended::Returned(Ok(()))),
                Some(JobOutcome::Succeeded),
                "{reason:?}"
            );
        }
    }

    #[test]
    fn error_with_attempts_left_retries_after_the_backoff() {
        assert_eq!(
            outcome(2, None, failed_with("smtp is down")),
            Some(JobOutcome::Retry {
                error: "smtp is down".to_owned(),
                after: BACKOFF,
            })
        );
    }

    #[test]
    fn retry_uses_the_backoff_of_the_attempt() {
        let options = JobOptions {
            backoff: Backoff::exponential(Duration::from_secs(1), Duration::from_secs(60)),
            ..JobOptions::default()
        };
        let Some(JobOutcome::Retry { after, .. }) =
            decide("job", 4, 10, &options, None, failed_with("no"))
        else {
            panic!("expected a retry");
        };
        // Attempt 4 of base 1 s: 8 s, give or take the ±25 % jitter.
        assert!(
            (Duration::from_secs(6)..=Duration::from_secs(10)).contains(&after),
            "{after:?}"
        );
    }

    #[test]
    fn error_on_the_last_attempt_fails() {
        assert_eq!(
            outcome(3, None, failed_with("smtp is down")),
            Some(JobOutcome::Failed {
                error: "smtp is down".to_owned(),
            })
        );
    }

    #[test]
    fn error_text_is_the_chain_of_causes() {
        let error = Outer(std::io::Error::other("connection refused"));
        assert_eq!(
            outcome(3, None, Ended::Returned(Err(Box::new(error)))),
            Some(JobOutcome::Failed {
                error: "sending the email failed: connection refused".to_owned(),
            })
        );
    }

    #[test]
    fn permanent_fails_at_once() {
        let error = Permanent::new("the address does not exist");
        assert_eq!(
            outcome(1, None, Ended::Returned(Err(Box::new(error)))),
            Some(JobOutcome::Failed {
                error: "the address does not exist".to_owned(),
            })
        );
    }

    #[test]
    fn snooze_snoozes_without_counting_even_on_the_last_attempt() {
        let snooze = Snooze::after(Duration::from_secs(30));
        assert_eq!(
            outcome(3, None, Ended::Returned(Err(Box::new(snooze)))),
            Some(JobOutcome::Snooze {
                after: Duration::from_secs(30),
            })
        );
    }

    #[test]
    fn panic_keeps_its_message_and_is_retried_then_failed() {
        assert_eq!(
            outcome(1, None, Ended::Panicked("boom".to_owned())),
            Some(JobOutcome::Retry {
                error: "panicked: boom".to_owned(),
                after: BACKOFF,
            })
        );
        assert_eq!(
            outcome(3, None, Ended::Panicked("boom".to_owned())),
            Some(JobOutcome::Failed {
                error: "panicked: boom".to_owned(),
            })
        );
    }

    #[test]
    fn timeout_says_timed_out_after_the_limit() {
        // Whatever the job returned once it saw the stop.
        assert_eq!(
            outcome(1, Some(StopReason::Timeout), failed_with("cancelled")),
            Some(JobOutcome::Retry {
                error: "timed out after 2s".to_owned(),
                after: BACKOFF,
            })
        );
        assert_eq!(
            outcome(3, Some(StopReason::Timeout), failed_with("cancelled")),
            Some(JobOutcome::Failed {
                error: "timed out after 2s".to_owned(),
            })
        );
    }

    #[test]
    fn timeout_of_a_job_that_ignored_it_says_it_was_aborted() {
        assert_eq!(
            outcome(1, Some(StopReason::Timeout), Ended::Aborted),
            Some(JobOutcome::Retry {
                error: "timed out after 2s; aborted after it ignored cancellation".to_owned(),
                after: BACKOFF,
            })
        );
    }

    #[test]
    fn user_cancel_is_cancelled_whether_running_or_not_started() {
        for ended in [failed_with("cancelled"), Ended::Aborted] {
            assert_eq!(
                outcome(1, Some(StopReason::UserCancel), ended),
                Some(JobOutcome::Cancelled {
                    reason: "cancelled by a user while running".to_owned(),
                })
            );
        }
        assert_eq!(
            outcome(1, Some(StopReason::UserCancel), Ended::NotStarted),
            Some(JobOutcome::Cancelled {
                reason: CANCELLED_BEFORE_START.to_owned(),
            })
        );
    }

    #[test]
    fn shutdown_hands_the_job_back() {
        for ended in [
            failed_with("cancelled"),
            Ended::Panicked("boom".to_owned()),
            Ended::Aborted,
        ] {
            assert_eq!(
                outcome(3, Some(StopReason::Shutdown), ended),
                Some(JobOutcome::Released {
                    reason: "the server shut down before the job finished".to_owned(),
                })
            );
        }
    }

    #[test]
    fn lost_lease_records_nothing() {
        for ended in [
            failed_with("cancelled"),
            Ended::Panicked("boom".to_owned()),
            Ended::Aborted,
            Ended::NotStarted,
        ] {
            assert_eq!(outcome(1, Some(StopReason::LeaseLost), ended), None);
        }
    }
}
