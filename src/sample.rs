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
pub fn millis(seconds: f64) -> f64 {
    (seconds * 1e6).round() / 1e3
}

/// A ratio as a percentage for people, to the same six significant decimals as `millis`.
pub fn percent(ratio: f64) -> f64 {
    (ratio * 1e6).round() / 1e4
}

/// Bytes per second as megabits per second, the unit of contracts and speed-test sites.
pub fn mbit_per_second(bytes_per_second: f64) -> f64 {
    bytes_per_second * 8.0 / 1e6
}

/// The longest latency a sample may report. Each phase of a test lasts seconds, so a packet
/// that took a minute to come back was never measured by it; bufferbloat at its worst is a few
/// seconds.
pub const MAX_LATENCY_SECONDS: f64 = 60.0;

/// The longest a test can move data: `--timeout`'s own limit, an hour. A byte count above
/// `--max-bandwidth` × this was never moved by one test.
pub const MAX_TEST_SECONDS: f64 = 3600.0;

/// The longest duration a run may report: a day, far beyond `--timeout`'s hour.
pub const MAX_DURATION_SECONDS: f64 = 24.0 * 60.0 * 60.0;

/// The longest server name, location, country, host, ISP name and client address, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// The longest result URL and engine URL, in bytes (the CLI's are under 100).
pub const MAX_URL_BYTES: usize = 2048;

/// The most parallel connections an engine may record (`--http-streams`' own limit).
pub const MAX_ENGINE_STREAMS: u32 = 64;

/// The longest message a stored sample may carry, in bytes. This program writes at most 300
/// (the Ookla parser cuts there); the room above it lets exports of older versions, whose cut
/// messages ended 3 bytes later, and hand-edited files import again.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// What a real measurement can report, beyond the fixed rules of [`Sample::check_plausible`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Bandwidth above this is a measurement error, not a fast line (`--max-bandwidth`); byte
    /// counts above this × [`MAX_TEST_SECONDS`] too.
    pub max_bytes_per_second: f64,
}

/// Figures that cannot be real; the message names each one and the limit it broke, e.g.
/// "upload 2e300 B/s is above 12500000000 B/s (--max-bandwidth); ping 1e297 s is above 60 s".
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
/// controls), or a bidirectional formatting character (Unicode's Bidi_Control property:
/// U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069), with which a server name can show
/// reversed, or reorder the line of a page, a report or a log around it.
pub fn is_hidden_formatting(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
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
pub fn cut(text: &str, max: usize) -> String {
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
                    Some(format!(
                        "{name} {shown}{unit} is above {}{unit}{flag}",
                        readable(max)
                    ))
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
mod tests {
    use super::*;

    #[test]
    fn failure_serialises_unknowns_as_null() {
        let sample = Sample::failure(
            Timestamp::from_millis(1_700_000_000_000),
            Trigger::Manual,
            FailureReason::RateLimited,
            "Limit reached",
        );
        let json = serde_json::to_value(&sample).unwrap();
        assert_eq!(json["time"], "2023-11-14T22:13:20.000Z");
        assert_eq!(json["outcome"], "failure");
        assert_eq!(json["reason"], "rate_limited");
        assert_eq!(json["trigger"], "manual");
        assert!(json["download_bytes_per_second"].is_null());
        assert!(json["server"].is_null());
        assert!(json.get("client").is_none(), "no client unless --store-ip");
    }

    #[test]
    fn reason_names_are_their_serde_names() {
        for reason in FailureReason::ALL {
            assert_eq!(
                serde_json::to_value(reason).unwrap(),
                serde_json::Value::from(reason.as_str())
            );
        }
    }

    #[test]
    fn units_for_people_read_as_decimals() {
        assert_eq!(millis(0.005631), 5.631);
        assert_eq!(millis(0.00048), 0.48);
        assert_eq!(percent(0.015), 1.5);
        assert_eq!(percent(0.0), 0.0);
        assert_eq!(mbit_per_second(62_500_000.0), 500.0);
    }

    #[test]
    fn validate_enforces_reason_iff_failure() {
        let mut sample = Sample::empty(Timestamp::from_millis(0), Trigger::Manual);
        assert_eq!(sample.validate(), Ok(()));
        sample.reason = Some(FailureReason::Exit);
        assert_eq!(sample.validate(), Err(InvalidSample::SuccessWithReason));
        sample.outcome = Outcome::Failure;
        sample.reason = None;
        assert_eq!(sample.validate(), Err(InvalidSample::FailureWithoutReason));
    }

    #[test]
    fn validate_refuses_states_the_scheduler_never_produces() {
        let time = Timestamp::from_millis(0);
        let budget = Sample {
            outcome: Outcome::Skipped,
            ..Sample::failure(
                time,
                Trigger::Schedule,
                FailureReason::DataBudget,
                "used up",
            )
        };
        assert_eq!(budget.validate(), Ok(()), "what the scheduler writes");
        let failed = Sample::failure(time, Trigger::Manual, FailureReason::Timeout, "timed out");
        assert_eq!(
            Sample {
                duration_seconds: Some(120.0),
                ..failed.clone()
            }
            .validate(),
            Ok(()),
            "a failure lasted as long as it did"
        );
        assert_eq!(
            Sample {
                downloaded_bytes: Some(20_000_000),
                uploaded_bytes: Some(0),
                ..failed.clone()
            }
            .validate(),
            Ok(()),
            "a failure moved what it moved before it failed"
        );
        let cases: [(Sample, &str); 7] = [
            (
                Sample {
                    outcome: Outcome::Failure,
                    ..budget.clone()
                },
                "a failed sample cannot have reason data_budget: a run the data budget stopped is skipped, not failed",
            ),
            (
                Sample {
                    reason: Some(FailureReason::Exit),
                    ..budget.clone()
                },
                "a skipped sample must have reason data_budget, the only reason a run is skipped, not exit",
            ),
            (
                Sample {
                    reason: Some(FailureReason::RateLimited),
                    ..budget.clone()
                },
                "a skipped sample must have reason data_budget, the only reason a run is skipped, not rate_limited",
            ),
            (
                Sample {
                    reason: None,
                    ..budget.clone()
                },
                "a skipped sample must have reason data_budget, the only reason a run is skipped, not none",
            ),
            (
                Sample {
                    download_bytes_per_second: Some(1e6),
                    downloaded_bytes: Some(1000),
                    duration_seconds: Some(20.0),
                    ..budget.clone()
                },
                "a skipped sample carries what a run that never started cannot have (download, downloaded bytes, duration)",
            ),
            (
                Sample {
                    ping_seconds: Some(0.01),
                    packet_loss_ratio: Some(0.0),
                    uploaded_bytes: Some(5),
                    ..failed.clone()
                },
                "a failed sample carries what only a success has (ping, packet loss ratio)",
            ),
            (
                Sample {
                    uploaded_bytes: Some(0),
                    ..budget.clone()
                },
                "a skipped sample carries what a run that never started cannot have (uploaded bytes)",
            ),
        ];
        for (sample, message) in cases {
            assert_eq!(
                sample.validate().map_err(|err| err.to_string()),
                Err(message.to_owned())
            );
        }
    }

    fn http_engine() -> Engine {
        Engine {
            name: EngineName::Http,
            protocol: Some(HttpProtocol::Cloudflare),
            url: Some("https://speed.cloudflare.com".into()),
            streams: Some(4),
            duration_seconds: Some(10.0),
            ramp_up_seconds: Some(2.0),
        }
    }

    #[test]
    fn validate_refuses_engines_the_recorder_never_writes() {
        let time = Timestamp::from_millis(0);
        let failed = Sample::failure(time, Trigger::Manual, FailureReason::Timeout, "timed out");
        for engine in [Engine::ookla(), http_engine()] {
            let sample = Sample {
                engine: Some(Arc::new(engine)),
                ..failed.clone()
            };
            assert_eq!(sample.validate(), Ok(()));
        }
        let skipped = Sample {
            outcome: Outcome::Skipped,
            engine: Some(Arc::new(Engine::ookla())),
            ..Sample::failure(
                time,
                Trigger::Schedule,
                FailureReason::DataBudget,
                "used up",
            )
        };
        let ookla_with = Sample {
            engine: Some(Arc::new(Engine {
                name: EngineName::Ookla,
                ..http_engine()
            })),
            ..failed.clone()
        };
        let ookla_with_streams = Sample {
            engine: Some(Arc::new(Engine {
                streams: Some(1),
                ..Engine::ookla()
            })),
            ..failed.clone()
        };
        let cases = [
            (
                skipped,
                "a skipped sample must not have an engine: no engine ran, nothing was measured",
            ),
            (
                ookla_with,
                "an ookla engine has no parameters of its own (the Ookla CLI chooses them), but this one has protocol, url, streams, duration_seconds, ramp_up_seconds",
            ),
            (
                ookla_with_streams,
                "an ookla engine has no parameters of its own (the Ookla CLI chooses them), but this one has streams",
            ),
        ];
        for (sample, message) in cases {
            assert_eq!(
                sample.validate().map_err(|err| err.to_string()),
                Err(message.to_owned())
            );
        }
    }

    #[test]
    fn check_plausible_refuses_impossible_engine_parameters() {
        let limits = Limits {
            max_bytes_per_second: 1.25e9,
        };
        let with = |engine: Engine| Sample {
            engine: Some(Arc::new(engine)),
            ..Sample::failure(
                Timestamp::from_millis(0),
                Trigger::Manual,
                FailureReason::Timeout,
                "timed out",
            )
        };
        assert_eq!(with(http_engine()).check_plausible(&limits), Ok(()));
        let at_the_limits = Engine {
            url: Some(format!("HTTP://{}", "x".repeat(MAX_URL_BYTES - 7))),
            streams: Some(MAX_ENGINE_STREAMS),
            duration_seconds: Some(MAX_TEST_SECONDS),
            ramp_up_seconds: Some(0.0),
            ..http_engine()
        };
        assert_eq!(with(at_the_limits).check_plausible(&limits), Ok(()));
        let cases = [
            (
                Engine {
                    streams: Some(0),
                    ..http_engine()
                },
                "engine streams 0 is outside 1 to 64",
            ),
            (
                Engine {
                    streams: Some(65),
                    ..http_engine()
                },
                "engine streams 65 is outside 1 to 64",
            ),
            (
                Engine {
                    duration_seconds: Some(f64::INFINITY),
                    ramp_up_seconds: Some(f64::NAN),
                    ..http_engine()
                },
                "engine duration inf s is above 3600 s; engine ramp-up is not a number",
            ),
            (
                Engine {
                    duration_seconds: Some(-1.0),
                    ramp_up_seconds: Some(3600.5),
                    ..http_engine()
                },
                "engine duration -1 s is negative; engine ramp-up 3600.5 s is above 3600 s; engine ramp-up 3600.5 s is not shorter than its duration -1 s",
            ),
            (
                Engine {
                    duration_seconds: Some(10.0),
                    ramp_up_seconds: Some(10.0),
                    ..http_engine()
                },
                "engine ramp-up 10 s is not shorter than its duration 10 s",
            ),
            (
                Engine {
                    url: Some("ftp://speed.example".into()),
                    ..http_engine()
                },
                "engine url is not an http:// or https:// URL",
            ),
            (
                Engine {
                    url: Some("https://".into()),
                    ..http_engine()
                },
                "engine url is not an http:// or https:// URL",
            ),
            (
                Engine {
                    url: Some("https://user:s3cr3t@speed.example/x".into()),
                    ..http_engine()
                },
                "engine url carries a user name or password, which the HTTP engine never \
                 records (--http-server refuses them): remove them",
            ),
            (
                Engine {
                    url: Some(format!("https://{}", "x".repeat(MAX_URL_BYTES))),
                    ..http_engine()
                },
                "engine url of 2056 bytes is longer than 2048 bytes",
            ),
        ];
        for (engine, message) in cases {
            assert_eq!(
                with(engine).check_plausible(&limits),
                Err(Implausible(message.to_owned()))
            );
        }
    }

    #[test]
    fn cut_keeps_short_text_and_ends_long_text_with_an_ellipsis() {
        assert_eq!(cut("short", 256), "short");
        let long = cut(&"é".repeat(200), 256);
        assert!(long.ends_with('…') && long.len() <= 256 && long.len() >= 254);
        assert_eq!(cut(&"x".repeat(300), 10), "xxxxxxx…");
    }

    #[test]
    fn check_plausible_refuses_impossible_figures_and_names_them() {
        let limits = Limits {
            max_bytes_per_second: 12.5e9,
        };
        let good = Sample {
            download_bytes_per_second: Some(1e6),
            upload_bytes_per_second: Some(2e6),
            ping_seconds: Some(0.0125),
            packet_loss_ratio: Some(0.0),
            duration_seconds: Some(20.5),
            ..Sample::empty(Timestamp::from_millis(0), Trigger::Manual)
        };
        assert_eq!(good.check_plausible(&limits), Ok(()));
        let at_the_limits = Sample {
            downloaded_bytes: Some(45_000_000_000_000),
            duration_seconds: Some(86400.0),
            isp: Some(Arc::from("é".repeat(128))),
            result_url: Some("u".repeat(2048)),
            message: Some("m".repeat(1024)),
            ..good.clone()
        };
        assert_eq!(at_the_limits.check_plausible(&limits), Ok(()));
        type Change = fn(&mut Sample);
        let cases: [(Change, &str); 21] = [
            (
                |s| s.download_bytes_per_second = Some(-1e6),
                "download -1000000 B/s is negative",
            ),
            (
                |s| s.upload_bytes_per_second = Some(1e308),
                "upload 1e308 B/s is above 12500000000 B/s (--max-bandwidth)",
            ),
            (|s| s.ping_seconds = Some(-500.0), "ping -500 s is negative"),
            (
                |s| s.packet_loss_ratio = Some(7.0),
                "packet loss ratio 7 is above 1",
            ),
            (
                |s| s.jitter_seconds = Some(61.0),
                "jitter 61 s is above 60 s",
            ),
            (
                |s| s.download_latency_seconds = Some(f64::NAN),
                "download latency is not a number",
            ),
            (
                |s| s.upload_latency_seconds = Some(f64::INFINITY),
                "upload latency inf s is above 60 s",
            ),
            (
                |s| s.duration_seconds = Some(f64::INFINITY),
                "duration inf s is above 86400 s",
            ),
            (
                |s| s.duration_seconds = Some(f64::NEG_INFINITY),
                "duration -inf s is negative",
            ),
            (
                |s| {
                    s.download_bytes_per_second = None;
                    s.upload_bytes_per_second = None;
                },
                "a success without a download or upload figure",
            ),
            (
                |s| {
                    s.download_bytes_per_second = Some(0.0);
                    s.upload_bytes_per_second = Some(0.0);
                },
                "download and upload are both 0 B/s",
            ),
            (
                |s| {
                    s.download_bytes_per_second = Some(0.0);
                    s.upload_bytes_per_second = None;
                },
                "a success without an upload figure",
            ),
            // Issue 11: a byte count no test could move, a duration of centuries, a success
            // missing a figure the CLI path insists on, text of any length.
            (
                |s| s.downloaded_bytes = Some(u64::MAX),
                "downloaded bytes 18446744073709551615 B is above 45000000000000 B (--max-bandwidth × 3600 s)",
            ),
            (
                |s| s.uploaded_bytes = Some(45_000_000_000_001),
                "uploaded bytes 45000000000001 B is above 45000000000000 B (--max-bandwidth × 3600 s)",
            ),
            (
                |s| s.duration_seconds = Some(1e300),
                "duration 1e300 s is above 86400 s",
            ),
            (|s| s.ping_seconds = None, "a success without a ping figure"),
            (
                |s| {
                    s.download_bytes_per_second = None;
                    s.upload_bytes_per_second = None;
                    s.ping_seconds = None;
                },
                "a success without a download, upload or ping figure",
            ),
            (
                |s| s.isp = Some(Arc::from("x".repeat(1_200_000))),
                "isp of 1200000 bytes is longer than 256 bytes",
            ),
            (
                |s| {
                    s.server = Some(Arc::new(Server {
                        id: Some(1),
                        name: Some("n".repeat(257)),
                        location: Some("l".repeat(256)),
                        country: Some("c".repeat(300)),
                        host: Some("h".repeat(1000)),
                    }))
                },
                "server name of 257 bytes is longer than 256 bytes; \
                 server country of 300 bytes is longer than 256 bytes; \
                 server host of 1000 bytes is longer than 256 bytes",
            ),
            (
                |s| s.result_url = Some(format!("https://{}", "u".repeat(2041))),
                "result url of 2049 bytes is longer than 2048 bytes",
            ),
            (
                |s| s.message = Some("m".repeat(1025)),
                "message of 1025 bytes is longer than 1024 bytes",
            ),
        ];
        for (change, message) in cases {
            let mut sample = good.clone();
            change(&mut sample);
            assert_eq!(
                sample.check_plausible(&limits),
                Err(Implausible(message.to_owned()))
            );
        }
        let failure = Sample::failure(
            Timestamp::from_millis(0),
            Trigger::Manual,
            FailureReason::Exit,
            "exit status 2",
        );
        assert_eq!(
            failure.check_plausible(&limits),
            Ok(()),
            "no figures needed"
        );
        let failure = Sample {
            ping_seconds: Some(-1.0),
            ..failure
        };
        assert!(
            failure.check_plausible(&limits).is_err(),
            "but none impossible"
        );
    }
}
