//! The accuracy lab's network: two network namespaces joined by a veth pair, shaped by the
//! kernel's own rate limiter (`tc … tbf`), processes started inside them, Debian's `iperf3` as
//! the independent reference, and a relay that delays each chunk (this kernel has no `netem`).
//!
//! ```text
//!   client namespace imlab<pid>x<n>c             target namespace imlab<pid>x<n>t
//!   run-once, iperf3 -c, the relay's sockets     target, iperf3 -s
//!   lo 127.0.0.1 (the relay listens here)        lo
//!   lab0 10.9.0.1/24 ═══════ veth pair ═══════ lab0 10.9.0.2/24
//!   tbf on egress: client → target               tbf on egress: target → client
//! ```
//!
//! Both veth ends are created directly inside their namespaces, so the interface names never
//! exist in the root namespace and every lab can use the same names and addresses: parallel
//! labs (another test binary, another checkout) cannot collide; the namespaces' names carry
//! this process's id and a counter. [`Lab`] is a guard: dropping it (also while a test
//! panics) kills every process left in its namespaces and deletes them, which takes the veth
//! pair with them; [`Lab::new`] first sweeps namespaces of an earlier run that was killed
//! before its guards ran (their pid is gone).
//!
//! The second part, [`Topology`], is the connectivity monitor's network (issue 15): three
//! namespaces, home, router and internet, links that can be cut, delayed or shaped, and
//! [`Flood`], a UDP bulk flow.
//!
//! Included next to `mod common;` (it uses `crate::common`):
//! `#[path = "common/netns.rs"] mod netns;`. Root, iproute2 (`ip`, `tc`) and iperf3 are
//! needed: [`preflight`] fails with the fix when one is missing, never skips.
#![allow(dead_code)] // each test binary uses a part of this module

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Every namespace this module makes starts with this, then the pid of the process that made
/// it, `x`, a counter and `c` or `t`.
pub const PREFIX: &str = "imlab";
/// The client end's address (namespace [`Lab::client`]).
pub const CLIENT_IP: &str = "10.9.0.1";
/// The target end's address (namespace [`Lab::target`]).
pub const TARGET_IP: &str = "10.9.0.2";
/// The veth ends' name, the same in both namespaces.
const DEV: &str = "lab0";
/// The port of the iperf3 server in the target namespace (a fresh namespace: always free).
const IPERF3_PORT: u16 = 5201;

const ROOT_HINT: &str = "the accuracy lab makes network namespaces and shapes links: run it as \
                         root (CI runs as root; .ci/run runs the ignored tests)";

/// Fails, naming the fix, unless this process is root and `ip`, `tc` and `iperf3` run.
pub fn preflight() {
    require_root_and_tools(
        ROOT_HINT,
        &[
            ("ip", &["-V"], "iproute2"),
            ("tc", &["-V"], "iproute2"),
            ("iperf3", &["--version"], "iperf3"),
        ],
    );
}

/// Fails unless this process is root (the message ends with `root_hint`, the fix) and each
/// `(tool, args, Debian package)` runs `tool args…` successfully (naming the package).
fn require_root_and_tools(root_hint: &str, tools: &[(&str, &[&str], &str)]) {
    // SAFETY: geteuid(2) only reads the caller's effective user id.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "not root (euid {euid}): {root_hint}");
    for &(tool, args, package) in tools {
        let status = Command::new(tool)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match status {
            Ok(status) if status.success() => {}
            outcome => panic!(
                "`{tool} {}` does not run ({outcome:?}): install Debian's {package} package \
                 (apt-get install {package}); .ci/run does",
                args.join(" ")
            ),
        }
    }
}

/// Runs `ip ARGS…` (or `tc`), failing with its stderr.
fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("cannot run {program} ({err}): install Debian's iproute2"));
    assert!(
        output.status.success(),
        "`{program} {}` failed ({}): {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// `tc -n NS qdisc replace dev DEV SPEC…`: sets the queueing discipline `spec` (its parent
/// first, e.g. `root tbf …`) on `dev` in namespace `ns`, failing with tc's stderr.
fn qdisc_replace(ns: &str, dev: &str, spec: &[&str]) {
    let mut args = vec!["-n", ns, "qdisc", "replace", "dev", dev];
    args.extend_from_slice(spec);
    run("tc", &args);
}

/// The namespaces `ip netns list` shows.
fn namespaces() -> Vec<String> {
    let output = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("run ip netns list");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Kills (SIGKILL) every process whose network namespace is `ns` (never this one), and
/// returns once they are gone.
fn kill_processes_in(ns: &str) {
    let output = Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .expect("run ip netns pids");
    let me = std::process::id();
    let pids: Vec<u32> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .filter(|&pid| pid != me)
        .collect();
    for &pid in &pids {
        crate::common::signal(pid, libc::SIGKILL);
    }
    crate::common::assert_gone(&pids);
}

/// Deletes namespaces of ours whose creator is no longer running (a run killed before its
/// guards could clean up), and the processes left in them.
fn sweep_stale() {
    for ns in namespaces() {
        let Some(rest) = ns
            .strip_prefix(PREFIX)
            .or_else(|| ns.strip_prefix(NET_PREFIX))
        else {
            continue;
        };
        let Some(pid) = rest
            .split('x')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            kill_processes_in(&ns);
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
    }
}

/// Which way data flows, seen from the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Target → client (`iperf3 -R`).
    Download,
    /// Client → target.
    Upload,
}

/// Two namespaces joined by a veth pair; deleted, with every process in them, when dropped.
pub struct Lab {
    /// The client's namespace (where `run-once` and the iperf3 client run).
    pub client: String,
    /// The target's namespace (where `target` and the iperf3 server run).
    pub target: String,
}

impl Lab {
    /// A fresh pair of namespaces, `lo` and the veth ends up, unshaped.
    pub fn new() -> Lab {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        preflight();
        sweep_stale();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let base = format!("{PREFIX}{}x{n}", std::process::id());
        let lab = Lab {
            client: format!("{base}c"),
            target: format!("{base}t"),
        };
        // The guard exists before the first namespace does: a failure below still cleans up.
        run("ip", &["netns", "add", &lab.client]);
        run("ip", &["netns", "add", &lab.target]);
        run(
            "ip",
            &[
                "link",
                "add",
                "name",
                DEV,
                "netns",
                &lab.client,
                "type",
                "veth",
                "peer",
                "name",
                DEV,
                "netns",
                &lab.target,
            ],
        );
        for (ns, ip) in [(&lab.client, CLIENT_IP), (&lab.target, TARGET_IP)] {
            run(
                "ip",
                &["-n", ns, "addr", "add", &format!("{ip}/24"), "dev", DEV],
            );
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
            run("ip", &["-n", ns, "link", "set", DEV, "up"]);
        }
        lab
    }

    /// Shapes both directions to `mbit` Mbit/s with a token bucket (`tbf`): client → target on
    /// the client's end, target → client on the target's. `queue` is tbf's `latency`, how long
    /// a packet may wait in its queue before tbf drops instead (a large one lets TCP fill it).
    pub fn shape(&self, mbit: u32, queue: Duration) {
        let rate = format!("{mbit}mbit");
        let latency = format!("{}ms", queue.as_millis());
        for ns in [&self.client, &self.target] {
            qdisc_replace(
                ns,
                DEV,
                &[
                    "root", "tbf", "rate", &rate, "burst", "64kb", "latency", &latency,
                ],
            );
        }
    }

    /// Removes the shaping (back to the veth's default queue).
    pub fn unshape(&self) {
        for ns in [&self.client, &self.target] {
            let _ = Command::new("tc")
                .args(["-n", ns, "qdisc", "del", "dev", DEV, "root"])
                .output();
        }
    }

    /// `command`, run inside namespace `ns` by `ip netns exec` (which execs it: the child's pid
    /// is the command's), with the same arguments and environment changes.
    pub fn exec(&self, ns: &str, command: &Command) -> Command {
        exec_in(ns, command)
    }

    /// Starts `command` in `ns`, its stdout and stderr read line by line.
    pub fn spawn(&self, ns: &str, command: &Command) -> Spawned {
        let name = command.get_program().to_string_lossy().into_owned();
        Spawned::start(&name, self.exec(ns, command))
    }

    /// Runs `command` in `ns` to its end, failing after `limit` (the child killed).
    pub fn output(&self, ns: &str, command: &Command, limit: Duration) -> Output {
        output_within(self.exec(ns, command), limit)
    }

    /// Bytes (received, sent) on `ns`'s veth end so far, as the interface counts them: what
    /// went over the wire, Ethernet, IP and TCP headers included.
    pub fn wire_bytes(&self, ns: &str) -> (u64, u64) {
        let output = Command::new("ip")
            .args(["-n", ns, "-s", "-j", "link", "show", DEV])
            .output()
            .expect("run ip -s link show");
        let stats: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("ip -j prints JSON");
        let count = |way: &str| {
            stats[0]["stats64"][way]["bytes"]
                .as_u64()
                .unwrap_or_else(|| panic!("no {way} bytes for {DEV} in {stats}"))
        };
        (count("rx"), count("tx"))
    }

    /// One iperf3 test on this link: the server in the target namespace, the client in the
    /// client's, `streams` parallel streams (`-P`) for `seconds`; the receiver's goodput
    /// (`end.sum_received.bits_per_second`) in bits per second.
    pub fn iperf3(&self, direction: Direction, streams: u32, seconds: u32) -> f64 {
        let port = IPERF3_PORT.to_string();
        let mut server = Command::new("iperf3");
        // --forceflush: the "Server listening" line reaches the pipe at once.
        server.args(["-s", "-1", "-p", &port, "--forceflush"]);
        let mut server = self.spawn(&self.target, &server);
        server.wait_for_line("Server listening", crate::common::PATIENCE);
        let mut client = Command::new("iperf3");
        client.args(["-c", TARGET_IP, "-p", &port, "-J"]);
        client.args(["-t", &seconds.to_string(), "-P", &streams.to_string()]);
        if direction == Direction::Download {
            client.arg("-R");
        }
        let limit = Duration::from_secs(u64::from(seconds)) + crate::common::PATIENCE;
        let output = self.output(&self.client, &client, limit);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "iperf3 {direction:?} -P {streams} failed ({}): {stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|err| panic!("iperf3 -J printed no JSON ({err}): {stdout}"));
        report["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .unwrap_or_else(|| panic!("no end.sum_received.bits_per_second: {stdout}"))
    }

    /// Runs `f` on a thread whose network namespace is `ns`: the sockets it makes live there
    /// (and stay there when handed to other threads).
    pub fn in_netns<T: Send + 'static>(
        &self,
        ns: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        run_in_netns(ns, f)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.client, &self.target] {
            kill_processes_in(ns);
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Runs `f` on a thread whose network namespace is `ns`, and returns its result (a panic in
/// `f` fails the caller).
fn run_in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    spawn_in_netns(ns, f)
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// A thread moved into namespace `ns` (setns(2) changes the calling thread only) running `f`.
pub fn spawn_in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|err| panic!("open {path}: {err}"));
        // SAFETY: setns(2) with a namespace file descriptor that `file` keeps open.
        let done = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(
            done,
            0,
            "setns({path}): {}",
            std::io::Error::last_os_error()
        );
        f()
    })
}

/// Runs `command` to its end with its output captured; after `limit` it is killed and the
/// test fails.
pub fn output_within(mut command: Command, limit: Duration) -> Output {
    let shown = format!("{command:?}");
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {shown}: {err}"));
    let pid = child.id();
    let (done, outcome) = channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match outcome.recv_timeout(limit) {
        Ok(output) => output.unwrap_or_else(|err| panic!("{shown}: {err}")),
        Err(_) => {
            crate::common::signal(pid, libc::SIGKILL);
            let partial = outcome.recv_timeout(crate::common::PATIENCE);
            panic!("{shown} did not end within {limit:?}; killed. Output: {partial:?}");
        }
    }
}

/// A process started in a namespace, its output read line by line; killed when dropped.
pub struct Spawned {
    name: String,
    child: Child,
    lines: Receiver<String>,
    /// Every line read so far, stdout's and stderr's interleaved as they arrived.
    pub seen: Vec<String>,
}

impl Spawned {
    fn start(name: &str, mut command: Command) -> Spawned {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {command:?}: {err}"));
        let (sender, lines) = channel();
        let stdout: Box<dyn Read + Send> = Box::new(child.stdout.take().expect("piped"));
        let stderr: Box<dyn Read + Send> = Box::new(child.stderr.take().expect("piped"));
        for stream in [stdout, stderr] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Spawned {
            name: name.to_owned(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Blocks until a line containing `needle` arrives (or arrived), and returns it; fails
    /// after `limit`, or when the process closed its output first.
    pub fn wait_for_line(&mut self, needle: &str, limit: Duration) -> String {
        if let Some(line) = self.seen.iter().find(|line| line.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{} printed no line with {needle:?} within {limit:?}; saw:\n{}",
                    self.name,
                    self.seen.join("\n")
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait();
                    panic!(
                        "{} ended ({status:?}) before printing {needle:?}; saw:\n{}",
                        self.name,
                        self.seen.join("\n")
                    )
                }
            }
        }
    }

    /// The lines that arrived so far, added to [`Spawned::seen`].
    pub fn drain(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `internet-monitor target`'s announced address: what follows "listening on http://" up to
/// the next space, as `host:port`.
pub fn listening_address(line: &str) -> String {
    line.split("listening on http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim_end_matches(['/', ',', '"'])
        .to_owned()
}

/// A TCP relay that delays every chunk, each way, by a fixed time: a known amount of latency
/// on a path where `netem` is not available.
///
/// It runs in this process: its accepting thread lives in the client's namespace (see
/// [`spawn_in_netns`]), listens on the client's loopback (`127.0.0.1`, port chosen by the
/// kernel) and, for each connection, connects to `upstream` over the veth. Per direction a
/// reader thread stamps each chunk with the time it arrived and a writer thread sends it on at
/// that time plus the delay: order is kept, and an idle path adds exactly the delay (plus a
/// thread wake-up), so a request and its answer take 2 × delay more than without the relay.
/// Between the two, at most [`Relay::CHUNKS`] chunks of at most [`Relay::CHUNK`] bytes wait
/// (1 MiB, 400 Mbit/s at 20 ms): beyond that the reader stops reading and TCP's flow control
/// pushes back on the sender, as a full router queue would. Both sockets of a connection have
/// TCP_NODELAY, so that Nagle's algorithm adds nothing to small answers. A half-close (EOF)
/// passes through, delayed like data.
pub struct Relay {
    /// Where the client connects, in the client's namespace.
    pub address: SocketAddr,
    listener: TcpListener,
    stopping: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
    accepting: Option<JoinHandle<()>>,
}

impl Relay {
    pub const CHUNK: usize = 16 * 1024;
    pub const CHUNKS: usize = 64;

    /// A relay in `lab`'s client namespace to `upstream`, adding `delay` each way.
    pub fn start(lab: &Lab, upstream: SocketAddr, delay: Duration) -> Relay {
        let (ready, listening) = channel();
        let stopping = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (stop, open) = (stopping.clone(), connections.clone());
        let accepting = spawn_in_netns(&lab.client, move || {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
            ready
                .send(listener.try_clone().expect("clone the listener"))
                .expect("the test waits for the relay");
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                // This thread is in the client's namespace: so is the upstream socket.
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                if let Ok(mut list) = open.lock() {
                    list.extend(client.try_clone().ok());
                    list.extend(server.try_clone().ok());
                }
                pump(&client, &server, delay);
                pump(&server, &client, delay);
            }
        });
        let listener = listening
            .recv_timeout(crate::common::PATIENCE)
            .expect("the relay listens");
        Relay {
            address: listener.local_addr().expect("the relay's address"),
            listener,
            stopping,
            connections,
            accepting: Some(accepting),
        }
    }
}

/// One direction of a relayed connection: `from` → `to`, each chunk `delay` late.
fn pump(from: &TcpStream, to: &TcpStream, delay: Duration) {
    let (Ok(mut source), Ok(source_again), Ok(mut sink)) =
        (from.try_clone(), from.try_clone(), to.try_clone())
    else {
        return;
    };
    // `None`: the source ended (EOF or an error).
    let (chunks, queue) = sync_channel::<(Instant, Option<Vec<u8>>)>(Relay::CHUNKS);
    std::thread::spawn(move || {
        loop {
            let mut chunk = vec![0; Relay::CHUNK];
            match source.read(&mut chunk) {
                Ok(0) | Err(_) => {
                    let _ = chunks.send((Instant::now(), None));
                    return;
                }
                Ok(n) => {
                    chunk.truncate(n);
                    if chunks.send((Instant::now(), Some(chunk))).is_err() {
                        return;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        while let Ok((arrived, chunk)) = queue.recv() {
            let due = arrived + delay;
            let now = Instant::now();
            if due > now {
                // The relay's delay is what it emulates, not synchronisation.
                std::thread::sleep(due - now);
            }
            match chunk {
                Some(chunk) => {
                    if sink.write_all(&chunk).is_err() {
                        // The far side is gone: stop reading this side too.
                        let _ = source_again.shutdown(Shutdown::Both);
                        return;
                    }
                }
                None => {
                    let _ = sink.shutdown(Shutdown::Write);
                    return;
                }
            }
        }
    });
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // shutdown(2) on a listening socket wakes a thread blocked in accept(2) (Linux).
        // SAFETY: shutdown on a descriptor `self.listener` owns.
        unsafe {
            libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR);
        }
        if let Ok(list) = self.connections.lock() {
            for stream in list.iter() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.join();
        }
    }
}

/// Round trips of `GET path` on one kept-alive HTTP/1.1 connection to `address`, made from
/// namespace `ns`: `count` of them, each less the server's own time when it sends
/// `Server-Timing` (the largest `dur=`, in milliseconds), as the engine's idle latency is
/// defined. The first request (connection set-up, a cold server) is not counted.
pub fn http_round_trips(
    lab: &Lab,
    ns: &str,
    address: SocketAddr,
    path: &str,
    count: usize,
) -> Vec<Duration> {
    let path = path.to_owned();
    lab.in_netns(ns, move || {
        let stream = TcpStream::connect(address).expect("connect for round trips");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        stream
            .set_read_timeout(Some(crate::common::PATIENCE))
            .expect("read timeout");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut writer = stream;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nAccept-Encoding: identity\r\n\r\n");
        let mut times = Vec::with_capacity(count);
        for i in 0..=count {
            let started = Instant::now();
            writer
                .write_all(request.as_bytes())
                .expect("send a request");
            let server_time = read_response(&mut reader);
            let elapsed = started.elapsed();
            if i > 0 {
                times.push(elapsed.saturating_sub(server_time));
            }
        }
        times
    })
}

/// Reads one response with a `Content-Length` body; returns the server's time from
/// `Server-Timing` (zero without one).
fn read_response(reader: &mut impl BufRead) -> Duration {
    let mut status = String::new();
    reader.read_line(&mut status).expect("a status line");
    assert!(status.starts_with("HTTP/1.1 200"), "not a 200: {status:?}");
    let mut length = 0usize;
    let mut server_time = Duration::ZERO;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a header line");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().expect("a Content-Length");
        } else if name.eq_ignore_ascii_case("server-timing") {
            for part in value.split([',', ';']) {
                if let Some(ms) = part.trim().strip_prefix("dur=") {
                    let ms: f64 = ms.trim_matches('"').parse().unwrap_or(0.0);
                    server_time = server_time.max(Duration::from_secs_f64(ms / 1000.0));
                }
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("the body");
    server_time
}

/// The median of `values` (sorted here).
pub fn median(values: &mut [Duration]) -> Duration {
    assert!(!values.is_empty(), "a median of nothing");
    values.sort();
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2
    }
}

/// How busy the rest of the machine was over a window: every CPU's busy time (`/proc/stat`)
/// less this process's and its waited-for children's (getrusage) and the target's
/// (`/proc/PID/stat`, a process still running). Two speed tests sharing two cores measure
/// each other: a figure that misses while this is well above 0 was measured on a contended
/// machine. The kernel's irq and softirq time is left out: it is mostly this test's own
/// packets, charged to no process; what ksoftirqd does for them still counts among the
/// others (one iperf3 -R at 500 Mbit/s through tbf here: 0.52 core of softirq time, 0.13 of
/// ksoftirqd).
pub struct Contention {
    started: Instant,
    machine: Duration,
    mine: Duration,
    target: Option<(u32, Duration)>,
}

impl Contention {
    pub fn start(target: Option<u32>) -> Contention {
        Contention {
            started: Instant::now(),
            machine: machine_busy(),
            mine: own_cpu(),
            target: target.map(|pid| (pid, process_cpu(pid))),
        }
    }

    /// Cores the other processes kept busy since [`Contention::start`], on average.
    pub fn cores(&self) -> f64 {
        let wall = self.started.elapsed().as_secs_f64();
        let machine = machine_busy().saturating_sub(self.machine);
        let mine = own_cpu().saturating_sub(self.mine);
        let target = self.target.map_or(Duration::ZERO, |(pid, before)| {
            process_cpu(pid).saturating_sub(before)
        });
        machine.saturating_sub(mine + target).as_secs_f64() / wall
    }
}

fn clock_tick() -> Duration {
    // SAFETY: sysconf(3) only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Duration::from_secs(1) / u32::try_from(hz).unwrap_or(100).max(1)
}

/// All CPUs' busy time but interrupts: user, nice, system and steal of `/proc/stat`.
fn machine_busy() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").expect("read /proc/stat");
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().unwrap_or(0))
        .collect();
    let busy: u64 = [0, 1, 2, 7]
        .iter()
        .map(|&i| fields.get(i).copied().unwrap_or(0))
        .sum();
    clock_tick() * u32::try_from(busy).unwrap_or(u32::MAX)
}

/// utime + stime of a running process (zero once it is gone).
fn process_cpu(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    let ticks: u64 = stat
        .rsplit_once(") ")
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .map(|field| field.parse::<u64>().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    clock_tick() * u32::try_from(ticks).unwrap_or(u32::MAX)
}

/// This process's CPU time and that of its children it has waited for.
fn own_cpu() -> Duration {
    let mut total = Duration::ZERO;
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: getrusage(2) writes into the struct passed, which is zeroed and ours.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(who, &mut usage);
            usage
        };
        for time in [usage.ru_utime, usage.ru_stime] {
            total += Duration::from_secs(u64::try_from(time.tv_sec).unwrap_or(0))
                + Duration::from_micros(u64::try_from(time.tv_usec).unwrap_or(0));
        }
    }
    total
}

// ---------------------------------------------------------------------------------------------
// The connectivity monitor's network (issue 15): home, router, internet.
// ---------------------------------------------------------------------------------------------

/// Every namespace of a [`Topology`] starts with this, then the pid, `x`, a counter and `h`,
/// `r` or `i`.
pub const NET_PREFIX: &str = "imnet";

/// The two links of a [`Topology`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// home `h0` ↔ router `r0`: cutting it makes a `local` outage (the gateway is gone too).
    Local,
    /// router `r1` ↔ internet `i0`: cutting it makes an `isp` outage (the gateway answers).
    Isp,
}

/// Three namespaces as the design note draws them, addresses `10.N.x.y` with `N` unique per
/// topology of this process (belt and braces: namespaces do not share addresses anyway):
///
/// ```text
/// [home]  h0 10.N.1.2/24 ──── r0 10.N.1.1/24 [router, forwarding] r1 10.N.2.1/24 ──── i0 10.N.2.2/24 [internet]
///         fdN:1::2/64         fdN:1::1/64                          fdN:2::1/64         fdN:2::2/64
/// home: default via 10.N.1.1 (and fdN:1::1)          internet: 10.N.3.1-3/32 and fdN:3::1-3/128 on lo
/// router: 10.N.3.0/24 via 10.N.2.2                    (the public targets), default via 10.N.2.1;
///                                                    a TCP listener on port 443 of all of them
/// ```
///
/// (`fdN` stands for `fd77:N`.) Each link is a veth pair, or, with
/// [`TopologyBuilder::delay`], a pair of TUN devices joined by a relay in this process that
/// holds every packet for the delay: this kernel has no `netem`. Dropping the topology stops
/// the relay and the listener, kills every process left in the namespaces and deletes them
/// (the links go with them), also while a test panics. Processes run in a namespace through
/// [`Topology::exec`]/[`Topology::spawn`]; code of this process through
/// [`Topology::in_netns`] or [`spawn_in_netns`] (a thread that `setns`'d into it).
pub struct Topology {
    /// The home network's namespace, where the monitor runs.
    pub home: String,
    /// The home router's namespace (the default gateway).
    pub router: String,
    /// The internet's namespace (the public targets).
    pub internet: String,
    /// The second octet of every IPv4 address (`10.N.…`).
    pub net: u8,
    relays: Vec<TunRelay>,
    listener: Option<(TcpListener, JoinHandle<()>)>,
}

/// Options of a [`Topology`]: [`Topology::builder`] … [`TopologyBuilder::build`].
#[derive(Default)]
pub struct TopologyBuilder {
    delays: Vec<(Link, Duration)>,
    listen: Option<u16>,
}

impl TopologyBuilder {
    /// Makes `link` a relayed TUN pair that holds each packet `each_way` in each direction
    /// (a round trip through it takes 2 × `each_way` more).
    pub fn delay(mut self, link: Link, each_way: Duration) -> Self {
        self.delays.push((link, each_way));
        self
    }

    /// The TCP port the internet's listener uses (443 by default).
    pub fn listen_port(mut self, port: u16) -> Self {
        self.listen = Some(port);
        self
    }

    /// Makes the namespaces, links, addresses and routes, and starts the TCP listener.
    pub fn build(self) -> Topology {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        net_preflight();
        sweep_stale();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let base = format!("{NET_PREFIX}{}x{n}", std::process::id());
        let mut topology = Topology {
            home: format!("{base}h"),
            router: format!("{base}r"),
            internet: format!("{base}i"),
            // 77, 78, …: unique within this process for the first 150 topologies.
            net: u8::try_from(77 + n % 150).expect("below 256"),
            relays: Vec::new(),
            listener: None,
        };
        // The guard exists before the first namespace does: a failure below still cleans up.
        for ns in [&topology.home, &topology.router, &topology.internet] {
            run("ip", &["netns", "add", ns]);
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
            // Addresses usable at once (no duplicate address detection wait).
            sysctl(ns, "net.ipv6.conf.all.accept_dad", "0");
            sysctl(ns, "net.ipv6.conf.default.accept_dad", "0");
        }
        sysctl(&topology.router, "net.ipv4.ip_forward", "1");
        sysctl(&topology.router, "net.ipv6.conf.all.forwarding", "1");
        let net = topology.net;
        for link in [Link::Local, Link::Isp] {
            let [(ns_a, dev_a), (ns_b, dev_b)] =
                topology.ends(link).map(|(ns, dev)| (ns.to_owned(), dev));
            let (ns_a, ns_b) = (ns_a.as_str(), ns_b.as_str());
            let subnet = match link {
                Link::Local => 1,
                Link::Isp => 2,
            };
            let delay = self
                .delays
                .iter()
                .find(|(l, _)| *l == link)
                .map(|(_, d)| *d);
            match delay {
                None => run(
                    "ip",
                    &[
                        "link", "add", "name", dev_a, "netns", ns_a, "type", "veth", "peer",
                        "name", dev_b, "netns", ns_b,
                    ],
                ),
                Some(each_way) => {
                    topology
                        .relays
                        .push(TunRelay::start((ns_a, dev_a), (ns_b, dev_b), each_way))
                }
            }
            // The end toward home is .1 on the local link (the router), .1 on the isp link
            // (the router again); point-to-point TUN ends need the peer named.
            let (a_host, b_host) = match link {
                Link::Local => (2, 1),
                Link::Isp => (1, 2),
            };
            for (ns, dev, host, peer) in
                [(ns_a, dev_a, a_host, b_host), (ns_b, dev_b, b_host, a_host)]
            {
                let v4 = format!("10.{net}.{subnet}.{host}/24");
                let v6 = format!("fd77:{net}:{subnet}::{host}/64");
                if delay.is_some() {
                    let peer4 = format!("10.{net}.{subnet}.{peer}/24");
                    let peer6 = format!("fd77:{net}:{subnet}::{peer}/64");
                    let v4 = format!("10.{net}.{subnet}.{host}");
                    let v6 = format!("fd77:{net}:{subnet}::{host}");
                    run(
                        "ip",
                        &["-n", ns, "addr", "add", &v4, "peer", &peer4, "dev", dev],
                    );
                    run(
                        "ip",
                        &[
                            "-n", ns, "-6", "addr", "add", &v6, "peer", &peer6, "dev", dev, "nodad",
                        ],
                    );
                } else {
                    run("ip", &["-n", ns, "addr", "add", &v4, "dev", dev]);
                    run(
                        "ip",
                        &["-n", ns, "-6", "addr", "add", &v6, "dev", dev, "nodad"],
                    );
                }
                run("ip", &["-n", ns, "link", "set", dev, "up"]);
            }
        }
        let (home, router, internet) = (&topology.home, &topology.router, &topology.internet);
        run(
            "ip",
            &[
                "-n",
                home,
                "route",
                "add",
                "default",
                "via",
                &format!("10.{net}.1.1"),
            ],
        );
        run(
            "ip",
            &[
                "-n",
                home,
                "-6",
                "route",
                "add",
                "default",
                "via",
                &format!("fd77:{net}:1::1"),
            ],
        );
        run(
            "ip",
            &[
                "-n",
                router,
                "route",
                "add",
                &format!("10.{net}.3.0/24"),
                "via",
                &format!("10.{net}.2.2"),
            ],
        );
        run(
            "ip",
            &[
                "-n",
                router,
                "-6",
                "route",
                "add",
                &format!("fd77:{net}:3::/64"),
                "via",
                &format!("fd77:{net}:2::2"),
            ],
        );
        run(
            "ip",
            &[
                "-n",
                internet,
                "route",
                "add",
                "default",
                "via",
                &format!("10.{net}.2.1"),
            ],
        );
        run(
            "ip",
            &[
                "-n",
                internet,
                "-6",
                "route",
                "add",
                "default",
                "via",
                &format!("fd77:{net}:2::1"),
            ],
        );
        for host in 1..=3 {
            run(
                "ip",
                &[
                    "-n",
                    internet,
                    "addr",
                    "add",
                    &format!("10.{net}.3.{host}/32"),
                    "dev",
                    "lo",
                ],
            );
            run(
                "ip",
                &[
                    "-n",
                    internet,
                    "-6",
                    "addr",
                    "add",
                    &format!("fd77:{net}:3::{host}/128"),
                    "dev",
                    "lo",
                ],
            );
        }
        topology.listener = Some(accept_and_close(internet, self.listen.unwrap_or(443)));
        topology
    }
}

impl Topology {
    /// Options first: `Topology::builder().delay(Link::Isp, ms(25)).build()`.
    pub fn builder() -> TopologyBuilder {
        TopologyBuilder::default()
    }

    /// The plain topology: veth links, the listener on 443.
    pub fn new() -> Topology {
        Topology::builder().build()
    }

    /// The home's address on the local link, `10.N.1.2`.
    pub fn home_ip(&self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, self.net, 1, 2))
    }

    /// The router's address as home sees it: the default gateway, `10.N.1.1`.
    pub fn gateway(&self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, self.net, 1, 1))
    }

    /// The gateway's IPv6 address, `fd77:N:1::1`.
    pub fn gateway_v6(&self) -> IpAddr {
        format!("fd77:{}:1::1", self.net)
            .parse()
            .expect("an IPv6 address")
    }

    /// The three public targets `10.N.3.1`–`3`.
    pub fn public(&self) -> [IpAddr; 3] {
        [1, 2, 3].map(|host| IpAddr::V4(Ipv4Addr::new(10, self.net, 3, host)))
    }

    /// The three public targets over IPv6, `fd77:N:3::1`–`3`.
    pub fn public_v6(&self) -> [IpAddr; 3] {
        [1, 2, 3].map(|host| {
            format!("fd77:{}:3::{host}", self.net)
                .parse()
                .expect("an IPv6 address")
        })
    }

    /// The port of the internet's TCP listener.
    pub fn listen_port(&self) -> u16 {
        self.listener
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
            .map_or(443, |address| address.port())
    }

    /// `link`'s two ends as (namespace, device), the end toward home first.
    pub fn ends(&self, link: Link) -> [(&str, &'static str); 2] {
        match link {
            Link::Local => [(&self.home, "h0"), (&self.router, "r0")],
            Link::Isp => [(&self.router, "r1"), (&self.internet, "i0")],
        }
    }

    /// Cuts `link` both ways while leaving it up (no "network unreachable" shortcut): a
    /// `blackhole` qdisc (drops every packet) on both egresses. Replaces any shaping.
    pub fn cut(&self, link: Link) {
        for (ns, dev) in self.ends(link) {
            qdisc_replace(ns, dev, &["root", "blackhole"]);
        }
    }

    /// Undoes [`Topology::cut`] (and [`Topology::shape`]): both egresses back to the device's
    /// default queue.
    pub fn restore(&self, link: Link) {
        for (ns, dev) in self.ends(link) {
            let output = Command::new("tc")
                .args(["-n", ns, "qdisc", "del", "dev", dev, "root"])
                .output()
                .expect("run tc");
            let stderr = String::from_utf8_lossy(&output.stderr);
            // Deleting the default queue (nothing was set) is refused: fine.
            assert!(
                output.status.success()
                    || stderr.contains("handle of zero")
                    || stderr.contains("Invalid handle"),
                "tc qdisc del dev {dev} in {ns}: {stderr}"
            );
        }
    }

    /// Shapes `link`'s egress away from home (home → internet traffic: `h0` for
    /// [`Link::Local`], `r1` for [`Link::Isp`]) to `rate` (`tbf rate RATE burst BURST`, e.g.
    /// `"1mbit"`, `"4k"`) in front of a queue of `packets` packets (a `pfifo` child: counted in
    /// packets, as most routers do; tbf's own byte limit would let a small probe slip into
    /// the room a full-sized packet leaves). A bulk flow fills the queue and further packets,
    /// probes among them, are dropped.
    pub fn shape(&self, link: Link, rate: &str, burst: &str, packets: u32) {
        let [(ns, dev), _] = self.ends(link);
        qdisc_replace(
            ns,
            dev,
            &[
                "root", "handle", "1:", "tbf", "rate", rate, "burst", burst, "limit", "64k",
            ],
        );
        qdisc_replace(
            ns,
            dev,
            &["parent", "1:1", "pfifo", "limit", &packets.to_string()],
        );
    }

    /// `command` run inside `ns` by `ip netns exec` (see [`exec_in`]).
    pub fn exec(&self, ns: &str, command: &Command) -> Command {
        exec_in(ns, command)
    }

    /// Starts `command` in `ns`, its output read line by line; killed when dropped.
    pub fn spawn(&self, ns: &str, command: &Command) -> Spawned {
        let name = command.get_program().to_string_lossy().into_owned();
        Spawned::start(&name, exec_in(ns, command))
    }

    /// Runs `command` in `ns` to its end, failing after `limit` (the child killed).
    pub fn output(&self, ns: &str, command: &Command, limit: Duration) -> Output {
        output_within(exec_in(ns, command), limit)
    }

    /// Sets `key` (`net.…`) to `value` in `ns`.
    pub fn sysctl(&self, ns: &str, key: &str, value: &str) {
        sysctl(ns, key, value);
    }

    /// Runs `f` on a thread whose network namespace is `ns`, and returns its result (a panic
    /// in `f` fails the caller).
    pub fn in_netns<T: Send + 'static>(
        &self,
        ns: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        run_in_netns(ns, f)
    }

    /// Runs the future `make()` builds on a current-thread tokio runtime on a thread in `ns`:
    /// sockets made by async code live in `ns`.
    pub fn block_on_in<T, F>(&self, ns: &str, make: impl FnOnce() -> F + Send + 'static) -> T
    where
        T: Send + 'static,
        F: std::future::Future<Output = T>,
    {
        self.in_netns(ns, move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime")
                .block_on(make())
        })
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if let Some((listener, accepting)) = self.listener.take() {
            // SAFETY: shutdown(2) on a descriptor `listener` owns; wakes the blocked accept.
            unsafe {
                libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR);
            }
            let _ = accepting.join();
        }
        self.relays.clear();
        for ns in [&self.home, &self.router, &self.internet] {
            kill_processes_in(ns);
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Fails, naming the fix, unless this process is root and `ip`, `tc` and `setpriv` run.
pub fn net_preflight() {
    require_root_and_tools(
        "the connectivity tests make network namespaces; run them as root (CI runs as root; \
         .ci/run runs the ignored tests)",
        &[
            ("ip", &["-V"], "iproute2"),
            ("tc", &["-V"], "iproute2"),
            ("setpriv", &["--version"], "util-linux"),
        ],
    );
}

/// `command`, run inside namespace `ns` by `ip netns exec` (which execs it: the child's pid is
/// the command's), with the same arguments, environment changes and directory.
pub fn exec_in(ns: &str, command: &Command) -> Command {
    let mut outer = Command::new("ip");
    outer
        .args(["netns", "exec", ns])
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => outer.env(key, value),
            None => outer.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        outer.current_dir(dir);
    }
    outer
}

/// `sysctl -w key=value` in namespace `ns` (through its `/proc/sys`, written by a thread in it).
fn sysctl(ns: &str, key: &str, value: &str) {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    let value = value.to_owned();
    spawn_in_netns(ns, move || {
        std::fs::write(&path, value.as_bytes()).unwrap_or_else(|err| panic!("write {path}: {err}"));
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
}

/// A listener on `[::]:port` (IPv4 too) in `ns` that accepts every connection and closes it;
/// stopped by shutting the listener down.
fn accept_and_close(ns: &str, port: u16) -> (TcpListener, JoinHandle<()>) {
    let (ready, listening) = channel();
    let accepting = spawn_in_netns(ns, move || {
        let listener = TcpListener::bind(("::", port)).expect("bind the internet's listener");
        ready
            .send(listener.try_clone().expect("clone the listener"))
            .expect("the builder waits");
        for connection in listener.incoming() {
            if connection.is_err() {
                // shutdown(2) by Drop: accept fails from now on.
                break;
            }
        }
    });
    let listener = listening
        .recv_timeout(crate::common::PATIENCE)
        .expect("the internet's listener starts");
    (listener, accepting)
}

/// A link made of two TUN devices, `dev_a` in `ns_a` and `dev_b` in `ns_b`, and two threads
/// per direction in this process: a reader stamps each packet with its due time (now + the
/// delay) and queues it, a writer hands it to the other device at that time. At most
/// [`TunRelay::QUEUE`] packets wait per direction; beyond that they are dropped, as a full
/// router queue would. Stopped (the devices deleted with their descriptors) when dropped.
struct TunRelay {
    stopping: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl TunRelay {
    const QUEUE: usize = 1000;

    fn start(a: (&str, &str), b: (&str, &str), delay: Duration) -> TunRelay {
        let a_fd = Arc::new(open_tun(a.0, a.1));
        let b_fd = Arc::new(open_tun(b.0, b.1));
        let stopping = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (from, to) in [(a_fd.clone(), b_fd.clone()), (b_fd, a_fd)] {
            let (queue, queued) = sync_channel::<(Instant, Vec<u8>)>(Self::QUEUE);
            let stop = stopping.clone();
            threads.push(std::thread::spawn(move || {
                let mut buffer = vec![0u8; 65536];
                while !stop.load(Ordering::SeqCst) {
                    if !crate::common::readable_within(&from, Duration::from_millis(50)) {
                        continue;
                    }
                    let Ok(n) = (&*from).read(&mut buffer) else {
                        continue;
                    };
                    let due = Instant::now() + delay;
                    // Full: dropped.
                    let _ = queue.try_send((due, buffer[..n].to_vec()));
                }
            }));
            let stop = stopping.clone();
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Ok((due, packet)) = queued.recv_timeout(Duration::from_millis(50)) else {
                        continue;
                    };
                    let now = Instant::now();
                    if due > now {
                        // The link's delay is what it emulates, not synchronisation.
                        std::thread::sleep(due - now);
                    }
                    let _ = (&*to).write(&packet);
                }
            }));
        }
        TunRelay { stopping, threads }
    }
}

impl Drop for TunRelay {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A TUN device `name` (layer 3, no packet information header) made in namespace `ns` by a
/// thread that entered it; the device lives as long as the returned descriptor.
fn open_tun(ns: &str, name: &str) -> std::fs::File {
    let name = name.to_owned();
    spawn_in_netns(ns, move || {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .expect("open /dev/net/tun (the kernel's tun driver)");
        // SAFETY: an all-zero ifreq is valid; the name fits (IFNAMSIZ 16, ours are short).
        let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
        for (slot, byte) in request.ifr_name.iter_mut().zip(name.bytes()) {
            *slot = byte as libc::c_char;
        }
        request.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF reads and writes the ifreq, which outlives the call.
        let done = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut request) };
        assert_eq!(
            done,
            0,
            "TUNSETIFF {name}: {}",
            std::io::Error::last_os_error()
        );
        file
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// A stream of UDP datagrams sent from a thread in a namespace until dropped: a bulk flow that
/// needs no tool and does not back off (unlike TCP, which adapts to a small queue and leaves
/// room in it for small packets).
pub struct Flood {
    stopping: Arc<AtomicBool>,
    sending: Option<JoinHandle<u64>>,
}

impl Flood {
    /// Datagrams of `size` bytes from `ns` to `to` at `bits_per_second` (each one on time, so
    /// a queue the flow overloads never stays empty for long), until dropped.
    pub fn start(ns: &str, to: SocketAddr, size: usize, bits_per_second: u64) -> Flood {
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let (started, running) = channel();
        let sending = spawn_in_netns(ns, move || {
            let bind: SocketAddr = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
                .parse()
                .expect("an address");
            let socket = std::net::UdpSocket::bind(bind).expect("bind the flood's socket");
            socket.connect(to).expect("connect the flood's socket");
            let datagram = vec![0x5a; size];
            let every = Duration::from_secs_f64(size as f64 * 8.0 / bits_per_second.max(1) as f64);
            let mut sent = 0u64;
            let mut next = Instant::now();
            let _ = started.send(());
            while !stop.load(Ordering::SeqCst) {
                // A full socket buffer or an ICMP error reported back: keep going.
                let _ = socket.send(&datagram);
                sent += 1;
                next += every;
                // Pacing the flow to its rate is the point, not synchronisation.
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            sent
        });
        running
            .recv_timeout(crate::common::PATIENCE)
            .expect("the flood starts");
        Flood {
            stopping,
            sending: Some(sending),
        }
    }

    /// Stops the flood; the number of datagrams it sent.
    pub fn stop(mut self) -> u64 {
        self.stopping.store(true, Ordering::SeqCst);
        self.sending
            .take()
            .map_or(0, |thread| thread.join().unwrap_or(0))
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(thread) = self.sending.take() {
            let _ = thread.join();
        }
    }
}
