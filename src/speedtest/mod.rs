//! Everything about the Ookla Speedtest CLI: running it and reading what it prints.

pub mod ookla;
pub mod reaper;
pub mod runner;

pub use ookla::{Exit, ParseOptions, RunOutput};
pub use reaper::adopt_orphans;
pub use runner::{Claim, Runner, RunnerConfig};
