//! The dashboard at `/` in a real browser: Debian's headless Chromium, driven by
//! playwright-core (`tools/browser/dashboard.mjs`), against `serve` loaded with a year of
//! 30-minute runs, failures, a gap and a plan; an empty store; and a store of hostile text.
//!
//! The driver reports what it saw as one JSON document; this file judges it, collecting every
//! problem before failing, so one run shows all that is wrong. Screenshots land in
//! `target/test-artifacts/`; `UPDATE_SCREENSHOTS=1` also copies them to `docs/`.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Env, Server};
use serde_json::{Value, json};

#[path = "../benches/common/rng.rs"]
mod rng;
use rng::Rng;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long the whole browser session may take before the test kills it.
const DRIVER_LIMIT: Duration = Duration::from_secs(150);
/// The result link the fake CLI's `ok-1.2-pretty` fixture reports: how the run-now flow's new
/// row is recognised.
const NEW_RUN: &str = "8dfa2bdc-d6ea-4ac0-b041-5d0dc91b6b7c";
const STEP_MS: i64 = 30 * 60 * 1000;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Hostile text from the network: it must show as these characters, never run.
const XSS_SERVER: &str = r#"<img src=x onerror="window.__xss=1">"#;
const XSS_LOCATION: &str = "<script>window.__xss=2</script>";
const XSS_ISP: &str = r#"<img src=x onerror="window.__xss=3"><script>window.__xss=4</script>"#;
const XSS_MESSAGE: &str =
    r#"Cannot open socket <img src=x onerror="window.__xss=5"><script>window.__xss=6</script>"#;

const FIX: &str = "run `npm ci --prefix tools/browser --no-audit --no-fund` (Node.js 20+) and \
                   install Debian's chromium (apt-get install chromium); .ci/run does both";

/// The test's helpers on the shared splitmix64 generator: the same year every run.
impl Rng {
    /// Uniform in `[low, high)`.
    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Roughly normal (the sum of four uniforms), mean `mean`, standard deviation `sd`.
    fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let sum: f64 = (0..4).map(|_| self.unit()).sum();
        mean + (sum - 2.0) / (4.0f64 / 12.0).sqrt() * sd
    }
}

fn rfc3339(ms: i64) -> String {
    let time = jiff::Timestamp::from_millisecond(ms).expect("a time in jiff's range");
    format!("{time:.3}")
}

fn parse_ms(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>()
        .unwrap_or_else(|err| panic!("not RFC 3339 ({err}): {text:?}"))
        .as_millisecond()
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// A failed run in the generated data.
#[derive(Clone, Debug)]
struct Failure {
    ms: i64,
    reason: &'static str,
    message: String,
}

const FAILURES: [(&str, &str); 6] = [
    (
        "no_connectivity",
        "Cannot open socket: Timeout occurred in connect.",
    ),
    (
        "no_connectivity",
        "Configuration - Couldn't resolve host name (HostNotFoundException)",
    ),
    ("timeout", "the test did not finish within 2m"),
    (
        "rate_limited",
        "Limit reached: too many tests in a short time",
    ),
    (
        "exit",
        "Configuration - Could not retrieve or read configuration (ConfigurationError)",
    ),
    (
        "no_connectivity",
        "Error: [0] Cannot read: Connection reset",
    ),
];

fn server(id: u64, name: &str, location: &str) -> Value {
    json!({"id": id, "name": name, "location": location, "country": "United Kingdom",
           "host": format!("speedtest{id}.example.net")})
}

fn success(ms: i64, rng: &mut Rng, slow: f64, server: &Value, isp: &str) -> Value {
    // A line sold as 100/20 Mbit/s that delivers a little more, but less in the evening.
    let down = rng.normal(108.0e6, 4.0e6) * (1.0 - slow) / 8.0;
    let up = rng.normal(21.5e6, 0.8e6) * (1.0 - slow / 3.0) / 8.0;
    let ping = rng.normal(0.0092, 0.0008).max(0.003) * (1.0 + slow);
    let (down_s, up_s) = (rng.between(9.0, 12.0), rng.between(8.0, 11.0));
    json!({
        "time": rfc3339(ms), "outcome": "success", "reason": null, "message": null,
        "trigger": "schedule", "duration_seconds": (rng.between(20.0, 30.0) * 1000.0).round() / 1000.0,
        "download_bytes_per_second": down.round(), "upload_bytes_per_second": up.round(),
        "ping_seconds": (ping * 1e6).round() / 1e6,
        "jitter_seconds": (rng.normal(0.0011, 0.0004).abs() * 1e6).round() / 1e6,
        "packet_loss_ratio": 0.0,
        "download_latency_seconds": ((ping + rng.between(0.012, 0.040) * (1.0 + 2.0 * slow)) * 1e6).round() / 1e6,
        "upload_latency_seconds": ((ping + rng.between(0.008, 0.030)) * 1e6).round() / 1e6,
        "downloaded_bytes": (down * down_s).round() as u64, "uploaded_bytes": (up * up_s).round() as u64,
        "server": server, "isp": isp,
        "result_url": format!("https://www.speedtest.net/result/c/{:08x}-0000-4000-8000-{:012x}",
                              rng.next() as u32, rng.next() & 0xFFFF_FFFF_FFFF),
    })
}

fn failure(ms: i64, reason: &str, message: &str, rng: &mut Rng) -> Value {
    json!({
        "time": rfc3339(ms), "outcome": "failure", "reason": reason, "message": message,
        "trigger": "schedule", "duration_seconds": (rng.between(0.3, 8.0) * 1000.0).round() / 1000.0,
        "download_bytes_per_second": null, "upload_bytes_per_second": null, "ping_seconds": null,
        "jitter_seconds": null, "packet_loss_ratio": null, "download_latency_seconds": null,
        "upload_latency_seconds": null, "downloaded_bytes": null, "uploaded_bytes": null,
        "server": null, "isp": null, "result_url": null,
    })
}

/// How much slower the line is at `ms` (0 none, up to ~0.4): evenings, worse at weekends.
fn evening_dip(ms: i64) -> f64 {
    let hour = (ms.rem_euclid(DAY_MS)) as f64 / 3_600_000.0;
    let weekday = (ms.div_euclid(DAY_MS) + 3).rem_euclid(7); // 0 = Monday (1970-01-01 was a Thursday)
    let peak = (-(hour - 21.0).powi(2) / 4.0).exp() + (-(hour + 3.0).powi(2) / 4.0).exp();
    peak * if weekday >= 5 { 0.42 } else { 0.3 }
}

/// A year of 30-minute runs ending a few minutes ago: evening dips, about 2.5 % failures with
/// several reasons (and a night-time outage of consecutive failures), and five hours three days
/// ago in which nothing ran. Returns the lines to import and the failures among them.
fn a_year(now: i64) -> (Vec<Value>, Vec<Failure>) {
    let mut rng = Rng(20_261_130);
    let servers = [
        server(57318, "Zzoomm Plc", "Slough"),
        server(30690, "Community Fibre", "London"),
    ];
    let last = (now - 5 * 60_000).div_euclid(STEP_MS) * STEP_MS;
    let count = 365 * 48;
    let gap = (now - 3 * DAY_MS - 5 * 3_600_000)..(now - 3 * DAY_MS);
    let outage_start = (now - 12 * DAY_MS).div_euclid(DAY_MS) * DAY_MS + 2 * 3_600_000;
    let outage = outage_start..outage_start + 4 * STEP_MS;
    let mut lines = Vec::with_capacity(count);
    let mut failures = Vec::new();
    for i in (0..count as i64).rev() {
        let slot = last - i * STEP_MS;
        if gap.contains(&slot) {
            continue;
        }
        // The scheduler starts a little after the slot.
        let ms = slot + (rng.between(0.5, 20.0) * 1000.0) as i64;
        let fails = outage.contains(&slot) || (i > 3 && rng.unit() < 0.025);
        if fails {
            let (reason, message) = if outage.contains(&slot) {
                FAILURES[0]
            } else {
                FAILURES[(rng.next() % FAILURES.len() as u64) as usize]
            };
            lines.push(failure(ms, reason, message, &mut rng));
            failures.push(Failure {
                ms,
                reason,
                message: message.to_owned(),
            });
        } else {
            let server = &servers[usize::from(rng.unit() >= 0.9)];
            lines.push(success(
                ms,
                &mut rng,
                evening_dip(ms),
                server,
                "Giganet Limited",
            ));
        }
    }
    (lines, failures)
}

/// Four days of runs whose server, location, ISP and failure message are HTML and script.
fn hostile(now: i64) -> Vec<Value> {
    let mut rng = Rng(7);
    let last = (now - 5 * 60_000).div_euclid(STEP_MS) * STEP_MS;
    let hostile_server = json!({"id": 1, "name": XSS_SERVER, "location": XSS_LOCATION,
                                "country": XSS_LOCATION, "host": "xss.example.net"});
    (0..4 * 48)
        .rev()
        .map(|i| {
            let ms = last - i * STEP_MS + 3_000;
            if i == 5 || i == 50 {
                failure(ms, "no_connectivity", XSS_MESSAGE, &mut rng)
            } else {
                success(ms, &mut rng, evening_dip(ms), &hostile_server, XSS_ISP)
            }
        })
        .collect()
}

fn driver_ready() -> PathBuf {
    let modules = Path::new(ROOT).join("tools/browser/node_modules/playwright-core");
    assert!(
        modules.join("package.json").exists(),
        "{} is missing: {FIX}",
        modules.display()
    );
    assert!(Path::new(CHROMIUM).exists(), "{CHROMIUM} is missing: {FIX}");
    Path::new(ROOT).join("tools/browser/dashboard.mjs")
}

/// Runs the driver and returns its JSON report; fails with its stderr if it reports none.
fn drive(args: &[&str]) -> Value {
    let driver = driver_ready();
    let mut child = Command::new("node")
        .arg(&driver)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start node ({err}): {FIX}"));
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let Some(status) = common::wait_within(&mut child, DRIVER_LIMIT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "the browser driver did not finish within {DRIVER_LIMIT:?}; stderr:\n{}",
            err.join().unwrap_or_default()
        );
    };
    let (stdout, stderr) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    eprintln!("{stderr}");
    assert!(
        status.success(),
        "the driver failed ({status}): {stderr}\n{FIX}"
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|err| panic!("the driver printed no JSON ({err}): {stdout}\n{stderr}"))
}

fn artifacts() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp: the artifacts go beside it.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .to_path_buf();
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
    dir
}

/// Lowercase, `_` as a space: `no_connectivity` and "No connectivity" compare equal.
fn loose(text: &str) -> String {
    text.to_lowercase().replace('_', " ")
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Collects what is wrong; the test fails once, at the end, listing all of it.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    /// Notes `what` (cut to 800 bytes: the whole report is in a file) unless `ok`.
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            let mut what = what();
            if what.len() > 800 {
                let mut end = 800;
                while !what.is_char_boundary(end) {
                    end -= 1;
                }
                what.truncate(end);
                what.push_str(" …");
            }
            self.0.push(what);
        }
    }

    /// A step the driver could not finish is a problem; returns whether it finished.
    fn finished(&mut self, report: &Value, step: &str) -> bool {
        match &report[step] {
            Value::Null => {
                self.0.push(format!("{step}: not run"));
                false
            }
            value if value["error"].is_string() => {
                self.0.push(format!("{step}: {}", text(&value["error"])));
                false
            }
            _ => true,
        }
    }
}

/// The span of a series request, in ms, from its `from` and `to` query values (RFC 3339).
fn span(request: &Value) -> Option<i64> {
    let from = request["from"].as_str()?;
    let to = request["to"].as_str()?;
    let (from, to) = (
        from.parse::<jiff::Timestamp>().ok()?,
        to.parse::<jiff::Timestamp>().ok()?,
    );
    Some(to.as_millisecond() - from.as_millisecond())
}

fn check_range(problems: &mut Problems, report: &Value, step: &str, key: &str, days: (i64, i64)) {
    if !problems.finished(report, step) {
        return;
    }
    let seen = &report[step];
    problems.check(seen["drawn"] == key, || {
        format!("{step}: drawn is {}, not {key}", seen["drawn"])
    });
    problems.check(text(&seen["url"]).contains(&format!("range={key}")), || {
        format!("{step}: the URL does not keep the range: {}", seen["url"])
    });
    problems.check(seen["pressed"] == "true", || {
        format!(
            "{step}: [data-range={key}] has aria-pressed={}",
            seen["pressed"]
        )
    });
    let spans: Vec<i64> = seen["series_requests"]
        .as_array()
        .map(|requests| requests.iter().filter_map(span).collect())
        .unwrap_or_default();
    let (low, high) = (days.0 * DAY_MS - 3_600_000, days.1 * DAY_MS + 3_600_000);
    problems.check(spans.iter().any(|span| (low..=high).contains(span)), || {
        format!(
            "{step}: no /api/v1/series request with from/to {} days apart: {}",
            days.0, seen["series_requests"]
        )
    });
}

/// Dark enough: the relative luminance of an `rgb(…)`/`rgba(…)` colour, or None when it is
/// transparent.
fn luminance(colour: &str) -> Option<f64> {
    let inner = colour.split_once('(')?.1.trim_end_matches(')');
    let parts: Vec<f64> = inner
        .split([',', ' ', '/'])
        .filter(|part| !part.is_empty())
        .filter_map(|part| part.parse().ok())
        .collect();
    if parts.len() < 3 || parts.get(3) == Some(&0.0) {
        return None;
    }
    let linear = |c: f64| {
        let c = c / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    Some(0.2126 * linear(parts[0]) + 0.7152 * linear(parts[1]) + 0.0722 * linear(parts[2]))
}

/// The contrast ratio of two `rgb(…)` colours (WCAG: 4.5 for body text).
fn contrast(one: &str, other: &str) -> Option<f64> {
    let (a, b) = (luminance(one)?, luminance(other)?);
    Some((a.max(b) + 0.05) / (a.min(b) + 0.05))
}

/// Compliance's rule-set selector: none at first; chosen by keyboard, a verdict panel with its
/// label (always: a verdict here is indicative), asked for in the browser's zone and kept in the
/// address through a reload; a full verdict's criteria (count of of), notes and hostile text;
/// 375 px and dark; none again.
fn check_rules(problems: &mut Problems, seen: &Value) {
    let before = &seen["before"];
    problems.check(
        before["verdict"] == "none" && before["panel_visible"] == false && before["selected"] == "",
        || format!("rules: a verdict panel before a rule set was chosen: {before}"),
    );
    let chosen = &seen["chosen"];
    problems.check(
        chosen["tabs"]
            .as_array()
            .and_then(|tabs| tabs.last())
            .is_some_and(|last| last == "rules-select"),
        || {
            format!(
                "rules: Tab from the heat map's figure never reaches #rules-select: {}",
                chosen["tabs"]
            )
        },
    );
    for (step, verdict) in [("chosen", chosen), ("reloaded", &seen["reloaded"])] {
        problems.check(
            verdict["verdict"] == "de-bnetza"
                && verdict["selected"] == "de-bnetza"
                && verdict["panel_visible"] == true,
            || format!("rules ({step}): no de-bnetza verdict panel: {verdict}"),
        );
        let url = text(&verdict["url"]);
        problems.check(
            url.contains("rules=de-bnetza") && url.contains("range=30d"),
            || format!("rules ({step}): the address does not keep rules= and the range: {url}"),
        );
        problems.check(
            verdict["label_visible"] == true && loose(&text(&verdict["label"])).contains("indicative"),
            || format!("rules ({step}): the label saying the verdict is indicative is not shown: {verdict}"),
        );
        let outcome = text(&verdict["outcome"]);
        problems.check(
            ["Met", "Not met", "Not assessable", "No verdict"]
                .iter()
                .any(|word| outcome.starts_with(word)),
            || format!("rules ({step}): the outcome is not said in words: {outcome:?}"),
        );
        problems.check(text(&verdict["facts"]).contains("Europe/Berlin"), || {
            format!("rules ({step}): the verdict does not name the zone it counted in: {verdict}")
        });
        let asked = verdict["requests"].as_array().cloned().unwrap_or_default();
        problems.check(
            asked.iter().any(|q| {
                q["rules"] == "de-bnetza" && q["tz"] == "Europe/Berlin" && q["from"].is_string()
            }),
            || format!("rules ({step}): no summary asked with rules=de-bnetza&tz=Europe/Berlin: {asked:?}"),
        );
    }
    let full = &seen["full"];
    let criteria: Vec<String> = full["criteria"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    let expected = [
        ("not met", "27 of 40 measurements (download)"),
        ("met", "40 of 40 measurements"),
        ("not assessable", "the contract states no upload speed"),
        ("for information", "3 of 3 days"),
    ];
    problems.check(criteria.len() == expected.len(), || {
        format!(
            "rules: {} criteria shown, not 4: {criteria:?}",
            criteria.len()
        )
    });
    for ((status, count), shown) in expected.iter().zip(&criteria) {
        problems.check(shown.starts_with(status) && shown.contains(count), || {
            format!("rules: a criterion does not show {status:?} and {count:?}: {shown:?}")
        });
    }
    problems.check(
        criteria
            .first()
            .is_some_and(|c| c.contains(r#"<img src=x onerror="window.__xss=7">"#))
            && full["xss"].is_null()
            && full["injected_img"] == 0,
        || format!("rules: a verdict's hostile text did not show as text: {full}"),
    );
    problems.check(
        full["outcome"] == "Not met"
            && full["unverified_visible"] == true
            && text(&full["unverified"]).contains("<script>window.__xss=8</script>")
            && loose(&text(&full["label"])).starts_with("indicative"),
        || format!("rules: the full verdict's outcome, label or unverified notes: {full}"),
    );
    let narrow = &seen["narrow"];
    problems.check(
        narrow["scroll_width"].as_i64().is_some_and(|w| w <= 375)
            && narrow["verdict"]["criteria"].as_array().map(Vec::len) == Some(4),
        || format!("rules: at 375 px the verdict panel scrolls sideways: {narrow}"),
    );
    let dark = &seen["dark"];
    let ratio = contrast(
        &text(&dark["label_colour"]),
        &text(&dark["label_background"]),
    );
    problems.check(
        dark["matches"] == true && ratio.is_some_and(|r| r >= 4.5),
        || format!("rules: the label in dark mode has contrast {ratio:?}: {dark}"),
    );
    let none = &seen["none"];
    problems.check(
        none["verdict"] == "none"
            && none["panel_visible"] == false
            && !text(&none["url"]).contains("rules="),
        || format!("rules: choosing none leaves a verdict or rules= behind: {none}"),
    );
    let asked_rules = |seen: &Value| {
        seen["requests"]
            .as_array()
            .is_none_or(|asked| asked.iter().any(|q| !q["rules"].is_null()))
    };
    let long = &seen["too_long"];
    problems.check(
        long["panel_visible"] == true
            && text(&long["reason"]).contains("366 days")
            && loose(&text(&long["label"])).contains("indicative")
            && !asked_rules(long),
        || format!("rules: a range over 366 days does not say it gets no verdict: {long}"),
    );
    let unknown = &seen["unknown"];
    problems.check(
        unknown["panel_visible"] == false
            && text(&unknown["hint"]).contains("rules=fr-arcep")
            && !asked_rules(unknown),
        || format!("rules: an unknown rules= in the address is not named: {unknown}"),
    );
}

/// The connection section (issue 15) over contract-shaped answers of `/api/v1/latency` and
/// `/api/v1/outages`: the band of the best public target with its loss buckets, the outages
/// on the speed chart as buttons the arrow keys move between, another target on request,
/// nothing sideways at 375 px, a dark card in dark mode.
fn check_connectivity(problems: &mut Problems, seen: &Value) {
    let first = &seen["first"];
    let expected = &seen["expected"];
    problems.check(
        first["visible"] == true && first["state"] == "shown" && first["canvas"] == true,
        || format!("the connection section is not drawn over probe data: {first}"),
    );
    problems.check(first["series_keys"] == json!(["rtt_median"]), || {
        format!(
            "#connectivity-chart draws {}, not [rtt_median]",
            first["series_keys"]
        )
    });
    problems.check(first["target"] == expected["best"], || {
        format!(
            "the band shows {}, not the fastest public target {}",
            first["target"], expected["best"]
        )
    });
    problems.check(
        first["loss_buckets"] == expected["loss_buckets"]
            && first["loss_bad"] == expected["loss_bad"]
            && expected["loss_bad"].as_u64() > Some(0)
            && expected["loss_buckets"].as_u64() > expected["loss_bad"].as_u64(),
        || {
            format!(
                "loss colours: {} buckets ({} bad) drawn, {} ({}) served",
                first["loss_buckets"],
                first["loss_bad"],
                expected["loss_buckets"],
                expected["loss_bad"]
            )
        },
    );
    let caption = text(&first["caption"]);
    for words in [
        "median",
        "Lost",
        "outages",
        "shaded on the speed chart",
        "Probing every 10 s",
    ] {
        problems.check(caption.contains(words), || {
            format!("the connection caption lacks {words:?}: {caption:?}")
        });
    }
    problems.check(
        first["options"].as_array().map(Vec::len) == Some(3) && first["select_disabled"] == false,
        || {
            format!(
                "the target list: {} (disabled {})",
                first["options"], first["select_disabled"]
            )
        },
    );
    let markers = first["outage_markers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    problems.check(
        first["speed_outages"] == expected["outages"]
            && markers.len() as u64 == expected["outages"].as_u64().unwrap_or(0)
            && markers.iter().all(|m| {
                m["tag"] == "button"
                    && m["hidden"] == false
                    && m["width"].as_f64().is_some_and(|w| w >= 10.0)
            }),
        || {
            format!(
                "outages on the speed chart: {markers:?}, {} served",
                expected["outages"]
            )
        },
    );
    problems.check(
        markers.iter().filter(|m| m["tabindex"] == 0).count() == 1,
        || format!("the outage markers are not one tab stop: {markers:?}"),
    );
    problems.check(
        markers
            .iter()
            .any(|m| m["kind"] == "local" && text(&m["label"]).contains("ongoing")),
        || format!("the ongoing local outage is not labelled so: {markers:?}"),
    );
    let keyboard = &seen["keyboard"];
    problems.check(
        keyboard["index"] == 1 && text(&keyboard["tip"]).contains("ISP outage"),
        || format!("ArrowRight from the first outage marker: {keyboard}"),
    );
    let other = &seen["other_target"];
    problems.check(
        other["target"] == "203.0.113.9" && other["loss_buckets"] == 0,
        || format!("choosing 203.0.113.9 did not redraw the band for it: {other}"),
    );
    problems.check(
        seen["narrow"]["scroll_width"]
            .as_i64()
            .is_some_and(|w| w <= 375)
            && seen["narrow_state"]["visible"] == true,
        || format!("the connection section at 375 px: {}", seen["narrow"]),
    );
    problems.check(
        seen["dark"]["visible"] == true
            && luminance(&text(&seen["dark"]["background"])).is_some_and(|l| l < 0.2),
        || format!("the connection card in dark mode: {}", seen["dark"]),
    );
}

/// Without probe data (404 from a server without the endpoints; probing off and nothing
/// stored) the section stays hidden and nothing is marked on the speed chart.
fn check_connectivity_hidden(problems: &mut Problems, name: &str, seen: &Value) {
    problems.check(
        seen["visible"] == false
            && seen["state"] == "hidden"
            && seen["speed_outages"] == 0
            && seen["outage_markers"].as_array().is_some_and(Vec::is_empty),
        || format!("{name}: the connection section shows: {seen}"),
    );
    problems.check(
        seen["drawn"] == "7d"
            && seen["banner"].is_null()
            && seen["chart"]["canvas"] == true
            && seen["pageerrors"].as_array().is_some_and(Vec::is_empty),
        || format!("{name}: the rest of the page did not draw cleanly: {seen}"),
    );
    let served = seen["served"].as_array().cloned().unwrap_or_default();
    problems.check(served.len() >= 2, || {
        format!("{name}: the page did not ask for the probe endpoints: {served:?}")
    });
}

/// An empty store with probe results: the connection section draws its band and lists the
/// outages (there is no speed chart to shade them on), beside the empty-state message; it fits
/// 375 px and follows dark mode.
fn check_empty_connectivity(problems: &mut Problems, seen: &Value) {
    let light = &seen["light"];
    let expected = &light["expected"];
    problems.check(
        light["body_state"] == "empty"
            && light["empty_visible"] == true
            && light["speed_visible"] == false,
        || {
            format!(
                "the empty store with probes: not the empty-state message alone for speed: {light}"
            )
        },
    );
    problems.check(
        light["visible"] == true
            && light["state"] == "shown"
            && light["canvas"] == true
            && light["series_keys"] == json!(["rtt_median"])
            && light["target"] == expected["best"],
        || format!("the empty store with probes: the connection band is not drawn: {light}"),
    );
    let listed = light["outage_list"].as_array().cloned().unwrap_or_default();
    problems.check(
        listed.len() as u64 == expected["outages"].as_u64().unwrap_or(u64::MAX)
            && listed.iter().all(|item| item["visible"] == true)
            && listed.first().is_some_and(|item| {
                item["kind"] == "local" && text(&item["text"]).contains("ongoing")
            })
            && listed.iter().filter(|item| item["kind"] == "isp").count() == 2,
        || {
            format!(
                "the empty store with probes: the outages listed: {listed:?}, {} served",
                expected["outages"]
            )
        },
    );
    let caption = text(&light["caption"]);
    problems.check(
        caption.contains("listed above") && !caption.contains("speed chart"),
        || format!("the empty store with probes: the caption points elsewhere: {caption:?}"),
    );
    problems.check(
        light["speed_outages"] == 0
            && light["outage_markers"]
                .as_array()
                .is_some_and(Vec::is_empty),
        || {
            format!(
                "the empty store with probes: outages marked on a speed chart without runs: {light}"
            )
        },
    );
    problems.check(
        light["served"].as_array().map(Vec::len) >= Some(2)
            && light["banner"].is_null()
            && light["csp_violations"]
                .as_array()
                .is_some_and(Vec::is_empty),
        || format!("the empty store with probes: not asked, or a banner or CSP report: {light}"),
    );
    problems.check(
        light["narrow"]["scroll_width"]
            .as_i64()
            .is_some_and(|w| w <= 375)
            && light["narrow_canvas_width"]
                .as_f64()
                .is_some_and(|w| w <= 375.0),
        || {
            format!(
                "the empty store with probes at 375 px: {} (canvas {})",
                light["narrow"], light["narrow_canvas_width"]
            )
        },
    );
    let dark = &seen["dark"];
    problems.check(
        dark["visible"] == true
            && dark["canvas"] == true
            && luminance(&text(&dark["background"])).is_some_and(|l| l < 0.2),
        || format!("the empty store with probes in dark mode: {dark}"),
    );
}

#[test]
#[ignore = "needs chromium and tools/browser's node modules; .ci/run installs them and runs the ignored tests"]
fn the_dashboard_works_in_a_real_browser() {
    driver_ready();
    let now = now_ms();
    let (year, failures) = a_year(now);
    let env = Env::new();
    env.import(&year);
    // A plan history with a change inside the default 7 days: 100 then 200 Mbit/s down.
    let db = env.db();
    for (download, from) in [
        ("100Mbit/s", now - 400 * DAY_MS),
        ("200Mbit/s", now - 3 * DAY_MS),
    ] {
        let from = rfc3339(from);
        let args = [
            "plan",
            "set",
            "--download-advertised",
            download,
            "--upload-advertised",
            "20Mbit/s",
            "--from",
            &from,
            "--db",
            db.to_str().expect("a UTF-8 path"),
        ];
        let output = common::command(&args).output().expect("run plan set");
        assert!(
            output.status.success(),
            "plan set: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let flags = [
        "--start-delay",
        "24h",
        "--enable-run-endpoint",
        "--min-manual-gap",
        "0s",
    ];
    let mut server = Server::start(env.serve("ok-1.2-pretty", "replay", &flags));
    let empty_env = Env::new();
    let mut empty =
        Server::start(empty_env.serve("ok-1.2-pretty", "replay", &["--start-delay", "24h"]));
    let xss_env = Env::new();
    xss_env.import(&hostile(now));
    let mut xss =
        // A plan for download only: the page names only the direction contracted.
        Server::start(xss_env.serve(
            "ok-1.2-pretty",
            "replay",
            &["--start-delay", "24h", "--plan-download", "100Mbit/s"],
        ));

    let out = artifacts();
    let url = format!("http://{}", server.address);
    let (empty_url, xss_url) = (
        format!("http://{}", empty.address),
        format!("http://{}", xss.address),
    );
    let report = drive(&[
        "test",
        &url,
        out.to_str().expect("a UTF-8 path"),
        "--empty",
        &empty_url,
        "--xss",
        &xss_url,
        "--new-run",
        NEW_RUN,
    ]);
    std::fs::write(out.join("dashboard-browser.json"), format!("{report:#}"))
        .expect("write the report");
    let mut problems = Problems::default();

    // No console errors or warnings, no page errors, no failed requests, no answer ≥ 400, on
    // any page.
    for (label, seen) in report["log"].as_object().into_iter().flatten() {
        for (kind, what) in [
            ("console", "console messages"),
            ("pageerrors", "uncaught errors"),
            ("failed", "failed requests"),
            ("statuses", "answers >= 400"),
            ("csp", "CSP reports"),
        ] {
            let list = seen[kind].as_array().cloned().unwrap_or_default();
            problems.check(list.is_empty(), || {
                format!("{label}: {what}: {}", Value::from(list))
            });
        }
    }

    // The 30-day range: the series request's window, and a marker per failure in it.
    if problems.finished(&report, "load") {
        let load = &report["load"];
        problems.check(load["state"] == "ready" && load["drawn"] == "30d", || {
            format!("load: state {} drawn {}", load["state"], load["drawn"])
        });
        let window = load["series_responses"]
            .as_array()
            .and_then(|bodies| bodies.last())
            .cloned();
        match window {
            Some(body) if body["from"].is_string() && body["to"].is_string() => {
                let (from, to) = (parse_ms(&text(&body["from"])), parse_ms(&text(&body["to"])));
                let expected = failures
                    .iter()
                    .filter(|f| (from..to).contains(&f.ms))
                    .count();
                problems.check((29 * DAY_MS..=31 * DAY_MS).contains(&(to - from)), || {
                    format!(
                        "the 30d series spans {} days",
                        (to - from) as f64 / DAY_MS as f64
                    )
                });
                problems.check(expected > 20, || {
                    format!("only {expected} failures in the range: the data is wrong")
                });
                problems.check(body["runs"]["failure"] == expected, || {
                    format!(
                        "the series says {} failures, the data holds {expected}",
                        body["runs"]["failure"]
                    )
                });
                if problems.finished(&report, "chart") {
                    let chart = &report["chart"];
                    problems.check(chart["marker_count_sum"] == expected, || {
                        format!(
                            "{} failure markers (data-count sum {}), {expected} failures in the range",
                            chart["markers"], chart["marker_count_sum"]
                        )
                    });
                    let all_buttons = chart["marker_list"]
                        .as_array()
                        .is_some_and(|list| list.iter().all(|m| m["tag"] == "button"));
                    problems.check(all_buttons, || "a failure marker is not a <button>".into());
                }
                if problems.finished(&report, "marker_focus") {
                    let focus = &report["marker_focus"];
                    let time = focus["time"].as_i64().unwrap_or(-1);
                    let shown = loose(&format!(
                        "{} {} {} {}",
                        text(&focus["label"]),
                        text(&focus["title"]),
                        text(&focus["described_by"]),
                        text(&focus["tooltips"])
                    ));
                    let failure = failures
                        .iter()
                        .filter(|f| (from..to).contains(&f.ms))
                        .find(|f| (f.ms.div_euclid(1000) - time).abs() <= 1);
                    problems.check(focus["focused_is_marker"] == true, || {
                        format!("focusing a marker did not focus it: {focus}")
                    });
                    match failure {
                        Some(failure) => {
                            problems.check(shown.contains(&loose(failure.reason)), || {
                                format!(
                                    "the focused marker ({}, {:?}) does not show its reason: {focus}",
                                    rfc3339(failure.ms),
                                    failure.reason
                                )
                            });
                            problems.check(shown.contains(&loose(&failure.message)), || {
                                format!(
                                    "the focused marker ({}) does not show its message {:?}: {focus}",
                                    rfc3339(failure.ms),
                                    failure.message
                                )
                            });
                        }
                        None => problems.0.push(format!(
                            "the focused marker's data-time {time} is no failure's time"
                        )),
                    }
                }
            }
            _ => problems
                .0
                .push(format!("load: no /api/v1/series answer seen: {load}")),
        }
    }
    if problems.finished(&report, "chart") {
        let chart = &report["chart"];
        let labels: Vec<String> = chart["legend"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|series| loose(&text(&series["label"])))
            .collect();
        let caption = loose(&text(&chart["caption"]));
        for series in ["download", "upload", "plan"] {
            problems.check(
                labels.iter().any(|label| label.contains(series)) || caption.contains(series),
                || format!("the speed chart has no {series} series: legend {labels:?}, caption {caption:?}"),
            );
        }
        // The page names what each chart draws in `data-series` (stable keys).
        let keys = |field: &str| -> Vec<String> {
            chart[field]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect()
        };
        let speed = [
            "download",
            "upload",
            "download_plan",
            "download_threshold",
            "upload_plan",
            "upload_threshold",
        ];
        problems.check(keys("series_keys") == speed, || {
            format!(
                "#speed-chart draws {:?}, not {speed:?}",
                keys("series_keys")
            )
        });
        // The plan changed 3 days ago: the download plan line steps from 100 to 200 Mbit/s,
        // the upload one stays at 20, and the caption names the change.
        let levels = |field: &str| -> Vec<f64> {
            chart[field]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_f64)
                .collect()
        };
        problems.check(levels("download_plan_levels") == [100.0, 200.0], || {
            format!(
                "the download plan line does not step from 100 to 200 Mbit/s: {:?}",
                levels("download_plan_levels")
            )
        });
        problems.check(levels("upload_plan_levels") == [20.0], || {
            format!(
                "the upload plan line is not 20 Mbit/s throughout: {:?}",
                levels("upload_plan_levels")
            )
        });
        problems.check(caption.contains("plan changed"), || {
            format!("the speed chart's caption names no plan change: {caption:?}")
        });
        let latency = ["ping", "jitter", "download_latency", "upload_latency"];
        problems.check(keys("latency_series_keys") == latency, || {
            format!(
                "#latency-chart draws {:?}, not {latency:?}",
                keys("latency_series_keys")
            )
        });
        problems.check(chart["tag"] == "figure" && chart["canvas"] == true, || {
            format!("#speed-chart is not a figure holding a canvas: {chart}")
        });
        problems.check(!text(&chart["latency_caption"]).is_empty(), || {
            "#latency-chart has no figcaption text".into()
        });
    }
    if problems.finished(&report, "heatmap") {
        let heatmap = &report["heatmap"];
        problems.check(
            heatmap["rows"] == 7
                && heatmap["cells"]
                    .as_array()
                    .is_some_and(|c| c.iter().all(|n| n == 24)),
            || format!("#heatmap is not 7 rows × 24 cells: {heatmap}"),
        );
    }
    if problems.finished(&report, "tab_order") {
        let order = report["tab_order"].as_array().cloned().unwrap_or_default();
        for key in ["24h", "7d", "30d", "1y"] {
            problems.check(order.iter().any(|e| e["range"] == key), || {
                format!("Tab never reaches [data-range={key}]")
            });
        }
        problems.check(order.iter().any(|e| e["id"] == "run-now"), || {
            "Tab never reaches #run-now".into()
        });
        problems.check(
            order
                .iter()
                .any(|e| text(&e["class"]).contains("failure-marker")),
            || "Tab never reaches a failure marker".into(),
        );
    }
    check_range(&mut problems, &report, "range_7d", "7d", (7, 7));
    check_range(&mut problems, &report, "range_1y", "1y", (365, 366));
    check_range(&mut problems, &report, "reload", "1y", (365, 366));
    if problems.finished(&report, "run_now") {
        let run = &report["run_now"];
        problems.check(
            run["posts"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["status"] == 202)),
            || {
                format!(
                    "run-now sent no POST /api/v1/run answered 202: {}",
                    run["posts"]
                )
            },
        );
        // Now agrees with the progress line: a test is running from the moment it started.
        problems.check(
            run["running"]
                .as_array()
                .is_some_and(|seen| seen.iter().any(|t| text(t).starts_with("Yes"))),
            || format!("Now never said a test was running: {}", run["running"]),
        );
        problems.check(run["rows_after"].to_string().contains(NEW_RUN), || {
            format!("the new run is not in #runs: {}", run["rows_after"])
        });
    }
    if problems.finished(&report, "narrow_375") {
        let narrow = &report["narrow_375"];
        problems.check(
            narrow["scroll_width"].as_i64().is_some_and(|w| w <= 375),
            || format!("at 375 px the page scrolls sideways: {narrow}"),
        );
    }
    if problems.finished(&report, "dark_1280") {
        let dark = &report["dark_1280"];
        let background =
            luminance(&text(&dark["body"])).or_else(|| luminance(&text(&dark["html"])));
        problems.check(background.is_some_and(|l| l < 0.2), || {
            format!("dark mode has no dark background: {dark}")
        });
    }
    // `?from=` alone is from then to now; a range the page cannot use is said, not dropped.
    if problems.finished(&report, "url_ranges") {
        let seen = &report["url_ranges"];
        let only = &seen["from_only"];
        let series = only["series"].as_array().and_then(|s| s.last()).cloned();
        problems.check(
            series.as_ref().is_some_and(|s| {
                s["from"].is_string()
                    && s["to"].is_string()
                    && parse_ms(&text(&s["from"])) == parse_ms(&text(&only["asked_from"]))
                    && (now_ms() - parse_ms(&text(&s["to"]))).abs() < DAY_MS
            }),
            || format!("?from= alone does not show from then until now: {only}"),
        );
        let garbage = &seen["garbage"];
        problems.check(
            text(&garbage["label"]).contains("from=garbage") && garbage["pressed"] == "true",
            || format!("an unusable ?from=garbage is not named on the range line: {garbage}"),
        );
    }
    if problems.finished(&report, "rules") {
        check_rules(&mut problems, &report["rules"]);
    }
    // The server stops answering while the page is open: the page says so within the minute's
    // poll, in view, and recovers by itself when the server is back.
    if problems.finished(&report, "server_gone") {
        let seen = &report["server_gone"];
        problems.check(seen["before"]["visible"] == false, || {
            format!("an error banner before the server went away: {seen}")
        });
        problems.check(
            seen["down"]["visible"] == true && text(&seen["down"]["text"]).contains("out of date"),
            || format!("the page does not say the server stopped answering: {seen}"),
        );
        problems.check(
            seen["back"]["visible"] == false && seen["back"]["state"] == "ready",
            || format!("the page does not recover when the server answers again: {seen}"),
        );
        problems.check(
            seen["pageerrors"].as_array().is_some_and(Vec::is_empty),
            || format!("uncaught errors while the server was away: {seen}"),
        );
    }
    if problems.finished(&report, "empty") {
        let seen = &report["empty"];
        problems.check(seen["state"] == "empty", || {
            format!("the empty store's page is {}", seen["state"])
        });
        problems.check(
            seen["empty_visible"] == true && !text(&seen["empty_text"]).is_empty(),
            || format!("#empty is not shown over an empty store: {seen}"),
        );
        problems.check(seen["chart"]["markers"] == 0, || {
            "failure markers over an empty store".into()
        });
    }
    if problems.finished(&report, "empty_connectivity") {
        check_empty_connectivity(&mut problems, &report["empty_connectivity"]);
    }
    if problems.finished(&report, "unknown_zone") {
        let seen = &report["unknown_zone"];
        problems.check(seen["drawn"] == "7d" && seen["banner"].is_null(), || {
            format!("a zone the server does not know blanked the page: {seen}")
        });
        problems.check(
            seen["heatmap"]["rows"] == 7 && text(&seen["note"]).contains("(UTC)"),
            || format!("the heat map did not fall back to UTC, saying so: {seen}"),
        );
        problems.check(
            seen["zones"].as_array().is_some_and(|zones| {
                zones.first().is_some_and(|z| z == "Asia/Calcutta")
                    && zones.iter().any(|z| z == "UTC")
            }),
            || format!("the zones asked for: {}", seen["zones"]),
        );
    }
    if problems.finished(&report, "busy_parts") {
        let seen = &report["busy_parts"];
        problems.check(seen["drawn"] == "7d" && seen["banner"].is_null(), || {
            format!("a busy summary, heat map or runs page blanked the page: {seen}")
        });
        problems.check(
            seen["chart"]["canvas"] == true && seen["chart"]["markers"].as_u64() > Some(0),
            || format!("the speed chart was not drawn: {}", seen["chart"]),
        );
        for part in ["compliance", "heatmap_note", "runs"] {
            problems.check(text(&seen[part]).contains("did not load"), || {
                format!("{part} does not say it did not load: {}", seen[part])
            });
        }
        problems.check(
            seen["refused"]
                == serde_json::json!(["/api/v1/heatmap", "/api/v1/samples", "/api/v1/summary"]),
            || format!("refused: {}", seen["refused"]),
        );
    }
    if problems.finished(&report, "xss") {
        let seen = &report["xss"];
        problems.check(seen["xss"].is_null(), || {
            format!("hostile text ran: window.__xss = {}", seen["xss"])
        });
        problems.check(
            seen["injected_img"] == 0 && seen["injected_script"] == 0,
            || format!("hostile text became elements: {seen}"),
        );
        problems.check(
            seen["csp_violations"].as_array().is_some_and(Vec::is_empty),
            || format!("CSP violations: {}", seen["csp_violations"]),
        );
        problems.check(text(&seen["now_server"]).contains(XSS_SERVER), || {
            format!(
                "#now-server does not show the server name as text: {}",
                seen["now_server"]
            )
        });
        for (what, caption) in [
            ("speed chart caption", text(&seen["speed_caption"])),
            ("compliance", text(&seen["compliance"])),
        ] {
            problems.check(
                caption.contains("100 Mbit/s down") && !caption.contains("— up"),
                || format!("the {what} with a download-only plan: {caption:?}"),
            );
        }
        problems.check(text(&seen["runs"]).contains(XSS_MESSAGE), || {
            format!(
                "#runs does not show the failure message as text: {}",
                seen["runs"]
            )
        });
        let marker = &seen["marker"];
        let shown = format!(
            "{} {} {} {}",
            text(&marker["label"]),
            text(&marker["title"]),
            text(&marker["described_by"]),
            text(&marker["tooltips"])
        );
        problems.check(shown.contains(XSS_MESSAGE), || {
            format!("the marker's tooltip does not show the message as text: {marker}")
        });
    }

    if problems.finished(&report, "connectivity") {
        check_connectivity(&mut problems, &report["connectivity"]);
    }
    for name in ["connectivity_absent", "connectivity_off"] {
        if problems.finished(&report, name) {
            check_connectivity_hidden(&mut problems, name, &report[name]);
        }
    }

    // Screenshots: there, and small enough to commit.
    let shots = [
        ("screenshot_1280", "dashboard-1280.png"),
        ("narrow_375", "dashboard-375.png"),
        ("dark_1280", "dashboard-dark-1280.png"),
    ];
    for (_, name) in shots {
        let size = std::fs::metadata(out.join(name))
            .map(|m| m.len())
            .unwrap_or(0);
        problems.check(size > 10_000 && size <= 600 * 1024, || {
            format!("{name}: {size} bytes")
        });
    }
    for instance in [&mut server, &mut empty, &mut xss] {
        instance.assert_clean_exit();
    }
    assert!(
        problems.0.is_empty(),
        "{} problems in the browser:\n- {}\n(report: {})",
        problems.0.len(),
        problems.0.join("\n- "),
        out.join("dashboard-browser.json").display()
    );
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
        for (_, name) in shots {
            std::fs::copy(out.join(name), Path::new(ROOT).join("docs").join(name))
                .unwrap_or_else(|err| panic!("copy {name} to docs/: {err}"));
        }
    }
}
