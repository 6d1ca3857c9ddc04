//! The command line: clap's definition, defaults, and the flags' checks and their messages.

use super::*;
use clap::CommandFactory;

/// A gateway that is this host (it always answers: every outage would be blamed on the
/// ISP), no one host, or an IPv6 link-local address (every probe fails) is refused.
#[test]
fn secrets_in_a_url_or_host_are_redacted() {
    for (text, shown) in [
        ("http://user:pw@host:1/x", "http://…@host:1/x"),
        ("user:pw@127.0.0.1:1", "…@127.0.0.1:1"),
        (
            "HTTPS://u@h/?token=x&a=1",
            "HTTPS://…@h/?token=REDACTED&a=1",
        ),
        ("http://h/?api_key=x", "http://h/?api_key=REDACTED"),
        // An `@` in the path or query is not user information.
        ("http://h/a@b", "http://h/a@b"),
        ("h/?next=http://a@b", "h/?next=http://a@b"),
        ("http://h:1/?a=1", "http://h:1/?a=1"),
        ("1.1.1.1:53", "1.1.1.1:53"),
    ] {
        assert_eq!(secrets_redacted(text), shown, "{text}");
    }
}

#[test]
fn a_value_parser_repeating_a_secret_has_it_redacted() {
    let parser = |text: &str| -> Result<String, String> {
        Err(format!("{} is wrong", crate::logging::quoted(text)))
    };
    let mut command =
        clap::Command::new("x").arg(clap::Arg::new("url").long("url").value_parser(parser));
    for (value, shown) in [
        ("us:s3cr3t@h:1", "'…@h:1'"),
        ("u\"s:s3cr3t@h:1", "'…@h:1'"),
        ("http://h/?token=s3cr3t", "'http://h/?token=REDACTED'"),
    ] {
        let err = command
            .try_get_matches_from_mut(["x", "--url", value])
            .unwrap_err();
        let said = without_credentials(err).to_string();
        assert!(!said.contains("s3cr3t"), "{said}");
        assert!(said.contains(shown), "{said}");
        assert!(said.contains("\" is wrong"), "{said}");
    }
}

#[test]
fn a_probe_gateway_must_be_one_other_host() {
    use crate::probe::monitor::GatewayChoice;
    for bad in [
        "0.0.0.0",
        "127.0.0.1",
        "::1",
        "::",
        "ff02::2",
        "255.255.255.255",
        "fe80::1",
    ] {
        let err = Cli::try_parse_from(["internet-monitor", "--probe-gateway", bad])
            .unwrap_err()
            .to_string();
        assert!(err.contains(bad), "{bad}: {err}");
    }
    let cli = Cli::try_parse_from([
        "internet-monitor",
        "--probe-gateway",
        "192.168.1.1",
        "--probe-target",
        "1.1.1.1,192.168.1.1:53",
    ])
    .unwrap();
    let Command::Serve(args) = cli.into_command() else {
        panic!("not serve");
    };
    let err = args.probes().unwrap_err();
    assert!(err.contains("is also a --probe-target"), "{err}");
    let cli = Cli::try_parse_from(["internet-monitor", "--probe-gateway", "192.168.1.1"]).unwrap();
    let Command::Serve(args) = cli.into_command() else {
        panic!("not serve");
    };
    assert_eq!(
        args.probe_gateway,
        GatewayChoice::Fixed("192.168.1.1".parse().unwrap())
    );
}

#[test]
fn an_allowed_host_is_a_bare_host_name() {
    let cli =
        Cli::try_parse_from(["internet-monitor", "--allowed-host", "Monitor.LAN.,speedy"]).unwrap();
    let Command::Serve(args) = cli.into_command() else {
        panic!("not serve");
    };
    assert_eq!(args.allowed_hosts, ["monitor.lan", "speedy"]);
    for bad in [
        "*",
        "monitor.lan:5000",
        "http://monitor.lan",
        "a..b",
        "",
        "x/y",
    ] {
        let err = Cli::try_parse_from(["internet-monitor", "--allowed-host", bad])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--allowed-host") && err.contains("must be a host name"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn clap_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn run_once_defaults() {
    let cli = Cli::try_parse_from(["internet-monitor", "run-once"]).unwrap();
    let Command::RunOnce(args) = cli.into_command() else {
        panic!("not run-once");
    };
    assert_eq!(args.store.db, PathBuf::from("internet-monitor.redb"));
    assert_eq!(args.speedtest.speedtest_bin, PathBuf::from("speedtest"));
    assert_eq!(args.speedtest.timeout, Duration::from_secs(120));
    assert_eq!(args.speedtest.max_bandwidth.bytes_per_second(), 12.5e9);
}

#[test]
fn no_sub_command_means_serve_with_its_flags() {
    let cli = Cli::try_parse_from(["internet-monitor", "--listen", "127.0.0.1:0"]).unwrap();
    let Command::Serve(args) = cli.into_command() else {
        panic!("not serve");
    };
    assert_eq!(args.listen, "127.0.0.1:0".parse().unwrap());
    assert_eq!(args.interval, Duration::from_secs(30 * 60));
    assert_eq!(args.splay, Duration::ZERO);
    assert_eq!(args.retention, None);
    assert_eq!(args.log_format, LogFormat::Text);
}

#[test]
fn plan_flags_take_units_and_a_ratio() {
    let cli = Cli::try_parse_from([
        "internet-monitor",
        "serve",
        "--plan-download",
        "500Mbps",
        "--plan-upload",
        "62.5MB/s",
        "--plan-threshold",
        "0.9",
    ])
    .unwrap();
    let Command::Serve(args) = cli.into_command() else {
        panic!("not serve");
    };
    let plan = args.plan.plan();
    assert_eq!(plan.download.map(|b| b.bytes_per_second()), Some(62.5e6));
    assert_eq!(plan.upload.map(|b| b.bytes_per_second()), Some(62.5e6));
    assert_eq!(plan.threshold, 0.9);
    for (flag, value, message) in [
        ("--plan-download", "500 megs", "is not a speed"),
        (
            "--plan-threshold",
            "80",
            "must be a ratio above 0 and at most 1",
        ),
        (
            "--retest-below",
            "0",
            "must be a ratio above 0 and at most 1",
        ),
    ] {
        let err = Cli::try_parse_from(["internet-monitor", "serve", flag, value])
            .unwrap_err()
            .to_string();
        assert!(err.contains(flag) && err.contains(message), "{err}");
    }
}

#[test]
fn zero_timeout_is_refused_naming_the_flag() {
    let err = Cli::try_parse_from(["internet-monitor", "run-once", "--timeout", "0s"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("invalid value '0s' for '--timeout <DURATION>': must be longer than zero"),
        "{err}"
    );
}

#[test]
fn every_duration_flag_is_bounded_naming_the_flag_and_the_limit() {
    for (args, limit) in [
        (&["serve", "--start-delay"][..], "365d"),
        (&["serve", "--interval"], "365d"),
        (&["serve", "--splay"], "365d"),
        (&["serve", "--retention"], "36500d"),
        (&["serve", "--retest-after"], "1d"),
        (&["serve", "--min-manual-gap"], "30d"),
        (&["serve", "--timeout"], "1h"),
        (&["run-once", "--timeout"], "1h"),
        (&["serve", "--remote-write.timeout"], "1h"),
        (&["serve", "--probe-interval"], "1h"),
        (&["report", "--window"], "36500d"),
    ] {
        let flag = args[1];
        // --help says the limit too, so that nobody learns it from a refusal.
        let command = Cli::command();
        let help = command
            .find_subcommand(args[0])
            .and_then(|sub| {
                sub.get_arguments()
                    .find(|arg| arg.get_long() == flag.strip_prefix("--"))
            })
            .and_then(|arg| arg.get_help())
            .map(|help| help.to_string())
            .unwrap_or_default();
        assert!(
            help.contains(&format!("at most {limit}")),
            "{flag}: the help does not say the limit: {help:?}"
        );
        let mut argv = vec!["internet-monitor"];
        argv.extend_from_slice(args);
        argv.push("300000000000y");
        let err = Cli::try_parse_from(&argv).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "invalid value '300000000000y' for '{flag} <DURATION>': must be at most {limit}"
            )),
            "{err}"
        );
        // The limit itself is fine.
        argv.pop();
        argv.push(limit);
        assert!(Cli::try_parse_from(&argv).is_ok(), "{argv:?}");
    }
    let err = Cli::try_parse_from(["internet-monitor", "export", "--from", "36501d"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("is an age longer than 36500d"), "{err}");
}

#[test]
fn extra_speedtest_args_may_start_with_dashes() {
    let cli = Cli::try_parse_from([
        "internet-monitor",
        "run-once",
        "--speedtest-arg",
        "--interface=eth1",
        "--speedtest-arg=--ip=192.0.2.1",
    ])
    .unwrap();
    let Command::RunOnce(args) = cli.into_command() else {
        panic!("not run-once");
    };
    assert_eq!(
        args.speedtest.speedtest_args,
        vec![
            OsString::from("--interface=eth1"),
            OsString::from("--ip=192.0.2.1")
        ]
    );
}

#[test]
fn a_probe_target_given_twice_is_refused_naming_the_flag() {
    for given in ["10.0.0.1:443,10.0.0.1:53", "10.0.0.1,10.0.0.1"] {
        let cli = Cli::try_parse_from(["internet-monitor", "--probe-target", given]).unwrap();
        let Command::Serve(args) = cli.into_command() else {
            panic!("not serve");
        };
        let err = args.probes().unwrap_err();
        assert!(
            err.starts_with("--probe-target: 10.0.0.1 is given twice"),
            "{given}: {err}"
        );
    }
    let cli = Cli::try_parse_from(["internet-monitor", "--probe-target", "10.0.0.1,10.0.0.2:53"])
        .unwrap();
    let Command::Serve(args) = cli.into_command() else {
        panic!("not serve");
    };
    let config = args.probes().unwrap().expect("probing on");
    assert_eq!(config.public.len(), 2);
    let cli = Cli::try_parse_from([
        "internet-monitor",
        "--probe-target",
        "10.0.0.1,10.0.0.2",
        "--probe-gateway",
        "10.0.0.2",
    ])
    .unwrap();
    let Command::Serve(args) = cli.into_command() else {
        panic!("not serve");
    };
    let err = args.probes().unwrap_err();
    assert!(
        err.starts_with("--probe-gateway 10.0.0.2 is also a --probe-target"),
        "{err}"
    );
}

fn serve_args(args: &[&str]) -> Box<ServeArgs> {
    let mut argv = vec!["internet-monitor", "serve"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv).unwrap().into_command() {
        Command::Serve(args) => args,
        _ => panic!("not serve"),
    }
}

/// An --interval shorter than a test can take, or than the README asks of the public
/// default server, is warned about naming the flags; the defaults and an own server are not.
#[test]
fn a_short_interval_is_warned_about() {
    let warnings = |args: &[&str]| {
        let args = serve_args(args);
        let (engine, _) = args.speedtest.engine_config().unwrap();
        args.interval_warnings(&engine)
    };
    let own = ["--engine", "http", "--http-server", "http://127.0.0.1:9"];
    assert!(warnings(&["--engine", "http"]).is_empty());
    assert!(warnings(&own).is_empty());
    let mut short = own.to_vec();
    short.extend(["--interval", "30s"]);
    let said = warnings(&short);
    assert!(
        said.len() == 1
            && said[0].starts_with(
                "--interval 30s is shorter than a test can take (40s: --http-duration 10s"
            ),
        "{said:?}"
    );
    let said = warnings(&["--engine", "http", "--interval", "10m"]);
    assert!(
        said.len() == 1
            && said[0].starts_with(
                "--interval 10m against the public server https://speed.cloudflare.com"
            )
            && said[0].contains("30m or more"),
        "{said:?}"
    );
    let said = warnings(&["--engine", "http", "--interval", "1s"]);
    assert_eq!(said.len(), 2, "{said:?}");
    let said = warnings(&["--engine", "ookla", "--interval", "1m"]);
    assert!(
        said.len() == 1 && said[0].contains("(2m: --timeout 2m)"),
        "{said:?}"
    );
}

/// `report --verify` reads only --db: the report's flags it does not use are refused
/// naming them, not dropped.
#[test]
fn report_verify_refuses_the_flags_it_does_not_use() {
    for (flag, value) in [
        ("--format", "json"),
        ("--window", "3d"),
        ("--from", "2026-01-01"),
        ("--to", "2026-01-02"),
        ("--rules", "de-bnetza"),
        ("--output", "x.html"),
        ("--plan-download", "100Mbit/s"),
        ("--plan-upload", "10Mbit/s"),
        ("--plan-threshold", "0.5"),
    ] {
        let err = Cli::try_parse_from([
            "internet-monitor",
            "report",
            "--verify",
            "pack.html",
            flag,
            value,
        ])
        .unwrap_err();
        assert_eq!(
            err.kind(),
            clap::error::ErrorKind::ArgumentConflict,
            "{flag}"
        );
        let err = err.to_string();
        assert!(
            err.contains("--verify") && err.contains(flag),
            "{flag}: {err}"
        );
    }
    assert!(
        Cli::try_parse_from([
            "internet-monitor",
            "report",
            "--verify",
            "pack.html",
            "--db",
            "x.redb",
            "--timezone",
            "UTC",
        ])
        .is_ok()
    );
}

/// `--listen` (serve's and target's) takes the spellings people write; a wrong one is
/// refused with examples.
#[test]
fn listen_takes_every_usual_spelling() {
    for (given, meant) in [
        (":5000", "0.0.0.0:5000"),
        ("5000", "0.0.0.0:5000"),
        ("localhost:5000", "127.0.0.1:5000"),
        ("LocalHost:5000", "127.0.0.1:5000"),
        ("[::]:5000", "[::]:5000"),
        ("0.0.0.0:5000", "0.0.0.0:5000"),
        ("127.0.0.1:0", "127.0.0.1:0"),
        ("[::1]:8080", "[::1]:8080"),
    ] {
        let meant: SocketAddr = meant.parse().unwrap();
        assert_eq!(serve_args(&["--listen", given]).listen, meant, "{given}");
        let cli = Cli::try_parse_from(["internet-monitor", "target", "--listen", given]).unwrap();
        let Some(Command::Target(target)) = cli.command else {
            panic!("not target");
        };
        assert_eq!(target.listen, meant, "target {given}");
    }
    for bad in [
        "",
        "localhost",
        "host.lan:5000",
        ":",
        "70000",
        "5000:",
        "::5000",
    ] {
        for command in ["serve", "target"] {
            let err = Cli::try_parse_from(["internet-monitor", command, "--listen", bad])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("--listen")
                    && err.contains("localhost:5000")
                    && err.contains("[::]:5000")
                    && err.contains(":5000 or 5000"),
                "{bad}: {err}"
            );
        }
    }
}

/// The settings that contradict each other are refused naming both flags.
#[test]
fn contradicting_serve_settings_are_refused_naming_the_flags() {
    for (args, expected) in [
        (
            &[
                "--plan-download",
                "500Mbit/s",
                "--max-bandwidth",
                "100Mbit/s",
            ][..],
            "--plan-download 500 Mbit/s is above --max-bandwidth 100 Mbit/s",
        ),
        (
            &["--plan-upload", "1Gbps", "--max-bandwidth", "62.5MB/s"],
            "--plan-upload 1000 Mbit/s is above --max-bandwidth 500 Mbit/s",
        ),
        (
            &["--retest-below", "0.5", "--retest-after", "30m"],
            "--retest-after 30m is not shorter than --interval 30m",
        ),
        (
            &[
                "--retest-below",
                "0.5",
                "--retest-after",
                "10m",
                "--interval",
                "5m",
            ],
            "--retest-after 10m is not shorter than --interval 5m",
        ),
        (
            &["--retention", "3m"],
            "--retention 3m is shorter than a day and would delete nearly every sample; \
             if it is a typo, note that m is minutes (3m is 3 minutes; for 3 months write \
             90d); to keep samples this briefly, add --allow-short-retention",
        ),
        (
            &["--retention", "23h 59m"],
            "--retention 23h 59m is shorter than a day",
        ),
        (
            &[
                "--retest-below",
                "0.5",
                "--retest-after",
                "25m",
                "--splay",
                "5m",
            ],
            "--retest-after 25m plus --splay 5m is not shorter than --interval 30m",
        ),
        (
            &["--plan-threshold", "0.5"],
            "--plan-threshold 0.5 is stored only with --plan-download or --plan-upload, and \
             neither is given",
        ),
        (
            &["--splay", "1h", "--interval", "30m"],
            "--splay 1h is not shorter than --interval 30m",
        ),
        (
            &["--splay", "30m"],
            "--splay 30m is not shorter than --interval 30m",
        ),
    ] {
        let err = serve_args(args).check().unwrap_err();
        assert!(err.starts_with(expected), "{args:?}: {err}");
    }
    for fine in [
        &[
            "--plan-download",
            "100Mbit/s",
            "--max-bandwidth",
            "100Mbit/s",
        ][..],
        &["--retest-after", "1h"],
        &["--retest-below", "0.5", "--retest-after", "29m"],
        &[
            "--retest-below",
            "0.5",
            "--retest-after",
            "20m",
            "--splay",
            "5m",
        ],
        &["--retest-after", "29m", "--splay", "5m"],
        &["--retention", "3m", "--allow-short-retention"],
        &["--retention", "1d"],
        &["--plan-threshold", "0.5", "--plan-upload", "50Mbit/s"],
        &["--splay", "29m"],
    ] {
        assert_eq!(serve_args(fine).check(), Ok(()), "{fine:?}");
    }
}

/// Every argument of every command says what it is for in `--help`.
#[test]
fn every_argument_of_every_command_has_help() {
    fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            if arg
                .get_help()
                .is_none_or(|help| help.to_string().trim().is_empty())
            {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut missing = Vec::new();
    walk(&Cli::command(), "internet-monitor", &mut missing);
    assert!(missing.is_empty(), "without help: {missing:?}");
}

/// Two arguments sharing an environment variable take the same values (the same flag
/// on several commands), so one setting cannot mean two things.
#[test]
fn an_environment_variable_means_one_thing_everywhere() {
    fn walk(
        command: &clap::Command,
        path: &str,
        seen: &mut std::collections::HashMap<String, (String, Vec<String>)>,
        clashes: &mut Vec<String>,
    ) {
        for arg in command.get_arguments() {
            let Some(env) = arg.get_env() else { continue };
            let env = env.to_string_lossy().into_owned();
            let values: Vec<String> = arg
                .get_possible_values()
                .iter()
                .map(|value| value.get_name().to_owned())
                .collect();
            let this = format!("{path} --{}", arg.get_long().unwrap_or_default());
            match seen.get(&env) {
                Some((other, other_values)) if *other_values != values => {
                    clashes.push(format!(
                        "{env}: {other} {other_values:?} vs {this} {values:?}"
                    ));
                }
                Some(_) => {}
                None => {
                    seen.insert(env, (this, values));
                }
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), seen, clashes);
        }
    }
    let mut clashes = Vec::new();
    walk(
        &Cli::command(),
        "internet-monitor",
        &mut Default::default(),
        &mut clashes,
    );
    assert!(clashes.is_empty(), "{clashes:?}");
}

/// The retired INTERNET_MONITOR_FORMAT is refused naming its replacements.
#[test]
fn a_retired_variable_is_refused_naming_its_replacements() {
    let err = refuse_retired_environment(|name| {
        (name == "INTERNET_MONITOR_FORMAT").then(|| "csv".into())
    })
    .unwrap_err();
    assert!(
        err.contains("INTERNET_MONITOR_EXPORT_FORMAT")
            && err.contains("INTERNET_MONITOR_REPORT_FORMAT"),
        "{err}"
    );
    assert_eq!(refuse_retired_environment(|_| None), Ok(()));
}

/// Each command's `--db` help says whether a missing file is created.
#[test]
fn db_help_tells_whether_a_missing_file_is_created() {
    fn walk(command: &clap::Command, path: &str, found: &mut Vec<(String, String)>) {
        if let Some(db) = command.get_arguments().find(|arg| arg.get_id() == "db") {
            let help = db.get_help().map(|h| h.to_string()).unwrap_or_default();
            found.push((path.to_owned(), help));
        }
        for sub in command.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), found);
        }
    }
    let mut found = Vec::new();
    walk(&Cli::command(), "internet-monitor", &mut found);
    let reads_only = [
        "internet-monitor export",
        "internet-monitor report",
        "internet-monitor db check",
        "internet-monitor db compact",
        "internet-monitor plan show",
        "internet-monitor plan history",
    ];
    assert!(found.len() >= 10, "{found:?}");
    for (path, help) in found {
        let expected = if reads_only.contains(&path.as_str()) {
            "must exist"
        } else {
            "created if missing"
        };
        assert!(help.contains(expected), "{path}: {help}");
    }
}

/// Numbered twins in the order of their numbers, gaps allowed; other names ignored; an
/// empty one named; a command line's values replace them.
#[test]
fn numbered_environment_twins_give_several_values() {
    let var = |key: &str, value: &str| (OsString::from(key), OsString::from(value));
    let vars = vec![
        var("INTERNET_MONITOR_SPEEDTEST_ARG_10", "--ten"),
        var("INTERNET_MONITOR_SPEEDTEST_ARG_2", "--two=a,b c"),
        var("INTERNET_MONITOR_SPEEDTEST_ARG_1", "--one"),
        var("INTERNET_MONITOR_SPEEDTEST_ARGS_3", "--other-name"),
    ];
    let parse = |args: &[&str], vars: Vec<(OsString, OsString)>| {
        Cli::try_parse_from_with_environment(args.iter().map(OsString::from), vars)
    };
    for args in [
        &["internet-monitor"][..],
        &["internet-monitor", "serve"],
        &["internet-monitor", "run-once"],
    ] {
        let mut cli = parse(args, vars.clone()).unwrap();
        assert_eq!(
            cli.speedtest_args_mut().unwrap().speedtest_args,
            ["--one", "--two=a,b c", "--ten"],
            "{args:?}"
        );
    }
    let mut cli = parse(
        &["internet-monitor", "run-once", "--speedtest-arg=--given"],
        vars.clone(),
    )
    .unwrap();
    assert_eq!(
        cli.speedtest_args_mut().unwrap().speedtest_args,
        ["--given"]
    );
    let err = parse(
        &["internet-monitor", "run-once"],
        vec![var("INTERNET_MONITOR_SPEEDTEST_ARG_3", "")],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("INTERNET_MONITOR_SPEEDTEST_ARG_3 is set but empty"),
        "{err}"
    );
    // Blank is empty, as for every other twin.
    let err = parse(
        &["internet-monitor", "run-once"],
        vec![var("INTERNET_MONITOR_SPEEDTEST_ARG_2", " \t")],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("INTERNET_MONITOR_SPEEDTEST_ARG_2 is set but empty"),
        "{err}"
    );
    // A number it does not read is named, not left out without a word.
    for suffix in ["0", "01", "X", "", "1a", "99999999999999999999999"] {
        let key = format!("INTERNET_MONITOR_SPEEDTEST_ARG_{suffix}");
        let mut with = vars.clone();
        with.push(var(&key, "--lost"));
        let err = parse(&["internet-monitor", "run-once"], with)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("{key} is not read"))
                && err
                    .contains("INTERNET_MONITOR_SPEEDTEST_ARG_1, INTERNET_MONITOR_SPEEDTEST_ARG_2"),
            "{suffix}: {err}"
        );
    }
    // Another command does not read them: `docker compose exec` passes serve's on.
    assert!(
        parse(
            &["internet-monitor", "export"],
            vec![var("INTERNET_MONITOR_SPEEDTEST_ARG_0", "--lost")]
        )
        .is_ok()
    );
}

/// A twin that is not numbered spelt numbered (`INTERNET_MONITOR_PROBE_TARGET_1`) is
/// refused naming it and the comma form, not left out without a word; another command's
/// twins are not looked at.
#[test]
fn a_numbered_variable_of_a_twin_not_numbered_is_refused() {
    let var = |key: &str, value: &str| (OsString::from(key), OsString::from(value));
    let parse = |args: &[&str], vars: Vec<(OsString, OsString)>| {
        Cli::try_parse_from_with_environment(args.iter().map(OsString::from), vars)
    };
    for args in [&["internet-monitor"][..], &["internet-monitor", "serve"]] {
        for (twin, suffix) in [
            ("INTERNET_MONITOR_PROBE_TARGET", "1"),
            ("INTERNET_MONITOR_PROBE_TARGET", "0"),
            ("INTERNET_MONITOR_ALLOWED_HOST", "01"),
            ("INTERNET_MONITOR_ALLOWED_HOST", "2"),
        ] {
            let key = format!("{twin}_{suffix}");
            let vars = vec![var(twin, "9.9.9.9"), var(&key, "8.8.4.4")];
            let err = parse(args, vars).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{key} is not read")) && err.contains(&format!("{twin}=A,B")),
                "{args:?} {key}: {err}"
            );
        }
        let err = parse(args, vec![var("INTERNET_MONITOR_INTERVAL_1", "1h")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("INTERNET_MONITOR_INTERVAL_1 is not read: --interval takes one value"),
            "{err}"
        );
        // Not a number: another variable, left alone.
        assert!(parse(args, vec![var("INTERNET_MONITOR_PROBE_TARGET_X", "x")]).is_ok());
    }
    assert!(
        parse(
            &["internet-monitor", "export"],
            vec![var("INTERNET_MONITOR_PROBE_TARGET_1", "8.8.4.4")]
        )
        .is_ok()
    );
}

/// Every speed flag's help (`RATE`) states the bit/byte rule, or another speed flag of its
/// command does (the same `--help` page), and every volume flag's says it is in bytes:
/// each command's `--help` is where a user looks.
#[test]
fn every_speed_and_volume_flag_states_its_unit_rule() {
    fn help(arg: &clap::Arg) -> String {
        let text = |help: Option<&clap::builder::StyledStr>| {
            help.map(ToString::to_string).unwrap_or_default()
        };
        format!("{} {}", text(arg.get_help()), text(arg.get_long_help()))
    }
    fn value_name(arg: &clap::Arg) -> &str {
        arg.get_value_names()
            .and_then(|names| names.first())
            .map_or("", |name| name.as_str())
    }
    fn walk(command: &clap::Command, path: &str, checked: &mut usize) {
        let rule = "b is bits, B bytes";
        // MiB/s is accepted: the page says so.
        let binary = "Ki, Mi, Gi binary";
        let page_states_rule = command.get_arguments().any(|arg| {
            value_name(arg) == "RATE" && help(arg).contains(rule) && help(arg).contains(binary)
        });
        for arg in command.get_arguments() {
            let long = arg.get_long().unwrap_or_default();
            match value_name(arg) {
                "RATE" => {
                    *checked += 1;
                    assert!(page_states_rule, "{path} --{long}: {}", help(arg));
                }
                "VOLUME" | "SIZE" => {
                    *checked += 1;
                    assert!(
                        help(arg).contains("in bytes"),
                        "{path} --{long}: {}",
                        help(arg)
                    );
                }
                _ => {}
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), checked);
        }
    }
    use clap::CommandFactory;
    let mut checked = 0;
    walk(&Cli::command(), "internet-monitor", &mut checked);
    assert!(checked >= 15, "{checked}");
}

/// An error naming a flag whose value came from the environment gets a note naming the
/// variable; a flag given on the command line, or named only as part of a longer one, not.
#[test]
fn an_error_naming_a_flag_from_the_environment_names_its_variable() {
    let var = |key: &str, value: &str| (OsString::from(key), OsString::from(value));
    let args = |words: &[&str]| words.iter().map(OsString::from).collect::<Vec<_>>();
    let vars = vec![
        var("INTERNET_MONITOR_RETENTION", "3m"),
        var("INTERNET_MONITOR_RETEST_AFTER", "40m"),
        var("INTERNET_MONITOR_INTERVAL", "30m"),
        var("INTERNET_MONITOR_DB", "/data/x.redb"),
    ];
    let message = "--retention 3m is shorter than a day; add --allow-short-retention";
    assert_eq!(
        environment_notes(message, &args(&["internet-monitor"]), &vars),
        ["--retention came from the environment variable INTERNET_MONITOR_RETENTION"]
    );
    assert!(
        environment_notes(
            message,
            &args(&["internet-monitor", "serve", "--retention=3m"]),
            &vars
        )
        .is_empty()
    );
    let message = "--retest-after 40m is not shorter than --interval 30m";
    assert_eq!(
        environment_notes(
            message,
            &args(&["internet-monitor", "serve", "--interval", "30m"]),
            &vars
        ),
        ["--retest-after came from the environment variable INTERNET_MONITOR_RETEST_AFTER"]
    );
    // export's --db, not serve's other flags.
    assert_eq!(
        environment_notes(
            "database /data/x.redb does not exist: check --db",
            &args(&["internet-monitor", "export"]),
            &vars
        ),
        ["--db came from the environment variable INTERNET_MONITOR_DB"]
    );
    assert!(environment_notes("--retention-days", &args(&["internet-monitor"]), &vars).is_empty());
    assert!(environment_notes("--retention.x", &args(&["internet-monitor"]), &vars).is_empty());
    assert_eq!(
        environment_notes("check --retention.", &args(&["internet-monitor"]), &vars),
        ["--retention came from the environment variable INTERNET_MONITOR_RETENTION"]
    );
}

/// Every environment twin of every command, set but empty, is refused naming the
/// variable (not only the flag clap would name), and only for the command it belongs to.
#[test]
fn an_empty_environment_variable_is_named() {
    fn walk(command: &clap::Command, path: Vec<String>, found: &mut Vec<(Vec<String>, String)>) {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                found.push((path.clone(), env.to_string_lossy().into_owned()));
            }
        }
        for sub in command.get_subcommands() {
            let mut path = path.clone();
            path.push(sub.get_name().to_owned());
            walk(sub, path, found);
        }
    }
    let mut found = Vec::new();
    walk(
        &Cli::command(),
        vec!["internet-monitor".to_owned()],
        &mut found,
    );
    assert!(found.len() > 60, "{}", found.len());
    for (path, env) in found {
        let mut args: Vec<OsString> = path.iter().map(OsString::from).collect();
        // A flag taking a value before the sub-command's own does not hide it.
        if path.len() > 1 && path[1] == "serve" {
            args.extend(["--db".into(), "serve".into()]);
        }
        for empty in ["", " "] {
            let vars = vec![(OsString::from(&env), OsString::from(empty))];
            let err = Cli::try_parse_from_with_environment(args.clone(), vars)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("environment variable {env} (the twin of --"))
                    && err.contains("is set but empty"),
                "{path:?} {env}={empty:?}: {err}"
            );
        }
    }
    // --help still answers.
    let vars = vec![(OsString::from("INTERNET_MONITOR_DB"), OsString::new())];
    let args = ["internet-monitor", "export", "--help"].map(OsString::from);
    let err = Cli::try_parse_from_with_environment(args, vars).unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
    // Serve's empty variable does not stop another command.
    let vars = vec![(
        OsString::from("INTERNET_MONITOR_PLAN_DOWNLOAD"),
        OsString::new(),
    )];
    let args = ["internet-monitor", "export"].map(OsString::from);
    assert!(Cli::try_parse_from_with_environment(args, vars).is_ok());
}

/// `--server-id` and `hash-password --cost` say what they take, not Rust's integer errors.
#[test]
fn whole_number_flags_say_what_they_take() {
    for bad in ["-1", "0", "99999999999999999999", "0x10", "x"] {
        let err = Cli::try_parse_from([
            "internet-monitor",
            "run-once",
            &format!("--server-id={bad}"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("must be an Ookla server id, a whole number from 1 to 4294967295"),
            "{bad}: {err}"
        );
    }
    let cli =
        Cli::try_parse_from(["internet-monitor", "run-once", "--server-id", " 1234"]).unwrap();
    let Command::RunOnce(args) = cli.into_command() else {
        panic!("not run-once");
    };
    assert_eq!(args.speedtest.server_id, Some(1234));
    for bad in ["x", "3", "32"] {
        let err = Cli::try_parse_from(["internet-monitor", "hash-password", "--cost", bad])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("must be a whole number from 4 to 31 (each step doubles"),
            "{bad}: {err}"
        );
    }
}

/// The public default server is known however its URL is spelt.
#[test]
fn the_public_server_is_known_however_spelt() {
    for url in [
        "https://speed.cloudflare.com",
        "https://SPEED.cloudflare.com.",
        "https://speed.cloudflare.com/",
        "http://speed.cloudflare.com:443/",
    ] {
        assert!(is_public_default(url), "{url}");
    }
    for url in [
        "http://127.0.0.1:8080",
        "https://speed.example.net",
        "https://cloudflare.com",
    ] {
        assert!(!is_public_default(url), "{url}");
    }
}
