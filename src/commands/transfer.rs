//! `export` and `import`: samples out to JSON lines or CSV, and JSON lines back in.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};

use super::write_stdout;
use crate::cli::{ExportArgs, ExportFormat, ImportArgs};
use crate::csv;
use crate::sample::{Engine, Limits, Sample};
use crate::store::{Imported, Store};
use crate::time::Timestamp;

/// How far after the clock an imported sample may be dated: another machine's clock may be a
/// little ahead, but a sample from next week is a wrong clock's, and would pose as the latest.
const IMPORT_AHEAD: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

pub(super) fn export(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let now = Timestamp::now();
    let from = args.from.map_or(Timestamp::EPOCH, |t| t.resolve(now));
    let to = args.to.map_or(Timestamp::MAX, |t| t.resolve(now));
    // Without --to every sample from --from on is printed (an imported one may be dated a
    // little after now), but a --from not before now is refused, as /api/v1/samples does.
    let from_said = if args.from.is_some() {
        ""
    } else {
        ", the epoch: --from not given"
    };
    match args.to {
        Some(_) if from >= to => {
            bail!("--from ({from}{from_said}) must be before --to ({to})")
        }
        None if from >= now => {
            bail!("--from ({from}{from_said}) must be before --to ({now}, now: --to not given)")
        }
        _ => {}
    }
    if !args.labels.is_empty() && args.format != ExportFormat::Openmetrics {
        bail!("--label only applies to --format openmetrics");
    }
    // A point cannot carry a label twice: promtool would refuse the whole file, far from here.
    for (index, (name, _)) in args.labels.iter().enumerate() {
        if args.labels[..index]
            .iter()
            .any(|(earlier, _)| earlier == name)
        {
            bail!(
                "--label {name:?} is given twice: give each label name once (e.g. --label \
                 job=internet-monitor)"
            );
        }
    }
    let store = Store::open_read_only(&args.store.db)?;
    if args.format == ExportFormat::Openmetrics {
        let labels = crate::openmetrics::labels(&args.labels);
        write_stdout(|out| crate::openmetrics::write(&store, from, to, &labels, out))?;
        return Ok(ExitCode::SUCCESS);
    }
    write_stdout(|out| {
        if args.format == ExportFormat::Csv {
            out.write_all(csv::header_line().as_bytes())?;
        }
        // Any error, the store's or stdout's, goes back to write_stdout (which forgives a
        // closed pipe, however the serializer wrapped it).
        store.for_each(from, to, |sample| -> anyhow::Result<()> {
            match args.format {
                ExportFormat::Jsonl => write_jsonl(&mut *out, &sample)?,
                ExportFormat::Csv => out.write_all(csv::row_line(&sample).as_bytes())?,
                ExportFormat::Openmetrics => {}
            }
            Ok(())
        })
    })?;
    if to == Timestamp::MAX {
        let unrepresentable = store.unrepresentable()?;
        if unrepresentable > 0 {
            crate::logging::say(format_args!(
                "internet-monitor: warning: {unrepresentable} samples in {} are keyed at or after {}, the end of the times this version handles (an older version stored them, or the file is damaged); they were not exported",
                store.path().display(),
                Timestamp::MAX
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of `export --format jsonl`: the sample as one JSON object and a newline. The
/// evidence pack hashes exactly these bytes (`report --format html`, `report --verify`).
pub(crate) fn write_jsonl(out: &mut dyn io::Write, sample: &Sample) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, sample)?;
    writeln!(out)?;
    Ok(())
}

pub(super) fn import(args: &ImportArgs) -> anyhow::Result<ExitCode> {
    #[cfg(feature = "original")]
    if args.from_original {
        return crate::original::import(args, Timestamp::now().saturating_add(IMPORT_AHEAD));
    }
    let from_stdin = args.file.as_os_str() == "-";
    let name = if from_stdin {
        "standard input".to_owned()
    } else {
        args.file.display().to_string()
    };
    let mut input: Box<dyn BufRead> = if from_stdin {
        Box::new(io::stdin().lock())
    } else {
        let file = File::open(&args.file).with_context(|| format!("cannot read {name}"))?;
        Box::new(BufReader::new(file))
    };
    // The first bytes and line say what the file is: anything but JSON lines is refused
    // before the store is opened (or created).
    let first = read_head(&mut input).with_context(|| format!("cannot read {name}"))?;
    let first = match first.strip_prefix(UTF8_BOM) {
        Some(rest) => rest.to_vec(),
        None => first,
    };
    if let Some(what) = not_json_lines(&first) {
        bail!(
            "nothing was imported: {name} looks like {what}; import reads JSON lines, one sample \
             per line, as `export --format jsonl` writes them"
        );
    }
    let input = io::Cursor::new(first).chain(input);
    let mut store =
        super::Created::open_stopped_by_signals(&args.store.db, |db| Ok(Store::open(db)?))?;
    let latest_allowed = Timestamp::now().saturating_add(IMPORT_AHEAD);
    let limits = Limits {
        max_bytes_per_second: args.max_bandwidth.bytes_per_second(),
    };
    let read = Cell::new(0u64);
    // The line of the sample the store is looking at: it takes one at a time.
    let current = Cell::new(0usize);
    let samples = BoundedLines(input).enumerate().filter_map(|(index, line)| {
        let number = index + 1;
        let sample = line
            .map_err(|err| anyhow!("{name} line {number}: {err}"))
            .and_then(|line| {
                parse_line(&line, latest_allowed, &limits)
                    .map_err(|err| anyhow!("{name} line {number}: {err}"))
            });
        match sample {
            Ok(None) => None,
            Ok(Some(sample)) => {
                read.set(read.get() + 1);
                current.set(number);
                Some(Ok(sample))
            }
            Err(err) => Some(Err(err.context("nothing was imported"))),
        }
    });
    let mut repeats = Vec::new();
    let imported = store.import_noting(samples, |sample| {
        if repeats.len() < REPEATS_NAMED {
            repeats.push(format!("line {} ({})", current.get(), sample.time));
        }
    })?;
    store.keep();
    for line in summary(&name, &imported, &repeats) {
        crate::logging::say(format_args!("{line}"));
    }
    Ok(ExitCode::SUCCESS)
}

/// How many lines repeating an earlier line's time the summary names.
const REPEATS_NAMED: usize = 5;

/// The summary of `import` from `name`: what was stored, what was there before, and the lines
/// left out because an earlier line of the file has their time to the millisecond (the first
/// [`REPEATS_NAMED`] of them, `line N (time)`, in `repeats`).
fn summary(name: &str, imported: &Imported, repeats: &[String]) -> Vec<String> {
    let Imported {
        added,
        already_stored,
        repeated,
    } = *imported;
    if repeated == 0 {
        return vec![format!(
            "imported {added} new samples from {name} ({already_stored} already stored)"
        )];
    }
    let mut listed = repeats.join(", ");
    let more = repeated.saturating_sub(repeats.len() as u64);
    if more > 0 {
        listed = format!("{listed} and {more} more");
    }
    let lines = if repeated == 1 { "line" } else { "lines" };
    vec![
        format!(
            "imported {added} new samples from {name} ({already_stored} already stored, \
             {repeated} {lines} at the time of an earlier line)"
        ),
        format!(
            "{repeated} {lines} of {name} not stored: each has the time of an earlier line of the \
             file, to the millisecond (times are stored to the millisecond; the earlier line is \
             kept): {listed}"
        ),
    ]
}

/// The longest line import reads, newline excluded: a sample's JSON line is at most a few
/// tens of KB (its texts are bounded, see [`Sample::validate`]), so a longer one is no sample,
/// and reading it whole (`/dev/zero`, a file without newlines) would hold all of it in memory.
const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// What [`BoundedLines`] reads of a line at the most: one byte more than [`MAX_LINE_BYTES`],
/// so that a line that long is told from one just within.
const LINE_READ_LIMIT: u64 = MAX_LINE_BYTES as u64 + 1;

/// The lines of a reader, as [`BufRead::lines`] gives them (without `\n` or `\r\n`), except
/// that one longer than [`MAX_LINE_BYTES`] is an error once that much of it has been read.
struct BoundedLines<R>(R);

impl<R: BufRead> Iterator for BoundedLines<R> {
    type Item = io::Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut line = Vec::new();
        match (&mut self.0)
            .take(LINE_READ_LIMIT)
            .read_until(b'\n', &mut line)
        {
            Ok(0) => return None,
            Ok(_) => {}
            Err(err) => return Some(Err(err)),
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        } else if line.len() > MAX_LINE_BYTES {
            return Some(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "longer than {} MiB without a newline: not a sample (a JSON line is a few KB)",
                    MAX_LINE_BYTES >> 20
                ),
            )));
        }
        Some(String::from_utf8(line).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            )
        }))
    }
}

/// The UTF-8 byte-order mark some editors put before a file's text; skipped.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// How much of the first line is read to tell what the file is (a JSON line is rarely more
/// than 2 KB; a longer one is read on as JSON).
const FIRST_LINE_BYTES: u64 = 64 * 1024;

/// redb's magic number, the start of a database file of this program: a newline is among its
/// bytes, so a first line ending there is read on to its end.
const REDB_MAGIC: &[u8] = &crate::store::REDB_MAGIC;

/// The start of `input`: its first line (at most [`FIRST_LINE_BYTES`]), and when that is the
/// beginning of [`REDB_MAGIC`], the rest of it. Reads no further than a line, so an import
/// from a pipe goes on as soon as its first line has come.
fn read_head(input: &mut dyn BufRead) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    input.take(FIRST_LINE_BYTES).read_until(b'\n', &mut head)?;
    if head.len() < REDB_MAGIC.len() && head.ends_with(b"\n") && REDB_MAGIC.starts_with(&head) {
        let rest = REDB_MAGIC.len() - head.len();
        input.take(rest as u64).read_to_end(&mut head)?;
    }
    Ok(head)
}

/// What a file whose start is `head` (without a byte-order mark; its first line, and redb's
/// magic number whole, [`read_head`]) looks like when it is not JSON lines: said in the error, with what to
/// do instead. `None` when it may be JSON lines (an object, or a blank line, which import
/// skips).
fn not_json_lines(head: &[u8]) -> Option<&'static str> {
    let line = head
        .iter()
        .position(|b| *b == b'\n')
        .map_or(head, |end| &head[..=end]);
    if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
        return Some("UTF-16 text (it starts with a UTF-16 byte-order mark): save it as UTF-8");
    }
    // Files by their first bytes (magic numbers).
    if head.starts_with(crate::store::SQLITE_MAGIC) {
        return Some(
            "an SQLite database, not samples; the original Python/Flask app's database \
             (internet-monitor.db) is read with `import --from-original FILE --timezone ZONE`",
        );
    }
    if head.starts_with(REDB_MAGIC) {
        return Some(
            "a database file of this program, not samples; use it as --db as it is, or move \
             its samples with `internet-monitor export --db FILE | internet-monitor import -`",
        );
    }
    let packed: [(&[u8], &'static str); 5] = [
        (
            b"\x1F\x8B",
            "compressed with gzip: decompress it first (`zcat FILE | internet-monitor import -`)",
        ),
        (
            b"\x28\xB5\x2F\xFD",
            "compressed with zstd: decompress it first (`zstdcat FILE | internet-monitor import -`)",
        ),
        (
            b"\xFD7zXZ\0",
            "compressed with xz: decompress it first (`xzcat FILE | internet-monitor import -`)",
        ),
        (
            b"BZh",
            "compressed with bzip2: decompress it first (`bzcat FILE | internet-monitor import -`)",
        ),
        (
            b"PK\x03\x04",
            "a zip archive: take the file out first (`unzip -p FILE | internet-monitor import -`)",
        ),
    ];
    if let Some((_, what)) = packed.iter().find(|(bytes, _)| head.starts_with(bytes)) {
        return Some(what);
    }
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    let csv_header = csv::header_line();
    Some(match text.bytes().next()? {
        b'{' if text.starts_with("{\"samples\":[") => {
            "a page of /api/v1/samples; write its samples one per line instead (`jq -c \
             '.samples[]' FILE` does it)"
        }
        b'{' => return None,
        _ if text == csv_header.trim() => {
            "CSV as `export --format csv` writes it (its first line is that header row); CSV is \
             for spreadsheets and does not come back exactly (text a spreadsheet would run as a \
             formula is changed), so export the samples again with --format jsonl"
        }
        b'#' => {
            "OpenMetrics text (`export --format openmetrics`, for Prometheus), not samples; \
             export them again with --format jsonl"
        }
        b'[' => "a JSON array; write one sample per line instead (`jq -c '.[]' FILE` does it)",
        _ if text.contains(',') || text.contains(';') || text.contains('\t') => {
            "CSV or other delimited text (its first line is not a JSON object); export the \
             samples again with --format jsonl"
        }
        _ => return None,
    })
}

/// Whether a line that parsed as a sample has an `engine` key (`null` included): a line
/// without one was exported before samples recorded their engine.
fn states_engine(line: &str) -> bool {
    use serde::Deserialize;
    /// The line's keys, of which only `engine` is looked at (values are skipped unparsed).
    #[derive(serde::Deserialize)]
    struct Keys {
        #[serde(default, deserialize_with = "present")]
        engine: bool,
    }
    fn present<'de, D: serde::Deserializer<'de>>(value: D) -> Result<bool, D::Error> {
        serde::de::IgnoredAny::deserialize(value).map(|_| true)
    }
    serde_json::from_str::<Keys>(line).is_ok_and(|keys| keys.engine)
}

/// One line of `export --format jsonl`; blank lines are allowed and skipped. A line without
/// an `engine` key (an older version's export) was measured with `ookla` unless skipped, as
/// the store reads such samples ([`Engine::before_engines`]); `"engine": null` stays `None`. A sample must
/// pass the plausibility rules a test's result passes before it is stored, and one dated after
/// `latest_allowed` (a day past the clock) is refused.
fn parse_line(
    line: &str,
    latest_allowed: Timestamp,
    limits: &Limits,
) -> anyhow::Result<Option<Sample>> {
    // A byte-order mark starts a line too when files were joined (`cat a.jsonl b.jsonl`) and
    // one of them came from an editor that writes it.
    let line = line.strip_prefix('\u{FEFF}').unwrap_or(line);
    if line.trim().is_empty() {
        return Ok(None);
    }
    // serde_json counts lines within what it was given, always one here: name the column only.
    let mut sample: Sample = serde_json::from_str(line).map_err(|err| {
        let said = err.to_string();
        let place = format!(" at line {} column {}", err.line(), err.column());
        // Not JSON at all: say what is read, not only where the parser gave up.
        let hint = match err.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                " (import reads JSON lines, one sample per line, as `export --format jsonl` \
                 writes them)"
            }
            _ => "",
        };
        anyhow!(
            "{} at column {}{hint}",
            said.strip_suffix(&place).unwrap_or(&said),
            err.column()
        )
    })?;
    if sample.engine.is_none() && !states_engine(line) {
        sample.engine = Engine::before_engines(sample.outcome);
    }
    sample.validate()?;
    let sample = sample.visible();
    if sample.time > latest_allowed {
        bail!(
            "the sample's time {} is more than a day after the clock ({latest_allowed} at most): a wrong clock wrote it, or this machine's clock is behind; correct the time or the clock and import again",
            sample.time
        );
    }
    sample
        .check_plausible(limits)
        .map_err(|implausible| anyhow!("implausible sample: {implausible}"))?;
    Ok(Some(sample))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{EngineName, Outcome};

    const LIMITS: Limits = Limits {
        max_bytes_per_second: 1.25e9,
    };

    fn parse(line: &str) -> anyhow::Result<Option<Sample>> {
        parse_line(line, Timestamp::MAX, &LIMITS)
    }

    const FAILURE: &str = r#""time":"2026-11-01T00:00:00.000Z","outcome":"failure","reason":"timeout","message":"x","trigger":"manual","duration_seconds":null,"download_bytes_per_second":null,"upload_bytes_per_second":null,"ping_seconds":null,"jitter_seconds":null,"packet_loss_ratio":null,"download_latency_seconds":null,"upload_latency_seconds":null,"downloaded_bytes":null,"uploaded_bytes":null,"server":null,"isp":null,"result_url":null"#;

    #[test]
    fn what_is_not_json_lines_is_named() {
        let looks = |text: &str| not_json_lines(text.as_bytes());
        assert_eq!(looks(""), None, "empty: nothing to import");
        assert_eq!(looks("\n"), None);
        assert_eq!(looks(&format!("{{{FAILURE}}}\n")), None);
        assert!(
            looks(&csv::header_line())
                .unwrap()
                .starts_with("CSV as `export")
        );
        assert!(looks("a;b;c\n").unwrap().starts_with("CSV or other"));
        assert!(looks("# HELP x y\n").unwrap().starts_with("OpenMetrics"));
        assert!(looks("[{}]").unwrap().starts_with("a JSON array"));
        assert!(
            looks("{\"samples\":[],\"next_cursor\":null}")
                .unwrap()
                .starts_with("a page of /api/v1/samples")
        );
        assert!(
            not_json_lines(b"\xFF\xFE{\x00")
                .unwrap()
                .starts_with("UTF-16")
        );
        for (start, what) in [
            (
                &b"SQLite format 3\0\x10\0"[..],
                "an SQLite database, not samples; the original",
            ),
            (
                b"redb\x1A\x0A\xA9\x0D\x0A\x05",
                "a database file of this program",
            ),
            (
                b"\x1F\x8B\x08\x08",
                "compressed with gzip: decompress it first",
            ),
            (b"\x28\xB5\x2F\xFD\x04", "compressed with zstd"),
            (b"\xFD7zXZ\0\0", "compressed with xz"),
            (b"BZh91AY", "compressed with bzip2"),
            (b"PK\x03\x04\x14", "a zip archive"),
        ] {
            let said = not_json_lines(start).unwrap_or_default();
            assert!(said.starts_with(what), "{start:?}: {said}");
        }
        assert_eq!(looks("garbage"), None, "left to the JSON error");
        let joined = format!("\u{FEFF}{{{FAILURE}}}");
        assert_eq!(
            parse(&joined).unwrap(),
            parse(&format!("{{{FAILURE}}}")).unwrap()
        );
        let said = parse("garbage").unwrap_err().to_string();
        assert_eq!(
            said,
            "expected value at column 1 (import reads JSON lines, one sample per line, as \
             `export --format jsonl` writes them)"
        );
    }

    /// A file is told by its first bytes even when a newline comes among them (redb's magic
    /// number has one in its sixth byte): a real database file of this program is named as
    /// such, not as line 1's JSON error.
    #[test]
    fn a_database_file_of_this_program_is_named_from_its_first_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samples.redb");
        drop(Store::open(&path).unwrap());
        let mut file = BufReader::new(File::open(&path).unwrap());
        let head = read_head(&mut file).unwrap();
        let said = not_json_lines(&head).unwrap_or_default();
        assert!(
            said.starts_with("a database file of this program"),
            "{head:?}: {said}"
        );
        // Otherwise the head is the first line.
        let line = format!("{{{FAILURE}}}\n{{}}\n");
        let head = read_head(&mut io::Cursor::new(line.as_bytes())).unwrap();
        assert_eq!(head, format!("{{{FAILURE}}}\n").as_bytes());
        let head = read_head(&mut io::Cursor::new(&b"{}\n"[..])).unwrap();
        assert_eq!(head, b"{}\n");
        // A blank first line leaves the file to the JSON reader, whatever follows it.
        let head = read_head(&mut io::Cursor::new(&b"\n{\"a\": 1}\n"[..])).unwrap();
        assert_eq!(not_json_lines(&head), None);
    }

    #[test]
    fn a_line_without_engine_was_measured_by_ookla_unless_skipped() {
        let old = parse(&format!("{{{FAILURE}}}")).unwrap().unwrap();
        assert_eq!(old.engine.as_deref(), Some(&Engine::ookla()));
        let skipped = FAILURE.replace(
            r#""outcome":"failure","reason":"timeout","message":"x","trigger":"manual""#,
            r#""outcome":"skipped","reason":"data_budget","message":"x","trigger":"schedule""#,
        );
        let skipped = parse(&format!("{{{skipped}}}")).unwrap().unwrap();
        assert_eq!(skipped.outcome, Outcome::Skipped);
        assert_eq!(skipped.engine, None);
    }

    #[test]
    fn an_explicit_engine_or_null_is_kept() {
        let none = parse(&format!(r#"{{{FAILURE},"engine":null}}"#))
            .unwrap()
            .unwrap();
        assert_eq!(none.engine, None);
        let http = parse(&format!(
            r#"{{{FAILURE},"engine":{{"name":"http","protocol":"librespeed","url":"http://10.0.0.2:8080","streams":1,"duration_seconds":10,"ramp_up_seconds":2}}}}"#
        ))
        .unwrap()
        .unwrap();
        assert_eq!(http.engine.map(|e| e.name), Some(EngineName::Http));
    }

    #[test]
    fn an_engine_on_a_skipped_line_is_refused() {
        let skipped = FAILURE.replace(
            r#""outcome":"failure","reason":"timeout","message":"x","trigger":"manual""#,
            r#""outcome":"skipped","reason":"data_budget","message":"x","trigger":"schedule""#,
        );
        let err = parse(&format!(r#"{{{skipped},"engine":{{"name":"ookla"}}}}"#)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a skipped sample must not have an engine: no engine ran, nothing was measured"
        );
    }
}
