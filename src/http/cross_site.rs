//! Pages on other sites may read the public figures, but never change anything or read an
//! address: the checks against cross-site request forgery, and the answers to CORS preflights.
//!
//! A browser attaches `Origin` to every request that is not a GET or HEAD (Fetch Standard,
//! "origin header", <https://fetch.spec.whatwg.org/#origin-header>) and, since 2020,
//! `Sec-Fetch-Site` to every request (Fetch Metadata Request Headers,
//! <https://w3c.github.io/webappsec-fetch-metadata/>). A request that changes state must come
//! from this server's own origin by both, and carry `Content-Type: application/json`: that is
//! not a CORS-safelisted content type (<https://fetch.spec.whatwg.org/#cors-safelisted-request-header>),
//! so a page on another origin cannot send it without a preflight, which is refused. Clients
//! that are not browsers (curl, scripts) send neither header and pass with the content type.
//!
//! A page can also pose as this server's own origin: with DNS rebinding, a name the attacker
//! controls first resolves to their server, then to this one, so the browser calls the
//! requests same-origin (<https://en.wikipedia.org/wiki/DNS_rebinding>). What gives it away is
//! `Host`, which then carries the attacker's name: a browser's request (one with `Origin`, or
//! `Sec-Fetch-Site` other than `none`) for the history or to change state must therefore name
//! the server by an IP address, `localhost`, the machine's host name or an `--allowed-host`.

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};

use super::response::{Body, HttpError, readable_anywhere};

/// The content type a state-changing request must carry.
pub(super) const REQUIRED_CONTENT_TYPE: &str = "application/json";

/// Refuses a state-changing request that a browser sent for a page on another origin, or that
/// a page could have sent without a preflight: 403 naming the header, or 415 for the content
/// type. `host` is the request's `Host` (or the authority of its absolute URI).
pub(super) fn check_state_change(headers: &HeaderMap, host: Option<&str>) -> Result<(), HttpError> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        check_origin(origin, host)?;
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = String::from_utf8_lossy(site.as_bytes());
        if !matches!(site.as_ref(), "same-origin" | "none") {
            return Err(forbidden(format!(
                "refused a cross-site request: Sec-Fetch-Site is {}; only a page of this \
                 server's own origin may change state",
                crate::logging::quoted(&site)
            )));
        }
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let essence = content_type
        .as_deref()
        .and_then(|value| value.split(';').next())
        .map(str::trim);
    match essence {
        Some(essence) if essence.eq_ignore_ascii_case(REQUIRED_CONTENT_TYPE) => Ok(()),
        _ => Err(HttpError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: format!(
                "a request that changes state needs Content-Type: {REQUIRED_CONTENT_TYPE} (a \
                 page on another site cannot send it without asking first), not {}",
                content_type.map_or("none".to_owned(), |value| crate::logging::quoted(&value)
                    .to_string())
            ),
        }),
    }
}

/// The names a browser may reach the guarded endpoints by, besides IP addresses and
/// `localhost` (and `*.localhost`, RFC 6761 section 6.3): lower case, without a port.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    names: Vec<String>,
}

impl AllowedHosts {
    /// Allows `names` (`--allowed-host` values and the machine's host name), in any case, with
    /// or without a trailing dot.
    pub fn new<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Self {
        AllowedHosts {
            names: names
                .into_iter()
                .map(|name| normal_name(name.as_ref()))
                .filter(|name| !name.is_empty())
                .collect(),
        }
    }

    /// Whether `host`, a `Host` header's value (`name`, `name:port`, `[v6]:port`), names this
    /// server as a browser may call it.
    pub(crate) fn allows(&self, host: &str) -> bool {
        let name = match host.strip_prefix('[') {
            // An IPv6 literal, as `Host` writes it: `[::1]:5000`.
            Some(rest) => {
                return rest.split_once(']').is_some_and(|(ip, port)| {
                    ip.parse::<std::net::Ipv6Addr>().is_ok()
                        && (port.is_empty() || port.starts_with(':'))
                });
            }
            None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
        };
        let name = normal_name(name);
        name.parse::<std::net::Ipv4Addr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
            || self.names.contains(&name)
    }
}

fn normal_name(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Refuses a browser's request for a guarded endpoint (the history, a state change) whose
/// `Host` is not a name in `allowed`: how a DNS-rebinding page would have to call it. Requests
/// that no page made (no `Origin`; `Sec-Fetch-Site` absent, or `none` for an address the user
/// typed) pass, so curl and scripts reach the server by any name.
pub(super) fn check_host(
    headers: &HeaderMap,
    host: Option<&str>,
    allowed: &AllowedHosts,
) -> Result<(), HttpError> {
    let from_a_page = headers.contains_key(header::ORIGIN)
        || headers
            .get("sec-fetch-site")
            .is_some_and(|site| site.as_bytes() != b"none");
    match host {
        _ if !from_a_page => Ok(()),
        Some(host) if allowed.allows(host) => Ok(()),
        host => Err(forbidden(format!(
            "refused a request from a page that reached this server as {}: a browser may read the history or change state only by an IP address, localhost or this machine's host name; if that is this server's name, start it with --allowed-host {}",
            host.map_or("no Host".to_owned(), |host| format!("{host:?}")),
            host.map_or("NAME", |host| host
                .rsplit_once(':')
                .map_or(host, |(name, _)| name)),
        ))),
    }
}

/// The answer to `OPTIONS`: 403 for a page on another origin asking to send a request that is
/// not simple (a CORS preflight; nothing cross-origin is allowed beyond simple reads), else
/// 204 listing the methods of the path.
pub(super) fn preflight(
    headers: &HeaderMap,
    host: Option<&str>,
    methods: &[Method],
) -> Result<Response<Body>, HttpError> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        check_origin(origin, host)?;
    }
    let mut names: Vec<&str> = methods.iter().map(Method::as_str).collect();
    names.push(Method::OPTIONS.as_str());
    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::NO_CONTENT;
    if let Ok(allow) = HeaderValue::from_str(&names.join(", ")) {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    Ok(response)
}

/// Gives `response` the any-origin header when its path serves only data without addresses
/// (`any_origin`), and takes it away otherwise, whatever the handler set.
pub(super) fn apply_cors(response: Response<Body>, any_origin: bool) -> Response<Body> {
    if any_origin {
        readable_anywhere(response)
    } else {
        let mut response = response;
        response
            .headers_mut()
            .remove(header::ACCESS_CONTROL_ALLOW_ORIGIN);
        response
    }
}

/// `Origin` must name this server: the scheme's host and port equal to `Host`.
fn check_origin(origin: &HeaderValue, host: Option<&str>) -> Result<(), HttpError> {
    let origin = String::from_utf8_lossy(origin.as_bytes());
    let Some(host) = host else {
        return Err(forbidden(format!(
            "refused a cross-site request: Origin {} and no Host to compare it with",
            crate::logging::quoted(&origin)
        )));
    };
    if same_origin(&origin, host) {
        Ok(())
    } else {
        Err(forbidden(format!(
            "refused a cross-site request: Origin {} is not this server's origin (Host {})",
            crate::logging::quoted(&origin),
            crate::logging::quoted(host)
        )))
    }
}

/// Whether the serialised origin (`http://host:port`, RFC 6454 section 6.1) names `host`,
/// ignoring case and the scheme's default port. An opaque origin (`null`) never does.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return false,
    };
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return false;
    }
    let normal = |authority: &str| {
        let lower = authority.to_ascii_lowercase();
        match lower.strip_suffix(default_port) {
            Some(bare) => bare.to_owned(),
            None => lower,
        }
    };
    normal(authority) == normal(host)
}

fn forbidden(message: String) -> HttpError {
    HttpError {
        status: StatusCode::FORBIDDEN,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    header::HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    const HOST: Option<&str> = Some("127.0.0.1:5000");

    #[test]
    fn scripts_without_origin_pass_with_the_content_type() {
        let json = headers(&[("content-type", "application/json")]);
        assert_eq!(check_state_change(&json, HOST), Ok(()));
        let json = headers(&[("content-type", "Application/JSON; charset=utf-8")]);
        assert_eq!(check_state_change(&json, None), Ok(()));
        for plain in [
            headers(&[]),
            headers(&[("content-type", "text/plain")]),
            headers(&[("content-type", "application/x-www-form-urlencoded")]),
            headers(&[("content-type", "multipart/form-data; boundary=x")]),
            headers(&[("content-type", "application/jsonx")]),
        ] {
            let refused = check_state_change(&plain, HOST).unwrap_err();
            assert_eq!(
                refused.status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{plain:?}"
            );
        }
    }

    #[test]
    fn the_own_origin_passes_and_every_other_is_refused() {
        for own in [
            "http://127.0.0.1:5000",
            "HTTP://127.0.0.1:5000",
            "https://127.0.0.1:5000",
        ] {
            assert!(same_origin(own, "127.0.0.1:5000"), "{own}");
        }
        assert!(same_origin("http://monitor.example", "monitor.example:80"));
        assert!(same_origin("https://Monitor.example", "monitor.example"));
        for foreign in [
            "http://127.0.0.2:5000",
            "http://127.0.0.1:5001",
            "http://127.0.0.1",
            "http://evil.example",
            "http://127.0.0.1:5000.evil.example",
            "http://user@127.0.0.1:5000",
            "http://127.0.0.1:5000/",
            "null",
            "file://",
            "127.0.0.1:5000",
            "",
        ] {
            assert!(!same_origin(foreign, "127.0.0.1:5000"), "{foreign}");
        }
        let cross = headers(&[
            ("origin", "http://127.0.0.2:8000"),
            ("content-type", "application/json"),
        ]);
        let refused = check_state_change(&cross, HOST).unwrap_err();
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(
            refused.message,
            "refused a cross-site request: Origin \"http://127.0.0.2:8000\" is not this \
             server's origin (Host \"127.0.0.1:5000\")"
        );
        let no_host = headers(&[
            ("origin", "http://127.0.0.1:5000"),
            ("content-type", "application/json"),
        ]);
        assert!(check_state_change(&no_host, None).is_err());
    }

    #[test]
    fn fetch_metadata_must_say_same_origin_or_none() {
        for (site, allowed) in [
            ("same-origin", true),
            ("none", true),
            ("same-site", false),
            ("cross-site", false),
            ("bogus", false),
        ] {
            let request = headers(&[
                ("sec-fetch-site", site),
                ("content-type", "application/json"),
            ]);
            let checked = check_state_change(&request, HOST);
            assert_eq!(checked.is_ok(), allowed, "{site}: {checked:?}");
            if let Err(refused) = checked {
                assert_eq!(refused.status, StatusCode::FORBIDDEN);
                assert!(refused.message.contains(site), "{}", refused.message);
            }
        }
    }

    #[test]
    fn a_page_must_name_the_server_by_an_address_or_an_allowed_name() {
        let allowed = AllowedHosts::new(["Monitor.LAN.", "speedy"]);
        for host in [
            "127.0.0.1:5000",
            "192.0.2.7",
            "[::1]:5000",
            "[2001:db8::1]",
            "localhost:5000",
            "LOCALHOST",
            "monitor.localhost:5000",
            "monitor.lan:5000",
            "monitor.lan.",
            "speedy",
        ] {
            assert!(allowed.allows(host), "{host}");
        }
        for host in [
            "evil.example:5000",
            "monitor.lan.evil.example",
            "localhost.evil.example",
            "127.0.0.1.evil.example:5000",
            "[::1.evil]:5000",
            "[::1]x",
            "",
        ] {
            assert!(!allowed.allows(host), "{host}");
        }

        let rebound = Some("evil.example:5000");
        let from_page = [
            headers(&[("sec-fetch-site", "same-origin")]),
            headers(&[("origin", "http://evil.example:5000")]),
        ];
        for request in &from_page {
            let refused = check_host(request, rebound, &allowed).unwrap_err();
            assert_eq!(refused.status, StatusCode::FORBIDDEN);
            assert!(
                refused.message.contains("--allowed-host evil.example"),
                "{}",
                refused.message
            );
            assert!(check_host(request, None, &allowed).is_err());
            assert_eq!(
                check_host(request, Some("monitor.lan:5000"), &allowed),
                Ok(())
            );
        }
        // Not from a page: curl, a script, an address the user typed.
        for request in [headers(&[]), headers(&[("sec-fetch-site", "none")])] {
            assert_eq!(check_host(&request, rebound, &allowed), Ok(()));
        }
    }

    #[test]
    fn preflights_from_other_origins_are_refused() {
        let foreign = headers(&[
            ("origin", "http://127.0.0.2:8000"),
            ("access-control-request-method", "POST"),
        ]);
        let refused = preflight(&foreign, HOST, &[Method::POST]).unwrap_err();
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        let response = preflight(&headers(&[]), HOST, &[Method::GET, Method::HEAD]).unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(response.headers()[header::ALLOW], "GET, HEAD, OPTIONS");
        assert!(
            !response
                .headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        );
    }
}
