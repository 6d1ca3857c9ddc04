//! gzip for whole response bodies, when the client's `Accept-Encoding` takes it.

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http_body_util::BodyExt;
use hyper::Response;
use hyper::body::Body as _;
use hyper::header::{self, HeaderMap, HeaderValue};

use super::response::{Body, whole};

/// Bodies shorter than this (bytes) go out as they are: gzip's header and trailer would eat
/// most of what it saves.
const MIN_GZIP_BYTES: usize = 256;

/// The response gzipped when `headers` (the request's) accept gzip and its body is whole (an
/// exact size known, as [`whole`] makes) and at least [`MIN_GZIP_BYTES`] long; otherwise as it
/// is. Either way it gets `Vary: Accept-Encoding`, so caches keep the two apart. A streamed
/// body or one already encoded is passed on untouched.
pub(crate) fn maybe_gzip(headers: &HeaderMap, response: Response<Body>) -> Response<Body> {
    let (mut parts, mut body) = response.into_parts();
    parts
        .headers
        .append(header::VARY, HeaderValue::from_static("accept-encoding"));
    let whole_length = body.size_hint().exact();
    let wanted = accepts_gzip(headers)
        && !parts.headers.contains_key(header::CONTENT_ENCODING)
        && whole_length.is_some_and(|length| length >= MIN_GZIP_BYTES as u64);
    if !wanted {
        return Response::from_parts(parts, body);
    }
    // A whole body (`Full`) gives its one frame at once; anything else is passed on as it is.
    let mut context = Context::from_waker(Waker::noop());
    let data = match Pin::new(&mut body).poll_frame(&mut context) {
        Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
            Ok(data) => data,
            Err(_) => return Response::from_parts(parts, whole(Bytes::new())),
        },
        Poll::Ready(None) => Bytes::new(),
        _ => return Response::from_parts(parts, body),
    };
    if !body.is_end_stream() {
        // Not whole after all: the first frame followed by the rest, untouched.
        let rest = Prefixed {
            first: Some(data),
            rest: body,
        };
        return Response::from_parts(parts, rest.boxed_unsync());
    }
    let compressed = gzip(&data);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    Response::from_parts(parts, whole(compressed))
}

/// A body whose first frame was already taken: that frame, then the rest.
struct Prefixed {
    first: Option<Bytes>,
    rest: Body,
}

impl hyper::body::Body for Prefixed {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(hyper::body::Frame::data(first))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }
}

/// `data` gzipped at the default level (memory only, so it cannot fail but for allocation).
fn gzip(data: &[u8]) -> Bytes {
    gzip_at(data, Compression::default().level())
}

/// `data` gzipped at `level` (0–9; the page's files, compressed once, take 9); empty only if
/// the encoder failed, which writing to memory does not.
pub(crate) fn gzip_at(data: &[u8], level: u32) -> Bytes {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        Compression::new(level.min(9)),
    );
    // Writing to a Vec never fails.
    let _ = encoder.write_all(data);
    Bytes::from(encoder.finish().unwrap_or_default())
}

/// Whether `Accept-Encoding` takes gzip: `gzip` (or `x-gzip`) with a q-value above zero, or
/// `*` above zero when gzip is not named. `q=0` refuses; an unreadable q-value counts as a
/// refusal. No header means identity only (we never gzip unasked).
pub(crate) fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut named = None;
    let mut any = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for element in value.split(',') {
            let mut parts = element.split(';');
            let coding = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let mut quality = Some(1.0);
            for parameter in parts {
                let Some((name, value)) = parameter.split_once('=') else {
                    continue;
                };
                if name.trim().eq_ignore_ascii_case("q") {
                    quality = parse_quality(value.trim());
                }
            }
            let accepted = quality.is_some_and(|q| q > 0.0);
            match coding.as_str() {
                "gzip" | "x-gzip" => named = Some(named.unwrap_or(false) || accepted),
                "*" => any = Some(accepted),
                _ => {}
            }
        }
    }
    named.or(any).unwrap_or(false)
}

/// An RFC 9110 q-value (`0`, `0.5`, `1.000`), `None` when it is not one.
fn parse_quality(text: &str) -> Option<f32> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let valid = matches!(whole, "0" | "1")
        && fraction.len() <= 3
        && fraction.bytes().all(|b| b.is_ascii_digit());
    let q: f32 = text.parse().ok()?;
    (valid && q <= 1.0).then_some(q)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use hyper::StatusCode;

    use super::*;
    use crate::http::response::json_body;

    fn accept(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn q_values_decide() {
        let takes = |value: &str| accepts_gzip(&accept(&[value]));
        assert!(takes("gzip"));
        assert!(takes("deflate, gzip;q=0.5, br"));
        assert!(takes("GZIP ; Q=1.0"));
        assert!(takes("x-gzip"));
        assert!(takes("*"));
        assert!(takes("br, *;q=0.1"));
        assert!(!takes("gzip;q=0"));
        assert!(!takes("gzip;q=0.000"));
        assert!(
            !takes("gzip;q=0, *"),
            "gzip named and refused: * does not bring it back"
        );
        assert!(!takes("*;q=0"));
        assert!(!takes("identity"));
        assert!(!takes("br, deflate"));
        assert!(!takes("gzip;q=2"), "not a q-value: refused");
        assert!(!takes("gzip;q=0.5x"));
        assert!(!takes("gzip;q=0.1234"));
        assert!(!takes(""));
        assert!(!accepts_gzip(&HeaderMap::new()));
        assert!(
            accepts_gzip(&accept(&["br", "gzip"])),
            "every header line counts"
        );
    }

    fn body_of(response: Response<Body>) -> Bytes {
        let mut body = response.into_body();
        let mut context = Context::from_waker(Waker::noop());
        let mut out = Vec::new();
        while let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut context) {
            out.extend_from_slice(&frame.into_data().unwrap());
        }
        Bytes::from(out)
    }

    #[test]
    fn gzips_whole_bodies_that_are_accepted() {
        let text = "{\"value\": 12345}".repeat(100);
        let response = maybe_gzip(
            &accept(&["gzip"]),
            json_body(StatusCode::OK, Bytes::from(text.clone())),
        );
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(response.headers()[header::VARY], "accept-encoding");
        let compressed = body_of(response);
        assert!(compressed.len() < text.len());
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(&compressed[..])
            .read_to_string(&mut decoded)
            .unwrap();
        assert_eq!(decoded, text);
    }

    #[test]
    fn leaves_refused_and_short_bodies_alone() {
        let text = "x".repeat(1000);
        let refused = maybe_gzip(
            &accept(&["gzip;q=0"]),
            json_body(StatusCode::OK, Bytes::from(text.clone())),
        );
        assert!(refused.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(refused.headers()[header::VARY], "accept-encoding");
        assert_eq!(body_of(refused), text);
        let short = maybe_gzip(
            &accept(&["gzip"]),
            json_body(StatusCode::OK, Bytes::from("{}")),
        );
        assert!(short.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(body_of(short), "{}");
    }
}
