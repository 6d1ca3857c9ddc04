//! The small requests of a run: telling the API, the idle latency on a warm connection, and
//! what the server says about itself and about us.

use super::api::{self, Api, Probe, Step};
use super::client::Conn;
use super::error::EngineError;
use super::headers::{self, GetIp, ServerSays};
use super::stats;
use crate::sample::HttpProtocol;

/// Idle-latency probes sent after the first (warm-up) request.
pub(crate) const IDLE_PROBES: usize = 20;
/// The fewest idle-latency probes that must be answered.
pub(crate) const MIN_IDLE_PROBES: usize = 10;

/// Tells the API `conn`'s server speaks (`wanted`: the one `--http-protocol` asked for),
/// noting what the server says in its answers. A probe refused with a 4xx status, or answered
/// with a body where the API answers none, tries the next; 429, 5xx and broken connections fail.
pub(crate) async fn detect(
    conn: &mut Conn,
    wanted: Option<HttpProtocol>,
    says: &mut ServerSays,
) -> Result<Api, EngineError> {
    let mut answered: Vec<(Probe, bool)> = Vec::new();
    let mut refusals: Vec<String> = Vec::new();
    loop {
        match api::detect(wanted, &answered) {
            Step::Found(api) => return Ok(api),
            Step::Neither => {
                return Err(EngineError::UnknownApi {
                    host: conn.connector().host().to_owned(),
                    wanted,
                    tried: refusals.join(", "),
                });
            }
            Step::Send(probe) => {
                match conn.small(probe.path()).await {
                    // Both probes' answers are empty; a body is a page that any path gets (a
                    // web site, a captive portal), not the API.
                    Ok((_, body, _)) if !body.is_empty() => {
                        refusals.push(format!(
                            "GET {} answered {} bytes where the API answers none",
                            conn.connector().target.path(probe.path()),
                            body.len()
                        ));
                        answered.push((probe, false));
                    }
                    Ok((parts, _, _)) => {
                        says.merge(ServerSays::from_headers(&parts.headers));
                        answered.push((probe, true));
                    }
                    // A 4xx (not 429) says "not this path"; a 5xx is a server in trouble.
                    Err(EngineError::Status {
                        request, status, ..
                    }) if status.starts_with('4') => {
                        refusals.push(format!("{request} answered {status}"));
                        answered.push((probe, false));
                        // The refusal's body was not read: the next probe starts afresh.
                        conn.retire();
                    }
                    Err(err) => return Err(err),
                }
            }
        }
    }
}

/// Idle latency and jitter, in seconds: a warm-up request, then [`IDLE_PROBES`] probes one
/// after another on `conn`, each less the server's own time (`Server-Timing`); the median and
/// the mean absolute difference of consecutive ones.
pub(crate) async fn idle_latency(
    conn: &mut Conn,
    api: Api,
    says: &mut ServerSays,
) -> Result<(f64, Option<f64>), EngineError> {
    let path = api.latency();
    let (parts, _, _) = conn.small(&path).await?;
    says.merge(ServerSays::from_headers(&parts.headers));
    let mut latencies = Vec::with_capacity(IDLE_PROBES);
    for _ in 0..IDLE_PROBES {
        if conn.is_closed() {
            *conn = conn.connector().connect().await?;
            // A new connection's first request pays for its set-up: warm it up again.
            conn.small(&path).await?;
        }
        let (parts, _, took) = conn.small(&path).await?;
        latencies.push(stats::net_latency(
            took,
            headers::server_timing(&parts.headers),
        ));
    }
    let host = conn.connector().host().to_owned();
    let ping = stats::median(&latencies)
        .filter(|_| latencies.len() >= MIN_IDLE_PROBES)
        .ok_or(EngineError::Latency {
            host,
            answered: latencies.len(),
            sent: IDLE_PROBES,
        })?;
    Ok((ping, stats::jitter(&latencies)))
}

/// What LibreSpeed's `getIP` says about the client; nothing (and no failure) when it says
/// nothing readable, as it is only a label.
pub(crate) async fn get_ip(conn: &mut Conn, api: Api) -> Option<GetIp> {
    let path = api.get_ip()?;
    match conn.small(&path).await {
        Ok((_, body, _)) => headers::get_ip(&body),
        Err(err) => {
            tracing::debug!("getIP: {err}");
            None
        }
    }
}
