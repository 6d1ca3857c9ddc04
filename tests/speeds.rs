//! Speeds and volumes given as people write them, and refused in their words.

use clap::CommandFactory;
use internet_monitor::cli::Cli;

/// Every flag taking a speed or a data volume: (the words naming the command, the flag).
fn quantity_flags() -> Vec<(Vec<String>, String)> {
    fn walk(command: &clap::Command, path: &[String], found: &mut Vec<(Vec<String>, String)>) {
        for arg in command.get_arguments() {
            let names: Vec<&str> = arg
                .get_value_names()
                .map(|names| names.iter().map(|name| name.as_str()).collect())
                .unwrap_or_default();
            if let Some(long) = arg.get_long()
                && names
                    .iter()
                    .any(|name| ["RATE", "VOLUME", "SIZE"].contains(name))
            {
                found.push((path.to_vec(), format!("--{long}")));
            }
        }
        for sub in command.get_subcommands() {
            let mut path = path.to_vec();
            path.push(sub.get_name().to_owned());
            walk(sub, &path, found);
        }
    }
    let mut found = Vec::new();
    walk(&Cli::command(), &[], &mut found);
    found
}

#[test]
fn a_negative_speed_or_volume_is_refused_naming_the_flag_in_either_form() {
    let flags = quantity_flags();
    assert!(flags.len() >= 15, "{flags:?}");
    for (path, flag) in flags {
        for (value, form) in [("-5mbps", false), ("-5mbps", true), ("-1.5GB", false)] {
            let mut args: Vec<String> = vec!["internet-monitor".into()];
            args.extend(path.iter().cloned());
            if form {
                args.push(format!("{flag}={value}"));
            } else {
                args.extend([flag.clone(), value.to_owned()]);
            }
            let err = Cli::try_parse_from_with_environment(
                args.iter().map(Into::into),
                Vec::<(std::ffi::OsString, std::ffi::OsString)>::new(),
            )
            .err()
            .unwrap_or_else(|| panic!("{args:?} was accepted"))
            .to_string();
            assert!(
                err.contains(&format!("for '{flag} <")) && err.contains("are positive"),
                "{args:?}: {err}"
            );
        }
    }
}

#[test]
fn a_negative_duration_is_refused_naming_the_flag() {
    let err = Cli::try_parse_from_with_environment(
        ["internet-monitor", "--interval", "-5m"].map(Into::into),
        Vec::<(std::ffi::OsString, std::ffi::OsString)>::new(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("for '--interval <DURATION>'") && err.contains("must be positive"),
        "{err}"
    );
}
