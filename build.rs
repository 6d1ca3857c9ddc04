//! Embeds the source date (`SOURCE_DATE_EPOCH`, else the commit date of `HEAD`) as
//! `INTERNET_MONITOR_SOURCE_DATE`, in seconds: a clock that reads earlier is known to be wrong.
//! Without either (a tarball, a Docker build without `.git`), nothing is set and the program
//! falls back to the release date in `src/time.rs`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let from_env = std::env::var("SOURCE_DATE_EPOCH").ok();
    let date = from_env.or_else(|| {
        for path in ["HEAD", "logs/HEAD"] {
            if let Some(path) = git(&["rev-parse", "--git-path", path]) {
                println!("cargo:rerun-if-changed={path}");
            }
        }
        git(&["log", "-1", "--format=%ct", "HEAD"])
    });
    if let Some(seconds) = date.filter(|text| text.parse::<u64>().is_ok()) {
        println!("cargo:rustc-env=INTERNET_MONITOR_SOURCE_DATE={seconds}");
    }
}

/// What `git ARGS` prints, trimmed; `None` when git or the repository is not there.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    Some(text.trim().to_owned())
}
