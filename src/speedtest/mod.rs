//! Measuring once: the engines behind one interface ("measure once → a sample"), and the single
//! slot in which a test may run.
//!
//! The Ookla engine ([`runner`], [`ookla`]) runs the official Speedtest CLI; the HTTP engine
//! ([`http`]) measures against a Cloudflare-style or LibreSpeed server, such as
//! `internet-monitor target`. The scheduler, store, metrics and HTTP layers see only
//! [`Runner`] and the samples it returns, each stamped with the [`Engine`] that made it.

pub(crate) mod http;
pub mod ookla;
pub(crate) mod reaper;
pub mod runner;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

pub(crate) use http::{HttpConfig, HttpEngine};
pub(crate) use ookla::ParseOptions;
pub(crate) use reaper::adopt_orphans;
pub(crate) use runner::{OoklaCli, OoklaConfig};

use crate::sample::{Engine, EngineName, Sample, Trigger};
use crate::time::Timestamp;

/// `--engine`: which engine measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineChoice {
    /// The Ookla CLI when `--speedtest-bin` resolves to an executable, else the HTTP engine.
    Auto,
    /// The official Ookla Speedtest CLI (`--speedtest-bin`).
    Ookla,
    /// This program's own HTTP engine (`--http-server`).
    Http,
}

/// The engine chosen, configured.
#[derive(Clone, Debug)]
pub enum EngineConfig {
    Ookla(OoklaConfig),
    Http(HttpConfig),
}

impl EngineConfig {
    /// What every sample this engine makes records about it.
    pub fn describe(&self) -> Engine {
        match self {
            EngineConfig::Ookla(_) => Engine::ookla(),
            EngineConfig::Http(config) => config.describe(),
        }
    }
}

/// The engine `choice` picks, and why, in words for the start-up log: `auto` takes the Ookla CLI
/// when `binary` resolves to an executable file (as `PATH` lookup would), else the HTTP engine.
pub(crate) fn choose(
    choice: EngineChoice,
    binary: &Path,
    ookla: impl FnOnce() -> OoklaConfig,
    http: impl FnOnce() -> HttpConfig,
) -> (EngineConfig, String) {
    match choice {
        EngineChoice::Ookla => (
            EngineConfig::Ookla(ookla()),
            format!("Ookla Speedtest CLI {} (--engine ookla)", binary.display()),
        ),
        EngineChoice::Http => {
            let config = http();
            let why = format!("{} (--engine http)", config.summary());
            (EngineConfig::Http(config), why)
        }
        EngineChoice::Auto => match resolve_executable(binary) {
            Some(path) => (
                EngineConfig::Ookla(ookla()),
                format!(
                    "Ookla Speedtest CLI {} (--engine auto: --speedtest-bin {} is an executable)",
                    path.display(),
                    binary.display()
                ),
            ),
            None => {
                let config = http();
                let why = format!(
                    "{} (--engine auto: no Ookla Speedtest CLI at --speedtest-bin {})",
                    config.summary(),
                    binary.display()
                );
                (EngineConfig::Http(config), why)
            }
        },
    }
}

/// `binary` as the kernel would run it: a path with a slash as it is, a bare name looked up on
/// `PATH`; `None` unless that is a regular file with an execute bit.
pub(crate) fn resolve_executable(binary: &Path) -> Option<PathBuf> {
    fn executable(path: &Path) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    }
    if binary.as_os_str().is_empty() {
        return None;
    }
    if binary.components().count() > 1 || binary.to_string_lossy().contains('/') {
        return executable(binary).then(|| binary.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|candidate| executable(candidate))
}

/// What a running test is doing, for a person watching (`run-once` on a terminal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// No test is running.
    Idle,
    /// Connecting, finding the API, measuring the idle latency (HTTP engine).
    Latency,
    /// Measuring the download (HTTP engine).
    Download,
    /// Measuring the upload (HTTP engine).
    Upload,
    /// The Ookla CLI is running (it reports no phases with `--progress=no`).
    Running,
}

impl Phase {
    /// The phase in a few words: `testing download`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Latency => "measuring latency",
            Phase::Download => "testing download",
            Phase::Upload => "testing upload",
            Phase::Running => "testing",
        }
    }
}

/// A configured engine, ready to measure.
#[derive(Debug)]
enum Measure {
    Ookla(OoklaCli),
    Http(HttpEngine),
}

/// Owns the engine and the single slot in which a test may run: scheduled, manual and retest
/// runs share it.
#[derive(Debug)]
pub struct Runner {
    engine: Measure,
    described: Arc<Engine>,
    slot: Arc<Mutex<()>>,
    /// What the running test is doing ([`Runner::phases`]).
    phase: Arc<tokio::sync::watch::Sender<Phase>>,
}

/// The right to run the next test, held from `try_claim` until the run is over.
#[derive(Debug)]
pub(crate) struct Claim {
    _slot: OwnedMutexGuard<()>,
}

impl Runner {
    pub fn new(config: EngineConfig) -> Self {
        let described = Arc::new(config.describe());
        let phase = Arc::new(tokio::sync::watch::Sender::new(Phase::Idle));
        let engine = match config {
            EngineConfig::Ookla(config) => Measure::Ookla(OoklaCli::new(config)),
            EngineConfig::Http(config) => {
                Measure::Http(HttpEngine::new(config).with_phase(phase.clone()))
            }
        };
        Runner {
            engine,
            described,
            slot: Arc::new(Mutex::new(())),
            phase,
        }
    }

    /// What the running test is doing, as it changes ([`Phase::Idle`] between tests).
    pub(crate) fn phases(&self) -> tokio::sync::watch::Receiver<Phase> {
        self.phase.subscribe()
    }

    /// The server a test measures against, when known before it runs: the HTTP engine's URL,
    /// the Ookla CLI's `--server-id`; `None` when the Ookla CLI chooses.
    pub(crate) fn target(&self) -> Option<String> {
        match &self.engine {
            Measure::Ookla(cli) => cli.server_id().map(|id| format!("ookla server #{id}")),
            Measure::Http(http) => Some(http.server().to_owned()),
        }
    }

    /// What each sample of this runner records as its engine.
    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.described
    }

    /// Runs one test, waiting for any other run to finish first, and returns its sample
    /// (never an error: every way a run can go wrong is a failed sample).
    pub(crate) async fn run(&self, trigger: Trigger) -> Sample {
        let claim = self.claim().await;
        self.run_claimed(claim, trigger).await
    }

    /// The slot, once any running test has finished.
    pub(crate) async fn claim(&self) -> Claim {
        Claim {
            _slot: self.slot.clone().lock_owned().await,
        }
    }

    /// The slot, if no test is running now.
    pub(crate) fn try_claim(&self) -> Option<Claim> {
        let slot = self.slot.clone().try_lock_owned().ok()?;
        Some(Claim { _slot: slot })
    }

    /// Runs one test in a slot already claimed; the slot is free again when it returns. The
    /// sample is stamped with this runner's engine, failures too, unless the engine stamped it
    /// itself (the HTTP engine records the API it detected).
    ///
    /// Logs a line when the test starts (trigger, engine, server when known) and, should the
    /// run be dropped before it finishes (a shutdown or signal stopped it), a line saying so.
    pub(crate) async fn run_claimed(&self, claim: Claim, trigger: Trigger) -> Sample {
        self.run_claimed_at(claim, trigger, Timestamp::now()).await
    }

    /// [`Runner::run_claimed`], the sample dated `time` (when the test started).
    pub(crate) async fn run_claimed_at(
        &self,
        _claim: Claim,
        trigger: Trigger,
        time: Timestamp,
    ) -> Sample {
        let server = self
            .target()
            .unwrap_or_else(|| "chosen by the CLI".to_owned());
        // The trigger is in the words, not a `trigger=` field: that marks the line of a run
        // that ended (and is stored).
        tracing::info!(
            run = %trigger.as_str(),
            engine = %self.described.name,
            server = server.as_str(),
            "{} test started",
            trigger.as_str()
        );
        let mut running = Running {
            trigger,
            engine: self.described.name,
            server,
            started: std::time::Instant::now(),
            phase: &self.phase,
            finished: false,
        };
        self.phase.send_replace(match &self.engine {
            Measure::Ookla(_) => Phase::Running,
            Measure::Http(_) => Phase::Latency,
        });
        let mut sample = match &self.engine {
            Measure::Ookla(cli) => cli.measure(time, trigger).await,
            Measure::Http(http) => http.measure(time, trigger).await,
        };
        running.finished = true;
        drop(running);
        if sample.engine.is_none() {
            sample.engine = Some(self.described.clone());
        }
        sample.visible()
    }
}

/// A test in progress: back to [`Phase::Idle`] however it ends, and a log line when it was
/// dropped unfinished (cancelled by a shutdown: nothing of it is stored).
struct Running<'a> {
    trigger: Trigger,
    /// The engine and server as the start line named them; the stop line names them again.
    engine: EngineName,
    server: String,
    started: std::time::Instant,
    phase: &'a tokio::sync::watch::Sender<Phase>,
    finished: bool,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.phase.send_replace(Phase::Idle);
        if !self.finished {
            let after = std::time::Duration::from_secs(self.started.elapsed().as_secs());
            tracing::info!(
                run = %self.trigger.as_str(),
                engine = %self.engine,
                server = self.server.as_str(),
                after = %humantime::format_duration(after),
                "{} test stopped by shutdown after {}; nothing of it is stored",
                self.trigger.as_str(),
                humantime::format_duration(after)
            );
        }
    }
}
