//! internet-monitor: measures a line with the Ookla Speedtest CLI or its own HTTP engine, keeps
//! every run in redb, and shows whether the line delivers what the contract promises.

// An unwrap or expect on what input, I/O or the clock can break is a panic in a request or
// recording path: refused outside tests (tests may, and say what failed).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// What the binary, the integration tests, the benches and the fuzz targets name is `pub`;
// everything else is `pub(crate)` or private, so an internal item nobody uses is dead code and
// fails CI. A `pub` on an item outside code cannot reach is refused (`unreachable_pub`).
#![cfg_attr(not(test), warn(unreachable_pub))]
// The documentation is for people working on this program (`cargo doc --document-private-items`):
// a public item's doc may link to the crate-internal items it is built from.
#![allow(rustdoc::private_intra_doc_links)]

pub(crate) mod campaign;
pub mod cli;
pub mod commands;
pub mod csv;
pub mod daemon;
pub(crate) mod files;
pub mod history;
pub mod http;
pub mod logging;
pub mod metrics;
pub(crate) mod openmetrics;
#[cfg(feature = "original")]
pub(crate) mod original;
pub mod plan;
pub mod probe;
pub mod push;
pub mod rules;
pub mod sample;
pub mod speedtest;
pub mod store;
pub mod summary;
pub(crate) mod target;
pub mod time;
pub(crate) mod tls;
pub mod units;
pub mod zone;
