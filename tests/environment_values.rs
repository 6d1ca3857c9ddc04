//! Every switch's and choice flag's environment twin, walked from clap's command tree: each
//! value either accepted or refused naming the variable (clap names only the flag, which the
//! user of an env file or a compose file never typed). One test in its own binary: clap reads
//! the twins from the process's environment, which this test sets, so no other test may run
//! beside it.

mod common;

use std::ffi::OsString;

use internet_monitor::cli::Cli;

/// Words naming the command, variable, flag, is a switch, possible values.
type Twin = (Vec<String>, String, String, bool, Vec<String>);

/// Each switch's and choice flag's twin in the tree.
fn twins() -> Vec<Twin> {
    common::every_argument()
        .into_iter()
        .filter_map(|(path, arg)| {
            let (env, long) = (arg.get_env()?, arg.get_long()?);
            let switch = matches!(arg.get_action(), clap::ArgAction::SetTrue);
            let choices: Vec<String> = arg
                .get_possible_values()
                .iter()
                .map(|value| value.get_name().to_owned())
                .collect();
            (switch || !choices.is_empty()).then(|| {
                (
                    path,
                    env.to_str().unwrap().to_owned(),
                    format!("--{long}"),
                    switch,
                    choices,
                )
            })
        })
        .collect()
}

/// Parses `path` with `variable=value` in the environment: the refusal's text, if any.
fn parse(path: &[String], variable: &str, value: &str) -> Option<String> {
    // SAFETY: this binary's only test runs alone; nothing else reads the environment meanwhile.
    unsafe { std::env::set_var(variable, value) };
    let mut args: Vec<OsString> = vec!["internet-monitor".into()];
    args.extend(path.iter().map(OsString::from));
    let result = Cli::try_parse_from_with_environment(args, std::env::vars_os());
    // SAFETY: as above.
    unsafe { std::env::remove_var(variable) };
    result.err().map(|err| err.to_string())
}

#[test]
fn every_switch_and_choice_twin_takes_its_values_or_names_the_variable() {
    let twins = twins();
    let names: Vec<&str> = twins.iter().map(|(_, env, ..)| env.as_str()).collect();
    for expected in [
        "INTERNET_MONITOR_ENABLE_RUN_ENDPOINT",
        "INTERNET_MONITOR_STORE_IP",
        "INTERNET_MONITOR_ENGINE",
        "INTERNET_MONITOR_LOG_FORMAT",
        "INTERNET_MONITOR_EXPORT_FORMAT",
        "INTERNET_MONITOR_REPORT_FORMAT",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} not walked: {names:?}"
        );
    }
    let mut wrong = Vec::new();
    for (path, variable, flag, switch, choices) in &twins {
        let (accepted, refused): (Vec<&str>, Vec<&str>) = if *switch {
            (
                vec![
                    "true", "false", "1", "0", "yes", "no", "on", "off", "TRUE", "Yes",
                ],
                vec!["2", "maybe", "enabled"],
            )
        } else {
            (
                choices.iter().map(String::as_str).collect(),
                vec!["xml", "Bogus"],
            )
        };
        for value in accepted {
            // Other errors (a command's required argument) are not this value's.
            if let Some(err) = parse(path, variable, value)
                && err.contains(&format!("'{flag}"))
            {
                wrong.push(format!("{path:?} {variable}={value} refused: {err}"));
            }
        }
        for value in refused {
            match parse(path, variable, value) {
                None => wrong.push(format!("{path:?} {variable}={value} accepted")),
                Some(err) => {
                    let named = err.contains(&format!(
                        "the value comes from the environment variable {variable}"
                    ));
                    let says_values = !*switch || err.contains("true, 1, yes or on");
                    if !named || !says_values {
                        wrong.push(format!("{path:?} {variable}={value}: {err}"));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
