//! Diagnostics on stderr through `tracing`, filtered by `RUST_LOG`.
//!
//! Field values come from outside (the CLI's message, server and ISP names, request headers),
//! so the text format escapes every control character in them: a value can neither start a
//! line that looks like a log line of its own nor send ANSI escape sequences to a terminal.
//! The JSON format escapes them as JSON does.
//!
//! # Field values in the text format
//!
//! One rule for every line, so that a line reads as logfmt (`key=value`, a value with spaces
//! in double quotes, as Rust's `{:?}` quotes a string):
//!
//! - A field whose value can hold spaces or `=` (a message, a server or ISP name, a path, a
//!   plan, an error) is written quoted: record it as a `&str` (`server = name.as_str()`) or
//!   with `?` on a `String`, which print `"…"`.
//! - A token (a trigger, an engine's short name, an outcome or reason, a number, a time, a
//!   duration, an address) is written bare: record it with `%` (`trigger = %trigger.as_str()`).
//! - The text format holds every line to the first half whatever the call site did: a value
//!   recorded with `%` (or any `Debug` value) that holds a space, `=` or `"`, or is empty, is
//!   written quoted as a string is. So `plan="download 500 Mbit/s, upload none, threshold 0.8"`
//!   comes back whole from a logfmt reader, and a bare value never holds a space.

use std::fmt;
use std::io::IsTerminal;

use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::{RecordFields, VisitOutput};
use tracing_subscriber::fmt::format::{DefaultFields, DefaultVisitor, Writer};
use tracing_subscriber::fmt::{FormatFields, MakeWriter};
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::LogFormat;

/// Writes one line to stderr, as `eprintln!` does, except that a stderr nobody reads any more
/// (`2>&1 | head -1`, a closed descriptor) is no panic: the line is dropped and the command
/// goes on to the exit status it would have had. The line is [`one_line`]: a value in it
/// that the user gave (a path in an error) can neither start a line of its own nor steer the
/// terminal nor flood it.
pub fn say(line: fmt::Arguments<'_>) {
    use std::io::Write;
    let line = one_line(&line.to_string());
    let mut err = std::io::stderr().lock();
    rub_out_progress(&mut err);
    let _ = writeln!(err, "{line}");
}

/// `line` with every character that could end a line or steer a terminal escaped (see
/// [`Shown`]), and each run without spaces longer than twice [`SHOWN_CHARS`] (a value quoted
/// whole, such as a path in an error) cut as [`shown`] cuts it, saying how much was left out.
pub fn one_line(line: &str) -> String {
    line.split(' ')
        .map(|word| {
            if word.chars().count() > 2 * SHOWN_CHARS {
                // A colon ending the value ends the sentence part: it stays after the note.
                match word.strip_suffix(':') {
                    Some(value) => format!("{}:", shown(value)),
                    None => shown(word).to_string(),
                }
            } else {
                escaped(word)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a progress line (`run-once` on a terminal) is on show at the end of stderr.
static PROGRESS_SHOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Says whether a progress line is on show on stderr (a terminal): while it is, each log line
/// and [`say`] first rubs it out, so that none is written after it on the same line (the
/// progress is drawn again at its next tick).
pub(crate) fn progress_shown(shown: bool) {
    PROGRESS_SHOWN.store(shown, std::sync::atomic::Ordering::Release);
}

/// Rubs out the progress line, if one is on show (carriage return, erase the line).
fn rub_out_progress(err: &mut impl std::io::Write) {
    if PROGRESS_SHOWN.swap(false, std::sync::atomic::Ordering::AcqRel) {
        let _ = err.write_all(b"\r\x1b[2K");
    }
}

/// An error and its causes on one line, `outer: cause: cause`, as anyhow's `{:#}` prints them,
/// except that a cause whose text the line already holds is left out: many errors put their
/// source's words in their own message (`cannot read x: No such file or directory`), and the
/// user should read them once.
pub fn error_chain(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// A budget of log lines for one kind of event that clients can cause at will (a refused
/// request, a busy store reader, a damaged sample met per request): at most `per_minute` lines
/// a minute, so that a flood of requests cannot flood the log (a full disk; a journald rate
/// limit dropping the lines that matter). Each line logged says how many were left out before
/// it (`left_out`).
pub(crate) struct Throttle {
    per_minute: u32,
    /// When the current minute began, lines logged in it, events left out since the last line.
    state: std::sync::Mutex<(Option<std::time::Instant>, u32, u64)>,
}

impl Throttle {
    pub(crate) const fn new(per_minute: u32) -> Self {
        Throttle {
            per_minute,
            state: std::sync::Mutex::new((None, 0, 0)),
        }
    }

    /// `Some(events left out since the last line logged)` when this event may be logged;
    /// `None` when it is only counted.
    pub(crate) fn admit(&self) -> Option<u64> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (minute, logged, left_out) = &mut *state;
        let now = std::time::Instant::now();
        if minute.is_none_or(|start| now.duration_since(start).as_secs() >= 60) {
            *minute = Some(now);
            *logged = 0;
        }
        if *logged < self.per_minute {
            *logged += 1;
            Some(std::mem::take(left_out))
        } else {
            *left_out += 1;
            None
        }
    }
}

/// `text` cut to at most `max` bytes at a character boundary, for a log field that comes from
/// a client (a header may be kilobytes).
pub(crate) fn clip(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The most characters of a value the user gave that a message quotes; the rest is left out,
/// and the message says how many characters that was.
pub const SHOWN_CHARS: usize = 100;

/// A value the user gave (a flag's, a variable's, a query parameter's), as a message quotes
/// it: every character that could end a line or steer a terminal (C0, DEL, C1, the Unicode
/// line and paragraph separators, the bidirectional controls) escaped as Rust escapes it
/// (`\n`, `\u{1b}`, `\u{202e}`), and at most [`SHOWN_CHARS`] characters, followed by
/// `(N more characters left out)` when it is longer. Every message that echoes a value goes
/// through [`shown`] or [`quoted`], so a value can neither forge a line nor flood one.
#[derive(Clone, Copy, Debug)]
pub struct Shown<'a> {
    text: &'a str,
    quotes: bool,
}

/// `text` as a message shows it without quotes (clap adds its own): see [`Shown`].
pub fn shown(text: &str) -> Shown<'_> {
    Shown {
        text,
        quotes: false,
    }
}

/// `text` in double quotes, with quotes and backslashes escaped as well: see [`Shown`].
pub fn quoted(text: &str) -> Shown<'_> {
    Shown { text, quotes: true }
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        if self.quotes {
            f.write_char('"')?;
        }
        let mut chars = self.text.chars();
        for c in chars.by_ref().take(SHOWN_CHARS) {
            if needs_escape(c) || (self.quotes && matches!(c, '"' | '\\')) {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        if self.quotes {
            f.write_char('"')?;
        }
        let left_out = chars.count();
        if left_out > 0 {
            let characters = if left_out == 1 {
                "character"
            } else {
                "characters"
            };
            write!(f, " ({left_out} more {characters} left out)")?;
        }
        Ok(())
    }
}

/// `text` with every character that could end a line or steer a terminal escaped, whole: for
/// a message built from parts, some of which were the user's (clap's tips).
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Writing to a String cannot fail.
    let _ = write_escaped(&mut out, text);
    out
}

/// Sends logs to stderr (stdout carries command output). `RUST_LOG` overrides `default_level`
/// (see [`filter`]).
///
/// # Errors
///
/// A `RUST_LOG` that is not a filter this program reads, naming the variable, the part that is
/// wrong and an example; nothing is logged then.
pub(crate) fn init(default_level: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = filter(std::env::var_os("RUST_LOG"), default_level).map_err(anyhow::Error::msg)?;
    let subscriber = subscriber(format, filter, std::io::stderr().is_terminal(), || {
        QuietStderr
    });
    // A second call (tests) keeps the first subscriber; nothing to report.
    let _ = subscriber.try_init();
    Ok(())
}

/// The example a refused `RUST_LOG` shows.
const RUST_LOG_EXAMPLE: &str = "RUST_LOG=info,internet_monitor=debug";

/// The log filter for `RUST_LOG`'s value (`None`: unset).
///
/// Unset, empty or blank (`RUST_LOG=` in an environment file, `RUST_LOG: ${UNSET}` in a compose
/// file) is `default_level`: an empty filter would turn off every line, warnings included.
/// Directives are separated by commas; blanks around each are ignored.
///
/// # Errors
///
/// A message naming `RUST_LOG` when the value is not UTF-8, when a directive does not parse
/// (`garbage[[[`), or when a directive is a single word that is no level but reads like one
/// (`warning`, `inof`): as written it would name a module and turn every other line off.
pub fn filter(value: Option<std::ffi::OsString>, default_level: &str) -> Result<EnvFilter, String> {
    let Some(value) = value else {
        return Ok(EnvFilter::new(default_level));
    };
    let Some(text) = value.to_str() else {
        return Err(format!(
            "RUST_LOG={value:?} is not UTF-8: give a log filter such as {RUST_LOG_EXAMPLE}, \
             or unset RUST_LOG for the default ({default_level})"
        ));
    };
    let directives: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
        .collect();
    if directives.is_empty() {
        return Ok(EnvFilter::new(default_level));
    }
    for directive in &directives {
        let refused = |why: String| {
            format!(
                "RUST_LOG={text:?} is not a log filter: {directive:?} {why}; write \
                 comma-separated levels (error, warn, info, debug, trace, off), optionally \
                 after a module and =, such as {RUST_LOG_EXAMPLE}, or unset RUST_LOG for the \
                 default ({default_level})"
            )
        };
        if let Err(err) = directive.parse::<tracing_subscriber::filter::Directive>() {
            return Err(refused(format!("does not parse ({err})")));
        }
        if let Some(level) = like_a_level(directive) {
            return Err(refused(format!(
                "is no level (did you mean {level}?): as written it names a module and turns \
                 every other log line off"
            )));
        }
    }
    // A filter of other modules only (`internet-monitor=debug`: a module is written with `_`)
    // turns every line of this program off, warnings and the start-up line included.
    if !directives
        .iter()
        .any(|directive| reaches_this_program(directive))
    {
        return Err(format!(
            "RUST_LOG={text:?} turns every log line of this program off: none of its parts is a \
             level alone or names a module of internet_monitor (written with _, not -); write \
             such as {RUST_LOG_EXAMPLE}, or unset RUST_LOG for the default ({default_level})"
        ));
    }
    EnvFilter::builder()
        .parse(directives.join(","))
        .map_err(|err| format!("RUST_LOG={text:?} is not a log filter: {err}"))
}

/// Whether one directive of a `RUST_LOG` filter can let a line of this program through: a
/// level alone (`debug`), a span filter (`[request]=debug`), or a module on the path to or
/// inside `internet_monitor` (`internet_monitor::store=trace`).
fn reaches_this_program(directive: &str) -> bool {
    const CRATE: &str = "internet_monitor";
    if directive
        .parse::<tracing_subscriber::filter::LevelFilter>()
        .is_ok()
    {
        return true;
    }
    let target = directive
        .split(['[', '='])
        .next()
        .unwrap_or_default()
        .trim();
    target.is_empty() || CRATE.starts_with(target) || target.starts_with(CRATE)
}

/// The level `directive` looks like a misspelling of, when it is one word (no module path, no
/// `=`, no span or field filter) that is not a level itself: `warning`, `inof`, `Debg`.
fn like_a_level(directive: &str) -> Option<&'static str> {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    if !directive.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let word = directive.to_ascii_lowercase();
    if LEVELS.contains(&word.as_str()) {
        return None;
    }
    if word == "warning" || word == "err" || word == "information" {
        return Some(if word.starts_with('w') {
            "warn"
        } else if word.starts_with('e') {
            "error"
        } else {
            "info"
        });
    }
    if !(4..=6).contains(&word.len()) {
        return None;
    }
    LEVELS
        .into_iter()
        .find(|level| level.len() > 3 && edit_distance(&word, level) <= 2)
}

/// Levenshtein distance between two short ASCII words.
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Standard error for the log, where a write that fails (nobody reads the pipe any more, a
/// full disk behind a redirect) drops the line: logging must never stop the service, and
/// tracing-subscriber reports a failed write with `eprintln!`, which panics when stderr is
/// the thing that failed.
struct QuietStderr;

impl std::io::Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut err = std::io::stderr().lock();
        rub_out_progress(&mut err);
        let _ = err.write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// The subscriber of [`init`], writing to `writer`.
fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    ansi: bool,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.fmt_fields(EscapedFields::default()).finish()),
        LogFormat::Json => Box::new(builder.json().finish()),
    }
}

/// The fields of tracing-subscriber's default text format, with every control character
/// (C0, DEL, C1), the Unicode line and paragraph separators and the bidirectional controls
/// escaped as Rust escapes them (`\n`, `\u{1b}`), so one event is always one line.
#[derive(Debug, Default)]
pub(crate) struct EscapedFields(DefaultFields);

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut text = String::new();
        let mut visitor = PeopleFigures(DefaultVisitor::new(Writer::new(&mut text), true));
        fields.record(&mut visitor);
        visitor.0.finish()?;
        write_escaped(&mut writer, &text)
    }
}

/// The default text format's field visitor, except that a whole number from 100 up recorded
/// as a float is written as a whole number (`download_mbit_s=512`, not `512.0`), as
/// [`crate::units::for_people`] rounds figures for people; a float below 100 keeps its decimal.
struct PeopleFigures<'a>(DefaultVisitor<'a>);

/// The largest magnitude written as a whole number: every integer up to it is a float exactly.
const WHOLE_UP_TO: f64 = 9_007_199_254_740_992.0;

impl Visit for PeopleFigures<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let magnitude = value.abs();
        if value.fract() == 0.0 && (100.0..=WHOLE_UP_TO).contains(&magnitude) {
            // Exact: a whole float within ±2^53 converts to i64 without loss.
            self.0.record_i64(field, value as i64);
        } else {
            self.0.record_f64(field, value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.record_i64(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.record_u64(field, value);
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.0.record_i128(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.0.record_u128(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.record_bool(field, value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.record_str(field, value);
    }

    /// An error and its sources as one value, `outer: cause`, quoted as text is.
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            let said = cause.to_string();
            if !said.is_empty() && !text.contains(&said) {
                text.push_str(": ");
                text.push_str(&said);
            }
            source = cause.source();
        }
        self.record_debug(field, &format_args!("{text}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            return self.0.record_debug(field, value);
        }
        let text = format!("{value:?}");
        if is_bare_token(&text) || is_quoted_string(&text) {
            self.0.record_debug(field, &format_args!("{text}"));
        } else {
            // Debug of a string: in double quotes, inner quotes and backslashes escaped.
            self.0.record_debug(field, &text);
        }
    }
}

/// Whether `text` can stand bare after `key=`: not empty, no whitespace, `=` or `"`.
fn is_bare_token(text: &str) -> bool {
    !text.is_empty() && !text.contains(|c: char| c.is_whitespace() || c == '=' || c == '"')
}

/// Whether `text` is one string as `{:?}` writes it: `"…"` with every inner `"` escaped.
fn is_quoted_string(text: &str) -> bool {
    let Some(inner) = text
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return false;
    };
    let mut escaped = false;
    for c in inner.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return false,
            _ => {}
        }
    }
    // An escaped closing quote (`"…\"`) leaves the string open.
    !escaped
}

/// Writes `text` with each character that could end a line or steer a terminal escaped.
fn write_escaped(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    let mut rest = text;
    while let Some(at) = rest.find(needs_escape) {
        out.write_str(&rest[..at])?;
        let mut chars = rest[at..].chars();
        if let Some(c) = chars.next() {
            write!(out, "{}", c.escape_default())?;
        }
        rest = chars.as_str();
    }
    out.write_str(rest)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn rust_log_blank_is_the_default_and_a_bad_one_names_its_part() {
        let read = |value: &str| filter(Some(value.into()), "warn");
        for blank in ["", " ", ",", " , "] {
            let chosen = read(blank).unwrap();
            assert_eq!(chosen.to_string(), "warn", "{blank:?}");
        }
        assert_eq!(filter(None, "info").unwrap().to_string(), "info");
        let chosen = read(" info , internet_monitor=debug ").unwrap().to_string();
        assert!(chosen.contains("internet_monitor=debug"), "{chosen}");
        for good in [
            "INFO",
            "off",
            "internet_monitor",
            "internet_monitor::access=off",
            "debug,tokio=warn",
            "hyper=debug,internet_monitor=info",
            "[request]=debug",
        ] {
            assert!(read(good).is_ok(), "{good}");
        }
        // Only other modules: every line of this program would be off, warnings included.
        for silent in [
            "internet-monitor=debug",
            "internet-monitor",
            "internet_monitr=debug",
            "hyper",
        ] {
            let said = read(silent).unwrap_err();
            assert!(
                said.starts_with(&format!(
                    "RUST_LOG={silent:?} turns every log line of this program off"
                )) && said.contains("written with _, not -"),
                "{said}"
            );
        }
        for (bad, part) in [
            ("garbage[[[", "\"garbage[[[\" does not parse"),
            ("info,x=loud", "\"x=loud\" does not parse"),
            ("warning", "\"warning\" is no level (did you mean warn?)"),
            ("inof", "\"inof\" is no level (did you mean info?)"),
            ("Debg", "\"Debg\" is no level (did you mean debug?)"),
        ] {
            let said = read(bad).unwrap_err();
            assert!(
                said.starts_with(&format!("RUST_LOG={bad:?} is not a log filter: {part}"))
                    && said.contains("RUST_LOG=info,internet_monitor=debug"),
                "{said}"
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            let said = filter(Some(std::ffi::OsString::from_vec(vec![0xff])), "info");
            assert!(said.unwrap_err().contains("is not UTF-8"));
        }
    }

    #[test]
    fn an_error_chain_says_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read x: {source}")]
        struct Repeats {
            source: std::io::Error,
        }
        let io = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let repeated = anyhow::Error::from(Repeats { source: io() });
        assert_eq!(error_chain(&repeated), format!("cannot read x: {}", io()));
        let added = anyhow::Error::from(io()).context("opening y");
        assert_eq!(error_chain(&added), format!("opening y: {}", io()));
    }

    #[test]
    fn a_throttle_logs_its_budget_then_counts_what_it_leaves_out() {
        let throttle = Throttle::new(3);
        let admitted: Vec<Option<u64>> = (0..5).map(|_| throttle.admit()).collect();
        assert_eq!(admitted, [Some(0), Some(0), Some(0), None, None]);
        // The next minute's first line says how many were left out.
        throttle.state.lock().unwrap().0 = Some(
            std::time::Instant::now()
                .checked_sub(std::time::Duration::from_secs(61))
                .unwrap(),
        );
        assert_eq!(throttle.admit(), Some(2));
        assert_eq!(throttle.admit(), Some(0));
    }

    #[test]
    fn a_progress_line_on_show_is_rubbed_out_once_before_a_log_line() {
        let mut out = Vec::new();
        rub_out_progress(&mut out);
        assert!(out.is_empty());
        progress_shown(true);
        rub_out_progress(&mut out);
        rub_out_progress(&mut out);
        assert_eq!(out, b"\r\x1b[2K");
    }

    #[test]
    fn a_shown_value_is_escaped_and_cut_saying_how_much_was_left_out() {
        let hostile = format!(
            "a\nb\r\u{1b}[2J\u{202e}\u{2028}\u{85}\"\\{}",
            "x".repeat(5000)
        );
        for text in [shown(&hostile).to_string(), quoted(&hostile).to_string()] {
            assert!(
                !text.contains(['\n', '\r', '\u{1b}', '\u{202e}', '\u{2028}', '\u{85}']),
                "{text:?}"
            );
            assert!(text.len() < 200, "{text}");
            assert!(text.ends_with(" (4913 more characters left out)"), "{text}");
            assert!(
                text.contains("a\\nb\\r\\u{1b}[2J\\u{202e}\\u{2028}\\u{85}"),
                "{text}"
            );
        }
        assert_eq!(quoted("a\"b\\").to_string(), format!("{:?}", "a\"b\\"));
        assert_eq!(quoted("500 Mbps").to_string(), "\"500 Mbps\"");
        assert_eq!(shown("500 Mbps").to_string(), "500 Mbps");
        assert_eq!(
            shown(&"é".repeat(101)).to_string(),
            format!("{} (1 more character left out)", "é".repeat(100))
        );
        assert_eq!(escaped("a\nb\u{202e}"), "a\\nb\\u{202e}");
    }

    #[test]
    fn a_said_line_stays_one_short_line() {
        let path = format!(
            "/tmp/1\n2026 INFO forged\u{1b}[2J\u{202e}{}",
            "x".repeat(5000)
        );
        let line = one_line(&format!(
            "internet-monitor: error: cannot open database {path}: gone"
        ));
        assert!(!line.contains(['\n', '\u{1b}', '\u{202e}']), "{line:?}");
        assert!(line.len() < 300, "{line}");
        assert!(
            line.starts_with("internet-monitor: error: cannot open database /tmp/1\\n2026 INFO"),
            "{line}"
        );
        assert!(line.ends_with("more characters left out): gone"), "{line}");
        assert_eq!(one_line("plain words stay"), "plain words stay");
    }

    #[test]
    fn clip_cuts_at_a_character_boundary() {
        assert_eq!(clip("ééé", 3), "é");
        assert_eq!(clip("abc", 10), "abc");
    }

    /// Log output collected in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Captured {
            self.clone()
        }
    }

    const FORGED: &str = "no route\n2026-11-30T04:00:00.000000Z  INFO internet_monitor::state: \
test succeeded download_mbit_per_second=1000\r\u{1b}[2K\u{1b}]0;owned\u{7}\u{85}\u{2028}";

    fn log(format: LogFormat) -> String {
        let captured = Captured::default();
        let subscriber = subscriber(format, EnvFilter::new("info"), false, captured.clone());
        tracing::subscriber::with_default(subscriber, || {
            let error = std::io::Error::other(FORGED);
            let span = tracing::info_span!("run", server = FORGED);
            let _entered = span.enter();
            tracing::warn!(reason = "exit", message = FORGED, "test failed");
            tracing::warn!(%error, isp = %FORGED, "storing failed");
            tracing::info!("{FORGED}");
        });
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn text_fields_cannot_start_a_line_or_reach_the_terminal() {
        let text = log(LogFormat::Text);
        assert_eq!(text.lines().count(), 3, "one line per event:\n{text}");
        assert!(
            !text.contains(['\r', '\u{1b}', '\u{7}', '\u{85}', '\u{2028}']),
            "{text:?}"
        );
        assert!(
            text.contains("no route\\n2026-11-30T04:00:00.000000Z"),
            "{text}"
        );
        assert!(text.contains("\\u{1b}[2K"), "{text}");
    }

    #[test]
    fn text_gives_whole_figures_from_100_up_without_a_decimal() {
        let captured = Captured::default();
        let subscriber = subscriber(
            LogFormat::Text,
            EnvFilter::new("info"),
            false,
            captured.clone(),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                download_mbit_s = 18820.0_f64,
                upload_mbit_s = 512.0_f64,
                ping_ms = 12.0_f64,
                jitter_ms = 0.0_f64,
                data_used_mb = 93.4_f64,
                huge = 1e300_f64,
                negative = -250.0_f64,
                "test succeeded"
            );
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.contains(
                "download_mbit_s=18820 upload_mbit_s=512 ping_ms=12.0 jitter_ms=0.0 \
                 data_used_mb=93.4 huge=1e300 negative=-250"
            ),
            "{text}"
        );
    }

    #[test]
    fn text_quotes_a_value_with_spaces_or_equals_and_leaves_tokens_bare() {
        let captured = Captured::default();
        let subscriber = subscriber(
            LogFormat::Text,
            EnvFilter::new("info"),
            false,
            captured.clone(),
        );
        let plan = "download 500 Mbit/s, upload none, threshold 0.8".to_owned();
        tracing::subscriber::with_default(subscriber, || {
            let error = std::io::Error::other("no route to host");
            tracing::info!(
                trigger = %"schedule",
                plan = %plan,
                path = %"/api?a=1",
                empty = %"",
                server = "Example ISP",
                named = ?plan,
                quoted = %"say \"hi\"",
                err = &error as &(dyn std::error::Error + 'static),
                count = 3,
                "listening"
            );
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.contains(
                "listening trigger=schedule \
                 plan=\"download 500 Mbit/s, upload none, threshold 0.8\" path=\"/api?a=1\" \
                 empty=\"\" server=\"Example ISP\" \
                 named=\"download 500 Mbit/s, upload none, threshold 0.8\" \
                 quoted=\"say \\\"hi\\\"\" err=\"no route to host\" count=3"
            ),
            "{text}"
        );
    }

    #[test]
    fn only_one_whole_debug_string_counts_as_quoted() {
        assert!(is_quoted_string(r#""a b""#));
        assert!(is_quoted_string(r#""say \"hi\"""#));
        assert!(is_quoted_string("\"\""));
        assert!(!is_quoted_string(r#""a" b "c""#), "two strings");
        assert!(
            !is_quoted_string(r#""open\""#),
            "its closing quote is escaped"
        );
        assert!(!is_quoted_string("\""));
        assert!(is_bare_token("schedule") && is_bare_token("2026-12-01T04:00:00.000Z"));
        assert!(!is_bare_token("") && !is_bare_token("a b") && !is_bare_token("a=b"));
    }

    #[test]
    fn json_lines_stay_json_and_keep_the_value() {
        let json = log(LogFormat::Json);
        let lines: Vec<serde_json::Value> = json
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{json}");
        assert_eq!(lines[0]["fields"]["message"], FORGED);
    }
}
