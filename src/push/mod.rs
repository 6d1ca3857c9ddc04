//! remote_write (issue 16): every stored sample's series pushed, with the sample's own time,
//! from the store's outbox to a Prometheus remote write 1.0 receiver (`serve
//! --remote-write.url`).

pub(crate) mod backoff;
pub(crate) mod client;
pub(crate) mod config;
pub mod proto;
pub(crate) mod pusher;
pub(crate) mod series;
