//! The docker compose file and Grafana's provisioning: what it mounts exists, the services are
//! wired.

use super::*;

/// Service keys of the Compose specification this file may use (a typo guard).
pub(super) const COMPOSE_SERVICE_KEYS: &[&str] = &[
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
        for (target, path) in service_mounts(name, &deploy, service, &declared) {
            mounts.insert((name.as_str(), target), path);
        }
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
