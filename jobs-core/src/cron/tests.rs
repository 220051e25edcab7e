//! Unit tests for `Cron`: syntax, errors, constructors, time zones, DST.
//!
//! DST instants used below, checked against the time zone database by
//! `dst_transitions_used_in_these_tests_are_where_we_think`:
//! - Europe/Berlin 2026-03-29: 02:00 CET -> 03:00 CEST at 01:00 UTC.
//! - Europe/Berlin 2026-10-25: 03:00 CEST -> 02:00 CET at 01:00 UTC; wall
//!   times 02:00-02:59 happen at 00:00-00:59 UTC and again at 01:00-01:59 UTC.
//! - America/New_York 2026-03-08: 02:00 EST -> 03:00 EDT at 07:00 UTC.
//! - America/New_York 2026-11-01: 02:00 EDT -> 01:00 EST at 06:00 UTC; wall
//!   times 01:00-01:59 happen at 05:00-05:59 UTC and again at 06:00-06:59 UTC.

use chrono::{DateTime, Duration, TimeZone, Utc, Weekday};

use super::{Cron, Tz};
use crate::Error;

fn zone(name: &str) -> Tz {
    Tz::named(name).unwrap()
}

#[allow(non_snake_case)]
fn BERLIN() -> Tz {
    zone("Europe/Berlin")
}

#[allow(non_snake_case)]
fn NEW_YORK() -> Tz {
    zone("America/New_York")
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn cron(expression: &str) -> Cron {
    Cron::parse(expression).unwrap_or_else(|error| panic!("{expression}: {error}"))
}

fn reason(expression: &str) -> String {
    match Cron::parse(expression) {
        Err(Error::Schedule {
            expression: given,
            reason,
        }) => {
            assert_eq!(given, expression.trim());
            reason
        }
        other => panic!("{expression:?} should be refused, got {other:?}"),
    }
}

fn offset_hours(tz: &Tz, at: DateTime<Utc>) -> i64 {
    tz.offset_at(at.timestamp()) / 3600
}

// ---- syntax ----

#[test]
fn dst_transitions_used_in_these_tests_are_where_we_think() {
    let second = Duration::seconds(1);
    for (tz, at, before, after) in [
        (BERLIN(), utc(2026, 3, 29, 1, 0, 0), 1, 2),
        (BERLIN(), utc(2026, 10, 25, 1, 0, 0), 2, 1),
        (NEW_YORK(), utc(2026, 3, 8, 7, 0, 0), -5, -4),
        (NEW_YORK(), utc(2026, 11, 1, 6, 0, 0), -4, -5),
    ] {
        assert_eq!(offset_hours(&tz, at - second), before, "{tz} before {at}");
        assert_eq!(offset_hours(&tz, at), after, "{tz} at {at}");
    }
}

#[test]
fn five_fields_are_minute_precision_with_second_zero() {
    let daily = cron("0 3 * * *");
    assert_eq!(
        daily.next_after(utc(2026, 1, 1, 0, 0, 0)),
        Some(utc(2026, 1, 1, 3, 0, 0))
    );
    assert_eq!(
        cron("* * * * *").next_after(utc(2026, 1, 1, 10, 0, 30)),
        Some(utc(2026, 1, 1, 10, 1, 0))
    );
    assert_eq!(
        cron("15,45 */6 * * *").next_n(utc(2026, 1, 1, 0, 30, 0), 3),
        [
            utc(2026, 1, 1, 0, 45, 0),
            utc(2026, 1, 1, 6, 15, 0),
            utc(2026, 1, 1, 6, 45, 0)
        ]
    );
}

#[test]
fn six_fields_start_with_seconds() {
    assert_eq!(
        cron("*/10 * * * * *").next_n(utc(2026, 1, 1, 10, 0, 5), 3),
        [
            utc(2026, 1, 1, 10, 0, 10),
            utc(2026, 1, 1, 10, 0, 20),
            utc(2026, 1, 1, 10, 0, 30)
        ]
    );
    assert_eq!(cron("0 0 3 * * *"), cron("0 0 3 * * *"));
    assert_eq!(
        cron("30 0 3 * * *").next_after(utc(2026, 1, 1, 0, 0, 0)),
        Some(utc(2026, 1, 1, 3, 0, 30))
    );
}

#[test]
fn seven_fields_end_with_a_year() {
    let once = cron("0 0 12 1 1 * 2030");
    assert_eq!(
        once.next_after(utc(2026, 6, 1, 0, 0, 0)),
        Some(utc(2030, 1, 1, 12, 0, 0))
    );
    assert_eq!(once.next_after(utc(2030, 1, 1, 12, 0, 0)), None);
    assert_eq!(once.next_n(utc(2026, 1, 1, 0, 0, 0), 5).len(), 1);
}

#[test]
fn surrounding_whitespace_and_repeated_spaces_are_accepted() {
    let spaced = cron("  0   3 * *\t*  ");
    assert_eq!(spaced.expression(), "0   3 * *\t*");
    assert_eq!(
        spaced.next_after(utc(2026, 1, 1, 0, 0, 0)),
        Some(utc(2026, 1, 1, 3, 0, 0))
    );
}

#[test]
fn day_of_week_numbers_are_crontabs_with_sunday_as_0_or_7() {
    // 2026-01-05 is a Monday.
    let monday = utc(2026, 1, 5, 0, 0, 0);
    let weekday_of = |expression: &str| {
        cron(expression)
            .next_after(monday)
            .map(|at| chrono::Datelike::weekday(&at))
    };
    assert_eq!(weekday_of("0 9 * * 1"), Some(Weekday::Mon));
    assert_eq!(weekday_of("0 9 * * 0"), Some(Weekday::Sun));
    assert_eq!(weekday_of("0 9 * * 7"), Some(Weekday::Sun));
    assert_eq!(weekday_of("0 9 * * 6"), Some(Weekday::Sat));
    assert_eq!(weekday_of("0 0 9 * * 1"), Some(Weekday::Mon)); // 6 fields too
    assert_eq!(weekday_of("0 0 9 * * 1 *"), Some(Weekday::Mon)); // 7 fields too
    assert_eq!(weekday_of("0 9 * * Sat"), Some(Weekday::Sat));
    assert_eq!(weekday_of("0 9 * * thursday"), Some(Weekday::Thu));

    let days = |expression: &str| -> Vec<Weekday> {
        cron(expression)
            .next_n(monday, 7)
            .iter()
            .map(chrono::Datelike::weekday)
            .collect()
    };
    use Weekday::*;
    assert_eq!(days("0 9 * * 1-5"), [Mon, Tue, Wed, Thu, Fri, Mon, Tue]);
    assert_eq!(days("0 9 * * Mon-Fri"), [Mon, Tue, Wed, Thu, Fri, Mon, Tue]);
    assert_eq!(days("0 9 * * 5-7"), [Fri, Sat, Sun, Fri, Sat, Sun, Fri]);
    assert_eq!(days("0 9 * * */2"), [Tue, Thu, Sat, Sun, Tue, Thu, Sat]);
    assert_eq!(days("0 9 * * 1-5/2"), [Mon, Wed, Fri, Mon, Wed, Fri, Mon]);
    assert_eq!(days("0 9 * * 1/3"), [Mon, Thu, Sun, Mon, Thu, Sun, Mon]);
    assert_eq!(days("0 9 * * 0,3"), [Wed, Sun, Wed, Sun, Wed, Sun, Wed]);
    assert_eq!(days("0 9 * * 0-7").len(), 7);
}

#[test]
fn day_of_month_or_day_of_week_when_both_are_restricted() {
    // Vixie cron: the 13th of any month, and every Friday.
    let got = cron("0 0 13 * Fri").next_n(utc(2026, 2, 1, 0, 0, 0), 6);
    assert_eq!(
        got,
        [
            utc(2026, 2, 6, 0, 0, 0),
            utc(2026, 2, 13, 0, 0, 0), // both
            utc(2026, 2, 20, 0, 0, 0),
            utc(2026, 2, 27, 0, 0, 0),
            utc(2026, 3, 6, 0, 0, 0),
            utc(2026, 3, 13, 0, 0, 0),
        ]
    );
    // A `*` or `?` day field leaves the other in charge.
    assert_eq!(
        cron("0 0 13 * ?").next_n(utc(2026, 2, 1, 0, 0, 0), 2),
        [utc(2026, 2, 13, 0, 0, 0), utc(2026, 3, 13, 0, 0, 0)]
    );
    assert_eq!(
        cron("0 0 ? * Fri").next_after(utc(2026, 2, 7, 0, 0, 0)),
        Some(utc(2026, 2, 13, 0, 0, 0))
    );
}

#[test]
fn missing_days_are_skipped() {
    assert_eq!(
        cron("0 0 31 * *").next_n(utc(2026, 1, 31, 0, 0, 0), 2),
        [utc(2026, 3, 31, 0, 0, 0), utc(2026, 5, 31, 0, 0, 0)]
    );
    assert_eq!(
        cron("0 0 29 2 *").next_after(utc(2026, 1, 1, 0, 0, 0)),
        Some(utc(2028, 2, 29, 0, 0, 0))
    );
    assert_eq!(
        cron("0 0 30 2 *").next_after(utc(2026, 1, 1, 0, 0, 0)),
        None
    );
}

#[test]
fn shorthands_mean_what_they_mean_in_crontab() {
    let from = utc(2026, 1, 7, 10, 30, 0); // a Wednesday
    for (shorthand, expected) in [
        ("@yearly", utc(2027, 1, 1, 0, 0, 0)),
        ("@annually", utc(2027, 1, 1, 0, 0, 0)),
        ("@monthly", utc(2026, 2, 1, 0, 0, 0)),
        ("@weekly", utc(2026, 1, 11, 0, 0, 0)), // Sunday
        ("@daily", utc(2026, 1, 8, 0, 0, 0)),
        ("@midnight", utc(2026, 1, 8, 0, 0, 0)),
        ("@hourly", utc(2026, 1, 7, 11, 0, 0)),
    ] {
        let parsed = cron(shorthand);
        assert_eq!(parsed.next_after(from), Some(expected), "{shorthand}");
        assert_eq!(parsed.to_string(), shorthand);
    }
}

// ---- errors ----

#[test]
fn wrong_field_count_says_what_is_expected() {
    assert_eq!(
        reason("0 3 *"),
        "expected 5 fields (minute hour day month weekday) or 6 with seconds \
         (or 7 with seconds and year), got 3"
    );
    assert!(reason("0 0 0 0 3 * * *").ends_with("got 8"));
    assert!(reason("*").ends_with("got 1"));
}

#[test]
fn empty_expression_is_refused() {
    assert!(reason("").starts_with("the expression is empty"));
    assert!(reason("   ").starts_with("the expression is empty"));
}

#[test]
fn a_bad_field_is_named_with_its_allowed_values() {
    assert_eq!(
        reason("61 * * * *"),
        "minute field `61` is not valid; allowed values are 0-59"
    );
    assert_eq!(
        reason("0 24 * * *"),
        "hour field `24` is not valid; allowed values are 0-23"
    );
    assert_eq!(
        reason("0 0 32 * *"),
        "day-of-month field `32` is not valid; allowed values are 1-31"
    );
    assert!(reason("0 0 * 13 *").starts_with("month field `13`"));
    assert!(reason("0 0 * Foo *").starts_with("month field `Foo`"));
    assert_eq!(
        reason("0 0 * * 8"),
        "day-of-week field `8`: day 8 is out of range 0-7 (0 and 7 are Sunday, 1 is Monday)"
    );
    assert!(reason("0 3 * * x").starts_with("day-of-week field `x`: `x` is not a day"));
    assert!(reason("0 3 * * Fri-Mon").contains("runs backwards"));
    assert!(reason("0 3 * * 1/0").contains("step `0`"));
    assert!(reason("*/0 * * * *").starts_with("minute field `*/0`: range step cannot be zero"));
    assert!(reason("0 0 0 * * * 1969").starts_with("year field `1969`"));
    assert!(reason("61 0 0 * * *").starts_with("second field `61`"));
    // The first bad field is reported, in the order written.
    assert!(reason("a b c d e").starts_with("minute field `a`"));
    assert!(reason("@often").starts_with("unknown shorthand `@often`"));
}

#[test]
fn errors_display_the_expression_and_the_reason() {
    let error = Cron::parse("0 3 *").unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid schedule `0 3 *`: expected 5 fields (minute hour day month weekday) \
         or 6 with seconds (or 7 with seconds and year), got 3"
    );
    assert!("0 25 * * *".parse::<Cron>().is_err());
}

// ---- named constructors ----

#[test]
fn named_constructors_fire_when_their_names_say() {
    let from = utc(2026, 1, 7, 10, 30, 20); // a Wednesday
    let cases: [(Cron, &str, [DateTime<Utc>; 2]); 11] = [
        (
            Cron::minutely(),
            "* * * * *",
            [utc(2026, 1, 7, 10, 31, 0), utc(2026, 1, 7, 10, 32, 0)],
        ),
        (
            Cron::hourly(),
            "0 * * * *",
            [utc(2026, 1, 7, 11, 0, 0), utc(2026, 1, 7, 12, 0, 0)],
        ),
        (
            Cron::hourly_at(15).unwrap(),
            "15 * * * *",
            [utc(2026, 1, 7, 11, 15, 0), utc(2026, 1, 7, 12, 15, 0)],
        ),
        (
            Cron::daily(),
            "0 0 * * *",
            [utc(2026, 1, 8, 0, 0, 0), utc(2026, 1, 9, 0, 0, 0)],
        ),
        (
            Cron::daily_at(9, 45).unwrap(),
            "45 9 * * *",
            [utc(2026, 1, 8, 9, 45, 0), utc(2026, 1, 9, 9, 45, 0)],
        ),
        (
            Cron::weekly(),
            "0 0 * * 1",
            [utc(2026, 1, 12, 0, 0, 0), utc(2026, 1, 19, 0, 0, 0)],
        ),
        (
            Cron::weekly_on(Weekday::Sun, 18, 0).unwrap(),
            "0 18 * * 0",
            [utc(2026, 1, 11, 18, 0, 0), utc(2026, 1, 18, 18, 0, 0)],
        ),
        (
            Cron::weekly_on(Weekday::Wed, 11, 0).unwrap(),
            "0 11 * * 3",
            [utc(2026, 1, 7, 11, 0, 0), utc(2026, 1, 14, 11, 0, 0)],
        ),
        (
            Cron::monthly(),
            "0 0 1 * *",
            [utc(2026, 2, 1, 0, 0, 0), utc(2026, 3, 1, 0, 0, 0)],
        ),
        (
            Cron::monthly_on(31, 23, 59).unwrap(),
            "59 23 31 * *",
            [utc(2026, 1, 31, 23, 59, 0), utc(2026, 3, 31, 23, 59, 0)],
        ),
        (
            Cron::yearly(),
            "0 0 1 1 *",
            [utc(2027, 1, 1, 0, 0, 0), utc(2028, 1, 1, 0, 0, 0)],
        ),
    ];
    for (schedule, expression, expected) in cases {
        assert_eq!(schedule.expression(), expression);
        assert_eq!(schedule.time_zone(), &Tz::UTC);
        assert_eq!(schedule.next_n(from, 2), expected, "{expression}");
        assert_eq!(schedule, cron(expression));
    }
}

#[test]
fn named_constructors_refuse_out_of_range_arguments() {
    let refused = |result: Result<Cron, Error>| match result {
        Err(Error::Schedule { reason, .. }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(
        refused(Cron::hourly_at(60)),
        "minute 60 is out of range 0-59"
    );
    assert_eq!(
        refused(Cron::daily_at(24, 0)),
        "hour 24 is out of range 0-23"
    );
    assert_eq!(
        refused(Cron::daily_at(0, 60)),
        "minute 60 is out of range 0-59"
    );
    assert_eq!(
        refused(Cron::weekly_on(Weekday::Mon, 25, 0)),
        "hour 25 is out of range 0-23"
    );
    assert_eq!(
        refused(Cron::monthly_on(0, 0, 0)),
        "day of month 0 is out of range 1-31"
    );
    assert_eq!(
        refused(Cron::monthly_on(32, 0, 0)),
        "day of month 32 is out of range 1-31"
    );
    assert!(Cron::hourly_at(59).is_ok());
    assert!(Cron::daily_at(23, 59).is_ok());
    assert!(Cron::monthly_on(1, 0, 0).is_ok());
}

// ---- time zones ----

#[test]
fn fields_are_read_in_the_time_zone() {
    let nine = Cron::daily_at(9, 0).unwrap().with_time_zone(NEW_YORK());
    // EST (-5) in January, EDT (-4) in July.
    assert_eq!(
        nine.next_after(utc(2026, 1, 15, 0, 0, 0)),
        Some(utc(2026, 1, 15, 14, 0, 0))
    );
    assert_eq!(
        nine.next_after(utc(2026, 7, 15, 0, 0, 0)),
        Some(utc(2026, 7, 15, 13, 0, 0))
    );
    // The local date decides the weekday: Monday 00:30 in Berlin is Sunday 23:30 UTC.
    let monday = cron("30 0 * * Mon").in_time_zone("Europe/Berlin").unwrap();
    assert_eq!(
        monday.next_after(utc(2026, 1, 7, 0, 0, 0)),
        Some(utc(2026, 1, 11, 23, 30, 0))
    );
    // Far from UTC, in both directions.
    let kiritimati = Cron::daily().in_time_zone("Pacific/Kiritimati").unwrap(); // +14
    assert_eq!(
        kiritimati.next_after(utc(2026, 1, 1, 0, 0, 0)),
        Some(utc(2026, 1, 1, 10, 0, 0))
    );
    let half_hour = Cron::daily().in_time_zone("Asia/Kolkata").unwrap(); // +5:30
    assert_eq!(
        half_hour.next_after(utc(2026, 1, 1, 0, 0, 0)),
        Some(utc(2026, 1, 1, 18, 30, 0))
    );
}

#[test]
fn time_zone_names_are_validated() {
    let daily = Cron::daily();
    assert_eq!(
        daily
            .clone()
            .in_time_zone("America/New_York")
            .unwrap()
            .time_zone(),
        &NEW_YORK()
    );
    assert_eq!(
        daily.clone().in_time_zone("UTC").unwrap().time_zone(),
        &Tz::UTC
    );
    match daily.in_time_zone("Europe/Berln") {
        Err(Error::Schedule { expression, reason }) => {
            assert_eq!(expression, "Europe/Berln");
            assert!(reason.contains("not an IANA time zone"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_time_zone_is_part_of_equality_but_not_of_display() {
    let utc_daily = Cron::daily();
    let berlin_daily = Cron::daily().with_time_zone(BERLIN());
    assert_ne!(utc_daily, berlin_daily);
    assert_eq!(berlin_daily.to_string(), "0 0 * * *");
    assert_eq!(
        format!("{berlin_daily:?}"),
        r#"Cron { expression: "0 0 * * *", time_zone: "Europe/Berlin" }"#
    );
}

// ---- DST: a local time that does not exist (spring forward) ----

#[test]
fn berlin_spring_forward_fixed_time_runs_when_the_clock_jumps() {
    let daily = Cron::daily_at(2, 30).unwrap().with_time_zone(BERLIN());
    assert_eq!(
        daily.next_n(utc(2026, 3, 27, 12, 0, 0), 3),
        [
            utc(2026, 3, 28, 1, 30, 0), // 02:30 CET
            utc(2026, 3, 29, 1, 0, 0),  // 02:30 does not exist: 03:00 CEST
            utc(2026, 3, 30, 0, 30, 0), // 02:30 CEST
        ]
    );
    // Asked from inside the skipped hour's UTC neighbourhood.
    assert_eq!(
        daily.next_after(utc(2026, 3, 29, 0, 59, 59)),
        Some(utc(2026, 3, 29, 1, 0, 0))
    );
    assert_eq!(
        daily.next_after(utc(2026, 3, 29, 1, 0, 0)),
        Some(utc(2026, 3, 30, 0, 30, 0))
    );
}

#[test]
fn berlin_spring_forward_several_missing_times_make_one_run() {
    let twice = cron("0,30 2 * * *").with_time_zone(BERLIN());
    assert_eq!(
        twice.next_n(utc(2026, 3, 28, 12, 0, 0), 3),
        [
            utc(2026, 3, 29, 1, 0, 0),
            utc(2026, 3, 30, 0, 0, 0),
            utc(2026, 3, 30, 0, 30, 0)
        ]
    );
    // 02:00 (missing, moved to 03:00) and 03:00 are the same instant: one run.
    let two_and_three = cron("0 2,3 * * *").with_time_zone(BERLIN());
    assert_eq!(
        two_and_three.next_n(utc(2026, 3, 28, 12, 0, 0), 3),
        [
            utc(2026, 3, 29, 1, 0, 0),
            utc(2026, 3, 30, 0, 0, 0),
            utc(2026, 3, 30, 1, 0, 0)
        ]
    );
}

#[test]
fn berlin_spring_forward_interval_schedules_fire_every_real_hour() {
    let hourly = Cron::hourly().with_time_zone(BERLIN());
    assert_eq!(
        hourly.next_n(utc(2026, 3, 28, 23, 30, 0), 4),
        [
            utc(2026, 3, 29, 0, 0, 0), // 01:00 CET
            utc(2026, 3, 29, 1, 0, 0), // 03:00 CEST (02:00 does not exist)
            utc(2026, 3, 29, 2, 0, 0), // 04:00 CEST
            utc(2026, 3, 29, 3, 0, 0),
        ]
    );
    let half_past = Cron::hourly_at(30).unwrap().with_time_zone(BERLIN());
    assert_eq!(
        half_past.next_n(utc(2026, 3, 29, 0, 0, 0), 2),
        [utc(2026, 3, 29, 0, 30, 0), utc(2026, 3, 29, 1, 30, 0)] // 01:30 CET, 03:30 CEST
    );
}

#[test]
fn new_york_spring_forward() {
    let daily = Cron::daily_at(2, 30).unwrap().with_time_zone(NEW_YORK());
    assert_eq!(
        daily.next_n(utc(2026, 3, 7, 0, 0, 0), 3),
        [
            utc(2026, 3, 7, 7, 30, 0), // 02:30 EST
            utc(2026, 3, 8, 7, 0, 0),  // 03:00 EDT
            utc(2026, 3, 9, 6, 30, 0), // 02:30 EDT
        ]
    );
    let hourly = Cron::hourly().with_time_zone(NEW_YORK());
    assert_eq!(
        hourly.next_n(utc(2026, 3, 8, 5, 30, 0), 3),
        [
            utc(2026, 3, 8, 6, 0, 0), // 01:00 EST
            utc(2026, 3, 8, 7, 0, 0), // 03:00 EDT
            utc(2026, 3, 8, 8, 0, 0), // 04:00 EDT
        ]
    );
}

// ---- DST: a local time that happens twice (fall back) ----

#[test]
fn berlin_fall_back_fixed_time_runs_once_at_the_first_occurrence() {
    let daily = Cron::daily_at(2, 30).unwrap().with_time_zone(BERLIN());
    assert_eq!(
        daily.next_n(utc(2026, 10, 24, 12, 0, 0), 2),
        [
            utc(2026, 10, 25, 0, 30, 0), // 02:30 CEST, the first 02:30
            utc(2026, 10, 26, 1, 30, 0), // 02:30 CET; not 01:30 UTC on the 25th
        ]
    );
    // Asked from the second pass of the repeated hour: still the next day.
    assert_eq!(
        daily.next_after(utc(2026, 10, 25, 1, 15, 0)), // 02:15 CET
        Some(utc(2026, 10, 26, 1, 30, 0))
    );
    assert_eq!(
        daily.next_after(utc(2026, 10, 25, 0, 45, 0)), // 02:45 CEST
        Some(utc(2026, 10, 26, 1, 30, 0))
    );
    // The same with seconds, and with a fixed hour but several minutes.
    let with_seconds = cron("0 30 2 * * *").with_time_zone(BERLIN());
    assert_eq!(
        with_seconds.next_n(utc(2026, 10, 24, 12, 0, 0), 2),
        daily.next_n(utc(2026, 10, 24, 12, 0, 0), 2)
    );
    let every_half_hour_at_two = cron("*/30 2 * * *").with_time_zone(BERLIN());
    assert_eq!(
        every_half_hour_at_two.next_n(utc(2026, 10, 24, 12, 0, 0), 3),
        [
            utc(2026, 10, 25, 0, 0, 0),  // 02:00 CEST
            utc(2026, 10, 25, 0, 30, 0), // 02:30 CEST
            utc(2026, 10, 26, 1, 0, 0),  // 02:00 CET the next day
        ]
    );
    // 03:00 happens once (CET), right after the repeated hour.
    let three = Cron::daily_at(3, 0).unwrap().with_time_zone(BERLIN());
    assert_eq!(
        three.next_after(utc(2026, 10, 24, 12, 0, 0)),
        Some(utc(2026, 10, 25, 2, 0, 0))
    );
}

#[test]
fn berlin_fall_back_interval_schedules_fire_every_real_hour() {
    let hourly = Cron::hourly().with_time_zone(BERLIN());
    assert_eq!(
        hourly.next_n(utc(2026, 10, 24, 22, 30, 0), 4),
        [
            utc(2026, 10, 24, 23, 0, 0), // 01:00 CEST
            utc(2026, 10, 25, 0, 0, 0),  // 02:00 CEST
            utc(2026, 10, 25, 1, 0, 0),  // 02:00 CET
            utc(2026, 10, 25, 2, 0, 0),  // 03:00 CET
        ]
    );
    // From inside the first pass: the earlier fire times of the second pass
    // come after the later ones of the first.
    let ten = cron("*/10 * * * *").with_time_zone(BERLIN());
    assert_eq!(
        ten.next_n(utc(2026, 10, 25, 0, 40, 0), 3), // 02:40 CEST
        [
            utc(2026, 10, 25, 0, 50, 0), // 02:50 CEST
            utc(2026, 10, 25, 1, 0, 0),  // 02:00 CET
            utc(2026, 10, 25, 1, 10, 0), // 02:10 CET
        ]
    );
    // From inside the second pass.
    assert_eq!(
        ten.next_after(utc(2026, 10, 25, 1, 25, 0)), // 02:25 CET
        Some(utc(2026, 10, 25, 1, 30, 0))
    );
}

#[test]
fn new_york_fall_back() {
    let daily = Cron::daily_at(1, 30).unwrap().with_time_zone(NEW_YORK());
    assert_eq!(
        daily.next_n(utc(2026, 10, 31, 12, 0, 0), 2),
        [
            utc(2026, 11, 1, 5, 30, 0), // 01:30 EDT, once
            utc(2026, 11, 2, 6, 30, 0), // 01:30 EST
        ]
    );
    let hourly = Cron::hourly().with_time_zone(NEW_YORK());
    assert_eq!(
        hourly.next_n(utc(2026, 11, 1, 4, 30, 0), 3),
        [
            utc(2026, 11, 1, 5, 0, 0), // 01:00 EDT
            utc(2026, 11, 1, 6, 0, 0), // 01:00 EST
            utc(2026, 11, 1, 7, 0, 0), // 02:00 EST
        ]
    );
}

#[test]
fn interval_schedules_keep_a_constant_real_interval_all_year() {
    // Lord Howe shifts by half an hour, so only sub-half-hour steps can be
    // regular there: `0 * * * *` has a 90-minute gap at both transitions.
    for (tz, expressions) in [
        (BERLIN(), &[("0 * * * *", 3600), ("*/15 * * * *", 900)][..]),
        (
            NEW_YORK(),
            &[("0 * * * *", 3600), ("*/15 * * * *", 900)][..],
        ),
        (
            zone("Australia/Lord_Howe"),
            &[("*/15 * * * *", 900), ("*/30 * * * *", 1800)][..],
        ),
    ] {
        for &(expression, seconds) in expressions {
            let schedule = cron(expression).with_time_zone(tz.clone());
            let start = utc(2026, 1, 1, 0, 0, 0);
            let times = schedule.next_n(start, 366 * 24 * 3600 / seconds as usize);
            for pair in times.windows(2) {
                assert_eq!(
                    (pair[1] - pair[0]).num_seconds(),
                    seconds,
                    "{expression} in {tz} around {}",
                    pair[0]
                );
            }
        }
    }
}

#[test]
fn fixed_time_schedules_fire_once_per_local_day_all_year() {
    for tz in [
        BERLIN(),
        NEW_YORK(),
        zone("Australia/Lord_Howe"),
        zone("America/Santiago"),
    ] {
        for (hour, minute) in [(0, 0), (1, 30), (2, 0), (2, 30), (3, 0), (12, 0)] {
            let schedule = Cron::daily_at(hour, minute)
                .unwrap()
                .with_time_zone(tz.clone());
            // Local midnight of 1 January (no zone here changes its offset then).
            let new_year = utc(2026, 1, 1, 0, 0, 0);
            let start = new_year
                - Duration::seconds(tz.offset_at(new_year.timestamp()))
                - Duration::seconds(1);
            let times = schedule.next_n(start, 365);
            let dates: Vec<_> = times
                .iter()
                .map(|at| (*at + Duration::seconds(tz.offset_at(at.timestamp()))).date_naive())
                .collect();
            for (day, date) in dates.iter().enumerate() {
                assert_eq!(
                    *date,
                    chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
                        + Duration::days(day as i64),
                    "{hour}:{minute} in {tz}"
                );
            }
        }
    }
}

// ---- next_after, next_n, ticks_between ----

#[test]
fn next_after_is_strictly_after_and_agrees_with_next_n() {
    // Every 10 minutes for 6 hours around each Berlin and New York
    // transition, and every 7 seconds in between: next_after(t) is the first
    // fire time of the full sequence that is after t.
    for (tz, around) in [
        (BERLIN(), utc(2026, 3, 29, 1, 0, 0)),
        (BERLIN(), utc(2026, 10, 25, 1, 0, 0)),
        (NEW_YORK(), utc(2026, 3, 8, 7, 0, 0)),
        (NEW_YORK(), utc(2026, 11, 1, 6, 0, 0)),
    ] {
        for expression in [
            "*/10 * * * *",
            "*/10 1-3 * * *",
            "30 2 * * *",
            "0 1,2 * * *",
        ] {
            let schedule = cron(expression).with_time_zone(tz.clone());
            let from = around - Duration::hours(4);
            let all = schedule.next_n(from, 400);
            assert!(
                all.windows(2).all(|pair| pair[0] < pair[1]),
                "{expression} in {tz}"
            );
            let mut at = from;
            while at < around + Duration::hours(4) {
                let expected = all.iter().copied().find(|fire| *fire > at);
                assert_eq!(
                    schedule.next_after(at),
                    expected,
                    "{expression} in {tz} after {at}"
                );
                at += Duration::seconds(7);
            }
            // Sub-second instants.
            let just_after = all[0] + Duration::milliseconds(500);
            assert_eq!(schedule.next_after(just_after), Some(all[1]));
            assert_eq!(
                schedule.next_after(all[0] - Duration::nanoseconds(1)),
                Some(all[0])
            );
        }
    }
}

#[test]
fn next_n_is_strictly_increasing_and_counts() {
    let schedule = cron("*/7 * * * * *");
    let times = schedule.next_n(utc(2026, 1, 1, 0, 0, 0), 20);
    assert_eq!(times.len(), 20);
    assert!(times.windows(2).all(|pair| pair[0] < pair[1]));
    assert_eq!(times[0], utc(2026, 1, 1, 0, 0, 7));
    assert_eq!(times[8], utc(2026, 1, 1, 0, 1, 0)); // the step restarts each minute
    assert!(schedule.next_n(utc(2026, 1, 1, 0, 0, 0), 0).is_empty());
}

#[test]
fn ticks_between_lists_missed_ticks_up_to_a_limit() {
    let hourly = Cron::hourly();
    let from = utc(2026, 5, 1, 10, 0, 0);
    let to = utc(2026, 5, 1, 14, 0, 0);
    // From excluded, to included.
    assert_eq!(
        hourly.ticks_between(from, to, 10),
        [
            utc(2026, 5, 1, 11, 0, 0),
            utc(2026, 5, 1, 12, 0, 0),
            utc(2026, 5, 1, 13, 0, 0),
            utc(2026, 5, 1, 14, 0, 0)
        ]
    );
    // The earliest ones when over the limit.
    assert_eq!(
        hourly.ticks_between(from, to, 2),
        [utc(2026, 5, 1, 11, 0, 0), utc(2026, 5, 1, 12, 0, 0)]
    );
    assert!(hourly.ticks_between(from, to, 0).is_empty());
    assert!(hourly.ticks_between(from, from, 10).is_empty());
    assert!(hourly.ticks_between(to, from, 10).is_empty());
    assert!(hourly
        .ticks_between(from, utc(2026, 5, 1, 10, 59, 59), 10)
        .is_empty());
    // Across a fall back, each real hour is a tick.
    let berlin = Cron::hourly().with_time_zone(BERLIN());
    assert_eq!(
        berlin
            .ticks_between(utc(2026, 10, 24, 23, 0, 0), utc(2026, 10, 25, 3, 0, 0), 100)
            .len(),
        4
    );
}

// ---- conversions ----

#[test]
fn display_and_from_str_round_trip() {
    for expression in [
        "0 3 * * *",
        "*/10 * * * * *",
        "0 0 12 1 1 * 2030",
        "30 2 * * Mon-Fri",
        "0 0 13 * Fri",
        "@daily",
    ] {
        let parsed: Cron = expression.parse().unwrap();
        assert_eq!(parsed.to_string(), expression);
        assert_eq!(parsed.to_string().parse::<Cron>().unwrap(), parsed);
    }
}

#[test]
fn serde_round_trip_keeps_expression_and_time_zone() {
    let schedule = Cron::daily_at(3, 0).unwrap().with_time_zone(NEW_YORK());
    let json = serde_json::to_string(&schedule).unwrap();
    assert_eq!(
        json,
        r#"{"expression":"0 3 * * *","time_zone":"America/New_York"}"#
    );
    let back: Cron = serde_json::from_str(&json).unwrap();
    assert_eq!(back, schedule);
    assert_eq!(
        back.next_after(utc(2026, 1, 1, 0, 0, 0)),
        Some(utc(2026, 1, 1, 8, 0, 0))
    );

    let default_zone: Cron = serde_json::from_str(r#"{"expression":"0 3 * * *"}"#).unwrap();
    assert_eq!(default_zone.time_zone(), &Tz::UTC);

    let bad_expression = serde_json::from_str::<Cron>(r#"{"expression":"0 3 *"}"#).unwrap_err();
    assert!(
        bad_expression.to_string().contains("got 3"),
        "{bad_expression}"
    );
    let bad_zone =
        serde_json::from_str::<Cron>(r#"{"expression":"0 3 * * *","time_zone":"Mars/Olympus"}"#)
            .unwrap_err();
    assert!(bad_zone.to_string().contains("Mars/Olympus"), "{bad_zone}");
}
