//! internet-monitor: measures a line with the Ookla Speedtest CLI or its own HTTP engine, keeps
//! every run in redb, and shows whether the line delivers what the contract promises.

// An unwrap or expect on what input, I/O or the clock can break is a panic in a request or
// recording path: refused outside tests (tests may, and say what failed).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod campaign;
pub mod cli;
pub mod commands;
pub mod csv;
pub mod daemon;
pub mod files;
pub mod history;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod openmetrics;
#[cfg(feature = "original")]
pub mod original;
pub mod plan;
pub mod probe;
pub mod push;
pub mod rules;
pub mod sample;
pub mod speedtest;
pub mod store;
pub mod summary;
pub mod target;
pub mod time;
pub mod tls;
pub mod units;
pub mod zone;
