//! What pages show, formatted: times in UTC and relative, shortened
//! arguments, links relative to the dashboard's root.

use chrono::{DateTime, Utc};

/// A time as the pages show it: UTC, and how long ago or ahead.
#[derive(Debug, Clone)]
pub(crate) struct When {
    /// `2026-12-02 16:03:05 UTC`.
    pub(crate) utc: String,
    /// `3 min ago`, `in 2 h`.
    pub(crate) relative: String,
}

impl When {
    pub(crate) fn new(at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        let secs = (now - at).num_seconds();
        let span = human(secs.unsigned_abs());
        let relative = if secs.abs() < 1 {
            "now".to_owned()
        } else if secs > 0 {
            format!("{span} ago")
        } else {
            format!("in {span}")
        };
        When {
            utc: at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            relative,
        }
    }
}

/// `42 s`, `3 min`, `5 h`, `2 d`.
pub(crate) fn human(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86400 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86400),
    }
}

/// A count with thousands separated: `20,000`.
pub(crate) fn thousands(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A duration with a decimal for short ones: `350 ms`, `4.2 s`, `3 min`.
pub(crate) fn duration(d: chrono::TimeDelta) -> String {
    let ms = d.num_milliseconds().max(0);
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        human((ms / 1000) as u64)
    }
}

/// Compact JSON cut to `max` characters, with an ellipsis when cut.
pub(crate) fn shorten(value: &serde_json::Value, max: usize) -> String {
    let text = value.to_string();
    if text.chars().count() <= max {
        text
    } else {
        let mut cut: String = text.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

/// The path from the page a request asked for back to the dashboard's root,
/// ending in `/` (`./`, `../`, `jobs/`), so that links stay right under any
/// prefix the application nests the router at, and behind a proxy that
/// rewrites the prefix: no link names the prefix.
///
/// `original` is the path the browser asked for (as far as the application
/// saw it), `inner` the path inside the dashboard's router.
pub(crate) fn root_from(original: &str, inner: &str) -> String {
    if inner.is_empty() || inner == "/" {
        if original.ends_with('/') {
            "./".to_owned()
        } else {
            // `/admin/jobs`: the browser resolves links against `/admin/`,
            // so they start with the mount's last segment. `./` keeps a
            // segment with a colon from reading as a scheme.
            let last = original.rsplit('/').next().unwrap_or_default();
            format!("./{last}/")
        }
    } else {
        let depth = inner.matches('/').count();
        if depth <= 1 {
            "./".to_owned()
        } else {
            "../".repeat(depth - 1)
        }
    }
}

/// The link to the overview, which axum serves at the mount path itself
/// (`/admin/jobs`, not `/admin/jobs/`): `root` goes one segment further up
/// and names the mount's last segment again. Unnested, it is `root`.
pub(crate) fn home_from(original: &str, inner: &str, root: &str) -> String {
    let inner_trimmed = if inner == "/" { "" } else { inner };
    let mount = original
        .strip_suffix(inner_trimmed)
        .unwrap_or_default()
        .trim_end_matches('/');
    let last = mount.rsplit('/').next().unwrap_or_default();
    if last.is_empty() {
        root.to_owned()
    } else if inner_trimmed.is_empty() && !original.ends_with('/') {
        format!("./{last}")
    } else if root == "./" {
        format!("../{last}")
    } else {
        format!("{root}../{last}")
    }
}

/// The spans the overview's chart can show, as `?hours=`: (hours, minutes
/// per bar). Each is at most a few dozen bars, and within what the store
/// keeps (`THROUGHPUT_KEPT`, a day).
pub(crate) const CHART_SPANS: [(i64, i64); 3] = [(1, 1), (6, 5), (24, 20)];
/// The chart's drawing area, in SVG units (its `viewBox`).
const CHART_WIDTH: i64 = 600;
const CHART_HEIGHT: i64 = 120;

/// One minute's bar: succeeded at the bottom, failed stacked on it.
pub(crate) struct ChartBar {
    pub(crate) x: i64,
    pub(crate) width: i64,
    pub(crate) ok_y: i64,
    pub(crate) ok_height: i64,
    pub(crate) failed_y: i64,
    pub(crate) failed_height: i64,
    /// "16:03 UTC: 120 succeeded, 2 failed", the bar's tooltip.
    pub(crate) title: String,
}

/// The succeeded and failed jobs of the last hours, one bar per minute or
/// per few minutes, drawn on the server as SVG (no script, no inline style).
pub(crate) struct Chart {
    /// The hours shown.
    pub(crate) hours: i64,
    /// The minutes of one bar.
    pub(crate) bar_minutes: i64,
    pub(crate) width: i64,
    pub(crate) height: i64,
    pub(crate) bars: Vec<ChartBar>,
    /// The busiest minute's total, which the bars' height is scaled to.
    pub(crate) max: i64,
    pub(crate) succeeded: i64,
    pub(crate) failed: i64,
}

impl Chart {
    /// The chart of `minutes` (oldest first, whole minutes) for the
    /// `hours` up to the bar `now` is in, each bar `bar_minutes` long
    /// (aligned to the epoch); bars without jobs are not drawn.
    pub(crate) fn new(
        minutes: &[jobs_core::ThroughputMinute],
        now: DateTime<Utc>,
        (hours, bar_minutes): (i64, i64),
    ) -> Self {
        let bar_secs = bar_minutes * 60;
        let bar_count = hours * 60 / bar_minutes;
        let secs = now.timestamp();
        let current = secs - secs.rem_euclid(bar_secs);
        let first = current - (bar_count - 1) * bar_secs;
        // (bar start, succeeded, failed), oldest first.
        let mut bars_by_start: Vec<(i64, i64, i64)> = Vec::new();
        for m in minutes {
            let at = m.minute.timestamp();
            if at < first || at >= current + bar_secs {
                continue;
            }
            let start = at - at.rem_euclid(bar_secs);
            match bars_by_start.last_mut() {
                Some(bar) if bar.0 == start => {
                    bar.1 += m.succeeded;
                    bar.2 += m.failed;
                }
                _ => bars_by_start.push((start, m.succeeded, m.failed)),
            }
        }
        let max = bars_by_start
            .iter()
            .map(|&(_, ok, failed)| ok + failed)
            .max()
            .unwrap_or(0);
        let slot = CHART_WIDTH / bar_count;
        let scale = |n: i64| {
            if max == 0 {
                0
            } else {
                // At least one unit, so a minute with a job is never invisible.
                (n * CHART_HEIGHT / max).max(i64::from(n > 0))
            }
        };
        let bars = bars_by_start
            .iter()
            .map(|&(start, succeeded, failed)| {
                let index = (start - first) / bar_secs;
                let ok_height = scale(succeeded);
                let failed_height = scale(failed).min(CHART_HEIGHT - ok_height);
                let from = DateTime::<Utc>::from_timestamp(start, 0).unwrap_or(now);
                let when = if bar_minutes == 1 {
                    from.format("%H:%M UTC").to_string()
                } else {
                    let to = from + chrono::TimeDelta::seconds(bar_secs);
                    format!("{}-{} UTC", from.format("%H:%M"), to.format("%H:%M"))
                };
                ChartBar {
                    x: index * slot,
                    width: slot - 1,
                    ok_y: CHART_HEIGHT - ok_height,
                    ok_height,
                    failed_y: CHART_HEIGHT - ok_height - failed_height,
                    failed_height,
                    title: format!("{when}: {succeeded} succeeded, {failed} failed"),
                }
            })
            .collect();
        Chart {
            hours,
            bar_minutes,
            width: slot * bar_count,
            height: CHART_HEIGHT,
            bars,
            max,
            succeeded: bars_by_start.iter().map(|&(_, ok, _)| ok).sum(),
            failed: bars_by_start.iter().map(|&(_, _, failed)| failed).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        for (n, text) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (20_000, "20,000"),
            (1_234_567, "1,234,567"),
        ] {
            assert_eq!(thousands(n), text);
        }
    }

    #[test]
    fn root_is_relative_to_the_page() {
        assert_eq!(root_from("/admin/jobs", "/"), "./jobs/");
        assert_eq!(root_from("/admin/jobs/", "/"), "./");
        assert_eq!(root_from("/admin/jobs/jobs", "/jobs"), "./");
        assert_eq!(root_from("/admin/jobs/jobs/5", "/jobs/5"), "../");
        assert_eq!(
            root_from("/admin/jobs/jobs/5/retry", "/jobs/5/retry"),
            "../../"
        );
        assert_eq!(root_from("/", "/"), "./");
    }

    #[test]
    fn home_names_the_mount_path() {
        assert_eq!(home_from("/admin/jobs", "/", "./jobs/"), "./jobs");
        assert_eq!(home_from("/admin/jobs/jobs", "/jobs", "./"), "../jobs");
        assert_eq!(
            home_from("/admin/jobs/jobs/5", "/jobs/5", "../"),
            "../../jobs"
        );
        assert_eq!(home_from("/jobs/5", "/jobs/5", "../"), "../");
        assert_eq!(home_from("/", "/", "./"), "./");
    }

    #[test]
    fn relative_times_read_both_ways() {
        let now = Utc::now();
        assert_eq!(
            When::new(now - chrono::TimeDelta::seconds(180), now).relative,
            "3 min ago"
        );
        assert_eq!(
            When::new(now + chrono::TimeDelta::seconds(7200), now).relative,
            "in 2 h"
        );
        assert_eq!(shorten(&serde_json::json!({"a": "bcdef"}), 5), "{\"a\":…");
    }

    #[test]
    fn the_chart_scales_to_the_busiest_minute_and_places_each_minute() {
        let now: DateTime<Utc> = "2026-12-04T10:30:45Z".parse().unwrap();
        let at = |t: &str| t.parse::<DateTime<Utc>>().unwrap();
        let minutes = [
            // Older than the hour shown: left out.
            jobs_core::ThroughputMinute::new(at("2026-12-04T09:00:00Z"), 1000, 0),
            jobs_core::ThroughputMinute::new(at("2026-12-04T09:31:00Z"), 30, 10),
            jobs_core::ThroughputMinute::new(at("2026-12-04T10:30:00Z"), 1, 0),
        ];
        let chart = Chart::new(&minutes, now, CHART_SPANS[0]);
        assert_eq!((chart.max, chart.succeeded, chart.failed), (40, 31, 10));
        assert_eq!(chart.bars.len(), 2);
        let (first, last) = (&chart.bars[0], &chart.bars[1]);
        assert_eq!(first.x, 0, "the hour's first minute");
        assert_eq!(last.x, 59 * 10, "the current minute, last");
        assert_eq!(first.ok_height + first.failed_height, chart.height);
        assert_eq!((first.ok_height, first.failed_height), (90, 30));
        assert_eq!(first.failed_y + first.failed_height, first.ok_y, "stacked");
        assert_eq!(last.ok_height, 3);
        assert_eq!(first.title, "09:31 UTC: 30 succeeded, 10 failed");
        let empty = Chart::new(&[], now, CHART_SPANS[0]);
        assert!(empty.bars.is_empty() && empty.max == 0);
    }

    #[test]
    fn a_longer_chart_adds_up_the_minutes_of_each_bar() {
        let now: DateTime<Utc> = "2026-12-04T10:30:45Z".parse().unwrap();
        let at = |t: &str| t.parse::<DateTime<Utc>>().unwrap();
        let minutes = [
            // Before the six hours shown (from 04:35): left out.
            jobs_core::ThroughputMinute::new(at("2026-12-04T04:34:00Z"), 1000, 0),
            jobs_core::ThroughputMinute::new(at("2026-12-04T04:35:00Z"), 5, 1),
            jobs_core::ThroughputMinute::new(at("2026-12-04T04:39:00Z"), 5, 1),
            jobs_core::ThroughputMinute::new(at("2026-12-04T10:30:00Z"), 2, 0),
        ];
        let chart = Chart::new(&minutes, now, CHART_SPANS[1]);
        assert_eq!((chart.hours, chart.bar_minutes), (6, 5));
        assert_eq!((chart.max, chart.succeeded, chart.failed), (12, 12, 2));
        assert_eq!(chart.bars.len(), 2, "one bar for 04:35-04:40, one for now");
        assert_eq!(chart.bars[0].x, 0);
        assert_eq!(
            chart.bars[0].title,
            "04:35-04:40 UTC: 10 succeeded, 2 failed"
        );
        assert_eq!(chart.bars[1].x, 71 * 8, "the last of 72 bars of 8 units");
        assert_eq!(chart.width, 72 * 8);
    }
}
