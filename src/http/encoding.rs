//! Content negotiation for compressed answers: gzip when the client's `Accept-Encoding` takes it.

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http_body_util::BodyExt;
use hyper::body::{Body as _, Frame};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

use super::response::{Body, whole};

/// Bodies shorter than this (bytes) are sent as they are: gzip's header and trailer (18 bytes)
/// and the work eat the saving.
pub(crate) const MIN_GZIP_BYTES: usize = 256;

/// The most a body may hold to be compressed here (bytes): whole bodies of the JSON endpoints
/// are bounded well below it; anything larger is sent as it is.
pub(crate) const MAX_GZIP_BYTES: usize = 16 * 1024 * 1024;

/// Whether the `Accept-Encoding` values in `headers` accept gzip: `gzip` (or `x-gzip`) listed
/// with a q-value above 0, or else `*` with a q-value above 0. No header means identity only.
pub(crate) fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let q = quality(parts);
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                // The highest q given for gzip wins (a list may repeat a coding).
                gzip = Some(gzip.map_or(q, |old: f32| old.max(q)));
            } else if coding == "*" {
                any = Some(any.map_or(q, |old: f32| old.max(q)));
            }
        }
    }
    gzip.or(any).is_some_and(|q| q > 0.0)
}

/// The q-value among an `Accept-Encoding` item's parameters: 1 when absent, 0 when it does
/// not parse (a client that says something odd about gzip gets identity, which always works).
fn quality<'a>(parameters: impl Iterator<Item = &'a str>) -> f32 {
    for parameter in parameters {
        let Some((name, value)) = parameter.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("q") {
            return match value.trim().parse::<f32>() {
                Ok(q) if (0.0..=1.0).contains(&q) => q,
                _ => 0.0,
            };
        }
    }
    1.0
}

/// `data` gzipped at `level` (0–9); `None` only if the encoder fails, which writing to memory
/// does not.
pub(crate) fn gzip(data: &[u8], level: u32) -> Option<Vec<u8>> {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(data.len() / 3 + 64),
        Compression::new(level.min(9)),
    );
    encoder.write_all(data).ok()?;
    encoder.finish().ok()
}

/// Adds `Accept-Encoding` to the response's `Vary` header unless it is there already.
pub(crate) fn vary_on_encoding(response: &mut Response<Body>) {
    let varies = response
        .headers()
        .get_all(header::VARY)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|name| {
            let name = name.trim();
            name == "*" || name.eq_ignore_ascii_case("accept-encoding")
        });
    if !varies {
        response
            .headers_mut()
            .append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
}

/// Gzips a successful response held whole in memory (a JSON document, an error body) when
/// the request's `headers` accept gzip, setting `Content-Encoding: gzip` and `Vary:
/// Accept-Encoding`. Streamed bodies (JSON pages, CSV exports), bodies shorter than
/// [`MIN_GZIP_BYTES`] or longer than [`MAX_GZIP_BYTES`], and responses already encoded are
/// returned unchanged. Compresses at the default level (6) on every call: for bodies made
/// once and served often, compress once yourself.
pub(crate) fn maybe_gzip(headers: &HeaderMap, response: Response<Body>) -> Response<Body> {
    if response.headers().contains_key(header::CONTENT_ENCODING)
        || response.status() == StatusCode::NOT_MODIFIED
        || response.status() == StatusCode::NO_CONTENT
    {
        return response;
    }
    // Only a body that knows its exact length is whole; streamed ones do not.
    let Some(length) = response.body().size_hint().exact() else {
        return response;
    };
    let Ok(length) = usize::try_from(length) else {
        return response;
    };
    if !(MIN_GZIP_BYTES..=MAX_GZIP_BYTES).contains(&length) {
        return response;
    }
    let (mut parts, mut body) = response.into_parts();
    let Some(data) = take_whole(&mut body, length) else {
        // Not whole after all (never so for `whole` bodies): sent unchanged.
        return Response::from_parts(parts, body);
    };
    let mut response = if accepts_gzip(headers)
        && let Some(compressed) = gzip(&data, Compression::default().level())
        && compressed.len() < data.len()
    {
        parts
            .headers
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        parts.headers.remove(header::CONTENT_LENGTH);
        Response::from_parts(parts, whole(Bytes::from(compressed)))
    } else {
        Response::from_parts(parts, whole(data))
    };
    vary_on_encoding(&mut response);
    response
}

/// The data of a body that is ready in memory and `length` bytes long, read without waiting:
/// `None` unless its first frame is all of it, and then `body` still yields every byte.
fn take_whole(body: &mut Body, length: usize) -> Option<Bytes> {
    let mut context = Context::from_waker(Waker::noop());
    // A body held in memory answers its first poll at once with all of its data; one that
    // is not ready is left alone (Pending consumes nothing).
    let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut *body).poll_frame(&mut context) else {
        return None;
    };
    match frame.into_data() {
        Ok(data) if data.len() == length => Some(data),
        // Part of a body, or trailers: put the frame back in front of the rest.
        Ok(data) => {
            restore(body, Frame::data(data));
            None
        }
        Err(frame) => {
            restore(body, frame);
            None
        }
    }
}

/// Puts `frame` back in front of what is left of `body`.
fn restore(body: &mut Body, frame: Frame<Bytes>) {
    let rest = std::mem::replace(body, whole(Bytes::new()));
    *body = Prefixed {
        first: Some(frame),
        rest,
    }
    .boxed_unsync();
}

/// A body with one frame already taken out put back in front.
struct Prefixed {
    first: Option<Frame<Bytes>>,
    rest: Body,
}

impl hyper::body::Body for Prefixed {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(frame) = self.first.take() {
            return Poll::Ready(Some(Ok(frame)));
        }
        Pin::new(&mut self.rest).poll_frame(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    #[test]
    fn gzip_is_accepted_as_browsers_and_rfc_9110_say() {
        assert!(accepts_gzip(&accept("gzip")));
        assert!(accepts_gzip(&accept("gzip, deflate, br, zstd")));
        assert!(accepts_gzip(&accept("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&accept("x-gzip")));
        assert!(accepts_gzip(&accept("*")));
        assert!(accepts_gzip(&accept("identity, *;q=0.1")));
        assert!(accepts_gzip(&accept("gzip ; q=0.001")));
    }

    #[test]
    fn gzip_is_refused_when_absent_or_q_zero() {
        assert!(!accepts_gzip(&HeaderMap::new()));
        assert!(!accepts_gzip(&accept("identity")));
        assert!(!accepts_gzip(&accept("br, deflate")));
        assert!(!accepts_gzip(&accept("gzip;q=0")));
        assert!(!accepts_gzip(&accept("gzip;q=0.000")));
        assert!(!accepts_gzip(&accept("gzip;q=0, *")));
        assert!(!accepts_gzip(&accept("*;q=0")));
        assert!(!accepts_gzip(&accept("gzip;q=bogus")));
        assert!(!accepts_gzip(&accept("gzip;q=2")));
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    async fn body_of(response: Response<Body>) -> Bytes {
        response.into_body().collect().await.unwrap().to_bytes()
    }

    fn json_response(body: &[u8]) -> Response<Body> {
        super::super::response::json_body(StatusCode::OK, Bytes::copy_from_slice(body))
    }

    #[tokio::test]
    async fn whole_bodies_are_gzipped_for_clients_that_take_it() {
        let body = b"{\"values\":[".repeat(100);
        let response = maybe_gzip(&accept("gzip"), json_response(&body));
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(response.headers()[header::VARY], "accept-encoding");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let sent = body_of(response).await;
        assert!(sent.len() < body.len());
        assert_eq!(gunzip(&sent), body);
    }

    #[tokio::test]
    async fn identity_for_clients_that_refuse_gzip_still_varies() {
        let body = b"{\"values\":[".repeat(100);
        let response = maybe_gzip(&accept("gzip;q=0"), json_response(&body));
        assert!(!response.headers().contains_key(header::CONTENT_ENCODING));
        assert_eq!(response.headers()[header::VARY], "accept-encoding");
        assert_eq!(body_of(response).await, body);
    }

    #[tokio::test]
    async fn short_streamed_and_encoded_bodies_are_left_alone() {
        let short = maybe_gzip(&accept("gzip"), json_response(b"{\"a\":1}"));
        assert!(!short.headers().contains_key(header::CONTENT_ENCODING));
        assert!(!short.headers().contains_key(header::VARY));
        assert_eq!(body_of(short).await, &b"{\"a\":1}"[..]);

        let (sender, streamed) = http_body_util::channel::Channel::<Bytes, std::io::Error>::new(1);
        drop(sender);
        let streamed = Response::new(streamed.boxed_unsync());
        let streamed = maybe_gzip(&accept("gzip"), streamed);
        assert!(!streamed.headers().contains_key(header::CONTENT_ENCODING));

        let mut encoded = json_response(&[b'x'; 1000]);
        encoded
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
        let encoded = maybe_gzip(&accept("gzip"), encoded);
        assert_eq!(encoded.headers()[header::CONTENT_ENCODING], "br");
        assert_eq!(body_of(encoded).await.len(), 1000);
    }

    #[tokio::test]
    async fn a_body_in_several_frames_keeps_every_byte() {
        // Claims an exact length but is two frames: must come out whole and unchanged.
        let (mut sender, streamed) =
            http_body_util::channel::Channel::<Bytes, std::io::Error>::new(2);
        sender
            .send_data(Bytes::from(vec![b'a'; 300]))
            .await
            .unwrap();
        sender
            .send_data(Bytes::from(vec![b'b'; 300]))
            .await
            .unwrap();
        drop(sender);
        let exact = http_body_util::BodyExt::boxed_unsync(Exact(streamed, 600));
        let response = maybe_gzip(&accept("gzip"), Response::new(exact));
        assert!(!response.headers().contains_key(header::CONTENT_ENCODING));
        let sent = body_of(response).await;
        assert_eq!(sent.len(), 600);
        assert!(sent[..300].iter().all(|&b| b == b'a'));
        assert!(sent[300..].iter().all(|&b| b == b'b'));
    }

    struct Exact<B>(B, u64);

    impl<B: hyper::body::Body<Data = Bytes, Error = std::io::Error> + Unpin> hyper::body::Body
        for Exact<B>
    {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            context: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            Pin::new(&mut self.0).poll_frame(context)
        }
        fn size_hint(&self) -> hyper::body::SizeHint {
            hyper::body::SizeHint::with_exact(self.1)
        }
    }
}
