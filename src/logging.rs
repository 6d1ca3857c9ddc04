//! Diagnostics on stderr through `tracing`, filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// Sends logs to stderr (stdout carries command output). `RUST_LOG` overrides `default_level`.
pub fn init(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    // A second call (tests) keeps the first subscriber; nothing to report.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
