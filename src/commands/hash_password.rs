//! `hash-password`: a bcrypt hash for `basic_auth_users` in the web configuration file, so
//! that no other tool (htpasswd, python3-bcrypt) is needed to make one.

use std::io::{self, BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::cli::HashPasswordArgs;

/// The longest password bcrypt takes into account: bytes after the 72nd are ignored by every
/// implementation (the exporter-toolkit's Go one included), so a longer one is refused rather
/// than silently shortened.
const MAX_PASSWORD_BYTES: usize = 72;

/// Reads the password (one line; from a terminal without echo, asked twice) and prints its
/// bcrypt hash (`$2b$`, the cost of `--cost`) on stdout.
pub(super) fn hash_password(args: &HashPasswordArgs) -> anyhow::Result<ExitCode> {
    let stdin = io::stdin();
    let password = if stdin.is_terminal() {
        let first = prompt("Password: ")?;
        let again = prompt("Again: ")?;
        if first != again {
            bail!("the two passwords differ: nothing was hashed");
        }
        first
    } else {
        read_line(stdin.lock())?
    };
    let password = check(&password)?;
    let hash = bcrypt::hash(password, args.cost).context("bcrypt failed")?;
    super::write_stdout(|out| Ok(writeln!(out, "{hash}")?))?;
    Ok(ExitCode::SUCCESS)
}

/// The password as bcrypt will see it, or why it is refused.
fn check(password: &str) -> anyhow::Result<&str> {
    if password.is_empty() {
        bail!("the password is empty: type one, or pipe it in (`printf %s PASSWORD | …`)");
    }
    if password.len() > MAX_PASSWORD_BYTES {
        bail!(
            "the password is {} bytes long: bcrypt uses only the first {MAX_PASSWORD_BYTES}, so a longer one would be cut without a word",
            password.len()
        );
    }
    Ok(password)
}

/// The first line of `input` without its line end (at most a few KiB are read).
fn read_line(input: impl BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    input
        .take(4096)
        .read_line(&mut line)
        .context("cannot read the password from stdin (UTF-8 text, one line)")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Asks on stderr and reads a line from the terminal with echo off (restored after, also
/// when reading fails).
fn prompt(question: &str) -> anyhow::Result<String> {
    eprint!("{question}");
    io::stderr().flush().ok();
    let echo = Echo::off();
    let line = read_line(io::stdin().lock());
    drop(echo);
    eprintln!();
    line
}

/// The terminal's settings while echo is off; dropping it puts them back.
struct Echo(Option<libc::termios>);

impl Echo {
    fn off() -> Echo {
        // SAFETY: tcgetattr/tcsetattr read and write the termios struct we own, for stdin.
        unsafe {
            let mut settings: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut settings) != 0 {
                return Echo(None);
            }
            let saved = settings;
            settings.c_lflag &= !libc::ECHO;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &settings) != 0 {
                return Echo(None);
            }
            Echo(Some(saved))
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        if let Some(saved) = self.0 {
            // SAFETY: puts back the settings read from the same descriptor.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &saved);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_read_without_its_end_and_empty_or_long_passwords_are_refused() {
        assert_eq!(read_line(&b"s3cret\r\nmore\n"[..]).unwrap(), "s3cret");
        assert_eq!(read_line(&b"no newline"[..]).unwrap(), "no newline");
        assert!(check("").unwrap_err().to_string().contains("empty"));
        let long = "x".repeat(73);
        assert!(check(&long).unwrap_err().to_string().contains("first 72"));
        assert_eq!(check(&"x".repeat(72)).unwrap().len(), 72);
    }
}
