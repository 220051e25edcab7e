//! [`Tz`]: an IANA time zone, with its offset rules read from the system's
//! zoneinfo (`/usr/share/zoneinfo`) or, where the system has none, from the
//! copy of the time zone database bundled with `jiff`.
//!
//! Zones are loaded when first named, not linked in as tables: a
//! compiled-in database (such as `chrono-tz`'s) costs every process memory at
//! start, for the pointers the loader relocates, whether or not a schedule
//! ever uses a zone (measured in `jobs-bench/README.md`).

use std::fmt;
use std::str::FromStr;

use jiff::tz::{AmbiguousOffset, TimeZone};

use crate::error::Error;

/// An IANA time zone, as [`Cron::with_time_zone`](crate::Cron::with_time_zone)
/// takes it: `Tz::UTC`, `Tz::named("Europe/Berlin")?` or
/// `"America/New_York".parse::<Tz>()?`. Cheap to clone.
#[derive(Clone, PartialEq, Eq)]
pub struct Tz(TimeZone);

impl Tz {
    /// Coordinated Universal Time.
    pub const UTC: Tz = Tz(TimeZone::UTC);

    /// The zone with this IANA name (`"Europe/Berlin"`, `"America/New_York"`,
    /// `"UTC"`; case-insensitive).
    ///
    /// # Errors
    ///
    /// [`Error::Schedule`] naming the zone when no zone has that name.
    pub fn named(name: &str) -> Result<Tz, Error> {
        let name = name.trim();
        match TimeZone::get(name) {
            Ok(zone) if zone.iana_name().is_some() => Ok(Tz(zone)),
            _ => Err(Error::Schedule {
                expression: name.to_owned(),
                reason: "not an IANA time zone name; expected one like `Europe/Berlin`, \
                         `America/New_York` or `UTC`"
                    .to_owned(),
            }),
        }
    }

    /// The zone's IANA name, as stored with a schedule.
    pub fn name(&self) -> &str {
        self.0.iana_name().unwrap_or("UTC")
    }

    /// The offset from UTC in seconds at the Unix time `at` (in seconds).
    pub(super) fn offset_at(&self, at: i64) -> i64 {
        match jiff::Timestamp::from_second(at) {
            Ok(instant) => i64::from(self.0.to_offset(instant).seconds()),
            Err(_) => 0,
        }
    }

    /// When the wall-clock time `wall` (seconds since the epoch, read as if
    /// it were UTC) happens twice, because the clocks fall back: the Unix
    /// times of its first and second pass.
    pub(super) fn repeated(&self, wall: i64) -> Option<(i64, i64)> {
        let civil = TimeZone::UTC.to_datetime(jiff::Timestamp::from_second(wall).ok()?);
        match self.0.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Fold { before, after } => Some((
                wall - i64::from(before.seconds()),
                wall - i64::from(after.seconds()),
            )),
            _ => None,
        }
    }
}

impl FromStr for Tz {
    type Err = Error;

    fn from_str(name: &str) -> Result<Tz, Error> {
        Tz::named(name)
    }
}

impl fmt::Display for Tz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for Tz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tz({:?})", self.name())
    }
}
