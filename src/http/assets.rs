//! The dashboard's static files, embedded in the binary: `/` (the page) and `/assets/…`,
//! gzipped once, with validators (`ETag`) and the page's security headers.

use std::sync::LazyLock;

use bytes::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

use super::encoding;
use super::response::{Body, whole};

/// The page's `Content-Security-Policy`: everything from this server, no inline script or
/// style, `data:` images only (the favicon fallback), no framing, no `<base>`.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// The compression level the assets are gzipped at, once, at first use (0–9).
const ASSET_GZIP_LEVEL: u32 = 9;

/// One embedded file: where it is served, its type, and its bytes as built in.
#[derive(Debug)]
pub(crate) struct Asset {
    /// The request path (`/` for the page, `/assets/…` for the rest).
    pub(crate) path: &'static str,
    /// The `Content-Type` it is served with.
    pub(crate) content_type: &'static str,
    /// The file as embedded.
    pub(crate) bytes: &'static [u8],
}

/// Every file served, the page first. Adding a file: embed it here; the tests check that
/// every file the page references is in this list.
pub(crate) static ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("../../assets/index.html"),
    },
    Asset {
        path: "/assets/app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/app.js"),
    },
    Asset {
        path: "/assets/app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/app.css"),
    },
    Asset {
        path: "/assets/favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../assets/favicon.svg"),
    },
    Asset {
        path: "/assets/vendor/uplot/dist/uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/vendor/uplot/dist/uPlot.iife.min.js"),
    },
    Asset {
        path: "/assets/vendor/uplot/dist/uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/vendor/uplot/dist/uPlot.min.css"),
    },
    Asset {
        path: "/assets/vendor/uplot/LICENSE",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("../../assets/vendor/uplot/LICENSE"),
    },
];

/// An asset ready to send: its bytes as they are and gzipped, with an entity tag for each.
struct Prepared {
    asset: &'static Asset,
    identity_tag: HeaderValue,
    gzipped: Option<(Bytes, HeaderValue)>,
}

/// The assets prepared at first use: each gzipped once (kept only when smaller).
static PREPARED: LazyLock<Vec<Prepared>> = LazyLock::new(|| ASSETS.iter().map(prepare).collect());

fn prepare(asset: &'static Asset) -> Prepared {
    let tag = entity_tag(asset.bytes);
    let gzipped = encoding::gzip(asset.bytes, ASSET_GZIP_LEVEL)
        .filter(|gzipped| gzipped.len() < asset.bytes.len())
        .and_then(|gzipped| {
            let tag = HeaderValue::from_str(&format!("\"{tag}-gzip\"")).ok()?;
            Some((Bytes::from(gzipped), tag))
        });
    Prepared {
        asset,
        identity_tag: HeaderValue::from_str(&format!("\"{tag}\""))
            .unwrap_or(HeaderValue::from_static("\"0\"")),
        gzipped,
    }
}

/// The entity tag's text for `bytes` (without quotes): length and CRC-32, in hex. It tells
/// versions apart for caching; it is not a guard against forgery (nothing here needs one).
fn entity_tag(bytes: &[u8]) -> String {
    format!("{:x}-{:08x}", bytes.len(), crc32fast::hash(bytes))
}

/// The asset served at `path`, if any.
pub(crate) fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.path == path)
}

/// Whether an `If-None-Match` value names `tag` (weak comparison, as RFC 9110 asks for this
/// header: `W/"x"` matches `"x"`), or is `*`.
fn none_match(if_none_match: &str, tag: &str) -> bool {
    let tag = tag.trim_start_matches("W/");
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == tag)
}

/// Whether the request's `If-None-Match` headers name `tag`, the tag of the representation
/// this request would get (RFC 9110 13.1.2): a client holding the gzipped bytes that now asks
/// without gzip must get the identity bytes, not a 304 that confirms what it cannot use.
fn not_modified(headers: &HeaderMap, tag: &HeaderValue) -> bool {
    let Ok(tag) = tag.to_str() else {
        return false;
    };
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| none_match(value, tag))
}

/// The answer for the asset at `path` (found with [`find`]; any other path gets `None`):
/// gzipped when the request accepts it, `304 Not Modified` when its `If-None-Match` names
/// the current version, always to be revalidated (`Cache-Control: no-cache`), the page with
/// its `Content-Security-Policy` and `Referrer-Policy`.
pub(crate) fn serve(path: &str, headers: &HeaderMap) -> Option<Response<Body>> {
    let prepared = PREPARED
        .iter()
        .find(|prepared| prepared.asset.path == path)?;
    let asset = prepared.asset;
    let gzipped = prepared
        .gzipped
        .as_ref()
        .filter(|_| encoding::accepts_gzip(headers));
    let tag = gzipped.map_or(&prepared.identity_tag, |(_, tag)| tag);
    let mut response = if not_modified(headers, tag) {
        let mut response = Response::new(whole(Bytes::new()));
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        let body = match gzipped {
            Some((bytes, _)) => bytes.clone(),
            None => Bytes::from_static(asset.bytes),
        };
        let mut response = Response::new(whole(body));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        if gzipped.is_some() {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, tag.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if asset.content_type.starts_with("text/html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    if prepared.gzipped.is_some() {
        encoding::vary_on_encoding(&mut response);
    }
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_unique_and_under_assets_but_the_page() {
        for (i, asset) in ASSETS.iter().enumerate() {
            assert!(
                asset.path == "/" || asset.path.starts_with("/assets/"),
                "{}",
                asset.path
            );
            assert!(!asset.bytes.is_empty(), "{} is empty", asset.path);
            assert!(
                ASSETS[i + 1..].iter().all(|other| other.path != asset.path),
                "{} twice",
                asset.path
            );
        }
        assert_eq!(ASSETS[0].path, "/");
        assert!(find("/assets/app.js").is_some());
        assert!(find("/assets/").is_none());
        assert!(find("/assets/../Cargo.toml").is_none());
    }

    #[test]
    fn the_page_sets_no_inline_script_or_style() {
        let page = std::str::from_utf8(ASSETS[0].bytes).unwrap();
        // A <script> with content, an on…= handler or a style attribute/element would be
        // blocked by the policy.
        assert!(!page.contains("<style"), "inline <style>");
        assert!(!page.contains(" style="), "style attribute");
        assert!(!page.contains(" onclick=") && !page.contains(" onload="));
        for script in page.split("<script").skip(1) {
            let (open, rest) = script.split_once('>').unwrap();
            assert!(open.contains("src=\"/assets/"), "<script{open}> has no src");
            assert!(rest.starts_with("</script>"), "<script{open}> has content");
        }
    }

    #[test]
    fn entity_tags_follow_the_content() {
        assert_eq!(entity_tag(b""), "0-00000000");
        assert_eq!(entity_tag(b"abc"), "3-352441c2");
        assert_ne!(entity_tag(b"abc"), entity_tag(b"abd"));
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists_and_star() {
        assert!(none_match("\"3-1\"", "\"3-1\""));
        assert!(none_match("W/\"3-1\"", "\"3-1\""));
        assert!(none_match("\"a\", \"3-1\"", "\"3-1\""));
        assert!(none_match("*", "\"3-1\""));
        assert!(!none_match("\"3-2\"", "\"3-1\""));
        assert!(!none_match("3-1", "\"3-1\""));
        assert!(!none_match("", "\"3-1\""));
    }

    fn request(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn gzip_variant_has_its_own_tag_and_only_the_selected_one_revalidates() {
        let identity = serve("/assets/app.js", &request(&[])).unwrap();
        let gzipped = serve(
            "/assets/app.js",
            &request(&[(header::ACCEPT_ENCODING, "gzip")]),
        )
        .unwrap();
        let identity_tag = identity.headers()[header::ETAG].to_str().unwrap();
        let gzip_tag = gzipped.headers()[header::ETAG].to_str().unwrap();
        assert_ne!(identity_tag, gzip_tag);
        assert_eq!(gzipped.headers()[header::CONTENT_ENCODING], "gzip");
        assert!(!identity.headers().contains_key(header::CONTENT_ENCODING));
        for (encoding, tag) in [("identity", identity_tag), ("gzip", gzip_tag)] {
            let again = serve(
                "/assets/app.js",
                &request(&[
                    (header::IF_NONE_MATCH, tag),
                    (header::ACCEPT_ENCODING, encoding),
                ]),
            )
            .unwrap();
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{encoding}");
            assert_eq!(again.headers()[header::ETAG], tag);
        }
        // The other representation's tag: the bytes this client gets are not the ones it holds.
        for (encoding, held) in [("identity", gzip_tag), ("gzip", identity_tag)] {
            let other = serve(
                "/assets/app.js",
                &request(&[
                    (header::IF_NONE_MATCH, held),
                    (header::ACCEPT_ENCODING, encoding),
                ]),
            )
            .unwrap();
            assert_eq!(other.status(), StatusCode::OK, "{encoding} holding {held}");
            assert_ne!(other.headers()[header::ETAG], held);
        }
        let stale = serve(
            "/assets/app.js",
            &request(&[(header::IF_NONE_MATCH, "\"0-00000000\"")]),
        )
        .unwrap();
        assert_eq!(stale.status(), StatusCode::OK);
        assert!(serve("/assets/missing.js", &request(&[])).is_none());
    }

    #[test]
    fn only_the_page_carries_the_policy() {
        let page = serve("/", &request(&[])).unwrap();
        assert_eq!(
            page.headers()[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(page.headers()[header::REFERRER_POLICY], "no-referrer");
        let script = serve("/assets/app.js", &request(&[])).unwrap();
        assert!(
            !script
                .headers()
                .contains_key(header::CONTENT_SECURITY_POLICY)
        );
    }
}
