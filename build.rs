//! Embeds what the build came from:
//!
//! - `INTERNET_MONITOR_SOURCE_DATE`: the source date (`SOURCE_DATE_EPOCH`, else the commit date
//!   of `HEAD`), in seconds: a clock that reads earlier is known to be wrong. Without either (a
//!   tarball, a Docker build without `.git`), nothing is set and the program falls back to the
//!   release date in `src/time.rs`.
//! - `INTERNET_MONITOR_REVISION`: the source revision `internet_monitor_build_info` reports:
//!   the variable of that name when set (the Dockerfile's `--build-arg REVISION`, where `.git`
//!   is not in the build context), else the 12-digit commit of `HEAD`, else nothing (the metric
//!   says `unknown`).
//!
//! Either is looked up again only when `HEAD` or the branch it names moves (or the variables
//! change), not at every build. Git is asked only when it tracks this file: a source tarball
//! unpacked inside another repository (a packaging repository, a home directory kept in git)
//! would otherwise report that repository's commit.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=INTERNET_MONITOR_REVISION");
    let tracked = git(&["ls-files", "--full-name", "--error-unmatch", "build.rs"]).is_some();
    let git = |args: &[&str]| if tracked { git(args) } else { None };
    if tracked {
        watch_head();
    }
    // A variable set to something unusable is said (a warning cargo shows) and git asked
    // instead, not dropped without a word.
    let from_env = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
        .filter(|text| {
            let usable = text.parse::<u64>().is_ok();
            if !usable {
                println!(
                    "cargo:warning=SOURCE_DATE_EPOCH={text:?} is not whole seconds since 1970: ignored"
                );
            }
            usable
        });
    let date = from_env.or_else(|| git(&["log", "-1", "--format=%ct", "HEAD"]));
    if let Some(seconds) = date.filter(|text| text.parse::<u64>().is_ok()) {
        println!("cargo:rustc-env=INTERNET_MONITOR_SOURCE_DATE={seconds}");
    }
    let usable = |text: &String| {
        text.len() <= 64
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c))
    };
    let revision = std::env::var("INTERNET_MONITOR_REVISION")
        .ok()
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty() && text != "unknown")
        .filter(|text| {
            if !usable(text) {
                println!(
                    "cargo:warning=INTERNET_MONITOR_REVISION={text:?} is not a revision (at most 64 \
                     of A-Z a-z 0-9 . _ - +): ignored"
                );
            }
            usable(text)
        })
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .filter(usable);
    if let Some(revision) = revision {
        println!("cargo:rustc-env=INTERNET_MONITOR_REVISION={revision}");
    }
}

/// Reruns this script when `HEAD` changes (a checkout) or the branch it names moves (a
/// commit): its file, or `packed-refs` when the branch is packed. Only existing files are
/// named, since cargo reruns every time for a missing one.
fn watch_head() {
    let mut paths = vec![
        "HEAD".to_owned(),
        "logs/HEAD".to_owned(),
        "packed-refs".to_owned(),
    ];
    if let Some(branch) =
        git(&["rev-parse", "--symbolic-full-name", "HEAD"]).filter(|name| name.starts_with("refs/"))
    {
        paths.push(branch);
    }
    for path in paths {
        if let Some(path) = git(&["rev-parse", "--git-path", &path])
            && Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

/// What `git ARGS` prints, trimmed; `None` when git or the repository is not there.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    Some(text.trim().to_owned()).filter(|text| !text.is_empty())
}
