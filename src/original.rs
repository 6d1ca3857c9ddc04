//! `import --from-original`: the history of the Python/Flask internet-monitor this program
//! replaces, read from that app's SQLite database and stored as successful samples.
//!
//! The original made its one table with SQLAlchemy (`Float` and `DateTime` columns):
//!
//! ```sql
//! CREATE TABLE results (
//!     id INTEGER NOT NULL,
//!     download FLOAT NOT NULL,
//!     upload FLOAT NOT NULL,
//!     ping FLOAT NOT NULL,
//!     timestamp DATETIME NOT NULL,
//!     PRIMARY KEY (id)
//! )
//! ```
//!
//! Every 30 minutes it ran the Ookla Speedtest CLI and, when the test succeeded, added a row:
//! `download` and `upload` the CLI's `bandwidth` in bytes per second, `ping` its `ping.latency`
//! in milliseconds, `timestamp` Python's `datetime.now()`, a naive local time that SQLAlchemy
//! writes as text (`2022-02-25 11:43:08.759391`). A failed test left no row; the server, the
//! ISP, jitter and the bytes moved were never kept.
//!
//! [`parse_local_time`] and [`convert`] are pure: a row's values, in whatever storage class
//! SQLite holds them, to a sample or the reason the row is skipped. [`import`] does the I/O: it
//! opens the file read-only, makes sure it is the original's before the destination store is
//! opened (or created), and streams the rows into [`Store::import`], which skips the times
//! already stored, so importing twice adds nothing.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use jiff::civil;
use jiff::tz::{AmbiguousOffset, TimeZone};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::cli::ImportArgs;
use crate::sample::{Engine, Implausible, Limits, Outcome, Sample, Trigger};
use crate::store::Store;
use crate::time::Timestamp;
use crate::zone::Zone;

/// The columns of the original's `results` table that are read, in the order of [`Row`].
pub(crate) const COLUMNS: [&str; 5] = ["id", "download", "upload", "ping", "timestamp"];

/// How many rows of each kind (skipped, at a time that occurred twice, at a time that never
/// occurred) the summary names one by one; it counts the rest.
pub(crate) const NAMED: usize = 10;

/// The most bytes of a value a message quotes.
const QUOTED_BYTES: usize = 40;

/// One row of the original's `results` table, each value in the storage class SQLite holds it
/// in: a column's declared type is only a preference, so any value may be NULL, an integer, a
/// real, text or a blob.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Row<'a> {
    /// The row's `id` (an integer in the original's table), only to name it in messages.
    pub(crate) id: ValueRef<'a>,
    /// Bytes per second.
    pub(crate) download: ValueRef<'a>,
    /// Bytes per second.
    pub(crate) upload: ValueRef<'a>,
    /// Milliseconds.
    pub(crate) ping: ValueRef<'a>,
    /// A naive local time as text, see [`parse_local_time`].
    pub(crate) timestamp: ValueRef<'a>,
}

/// Why a row is not imported; the row is skipped, counted and named in the summary.
#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum RowError {
    /// The original's columns are `NOT NULL`: another program wrote this row.
    #[error("{0} is empty (NULL)")]
    Null(&'static str),
    #[error("{column} is {value}, not a number")]
    NotANumber {
        column: &'static str,
        /// The value described, e.g. `the text "fast"`.
        value: String,
    },
    #[error("timestamp is {0}, not a time like 2022-02-25 11:43:08.759391")]
    NotATime(String),
    #[error(
        "timestamp {0} is outside the times this program stores ({min} to {max})",
        min = Timestamp::EPOCH,
        max = Timestamp::MAX
    )]
    OutOfRange(civil::DateTime),
    #[error(
        "timestamp {local} is {time}, more than a day after this machine's clock: a wrong clock wrote it, or this clock is behind"
    )]
    Ahead {
        local: civil::DateTime,
        time: Timestamp,
    },
    #[error("implausible: {0}")]
    Implausible(Implausible),
}

/// How a row's local time became an instant, in the zone of `--timezone`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fit {
    /// The local time occurred once.
    Exact,
    /// The local time occurred twice (the clocks went back, in autumn): the earlier of the two
    /// instants was taken.
    Fold,
    /// The local time occurred twice, and the row before it (by `id`) was dated between the
    /// two instants: the original wrote it in the repeated hour, the later instant was taken.
    FoldLater,
    /// The local time never occurred (the clocks went forward, in spring): it was moved
    /// forward by the length of the gap, the offset before the change applied.
    Gap,
}

/// A row made a sample.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Converted {
    pub(crate) sample: Sample,
    /// The row's time as the original stored it.
    pub(crate) local: civil::DateTime,
    pub(crate) fit: Fit,
}

/// Reads the original's timestamp text: `YYYY-MM-DD HH:MM:SS`, a space or `T` between date and
/// time, and an optional fraction of a second of 1 to 9 digits after a `.` (SQLAlchemy writes
/// 6, SQLite's own `datetime()` none). Nothing else: no offset (the original's times have
/// none), no surrounding space. `None` for anything else, an impossible date (`02-30`) or time
/// (`24:00:00`, a leap second) included.
pub(crate) fn parse_local_time(text: &str) -> Option<civil::DateTime> {
    let bytes = text.as_bytes();
    let (main, fraction) = bytes.split_at_checked(19)?;
    let number = |from: usize, to: usize| -> Option<i32> {
        main[from..to].iter().try_fold(0i32, |n, &digit| {
            digit
                .is_ascii_digit()
                .then(|| n * 10 + i32::from(digit - b'0'))
        })
    };
    let punctuated = main[4] == b'-'
        && main[7] == b'-'
        && matches!(main[10], b' ' | b'T')
        && main[13] == b':'
        && main[16] == b':';
    if !punctuated {
        return None;
    }
    let nanosecond = match fraction {
        [] => 0,
        [b'.', digits @ ..]
            if (1..=9).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) =>
        {
            let mut nanos = digits
                .iter()
                .fold(0i32, |n, &digit| n * 10 + i32::from(digit - b'0'));
            for _ in digits.len()..9 {
                nanos *= 10;
            }
            nanos
        }
        _ => return None,
    };
    civil::DateTime::new(
        i16::try_from(number(0, 4)?).ok()?,
        i8::try_from(number(5, 7)?).ok()?,
        i8::try_from(number(8, 10)?).ok()?,
        i8::try_from(number(11, 13)?).ok()?,
        i8::try_from(number(14, 16)?).ok()?,
        i8::try_from(number(17, 19)?).ok()?,
        nanosecond,
    )
    .ok()
}

/// A value for a message: `NULL`, `the integer 7`, `the number 1.5`, `the text "fast"` (at most
/// [`QUOTED_BYTES`], escaped so that it cannot break the line), `a blob of 16 bytes`.
pub(crate) fn describe(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => "NULL".to_owned(),
        ValueRef::Integer(n) => format!("the integer {n}"),
        ValueRef::Real(x) => format!("the number {x}"),
        ValueRef::Text(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            let clipped = crate::logging::clip(&text, QUOTED_BYTES);
            let more = if clipped.len() < text.len() {
                "…"
            } else {
                ""
            };
            format!("the text {clipped:?}{more}")
        }
        ValueRef::Blob(bytes) => format!("a blob of {} bytes", bytes.len()),
    }
}

/// A figure: a real or an integer as it is, text when all of it reads as a number (a table
/// made without column types keeps numbers as the text it was given); NULL and anything else
/// are refused. Whether the number is plausible is [`Sample::check_plausible`]'s to say.
fn number(column: &'static str, value: ValueRef<'_>) -> Result<f64, RowError> {
    let not_a_number = || RowError::NotANumber {
        column,
        value: describe(value),
    };
    match value {
        ValueRef::Null => Err(RowError::Null(column)),
        // i64 to f64 rounds beyond 2^53 B/s, far above any plausible speed.
        #[allow(clippy::cast_precision_loss)]
        ValueRef::Integer(n) => Ok(n as f64),
        ValueRef::Real(x) => Ok(x),
        ValueRef::Text(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse::<f64>().ok())
            .ok_or_else(not_a_number),
        ValueRef::Blob(_) => Err(not_a_number()),
    }
}

/// Milliseconds as seconds, the nearest to the decimal shown for the milliseconds: a ping of
/// 14.799 ms is stored as 0.014799 s (dividing by 1000 can land an ulp away, 0.014799000000000001),
/// so `/latest` and exports show what the original showed.
fn seconds_from_millis(millis: f64) -> f64 {
    format!("{millis}e-3").parse().unwrap_or(millis / 1000.0)
}

/// What one row of the original's table is here: a successful scheduled run of the Ookla CLI
/// (the original's only engine) at the row's local time in `zone`, with its download, upload
/// and ping and nothing else. Refused as a test's result would be when implausible (`limits`),
/// and when dated after `latest_allowed` (a day past the clock, as for `import` of JSON lines).
pub(crate) fn convert(
    row: &Row<'_>,
    zone: &TimeZone,
    limits: &Limits,
    latest_allowed: Timestamp,
    previous: Option<Timestamp>,
) -> Result<Converted, RowError> {
    let local = match row.timestamp {
        ValueRef::Null => return Err(RowError::Null("timestamp")),
        ValueRef::Text(bytes) => std::str::from_utf8(bytes).ok().and_then(parse_local_time),
        _ => None,
    }
    .ok_or_else(|| RowError::NotATime(describe(row.timestamp)))?;
    let download = number("download", row.download)?;
    let upload = number("upload", row.upload)?;
    let ping = number("ping", row.ping)?;
    let ambiguous = zone.to_ambiguous_timestamp(local);
    let instant = |time: Result<jiff::Timestamp, jiff::Error>| {
        time.ok()
            .and_then(Timestamp::from_jiff)
            .ok_or(RowError::OutOfRange(local))
    };
    let (time, fit) = match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { .. } => (instant(ambiguous.compatible())?, Fit::Exact),
        AmbiguousOffset::Gap { .. } => (instant(ambiguous.compatible())?, Fit::Gap),
        AmbiguousOffset::Fold { .. } => {
            // The original wrote its rows in time order: when the row before is dated between
            // the two instants, this one was written in the repeated hour, after it.
            let earlier = instant(ambiguous.earlier())?;
            let later = instant(ambiguous.later())?;
            if previous.is_some_and(|previous| earlier <= previous && previous < later) {
                (later, Fit::FoldLater)
            } else {
                (earlier, Fit::Fold)
            }
        }
    };
    if time > latest_allowed {
        return Err(RowError::Ahead { local, time });
    }
    let sample = Sample {
        download_bytes_per_second: Some(download),
        upload_bytes_per_second: Some(upload),
        ping_seconds: Some(seconds_from_millis(ping)),
        engine: Engine::before_engines(Outcome::Success),
        ..Sample::empty(time, Trigger::Schedule)
    };
    sample
        .check_plausible(limits)
        .map_err(RowError::Implausible)?;
    Ok(Converted { sample, local, fit })
}

/// The rows of one import, counted for its summary.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Rows read from the table.
    pub(crate) read: u64,
    /// Rows skipped, and the first [`NAMED`] of them with the reason.
    pub(crate) skipped: u64,
    pub(crate) skips: Vec<(String, RowError)>,
    /// Rows at a local time that occurred twice, and the first [`NAMED`] of them.
    pub(crate) folds: u64,
    pub(crate) fold_rows: Vec<String>,
    /// Rows at a local time that never occurred, and the first [`NAMED`] of them.
    pub(crate) gaps: u64,
    pub(crate) gap_rows: Vec<String>,
    /// Rows made samples but not stored because an earlier row of the file has their time (to
    /// the millisecond), and the first [`NAMED`] of them (`id 7 → time`).
    pub(crate) repeated: u64,
    pub(crate) repeat_rows: Vec<String>,
    /// The earliest and latest time of the rows made samples.
    pub(crate) first: Option<Timestamp>,
    pub(crate) last: Option<Timestamp>,
}

impl Tally {
    /// Counts the row named `label` (see [`label`]) and what became of it.
    pub(crate) fn add(&mut self, label: String, result: &Result<Converted, RowError>) {
        self.read += 1;
        match result {
            Err(err) => {
                self.skipped += 1;
                if self.skips.len() < NAMED {
                    self.skips.push((label, clone_error(err)));
                }
            }
            Ok(converted) => {
                let time = converted.sample.time;
                self.first = Some(self.first.map_or(time, |first| first.min(time)));
                self.last = Some(self.last.map_or(time, |last| last.max(time)));
                let (count, rows) = match converted.fit {
                    Fit::Exact => return,
                    Fit::Fold | Fit::FoldLater => (&mut self.folds, &mut self.fold_rows),
                    Fit::Gap => (&mut self.gaps, &mut self.gap_rows),
                };
                *count += 1;
                if rows.len() < NAMED {
                    let which = match converted.fit {
                        Fit::Fold => " (the earlier)",
                        Fit::FoldLater => " (the later)",
                        Fit::Exact | Fit::Gap => "",
                    };
                    rows.push(format!("{label} {} → {time}{which}", converted.local));
                }
            }
        }
    }

    /// The summary, one line each: how many rows were read, imported, already stored and
    /// skipped, from which file and in which zone (`zone_given`: by `--timezone`, else the
    /// machine's); the time range; the rows at a local time that occurred twice or never; each
    /// skipped row named with its reason (the first [`NAMED`], then how many more).
    pub(crate) fn lines(
        &self,
        added: u64,
        path: &Path,
        zone: &Zone,
        zone_given: bool,
    ) -> Vec<String> {
        let made = self.read - self.skipped;
        let already = made.saturating_sub(added).saturating_sub(self.repeated);
        let zone_source = if zone_given {
            "--timezone"
        } else {
            "this machine's zone; --timezone names another"
        };
        let repeated = if self.repeated > 0 {
            format!(", {} at the time of an earlier row", self.repeated)
        } else {
            String::new()
        };
        let mut lines = vec![format!(
            "imported {added} new samples from the original app's database {} ({} read, {already} already stored{repeated}, {} skipped), its local times read in {zone} ({zone_source})",
            path.display(),
            rows(self.read),
            self.skipped
        )];
        if let (Some(first), Some(last)) = (self.first, self.last) {
            lines.push(format!("the rows run from {first} to {last}"));
        }
        let listed = |rows: &[String], count: u64| {
            let mut text = rows.join("; ");
            let more = count.saturating_sub(rows.len() as u64);
            if more > 0 {
                let _ = write!(text, "; and {more} more");
            }
            text
        };
        if self.folds > 0 {
            lines.push(format!(
                "{} at a local time that occurred twice (the clocks went back), taken as the earlier, or as the later when the row before it is dated between the two (the original wrote it in the repeated hour): {}",
                rows(self.folds),
                listed(&self.fold_rows, self.folds)
            ));
        }
        if self.gaps > 0 {
            lines.push(format!(
                "{} at a local time that never occurred (the clocks went forward), moved forward by the gap: {}",
                rows(self.gaps),
                listed(&self.gap_rows, self.gaps)
            ));
        }
        if self.repeated > 0 {
            let hint = if self.gaps > 0 || self.folds > 0 {
                " (a row moved by a clock change onto another row's time says the original's \
                 clock did not keep this zone: check --timezone)"
            } else {
                ""
            };
            lines.push(format!(
                "{} not stored: each lands on the time of an earlier row of the file, to the millisecond, which is kept{hint}: {}",
                rows(self.repeated),
                listed(&self.repeat_rows, self.repeated)
            ));
        }
        for (label, err) in &self.skips {
            lines.push(format!("skipped {label}: {err}"));
        }
        let more = self.skipped.saturating_sub(self.skips.len() as u64);
        if more > 0 {
            let noun = if more == 1 { "row" } else { "rows" };
            lines.push(format!("skipped {more} more {noun}"));
        }
        lines
    }
}

/// `1 row`, `2 rows`.
fn rows(count: u64) -> String {
    if count == 1 {
        "1 row".to_owned()
    } else {
        format!("{count} rows")
    }
}

/// A skipped row's reason kept for the summary ([`Implausible`] is not `Clone`).
fn clone_error(err: &RowError) -> RowError {
    match err {
        RowError::Null(column) => RowError::Null(column),
        RowError::NotANumber { column, value } => RowError::NotANumber {
            column,
            value: value.clone(),
        },
        RowError::NotATime(value) => RowError::NotATime(value.clone()),
        RowError::OutOfRange(local) => RowError::OutOfRange(*local),
        RowError::Ahead { local, time } => RowError::Ahead {
            local: *local,
            time: *time,
        },
        RowError::Implausible(Implausible(text)) => {
            RowError::Implausible(Implausible(text.clone()))
        }
    }
}

/// How the summary names a row: `id 7` by the original's id, else `row 7` by its place in
/// the table (counting from 1).
pub(crate) fn label(id: ValueRef<'_>, place: u64) -> String {
    match id {
        ValueRef::Integer(id) => format!("id {id}"),
        _ => format!("row {place}"),
    }
}

/// How long a read of the original's database waits for a program writing to it.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What a file that is not SQLite looks like, when it is one this program writes, said with
/// what to do instead (`; it looks like …`); empty otherwise. Read from its first bytes.
fn what_else(path: &Path) -> &'static str {
    use std::io::Read as _;
    let mut head = Vec::new();
    let read = std::fs::File::open(path).and_then(|file| file.take(16).read_to_end(&mut head));
    if read.is_err() {
        return "";
    }
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
    if head.starts_with(b"redb\x1A\x0A\xA9\x0D\x0A") {
        "; it is a database file of this program: use it as --db as it is, or move its samples \
         with `internet-monitor export --db FILE | internet-monitor import -`"
    } else if text.trim_ascii_start().starts_with(b"{") {
        "; it looks like JSON lines (`export --format jsonl`): import it without --from-original"
    } else {
        ""
    }
}

/// The original's database at `path`, opened read-only and checked to have a `results` table
/// with the [`COLUMNS`]; nothing is written to it or beside it (no journal). Errors say what
/// the file is instead: missing, a directory, not SQLite, without that table or columns.
fn open_source(path: &Path) -> anyhow::Result<Connection> {
    let shown = path.display();
    let metadata = std::fs::metadata(path).with_context(|| format!("cannot read {shown}"))?;
    if metadata.is_dir() {
        bail!("{shown} is a directory, not the original app's database file");
    }
    // SQLite would wait on a FIFO for a writer, for good.
    if !metadata.is_file() {
        bail!(
            "{shown} is not a regular file (a FIFO, socket or device): --from-original reads the original app's database file (internet-monitor.db)"
        );
    }
    let not_sqlite = |err: &rusqlite::Error| {
        let extended = match err {
            rusqlite::Error::SqliteFailure(failure, _) => failure.extended_code,
            _ => 0,
        };
        if extended == rusqlite::ffi::SQLITE_READONLY_ROLLBACK {
            anyhow!(
                "{shown} has a write left unfinished (the -journal file beside it: a program stopped while writing to it, or it was copied mid-write); a read-only reader cannot roll it back: run `sqlite3 {shown} 'PRAGMA integrity_check'` once, which does, then import again"
            )
        } else if err.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) {
            anyhow!(
                "{shown} is locked: a program is writing to it (the original app?); stop it or copy the file, then import again"
            )
        } else if err.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
            anyhow!(
                "{shown} is not an SQLite database{}: --from-original reads the original app's database file (internet-monitor.db)",
                what_else(path)
            )
        } else {
            anyhow!("cannot read {shown} as an SQLite database: {err}")
        }
    };
    // SQLite reads a name starting with `file:` as a URI (another file, options): a relative
    // path is given as `./…`, which it takes as the name it is.
    let literal = if path.is_relative() {
        Path::new(".").join(path)
    } else {
        path.to_path_buf()
    };
    let connection = Connection::open_with_flags(
        &literal,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|err| not_sqlite(&err))?;
    // The original commits a row in a moment every 30 minutes: a read then waits for it.
    connection
        .busy_timeout(BUSY_WAIT)
        .map_err(|err| not_sqlite(&err))?;
    let table: Option<(String, Option<String>)> = connection
        .query_row(
            "SELECT type, sql FROM sqlite_master WHERE name = 'results' AND type IN ('table', 'view')",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(|err| not_sqlite(&err))?;
    let Some((kind, sql)) = table else {
        bail!(
            "{shown} has no table named results: it is not the original internet-monitor's database"
        );
    };
    // The original's `results` is a plain table, whose rows the file holds. A view (or a
    // virtual table) computes its rows when read: a hostile file a few KB long could answer
    // without end, or with values of a gigabyte each.
    if !is_plain_table(&kind, sql.as_deref()) {
        bail!(
            "{shown}'s results is a {}, not a table: it is not the original internet-monitor's database, whose results is a table of rows",
            if kind == "view" {
                "view"
            } else {
                "virtual table"
            }
        );
    }
    let mut statement = connection
        .prepare("SELECT name FROM pragma_table_info('results')")
        .map_err(|err| not_sqlite(&err))?;
    let present: Vec<String> = statement
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(Iterator::collect)
        .map_err(|err| not_sqlite(&err))?;
    drop(statement);
    let missing: Vec<&str> = COLUMNS
        .into_iter()
        .filter(|column| !present.iter().any(|name| name.eq_ignore_ascii_case(column)))
        .collect();
    if !missing.is_empty() {
        bail!(
            "{shown}'s results table has no column {}: it is not the original internet-monitor's, whose table has {}",
            missing.join(", "),
            COLUMNS.join(", ")
        );
    }
    Ok(connection)
}

/// Whether the schema entry of `results` (its `type` and `sql` in `sqlite_master`) is a table
/// whose rows are stored in the file: not a view, not a virtual table (`CREATE VIRTUAL TABLE`).
fn is_plain_table(kind: &str, sql: Option<&str>) -> bool {
    let virtual_table = sql.is_some_and(|sql| {
        let words: Vec<String> = sql
            .split_whitespace()
            .take(2)
            .map(str::to_ascii_uppercase)
            .collect();
        words == ["CREATE", "VIRTUAL"]
    });
    kind == "table" && !virtual_table
}

/// `import --from-original FILE [--timezone ZONE]`: stores each row of the original's table
/// that reads as a plausible sample dated no later than `latest_allowed`, skipping the times
/// already stored, in one transaction; prints the summary ([`Tally::lines`]) on stderr. The
/// source is checked before the destination is opened, and a destination this import created
/// is removed again when the import fails, so a failed import leaves no new file behind.
pub(crate) fn import(args: &ImportArgs, latest_allowed: Timestamp) -> anyhow::Result<ExitCode> {
    let path = args.file.as_path();
    if path.as_os_str() == "-" {
        bail!(
            "--from-original reads a file, not standard input: give the path of the original app's database (internet-monitor.db)"
        );
    }
    let zone_given = args.timezone.is_some();
    // The zone decides every stored time, and a second import in the right zone would add
    // each run again an hour or two off: a system zone that cannot be read is refused.
    let zone = match args.timezone.clone() {
        Some(zone) => zone,
        None => Zone::system_checked().map_err(|why| {
            anyhow::anyhow!(
                "{why}: the original's local times need their zone; give --timezone ZONE (e.g. \
                 --timezone Europe/Berlin, the zone the original app ran in)"
            )
        })?,
    };
    let source = open_source(path)?;
    let (added, tally) = store_rows(&source, args, &zone, latest_allowed)?;
    for line in tally.lines(added, path, &zone, zone_given) {
        crate::logging::say(format_args!("{line}"));
    }
    Ok(ExitCode::SUCCESS)
}

/// Streams the rows of `source` into the store of `args`, converting each; the number of
/// samples added and the tally of the rows.
fn store_rows(
    source: &Connection,
    args: &ImportArgs,
    zone: &Zone,
    latest_allowed: Timestamp,
) -> anyhow::Result<(u64, Tally)> {
    let shown = args.file.display();
    let limits = Limits {
        max_bytes_per_second: args.max_bandwidth.bytes_per_second(),
    };
    let mut statement = source
        .prepare(&format!(
            "SELECT {} FROM results ORDER BY id",
            COLUMNS.join(", ")
        ))
        .with_context(|| format!("cannot read the results table of {shown}"))?;
    let mut rows = statement
        .query([])
        .with_context(|| format!("cannot read the results table of {shown}"))?;
    // A database this import creates is removed again if it fails (dropped without `keep`).
    let mut store = crate::commands::Created::open_stopped_by_signals(&args.store.db, |db| {
        Ok(Store::open(db)?)
    })?;
    let mut tally = Tally::default();
    // The label of the row the store is looking at: it takes one sample at a time.
    let current = std::cell::RefCell::new(String::new());
    // The time of the row before, in `id` order, to tell the two passes of a repeated hour.
    let mut previous = None;
    let samples = std::iter::from_fn(|| {
        loop {
            let row = match rows.next() {
                Ok(Some(row)) => row,
                Ok(None) => return None,
                Err(err) => {
                    return Some(Err(anyhow!(
                        "cannot read the results table of {shown} after {} rows: {err}; nothing was imported",
                        tally.read
                    )));
                }
            };
            let values = || -> rusqlite::Result<Row<'_>> {
                Ok(Row {
                    id: row.get_ref(0)?,
                    download: row.get_ref(1)?,
                    upload: row.get_ref(2)?,
                    ping: row.get_ref(3)?,
                    timestamp: row.get_ref(4)?,
                })
            };
            let row = match values() {
                Ok(row) => row,
                Err(err) => {
                    return Some(Err(anyhow!(
                        "cannot read row {} of the results table of {shown}: {err}; nothing was imported",
                        tally.read + 1
                    )));
                }
            };
            let converted = convert(&row, zone.time_zone(), &limits, latest_allowed, previous);
            let named = label(row.id, tally.read + 1);
            current.replace(named.clone());
            tally.add(named, &converted);
            if let Ok(converted) = converted {
                previous = Some(converted.sample.time);
                return Some(Ok(converted.sample));
            }
        }
    });
    let (mut repeated, mut repeat_rows) = (0, Vec::new());
    let imported = store.import_noting(samples, |sample| {
        repeated += 1;
        if repeat_rows.len() < NAMED {
            repeat_rows.push(format!("{} → {}", current.borrow(), sample.time));
        }
    })?;
    store.keep();
    tally.repeated = repeated;
    tally.repeat_rows = repeat_rows;
    Ok((imported.added, tally))
}

#[cfg(test)]
mod tests;
