//! What a speed-test server says about itself and about us, read from response headers and
//! LibreSpeed's `getIP` JSON; free of I/O.

use std::time::Duration;

use hyper::HeaderMap;

use crate::sample::{MAX_NAME_BYTES, cut};
use crate::time::Timestamp;

/// The longest wait a `Retry-After` may impose: a day. A server asking for more is taken to
/// mean a day, so one bad header cannot silence the monitor for good.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// The time the server says it spent on a request, in seconds: the `dur=` (milliseconds) of
/// the first metric in `Server-Timing` that has one (`cfRequestDuration;dur=12.3`), `None`
/// when absent or not a finite, non-negative number.
pub(crate) fn server_timing(headers: &HeaderMap) -> Option<f64> {
    headers
        .get_all("server-timing")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|metric| {
            metric.split(';').skip(1).find_map(|param| {
                let (key, value) = param.split_once('=')?;
                if !key.trim().eq_ignore_ascii_case("dur") {
                    return None;
                }
                let millis: f64 = value.trim().trim_matches('"').parse().ok()?;
                (millis.is_finite() && millis >= 0.0).then_some(millis / 1000.0)
            })
        })
}

/// When a `Retry-After` value lets us ask again: delay-seconds (`120`) counted from `now`, or
/// an HTTP-date (`Wed, 21 Oct 2026 07:28:00 GMT`), at most [`MAX_RETRY_AFTER`] after `now`.
/// `None` for a value that is neither (the obsolete RFC 850 and asctime date forms included).
pub(crate) fn retry_after(value: &str, now: Timestamp) -> Option<Timestamp> {
    let value = value.trim();
    let latest = now.saturating_add(MAX_RETRY_AFTER);
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Digits only: any number of them is a delay, saturating rather than overflowing.
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(now.saturating_add(Duration::from_secs(seconds)).min(latest));
    }
    let date = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    let millis = u64::try_from(date.as_millisecond()).unwrap_or(0);
    let date = Timestamp::try_from_millis(millis).unwrap_or(Timestamp::MAX);
    Some(date.clamp(now, latest))
}

/// `value` trimmed, each control or bidirectional formatting character in it
/// ([`crate::sample::is_hidden_formatting`]) made a space, and cut to [`MAX_NAME_BYTES`]; `None`
/// when nothing is left. Every text a server says about itself or about us passes here, so
/// that no stored field can move a terminal's cursor or start a line of its own in a file.
fn named(value: &str) -> Option<String> {
    let clean: String = value
        .chars()
        .map(|c| {
            if crate::sample::is_hidden_formatting(c) {
                ' '
            } else {
                c
            }
        })
        .collect();
    let clean = clean.trim();
    (!clean.is_empty()).then(|| cut(clean, MAX_NAME_BYTES))
}

/// What a server said about itself and about the client.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ServerSays {
    /// The `Server` header, e.g. `cloudflare`.
    pub(crate) software: Option<String>,
    /// Cloudflare's data centre (`cf-meta-colo`), an IATA airport code such as `FRA`.
    pub(crate) colo: Option<String>,
    /// The client's autonomous system (`cf-meta-asn`), as `AS13335`.
    pub(crate) asn: Option<String>,
    /// The client's public address as the server saw it (`cf-meta-ip`).
    pub(crate) client_ip: Option<String>,
}

impl ServerSays {
    /// Reads the headers of one response.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .and_then(named)
        };
        ServerSays {
            software: text("server"),
            colo: text("cf-meta-colo"),
            asn: text("cf-meta-asn")
                .filter(|asn| asn.bytes().all(|b| b.is_ascii_digit()))
                .map(|asn| format!("AS{asn}")),
            client_ip: text("cf-meta-ip"),
        }
    }

    /// Keeps what `self` lacks from `other`.
    pub(crate) fn merge(&mut self, other: ServerSays) {
        self.software = self.software.take().or(other.software);
        self.colo = self.colo.take().or(other.colo);
        self.asn = self.asn.take().or(other.asn);
        self.client_ip = self.client_ip.take().or(other.client_ip);
    }
}

/// What LibreSpeed's `getIP` answers: the client's address and, when the server looked it up,
/// its ISP.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct GetIp {
    /// The client's public address.
    pub(crate) ip: Option<String>,
    /// The client's ISP, e.g. `AS3320 Deutsche Telekom AG`.
    pub(crate) isp: Option<String>,
}

/// Reads a `getIP` answer: JSON `{"processedString": "IP - ISP, CC (distance)", "rawIspInfo":
/// {"org": …}}`, or a bare address as older back ends send. `None` for anything else.
pub(crate) fn get_ip(body: &[u8]) -> Option<GetIp> {
    let text = std::str::from_utf8(body).ok()?.trim();
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
        let processed = json.get("processedString")?.as_str()?;
        let (ip, rest) = match processed.split_once(" - ") {
            Some((ip, rest)) => (ip, Some(rest)),
            None => (processed, None),
        };
        let raw_org = json
            .pointer("/rawIspInfo/org")
            .and_then(serde_json::Value::as_str);
        // "ISP, CC (12 km)": the ISP is what comes before the country and distance.
        let from_processed = rest.map(|rest| {
            rest.split(" (")
                .next()
                .unwrap_or(rest)
                .trim_end_matches(')')
        });
        let from_processed = from_processed.map(|rest| match rest.rsplit_once(", ") {
            Some((isp, country)) if country.len() == 2 => isp,
            _ => rest,
        });
        return Some(GetIp {
            ip: named(ip),
            isp: raw_org.or(from_processed).and_then(named),
        });
    }
    let plain = text.parse::<std::net::IpAddr>().ok()?;
    Some(GetIp {
        ip: Some(plain.to_string()),
        isp: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn server_timing_takes_the_first_duration() {
        let cf = headers(&[("Server-Timing", "cfRequestDuration;dur=12.5")]);
        assert_eq!(server_timing(&cf), Some(0.0125));
        let several = headers(&[
            ("server-timing", "cache;desc=\"miss\", app;dur=3"),
            ("server-timing", "db;dur=7"),
        ]);
        assert_eq!(server_timing(&several), Some(0.003));
        let quoted = headers(&[("server-timing", "total;DUR=\"1.5\";desc=x")]);
        assert_eq!(server_timing(&quoted), Some(0.0015));
        for bad in [
            "total",
            "total;dur=",
            "total;dur=-1",
            "total;dur=NaN",
            "total;dur=abc",
        ] {
            assert_eq!(
                server_timing(&headers(&[("server-timing", bad)])),
                None,
                "{bad}"
            );
        }
        assert_eq!(server_timing(&HeaderMap::new()), None);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates_within_a_day() {
        let now = Timestamp::parse("2026-10-21T07:00:00Z").unwrap();
        assert_eq!(
            retry_after("120", now),
            Timestamp::parse_rfc3339("2026-10-21T07:02:00Z")
        );
        assert_eq!(retry_after(" 0 ", now), Some(now));
        assert_eq!(
            retry_after("99999999999999999999999", now),
            Some(now.saturating_add(MAX_RETRY_AFTER))
        );
        assert_eq!(
            retry_after("Wed, 21 Oct 2026 07:28:00 GMT", now),
            Timestamp::parse_rfc3339("2026-10-21T07:28:00Z")
        );
        // A date in the past allows a test now; one far ahead is capped at a day.
        assert_eq!(retry_after("Mon, 19 Oct 2026 07:28:00 GMT", now), Some(now));
        assert_eq!(
            retry_after("Fri, 01 Jan 2100 00:00:00 GMT", now),
            Some(now.saturating_add(MAX_RETRY_AFTER))
        );
        for bad in ["", "-5", "1.5", "soon", "Wednesday, 21-Oct-26 07:28:00 GMT"] {
            assert_eq!(retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn cloudflare_meta_headers() {
        let says = ServerSays::from_headers(&headers(&[
            ("server", "cloudflare"),
            ("cf-meta-colo", "FRA"),
            ("cf-meta-asn", "3320"),
            ("cf-meta-ip", "192.0.2.7"),
            ("cf-meta-city", "Berlin"),
        ]));
        assert_eq!(
            says,
            ServerSays {
                software: Some("cloudflare".into()),
                colo: Some("FRA".into()),
                asn: Some("AS3320".into()),
                client_ip: Some("192.0.2.7".into()),
            }
        );
        let odd = ServerSays::from_headers(&headers(&[("cf-meta-asn", "x1"), ("server", " ")]));
        assert_eq!(odd, ServerSays::default());
        let mut first = ServerSays {
            software: Some("a".into()),
            ..ServerSays::default()
        };
        first.merge(says);
        assert_eq!(first.software.as_deref(), Some("a"));
        assert_eq!(first.colo.as_deref(), Some("FRA"));
    }

    #[test]
    fn librespeed_get_ip() {
        let full = br#"{"processedString":"192.0.2.7 - Deutsche Telekom AG, DE (12 km)","rawIspInfo":{"org":"AS3320 Deutsche Telekom AG"}}"#;
        assert_eq!(
            get_ip(full),
            Some(GetIp {
                ip: Some("192.0.2.7".into()),
                isp: Some("AS3320 Deutsche Telekom AG".into()),
            })
        );
        let processed =
            br#"{"processedString":"192.0.2.7 - Example ISP, DE (12 km)","rawIspInfo":""}"#;
        assert_eq!(
            get_ip(processed).unwrap().isp.as_deref(),
            Some("Example ISP")
        );
        let bare = br#"{"processedString":"192.0.2.7","rawIspInfo":""}"#;
        assert_eq!(
            get_ip(bare),
            Some(GetIp {
                ip: Some("192.0.2.7".into()),
                isp: None,
            })
        );
        assert_eq!(
            get_ip(b" 2001:db8::1\n").unwrap().ip.as_deref(),
            Some("2001:db8::1")
        );
        // Control characters (a terminal's escape, line breaks) become spaces.
        let hostile = br#"{"processedString":"192.0.2.7\u001b[2J - Evil\u001b[31m\nINFO forged\r\n, DE (1 km)","rawIspInfo":""}"#;
        assert_eq!(
            get_ip(hostile),
            Some(GetIp {
                ip: Some("192.0.2.7 [2J".into()),
                isp: Some("Evil [31m INFO forged".into()),
            })
        );
        assert_eq!(get_ip(b"<html>"), None);
        assert_eq!(get_ip(b"{}"), None);
        assert_eq!(get_ip(&[0xff, 0xfe]), None);
    }
}
