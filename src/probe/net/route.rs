//! The default gateway from the kernel's routing tables as `/proc/net/route` (IPv4) and
//! `/proc/net/ipv6_route` (IPv6) print them: pure parsers over that text, so they are tested
//! from sample text.
//!
//! `/proc/net/route`: a header line, then one line per route, tab-separated: `Iface
//! Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT`. Addresses are 8 hex
//! digits of the 32-bit value in memory order (so `0101A8C0` is 192.168.1.1 on a little-endian
//! machine); flags are hex (`RTF_UP` 0x1, `RTF_GATEWAY` 0x2); the metric is decimal.
//!
//! `/proc/net/ipv6_route`: no header, space-separated: destination (32 hex digits, network
//! order), its prefix length (2 hex), source, its prefix length, next hop (32 hex), metric,
//! reference count, use count, flags (8 hex digits each) and the interface.

use std::net::{Ipv4Addr, Ipv6Addr};

/// `RTF_UP`: the route is usable.
const RTF_UP: u32 = 0x1;
/// `RTF_GATEWAY`: the destination is reached through a next hop.
const RTF_GATEWAY: u32 = 0x2;
/// `RTF_REJECT`: an unreachable route (the kernel's `lo` entries in ipv6_route).
const RTF_REJECT: u32 = 0x200;

/// The IPv4 default gateway in `/proc/net/route` text: among the up routes to `0.0.0.0/0`
/// through a gateway, the one with the lowest metric (the first of equals, as the kernel
/// prefers). `None` when there is none; lines that do not parse are skipped.
pub(crate) fn parse_ipv4_route(text: &str) -> Option<Ipv4Addr> {
    lowest_metric(text.lines().skip(1), |fields| {
        let [
            _iface,
            destination,
            gateway,
            flags,
            _refcnt,
            _use,
            metric,
            mask,
            ..,
        ] = fields[..]
        else {
            return None;
        };
        let (Some(destination), Some(gateway), Some(flags), Ok(metric), Some(mask)) = (
            hex_u32(destination),
            hex_u32(gateway),
            hex_u32(flags),
            metric.parse::<u32>(),
            hex_u32(mask),
        ) else {
            return None;
        };
        if destination != 0 || mask != 0 || !up_via_gateway(flags) || gateway == 0 {
            return None;
        }
        // The kernel prints the address's 4 bytes as they lie in memory, read as a native u32.
        Some((metric, Ipv4Addr::from(gateway.to_ne_bytes())))
    })
}

/// The IPv6 default gateway in `/proc/net/ipv6_route` text: among the up routes to `::/0`
/// through a next hop (not the kernel's reject routes), the one with the lowest metric.
/// Link-local next hops (`fe80::/10`, the usual case with router advertisements) are skipped:
/// they are meaningless without their interface, which an address alone does not carry.
pub(crate) fn parse_ipv6_route(text: &str) -> Option<Ipv6Addr> {
    lowest_metric(text.lines(), |fields| {
        let [
            destination,
            prefix,
            _src,
            _src_prefix,
            next_hop,
            metric,
            _refcnt,
            _use,
            flags,
            ..,
        ] = fields[..]
        else {
            return None;
        };
        let (Some(destination), Ok(prefix), Some(next_hop), Some(metric), Some(flags)) = (
            hex_u128(destination),
            u8::from_str_radix(prefix, 16),
            hex_u128(next_hop),
            hex_u32(metric),
            hex_u32(flags),
        ) else {
            return None;
        };
        if destination != 0 || prefix != 0 || !up_via_gateway(flags) || flags & RTF_REJECT != 0 {
            return None;
        }
        let address = Ipv6Addr::from(next_hop);
        if next_hop == 0 || address.is_unicast_link_local() {
            return None;
        }
        Some((metric, address))
    })
}

/// The address of the route with the lowest metric among `lines` (the first of equals), each
/// line split on white space and read by `route`: `Some((metric, address))` for a usable
/// default route, `None` for any other line.
fn lowest_metric<'a, A>(
    lines: impl Iterator<Item = &'a str>,
    route: impl Fn(&[&str]) -> Option<(u32, A)>,
) -> Option<A> {
    lines
        .filter_map(|line| route(&line.split_whitespace().collect::<Vec<_>>()))
        .min_by_key(|&(metric, _)| metric)
        .map(|(_, address)| address)
}

/// Whether `flags` say the route is up and goes through a next hop.
fn up_via_gateway(flags: u32) -> bool {
    flags & (RTF_UP | RTF_GATEWAY) == RTF_UP | RTF_GATEWAY
}

/// At most 8 hex digits (the kernel prints 8 for addresses and masks, 4 for IPv4 flags).
fn hex_u32(text: &str) -> Option<u32> {
    (text.len() <= 8)
        .then(|| u32::from_str_radix(text, 16).ok())
        .flatten()
}

/// Exactly 32 hex digits, network order.
fn hex_u128(text: &str) -> Option<u128> {
    (text.len() == 32)
        .then(|| u128::from_str_radix(text, 16).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT";

    /// One `/proc/net/route` line as this machine's kernel would print it.
    fn line(
        iface: &str,
        dest: Ipv4Addr,
        gw: Ipv4Addr,
        flags: u32,
        metric: u32,
        mask: u32,
    ) -> String {
        let hex = |ip: Ipv4Addr| format!("{:08X}", u32::from_ne_bytes(ip.octets()));
        format!(
            "{iface}\t{}\t{}\t{flags:04X}\t0\t0\t{metric}\t{mask:08X}\t0\t0\t0",
            hex(dest),
            hex(gw)
        )
    }

    const ANY: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

    #[test]
    fn the_default_route_of_a_home_machine() {
        let text = [
            HEADER.to_owned(),
            line("eth0", ANY, Ipv4Addr::new(192, 168, 1, 1), 0x3, 100, 0),
            line(
                "eth0",
                Ipv4Addr::new(192, 168, 1, 0),
                ANY,
                0x1,
                100,
                0x00FF_FFFF,
            ),
        ]
        .join("\n");
        assert_eq!(parse_ipv4_route(&text), Some(Ipv4Addr::new(192, 168, 1, 1)));
    }

    #[test]
    fn real_kernel_text_reads_little_endian() {
        // As printed by a little-endian kernel for "default via 192.168.1.1 dev eth0".
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        if cfg!(target_endian = "little") {
            assert_eq!(parse_ipv4_route(text), Some(Ipv4Addr::new(192, 168, 1, 1)));
        } else {
            assert_eq!(parse_ipv4_route(text), Some(Ipv4Addr::new(1, 1, 168, 192)));
        }
    }

    #[test]
    fn several_default_routes_pick_the_lowest_metric() {
        let text = [
            HEADER.to_owned(),
            line("wlan0", ANY, Ipv4Addr::new(10, 0, 0, 1), 0x3, 600, 0),
            line("eth0", ANY, Ipv4Addr::new(192, 168, 1, 1), 0x3, 100, 0),
            line("usb0", ANY, Ipv4Addr::new(172, 20, 10, 1), 0x3, 100, 0),
            line("wwan0", ANY, Ipv4Addr::new(100, 64, 0, 1), 0x3, 700, 0),
        ]
        .join("\n");
        // Equal metrics: the first listed wins, as with the kernel.
        assert_eq!(parse_ipv4_route(&text), Some(Ipv4Addr::new(192, 168, 1, 1)));
    }

    #[test]
    fn routes_that_are_down_direct_or_not_default_do_not_count() {
        let text = [
            HEADER.to_owned(),
            // Down (no RTF_UP).
            line("eth0", ANY, Ipv4Addr::new(192, 168, 1, 1), 0x2, 0, 0),
            // A default route without a gateway (point-to-point: `default dev ppp0`).
            line("ppp0", ANY, ANY, 0x1, 0, 0),
            // Through a gateway, but not the default.
            line(
                "eth0",
                Ipv4Addr::new(10, 9, 0, 0),
                Ipv4Addr::new(192, 168, 1, 2),
                0x3,
                0,
                0x0000_FFFF,
            ),
            "garbage line".to_owned(),
            "eth0\tZZZZZZZZ\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0".to_owned(),
        ]
        .join("\n");
        assert_eq!(parse_ipv4_route(&text), None);
        assert_eq!(parse_ipv4_route(""), None);
        assert_eq!(parse_ipv4_route(HEADER), None);
    }

    #[test]
    fn the_header_is_never_a_route() {
        // A header-only file whose header happened to parse must not count; the first line is
        // always skipped.
        let text = line("eth0", ANY, Ipv4Addr::new(192, 168, 1, 1), 0x3, 0, 0);
        assert_eq!(parse_ipv4_route(&text), None);
    }

    fn v6_line(
        dest: &str,
        prefix: u8,
        next_hop: Ipv6Addr,
        metric: u32,
        flags: u32,
        iface: &str,
    ) -> String {
        format!(
            "{dest} {prefix:02x} 00000000000000000000000000000000 00 {:032x} {metric:08x} 00000001 00000000 {flags:08x} {iface:>8}",
            u128::from(next_hop)
        )
    }

    const V6_ANY: &str = "00000000000000000000000000000000";

    #[test]
    fn ipv6_default_routes_pick_the_lowest_metric_global_next_hop() {
        let global_a: Ipv6Addr = "2001:db8::1".parse().expect("address");
        let global_b: Ipv6Addr = "2001:db8:1::1".parse().expect("address");
        let link_local: Ipv6Addr = "fe80::1".parse().expect("address");
        let text = [
            v6_line(V6_ANY, 0, link_local, 100, 0x0045_0003, "eth0"),
            v6_line(V6_ANY, 0, global_a, 1024, 0x0000_0003, "eth0"),
            v6_line(V6_ANY, 0, global_b, 512, 0x0000_0003, "eth1"),
            // The kernel's reject route on lo.
            v6_line(
                V6_ANY,
                0,
                Ipv6Addr::UNSPECIFIED,
                0xFFFF_FFFF,
                0x0020_0200,
                "lo",
            ),
            // A prefix route, not default.
            v6_line(
                "20010db8000000000000000000000000",
                32,
                global_a,
                1,
                0x3,
                "eth0",
            ),
        ]
        .join("\n");
        assert_eq!(parse_ipv6_route(&text), Some(global_b));
    }

    #[test]
    fn ipv6_without_a_usable_default_route() {
        let link_local: Ipv6Addr = "fe80::1".parse().expect("address");
        let text = [
            v6_line(V6_ANY, 0, link_local, 100, 0x3, "eth0"),
            v6_line(
                V6_ANY,
                0,
                Ipv6Addr::UNSPECIFIED,
                0xFFFF_FFFF,
                0x0020_0200,
                "lo",
            ),
            "short line".to_owned(),
        ]
        .join("\n");
        assert_eq!(parse_ipv6_route(&text), None);
        assert_eq!(parse_ipv6_route(""), None);
    }
}
