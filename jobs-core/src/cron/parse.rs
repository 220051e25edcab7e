//! From the expression users write to the `cron` crate's schedules: field
//! count, crontab's day-of-week numbers, and Vixie cron's day OR rule.

use std::collections::BTreeSet;
use std::str::FromStr;

use cron::{Schedule, TimeUnitSpec};

/// A parsed expression, ready for [`super::next`].
#[derive(Clone)]
pub(super) struct Compiled {
    /// Every field; when both day fields are restricted, day of week is `*` here.
    pub(super) primary: Schedule,
    /// When both day fields are restricted: the same with day of month `*`, so a
    /// day matches if either schedule matches it (Vixie cron).
    pub(super) alternative: Option<Schedule>,
    /// The hour field matches every hour: an interval schedule for DST purposes.
    pub(super) every_hour: bool,
}

/// Field names and allowed values, in the crate's order.
const FIELDS: [(&str, &str); 7] = [
    ("second", "0-59"),
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or Jan-Dec"),
    ("day-of-week", "0-7 (0 and 7 are Sunday) or Sun-Sat"),
    ("year", "1970-2100"),
];

/// Parses `expression` (already trimmed); the error is the reason, for `Error::Schedule`.
pub(super) fn compile(expression: &str) -> Result<Compiled, String> {
    if expression.is_empty() {
        return Err(
            "the expression is empty; expected 5 fields (minute hour day month weekday) \
                    such as `0 3 * * *`"
                .to_owned(),
        );
    }
    if let Some(name) = expression.strip_prefix('@') {
        let expanded = match name.to_ascii_lowercase().as_str() {
            "yearly" | "annually" => "0 0 1 1 *",
            "monthly" => "0 0 1 * *",
            "weekly" => "0 0 * * 0",
            "daily" | "midnight" => "0 0 * * *",
            "hourly" => "0 * * * *",
            _ => {
                return Err(format!(
                    "unknown shorthand `@{name}`; expected @yearly, @annually, @monthly, \
                     @weekly, @daily, @midnight or @hourly"
                ))
            }
        };
        return compile(expanded);
    }

    let given: Vec<&str> = expression.split_whitespace().collect();
    let mut fields: [&str; 7] = match given.len() {
        5 => ["0", given[0], given[1], given[2], given[3], given[4], "*"],
        6 => [
            given[0], given[1], given[2], given[3], given[4], given[5], "*",
        ],
        7 => [
            given[0], given[1], given[2], given[3], given[4], given[5], given[6],
        ],
        n => {
            return Err(format!(
                "expected 5 fields (minute hour day month weekday) or 6 with seconds \
                 (or 7 with seconds and year), got {n}"
            ))
        }
    };
    // Check each field alone, in order, so the error names the field: the
    // crate's own message points into a string the user did not write.
    let original_weekday = fields[5];
    let weekday = crate_weekdays(original_weekday);
    for (index, (name, allowed)) in FIELDS.iter().enumerate() {
        let shown = fields[index];
        if index == 5 {
            match &weekday {
                Ok(translated) => fields[5] = translated,
                Err(reason) => return Err(format!("{name} field `{shown}`: {reason}")),
            }
        }
        let mut probe = ["*"; 7];
        probe[index] = fields[index];
        if let Err(error) = Schedule::from_str(&probe.join(" ")) {
            return Err(match crate_cause(&error) {
                Some(cause) => {
                    format!("{name} field `{shown}`: {cause}; allowed values are {allowed}")
                }
                None => {
                    format!("{name} field `{shown}` is not valid; allowed values are {allowed}")
                }
            });
        }
    }

    let restricted = |field: &str| !(field.starts_with('*') || field == "?");
    let whole = |fields: &[&str; 7]| {
        Schedule::from_str(&fields.join(" ")).map_err(|error| {
            crate_cause(&error).unwrap_or_else(|| "the fields do not combine".to_owned())
        })
    };
    let (primary, alternative) = if restricted(fields[3]) && restricted(original_weekday) {
        let mut by_month_day = fields;
        by_month_day[5] = "*";
        let mut by_weekday = fields;
        by_weekday[3] = "*";
        (whole(&by_month_day)?, Some(whole(&by_weekday)?))
    } else {
        (whole(&fields)?, None)
    };
    let every_hour = primary.hours().count() == 24;
    Ok(Compiled {
        primary,
        alternative,
        every_hour,
    })
}

/// The crate's explanation, if it has a useful one. Its message quotes the
/// expression it was given (not the user's) with a caret, then the cause;
/// range causes are dropped because they are off by one ("Minutes must be
/// less than 59") and the caller states the range.
fn crate_cause(error: &cron::error::Error) -> Option<String> {
    let message = error.to_string();
    let cause = message.lines().last()?.trim();
    let useless = cause.is_empty() || cause.ends_with('^') || cause.contains(" must be ");
    (!useless).then(|| cause.trim_end_matches('.').to_owned())
}

/// Rewrites a day-of-week field from crontab numbering (0 or 7 = Sunday,
/// 1 = Monday) to the `cron` crate's (1 = Sunday), as a list of names.
fn crate_weekdays(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok(field.to_owned());
    }
    let mut days = BTreeSet::new();
    for item in field.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => {
                let step: u32 = step
                    .parse()
                    .ok()
                    .filter(|step| *step > 0)
                    .ok_or_else(|| format!("step `{step}` is not a positive number"))?;
                (base, Some(step))
            }
            None => (item, None),
        };
        let (first, last) = if base == "*" || base == "?" {
            (0, 7)
        } else if let Some((first, last)) = base.split_once('-') {
            let (first, last) = (weekday_value(first)?, weekday_value(last)?);
            if first > last {
                return Err(format!(
                    "range `{base}` runs backwards; write it as two ranges, e.g. `5-6,0-1`"
                ));
            }
            (first, last)
        } else {
            let value = weekday_value(base)?;
            // `a/n` runs from `a` to the end, as in cronie.
            (value, if step.is_some() { 7 } else { value })
        };
        days.extend(
            (first..=last)
                .step_by(step.unwrap_or(1) as usize)
                .map(|day| day % 7),
        );
    }
    if days.len() == 7 {
        return Ok("*".to_owned());
    }
    const CRATE_NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    Ok(days
        .iter()
        .map(|day| CRATE_NAMES[*day as usize])
        .collect::<Vec<_>>()
        .join(","))
}

fn weekday_value(text: &str) -> Result<u32, String> {
    if text.is_empty() {
        return Err("a day is missing".to_owned());
    }
    if let Ok(number) = text.parse::<u32>() {
        return if number <= 7 {
            Ok(number)
        } else {
            Err(format!(
                "day {number} is out of range 0-7 (0 and 7 are Sunday, 1 is Monday)"
            ))
        };
    }
    let day = match text.to_ascii_lowercase().as_str() {
        "sun" | "sunday" => 0,
        "mon" | "monday" => 1,
        "tue" | "tues" | "tuesday" => 2,
        "wed" | "wednesday" => 3,
        "thu" | "thurs" | "thursday" => 4,
        "fri" | "friday" => 5,
        "sat" | "saturday" => 6,
        _ => {
            return Err(format!(
                "`{text}` is not a day of the week; expected 0-7 or a name like `Mon`"
            ))
        }
    };
    Ok(day)
}
