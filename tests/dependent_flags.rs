//! A flag that only acts with another is refused without it, naming both, rather than
//! silently doing nothing.

mod common;

#[test]
fn retest_after_without_retest_below_is_refused_naming_both() {
    for (args, variable) in [
        (&["--retest-after", "10m"][..], None),
        (&["serve", "--retest-after=10m"][..], None),
        (&["serve"][..], Some("10m")),
    ] {
        let mut command = common::command(args);
        if let Some(value) = variable {
            command.env("INTERNET_MONITOR_RETEST_AFTER", value);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("--retest-after")
                && stderr.contains("has no effect without --retest-below"),
            "{args:?}: {stderr}"
        );
        assert_eq!(
            stderr.contains("INTERNET_MONITOR_RETEST_AFTER"),
            variable.is_some(),
            "{stderr}"
        );
    }
}
