//! One speed-test run, successful or not: the record every other part reads and writes.

use std::fmt;
use std::sync::{Arc, LazyLock};

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// A run as stored, exported and served. Field names are the public JSON contract: new fields
/// may be added, none renamed. Unknown values are `None` (JSON `null`), never zero.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// When the test started (UTC, ms); the store key.
    pub time: Timestamp,
    pub outcome: Outcome,
    pub reason: Option<FailureReason>,
    /// The CLI's own words about a failure (truncated), or ours when it said nothing.
    pub message: Option<String>,
    pub trigger: Trigger,
    pub duration_seconds: Option<f64>,
    pub download_bytes_per_second: Option<f64>,
    pub upload_bytes_per_second: Option<f64>,
    pub ping_seconds: Option<f64>,
    pub jitter_seconds: Option<f64>,
    pub packet_loss_ratio: Option<f64>,
    pub download_latency_seconds: Option<f64>,
    pub upload_latency_seconds: Option<f64>,
    pub downloaded_bytes: Option<u64>,
    pub uploaded_bytes: Option<u64>,
    /// Shared: consecutive samples almost always name the same server and ISP.
    pub server: Option<Arc<Server>>,
    pub isp: Option<Arc<str>>,
    pub result_url: Option<String>,
    /// The measurement that made the sample and its parameters; `None` for a run that was
    /// skipped, so nothing measured. Shared: consecutive samples almost always repeat it.
    #[serde(default)]
    pub engine: Option<Arc<Engine>>,
    /// Only present when the operator asked for it with `--store-ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<Client>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub id: Option<u64>,
    pub name: Option<String>,
    pub location: Option<String>,
    pub country: Option<String>,
    pub host: Option<String>,
}

/// The measurement behind a sample (`--engine`) and the parameters it ran with.
///
/// The Ookla CLI chooses its own streams and durations, so an `ookla` engine has only its name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Engine {
    pub name: EngineName,
    /// The HTTP engine's API: `cloudflare` or `librespeed`.
    #[serde(default)]
    pub protocol: Option<HttpProtocol>,
    /// The HTTP engine's server, the base URL the API paths are joined to.
    #[serde(default)]
    pub url: Option<String>,
    /// Parallel TCP connections per direction (HTTP engine).
    #[serde(default)]
    pub streams: Option<u32>,
    /// How long each direction transferred, ramp-up included, in seconds (HTTP engine).
    #[serde(default)]
    pub duration_seconds: Option<f64>,
    /// The start of each direction left out of its bandwidth, in seconds (HTTP engine).
    #[serde(default)]
    pub ramp_up_seconds: Option<f64>,
}

impl Engine {
    /// The Ookla Speedtest CLI, which records no parameters of its own.
    pub fn ookla() -> Self {
        Engine {
            name: EngineName::Ookla,
            protocol: None,
            url: None,
            streams: None,
            duration_seconds: None,
            ramp_up_seconds: None,
        }
    }

    /// The HTTP engine's defaults against Cloudflare (4 streams, 10 s a direction, 2 s of
    /// ramp-up): the engine of the unit tests' HTTP samples.
    #[cfg(test)]
    pub(crate) fn cloudflare_example() -> Self {
        Engine {
            name: EngineName::Http,
            protocol: Some(HttpProtocol::Cloudflare),
            url: Some("https://speed.cloudflare.com".into()),
            streams: Some(4),
            duration_seconds: Some(10.0),
            ramp_up_seconds: Some(2.0),
        }
    }

    /// The engine of a sample recorded before samples said which engine made them (store
    /// format versions 1 and 2, export lines without an `engine` key): those versions measured
    /// only with the Ookla CLI, so `ookla`, except for a skipped run (`None`: nothing measured
    /// it, as this version records it). One shared `Arc` for all such samples.
    pub fn before_engines(outcome: Outcome) -> Option<Arc<Engine>> {
        static OOKLA: LazyLock<Arc<Engine>> = LazyLock::new(|| Arc::new(Engine::ookla()));
        (outcome != Outcome::Skipped).then(|| Arc::clone(&OOKLA))
    }
}

/// Which engine measured: the official Ookla Speedtest CLI, or this program's own HTTP engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineName {
    Ookla,
    Http,
}

impl EngineName {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineName::Ookla => "ookla",
            EngineName::Http => "http",
        }
    }
}

impl fmt::Display for EngineName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The speed-test API the HTTP engine speaks (`--http-protocol`).
///
/// - `cloudflare`: `GET {base}/__down?bytes=N`, `POST {base}/__up` (speed.cloudflare.com);
/// - `librespeed`: `GET {base}/garbage?ckSize=N`, `POST {base}/empty`, `GET {base}/getIP`, each
///   path with or without `.php` (LibreSpeed's PHP, Go and Rust back ends).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum HttpProtocol {
    Cloudflare,
    Librespeed,
}

impl HttpProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpProtocol::Cloudflare => "cloudflare",
            HttpProtocol::Librespeed => "librespeed",
        }
    }
}

impl fmt::Display for HttpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The measuring machine's addresses, as the CLI reported them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    pub internal_ip: Option<String>,
    pub external_ip: Option<String>,
    pub mac: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    /// A run that was due but not made (reserved for the scheduler).
    Skipped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Schedule,
    Manual,
    Retest,
    /// A run of a `serve --campaign` measurement campaign.
    Campaign,
}

/// The closed set of reasons a run can fail; metrics pre-initialise one series per reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// The binary is missing or not executable.
    Spawn,
    /// The run outlived `--timeout`; its process group was killed.
    Timeout,
    /// The CLI exited non-zero (or was killed by a signal) for another reason.
    Exit,
    /// Ookla refused the test: "Limit reached" / HTTP 429.
    RateLimited,
    /// The CLI could not reach the network or a server.
    NoConnectivity,
    /// The CLI printed something other than the result we expect.
    Parse,
    /// A result whose figures cannot be real (negative, zero, above the ceiling).
    Implausible,
    /// The CLI printed more than we are willing to hold.
    OutputTooLarge,
    /// Not a failure of a test but the reason one was skipped (outcome `skipped`): this
    /// month's `--data-budget` is used up.
    DataBudget,
}

impl FailureReason {
    /// Every reason, in the order of their stable codes in the store: only ever append.
    pub const ALL: [FailureReason; 9] = [
        FailureReason::Spawn,
        FailureReason::Timeout,
        FailureReason::Exit,
        FailureReason::RateLimited,
        FailureReason::NoConnectivity,
        FailureReason::Parse,
        FailureReason::Implausible,
        FailureReason::OutputTooLarge,
        FailureReason::DataBudget,
    ];

    /// Whether a test failed for this reason; `DataBudget` is why a test was skipped instead.
    pub fn is_failure(self) -> bool {
        self != FailureReason::DataBudget
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Spawn => "spawn",
            FailureReason::Timeout => "timeout",
            FailureReason::Exit => "exit",
            FailureReason::RateLimited => "rate_limited",
            FailureReason::NoConnectivity => "no_connectivity",
            FailureReason::Parse => "parse",
            FailureReason::Implausible => "implausible",
            FailureReason::OutputTooLarge => "output_too_large",
            FailureReason::DataBudget => "data_budget",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Skipped => "skipped",
        }
    }
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Retest => "retest",
            Trigger::Campaign => "campaign",
        }
    }
}

/// Seconds as milliseconds for people, via whole microseconds, so that 0.005631 s reads 5.631
/// rather than 5.631000000000001.
pub(crate) fn millis(seconds: f64) -> f64 {
    (seconds * 1e6).round() / 1e3
}

/// A ratio as a percentage for people, to the same six significant decimals as `millis`.
pub(crate) fn percent(ratio: f64) -> f64 {
    (ratio * 1e6).round() / 1e4
}

/// Bytes per second as megabits per second, the unit of contracts and speed-test sites.
pub(crate) fn mbit_per_second(bytes_per_second: f64) -> f64 {
    bytes_per_second * 8.0 / 1e6
}

/// The longest latency a sample may report. Each phase of a test lasts seconds, so a packet
/// that took a minute to come back was never measured by it; bufferbloat at its worst is a few
/// seconds.
pub(crate) const MAX_LATENCY_SECONDS: f64 = 60.0;

/// The longest a test can move data: `--timeout`'s own limit, an hour. A byte count above
/// `--max-bandwidth` × this was never moved by one test.
pub const MAX_TEST_SECONDS: f64 = 3600.0;

/// The longest duration a run may report: a day, far beyond `--timeout`'s hour.
pub(crate) const MAX_DURATION_SECONDS: f64 = 24.0 * 60.0 * 60.0;

/// The longest server name, location, country, host, ISP name and client address, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// The longest result URL and engine URL, in bytes (the CLI's are under 100).
pub const MAX_URL_BYTES: usize = 2048;

/// The most parallel connections an engine may record (`--http-streams`' own limit).
pub(crate) const MAX_ENGINE_STREAMS: u32 = 64;

/// The longest message a stored sample may carry, in bytes. This program writes at most 300
/// (the Ookla parser cuts there); the room above it lets exports of older versions, whose cut
/// messages ended 3 bytes later, and hand-edited files import again.
pub(crate) const MAX_MESSAGE_BYTES: usize = 1024;

/// What a real measurement can report, beyond the fixed rules of [`Sample::check_plausible`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Bandwidth above this is a measurement error, not a fast line (`--max-bandwidth`); byte
    /// counts above this × [`MAX_TEST_SECONDS`] too.
    pub(crate) max_bytes_per_second: f64,
}

/// Figures that cannot be real; the message names each one and the limit it broke, e.g.
/// "upload 2e300 B/s is above 100000 Mbit/s (12500000000 B/s) (--max-bandwidth); ping 1e297 s is above 60 s".
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct Implausible(pub String);

/// A sample in a state the recorder never produces; `import` refuses it.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InvalidSample {
    #[error("a successful sample must not have a reason")]
    SuccessWithReason,
    #[error("a successful sample must not have a message: the message says why a run failed")]
    SuccessWithMessage,
    #[error(
        "a skipped sample must be scheduled (trigger schedule or retest): a manual run is never skipped for the data budget"
    )]
    ManualSkipped,
    #[error("a failed sample must have a reason")]
    FailureWithoutReason,
    #[error(
        "a failed sample cannot have reason data_budget: a run the data budget stopped is skipped, not failed"
    )]
    FailureForDataBudget,
    #[error(
        "a skipped sample must have reason data_budget, the only reason a run is skipped, not {}",
        .0.map_or("none", FailureReason::as_str)
    )]
    SkippedNotForDataBudget(Option<FailureReason>),
    #[error("a {} sample carries {} ({})", .outcome, .what, .figures.join(", "))]
    FiguresWithoutSuccess {
        outcome: &'static str,
        /// What the figures are: only a success's, or (skipped) only a run's that started.
        what: &'static str,
        figures: Vec<&'static str>,
    },
    #[error("a skipped sample must not have an engine: no engine ran, nothing was measured")]
    EngineOnSkipped,
    #[error(
        "an ookla engine has no parameters of its own (the Ookla CLI chooses them), but this one has {}",
        .0.join(", ")
    )]
    OoklaWithParameters(Vec<&'static str>),
}

/// Whether `c` can change how the text around it is shown rather than being seen itself: a
/// control character (line breaks, tabs, the escape of a terminal's colour codes, C1
/// controls), a bidirectional formatting character (Unicode's Bidi_Control property:
/// U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069), with which a server name can show
/// reversed, or reorder the line of a page, a report or a log around it, a line or paragraph
/// separator (U+2028, U+2029: a new line in editors, CSV viewers and JavaScript), or an
/// invisible one that hides inside a name (zero-width space U+200B, word joiner U+2060, the
/// byte-order mark U+FEFF).
pub(crate) fn is_hidden_formatting(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// `text` with each [`is_hidden_formatting`] character made a space; `text` itself when it
/// has none.
pub fn visible(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(is_hidden_formatting) {
        text.chars()
            .map(|c| if is_hidden_formatting(c) { ' ' } else { c })
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

/// Text no longer than `max` bytes: `text` itself, or cut on a character boundary with an
/// ellipsis, which counts towards `max`.
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

impl Sample {
    /// The sample with every text a server, the CLI or a file said ([`visible`]: server name,
    /// location, country and host, ISP, result URL, message, the engine's URL, the client's
    /// addresses) free of characters that change
    /// how text is shown. Every way in passes here before a sample is stored or shown: each
    /// engine's run ([`crate::speedtest::Runner`]) and `import`.
    pub fn visible(mut self) -> Self {
        fn clean(text: &mut Option<String>) {
            if let Some(cleaned) = text.as_deref().and_then(|t| match visible(t) {
                std::borrow::Cow::Owned(cleaned) => Some(cleaned),
                std::borrow::Cow::Borrowed(_) => None,
            }) {
                *text = Some(cleaned);
            }
        }
        if let Some(server) = &self.server {
            let mut cleaned = Server::clone(server);
            for text in [
                &mut cleaned.name,
                &mut cleaned.location,
                &mut cleaned.country,
                &mut cleaned.host,
            ] {
                clean(text);
            }
            if cleaned != **server {
                self.server = Some(Arc::new(cleaned));
            }
        }
        if let Some(isp) = &self.isp
            && let std::borrow::Cow::Owned(cleaned) = visible(isp)
        {
            self.isp = Some(cleaned.into());
        }
        clean(&mut self.result_url);
        clean(&mut self.message);
        if let Some(engine) = &self.engine
            && let Some(std::borrow::Cow::Owned(url)) = engine.url.as_deref().map(visible)
        {
            self.engine = Some(Arc::new(Engine {
                url: Some(url),
                ..Engine::clone(engine)
            }));
        }
        if let Some(client) = &mut self.client {
            for text in [
                &mut client.internal_ip,
                &mut client.external_ip,
                &mut client.mac,
            ] {
                clean(text);
            }
        }
        self
    }

    /// A run that produced no measurement, for the given reason.
    pub fn failure(
        time: Timestamp,
        trigger: Trigger,
        reason: FailureReason,
        message: impl Into<String>,
    ) -> Self {
        Sample {
            outcome: Outcome::Failure,
            reason: Some(reason),
            message: Some(message.into()),
            ..Sample::empty(time, trigger)
        }
    }

    /// A sample with only its time and trigger known: the base the parser fills in.
    pub fn empty(time: Timestamp, trigger: Trigger) -> Self {
        Sample {
            time,
            outcome: Outcome::Success,
            reason: None,
            message: None,
            trigger,
            duration_seconds: None,
            download_bytes_per_second: None,
            upload_bytes_per_second: None,
            ping_seconds: None,
            jitter_seconds: None,
            packet_loss_ratio: None,
            download_latency_seconds: None,
            upload_latency_seconds: None,
            downloaded_bytes: None,
            uploaded_bytes: None,
            server: None,
            isp: None,
            result_url: None,
            engine: None,
            client: None,
        }
    }

    pub fn is_success(&self) -> bool {
        self.outcome == Outcome::Success
    }

    /// Checks the states the flat JSON shape cannot express, so that a sample is one the
    /// recorder could have written: a reason iff not a success; `data_budget` the reason of every
    /// skipped run and of no failure; measured figures (bandwidths, latencies, packet loss) only on a
    /// success; byte counts on a success or a failure (what a failed run moved before it failed),
    /// never on a skipped run, which never started (nor its duration); no
    /// engine on a skipped run, and no HTTP parameters on an `ookla` engine.
    pub fn validate(&self) -> Result<(), InvalidSample> {
        if let Some(engine) = self.engine.as_deref() {
            if self.outcome == Outcome::Skipped {
                return Err(InvalidSample::EngineOnSkipped);
            }
            if engine.name == EngineName::Ookla {
                let parameters: Vec<&'static str> = [
                    ("protocol", engine.protocol.is_some()),
                    ("url", engine.url.is_some()),
                    ("streams", engine.streams.is_some()),
                    ("duration_seconds", engine.duration_seconds.is_some()),
                    ("ramp_up_seconds", engine.ramp_up_seconds.is_some()),
                ]
                .into_iter()
                .filter_map(|(name, present)| present.then_some(name))
                .collect();
                if !parameters.is_empty() {
                    return Err(InvalidSample::OoklaWithParameters(parameters));
                }
            }
        }
        match (self.outcome, self.reason) {
            (Outcome::Success, Some(_)) => return Err(InvalidSample::SuccessWithReason),
            (Outcome::Failure, None) => return Err(InvalidSample::FailureWithoutReason),
            (Outcome::Failure, Some(FailureReason::DataBudget)) => {
                return Err(InvalidSample::FailureForDataBudget);
            }
            (Outcome::Skipped, reason) if reason != Some(FailureReason::DataBudget) => {
                return Err(InvalidSample::SkippedNotForDataBudget(reason));
            }
            _ => {}
        }
        if self.is_success() {
            return match self.message {
                Some(_) => Err(InvalidSample::SuccessWithMessage),
                None => Ok(()),
            };
        }
        if self.outcome == Outcome::Skipped && self.trigger == Trigger::Manual {
            return Err(InvalidSample::ManualSkipped);
        }
        let mut figures: Vec<&'static str> = [
            ("download", self.download_bytes_per_second.is_some()),
            ("upload", self.upload_bytes_per_second.is_some()),
            ("ping", self.ping_seconds.is_some()),
            ("jitter", self.jitter_seconds.is_some()),
            ("packet loss ratio", self.packet_loss_ratio.is_some()),
            ("download latency", self.download_latency_seconds.is_some()),
            ("upload latency", self.upload_latency_seconds.is_some()),
            // A failed run may have moved data before it failed (the HTTP engine counts it, for
            // --data-budget); a skipped run never started, so it moved none.
            (
                "downloaded bytes",
                self.outcome == Outcome::Skipped && self.downloaded_bytes.is_some(),
            ),
            (
                "uploaded bytes",
                self.outcome == Outcome::Skipped && self.uploaded_bytes.is_some(),
            ),
            // The recorder keeps the server, ISP, result and addresses of successes only.
            ("server", self.server.is_some()),
            ("ISP", self.isp.is_some()),
            ("result URL", self.result_url.is_some()),
            ("client addresses", self.client.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect();
        if self.outcome == Outcome::Skipped && self.duration_seconds.is_some() {
            figures.push("duration");
        }
        if figures.is_empty() {
            Ok(())
        } else {
            let (outcome, what) = if self.outcome == Outcome::Skipped {
                ("skipped", "what a run that never started cannot have")
            } else {
                ("failed", "what only a success has")
            };
            Err(InvalidSample::FiguresWithoutSuccess {
                outcome,
                what,
                figures,
            })
        }
    }

    /// The plausibility rules every sample passes before it is stored, whichever way it came
    /// in (the Ookla CLI's output, `import`, any later engine): no negative, NaN or infinite
    /// figure, packet loss within 0–1, latencies at most [`MAX_LATENCY_SECONDS`], bandwidth
    /// at most `limits.max_bytes_per_second`, byte counts at most that × [`MAX_TEST_SECONDS`],
    /// a duration of at most [`MAX_DURATION_SECONDS`]; names and addresses at most
    /// [`MAX_NAME_BYTES`], the result URL [`MAX_URL_BYTES`], the message
    /// [`MAX_MESSAGE_BYTES`]; a success has download, upload and ping figures, and not only
    /// zero bandwidths. A failure may carry no figures at all. The engine's parameters: streams
    /// within 1–[`MAX_ENGINE_STREAMS`], duration and ramp-up at most [`MAX_TEST_SECONDS`] and
    /// the ramp-up shorter than the duration, the URL an `http://` or `https://` one of at most
    /// [`MAX_URL_BYTES`].
    pub fn check_plausible(&self, limits: &Limits) -> Result<(), Implausible> {
        let engine = self.engine.as_deref();
        let bandwidth = (
            Some(limits.max_bytes_per_second),
            " B/s",
            " (--max-bandwidth)",
        );
        let latency = (Some(MAX_LATENCY_SECONDS), " s", "");
        let figures = [
            ("download", self.download_bytes_per_second, bandwidth),
            ("upload", self.upload_bytes_per_second, bandwidth),
            ("ping", self.ping_seconds, latency),
            ("jitter", self.jitter_seconds, latency),
            ("download latency", self.download_latency_seconds, latency),
            ("upload latency", self.upload_latency_seconds, latency),
            (
                "packet loss ratio",
                self.packet_loss_ratio,
                (Some(1.0), "", ""),
            ),
            (
                "duration",
                self.duration_seconds,
                (Some(MAX_DURATION_SECONDS), " s", ""),
            ),
            (
                "engine duration",
                engine.and_then(|e| e.duration_seconds),
                (Some(MAX_TEST_SECONDS), " s", ""),
            ),
            (
                "engine ramp-up",
                engine.and_then(|e| e.ramp_up_seconds),
                (Some(MAX_TEST_SECONDS), " s", ""),
            ),
        ];
        let mut problems: Vec<String> = figures
            .into_iter()
            .filter_map(|(name, value, (max, unit, flag))| {
                let value = value?;
                let shown = readable(value);
                let max_ok = max.is_none_or(|max| value <= max);
                // Written as comparisons that NaN fails, so NaN lands in the last arm.
                if value >= 0.0 && value.is_finite() && max_ok {
                    None
                } else if value < 0.0 {
                    Some(format!("{name} {shown}{unit} is negative"))
                } else if let Some(max) = max.filter(|max| value > *max) {
                    // A speed limit is --max-bandwidth, which people write in bits: say it
                    // so too, beside the bytes per second the sample holds.
                    let max = if unit == " B/s" {
                        format!(
                            "{} ({}{unit})",
                            crate::units::for_people::speed(max),
                            readable(max)
                        )
                    } else {
                        format!("{}{unit}", readable(max))
                    };
                    Some(format!("{name} {shown}{unit} is above {max}{flag}"))
                } else if value.is_infinite() {
                    Some(format!("{name} is infinite"))
                } else {
                    Some(format!("{name} is not a number"))
                }
            })
            .collect();
        if let Some(engine) = engine {
            if let Some(streams) = engine
                .streams
                .filter(|streams| !(1..=MAX_ENGINE_STREAMS).contains(streams))
            {
                problems.push(format!(
                    "engine streams {streams} is outside 1 to {MAX_ENGINE_STREAMS}"
                ));
            }
            if let (Some(ramp_up), Some(duration)) =
                (engine.ramp_up_seconds, engine.duration_seconds)
                && ramp_up >= duration
            {
                problems.push(format!(
                    "engine ramp-up {} s is not shorter than its duration {} s",
                    readable(ramp_up),
                    readable(duration)
                ));
            }
            if let Some(url) = engine.url.as_deref()
                && url.len() <= MAX_URL_BYTES
                && !is_http_url(url)
            {
                problems.push("engine url is not an http:// or https:// URL".to_owned());
            }
            // It would be exported, served by the API and shown in /metrics; the engine never
            // records one (--http-server refuses them). Not echoed.
            if engine
                .url
                .as_deref()
                .is_some_and(|url| crate::cli::userinfo_redacted(url).is_some())
            {
                problems.push(
                    "engine url carries a user name or password, which the HTTP engine never \
                     records (--http-server refuses them): remove them"
                        .to_owned(),
                );
            }
            // --http-server refuses them (the engine adds the API's paths and queries), and a
            // query may hold a key. Not echoed.
            if engine
                .url
                .as_deref()
                .is_some_and(|url| url.contains(['?', '#']))
            {
                problems.push(
                    "engine url has a ?query or #fragment, which the HTTP engine never records \
                     (--http-server refuses them): remove it"
                        .to_owned(),
                );
            }
        }
        // A link the API serves and the export writes; Ookla's never carry credentials.
        if self
            .result_url
            .as_deref()
            .is_some_and(|url| crate::cli::userinfo_redacted(url).is_some())
        {
            problems.push(
                "result url carries a user name or password, which no engine records: remove them"
                    .to_owned(),
            );
        }
        let max_bytes = limits.max_bytes_per_second * MAX_TEST_SECONDS;
        for (name, bytes) in [
            ("downloaded bytes", self.downloaded_bytes),
            ("uploaded bytes", self.uploaded_bytes),
        ] {
            // As f64, which rounds u64::MAX up: still above any finite limit worth having.
            if let Some(bytes) = bytes.filter(|&bytes| bytes as f64 > max_bytes) {
                problems.push(format!(
                    "{name} {bytes} B is above {} B (--max-bandwidth × {} s)",
                    readable(max_bytes),
                    MAX_TEST_SECONDS
                ));
            }
        }
        if self.is_success() {
            let missing: Vec<&str> = [
                ("download", self.download_bytes_per_second),
                ("upload", self.upload_bytes_per_second),
                ("ping", self.ping_seconds),
            ]
            .into_iter()
            .filter_map(|(name, value)| value.is_none().then_some(name))
            .collect();
            if let Some((last, rest)) = missing.split_last() {
                let article = if missing[0] == "upload" { "an" } else { "a" };
                let names = if rest.is_empty() {
                    (*last).to_owned()
                } else {
                    format!("{} or {last}", rest.join(", "))
                };
                problems.push(format!("a success without {article} {names} figure"));
            }
            if (self.download_bytes_per_second, self.upload_bytes_per_second)
                == (Some(0.0), Some(0.0))
            {
                problems.push("download and upload are both 0 B/s".to_owned());
            }
        }
        let server = self.server.as_deref();
        let client = self.client.as_ref();
        let texts = [
            (
                "server name",
                server.and_then(|s| s.name.as_deref()),
                MAX_NAME_BYTES,
            ),
            (
                "server location",
                server.and_then(|s| s.location.as_deref()),
                MAX_NAME_BYTES,
            ),
            (
                "server country",
                server.and_then(|s| s.country.as_deref()),
                MAX_NAME_BYTES,
            ),
            (
                "server host",
                server.and_then(|s| s.host.as_deref()),
                MAX_NAME_BYTES,
            ),
            ("isp", self.isp.as_deref(), MAX_NAME_BYTES),
            ("result url", self.result_url.as_deref(), MAX_URL_BYTES),
            (
                "engine url",
                engine.and_then(|e| e.url.as_deref()),
                MAX_URL_BYTES,
            ),
            (
                "client internal ip",
                client.and_then(|c| c.internal_ip.as_deref()),
                MAX_NAME_BYTES,
            ),
            (
                "client external ip",
                client.and_then(|c| c.external_ip.as_deref()),
                MAX_NAME_BYTES,
            ),
            (
                "client mac",
                client.and_then(|c| c.mac.as_deref()),
                MAX_NAME_BYTES,
            ),
            ("message", self.message.as_deref(), MAX_MESSAGE_BYTES),
        ];
        for (name, text, max) in texts {
            if let Some(text) = text.filter(|text| text.len() > max) {
                problems.push(format!(
                    "{name} of {} bytes is longer than {max} bytes",
                    text.len()
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Implausible(problems.join("; ")))
        }
    }
}

/// `http://` or `https://` (scheme in any case) followed by at least a host.
fn is_http_url(url: &str) -> bool {
    ["http://", "https://"].into_iter().any(|scheme| {
        url.get(..scheme.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
            && url.len() > scheme.len()
    })
}

/// A figure for a message: plain digits while they stay short, scientific notation beyond, so
/// an absurd 1e300 does not fill the message with 300 zeros.
fn readable(value: f64) -> String {
    if value != 0.0 && !(1e-6..1e15).contains(&value.abs()) {
        format!("{value:e}")
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests;
