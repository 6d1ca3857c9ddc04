//! The fleet example end to end: sites push with remote_write to one central Prometheus, whose
//! dashboard and alerts answer for every site.

use super::fleet::{FLEET_PROMETHEUS_CONFIG, fleet_agent_command, fleet_users};
use super::scrape::{encode, exporter_metrics};
use super::*;

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
    common::eventually_within("Prometheus ready", Duration::from_secs(30), || {
        central
            .try_get("/-/ready")
            .is_some_and(|(status, _)| status == 200)
            .then_some(())
    });
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
    let (mut runs, mut failed) = (BTreeMap::new(), BTreeMap::new());
    let arrived = common::poll_within(Duration::from_secs(30), || {
        runs = central.per_site("sum by (site) (count_over_time(speedtest_up[5m]))");
        failed = central.per_site(
            r#"sum by (site) (count_over_time(speedtest_run_result{result!="success"}[5m]))"#,
        );
        (names
            .iter()
            .all(|site| runs.get(site).is_some_and(|&n| n >= 4.0))
            && failed.get("lisbon").is_some_and(|&n| n >= 2.0))
        .then_some(())
    });
    if arrived.is_none() {
        let logs: Vec<String> = servers.iter_mut().map(log_of).collect();
        panic!(
            "the sites' runs did not arrive: runs {runs:?}, failures {failed:?}\n{}",
            logs.join("\n----\n")
        );
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
