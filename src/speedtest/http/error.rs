//! Every way an HTTP-engine run fails, each mapped to a [`FailureReason`] and a message that
//! names the host and the cause.

use std::time::Duration;

use crate::sample::{FailureReason, HttpProtocol};
use crate::time::Timestamp;

use super::stats::MIN_MEASURED_BYTES;

/// A failed run of the HTTP engine.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EngineError {
    /// DNS gave no address for the host.
    #[error("cannot resolve {host}: {cause}")]
    Resolve { host: String, cause: String },
    /// No address of the host accepted a TCP connection.
    #[error("cannot connect to {host} ({address}): {cause}")]
    Connect {
        host: String,
        address: String,
        cause: String,
    },
    /// The TLS handshake failed (untrusted certificate, wrong name, no common cipher…).
    #[error("TLS handshake with {host} failed: {cause}")]
    Tls { host: String, cause: String },
    /// A connection broke (reset, closed, not HTTP) during a request.
    #[error("{request} to {host} failed: {cause}")]
    Broken {
        host: String,
        request: String,
        cause: String,
    },
    /// The server broke HTTP itself (an unparsable answer, headers too large, a malformed
    /// chunk): the path carried its bytes, the server is at fault.
    #[error("{request} to {host} got an answer that is not valid HTTP/1.1: {cause}")]
    Malformed {
        host: String,
        request: String,
        cause: String,
    },
    /// An upload was answered before its body had been sent: the server did not read it, so
    /// what the path carried of it says nothing about an upload to a speed-test server.
    #[error(
        "{request} to {host} was answered after {sent} of its {asked} bytes had been sent: the server did not read the upload, so it is not a speed-test server of that API"
    )]
    EarlyAnswer {
        host: String,
        request: String,
        sent: u64,
        asked: u64,
    },
    /// A body ended before its `Content-Length`: the connection closed early.
    #[error(
        "{request} to {host} was cut short: {received} of {expected} bytes arrived before the connection closed"
    )]
    Truncated {
        host: String,
        request: String,
        received: u64,
        expected: u64,
    },
    /// A download answered in full, but with fewer bytes than it asked for: not a speed-test
    /// server of the API (a web server answering every path with one page, a captive portal).
    #[error(
        "{request} to {host} answered {received} bytes, not the {asked} asked for: not a speed-test server of that API"
    )]
    Short {
        host: String,
        request: String,
        received: u64,
        asked: u64,
    },
    /// A small request (a probe, `getIP`) was not answered in time.
    #[error("{what} {host} took longer than {}", humantime::format_duration(*.limit))]
    Slow {
        host: String,
        what: &'static str,
        limit: Duration,
    },
    /// The server refused with HTTP 429.
    #[error(
        "{host} answered {request} with HTTP 429 Too Many Requests{}",
        .until.map_or(String::new(), |t| format!("; no test before {t} (Retry-After)"))
    )]
    RateLimited {
        host: String,
        request: String,
        until: Option<Timestamp>,
    },
    /// An earlier 429's `Retry-After` has not passed yet, so nothing was sent.
    #[error(
        "{host} asked not to be tested before {until} (Retry-After of an HTTP 429); no request was sent"
    )]
    Waiting { host: String, until: Timestamp },
    /// Any other HTTP error status.
    #[error("{host} answered {request} with HTTP {status}")]
    Status {
        host: String,
        request: String,
        status: String,
    },
    /// The server refused every probe of the API asked for (`wanted`), or of both.
    #[error(
        "{host} {}: {tried}",
        .wanted.map_or("speaks neither speed-test API".to_owned(), |p| format!("does not speak the {p} API (--http-protocol)"))
    )]
    UnknownApi {
        host: String,
        wanted: Option<HttpProtocol>,
        tried: String,
    },
    /// A direction moved too little after its ramp-up to be measured.
    #[error(
        "{direction} with {host} moved only {bytes} bytes in the {seconds:.1} s after ramp-up ({readings} readings): too little to measure (at least {MIN_MEASURED_BYTES} bytes needed)"
    )]
    TooLittle {
        host: String,
        direction: &'static str,
        bytes: u64,
        seconds: f64,
        readings: usize,
    },
    /// Fewer idle-latency probes answered than needed.
    #[error("only {answered} of {sent} latency probes to {host} were answered")]
    Latency {
        host: String,
        answered: usize,
        sent: usize,
    },
    /// The whole run outlived `--timeout`.
    #[error("the HTTP test of {host} did not finish within {} (--timeout)", humantime::format_duration(*.limit))]
    Timeout { host: String, limit: Duration },
    /// A task of the engine ended abnormally (a bug, not the network).
    #[error("the HTTP engine failed internally: {0}")]
    Internal(String),
}

impl EngineError {
    /// The failure reason a sample records for this error.
    ///
    /// DNS, connect and TLS (their time-outs included), a broken or truncated connection and
    /// too little data moved are `no_connectivity`: the path did not carry a test. A 429 (or
    /// its wait) is `rate_limited`; the run outliving `--timeout` and a probe never answered
    /// are `timeout`; an HTTP error status, an answer that is not valid HTTP, an upload answered
    /// unread or a server that speaks neither API is `exit`: the test ended on the server's
    /// refusal or fault, which says nothing about the line.
    pub(crate) fn reason(&self) -> FailureReason {
        match self {
            EngineError::Resolve { .. }
            | EngineError::Connect { .. }
            | EngineError::Tls { .. }
            | EngineError::Broken { .. }
            | EngineError::Truncated { .. }
            | EngineError::TooLittle { .. }
            | EngineError::Latency { .. } => FailureReason::NoConnectivity,
            EngineError::RateLimited { .. } | EngineError::Waiting { .. } => {
                FailureReason::RateLimited
            }
            EngineError::Slow { .. } | EngineError::Timeout { .. } => FailureReason::Timeout,
            EngineError::Status { .. }
            | EngineError::Short { .. }
            | EngineError::Malformed { .. }
            | EngineError::EarlyAnswer { .. }
            | EngineError::UnknownApi { .. }
            | EngineError::Internal(_) => FailureReason::Exit,
        }
    }

    /// Until when the server asked not to be tested again, for a 429 with `Retry-After`.
    pub(crate) fn retry_after(&self) -> Option<Timestamp> {
        match self {
            EngineError::RateLimited { until, .. } => *until,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_host_and_the_cause() {
        let tls = EngineError::Tls {
            host: "127.0.0.1".into(),
            cause: "invalid peer certificate: UnknownIssuer".into(),
        };
        assert_eq!(
            tls.to_string(),
            "TLS handshake with 127.0.0.1 failed: invalid peer certificate: UnknownIssuer"
        );
        assert_eq!(tls.reason(), FailureReason::NoConnectivity);
        let until = Timestamp::parse("2026-11-30T08:00:00Z").unwrap();
        let limited = EngineError::RateLimited {
            host: "h".into(),
            request: "GET /__down?bytes=0".into(),
            until: Some(until),
        };
        assert_eq!(
            limited.to_string(),
            "h answered GET /__down?bytes=0 with HTTP 429 Too Many Requests; no test before 2026-11-30T08:00:00.000Z (Retry-After)"
        );
        assert_eq!(limited.reason(), FailureReason::RateLimited);
        assert_eq!(limited.retry_after(), Some(until));
        let timeout = EngineError::Timeout {
            host: "h".into(),
            limit: Duration::from_secs(60),
        };
        assert_eq!(
            timeout.to_string(),
            "the HTTP test of h did not finish within 1m (--timeout)"
        );
        assert_eq!(timeout.reason(), FailureReason::Timeout);
        let status = EngineError::Status {
            host: "h".into(),
            request: "POST /__up".into(),
            status: "500 Internal Server Error".into(),
        };
        assert_eq!(
            status.to_string(),
            "h answered POST /__up with HTTP 500 Internal Server Error"
        );
        assert_eq!(status.reason(), FailureReason::Exit);
    }
}
