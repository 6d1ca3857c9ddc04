//! The web configuration file (`--web.config.file`): the Prometheus exporter-toolkit's format
//! for TLS, extra response headers and basic authentication, parsed, validated and built into
//! what the server needs.
//!
//! The accepted keys (everything else is an error naming the key and what is accepted):
//!
//! - `tls_server_config`: `cert_file` + `key_file` (or inline PEM `cert` + `key`),
//!   `client_auth_type` (`NoClientCert` (default), `RequestClientCert`,
//!   `RequireAnyClientCert` (alias `RequireClientCert`), `VerifyClientCertIfGiven`,
//!   `RequireAndVerifyClientCert`), `client_ca_file` (or inline `client_ca`),
//!   `client_allowed_sans`, `min_version` / `max_version` (`TLS12`, `TLS13`; defaults TLS12
//!   and TLS13), `cipher_suites`, `curve_preferences`, `prefer_server_cipher_suites` (default
//!   true). A present, non-empty section turns TLS on and needs a certificate and its key; an
//!   empty one (or none) means plain HTTP.
//! - `http_server_config`: `headers` (only `Content-Security-Policy`, `X-Frame-Options`
//!   (`deny` or `sameorigin`, any case), `X-Content-Type-Options` (`nosniff`), `X-XSS-Protection`,
//!   `Strict-Transport-Security`; a blank value sends nothing), and `http2`, accepted and
//!   ignored: the server speaks HTTP/1.1 only (TLS offers ALPN `http/1.1`, so HTTP/2 clients
//!   fall back to it), whatever its value.
//! - `basic_auth_users`: user name → bcrypt hash (`$2a$`, `$2b$` or `$2y$`, cost 4 to 31).
//!
//! Refused, with a message saying why: `TLS10` and `TLS11` (rustls speaks TLS 1.2 and 1.3
//! only); cipher suites rustls lacks (CBC, RSA key exchange: only the AEAD suites with ECDHE,
//! and the TLS 1.3 suites, are accepted); `CurveP521`; `client_ca_file` with a client auth
//! type that does not verify (it would be silently unused); `client_allowed_sans` with any type
//! but `RequireAndVerifyClientCert` (without verification the names are the client's word); `rate_limit` (the server bounds connections
//! and readers itself). As in the toolkit, an empty file is valid: plain HTTP, no users.
//!
//! Relative file names resolve against the configuration file's directory. The file is
//! re-read for each new connection and each request ([`WebConfigSource`]), so certificates and users change
//! without a restart; turning TLS on or off, or removing every user (authentication off),
//! needs one (until then the last good configuration stays in force).

mod auth;
mod tls;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use hyper::header::{HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::logging::Throttle;

pub(crate) use auth::basic_user;
pub(crate) use auth::{Check, Users};

/// A loaded, validated web configuration: what the server applies to a connection.
#[derive(Debug)]
pub(crate) struct WebConfig {
    /// `None`: plain HTTP.
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// `http_server_config.headers`, added to every answer (errors and 401s included).
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// `basic_auth_users`; empty: no authentication.
    pub(crate) users: Arc<Users>,
}

/// Why a web configuration file was refused. Each message names the file and the key
/// (`(file)` for the file as a whole).
#[derive(Debug, thiserror::Error)]
pub(crate) enum WebConfigError {
    /// The file, or one it names, could not be read.
    #[error("web config {file}: {key}: cannot read {}: {cause}", path.display())]
    Read {
        /// The configuration file.
        file: String,
        /// The key naming the file that failed (`(file)` for the configuration itself).
        key: String,
        /// The file that could not be read.
        path: PathBuf,
        /// Why: in the message, and the error's `source()` (the exit message's chain,
        /// `logging::error_chain`, says it once).
        #[source]
        cause: std::io::Error,
    },
    /// A key's value, or the YAML itself, is not accepted.
    #[error("web config {file}: {key}: {message}")]
    Invalid {
        /// The configuration file.
        file: String,
        /// The key, as a dotted path (`tls_server_config.min_version`).
        key: String,
        /// What is wrong and what is accepted.
        message: String,
    },
}

/// The name [`WebConfig::parse`] gives text that came from no file.
#[cfg(test)]
const TEXT: &str = "(text)";
/// The largest configuration file or named file read, in bytes: far beyond any real one.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The files one parse read, with a SHA-256 of each, so a later read can tell whether anything
/// changed without parsing again.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Inputs {
    /// (path, SHA-256 of its bytes; `None` when it could not be read)
    files: Vec<(PathBuf, Option<[u8; 32]>)>,
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

/// Reads a regular file, bounded by [`MAX_FILE_BYTES`]: a FIFO, a device or a huge file put
/// at the path (it is re-read for each connection) is an error at once, not a hung server.
fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    crate::files::read_regular(path, MAX_FILE_BYTES)
}

/// What a parse needs to know to report errors and read named files.
struct Ctx<'a> {
    /// The configuration file's name, for messages.
    file: &'a str,
    /// Where relative names resolve.
    dir: &'a Path,
    /// Every file read, for [`WebConfigSource`]'s change check.
    inputs: Inputs,
}

impl Ctx<'_> {
    fn invalid(&self, key: &str, message: impl Into<String>) -> WebConfigError {
        WebConfigError::Invalid {
            file: self.file.to_owned(),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    /// Reads a file named by `key` (relative to the configuration's directory).
    fn read(&mut self, key: &str, name: &str) -> Result<Vec<u8>, WebConfigError> {
        let path = self.dir.join(name);
        self.read_path(key, path)
    }

    /// Reads the file at `path`, recording it in `inputs`.
    fn read_path(&mut self, key: &str, path: PathBuf) -> Result<Vec<u8>, WebConfigError> {
        let read = read_bounded(&path);
        self.inputs
            .files
            .push((path.clone(), read.as_ref().ok().map(|bytes| digest(bytes))));
        read.map_err(|cause| WebConfigError::Read {
            file: self.file.to_owned(),
            key: key.to_owned(),
            path,
            cause,
        })
    }

    /// The value of a mapping, or an error naming `key` when it is something else. `null`
    /// (a key with no value) is an empty mapping.
    fn mapping(&self, key: &str, value: Value) -> Result<Map<String, Value>, WebConfigError> {
        match value {
            Value::Null => Ok(Map::new()),
            Value::Object(map) => Ok(map),
            other => Err(self.invalid(
                key,
                format!("expected a mapping, found {}", kind_of(&other)),
            )),
        }
    }

    /// Takes `name` out of `section` and converts it; `None` when absent or null.
    fn take<T: DeserializeOwned>(
        &self,
        section: &mut Map<String, Value>,
        path: &str,
        name: &str,
        expected: &str,
    ) -> Result<Option<T>, WebConfigError> {
        match section.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => {
                let found = kind_of(&value);
                serde_json::from_value(value).map(Some).map_err(|_| {
                    self.invalid(
                        &format!("{path}.{name}"),
                        format!("expected {expected}, found {found}"),
                    )
                })
            }
        }
    }

    /// An error for the first key left in `section` after every known one was taken.
    fn no_more(
        &self,
        section: &Map<String, Value>,
        path: &str,
        accepted: &[&str],
    ) -> Result<(), WebConfigError> {
        match section.keys().next() {
            None => Ok(()),
            Some(unknown) => Err(self.invalid(
                &join_key(path, unknown),
                format!("unknown key (accepted: {})", accepted.join(", ")),
            )),
        }
    }
}

fn join_key(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

const TOP_KEYS: &[&str] = &[
    "tls_server_config",
    "http_server_config",
    "basic_auth_users",
];
const HTTP_KEYS: &[&str] = &["headers", "http2"];

/// The headers `http_server_config.headers` may set, with the values accepted (empty: any).
const HEADERS: &[(&str, &[&str])] = &[
    ("Content-Security-Policy", &[]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-XSS-Protection", &[]),
    ("Strict-Transport-Security", &[]),
];

impl WebConfig {
    /// Parses and validates `yaml`; `dir` resolves relative file names; reads the files named.
    /// Messages call the text `(text)`; [`WebConfig::load`] names the file.
    #[cfg(test)]
    pub(crate) fn parse(yaml: &str, dir: &Path) -> Result<WebConfig, WebConfigError> {
        let mut ctx = Ctx {
            file: TEXT,
            dir,
            inputs: Inputs::default(),
        };
        parse_in(yaml, &mut ctx)
    }

    /// Reads the file at `path` and parses it; relative names resolve beside it.
    #[cfg(test)]
    pub(crate) fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        load_with_inputs(path).0
    }
}

/// `WebConfig::load` (in tests), also returning what it read (whether or not it succeeded).
fn load_with_inputs(path: &Path) -> (Result<WebConfig, WebConfigError>, Inputs) {
    let file = path.display().to_string();
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut ctx = Ctx {
        file: &file,
        dir,
        inputs: Inputs::default(),
    };
    let result = load_in(path, &mut ctx);
    (result, ctx.inputs)
}

fn load_in(path: &Path, ctx: &mut Ctx<'_>) -> Result<WebConfig, WebConfigError> {
    let bytes = ctx.read_path("(file)", path.to_path_buf())?;
    let yaml = String::from_utf8(bytes).map_err(|_| ctx.invalid("(file)", "not UTF-8 text"))?;
    parse_in(&yaml, ctx)
}

fn parse_in(yaml: &str, ctx: &mut Ctx<'_>) -> Result<WebConfig, WebConfigError> {
    let document: Option<Value> = serde_saphyr::from_str(yaml).map_err(|error| {
        let message = error.to_string();
        // The first line (the rest is a rendered snippet of the file), without the parser's
        // own prefix and advice about its options.
        let first = message.lines().next().unwrap_or_default();
        let first = first.strip_prefix("error: ").unwrap_or(first);
        let first = first
            .split_once(", set DuplicateKeyPolicy")
            .map_or(first, |(before, _)| before);
        ctx.invalid("(file)", format!("not valid YAML: {first}"))
    })?;
    let mut top = match document {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(ctx.invalid(
                "(file)",
                format!(
                    "expected a mapping of {}, found {}",
                    TOP_KEYS.join(", "),
                    kind_of(&other)
                ),
            ));
        }
    };
    if top.contains_key("rate_limit") {
        return Err(ctx.invalid(
            "rate_limit",
            "not supported (the server bounds its connections and readers itself; accepted: \
             tls_server_config, http_server_config, basic_auth_users)",
        ));
    }

    let tls = match top.remove("tls_server_config") {
        None => None,
        Some(value) => {
            let section = ctx.mapping("tls_server_config", value)?;
            tls::build(section, ctx)?
        }
    };

    let mut headers = Vec::new();
    if let Some(value) = top.remove("http_server_config") {
        let mut section = ctx.mapping("http_server_config", value)?;
        let _http2: Option<bool> =
            ctx.take(&mut section, "http_server_config", "http2", "true or false")?;
        if let Some(value) = section.remove("headers") {
            let map = ctx.mapping("http_server_config.headers", value)?;
            headers = parse_headers(map, ctx)?;
        }
        ctx.no_more(&section, "http_server_config", HTTP_KEYS)?;
    }

    let users = match top.remove("basic_auth_users") {
        None => Users::default(),
        Some(value) => {
            let map = ctx.mapping("basic_auth_users", value)?;
            let mut list = Vec::with_capacity(map.len());
            for (name, hash) in map {
                let key = format!("basic_auth_users.{name}");
                let Value::String(hash) = hash else {
                    return Err(ctx.invalid(
                        &key,
                        format!("expected a bcrypt hash, found {}", kind_of(&hash)),
                    ));
                };
                list.push((name, hash));
            }
            Users::new(list).map_err(|(name, message)| {
                ctx.invalid(&format!("basic_auth_users.{name}"), message)
            })?
        }
    };

    ctx.no_more(&top, "", TOP_KEYS)?;
    Ok(WebConfig {
        tls,
        headers,
        users: Arc::new(users),
    })
}

fn parse_headers(
    map: Map<String, Value>,
    ctx: &Ctx<'_>,
) -> Result<Vec<(HeaderName, HeaderValue)>, WebConfigError> {
    let mut headers = Vec::new();
    for (name, value) in map {
        let key = format!("http_server_config.headers.{name}");
        let Some((_, allowed)) = HEADERS.iter().find(|(known, _)| *known == name) else {
            let names: Vec<&str> = HEADERS.iter().map(|(known, _)| *known).collect();
            return Err(ctx.invalid(
                &key,
                format!("this header cannot be set (accepted: {})", names.join(", ")),
            ));
        };
        let value = match value {
            Value::Null => continue,
            Value::String(value) => value,
            other => {
                return Err(ctx.invalid(
                    &key,
                    format!("expected a string, found {}", kind_of(&other)),
                ));
            }
        };
        if value.is_empty() {
            continue;
        }
        // Values are case-insensitive (RFC 7034 §2.1 for X-Frame-Options, RFC 9110 tokens).
        if !allowed.is_empty() && !allowed.iter().any(|a| a.eq_ignore_ascii_case(&value)) {
            return Err(ctx.invalid(
                &key,
                format!(
                    "{value:?} is not accepted (accepted: {})",
                    allowed.join(", ")
                ),
            ));
        }
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ctx.invalid(&key, "not a valid header name"))?;
        let header_value = HeaderValue::from_str(&value).map_err(|_| {
            ctx.invalid(
                &key,
                "not a valid header value (visible ASCII characters, spaces and tabs only)",
            )
        })?;
        headers.push((header_name, header_value));
    }
    Ok(headers)
}

/// The file, re-read for each new connection (TLS) and request (users, headers) so
/// certificates and users can change without a restart. A file that fails after start keeps the last good configuration, logged
/// (throttled). Cheap when nothing changed: the configuration file and the files it names are
/// read and their SHA-256 compared with the last read's, and the built `Arc` is reused.
pub(crate) struct WebConfigSource {
    path: PathBuf,
    /// The last good configuration and what it was built from; and what the last failed
    /// read saw (so a broken file is not parsed and logged again until it changes).
    state: Mutex<SourceState>,
    throttle: Throttle,
}

impl std::fmt::Debug for WebConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfigSource")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct SourceState {
    config: Arc<WebConfig>,
    inputs: Inputs,
    failed: Option<Inputs>,
}

/// Log lines a minute about a broken web configuration file.
const BROKEN_LOGS_PER_MINUTE: u32 = 2;

impl WebConfigSource {
    /// Reads the file once. The first read must succeed: `serve` refuses to start on a bad
    /// file.
    pub(crate) fn open(path: PathBuf) -> Result<WebConfigSource, WebConfigError> {
        let (config, inputs) = load_with_inputs(&path);
        let config = config?;
        Ok(WebConfigSource {
            path,
            state: Mutex::new(SourceState {
                config: Arc::new(config),
                inputs,
                failed: None,
            }),
            throttle: Throttle::new(BROKEN_LOGS_PER_MINUTE),
        })
    }

    /// The configuration as of now: the last one built when neither the file nor any file it
    /// names changed; otherwise the file parsed again, or, when that fails, the last good one
    /// (the failure logged, throttled). A file that would turn TLS on or off counts as failing:
    /// that needs a restart, so an edit cannot silently downgrade a TLS port to plain HTTP.
    /// So does one with no `basic_auth_users` when the configuration in force has some: an
    /// edit (or a file caught half written, its users not there yet) cannot open the server.
    pub(crate) fn current(&self) -> Arc<WebConfig> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if unchanged(&state.inputs) {
            // An edit undone (the file as it was when last good): say the warning is over.
            if state.failed.take().is_some() {
                tracing::info!(
                    file = %self.path.display(),
                    "web config is as it was when last good again; it stays in force"
                );
            }
            return state.config.clone();
        }
        if state.failed.as_ref().is_some_and(unchanged) {
            return state.config.clone();
        }
        let (result, inputs) = load_with_inputs(&self.path);
        let tls_was_on = state.config.tls.is_some();
        let auth_was_on = !state.config.users.is_empty();
        let result = result.and_then(|config| {
            let refused = |key: &str, message: String| WebConfigError::Invalid {
                file: self.path.display().to_string(),
                key: key.into(),
                message,
            };
            if config.tls.is_some() != tls_was_on {
                return Err(refused(
                    "tls_server_config",
                    format!(
                        "TLS was {} at start; turning it {} needs a restart",
                        if tls_was_on { "on" } else { "off" },
                        if tls_was_on { "off" } else { "on" },
                    ),
                ));
            }
            if auth_was_on && config.users.is_empty() {
                return Err(refused(
                    "basic_auth_users",
                    "no users left: turning authentication off needs a restart (a file \
                     half written would otherwise open the server)"
                        .into(),
                ));
            }
            Ok(config)
        });
        match result {
            Ok(config) => {
                tracing::info!(file = %self.path.display(), "web config reloaded");
                state.config = Arc::new(config);
                state.inputs = inputs;
                state.failed = None;
            }
            Err(error) => {
                if let Some(left_out) = self.throttle.admit() {
                    tracing::warn!(
                        error = %error,
                        left_out,
                        "web config is broken; the last good one stays in force"
                    );
                }
                state.failed = Some(inputs);
            }
        }
        state.config.clone()
    }
}

/// Whether every file in `inputs` still has the bytes (or the failure) it had.
fn unchanged(inputs: &Inputs) -> bool {
    !inputs.files.is_empty()
        && inputs.files.iter().all(|(path, was)| {
            let now = read_bounded(path).ok().map(|bytes| digest(&bytes));
            now == *was
        })
}
