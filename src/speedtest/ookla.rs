//! Turns what the Ookla Speedtest CLI printed into a sample: pure, no I/O.

use std::sync::Arc;

use serde_json::Value;

use crate::sample::{
    Client, FailureReason, Limits, MAX_NAME_BYTES, MAX_URL_BYTES, Outcome, Sample, Server, cut,
};

/// Everything a finished CLI run left behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit: Exit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// What the parser needs to know beyond the bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParseOptions {
    /// Keep the client's IP and MAC addresses (`--store-ip`).
    pub store_ip: bool,
    /// Bandwidth above this is a measurement error, not a fast line (`--max-bandwidth`).
    pub max_bytes_per_second: f64,
}

/// The exit status the CLI uses when Ookla refuses a test ("Limit reached").
const RATE_LIMITED_EXIT: i32 = 173;
/// Messages longer than this are cut: enough for a person to see why, small in the store.
const MESSAGE_LIMIT: usize = 300;

/// What the CLI says when the network, DNS or a test server cannot be reached, lower case: the
/// words users have published from failed runs (`tests/fixtures/README.md` names each thread).
/// A failure none of these match stays `exit`: unclassified, never guessed to be the line's.
const CONNECTIVITY_SIGNS: [&str; 15] = [
    // DNS: "Couldn't resolve host name (HostNotFoundException)", "Failed to resolve host name.
    // Cancelling test suite.", "Host resolve failed: Connection refused".
    "couldn't resolve host",
    "resolve host name",
    "host resolve failed",
    "hostnotfound",
    // Connecting: "Error: [0] Timeout occurred in connect.", "Couldn't connect to server
    // (Network is unreachable)", "Error: [111] Connection refused", "SSL connect error".
    "timeout occurred in connect",
    "couldn't connect to server",
    "network is unreachable",
    "no route to host",
    "connection refused",
    "ssl connect error",
    // No HTTP answer at all; a real status (403, 503) is Ookla answering, not the line failing.
    "cannot retrieve configuration document (0)",
    // The test's own sockets: "Cannot open socket", "Cannot read from socket: ",
    // "Error: [11] Cannot read: Resource temporarily unavailable", "Cannot write: ".
    "cannot open socket",
    "cannot read",
    "cannot write",
    // No candidate server answered: "Server Selection - Failed to find a working test server."
    "failed to find a working test server",
];

type Failure = (FailureReason, String);

impl ParseOptions {
    /// The limits every sample is checked against ([`Sample::check_plausible`]).
    pub fn limits(&self) -> Limits {
        Limits {
            max_bytes_per_second: self.max_bytes_per_second,
        }
    }
}

/// Fills `base` (time, trigger and duration already set) from the CLI's output. A result whose
/// figures cannot be real is a failed measurement, never a published one.
pub fn parse(output: &RunOutput, base: Sample, options: &ParseOptions) -> Sample {
    let failed = |base: Sample, (reason, message): Failure| Sample {
        outcome: Outcome::Failure,
        reason: Some(reason),
        message: Some(truncate(&message)),
        ..base
    };
    match classify(output, options) {
        Ok(measured) => {
            let sample = measured.into_sample(base.clone());
            match sample.check_plausible(&options.limits()) {
                Ok(()) => sample,
                Err(implausible) => failed(base, (FailureReason::Implausible, implausible.0)),
            }
        }
        Err(failure) => failed(base, failure),
    }
}

fn classify(output: &RunOutput, options: &ParseOptions) -> Result<Measured, Failure> {
    let stdout = scan(&output.stdout);
    let stderr = scan(&output.stderr);
    let words = error_text(&stdout, &stderr);
    if is_rate_limited(output) {
        let status = status_text(output.exit);
        return Err((FailureReason::RateLimited, words.unwrap_or(status)));
    }
    if output.exit == Exit::Code(0) {
        let result = stdout.iter().find_map(|item| match item {
            Item::Json(value) if value["type"] == "result" => Some(value),
            _ => None,
        });
        return match result {
            Some(result) => Measured::from_result(result, options.store_ip)
                .map_err(|missing| (FailureReason::Parse, missing)),
            None => Err(no_result(&stdout, &stderr, output)),
        };
    }
    let status = status_text(output.exit);
    Err(match words {
        Some(words) if is_other_speedtest(&words) => (
            FailureReason::Exit,
            format!(
                "not Ookla's Speedtest CLI (the Python speedtest-cli, which pip installs as \
                 speedtest?): install Ookla's (https://www.speedtest.net/apps/cli) and point \
                 --speedtest-bin at it, or use --engine http; {status}: {}",
                words
                    .find("unrecognized arguments:")
                    .map_or(words.as_str(), |at| &words[at..])
            ),
        ),
        Some(words) if is_connectivity(&words) => (FailureReason::NoConnectivity, words),
        Some(words) => (FailureReason::Exit, format!("{status}: {words}")),
        None => (FailureReason::Exit, status),
    })
}

/// Whether `words` are another program's refusal of the Ookla CLI's own arguments: the
/// Python speedtest-cli (argparse) answers `unrecognized arguments: --format=json
/// --accept-license …`.
fn is_other_speedtest(words: &str) -> bool {
    words.contains("unrecognized arguments:")
        && ["--format=json", "--accept-license", "--accept-gdpr"]
            .iter()
            .any(|argument| words.contains(argument))
}

fn status_text(exit: Exit) -> String {
    match exit {
        Exit::Code(code) => format!("exit status {code}"),
        Exit::Signal(signal) => format!("killed by signal {signal}"),
    }
}

/// Exit 0 without a result: an error object the CLI chose to exit 0 on, or garbage.
fn no_result(stdout: &[Item], stderr: &[Item], output: &RunOutput) -> Failure {
    let errors = error_messages(stdout, stderr);
    if !errors.is_empty() {
        let words = errors.join("; ");
        // The CLI said why it failed: its words, not a fault in reading them.
        let reason = if is_connectivity(&words) {
            FailureReason::NoConnectivity
        } else {
            FailureReason::Exit
        };
        return (reason, words);
    }
    let shown = String::from_utf8_lossy(&output.stdout);
    let shown = shown.trim();
    let message = if shown.is_empty() {
        "speedtest exited 0 but printed no result".to_owned()
    } else if let Some(err) = broken_json(shown.as_bytes()) {
        format!(
            "expected a JSON result, got broken JSON ({err}): {}",
            shown.escape_debug()
        )
    } else {
        format!("expected a JSON result, got: {}", shown.escape_debug())
    };
    (FailureReason::Parse, message)
}

/// Where the first object in `text` stops being JSON (a truncated result, a NaN), as serde_json
/// says it: "EOF while parsing an object at line 5 column 0".
fn broken_json(text: &[u8]) -> Option<String> {
    let start = text.iter().position(|&b| b == b'{')?;
    let mut values = serde_json::Deserializer::from_slice(&text[start..]).into_iter::<Value>();
    values.next()?.err().map(|err| err.to_string())
}

fn is_rate_limited(output: &RunOutput) -> bool {
    let mentions = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes).to_ascii_lowercase();
        text.contains("limit reached") || text.contains("too many requests")
    };
    output.exit == Exit::Code(RATE_LIMITED_EXIT) || mentions(&output.stderr) || {
        // On stdout only a log or error line counts: a result could mention anything.
        output.exit != Exit::Code(0) && mentions(&output.stdout)
    }
}

fn is_connectivity(words: &str) -> bool {
    let lower = words.to_ascii_lowercase();
    CONNECTIVITY_SIGNS.iter().any(|sign| lower.contains(sign))
}

/// The CLI's error messages in order, without repeats; failing those, its plain text, from
/// stderr if it wrote any there (on stdout it may be a page of usage).
fn error_text(stdout: &[Item], stderr: &[Item]) -> Option<String> {
    let errors = error_messages(stdout, stderr);
    if !errors.is_empty() {
        return Some(errors.join("; "));
    }
    let plain = |items: &[Item]| -> Option<String> {
        let lines: Vec<&str> = items
            .iter()
            .filter_map(|item| match item {
                Item::Line(line) => Some(line.trim()),
                Item::Json(_) => None,
            })
            .filter(|line| line.chars().any(char::is_alphanumeric))
            .collect();
        (!lines.is_empty()).then(|| lines.join(" "))
    };
    plain(stderr).or_else(|| plain(stdout))
}

/// Every error message in stdout, then stderr, whole and without repeats, its whitespace
/// (line breaks included) collapsed to single spaces.
///
/// A plain `[error]` log line continues on the plain lines after it, up to the next log line
/// or JSON value: "Limit reached:" is followed by Ookla's text (or an HTML page) on lines of
/// its own, and the message is all of it, never the prefix on the first line.
fn error_messages(stdout: &[Item], stderr: &[Item]) -> Vec<String> {
    fn keep(messages: &mut Vec<String>, message: Option<String>) {
        let Some(message) = message else { return };
        let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
        if !message.is_empty() && !messages.contains(&message) {
            messages.push(message);
        }
    }
    let mut messages: Vec<String> = Vec::new();
    for items in [stdout, stderr] {
        // The plain-text error still being read, which the next plain lines continue.
        let mut open: Option<String> = None;
        for item in items {
            match item {
                Item::Line(line) => match log_line(line) {
                    Some((level, message)) => {
                        keep(&mut messages, open.take());
                        open = (level == "error").then(|| message.to_owned());
                    }
                    None => {
                        if let Some(message) = &mut open {
                            message.push(' ');
                            message.push_str(line);
                        }
                    }
                },
                Item::Json(value) => {
                    keep(&mut messages, open.take());
                    let message = if value["level"] == "error" {
                        value["message"].as_str()
                    } else {
                        value["error"].as_str()
                    };
                    keep(&mut messages, message.map(str::to_owned));
                }
            }
        }
        keep(&mut messages, open);
    }
    messages
}

/// The level and message of a plain log line: `[2026-11-24 18:53:09.295] [error] Limit
/// reached:` as the CLI writes it to stderr, or `[error] Cannot write: ` as it prints it to a
/// terminal. Any other line is `None`.
fn log_line(line: &str) -> Option<(&str, &str)> {
    fn bracketed(text: &str) -> Option<(&str, &str)> {
        text.strip_prefix('[')?.split_once("] ")
    }
    let (first, rest) = bracketed(line.trim_start())?;
    if LOG_LEVELS.contains(&first) {
        return Some((first, rest));
    }
    // The first bracket held the time stamp; the level follows.
    let (level, message) = bracketed(rest)?;
    LOG_LEVELS.contains(&level).then_some((level, message))
}

/// The levels the CLI writes in brackets (spdlog's names).
const LOG_LEVELS: [&str; 6] = ["trace", "debug", "info", "warning", "error", "critical"];

/// A piece of CLI output: a JSON value (compact or pretty-printed) or a line of plain text.
#[derive(Debug)]
enum Item {
    Json(Value),
    Line(String),
}

fn scan(bytes: &[u8]) -> Vec<Item> {
    let mut items = Vec::new();
    let mut rest = bytes;
    while let Some(start) = rest.iter().position(|b| !b.is_ascii_whitespace()) {
        rest = &rest[start..];
        if rest[0] == b'{' {
            let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<Value>();
            if let Some(Ok(value)) = values.next() {
                items.push(Item::Json(value));
                rest = &rest[values.byte_offset()..];
                continue;
            }
        }
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        items.push(Item::Line(
            String::from_utf8_lossy(&rest[..end]).into_owned(),
        ));
        rest = &rest[end..];
    }
    items
}

fn truncate(message: &str) -> String {
    // The ellipsis counts too: a stored message is at most MESSAGE_LIMIT bytes, as documented.
    cut(message, MESSAGE_LIMIT)
}

/// The measurements of one `"type":"result"` object, in base units.
#[derive(Debug)]
struct Measured {
    download: f64,
    upload: f64,
    ping: f64,
    jitter: Option<f64>,
    packet_loss: Option<f64>,
    download_latency: Option<f64>,
    upload_latency: Option<f64>,
    downloaded_bytes: Option<u64>,
    uploaded_bytes: Option<u64>,
    server: Option<Server>,
    isp: Option<String>,
    result_url: Option<String>,
    client: Option<Client>,
}

impl Measured {
    fn from_result(result: &Value, store_ip: bool) -> Result<Self, String> {
        let required = |pointer: &str| {
            number(result, pointer)?.ok_or_else(|| format!("the result has no {pointer}"))
        };
        // A byte count is a whole number of bytes: absent or null is unknown, anything else
        // (negative, fractional, 1e23, text) is output the parser cannot trust.
        let bytes = |pointer: &str| match result.pointer(pointer) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("the result's {pointer} is not a byte count: {value}")),
        };
        // Names and addresses longer than any real one are cut (the measurement stands); a
        // longer result URL is left out, as a cut link leads nowhere.
        let text = |value: &Value, key: &str| value[key].as_str().map(|t| cut(t, MAX_NAME_BYTES));
        let server = &result["server"];
        let interface = &result["interface"];
        Ok(Measured {
            download: required("/download/bandwidth")?,
            upload: required("/upload/bandwidth")?,
            ping: millis_to_seconds(required("/ping/latency")?),
            jitter: number(result, "/ping/jitter")?.map(millis_to_seconds),
            packet_loss: number(result, "/packetLoss")?.map(percent_to_ratio),
            download_latency: number(result, "/download/latency/iqm")?.map(millis_to_seconds),
            upload_latency: number(result, "/upload/latency/iqm")?.map(millis_to_seconds),
            downloaded_bytes: bytes("/download/bytes")?,
            uploaded_bytes: bytes("/upload/bytes")?,
            server: server.is_object().then(|| Server {
                id: server["id"].as_u64(),
                name: text(server, "name"),
                location: text(server, "location"),
                country: text(server, "country"),
                host: text(server, "host"),
            }),
            isp: text(result, "isp"),
            result_url: result
                .pointer("/result/url")
                .and_then(Value::as_str)
                .filter(|url| url.len() <= MAX_URL_BYTES)
                .map(str::to_owned),
            client: (store_ip && interface.is_object()).then(|| Client {
                internal_ip: text(interface, "internalIp"),
                external_ip: text(interface, "externalIp"),
                mac: text(interface, "macAddr"),
            }),
        })
    }

    fn into_sample(self, base: Sample) -> Sample {
        Sample {
            outcome: Outcome::Success,
            reason: None,
            message: None,
            download_bytes_per_second: Some(self.download),
            upload_bytes_per_second: Some(self.upload),
            ping_seconds: Some(self.ping),
            jitter_seconds: self.jitter,
            packet_loss_ratio: self.packet_loss,
            download_latency_seconds: self.download_latency,
            upload_latency_seconds: self.upload_latency,
            downloaded_bytes: self.downloaded_bytes,
            uploaded_bytes: self.uploaded_bytes,
            server: self.server.map(Arc::new),
            isp: self.isp.map(Arc::from),
            result_url: self.result_url,
            client: self.client,
            ..base
        }
    }
}

/// A number at `pointer`, `None` when absent; present but not a number is a parse failure.
fn number(value: &Value, pointer: &str) -> Result<Option<f64>, String> {
    match value.pointer(pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(found) => found
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("{pointer} is not a number: {found}")),
    }
}

/// `value / scale`, snapped to the nearest `1/scale` when it is that within rounding, so
/// `11.217000000000001` ms becomes exactly `0.011217` s and stores compactly.
fn rescale(value: f64, factor: f64) -> f64 {
    let micro = value * factor;
    let snapped = micro.round();
    if (micro - snapped).abs() <= 1e-6 * snapped.abs().max(1.0) {
        snapped / 1e6
    } else {
        micro / 1e6
    }
}

fn millis_to_seconds(millis: f64) -> f64 {
    rescale(millis, 1e3)
}

fn percent_to_ratio(percent: f64) -> f64 {
    rescale(percent, 1e4)
}

#[cfg(test)]
mod tests;
