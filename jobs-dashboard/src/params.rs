//! Every query parameter and form field, parsed into a bounded type: a value
//! out of range is a 400, never a value passed on to the store.

use std::fmt;
use std::str::FromStr;

use jobs_core::JobState;
use serde::{Deserialize, Deserializer};

/// The longest queue name, job name or recurring id a filter or form takes.
pub(crate) const MAX_TEXT: usize = 200;
/// The most rows on one page, and the most rows one action on selected rows takes.
pub(crate) const MAX_PAGE: u32 = 200;
/// Rows per page unless the request says otherwise.
pub(crate) const DEFAULT_PAGE: u32 = 50;
/// The most jobs one "all matching this filter" action changes.
pub(crate) const MATCHING_CAP: u32 = 1000;
/// The longest arguments filter, in bytes of JSON.
pub(crate) const MAX_ARGS: usize = 1024;

/// Rows per page, 1 to [`MAX_PAGE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageSize(pub(crate) u32);

impl FromStr for PageSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(PageSize(n)),
            _ => Err(format!(
                "`limit` must be a whole number from 1 to {MAX_PAGE}"
            )),
        }
    }
}

/// How often a page refreshes its fragments, in seconds: 2 to
/// [`MAX_REFRESH`]. Bounded, so a link cannot make every open tab poll the
/// store many times a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refresh(pub(crate) u32);

/// The longest refresh interval, in seconds.
pub(crate) const MAX_REFRESH: u32 = 600;
/// The intervals the pages offer.
pub(crate) const REFRESH_CHOICES: [u32; 4] = [2, 5, 15, 60];

impl FromStr for Refresh {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<u32>() {
            Ok(n) if (2..=MAX_REFRESH).contains(&n) => Ok(Refresh(n)),
            _ => Err(format!(
                "`refresh` must be a whole number of seconds from 2 to {MAX_REFRESH}"
            )),
        }
    }
}

impl Refresh {
    /// The `refresh` parameter of a query string: `None` when absent or
    /// empty, an error when out of range.
    pub(crate) fn from_query(query: &str) -> Result<Option<Self>, String> {
        let mut found = None;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            if key == "refresh" && !value.is_empty() {
                found = Some(value.parse()?);
            }
        }
        Ok(found)
    }
}

/// A queue, job name or recurring id: at most [`MAX_TEXT`] characters, no
/// control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Text(pub(crate) String);

impl FromStr for Text {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.chars().count() > MAX_TEXT {
            Err(format!("a name or id is at most {MAX_TEXT} characters"))
        } else if s.chars().any(char::is_control) {
            Err("a name or id has no control characters".to_owned())
        } else {
            Ok(Text(s.to_owned()))
        }
    }
}

/// An arguments filter: a JSON object of at most [`MAX_ARGS`] bytes. It
/// picks the jobs whose arguments contain it (jsonb containment, `@>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArgsFilter(pub(crate) serde_json::Value);

impl FromStr for ArgsFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_ARGS {
            return Err(format!(
                "the arguments filter is at most {MAX_ARGS} bytes of JSON"
            ));
        }
        match serde_json::from_str(s) {
            Ok(value @ serde_json::Value::Object(_)) => Ok(ArgsFilter(value)),
            Ok(_) => Err("the arguments filter is a JSON object, like {\"id\": 7}".to_owned()),
            Err(e) => Err(format!("the arguments filter is not valid JSON: {e}")),
        }
    }
}

impl ArgsFilter {
    /// The filter as compact JSON, for links and the form's field.
    pub(crate) fn text(&self) -> String {
        self.0.to_string()
    }
}

/// A parameter parsed by its `FromStr`; an empty value (an empty form field)
/// is no value.
pub(crate) fn opt<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    let s = Option::<String>::deserialize(deserializer)?;
    match s.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// What a redirect after an action says happened; a fixed set, so a link
/// cannot make the page say anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Notice {
    Retried,
    RanNow,
    Cancelled,
    CancelRequested,
    Deleted,
    Refused,
    Triggered,
    Paused,
    Resumed,
    Removed,
    QueuePaused,
    QueueResumed,
    BatchCancelled,
}

/// The notice parameters every page takes.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct NoticeQuery {
    pub(crate) notice: Option<Notice>,
    #[serde(default, deserialize_with = "opt")]
    pub(crate) count: Option<u32>,
    #[serde(default, deserialize_with = "opt")]
    pub(crate) more: Option<bool>,
}

impl Notice {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Notice::Retried => "retried",
            Notice::RanNow => "ran_now",
            Notice::Cancelled => "cancelled",
            Notice::CancelRequested => "cancel_requested",
            Notice::Deleted => "deleted",
            Notice::Refused => "refused",
            Notice::Triggered => "triggered",
            Notice::Paused => "paused",
            Notice::Resumed => "resumed",
            Notice::Removed => "removed",
            Notice::QueuePaused => "queue_paused",
            Notice::QueueResumed => "queue_resumed",
            Notice::BatchCancelled => "batch_cancelled",
        }
    }
}

impl NoticeQuery {
    /// The sentence the page shows.
    pub(crate) fn text(&self) -> Option<String> {
        let notice = self.notice?;
        let n = self.count.unwrap_or(1);
        let jobs = if n == 1 { "job" } else { "jobs" };
        let mut text = match notice {
            Notice::Retried => format!("{n} {jobs} retried."),
            Notice::RanNow => format!("{n} {jobs} enqueued to run now."),
            Notice::Cancelled => format!("{n} {jobs} cancelled."),
            Notice::CancelRequested => format!("{n} running {jobs} asked to stop."),
            Notice::Deleted => format!("{n} {jobs} deleted."),
            Notice::Refused => {
                "Nothing changed: the job's state does not allow that action.".to_owned()
            }
            Notice::Triggered => "The recurring job was enqueued to run now.".to_owned(),
            Notice::Paused => "The recurring job was paused.".to_owned(),
            Notice::Resumed => "The recurring job was resumed.".to_owned(),
            Notice::Removed => "The recurring job was removed.".to_owned(),
            Notice::QueuePaused => {
                "The queue was paused: its jobs wait until it is resumed.".to_owned()
            }
            Notice::QueueResumed => "The queue was resumed.".to_owned(),
            Notice::BatchCancelled => {
                format!("The batch was cancelled: {n} {jobs} cancelled or asked to stop.")
            }
        };
        if self.more == Some(true) {
            text.push_str(&format!(
                " More jobs matched than one action takes ({MATCHING_CAP}): act again for the rest."
            ));
        }
        Some(text)
    }
}

/// The jobs list's parameters.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct JobsQuery {
    #[serde(default, deserialize_with = "opt")]
    pub(crate) state: Option<JobState>,
    #[serde(default, deserialize_with = "opt")]
    pub(crate) queue: Option<Text>,
    #[serde(default, deserialize_with = "opt")]
    pub(crate) name: Option<Text>,
    /// Only jobs whose arguments contain this JSON object.
    #[serde(default, deserialize_with = "opt")]
    pub(crate) args: Option<ArgsFilter>,
    #[serde(default, deserialize_with = "opt")]
    pub(crate) before: Option<i64>,
    #[serde(default, deserialize_with = "opt")]
    pub(crate) limit: Option<PageSize>,
    /// A job to go to: the lookup form's field.
    #[serde(default, deserialize_with = "opt")]
    pub(crate) id: Option<i64>,
    #[serde(flatten)]
    pub(crate) notice: NoticeQuery,
}

/// What an action does to jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Act {
    Retry,
    Cancel,
    Delete,
    /// A scheduled job becomes enqueued at once (`Jobs::run_now`).
    RunNow,
}

impl FromStr for Act {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "retry" => Ok(Act::Retry),
            "cancel" => Ok(Act::Cancel),
            "delete" => Ok(Act::Delete),
            "run_now" => Ok(Act::RunNow),
            _ => Err("the action is one of `retry`, `cancel`, `delete`, `run_now`".to_owned()),
        }
    }
}

impl Act {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Act::Retry => "retry",
            Act::Cancel => "cancel",
            Act::Delete => "delete",
            Act::RunNow => "run_now",
        }
    }
}

/// What an action does to a recurring job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecurringAct {
    Trigger,
    Pause,
    Resume,
    Remove,
}

impl FromStr for RecurringAct {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "trigger" => Ok(RecurringAct::Trigger),
            "pause" => Ok(RecurringAct::Pause),
            "resume" => Ok(RecurringAct::Resume),
            "remove" => Ok(RecurringAct::Remove),
            _ => Err("the action is one of `trigger`, `pause`, `resume`, `remove`".to_owned()),
        }
    }
}

impl RecurringAct {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RecurringAct::Trigger => "trigger",
            RecurringAct::Pause => "pause",
            RecurringAct::Resume => "resume",
            RecurringAct::Remove => "remove",
        }
    }
}

/// What an action does to a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueAct {
    Pause,
    Resume,
}

impl FromStr for QueueAct {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pause" => Ok(QueueAct::Pause),
            "resume" => Ok(QueueAct::Resume),
            _ => Err("the action is one of `pause`, `resume`".to_owned()),
        }
    }
}

impl QueueAct {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            QueueAct::Pause => "pause",
            QueueAct::Resume => "resume",
        }
    }
}

/// The bulk form: the action and its scope in the button pressed, the
/// selected ids, and the filter "all matching" means.
#[derive(Debug)]
pub(crate) struct BulkForm {
    pub(crate) act: Act,
    pub(crate) matching: bool,
    pub(crate) ids: Vec<i64>,
    pub(crate) state: Option<JobState>,
    pub(crate) queue: Option<Text>,
    pub(crate) name: Option<Text>,
    pub(crate) args: Option<ArgsFilter>,
}

impl BulkForm {
    /// Parses an `application/x-www-form-urlencoded` body. Repeated `id`
    /// fields are the selected rows, at most [`MAX_PAGE`].
    pub(crate) fn parse(body: &[u8]) -> Result<Self, String> {
        let mut button = None;
        let mut form = BulkForm {
            act: Act::Retry,
            matching: false,
            ids: Vec::new(),
            state: None,
            queue: None,
            name: None,
            args: None,
        };
        for (key, value) in form_urlencoded::parse(body) {
            match &*key {
                "do" => button = Some(value.into_owned()),
                "id" => {
                    if form.ids.len() == MAX_PAGE as usize {
                        return Err(format!("at most {MAX_PAGE} selected jobs"));
                    }
                    form.ids.push(
                        value
                            .parse()
                            .map_err(|_| "an `id` is a whole number".to_owned())?,
                    );
                }
                "state" if !value.is_empty() => {
                    form.state = Some(value.parse().map_err(|e| format!("{e}"))?)
                }
                "queue" if !value.is_empty() => form.queue = Some(value.parse()?),
                "name" if !value.is_empty() => form.name = Some(value.parse()?),
                "args" if !value.is_empty() => form.args = Some(value.parse()?),
                _ => {}
            }
        }
        let button = button.ok_or("the form names no action")?;
        let (act, scope) = button.split_once('-').ok_or("unknown action")?;
        form.act = act.parse()?;
        form.matching = match scope {
            "selected" => false,
            "matching" => true,
            _ => return Err("the scope is `selected` or `matching`".to_owned()),
        };
        Ok(form)
    }
}

/// The recurring page's action form.
#[derive(Debug, Deserialize)]
pub(crate) struct RecurringForm {
    #[serde(deserialize_with = "required")]
    pub(crate) id: Text,
    #[serde(deserialize_with = "required")]
    pub(crate) action: RecurringAct,
}

/// The queues page's action form: a queue name (not empty, at most
/// [`MAX_TEXT`] characters) and the action.
#[derive(Debug, Deserialize)]
pub(crate) struct QueueForm {
    #[serde(deserialize_with = "required")]
    pub(crate) queue: Text,
    #[serde(deserialize_with = "required")]
    pub(crate) action: QueueAct,
}

fn required<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    opt(deserializer)?.ok_or_else(|| serde::de::Error::custom("a required field is empty"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_is_bounded() {
        assert!("0".parse::<PageSize>().is_err());
        assert!("201".parse::<PageSize>().is_err());
        assert!("-1".parse::<PageSize>().is_err());
        assert_eq!("200".parse::<PageSize>(), Ok(PageSize(200)));
    }

    #[test]
    fn refresh_is_bounded() {
        assert_eq!(Refresh::from_query(""), Ok(None));
        assert_eq!(Refresh::from_query("state=failed&refresh="), Ok(None));
        assert_eq!(Refresh::from_query("refresh=5"), Ok(Some(Refresh(5))));
        assert!(Refresh::from_query("refresh=1").is_err());
        assert!(Refresh::from_query("refresh=601").is_err());
        assert!(Refresh::from_query("refresh=fast").is_err());
    }

    #[test]
    fn args_filter_is_a_bounded_json_object() {
        let filter: ArgsFilter = r#"{"user": {"id": 7}}"#.parse().unwrap();
        assert_eq!(filter.text(), r#"{"user":{"id":7}}"#);
        for refused in ["{oops", "[1]", "7", "\"x\"", "null", " ", r#"{"a":1} x"#] {
            assert!(refused.parse::<ArgsFilter>().is_err(), "{refused}");
        }
        let at_most = format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_ARGS - 8));
        assert_eq!(at_most.len(), MAX_ARGS);
        assert!(at_most.parse::<ArgsFilter>().is_ok());
        let too_long = format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_ARGS - 7));
        let error = too_long.parse::<ArgsFilter>().unwrap_err();
        assert!(error.contains("at most 1024 bytes"), "{error}");
        let deep = format!("{}1{}", r#"{"a":"#.repeat(150), "}".repeat(150));
        assert!(deep.len() <= MAX_ARGS);
        let error = deep.parse::<ArgsFilter>().unwrap_err();
        assert!(
            error.contains("not valid JSON"),
            "too deep for serde_json: {error}"
        );
    }

    #[test]
    fn queue_actions_are_a_fixed_set() {
        assert_eq!("pause".parse::<QueueAct>(), Ok(QueueAct::Pause));
        assert_eq!("resume".parse::<QueueAct>(), Ok(QueueAct::Resume));
        assert!("explode".parse::<QueueAct>().is_err());
        assert!("Pause".parse::<QueueAct>().is_err());
        assert!("q".repeat(MAX_TEXT + 1).parse::<Text>().is_err());
        assert!("q".repeat(MAX_TEXT).parse::<Text>().is_ok());
    }

    #[test]
    fn bulk_form_reads_button_ids_and_filter() {
        let form = BulkForm::parse(b"do=delete-selected&id=3&id=4&queue=mail&state=").unwrap();
        assert_eq!(form.act, Act::Delete);
        assert!(!form.matching);
        assert_eq!(form.ids, [3, 4]);
        assert_eq!(form.queue, Some(Text("mail".into())));
        assert_eq!(form.state, None);
        assert!(BulkForm::parse(b"do=explode-selected").is_err());
        let form = BulkForm::parse(b"do=run_now-matching&state=scheduled").unwrap();
        assert_eq!(form.act, Act::RunNow);
        assert!(form.matching);
        assert_eq!(form.state, Some(JobState::Scheduled));
        assert!(BulkForm::parse(b"do=run_now").is_err());
        let form = BulkForm::parse(b"do=cancel-matching&args=%7B%22a%22%3A1%7D").unwrap();
        assert_eq!(form.args, Some(ArgsFilter(serde_json::json!({ "a": 1 }))));
        assert!(BulkForm::parse(b"do=cancel-matching&args=%5B1%5D").is_err());
        assert!(BulkForm::parse(b"do=retry-matching&id=x").is_err());
    }
}
