//! The summary as plain text for a person (`report --format text`), and the lines the
//! evidence pack shares with it.

use std::time::Duration;

use super::Summary;
use super::compliance::{LongestBelow, PlanSummary};
use super::counts::{EngineCounts, FailureKind};
use crate::sample::{EngineName, FailureReason, mbit_per_second, millis, percent};
use crate::units::Bandwidth;

impl EngineCounts {
    /// "ookla 3, http 1": the engines that made any run, `None` when none did.
    fn line(&self) -> Option<String> {
        let listed: Vec<String> = [
            (EngineName::Ookla.as_str(), self.ookla),
            (EngineName::Http.as_str(), self.http),
            ("unrecorded", self.unrecorded),
        ]
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(name, count)| format!("{name} {count}"))
        .collect();
        (!listed.is_empty()).then(|| listed.join(", "))
    }
}

impl Summary {
    /// A plain-text report for a person; lines that would say nothing are left out.
    pub(crate) fn to_text(&self) -> String {
        let mut lines = vec![
            format!(
                "internet-monitor report, {} to {}",
                self.window.from, self.window.to
            ),
            format!(
                "Runs: {} ({} succeeded, {} failed, {} skipped)",
                self.runs.total, self.runs.success, self.runs.failure, self.runs.skipped
            ),
        ];
        if let Some(engines) = self.runs_by_engine.line() {
            lines.push(format!("Measured by: {engines}"));
        }
        lines.extend(self.failure_lines());
        let mbit = |v: f64| format!("{:.1}", mbit_per_second(v));
        let ms = |v: f64| millis(v).to_string();
        let figures = [
            (
                "Download:",
                &self.download_bytes_per_second,
                &mbit as &dyn Fn(f64) -> String,
                "Mbit/s",
            ),
            ("Upload:  ", &self.upload_bytes_per_second, &mbit, "Mbit/s"),
            ("Ping:    ", &self.ping_seconds, &ms, "ms"),
        ];
        for (label, spread, show, unit) in figures {
            if let Some(p) = spread {
                lines.push(format!(
                    "{label} min {}, p5 {}, median {}, p95 {}, max {} {unit}",
                    show(p.min),
                    show(p.p5),
                    show(p.p50),
                    show(p.p95),
                    show(p.max)
                ));
            }
        }
        if let Some(plan) = &self.plan {
            lines.push(plan_line(plan));
            if let Some(longest) = &plan.longest_below {
                lines.push(longest_line(longest));
            }
        }
        let mut text = lines.join("\n");
        text.push('\n');
        text
    }
}

impl Summary {
    /// The failures in two lines, each left out when it would count none: those counted
    /// against the line (network), then the rest by kind, each kind with its reasons, most
    /// frequent first (ties in the order of `FailureReason::ALL`).
    fn failure_lines(&self) -> Vec<String> {
        let mut against = Vec::new();
        let mut apart = Vec::new();
        let (mut against_count, mut apart_count) = (0, 0);
        for kind in FailureKind::ALL {
            let count = self.failures_by_kind.get(kind);
            if count == 0 {
                continue;
            }
            let mut reasons: Vec<(FailureReason, u64)> = self
                .failures_by_reason
                .iter()
                .filter(|(reason, n)| *n > 0 && FailureKind::of(*reason) == Some(kind))
                .collect();
            reasons.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
            let listed: Vec<String> = reasons
                .iter()
                .map(|(reason, n)| format!("{reason} {n}"))
                .collect();
            let group = format!("{}: {}", kind.as_str(), listed.join(", "));
            if kind.counts_against_the_line() {
                against_count += count;
                against.push(group);
            } else {
                apart_count += count;
                apart.push(group);
            }
        }
        let mut lines = Vec::new();
        if against_count > 0 {
            lines.push(format!(
                "Failures counted against the line: {against_count} ({})",
                against.join("; ")
            ));
        }
        if apart_count > 0 {
            lines.push(format!(
                "Failures not counted against the line: {apart_count} ({})",
                apart.join("; ")
            ));
        }
        lines
    }
}

fn plan_line(plan: &PlanSummary) -> String {
    let mut terms = Vec::new();
    if let Some(down) = plan.download_bytes_per_second {
        terms.push(format!("{} down", Bandwidth::from_bytes_per_second(down)));
    }
    if let Some(up) = plan.upload_bytes_per_second {
        terms.push(format!("{} up", Bandwidth::from_bytes_per_second(up)));
    }
    terms.push(format!("threshold {} %", percent(plan.threshold)));
    let verdict = match plan.share_met {
        None => "no measurements".to_owned(),
        Some(share) => format!(
            "met by {} of {} ({:.1} %); {} ({} confirmed by a retest, {} refuted)",
            plan.met,
            counted(plan.measurements, "measurement", "measurements"),
            percent(share),
            counted(plan.breaches, "breach", "breaches"),
            plan.retests.confirmed,
            plan.retests.refuted
        ),
    };
    let versions = if plan.plan_versions > 1 {
        format!(
            " (each run judged against the plan in force at its time: {} versions, the newest shown; see plan history)",
            plan.plan_versions
        )
    } else {
        String::new()
    };
    format!("Plan: {}: {verdict}{versions}", terms.join(", "))
}

/// The line saying the longest stretch below the plan (for text and the evidence pack).
pub(crate) fn longest_line(longest: &LongestBelow) -> String {
    let millis = longest
        .to
        .as_millis()
        .saturating_sub(longest.from.as_millis());
    // Whole seconds: humantime would otherwise print the milliseconds too.
    let duration =
        humantime::format_duration(Duration::from_secs(millis.saturating_add(500) / 1000));
    let measurements = counted(longest.measurements, "measurement", "measurements");
    if longest.ongoing {
        return format!(
            "Longest stretch below the plan: ongoing, {duration} so far, from {} to {} \
             (still below at the last measurement, {}; {measurements})",
            longest.from, longest.to, longest.last_below
        );
    }
    format!(
        "Longest stretch below the plan: {duration}, from {} to {} ({measurements})",
        longest.from, longest.to
    )
}

fn counted(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}
