//! remote_write (issue 16): every stored sample's series pushed, with the sample's own time,
//! from the store's outbox to a Prometheus remote write 1.0 receiver (`serve
//! --remote-write.url`).

pub mod backoff;
pub mod client;
pub mod config;
pub mod proto;
pub mod pusher;
pub mod series;
