//! Shared by the end-to-end tests: paths, the fake CLI, a served instance and a tiny HTTP client.
#![allow(dead_code)] // each test crate uses its own part of this module

pub mod in_process;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_internet-monitor");
pub const FAKE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fake-speedtest");
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// Every argument of every command of the CLI as clap defines it, each with the words naming
/// its command (`[]` for the top level, serve's flags; `["plan", "set"]`), depth first: for the
/// tests that check a rule across all flags.
pub fn every_argument() -> Vec<(Vec<String>, clap::Arg)> {
    fn walk(command: &clap::Command, path: &[String], found: &mut Vec<(Vec<String>, clap::Arg)>) {
        for arg in command.get_arguments() {
            found.push((path.to_vec(), arg.clone()));
        }
        for sub in command.get_subcommands() {
            let mut path = path.to_vec();
            path.push(sub.get_name().to_owned());
            walk(sub, &path, found);
        }
    }
    use clap::CommandFactory;
    let mut found = Vec::new();
    walk(&internet_monitor::cli::Cli::command(), &[], &mut found);
    found
}

/// How long a test waits for an event (a log line, a process ending) before failing.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// How often [`poll_within`] asks its condition again.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// Polls `condition` until it gives `Some(value)` and returns the value; panics after
/// [`PATIENCE`] with "`what` did not happen within 20s". A condition with no event to await (a
/// file appearing, a counter reaching a figure, an answer over HTTP) is checked here (through
/// [`poll_within`], the one polling loop of the tests), never with a hand-written sleep loop. A
/// boolean condition reads `eventually("…", || done().then_some(()))`.
pub fn eventually<T>(what: &str, condition: impl FnMut() -> Option<T>) -> T {
    eventually_within(what, PATIENCE, condition)
}

/// [`eventually`] with its own limit, for conditions slower than [`PATIENCE`] by design (a
/// Prometheus scrape interval, a real network timeout).
pub fn eventually_within<T>(
    what: &str,
    limit: Duration,
    condition: impl FnMut() -> Option<T>,
) -> T {
    poll_within(limit, condition).unwrap_or_else(|| {
        panic!(
            "{what} did not happen within {}",
            humantime::format_duration(limit)
        )
    })
}

/// The one polling loop of the tests: asks `condition` every 20 ms until it gives
/// `Some(value)`, for at most `limit` (asked once more at the end); `None` if it never did. For
/// a caller that does something of its own when time runs out (kills a child, shows what was
/// left); the others use [`eventually`].
pub fn poll_within<T>(limit: Duration, mut condition: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = condition() {
            return Some(value);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        std::thread::sleep(POLL_EVERY.min(left));
    }
}

/// Whether `fd` has something to read (a byte, a connection to accept, a process's exit on a
/// pidfd) within `limit`: poll(2), an awaited event, no polling loop.
pub fn readable_within(fd: &impl AsRawFd, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let mut poll = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // Rounded up: poll(2) must not return before the deadline.
        let left = deadline.saturating_duration_since(Instant::now());
        let millis =
            libc::c_int::try_from(left.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX);
        // SAFETY: poll(2) on one pollfd that lives on this stack frame.
        let ready = unsafe { libc::poll(&mut poll, 1, millis) };
        if ready > 0 {
            return poll.revents & libc::POLLIN != 0;
        }
        let interrupted =
            ready < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted;
        if !interrupted || Instant::now() >= deadline {
            return false;
        }
    }
}

/// Whether process `pid` ends (runs no more: a zombie counts) within `limit`. Awaits the
/// kernel's notice on a pidfd (pidfd_open(2), Linux 5.3); a process already gone is `true`.
pub fn exits_within(pid: u32, limit: Duration) -> bool {
    let raw = libc::pid_t::try_from(pid).expect("pid fits");
    // SAFETY: pidfd_open(2) only makes a descriptor, which `OwnedFd` then closes.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, raw, 0) };
    if let Ok(fd) = libc::c_int::try_from(fd)
        && fd >= 0
    {
        // SAFETY: a descriptor pidfd_open just returned, owned by nobody else.
        return readable_within(&unsafe { OwnedFd::from_raw_fd(fd) }, limit);
    }
    match std::io::Error::last_os_error().raw_os_error() {
        // No such process: it has gone, and been reaped.
        Some(libc::ESRCH) => true,
        // No pidfds here (an old kernel, a seccomp filter): /proc it is.
        _ => poll_within(limit, || (!is_running(pid)).then_some(())).is_some(),
    }
}

/// The exit status of `child`, if it ends within `limit` (awaited, see [`exits_within`]).
pub fn wait_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    if let Some(status) = child.try_wait().expect("wait for a child") {
        return Some(status);
    }
    // Not reaped yet, so its pid is still its own.
    if !exits_within(child.id(), limit) {
        return None;
    }
    child.try_wait().expect("wait for a child")
}

/// The `key=value` fields of a text log line, read as logfmt: a bare value runs to the next
/// space, a quoted one (`key="a b"`) to its closing quote, with `\"` and `\\` unescaped.
/// Words of the message without `=` are passed over; a key given twice keeps its last value.
pub fn log_fields(line: &str) -> std::collections::BTreeMap<String, String> {
    let mut fields = std::collections::BTreeMap::new();
    let mut rest = line;
    while let Some(start) = rest.find(|c: char| c.is_ascii_lowercase()) {
        rest = &rest[start..];
        let key_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        rest = &rest[key_end..];
        let Some(after) = rest.strip_prefix('=') else {
            // Not a field: skip to the next word.
            rest = rest.find(' ').map_or("", |at| &rest[at..]);
            continue;
        };
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((at, c)) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    '"' => {
                        end = at + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_owned(), &after[end..])
        };
        fields.insert(key.to_owned(), value);
        rest = tail;
    }
    fields
}

/// Where the HTTP engine measures unless a test names a server: the discard port on
/// loopback, where nothing listens, so that a test that falls back to the HTTP engine by
/// mistake (`--engine auto` without a CLI) gets a quick `no_connectivity` and never sends
/// traffic off this machine (the default server is Cloudflare's).
pub const NO_HTTP_SERVER: &str = "http://127.0.0.1:9";

/// `internet-monitor ARGS`, cleared of our variables inherited from the caller, its HTTP
/// engine pointed at [`NO_HTTP_SERVER`] (a `--http-server` flag overrides it), and `TZ=UTC`,
/// so that the system's zone (the default of `--timezone`) is the same on every machine (a
/// test sets `TZ` again to try another).
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args).env_remove("RUST_LOG");
    for (key, _) in std::env::vars() {
        if key.starts_with("INTERNET_MONITOR_") || key.starts_with("FAKE_SPEEDTEST_") {
            command.env_remove(key);
        }
    }
    command.env("INTERNET_MONITOR_HTTP_SERVER", NO_HTTP_SERVER);
    command.env("TZ", "UTC");
    // Tests send traffic to loopback only: the connectivity monitor's default targets are
    // public addresses, so it is off unless a test turns it on (inside its own namespaces).
    command.env("INTERNET_MONITOR_PROBE_INTERVAL", "0s");
    command
}

/// `internet-monitor SUBCOMMAND --db DB --speedtest-bin <the fake CLI> EXTRA…`, the fake
/// replaying `fixture` (a name in tests/fixtures).
pub fn with_fake(subcommand: &str, db: &std::path::Path, fixture: &str, extra: &[&str]) -> Command {
    let db = db.to_str().expect("a UTF-8 temporary path");
    let mut command = command(&[subcommand, "--db", db, "--speedtest-bin", FAKE]);
    command
        .args(extra)
        .env("FAKE_SPEEDTEST_FIXTURE", format!("{FIXTURES}/{fixture}"));
    command
}

/// `serve` against the fake CLI: [`with_fake`] for the most common subcommand.
pub fn serve_command(db: &std::path::Path, fixture: &str, extra: &[&str]) -> Command {
    with_fake("serve", db, fixture, extra)
}

/// `run-once --engine http --http-server URL --timeout 60s EXTRA…` on the database `db`: its
/// exit code and the sample it printed (a test fails, showing stdout and stderr, when it
/// printed none).
pub fn http_run_once(
    db: &std::path::Path,
    url: &str,
    extra: &[&str],
) -> (Option<i32>, serde_json::Value) {
    let db = db.to_str().expect("a UTF-8 temporary path");
    let mut args = http_run_once_args(db, url);
    args.extend_from_slice(&["--timeout", "60s"]);
    args.extend_from_slice(extra);
    let output = command(&args).output().expect("run run-once");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let sample = serde_json::from_str(stdout.trim()).unwrap_or_else(|err| {
        panic!("run-once printed no sample ({err}): stdout {stdout:?}, stderr {stderr}")
    });
    (output.status.code(), sample)
}

/// `run-once --db DB --engine http --http-server URL`: the arguments of a run of the HTTP
/// engine, for a test to add its own.
pub fn http_run_once_args<'a>(db: &'a str, url: &'a str) -> Vec<&'a str> {
    vec![
        "run-once",
        "--db",
        db,
        "--engine",
        "http",
        "--http-server",
        url,
    ]
}

/// A temporary directory holding a test's database and the fake CLI's notes; each test file
/// adds the commands it needs.
pub struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    /// `plan set --db <this test's database> FLAGS…`, which must succeed: a contract for the
    /// runs of a test.
    pub fn plan_set(&self, flags: &[&str]) {
        let db = self.db();
        let mut args = vec!["plan", "set", "--db", db.to_str().unwrap()];
        args.extend_from_slice(flags);
        let output = command(&args).output().expect("run plan set");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(0),
            "plan set {flags:?}: {stderr}"
        );
    }

    pub fn new() -> Self {
        Env {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("samples.redb")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `serve` on this test's database, the fake CLI replaying `fixture` in `mode` and noting
    /// its pids in `pids`, plus `extra` flags.
    pub fn serve(&self, fixture: &str, mode: &str, extra: &[&str]) -> Command {
        let mut command = serve_command(&self.db(), fixture, extra);
        command
            .env("FAKE_SPEEDTEST_MODE", mode)
            .env("FAKE_SPEEDTEST_PIDS", self.path("pids"));
        command
    }

    /// Stores `lines` (samples as `export --format jsonl` writes them) with `import`.
    pub fn import(&self, lines: &[serde_json::Value]) {
        let file = self.path("import.jsonl");
        let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
        std::fs::write(&file, text).expect("write the import file");
        let db = self.db();
        let args = [
            "import",
            "--db",
            db.to_str().unwrap(),
            file.to_str().unwrap(),
        ];
        let output = command(&args).output().expect("run import");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
    }
}

/// A real Prometheus server on a free loopback port, killed when dropped.
pub struct Prometheus {
    child: Child,
    pub address: String,
}

impl Prometheus {
    /// Starts `prometheus` with `config`, keeping its data under `dir`.
    pub fn start(config: &std::path::Path, dir: &std::path::Path) -> Prometheus {
        Prometheus::start_with(config, &dir.join("data"), &[])
    }

    /// Starts `prometheus` with `config` on the TSDB directory `data` (which may already hold
    /// blocks), plus `extra` flags.
    pub fn start_with(
        config: &std::path::Path,
        data: &std::path::Path,
        extra: &[&str],
    ) -> Prometheus {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        Prometheus::start_on(config, data, extra, &format!("127.0.0.1:{port}"))
    }

    /// Starts `prometheus` as [`Prometheus::start_with`] does, listening on `address` (a
    /// restart on the address its clients know).
    pub fn start_on(
        config: &std::path::Path,
        data: &std::path::Path,
        extra: &[&str],
        address: &str,
    ) -> Prometheus {
        let address = address.to_owned();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address={address}"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot start prometheus ({err}): install Debian's prometheus package \
                     (apt-get install prometheus); .ci/run does"
                )
            });
        Prometheus { child, address }
    }

    /// Blocks until `/-/ready` answers 200: the TSDB is open (blocks loaded, the ones beyond
    /// retention deleted) and queries see it. Panics if Prometheus exits or takes over a minute.
    pub fn wait_ready(&mut self) {
        eventually_within("prometheus ready", Duration::from_secs(60), || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("prometheus exited before it was ready: {status}");
            }
            try_request(&self.address, "GET", "/-/ready")
                .is_ok_and(|r| r.status == 200)
                .then_some(())
        });
    }
}

impl Prometheus {
    /// SIGTERM, and waits for the exit: a clean stop, its write-ahead log closed.
    pub fn stop(&mut self) {
        signal(self.child.id(), libc::SIGTERM);
        assert!(
            wait_within(&mut self.child, Duration::from_secs(60)).is_some(),
            "prometheus did not stop after SIGTERM"
        );
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `internet-monitor serve`, killed when dropped.
pub struct Server {
    child: Child,
    pub address: String,
    log: Receiver<String>,
    pub seen: Vec<String>,
}

impl Server {
    /// Starts `serve` on a free loopback port and waits for the line naming the address.
    pub fn start(mut command: Command) -> Server {
        command.args(["--listen", "127.0.0.1:0", "--log-format", "text"]);
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start internet-monitor serve");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (lines, log) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            address: String::new(),
            log,
            seen: Vec::new(),
        };
        // `listening on http://ADDR`, or `https://` with a web configuration's TLS.
        let line = server.wait_for_log("listening on http");
        let after = line
            .split("listening on ")
            .nth(1)
            .and_then(|url| url.split_once("://"))
            .map_or("", |(_, after)| after);
        server.address = after
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        server
    }

    /// Blocks until the server logs a line containing `needle`, and returns that line.
    pub fn wait_for_log(&mut self, needle: &str) -> String {
        if let Some(line) = self.seen.iter().find(|line| line.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no log line with {needle:?}; saw:\n{}",
                        self.seen.join("\n")
                    )
                }
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "server exited before logging {needle:?}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Blocks until the server has logged `count` lines containing `needle`, and returns them.
    pub fn wait_for_logs(&mut self, needle: &str, count: usize) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found: Vec<String> = self
                .seen
                .iter()
                .filter(|line| line.contains(needle))
                .cloned()
                .collect();
            if found.len() >= count {
                return found;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(err) => panic!(
                    "{} of {count} log lines with {needle:?} ({err}); saw:\n{}",
                    found.len(),
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The next log line containing `needle` that arrives within `limit` (zero: only what has
    /// arrived already), skipping lines seen before; `None` if none does.
    pub fn next_log_within(&mut self, needle: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        request(&self.address, "GET", path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit, returning its status and how long it took.
    pub fn terminate(&mut self) -> (ExitStatus, Duration) {
        let started = Instant::now();
        signal(self.child.id(), libc::SIGTERM);
        let status = self
            .wait(PATIENCE)
            .expect("server did not exit after SIGTERM");
        (status, started.elapsed())
    }

    /// SIGTERM, a clean exit (status 0), and the whole log, checked for panics: tokio catches
    /// a panicking request task and the server keeps running, so being alive proves nothing.
    pub fn assert_clean_exit(&mut self) -> Vec<String> {
        let (status, _) = self.terminate();
        assert_eq!(status.code(), Some(0), "a clean shutdown");
        // The server has exited: its stderr ends, and with it the reader thread's channel.
        loop {
            match self.log.recv_timeout(PATIENCE) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("the log did not end after the exit"),
            }
        }
        let panics: Vec<&String> = self
            .seen
            .iter()
            .filter(|line| line.contains("panicked"))
            .collect();
        assert!(panics.is_empty(), "the server panicked: {panics:#?}");
        self.seen.clone()
    }

    /// The exit status, if the server ends within `limit`.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait_within(&mut self.child, limit)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    /// SIGTERM first, so the server kills a running fake CLI's process group on its way out.
    fn drop(&mut self) {
        if self.is_running() {
            signal(self.child.id(), libc::SIGTERM);
            if self.wait(Duration::from_secs(5)).is_none() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

pub fn signal(pid: u32, signal: i32) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits");
    // SAFETY: kill(2) only sends a signal.
    unsafe {
        libc::kill(pid, signal);
    }
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {:?}", self.body))
    }
}

/// One HTTP/1.1 request on a fresh connection; enough of a client for these tests.
pub fn request(address: &str, method: &str, path: &str) -> HttpResponse {
    try_request(address, method, path).expect("an HTTP response")
}

/// Like `request`, but a server that is not (yet) there is an error, not a panic. A POST
/// says `Content-Type: application/json`, as the README asks of scripts.
pub fn try_request(address: &str, method: &str, path: &str) -> std::io::Result<HttpResponse> {
    let headers: &[(&str, &str)] = if method == "POST" {
        &[("Content-Type", "application/json")]
    } else {
        &[]
    };
    try_request_with(address, method, path, headers)
}

/// One request with these extra header lines, as a browser or a hostile client sends them.
pub fn try_request_with(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    // `Host` is the address connected to, unless `headers` name another.
    let host = if headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        String::new()
    } else {
        format!("Host: {address}\r\n")
    };
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\n{host}{extra}Connection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(raw)
}

/// An HTTP/1.1 answer read whole (the connection closed after it): status, headers, body
/// (de-chunked).
pub fn parse_response(raw: Vec<u8>) -> std::io::Result<HttpResponse> {
    let text = String::from_utf8(raw).map_err(std::io::Error::other)?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header block"))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(": "))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    let chunked = headers.iter().any(|(key, value)| {
        key.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_owned()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// The payload of a `Transfer-Encoding: chunked` body.
fn dechunk(mut rest: &str) -> std::io::Result<String> {
    let broken = || std::io::Error::other("malformed chunked body");
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").ok_or_else(broken)?;
        let size = usize::from_str_radix(size.trim(), 16).map_err(|_| broken())?;
        if size == 0 {
            return Ok(body);
        }
        body.push_str(after.get(..size).ok_or_else(broken)?);
        rest = after.get(size + 2..).ok_or_else(broken)?;
    }
}

/// True while /proc lists `pid` as something other than a zombie.
pub fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// SIGKILL is delivered asynchronously: give each process a moment (5 s in all) to be gone.
pub fn assert_gone(pids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    for &pid in pids {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(exits_within(pid, left), "process {pid} was left running");
    }
}

/// The pids the fake CLI wrote to `path` (its own, then any grandchild's).
pub fn pids(path: &std::path::Path) -> Vec<u32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}

/// Live (not zombie) processes whose environment holds exactly `entry` (`KEY=value`).
pub fn processes_with_env(entry: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("read the process table")
        .filter_map(|dir| dir.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid| {
            // A process that ends mid-scan is simply not there any more.
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == entry.as_bytes()))
        })
        .filter(|&pid| is_running(pid))
        .collect()
}

/// A small deterministic generator (Knuth's MMIX constants), so that a failing run can be
/// replayed from its seed.
pub struct Lcg(pub u64);

impl Lcg {
    /// The next number in `0..limit`.
    pub fn below(&mut self, limit: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % limit
    }
}

/// Lifts this test process's open-files limit to the hard limit, as `serve` does its own, and
/// asserts it allows at least `needed` descriptors (a test holding that many sockets).
pub fn raise_open_files_limit(needed: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    assert!(
        limit.rlim_cur >= needed,
        "open-files limit too low for {needed} descriptors: {}",
        limit.rlim_cur
    );
}

/// `inner` with libfaketime (the multi-threaded build) preloaded; the caller sets `FAKETIME`
/// or its file. The library is preloaded into `inner` itself rather than run through the
/// `faketime` program, which forks and would take the test's signals in the server's stead.
/// Panics with the fix when libfaketime is missing: a clock test must never pass by not
/// running.
pub fn with_libfaketime(inner: &Command) -> Command {
    let library = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|dir| dir.path())
        .chain([std::path::PathBuf::from("/usr/lib")])
        .map(|dir| dir.join("faketime/libfaketimeMT.so.1"))
        .find(|library| library.exists())
        .unwrap_or_else(|| {
            panic!(
                "libfaketime is not installed: apt-get install faketime (Debian package \
                 faketime); .ci/run installs it"
            )
        });
    let mut faked = Command::new(inner.get_program());
    faked.args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => faked.env(key, value),
            None => faked.env_remove(key),
        };
    }
    faked.env("LD_PRELOAD", library);
    faked
}

/// Debian's headless Chromium with the flags a closed, root-run test machine needs
/// (/work/shared/notes/tooling.md: no sandbox as root, no GPU, no background traffic to the
/// closed network) and its own profile in `profile`; the caller adds what it does.
pub fn chromium(profile: &std::path::Path) -> Command {
    let mut chromium = Command::new("chromium");
    chromium
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()));
    chromium
}
