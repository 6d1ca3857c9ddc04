//! The pure core of the connectivity monitor (issue 15): target kinds, probe methods, the
//! per-minute aggregate of probe results and the outage classifier, all free of I/O so the
//! service, the store and the tests share one definition.
//!
//! [`net`] sends the probes, [`monitor`] runs the rounds in `serve`, [`status`] is what it
//! shares with the HTTP handlers; the tables are in `store::probes`.

pub(crate) mod availability;
pub(crate) mod latency;
pub mod minute;
pub(crate) mod monitor;
pub mod net;
pub mod outage;
pub(crate) mod peak;
pub(crate) mod report;
pub mod status;

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::time::Timestamp;

/// What a target stands for in the outage classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TargetKind {
    /// The default gateway (the home router), found from the routing table: it tells the
    /// home network's faults from the ISP's.
    Gateway,
    /// A well-known address beyond the ISP's network.
    Public,
}

impl TargetKind {
    /// The name in logs, JSON and metric labels: `gateway` or `public`.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            TargetKind::Gateway => "gateway",
            TargetKind::Public => "public",
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a probe is sent, in the order the service prefers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeMethod {
    /// ICMP echo through an unprivileged `SOCK_DGRAM`/`IPPROTO_ICMP` socket, allowed when the
    /// process's group is inside `net.ipv4.ping_group_range`.
    IcmpUnprivileged,
    /// ICMP echo through a raw socket, allowed with `CAP_NET_RAW`.
    IcmpRaw,
    /// A TCP connection to `port` (443 or 53 by default); a refused connection (RST) counts
    /// as an answer, since the target was reached.
    TcpConnect {
        /// The TCP port connected to.
        port: u16,
    },
}

impl ProbeMethod {
    /// The method's name in logs and JSON: `icmp-unprivileged`, `icmp-raw` or `tcp-connect`
    /// (the port is a separate field, see [`ProbeMethod::port`]).
    pub(crate) const fn name(self) -> &'static str {
        match self {
            ProbeMethod::IcmpUnprivileged => "icmp-unprivileged",
            ProbeMethod::IcmpRaw => "icmp-raw",
            ProbeMethod::TcpConnect { .. } => "tcp-connect",
        }
    }

    /// The TCP port of [`ProbeMethod::TcpConnect`], `None` for ICMP.
    pub(crate) const fn port(self) -> Option<u16> {
        match self {
            ProbeMethod::TcpConnect { port } => Some(port),
            _ => None,
        }
    }
}

impl fmt::Display for ProbeMethod {
    /// The name, with the port for TCP: `tcp-connect:443`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port() {
            Some(port) => write!(f, "{}:{port}", self.name()),
            None => f.write_str(self.name()),
        }
    }
}

/// One probe target: what it stands for, where it is and how it is probed. Stored once in
/// `probe_targets_v1`; a target probed by another method after a restart is a new target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// The gateway or a public address.
    pub kind: TargetKind,
    /// Its IP address (IPv4 or IPv6).
    pub address: IpAddr,
    /// How it is probed.
    pub method: ProbeMethod,
}

/// A stored target's id: small and dense, given in the order targets are first seen.
pub(crate) type TargetId = u32;

/// A target with its stored id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StoredTarget {
    /// The id the per-minute records use.
    pub id: TargetId,
    /// The target.
    pub(crate) target: Target,
}

/// The result of one probe to one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    /// When the probe was sent.
    pub at: Timestamp,
    /// The round-trip time when an answer came within the timeout, `None` when it was lost.
    pub rtt: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_names_are_stable() {
        assert_eq!(TargetKind::Gateway.to_string(), "gateway");
        assert_eq!(TargetKind::Public.name(), "public");
        assert_eq!(
            ProbeMethod::IcmpUnprivileged.to_string(),
            "icmp-unprivileged"
        );
        assert_eq!(ProbeMethod::IcmpRaw.to_string(), "icmp-raw");
        let tcp = ProbeMethod::TcpConnect { port: 443 };
        assert_eq!(tcp.name(), "tcp-connect");
        assert_eq!(tcp.to_string(), "tcp-connect:443");
        assert_eq!(tcp.port(), Some(443));
        assert_eq!(ProbeMethod::IcmpRaw.port(), None);
    }
}
