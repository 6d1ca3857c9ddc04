//! The evidence pack's content: every run of the window as a row, the test conditions, the
//! peak-hour figures and the SHA-256 of the window's `export --format jsonl`, gathered in one
//! pass over the store, so the hash certifies exactly the runs listed. `--format json` prints
//! it ([`Pack`]); `html` renders it.

use std::collections::HashMap;
use std::hash::Hash;
use std::io::{self, Read as _};
use std::sync::Arc;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::super::transfer::write_jsonl;
use crate::plan::{PlanHistory, PlanVersionJson};
use crate::rules::Verdict;
use crate::sample::{Engine, FailureReason, Outcome, Sample, Server, Trigger};
use crate::store::Store;
use crate::summary::{FailureKind, Percentiles, Summarizer, Summary};
use crate::time::Timestamp;
use crate::zone::Zone;

/// The most runs (samples, skipped ones included) one pack lists: about 69 days of one-minute
/// runs or 5.7 years of half-hourly ones, some 30 MB of HTML; a longer window is refused.
pub(super) const MAX_PACK_RUNS: usize = 100_000;

/// The most distinct engines, servers and ISPs listed under the test conditions; runs with
/// others are counted in `not_listed_runs`.
pub(super) const MAX_DISTINCT: usize = 100;

/// The version of the pack's layout, in the HTML's marker comment and the JSON's `pack`.
pub(super) const PACK_FORMAT: u32 = 1;

/// What an HTML pack's first lines carry for `report --verify`, in a comment (no script):
/// `<!-- internet-monitor-evidence-pack {"format":1,…} -->`.
pub(super) const MARKER: &str = "<!-- internet-monitor-evidence-pack ";

/// The peak window used when the rule set defines none: 20:00 to 22:00 local (Ofcom's).
pub(super) const DEFAULT_PEAK: (u8, u8) = (20, 22);

/// The evidence pack: the summary's fields (as `/api/v1/summary` has them) and the rest of
/// the pack. The JSON of `report --format json`.
#[derive(Debug, Serialize)]
pub(super) struct Pack {
    #[serde(flatten)]
    pub summary: Summary,
    pub pack: PackInfo,
    pub plans: Plans,
    /// The rule set's verdict (`--rules`); `null` without it.
    pub rules: Option<Verdict>,
    /// The start of the `serve --campaign` campaign whose runs the rule set judged; `null`
    /// when it judged every run in the window (or without `--rules`).
    pub campaign: Option<Timestamp>,
    pub peak_hours: PeakHours,
    /// The connectivity monitor's figures of the window: availability, outages by kind,
    /// probe loss and latency in peak hours.
    pub connectivity: crate::probe::report::Connectivity,
    /// The connectivity monitor's outages overlapping the window, whole, oldest first, as
    /// `/api/v1/outages` lists them.
    pub outages: Vec<crate::probe::availability::OutageEntry>,
    /// Every run in the window, oldest first, failures and skipped runs included.
    pub runs: Vec<RunRow>,
    pub conditions: Conditions,
    pub export: ExportDigest,
}

/// When and by what the pack was made.
#[derive(Debug, Serialize)]
pub(super) struct PackInfo {
    /// [`PACK_FORMAT`].
    pub format: u32,
    pub generated_at: Timestamp,
    /// `internet-monitor 0.1.0`.
    pub program: String,
    /// The IANA zone local times, calendar days and peak hours are given in.
    pub time_zone: String,
}

/// The contract runs were judged against.
#[derive(Debug, Serialize)]
pub(super) struct Plans {
    /// `stored` (the database's plan history) or `flags` (`--plan-download`/`--plan-upload`
    /// judged this report alone).
    pub source: &'static str,
    /// Every version, oldest first.
    pub versions: Vec<PlanVersionJson>,
}

/// One run of the window, as the pack lists it.
#[derive(Debug, Serialize)]
pub(super) struct RunRow {
    pub time: Timestamp,
    /// The start in the pack's zone, `YYYY-MM-DD HH:MM:SS`.
    pub local_time: String,
    pub outcome: Outcome,
    pub trigger: Trigger,
    pub reason: Option<FailureReason>,
    /// Whose problem a failure points at: `network` (counted against the line), `service`,
    /// `local` or `other`; `null` for a success, a skipped run, or a failure without reason.
    pub failure_kind: Option<&'static str>,
    pub download_bytes_per_second: Option<f64>,
    pub upload_bytes_per_second: Option<f64>,
    pub ping_seconds: Option<f64>,
    pub server: Option<Arc<Server>>,
    pub isp: Option<Arc<str>>,
    /// `ookla` or `http`; its parameters are under `conditions.engines`.
    pub engine: Option<&'static str>,
    pub result_url: Option<String>,
    pub message: Option<String>,
}

impl RunRow {
    fn of(sample: &Sample, zone: &Zone) -> Self {
        RunRow {
            time: sample.time,
            local_time: local_time(zone, sample.time),
            outcome: sample.outcome,
            trigger: sample.trigger,
            reason: sample.reason,
            failure_kind: failure_kind(sample).map(FailureKind::as_str),
            download_bytes_per_second: sample.download_bytes_per_second,
            upload_bytes_per_second: sample.upload_bytes_per_second,
            ping_seconds: sample.ping_seconds,
            server: sample.server.clone(),
            isp: sample.isp.clone(),
            engine: sample.engine.as_deref().map(|e| e.name.as_str()),
            result_url: sample.result_url.clone(),
            message: sample.message.clone(),
        }
    }

    /// Whether the run measured (it counts as a measurement).
    pub(super) fn is_success(&self) -> bool {
        self.outcome == Outcome::Success
    }
}

/// The kind of a failed run, `None` for anything else.
fn failure_kind(sample: &Sample) -> Option<FailureKind> {
    if sample.outcome != Outcome::Failure {
        return None;
    }
    sample.reason.and_then(FailureKind::of)
}

/// `time` in `zone` as `YYYY-MM-DD HH:MM:SS`.
pub(super) fn local_time(zone: &Zone, time: Timestamp) -> String {
    zone.local(time).strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// The UTC offset of `time` in `zone` (`UTC+01:00`) when its local time is one the clocks going
/// back repeat (the hour shown twice at the end of daylight saving time), else `None`: two runs
/// an hour apart there show the same [`local_time`], and only the offset tells them apart.
pub(super) fn repeated_offset(zone: &Zone, time: Timestamp) -> Option<String> {
    let local = zone.local(time);
    if !zone
        .time_zone()
        .to_ambiguous_zoned_datetime(local)
        .is_ambiguous()
    {
        return None;
    }
    let seconds = zone.time_zone().to_offset(time.to_jiff()).seconds();
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.unsigned_abs() / 60;
    Some(format!("UTC{sign}{:02}:{:02}", minutes / 60, minutes % 60))
}

/// The figures of the runs inside the peak window and of those outside it.
#[derive(Debug, Serialize)]
pub(super) struct PeakHours {
    /// The peak window, local hours: from `start_hour`:00 to `end_hour`:00 (24: midnight).
    pub start_hour: u8,
    pub end_hour: u8,
    /// `rule set` (the rule set's own peak window) or `default` (20:00–22:00).
    pub source: &'static str,
    pub peak: Period,
    pub off_peak: Period,
}

/// Runs made in a part of the day and their spread (nearest-rank percentiles).
#[derive(Debug, Default, Serialize)]
pub(super) struct Period {
    /// Runs made (successes and failures; skipped runs are not counted).
    pub runs: u64,
    pub successes: u64,
    pub failures: u64,
    /// Failures of kind `network`, the ones counted against the line.
    pub network_failures: u64,
    pub download_bytes_per_second: Option<Percentiles>,
    pub upload_bytes_per_second: Option<Percentiles>,
    pub ping_seconds: Option<Percentiles>,
}

/// A [`Period`] being counted: the figures are kept until the end.
#[derive(Default)]
struct PeriodTally {
    period: Period,
    download: Vec<f64>,
    upload: Vec<f64>,
    ping: Vec<f64>,
}

impl PeriodTally {
    fn add(&mut self, sample: &Sample) {
        self.period.runs += 1;
        if sample.is_success() {
            self.period.successes += 1;
            let finite = |v: Option<f64>| v.filter(|v| v.is_finite());
            self.download
                .extend(finite(sample.download_bytes_per_second));
            self.upload.extend(finite(sample.upload_bytes_per_second));
            self.ping.extend(finite(sample.ping_seconds));
        } else {
            self.period.failures += 1;
            if failure_kind(sample) == Some(FailureKind::Network) {
                self.period.network_failures += 1;
            }
        }
    }

    fn finish(self) -> Period {
        Period {
            download_bytes_per_second: Percentiles::of(self.download),
            upload_bytes_per_second: Percentiles::of(self.upload),
            ping_seconds: Percentiles::of(self.ping),
            ..self.period
        }
    }
}

/// What the runs were measured with and against.
#[derive(Debug, Serialize)]
pub(super) struct Conditions {
    /// Each engine configuration (name and parameters) that made runs, most runs first.
    pub engines: Vec<EngineUse>,
    pub servers: Vec<ServerUse>,
    /// The ISP names the test servers saw.
    pub isps: Vec<IspUse>,
    /// Runs whose engine, server or ISP is beyond the first [`MAX_DISTINCT`] listed.
    pub not_listed_runs: NotListed,
    /// The network interface tested: always `null`, it is not recorded.
    pub interface: Option<String>,
    /// Why the interface is `null`.
    pub interface_note: &'static str,
}

/// What the interface field says.
pub(super) const INTERFACE_NOTE: &str = "not recorded: runs do not store the interface they used (a \
     --speedtest-arg=--interface=… flag is not stored either)";

#[derive(Debug, Serialize)]
pub(super) struct EngineUse {
    pub engine: Arc<Engine>,
    pub runs: u64,
}

#[derive(Debug, Serialize)]
pub(super) struct ServerUse {
    pub server: Arc<Server>,
    pub runs: u64,
}

#[derive(Debug, Serialize)]
pub(super) struct IspUse {
    pub isp: Arc<str>,
    pub runs: u64,
}

#[derive(Debug, Default, Serialize)]
pub(super) struct NotListed {
    pub engines: u64,
    pub servers: u64,
    pub isps: u64,
}

/// Counts of up to [`MAX_DISTINCT`] distinct values, in the order first seen.
struct Tally<T> {
    index: HashMap<T, usize>,
    counts: Vec<(T, u64)>,
    not_listed: u64,
}

impl<T: Clone + Eq + Hash> Tally<T> {
    fn new() -> Self {
        Tally {
            index: HashMap::new(),
            counts: Vec::new(),
            not_listed: 0,
        }
    }

    fn add(&mut self, value: &T) {
        if let Some(&at) = self.index.get(value) {
            if let Some((_, count)) = self.counts.get_mut(at) {
                *count += 1;
            }
        } else if self.counts.len() < MAX_DISTINCT {
            self.index.insert(value.clone(), self.counts.len());
            self.counts.push((value.clone(), 1));
        } else {
            self.not_listed += 1;
        }
    }

    /// Most runs first; ties in the order first seen.
    fn finish(mut self) -> (Vec<(T, u64)>, u64) {
        self.counts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        (self.counts, self.not_listed)
    }
}

/// An engine as a hash key: compared by its JSON, since its float parameters are not `Eq`.
#[derive(Clone)]
struct EngineKey(String, Arc<Engine>);

impl PartialEq for EngineKey {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for EngineKey {}

impl Hash for EngineKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

/// What the pack says about the export of its window, and the command that writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct ExportDigest {
    /// The window: `from <= time < to`.
    pub from: Timestamp,
    pub to: Timestamp,
    /// `internet-monitor export --format jsonl --from FROM --to TO`.
    pub command: String,
    /// The SHA-256 of the bytes the command writes, lowercase hex.
    pub sha256: String,
    pub bytes: u64,
    /// Samples exported (one line each).
    pub lines: u64,
}

/// The command whose output the digest is of.
pub(super) fn export_command(from: Timestamp, to: Timestamp) -> String {
    format!("internet-monitor export --format jsonl --from {from} --to {to}")
}

/// A writer that hashes (SHA-256) and counts what it is given.
struct Sha256Writer {
    context: ring::digest::Context,
    bytes: u64,
}

impl io::Write for Sha256Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.context.update(buf);
        self.bytes += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Streams the export of `from..to` through SHA-256, calling `each` with every sample, and
/// returns its digest.
pub(super) fn hash_export(
    store: &Store,
    from: Timestamp,
    to: Timestamp,
    mut each: impl FnMut(&Sample) -> anyhow::Result<()>,
) -> anyhow::Result<ExportDigest> {
    let mut writer = Sha256Writer {
        context: ring::digest::Context::new(&ring::digest::SHA256),
        bytes: 0,
    };
    let mut lines = 0u64;
    store.for_each(from, to, |sample| -> anyhow::Result<()> {
        write_jsonl(&mut writer, &sample)?;
        lines += 1;
        each(&sample)
    })?;
    let digest = writer.context.finish();
    Ok(ExportDigest {
        from,
        to,
        command: export_command(from, to),
        sha256: hex(digest.as_ref()),
        bytes: writer.bytes,
        lines,
    })
}

/// Lowercase hex, as `sha256sum` prints it.
pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

/// What one pass over the window gathers.
pub(super) struct Collected {
    /// The summary of the same samples.
    pub summary: Summary,
    pub runs: Vec<RunRow>,
    pub conditions: Conditions,
    pub peak_hours: PeakHours,
    pub export: ExportDigest,
}

/// Reads the window once: its summary (each run judged against `plans`), rows, conditions,
/// peak-hour figures (`peak`: local start and end hour, and where it comes from) and export
/// digest, so that all of them describe the same samples even while runs are being stored.
/// More than [`MAX_PACK_RUNS`] samples is an error naming the flags that shorten the window.
pub(super) fn collect(
    store: &Store,
    plans: &PlanHistory,
    window: (Timestamp, Timestamp),
    zone: &Zone,
    peak: ((u8, u8), &'static str),
    mut selector: Option<&mut crate::rules::Selector>,
) -> anyhow::Result<Collected> {
    let (from, to) = window;
    let ((start_hour, end_hour), source) = peak;
    let mut summarizer = Summarizer::new(plans.clone());
    let mut runs = Vec::new();
    let mut engines = Tally::new();
    let mut servers = Tally::new();
    let mut isps = Tally::new();
    let mut in_peak = PeriodTally::default();
    let mut off_peak = PeriodTally::default();
    let export = hash_export(store, from, to, |sample| {
        if runs.len() >= MAX_PACK_RUNS {
            anyhow::bail!(
                "the window holds more than {MAX_PACK_RUNS} runs, more than one evidence pack \
                 lists: shorten it with --window or --from/--to"
            );
        }
        runs.push(RunRow::of(sample, zone));
        summarizer.add(sample);
        if let Some(selector) = selector.as_deref_mut() {
            selector.add(sample);
        }
        if sample.outcome == Outcome::Skipped {
            return Ok(());
        }
        if let Some(engine) = &sample.engine {
            let json = serde_json::to_string(engine).unwrap_or_default();
            engines.add(&EngineKey(json, engine.clone()));
        }
        if let Some(server) = &sample.server {
            servers.add(server);
        }
        if let Some(isp) = &sample.isp {
            isps.add(isp);
        }
        let hour = zone.local(sample.time).hour();
        let peak = i8::try_from(start_hour).is_ok_and(|start| hour >= start)
            && i8::try_from(end_hour).map_or(true, |end| hour < end);
        if peak {
            in_peak.add(sample);
        } else {
            off_peak.add(sample);
        }
        Ok(())
    })?;
    let (engines, engines_not_listed) = engines.finish();
    let (servers, servers_not_listed) = servers.finish();
    let (isps, isps_not_listed) = isps.finish();
    Ok(Collected {
        summary: summarizer.finish(from, to),
        runs,
        conditions: Conditions {
            engines: engines
                .into_iter()
                .map(|(EngineKey(_, engine), runs)| EngineUse { engine, runs })
                .collect(),
            servers: servers
                .into_iter()
                .map(|(server, runs)| ServerUse { server, runs })
                .collect(),
            isps: isps
                .into_iter()
                .map(|(isp, runs)| IspUse { isp, runs })
                .collect(),
            not_listed_runs: NotListed {
                engines: engines_not_listed,
                servers: servers_not_listed,
                isps: isps_not_listed,
            },
            interface: None,
            interface_note: INTERFACE_NOTE,
        },
        peak_hours: PeakHours {
            start_hour,
            end_hour,
            source,
            peak: in_peak.finish(),
            off_peak: off_peak.finish(),
        },
        export,
    })
}

/// The machine-readable line an HTML pack carries (inside [`MARKER`] … ` -->`): only
/// timestamps, hex and numbers, so it cannot end the comment early.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Marker {
    pub format: u32,
    pub from: Timestamp,
    pub to: Timestamp,
    pub sha256: String,
    pub bytes: u64,
    pub lines: u64,
}

impl Marker {
    pub(super) fn of(export: &ExportDigest) -> Self {
        Marker {
            format: PACK_FORMAT,
            from: export.from,
            to: export.to,
            sha256: export.sha256.clone(),
            bytes: export.bytes,
            lines: export.lines,
        }
    }

    /// The marker comment, one line.
    pub(super) fn comment(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        format!("{MARKER}{json} -->")
    }
}

/// Why a file is not a pack `--verify` can check.
#[derive(Debug, thiserror::Error, PartialEq)]
pub(super) enum NotAPack {
    #[error(
        "{0} is not an evidence pack written by report --format html or json: it has no {1} \
         (it may be damaged, or another program's file)"
    )]
    Missing(String, &'static str),
    #[error("{0} is an evidence pack of format {1}, which this version does not know")]
    Format(String, u32),
    /// A pack printed to PDF carries no marker a program can read back.
    #[error(
        "{0} is a PDF: a printed pack cannot be checked; verify the HTML (or JSON) file it was \
         printed from (report --verify pack.html), and keep that file with the PDF"
    )]
    Pdf(String),
}

/// How many bytes of an HTML file are searched for the marker (it is on the second line).
pub(super) const MARKER_WITHIN: usize = 16 * 1024;

/// The window and digest a pack states: the HTML marker, or the JSON's `export` key. `name`
/// names the file in errors.
pub(super) fn read_pack(name: &str, mut file: impl io::Read) -> anyhow::Result<Marker> {
    let mut head = Vec::with_capacity(MARKER_WITHIN);
    (&mut file)
        .take(MARKER_WITHIN as u64)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read --verify {name}"))?;
    let first = head.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        /// The keys `--verify` reads of a JSON pack; the rest are skipped unparsed.
        #[derive(Deserialize)]
        struct Keys {
            pack: Option<Format>,
            export: Option<ExportDigest>,
        }
        #[derive(Deserialize)]
        struct Format {
            format: u32,
        }
        let reader = io::Read::chain(io::Cursor::new(head), file);
        let keys: Keys = serde_json::from_reader(io::BufReader::new(reader))
            .map_err(|err| anyhow::anyhow!("{name} is not a JSON evidence pack: {err}"))?;
        let format = keys
            .pack
            .ok_or_else(|| NotAPack::Missing(name.to_owned(), "\"pack\" key"))?
            .format;
        if format != PACK_FORMAT {
            return Err(NotAPack::Format(name.to_owned(), format).into());
        }
        let export = keys
            .export
            .ok_or_else(|| NotAPack::Missing(name.to_owned(), "\"export\" key"))?;
        return checked(name, Marker::of(&export));
    }
    if head.starts_with(b"%PDF-") {
        return Err(NotAPack::Pdf(name.to_owned()).into());
    }
    let text = String::from_utf8_lossy(&head);
    let json = text
        .split_once(MARKER)
        .and_then(|(_, rest)| rest.split_once(" -->"))
        .map(|(json, _)| json)
        .ok_or_else(|| {
            NotAPack::Missing(name.to_owned(), "internet-monitor-evidence-pack comment")
        })?;
    /// Only the format first, so a newer layout is named as such.
    #[derive(Deserialize)]
    struct Format {
        format: u32,
    }
    let format: Format = serde_json::from_str(json)
        .map_err(|err| anyhow::anyhow!("{name}: the evidence pack's marker is damaged: {err}"))?;
    if format.format != PACK_FORMAT {
        return Err(NotAPack::Format(name.to_owned(), format.format).into());
    }
    let marker = serde_json::from_str(json)
        .map_err(|err| anyhow::anyhow!("{name}: the evidence pack's marker is damaged: {err}"))?;
    checked(name, marker)
}

/// `marker` if it is one `report` could have written: a window with `from` before `to` (an
/// empty or reversed one would "match" any database) and a SHA-256 of 64 lowercase hex digits
/// (it is printed, so no escape sequence reaches the terminal).
fn checked(name: &str, marker: Marker) -> anyhow::Result<Marker> {
    if marker.from >= marker.to {
        anyhow::bail!(
            "{name}: the evidence pack's marker is damaged: its window (from {} to {}) is empty",
            marker.from,
            marker.to
        );
    }
    let hex = marker.sha256.len() == 64
        && marker
            .sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex {
        anyhow::bail!(
            "{name}: the evidence pack's marker is damaged: its sha256 is not 64 hexadecimal digits"
        );
    }
    Ok(marker)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> ExportDigest {
        let from = Timestamp::from_millis(1_795_478_400_000);
        let to = Timestamp::from_millis(1_795_564_800_000);
        ExportDigest {
            from,
            to,
            command: export_command(from, to),
            sha256: hex(&[0xab; 32]),
            bytes: 1234,
            lines: 5,
        }
    }

    #[test]
    fn the_marker_reads_back_from_html_and_json() {
        let export = digest();
        let html = format!(
            "<!DOCTYPE html>\n{}\n<html>…</html>\n",
            Marker::of(&export).comment()
        );
        let comment = Marker::of(&export).comment();
        let json = comment[MARKER.len()..].strip_suffix(" -->").unwrap();
        assert!(!json.contains("--") && !json.contains('>'), "{json}");
        let read = read_pack("p.html", html.as_bytes()).unwrap();
        assert_eq!(read, Marker::of(&export));
        let json = serde_json::json!({"window": {}, "pack": {"format": 1}, "export": export});
        let read = read_pack("p.json", json.to_string().as_bytes()).unwrap();
        assert_eq!(read, Marker::of(&export));
    }

    #[test]
    fn a_file_that_is_no_pack_is_named_as_such() {
        let err = read_pack("notes.txt", "hello".as_bytes()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("notes.txt is not an evidence pack"),
            "{err}"
        );
        let err = read_pack("x.json", br#"{"a": 1}"#.as_slice()).unwrap_err();
        assert!(err.to_string().contains("no \"pack\" key"), "{err}");
        let newer = format!("{MARKER}{{\"format\":2}} -->");
        let err = read_pack("new.html", newer.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("format 2"), "{err}");
    }

    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(hex(&[0, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }
}
