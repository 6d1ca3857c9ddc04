//! The Dockerfile and the scripts it installs: a non-root image, a small build context, the pinned
//! speedtest CLI and the health check.

use super::*;

/// The Dockerfile's instructions: continuation lines joined, comments dropped.
fn dockerfile() -> Vec<(String, String)> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in read("Dockerfile").lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, rest) = current.split_once(' ').unwrap_or((&current, ""));
                instructions.push((keyword.to_uppercase(), rest.trim().to_owned()));
                current.clear();
            }
        }
    }
    instructions
}

/// Docker's `.dockerignore` matching: the last pattern matching a path or one of its parent
/// directories decides; `!` re-includes.
fn in_build_context(path: &str) -> bool {
    let patterns: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let mut included = true;
    for pattern in &patterns {
        let (negated, glob) = match pattern.strip_prefix('!') {
            Some(glob) => (true, glob),
            None => (false, pattern.as_str()),
        };
        let glob = glob.trim_start_matches('/').trim_end_matches('/');
        let parts: Vec<&str> = path.split('/').collect();
        let matches = (1..=parts.len()).any(|n| glob_match(glob, &parts[..n].join("/")));
        if matches {
            included = negated;
        }
    }
    included
}

/// `*` and `?` within one path segment, as Go's filepath.Match.
pub(super) fn glob_match(glob: &str, path: &str) -> bool {
    let (globs, paths): (Vec<&str>, Vec<&str>) =
        (glob.split('/').collect(), path.split('/').collect());
    fn segment(glob: &[u8], text: &[u8]) -> bool {
        match (glob.first(), text.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                segment(&glob[1..], text) || (!text.is_empty() && segment(glob, &text[1..]))
            }
            (Some(b'?'), Some(_)) => segment(&glob[1..], &text[1..]),
            (Some(g), Some(t)) if g == t => segment(&glob[1..], &text[1..]),
            _ => false,
        }
    }
    globs.len() == paths.len()
        && globs
            .iter()
            .zip(&paths)
            .all(|(g, p)| segment(g.as_bytes(), p.as_bytes()))
}

#[test]
fn dockerfile_builds_a_non_root_image_with_a_pinned_speedtest_cli() {
    let instructions = dockerfile();
    let args: BTreeMap<String, String> = instructions
        .iter()
        .filter(|(keyword, _)| keyword == "ARG")
        .filter_map(|(_, rest)| rest.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    assert!(
        args["RUST_IMAGE"].starts_with("rust:1."),
        "{}",
        args["RUST_IMAGE"]
    );
    assert_eq!(args["RUNTIME_IMAGE"], "debian:bookworm-slim");
    assert_eq!(args["SPEEDTEST_VERSION"], "1.2.0");
    for arch in ["X86_64", "AARCH64", "ARMHF"] {
        let sum = &args[&format!("SPEEDTEST_SHA256_{arch}")];
        assert!(
            sum.len() == 64
                && sum
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "SPEEDTEST_SHA256_{arch} is not a SHA-256: {sum:?}"
        );
    }

    let stages: Vec<usize> = instructions
        .iter()
        .enumerate()
        .filter(|(_, (keyword, _))| keyword == "FROM")
        .map(|(index, _)| index)
        .collect();
    assert!(stages.len() >= 2, "multi-stage");
    assert!(instructions[stages[0]].1.starts_with("${RUST_IMAGE}"));
    let last = &instructions[*stages.last().unwrap()..];
    assert_eq!(
        last[0].1, "${RUNTIME_IMAGE}",
        "the image runs on Debian slim"
    );
    let find = |keyword: &str| -> Vec<&str> {
        last.iter()
            .filter(|(k, _)| k == keyword)
            .map(|(_, rest)| rest.as_str())
            .collect()
    };
    let user = find("USER");
    assert_eq!(user.len(), 1);
    assert!(
        !["root", "0", "0:0"].contains(&user[0]),
        "the image must not run as root"
    );
    assert_eq!(find("EXPOSE"), ["5000"]);
    assert_eq!(find("VOLUME"), [r#"["/data"]"#]);
    let env = find("ENV").join(" ");
    for wanted in [
        "INTERNET_MONITOR_DB=/data/internet-monitor.redb",
        "HOME=/data",
        "INTERNET_MONITOR_SPEEDTEST_BIN=/usr/local/bin/speedtest",
    ] {
        assert!(env.contains(wanted), "ENV lacks {wanted}: {env}");
    }
    let healthcheck = find("HEALTHCHECK");
    assert_eq!(healthcheck.len(), 1);
    assert!(healthcheck[0].contains("/usr/local/bin/internet-monitor-healthcheck"));
    let copies = find("COPY").join("\n");
    assert!(
        copies.contains("deploy/docker/healthcheck.sh /usr/local/bin/internet-monitor-healthcheck")
    );
    let speedtest_stage = instructions
        .iter()
        .find(|(keyword, rest)| keyword == "RUN" && rest.contains("install-speedtest"))
        .expect("a RUN of install-speedtest");
    assert!(speedtest_stage.1.contains("install-speedtest /out"));
    assert!(read("deploy/docker/install-speedtest.sh").contains("sha256sum -c"));

    // Every file the build copies from the context exists and is not excluded by .dockerignore.
    let mut copied = BTreeSet::new();
    for (keyword, rest) in &instructions {
        if keyword != "COPY" || rest.contains("--from=") {
            continue;
        }
        let words: Vec<&str> = rest
            .split_whitespace()
            .filter(|w| !w.starts_with("--"))
            .collect();
        for source in &words[..words.len() - 1] {
            assert!(repo(source).exists(), "COPY {source}: no such file");
            assert!(
                in_build_context(source),
                "COPY {source}: excluded by .dockerignore"
            );
            copied.insert(source.trim_end_matches('/').to_owned());
        }
    }
    // What cargo needs to read the manifest: benchmarks declared in Cargo.toml must be there too.
    let mut needed = vec!["Cargo.toml", "Cargo.lock", "src"];
    let manifest = read("Cargo.toml");
    for (table, dir) in [
        ("[[bench]]", "benches"),
        ("[[test]]", "tests"),
        ("[[example]]", "examples"),
    ] {
        if manifest.contains(table) {
            needed.push(dir);
        }
    }
    if repo("build.rs").exists() {
        needed.push("build.rs");
    }
    for path in needed {
        assert!(
            copied.contains(path),
            "the build stage does not COPY {path}"
        );
    }
}

#[test]
fn dockerignore_keeps_the_build_context_small() {
    for kept in [
        "Cargo.toml",
        "Cargo.lock",
        "src/main.rs",
        "benches",
        "deploy/docker/healthcheck.sh",
        "deploy/docker/install-speedtest.sh",
    ] {
        assert!(
            in_build_context(kept),
            "{kept} must be in the build context"
        );
    }
    for dropped in [
        "target/debug/internet-monitor",
        ".git/HEAD",
        "tests/deploy/main.rs",
        "tools/dashcheck/node_modules/typescript/package.json",
        "internet-monitor.redb",
        "grafana/dashboards/internet-monitor.json",
        "deploy/docker-compose.yml",
    ] {
        assert!(
            !in_build_context(dropped),
            "{dropped} must stay out of the build context"
        );
    }
}

/// The image's installer, run against local archives: the right archive per architecture, and
/// nothing installed unless the pinned SHA-256 matches.
#[test]
fn speedtest_installer_verifies_the_pinned_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let mirror = dir.path().join("mirror");
    std::fs::create_dir(&mirror).unwrap();
    let mut sums = BTreeMap::new();
    for ookla in ["x86_64", "aarch64", "armhf"] {
        let stage = dir.path().join(ookla);
        std::fs::create_dir(&stage).unwrap();
        std::fs::write(
            stage.join("speedtest"),
            format!("#!/bin/sh\necho {ookla}\n"),
        )
        .unwrap();
        let archive = mirror.join(format!("ookla-speedtest-1.2.0-linux-{ookla}.tgz"));
        run_ok(
            Command::new("tar")
                .arg("-czf")
                .arg(&archive)
                .arg("-C")
                .arg(&stage)
                .arg("speedtest"),
            "install tar",
        );
        let out = run_ok(Command::new("sha256sum").arg(&archive), "install coreutils");
        sums.insert(ookla, out.split_whitespace().next().unwrap().to_owned());
    }
    let installer = |platform: &str, env: &[(&str, &str)], dest: &Path| -> Output {
        let (arch, variant) = platform.split_once('/').unwrap_or((platform, ""));
        let mut command = Command::new("sh");
        command
            .arg(repo("deploy/docker/install-speedtest.sh"))
            .arg(dest)
            .env("TARGETARCH", arch)
            .env("TARGETVARIANT", variant)
            .env("SPEEDTEST_VERSION", "1.2.0")
            .env("SPEEDTEST_URL", format!("file://{}", mirror.display()))
            .env_remove("SPEEDTEST_SHA256_X86_64")
            .env_remove("SPEEDTEST_SHA256_AARCH64")
            .env_remove("SPEEDTEST_SHA256_ARMHF");
        command.envs(env.iter().copied());
        run(&mut command, "install sh, curl, tar and coreutils")
    };
    for (platform, ookla, var) in [
        ("amd64", "x86_64", "SPEEDTEST_SHA256_X86_64"),
        ("arm64", "aarch64", "SPEEDTEST_SHA256_AARCH64"),
        ("arm/v7", "armhf", "SPEEDTEST_SHA256_ARMHF"),
    ] {
        let dest = dir.path().join(format!("out-{ookla}"));
        let output = installer(platform, &[(var, &sums[ookla])], &dest);
        assert!(
            output.status.success(),
            "{platform}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let installed = std::fs::read_to_string(dest.join("speedtest")).unwrap();
        assert!(
            installed.contains(ookla),
            "{platform} installed {installed:?}"
        );

        // A wrong checksum (another architecture's) and an empty one install nothing.
        let wrong = &sums[if ookla == "x86_64" { "armhf" } else { "x86_64" }];
        let dest = dir.path().join(format!("wrong-{ookla}"));
        let output = installer(platform, &[(var, wrong)], &dest);
        assert!(
            !output.status.success(),
            "{platform}: a wrong checksum passed"
        );
        assert!(String::from_utf8_lossy(&output.stderr).contains("does not match"));
        assert!(!dest.exists());
        let output = installer(platform, &[], &dest);
        assert!(!output.status.success(), "{platform}: no checksum passed");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(&format!("{var} is empty")),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!dest.exists());
    }
    let output = installer("riscv64", &[], &dir.path().join("riscv"));
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no Ookla Speedtest CLI build"));
}

/// Plays the server for one health check on `listener`: answers `answer` (a whole HTTP
/// response) to the first connection asking for /healthz and returns its request head, read
/// whole (bash may write it in pieces, and closing before the last one kills the script with
/// SIGPIPE). Another connection (another test on this machine trying a port it thought free)
/// is dropped.
fn answer_healthcheck(listener: TcpListener, answer: &str) -> String {
    loop {
        assert!(
            common::readable_within(&listener, common::PATIENCE),
            "the health check never connected"
        );
        let (mut stream, _) = listener.accept().expect("accept the health check");
        stream.set_read_timeout(Some(common::PATIENCE)).unwrap();
        let mut request = Vec::new();
        let mut piece = [0u8; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            match stream.read(&mut piece) {
                Ok(read) if read > 0 => request.extend_from_slice(&piece[..read]),
                _ => break,
            }
        }
        if request.starts_with(b"GET /healthz HTTP/1.1\r\n") && request.ends_with(b"\r\n\r\n") {
            stream.write_all(answer.as_bytes()).unwrap();
            return String::from_utf8_lossy(&request).into_owned();
        }
    }
}

/// The image's HEALTHCHECK against a real exporter, a closed port and a failing /healthz.
#[test]
fn healthcheck_script_reports_what_healthz_says() {
    let healthcheck = |listen: &str| -> Output {
        run(
            Command::new("bash")
                .arg(repo("deploy/docker/healthcheck.sh"))
                .env("INTERNET_MONITOR_LISTEN", listen),
            "install bash",
        )
    };

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("samples.redb");
    let exporter = Server::start(common::serve_command(
        &db,
        "ok-1.2-with-loaded-latency",
        &[],
    ));
    let port = exporter.address.rsplit_once(':').unwrap().1;
    let output = healthcheck(&format!("0.0.0.0:{port}"));
    assert!(
        output.status.success(),
        "healthy exporter: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // `--listen` given as an argument (`docker run IMAGE serve --listen :PORT`) wins over
    // INTERNET_MONITOR_LISTEN, as it does for serve: the script reads PID 1's command line
    // (tini's, which holds serve's), here a file standing in for /proc/1/cmdline.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let wrong = closed.local_addr().unwrap().port();
    drop(closed);
    for listen in [
        vec!["--listen".to_owned(), format!(":{port}")],
        vec![format!("--listen=localhost:{port}")],
        vec!["--listen".to_owned(), port.to_owned()],
    ] {
        let cmdline = dir.path().join("cmdline");
        let mut words = vec![
            "/usr/bin/tini",
            "--",
            "/usr/local/bin/internet-monitor",
            "serve",
        ];
        words.extend(listen.iter().map(String::as_str));
        let text: String = words.iter().map(|word| format!("{word}\0")).collect();
        std::fs::write(&cmdline, text).unwrap();
        let output = run(
            Command::new("bash")
                .arg(repo("deploy/docker/healthcheck.sh"))
                .env("INTERNET_MONITOR_LISTEN", format!("0.0.0.0:{wrong}"))
                .env("HEALTHCHECK_CMDLINE", &cmdline),
            "install bash",
        );
        assert!(
            output.status.success(),
            "{listen:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    drop(exporter);

    // Nothing listening.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    assert!(!healthcheck(&format!("0.0.0.0:{port}")).status.success());

    // A store that is not usable: /healthz answers 503.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let answer = std::thread::spawn(move || {
        let body = r#"{"error": "store unavailable"}"#;
        answer_healthcheck(
            listener,
            &format!(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
    });
    let output = healthcheck(&format!("[::]:{port}"));
    let request = answer.join().unwrap();
    assert!(
        request.starts_with("GET /healthz HTTP/1.1\r\n"),
        "{request:?}"
    );
    assert!(!output.status.success(), "a 503 must be unhealthy");
    assert!(String::from_utf8_lossy(&output.stderr).contains("503"));
}

/// A `--listen` naming one address (`[::1]:PORT`, `127.0.0.2:PORT`) is asked on that address,
/// where serve listens, not on 127.0.0.1; a name is never looked up, a port above 65535 refused.
#[test]
fn healthcheck_asks_the_address_listen_names() {
    let dir = tempfile::tempdir().unwrap();
    let healthcheck = |listen: &str| -> Output {
        let cmdline = dir.path().join("cmdline");
        std::fs::write(
            &cmdline,
            // --speedtest-arg takes any value, --listen=… too: not serve's --listen.
            format!("/usr/bin/tini\0--\0serve\0--listen\0{listen}\0--speedtest-arg\0--listen=:1\0"),
        )
        .unwrap();
        run(
            Command::new("bash")
                .arg(repo("deploy/docker/healthcheck.sh"))
                .env_remove("INTERNET_MONITOR_LISTEN")
                .env("HEALTHCHECK_CMDLINE", &cmdline),
            "install bash",
        )
    };
    for host in ["[::1]", "127.0.0.2"] {
        let listener = TcpListener::bind(format!("{host}:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let answer = std::thread::spawn(move || {
            answer_healthcheck(
                listener,
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
        });
        let output = healthcheck(&format!("{host}:{port}"));
        assert!(
            output.status.success(),
            "{host}: {} {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let request = answer.join().unwrap();
        assert!(
            request.contains(&format!("Host: {host}\r\n")),
            "{request:?}"
        );
    }
    for (listen, says) in [
        ("monitor.example:5000", "cannot read an address"),
        (":99999", "above 65535"),
    ] {
        let output = healthcheck(listen);
        assert!(!output.status.success(), "{listen}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{listen}: {stderr}");
    }
}
