//! Prometheus's own configuration and the alert rules: promtool checks, the rules' unit tests,
//! every dashboard and alert expression parsed.

use super::*;

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
pub(super) fn scrape_job(config: &Value) -> &Value {
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
