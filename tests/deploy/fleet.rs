//! The fleet example's files (deploy/fleet): its Prometheus and web configs, compose files and
//! systemd drop-in.

use super::compose::COMPOSE_SERVICE_KEYS;
use super::image::glob_match;
use super::*;

const FLEET_AGENT_COMPOSE: &str = "deploy/fleet/agent/docker-compose.yml";
const FLEET_DROP_IN: &str = "deploy/fleet/agent/remote-write.conf";
const FLEET_CENTRAL_COMPOSE: &str = "deploy/fleet/central/docker-compose.yml";
pub(super) const FLEET_PROMETHEUS_CONFIG: &str = "deploy/fleet/central/prometheus/prometheus.yml";
const FLEET_WEB_CONFIG: &str = "deploy/fleet/central/prometheus/web-config.yml";
const FLEET_DATASOURCE: &str = "deploy/fleet/central/grafana/datasources/prometheus.yml";
const FLEET_GITIGNORE: &str = "deploy/fleet/.gitignore";

/// The fleet's compose files use file-based secrets too.
const FLEET_COMPOSE_SERVICE_KEYS: &[&str] = &["secrets"];

/// The users of the central Prometheus's web configuration, by name.
pub(super) fn fleet_users() -> BTreeMap<String, Value> {
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
        let what = format!("{relative}: {name}");
        for (target, path) in service_mounts(&what, &dir, service, &declared_volumes) {
            mounts.insert((name.clone(), target.to_owned()), path);
        }
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
pub(super) fn fleet_agent_command() -> Vec<String> {
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
