//! The systemd unit: verified by systemd-analyze and hardened.

use super::*;

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
