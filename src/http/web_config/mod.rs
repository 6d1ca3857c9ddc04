//! The web configuration file (`--web.config.file`): the Prometheus exporter-toolkit's format
//! for TLS, extra response headers and basic authentication, parsed, validated and built into
//! what the server needs.

mod auth;
mod tls;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::header::{HeaderName, HeaderValue};

pub use auth::{Check, Users};

/// A loaded, validated web configuration: what the server applies to a connection.
#[derive(Debug)]
pub struct WebConfig {
    /// `None`: plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// `http_server_config.headers`, added to every answer (errors and 401s included).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `basic_auth_users`; empty: no authentication.
    pub users: Arc<Users>,
}

/// Why a web configuration file was refused. Each message names the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The file (or one it names) could not be read.
    #[error("web config {file}: {key}: cannot read {path}: {source}")]
    Read {
        file: String,
        key: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A key's value (or the YAML itself) is not accepted.
    #[error("web config {file}: {key}: {message}")]
    Invalid {
        file: String,
        key: String,
        message: String,
    },
}

impl WebConfig {
    /// Parses and validates `yaml`; `dir` resolves relative file names; reads the files named.
    pub fn parse(yaml: &str, dir: &Path) -> Result<WebConfig, WebConfigError> {
        let _ = (yaml, dir);
        Err(WebConfigError::Invalid {
            file: "<inline>".into(),
            key: "(file)".into(),
            message: "not implemented yet".into(),
        })
    }

    /// Reads the file at `path` and parses it (relative names resolve beside it).
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let yaml = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            file: path.display().to_string(),
            key: "(file)".into(),
            path: path.to_path_buf(),
            source,
        })?;
        WebConfig::parse(&yaml, path.parent().unwrap_or(Path::new(".")))
    }
}

/// The file, re-read for each new connection so certificates and users can change without a
/// restart. A file that fails after start keeps the last good configuration, logged
/// (throttled). Cheap when nothing changed: the bytes of the file and of the files it names
/// are compared with the last read, and the built `Arc` is reused.
#[derive(Debug)]
pub struct WebConfigSource {
    path: PathBuf,
    last: std::sync::Mutex<Arc<WebConfig>>,
}

impl WebConfigSource {
    /// Reads the file once. The first read must succeed: `serve` refuses to start on a bad file.
    pub fn open(path: PathBuf) -> Result<WebConfigSource, WebConfigError> {
        let config = WebConfig::load(&path)?;
        Ok(WebConfigSource {
            path,
            last: std::sync::Mutex::new(Arc::new(config)),
        })
    }

    /// The configuration as of now (re-read when the files changed; the last good one when
    /// they are broken).
    pub fn current(&self) -> Arc<WebConfig> {
        let _ = &self.path;
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}
