//! `plan set`, `plan show` and `plan history`: the stored contract, one version at a time.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde::{Deserialize, Serialize};

use super::{Created, write_stdout};
use crate::cli::{
    PlanCommand, PlanCommandArgs, PlanFormat, PlanImportArgs, PlanListArgs, PlanSetArgs,
    PlanShowArgs,
};
use crate::plan::{PlanVersion, PlanVersionJson, Speeds};
use crate::sample::{mbit_per_second, percent};
use crate::store::{PlanStored, Store, StoreError};
use crate::time::Timestamp;

pub(super) fn run(args: &PlanCommandArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        PlanCommand::Set(args) => set(args),
        PlanCommand::Show(args) => show(args),
        PlanCommand::History(args) => history(args),
        PlanCommand::Import(args) => import(args),
    }
}

/// The version the flags of `plan set` state.
fn version_of(args: &PlanSetArgs, now: Timestamp) -> PlanVersion {
    PlanVersion {
        from: args.from.map_or(now, |from| from.resolve(now)),
        download: Speeds {
            maximum: args.download_max,
            normally_available: args.download_normal,
            minimum: args.download_min,
            advertised: args.download_advertised,
        },
        upload: Speeds {
            maximum: args.upload_max,
            normally_available: args.upload_normal,
            minimum: args.upload_min,
            advertised: args.upload_advertised,
        },
        latency_max: args.latency_max,
        threshold: args.threshold,
    }
}

/// Opens the store to write a plan, saying what to do when serve holds it.
/// A new file is removed again if the command then fails ([`Created`]).
fn open_for_plans(db: &std::path::Path, command: &str) -> anyhow::Result<Created> {
    Created::open_stopped_by_signals(db, |db| {
        Store::open(db).map_err(|err| match err {
            StoreError::Locked { .. } => anyhow::anyhow!(
                "{err}: {command} writes to the database, so stop serve first (or change serve's \
                 --plan-download/--plan-upload, which store a version when it starts)"
            ),
            err => err.into(),
        })
    })
}

fn set(args: &PlanSetArgs) -> anyhow::Result<ExitCode> {
    let version = version_of(args, Timestamp::now());
    version.validate()?;
    let mut store = open_for_plans(&args.store.db, "plan set")?;
    // "Now" from a clock that is behind the stored runs would judge some of them against a
    // version not in force at their time: such a time must be given.
    if args.from.is_none()
        && let (ahead, Some(newest)) = store.count_after(version.from)?
    {
        anyhow::bail!(
            "the clock reads {}, before {ahead} stored runs (the newest {newest}), so a version \
             from now would judge runs measured before it: give --from with the time the \
             version takes effect (or set the clock right)",
            version.from
        );
    }
    let stored = store.set_plan(&version, args.replace)?;
    store.keep();
    let verb = match stored {
        PlanStored::Added => "stored",
        PlanStored::Replaced => "replaced",
    };
    let text = format!(
        "plan version {verb} in {}:\n{}",
        args.store.db.display(),
        describe(&version)
    );
    write_stdout(|out| Ok(out.write_all(text.as_bytes())?))?;
    Ok(ExitCode::SUCCESS)
}

fn show(args: &PlanShowArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open_read_only(&args.store.db)?;
    let now = Timestamp::now();
    let at = args.at.map_or(now, |at| at.resolve(now));
    let history = store.plan_history()?;
    let current = history.in_force_at(at);
    write_stdout(|out| {
        match args.format {
            PlanFormat::Json => {
                serde_json::to_writer_pretty(&mut *out, &current.map(PlanVersion::to_json))?;
                writeln!(out)?;
            }
            PlanFormat::Text => match current {
                Some(version) => out.write_all(describe(version).as_bytes())?,
                None => writeln!(
                    out,
                    "no plan in force at {at}: store one with plan set (runs before the first version are not judged)"
                )?,
            },
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `plan history --format json`: `{"versions": [version…]}`, oldest first.
#[derive(Serialize)]
struct HistoryJson {
    versions: Vec<PlanVersionJson>,
}

fn history(args: &PlanListArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open_read_only(&args.store.db)?;
    let history = store.plan_history()?;
    write_stdout(|out| {
        match args.format {
            PlanFormat::Json => {
                let json = HistoryJson {
                    versions: history
                        .versions()
                        .iter()
                        .map(PlanVersion::to_json)
                        .collect(),
                };
                serde_json::to_writer_pretty(&mut *out, &json)?;
                writeln!(out)?;
            }
            PlanFormat::Text if history.is_empty() => {
                writeln!(out, "no plan stored: store one with plan set")?;
            }
            PlanFormat::Text => {
                for version in history.versions() {
                    out.write_all(describe(version).as_bytes())?;
                }
            }
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The most bytes `plan import` reads: 1000 versions of `plan history --format json` are
/// about 500 KB.
const MAX_IMPORT_BYTES: u64 = 1 << 20;

/// What `plan import` reads: `{"versions": [...]}` (plan history --format json) or
/// `{"current": ..., "history": [...]}` (/api/v1/plan).
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an object with \"versions\" or \"history\""
)]
struct ImportJson {
    versions: Option<Vec<PlanVersionJson>>,
    history: Option<Vec<PlanVersionJson>>,
    #[serde(default, rename = "current")]
    _current: Option<serde::de::IgnoredAny>,
}

fn import(args: &PlanImportArgs) -> anyhow::Result<ExitCode> {
    // As `import` says it: "-" is no name a person recognises.
    let name = if args.file.as_os_str() == "-" {
        "standard input".to_owned()
    } else {
        args.file.display().to_string()
    };
    let mut text = Vec::new();
    let read = if args.file.as_os_str() == "-" {
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::io::stdin().lock(), MAX_IMPORT_BYTES + 1),
            &mut text,
        )
    } else {
        std::fs::File::open(&args.file).and_then(|file| {
            std::io::Read::read_to_end(
                &mut std::io::Read::take(file, MAX_IMPORT_BYTES + 1),
                &mut text,
            )
        })
    };
    read.map_err(|err| anyhow::anyhow!("cannot read {name}: {err}"))?;
    if text.len() as u64 > MAX_IMPORT_BYTES {
        anyhow::bail!(
            "{name} is larger than 1 MiB: plan import reads what plan history --format json writes"
        );
    }
    // A byte-order mark (some Windows editors write one) is not part of the JSON.
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&text);
    let json: ImportJson = serde_json::from_slice(text).map_err(|err| {
        anyhow::anyhow!(
            "{name} is not the JSON of plan history --format json ({{\"versions\": [...]}}) or of /api/v1/plan: {err}"
        )
    })?;
    let listed = match (json.versions, json.history) {
        (Some(versions), None) | (None, Some(versions)) => versions,
        _ => anyhow::bail!(
            "{name} must have exactly one of \"versions\" (plan history --format json) and \"history\" (/api/v1/plan)"
        ),
    };
    let mut versions = Vec::with_capacity(listed.len());
    for (index, json) in listed.iter().enumerate() {
        let version = json.to_version().map_err(|err| {
            anyhow::anyhow!("{name}: version {} (from {}): {err}", index + 1, json.from)
        })?;
        if versions
            .iter()
            .any(|v: &PlanVersion| v.from == version.from)
        {
            anyhow::bail!("{name}: two versions are from {}", version.from);
        }
        versions.push(version);
    }
    let mut store = open_for_plans(&args.store.db, "plan import")?;
    let imported = store.import_plans(&versions, args.replace)?;
    store.keep();
    let text = format!(
        "plan versions imported into {}: {} added, {} already stored, {} replaced\n",
        args.store.db.display(),
        imported.added,
        imported.unchanged,
        imported.replaced
    );
    write_stdout(|out| Ok(out.write_all(text.as_bytes())?))?;
    Ok(ExitCode::SUCCESS)
}

/// A version for a person: its time, then one line per stated direction, latency and threshold.
pub(super) fn describe(version: &PlanVersion) -> String {
    let mut text = format!("plan from {}\n", version.from);
    for (name, speeds) in [("download", &version.download), ("upload", &version.upload)] {
        if speeds.is_empty() {
            continue;
        }
        let stated: Vec<String> = [
            ("maximum", speeds.maximum),
            ("normally available", speeds.normally_available),
            ("minimum", speeds.minimum),
            ("advertised", speeds.advertised),
        ]
        .into_iter()
        .filter_map(|(label, speed)| {
            speed.map(|s| format!("{label} {} Mbit/s", mbit_per_second(s.bytes_per_second())))
        })
        .collect();
        let _ = writeln!(text, "  {name}: {}", stated.join(", "));
    }
    if let Some(latency) = version.latency_max {
        let _ = writeln!(
            text,
            "  latency: at most {} ms",
            latency.as_secs_f64() * 1e3
        );
    }
    text.push_str(&judged_line(version));
    text
}

/// What a run is compared with under `version`: each direction's judged speed and which of the
/// four it is, or that nothing is judged (no advertised or maximum speed stated).
fn judged_line(version: &PlanVersion) -> String {
    let judged: Vec<String> = [("down", &version.download), ("up", &version.upload)]
        .into_iter()
        .filter_map(|(way, speeds)| {
            let kind = if speeds.advertised.is_some() {
                "advertised"
            } else {
                "maximum"
            };
            speeds.judged().map(|speed| {
                format!(
                    "{} Mbit/s {way} ({kind})",
                    mbit_per_second(speed.bytes_per_second())
                )
            })
        })
        .collect();
    if judged.is_empty() {
        return "  met: not judged, it states no advertised or maximum speed (runs while it is in force are not judged)\n".to_owned();
    }
    format!(
        "  met when a run reaches {} % of {}\n",
        percent(version.threshold),
        judged.join(" and ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Speeds;

    #[test]
    fn the_met_line_names_the_speed_compared_with() {
        let rate = |text: &str| Some(text.parse().unwrap());
        let mut version = PlanVersion {
            from: Timestamp::EPOCH,
            download: Speeds {
                advertised: rate("100Mbit/s"),
                maximum: rate("150Mbit/s"),
                ..Speeds::default()
            },
            upload: Speeds {
                maximum: rate("20Mbit/s"),
                minimum: rate("5Mbit/s"),
                ..Speeds::default()
            },
            latency_max: None,
            threshold: 0.8,
        };
        assert!(
            describe(&version).ends_with(
                "  met when a run reaches 80 % of 100 Mbit/s down (advertised) and 20 Mbit/s up (maximum)\n"
            ),
            "{}",
            describe(&version)
        );
        version.download = Speeds::default();
        version.upload.maximum = None;
        let said = describe(&version);
        assert!(said.contains("not judged"), "{said}");
        assert!(!said.contains("% of"), "{said}");
    }
}
