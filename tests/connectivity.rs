//! The connectivity monitor end to end, with real packets: `serve` runs in the home namespace
//! of a home/router/internet topology (tests/common/netns.rs), probes the router (its default
//! gateway) and three public targets in the internet namespace, and the links between them are
//! cut, shaped and restored while `/api/v1/outages`, `/api/v1/latency` and `/metrics` are read
//! from inside the home namespace. Every address is inside the test's own namespaces, which are
//! deleted when the test ends, also when it fails.
//!
//! Needs root, `ip` and `tc` (iproute2) and `setpriv` (util-linux): `.ci/run` installs them and
//! runs these ignored tests; they fail, naming the fix, when something is missing.

mod common;
#[path = "common/netns.rs"]
mod netns;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::{Env, Server, eventually_within, request, signal};
use netns::{Flood, Link, Topology, exec_in};
use serde_json::Value;

const IGNORE: &str = "needs root, ip, tc, setpriv; .ci/run runs the ignored tests";
/// The probe interval of these tests: short, so a 35 s cut is many rounds.
const INTERVAL: Duration = Duration::from_secs(2);
/// The probe timeout at that interval (half of it).
const TIMEOUT: Duration = Duration::from_secs(1);
const FIXTURE: &str = "ok-1.2-no-packet-loss";

/// `serve` in `net`'s home namespace on `env`'s database, probing every [`INTERVAL`] the
/// gateway it finds in the routing table and the three public targets; the speed test waits a
/// day unless `mode` is `sleep` (a test that runs from start-up until it is stopped).
fn serve(net: &Topology, env: &Env, mode: &str) -> Server {
    let targets: Vec<String> = net.public().iter().map(IpAddr::to_string).collect();
    let delay = if mode == "sleep" { "0s" } else { "1d" };
    let mut args = vec![
        "--start-delay",
        delay,
        "--probe-interval",
        "2s",
        "--probe-target",
    ];
    let joined = targets.join(",");
    args.push(&joined);
    let command = env.serve(FIXTURE, mode, &args);
    Server::start(exec_in(&net.home, &command))
}

/// GET `path` from `server`, over the home namespace's loopback.
fn get(net: &Topology, server: &Server, path: &str) -> common::HttpResponse {
    let (address, path) = (server.address.clone(), path.to_owned());
    net.in_netns(&net.home, move || request(&address, "GET", &path))
}

fn get_json(net: &Topology, server: &Server, path: &str) -> Value {
    let response = get(net, server, path);
    assert_eq!(response.status, 200, "GET {path}: {}", response.body);
    response.json()
}

/// The outages `/api/v1/outages` lists for the last hour.
fn outages(net: &Topology, server: &Server) -> Vec<Value> {
    get_json(net, server, "/api/v1/outages")["outages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The value of the metric line starting with `series ` in `/metrics`.
fn metric(net: &Topology, server: &Server, series: &str) -> Option<f64> {
    let body = get(net, server, "/metrics").body;
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Waits until the monitor has seen a round with the line up.
fn wait_up(net: &Topology, server: &Server) {
    eventually_within(
        "internet_monitor_connectivity_up 1",
        Duration::from_secs(30),
        || (metric(net, server, "internet_monitor_connectivity_up")? == 1.0).then_some(()),
    );
}

/// Waits until an outage of `kind` is listed as ongoing, and returns it.
fn wait_ongoing(net: &Topology, server: &Server, kind: &str) -> Value {
    eventually_within(
        &format!("an ongoing {kind} outage"),
        Duration::from_secs(30),
        || {
            outages(net, server)
                .into_iter()
                .find(|outage| outage["kind"] == kind && outage["ongoing"] == true)
        },
    )
}

/// Waits until every listed outage has ended, and returns the list.
fn wait_all_ended(net: &Topology, server: &Server) -> Vec<Value> {
    eventually_within("every outage ended", Duration::from_secs(30), || {
        let list = outages(net, server);
        list.iter()
            .all(|outage| outage["ongoing"] == false)
            .then_some(list)
    })
}

/// An RFC 3339 time of an answer.
fn instant(value: &Value) -> jiff::Timestamp {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("not an RFC 3339 time: {value}"))
}

fn seconds(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

/// The scenario: the router↔internet link cut for 35 s is one `isp` outage of 35 s
/// give or take one probe interval (and the timeout of the round that straddles a change);
/// then the home↔router link cut is a `local` outage; both end when the link is back, and the
/// metrics count each once.
#[test]
#[ignore = "needs root, ip, tc, setpriv; .ci/run runs the ignored tests"]
fn a_cut_beyond_the_gateway_is_an_isp_outage_and_one_before_it_a_local_one() {
    let _ = IGNORE;
    let net = Topology::new();
    let env = Env::new();
    let mut server = serve(&net, &env, "replay");
    let started = server.wait_for_log("probing 4 targets every 2s by");
    eprintln!("{started}");
    wait_up(&net, &server);
    assert!(
        outages(&net, &server).is_empty(),
        "no outage before the cut"
    );

    let cut = Duration::from_secs(35);
    net.cut(Link::Isp);
    let from = Instant::now();
    let ongoing = wait_ongoing(&net, &server, "isp");
    assert_eq!(ongoing["end"], Value::Null);
    // The scenario's content: the line stays cut this long.
    std::thread::sleep(cut.saturating_sub(from.elapsed()));
    net.restore(Link::Isp);
    let list = wait_all_ended(&net, &server);
    assert_eq!(list.len(), 1, "one outage: {list:?}");
    let outage = &list[0];
    assert_eq!(outage["kind"], "isp", "{outage}");
    let duration = seconds(&outage["duration_seconds"]);
    let slack = (INTERVAL + TIMEOUT).as_secs_f64();
    eprintln!("35 s cut beyond the gateway: one isp outage of {duration} s");
    assert!(
        (duration - cut.as_secs_f64()).abs() <= slack,
        "a {cut:?} cut read as {duration} s (allowed ± {slack} s): {outage}"
    );
    assert_eq!(seconds(&outage["unmonitored_seconds"]), 0.0);
    // The log's fields are values a log shipper can read: the end as a time, not Rust's
    // `Some("…")`; the start-up line's method as `/api/v1/outages` names it.
    let over = server.wait_for_log("isp outage over after");
    let end = outage["end"].as_str().expect("an end");
    assert!(over.contains(&format!("end={end}")), "{over}");
    let probing = get_json(&net, &server, "/api/v1/outages")["probing"].clone();
    let method = probing["method"].as_str().expect("a method");
    assert!(started.contains(&format!("method={method} ")), "{started}");
    assert_eq!(
        metric(
            &net,
            &server,
            "internet_monitor_outages_total{kind=\"isp\"}"
        ),
        Some(1.0)
    );
    let counted = metric(
        &net,
        &server,
        "internet_monitor_outage_seconds_total{kind=\"isp\"}",
    )
    .expect("outage seconds counted");
    assert!(
        (counted - duration).abs() <= slack,
        "outage_seconds_total {counted} against the outage's {duration} s"
    );
    wait_up(&net, &server);

    let cut = Duration::from_secs(10);
    net.cut(Link::Local);
    let from = Instant::now();
    wait_ongoing(&net, &server, "local");
    // The scenario's content: the line stays cut this long.
    std::thread::sleep(cut.saturating_sub(from.elapsed()));
    net.restore(Link::Local);
    let list = wait_all_ended(&net, &server);
    assert_eq!(list.len(), 2, "the isp outage and a local one: {list:?}");
    let local = &list[1];
    assert_eq!(local["kind"], "local", "{local}");
    let duration = seconds(&local["duration_seconds"]);
    assert!(
        (duration - cut.as_secs_f64()).abs() <= slack,
        "a {cut:?} cut before the gateway read as {duration} s: {local}"
    );
    // Availability counts only the isp outage against the line.
    let answer = get_json(&net, &server, "/api/v1/outages");
    let monitored = seconds(&answer["monitored_seconds"]);
    let availability = seconds(&answer["availability"]);
    let isp_down = seconds(&list[0]["down_seconds"]);
    let expected = 1.0 - isp_down / monitored;
    assert!(
        (availability - expected).abs() < 0.01,
        "availability {availability}, expected about {expected} ({isp_down} s isp down of \
         {monitored} s monitored)"
    );
    server.assert_clean_exit();
}

/// A restart in the middle of an outage neither splits it nor counts the time the monitor was
/// off: after SIGKILL and a start a few seconds later the outage goes on (`restarts` 1), the
/// gap is `unmonitored` inside it and in the list of unmonitored intervals.
#[test]
#[ignore = "needs root, ip, tc, setpriv; .ci/run runs the ignored tests"]
fn a_restart_during_an_outage_keeps_one_outage_with_an_unmonitored_gap() {
    let net = Topology::new();
    let env = Env::new();
    let mut server = serve(&net, &env, "replay");
    wait_up(&net, &server);
    net.cut(Link::Isp);
    let before = wait_ongoing(&net, &server, "isp");
    // The outage was stored as it opened, with the run's end (its heartbeat) moved to that
    // round: what a SIGKILL leaves behind.
    signal(server.pid(), libc::SIGKILL);
    let _ = server.wait(Duration::from_secs(10));
    // The gap: the monitor is off for a few seconds while the line stays cut.
    std::thread::sleep(Duration::from_secs(5));
    let mut server = serve(&net, &env, "replay");
    server.wait_for_log("goes on after the restart");
    net.restore(Link::Isp);
    let list = wait_all_ended(&net, &server);
    assert_eq!(list.len(), 1, "one outage across the restart: {list:?}");
    let outage = &list[0];
    assert_eq!(outage["start"], before["start"], "{outage}");
    assert_eq!(outage["restarts"], 1, "{outage}");
    let unmonitored = seconds(&outage["unmonitored_seconds"]);
    assert!(
        unmonitored >= 5.0,
        "the time the monitor was off ({unmonitored} s) is unmonitored: {outage}"
    );
    let duration = seconds(&outage["duration_seconds"]);
    let down = seconds(&outage["down_seconds"]);
    assert!(
        (duration - unmonitored - down).abs() < 0.01,
        "down = duration − unmonitored: {outage}"
    );
    // The default window (a week) also counts the time before the first run as unmonitored;
    // the restart's gap is the one inside the outage.
    let answer = get_json(&net, &server, "/api/v1/outages");
    let gaps = answer["unmonitored"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let (start, end) = (instant(&outage["start"]), instant(&outage["end"]));
    let inside: Vec<&Value> = gaps
        .iter()
        .filter(|gap| instant(&gap["start"]) > start && instant(&gap["end"]) < end)
        .collect();
    assert_eq!(
        inside.len(),
        1,
        "one unmonitored gap inside the outage: {answer}"
    );
    server.assert_clean_exit();
}

/// The sum of `sent` of the target at `address` with `kind` in `/api/v1/latency` by minute.
fn stored_sent(net: &Topology, server: &Server, address: &str, kind: &str) -> Option<u64> {
    let answer = get_json(net, server, "/api/v1/latency?from=1h&step=1m");
    let target = answer["targets"]
        .as_array()?
        .iter()
        .find(|target| target["address"] == address && target["kind"] == kind)?;
    Some(
        target["sent"]
            .as_array()?
            .iter()
            .filter_map(Value::as_u64)
            .sum(),
    )
}

/// The default gateway moves (a DHCP lease, another router): the monitor finds the new one
/// at its next lookup (every 10 s), and every probe the old one was sent stays stored — its open
/// minute was dropped with it.
#[test]
#[ignore = "needs root, ip, tc, setpriv; .ci/run runs the ignored tests"]
fn a_gateway_that_changes_keeps_every_probe_of_the_old_one() {
    let net = Topology::new();
    let second = format!("10.{}.1.3", net.net);
    let run_ip = |ns: &str, args: &[&str]| {
        let status = std::process::Command::new("ip")
            .args(["-n", ns])
            .args(args)
            .status()
            .expect("run ip");
        assert!(status.success(), "ip -n {ns} {args:?}");
    };
    run_ip(
        &net.router,
        &["addr", "add", &format!("{second}/24"), "dev", "r0"],
    );
    let env = Env::new();
    let mut server = serve(&net, &env, "replay");
    wait_up(&net, &server);
    let old = net.gateway().to_string();
    run_ip(&net.home, &["route", "replace", "default", "via", &second]);
    let new_series =
        format!("internet_monitor_probes_sent_total{{kind=\"gateway\",target=\"{second}\"}}");
    eventually_within("the new gateway probed", Duration::from_secs(40), || {
        metric(&net, &server, &new_series)
    });
    let old_series =
        format!("internet_monitor_probes_sent_total{{kind=\"gateway\",target=\"{old}\"}}");
    let sent = metric(&net, &server, &old_series).expect("the old gateway's counter");
    assert!(sent >= 2.0, "{old_series} {sent}");
    // The old gateway is no longer probed: its counter stays, and the store must hold all of
    // it once the next round has written (its last minute used to be dropped).
    let stored = eventually_within(
        "every probe of the old gateway stored",
        Duration::from_secs(20),
        || {
            let stored = stored_sent(&net, &server, &old, "gateway")?;
            (stored as f64 == sent).then_some(stored)
        },
    );
    assert_eq!(metric(&net, &server, &old_series), Some(sent));
    assert!(stored > 0);
    server.assert_clean_exit();
}

/// A speed test running marks the minute `under_load`, and a bulk flow through a small `tbf`
/// queue toward the internet shows as loss in the per-minute figures and `/metrics`.
#[test]
#[ignore = "needs root, ip, tc, setpriv; .ci/run runs the ignored tests"]
fn load_is_marked_and_loss_behind_a_full_queue_is_reported() {
    let net = Topology::new();
    let env = Env::new();
    // The fake CLI sleeps: a test runs from start-up on.
    let mut server = serve(&net, &env, "sleep");
    server.wait_for_log("probing 4 targets");
    wait_up(&net, &server);
    net.shape(Link::Isp, "1mbit", "4k", 5);
    let public = net.public()[0];
    let flood = Flood::start(&net.home, SocketAddr::new(public, 9), 1000, 20_000_000);
    let row = eventually_within(
        "a stored minute with loss toward the public targets",
        Duration::from_secs(150),
        || {
            let answer = get_json(&net, &server, "/api/v1/latency?step=1m");
            let targets = answer["targets"].as_array()?.clone();
            let public = targets.iter().find(|target| {
                target["kind"] == "public"
                    && target["lost"]
                        .as_array()
                        .is_some_and(|lost| lost.iter().any(|n| n.as_u64() > Some(0)))
            })?;
            Some(public.clone())
        },
    );
    let datagrams = flood.stop();
    eprintln!("behind a full queue ({datagrams} datagrams): {row}");
    let under_load = row["under_load"].as_array().cloned().unwrap_or_default();
    assert!(
        under_load.iter().any(|value| value == true),
        "the minutes of the running speed test are under load: {row}"
    );
    let loss = metric(
        &net,
        &server,
        &format!("internet_monitor_probe_loss_ratio{{kind=\"public\",target=\"{public}\"}}"),
    );
    eprintln!("loss ratio of {public} in the last minute: {loss:?}");
    assert!(
        get(&net, &server, "/metrics")
            .body
            .contains("internet_monitor_probes_lost_total{kind=\"public\""),
        "lost probes are counted"
    );
    server.assert_clean_exit();
}

/// A gateway that drops the probes while the line works (here an address on the home link
/// that nobody holds) would make every real outage read as `local`: after 30 rounds of public
/// answers without its own, the log says so, naming the gateway and what to do.
#[test]
#[ignore = "needs root, ip, tc, setpriv; .ci/run runs the ignored tests"]
fn a_gateway_that_never_answers_while_the_line_works_is_reported() {
    let net = Topology::new();
    let env = Env::new();
    let silent = format!("10.{}.1.9", net.net);
    let targets: Vec<String> = net.public().iter().map(IpAddr::to_string).collect();
    let joined = targets.join(",");
    let command = env.serve(
        FIXTURE,
        "replay",
        &[
            "--start-delay",
            "1d",
            "--probe-interval",
            "1s",
            "--probe-gateway",
            &silent,
            "--probe-target",
            &joined,
        ],
    );
    let mut server = Server::start(exec_in(&net.home, &command));
    wait_up(&net, &server);
    let line = server
        .next_log_within("has not answered", Duration::from_secs(90))
        .unwrap_or_else(|| {
            panic!(
                "no warning about the silent gateway:\n{}",
                server.seen.join("\n")
            )
        });
    assert!(line.contains(&silent), "{line}");
    assert!(line.contains("would read as `local`"), "{line}");
    assert!(
        outages(&net, &server).is_empty(),
        "the line was up throughout"
    );
    server.assert_clean_exit();
}
