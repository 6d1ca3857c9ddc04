//! ICMP echo packets (RFC 792 for IPv4, RFC 4443 for IPv6): building a request and
//! recognising the reply to it, pure functions over byte slices.
//!
//! An echo message is `type u8, code u8, checksum u16, identifier u16, sequence u16, data`,
//! big-endian. IPv4 requests carry the Internet checksum, computed here (raw sockets send the
//! packet as given; unprivileged ICMP sockets recompute it anyway). ICMPv6 checksums cover a
//! pseudo-header with the source address, so the kernel fills them in for both socket kinds.

use std::net::IpAddr;

/// ICMPv4 echo request / reply types.
const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
/// ICMPv6 echo request / reply types.
const ECHO_REQUEST_V6: u8 = 128;
/// The ICMPv6 echo reply type, the only one the raw ICMPv6 filter lets through.
pub(super) const ECHO_REPLY_V6: u8 = 129;
/// The IP protocol number of ICMPv4.
const PROTOCOL_ICMP: u8 = 1;

/// The echo data: recognisable in a capture, small (the whole request is 24 bytes).
pub(super) const PAYLOAD: &[u8; 16] = b"internet-monitor";

/// An echo request for `address`'s family with `identifier` and `sequence`.
pub(super) fn echo_request(address: IpAddr, identifier: u16, sequence: u16) -> Vec<u8> {
    let kind = if address.is_ipv6() {
        ECHO_REQUEST_V6
    } else {
        ECHO_REQUEST_V4
    };
    let mut packet = Vec::with_capacity(8 + PAYLOAD.len());
    packet.extend_from_slice(&[kind, 0, 0, 0]);
    packet.extend_from_slice(&identifier.to_be_bytes());
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(PAYLOAD);
    if address.is_ipv4() {
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// The identifier and sequence number of an echo reply from `from` in `packet`, `None` for
/// anything else. `with_ip_header`: the packet starts with the IPv4 header (raw IPv4 sockets);
/// its source must then be `from`. IPv6 sockets and unprivileged ICMP sockets give the ICMP
/// message alone.
pub(super) fn echo_reply(packet: &[u8], from: IpAddr, with_ip_header: bool) -> Option<(u16, u16)> {
    let message = if with_ip_header {
        let first = *packet.first()?;
        let header_length = usize::from(first & 0x0F) * 4;
        let source: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
        let from_target = IpAddr::from(source) == from;
        if first >> 4 != 4
            || header_length < 20
            || packet.get(9) != Some(&PROTOCOL_ICMP)
            || !from_target
        {
            return None;
        }
        packet.get(header_length..)?
    } else {
        packet
    };
    let reply = if from.is_ipv6() {
        ECHO_REPLY_V6
    } else {
        ECHO_REPLY_V4
    };
    if message.len() < 8 || message[0] != reply || message[1] != 0 {
        return None;
    }
    let identifier = u16::from_be_bytes([message[4], message[5]]);
    let sequence = u16::from_be_bytes([message[6], message[7]]);
    Some((identifier, sequence))
}

/// The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of the
/// 16-bit big-endian words, an odd last byte padded with zero.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
        sum += u32::from(word);
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    // The loop leaves at most 16 bits.
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const V4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));

    #[test]
    fn an_ipv4_request_checks_out() {
        let packet = echo_request(V4, 0x1234, 0xABCD);
        assert_eq!(&packet[..2], &[8, 0]);
        assert_eq!(&packet[4..8], &[0x12, 0x34, 0xAB, 0xCD]);
        assert_eq!(&packet[8..], PAYLOAD);
        // A correct checksum makes the sum over the whole message 0xFFFF, i.e. checksum 0.
        assert_eq!(checksum(&packet), 0);
    }

    #[test]
    fn the_checksum_of_rfc_1071s_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (ones' complement).
        assert_eq!(
            checksum(&[0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]),
            !0xDDF2
        );
        // An odd length pads with zero.
        assert_eq!(checksum(&[0xFF]), !0xFF00);
    }

    #[test]
    fn an_ipv6_request_leaves_the_checksum_to_the_kernel() {
        let to = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let packet = echo_request(to, 1, 2);
        assert_eq!(&packet[..4], &[128, 0, 0, 0]);
        assert_eq!(&packet[4..8], &[0, 1, 0, 2]);
    }

    fn reply_v4(identifier: u16, sequence: u16) -> Vec<u8> {
        let mut message = echo_request(V4, identifier, sequence);
        message[0] = 0;
        message
    }

    fn ip_header(source: Ipv4Addr, protocol: u8) -> Vec<u8> {
        let mut header = vec![0x45, 0, 0, 44, 0, 0, 0, 0, 64, protocol, 0, 0];
        header.extend_from_slice(&source.octets());
        header.extend_from_slice(&[192, 0, 2, 1]);
        header
    }

    #[test]
    fn replies_are_recognised_with_and_without_the_ip_header() {
        assert_eq!(echo_reply(&reply_v4(7, 9), V4, false), Some((7, 9)));
        let mut raw = ip_header(Ipv4Addr::new(192, 0, 2, 7), 1);
        raw.extend(reply_v4(7, 9));
        assert_eq!(echo_reply(&raw, V4, true), Some((7, 9)));
        // IPv6: type 129.
        let to = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let mut message = echo_request(to, 3, 4);
        message[0] = ECHO_REPLY_V6;
        assert_eq!(echo_reply(&message, to, false), Some((3, 4)));
    }

    #[test]
    fn everything_else_is_not_a_reply() {
        // Our own request (raw sockets see outgoing loopback traffic too).
        assert_eq!(echo_reply(&echo_request(V4, 7, 9), V4, false), None);
        // A reply from another host.
        let mut other = ip_header(Ipv4Addr::new(198, 51, 100, 1), 1);
        other.extend(reply_v4(7, 9));
        assert_eq!(echo_reply(&other, V4, true), None);
        // Not ICMP, not IPv4, a header length below 20.
        let mut udp = ip_header(Ipv4Addr::new(192, 0, 2, 7), 17);
        udp.extend(reply_v4(7, 9));
        assert_eq!(echo_reply(&udp, V4, true), None);
        let mut short = ip_header(Ipv4Addr::new(192, 0, 2, 7), 1);
        short[0] = 0x44;
        short.extend(reply_v4(7, 9));
        assert_eq!(echo_reply(&short, V4, true), None);
        // Truncated anywhere, empty, a v4 reply read as v6.
        let full = reply_v4(7, 9);
        for end in 0..8 {
            assert_eq!(echo_reply(&full[..end], V4, false), None, "{end} bytes");
        }
        for end in 0..24 {
            assert_eq!(echo_reply(&other[..end], V4, true), None, "{end} bytes");
        }
        assert_eq!(
            echo_reply(&full, IpAddr::V6(Ipv6Addr::LOCALHOST), false),
            None
        );
        // A non-zero code.
        let mut coded = reply_v4(7, 9);
        coded[1] = 1;
        assert_eq!(echo_reply(&coded, V4, false), None);
    }
}
