//! internet-monitor: measures a line with the Ookla Speedtest CLI or its own HTTP engine, keeps
//! every run in redb, and shows whether the line delivers what the contract promises.
//!
//! # Layout
//!
//! Where each part of the product lives (a module's own `//!` says more):
//!
//! - Measuring: `speedtest` runs one test and gives a sample, by either engine (`ookla` reads
//!   what the Speedtest CLI printed, `runner` and `reaper` run and clean up after it; `http` is
//!   the engine of our own); `target` is the self-hosted server that engine can measure
//!   against (`internet-monitor target`).
//! - Keeping: `sample` is the record of one run, successful or not; `store` is the redb file
//!   that keeps the samples, with the plan history, campaigns, the remote_write outbox and the
//!   connectivity monitor's tables (`store::probes`) beside them.
//! - Judging: `plan` is the contract (the promised speeds, as a history of versions); `rules`
//!   holds the regulators' rule sets and their verdicts; `summary` counts a window, its
//!   percentiles and plan compliance; `campaign` plans when a measurement protocol's next run is
//!   due.
//! - Showing: `http` is the server (the JSON API, the dashboard, `/metrics`, the web
//!   configuration); `metrics` is what a Prometheus scrape sees; `history` holds the columns the
//!   dashboard's series and heat map are computed from; `openmetrics` writes the history for a
//!   Prometheus backfill; `csv` writes samples as spreadsheet rows.
//! - The long-running service, `daemon` (`serve`): `start` reads the flags and binds, `state`
//!   is what the scheduler and the handlers share (a sample is stored, then published),
//!   `scheduler` and `scheduled` decide when a test runs, `manual` is `POST /api/v1/run`,
//!   `retention` deletes what is older than `--retention`, `budget` is the monthly data budget,
//!   `clock` deals with a wrong clock, and `worker` holds the threads that do the store's work.
//! - Connectivity: `probe` is the monitor between speed tests (probe targets and methods, the
//!   per-minute figures, outages and their classification).
//! - remote_write: `push` sends every stored sample's series from the outbox to a Prometheus
//!   remote write receiver.
//! - The commands: `cli` is the command line (each flag with its environment twin); `commands`
//!   is what each sub-command does, from parsed flags to exit status.
//! - Small shared pieces: `time` (UTC milliseconds and durations people give), `units`
//!   (bandwidths and data volumes as people write them), `zone` (IANA time zones for local
//!   days and hours), `files` (reading the small files a user names, bounded), `logging`
//!   (diagnostics on stderr), `tls` (the TLS client settings), and `original` (importing the
//!   Python app's SQLite database, behind the `original` feature).

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
