//! `db check` and `db compact`: maintenance of the database file, with no other process on it.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use super::write_stdout;
use crate::cli::{DbArgs, DbCommand};
use crate::store::{CheckReport, Store, StoreError};
use crate::time::Timestamp;

/// Exit status of `db check` when it found damage (1 means it could not check).
const DAMAGE_FOUND: u8 = 2;

pub(super) fn run(args: &DbArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        DbCommand::Check(file) => check(&file.db),
        DbCommand::Compact(file) => compact(&file.db),
    }
}

fn check(db: &Path) -> anyhow::Result<ExitCode> {
    let report = match Store::check(db) {
        Ok(report) => report,
        // So damaged that it does not open: that is the finding.
        Err(err @ StoreError::Corrupt { .. }) => {
            crate::logging::say(format_args!("internet-monitor: {err}"));
            return Ok(ExitCode::from(DAMAGE_FOUND));
        }
        Err(err) => return Err(err.into()),
    };
    let text = describe(db, &report);
    write_stdout(|out| Ok(out.write_all(text.as_bytes())?))?;
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(DAMAGE_FOUND)
    })
}

/// The report for a person: one line per finding, then the verdict.
fn describe(db: &Path, report: &CheckReport) -> String {
    let mut text = format!(
        "database {}: {} samples and {} server/ISP/engine entries checked\n",
        db.display(),
        report.samples,
        report.entries
    );
    for (time, what) in &report.damaged_samples {
        let _ = writeln!(text, "damaged: the sample at {time}: {what}");
    }
    for (number, what) in &report.damaged_entries {
        let _ = writeln!(text, "damaged: server/ISP/engine entry {number}: {what}");
    }
    if report.plans > 0 {
        let _ = writeln!(text, "{} plan versions checked", report.plans);
    }
    if report.campaigns > 0 {
        let _ = writeln!(text, "{} campaigns checked", report.campaigns);
    }
    if report.probe_records > 0 {
        let _ = writeln!(
            text,
            "{} connectivity monitor records checked",
            report.probe_records
        );
    }
    if report.outbox_pending > 0 {
        let _ = writeln!(
            text,
            "{} remote_write outbox entries checked (samples not yet pushed)",
            report.outbox_pending
        );
    }
    for (time, what) in &report.damaged_plans {
        let _ = writeln!(text, "damaged: the plan version from {time}: {what}");
    }
    for key in &report.out_of_range {
        let _ = writeln!(
            text,
            "left as it is: the sample keyed {key} ms after the Unix epoch, at or after {}, the end of the times this version handles (an older version stored it); no command shows it, and it is not counted as damage",
            Timestamp::MAX
        );
    }
    for what in &report.structure {
        let _ = writeln!(text, "damaged: {what}");
    }
    if report.is_clean() {
        text.push_str("no damage found\n");
    } else {
        let _ = writeln!(
            text,
            "{} damaged samples, {} damaged server/ISP/engine entries, {} damaged plan versions, {} other findings; the file was left as it is: restore it from a backup, or export what still reads (export --from/--to around the damaged times) and import it into a new file (a damaged plan version: plan set --replace --from ITS-TIME){}",
            report.damaged_samples.len(),
            report.damaged_entries.len(),
            report.damaged_plans.len(),
            report.structure.len(),
            if report.probe_records > 0 {
                "; export carries the speed-test samples only: the connectivity monitor's \
                 outages and probe figures stay in this file"
            } else {
                ""
            }
        );
    }
    text
}

fn compact(db: &Path) -> anyhow::Result<ExitCode> {
    let compacted = Store::compact(db)?;
    let text = format!(
        "database {} compacted: {} bytes before, {} bytes after\n",
        db.display(),
        compacted.before,
        compacted.after
    );
    write_stdout(|out| Ok(out.write_all(text.as_bytes())?))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rescue_advice_says_what_export_leaves_behind() {
        let damaged = CheckReport {
            probe_records: 11,
            structure: vec!["redb's integrity check fails".into()],
            ..CheckReport::default()
        };
        let text = describe(Path::new("x.redb"), &damaged);
        assert!(
            text.contains("the connectivity monitor's outages and probe figures stay in this file"),
            "{text}"
        );
        let without_probes = CheckReport {
            structure: vec!["redb's integrity check fails".into()],
            ..CheckReport::default()
        };
        let text = describe(Path::new("x.redb"), &without_probes);
        assert!(!text.contains("connectivity monitor"), "{text}");
        assert!(!text.contains("outbox"), "{text}");
    }

    #[test]
    fn the_outbox_is_counted_when_it_holds_samples() {
        let report = CheckReport {
            outbox_pending: 3,
            ..CheckReport::default()
        };
        let text = describe(Path::new("x.redb"), &report);
        assert!(
            text.contains("3 remote_write outbox entries checked (samples not yet pushed)"),
            "{text}"
        );
    }
}
