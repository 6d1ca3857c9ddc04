//! `serve` run in the test's own process ([`InProcess`]): the same flags a test gives the
//! binary, run through `daemon::start::serve_on` on a loopback port, for tests that only send
//! HTTP and read the answers. No process to start, no start-up line to wait for.
//!
//! What stays the process's, so that a test needing it keeps the child process of
//! [`Server`](super::Server): the log (no subscriber here, so no lines to read), signals
//! (none is watched), the exit status, the adoption of the speed-test CLI's orphans, and the
//! process environment (`TZ`, `TZDIR`, `PATH` as the test process has them). Throttles of
//! repeated log lines are the process's too, but nothing reads them here, and so is the bound
//! on password checks at once (`http::web_config::auth`): a test of it needs a process of its
//! own. Everything else
//! (metrics registry, store, scheduler, the bounds on summaries and streamed answers at once)
//! belongs to each server, so the tests of one binary can run theirs in parallel threads.
#![allow(dead_code)] // each test crate uses its own part of this module

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::JoinHandle;

use clap::CommandFactory;
use internet_monitor::cli::Cli;

use super::{HttpResponse, PATIENCE, request, try_request, try_request_with};

/// A `serve` in this process on a free loopback port, stopped (its shutdown future
/// completed, its thread joined within [`PATIENCE`]) when dropped.
pub struct InProcess {
    /// `127.0.0.1:PORT`, as [`Server::address`](super::Server) is.
    pub address: String,
    /// Completes the server's shutdown future.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// What `serve_on` returned: `Err` with the error chain's text.
    done: Receiver<Result<(), String>>,
    thread: Option<JoinHandle<()>>,
    /// Holds the speed-test wrapper that carries the fake CLI's variables.
    _dir: tempfile::TempDir,
}

impl InProcess {
    /// Starts `command` (an `internet-monitor serve …` built by [`super::command`],
    /// [`super::Env::serve`] and friends) in this process: its arguments parsed by the crate's
    /// `Cli` as the binary parses them, its environment given as the binary would read it.
    /// `INTERNET_MONITOR_*` variables become the flags they are twins of (unless the command
    /// line gives the flag), `TZ` becomes `--timezone`, and the fake CLI's `FAKE_SPEEDTEST_*`
    /// go to a wrapper script that replaces `--speedtest-bin`. Any other variable panics: it
    /// cannot be given to one server of a shared process, so that test needs [`Server`].
    ///
    /// Returns once the server answers HTTP; a start-up error fails the test with its text.
    ///
    /// [`Server`]: super::Server
    pub fn start(command: Command) -> InProcess {
        refuse_inherited_twins();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let args = arguments(&command, dir.path());
        let cli = Cli::try_parse_from_with_environment(
            args.iter().map(OsString::from),
            numbered_twins(&command),
        )
        .unwrap_or_else(|err| panic!("serve {args:?} refused its arguments: {err}"));
        let internet_monitor::cli::Command::Serve(serve) = cli.into_command() else {
            panic!("InProcess runs serve, not {args:?}");
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let bound = listener.local_addr().expect("the bound address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (finished, done) = channel();
        let thread = std::thread::Builder::new()
            .name(format!("serve {bound}"))
            .spawn(move || {
                let result = serve_in_thread(*serve, listener, bound, stopped);
                let _ = finished.send(result);
            })
            .expect("start the server's thread");
        let mut server = InProcess {
            address: bound.to_string(),
            stop: Some(stop),
            done,
            thread: Some(thread),
            _dir: dir,
        };
        server.wait_until_serving();
        server
    }

    /// Blocks until any HTTP answer comes back (connections wait in the listen queue until
    /// the store is open and the server accepts); panics with the error if `serve_on` ends.
    fn wait_until_serving(&mut self) {
        let answered = super::poll_within(PATIENCE, || {
            match self.done.try_recv() {
                Ok(Err(err)) => panic!("serve did not start: {err}"),
                Ok(Ok(())) => panic!("serve stopped before it answered"),
                Err(_) => {}
            }
            try_request(&self.address, "GET", "/healthz").ok()
        });
        assert!(
            answered.is_some(),
            "the in-process serve did not answer within {PATIENCE:?}"
        );
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        request(&self.address, "GET", path)
    }

    /// A POST with `Content-Type: application/json` and no body.
    pub fn post(&self, path: &str) -> HttpResponse {
        request(&self.address, "POST", path)
    }

    pub fn request(&self, method: &str, path: &str) -> HttpResponse {
        request(&self.address, method, path)
    }

    /// One request with these extra header lines.
    pub fn request_with(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        try_request_with(&self.address, method, path, headers).expect("an HTTP response")
    }
}

impl Drop for InProcess {
    /// Completes the shutdown future and waits (at most [`PATIENCE`]) for `serve_on` to
    /// return; an error it returned fails the test, unless the test is failing already.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let outcome = match self.done.recv_timeout(PATIENCE) {
            Ok(result) => {
                if let Some(thread) = self.thread.take() {
                    let _ = thread.join();
                }
                result
            }
            // The thread ended without a word: it panicked, and said so on stderr.
            Err(RecvTimeoutError::Disconnected) => Err("the server's thread panicked".to_owned()),
            // Left running (detached): a hang must not hang the test binary too.
            Err(RecvTimeoutError::Timeout) => Err(format!(
                "serve did not stop within {PATIENCE:?} of its shutdown"
            )),
        };
        if let Err(err) = outcome
            && !std::thread::panicking()
        {
            panic!("the in-process serve on {}: {err}", self.address);
        }
    }
}

/// Runs `serve_on` on a runtime of its own, as `serve` does (two workers), until `stopped`
/// fires or the sender is dropped.
fn serve_in_thread(
    args: internet_monitor::cli::ServeArgs,
    listener: std::net::TcpListener,
    address: std::net::SocketAddr,
    stopped: tokio::sync::oneshot::Receiver<()>,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start a runtime: {err}"))?;
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let shutdown = async move {
            let _ = stopped.await;
        };
        internet_monitor::daemon::start::serve_on(args, listener, address, shutdown).await
    });
    // Blocking work (a reader thread mid-query) is not waited for beyond this.
    runtime.shutdown_timeout(PATIENCE);
    result.map_err(|err| internet_monitor::logging::error_chain(&err))
}

/// clap reads the `INTERNET_MONITOR_*` twins of serve's flags from this process's
/// environment: inherited from the shell running the tests, they would change every server.
fn refuse_inherited_twins() {
    let top = Cli::command();
    let serve = top.find_subcommand("serve").expect("a serve command");
    let inherited: Vec<String> = std::env::vars_os()
        .filter_map(|(key, _)| key.into_string().ok())
        .filter(|key| {
            serve
                .get_arguments()
                .chain(top.get_arguments())
                .any(|arg| arg.get_env().is_some_and(|env| env == key.as_str()))
        })
        .collect();
    assert!(
        inherited.is_empty(),
        "in-process tests read the test process's environment: unset {inherited:?} before \
         running them"
    );
}

/// The variables `command` sets (removals left out).
fn variables(command: &Command) -> Vec<(String, String)> {
    command
        .get_envs()
        .filter_map(|(key, value)| {
            let key = key.to_str().expect("a UTF-8 variable name").to_owned();
            let value = value?.to_str().expect("a UTF-8 value").to_owned();
            Some((key, value))
        })
        .collect()
}

/// The numbered twins (`INTERNET_MONITOR_SPEEDTEST_ARG_1`, …), which the crate's parser
/// takes from the variables it is given rather than from the process.
fn numbered_twins(command: &Command) -> Vec<(OsString, OsString)> {
    variables(command)
        .into_iter()
        .filter(|(key, _)| {
            internet_monitor::cli::NUMBERED_ENVIRONMENT
                .iter()
                .any(|(_, _, prefix)| key.starts_with(&format!("{prefix}_")))
        })
        .map(|(key, value)| (key.into(), value.into()))
        .collect()
}

/// The command line of `command` (program name first) with its environment turned into
/// flags, and `--speedtest-bin` replaced by a wrapper in `dir` when the fake CLI has
/// variables.
fn arguments(command: &Command, dir: &std::path::Path) -> Vec<String> {
    let mut args: Vec<String> = command
        .get_args()
        .map(|arg| arg.to_str().expect("a UTF-8 argument").to_owned())
        .collect();
    let top = Cli::command();
    let serve = if args.first().is_some_and(|first| first == "serve") {
        top.find_subcommand("serve")
            .expect("a serve command")
            .clone()
    } else {
        top
    };
    let given = |args: &[String], long: &str| {
        let flag = format!("--{long}");
        args.iter()
            .any(|arg| *arg == flag || arg.starts_with(&format!("{flag}=")))
    };
    let mut fake = Vec::new();
    for (key, value) in variables(command) {
        if key.starts_with("FAKE_SPEEDTEST_") {
            fake.push((key, value));
            continue;
        }
        if key == "TZ" {
            if !given(&args, "timezone")
                && !variables(command)
                    .iter()
                    .any(|(key, _)| key == "INTERNET_MONITOR_TIMEZONE")
            {
                args.extend(["--timezone".to_owned(), value]);
            }
            continue;
        }
        if numbered_twins(command)
            .iter()
            .any(|(numbered, _)| *numbered == *key)
        {
            continue;
        }
        let twin = serve
            .get_arguments()
            .find(|arg| arg.get_env().is_some_and(|env| env == key.as_str()))
            .unwrap_or_else(|| {
                panic!(
                    "{key} cannot be given to a server in this process (it reads the process's \
                     environment): start this test's server with Server"
                )
            });
        let long = twin.get_long().expect("a twin of a long flag");
        if given(&args, long) {
            continue;
        }
        if twin.get_action().takes_values() {
            args.extend([format!("--{long}"), value]);
        } else if matches!(value.as_str(), "1" | "true" | "yes" | "on") {
            args.push(format!("--{long}"));
        }
    }
    if !fake.is_empty() {
        let at = args
            .iter()
            .position(|arg| arg == "--speedtest-bin")
            .expect("FAKE_SPEEDTEST_* variables come with --speedtest-bin");
        let wrapper = dir.join("speedtest");
        let mut script = String::from("#!/bin/sh\n");
        for (key, value) in fake {
            assert!(!value.contains('\''), "{key}={value}: no quotes, please");
            script.push_str(&format!("export {key}='{value}'\n"));
        }
        script.push_str(&format!("exec '{}' \"$@\"\n", args[at + 1]));
        std::fs::write(&wrapper, script).expect("write the speed-test wrapper");
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
            .expect("make the wrapper executable");
        args[at + 1] = wrapper.to_str().expect("a UTF-8 temporary path").to_owned();
    }
    let mut line = vec!["internet-monitor".to_owned()];
    line.append(&mut args);
    line
}
