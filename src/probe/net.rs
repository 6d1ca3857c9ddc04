//! The probes' sockets: which method this process may use ([`detect`]), the default gateway
//! ([`default_gateway`]) and one probe at a time ([`Prober::probe`]).
//!
//! Methods, in the order [`detect`] tries them:
//! 1. `icmp-unprivileged`: ICMP echo through a `SOCK_DGRAM`/`IPPROTO_ICMP` socket (ICMPv6 for
//!    IPv6 targets), allowed when the process's group is inside `net.ipv4.ping_group_range`
//!    (per network namespace; `1 0`, the kernel's default, allows nobody; systemd sets
//!    `0 2147483647`). The kernel sets the echo identifier to the socket's own and hands the
//!    socket only the replies carrying it; the reply is matched by sequence number.
//! 2. `icmp-raw`: ICMP echo through a raw socket, allowed with `CAP_NET_RAW`. A raw socket
//!    sees every ICMP packet of the host, other programs' pings included, so replies are
//!    matched by source, identifier (random per [`Prober`]) and sequence number, and a kernel
//!    filter passes echo replies only.
//! 3. `tcp-connect:PORT`: a TCP connection; a SYN-ACK or a RST within the timeout both mean
//!    the target was reached, and the round-trip time is the time `connect` took. The
//!    connection is closed at once.
//!
//! Every probe uses its own socket, so a reply can only be taken by the probe that is waiting
//! for it, and every wait is bounded by the probe's timeout. Unreachable errors (no route,
//! ICMP destination unreachable, no source address) are losses, not errors.

mod icmp;
mod route;

pub(crate) use route::{parse_ipv4_route, parse_ipv6_route};

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::{ProbeMethod, Target};

/// The method [`detect`] chose and why, in words for the start-up log and `/api/v1/outages`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    /// [`ProbeMethod::IcmpUnprivileged`], [`ProbeMethod::IcmpRaw`], or
    /// `TcpConnect { port: 0 }`, meaning "TCP connect, each target on its own port".
    pub method: ProbeMethod,
    /// Why, e.g. `ping_group_range 0 2147483647 includes gid 0`, `CAP_NET_RAW (…)` or
    /// `no ICMP socket allowed (ping_group_range 1 0, no CAP_NET_RAW): TCP connect`.
    pub reason: String,
}

/// Finds the best method this process may use in its network namespace by opening (and at
/// once closing) the sockets: an unprivileged ICMP socket, else a raw one, else TCP. The
/// reason names the `ping_group_range`, the group that falls in it, or the capability.
pub fn detect() -> Detection {
    let range = read_small("/proc/sys/net/ipv4/ping_group_range")
        .ok()
        .and_then(|text| {
            let mut numbers = text.split_whitespace().map(str::parse::<u32>);
            match (numbers.next(), numbers.next()) {
                (Some(Ok(low)), Some(Ok(high))) => Some((low, high)),
                _ => None,
            }
        });
    let range_text = match range {
        Some((low, high)) => format!("ping_group_range {low} {high}"),
        None => "ping_group_range unreadable".to_owned(),
    };
    let status = read_small("/proc/self/status").unwrap_or_default();
    let groups = process_groups(&status);
    let unprivileged = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::ICMPV4));
    if let Ok(_socket) = unprivileged {
        let inside = range.and_then(|(low, high)| {
            groups
                .iter()
                .find(|&&gid| (low..=high).contains(&gid))
                .copied()
        });
        let reason = match inside {
            Some(gid) => format!("{range_text} includes gid {gid}"),
            None => format!("unprivileged ICMP socket allowed ({range_text})"),
        };
        return Detection {
            method: ProbeMethod::IcmpUnprivileged,
            reason,
        };
    }
    let groups_text = groups
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let excluded = format!("{range_text} excludes gid {groups_text}");
    match Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)) {
        Ok(_socket) => {
            let reason = if has_cap_net_raw(&status) {
                format!("CAP_NET_RAW ({excluded})")
            } else {
                format!("raw ICMP socket allowed ({excluded})")
            };
            Detection {
                method: ProbeMethod::IcmpRaw,
                reason,
            }
        }
        Err(err) => {
            let raw = if err.raw_os_error() == Some(libc::EPERM) {
                "no CAP_NET_RAW".to_owned()
            } else {
                format!("raw socket: {err}")
            };
            Detection {
                method: ProbeMethod::TcpConnect { port: 0 },
                reason: format!("no ICMP socket allowed ({range_text}, {raw}): TCP connect"),
            }
        }
    }
}

/// The effective group id and the supplementary groups of `/proc/self/status` text.
fn process_groups(status: &str) -> Vec<u32> {
    let mut groups = Vec::new();
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("Gid:") {
            // Real, effective, saved, filesystem.
            groups.extend(
                rest.split_whitespace()
                    .nth(1)
                    .and_then(|g| g.parse::<u32>().ok()),
            );
        } else if let Some(rest) = line.strip_prefix("Groups:") {
            groups.extend(
                rest.split_whitespace()
                    .filter_map(|g| g.parse::<u32>().ok()),
            );
        }
    }
    let mut seen = Vec::with_capacity(groups.len());
    for gid in groups {
        if !seen.contains(&gid) {
            seen.push(gid);
        }
    }
    seen
}

/// Whether `CapEff` in `/proc/self/status` text has bit 13, `CAP_NET_RAW`.
fn has_cap_net_raw(status: &str) -> bool {
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 13) != 0)
}

/// The default gateway: the IPv4 one of the routing table when there is one, else a global
/// IPv6 one (see [`parse_ipv4_route`], [`parse_ipv6_route`]); `Ok(None)` when there is none.
/// Read from the calling thread's network namespace (`/proc/thread-self/net/…`, falling back
/// to `/proc/net/…`). A missing `ipv6_route` (IPv6 disabled) is no error.
pub fn default_gateway() -> Result<Option<IpAddr>, io::Error> {
    let v4 = read_net_file("route")?;
    if let Some(gateway) = parse_ipv4_route(&v4) {
        return Ok(Some(IpAddr::V4(gateway)));
    }
    match read_net_file("ipv6_route") {
        Ok(v6) => Ok(parse_ipv6_route(&v6).map(IpAddr::V6)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// `/proc/thread-self/net/NAME` (this thread's namespace, which `setns` may have changed),
/// else `/proc/net/NAME`.
fn read_net_file(name: &str) -> io::Result<String> {
    match read_small(&format!("/proc/thread-self/net/{name}")) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            read_small(&format!("/proc/net/{name}"))
        }
        outcome => outcome,
    }
}

/// A `/proc` file, at most 1 MiB of it (a routing table of thousands of routes fits).
fn read_small(path: &str) -> io::Result<String> {
    const LIMIT: u64 = 1 << 20;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(LIMIT)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// Sends probes. Cheap to share across tasks (`Arc<Prober>`): it holds the method, the echo
/// identifier and a sequence counter; every probe opens its own socket.
#[derive(Debug)]
pub struct Prober {
    method: ProbeMethod,
    identifier: u16,
    sequence: AtomicU16,
}

impl Prober {
    /// A prober whose default method is `method` (from [`detect`]); a random echo identifier
    /// and first sequence number.
    pub fn new(method: ProbeMethod) -> Self {
        Prober {
            method,
            identifier: rand::random(),
            sequence: AtomicU16::new(rand::random()),
        }
    }

    /// One probe to `target` by `target.method` (a `TcpConnect { port: 0 }` target takes the
    /// port of this prober's method). `Ok(Some(rtt))`: answered after `rtt`; `Ok(None)`: no
    /// answer within `timeout`, or the target is unreachable; `Err` only for a local error
    /// that is not a loss (no socket of this kind allowed, no port for TCP, …), which the
    /// caller logs once and counts as lost. Waits at most `timeout`. Must run inside a tokio
    /// runtime with I/O enabled (as `tokio::net` sockets do).
    pub async fn probe(
        &self,
        target: &Target,
        timeout: Duration,
    ) -> Result<Option<Duration>, io::Error> {
        match target.method {
            ProbeMethod::IcmpUnprivileged => self.echo(target.address, false, timeout).await,
            ProbeMethod::IcmpRaw => self.echo(target.address, true, timeout).await,
            ProbeMethod::TcpConnect { port } => {
                let port = match (port, self.method) {
                    (0, ProbeMethod::TcpConnect { port }) => port,
                    (port, _) => port,
                };
                if port == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("no TCP port to probe {}", target.address),
                    ));
                }
                tcp_connect(SocketAddr::new(target.address, port), timeout).await
            }
        }
    }

    /// One ICMP echo to `address` through a raw (`raw`) or an unprivileged socket.
    async fn echo(
        &self,
        address: IpAddr,
        raw: bool,
        timeout: Duration,
    ) -> io::Result<Option<Duration>> {
        let started = Instant::now();
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let (domain, protocol) = match address {
            IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
            IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
        };
        let kind = if raw { Type::RAW } else { Type::DGRAM };
        let socket = Socket::new(domain, kind, Some(protocol))?;
        socket.set_nonblocking(true)?;
        if raw {
            pass_echo_replies_only(&socket, address);
        }
        // Connected: the kernel hands this socket only packets from `address` (and reports
        // ICMP errors about our echo as the socket's error).
        if let Err(err) = socket.connect(&SockAddr::from(SocketAddr::new(address, 0))) {
            return lost_or(err);
        }
        // SAFETY: `socket` is an open descriptor that the AsyncFd owns (moved in) until it is
        // dropped; nothing else closes it or swaps it.
        let socket = unsafe { AsyncFd::register(socket) }?;
        let request = icmp::echo_request(address, self.identifier, sequence);
        let exchange = async {
            loop {
                let mut ready = socket.writable().await?;
                match ready.try_io(|socket| socket.get_ref().send(&request)) {
                    Ok(sent) => break sent.map(|_| ())?,
                    Err(_would_block) => continue,
                }
            }
            let sent = Instant::now();
            // Only the headers matter: a larger packet (up to 64 KiB) is read truncated.
            let mut buffer = [0u8; 2048];
            loop {
                let mut ready = socket.readable().await?;
                let read = ready.try_io(|socket| {
                    let mut socket: &Socket = socket.get_ref();
                    socket.read(&mut buffer)
                });
                let Ok(read) = read else { continue };
                let length = read?;
                let received = Instant::now();
                let packet = buffer.get(..length).unwrap_or_default();
                let with_ip_header = raw && address.is_ipv4();
                let Some((identifier, number)) = icmp::echo_reply(packet, address, with_ip_header)
                else {
                    continue;
                };
                // Unprivileged sockets: the kernel chose the identifier and already matched it.
                if number == sequence && (!raw || identifier == self.identifier) {
                    return Ok::<_, io::Error>(received.duration_since(sent));
                }
            }
        };
        let left = timeout.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, exchange).await {
            Ok(Ok(rtt)) => Ok(Some(rtt)),
            Ok(Err(err)) => lost_or(err),
            Err(_elapsed) => Ok(None),
        }
    }
}

/// One TCP connection attempt to `address`: a SYN-ACK or a RST is an answer.
async fn tcp_connect(address: SocketAddr, timeout: Duration) -> io::Result<Option<Duration>> {
    let socket = match address {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    let started = Instant::now();
    match tokio::time::timeout(timeout, socket.connect(address)).await {
        Ok(Ok(stream)) => {
            let rtt = started.elapsed();
            drop(stream);
            Ok(Some(rtt))
        }
        Ok(Err(err)) if err.raw_os_error() == Some(libc::ECONNREFUSED) => {
            Ok(Some(started.elapsed()))
        }
        Ok(Err(err)) => lost_or(err),
        Err(_elapsed) => Ok(None),
    }
}

/// `Ok(None)` (lost) for the errors that say the target could not be reached; the error
/// otherwise.
fn lost_or(err: io::Error) -> io::Result<Option<Duration>> {
    let unreachable = [
        libc::ENETUNREACH,
        libc::EHOSTUNREACH,
        libc::ENETDOWN,
        libc::EHOSTDOWN,
        libc::ETIMEDOUT,
        // ICMP port or protocol unreachable reported on an echo socket.
        libc::ECONNREFUSED,
        // No source address: the interface is down or has lost its address.
        libc::EADDRNOTAVAIL,
        libc::ENOBUFS,
    ];
    match err.raw_os_error() {
        Some(code) if unreachable.contains(&code) => Ok(None),
        _ => Err(err),
    }
}

/// Asks the kernel to queue only echo replies on a raw ICMP socket (`ICMP_FILTER`,
/// `ICMP6_FILTER`), so other ICMP traffic of the host does not fill its queue. Best effort:
/// the replies are matched anyway.
fn pass_echo_replies_only(socket: &Socket, address: IpAddr) {
    /// `<linux/icmp.h>`: `ICMP_FILTER` at level `SOL_RAW`; a set bit blocks that type.
    const ICMP_FILTER: libc::c_int = 1;
    /// `<netinet/icmp6.h>`: `ICMP6_FILTER` at level `IPPROTO_ICMPV6`; a set bit blocks.
    const ICMP6_FILTER: libc::c_int = 1;
    let fd = socket.as_raw_fd();
    match address {
        IpAddr::V4(_) => {
            let blocked: u32 = !(1 << 0); // everything but type 0, echo reply
            // SAFETY: setsockopt(2) reads `size_of::<u32>()` bytes from a live local.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_RAW,
                    ICMP_FILTER,
                    (&raw const blocked).cast(),
                    size_of::<u32>() as libc::socklen_t,
                );
            }
        }
        IpAddr::V6(_) => {
            let mut blocked = [u32::MAX; 8];
            let reply = usize::from(icmp::ECHO_REPLY_V6);
            blocked[reply >> 5] &= !(1 << (reply & 31));
            // SAFETY: setsockopt(2) reads the 32 bytes of a live local array
            // (`struct icmp6_filter`).
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_ICMPV6,
                    ICMP6_FILTER,
                    blocked.as_ptr().cast(),
                    size_of::<[u32; 8]>() as libc::socklen_t,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
