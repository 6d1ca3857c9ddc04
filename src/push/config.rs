//! The remote_write settings of `serve` (`--remote-write.*`), checked once at start-up so that a
//! wrong one stops the start with a message naming the flag and the fix.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The most of a credentials file (password, bearer token) read, in bytes.
pub(crate) const MAX_SECRET_BYTES: u64 = 64 * 1024;
/// The most of a TLS file (CA bundle, client certificate, key) read, in bytes.
pub(crate) const MAX_TLS_FILE_BYTES: u64 = 1024 * 1024;

/// Where the samples go: an `http://` or `https://` URL, taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// The URL as given (without credentials, which are refused).
    pub(crate) url: String,
    /// `https://`.
    pub(crate) tls: bool,
    /// The host name or address, without IPv6 brackets.
    pub(crate) host: String,
    /// The URL's port, else 443 for `https://` and 80 for `http://`.
    pub(crate) port: u16,
    /// `host[:port]` as given, for the `Host` header.
    pub(crate) authority: String,
    /// The request target: the path (`/` when empty) and the query, if any.
    pub(crate) path_and_query: String,
}

impl Endpoint {
    /// The URL as logged: without its query, which may hold a key.
    pub(crate) fn shown(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let path = self
            .path_and_query
            .split_once('?')
            .map_or(self.path_and_query.as_str(), |(path, _)| path);
        format!("{scheme}://{}{path}", self.authority)
    }

    /// Reads `--remote-write.url`; the error says what is wrong and what is accepted.
    pub(crate) fn parse(url: &str) -> Result<Endpoint, String> {
        let text = url.trim();
        let uri: hyper::Uri = text.parse().map_err(|err| {
            format!(
                "is not a URL ({err}): give an http:// or https:// URL such as \
                 https://prometheus.example:9090/api/v1/write"
            )
        })?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(
                    "must start with http:// or https://, such as http://prometheus:9090/api/v1/write"
                        .into(),
                );
            }
        };
        let authority = uri
            .authority()
            .ok_or("has no host: give one, such as http://prometheus:9090/api/v1/write")?;
        if authority.as_str().contains('@') {
            return Err(
                "must not hold credentials: give them with --remote-write.basic-auth-username \
                 and --remote-write.basic-auth-password-file"
                    .into(),
            );
        }
        use crate::speedtest::http::client::{NO_HOST, host_and_port};
        let (host, port) = host_and_port(authority, tls).map_err(|why| match why {
            NO_HOST => "has no host: give one, such as http://prometheus:9090/api/v1/write".into(),
            other => other.to_owned(),
        })?;
        let path_and_query = uri
            .path_and_query()
            .map_or("/", |path| path.as_str())
            .to_owned();
        let path_and_query = if path_and_query.starts_with('/') {
            path_and_query
        } else {
            format!("/{path_and_query}")
        };
        Ok(Endpoint {
            url: text.to_owned(),
            tls,
            host,
            port,
            authority: authority.as_str().to_owned(),
            path_and_query,
        })
    }
}

/// How the pusher says who it is; the files are read again for each push, so a rotated
/// secret applies without a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Auth {
    None,
    /// `Authorization: Basic`, the password read from the file.
    Basic {
        username: String,
        password_file: PathBuf,
    },
    /// `Authorization: Bearer`, the token read from the file.
    Bearer {
        token_file: PathBuf,
    },
}

/// The client certificate and key for mutual TLS (PEM files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClientIdentity {
    pub(crate) cert_file: PathBuf,
    pub(crate) key_file: PathBuf,
}

/// Everything the pusher needs, from the `--remote-write.*` flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteWriteConfig {
    pub(crate) endpoint: Endpoint,
    /// `--remote-write.label` pairs in the order given, each name once.
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) auth: Auth,
    /// CA certificates (PEM) trusted besides the webpki roots.
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) identity: Option<ClientIdentity>,
    /// The longest one push may take: connecting, TLS, sending and the answer.
    pub(crate) timeout: Duration,
}

/// The flags as given, before they are checked.
#[derive(Clone, Debug, Default)]
pub(crate) struct Flags {
    pub(crate) url: Option<String>,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) basic_auth_username: Option<String>,
    pub(crate) basic_auth_password_file: Option<PathBuf>,
    pub(crate) bearer_token_file: Option<PathBuf>,
    pub(crate) tls_ca_file: Option<PathBuf>,
    pub(crate) tls_cert_file: Option<PathBuf>,
    pub(crate) tls_key_file: Option<PathBuf>,
    pub(crate) timeout: Duration,
}

impl Flags {
    /// The settings, `None` without `--remote-write.url`; the error names the flag and the fix.
    /// Files named are checked to be readable here, and read for real at each push.
    pub(crate) fn check(&self) -> Result<Option<RemoteWriteConfig>, String> {
        let Some(url) = &self.url else {
            let given = [
                (!self.labels.is_empty(), "--remote-write.label"),
                (
                    self.basic_auth_username.is_some(),
                    "--remote-write.basic-auth-username",
                ),
                (
                    self.basic_auth_password_file.is_some(),
                    "--remote-write.basic-auth-password-file",
                ),
                (
                    self.bearer_token_file.is_some(),
                    "--remote-write.bearer-token-file",
                ),
                (self.tls_ca_file.is_some(), "--remote-write.tls-ca-file"),
                (self.tls_cert_file.is_some(), "--remote-write.tls-cert-file"),
                (self.tls_key_file.is_some(), "--remote-write.tls-key-file"),
            ];
            if let Some((_, flag)) = given.iter().find(|(given, _)| *given) {
                return Err(format!(
                    "{flag} is given without --remote-write.url: add the URL to push to, or drop {flag}"
                ));
            }
            return Ok(None);
        };
        let endpoint = Endpoint::parse(url)
            .map_err(|why| format!("--remote-write.url {:?} {why}", redacted(url)))?;
        use super::series::{LabelError, MAX_LABELS};
        if self.labels.len() > MAX_LABELS {
            return Err(LabelError::TooMany {
                given: self.labels.len(),
                max: MAX_LABELS,
            }
            .to_string());
        }
        let mut labels: Vec<(String, String)> = Vec::new();
        for (name, value) in &self.labels {
            if labels.iter().any(|(seen, _)| seen == name) {
                return Err(LabelError::Duplicate { name: name.clone() }.to_string());
            }
            labels.push((name.clone(), value.clone()));
        }
        let basic = self.basic_auth_username.is_some() || self.basic_auth_password_file.is_some();
        if basic && self.bearer_token_file.is_some() {
            return Err(
                "--remote-write.bearer-token-file and --remote-write.basic-auth-* are both \
                 given: the receiver takes one Authorization header, so give one of them"
                    .into(),
            );
        }
        let auth = match (
            &self.basic_auth_username,
            &self.basic_auth_password_file,
            &self.bearer_token_file,
        ) {
            (None, None, None) => Auth::None,
            (None, None, Some(token_file)) => {
                check_file(
                    "--remote-write.bearer-token-file",
                    token_file,
                    MAX_SECRET_BYTES,
                )?;
                Auth::Bearer {
                    token_file: token_file.clone(),
                }
            }
            (Some(username), Some(password_file), _) => {
                if username.contains(':') || username.chars().any(char::is_control) {
                    return Err(format!(
                        "--remote-write.basic-auth-username {username:?}: a user name cannot \
                         hold a colon (basic auth sends `user:password`, and the receiver ends \
                         the name at the first colon) or a control character"
                    ));
                }
                check_file(
                    "--remote-write.basic-auth-password-file",
                    password_file,
                    MAX_SECRET_BYTES,
                )?;
                Auth::Basic {
                    username: username.clone(),
                    password_file: password_file.clone(),
                }
            }
            (Some(_), None, _) => {
                return Err("--remote-write.basic-auth-username needs \
                            --remote-write.basic-auth-password-file: add the file holding the password"
                    .into());
            }
            (None, Some(_), _) => {
                return Err("--remote-write.basic-auth-password-file needs \
                            --remote-write.basic-auth-username: add the user name"
                    .into());
            }
        };
        if let Some(ca_file) = &self.tls_ca_file {
            check_file("--remote-write.tls-ca-file", ca_file, MAX_TLS_FILE_BYTES)?;
        }
        let identity = match (&self.tls_cert_file, &self.tls_key_file) {
            (None, None) => None,
            (Some(cert_file), Some(key_file)) => {
                check_file(
                    "--remote-write.tls-cert-file",
                    cert_file,
                    MAX_TLS_FILE_BYTES,
                )?;
                check_file("--remote-write.tls-key-file", key_file, MAX_TLS_FILE_BYTES)?;
                Some(ClientIdentity {
                    cert_file: cert_file.clone(),
                    key_file: key_file.clone(),
                })
            }
            (Some(_), None) => {
                return Err(
                    "--remote-write.tls-cert-file needs --remote-write.tls-key-file: \
                            add the client certificate's private key"
                        .into(),
                );
            }
            (None, Some(_)) => {
                return Err(
                    "--remote-write.tls-key-file needs --remote-write.tls-cert-file: \
                            add the client certificate"
                        .into(),
                );
            }
        };
        if !endpoint.tls && (self.tls_ca_file.is_some() || identity.is_some()) {
            return Err(format!(
                "--remote-write.tls-* is given but --remote-write.url {:?} is http://: use \
                 https:// or drop the TLS flags",
                redacted(url)
            ));
        }
        if self.timeout.is_zero() {
            return Err("--remote-write.timeout must be longer than 0s, such as 30s".into());
        }
        Ok(Some(RemoteWriteConfig {
            endpoint,
            labels,
            auth,
            ca_file: self.tls_ca_file.clone(),
            identity,
            timeout: self.timeout,
        }))
    }
}

/// `url` as an error message may show it: credentials before an `@` and the query (which may
/// hold a key) replaced by `…`, whether or not the rest is a valid URL.
pub(crate) fn redacted(url: &str) -> String {
    let url = url.trim();
    let (before, query) = match url.find(['?', '#']) {
        Some(at) => (&url[..at], "?…"),
        None => (url, ""),
    };
    let (scheme, rest) = match before.find("://") {
        Some(at) => before.split_at(at + 3),
        None => ("", before),
    };
    // Over-redacting a path with an `@` in it is fine for a message; a password is not.
    let rest = match rest.rfind('@') {
        Some(at) => format!("…@{}", &rest[at + 1..]),
        None => rest.to_owned(),
    };
    format!("{scheme}{rest}{query}")
}

/// A file the pusher reads at each push must be readable at start-up: a regular file of at
/// most `max_bytes` (a FIFO there would otherwise hang the start).
fn check_file(flag: &str, path: &Path, max_bytes: u64) -> Result<(), String> {
    crate::files::read_regular(path, max_bytes)
        .map(drop)
        .map_err(|err| {
            format!(
                "{flag} {}: cannot read it ({err}): give a readable file",
                path.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(url: &str) -> Flags {
        Flags {
            url: Some(url.to_owned()),
            timeout: Duration::from_secs(30),
            ..Flags::default()
        }
    }

    #[test]
    fn an_endpoint_keeps_its_path_and_query_and_defaults_its_port() {
        let endpoint = Endpoint::parse("https://mimir.example/api/v1/push?x=1").unwrap();
        assert!(endpoint.tls);
        assert_eq!(endpoint.port, 443);
        assert_eq!(endpoint.authority, "mimir.example");
        assert_eq!(endpoint.path_and_query, "/api/v1/push?x=1");
        assert_eq!(endpoint.shown(), "https://mimir.example/api/v1/push");
        let endpoint = Endpoint::parse("http://[::1]:9090").unwrap();
        assert_eq!((endpoint.host.as_str(), endpoint.port), ("::1", 9090));
        assert_eq!(endpoint.path_and_query, "/");
    }

    /// No error message shows the URL's credentials or query, valid URL or not.
    #[test]
    fn errors_never_show_the_urls_credentials_or_query() {
        for url in [
            "https://bob:hunter2@127.0.0.1/api/v1/write?key=SEKRET",
            "http://bob:hunter2@x/api/v1/write",
            "ftp://bob:hunter2@x/a b?key=SEKRET",
            "bob:hunter2@x/a?key=SEKRET",
            "http://x/a b?key=SEKRET",
            "http://bob:hun/ter2@x/",
        ] {
            let err = flags(url).check().unwrap_err();
            assert!(
                !err.contains("hunter2") && !err.contains("SEKRET") && !err.contains("ter2"),
                "{url}: {err}"
            );
            assert!(err.contains("--remote-write.url"), "{err}");
        }
        let mut tls = flags("http://x/api/v1/write?key=SEKRET");
        tls.tls_ca_file = Some("/etc/hostname".into());
        let err = tls.check().unwrap_err();
        assert!(
            err.contains("is http://") && !err.contains("SEKRET"),
            "{err}"
        );
        assert_eq!(
            redacted("https://u:p@mimir.example:443/api/v1/push?x=1"),
            "https://…@mimir.example:443/api/v1/push?…"
        );
        assert_eq!(redacted("http://x/y"), "http://x/y");
        assert_eq!(redacted("http://x/y#SEKRET"), "http://x/y?…");
    }

    #[test]
    fn wrong_urls_are_refused_with_the_fix() {
        for (url, words) in [
            ("ftp://x/y", "http:// or https://"),
            ("prometheus:9090/api/v1/write", "http:// or https://"),
            ("http://u:p@x/api/v1/write", "basic-auth"),
            ("http://x:99999/", "1 to 65535"),
        ] {
            let err = flags(url).check().unwrap_err();
            assert!(
                err.contains("--remote-write.url") && err.contains(words),
                "{url}: {err}"
            );
        }
    }

    #[test]
    fn without_a_url_nothing_else_may_be_given() {
        assert_eq!(Flags::default().check(), Ok(None));
        let err = Flags {
            labels: vec![("site".into(), "berlin".into())],
            ..Flags::default()
        }
        .check()
        .unwrap_err();
        assert!(
            err.contains("--remote-write.label") && err.contains("--remote-write.url"),
            "{err}"
        );
    }

    #[test]
    fn basic_auth_and_a_bearer_token_conflict_and_files_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let both = Flags {
            basic_auth_username: Some("u".into()),
            basic_auth_password_file: Some(secret.clone()),
            bearer_token_file: Some(secret.clone()),
            ..flags("http://x/")
        };
        let err = both.check().unwrap_err();
        assert!(err.contains("give one of them"), "{err}");
        let missing = Flags {
            bearer_token_file: Some(dir.path().join("absent")),
            ..flags("http://x/")
        };
        let err = missing.check().unwrap_err();
        assert!(
            err.contains("--remote-write.bearer-token-file") && err.contains("absent"),
            "{err}"
        );
        for bad in ["site:berlin", "a\nb"] {
            let colon = Flags {
                basic_auth_username: Some(bad.into()),
                basic_auth_password_file: Some(secret.clone()),
                ..flags("http://x/")
            };
            let err = colon.check().unwrap_err();
            assert!(err.contains("cannot hold a colon"), "{err}");
        }
        let half = Flags {
            basic_auth_username: Some("u".into()),
            ..flags("http://x/")
        };
        assert!(half.check().unwrap_err().contains("password-file"));
        let basic = Flags {
            basic_auth_username: Some("u".into()),
            basic_auth_password_file: Some(secret.clone()),
            ..flags("http://x/")
        };
        assert_eq!(
            basic.check().unwrap().unwrap().auth,
            Auth::Basic {
                username: "u".into(),
                password_file: secret
            }
        );
    }

    #[test]
    fn tls_flags_need_https_and_a_key_with_a_cert() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("ca.pem");
        std::fs::write(&pem, "x").unwrap();
        let plain = Flags {
            tls_ca_file: Some(pem.clone()),
            ..flags("http://x/")
        };
        assert!(plain.check().unwrap_err().contains("https://"));
        let no_key = Flags {
            tls_cert_file: Some(pem.clone()),
            ..flags("https://x/")
        };
        assert!(
            no_key
                .check()
                .unwrap_err()
                .contains("--remote-write.tls-key-file")
        );
    }

    #[test]
    fn a_label_given_twice_is_refused() {
        let twice = Flags {
            labels: vec![("site".into(), "a".into()), ("site".into(), "b".into())],
            ..flags("http://x/")
        };
        let err = twice.check().unwrap_err();
        assert!(
            err.contains("--remote-write.label") && err.contains("site"),
            "{err}"
        );
        let many = Flags {
            labels: (0..=super::super::series::MAX_LABELS)
                .map(|n| (format!("l{n}"), "v".to_owned()))
                .collect(),
            ..flags("http://x/")
        };
        assert!(many.check().unwrap_err().contains("--remote-write.label"));
    }
}
