//! The series a stored sample contributes to a remote write request, named and valued as the
//! scrape's gauges (`src/metrics.rs`), so dashboards and alerts work on pushed and scraped
//! data alike: bytes per second, seconds, `result` values those of `speedtest_runs_total`.
//!
//! | series | when | value |
//! |---|---|---|
//! | `speedtest_up` | a run (success or failure; not a skipped run) | 1 success, 0 failure |
//! | `speedtest_run_result{result}` | every sample, skipped ones too | 1; `result` is `success` or the failure/skip reason (`timeout`, `data_budget`, …) |
//! | `speedtest_run_duration_seconds` | a run whose duration is known | seconds |
//! | `speedtest_last_run_timestamp_seconds` | a run | the sample's own time, seconds since the epoch |
//! | `speedtest_last_success_timestamp_seconds` | a success | the sample's own time, seconds since the epoch |
//! | `speedtest_download_bytes_per_second`, `speedtest_upload_bytes_per_second` | a success that has it | bytes/s |
//! | `speedtest_ping_latency_seconds`, `speedtest_ping_jitter_seconds`, `speedtest_download_latency_seconds`, `speedtest_upload_latency_seconds` | a success that has it | seconds |
//! | `speedtest_packet_loss_ratio` | a success that has it | 0..1 |
//! | `speedtest_plan_download_bytes_per_second`, `speedtest_plan_upload_bytes_per_second` | the plan in force at the sample's time contracts that direction | bytes/s |
//! | `speedtest_plan_threshold_ratio` | a plan is in force | 0..1 |
//! | `speedtest_plan_met` | a success judged against a plan in force | 1 met, 0 not |
//!
//! Each series has one point, at the sample's own time (ms). Labels: `__name__`, `result`
//! where shown, the `--remote-write.label` pairs, and `job="internet-monitor"` unless one of
//! them is `job`; sorted by name in byte order, as the remote write specification asks (so
//! `__name__` first unless a label name starts with an upper-case letter).

use std::collections::BTreeMap;

use super::proto::{Label, ProtoSample, TimeSeries, WriteRequest};
use crate::metrics::family;
use crate::plan::Plan;
use crate::sample::{FailureReason, Outcome, Sample};
use crate::units::Bandwidth;

/// The `job` label added unless the user gave one.
pub(crate) const DEFAULT_JOB: &str = "internet-monitor";
/// The label that carries a metric's name.
pub(crate) const NAME_LABEL: &str = "__name__";
/// `speedtest_run_result`'s label, as `speedtest_runs_total`'s.
pub(crate) const RESULT_LABEL: &str = "result";
/// `speedtest_run_result`: 1 per sample, labelled with its result.
pub(crate) const RUN_RESULT: &str = "speedtest_run_result";
/// `speedtest_plan_met`: 1 when a success met the plan in force, else 0.
pub(crate) const PLAN_MET: &str = "speedtest_plan_met";
/// `speedtest_packet_loss_ratio`, as scraped.
pub(crate) const PACKET_LOSS: &str = "speedtest_packet_loss_ratio";
/// `speedtest_plan_download_bytes_per_second`, as scraped.
pub(crate) const PLAN_DOWNLOAD: &str = "speedtest_plan_download_bytes_per_second";
/// `speedtest_plan_upload_bytes_per_second`, as scraped.
pub(crate) const PLAN_UPLOAD: &str = "speedtest_plan_upload_bytes_per_second";
/// `speedtest_plan_threshold_ratio`, as scraped.
pub(crate) const PLAN_THRESHOLD: &str = "speedtest_plan_threshold_ratio";
/// The `result` of a success (`speedtest_runs_total`'s).
const SUCCESS: &str = "success";

/// The series one stored sample contributes, each with one point at the sample's own time
/// (ms since the epoch). Labels sorted by name (byte order); `labels` are the
/// `--remote-write.label` pairs (already checked with [`parse_label`]), to which
/// `job="internet-monitor"` is added unless one is `job`. `plan` is the plan in force at the
/// sample's time (`PlanHistory::plan_at`), unset for none. A failure without a reason (which
/// the store never holds) gives no `speedtest_run_result` point.
pub(crate) fn series_of(
    sample: &Sample,
    plan: &Plan,
    labels: &[(String, String)],
) -> Vec<TimeSeries> {
    let time = i64::try_from(sample.time.as_millis()).unwrap_or(i64::MAX);
    let success = sample.outcome == Outcome::Success;
    let run = sample.outcome != Outcome::Skipped;
    let mut points: Vec<(&str, Option<&str>, f64)> = Vec::new();
    if run {
        points.push((family::UP, None, if success { 1.0 } else { 0.0 }));
    }
    let result = match sample.outcome {
        Outcome::Success => Some(SUCCESS),
        Outcome::Failure | Outcome::Skipped => sample.reason.map(FailureReason::as_str),
    };
    if let Some(result) = result {
        points.push((RUN_RESULT, Some(result), 1.0));
    }
    if run && let Some(duration) = sample.duration_seconds {
        points.push((family::RUN_DURATION, None, duration));
    }
    // What the scrape's gauges say right after this run: a central alert can tell a site that
    // went silent (time() minus the newest of these) without a subquery over timestamp().
    if run {
        points.push((family::LAST_RUN, None, sample.time.as_seconds_f64()));
    }
    if success {
        points.push((family::LAST_SUCCESS, None, sample.time.as_seconds_f64()));
    }
    if success {
        let measured = [
            (family::DOWNLOAD, sample.download_bytes_per_second),
            (family::UPLOAD, sample.upload_bytes_per_second),
            (family::PING, sample.ping_seconds),
            (family::JITTER, sample.jitter_seconds),
            (PACKET_LOSS, sample.packet_loss_ratio),
            (family::DOWNLOAD_LATENCY, sample.download_latency_seconds),
            (family::UPLOAD_LATENCY, sample.upload_latency_seconds),
        ];
        for (name, value) in measured {
            if let Some(value) = value {
                points.push((name, None, value));
            }
        }
    }
    if plan.is_set() {
        for (name, speed) in [(PLAN_DOWNLOAD, plan.download), (PLAN_UPLOAD, plan.upload)] {
            if let Some(speed) = speed {
                points.push((name, None, Bandwidth::bytes_per_second(speed)));
            }
        }
        points.push((PLAN_THRESHOLD, None, plan.threshold));
        if let Some(met) = plan.met_by(sample) {
            points.push((PLAN_MET, None, if met { 1.0 } else { 0.0 }));
        }
    }
    let has_job = labels.iter().any(|(name, _)| name == "job");
    points
        .into_iter()
        .map(|(name, result, value)| {
            let mut set = Vec::with_capacity(labels.len() + 3);
            set.push(label(NAME_LABEL, name));
            if let Some(result) = result {
                set.push(label(RESULT_LABEL, result));
            }
            if !has_job {
                set.push(label("job", DEFAULT_JOB));
            }
            set.extend(labels.iter().map(|(name, value)| label(name, value)));
            set.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
            TimeSeries {
                labels: set,
                samples: vec![ProtoSample {
                    value,
                    timestamp: time,
                }],
            }
        })
        .collect()
}

fn label(name: &str, value: &str) -> Label {
    Label {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

/// Merges the series of many samples into one request: one [`TimeSeries`] per label set (in
/// label-set order), its points oldest first; a second point of the same series at the same
/// millisecond is dropped (the first given is kept), as a receiver would refuse or overwrite
/// it. Series without points are left out.
pub(crate) fn request_of(series: impl IntoIterator<Item = TimeSeries>) -> WriteRequest {
    let mut merged: BTreeMap<Vec<Label>, Vec<ProtoSample>> = BTreeMap::new();
    for one in series {
        merged.entry(one.labels).or_default().extend(one.samples);
    }
    let timeseries = merged
        .into_iter()
        .filter_map(|(labels, mut samples)| {
            // Stable: the first point given at a millisecond stays first, and is the one kept.
            samples.sort_by_key(|point| point.timestamp);
            samples.dedup_by_key(|point| point.timestamp);
            (!samples.is_empty()).then_some(TimeSeries { labels, samples })
        })
        .collect();
    WriteRequest { timeseries }
}

/// Why a `--remote-write.label` was refused. Each message names the flag and the fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum LabelError {
    #[error("--remote-write.label {given}: expected NAME=VALUE, e.g. site=berlin", given = crate::logging::quoted(.given))]
    NoEquals { given: String },
    #[error(
        "--remote-write.label {given}: the name {name} is not a Prometheus label name: use letters, digits and _, not starting with a digit (e.g. site)", given = crate::logging::quoted(.given), name = crate::logging::quoted(.name))]
    BadName { given: String, name: String },
    #[error(
        "--remote-write.label {given}: names starting with __ are reserved for Prometheus: choose another name (e.g. site)", given = crate::logging::quoted(.given))]
    Reserved { given: String },
    #[error(
        "--remote-write.label {given}: {name} is a label this service sets itself: choose another name (e.g. site)", given = crate::logging::quoted(.given), name = crate::logging::quoted(.name))]
    Taken { given: String, name: String },
    #[error(
        "--remote-write.label {given}: the value is empty: give one after =, e.g. site=berlin", given = crate::logging::quoted(.given))]
    EmptyValue { given: String },
    #[error(
        "--remote-write.label {name} is given twice: give each label name once (e.g. --remote-write.label site=berlin)", name = crate::logging::quoted(.name))]
    Duplicate { name: String },
    #[error(
        "--remote-write.label {name}: the name or value is longer than {max} bytes, more than receivers accept (Grafana Mimir's default limits): shorten it", name = crate::logging::quoted(.name))]
    TooLong { name: String, max: usize },
    #[error(
        "--remote-write.label is given {given} times; at most {max} labels are accepted, so each series stays within receivers' label limits (Mimir's default is 30 per series): drop some"
    )]
    TooMany { given: usize, max: usize },
}

/// The longest `--remote-write.label` value in bytes: Grafana Mimir refuses longer ones by
/// default (`-validation.max-length-label-value`), and a refused push is dropped.
pub(crate) const MAX_LABEL_VALUE_BYTES: usize = 2048;
/// The longest label name in bytes (Mimir's default `-validation.max-length-label-name`).
pub(crate) const MAX_LABEL_NAME_BYTES: usize = 1024;
/// The most `--remote-write.label`s: with `__name__`, `job` and `result` a series stays
/// within Mimir's default of 30 labels.
pub(crate) const MAX_LABELS: usize = 20;

/// Splits and checks one `--remote-write.label NAME=VALUE` (at the first `=`): the name
/// matches `[a-zA-Z_][a-zA-Z0-9_]*`, does not start with `__` and is not `result` (which
/// `speedtest_run_result` sets); the value is not empty (any UTF-8; a `&str` always is);
/// neither is longer than receivers accept ([`MAX_LABEL_NAME_BYTES`],
/// [`MAX_LABEL_VALUE_BYTES`]).
pub(crate) fn parse_label(given: &str) -> Result<(String, String), LabelError> {
    let owned = || given.to_owned();
    let (name, value) = given
        .split_once('=')
        .ok_or_else(|| LabelError::NoEquals { given: owned() })?;
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(LabelError::BadName {
            given: owned(),
            name: name.to_owned(),
        });
    }
    if name.starts_with("__") {
        return Err(LabelError::Reserved { given: owned() });
    }
    if name == RESULT_LABEL {
        return Err(LabelError::Taken {
            given: owned(),
            name: name.to_owned(),
        });
    }
    if value.is_empty() {
        return Err(LabelError::EmptyValue { given: owned() });
    }
    if name.len() > MAX_LABEL_NAME_BYTES || value.len() > MAX_LABEL_VALUE_BYTES {
        return Err(LabelError::TooLong {
            name: name.chars().take(64).collect(),
            max: if name.len() > MAX_LABEL_NAME_BYTES {
                MAX_LABEL_NAME_BYTES
            } else {
                MAX_LABEL_VALUE_BYTES
            },
        });
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// Every `--remote-write.label` given, each checked with [`parse_label`], refusing a name
/// given twice ([`LabelError::Duplicate`]: a series cannot carry a label twice) and more
/// than [`MAX_LABELS`] ([`LabelError::TooMany`]).
#[cfg(test)]
pub(crate) fn parse_labels<'a>(
    given: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<(String, String)>, LabelError> {
    let given: Vec<&str> = given.into_iter().collect();
    if given.len() > MAX_LABELS {
        return Err(LabelError::TooMany {
            given: given.len(),
            max: MAX_LABELS,
        });
    }
    let mut labels: Vec<(String, String)> = Vec::new();
    for one in given {
        let (name, value) = parse_label(one)?;
        if labels.iter().any(|(seen, _)| *seen == name) {
            return Err(LabelError::Duplicate { name });
        }
        labels.push((name, value));
    }
    Ok(labels)
}

#[cfg(test)]
mod tests;
