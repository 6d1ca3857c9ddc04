//! The deployment files — Dockerfile, docker compose, Prometheus configuration and alert rules,
//! Grafana provisioning and dashboard, systemd unit — checked with the real tools (promtool,
//! Prometheus, tsc with @grafana/schema, systemd-analyze, the image's own scripts), and every
//! dashboard and alert query run against a real Prometheus scraping a real exporter; the fleet
//! example (deploy/fleet) likewise, its dashboard's queries against a real Prometheus that three
//! monitors push to with remote_write.
//!
//! A missing tool fails its test with the command that installs it; nothing is skipped.
//! `.ci/run` installs them all.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{BIN, Prometheus, Server, try_request, try_request_with};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const DASHBOARDS: &str = "grafana/dashboards";
/// The fleet dashboard reads what monitors push (remote_write), not what Prometheus scrapes:
/// `fleet_dashboard_queries_answer_for_every_site` runs its queries, the scrape test the others'.
const FLEET_DASHBOARD: &str = "internet-monitor-fleet.json";
const PROMETHEUS_CONFIG: &str = "deploy/prometheus/prometheus.yml";
const RULES: &str = "deploy/prometheus/rules/internet-monitor.rules.yml";
const RULES_TEST: &str = "deploy/prometheus/rules/internet-monitor.rules.test.yml";
/// The fleet's central Prometheus alerts per site on what the sites push.
const FLEET_RULES: &str = "deploy/fleet/central/prometheus/rules/fleet.rules.yml";
const FLEET_RULES_TEST: &str = "deploy/fleet/central/prometheus/rules/fleet.rules.test.yml";
/// Every alert rule file with its promtool unit tests.
const RULE_FILES: [(&str, &str); 2] = [(RULES, RULES_TEST), (FLEET_RULES, FLEET_RULES_TEST)];
const COMPOSE: &str = "deploy/docker-compose.yml";
const UNIT: &str = "deploy/systemd/internet-monitor.service";

const FIX_PROMETHEUS: &str =
    "install Debian's prometheus package (apt-get install prometheus); .ci/run does";
const FIX_PYYAML: &str = "install PyYAML (python3 -m pip install pyyaml); .ci/run does";
const FIX_NODE: &str = "install Node.js and run `npm ci --prefix tools/dashcheck`; .ci/run does";
const FIX_SYSTEMD: &str = "install Debian's systemd package (apt-get install systemd)";

fn repo(relative: &str) -> PathBuf {
    Path::new(ROOT).join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo(relative)).unwrap_or_else(|err| panic!("read {relative}: {err}"))
}

/// Runs a tool to completion; a tool that is not installed fails the test with `fix`.
fn run(command: &mut Command, fix: &str) -> Output {
    let program = command.get_program().to_string_lossy().into_owned();
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("cannot run {program} ({err}): {fix}"))
}

/// Like `run`, and the tool must succeed; returns its stdout.
fn run_ok(command: &mut Command, fix: &str) -> String {
    let shown = format!("{command:?}");
    let output = run(command, fix);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{shown} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A YAML file as JSON, parsed by PyYAML (no YAML crate among the dev-dependencies).
fn yaml(relative: &str) -> Value {
    let program = "import json, sys, yaml\n\
                   json.dump(yaml.safe_load(open(sys.argv[1], encoding='utf-8')), sys.stdout)";
    let output = run(
        Command::new("python3")
            .args(["-c", program])
            .arg(repo(relative)),
        FIX_PYYAML,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'yaml'"),
        "PyYAML is missing: {FIX_PYYAML}"
    );
    assert!(
        output.status.success(),
        "{relative} is not valid YAML:\n{stderr}"
    );
    serde_json::from_slice(&output.stdout).expect("PyYAML's JSON")
}

fn dashboard_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo(DASHBOARDS))
        .expect("grafana/dashboards")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboard in {DASHBOARDS}");
    files
}

fn dashboards() -> Vec<(String, Value)> {
    dashboard_files()
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("read dashboard");
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|err| panic!("{name} is not JSON: {err}"));
            (name, json)
        })
        .collect()
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in list.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// A dashboard query, named for messages.
struct Query {
    /// The dashboard's file name.
    file: String,
    name: String,
    expr: String,
    /// Grafana runs it over the time range (`query_range`), not at one instant.
    range: bool,
}

fn dashboard_queries() -> Vec<Query> {
    let mut queries = Vec::new();
    for (file, dashboard) in dashboards() {
        for panel in panels(&dashboard) {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{file}: a target without expr: {target}"));
                queries.push(Query {
                    file: file.clone(),
                    name: format!(
                        "{file}: panel {:?} target {}",
                        panel["title"].as_str().unwrap_or("?"),
                        target["refId"].as_str().unwrap_or("?")
                    ),
                    expr: expr.to_owned(),
                    range: target["instant"] != true,
                });
            }
        }
    }
    assert!(queries.len() > 10, "the dashboards have hardly any query");
    queries
}

/// The dashboard's template variables and Grafana's macros, as a concrete query would have them.
fn substitute(expr: &str) -> String {
    let mut out = expr.to_owned();
    for (from, to) in [
        ("${__rate_interval}", "1m"),
        ("$__rate_interval", "1m"),
        ("${__interval}", "5s"),
        ("$__interval", "5s"),
        ("${__range}", "5m"),
        ("$__range", "5m"),
        ("${instance}", ".*"),
        ("$instance", ".*"),
        ("${site}", ".*"),
        ("$site", ".*"),
    ] {
        out = out.replace(from, to);
    }
    assert!(
        !out.contains('$'),
        "{expr:?} uses a variable this test does not know: {out:?}"
    );
    out
}

struct Alert {
    /// The rule file it is in (one of [`RULE_FILES`]).
    file: &'static str,
    name: String,
    rule: Value,
}

fn alerts() -> Vec<Alert> {
    let mut alerts = Vec::new();
    for (file, _) in RULE_FILES {
        for group in yaml(file)["groups"].as_array().expect("groups") {
            for rule in group["rules"].as_array().expect("rules") {
                let name = rule["alert"].as_str().expect("only alert rules").to_owned();
                alerts.push(Alert {
                    file,
                    name,
                    rule: rule.clone(),
                });
            }
        }
    }
    alerts
}

// ---------------------------------------------------------------------------------------------
// Prometheus configuration and alert rules

#[test]
#[ignore = "needs promtool (Debian package prometheus) and PyYAML; .ci/run installs them and runs the ignored tests"]
fn prometheus_config_passes_promtool() {
    let out = run_ok(
        Command::new("promtool")
            .args(["check", "config"])
            .arg(repo(PROMETHEUS_CONFIG)),
        FIX_PROMETHEUS,
    );
    assert!(out.contains("SUCCESS"), "{out}");

    let config = yaml(PROMETHEUS_CONFIG);
    let interval = config["global"]["scrape_interval"].as_str().unwrap();
    let seconds = humantime::parse_duration(interval).unwrap().as_secs();
    assert!(
        (30..=60).contains(&seconds),
        "scrape every 30–60 s, not {interval}"
    );
    let rule_files: Vec<&str> = config["rule_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| file.as_str().unwrap())
        .collect();
    assert_eq!(rule_files, ["rules/internet-monitor.rules.yml"]);
    assert!(repo("deploy/prometheus").join(rule_files[0]).is_file());
    let job = scrape_job(&config);
    assert_eq!(
        job["static_configs"][0]["targets"],
        json!(["internet-monitor:5000"]),
        "the compose service internet-monitor on the default port"
    );
}

/// The scrape job the alert rules select (`job="internet-monitor"`).
fn scrape_job(config: &Value) -> &Value {
    config["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|job| job["job_name"] == "internet-monitor")
        .expect("a scrape job named internet-monitor (InternetMonitorDown selects it)")
}

#[test]
#[ignore = "needs promtool (Debian package prometheus) and PyYAML; .ci/run installs them and runs the ignored tests"]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    for (rules, tests) in RULE_FILES {
        let out = run_ok(
            Command::new("promtool")
                .args(["check", "rules"])
                .arg(repo(rules)),
            FIX_PROMETHEUS,
        );
        assert!(out.contains("SUCCESS"), "{rules}: {out}");
        let out = run_ok(
            Command::new("promtool")
                .args(["test", "rules"])
                .arg(repo(tests)),
            FIX_PROMETHEUS,
        );
        assert!(out.contains("SUCCESS"), "{tests}: {out}");
    }
}

#[test]
#[ignore = "needs PyYAML (pip install pyyaml); .ci/run installs it and runs the ignored tests"]
fn every_alert_is_debounced_annotated_and_tested_both_ways() {
    let alerts = alerts();
    let names: BTreeSet<&str> = alerts.iter().map(|alert| alert.name.as_str()).collect();
    for wanted in [
        "SpeedtestDownloadBelowPlan",
        "SpeedtestUploadBelowPlan",
        "SpeedtestFailing",
        "SpeedtestNoRecentSuccess",
        "SpeedtestRateLimited",
        "InternetMonitorDown",
        "InternetMonitorIspOutage",
        "InternetMonitorPacketLoss",
        "InternetMonitorProbesStopped",
        "InternetMonitorRemoteWriteBehind",
        "InternetMonitorSiteSilent",
        "InternetMonitorSiteFailing",
        "InternetMonitorSiteBelowPlan",
    ] {
        assert!(names.contains(wanted), "no alert {wanted}");
    }
    for alert in &alerts {
        let rule = &alert.rule;
        let name = &alert.name;
        let pending = rule["for"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no `for`"));
        assert!(
            humantime::parse_duration(pending).unwrap() >= Duration::from_secs(60),
            "{name}: `for: {pending}` does not debounce"
        );
        assert!(rule["labels"]["severity"].is_string(), "{name}: severity");
        for annotation in ["summary", "description"] {
            assert!(
                rule["annotations"][annotation]
                    .as_str()
                    .is_some_and(|text| text.len() > 20),
                "{name}: no {annotation} annotation"
            );
        }
    }

    // Each alert has a unit test where it fires and one where it must not.
    let mut fires: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for test in RULE_FILES
        .iter()
        .flat_map(|(_, tests)| yaml(tests)["tests"].as_array().expect("tests").clone())
    {
        for case in test["alert_rule_test"].as_array().into_iter().flatten() {
            let name = case["alertname"].as_str().unwrap().to_owned();
            let counts = fires.entry(name).or_default();
            if case["exp_alerts"]
                .as_array()
                .is_some_and(|list| !list.is_empty())
            {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
        }
    }
    for alert in &alerts {
        let (firing, quiet) = fires.get(&alert.name).copied().unwrap_or_default();
        assert!(firing > 0, "no unit test shows {} firing", alert.name);
        assert!(quiet > 0, "no unit test shows {} not firing", alert.name);
    }
}

/// Every dashboard query and alert expression parses: promtool checks them as recording rules.
#[test]
#[ignore = "needs promtool (Debian package prometheus) and PyYAML; .ci/run installs them and runs the ignored tests"]
fn every_dashboard_and_alert_expression_parses() {
    let mut rules = Vec::new();
    let mut names = Vec::new();
    for (index, query) in dashboard_queries().iter().enumerate() {
        names.push(format!("dashboard:query_{index} is {}", query.name));
        rules.push(
            json!({"record": format!("dashboard:query_{index}"), "expr": substitute(&query.expr)}),
        );
    }
    for alert in alerts() {
        rules.push(json!({"record": format!("alert:{}", alert.name), "expr": alert.rule["expr"]}));
    }
    let count = rules.len();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("exprs.rules.yml"); // JSON is YAML
    std::fs::write(
        &file,
        json!({"groups": [{"name": "exprs", "rules": rules}]}).to_string(),
    )
    .unwrap();
    let output = run(
        Command::new("promtool").args(["check", "rules"]).arg(&file),
        FIX_PROMETHEUS,
    );
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && out.contains(&format!("SUCCESS: {count} rules found")),
        "{out}\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        names.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Grafana

#[test]
#[ignore = "needs Node.js and `npm ci --prefix tools/dashcheck`; .ci/run installs them and runs the ignored tests"]
fn dashboards_type_check_against_grafana_schema() {
    let modules = repo("tools/dashcheck/node_modules");
    assert!(
        modules.join("@grafana/schema").is_dir() && modules.join("typescript").is_dir(),
        "{} is missing: run `npm ci --prefix tools/dashcheck` (.ci/run does)",
        modules.display()
    );
    let out = run_ok(
        Command::new("node")
            .arg(repo("tools/dashcheck/check-dashboard.mjs"))
            .args(dashboard_files()),
        FIX_NODE,
    );
    assert_eq!(
        out.matches(": OK (@grafana/schema Dashboard)").count(),
        dashboard_files().len(),
        "{out}"
    );
}

#[test]
fn dashboards_are_provisionable_and_laid_out() {
    for (file, dashboard) in dashboards() {
        assert!(
            dashboard.get("__inputs").is_none(),
            "{file}: __inputs is for sharing"
        );
        assert!(
            dashboard["uid"].as_str().is_some_and(|uid| !uid.is_empty()),
            "{file}: a fixed uid keeps links stable"
        );
        let variables = dashboard["templating"]["list"].as_array().unwrap();
        assert!(
            variables.iter().any(|v| v["name"] == "datasource"
                && v["type"] == "datasource"
                && v["query"] == "prometheus"),
            "{file}: a Prometheus data source variable"
        );

        let mut ids = BTreeSet::new();
        let mut boxes: Vec<(String, [u64; 4])> = Vec::new();
        for panel in panels(&dashboard) {
            let title = panel["title"].as_str().unwrap_or("?");
            assert!(
                ids.insert(panel["id"].as_u64().unwrap()),
                "{file}: id of {title} repeats"
            );
            let grid = &panel["gridPos"];
            let [x, y, w, h] = ["x", "y", "w", "h"].map(|key| grid[key].as_u64().unwrap());
            assert!(x + w <= 24, "{file}: {title} is wider than the grid");
            for (other, [ox, oy, ow, oh]) in &boxes {
                let overlap = x < ox + ow && *ox < x + w && y < oy + oh && *oy < y + h;
                assert!(!overlap, "{file}: {title} overlaps {other}");
            }
            boxes.push((title.to_owned(), [x, y, w, h]));
            if panel["type"] == "row" {
                continue;
            }
            assert!(
                panel["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{file}: {title} has no description"
            );
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{file}: {title} must use the data source variable"
            );
            let targets = panel["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{file}: {title} has no query");
            let mut refs = BTreeSet::new();
            for target in targets {
                assert_eq!(
                    target["datasource"]["uid"], "${datasource}",
                    "{file}: {title}"
                );
                assert!(
                    refs.insert(target["refId"].as_str().unwrap()),
                    "{file}: {title}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// docker compose and Grafana provisioning

/// Service keys of the Compose specification this file may use (a typo guard).
const COMPOSE_SERVICE_KEYS: &[&str] = &[
    "build",
    "cap_drop",
    "command",
    "depends_on",
    "environment",
    "healthcheck",
    "image",
    "ports",
    "read_only",
    "restart",
    "security_opt",
    "tmpfs",
    "user",
    "volumes",
];

#[test]
#[ignore = "needs PyYAML (pip install pyyaml); .ci/run installs it and runs the ignored tests"]
fn compose_file_mounts_what_exists_and_wires_the_services() {
    let compose = yaml(COMPOSE);
    let deploy = repo("deploy");
    let services = compose["services"].as_object().expect("services");
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from(["internet-monitor", "prometheus", "grafana"])
    );
    let declared: BTreeSet<&str> = compose["volumes"]
        .as_object()
        .expect("named volumes")
        .keys()
        .map(String::as_str)
        .collect();

    let mut mounts: BTreeMap<(&str, &str), PathBuf> = BTreeMap::new(); // (service, target) → source
    for (name, service) in services {
        for key in service.as_object().unwrap().keys() {
            assert!(
                COMPOSE_SERVICE_KEYS.contains(&key.as_str()),
                "{name}: unexpected key {key:?} (typo?)"
            );
        }
        let mut has_named_volume = false;
        for volume in service["volumes"].as_array().expect("volumes") {
            let spec = volume.as_str().expect("short volume syntax");
            let mut parts = spec.split(':');
            let (source, target) = (parts.next().unwrap(), parts.next().expect("a target"));
            if source.starts_with('.') || source.starts_with('/') {
                let path = deploy.join(source);
                assert!(
                    path.exists(),
                    "{name} mounts {source}, which does not exist"
                );
                assert!(spec.ends_with(":ro"), "{name}: mount {source} read-only");
                mounts.insert((name.as_str(), target), path);
            } else {
                assert!(
                    declared.contains(source),
                    "{name}: volume {source} is not declared"
                );
                has_named_volume = true;
            }
        }
        assert!(has_named_volume, "{name} keeps its data in a named volume");
    }

    // internet-monitor: built from the repository's Dockerfile, data in its volume.
    let monitor = &compose["services"]["internet-monitor"];
    let context = deploy.join(monitor["build"]["context"].as_str().unwrap());
    assert!(
        context
            .join(monitor["build"]["dockerfile"].as_str().unwrap())
            .is_file()
    );
    assert_eq!(
        context.canonicalize().unwrap(),
        repo("").canonicalize().unwrap()
    );
    assert!(
        monitor["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v.as_str().unwrap().ends_with(":/data")),
        "internet-monitor keeps /data in a volume"
    );
    for (key, value) in monitor["environment"].as_object().unwrap() {
        assert!(key.starts_with("INTERNET_MONITOR_"), "{key}");
        assert!(
            value.as_str().is_some_and(|v| !v.is_empty()),
            "{key}: an empty value is an error to the exporter"
        );
    }
    assert!(
        monitor["ports"]
            .as_array()
            .unwrap()
            .contains(&json!("5000:5000"))
    );

    // Prometheus reads the repository's configuration, which scrapes the service above.
    let prometheus = &compose["services"]["prometheus"];
    let config_flag = prometheus["command"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|arg| arg.as_str().unwrap().strip_prefix("--config.file="))
        .expect("--config.file");
    let (dir, file) = config_flag.rsplit_once('/').unwrap();
    let source = &mounts[&("prometheus", dir)];
    assert_eq!(
        source.join(file).canonicalize().unwrap(),
        repo(PROMETHEUS_CONFIG).canonicalize().unwrap(),
        "Prometheus reads {PROMETHEUS_CONFIG}"
    );

    // Grafana: provisioning and dashboards from ../grafana, where the provider looks for them.
    let provisioning = &mounts[&("grafana", "/etc/grafana/provisioning")];
    assert_eq!(
        provisioning.canonicalize().unwrap(),
        repo("grafana/provisioning").canonicalize().unwrap()
    );
    let provider = yaml("grafana/provisioning/dashboards/internet-monitor.yml");
    assert_eq!(provider["apiVersion"], 1);
    let provider = &provider["providers"][0];
    assert_eq!(provider["type"], "file");
    let path = provider["options"]["path"].as_str().unwrap();
    let dashboards = mounts
        .get(&("grafana", path))
        .unwrap_or_else(|| panic!("grafana mounts nothing at {path}, where the provider looks"));
    assert_eq!(
        dashboards.canonicalize().unwrap(),
        repo(DASHBOARDS).canonicalize().unwrap()
    );
    let home =
        compose["services"]["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
            .as_str()
            .unwrap();
    let home = home
        .strip_prefix(&format!("{path}/"))
        .expect("home dashboard in the provider's path");
    assert!(repo(DASHBOARDS).join(home).is_file());

    let datasources = yaml("grafana/provisioning/datasources/prometheus.yml");
    assert_eq!(datasources["apiVersion"], 1);
    let datasource = &datasources["datasources"][0];
    assert_eq!(datasource["type"], "prometheus");
    assert_eq!(datasource["url"], "http://prometheus:9090");
    assert_eq!(datasource["isDefault"], true);
}

// ---------------------------------------------------------------------------------------------
// Dockerfile and the scripts it installs

/// The Dockerfile's instructions: continuation lines joined, comments dropped.
fn dockerfile() -> Vec<(String, String)> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in read("Dockerfile").lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, rest) = current.split_once(' ').unwrap_or((&current, ""));
                instructions.push((keyword.to_uppercase(), rest.trim().to_owned()));
                current.clear();
            }
        }
    }
    instructions
}

/// Docker's `.dockerignore` matching: the last pattern matching a path or one of its parent
/// directories decides; `!` re-includes.
fn in_build_context(path: &str) -> bool {
    let patterns: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let mut included = true;
    for pattern in &patterns {
        let (negated, glob) = match pattern.strip_prefix('!') {
            Some(glob) => (true, glob),
            None => (false, pattern.as_str()),
        };
        let glob = glob.trim_start_matches('/').trim_end_matches('/');
        let parts: Vec<&str> = path.split('/').collect();
        let matches = (1..=parts.len()).any(|n| glob_match(glob, &parts[..n].join("/")));
        if matches {
            included = negated;
        }
    }
    included
}

/// `*` and `?` within one path segment, as Go's filepath.Match.
fn glob_match(glob: &str, path: &str) -> bool {
    let (globs, paths): (Vec<&str>, Vec<&str>) =
        (glob.split('/').collect(), path.split('/').collect());
    fn segment(glob: &[u8], text: &[u8]) -> bool {
        match (glob.first(), text.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                segment(&glob[1..], text) || (!text.is_empty() && segment(glob, &text[1..]))
            }
            (Some(b'?'), Some(_)) => segment(&glob[1..], &text[1..]),
            (Some(g), Some(t)) if g == t => segment(&glob[1..], &text[1..]),
            _ => false,
        }
    }
    globs.len() == paths.len()
        && globs
            .iter()
            .zip(&paths)
            .all(|(g, p)| segment(g.as_bytes(), p.as_bytes()))
}

#[test]
fn dockerfile_builds_a_non_root_image_with_a_pinned_speedtest_cli() {
    let instructions = dockerfile();
    let args: BTreeMap<String, String> = instructions
        .iter()
        .filter(|(keyword, _)| keyword == "ARG")
        .filter_map(|(_, rest)| rest.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    assert!(
        args["RUST_IMAGE"].starts_with("rust:1."),
        "{}",
        args["RUST_IMAGE"]
    );
    assert_eq!(args["RUNTIME_IMAGE"], "debian:bookworm-slim");
    assert_eq!(args["SPEEDTEST_VERSION"], "1.2.0");
    for arch in ["X86_64", "AARCH64", "ARMHF"] {
        let sum = &args[&format!("SPEEDTEST_SHA256_{arch}")];
        assert!(
            sum.len() == 64
                && sum
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "SPEEDTEST_SHA256_{arch} is not a SHA-256: {sum:?}"
        );
    }

    let stages: Vec<usize> = instructions
        .iter()
        .enumerate()
        .filter(|(_, (keyword, _))| keyword == "FROM")
        .map(|(index, _)| index)
        .collect();
    assert!(stages.len() >= 2, "multi-stage");
    assert!(instructions[stages[0]].1.starts_with("${RUST_IMAGE}"));
    let last = &instructions[*stages.last().unwrap()..];
    assert_eq!(
        last[0].1, "${RUNTIME_IMAGE}",
        "the image runs on Debian slim"
    );
    let find = |keyword: &str| -> Vec<&str> {
        last.iter()
            .filter(|(k, _)| k == keyword)
            .map(|(_, rest)| rest.as_str())
            .collect()
    };
    let user = find("USER");
    assert_eq!(user.len(), 1);
    assert!(
        !["root", "0", "0:0"].contains(&user[0]),
        "the image must not run as root"
    );
    assert_eq!(find("EXPOSE"), ["5000"]);
    assert_eq!(find("VOLUME"), [r#"["/data"]"#]);
    let env = find("ENV").join(" ");
    for wanted in [
        "INTERNET_MONITOR_DB=/data/internet-monitor.redb",
        "HOME=/data",
        "INTERNET_MONITOR_SPEEDTEST_BIN=/usr/local/bin/speedtest",
    ] {
        assert!(env.contains(wanted), "ENV lacks {wanted}: {env}");
    }
    let healthcheck = find("HEALTHCHECK");
    assert_eq!(healthcheck.len(), 1);
    assert!(healthcheck[0].contains("/usr/local/bin/internet-monitor-healthcheck"));
    let copies = find("COPY").join("\n");
    assert!(
        copies.contains("deploy/docker/healthcheck.sh /usr/local/bin/internet-monitor-healthcheck")
    );
    let speedtest_stage = instructions
        .iter()
        .find(|(keyword, rest)| keyword == "RUN" && rest.contains("install-speedtest"))
        .expect("a RUN of install-speedtest");
    assert!(speedtest_stage.1.contains("install-speedtest /out"));
    assert!(read("deploy/docker/install-speedtest.sh").contains("sha256sum -c"));

    // Every file the build copies from the context exists and is not excluded by .dockerignore.
    let mut copied = BTreeSet::new();
    for (keyword, rest) in &instructions {
        if keyword != "COPY" || rest.contains("--from=") {
            continue;
        }
        let words: Vec<&str> = rest
            .split_whitespace()
            .filter(|w| !w.starts_with("--"))
            .collect();
        for source in &words[..words.len() - 1] {
            assert!(repo(source).exists(), "COPY {source}: no such file");
            assert!(
                in_build_context(source),
                "COPY {source}: excluded by .dockerignore"
            );
            copied.insert(source.trim_end_matches('/').to_owned());
        }
    }
    // What cargo needs to read the manifest: benchmarks declared in Cargo.toml must be there too.
    let mut needed = vec!["Cargo.toml", "Cargo.lock", "src"];
    let manifest = read("Cargo.toml");
    for (table, dir) in [
        ("[[bench]]", "benches"),
        ("[[test]]", "tests"),
        ("[[example]]", "examples"),
    ] {
        if manifest.contains(table) {
            needed.push(dir);
        }
    }
    if repo("build.rs").exists() {
        needed.push("build.rs");
    }
    for path in needed {
        assert!(
            copied.contains(path),
            "the build stage does not COPY {path}"
        );
    }
}

#[test]
fn dockerignore_keeps_the_build_context_small() {
    for kept in [
        "Cargo.toml",
        "Cargo.lock",
        "src/main.rs",
        "benches",
        "deploy/docker/healthcheck.sh",
        "deploy/docker/install-speedtest.sh",
    ] {
        assert!(
            in_build_context(kept),
            "{kept} must be in the build context"
        );
    }
    for dropped in [
        "target/debug/internet-monitor",
        ".git/HEAD",
        "tests/deploy.rs",
        "tools/dashcheck/node_modules/typescript/package.json",
        "internet-monitor.redb",
        "grafana/dashboards/internet-monitor.json",
        "deploy/docker-compose.yml",
    ] {
        assert!(
            !in_build_context(dropped),
            "{dropped} must stay out of the build context"
        );
    }
}

/// The image's installer, run against local archives: the right archive per architecture, and
/// nothing installed unless the pinned SHA-256 matches.
#[test]
fn speedtest_installer_verifies_the_pinned_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let mirror = dir.path().join("mirror");
    std::fs::create_dir(&mirror).unwrap();
    let mut sums = BTreeMap::new();
    for ookla in ["x86_64", "aarch64", "armhf"] {
        let stage = dir.path().join(ookla);
        std::fs::create_dir(&stage).unwrap();
        std::fs::write(
            stage.join("speedtest"),
            format!("#!/bin/sh\necho {ookla}\n"),
        )
        .unwrap();
        let archive = mirror.join(format!("ookla-speedtest-1.2.0-linux-{ookla}.tgz"));
        run_ok(
            Command::new("tar")
                .arg("-czf")
                .arg(&archive)
                .arg("-C")
                .arg(&stage)
                .arg("speedtest"),
            "install tar",
        );
        let out = run_ok(Command::new("sha256sum").arg(&archive), "install coreutils");
        sums.insert(ookla, out.split_whitespace().next().unwrap().to_owned());
    }
    let installer = |platform: &str, env: &[(&str, &str)], dest: &Path| -> Output {
        let (arch, variant) = platform.split_once('/').unwrap_or((platform, ""));
        let mut command = Command::new("sh");
        command
            .arg(repo("deploy/docker/install-speedtest.sh"))
            .arg(dest)
            .env("TARGETARCH", arch)
            .env("TARGETVARIANT", variant)
            .env("SPEEDTEST_VERSION", "1.2.0")
            .env("SPEEDTEST_URL", format!("file://{}", mirror.display()))
            .env_remove("SPEEDTEST_SHA256_X86_64")
            .env_remove("SPEEDTEST_SHA256_AARCH64")
            .env_remove("SPEEDTEST_SHA256_ARMHF");
        command.envs(env.iter().copied());
        run(&mut command, "install sh, curl, tar and coreutils")
    };
    for (platform, ookla, var) in [
        ("amd64", "x86_64", "SPEEDTEST_SHA256_X86_64"),
        ("arm64", "aarch64", "SPEEDTEST_SHA256_AARCH64"),
        ("arm/v7", "armhf", "SPEEDTEST_SHA256_ARMHF"),
    ] {
        let dest = dir.path().join(format!("out-{ookla}"));
        let output = installer(platform, &[(var, &sums[ookla])], &dest);
        assert!(
            output.status.success(),
            "{platform}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let installed = std::fs::read_to_string(dest.join("speedtest")).unwrap();
        assert!(
            installed.contains(ookla),
            "{platform} installed {installed:?}"
        );

        // A wrong checksum (another architecture's) and an empty one install nothing.
        let wrong = &sums[if ookla == "x86_64" { "armhf" } else { "x86_64" }];
        let dest = dir.path().join(format!("wrong-{ookla}"));
        let output = installer(platform, &[(var, wrong)], &dest);
        assert!(
            !output.status.success(),
            "{platform}: a wrong checksum passed"
        );
        assert!(String::from_utf8_lossy(&output.stderr).contains("does not match"));
        assert!(!dest.exists());
        let output = installer(platform, &[], &dest);
        assert!(!output.status.success(), "{platform}: no checksum passed");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(&format!("{var} is empty")),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!dest.exists());
    }
    let output = installer("riscv64", &[], &dir.path().join("riscv"));
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no Ookla Speedtest CLI build"));
}

/// Plays the server for one health check on `listener`: answers `answer` (a whole HTTP
/// response) to the first connection asking for /healthz and returns its request head, read
/// whole (bash may write it in pieces, and closing before the last one kills the script with
/// SIGPIPE). Another connection (another test on this machine trying a port it thought free)
/// is dropped.
fn answer_healthcheck(listener: TcpListener, answer: &str) -> String {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + common::PATIENCE;
    loop {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(err) => panic!("the health check never connected: {err}"),
        };
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(common::PATIENCE)).unwrap();
        let mut request = Vec::new();
        let mut piece = [0u8; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            match stream.read(&mut piece) {
                Ok(read) if read > 0 => request.extend_from_slice(&piece[..read]),
                _ => break,
            }
        }
        if request.starts_with(b"GET /healthz HTTP/1.1\r\n") && request.ends_with(b"\r\n\r\n") {
            stream.write_all(answer.as_bytes()).unwrap();
            return String::from_utf8_lossy(&request).into_owned();
        }
    }
}

/// The image's HEALTHCHECK against a real exporter, a closed port and a failing /healthz.
#[test]
fn healthcheck_script_reports_what_healthz_says() {
    let healthcheck = |listen: &str| -> Output {
        run(
            Command::new("bash")
                .arg(repo("deploy/docker/healthcheck.sh"))
                .env("INTERNET_MONITOR_LISTEN", listen),
            "install bash",
        )
    };

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("samples.redb");
    let exporter = Server::start(common::serve_command(
        &db,
        "ok-1.2-with-loaded-latency",
        &[],
    ));
    let port = exporter.address.rsplit_once(':').unwrap().1;
    let output = healthcheck(&format!("0.0.0.0:{port}"));
    assert!(
        output.status.success(),
        "healthy exporter: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // `--listen` given as an argument (`docker run IMAGE serve --listen :PORT`) wins over
    // INTERNET_MONITOR_LISTEN, as it does for serve: the script reads PID 1's command line
    // (tini's, which holds serve's), here a file standing in for /proc/1/cmdline.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let wrong = closed.local_addr().unwrap().port();
    drop(closed);
    for listen in [
        vec!["--listen".to_owned(), format!(":{port}")],
        vec![format!("--listen=localhost:{port}")],
        vec!["--listen".to_owned(), port.to_owned()],
    ] {
        let cmdline = dir.path().join("cmdline");
        let mut words = vec![
            "/usr/bin/tini",
            "--",
            "/usr/local/bin/internet-monitor",
            "serve",
        ];
        words.extend(listen.iter().map(String::as_str));
        let text: String = words.iter().map(|word| format!("{word}\0")).collect();
        std::fs::write(&cmdline, text).unwrap();
        let output = run(
            Command::new("bash")
                .arg(repo("deploy/docker/healthcheck.sh"))
                .env("INTERNET_MONITOR_LISTEN", format!("0.0.0.0:{wrong}"))
                .env("HEALTHCHECK_CMDLINE", &cmdline),
            "install bash",
        );
        assert!(
            output.status.success(),
            "{listen:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    drop(exporter);

    // Nothing listening.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    assert!(!healthcheck(&format!("0.0.0.0:{port}")).status.success());

    // A store that is not usable: /healthz answers 503.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let answer = std::thread::spawn(move || {
        let body = r#"{"error": "store unavailable"}"#;
        answer_healthcheck(
            listener,
            &format!(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
    });
    let output = healthcheck(&format!("[::]:{port}"));
    let request = answer.join().unwrap();
    assert!(
        request.starts_with("GET /healthz HTTP/1.1\r\n"),
        "{request:?}"
    );
    assert!(!output.status.success(), "a 503 must be unhealthy");
    assert!(String::from_utf8_lossy(&output.stderr).contains("503"));
}

/// A `--listen` naming one address (`[::1]:PORT`, `127.0.0.2:PORT`) is asked on that address,
/// where serve listens, not on 127.0.0.1; a name is never looked up, a port above 65535 refused.
#[test]
fn healthcheck_asks_the_address_listen_names() {
    let dir = tempfile::tempdir().unwrap();
    let healthcheck = |listen: &str| -> Output {
        let cmdline = dir.path().join("cmdline");
        std::fs::write(
            &cmdline,
            // --speedtest-arg takes any value, --listen=… too: not serve's --listen.
            format!("/usr/bin/tini\0--\0serve\0--listen\0{listen}\0--speedtest-arg\0--listen=:1\0"),
        )
        .unwrap();
        run(
            Command::new("bash")
                .arg(repo("deploy/docker/healthcheck.sh"))
                .env_remove("INTERNET_MONITOR_LISTEN")
                .env("HEALTHCHECK_CMDLINE", &cmdline),
            "install bash",
        )
    };
    for host in ["[::1]", "127.0.0.2"] {
        let listener = TcpListener::bind(format!("{host}:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let answer = std::thread::spawn(move || {
            answer_healthcheck(
                listener,
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
        });
        let output = healthcheck(&format!("{host}:{port}"));
        assert!(
            output.status.success(),
            "{host}: {} {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let request = answer.join().unwrap();
        assert!(
            request.contains(&format!("Host: {host}\r\n")),
            "{request:?}"
        );
    }
    for (listen, says) in [
        ("monitor.example:5000", "cannot read an address"),
        (":99999", "above 65535"),
    ] {
        let output = healthcheck(listen);
        assert!(!output.status.success(), "{listen}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{listen}: {stderr}");
    }
}

// ---------------------------------------------------------------------------------------------
// systemd

#[test]
#[ignore = "needs systemd-analyze (Debian package systemd); .ci/run installs it and runs the ignored tests"]
fn systemd_unit_verifies_and_is_hardened() {
    let unit = read(UNIT);
    for wanted in [
        "DynamicUser=yes",
        "StateDirectory=internet-monitor",
        "Environment=INTERNET_MONITOR_DB=/var/lib/internet-monitor/",
        "Environment=HOME=/var/lib/internet-monitor",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=AF_INET AF_INET6",
        "SystemCallFilter=@system-service\n",
        "KillMode=mixed",
    ] {
        assert!(unit.contains(wanted), "the unit lacks {wanted:?}");
    }
    // The exporter raises its open-file limit (setrlimit is in @resources).
    assert!(
        !unit.contains("~@resources"),
        "the exporter calls setrlimit"
    );

    // systemd-analyze wants the executable to exist: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("internet-monitor.service");
    std::fs::write(&file, unit.replace("/usr/local/bin/internet-monitor", BIN)).unwrap();
    let output = run(
        Command::new("systemd-analyze").arg("verify").arg(&file),
        FIX_SYSTEMD,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "systemd-analyze verify: {stderr}");
    assert!(
        !stderr.contains("internet-monitor.service"),
        "systemd-analyze verify complains: {stderr}"
    );
    // Exposure on systemd's 0–10 scale, times 10: at most 2.0 ("OK").
    let out = run_ok(
        Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--threshold=20", "--no-pager"])
            .arg(&file),
        FIX_SYSTEMD,
    );
    assert!(out.contains("Overall exposure level"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// End to end: the dashboard's and the alerts' queries against a real Prometheus

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET path` on Prometheus's API, as JSON.
fn api(prometheus: &str, path: &str) -> Value {
    let response = try_request(prometheus, "GET", path)
        .unwrap_or_else(|err| panic!("Prometheus at {prometheus}: {err}"));
    serde_json::from_str(&response.body)
        .unwrap_or_else(|err| panic!("{path}: not JSON ({err}): {}", response.body))
}

fn instant(prometheus: &str, expr: &str) -> Value {
    api(prometheus, &format!("/api/v1/query?query={}", encode(expr)))
}

/// Polls until `check` accepts the answer to `expr`.
fn wait_until(prometheus: &str, expr: &str, check: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = try_request(
            prometheus,
            "GET",
            &format!("/api/v1/query?query={}", encode(expr)),
        )
        .ok()
        .and_then(|response| serde_json::from_str::<Value>(&response.body).ok());
        if answer.as_ref().is_some_and(&check) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never satisfied {expr}: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Metric names an expression uses that the exporter must serve.
fn exporter_metrics(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let word_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
        if word_char(bytes[start]) && (start == 0 || !word_char(bytes[start - 1])) {
            let end = (start..bytes.len())
                .find(|&i| !word_char(bytes[i]))
                .unwrap_or(bytes.len());
            let word = &expr[start..end];
            let quoted = expr[..start].matches('"').count() % 2 == 1;
            if !quoted
                && ["speedtest_", "internet_monitor_", "process_"]
                    .iter()
                    .any(|prefix| word.starts_with(prefix))
            {
                names.insert(word.to_owned());
            }
            start = end;
        } else {
            start += 1;
        }
    }
    names
}

/// A second scrape target with the connectivity monitor's families, rendered by the exporter's
/// own [`Metrics`] (so the names, labels and encoding are the real ones): every scrape is one
/// healthy probe round of a gateway and two public targets, after a finished outage restored
/// from yesterday. It stands in for `serve`'s probe loop, which needs real targets.
struct ProbeFeeder {
    address: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl ProbeFeeder {
    fn start() -> ProbeFeeder {
        use internet_monitor::metrics::Metrics;
        use internet_monitor::probe::minute::MinuteAggregate;
        use internet_monitor::probe::outage::{Outage, OutageKind, Round};
        use internet_monitor::probe::{ProbeMethod, ProbeResult, Target, TargetKind};
        use internet_monitor::time::Timestamp;

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let metrics = Metrics::new().unwrap();
        let yesterday = Timestamp::now().saturating_sub(Duration::from_secs(86_400));
        metrics.set_probe_interval(Duration::from_secs(10));
        metrics.restore_outages(&[Outage {
            start: yesterday,
            end: Some(yesterday.saturating_add(Duration::from_secs(95))),
            kind: OutageKind::Isp,
            unmonitored: Duration::ZERO,
            restarts: 0,
        }]);
        let targets = [
            (TargetKind::Gateway, "192.0.2.1"),
            (TargetKind::Public, "198.51.100.1"),
            (TargetKind::Public, "203.0.113.1"),
        ]
        .map(|(kind, address)| Target {
            kind,
            address: address.parse().unwrap(),
            method: ProbeMethod::IcmpUnprivileged,
        });
        std::thread::spawn(move || {
            for (round, stream) in listener.incoming().enumerate() {
                if stopped.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let Ok(mut stream) = stream else { continue };
                let at = Timestamp::now();
                for (index, target) in targets.iter().enumerate() {
                    let rtt =
                        Duration::from_micros(1_000 + 9_000 * index as u64 + round as u64 % 7);
                    metrics.observe_probe(target, &ProbeResult { at, rtt: Some(rtt) });
                    let micros = rtt.as_micros() as u64;
                    metrics.observe_probe_minute(
                        target,
                        &MinuteAggregate {
                            minute: at,
                            sent: 6,
                            lost: 0,
                            rtt_min_us: Some(micros),
                            rtt_median_us: Some(micros + 500),
                            rtt_max_us: Some(micros + 4_000),
                            under_load: false,
                        },
                    );
                }
                let up = Round {
                    at,
                    gateway: true,
                    public: true,
                };
                metrics.observe_round(&up, None);
                // The whole request head, or closing on unread bytes resets the connection
                // and the client loses the answer (a single read may return part of it).
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65_536 {
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(read) => request.extend_from_slice(&chunk[..read]),
                    }
                }
                let body = metrics.render().unwrap();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    internet_monitor::metrics::CONTENT_TYPE,
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        ProbeFeeder { address, stop }
    }

    /// The exposition it serves, as the exporter's `/metrics` body.
    fn exposition(&self) -> String {
        try_request(&self.address, "GET", "/metrics").unwrap().body
    }
}

impl Drop for ProbeFeeder {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(&self.address); // wakes the accept loop
    }
}

#[test]
#[ignore = "needs a Prometheus server (Debian package prometheus) and PyYAML; .ci/run installs them and runs the ignored tests"]
fn dashboard_and_alert_queries_run_against_a_real_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("samples.redb");
    // Pushing to a receiver that is not there, so the outbox series the alerts read are served.
    let mut exporter = Server::start(common::serve_command(
        &db,
        "ok-1.2-with-loaded-latency",
        &[
            "--plan-download",
            "500Mbit/s",
            "--plan-upload",
            "50Mbit/s",
            "--remote-write.url",
            "http://127.0.0.1:9/api/v1/write",
        ],
    ));
    exporter.wait_for_log("test succeeded");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !exporter
        .get("/metrics")
        .body
        .contains("internet_monitor_remote_write_oldest_pending_age_seconds ")
    {
        assert!(
            Instant::now() < deadline,
            "the stored run is not shown pending in the outbox"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Every metric the dashboard and the alerts name is one the exporter serves (the probe
    // families as the probe loop feeds them).
    let feeder = ProbeFeeder::start();
    let exposition = exporter.get("/metrics").body + &feeder.exposition();
    let served: BTreeSet<&str> = exposition
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| line.split(['{', ' ']).next().unwrap())
        .collect();
    let queries: Vec<Query> = dashboard_queries()
        .into_iter()
        .filter(|query| query.file != FLEET_DASHBOARD)
        .collect();
    // The fleet's alerts read what sites push: the fleet test checks those.
    let alerts: Vec<Alert> = alerts()
        .into_iter()
        .filter(|alert| alert.file == RULES)
        .collect();
    let mut unknown = Vec::new();
    for (name, expr) in queries
        .iter()
        .map(|q| (q.name.clone(), q.expr.clone()))
        .chain(
            alerts
                .iter()
                .map(|a| (a.name.clone(), a.rule["expr"].as_str().unwrap().to_owned())),
        )
    {
        for metric in exporter_metrics(&expr) {
            if !served.contains(metric.as_str()) {
                unknown.push(format!("{name}: {metric}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "not served by the exporter:\n{}",
        unknown.join("\n")
    );

    // Prometheus with the deployment's alert rules and scrape job name, scraping every second.
    let deploy_config = yaml(PROMETHEUS_CONFIG);
    let job = scrape_job(&deploy_config)["job_name"]
        .as_str()
        .unwrap()
        .to_owned();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        json!({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [repo(RULES)],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [exporter.address, feeder.address]}]}],
        })
        .to_string(),
    )
    .unwrap();
    let server = Prometheus::start(&config, dir.path());
    let prometheus = server.address.clone();

    // Enough scrapes for rates over a few seconds.
    wait_until(&prometheus, "count_over_time(speedtest_up[1m])", |answer| {
        answer["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|n| n >= 6.0)
    });

    let mut failures = Vec::new();
    for query in &queries {
        let expr = substitute(&query.expr);
        let answer = instant(&prometheus, &expr);
        if answer["status"] != "success" {
            failures.push(format!("{}: {expr}\n  {answer}", query.name));
        } else if answer["data"]["result"]
            .as_array()
            .is_none_or(Vec::is_empty)
        {
            failures.push(format!("{}: no data: {expr}", query.name));
        }
    }
    for alert in &alerts {
        let expr = alert.rule["expr"].as_str().unwrap();
        let answer = instant(&prometheus, expr);
        if answer["status"] != "success" {
            failures.push(format!("alert {}: {expr}\n  {answer}", alert.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The instance variable's query finds this exporter.
    let values = api(
        &prometheus,
        &format!(
            "/api/v1/label/instance/values?{}",
            encode("match[]") + "=" + &encode("internet_monitor_build_info")
        ),
    );
    assert!(
        values["data"]
            .as_array()
            .unwrap()
            .contains(&json!(exporter.address)),
        "{values}"
    );

    // Prometheus loaded and evaluated every alert rule, and a healthy exporter over its plan
    // fires none of them.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rules = api(&prometheus, "/api/v1/rules");
        let loaded: Vec<&Value> = rules["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|group| group["rules"].as_array().unwrap())
            .collect();
        let evaluated = loaded.len() == alerts.len()
            && loaded.iter().all(|rule| {
                rule["health"] == "ok"
                    && rule["lastEvaluation"]
                        .as_str()
                        .is_some_and(|t| !t.starts_with("0001"))
            });
        if evaluated {
            let active: Vec<&Value> = loaded
                .iter()
                .flat_map(|rule| rule["alerts"].as_array().unwrap())
                .collect();
            assert!(
                active.is_empty(),
                "alerts for a healthy exporter: {active:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rules not loaded and evaluated: {rules}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn expression_metric_names_are_found() {
    assert_eq!(
        exporter_metrics(
            r#"sum by (result) (increase(speedtest_runs_total{instance=~"speedtest_x"}[5m])) / process_start_time_seconds and up"#
        ),
        BTreeSet::from([
            "process_start_time_seconds".to_owned(),
            "speedtest_runs_total".to_owned()
        ])
    );
    assert!(glob_match("*", "target"));
    assert!(!glob_match("*", "deploy/docker"));
    assert!(glob_match("deploy/docker", "deploy/docker"));
    assert!(glob_match("src/*.rs", "src/main.rs"));
}

// ---------------------------------------------------------------------------------------------
// The fleet example (deploy/fleet): sites push with remote_write to one central Prometheus

const FLEET_AGENT_COMPOSE: &str = "deploy/fleet/agent/docker-compose.yml";
const FLEET_DROP_IN: &str = "deploy/fleet/agent/remote-write.conf";
const FLEET_CENTRAL_COMPOSE: &str = "deploy/fleet/central/docker-compose.yml";
const FLEET_PROMETHEUS_CONFIG: &str = "deploy/fleet/central/prometheus/prometheus.yml";
const FLEET_WEB_CONFIG: &str = "deploy/fleet/central/prometheus/web-config.yml";
const FLEET_DATASOURCE: &str = "deploy/fleet/central/grafana/datasources/prometheus.yml";
const FLEET_GITIGNORE: &str = "deploy/fleet/.gitignore";

/// The fleet's compose files use file-based secrets too.
const FLEET_COMPOSE_SERVICE_KEYS: &[&str] = &["secrets"];

/// The users of the central Prometheus's web configuration, by name.
fn fleet_users() -> BTreeMap<String, Value> {
    let web = yaml(FLEET_WEB_CONFIG);
    web["basic_auth_users"]
        .as_object()
        .expect("basic_auth_users in the fleet's web config")
        .iter()
        .map(|(name, hash)| (name.clone(), hash.clone()))
        .collect()
}

#[test]
#[ignore = "needs promtool (Debian package prometheus) and PyYAML; .ci/run installs them and runs the ignored tests"]
fn fleet_prometheus_config_and_web_config_pass_promtool() {
    let out = run_ok(
        Command::new("promtool")
            .args(["check", "config"])
            .arg(repo(FLEET_PROMETHEUS_CONFIG)),
        FIX_PROMETHEUS,
    );
    assert!(out.contains("SUCCESS"), "{out}");
    let output = run(
        Command::new("promtool")
            .args(["check", "web-config"])
            .arg(repo(FLEET_WEB_CONFIG)),
        FIX_PROMETHEUS,
    );
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && said.contains("SUCCESS"),
        "promtool check web-config: {said}"
    );

    // Late results (a site that was offline) are accepted for a while.
    let config = yaml(FLEET_PROMETHEUS_CONFIG);
    assert_eq!(
        config["rule_files"],
        json!(["rules/fleet.rules.yml"]),
        "the fleet's alerts are loaded"
    );
    assert!(
        repo("deploy/fleet/central/prometheus")
            .join("rules/fleet.rules.yml")
            .is_file()
    );
    let window = config["storage"]["tsdb"]["out_of_order_time_window"]
        .as_str()
        .expect("storage.tsdb.out_of_order_time_window");
    assert!(
        humantime::parse_duration(window).unwrap() >= Duration::from_secs(86_400),
        "an out-of-order window of {window} loses a site's results after a day's outage"
    );
    assert!(
        config["scrape_configs"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "the sites push; the central Prometheus scrapes nothing"
    );

    // A user for the sites and one for Grafana, each with a bcrypt hash.
    let users = fleet_users();
    assert_eq!(
        users.keys().map(String::as_str).collect::<Vec<_>>(),
        ["grafana", "push"]
    );
    for (name, hash) in &users {
        let hash = hash.as_str().unwrap();
        assert!(
            ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) && hash.len() == 60,
            "{name}: not a bcrypt hash: {hash}"
        );
    }
}

/// A compose file's services, each checked against the keys it may use, and its bind mounts
/// (`(service, target)` → the source), which must exist and be read-only; named volumes and
/// secrets must be declared, a secret's file ignored by git.
fn fleet_compose(relative: &str) -> (Value, BTreeMap<(String, String), PathBuf>) {
    let compose = yaml(relative);
    let dir = repo(relative).parent().unwrap().to_owned();
    let declared_volumes: BTreeSet<&str> = compose["volumes"]
        .as_object()
        .map(|volumes| volumes.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let declared_secrets = compose["secrets"].as_object().cloned().unwrap_or_default();
    let ignored: Vec<String> = read(FLEET_GITIGNORE)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with('!'))
        .map(|line| line.trim_start_matches('/').to_owned())
        .collect();
    let fleet = repo("deploy/fleet").canonicalize().unwrap();
    for (name, secret) in &declared_secrets {
        let file = secret["file"].as_str().expect("a file secret");
        let path = dir.join(file);
        let parent = path.parent().unwrap().canonicalize().unwrap();
        let inside = parent
            .strip_prefix(&fleet)
            .unwrap_or_else(|_| panic!("{relative}: secret {name} outside deploy/fleet"))
            .join(path.file_name().unwrap());
        let inside = inside.to_str().unwrap();
        assert!(
            ignored.iter().any(|glob| glob_match(glob, inside)),
            "{relative}: secret {name} ({inside}) is not in {FLEET_GITIGNORE}: a password would be committed"
        );
    }

    let mut mounts = BTreeMap::new();
    for (name, service) in compose["services"].as_object().expect("services") {
        for key in service.as_object().unwrap().keys() {
            assert!(
                COMPOSE_SERVICE_KEYS.contains(&key.as_str())
                    || FLEET_COMPOSE_SERVICE_KEYS.contains(&key.as_str()),
                "{relative}: {name}: unexpected key {key:?} (typo?)"
            );
        }
        let mut has_named_volume = false;
        for volume in service["volumes"].as_array().expect("volumes") {
            let spec = volume.as_str().expect("short volume syntax");
            let mut parts = spec.split(':');
            let (source, target) = (parts.next().unwrap(), parts.next().expect("a target"));
            if source.starts_with('.') || source.starts_with('/') {
                let path = dir.join(source);
                assert!(
                    path.exists(),
                    "{relative}: {name} mounts {source}, which does not exist"
                );
                assert!(
                    spec.ends_with(":ro"),
                    "{relative}: {name}: mount {source} read-only"
                );
                mounts.insert((name.clone(), target.to_owned()), path);
            } else {
                assert!(
                    declared_volumes.contains(source),
                    "{relative}: {name}: volume {source} is not declared"
                );
                has_named_volume = true;
            }
        }
        assert!(
            has_named_volume,
            "{relative}: {name} keeps its data in a named volume"
        );
        for secret in service["secrets"].as_array().into_iter().flatten() {
            let secret = secret.as_str().expect("short secret syntax");
            assert!(
                declared_secrets.contains_key(secret),
                "{relative}: {name}: secret {secret} is not declared"
            );
        }
    }
    (compose, mounts)
}

/// `serve`'s `--name=value` flags in a command line (after `serve`): name → values.
fn serve_flags(args: &[String]) -> BTreeMap<String, Vec<String>> {
    assert_eq!(args.first().map(String::as_str), Some("serve"), "{args:?}");
    let mut flags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for arg in &args[1..] {
        let (name, value) = arg
            .strip_prefix("--")
            .and_then(|flag| flag.split_once('='))
            .unwrap_or_else(|| panic!("{arg:?}: write flags as --name=value"));
        flags
            .entry(name.to_owned())
            .or_default()
            .push(value.to_owned());
    }
    flags
}

/// The agent's `serve` command line in the compose example.
fn fleet_agent_command() -> Vec<String> {
    let compose = yaml(FLEET_AGENT_COMPOSE);
    compose["services"]["internet-monitor"]["command"]
        .as_array()
        .expect("the agent's command, a list")
        .iter()
        .map(|arg| arg.as_str().unwrap().to_owned())
        .collect()
}

/// The systemd drop-in's `ExecStart=` (continuation lines joined) after the executable, and its
/// `LoadCredential=` (name → file).
fn fleet_drop_in() -> (Vec<String>, BTreeMap<String, String>) {
    let text = read(FLEET_DROP_IN).replace("\\\n", " ");
    let mut exec = None;
    let mut credentials = BTreeMap::new();
    for line in text.lines() {
        if let Some(command) = line.strip_prefix("ExecStart=") {
            exec = Some(command.split_whitespace().map(str::to_owned).collect());
        } else if let Some(credential) = line.strip_prefix("LoadCredential=") {
            let (name, file) = credential
                .split_once(':')
                .expect("LoadCredential=NAME:FILE");
            credentials.insert(name.to_owned(), file.to_owned());
        }
    }
    let exec: Vec<String> = exec.expect("an ExecStart= in the drop-in");
    assert_eq!(
        exec[0], "/usr/local/bin/internet-monitor",
        "the unit's executable"
    );
    (exec[1..].to_vec(), credentials)
}

#[test]
#[ignore = "needs PyYAML (pip install pyyaml); .ci/run installs it and runs the ignored tests"]
fn fleet_compose_files_mount_what_exists_and_agree() {
    let users = fleet_users();

    // The agent: built from this repository, its data in a volume, no published port, pushing
    // as a user the receiver knows with the password from a secret.
    let (agent, _) = fleet_compose(FLEET_AGENT_COMPOSE);
    let services: Vec<&String> = agent["services"].as_object().unwrap().keys().collect();
    assert_eq!(services, ["internet-monitor"]);
    let monitor = &agent["services"]["internet-monitor"];
    assert!(
        monitor.get("ports").is_none(),
        "a site pushes: no port to publish"
    );
    let context = repo("deploy/fleet/agent").join(monitor["build"]["context"].as_str().unwrap());
    assert_eq!(
        context.canonicalize().unwrap(),
        repo("").canonicalize().unwrap()
    );
    assert!(
        context
            .join(monitor["build"]["dockerfile"].as_str().unwrap())
            .is_file()
    );
    assert!(
        monitor["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v.as_str().unwrap().ends_with(":/data"))
    );
    for (key, value) in monitor["environment"].as_object().unwrap() {
        assert!(key.starts_with("INTERNET_MONITOR_"), "{key}");
        assert!(value.as_str().is_some_and(|v| !v.is_empty()), "{key}");
    }
    let flags = serve_flags(&fleet_agent_command());
    let one = |name: &str| -> &str {
        match flags.get(name).map(Vec::as_slice) {
            Some([value]) => value,
            other => panic!("the agent's --{name}: {other:?}"),
        }
    };
    let url = one("remote-write.url");
    assert!(
        url.starts_with("https://") && url.ends_with("/api/v1/write"),
        "{url}: Prometheus's receiver over TLS"
    );
    assert!(
        one("remote-write.label").starts_with("site="),
        "the dashboard's site label"
    );
    let user = one("remote-write.basic-auth-username");
    assert!(
        users.contains_key(user),
        "the agent pushes as {user}, not a user of {FLEET_WEB_CONFIG}"
    );
    let secret = one("remote-write.basic-auth-password-file")
        .strip_prefix("/run/secrets/")
        .expect("the password from a compose secret");
    assert!(
        monitor["secrets"]
            .as_array()
            .unwrap()
            .contains(&json!(secret))
    );

    // The systemd drop-in pushes the same way, its password handed over by LoadCredential.
    let (exec, credentials) = fleet_drop_in();
    let unit_flags = serve_flags(&exec);
    for name in [
        "remote-write.url",
        "remote-write.label",
        "remote-write.basic-auth-username",
    ] {
        assert_eq!(unit_flags.get(name), flags.get(name), "--{name}");
    }
    let credential = unit_flags["remote-write.basic-auth-password-file"][0]
        .strip_prefix("%d/")
        .expect("the password file in the credentials directory (%d)");
    assert!(
        credentials.contains_key(credential),
        "no LoadCredential={credential}:…"
    );

    // The centre: Prometheus receives with this folder's configuration and web configuration;
    // Grafana has the repository's dashboards, the fleet one at home, and logs in to Prometheus.
    let (central, mounts) = fleet_compose(FLEET_CENTRAL_COMPOSE);
    let services: BTreeSet<&String> = central["services"].as_object().unwrap().keys().collect();
    assert_eq!(
        services,
        BTreeSet::from([&"grafana".to_owned(), &"prometheus".to_owned()])
    );
    let command: Vec<&str> = central["services"]["prometheus"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| arg.as_str().unwrap())
        .collect();
    assert!(command.contains(&"--web.enable-remote-write-receiver"));
    let mounted = |service: &str, flag: &str| -> PathBuf {
        let file = command
            .iter()
            .find_map(|arg| arg.strip_prefix(flag))
            .unwrap_or_else(|| panic!("{service}: no {flag}"));
        let (dir, name) = file.rsplit_once('/').unwrap();
        mounts[&(service.to_owned(), dir.to_owned())]
            .join(name)
            .canonicalize()
            .unwrap()
    };
    assert_eq!(
        mounted("prometheus", "--config.file="),
        repo(FLEET_PROMETHEUS_CONFIG).canonicalize().unwrap()
    );
    assert_eq!(
        mounted("prometheus", "--web.config.file="),
        repo(FLEET_WEB_CONFIG).canonicalize().unwrap()
    );
    let grafana_mount = |target: &str| -> PathBuf {
        mounts
            .get(&("grafana".to_owned(), target.to_owned()))
            .unwrap_or_else(|| panic!("grafana mounts nothing at {target}"))
            .canonicalize()
            .unwrap()
    };
    assert_eq!(
        grafana_mount("/etc/grafana/provisioning/dashboards"),
        repo("grafana/provisioning/dashboards")
            .canonicalize()
            .unwrap()
    );
    let provider = yaml("grafana/provisioning/dashboards/internet-monitor.yml");
    let path = provider["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    assert_eq!(
        grafana_mount(path),
        repo(DASHBOARDS).canonicalize().unwrap()
    );
    let home =
        central["services"]["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
            .as_str()
            .unwrap();
    assert_eq!(home, format!("{path}/{FLEET_DASHBOARD}"));
    assert!(repo(DASHBOARDS).join(FLEET_DASHBOARD).is_file());
    assert_eq!(
        grafana_mount("/etc/grafana/provisioning/datasources"),
        repo(FLEET_DATASOURCE)
            .parent()
            .unwrap()
            .canonicalize()
            .unwrap()
    );
    let datasources = yaml(FLEET_DATASOURCE);
    assert_eq!(datasources["apiVersion"], 1);
    let datasource = &datasources["datasources"][0];
    assert_eq!(datasource["type"], "prometheus");
    assert_eq!(datasource["url"], "http://prometheus:9090");
    assert_eq!(datasource["basicAuth"], true);
    let user = datasource["basicAuthUser"].as_str().unwrap();
    assert!(users.contains_key(user), "Grafana logs in as {user}");
    let secrets: Vec<&str> = central["services"]["grafana"]["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let password = datasource["secureJsonData"]["basicAuthPassword"]
        .as_str()
        .unwrap();
    assert!(
        secrets
            .iter()
            .any(|secret| password == format!("$__file{{/run/secrets/{secret}}}")),
        "Grafana's password {password} is none of its secrets {secrets:?}"
    );
}

#[test]
#[ignore = "needs systemd-analyze (Debian package systemd); .ci/run installs it and runs the ignored tests"]
fn fleet_systemd_drop_in_verifies() {
    // The unit and the drop-in, pointed at the binary under test (systemd-analyze wants the
    // executable to exist).
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("internet-monitor.service");
    std::fs::write(
        &unit,
        read(UNIT).replace("/usr/local/bin/internet-monitor", BIN),
    )
    .unwrap();
    let drop_ins = dir.path().join("internet-monitor.service.d");
    std::fs::create_dir(&drop_ins).unwrap();
    let drop_in = read(FLEET_DROP_IN).replace("/usr/local/bin/internet-monitor", BIN);
    let verify = |text: &str| -> String {
        std::fs::write(drop_ins.join("remote-write.conf"), text).unwrap();
        let output = run(
            Command::new("systemd-analyze").arg("verify").arg(&unit),
            FIX_SYSTEMD,
        );
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "systemd-analyze verify: {stderr}");
        stderr
    };
    // systemd-analyze reads the drop-in beside the unit: a bad key in it is reported.
    let complaint = verify(&format!("{drop_in}NoSuchKey=1\n"));
    assert!(complaint.contains("NoSuchKey"), "{complaint}");
    let stderr = verify(&drop_in);
    assert!(
        !stderr.contains("internet-monitor.service"),
        "systemd-analyze verify complains: {stderr}"
    );
}

/// The password of every user of the test's Prometheus.
const FLEET_TEST_PASSWORD: &str = "fleet-test-password";
/// bcrypt of [`FLEET_TEST_PASSWORD`] at cost 4 (the cheapest), made with Python's `crypt`.
const FLEET_TEST_HASH: &str = "$2b$04$0nXBehaM3E32KmZWTQ1UdOGlJb4bgxaMSc69Vo1eSav/w1589fcW6";

/// The fleet's Prometheus, which wants a password for every request.
struct Central {
    address: String,
    authorization: String,
}

impl Central {
    /// `GET path` with the password; `None` while Prometheus does not answer with JSON.
    fn try_get(&self, path: &str) -> Option<(u16, String)> {
        try_request_with(
            &self.address,
            "GET",
            path,
            &[("Authorization", &self.authorization)],
        )
        .ok()
        .map(|response| (response.status, response.body))
    }

    fn api(&self, path: &str) -> Value {
        let (status, body) = self
            .try_get(path)
            .unwrap_or_else(|| panic!("Prometheus at {}: no answer to {path}", self.address));
        serde_json::from_str(&body)
            .unwrap_or_else(|err| panic!("{path} ({status}): not JSON ({err}): {body}"))
    }

    fn query(&self, expr: &str) -> Value {
        self.api(&format!("/api/v1/query?query={}", encode(expr)))
    }

    /// The instant value of `expr` per `site`.
    fn per_site(&self, expr: &str) -> BTreeMap<String, f64> {
        let answer = self.query(expr);
        answer["data"]["result"]
            .as_array()
            .unwrap_or_else(|| panic!("{expr}: {answer}"))
            .iter()
            .map(|series| {
                (
                    series["metric"]["site"].as_str().unwrap_or("").to_owned(),
                    series["value"][1].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect()
    }
}

/// Drains what a server logged so far, for a failure message.
fn log_of(server: &mut Server) -> String {
    while server.next_log_within("\u{0}", Duration::ZERO).is_some() {}
    server.seen.join("\n")
}

/// Three monitors — berlin and paris succeeding, lisbon failing every second test — push with
/// the agent example's flags to a Prometheus run as the central example runs it (its
/// configuration, the receiver on, a web configuration asking for a password); every query of
/// the fleet dashboard then answers for each site it should, and the compliance, failures and
/// site variable say what the monitors did.
#[test]
#[ignore = "needs a Prometheus server (Debian package prometheus) and PyYAML; .ci/run installs them and runs the ignored tests"]
fn fleet_dashboard_queries_answer_for_every_site() {
    use base64::Engine as _;
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let started = jiff::Timestamp::now().as_second();

    // The centre, every user of its web configuration with the test's password.
    let users: serde_json::Map<String, Value> = fleet_users()
        .into_keys()
        .map(|name| (name, json!(FLEET_TEST_HASH)))
        .collect();
    let web_config = dir.path().join("web-config.yml");
    std::fs::write(&web_config, json!({"basic_auth_users": users}).to_string()).unwrap();
    let prometheus = Prometheus::start_with(
        &repo(FLEET_PROMETHEUS_CONFIG),
        &dir.path().join("data"),
        &[
            "--web.enable-remote-write-receiver",
            &format!("--web.config.file={}", web_config.display()),
        ],
    );
    let central = Central {
        address: prometheus.address.clone(),
        authorization: format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("grafana:{FLEET_TEST_PASSWORD}"))
        ),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while central
        .try_get("/-/ready")
        .is_none_or(|(status, _)| status != 200)
    {
        assert!(Instant::now() < deadline, "Prometheus never became ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    let anonymous = try_request(&central.address, "GET", "/-/ready").unwrap();
    assert_eq!(anonymous.status, 401, "the web config asks for a password");

    // The sites, with the agent example's flags: its URL, site label and password file
    // replaced by the test's.
    let password_file = dir.path().join("push-password");
    std::fs::write(&password_file, FLEET_TEST_PASSWORD).unwrap();
    let agent = fleet_agent_command();
    let flags_for = |site: &str| -> Vec<String> {
        let mut replaced = 0;
        let flags: Vec<String> = agent[1..]
            .iter()
            .map(|flag| {
                let (name, _) = flag.split_once('=').unwrap();
                let value = match name {
                    "--remote-write.url" => format!("http://{}/api/v1/write", central.address),
                    "--remote-write.label" if flag.contains("=site=") => format!("site={site}"),
                    "--remote-write.basic-auth-password-file" => {
                        password_file.display().to_string()
                    }
                    _ => return flag.clone(),
                };
                replaced += 1;
                format!("{name}={value}")
            })
            .collect();
        assert_eq!(
            replaced, 3,
            "the agent example's URL, site and password: {agent:?}"
        );
        flags
    };
    // lisbon's CLI finds no working server every second test (no_connectivity).
    let fixture = format!("{}/ok-1.2-with-loaded-latency", common::FIXTURES);
    let flaky = dir.path().join("flaky-speedtest");
    std::fs::write(
        &flaky,
        format!(
            "#!/bin/sh\n\
             runs=$(cat '{count}' 2>/dev/null || echo 0)\n\
             echo $((runs + 1)) > '{count}'\n\
             if [ $((runs % 2)) -eq 1 ]; then\n\
             \x20 FAKE_SPEEDTEST_FIXTURE='{fixtures}/err-no-working-server'; export FAKE_SPEEDTEST_FIXTURE\n\
             fi\n\
             exec '{fake}' \"$@\"\n",
            count = dir.path().join("lisbon-runs").display(),
            fixtures = common::FIXTURES,
            fake = common::FAKE,
        ),
    )
    .unwrap();
    std::fs::set_permissions(&flaky, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The fixture measures 741.8 Mbit/s down: over berlin's and lisbon's plan, under paris's.
    let sites = [
        ("berlin", common::FAKE, "500Mbit/s"),
        ("paris", common::FAKE, "1Gbit/s"),
        ("lisbon", flaky.to_str().unwrap(), "500Mbit/s"),
    ];
    let mut servers: Vec<Server> = sites
        .iter()
        .map(|(site, bin, plan)| {
            let db = dir.path().join(format!("{site}.redb"));
            let mut command = common::command(&[
                "serve",
                "--db",
                db.to_str().unwrap(),
                "--speedtest-bin",
                bin,
                "--interval",
                "1s",
                "--plan-download",
                plan,
            ]);
            command
                .args(flags_for(site))
                .env("FAKE_SPEEDTEST_FIXTURE", &fixture);
            Server::start(command)
        })
        .collect();
    let names: BTreeSet<String> = sites.iter().map(|(site, ..)| site.to_string()).collect();

    // Each site's runs arrive: a few per site, lisbon's failures among them.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let runs = central.per_site("sum by (site) (count_over_time(speedtest_up[5m]))");
        let failed = central.per_site(
            r#"sum by (site) (count_over_time(speedtest_run_result{result!="success"}[5m]))"#,
        );
        if names
            .iter()
            .all(|site| runs.get(site).is_some_and(|&n| n >= 4.0))
            && failed.get("lisbon").is_some_and(|&n| n >= 2.0)
        {
            break;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = servers.iter_mut().map(log_of).collect();
            panic!(
                "the sites' runs did not arrive: runs {runs:?}, failures {failed:?}\n{}",
                logs.join("\n----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }

    // Stopped, the monitors push nothing more: every query sees the same data.
    drop(servers);

    // The fleet's alerts read series every site pushed.
    for alert in alerts().iter().filter(|alert| alert.file == FLEET_RULES) {
        for metric in exporter_metrics(alert.rule["expr"].as_str().unwrap()) {
            let sites =
                central.per_site(&format!("count by (site) (last_over_time({metric}[5m]))"));
            assert_eq!(
                sites.keys().cloned().collect::<BTreeSet<String>>(),
                names,
                "{}: {metric} is not pushed by every site",
                alert.name
            );
        }
    }

    // The site variable lists the three.
    let dashboard = dashboards()
        .into_iter()
        .find(|(file, _)| file == FLEET_DASHBOARD)
        .expect("the fleet dashboard")
        .1;
    let variable = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "site")
        .expect("a site variable");
    let query = variable["query"]["query"].as_str().unwrap();
    let (metric, label) = query
        .strip_prefix("label_values(")
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|rest| rest.split_once(", "))
        .unwrap_or_else(|| panic!("{query}: label_values(METRIC, LABEL)"));
    let values = central.api(&format!(
        "/api/v1/label/{label}/values?{}={}",
        encode("match[]"),
        encode(metric)
    ));
    assert_eq!(values["data"], json!(names), "{query}");

    // Every query answers for every site; the failure queries for lisbon alone.
    // Range queries step 5 s (`$__interval`), each over the 5 s before the step: from before the
    // first run to 5 s after now, so that every point is in some step's window.
    let end = jiff::Timestamp::now().as_second() + 5;
    let queries: Vec<Query> = dashboard_queries()
        .into_iter()
        .filter(|query| query.file == FLEET_DASHBOARD)
        .collect();
    assert!(queries.len() >= 10, "{} queries", queries.len());
    let mut failures = Vec::new();
    for query in &queries {
        let expr = substitute(&query.expr);
        let answer = if query.range {
            central.api(&format!(
                "/api/v1/query_range?query={}&start={}&end={end}&step=5",
                encode(&expr),
                started - 5
            ))
        } else {
            central.query(&expr)
        };
        if answer["status"] != "success" {
            failures.push(format!("{}: {expr}\n  {answer}", query.name));
            continue;
        }
        let series = answer["data"]["result"].as_array().unwrap();
        let answered: BTreeSet<String> = series
            .iter()
            .map(|s| {
                s["metric"]["site"]
                    .as_str()
                    .unwrap_or("(no site)")
                    .to_owned()
            })
            .collect();
        let expected: BTreeSet<String> = if expr.contains(r#"result!="success""#) {
            BTreeSet::from(["lisbon".to_owned()])
        } else {
            names.clone()
        };
        if answered != expected {
            failures.push(format!(
                "{}: answers for {answered:?}, not {expected:?}: {expr}",
                query.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // What the panels show is what the monitors did.
    let panel_query_of = |title: &str, reference: &str| -> String {
        let needle = format!("panel {title:?} target {reference}");
        let query = queries
            .iter()
            .find(|query| query.name.ends_with(&needle))
            .unwrap_or_else(|| panic!("no {needle}"));
        substitute(&query.expr)
    };
    let panel_query = |title: &str| panel_query_of(title, "A");
    let compliance = central.per_site(&panel_query("Plan met, share of the tests"));
    assert_eq!(
        compliance,
        BTreeMap::from([
            ("berlin".to_owned(), 1.0),
            ("lisbon".to_owned(), 1.0),
            ("paris".to_owned(), 0.0)
        ])
    );
    let failed = central.query(&panel_query("Failures in the range"));
    let reasons: Vec<(&str, &str)> = failed["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["metric"]["site"].as_str().unwrap(),
                s["metric"]["result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(reasons, [("lisbon", "no_connectivity")]);
    let since = central.per_site(&panel_query("Time since the last success"));
    for (site, seconds) in &since {
        assert!(
            (0.0..60.0).contains(seconds),
            "{site}: last success {seconds} s ago"
        );
    }
    // The Sites table: each site's last run since the test started; its last success is that
    // run when it succeeded, an earlier one when it failed (lisbon's may have).
    let column = |reference: &str| central.per_site(&panel_query_of("Sites", reference));
    let (last_run, last_result, last_success) = (column("A"), column("B"), column("C"));
    let now_ms = jiff::Timestamp::now().as_millisecond() as f64;
    for site in &names {
        let run = last_run[site];
        assert!(
            ((started * 1000) as f64..=now_ms).contains(&run),
            "{site}: last run at {run} ms, not since the test started"
        );
        let success = last_success[site];
        if last_result[site] == 1.0 {
            assert_eq!(success, run, "{site}: its last run succeeded");
        } else {
            assert!(success < run, "{site}: its last run failed");
        }
    }
}
