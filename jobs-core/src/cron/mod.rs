//! Cron schedules: the [`Cron`] type, its syntax, and when it fires in a time
//! zone, daylight-saving transitions included.
//!
//! The docs users read are on [`Cron`], the module being private: syntax,
//! time zones and the daylight-saving rules. The DST walk is in `next`, the
//! translation to the `cron` crate's syntax in `parse`.

mod next;
mod parse;
#[cfg(test)]
mod tests;
mod zone;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc, Weekday};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

pub use zone::Tz;

/// A recurring schedule: a cron expression and the IANA time zone its fields
/// are read in (UTC unless set).
///
/// Build one by parsing an expression (see [Syntax](#syntax)) or with a named
/// constructor like Hangfire's `Cron` class:
///
/// ```
/// # use jobs_core as jobs;
/// use jobs::{Cron, Tz};
///
/// let a: Cron = "0 3 * * *".parse()?;
/// let b = Cron::daily_at(3, 0)?;
/// assert_eq!(a, b);
/// let c = Cron::parse("0 3 * * *")?.in_time_zone("America/New_York")?;
/// assert_eq!(c.time_zone(), &Tz::named("America/New_York")?);
/// assert_eq!(c.to_string(), "0 3 * * *"); // Display is the expression
/// # Ok::<(), jobs::Error>(())
/// ```
///
/// It serializes as `{"expression": "0 3 * * *", "time_zone": "America/New_York"}`;
/// a missing `time_zone` deserializes as UTC.
///
/// It is pure schedule logic: it knows nothing of stores or servers.
///
/// # Syntax
///
/// Fields are separated by spaces. Three forms are accepted:
///
/// | fields | form | example |
/// | --- | --- | --- |
/// | 5 | `minute hour day-of-month month day-of-week` (crontab) | `0 3 * * *`: 03:00 every day |
/// | 6 | `second minute hour day-of-month month day-of-week` | `*/10 * * * * *`: every 10 seconds |
/// | 7 | `second minute hour day-of-month month day-of-week year` | `0 0 12 1 1 * 2030`: noon, 1 January 2030 |
///
/// The five-field form has minute precision: its second is 0. The shorthands
/// `@yearly` (or `@annually`), `@monthly`, `@weekly`, `@daily` (or
/// `@midnight`) and `@hourly` mean what they mean in crontab.
///
/// | field | values | names |
/// | --- | --- | --- |
/// | second | 0-59 | |
/// | minute | 0-59 | |
/// | hour | 0-23 | |
/// | day of month | 1-31 | |
/// | month | 1-12 | `Jan`-`Dec` |
/// | day of week | 0-7, where 0 and 7 are Sunday, 1 is Monday | `Sun`-`Sat`, or in full |
/// | year | 1970-2100 | |
///
/// Each field takes `*` (every value), a value, a range `a-b`, a step `*/n`,
/// `a-b/n` or `a/n`, or a comma-separated list of these. Day of month and day
/// of week also take `?`, which means the same as `*`.
///
/// Two rules follow crontab rather than the `cron` crate that does the
/// field matching underneath, in every form:
///
/// - Day-of-week numbers are crontab's: `1` is Monday and `0` or `7` is Sunday
///   (the `cron` crate alone counts `1` as Sunday). Names are never ambiguous.
/// - When both day of month and day of week are restricted (neither starts
///   with `*` nor is `?`), a day matches if **either** matches, as in Vixie
///   cron: `0 0 1 * Mon` fires on the 1st and on every Monday. Write `?` or `*`
///   in one of them to use only the other.
///
/// A day that a month does not have (`0 0 31 * *` in April) is skipped. Years
/// after 2100 have no fire times.
///
/// ```
/// # use jobs_core as jobs;
/// use jobs::{Cron, Timestamp};
/// let at = |s: &str| s.parse::<Timestamp>().unwrap();
///
/// let nightly: Cron = "30 2 * * Mon-Fri".parse()?;
/// let after = at("2026-01-02T12:00:00Z"); // a Friday
/// assert_eq!(
///     nightly.next_after(after),
///     Some(at("2026-01-05T02:30:00Z")), // Monday
/// );
/// assert!(Cron::parse("0 3 * *").is_err()); // four fields
/// # Ok::<(), jobs::Error>(())
/// ```
///
/// # Time zones and daylight saving
///
/// Fields are matched against the wall-clock time of the schedule's zone; the
/// fire times come back as UTC instants. Where the zone changes its offset:
///
/// - **A local time that does not exist** (clocks spring forward, e.g. 02:30
///   in Europe/Berlin on 2026-03-29): a *fixed-time* schedule fires once at
///   the first instant after the gap (03:00 local, when the clock jumps), so
///   a daily job still runs that day, as in Hangfire. Several matches inside
///   one gap make one run. An *interval* schedule skips the missing times: it
///   keeps firing every real hour or minute.
/// - **A local time that happens twice** (clocks fall back, e.g. 02:30 in
///   Europe/Berlin on 2026-10-25): a *fixed-time* schedule fires once, at the
///   first occurrence. An *interval* schedule fires at both occurrences, so
///   `0 * * * *` runs every real hour and `*/15 * * * *` every real quarter
///   hour through the night.
///
/// A schedule is an *interval* schedule when its hour field matches all 24
/// hours (`*`, `*/1`, `0-23`), and a *fixed-time* schedule otherwise. So
/// `0 2 * * *`, `30 1-3 * * *` and `*/5 2 * * *` are fixed-time, while
/// `0 * * * *`, `30 * * * *` and `*/10 * * * * *` are interval schedules.
/// Vixie cron draws the same line between fixed-time and interval jobs, on the
/// minute and hour fields; here the hour field alone decides, as DST moves
/// clocks by whole or half hours. A fixed hour with a step, `*/5 2 * * *`,
/// fires through the first 02:00-02:55 only when 02:xx happens twice.
///
/// ```
/// # use jobs_core as jobs;
/// use jobs::{Cron, Timestamp, Tz};
/// let at = |s: &str| s.parse::<Timestamp>().unwrap();
///
/// let daily = Cron::daily_at(2, 30)?.with_time_zone(Tz::named("Europe/Berlin")?);
/// let before = at("2026-03-28T12:00:00Z");
/// assert_eq!(
///     daily.next_n(before, 2),
///     [
///         at("2026-03-29T01:00:00Z"), // 03:00 CEST: 02:30 does not exist
///         at("2026-03-30T00:30:00Z"), // 02:30 CEST
///     ],
/// );
/// # Ok::<(), jobs::Error>(())
/// ```
#[derive(Clone)]
pub struct Cron {
    /// As given (trimmed); Display and equality use it.
    expression: String,
    time_zone: Tz,
    compiled: parse::Compiled,
}

impl Cron {
    /// Parses a cron expression in the 5-, 6- or 7-field form, read in UTC.
    ///
    /// # Errors
    ///
    /// [`Error::Schedule`] saying what is wrong: the field count, or which field
    /// is invalid and why.
    pub fn parse(expression: &str) -> Result<Cron, Error> {
        let expression = expression.trim();
        let compiled = parse::compile(expression).map_err(|reason| Error::Schedule {
            expression: expression.to_owned(),
            reason,
        })?;
        Ok(Cron {
            expression: expression.to_owned(),
            time_zone: Tz::UTC,
            compiled,
        })
    }

    /// Every minute, at second 0: `* * * * *`.
    pub fn minutely() -> Cron {
        Cron::known("* * * * *")
    }

    /// Every hour, on the hour: `0 * * * *`.
    pub fn hourly() -> Cron {
        Cron::known("0 * * * *")
    }

    /// Every hour at `minute` past: `{minute} * * * *`.
    ///
    /// # Errors
    ///
    /// [`Error::Schedule`] if `minute` is over 59.
    pub fn hourly_at(minute: u32) -> Result<Cron, Error> {
        let expression = format!("{minute} * * * *");
        check(&expression, "minute", minute, 0, 59)?;
        Ok(Cron::known(&expression))
    }

    /// Every day at midnight: `0 0 * * *`.
    pub fn daily() -> Cron {
        Cron::known("0 0 * * *")
    }

    /// Every day at `hour:minute`: `{minute} {hour} * * *`.
    ///
    /// # Errors
    ///
    /// [`Error::Schedule`] if `hour` is over 23 or `minute` over 59.
    pub fn daily_at(hour: u32, minute: u32) -> Result<Cron, Error> {
        let expression = format!("{minute} {hour} * * *");
        check(&expression, "hour", hour, 0, 23)?;
        check(&expression, "minute", minute, 0, 59)?;
        Ok(Cron::known(&expression))
    }

    /// Every Monday at midnight: `0 0 * * 1`. Monday, as in Hangfire; note that
    /// crontab's `@weekly` is Sunday.
    pub fn weekly() -> Cron {
        Cron::known("0 0 * * 1")
    }

    /// Every `weekday` at `hour:minute`: `{minute} {hour} * * {weekday}`, with
    /// crontab's day numbers (Sunday 0, Monday 1).
    ///
    /// # Errors
    ///
    /// [`Error::Schedule`] if `hour` is over 23 or `minute` over 59.
    pub fn weekly_on(weekday: Weekday, hour: u32, minute: u32) -> Result<Cron, Error> {
        let day = weekday.num_days_from_sunday();
        let expression = format!("{minute} {hour} * * {day}");
        check(&expression, "hour", hour, 0, 23)?;
        check(&expression, "minute", minute, 0, 59)?;
        Ok(Cron::known(&expression))
    }

    /// The first day of every month at midnight: `0 0 1 * *`.
    pub fn monthly() -> Cron {
        Cron::known("0 0 1 * *")
    }

    /// Day `day` of every month at `hour:minute`: `{minute} {hour} {day} * *`.
    /// Months without that day are skipped: `monthly_on(31, ..)` fires in
    /// seven months of the year.
    ///
    /// # Errors
    ///
    /// [`Error::Schedule`] if `day` is not 1-31, `hour` over 23 or `minute` over 59.
    pub fn monthly_on(day: u32, hour: u32, minute: u32) -> Result<Cron, Error> {
        let expression = format!("{minute} {hour} {day} * *");
        check(&expression, "day of month", day, 1, 31)?;
        check(&expression, "hour", hour, 0, 23)?;
        check(&expression, "minute", minute, 0, 59)?;
        Ok(Cron::known(&expression))
    }

    /// Every 1 January at midnight: `0 0 1 1 *`.
    pub fn yearly() -> Cron {
        Cron::known("0 0 1 1 *")
    }

    /// The same schedule, with its fields read in `time_zone`.
    #[must_use]
    pub fn with_time_zone(mut self, time_zone: Tz) -> Cron {
        self.time_zone = time_zone;
        self
    }

    /// The same schedule, with its fields read in the IANA zone named `name`
    /// (`"Europe/Berlin"`, `"America/New_York"`, `"UTC"`).
    ///
    /// # Errors
    ///
    /// [`Error::Schedule`] naming the zone if it is not an IANA time zone.
    pub fn in_time_zone(self, name: &str) -> Result<Cron, Error> {
        Ok(self.with_time_zone(Tz::named(name)?))
    }

    /// The expression, as given.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The zone the fields are read in.
    pub fn time_zone(&self) -> &Tz {
        &self.time_zone
    }

    /// The first fire time strictly after `after`, or `None` if there is none
    /// (a schedule that ends, or a date that never comes, like `0 0 30 2 *`).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        next::next_after(&self.compiled, &self.time_zone, after, false)
    }

    /// The next `n` fire times strictly after `after`, in increasing order
    /// (fewer if the schedule ends).
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// use jobs::{Cron, Timestamp};
    /// let at = |s: &str| s.parse::<Timestamp>().unwrap();
    ///
    /// let now = at("2026-05-01T10:20:00Z");
    /// let next = Cron::hourly_at(15)?.next_n(now, 3);
    /// assert_eq!(next, [
    ///     at("2026-05-01T11:15:00Z"),
    ///     at("2026-05-01T12:15:00Z"),
    ///     at("2026-05-01T13:15:00Z"),
    /// ]);
    /// # Ok::<(), jobs::Error>(())
    /// ```
    pub fn next_n(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n.min(1024));
        let mut cursor = after;
        while out.len() < n {
            match self.next_after(cursor) {
                Some(next) => {
                    out.push(next);
                    cursor = next;
                }
                None => break,
            }
        }
        out
    }

    /// The fire times in `(from_exclusive, to_inclusive]`, the earliest
    /// `limit` of them, in increasing order: the ticks missed between the last
    /// scheduled instant (or the creation time) and now.
    ///
    /// When the result holds `limit` ticks there may be more; the walk stops
    /// there, so a per-second schedule after a long outage costs `limit` steps.
    ///
    /// ```
    /// # use jobs_core as jobs;
    /// use jobs::{Cron, Timestamp};
    /// let at = |s: &str| s.parse::<Timestamp>().unwrap();
    ///
    /// let last = at("2026-05-01T10:00:00Z");
    /// let now = at("2026-05-01T13:00:00Z");
    /// let missed = Cron::hourly().ticks_between(last, now, 10);
    /// assert_eq!(missed.len(), 3); // 11:00, 12:00, 13:00
    /// # Ok::<(), jobs::Error>(())
    /// ```
    pub fn ticks_between(
        &self,
        from_exclusive: DateTime<Utc>,
        to_inclusive: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut cursor = from_exclusive;
        while out.len() < limit {
            match self.next_after(cursor) {
                Some(next) if next <= to_inclusive => {
                    out.push(next);
                    cursor = next;
                }
                _ => break,
            }
        }
        out
    }

    /// For expressions this module writes itself, which are valid by construction.
    fn known(expression: &str) -> Cron {
        match Cron::parse(expression) {
            Ok(cron) => cron,
            Err(error) => unreachable!("built-in schedule `{expression}` is invalid: {error}"),
        }
    }
}

/// Range check for the named constructors, with the message `parse` would give.
fn check(expression: &str, field: &str, value: u32, min: u32, max: u32) -> Result<(), Error> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Error::Schedule {
            expression: expression.to_owned(),
            reason: format!("{field} {value} is out of range {min}-{max}"),
        })
    }
}

impl FromStr for Cron {
    type Err = Error;

    fn from_str(expression: &str) -> Result<Cron, Error> {
        Cron::parse(expression)
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

impl fmt::Debug for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cron")
            .field("expression", &self.expression)
            .field("time_zone", &self.time_zone.name())
            .finish()
    }
}

impl PartialEq for Cron {
    fn eq(&self, other: &Cron) -> bool {
        self.expression == other.expression && self.time_zone == other.time_zone
    }
}

impl Eq for Cron {}

/// The serialized form: the expression and the zone's IANA name.
#[derive(Serialize)]
struct CronRepr<E, Z> {
    expression: E,
    time_zone: Z,
}

impl Serialize for Cron {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        CronRepr {
            expression: self.expression.as_str(),
            time_zone: self.time_zone.name(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Cron {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Cron, D::Error> {
        #[derive(Deserialize)]
        struct Owned {
            expression: String,
            #[serde(default)]
            time_zone: Option<String>,
        }
        let Owned {
            expression,
            time_zone,
        } = Owned::deserialize(deserializer)?;
        let cron = Cron::parse(&expression).map_err(serde::de::Error::custom)?;
        match time_zone {
            Some(name) => cron.in_time_zone(&name).map_err(serde::de::Error::custom),
            None => Ok(cron),
        }
    }
}
