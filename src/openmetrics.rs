//! The stored history as OpenMetrics text with each sample's own timestamp, so that `promtool
//! tsdb create-blocks-from openmetrics` can backfill Prometheus with runs it never scraped.
//!
//! The families are the `/metrics` gauges that describe one run, under the same names, so a
//! dashboard's queries work on backfilled and scraped data alike: each sample of a run becomes
//! one point at the run's start time (seconds, with milliseconds). Successes give the
//! measurements; every run made (not a skipped one) gives `speedtest_up` (1 or 0) and its
//! duration. Format: <https://github.com/OpenObservability/OpenMetrics> — families one after
//! another, each family's points in time order, `# EOF` last.

use std::io::Write;

use crate::metrics::family;
use crate::sample::{Outcome, Sample};
use crate::store::Store;
use crate::time::Timestamp;

/// A family: its name, its HELP text, and the value a sample gives it (`None`: no point).
struct Family {
    name: &'static str,
    help: &'static str,
    value: fn(&Sample) -> Option<f64>,
}

/// The families written, in order.
const FAMILIES: [Family; 8] = [
    Family {
        name: family::DOWNLOAD,
        help: "Download bandwidth of a successful speed test, in bytes per second.",
        value: |s| success(s, s.download_bytes_per_second),
    },
    Family {
        name: family::UPLOAD,
        help: "Upload bandwidth of a successful speed test, in bytes per second.",
        value: |s| success(s, s.upload_bytes_per_second),
    },
    Family {
        name: family::PING,
        help: "Idle latency (ping) of a successful speed test, in seconds.",
        value: |s| success(s, s.ping_seconds),
    },
    Family {
        name: family::JITTER,
        help: "Idle latency jitter of a successful speed test, in seconds.",
        value: |s| success(s, s.jitter_seconds),
    },
    Family {
        name: family::DOWNLOAD_LATENCY,
        help: "Latency under download load of a successful speed test, in seconds.",
        value: |s| success(s, s.download_latency_seconds),
    },
    Family {
        name: family::UPLOAD_LATENCY,
        help: "Latency under upload load of a successful speed test, in seconds.",
        value: |s| success(s, s.upload_latency_seconds),
    },
    Family {
        name: family::UP,
        help: "1 if the speed-test run succeeded, 0 if it failed.",
        value: |s| match s.outcome {
            Outcome::Success => Some(1.0),
            Outcome::Failure => Some(0.0),
            Outcome::Skipped => None,
        },
    },
    Family {
        name: family::RUN_DURATION,
        help: "Wall-clock duration of the speed-test run, in seconds.",
        value: |s| {
            if s.outcome == Outcome::Skipped {
                None
            } else {
                s.duration_seconds
            }
        },
    },
];

fn success(sample: &Sample, value: Option<f64>) -> Option<f64> {
    (sample.outcome == Outcome::Success)
        .then_some(value)
        .flatten()
}

/// `name="value",…` for `--label` pairs (empty for none), the values escaped as OpenMetrics
/// requires (`\\`, `\"`, `\n`), ready to go between braces.
pub(crate) fn labels(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| {
            let escaped = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{name}=\"{escaped}\"")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Writes the samples in `[from, to)` as OpenMetrics to `out`, each point with `labels` (from
/// [`labels`]): one pass over the store per family, so the output is bounded by the store, not
/// held in memory. Errors are the store's or `out`'s.
pub(crate) fn write(
    store: &Store,
    from: Timestamp,
    to: Timestamp,
    labels: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let labels = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    for family in &FAMILIES {
        writeln!(out, "# TYPE {} gauge", family.name)?;
        writeln!(out, "# HELP {} {}", family.name, family.help)?;
        store.for_each(from, to, |sample| -> anyhow::Result<()> {
            if let Some(value) = (family.value)(&sample)
                && value.is_finite()
            {
                writeln!(
                    out,
                    "{}{labels} {} {}",
                    family.name,
                    value,
                    seconds(sample.time)
                )?;
            }
            Ok(())
        })?;
    }
    writeln!(out, "# EOF")?;
    Ok(())
}

/// A time as OpenMetrics seconds with milliseconds, e.g. `1700000000.123`.
fn seconds(time: Timestamp) -> String {
    let millis = time.as_millis();
    format!("{}.{:03}", millis / 1000, millis % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{FailureReason, Trigger};

    #[test]
    fn families_in_order_each_point_at_its_run_and_eof_last() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let ok = Sample {
            download_bytes_per_second: Some(12_500_000.0),
            upload_bytes_per_second: Some(2_500_000.0),
            ping_seconds: Some(0.0105),
            duration_seconds: Some(20.5),
            ..Sample::empty(Timestamp::from_millis(1_700_000_000_123), Trigger::Schedule)
        };
        let failed = Sample {
            duration_seconds: Some(1.0),
            ..Sample::failure(
                Timestamp::from_millis(1_700_000_060_000),
                Trigger::Schedule,
                FailureReason::Timeout,
                "x",
            )
        };
        store.append(&ok).unwrap();
        store.append(&failed).unwrap();
        let mut out = Vec::new();
        write(&store, Timestamp::EPOCH, Timestamp::MAX, "", &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(
            "# TYPE speedtest_download_bytes_per_second gauge\n# HELP speedtest_download_bytes_per_second Download bandwidth of a successful speed test, in bytes per second.\nspeedtest_download_bytes_per_second 12500000 1700000000.123\n"
        ), "{text}");
        assert!(
            text.contains("speedtest_ping_latency_seconds 0.0105 1700000000.123\n"),
            "{text}"
        );
        assert!(
            text.contains("speedtest_up 1 1700000000.123\nspeedtest_up 0 1700000060.000\n"),
            "{text}"
        );
        assert!(
            text.contains("speedtest_run_duration_seconds 1 1700000060.000\n"),
            "{text}"
        );
        assert!(
            !text.contains("speedtest_download_latency_seconds 0"),
            "no point for unknown figures"
        );
        assert!(text.ends_with("# EOF\n"));

        let labels = labels(&[
            ("instance".into(), "m:5000".into()),
            ("job".into(), "a\"b\\c\nd".into()),
        ]);
        assert_eq!(labels, r#"instance="m:5000",job="a\"b\\c\nd""#);
        let mut out = Vec::new();
        write(&store, Timestamp::EPOCH, Timestamp::MAX, &labels, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#"speedtest_up{instance="m:5000",job="a\"b\\c\nd"} 0 1700000060.000"#),
            "{text}"
        );
    }
}
