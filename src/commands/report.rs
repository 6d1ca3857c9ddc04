//! `report`: the summary of a window for a person or as JSON, a rule set's verdict, and the
//! evidence pack (`--format html`), with `--verify` to check a pack against the store.

use std::process::ExitCode;

use super::write_stdout;
use crate::cli::{ReportArgs, ReportFormat};
use crate::plan::PlanHistory;
use crate::store::Store;
use crate::summary::summarize;
use crate::time::{ClockCheck, Timestamp};

/// `report`: the summary of a window, read from the store without changing it.
pub fn report(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open_read_only(&args.store.db)?;
    let now = Timestamp::now();
    warn_if_clock_looks_wrong(&store, now)?;
    let to = now.saturating_add(std::time::Duration::from_millis(1));
    // Flags, when given, judge this report alone; otherwise the stored history does.
    let flags = args.plan.plan();
    if args.plan.plan_threshold.is_some() && !flags.is_set() {
        anyhow::bail!(
            "--plan-threshold judges against --plan-download/--plan-upload, and neither is given: \
             the stored plan versions keep their own threshold (plan set --threshold)"
        );
    }
    let plans = if flags.is_set() {
        PlanHistory::constant(flags)
    } else {
        store.plan_history()?
    };
    let summary = summarize(&store, plans, now.saturating_sub(args.window), to)?;
    write_stdout(|out| {
        match args.format {
            ReportFormat::Text => out.write_all(summary.to_text().as_bytes())?,
            ReportFormat::Json => {
                serde_json::to_writer_pretty(&mut *out, &summary)?;
                writeln!(out)?;
            }
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
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
