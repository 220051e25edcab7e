//! The next fire time in a time zone, with the DST rules of the module docs.
//!
//! The `cron` crate is used only to find the next matching *wall-clock* time
//! (its schedules are run in UTC here, where no time is missing or doubled).
//! Its own zone handling is not used: given a zone it skips a
//! time that falls in a spring-forward gap (a daily 02:30 job does not run
//! that day), fires a fixed-time job twice when the clocks fall back, and
//! starting from the second pass of a repeated hour it can answer an instant
//! *before* the one it was asked about. So this module walks the UTC time
//! line one constant-offset stretch at a time instead.

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};

use super::parse::Compiled;
use super::Tz;

/// The first fire time after `start` (at or after it if `inclusive`).
pub(super) fn next_after(
    compiled: &Compiled,
    tz: &Tz,
    mut start: DateTime<Utc>,
    mut inclusive: bool,
) -> Option<DateTime<Utc>> {
    // Every turn either returns or moves `start` strictly forward, and the
    // crate's calendar ends (year 2100), so this ends.
    loop {
        let offset = offset_at(tz, start.timestamp());
        let local = start.naive_utc() + Duration::seconds(offset);
        // The crate answers whole seconds strictly after its argument.
        let probe = if inclusive {
            local - Duration::nanoseconds(1)
        } else {
            local
        };
        let wall = next_wall_time(compiled, probe)?;
        let candidate = (wall - Duration::seconds(offset)).and_utc();

        if offset_at(tz, candidate.timestamp()) == offset {
            // `wall` is a real time at the current offset.
            if !compiled.every_hour {
                if let Some((earlier, later)) = tz.repeated(wall.and_utc().timestamp()) {
                    if later == candidate.timestamp() {
                        // The second pass of a repeated hour: a fixed-time
                        // schedule ran at the first. Resume where the repeated
                        // stretch of wall-clock time ends.
                        let earlier_offset = offset_at(tz, earlier);
                        let transition = first_change(tz, earlier, candidate.timestamp());
                        start = utc(transition + (earlier_offset - offset))?;
                        inclusive = true;
                        continue;
                    }
                }
            }
            return Some(candidate);
        }

        // The offset changes before `candidate`: at `transition`, and nothing
        // fires before it at the old offset.
        let transition = first_change(tz, start.timestamp(), candidate.timestamp());
        let new_offset = offset_at(tz, transition);
        if new_offset > offset && !compiled.every_hour {
            // Spring forward: wall times in [transition + offset, transition +
            // new_offset) do not exist. `wall` is at or after the gap's start;
            // if it is inside, a fixed-time schedule runs when the clock jumps.
            let gap_end = DateTime::from_timestamp(transition + new_offset, 0)?.naive_utc();
            if wall < gap_end {
                return utc(transition);
            }
        }
        // Go on from the transition at the new offset. After falling back this
        // walks the repeated wall-clock times again (the check above keeps a
        // fixed-time schedule from firing twice).
        start = utc(transition)?;
        inclusive = true;
    }
}

/// The first matching wall-clock time strictly after `after`.
fn next_wall_time(compiled: &Compiled, after: NaiveDateTime) -> Option<NaiveDateTime> {
    let next = |schedule: &cron::Schedule| {
        schedule
            .after(&Utc.from_utc_datetime(&after))
            .next()
            .map(|time| time.naive_utc())
    };
    let primary = next(&compiled.primary);
    match compiled.alternative.as_ref().and_then(next) {
        Some(other) => Some(primary.map_or(other, |primary| primary.min(other))),
        None => primary,
    }
}

/// UTC offset in seconds at the Unix time `at`.
fn offset_at(tz: &Tz, at: i64) -> i64 {
    tz.offset_at(at)
}

/// The first second in `(from, to]` whose offset differs from the offset at
/// `from`; the offset at `to` must differ.
fn first_change(tz: &Tz, from: i64, to: i64) -> i64 {
    // Walk in half days, then bisect: offsets can change and change back
    // between two far-apart instants, but not twice within half a day.
    const STRIDE: i64 = 12 * 60 * 60;
    let offset = offset_at(tz, from);
    let mut low = from;
    let mut high = loop {
        let next = (low + STRIDE).min(to);
        if next == to || offset_at(tz, next) != offset {
            break next;
        }
        low = next;
    };
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if offset_at(tz, middle) == offset {
            low = middle;
        } else {
            high = middle;
        }
    }
    high
}

fn utc(timestamp: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(timestamp, 0)
}
