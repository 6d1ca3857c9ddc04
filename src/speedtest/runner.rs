//! The Ookla engine: runs the Speedtest CLI as a child process, bounded, killed on timeout, and
//! nothing it started outlives its run; [`super::ookla`] reads what it printed.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::time::Instant;

use super::ookla::{self, Exit, ParseOptions, RunOutput};
use super::reaper;
use crate::sample::{FailureReason, Sample, Trigger};
use crate::time::Timestamp;

/// How to run the CLI; built from the command-line flags.
#[derive(Clone, Debug)]
pub struct OoklaConfig {
    pub binary: PathBuf,
    pub timeout: Duration,
    pub server_id: Option<u64>,
    pub extra_args: Vec<OsString>,
    pub parse: ParseOptions,
    /// Most bytes kept from each of stdout and stderr; more is `output_too_large`.
    pub output_limit: usize,
}

/// The Ookla Speedtest CLI as an engine: one run of the CLI is one sample.
#[derive(Debug)]
pub(crate) struct OoklaCli {
    config: OoklaConfig,
}

/// Why the capture stopped before the child finished on its own.
enum Cut {
    TooLarge(&'static str),
    TimedOut,
}

impl OoklaCli {
    pub(crate) fn new(config: OoklaConfig) -> Self {
        OoklaCli { config }
    }

    /// `--server-id`, when given: the server the CLI is told to use.
    pub(crate) fn server_id(&self) -> Option<u64> {
        self.config.server_id
    }

    /// The arguments after the binary: the flags that make the CLI non-interactive and
    /// machine-readable, then the operator's.
    pub(crate) fn arguments(&self) -> Vec<OsString> {
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

    /// Runs the CLI once, the run started at `time`, and returns its sample (never an
    /// error: every way a run can go wrong is a failed sample).
    pub(crate) async fn measure(&self, time: Timestamp, trigger: Trigger) -> Sample {
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
        let cli = child.id();
        // However this run ends, cancellation by shutdown included, the CLI and everything it
        // started go with it.
        let mut guard = RunGuard { cli, armed: true };
        let deadline = Instant::now() + self.config.timeout;
        let limit = self.config.output_limit;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        // Boxed, so it can be dropped (giving back the buffers) whether or not it finished.
        let mut reading = Box::pin(async {
            tokio::try_join!(
                read_bounded(stdout, limit, "stdout", &mut out),
                read_bounded(stderr, limit, "stderr", &mut err),
            )
        });
        let first = tokio::time::timeout_at(deadline, async {
            tokio::select! {
                read = &mut reading => First::Read(read),
                status = child.wait() => First::Exited(status),
            }
        })
        .await;
        let status = match first {
            // Both pipes closed first; the CLI still has until the deadline to exit.
            Ok(First::Read(Ok(_))) => tokio::time::timeout_at(deadline, child.wait())
                .await
                .map_err(|_elapsed| Cut::TimedOut),
            Ok(First::Read(Err(cut))) => Err(cut),
            // Not known to be reaped: the guard kills it and sweeps.
            Ok(First::Exited(Err(err))) => Ok(Err(err)),
            Ok(First::Exited(Ok(status))) => {
                // The CLI is done, and so is its run: anything it left behind, in its group or
                // not, goes now, which closes the pipes such a process held. Then what is left
                // in the pipes is read, for a moment at most: a straggler that survived (no
                // subreaper) can delay the result but not turn it into a timeout.
                guard.finish();
                match tokio::time::timeout(DRAIN_GRACE, &mut reading).await {
                    Ok(Err(cut)) => Err(cut),
                    Ok(Ok(_)) => Ok(Ok(status)),
                    Err(_elapsed) => {
                        tracing::warn!(
                            "a process the speedtest CLI left behind kept its output open; read what the CLI printed"
                        );
                        Ok(Ok(status))
                    }
                }
            }
            Err(_elapsed) => Err(Cut::TimedOut),
        };
        drop(reading);
        let cut = match status {
            Ok(Ok(status)) => {
                // Reached with the CLI reaped; sweep again for anything orphaned since.
                guard.finish();
                let exit = match (
                    status.code(),
                    std::os::unix::process::ExitStatusExt::signal(&status),
                ) {
                    (Some(code), _) => Exit::Code(code),
                    (None, Some(signal)) => Exit::Signal(signal),
                    (None, None) => Exit::Code(-1),
                };
                return Ok(RunOutput {
                    stdout: out,
                    stderr: err,
                    exit,
                });
            }
            // The guard kills the CLI and its leftovers.
            Ok(Err(err)) => {
                return Err((
                    FailureReason::Exit,
                    format!("could not wait for speedtest: {err}"),
                ));
            }
            Err(cut) => cut,
        };
        kill_group(cli);
        let _ = child.start_kill();
        // Reap it, so no zombie is left; SIGKILL cannot be ignored, so this returns promptly.
        let _ = child.wait().await;
        guard.finish();
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

/// How long the pipes are still read once the CLI has exited. Everything the CLI wrote is in
/// the pipes by then and drains at once; only a leftover process could keep them open.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// What ended the first wait of a run: both pipes closing, or the CLI exiting.
enum First {
    Read(Result<((), ()), Cut>),
    Exited(io::Result<std::process::ExitStatus>),
}

fn spawn_message(binary: &std::path::Path, err: &io::Error) -> String {
    let shown = binary.display();
    match err.kind() {
        io::ErrorKind::NotFound => format!(
            "cannot run {shown}: not found (install the Ookla Speedtest CLI, set --speedtest-bin, or measure with --engine http)"
        ),
        io::ErrorKind::PermissionDenied => {
            format!("cannot run {shown}: permission denied (is it executable?)")
        }
        _ => format!("cannot run {shown}: {err}"),
    }
}

/// Ends a run however it ends. Once the CLI has been reaped, [`RunGuard::finish`] kills its
/// group and sweeps what it left behind. Dropped before that (a shutdown or signal cancelled
/// the run), it kills the CLI and its group, waits for the CLI to die without reaping it
/// (tokio does), so that its children are ours, and sweeps them.
struct RunGuard {
    cli: Option<u32>,
    armed: bool,
}

impl RunGuard {
    /// With the CLI reaped: kills its group (ESRCH when it is gone already, the usual case)
    /// and everything it left behind outside it.
    fn finish(&mut self) {
        kill_group(self.cli);
        reaper::reap_orphans(self.cli);
        self.armed = false;
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        kill_group(self.cli);
        let Some(cli) = self.cli else {
            return;
        };
        if let Ok(pid) = libc::pid_t::try_from(cli) {
            // SAFETY: kill(2) only sends a signal; the CLI is not reaped yet (its tokio handle
            // outlives this guard), so the pid is still its own.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        reaper::wait_until_exited(cli);
        reaper::reap_orphans(self.cli);
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

/// Reads `pipe` into `captured` until it closes, or until more than `limit` bytes came. What
/// arrived stays in `captured` if the read is cut short from outside.
async fn read_bounded(
    pipe: Option<impl AsyncRead + Unpin>,
    limit: usize,
    stream: &'static str,
    captured: &mut Vec<u8>,
) -> Result<(), Cut> {
    if let Some(pipe) = pipe {
        let allowed = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        // A read error ends the capture with what arrived; the parser judges the rest.
        let _ = pipe.take(allowed).read_to_end(captured).await;
    }
    if captured.len() > limit {
        return Err(Cut::TooLarge(stream));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a subreaper (this test harness never adopts orphans), a grandchild that left
    /// the CLI's session and holds its pipes is out of reach; the run still ends with the
    /// CLI, its result intact, after the drain grace at most.
    #[test]
    fn a_finished_run_does_not_wait_for_an_unreachable_grandchild() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("grandchild");
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/ok-1.2-pretty.stdout"
        );
        let script = dir.path().join("speedtest");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nsetsid sleep 60 &\necho $! > '{}'\ncat '{fixture}'\nexit 0\n",
                pid_file.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let runner = OoklaCli::new(OoklaConfig {
            binary: script,
            timeout: Duration::from_secs(30),
            server_id: None,
            extra_args: Vec::new(),
            parse: ParseOptions {
                store_ip: false,
                max_bytes_per_second: 1e12,
            },
            output_limit: 1 << 20,
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let sample = runtime.block_on(runner.measure(Timestamp::now(), Trigger::Manual));
        let grandchild: libc::pid_t = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SAFETY: kill(2) only sends a signal, to the grandchild the script started.
        unsafe {
            libc::kill(grandchild, libc::SIGKILL);
        }
        assert!(sample.is_success(), "{sample:?}");
        let took = sample.duration_seconds.unwrap();
        assert!(took < 10.0, "took {took} s");
    }
}
