//! Every value the user gives that a message echoes is escaped and cut: a hostile value (5000
//! characters with a newline, an ANSI escape and a bidirectional override) in any flag of any
//! command, or in an HTTP query parameter, can neither forge a line on the terminal or in a
//! log nor flood it.

mod common;

use internet_monitor::cli::Cli;

/// 5000 characters holding a newline, a screen-clearing escape sequence, a right-to-left
/// override and a line separator.
fn hostile() -> String {
    hostile_of(5000)
}

/// [`hostile`] of `length` characters.
fn hostile_of(length: usize) -> String {
    let forged =
        "\n2026-12-01T00:00:00Z  INFO internet_monitor: test succeeded\u{1b}[2J\u{202e}\u{2028}\r";
    let mut value = format!("1{forged}");
    while value.chars().count() < length {
        value.push('x');
    }
    value
}

/// Whether `text` (a message, its own lines apart) holds a raw character of [`hostile`] that
/// could forge a line or steer a terminal, or a line [`hostile`] started.
fn forges(text: &str) -> bool {
    text.contains(['\r', '\u{1b}', '\u{202e}', '\u{2028}'])
        || text
            .lines()
            .any(|line| line.starts_with("2026-12-01T00:00:00Z"))
}

/// Every value-taking flag of every command: (the words naming the command, the flag).
fn flags() -> Vec<(Vec<String>, String)> {
    common::every_argument()
        .into_iter()
        .filter(|(_, arg)| arg.get_action().takes_values() && !arg.is_positional())
        .filter_map(|(path, arg)| Some((path, format!("--{}", arg.get_long()?))))
        .collect()
}

#[test]
fn a_hostile_flag_value_is_escaped_and_cut_in_every_refusal() {
    let value = hostile();
    let mut accepted = Vec::new();
    let mut failures = Vec::new();
    let all = flags();
    assert!(all.len() > 50, "{} flags", all.len());
    for (path, flag) in &all {
        let mut args: Vec<String> = vec!["internet-monitor".into()];
        args.extend(path.iter().cloned());
        for form in [
            vec![flag.clone(), value.clone()],
            vec![format!("{flag}={value}")],
        ] {
            let mut args = args.clone();
            args.extend(form);
            match Cli::try_parse_from_with_environment(
                args.iter().map(Into::into),
                Vec::<(std::ffi::OsString, std::ffi::OsString)>::new(),
            ) {
                Ok(_) => accepted.push(format!("{} {flag}", path.join(" "))),
                Err(err) => {
                    let text = err.to_string();
                    if forges(&text) || text.len() > 2000 {
                        failures.push(format!("{} {flag}: {text:?}", path.join(" ")));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // What clap accepts (paths, URLs, arguments for the CLI) is refused, if at all, by the
    // command: its stderr holds the value escaped and cut too. `serve` would start serving
    // with most of them: only its --db, which it opens first, is tried.
    accepted.sort();
    accepted.dedup();
    for (path, flag) in &all {
        let name = format!("{} {flag}", path.join(" "));
        let serves = path.is_empty() || path[0] == "serve" || path[0] == "target";
        if !accepted.contains(&name) || (serves && flag != "--db") {
            continue;
        }
        let env = common::Env::new();
        let db = env.db();
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.extend([flag.as_str(), value.as_str()]);
        let has_db = flags().iter().any(|(p, f)| p == path && f == "--db");
        if flag != "--db" && has_db {
            args.extend(["--db", db.to_str().unwrap()]);
        }
        let mut child = common::command(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut stderr, &mut text).ok();
            text
        });
        if common::wait_within(&mut child, std::time::Duration::from_secs(30)).is_none() {
            child.kill().ok();
            child.wait().ok();
        }
        let text = reader.join().unwrap();
        assert!(!forges(&text) && text.len() < 4000, "{name}: {text:?}");
    }
}

/// Percent-encodes every byte of `text`, for a query string.
fn encoded(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

#[test]
fn a_hostile_query_parameter_is_escaped_and_cut_in_every_refusal() {
    let env = common::Env::new();
    let mut server =
        common::Server::start(env.serve("ok-1.2-pretty", "replay", &["--start-delay", "1h"]));
    // Percent-encoded, 5000 characters would pass the request line's limit (431).
    let value = encoded(&hostile_of(1000));
    for path in [
        format!("/api/v1/samples?from={value}"),
        format!("/api/v1/samples?limit={value}"),
        format!("/api/v1/summary?window={value}"),
        format!("/api/v1/series?metric={value}"),
        format!("/api/v1/samples?{value}=1"),
    ] {
        let response = server.get(&path);
        assert_eq!(response.status, 400, "{}: {}", &path[..40], response.body);
        let body: serde_json::Value = serde_json::from_str(&response.body).unwrap();
        let error = body["error"].as_str().unwrap_or_default();
        assert!(!error.is_empty(), "{}", response.body);
        assert!(
            !forges(error) && !error.contains('\n') && error.len() < 600,
            "{error:?}"
        );
    }
    server.assert_clean_exit();
}
