//! `report`: the summary of a window for a person or as JSON, a rule set's verdict, and the
//! evidence pack (`--format html`), with `--verify` to check a pack against the store.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::write_stdout;
use crate::cli::{ReportArgs, ReportFormat};
use crate::plan::{PlanHistory, PlanVersion};
use crate::probe::peak::PeakWindow;
use crate::probe::report::read_connectivity;
use crate::rules;
use crate::store::Store;
use crate::summary::summarize;
use crate::time::{ClockCheck, Timestamp};

mod html;
mod pack;
mod svg;

/// `report`: the summary of a window, a rule set's verdict and the evidence pack, read from the
/// store without changing it; or, with `--verify`, the check of a pack against the store.
pub(super) fn report(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    if let Some(file) = &args.verify {
        return verify(args, file);
    }
    let store = Store::open_read_only(&args.store.db)?;
    let now = Timestamp::now();
    warn_if_clock_looks_wrong(&store, now)?;
    let (from, to) = window_bounds(
        args.from.map(|from| from.resolve(now)),
        args.to.map(|to| to.resolve(now)),
        args.window,
        now,
    )?;
    // The window as asked: `--window 366d` ends 1 ms after now (so a run stored this
    // millisecond counts), which is no longer window than the flag gave.
    let span = match (args.from, args.to) {
        (None, None) => args.window,
        _ => to.duration_since(from),
    };
    if args.rules.is_some() && span > rules::MAX_RULES_WINDOW {
        bail!(
            "with --rules the window must be at most {}: shorten --window or --from/--to (it is {} to {})",
            crate::time::format_limit(rules::MAX_RULES_WINDOW),
            from,
            to
        );
    }
    // Flags, when given, judge this report alone; otherwise the stored history does.
    let flags = args.plan.plan();
    if args.plan.plan_threshold.is_some() && !flags.is_set() {
        bail!(
            "--plan-threshold judges against --plan-download/--plan-upload, and neither is given: \
             the stored plan versions keep their own threshold (plan set --threshold)"
        );
    }
    let (plans, plan_source) = if flags.is_set() {
        (PlanHistory::constant(flags), "flags")
    } else {
        (store.plan_history()?, "stored")
    };
    let (zone, warning) = args.timezone.zone_or_warning();
    if let Some(warning) = warning {
        crate::logging::say(format_args!("warning: {warning}"));
    }
    // The runs `--rules` judges: the text report reads them here; the pack takes them from
    // its own read of the window (`pack::collect`), which reads it once for both.
    let mut selector = args
        .rules
        .map(|rules| rules::Selector::new(&store, rules, from, to))
        .transpose()?;
    let judge = |selection: rules::Selection| {
        args.rules.map(|rules| {
            let verdict = rules::evaluate(rules, &selection.runs, &plans, &zone);
            (verdict, selection.campaign)
        })
    };
    let judged = if args.format == ReportFormat::Text {
        let selection = selector.take().map(|s| s.read(&store)).transpose()?;
        selection.and_then(judge)
    } else {
        None
    };
    // The probes' figures: no monitor runs in this process, so a serve running meanwhile
    // counts as monitored up to its last heartbeat.
    let mut connectivity = read_connectivity(
        &store,
        (from, to),
        now,
        None,
        PeakWindow::of(args.rules),
        &zone,
    )?;
    if args.format == ReportFormat::Text {
        let mut text = summarize(&store, plans, from, to)?.to_text();
        text.push_str(&connectivity.to_text());
        if let Some((verdict, campaign)) = &judged {
            text.push_str(&verdict_text(verdict, *campaign));
        }
        return write_report(args, text.as_bytes());
    }
    // The rule set's own peak window (us-fcc 18–24, uk-ofcom 20–22 local), else the
    // residential evening peak the project uses by default.
    let peak = args
        .rules
        .and_then(rules::peak_window)
        .map_or((pack::DEFAULT_PEAK, "default"), |hours| (hours, "rule set"));
    let collected = pack::collect(&store, &plans, (from, to), &zone, peak, selector.as_mut())?;
    let (verdict, campaign) = selector
        .and_then(|selector| judge(selector.finish()))
        .unzip();
    let pack = pack::Pack {
        summary: collected.summary,
        pack: pack::PackInfo {
            format: pack::PACK_FORMAT,
            generated_at: now,
            program: format!("internet-monitor {}", env!("CARGO_PKG_VERSION")),
            time_zone: zone.name().to_owned(),
        },
        plans: pack::Plans {
            source: plan_source,
            versions: plans.versions().iter().map(PlanVersion::to_json).collect(),
        },
        rules: verdict,
        campaign: campaign.flatten(),
        peak_hours: collected.peak_hours,
        // Moved, not copied: the pack lists them once (`listed` is not serialised).
        outages: std::mem::take(&mut connectivity.listed),
        connectivity,
        runs: collected.runs,
        conditions: collected.conditions,
        export: collected.export,
    };
    if args.format == ReportFormat::Json {
        let mut json = serde_json::to_vec_pretty(&pack)?;
        json.push(b'\n');
        return write_report(args, &json);
    }
    write_report(args, html::render(&pack, &plans, &zone).as_bytes())
}

/// Writes the report to `--output` (replacing the file) or stdout; never over the database.
fn write_report(args: &ReportArgs, bytes: &[u8]) -> anyhow::Result<ExitCode> {
    match &args.output {
        Some(path) => {
            refuse_database(path, &args.store.db)?;
            replace_file(path, bytes)
                .with_context(|| format!("cannot write --output {}", path.display()))?;
        }
        None => write_stdout(|out| Ok(out.write_all(bytes)?))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to `path` whole or not at all: a regular file (or a new one) is replaced by a
/// complete, synced copy written beside it, so a full disk or a killed run leaves an earlier
/// pack as it was; anything else (`/dev/stdout`, a pipe) is written to directly.
fn replace_file(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // The mode a plain write would leave: an existing file's own, else 0666 less the umask
    // (which `open` applies), not the temporary file's 0600.
    let permissions = match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => return std::fs::write(path, bytes),
        Ok(meta) => meta.permissions(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            std::fs::Permissions::from_mode(0o666)
        }
        Err(err) => return Err(err),
    };
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut file = tempfile::Builder::new()
        .prefix(".internet-monitor-report")
        .permissions(permissions)
        .tempfile_in(dir)?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|err| err.error)?;
    Ok(())
}

/// Refuses an `--output` that is the database at `db` (by name, through a symbolic link or as
/// a hard link: the same device and inode), which writing the report would destroy.
fn refuse_database(output: &std::path::Path, db: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let (Ok(output_meta), Ok(db_meta)) = (std::fs::metadata(output), std::fs::metadata(db)) else {
        return Ok(()); // a new file (or one the write will name the error of) is not the database
    };
    if output_meta.dev() == db_meta.dev() && output_meta.ino() == db_meta.ino() {
        bail!(
            "--output {} is the database (--db {}): writing the report there would destroy it; name another file",
            output.display(),
            db.display()
        );
    }
    Ok(())
}

/// A verdict for the text report: the outcome in words, the label, each criterion with its
/// counts, what is unverified, and the sources.
fn verdict_text(verdict: &rules::Verdict, campaign: Option<Timestamp>) -> String {
    let mut text = format!(
        "\nRule set: {} ({})\nOutcome: {}",
        verdict.rules,
        verdict.title,
        html::words(&verdict.outcome)
    );
    if let Some(reason) = &verdict.reason {
        let _ = write!(text, " ({reason})");
    }
    let _ = writeln!(text, "\n{}", verdict.label);
    let judged = match campaign {
        Some(start) => format!("the runs of the campaign started {start}"),
        None => "every run in the window".to_owned(),
    };
    let _ = writeln!(
        text,
        "Judged: {judged}, days in {}: {}",
        verdict.time_zone,
        html::judged_runs(verdict)
    );
    if let Some(protocol) = html::protocol_words(&verdict.progress) {
        let _ = writeln!(text, "Protocol: {protocol}");
    }
    if !verdict.criteria.is_empty() {
        text.push_str("Criteria:\n");
    }
    for criterion in &verdict.criteria {
        let direction = criterion
            .direction
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        let _ = write!(
            text,
            "  [{}] {}{direction}: {} of {} {}",
            html::words(&criterion.status),
            criterion.requirement,
            criterion.count,
            criterion.of,
            criterion.unit
        );
        match &criterion.reason {
            Some(reason) => {
                let _ = writeln!(text, " ({reason})");
            }
            None => text.push('\n'),
        }
    }
    for (title, items) in [
        (
            "Not verified in the regulator's own text:",
            &verdict.unverified,
        ),
        ("Sources:", &verdict.sources),
    ] {
        if !items.is_empty() {
            let _ = writeln!(text, "{title}");
            for item in items {
                let _ = writeln!(text, "  - {item}");
            }
        }
    }
    text
}

/// The window a report summarises, `from` inclusive to `to` exclusive: `to` defaults to now
/// (1 ms past it, so a run stored this millisecond counts) and `from` to `window` (`--window`'s
/// default) before `to`, as `/api/v1/summary` counts it, so `--to` alone moves the whole window.
/// A window that ends before it starts is an error naming both times, and which was a default.
fn window_bounds(
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    window: std::time::Duration,
    now: Timestamp,
) -> anyhow::Result<(Timestamp, Timestamp)> {
    let (to, to_said) = match to {
        Some(to) => (to, String::new()),
        None => (
            now.saturating_add(std::time::Duration::from_millis(1)),
            ", now: --to not given".to_owned(),
        ),
    };
    let (from, from_said) = match from {
        Some(from) => (from, String::new()),
        None => (
            to.saturating_sub(window),
            format!(
                ", {} before --to: --from not given",
                crate::time::format_limit(window)
            ),
        ),
    };
    if from >= to {
        bail!("--from ({from}{from_said}) must be before --to ({to}{to_said})");
    }
    Ok((from, to))
}

/// `report --verify FILE`: recomputes the export of the pack's window from the store and
/// compares its SHA-256 with the pack's. Exit 0 when it matches, 1 when not.
fn verify(args: &ReportArgs, path: &std::path::Path) -> anyhow::Result<ExitCode> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).with_context(|| format!("cannot read --verify {name}"))?;
    let stated = pack::read_pack(&name, file)?;
    let store = Store::open_read_only(&args.store.db)?;
    let now = pack::hash_export(&store, stated.from, stated.to, |_| Ok(()))?;
    let db = args.store.db.display();
    let (from, to) = (stated.from, stated.to);
    if now.sha256 == stated.sha256 {
        let line = format!(
            "matches: the export of {from} to {to} in {db} ({} samples, {} bytes) has SHA-256 {}, as {name} says\n",
            now.lines, now.bytes, now.sha256
        );
        write_stdout(|out| Ok(out.write_all(line.as_bytes())?))?;
        return Ok(ExitCode::SUCCESS);
    }
    let line = format!(
        "does not match: {name} says SHA-256 {} ({} samples), but the export of {from} to {to} in {db} now has {} ({} samples): runs in the window were stored, changed or deleted since the pack was made, or it was made from another database\n",
        stated.sha256, stated.lines, now.sha256, now.lines
    );
    write_stdout(|out| Ok(out.write_all(line.as_bytes())?))?;
    Ok(ExitCode::from(1))
}

/// Says on stderr what suggests the clock is wrong, since the window is counted back from it:
/// a time before the source date, or samples dated after now (left out of the window).
fn warn_if_clock_looks_wrong(store: &Store, now: Timestamp) -> anyhow::Result<()> {
    if let ClockCheck::BeforeSourceDate { now, source_date } = ClockCheck::of(now) {
        crate::logging::say(format_args!(
            "internet-monitor: warning: the clock is wrong: it reads {now}, before this program's source date {source_date}"
        ));
    }
    if let (ahead, Some(newest)) = store.count_after(now)? {
        crate::logging::say(format_args!(
            "internet-monitor: warning: {ahead} samples are dated after the clock ({now}), the newest {newest}, and are left out; is the clock behind?"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Criterion, CriterionStatus, Day, Judgement, Progress, RuleSet, Verdict};

    /// A filled-in verdict (the rule sets' own values are tested in tests/rules_golden.rs):
    /// what the report shows of each field.
    pub(super) fn verdict() -> Verdict {
        Verdict {
            rules: RuleSet::DeBnetza,
            title: "Bundesnetzagentur <Germany>",
            time_zone: "Europe/Berlin".to_owned(),
            outcome: Judgement::NotMet,
            reason: None,
            criteria: vec![
                Criterion {
                    id: "normal_in_90_percent",
                    direction: Some("download"),
                    requirement: "normally available speed (200 Mbit/s) in 90 % of measurements"
                        .to_owned(),
                    status: CriterionStatus::NotMet,
                    count: 21,
                    of: 30,
                    unit: "measurements",
                    reason: None,
                },
                Criterion {
                    id: "minimum_on_days",
                    direction: None,
                    requirement: "minimum & <b>more</b>".to_owned(),
                    status: CriterionStatus::NotAssessable,
                    count: 0,
                    of: 3,
                    unit: "days",
                    reason: Some("no minimum is stated".to_owned()),
                },
            ],
            progress: Progress {
                measurements: 30,
                measurements_required: 30,
                days: 3,
                days_required: 3,
                complete: true,
            },
            days: vec![Day {
                date: "2026-11-02".to_owned(),
                measurements: vec![Timestamp::from_millis(1_795_478_400_000)],
            }],
            successful_runs: 30,
            failed_runs: 2,
            failed_network_runs: 1,
            label: "indicative: see breitbandmessung.de",
            unverified: vec!["the 5-minute spacing"],
            sources: vec!["Vfg. 99/2021"],
        }
    }

    /// `--to` alone moves the whole window (from `--window` before it), as
    /// `/api/v1/summary?to=` does: a past `--to` is no error about a `--from` never given.
    #[test]
    fn the_window_ends_at_to_and_starts_a_window_before_it() {
        let day = std::time::Duration::from_secs(24 * 60 * 60);
        let now = Timestamp::from_millis(1_795_478_400_000);
        let to = Timestamp::from_millis(1_577_836_800_000); // 2020-01-01
        let (from, end) = window_bounds(None, Some(to), 30 * day, now).unwrap();
        assert_eq!((from, end), (to.saturating_sub(30 * day), to));
        // Neither given: the window before now, ending 1 ms after it.
        let (from, end) = window_bounds(None, None, 30 * day, now).unwrap();
        let after = now.saturating_add(std::time::Duration::from_millis(1));
        assert_eq!((from, end), (after.saturating_sub(30 * day), after));
        // From given, to not: now ends it.
        assert_eq!(
            window_bounds(Some(to), None, 30 * day, now).unwrap(),
            (to, after)
        );
        // An inverted range names both, and says which one was a default.
        let err = window_bounds(Some(now), Some(to), 30 * day, now)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--from (") && err.contains("must be before --to ("),
            "{err}"
        );
        assert!(!err.contains("not given"), "{err}");
        let err = window_bounds(Some(after.saturating_add(day)), None, 30 * day, now)
            .unwrap_err()
            .to_string();
        assert!(err.contains("now: --to not given"), "{err}");
    }

    #[test]
    fn the_text_verdict_shows_every_field() {
        let text = verdict_text(&verdict(), Some(Timestamp::from_millis(1_795_478_400_000)));
        let expected = [
            "",
            "Rule set: de-bnetza (Bundesnetzagentur <Germany>)",
            "Outcome: not met",
            "indicative: see breitbandmessung.de",
            "Judged: the runs of the campaign started 2026-11-24T00:00:00.000Z, days in Europe/Berlin: 30 successful runs; 2 failed runs (1 pointing at the line; never counted as measurements)",
            "Protocol: 30 of 30 measurements, 3 of 3 days, complete",
            "Criteria:",
            "  [not met] normally available speed (200 Mbit/s) in 90 % of measurements (download): 21 of 30 measurements",
            "  [not assessable] minimum & <b>more</b>: 0 of 3 days (no minimum is stated)",
            "Not verified in the regulator's own text:",
            "  - the 5-minute spacing",
            "Sources:",
            "  - Vfg. 99/2021",
            "",
        ]
        .join("\n");
        assert_eq!(text, expected);
    }
}
