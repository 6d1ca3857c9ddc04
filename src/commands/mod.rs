//! What each sub-command does, from parsed flags to exit status; errors stop here as `anyhow`.

mod db;
mod hash_password;
mod plan;
mod report;
mod run_once;
mod target;
mod transfer;

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context;
use tokio::net::{TcpListener, TcpSocket};
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::{Command, LogFormat};
use crate::logging;

/// Connections the kernel may hold for us before we accept them (it caps this at
/// `net.core.somaxconn`). tokio's default, 1,024, overflowed when 2,000 clients connected at
/// once, and a SYN the kernel drops is retried only a second later.
const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `address` with [`LISTEN_BACKLOG`].
pub(crate) fn bind(address: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Runs a server until SIGINT, SIGTERM or SIGHUP: starts a runtime of `workers` threads,
/// installs the signal handlers (first: a signal sent as soon as the log says "listening" must
/// stop us cleanly, not kill us), binds `listen` (the error names the flag), and hands
/// `serve` the listener, its bound address and the shutdown future, which logs the signal.
pub(crate) fn listen_until_stopped<F, Fut>(
    workers: usize,
    listen: std::net::SocketAddr,
    serve: F,
) -> anyhow::Result<()>
where
    F: FnOnce(
        TcpListener,
        std::net::SocketAddr,
        std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let stop = stop_requested()?;
        let listener =
            bind(listen).with_context(|| format!("cannot listen on {listen} (see --listen)"))?;
        let address = listener
            .local_addr()
            .context("cannot read the bound address")?;
        let shutdown = Box::pin(async move {
            let signal = stop.await;
            tracing::info!("received {signal}");
        });
        serve(listener, address, shutdown).await
    })
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    if matches!(command, Command::Export(_) | Command::Report(_)) {
        crate::cli::refuse_retired_environment(|name| std::env::var_os(name))
            .map_err(anyhow::Error::msg)?;
    }
    match command {
        Command::Serve(args) => {
            logging::init("info", args.log_format)?;
            crate::daemon::start::serve(*args)
        }
        Command::RunOnce(args) => {
            logging::init("warn", LogFormat::Text)?;
            run_once::run_once(&args)
        }
        Command::Export(args) => transfer::export(&args),
        Command::Report(args) => report::report(&args),
        Command::Import(args) => transfer::import(&args),
        Command::Db(args) => db::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Target(args) => {
            logging::init("info", args.log_format)?;
            target::target(&args)
        }
        Command::HashPassword(args) => hash_password::hash_password(&args),
    }
}

/// The store a command writes to, opened at `--db`. When the file did not exist before, it
/// is removed again if the command fails (drops this without [`Created::keep`]): a failed
/// command leaves no new database behind. A file that existed before is never removed, nor one
/// that holds samples when it was opened (another process made it in between).
pub(crate) struct Created {
    /// Shared with `serve` ([`Created::share`]); this handle keeps the file open until the
    /// new file is removed, so its lock keeps any other writer out until then.
    store: std::sync::Arc<crate::store::Store>,
    /// The new file to remove on failure; `None` once kept, or when it existed before. Shared
    /// with the signal watcher of [`Created::open_stopped_by_signals`].
    new_file: std::sync::Arc<std::sync::Mutex<Option<std::path::PathBuf>>>,
}

impl Created {
    /// Opens `path` with `open` (which may create it), noting whether it is new.
    pub(crate) fn open(
        path: &std::path::Path,
        open: impl FnOnce(&std::path::Path) -> anyhow::Result<crate::store::Store>,
    ) -> anyhow::Result<Self> {
        let existed = Self::existed(path);
        Self::open_noting(path, open, existed, std::sync::Arc::default())
    }

    /// [`Created::open`] for a command that runs no test and handles no signal itself
    /// (`import`, `plan`): when the file is new, SIGINT, SIGTERM or SIGHUP before
    /// [`Created::keep`] removes it and ends the process (128 + the signal's number), so an
    /// interrupted command leaves no new database behind either. The watcher is in place
    /// before the file is created.
    pub(crate) fn open_stopped_by_signals(
        path: &std::path::Path,
        open: impl FnOnce(&std::path::Path) -> anyhow::Result<crate::store::Store>,
    ) -> anyhow::Result<Self> {
        let existed = Self::existed(path);
        let new_file = std::sync::Arc::default();
        if !existed {
            watch_signals(std::sync::Arc::clone(&new_file))?;
        }
        Self::open_noting(path, open, existed, new_file)
    }

    /// Opens `path` with `open`, and notes it in `new_file` when it did not exist and holds no
    /// sample.
    fn open_noting(
        path: &std::path::Path,
        open: impl FnOnce(&std::path::Path) -> anyhow::Result<crate::store::Store>,
        existed: bool,
        new_file: std::sync::Arc<std::sync::Mutex<Option<std::path::PathBuf>>>,
    ) -> anyhow::Result<Self> {
        // Held while the file is created: a signal meanwhile waits, then finds it to remove.
        let mut noted = lock(&new_file);
        let store = open(path)?;
        if !existed && store.len().is_ok_and(|samples| samples == 0) {
            // Through a symbolic link that led nowhere: the file made is its target (the link
            // existed before and stays).
            let link = std::fs::symlink_metadata(path).is_ok_and(|meta| meta.is_symlink());
            *noted = if link {
                // Not found again: left, rather than the link removed.
                std::fs::canonicalize(path).ok()
            } else {
                Some(path.to_path_buf())
            };
        }
        drop(noted);
        Ok(Created {
            store: std::sync::Arc::new(store),
            new_file,
        })
    }

    /// Whether a file is at `path` (a symbolic link followed: one that leads nowhere does not
    /// count); unknown (an error other than not found) counts as existing, so it is never
    /// removed.
    fn existed(path: &std::path::Path) -> bool {
        std::fs::metadata(path)
            .map(|_| true)
            .or_else(|err| match err.kind() {
                io::ErrorKind::NotFound => Ok(false),
                _ => Err(err),
            })
            .unwrap_or(true)
    }

    fn take_new_file(&self) -> Option<std::path::PathBuf> {
        lock(&self.new_file).take()
    }

    /// The store, for a command that hands it on (`serve`); the file is still removed when
    /// this is dropped without [`Created::keep`].
    pub(crate) fn share(&self) -> std::sync::Arc<crate::store::Store> {
        self.store.clone()
    }

    /// The command succeeded (or stored something worth keeping): the file stays.
    pub(crate) fn keep(&mut self) {
        self.take_new_file();
    }
}

/// The lock of a [`Created`]'s new file; a poisoned one is still used (it holds a path).
fn lock(
    new_file: &std::sync::Mutex<Option<std::path::PathBuf>>,
) -> std::sync::MutexGuard<'_, Option<std::path::PathBuf>> {
    new_file
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Removes `path`, a database file a failed or interrupted command created.
fn remove_created(path: &std::path::Path) {
    if let Err(err) = std::fs::remove_file(path)
        && err.kind() != io::ErrorKind::NotFound
    {
        logging::say(format_args!(
            "internet-monitor: warning: cannot remove {}, the database file this failed command created: {err}",
            path.display()
        ));
    }
}

/// Starts a thread that, on SIGINT, SIGTERM or SIGHUP, removes the file in `new_file` (if it
/// is still there to remove) and ends the process with 128 + the signal's number, holding the
/// lock so the command cannot keep the file meanwhile. Returns once the signals are watched.
fn watch_signals(
    new_file: std::sync::Arc<std::sync::Mutex<Option<std::path::PathBuf>>>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Registered here, in this thread, so no signal can come between creation and watching.
    let stop = runtime.block_on(async { stop_requested_unless_ignored() })?;
    std::thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            let signal = runtime.block_on(stop);
            let code = match signal {
                "SIGINT" => 130,
                "SIGHUP" => 129,
                _ => 143,
            };
            let held = lock(&new_file);
            if let Some(path) = held.as_ref() {
                remove_created(path);
                logging::say(format_args!(
                    "internet-monitor: interrupted by {signal}: nothing was stored, and {} (created by this command) was removed",
                    path.display()
                ));
            } else {
                logging::say(format_args!("internet-monitor: interrupted by {signal}"));
            }
            std::process::exit(code);
        })
        .context("cannot start the thread that watches for signals")?;
    Ok(())
}

impl std::ops::Deref for Created {
    type Target = crate::store::Store;

    fn deref(&self) -> &Self::Target {
        &self.store
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        // Unlinked while still open (closed right after, as the field drops): the lock it
        // holds keeps any other writer out until then.
        if let Some(path) = self.take_new_file() {
            remove_created(&path);
        }
    }
}

/// Writes to stdout through a buffer, flushed at the end. A reader that went away (`| head`,
/// a closed pager) ends the output quietly: `Ok`, so the command exits as if it had printed
/// everything. Any other error is returned.
fn write_stdout(write: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    match write(&mut out).and_then(|()| Ok(out.flush()?)) {
        Err(err) if is_closed_pipe(&err) => Ok(()),
        other => other,
    }
}

/// Whether `err` is, or was caused by, a write to a pipe nobody reads any more (EPIPE),
/// however it was wrapped on the way: serde_json keeps the `io::Error` it hit inside its own
/// error (and does not give it as the source), a CSV writer as the source of its own.
fn is_closed_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        let io_kind = cause.downcast_ref::<io::Error>().map(io::Error::kind);
        let json_kind = cause
            .downcast_ref::<serde_json::Error>()
            .and_then(serde_json::Error::io_error_kind);
        io_kind.or(json_kind) == Some(io::ErrorKind::BrokenPipe)
    })
}

/// Makes this process the reaper of the CLI's orphans, so that what a test leaves behind, even
/// outside its process group or session, is killed with it. Without it (not Linux) a process
/// that left the group can outlive its test, though it cannot hold a finished run open.
pub(crate) fn adopt_orphans() {
    if let Err(err) = crate::speedtest::adopt_orphans() {
        tracing::warn!(%err, "cannot adopt the speedtest CLI's orphans; a process it starts outside its process group may outlive its test");
    }
}

/// Whether `signal` is ignored in this process (`nohup` ignores SIGHUP; a shell script's
/// background job, SIGINT).
fn is_ignored(signal: libc::c_int) -> bool {
    // SAFETY: sigaction(2) with no new action only reads the current one into `current`.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_IGN
    }
}

/// [`stop_requested`] for a command that used to end on these signals by their default
/// action: a signal the process was started ignoring stays ignored (watching one would
/// replace that, and `nohup internet-monitor import …` would end when the terminal closes).
fn stop_requested_unless_ignored() -> anyhow::Result<impl Future<Output = &'static str>> {
    let watch = |number: libc::c_int, kind: SignalKind, name: &str| {
        if is_ignored(number) {
            Ok(None)
        } else {
            signal(kind)
                .map(Some)
                .with_context(|| format!("cannot watch {name}"))
        }
    };
    let mut interrupt = watch(libc::SIGINT, SignalKind::interrupt(), "SIGINT")?;
    let mut terminate = watch(libc::SIGTERM, SignalKind::terminate(), "SIGTERM")?;
    let mut hangup = watch(libc::SIGHUP, SignalKind::hangup(), "SIGHUP")?;
    async fn received(watched: &mut Option<tokio::signal::unix::Signal>) {
        match watched {
            Some(watched) => {
                watched.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    Ok(async move {
        tokio::select! {
            () = received(&mut interrupt) => "SIGINT",
            () = received(&mut terminate) => "SIGTERM",
            () = received(&mut hangup) => "SIGHUP",
        }
    })
}

/// Resolves when the process is asked to stop: SIGINT, SIGTERM, or SIGHUP (its terminal or SSH
/// session closed). Unhandled, each would end the process on the spot, leaving a running test's
/// process group behind; handled, the caller stops and the test's group is killed with it.
/// Must be called inside the runtime, before any test starts.
fn stop_requested() -> anyhow::Result<impl Future<Output = &'static str>> {
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut hangup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
            _ = hangup.recv() => "SIGHUP",
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pipe_is_recognised_however_it_was_wrapped() {
        let pipe = || io::Error::from(io::ErrorKind::BrokenPipe);
        let direct = anyhow::Error::from(pipe());
        assert!(is_closed_pipe(&direct));
        assert!(is_closed_pipe(&direct.context("writing the export")));
        let json = serde_json::to_writer(Broken, &[1, 2, 3]).unwrap_err();
        assert!(is_closed_pipe(&anyhow::Error::from(json)));
        let wrapped = io::Error::other(Wrapper(pipe()));
        assert!(is_closed_pipe(&anyhow::Error::from(wrapped)));
        let other = anyhow::Error::from(io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(!is_closed_pipe(&other));
        assert!(!is_closed_pipe(&anyhow::anyhow!("the database is damaged")));
    }

    /// A writer whose reader has gone.
    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// An error that gives the `io::Error` it wraps as its source, as `csv::Error` does.
    #[derive(Debug)]
    struct Wrapper(io::Error);

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "CSV error: {}", self.0)
        }
    }

    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
}
