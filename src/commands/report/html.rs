//! The evidence pack as one self-contained, printable HTML file: inline CSS (A4), inline SVG
//! charts, no script and no external resource of any kind. Every text from outside (server
//! and ISP names, messages, result URLs) is escaped; result URLs are printed as text, never
//! linked. The window and digest `report --verify` reads are in a comment on the second line
//! ([`super::pack::Marker`]).

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::Serialize;

use super::pack::{Marker, Pack, Period, RunRow, local_time, repeated_offset};
use super::svg::{self, Failure, Step};
use crate::plan::{Direction, PlanHistory, PlanVersion, Speeds};
use crate::rules::Verdict;
use crate::sample::{mbit_per_second, millis, percent};
use crate::summary::{FailureKind, Percentiles};
use crate::time::Timestamp;
use crate::zone::Zone;

/// `text` with `&`, `<`, `>`, `"` and `'` replaced by character references: safe in element
/// content and in quoted attribute values.
pub(super) fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

/// A value's JSON name in words: `not_assessable` → `not assessable`.
pub(super) fn words<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name.replace('_', " "),
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// The protocol's progress in words ("30 of 30 measurements, 3 of 3 days, complete"), or
/// `None` for a rule set that requires no number of measurements or days (us-fcc, uk-ofcom),
/// which the page also leaves out: "33 of 0 measurements" would read as a protocol.
pub(super) fn protocol_words(progress: &crate::rules::Progress) -> Option<String> {
    if progress.measurements_required == 0 && progress.days_required == 0 {
        return None;
    }
    Some(format!(
        "{} of {} measurements, {} of {} days, {}",
        progress.measurements,
        progress.measurements_required,
        progress.days,
        progress.days_required,
        if progress.complete {
            "complete"
        } else {
            "not complete"
        }
    ))
}

/// The runs a verdict judged, in the page's words (assets/app.js, "Runs judged"): "31
/// successful runs; 1 failed run (1 pointing at the line; never counted as measurements)".
pub(super) fn judged_runs(verdict: &Verdict) -> String {
    let runs = |n: u64, what: &str| format!("{n} {what} run{}", if n == 1 { "" } else { "s" });
    format!(
        "{}; {} ({} pointing at the line; never counted as measurements)",
        runs(verdict.successful_runs, "successful"),
        runs(verdict.failed_runs, "failed"),
        verdict.failed_network_runs
    )
}

const CSS: &str = r#"
@page { size: A4; margin: 14mm 12mm 16mm 12mm; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 9.5pt;
  color: #000; margin: 0 auto; max-width: 190mm; line-height: 1.35; }
h1 { font-size: 16pt; margin: 0 0 2mm; }
h2 { font-size: 12.5pt; margin: 6mm 0 2mm; border-bottom: 0.4mm solid #444; break-after: avoid; }
h3 { font-size: 10.5pt; margin: 4mm 0 1mm; break-after: avoid; }
table { border-collapse: collapse; width: 100%; margin: 1mm 0 3mm; }
th, td { border: 0.2mm solid #999; padding: 0.6mm 1.2mm; text-align: left; vertical-align: top; }
th { background: #eee; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.date { white-space: nowrap; }
table.runs { font-size: 7.5pt; table-layout: fixed; }
table.runs td { overflow-wrap: anywhere; padding: 0.3mm 0.8mm; }
table.runs td.time { white-space: nowrap; }
table.runs td.url { font-size: 6.5pt; }
tr.failure td { background: #fff0f0; }
tr.failure.network td { background: #ffd9d9; }
tr.skipped td { color: #666; }
.label { border: 0.4mm solid #b00020; padding: 1.5mm 2mm; margin: 2mm 0; }
.outcome { font-size: 12pt; font-weight: bold; }
pre { white-space: pre-wrap; margin: 1mm 0 2mm; }
.mono, code { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 8.5pt;
  overflow-wrap: anywhere; }
svg.chart { width: 100%; height: auto; break-inside: avoid; }
.legend { font-size: 8pt; margin: 0 0 3mm; }
.key { display: inline-block; width: 8mm; border-top: 0.6mm solid; vertical-align: middle; margin: 0 1mm 0 3mm; }
.key.dashed { border-top-style: dashed; }
.tick { display: inline-block; height: 3mm; border-left: 0.5mm solid; vertical-align: middle; margin: 0 1mm 0 3mm; }
.note { color: #333; font-size: 8.5pt; }
"#;

/// The pack as HTML. `plans` is the history the pack's `plans` came from (for the steps).
pub(super) fn render(pack: &Pack, plans: &PlanHistory, zone: &Zone) -> String {
    let summary = &pack.summary;
    let (from, to) = (summary.window.from, summary.window.to);
    let mut html = String::with_capacity(4096 + pack.runs.len() * 400);
    html.push_str("<!DOCTYPE html>\n");
    html.push_str(&Marker::of(&pack.export).comment());
    html.push('\n');
    let _ = writeln!(
        html,
        "<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Evidence pack: line measurements {} to {}</title><style>{CSS}</style></head><body>",
        escape(&local_time(zone, from)),
        escape(&local_time(zone, to)),
    );
    let _ = writeln!(
        html,
        "<h1>Evidence pack: measurements of an internet line</h1>\n<table><tbody>\
         <tr><th>Window</th><td>{} to {} (UTC; from inclusive, to exclusive)<br>{} to {} local time</td></tr>\
         <tr><th>Time zone</th><td>{}</td></tr>\
         <tr><th>Made</th><td>{} by {}</td></tr>\
         <tr><th>Runs</th><td>{} ({} succeeded, {} failed, {} skipped)</td></tr>\
         <tr><th>Export SHA-256</th><td class=\"mono\">{}</td></tr>\
         </tbody></table>",
        from,
        to,
        escape(&local_time(zone, from)),
        escape(&local_time(zone, to)),
        escape(zone.name()),
        pack.pack.generated_at,
        escape(&pack.pack.program),
        summary.runs.total,
        summary.runs.success,
        summary.runs.failure,
        summary.runs.skipped,
        escape(&pack.export.sha256),
    );
    if let Some(verdict) = &pack.rules {
        verdict_section(&mut html, verdict, pack.campaign, zone);
    }
    contract_section(&mut html, pack, plans);
    figures_section(&mut html, pack);
    charts_section(&mut html, pack, plans, zone);
    peak_section(&mut html, pack);
    connectivity_section(&mut html, pack, zone);
    conditions_section(&mut html, pack);
    runs_section(&mut html, &pack.runs, zone);
    export_section(&mut html, pack);
    html.push_str("</body></html>\n");
    html
}

fn verdict_section(html: &mut String, verdict: &Verdict, campaign: Option<Timestamp>, zone: &Zone) {
    let _ = writeln!(
        html,
        "<h2>Verdict: {} ({})</h2>\n<p class=\"outcome\">Outcome: {}</p>",
        escape(verdict.title),
        escape(verdict.rules.name()),
        escape(&words(&verdict.outcome)),
    );
    if let Some(reason) = &verdict.reason {
        let _ = writeln!(html, "<p>Why: {}</p>", escape(reason));
    }
    let _ = writeln!(html, "<p class=\"label\">{}</p>", escape(verdict.label));
    let judged = match campaign {
        Some(start) => format!("the runs of the campaign started {start}"),
        None => "every run in the window".to_owned(),
    };
    let _ = writeln!(
        html,
        "<p>Judged: {}, in time zone {}: {}.</p>",
        escape(&judged),
        escape(&verdict.time_zone),
        escape(&judged_runs(verdict))
    );
    // The id (the JSON's) goes under the requirement: a column of its own is too narrow for
    // it and printed it broken mid-word.
    html.push_str("<h3>Criteria</h3>\n<table><thead><tr><th>Direction</th><th>Requirement</th><th class=\"n\">Count</th><th>Status</th></tr></thead><tbody>\n");
    if verdict.criteria.is_empty() {
        html.push_str("<tr><td colspan=\"4\">none</td></tr>\n");
    }
    for criterion in &verdict.criteria {
        let reason = criterion
            .reason
            .as_deref()
            .map(|r| format!("<br><span class=\"note\">{}</span>", escape(r)))
            .unwrap_or_default();
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}<br><span class=\"note mono\">{}</span></td><td class=\"n\">{} of {} {}</td><td>{}{reason}</td></tr>",
            escape(criterion.direction.unwrap_or("—")),
            escape(&criterion.requirement),
            escape(criterion.id),
            criterion.count,
            criterion.of,
            escape(criterion.unit),
            escape(&words(&criterion.status)),
        );
    }
    html.push_str("</tbody></table>\n");
    if let Some(protocol) = protocol_words(&verdict.progress) {
        let _ = writeln!(html, "<p>Protocol: {}.</p>", escape(&protocol));
    }
    if !verdict.days.is_empty() {
        // Local times, as the table of every run gives them; the date only where a
        // measurement falls on another date than its day's (a cycle past midnight).
        let _ = writeln!(
            html,
            "<h3>Measurement days</h3>\n<table><thead><tr><th>Date</th><th class=\"n\">Measurements</th><th>Local times ({})</th></tr></thead><tbody>",
            escape(zone.name())
        );
        for day in &verdict.days {
            let times: Vec<String> = day
                .measurements
                .iter()
                .map(|&time| {
                    let local = local_time(zone, time);
                    match local.split_once(' ') {
                        Some((date, clock)) if date == day.date => clock.to_owned(),
                        _ => local,
                    }
                })
                .collect();
            let _ = writeln!(
                html,
                "<tr><td class=\"date\">{}</td><td class=\"n\">{}</td><td class=\"mono\">{}</td></tr>",
                escape(&day.date),
                day.measurements.len(),
                escape(&times.join(", "))
            );
        }
        html.push_str("</tbody></table>\n");
    }
    list(
        html,
        "Not verified in the regulator's own text",
        &verdict.unverified,
    );
    list(html, "Sources", &verdict.sources);
}

fn list(html: &mut String, title: &str, items: &[&str]) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(html, "<h3>{}</h3>\n<ul>", escape(title));
    for item in items {
        let _ = writeln!(html, "<li>{}</li>", escape(item));
    }
    html.push_str("</ul>\n");
}

fn mbit(bytes_per_second: f64) -> String {
    format!("{:.1}", mbit_per_second(bytes_per_second))
}

fn speed(speed: Option<crate::units::Bandwidth>) -> String {
    speed.map_or_else(|| "—".to_owned(), |s| mbit(s.bytes_per_second()))
}

fn contract_section(html: &mut String, pack: &Pack, plans: &PlanHistory) {
    html.push_str("<h2>The contract</h2>\n");
    if pack.plans.source == "flags" {
        html.push_str("<p>Judged against the speeds given to this report (--plan-download/--plan-upload), not the stored plan history.</p>\n");
    }
    if plans.is_empty() {
        html.push_str("<p>No plan is stored: runs are not judged against a contract (store one with <code>internet-monitor plan set</code>).</p>\n");
        return;
    }
    html.push_str("<p>Every version, oldest first; each run is judged against the version in force at its time. Speeds in Mbit/s.</p>\n<table><thead><tr><th>In force from (UTC)</th><th>Direction</th><th class=\"n\">Maximum</th><th class=\"n\">Normally available</th><th class=\"n\">Minimum</th><th class=\"n\">Advertised</th><th class=\"n\">Latency max</th><th class=\"n\">Threshold</th></tr></thead><tbody>\n");
    for version in plans.versions() {
        for (direction, speeds) in [("download", &version.download), ("upload", &version.upload)] {
            let latency = version
                .latency_max
                .map_or_else(|| "—".to_owned(), |l| format!("{} ms", l.as_millis()));
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{direction}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{latency}</td><td class=\"n\">{} %</td></tr>",
                version.from,
                speed(speeds.maximum),
                speed(speeds.normally_available),
                speed(speeds.minimum),
                speed(speeds.advertised),
                percent(version.threshold),
            );
        }
    }
    html.push_str("</tbody></table>\n");
    if let Some(plan) = &pack.summary.plan {
        let share = plan.share_met.map_or_else(
            || "no measurements".to_owned(),
            |s| format!("{:.1} %", percent(s)),
        );
        let _ = writeln!(
            html,
            "<p>Met by {} of {} measurements ({share}); {} breaches ({} confirmed by a retest, {} refuted).</p>",
            plan.met,
            plan.measurements,
            plan.breaches,
            plan.retests.confirmed,
            plan.retests.refuted
        );
        if let Some(longest) = &plan.longest_below {
            let _ = writeln!(
                html,
                "<p>{}.</p>",
                escape(&crate::summary::longest_line(longest))
            );
        }
    }
}

fn spread_cells(spread: Option<&Percentiles>, show: impl Fn(f64) -> String) -> String {
    match spread {
        None => "<td class=\"n\" colspan=\"5\">no measurement</td>".to_owned(),
        Some(p) => [p.min, p.p5, p.p50, p.p95, p.max]
            .into_iter()
            .map(|v| format!("<td class=\"n\">{}</td>", show(v)))
            .collect(),
    }
}

fn figures_section(html: &mut String, pack: &Pack) {
    let summary = &pack.summary;
    html.push_str("<h2>Figures</h2>\n<table><thead><tr><th></th><th class=\"n\">min</th><th class=\"n\">p5</th><th class=\"n\">median</th><th class=\"n\">p95</th><th class=\"n\">max</th></tr></thead><tbody>\n");
    let ms = |v: f64| format!("{:.1}", millis(v));
    let _ = writeln!(
        html,
        "<tr><th>Download (Mbit/s)</th>{}</tr>\n<tr><th>Upload (Mbit/s)</th>{}</tr>\n<tr><th>Ping (ms)</th>{}</tr>\n</tbody></table>",
        spread_cells(summary.download_bytes_per_second.as_ref(), mbit),
        spread_cells(summary.upload_bytes_per_second.as_ref(), mbit),
        spread_cells(summary.ping_seconds.as_ref(), ms),
    );
    let _ = writeln!(
        html,
        "<p>Percentiles by nearest rank over the successful runs. Failed runs by whose problem they point at: network {} (counted against the line), service {}, local {}, other {} (not counted against the line).</p>",
        summary.failures_by_kind.network,
        summary.failures_by_kind.service,
        summary.failures_by_kind.local,
        summary.failures_by_kind.other,
    );
}

/// Each stated speed of `direction` as a step over the part of the window its version was in
/// force.
fn steps(plans: &PlanHistory, direction: Direction, from: Timestamp, to: Timestamp) -> Vec<Step> {
    let versions = plans.versions();
    let mut steps = Vec::new();
    for (i, version) in versions.iter().enumerate() {
        let end = versions.get(i + 1).map_or(to, |next| next.from.min(to));
        let start = version.from.max(from);
        if start >= end {
            continue;
        }
        for (label, value) in labelled(version, direction) {
            if let Some(value) = value {
                steps.push(Step {
                    label,
                    from: start,
                    to: end,
                    bytes_per_second: value.bytes_per_second(),
                });
            }
        }
    }
    steps
}

fn labelled(
    version: &PlanVersion,
    direction: Direction,
) -> [(&'static str, Option<crate::units::Bandwidth>); 4] {
    let speeds: &Speeds = match direction {
        Direction::Download => &version.download,
        Direction::Upload => &version.upload,
    };
    [
        ("maximum", speeds.maximum),
        ("normally available", speeds.normally_available),
        ("minimum", speeds.minimum),
        ("advertised", speeds.advertised),
    ]
}

fn charts_section(html: &mut String, pack: &Pack, plans: &PlanHistory, zone: &Zone) {
    let (from, to) = (pack.summary.window.from, pack.summary.window.to);
    let failures: Vec<Failure> = pack
        .runs
        .iter()
        .filter(|run| run.outcome == crate::sample::Outcome::Failure)
        .map(|run| Failure {
            time: run.time,
            network: run.failure_kind == Some(FailureKind::Network.as_str()),
        })
        .collect();
    html.push_str("<h2>Over time</h2>\n");
    for (direction, title) in [
        (Direction::Download, "Download speed"),
        (Direction::Upload, "Upload speed"),
    ] {
        let points: Vec<(Timestamp, f64)> = pack
            .runs
            .iter()
            .filter(|run| run.is_success())
            .filter_map(|run| {
                let value = match direction {
                    Direction::Download => run.download_bytes_per_second,
                    Direction::Upload => run.upload_bytes_per_second,
                };
                value.map(|v| (run.time, v))
            })
            .collect();
        let steps = steps(plans, direction, from, to);
        let _ = writeln!(html, "<h3>{title}</h3>");
        html.push_str(&svg::chart(
            title, from, to, zone, &points, &steps, &failures,
        ));
        html.push_str(&svg::legend(&steps));
        if points.len() > svg::MAX_LINE_POINTS {
            html.push_str("<p class=\"note\">Each vertical line spans the lowest to the highest measurement in its part of the window.</p>\n");
        }
    }
}

fn period_row(html: &mut String, name: &str, period: &Period) {
    let median = |p: &Option<Percentiles>, show: &dyn Fn(f64) -> String| {
        p.as_ref().map_or_else(|| "—".to_owned(), |p| show(p.p50))
    };
    let ms = |v: f64| format!("{:.1}", millis(v));
    let _ = writeln!(
        html,
        "<tr><th>{}</th><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
        escape(name),
        period.runs,
        period.successes,
        period.failures,
        period.network_failures,
        median(&period.download_bytes_per_second, &mbit),
        median(&period.upload_bytes_per_second, &mbit),
        median(&period.ping_seconds, &ms),
    );
}

fn peak_section(html: &mut String, pack: &Pack) {
    let peak = &pack.peak_hours;
    let whose = if peak.source == "rule set" {
        "the rule set's peak window"
    } else {
        "the evening peak; no rule set with a peak window was chosen"
    };
    let _ = writeln!(
        html,
        "<h2>Peak hours</h2>\n<p>{:02}:00 to {:02}:00 local time ({whose}), against the rest of the day.</p>\n<table><thead><tr><th></th><th class=\"n\">Runs</th><th class=\"n\">Succeeded</th><th class=\"n\">Failed</th><th class=\"n\">Network failures</th><th class=\"n\">Median download (Mbit/s)</th><th class=\"n\">Median upload (Mbit/s)</th><th class=\"n\">Median ping (ms)</th></tr></thead><tbody>",
        peak.start_hour, peak.end_hour
    );
    period_row(html, "Peak hours", &peak.peak);
    period_row(html, "Rest of the day", &peak.off_peak);
    html.push_str("</tbody></table>\n");
}

/// Availability and the outage list of the connectivity monitor.
fn connectivity_section(html: &mut String, pack: &Pack, zone: &Zone) {
    let c = &pack.connectivity;
    if c.monitored_seconds == 0.0 && pack.outages.is_empty() {
        html.push_str("<h2>Connectivity between the tests</h2>\n<p>The connectivity monitor (probes between the speed tests) did not run in this window.</p>\n");
        return;
    }
    let hours = |seconds: f64| format!("{:.1}", seconds / 3600.0);
    let availability = c.availability.map_or_else(
        || "not monitored in this window".to_owned(),
        |share| {
            format!(
                "{:.3} % of the monitored time without an ISP outage",
                share * 100.0
            )
        },
    );
    let _ = writeln!(
        html,
        "<h2>Connectivity between the tests</h2>\n<p>Probes to the home router (the gateway) and to public addresses, every few seconds. An <b>isp</b> outage: the gateway answered and nothing beyond it did. A <b>local</b> outage: the gateway did not answer either, so the fault may be in the home network; it is not counted against the provider. Time the monitor was not running is <b>unmonitored</b>, never an outage.</p>\n<table><tbody>\
         <tr><th>Availability</th><td>{}</td></tr>\
         <tr><th>Monitored</th><td>{} h (unmonitored {} h)</td></tr>\
         <tr><th>ISP outages</th><td>{}, {:.0} s down in the window</td></tr>\
         <tr><th>Local outages</th><td>{}, {:.0} s down in the window</td></tr>\
         </tbody></table>",
        escape(&availability),
        hours(c.monitored_seconds),
        hours(c.unmonitored_seconds),
        c.outages.isp.count,
        c.outages.isp.down_seconds,
        c.outages.local.count,
        c.outages.local.down_seconds,
    );
    if pack.outages.is_empty() {
        html.push_str("<p>No outage in the window.</p>\n");
        return;
    }
    html.push_str("<table><thead><tr><th>Start (local time)</th><th>End</th><th>Kind</th><th class=\"n\">Down (s)</th><th class=\"n\">Unmonitored (s)</th><th class=\"n\">Restarts</th></tr></thead><tbody>\n");
    for outage in &pack.outages {
        let end = outage
            .end
            .map_or_else(|| "ongoing".to_owned(), |end| local_time(zone, end));
        let _ = writeln!(
            html,
            "<tr><td class=\"time\">{}</td><td class=\"time\">{}</td><td>{}</td><td class=\"n\">{:.0}</td><td class=\"n\">{:.0}</td><td class=\"n\">{}</td></tr>",
            escape(&local_time(zone, outage.start)),
            escape(&end),
            escape(outage.kind),
            outage.down_seconds,
            outage.unmonitored_seconds,
            outage.restarts,
        );
    }
    html.push_str("</tbody></table>\n");
}

fn conditions_section(html: &mut String, pack: &Pack) {
    let conditions = &pack.conditions;
    html.push_str("<h2>Test conditions</h2>\n<h3>Engines</h3>\n<table><thead><tr><th>Engine</th><th>Parameters</th><th class=\"n\">Runs</th></tr></thead><tbody>\n");
    if conditions.engines.is_empty() {
        html.push_str("<tr><td colspan=\"3\">none recorded</td></tr>\n");
    }
    for used in &conditions.engines {
        let engine = &used.engine;
        let mut parameters = Vec::new();
        if let Some(protocol) = engine.protocol {
            parameters.push(format!("protocol {}", protocol.as_str()));
        }
        if let Some(url) = &engine.url {
            parameters.push(format!("server {url}"));
        }
        if let Some(streams) = engine.streams {
            parameters.push(format!("{streams} streams"));
        }
        if let Some(duration) = engine.duration_seconds {
            parameters.push(format!("{duration} s per direction"));
        }
        if let Some(ramp_up) = engine.ramp_up_seconds {
            parameters.push(format!("first {ramp_up} s not counted"));
        }
        if parameters.is_empty() {
            parameters.push(
                "chosen by the engine (the Ookla CLI picks its own streams and durations)"
                    .to_owned(),
            );
        }
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            escape(engine.name.as_str()),
            escape(&parameters.join("; ")),
            used.runs
        );
    }
    html.push_str("</tbody></table>\n<p class=\"note\">The program's version is named at the top; the Ookla CLI's own version is not recorded.</p>\n<h3>Servers</h3>\n<table><thead><tr><th class=\"n\">Id</th><th>Name</th><th>Location</th><th>Country</th><th>Host</th><th class=\"n\">Runs</th></tr></thead><tbody>\n");
    if conditions.servers.is_empty() {
        html.push_str("<tr><td colspan=\"6\">none recorded</td></tr>\n");
    }
    let text = |value: &Option<String>| escape(value.as_deref().unwrap_or("—")).into_owned();
    for used in &conditions.servers {
        let server = &used.server;
        let _ = writeln!(
            html,
            "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"n\">{}</td></tr>",
            server
                .id
                .map_or_else(|| "—".to_owned(), |id| id.to_string()),
            text(&server.name),
            text(&server.location),
            text(&server.country),
            text(&server.host),
            used.runs
        );
    }
    html.push_str("</tbody></table>\n<h3>ISP names the test servers saw</h3>\n<table><thead><tr><th>ISP</th><th class=\"n\">Runs</th></tr></thead><tbody>\n");
    if conditions.isps.is_empty() {
        html.push_str("<tr><td colspan=\"2\">none recorded</td></tr>\n");
    }
    for used in &conditions.isps {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
            escape(&used.isp),
            used.runs
        );
    }
    html.push_str("</tbody></table>\n");
    let more = &conditions.not_listed_runs;
    if more.engines + more.servers + more.isps > 0 {
        let _ = writeln!(
            html,
            "<p class=\"note\">Not listed (beyond the first {} of each): runs with other engines {}, servers {}, ISPs {}.</p>",
            super::pack::MAX_DISTINCT,
            more.engines,
            more.servers,
            more.isps
        );
    }
    let _ = writeln!(
        html,
        "<p>Interface: {}.</p>",
        escape(conditions.interface_note)
    );
}

fn runs_section(html: &mut String, runs: &[RunRow], zone: &Zone) {
    let _ = writeln!(
        html,
        "<h2>Every run</h2>\n<p>{} runs, oldest first, failures included. A failure of kind <b>network</b> (the line, DNS or every server unreachable, or the test stalled) counts against the line; <b>service</b> (the test service refused), <b>local</b> (the monitor's machine) and <b>other</b> (unclear) do not. Speeds in Mbit/s, ping in ms, local time; servers by id (see the test conditions).</p>\n<table class=\"runs\"><colgroup><col style=\"width:16.5%\"><col style=\"width:9.5%\"><col style=\"width:5.5%\"><col style=\"width:5%\"><col style=\"width:5%\"><col style=\"width:6.5%\"><col style=\"width:52%\"></colgroup><thead><tr><th>Local time</th><th>Result</th><th class=\"n\">Down</th><th class=\"n\">Up</th><th class=\"n\">Ping</th><th>Server</th><th>Result URL, or the failure's message</th></tr></thead><tbody>",
        runs.len()
    );
    for run in runs {
        let class = match (run.outcome, run.failure_kind) {
            (crate::sample::Outcome::Success, _) => "",
            (crate::sample::Outcome::Skipped, _) => " class=\"skipped\"",
            (_, Some("network")) => " class=\"failure network\"",
            _ => " class=\"failure\"",
        };
        let result = match (run.outcome, run.reason) {
            (crate::sample::Outcome::Success, _) => "ok".to_owned(),
            (outcome, Some(reason)) => format!(
                "{} {} ({})",
                outcome.as_str(),
                reason.as_str(),
                run.failure_kind.unwrap_or("not a failure")
            ),
            (outcome, None) => outcome.as_str().to_owned(),
        };
        let trigger = match run.trigger {
            crate::sample::Trigger::Schedule => String::new(),
            other => format!(", {}", other.as_str()),
        };
        let figure = |v: Option<f64>, show: &dyn Fn(f64) -> String| {
            v.filter(|v| v.is_finite()).map_or_else(String::new, show)
        };
        // The id when known: the test conditions list each server's name, place and ISP.
        let server = run
            .server
            .as_ref()
            .map_or_else(String::new, |s| match (s.id, &s.name) {
                (Some(id), _) => id.to_string(),
                (None, Some(name)) => name.clone(),
                (None, None) => String::new(),
            });
        let note = run
            .result_url
            .as_deref()
            .or(if run.is_success() {
                None
            } else {
                run.message.as_deref()
            })
            .unwrap_or("");
        // In the hour the clocks going back repeat, the offset tells the two apart.
        let time = match repeated_offset(zone, run.time) {
            Some(offset) => format!("{}<br>{offset}", escape(&run.local_time)),
            None => escape(&run.local_time).into_owned(),
        };
        let _ = writeln!(
            html,
            "<tr{class}><td class=\"time\">{time}</td><td>{}{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"url\">{}</td></tr>",
            escape(&result),
            escape(&trigger),
            figure(run.download_bytes_per_second, &mbit),
            figure(run.upload_bytes_per_second, &mbit),
            figure(run.ping_seconds, &|v| format!("{:.1}", millis(v))),
            escape(&server),
            escape(note),
        );
    }
    html.push_str("</tbody></table>\n");
}

fn export_section(html: &mut String, pack: &Pack) {
    let export = &pack.export;
    let _ = writeln!(
        html,
        "<h2>Checking this pack</h2>\n<p>The runs above are exactly the {} samples (JSON lines, {} bytes) that this command writes from the monitor's database (add <code>--db PATH</code> when it is not <code>./internet-monitor.redb</code>):</p>\n<pre class=\"mono\">internet-monitor export --format jsonl \\\n  --from {} --to {} | sha256sum</pre>\n<p>Its SHA-256 when this pack was made:</p>\n<p class=\"mono\">{}</p>\n<p>The same check in one command: <code>internet-monitor report --verify THIS-FILE</code> (exit 0 and “matches”, or exit 1 naming both hashes). A run stored, changed or deleted in the window since changes the hash.</p>",
        export.lines,
        export.bytes,
        export.from,
        export.to,
        escape(&export.sha256),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_both_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert!(matches!(escape("Vodafone Köln"), Cow::Borrowed(_)));
        assert_eq!(escape(""), "");
        assert_eq!(escape("&amp;"), "&amp;amp;");
    }

    #[test]
    fn names_become_words() {
        assert_eq!(
            words(&crate::rules::Judgement::NotAssessable),
            "not assessable"
        );
        assert_eq!(words(&crate::rules::CriterionStatus::Met), "met");
    }
}

#[cfg(test)]
mod verdict_tests {
    use super::*;

    #[test]
    fn the_verdict_section_shows_each_criterion_escaped() {
        let mut html = String::new();
        verdict_section(
            &mut html,
            &super::super::tests::verdict(),
            None,
            &Zone::utc(),
        );
        assert!(
            html.contains("<h2>Verdict: Bundesnetzagentur &lt;Germany&gt; (de-bnetza)</h2>"),
            "{html}"
        );
        assert!(html.contains("Outcome: not met"), "{html}");
        assert!(
            html.contains("<td class=\"n\">21 of 30 measurements</td><td>not met</td>"),
            "{html}"
        );
        assert!(
            html.contains("minimum &amp; &lt;b&gt;more&lt;/b&gt;"),
            "{html}"
        );
        assert!(
            html.contains("not assessable<br><span class=\"note\">no minimum is stated</span>"),
            "{html}"
        );
        assert!(
            html.contains("<li>the 5-minute spacing</li>")
                && html.contains("<li>Vfg. 99/2021</li>")
        );
        assert!(html.contains("every run in the window"), "{html}");
        assert!(
            html.contains("<td class=\"date\">2026-11-02</td><td class=\"n\">1</td>"),
            "{html}"
        );
        assert!(!html.contains("<b>"), "{html}");
    }
}
