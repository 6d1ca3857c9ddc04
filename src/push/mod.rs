//! remote_write (issue 16): the outbox's samples pushed to a Prometheus remote write 1.0
//! receiver with their own timestamps.

pub mod proto;
pub mod series;
