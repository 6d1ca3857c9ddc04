//! The deployment files — Dockerfile, docker compose, Prometheus configuration and alert rules,
//! Grafana provisioning and dashboard, systemd unit — checked with the real tools (promtool,
//! Prometheus, tsc with @grafana/schema, systemd-analyze, the image's own scripts), and every
//! dashboard and alert query run against a real Prometheus scraping a real exporter; the fleet
//! example (deploy/fleet) likewise, its dashboard's queries against a real Prometheus that three
//! monitors push to with remote_write.
//!
//! A missing tool fails its test with the command that installs it; nothing is skipped.
//! `.ci/run` installs them all.

#[path = "../common/mod.rs"]
mod common;

mod compose;
mod fleet;
mod fleet_remote_write;
mod grafana;
mod image;
mod rules;
mod scrape;
mod systemd;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

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
/// The bind mounts of one compose service (short volume syntax), target → source under `dir`,
/// after checking each: a bind mount (`./…`, `/…`) exists and is read-only, any other source is
/// a named volume in `declared`, and the service keeps its data in at least one. `what` names
/// the service in the messages.
fn service_mounts<'a>(
    what: &str,
    dir: &Path,
    service: &'a Value,
    declared: &BTreeSet<&str>,
) -> Vec<(&'a str, PathBuf)> {
    let mut mounts = Vec::new();
    let mut has_named_volume = false;
    for volume in service["volumes"].as_array().expect("volumes") {
        let spec = volume.as_str().expect("short volume syntax");
        let mut parts = spec.split(':');
        let (source, target) = (parts.next().unwrap(), parts.next().expect("a target"));
        if source.starts_with('.') || source.starts_with('/') {
            let path = dir.join(source);
            assert!(
                path.exists(),
                "{what} mounts {source}, which does not exist"
            );
            assert!(spec.ends_with(":ro"), "{what}: mount {source} read-only");
            mounts.push((target, path));
        } else {
            assert!(
                declared.contains(source),
                "{what}: volume {source} is not declared"
            );
            has_named_volume = true;
        }
    }
    assert!(has_named_volume, "{what} keeps its data in a named volume");
    mounts
}

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
