//! Pages on other sites: they may read the original app's public figures, but never start a
//! test nor read the client's addresses. First with raw requests shaped as browsers send
//! them, then with a real headless Chromium loading a hostile page from another origin.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use common::{Env, HttpResponse, Server, try_request_with};
use serde_json::{Value, json};

/// The client's addresses in the imported history.
const ADDRESSES: [&str; 3] = ["192.0.2.3", "203.0.113.3", "00:00:5E:00:53:03"];
const REFUSED: &str = "refused a request that could come from another site";

fn with_client(time: &str) -> Value {
    json!({
        "time": time, "outcome": "success", "reason": null, "message": null, "trigger": "schedule",
        "duration_seconds": 20.5, "download_bytes_per_second": 1e6,
        "upload_bytes_per_second": 2e6, "ping_seconds": 0.0125, "jitter_seconds": 0.0005,
        "packet_loss_ratio": 0.0, "download_latency_seconds": null, "upload_latency_seconds": null,
        "downloaded_bytes": 1000, "uploaded_bytes": 500,
        "server": {"id": 7, "name": "Example", "location": "Here", "country": "There", "host": "st.example.net"},
        "isp": "Example ISP", "result_url": null,
        "client": {"internal_ip": ADDRESSES[0], "external_ip": ADDRESSES[1], "mac": ADDRESSES[2]}
    })
}

/// A server with a stored history holding the client's addresses, the run endpoint on and no
/// gap between manual runs: only the cross-site checks stand between a page and a test.
fn serve(env: &Env) -> Server {
    serve_with(env, &[])
}

/// [`serve`] with `extra` flags.
fn serve_with(env: &Env, extra: &[&str]) -> Server {
    let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    env.import(&[with_client(&now)]);
    let mut flags = vec![
        "--store-ip",
        "--enable-run-endpoint",
        "--min-manual-gap",
        "0s",
        "--start-delay",
        "1h",
    ];
    flags.extend(extra);
    Server::start(env.serve("ok-1.2-with-loaded-latency", "replay", &flags))
}

fn send(server: &Server, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    try_request_with(&server.address, method, path, headers).expect("an HTTP response")
}

fn runs(server: &Server) -> f64 {
    server
        .get("/metrics")
        .body
        .lines()
        .filter(|line| line.starts_with("speedtest_runs_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn state_changing_requests_from_other_sites_are_refused_and_say_why() {
    let env = Env::new();
    let mut server = serve(&env);
    let foreign = "http://127.0.0.2:8000";
    for (headers, status, error) in [
        (
            vec![("Content-Type", "text/plain")],
            415,
            "a request that changes state needs Content-Type: application/json (a page on \
             another site cannot send it without asking first), not \"text/plain\"",
        ),
        (
            vec![],
            415,
            "a request that changes state needs Content-Type: application/json (a page on \
             another site cannot send it without asking first), not none",
        ),
        (
            vec![("Origin", foreign), ("Content-Type", "application/json")],
            403,
            "refused a cross-site request: Origin \"http://127.0.0.2:8000\" is not this \
             server's origin (Host \"ADDRESS\")",
        ),
        (
            vec![("Origin", "null"), ("Content-Type", "application/json")],
            403,
            "refused a cross-site request: Origin \"null\" is not this server's origin (Host \
             \"ADDRESS\")",
        ),
        (
            vec![
                ("Sec-Fetch-Site", "same-site"),
                ("Content-Type", "application/json"),
            ],
            403,
            "refused a cross-site request: Sec-Fetch-Site is \"same-site\"; only a page of \
             this server's own origin may change state",
        ),
    ] {
        let response = send(&server, "POST", "/api/v1/run", &headers);
        assert_eq!(response.status, status, "{headers:?}: {}", response.body);
        assert_eq!(
            response.json(),
            json!({"error": error.replace("ADDRESS", &server.address)}),
            "{headers:?}"
        );
        assert_eq!(response.header("access-control-allow-origin"), None);
    }
    server.wait_for_logs(REFUSED, 5);
    // A preflight from another origin is refused, so a browser never sends the request.
    let preflight = send(
        &server,
        "OPTIONS",
        "/api/v1/run",
        &[
            ("Origin", foreign),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
    );
    assert_eq!(preflight.status, 403);
    assert!(
        preflight.json()["error"]
            .as_str()
            .unwrap()
            .contains(foreign)
    );
    assert_eq!(preflight.header("access-control-allow-origin"), None);
    assert_eq!(preflight.header("access-control-allow-methods"), None);
    let options = send(&server, "OPTIONS", "/api/v1/run", &[]);
    assert_eq!(options.status, 204);
    assert_eq!(options.header("allow"), Some("POST, OPTIONS"));
    assert_eq!(runs(&server), 0.0, "no test was started");

    // The server's own page, and a script (no Origin), with the content type: a test starts.
    let own = format!("http://{}", server.address);
    let response = send(
        &server,
        "POST",
        "/api/v1/run",
        &[
            ("Origin", &own),
            ("Sec-Fetch-Site", "same-origin"),
            ("Content-Type", "application/json; charset=utf-8"),
        ],
    );
    assert_eq!(response.status, 202, "{}", response.body);
    server.wait_for_logs("test succeeded", 1);
    let response = common::request(&server.address, "POST", "/api/v1/run");
    assert_eq!(response.status, 202, "{}", response.body);
    server.wait_for_logs("test succeeded", 2);
    assert_eq!(runs(&server), 2.0);
    server.assert_clean_exit();
}

#[test]
fn a_page_on_a_rebound_name_can_neither_read_the_history_nor_start_a_test() {
    // DNS rebinding: evil.example first served the attacker's page, then resolves here, so the
    // browser takes this server for the page's own origin and sends what it sends to its own.
    let env = Env::new();
    let mut server = serve_with(&env, &["--allowed-host", "Monitor.Example"]);
    let port = server.address.rsplit(':').next().unwrap().to_owned();
    let rebound = format!("evil.example:{port}");
    let origin = format!("http://{rebound}");
    let as_own_page = |host: &str| {
        vec![
            ("Host", host.to_owned()),
            ("Sec-Fetch-Site", "same-origin".to_owned()),
        ]
    };
    let mut post = as_own_page(&rebound);
    post.push(("Origin", origin.clone()));
    post.push(("Content-Type", "application/json".to_owned()));
    for (method, path, headers) in [
        ("GET", "/api/v1/samples", as_own_page(&rebound)),
        ("GET", "/api/v1/samples.csv", as_own_page(&rebound)),
        ("POST", "/api/v1/run", post),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = send(&server, method, path, &headers);
        assert_eq!(response.status, 403, "{method} {path}: {}", response.body);
        let error = response.json()["error"].as_str().unwrap().to_owned();
        assert!(
            error.contains(&format!("reached this server as \"{rebound}\""))
                && error.ends_with("start it with --allowed-host evil.example")
                && !error.contains("  "),
            "{error}"
        );
        for address in ADDRESSES {
            assert!(!response.body.contains(address), "{path} leaked {address}");
        }
    }
    server.wait_for_log(REFUSED);
    assert_eq!(runs(&server), 0.0, "no test started");

    // The same page by an address, localhost or an --allowed-host name reads the history; so
    // does a script (no browser headers) or an address typed by hand, by any name.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("monitor.example:{port}"),
    ] {
        let headers = as_own_page(&host);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = send(&server, "GET", "/api/v1/samples", &headers);
        assert_eq!(response.status, 200, "{host}: {}", response.body);
    }
    for headers in [
        vec![("Host", rebound.as_str())],
        vec![("Host", rebound.as_str()), ("Sec-Fetch-Site", "none")],
    ] {
        let response = send(&server, "GET", "/api/v1/samples", &headers);
        assert_eq!(response.status, 200, "{headers:?}: {}", response.body);
    }
    // The public figures stay public by any name.
    let headers = as_own_page(&rebound);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(send(&server, "GET", "/latest", &headers).status, 200);
    server.assert_clean_exit();
}

#[test]
fn only_answers_without_addresses_are_readable_from_any_origin() {
    let env = Env::new();
    let server = serve(&env);
    for path in [
        "/latest",
        "/last-day",
        "/graph",
        "/api/v1/summary",
        "/healthz",
    ] {
        let response = server.get(path);
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(
            response.header("access-control-allow-origin"),
            Some("*"),
            "{path}"
        );
        for address in ADDRESSES {
            assert!(!response.body.contains(address), "{address} in {path}");
        }
    }
    for path in [
        "/api/v1/samples",
        "/api/v1/samples.csv",
        "/api/v1/samples?limit=0",
        "/api/v1/samples.csv?limit=0",
    ] {
        let response = server.get(path);
        assert_eq!(
            response.header("access-control-allow-origin"),
            None,
            "{path}"
        );
    }
    let samples = server.get("/api/v1/samples");
    assert!(
        samples.body.contains(ADDRESSES[1]),
        "kept and shown to the server's own origin: {}",
        samples.body
    );
}

/// The hostile page: each attempt in turn, its outcome written into the DOM for --dump-dom.
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>win a faster line</title></head>
<body><pre id="results">running</pre>
<script>
const target = "http://MONITOR";
const results = {};
async function attempt(name, run) {
  try { results[name] = await run(); } catch (error) { results[name] = "refused: " + error.name; }
}
function formPost() {
  return new Promise((resolve) => {
    const frame = document.createElement("iframe");
    frame.name = "sink";
    document.body.appendChild(frame);
    frame.onload = () => resolve("submitted");
    setTimeout(() => resolve("submitted, no load event"), 3000);
    const form = document.createElement("form");
    form.method = "POST";
    form.action = target + "/api/v1/run";
    form.enctype = "text/plain";
    form.target = "sink";
    const field = document.createElement("input");
    field.name = "a";
    field.value = "b";
    form.appendChild(field);
    document.body.appendChild(form);
    form.submit();
  });
}
(async () => {
  await attempt("text_plain_post", async () => {
    const response = await fetch(target + "/api/v1/run", {
      method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: "{}"});
    return "sent: " + response.type;
  });
  await attempt("form_post", formPost);
  await attempt("json_post", async () => {
    const response = await fetch(target + "/api/v1/run", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"});
    return "status " + response.status;
  });
  await attempt("samples", async () => (await fetch(target + "/api/v1/samples")).text());
  await attempt("samples_csv", async () => (await fetch(target + "/api/v1/samples.csv")).text());
  await attempt("latest", async () => (await fetch(target + "/latest")).text());
  document.getElementById("results").textContent = "RESULTS" + JSON.stringify(results) + "END";
})();
</script></body></html>
"#;

/// Serves `page` to every request on `ip`, port chosen by the system, from a thread.
fn serve_page(ip: &str, page: String) -> String {
    let listener = TcpListener::bind((ip, 0)).expect("bind the hostile page's origin");
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            // The request's head, up to the empty line.
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    address
}

/// Loads `url` in a headless Chromium and returns the DOM after the page's scripts ran.
fn chromium_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = common::chromium(profile.path())
        .args(["--virtual-time-budget=10000", "--dump-dom"])
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| {
            panic!(
                "cannot start chromium ({err}): install Debian's chromium package \
                 (apt-get install chromium); .ci/run does"
            )
        });
    // The DOM comes on stdout, which ends when Chromium (and every process it started) exits.
    let mut stdout = child.stdout.take().unwrap();
    let (sender, dom) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut dom = String::new();
        let _ = stdout.read_to_string(&mut dom);
        let _ = sender.send(dom);
    });
    match dom.recv_timeout(Duration::from_secs(25)) {
        Ok(dom) => {
            let _ = child.wait();
            dom
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish {url} within 25 s");
        }
    }
}

/// The page's results, as it wrote them into the DOM.
fn results(dom: &str) -> Value {
    let start = dom.find("RESULTS").map(|at| at + "RESULTS".len());
    let end = dom.find("END</pre>");
    match (start, end) {
        (Some(start), Some(end)) => serde_json::from_str(&dom[start..end])
            .unwrap_or_else(|err| panic!("page results are not JSON ({err}): {dom}")),
        _ => panic!("the page did not finish:\n{dom}"),
    }
}

#[test]
#[ignore = "needs chromium (Debian package chromium); .ci/run installs it and runs ignored tests"]
fn a_hostile_page_in_chromium_cannot_start_a_test_or_read_addresses() {
    let env = Env::new();
    let mut server = serve(&env);
    let page = PAGE.replace("MONITOR", &server.address);
    // Another site (127.0.0.2), and the same site on another port (127.0.0.1): both are
    // other origins.
    let origins = [
        serve_page("127.0.0.2", page.clone()),
        serve_page("127.0.0.1", page),
    ];
    for (round, origin) in origins.iter().enumerate() {
        let dom = chromium_dom(&format!("http://{origin}/"));
        let results = results(&dom);
        eprintln!("{origin}: {results}");
        for address in ADDRESSES {
            assert!(
                !dom.contains(address),
                "{address} leaked to {origin}: {results}"
            );
        }
        for refused in ["json_post", "samples", "samples_csv"] {
            assert_eq!(
                results[refused], "refused: TypeError",
                "{refused} from {origin}: {results}"
            );
        }
        let latest = results["latest"].as_str().unwrap_or_default();
        assert!(
            latest.contains("\"download\""),
            "the original's /latest stays readable from {origin}: {results}"
        );
        // The simple POST, the form and the preflight each reached the server and were
        // refused there.
        let refusals = server.wait_for_logs(REFUSED, 3 * (round + 1));
        assert!(
            refusals
                .iter()
                .any(|line| line.contains("method=OPTIONS") && line.contains(origin.as_str())),
            "{refusals:#?}"
        );
    }
    assert_eq!(runs(&server), 0.0, "no test was started");
    assert!(!env.path("pids").exists(), "the CLI never ran");
    // The same request from a script is accepted: the page was refused for where it came
    // from, not because tests could not start.
    let response = common::request(&server.address, "POST", "/api/v1/run");
    assert_eq!(response.status, 202, "{}", response.body);
    server.wait_for_logs("test succeeded", 1);
    assert_eq!(runs(&server), 1.0);
    let samples = server.get("/api/v1/samples").json();
    assert_eq!(samples["samples"].as_array().unwrap().len(), 2);
    server.assert_clean_exit();
}

#[test]
fn a_flood_of_refused_requests_cannot_flood_the_log() {
    let env = Env::new();
    let mut server = serve(&env);
    let long_origin = format!("http://{}.example", "x".repeat(4000));
    for _ in 0..100 {
        let response = send(&server, "OPTIONS", "/latest", &[("Origin", &long_origin)]);
        assert_eq!(response.status, 403);
    }
    let logged = server.wait_for_logs(REFUSED, 10);
    assert!(
        logged.iter().all(|line| line.len() < 1000),
        "a header of kilobytes is clipped in the log"
    );
    assert_eq!(
        server.next_log_within(REFUSED, Duration::from_millis(500)),
        None,
        "at most 10 lines a minute; the rest are counted in the next one"
    );
    server.assert_clean_exit();
}
