//! Runs the Speedtest CLI as a child process: one at a time, bounded, killed on timeout.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio::time::Instant;

use super::ookla::{self, Exit, ParseOptions, RunOutput};
use crate::sample::{FailureReason, Sample, Trigger};
use crate::time::Timestamp;

/// How to run the CLI; built from the command-line flags.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    pub binary: PathBuf,
    pub timeout: Duration,
    pub server_id: Option<u64>,
    pub extra_args: Vec<OsString>,
    pub parse: ParseOptions,
    /// Most bytes kept from each of stdout and stderr; more is `output_too_large`.
    pub output_limit: usize,
}

/// Owns the single slot in which a test may run: scheduled, manual and retest runs share it.
#[derive(Debug)]
pub struct Runner {
    config: RunnerConfig,
    slot: Arc<Mutex<()>>,
}

/// The right to run the next test, held from `try_claim` until the run is over.
#[derive(Debug)]
pub struct Claim {
    _slot: OwnedMutexGuard<()>,
}

/// Why the capture stopped before the child finished on its own.
enum Cut {
    TooLarge(&'static str),
    TimedOut,
}

impl Runner {
    pub fn new(config: RunnerConfig) -> Self {
        Runner {
            config,
            slot: Arc::new(Mutex::new(())),
        }
    }

    /// The arguments after the binary: the flags that make the CLI non-interactive and
    /// machine-readable, then the operator's.
    pub fn arguments(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = [
            "--format=json",
            "--accept-license",
            "--accept-gdpr",
            "--progress=no",
        ]
        .map(OsString::from)
        .to_vec();
        if let Some(id) = self.config.server_id {
            args.push(format!("--server-id={id}").into());
        }
        args.extend(self.config.extra_args.iter().cloned());
        args
    }

    /// Runs one test, waiting for any other run to finish first, and returns its sample
    /// (never an error: every way a run can go wrong is a failed sample).
    pub async fn run(&self, trigger: Trigger) -> Sample {
        let claim = self.claim().await;
        self.run_claimed(claim, trigger).await
    }

    /// The slot, once any running test has finished.
    pub async fn claim(&self) -> Claim {
        Claim {
            _slot: self.slot.clone().lock_owned().await,
        }
    }

    /// The slot, if no test is running now.
    pub fn try_claim(&self) -> Option<Claim> {
        let slot = self.slot.clone().try_lock_owned().ok()?;
        Some(Claim { _slot: slot })
    }

    /// Runs one test in a slot already claimed; the slot is free again when it returns.
    pub async fn run_claimed(&self, _claim: Claim, trigger: Trigger) -> Sample {
        let time = Timestamp::now();
        let clock = Instant::now();
        let result = self.run_child().await;
        let base = Sample {
            duration_seconds: Some(clock.elapsed().as_millis() as f64 / 1000.0),
            ..Sample::empty(time, trigger)
        };
        match result {
            Ok(output) => ookla::parse(&output, base, &self.config.parse),
            Err((reason, message)) => Sample {
                duration_seconds: base.duration_seconds,
                ..Sample::failure(time, trigger, reason, message)
            },
        }
    }

    async fn run_child(&self) -> Result<RunOutput, (FailureReason, String)> {
        let binary = &self.config.binary;
        let mut child = Command::new(binary)
            .args(self.arguments())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout kills whatever the CLI forked too.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| (FailureReason::Spawn, spawn_message(binary, &err)))?;
        let group = child.id();
        // However this run ends, cancellation by shutdown included, the group goes with it.
        let _group_guard = GroupGuard(group);
        let limit = self.config.output_limit;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let finished = async {
            let exited = async {
                let status = child.wait().await;
                // The CLI is done; anything it left behind holding our pipes goes with it.
                kill_group(group);
                status
            };
            tokio::try_join!(
                read_bounded(stdout, limit, "stdout"),
                read_bounded(stderr, limit, "stderr"),
                async { Ok(exited.await) },
            )
        };
        let cut = match tokio::time::timeout(self.config.timeout, finished).await {
            Ok(Ok((stdout, stderr, Ok(status)))) => {
                let exit = match (
                    status.code(),
                    std::os::unix::process::ExitStatusExt::signal(&status),
                ) {
                    (Some(code), _) => Exit::Code(code),
                    (None, Some(signal)) => Exit::Signal(signal),
                    (None, None) => Exit::Code(-1),
                };
                return Ok(RunOutput {
                    stdout,
                    stderr,
                    exit,
                });
            }
            Ok(Ok((_, _, Err(err)))) => {
                return Err((
                    FailureReason::Exit,
                    format!("could not wait for speedtest: {err}"),
                ));
            }
            Ok(Err(cut)) => cut,
            Err(_elapsed) => Cut::TimedOut,
        };
        kill_group(group);
        // Reap it, so no zombie is left; SIGKILL cannot be ignored, so this returns promptly.
        let _ = child.wait().await;
        Err(match cut {
            Cut::TooLarge(stream) => (
                FailureReason::OutputTooLarge,
                format!("speedtest wrote more than {limit} bytes to {stream}"),
            ),
            Cut::TimedOut => (
                FailureReason::Timeout,
                format!(
                    "speedtest did not finish within {} and was killed",
                    humantime::format_duration(self.config.timeout)
                ),
            ),
        })
    }
}

fn spawn_message(binary: &std::path::Path, err: &io::Error) -> String {
    let shown = binary.display();
    match err.kind() {
        io::ErrorKind::NotFound => format!(
            "cannot run {shown}: not found (install the Ookla Speedtest CLI or set --speedtest-bin)"
        ),
        io::ErrorKind::PermissionDenied => {
            format!("cannot run {shown}: permission denied (is it executable?)")
        }
        _ => format!("cannot run {shown}: {err}"),
    }
}

/// Kills the child's process group when dropped. After the CLI exited normally the group is
/// usually gone already, and the kill is a harmless ESRCH.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0);
    }
}

/// Sends SIGKILL to the whole process group led by the child (if it was ever started).
fn kill_group(group: Option<u32>) {
    let Some(pgid) = group.and_then(|id| libc::pid_t::try_from(id).ok()) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid only sends a signal; it touches no memory of ours.
    // ESRCH (the group is already gone) is the expected, harmless case.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

async fn read_bounded(
    pipe: Option<impl AsyncRead + Unpin>,
    limit: usize,
    stream: &'static str,
) -> Result<Vec<u8>, Cut> {
    let mut captured = Vec::new();
    if let Some(pipe) = pipe {
        let allowed = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        // A read error ends the capture with what arrived; the parser judges the rest.
        let _ = pipe.take(allowed).read_to_end(&mut captured).await;
    }
    if captured.len() > limit {
        return Err(Cut::TooLarge(stream));
    }
    Ok(captured)
}
