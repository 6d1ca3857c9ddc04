//! remote_write: every stored sample's series pushed, with the sample's own time, from the
//! store's outbox to a Prometheus-compatible receiver (`serve --remote-write.url`).

pub mod backoff;
pub mod client;
pub mod config;
