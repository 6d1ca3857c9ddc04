//! The HTTP engine: download, upload and latency measured over HTTP/1.1 against a
//! Cloudflare-style or LibreSpeed server (`--http-server`), with no external program.

use std::time::Duration;

use crate::sample::{Engine, EngineName, FailureReason, HttpProtocol, Sample, Trigger};
use crate::time::Timestamp;

/// The default `--http-server`: Cloudflare's public speed test, over HTTPS.
pub const DEFAULT_SERVER: &str = "https://speed.cloudflare.com";

/// How the HTTP engine measures; built from the command-line flags.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// The server's base URL, `http://` or `https://`, without a trailing slash; the API's
    /// paths are joined to it.
    pub server: String,
    /// The API to speak; `None`: detect it from what the server answers.
    pub protocol: Option<HttpProtocol>,
    /// Parallel TCP connections per direction, at least 1.
    pub streams: u32,
    /// How long each direction transfers, ramp-up included.
    pub duration: Duration,
    /// The whole run (latency, download, upload) ends as failure `timeout` after this.
    pub timeout: Duration,
    /// Keep the client's address the server reports (`--store-ip`).
    pub store_ip: bool,
    /// Bandwidth above this is failure `implausible` (`--max-bandwidth`), in bytes per second.
    pub max_bytes_per_second: f64,
}

impl HttpConfig {
    /// The part of each direction left out of its bandwidth: a fifth of it, TCP's slow start
    /// and the first requests' set-up.
    pub fn ramp_up(&self) -> Duration {
        self.duration / 5
    }

    /// What every sample of this engine records about it.
    pub fn describe(&self) -> Engine {
        Engine {
            name: EngineName::Http,
            protocol: self.protocol,
            url: Some(self.server.clone()),
            streams: Some(self.streams),
            duration_seconds: Some(self.duration.as_secs_f64()),
            ramp_up_seconds: Some(self.ramp_up().as_secs_f64()),
        }
    }

    /// The engine in a few words for the start-up log, e.g. "HTTP engine, cloudflare API at
    /// https://speed.cloudflare.com, 4 streams, 10s per direction".
    pub fn summary(&self) -> String {
        let protocol = self
            .protocol
            .map_or("the API it detects".to_owned(), |p| format!("{p} API"));
        format!(
            "HTTP engine, {protocol} at {}, {} stream{}, {} per direction",
            self.server,
            self.streams,
            if self.streams == 1 { "" } else { "s" },
            humantime::format_duration(self.duration)
        )
    }
}

/// The HTTP engine, configured.
#[derive(Debug)]
pub struct HttpEngine {
    config: HttpConfig,
}

impl HttpEngine {
    pub fn new(config: HttpConfig) -> Self {
        HttpEngine { config }
    }

    /// Measures once, the run started at `time`; never an error: every way a run can go wrong
    /// is a failed sample.
    pub async fn measure(&self, time: Timestamp, trigger: Trigger) -> Sample {
        Sample::failure(
            time,
            trigger,
            FailureReason::NoConnectivity,
            format!("the HTTP engine cannot measure {} yet", self.config.server),
        )
    }
}
