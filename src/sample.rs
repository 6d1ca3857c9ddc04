//! One speed-test run, successful or not: the record every other part reads and writes.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// A run as stored, exported and served. Field names are the public JSON contract: new fields
/// may be added, none renamed. Unknown values are `None` (JSON `null`), never zero.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// When the test started (UTC, ms); the store key.
    pub time: Timestamp,
    pub outcome: Outcome,
    pub reason: Option<FailureReason>,
    /// The CLI's own words about a failure (truncated), or ours when it said nothing.
    pub message: Option<String>,
    pub trigger: Trigger,
    pub duration_seconds: Option<f64>,
    pub download_bytes_per_second: Option<f64>,
    pub upload_bytes_per_second: Option<f64>,
    pub ping_seconds: Option<f64>,
    pub jitter_seconds: Option<f64>,
    pub packet_loss_ratio: Option<f64>,
    pub download_latency_seconds: Option<f64>,
    pub upload_latency_seconds: Option<f64>,
    pub downloaded_bytes: Option<u64>,
    pub uploaded_bytes: Option<u64>,
    /// Shared: consecutive samples almost always name the same server and ISP.
    pub server: Option<Arc<Server>>,
    pub isp: Option<Arc<str>>,
    pub result_url: Option<String>,
    /// Only present when the operator asked for it with `--store-ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<Client>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub id: Option<u64>,
    pub name: Option<String>,
    pub location: Option<String>,
    pub country: Option<String>,
    pub host: Option<String>,
}

/// The measuring machine's addresses, as the CLI reported them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    pub internal_ip: Option<String>,
    pub external_ip: Option<String>,
    pub mac: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    /// A run that was due but not made (reserved for the scheduler).
    Skipped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Schedule,
    Manual,
    Retest,
}

/// The closed set of reasons a run can fail; metrics pre-initialise one series per reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// The binary is missing or not executable.
    Spawn,
    /// The run outlived `--timeout`; its process group was killed.
    Timeout,
    /// The CLI exited non-zero (or was killed by a signal) for another reason.
    Exit,
    /// Ookla refused the test: "Limit reached" / HTTP 429.
    RateLimited,
    /// The CLI could not reach the network or a server.
    NoConnectivity,
    /// The CLI printed something other than the result we expect.
    Parse,
    /// A result whose figures cannot be real (negative, zero, above the ceiling).
    Implausible,
    /// The CLI printed more than we are willing to hold.
    OutputTooLarge,
    /// Not a failure of a test but the reason one was skipped (outcome `skipped`): this
    /// month's `--data-budget` is used up.
    DataBudget,
}

impl FailureReason {
    /// Every reason, in the order of their stable codes in the store: only ever append.
    pub const ALL: [FailureReason; 9] = [
        FailureReason::Spawn,
        FailureReason::Timeout,
        FailureReason::Exit,
        FailureReason::RateLimited,
        FailureReason::NoConnectivity,
        FailureReason::Parse,
        FailureReason::Implausible,
        FailureReason::OutputTooLarge,
        FailureReason::DataBudget,
    ];

    /// Whether a test failed for this reason; `DataBudget` is why a test was skipped instead.
    pub fn is_failure(self) -> bool {
        self != FailureReason::DataBudget
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Spawn => "spawn",
            FailureReason::Timeout => "timeout",
            FailureReason::Exit => "exit",
            FailureReason::RateLimited => "rate_limited",
            FailureReason::NoConnectivity => "no_connectivity",
            FailureReason::Parse => "parse",
            FailureReason::Implausible => "implausible",
            FailureReason::OutputTooLarge => "output_too_large",
            FailureReason::DataBudget => "data_budget",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Skipped => "skipped",
        }
    }
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Retest => "retest",
        }
    }
}

/// Seconds as milliseconds for people, via whole microseconds, so that 0.005631 s reads 5.631
/// rather than 5.631000000000001.
pub fn millis(seconds: f64) -> f64 {
    (seconds * 1e6).round() / 1e3
}

/// A ratio as a percentage for people, to the same six significant decimals as `millis`.
pub fn percent(ratio: f64) -> f64 {
    (ratio * 1e6).round() / 1e4
}

/// Bytes per second as megabits per second, the unit of contracts and speed-test sites.
pub fn mbit_per_second(bytes_per_second: f64) -> f64 {
    bytes_per_second * 8.0 / 1e6
}

/// The longest latency a sample may report. Each phase of a test lasts seconds, so a packet
/// that took a minute to come back was never measured by it; bufferbloat at its worst is a few
/// seconds.
pub const MAX_LATENCY_SECONDS: f64 = 60.0;

/// What a real measurement can report, beyond the fixed rules of [`Sample::check_plausible`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Bandwidth above this is a measurement error, not a fast line (`--max-bandwidth`).
    pub max_bytes_per_second: f64,
}

/// Figures that cannot be real; the message names each one and the limit it broke, e.g.
/// "upload 2e300 B/s is above 12500000000 B/s (--max-bandwidth); ping 1e297 s is above 60 s".
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct Implausible(pub String);

/// A sample broke the rules that `import` enforces on what `export` wrote.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InvalidSample {
    #[error("a successful sample must not have a reason")]
    SuccessWithReason,
    #[error("a failed sample must have a reason")]
    FailureWithoutReason,
}

impl Sample {
    /// A run that produced no measurement, for the given reason.
    pub fn failure(
        time: Timestamp,
        trigger: Trigger,
        reason: FailureReason,
        message: impl Into<String>,
    ) -> Self {
        Sample {
            outcome: Outcome::Failure,
            reason: Some(reason),
            message: Some(message.into()),
            ..Sample::empty(time, trigger)
        }
    }

    /// A sample with only its time and trigger known: the base the parser fills in.
    pub fn empty(time: Timestamp, trigger: Trigger) -> Self {
        Sample {
            time,
            outcome: Outcome::Success,
            reason: None,
            message: None,
            trigger,
            duration_seconds: None,
            download_bytes_per_second: None,
            upload_bytes_per_second: None,
            ping_seconds: None,
            jitter_seconds: None,
            packet_loss_ratio: None,
            download_latency_seconds: None,
            upload_latency_seconds: None,
            downloaded_bytes: None,
            uploaded_bytes: None,
            server: None,
            isp: None,
            result_url: None,
            client: None,
        }
    }

    pub fn is_success(&self) -> bool {
        self.outcome == Outcome::Success
    }

    /// Checks the one invariant the flat JSON shape cannot express: reason iff failure.
    pub fn validate(&self) -> Result<(), InvalidSample> {
        match (self.outcome, self.reason) {
            (Outcome::Success, Some(_)) => Err(InvalidSample::SuccessWithReason),
            (Outcome::Failure, None) => Err(InvalidSample::FailureWithoutReason),
            _ => Ok(()),
        }
    }

    /// The plausibility rules every sample passes before it is stored, whichever way it came
    /// in (the Ookla CLI's output, `import`, any later engine): no negative, NaN or infinite
    /// figure, packet loss within 0–1, latencies at most [`MAX_LATENCY_SECONDS`], bandwidth
    /// at most `limits.max_bytes_per_second`; a success has a download or upload figure, and
    /// not only zeros. A failure may carry no figures at all.
    pub fn check_plausible(&self, limits: &Limits) -> Result<(), Implausible> {
        let bandwidth = (
            Some(limits.max_bytes_per_second),
            " B/s",
            " (--max-bandwidth)",
        );
        let latency = (Some(MAX_LATENCY_SECONDS), " s", "");
        let figures = [
            ("download", self.download_bytes_per_second, bandwidth),
            ("upload", self.upload_bytes_per_second, bandwidth),
            ("ping", self.ping_seconds, latency),
            ("jitter", self.jitter_seconds, latency),
            ("download latency", self.download_latency_seconds, latency),
            ("upload latency", self.upload_latency_seconds, latency),
            (
                "packet loss ratio",
                self.packet_loss_ratio,
                (Some(1.0), "", ""),
            ),
            ("duration", self.duration_seconds, (None, " s", "")),
        ];
        let mut problems: Vec<String> = figures
            .into_iter()
            .filter_map(|(name, value, (max, unit, flag))| {
                let value = value?;
                let shown = readable(value);
                let max_ok = max.is_none_or(|max| value <= max);
                // Written as comparisons that NaN fails, so NaN lands in the last arm.
                if value >= 0.0 && value.is_finite() && max_ok {
                    None
                } else if value < 0.0 {
                    Some(format!("{name} {shown}{unit} is negative"))
                } else if let Some(max) = max.filter(|max| value > *max) {
                    Some(format!(
                        "{name} {shown}{unit} is above {}{unit}{flag}",
                        readable(max)
                    ))
                } else if value.is_infinite() {
                    Some(format!("{name} is infinite"))
                } else {
                    Some(format!("{name} is not a number"))
                }
            })
            .collect();
        if self.is_success() {
            match (self.download_bytes_per_second, self.upload_bytes_per_second) {
                (None, None) => {
                    problems.push("a success without a download or upload figure".to_owned())
                }
                (Some(0.0), Some(0.0)) => {
                    problems.push("download and upload are both 0 B/s".to_owned())
                }
                (Some(0.0), None) => {
                    problems.push("download is 0 B/s and there is no upload figure".to_owned())
                }
                (None, Some(0.0)) => {
                    problems.push("upload is 0 B/s and there is no download figure".to_owned())
                }
                _ => {}
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Implausible(problems.join("; ")))
        }
    }
}

/// A figure for a message: plain digits while they stay short, scientific notation beyond, so
/// an absurd 1e300 does not fill the message with 300 zeros.
fn readable(value: f64) -> String {
    if value != 0.0 && !(1e-6..1e15).contains(&value.abs()) {
        format!("{value:e}")
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_serialises_unknowns_as_null() {
        let sample = Sample::failure(
            Timestamp::from_millis(1_700_000_000_000),
            Trigger::Manual,
            FailureReason::RateLimited,
            "Limit reached",
        );
        let json = serde_json::to_value(&sample).unwrap();
        assert_eq!(json["time"], "2023-11-14T22:13:20.000Z");
        assert_eq!(json["outcome"], "failure");
        assert_eq!(json["reason"], "rate_limited");
        assert_eq!(json["trigger"], "manual");
        assert!(json["download_bytes_per_second"].is_null());
        assert!(json["server"].is_null());
        assert!(json.get("client").is_none(), "no client unless --store-ip");
    }

    #[test]
    fn reason_names_are_their_serde_names() {
        for reason in FailureReason::ALL {
            assert_eq!(
                serde_json::to_value(reason).unwrap(),
                serde_json::Value::from(reason.as_str())
            );
        }
    }

    #[test]
    fn units_for_people_read_as_decimals() {
        assert_eq!(millis(0.005631), 5.631);
        assert_eq!(millis(0.00048), 0.48);
        assert_eq!(percent(0.015), 1.5);
        assert_eq!(percent(0.0), 0.0);
        assert_eq!(mbit_per_second(62_500_000.0), 500.0);
    }

    #[test]
    fn validate_enforces_reason_iff_failure() {
        let mut sample = Sample::empty(Timestamp::from_millis(0), Trigger::Manual);
        assert_eq!(sample.validate(), Ok(()));
        sample.reason = Some(FailureReason::Exit);
        assert_eq!(sample.validate(), Err(InvalidSample::SuccessWithReason));
        sample.outcome = Outcome::Failure;
        sample.reason = None;
        assert_eq!(sample.validate(), Err(InvalidSample::FailureWithoutReason));
    }

    #[test]
    fn check_plausible_refuses_impossible_figures_and_names_them() {
        let limits = Limits {
            max_bytes_per_second: 12.5e9,
        };
        let good = Sample {
            download_bytes_per_second: Some(1e6),
            upload_bytes_per_second: Some(2e6),
            ping_seconds: Some(0.0125),
            packet_loss_ratio: Some(0.0),
            duration_seconds: Some(20.5),
            ..Sample::empty(Timestamp::from_millis(0), Trigger::Manual)
        };
        assert_eq!(good.check_plausible(&limits), Ok(()));
        type Change = fn(&mut Sample);
        let cases: [(Change, &str); 12] = [
            (
                |s| s.download_bytes_per_second = Some(-1e6),
                "download -1000000 B/s is negative",
            ),
            (
                |s| s.upload_bytes_per_second = Some(1e308),
                "upload 1e308 B/s is above 12500000000 B/s (--max-bandwidth)",
            ),
            (|s| s.ping_seconds = Some(-500.0), "ping -500 s is negative"),
            (
                |s| s.packet_loss_ratio = Some(7.0),
                "packet loss ratio 7 is above 1",
            ),
            (
                |s| s.jitter_seconds = Some(61.0),
                "jitter 61 s is above 60 s",
            ),
            (
                |s| s.download_latency_seconds = Some(f64::NAN),
                "download latency is not a number",
            ),
            (
                |s| s.upload_latency_seconds = Some(f64::INFINITY),
                "upload latency inf s is above 60 s",
            ),
            (
                |s| s.duration_seconds = Some(f64::INFINITY),
                "duration is infinite",
            ),
            (
                |s| s.duration_seconds = Some(f64::NEG_INFINITY),
                "duration -inf s is negative",
            ),
            (
                |s| {
                    s.download_bytes_per_second = None;
                    s.upload_bytes_per_second = None;
                },
                "a success without a download or upload figure",
            ),
            (
                |s| {
                    s.download_bytes_per_second = Some(0.0);
                    s.upload_bytes_per_second = Some(0.0);
                },
                "download and upload are both 0 B/s",
            ),
            (
                |s| {
                    s.download_bytes_per_second = Some(0.0);
                    s.upload_bytes_per_second = None;
                },
                "download is 0 B/s and there is no upload figure",
            ),
        ];
        for (change, message) in cases {
            let mut sample = good.clone();
            change(&mut sample);
            assert_eq!(
                sample.check_plausible(&limits),
                Err(Implausible(message.to_owned()))
            );
        }
        let failure = Sample::failure(
            Timestamp::from_millis(0),
            Trigger::Manual,
            FailureReason::Exit,
            "exit status 2",
        );
        assert_eq!(
            failure.check_plausible(&limits),
            Ok(()),
            "no figures needed"
        );
        let failure = Sample {
            ping_seconds: Some(-1.0),
            ..failure
        };
        assert!(
            failure.check_plausible(&limits).is_err(),
            "but none impossible"
        );
    }
}
