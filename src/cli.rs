//! The command line: sub-commands and flags, each flag with its `INTERNET_MONITOR_*` twin.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::plan::Plan;
use crate::sample::HttpProtocol;
use crate::speedtest::{self, EngineChoice, EngineConfig, HttpConfig, OoklaConfig, ParseOptions};
use crate::time::{self, MAX_AGE, TimeArg};
use crate::units::{Bandwidth, DataVolume};
use crate::zone::Zone;

/// The source revision this binary was built from (`build.rs`: `INTERNET_MONITOR_REVISION` at
/// build time, else the git commit), `unknown` when neither was there.
pub const REVISION: &str = match option_env!("INTERNET_MONITOR_REVISION") {
    Some(revision) => revision,
    None => "unknown",
};

/// Most bytes kept from each of the CLI's stdout and stderr; a real result is a few KiB.
const OUTPUT_LIMIT: usize = 1 << 20;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest `--interval`, `--splay` and `--start-delay`: a year.
pub const MAX_SCHEDULE: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// The most `--http-streams`: what a stored sample may record.
pub const MAX_HTTP_STREAMS: u32 = crate::sample::MAX_ENGINE_STREAMS;
/// The shortest `--http-duration`: a second, five ramp-up periods of 200 ms.
pub const MIN_HTTP_DURATION: Duration = Duration::from_secs(1);
/// The longest `--http-duration`: five minutes.
pub const MAX_HTTP_DURATION: Duration = Duration::from_secs(5 * 60);
/// Room in `--timeout` beyond the two directions' `--http-duration`: connecting, TLS, detecting
/// the API and the idle-latency probes.
pub const HTTP_SET_UP_ALLOWANCE: Duration = Duration::from_secs(20);
/// The longest `--timeout`: an hour (a test takes under a minute).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// The longest `--retest-after`: a day.
pub const MAX_RETEST_AFTER: Duration = DAY;
/// The longest `--min-manual-gap`: 30 days.
pub const MAX_MANUAL_GAP: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// The longest `--retention` and `report --window`: [`MAX_AGE`], 100 years.
pub const MAX_RETENTION: Duration = MAX_AGE;

/// Keeps an ISP honest: measures the line with the Ookla Speedtest CLI or its own HTTP engine,
/// keeps every run (failures too) in an embedded database, and exports what it measured.
///
/// Without a sub-command it runs `serve`, taking serve's flags.
#[derive(Debug, Parser)]
#[command(
    name = "internet-monitor",
    version,
    propagate_version = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Environment variables no longer read, each with what replaced it: refused rather than
/// ignored, so that a job relying on one does not silently change its output.
pub const RETIRED_ENVIRONMENT: [(&str, &str); 1] = [(
    "INTERNET_MONITOR_FORMAT",
    "INTERNET_MONITOR_EXPORT_FORMAT for export, INTERNET_MONITOR_REPORT_FORMAT for report",
)];

/// An error naming each retired variable that `env` (a lookup such as [`std::env::var_os`])
/// finds set, and its replacement.
pub fn refuse_retired_environment(env: impl Fn(&str) -> Option<OsString>) -> Result<(), String> {
    for (name, instead) in RETIRED_ENVIRONMENT {
        if env(name).is_some() {
            return Err(format!(
                "{name} is no longer read (export and report had different formats under one \
                 name): use {instead}, and unset {name}"
            ));
        }
    }
    Ok(())
}

/// The repeatable flags whose environment twin `NAME` also comes numbered, `NAME_1`,
/// `NAME_2`, …: the argument's id, the subcommands that have it (`""` for `serve` run without a
/// sub-command) and the variable. A numbered variable holds one value whatever characters it
/// has, which a separator could not promise for arguments passed on to another program.
pub const NUMBERED_ENVIRONMENT: [(&str, &[&str], &str); 1] = [(
    "speedtest_args",
    &["", "serve", "run-once"],
    "INTERNET_MONITOR_SPEEDTEST_ARG",
)];

/// The values of `NAME_1`, `NAME_2`, … among `vars`, in the order of their numbers (gaps
/// allowed); an empty one is an error naming the variable, and so is any other `NAME_…`
/// (`NAME_0`, `NAME_01`, `NAME_X`), which would otherwise be left out without a word.
pub fn numbered_values(
    name: &str,
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<Vec<OsString>, String> {
    let prefix = format!("{name}_");
    let mut found: Vec<(u64, String, OsString)> = Vec::new();
    for (key, value) in vars {
        let Ok(key) = key.into_string() else { continue };
        let Some(number) = key.strip_prefix(&prefix) else {
            continue;
        };
        let valid = !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit())
            && !number.starts_with('0');
        let Some(number) = number.parse().ok().filter(|_| valid) else {
            return Err(format!(
                "{key} is not read: the numbered twins are {name}_1, {name}_2, … (from 1, \
                 without leading zeros); rename it"
            ));
        };
        found.push((number, key, value));
    }
    found.sort_by_key(|(number, _, _)| *number);
    found
        .into_iter()
        .map(|(_, key, value)| {
            if value.to_string_lossy().trim().is_empty() {
                Err(format!(
                    "{key} is set but empty: unset it (leave its line out) or give it a value"
                ))
            } else {
                Ok(value)
            }
        })
        .collect()
}

/// A refusal naming a variable of `vars` spelt `TWIN_<digits>` for an environment twin of the
/// command `args` run that is not numbered (only [`NUMBERED_ENVIRONMENT`]'s are): it would be
/// left out without a word, and `INTERNET_MONITOR_PROBE_TARGET_1` looks as if it were read. A
/// repeatable flag's twin takes its values comma-separated; another takes one value.
fn unread_numbered(
    root: &clap::Command,
    args: &[OsString],
    vars: &[(OsString, OsString)],
) -> Option<String> {
    let numbered: Vec<&str> = NUMBERED_ENVIRONMENT
        .iter()
        .map(|(_, _, variable)| *variable)
        .collect();
    let mut refusals: Vec<String> = command_run(root, args)
        .get_arguments()
        .filter_map(|arg| Some((arg, arg.get_env()?.to_str()?, arg.get_long()?)))
        .filter(|(_, twin, _)| !numbered.contains(twin))
        .flat_map(|(arg, twin, long)| {
            vars.iter().filter_map(move |(key, _)| {
                let key = key.to_str()?;
                let number = key.strip_prefix(twin)?.strip_prefix('_')?;
                if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some(if arg.get_value_delimiter().is_some() {
                    format!(
                        "{key} is not read: only {twin} is (--{long}'s twin); give several \
                         values in it separated by commas ({twin}=A,B), and remove {key}"
                    )
                } else {
                    format!(
                        "{key} is not read: --{long} takes one value, from {twin}; remove {key}"
                    )
                })
            })
        })
        .collect();
    refusals.sort();
    (!refusals.is_empty()).then(|| refusals.join("\n"))
}

/// The environment twins (variable, flag) of the command `args` run: the sub-commands named
/// are followed down the tree, skipping the values of the flags that take one.
fn environment_twins(root: &clap::Command, args: &[OsString]) -> Vec<(String, String)> {
    command_run(root, args)
        .get_arguments()
        .filter_map(|arg| {
            let env = arg.get_env()?.to_str()?.to_owned();
            Some((env, format!("--{}", arg.get_long()?)))
        })
        .collect()
}

/// The (sub-)command `args` run: the sub-commands named are followed down the tree from
/// `root`, skipping the values of the flags that take one; `root` when none is named.
fn command_run<'a>(root: &'a clap::Command, args: &[OsString]) -> &'a clap::Command {
    let mut current = root;
    let mut words = args.iter().skip(1);
    while let Some(word) = words.next() {
        let Some(word) = word.to_str() else { continue };
        if word == "--" {
            break;
        }
        if let Some(long) = word.strip_prefix("--") {
            let takes_value = current
                .get_arguments()
                .find(|arg| arg.get_long() == Some(long))
                .is_some_and(|arg| arg.get_action().takes_values());
            if takes_value {
                words.next();
            }
        } else if let Some(sub) = current.find_subcommand(word) {
            current = sub;
        }
    }
    current
}

/// A refusal naming each environment twin of the command `args` run that `vars` has set but
/// empty: clap would read it as its flag given an empty value and name the flag, leaving the
/// reader to guess where the value came from (`KEY=` in an env file, `KEY: ${UNSET}` in a
/// compose file). Other commands' variables are not looked at: `docker compose exec` gives
/// `export` all of serve's.
fn empty_environment(
    root: &clap::Command,
    args: &[OsString],
    vars: &[(OsString, OsString)],
) -> Option<String> {
    // --help and --version read no value: they still answer.
    if args
        .iter()
        .skip(1)
        .any(|arg| matches!(arg.to_str(), Some("--help" | "-h" | "--version" | "-V")))
    {
        return None;
    }
    let twins = environment_twins(root, args);
    let mut empty: Vec<String> = vars
        .iter()
        .filter(|(_, value)| value.to_string_lossy().trim().is_empty())
        .filter_map(|(key, _)| {
            let key = key.to_str()?;
            let (_, flag) = twins.iter().find(|(env, _)| env == key)?;
            Some(format!("{key} (the twin of {flag})"))
        })
        .collect();
    if empty.is_empty() {
        return None;
    }
    empty.sort();
    Some(format!(
        "the environment variable {} is set but empty: unset it (leave its line out) or give \
         it a value",
        empty.join(", ")
    ))
}

/// `args` with each negative number given to a flag as its own word (`--plan-download -5mbps`,
/// `--interval -5m`) joined to the flag (`--plan-download=-5mbps`), or `None` when there is
/// none: clap takes `-5mbps` for short flags and refuses the unknown `-5`, where the flag's
/// own parser says what is wrong with the value (speeds are positive) and names the flag.
fn negative_values_joined(args: &[OsString]) -> Option<Vec<OsString>> {
    use clap::CommandFactory;
    let root = Cli::command();
    let command = command_run(&root, args);
    let mut joined = Vec::with_capacity(args.len());
    let mut changed = false;
    let mut words = args.iter().peekable();
    while let Some(word) = words.next() {
        let takes_value = word
            .to_str()
            .and_then(|word| word.strip_prefix("--"))
            .filter(|long| !long.contains('='))
            .is_some_and(|long| {
                command
                    .get_arguments()
                    .any(|arg| arg.get_long() == Some(long) && arg.get_action().takes_values())
            });
        let negative = |next: &&OsString| {
            next.to_str().is_some_and(|next| {
                next.strip_prefix('-')
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit() || c == '.'))
            })
        };
        if takes_value && let Some(next) = words.next_if(negative) {
            let mut word = word.clone();
            word.push("=");
            word.push(next);
            joined.push(word);
            changed = true;
        } else {
            joined.push(word.clone());
        }
    }
    changed.then_some(joined)
}

/// serve's flags that only act with another, given (on the command line or by their twin)
/// without it: (the dependent flag's id, name and twin, the id and name it needs). `--retest-after`
/// says when a retest starts, and only `--retest-below` makes one.
const DEPENDENT_FLAGS: [(&str, &str, &str, &str, &str); 1] = [(
    "retest_after",
    "--retest-after",
    "INTERNET_MONITOR_RETEST_AFTER",
    "retest_below",
    "--retest-below",
)];

/// A refusal naming both flags when serve's `matches` give a flag of [`DEPENDENT_FLAGS`]
/// without the one it needs: it would have no effect, silently. A value from the environment
/// names its variable (a twin set for every container is refused too: the setting it names
/// does nothing, which the user should hear at start-up, not find out from the data).
fn dependent_without_its_flag(matches: &clap::ArgMatches) -> Option<String> {
    use clap::parser::ValueSource;
    DEPENDENT_FLAGS
        .into_iter()
        .find_map(|(id, flag, variable, needed_id, needed)| {
            let source = matches.value_source(id)?;
            let given = matches!(source, ValueSource::CommandLine | ValueSource::EnvVariable);
            let needed_given = matches.value_source(needed_id).is_some();
            if !given || needed_given {
                return None;
            }
            let from = if source == ValueSource::EnvVariable {
                format!(" (from the environment variable {variable})")
            } else {
                String::new()
            };
            Some(format!(
                "{flag}{from} has no effect without {needed}: only {needed} makes a retest; give \
                 {needed} (e.g. {needed} 0.5), or leave {flag} out"
            ))
        })
}

/// Whether `args` (the program's name first) give `flag` (`--retention`), as `--flag VALUE`
/// or `--flag=VALUE`.
fn on_command_line(args: &[OsString], flag: &str) -> bool {
    args.iter().skip(1).any(|word| {
        word.to_str().is_some_and(|word| {
            word == flag
                || word
                    .strip_prefix(flag)
                    .is_some_and(|rest| rest.starts_with('='))
        })
    })
}

/// `err` with the value it refuses shown as [`secrets_redacted`] shows it
/// (`http://user:pw@host/?token=x` → `http://…@host/?token=REDACTED`), in clap's part and in
/// the value parser's explanation: a flag or variable refused for holding credentials
/// (`--http-server`), or for anything else, must not print them to a log.
fn without_credentials(mut err: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(value)) = err.get(ContextKind::InvalidValue) else {
        return err;
    };
    let value = value.clone();
    let shown = secrets_redacted(&value);
    if shown == value.as_str() {
        return err;
    }
    let shown = shown.into_owned();
    err.insert(
        ContextKind::InvalidValue,
        ContextValue::String(shown.clone()),
    );
    let source = std::error::Error::source(&err).map(ToString::to_string);
    // The explanation shows the value as it is, or escaped (in quotes or not) and cut.
    use crate::logging::{quoted, shown as escaped_shown};
    let forms = [
        (quoted(&value).to_string(), quoted(&shown).to_string()),
        (
            escaped_shown(&value).to_string(),
            escaped_shown(&shown).to_string(),
        ),
        (value.clone(), shown.clone()),
    ];
    let Some(mut source) = source.filter(|source| {
        !value.is_empty() && forms.iter().any(|(form, _)| source.contains(form.as_str()))
    }) else {
        return err;
    };
    for (form, instead) in &forms {
        source = source.replace(form.as_str(), instead);
    }
    // The explanation repeats the value (`"…" is not an IP address`): clap keeps it as the
    // error's source, which cannot be replaced, so the message is written again without it.
    let text = |kind| match err.get(kind) {
        Some(ContextValue::String(text)) => text.clone(),
        _ => String::new(),
    };
    // Escaped as [`escape_echoes`] would have shown them; the value cut too.
    let mut message = format!(
        "invalid value '{}' for '{}': {}\n",
        crate::logging::shown(&shown),
        text(ContextKind::InvalidArg),
        crate::logging::escaped(&source)
    );
    if let Some(ContextValue::StyledStrs(tips)) = err.get(ContextKind::Suggested) {
        for tip in tips {
            message.push_str(&format!("\n  tip: {tip}\n"));
        }
    }
    use clap::CommandFactory;
    clap::Error::raw(err.kind(), message).format(&mut Cli::command())
}

/// `text` with the user information of a URL's or a host's authority (what comes before an
/// `@` after `scheme://`, or from the start when there is no scheme, up to the first `/`, `?`
/// or `#`) replaced by `…`; `None` when it holds none.
pub fn userinfo_redacted(text: &str) -> Option<String> {
    let start = text
        .find("://")
        .filter(|&at| {
            text[..at]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        })
        .map_or(0, |at| at + 3);
    let rest = &text[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..end].rfind('@')?;
    Some(format!("{}…{}", &text[..start], &rest[at..]))
}

/// `text`, a URL or a host (`user:pw@host:443`) as an error message or a log may show it:
/// its user information replaced by `…` ([`userinfo_redacted`]) and the value of each query
/// parameter named like a secret (`?token=`, `?api_key=`; the access log's rule) by
/// `REDACTED`. The same text when it holds neither.
pub fn secrets_redacted(text: &str) -> std::borrow::Cow<'_, str> {
    let text: std::borrow::Cow<'_, str> = match userinfo_redacted(text) {
        Some(shown) => shown.into(),
        None => text.into(),
    };
    let queried = crate::http::query_redacted(&text).into_owned();
    if queried == *text {
        text
    } else {
        queried.into()
    }
}

/// `err`, a value clap refused, with a tip naming the environment variable it came from when
/// the command line did not give its flag: clap names the flag only, which the user may never
/// have typed. A value in quotes gets a second tip: `docker run --env-file` keeps them. A
/// variable that is not UTF-8 is named too (clap says only that some argument is not).
fn name_the_variable(
    mut err: clap::Error,
    root: &clap::Command,
    args: &[OsString],
    vars: &[(OsString, OsString)],
) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if err.kind() == ErrorKind::InvalidUtf8 {
        // clap says only that some argument is not UTF-8.
        let twins = environment_twins(root, args);
        let mut tips: Vec<clap::builder::StyledStr> = vars
            .iter()
            .filter(|(_, value)| value.to_str().is_none())
            .filter_map(|(key, _)| {
                let key = key.to_str()?;
                twins
                    .iter()
                    .any(|(env, _)| env == key)
                    .then(|| format!("the environment variable {key} is not UTF-8 text").into())
            })
            .collect();
        if !tips.is_empty() {
            tips.sort_by_key(|tip| tip.to_string());
            err.insert(ContextKind::Suggested, ContextValue::StyledStrs(tips));
        }
        return err;
    }
    if err.kind() == ErrorKind::ArgumentConflict {
        // clap says the flag was given; it may have come from its twin (a `--from` on the
        // command line against INTERNET_MONITOR_WINDOW): name the variable to unset.
        let mut flags: Vec<String> = Vec::new();
        for kind in [ContextKind::InvalidArg, ContextKind::PriorArg] {
            match err.get(kind) {
                Some(ContextValue::String(arg)) => flags.push(arg.clone()),
                Some(ContextValue::Strings(args)) => flags.extend(args.iter().cloned()),
                _ => {}
            }
        }
        let twins = environment_twins(root, args);
        let mut tips: Vec<clap::builder::StyledStr> = flags
            .iter()
            .filter_map(|arg| arg.split_whitespace().next())
            .filter(|flag| !on_command_line(args, flag))
            .filter_map(|flag| {
                let (env, _) = twins.iter().find(|(env, twin)| {
                    twin == flag && vars.iter().any(|(key, _)| key.to_str() == Some(env))
                })?;
                Some(
                    format!(
                        "{flag} comes from the environment variable {env}: unset it for this \
                         command (env -u {env} …)"
                    )
                    .into(),
                )
            })
            .collect();
        if !tips.is_empty() {
            tips.sort_by_key(|tip| tip.to_string());
            err.insert(ContextKind::Suggested, ContextValue::StyledStrs(tips));
        }
        return err;
    }
    if !matches!(
        err.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) {
        return err;
    }
    let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) else {
        return err;
    };
    let Some(flag) = arg.split_whitespace().next().map(str::to_owned) else {
        return err;
    };
    if on_command_line(args, &flag) {
        return err;
    }
    let twins = environment_twins(root, args);
    let Some((variable, value)) = twins.iter().find_map(|(env, twin)| {
        (*twin == flag)
            .then(|| {
                vars.iter()
                    .find(|(key, _)| key.to_str() == Some(env.as_str()))
            })
            .flatten()
            .map(|(_, value)| (env.clone(), value.to_string_lossy().trim().to_owned()))
    }) else {
        return err;
    };
    let mut tips = match err.get(ContextKind::Suggested) {
        Some(ContextValue::StyledStrs(tips)) => tips.clone(),
        _ => Vec::new(),
    };
    tips.push(format!("the value comes from the environment variable {variable}").into());
    let switch = command_run(root, args).get_arguments().any(|arg| {
        arg.get_long()
            .is_some_and(|long| flag == format!("--{long}"))
            && matches!(arg.get_action(), clap::ArgAction::SetTrue)
    });
    if switch {
        tips.push(
            format!(
                "{variable} turns {flag} on with true, 1, yes or on and leaves it off with false, \
                 0, no or off"
            )
            .into(),
        );
    }
    let quoted = ['"', '\'']
        .into_iter()
        .any(|quote| value.len() >= 2 && value.starts_with(quote) && value.ends_with(quote));
    if quoted {
        tips.push(
            format!(
                "{variable}'s quotes are part of its value (docker run --env-file keeps them): \
                 leave them out"
            )
            .into(),
        );
    }
    err.insert(ContextKind::Suggested, ContextValue::StyledStrs(tips));
    err
}

/// `err` with every value the user gave that it quotes (the refused value, an unexpected
/// argument, a tip that repeats one) shown as [`crate::logging::shown`] shows it: control and
/// bidirectional characters escaped, at most [`crate::logging::SHOWN_CHARS`] characters. clap
/// quotes them as given, so a value could otherwise forge a line on the terminal or in a log.
/// A value parser's own message is the parser's to keep safe; one that is not (a long or
/// control-bearing message) has the error rebuilt with that message escaped and cut.
pub fn escape_echoes(mut err: clap::Error) -> clap::Error {
    use crate::logging::{SHOWN_CHARS, escaped, shown};
    use clap::error::{ContextKind, ContextValue};
    let unsafe_text =
        |text: &str| text.chars().count() > SHOWN_CHARS || escaped(text).len() != text.len();
    let changes: Vec<(ContextKind, ContextValue)> = err
        .context()
        .filter_map(|(kind, value)| match value {
            ContextValue::String(text) if unsafe_text(text) => {
                Some((kind, ContextValue::String(shown(text).to_string())))
            }
            ContextValue::Strings(texts) if texts.iter().any(|text| unsafe_text(text)) => Some((
                kind,
                ContextValue::Strings(texts.iter().map(|text| shown(text).to_string()).collect()),
            )),
            ContextValue::StyledStrs(tips)
                if tips.iter().any(|tip| {
                    let tip = tip.to_string();
                    tip.len() > 4 * SHOWN_CHARS || escaped(&tip).len() != tip.len()
                }) =>
            {
                Some((
                    kind,
                    ContextValue::StyledStrs(
                        tips.iter()
                            .map(|tip| shown(&tip.to_string()).to_string().into())
                            .collect(),
                    ),
                ))
            }
            _ => None,
        })
        .collect();
    for (kind, value) in changes {
        err.insert(kind, value);
    }
    let source = std::error::Error::source(&err).map(ToString::to_string);
    if let Some(source) = source
        && (source.chars().count() > 10 * SHOWN_CHARS || escaped(&source).len() != source.len())
    {
        let text = |kind| match err.get(kind) {
            Some(ContextValue::String(text)) => text.clone(),
            _ => String::new(),
        };
        let mut message = format!(
            "invalid value '{}' for '{}': {}\n",
            text(ContextKind::InvalidValue),
            text(ContextKind::InvalidArg),
            shown(&source)
        );
        if let Some(ContextValue::StyledStrs(tips)) = err.get(ContextKind::Suggested) {
            for tip in tips {
                message.push_str(&format!("\n  tip: {tip}\n"));
            }
        }
        use clap::CommandFactory;
        return clap::Error::raw(err.kind(), message).format(&mut Cli::command());
    }
    err
}

/// For a command's error `message`, a note for each flag it names (`--retention`) whose value
/// came from its environment twin rather than the command line: `--retention 3m` in a refusal
/// is `INTERNET_MONITOR_RETENTION=3m` in a compose file, which the user has to find. The
/// value is not repeated: the message shows what it means to, and a value may hold a secret
/// (`--remote-write.url` with a password is refused without showing it).
pub fn environment_notes(
    message: &str,
    args: &[OsString],
    vars: &[(OsString, OsString)],
) -> Vec<String> {
    use clap::CommandFactory;
    // The flag itself, not the start of a longer one (`--remote-write.url`, `--retest-after`);
    // a full stop after it ends a sentence.
    let named = |flag: &str| {
        message.match_indices(flag).any(|(at, _)| {
            let mut after = message[at + flag.len()..].chars();
            let longer = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-');
            match after.next() {
                Some('.') => !longer(after.next()),
                next => !longer(next),
            }
        })
    };
    let mut notes: Vec<String> = environment_twins(&Cli::command(), args)
        .into_iter()
        .filter(|(_, flag)| named(flag) && !on_command_line(args, flag))
        .filter_map(|(env, flag)| {
            let (_, value) = vars
                .iter()
                .find(|(key, _)| key.to_str() == Some(env.as_str()))?;
            // Named, not shown: a value may hold what must not reach a log (a URL's password).
            (!value.to_string_lossy().trim().is_empty())
                .then(|| format!("{flag} came from the environment variable {env}"))
        })
        .collect();
    notes.sort();
    notes.dedup();
    notes
}

impl Cli {
    /// Parses the process's arguments as [`Parser::try_parse`] does, then adds the numbered
    /// environment twins of [`NUMBERED_ENVIRONMENT`] where the command line gave none of the
    /// flag, and refuses an environment variable set but empty, naming it.
    pub fn try_parse_with_environment() -> Result<Cli, clap::Error> {
        Self::try_parse_from_with_environment(std::env::args_os(), std::env::vars_os())
    }

    /// [`Cli::try_parse_with_environment`] for these arguments and variables (the variables
    /// clap reads itself still come from the process's environment).
    pub fn try_parse_from_with_environment(
        args: impl IntoIterator<Item = OsString>,
        vars: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<Cli, clap::Error> {
        let args: Vec<OsString> = args.into_iter().collect();
        let vars: Vec<(OsString, OsString)> = vars.into_iter().collect();
        match Self::parse_with_environment(args.clone(), vars.clone()) {
            Err(err) if err.kind() == clap::error::ErrorKind::UnknownArgument => {
                match negative_values_joined(&args) {
                    Some(joined) => Self::parse_with_environment(joined, vars),
                    None => Err(err),
                }
            }
            parsed => parsed,
        }
        .map_err(escape_echoes)
    }

    fn parse_with_environment(
        args: impl IntoIterator<Item = OsString>,
        vars: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<Cli, clap::Error> {
        use clap::{CommandFactory, FromArgMatches, error::ErrorKind, parser::ValueSource};
        let vars: Vec<(OsString, OsString)> = vars.into_iter().collect();
        let args: Vec<OsString> = args.into_iter().collect();
        let mut command = Cli::command();
        // The top level holds serve's flags (serve is the default): with a sub-command named,
        // they are not read, and neither are their environment twins, which clap would
        // otherwise parse and refuse for every command (`docker compose exec` gives `export`
        // all of serve's variables, `KEY=` among them).
        if !std::ptr::eq(command_run(&command, &args), &command) {
            command = command.mut_args(|arg| arg.env(None));
        }
        // `report --verify` reads only --db: the twins of the report's other flags (a window
        // or format kept in an env file) are not read with it, where clap would refuse them
        // as if they had been typed beside it.
        let verifying = command_run(&command, &args).get_name() == "report"
            && args.iter().any(|arg| {
                arg.to_str()
                    .is_some_and(|arg| arg == "--verify" || arg.starts_with("--verify="))
            });
        if verifying {
            command = command.mut_subcommand("report", |report| {
                report.mut_args(|arg| {
                    if arg.get_id() == "db" {
                        arg
                    } else {
                        arg.env(None)
                    }
                })
            });
        }
        if let Some(message) = unread_numbered(&command, &args, &vars)
            .or_else(|| empty_environment(&command, &args, &vars))
        {
            return Err(clap::Error::raw(
                ErrorKind::ValueValidation,
                format!("{message}\n"),
            ));
        }
        let matches = command
            .try_get_matches_from_mut(args.clone())
            .map_err(|err| name_the_variable(err, &Cli::command(), &args, &vars))
            .map_err(without_credentials)?;
        let mut cli = Cli::from_arg_matches(&matches).map_err(|err| err.format(&mut command))?;
        let (name, sub) = match matches.subcommand() {
            Some((name, sub)) => (name, sub),
            None => ("", &matches),
        };
        if ["", "serve"].contains(&name)
            && let Some(message) = dependent_without_its_flag(sub)
        {
            return Err(clap::Error::raw(
                ErrorKind::MissingRequiredArgument,
                format!("{message}\n"),
            ));
        }
        for (id, commands, variable) in NUMBERED_ENVIRONMENT {
            if !commands.contains(&name) || sub.value_source(id) == Some(ValueSource::CommandLine) {
                continue;
            }
            let more = numbered_values(variable, vars.iter().cloned()).map_err(|message| {
                clap::Error::raw(ErrorKind::ValueValidation, format!("{message}\n"))
            })?;
            if let Some(speedtest) = cli.speedtest_args_mut() {
                speedtest.speedtest_args.extend(more);
            }
        }
        Ok(cli)
    }

    /// The speed-test flags of the command to run, when it has them.
    fn speedtest_args_mut(&mut self) -> Option<&mut SpeedtestArgs> {
        match &mut self.command {
            None => Some(&mut self.serve.speedtest),
            Some(Command::Serve(args)) => Some(&mut args.speedtest),
            Some(Command::RunOnce(args)) => Some(&mut args.speedtest),
            Some(_) => None,
        }
    }

    /// The sub-command to run, `serve` when none was named.
    pub fn into_command(self) -> Command {
        self.command
            .unwrap_or_else(|| Command::Serve(Box::new(self.serve)))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Test on a schedule and serve /metrics, /latest, /last-day, /graph (the default).
    Serve(Box<ServeArgs>),
    /// Run one speed test now, store it durably, and print it as one JSON object.
    ///
    /// Exit status: 0 when the test succeeded, 2 when it failed (the failure is stored and
    /// printed too), 1 when nothing could be stored (bad flags, database unusable).
    RunOnce(RunOnceArgs),
    /// Print every stored sample (failures included), oldest first.
    Export(ExportArgs),
    /// Print the summary of a window for a person (or as JSON): runs, failures, percentiles of
    /// download, upload and ping, and how often the plan was met; ready to attach to a complaint.
    ///
    /// Each run is judged against the plan version in force at its time, from the history
    /// stored with `plan set` (or by serve's --plan-* flags): no plan flags are needed. Given
    /// here, --plan-download/--plan-upload/--plan-threshold judge every run of this report
    /// against them instead, and the stored history is left unchanged.
    Report(ReportArgs),
    /// Store the samples of a file written by `export --format jsonl`.
    ///
    /// Samples whose time is already stored are skipped, so importing twice adds nothing.
    /// A malformed line aborts the import and nothing from the file is stored.
    Import(ImportArgs),
    /// Check the database file for damage, or compact it; no other process may have it open.
    Db(DbArgs),
    /// Store, show and list the contract (plan) runs are judged against, as versions in force
    /// from a time on: a changed contract judges old runs by the old version.
    Plan(PlanCommandArgs),
    /// Serve the speed-test APIs the HTTP engine measures against (Cloudflare-style /__down and
    /// /__up; LibreSpeed garbage, empty, getIP), storing nothing: run it on the far end of a
    /// path you own and `--engine http --http-server http://THAT-HOST:PORT` here.
    Target(TargetArgs),
    /// Print the bcrypt hash of a password for `basic_auth_users` in --web.config.file.
    ///
    /// Reads the password from the terminal (without echo, asked twice) or the first line of
    /// stdin (`printf %s PASSWORD | internet-monitor hash-password`); at most 72 bytes, all
    /// bcrypt uses.
    HashPassword(HashPasswordArgs),
}

/// The fewest and most rounds (log2) `hash-password --cost` takes: bcrypt's own range.
const BCRYPT_COSTS: std::ops::RangeInclusive<u32> = 4..=31;

/// Whether `server` (an `--http-server` URL) is the HTTP engine's public default server however
/// it is spelt: any case, scheme or port, a trailing dot or slash.
fn is_public_default(server: &str) -> bool {
    let host_of = |url: &str| {
        let url = url.to_ascii_lowercase();
        let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
        let host = rest.split(['/', ':', '?', '#']).next().unwrap_or_default();
        host.trim_end_matches('.').to_owned()
    };
    host_of(server) == host_of(speedtest::http::DEFAULT_SERVER)
}

/// `--db PATH`: any path but an empty one, or one with blanks at its start or end, which an
/// env file (`INTERNET_MONITOR_DB=history.redb `) gives by mistake and which would open a new,
/// empty database beside the one meant.
fn db_path(text: &str) -> Result<PathBuf, String> {
    if text.trim().is_empty() {
        return Err("must name a file".to_owned());
    }
    if text.trim() != text {
        return Err(format!(
            "has blanks at its start or end ({}): a database of that name would be a new, empty \
             one beside {}; write the path without them",
            crate::logging::quoted(text),
            crate::logging::quoted(text.trim())
        ));
    }
    Ok(PathBuf::from(text))
}

/// [`db_path`] for a path that is text; one that is not UTF-8 is taken as it is.
#[derive(Clone)]
struct DbPath;

impl clap::builder::TypedValueParser for DbPath {
    type Value = PathBuf;

    fn parse_ref(
        &self,
        command: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<PathBuf, clap::Error> {
        if value.to_str().is_none() {
            return Ok(PathBuf::from(value));
        }
        clap::builder::TypedValueParser::parse_ref(&db_path, command, arg, value)
    }
}

/// `hash-password --cost N`: a whole number in [`BCRYPT_COSTS`].
fn bcrypt_cost(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(cost) if BCRYPT_COSTS.contains(&cost) => Ok(cost),
        _ => Err(format!(
            "must be a whole number from {} to {} (each step doubles the time of every check)",
            BCRYPT_COSTS.start(),
            BCRYPT_COSTS.end()
        )),
    }
}

/// `--server-id N`: an Ookla server id, a whole number from 1 (`speedtest --servers` lists
/// the ids near you).
fn server_id(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u32>() {
        Ok(id) if id > 0 => Ok(u64::from(id)),
        _ => Err(format!(
            "must be an Ookla server id, a whole number from 1 to {} (speedtest --servers lists them)",
            u32::MAX
        )),
    }
}

#[derive(Debug, Args)]
pub struct HashPasswordArgs {
    /// bcrypt cost (log2 of the rounds, 4 to 31); each step doubles the time a check takes,
    /// for the server on every new login as for someone guessing
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = bcrypt_cost)]
    pub cost: u32,
}

/// The most `target --max-connections`.
pub const MAX_TARGET_CONNECTIONS: usize = 4096;

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Address and port to serve on: 0.0.0.0:8080, [::]:8080, localhost:8080 (127.0.0.1), or
    /// :8080 and 8080 (every IPv4 interface); port 0 picks a free one (the log says which)
    #[arg(
        long,
        env = "INTERNET_MONITOR_TARGET_LISTEN",
        value_name = "ADDR",
        default_value = "0.0.0.0:8080",
        value_parser = listen_address
    )]
    pub listen: SocketAddr,

    /// Connections served at once (1 to 4096); beyond it a new client takes the place of the
    /// connection idle longest. A test uses its streams twice over plus two
    #[arg(long, env = "INTERNET_MONITOR_TARGET_MAX_CONNECTIONS", value_name = "N", default_value_t = 256, value_parser = target_connections)]
    pub max_connections: usize,

    /// The most one download sends or one upload reads, e.g. 1GB or 512MiB, in bytes (B: 1Gb,
    /// bits, is refused); more is refused with 413
    #[arg(long, env = "INTERNET_MONITOR_TARGET_MAX_REQUEST_BYTES", value_name = "SIZE", default_value = "1GB", value_parser = request_bytes)]
    pub max_request_bytes: u64,

    /// Log lines as human-readable text or as JSON objects
    #[arg(long, env = "INTERNET_MONITOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// An address flag's value (`--listen`): `IP:PORT` (`0.0.0.0:5000`, `[::]:5000`),
/// `localhost:PORT` (127.0.0.1 only: one listener binds one address), or a port alone, `:PORT`
/// or `PORT`, meaning every IPv4 interface as the default `0.0.0.0` does.
pub fn listen_address(text: &str) -> Result<SocketAddr, String> {
    use std::net::{IpAddr, Ipv4Addr};
    let text = text.trim();
    let port = |digits: &str| -> Option<u16> {
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse().ok())
            .flatten()
    };
    let parsed = if let Some(port) = port(text.strip_prefix(':').unwrap_or(text)) {
        Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port))
    } else if let Some((host, digits)) = text.rsplit_once(':')
        && host.eq_ignore_ascii_case("localhost")
    {
        port(digits).map(|port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
    } else {
        text.parse().ok()
    };
    parsed.ok_or_else(|| {
        format!(
            "{} is not an address and port: write 0.0.0.0:5000 (every IPv4 interface), \
             [::]:5000 (IPv6), 127.0.0.1:5000 or localhost:5000 (this machine only), or \
             :5000 or 5000 (every IPv4 interface); the port is 0 to 65535, 0 picks a free one",
            crate::logging::quoted(text)
        )
    })
}

fn target_connections(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_TARGET_CONNECTIONS).contains(&n) => Ok(n),
        _ => Err(format!(
            "must be a whole number from 1 to {MAX_TARGET_CONNECTIONS}"
        )),
    }
}

/// `--max-request-bytes`: a data volume from 1 MiB (LibreSpeed's smallest download, one
/// `ckSize` chunk) to 100 GB.
fn request_bytes(text: &str) -> Result<u64, String> {
    let volume: DataVolume = text
        .parse()
        .map_err(|err: crate::units::DataVolumeParseError| err.to_string())?;
    let bytes = volume.bytes();
    if !(1_048_576.0..=1e11).contains(&bytes) {
        return Err("must be from 1MiB (one LibreSpeed chunk) to 100GB".into());
    }
    Ok(bytes as u64)
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The redb database file holding the samples (created if missing)
    #[arg(
        long,
        env = "INTERNET_MONITOR_DB",
        value_name = "PATH",
        default_value = "internet-monitor.redb",
        value_parser = DbPath
    )]
    pub db: PathBuf,
}

#[derive(Debug, Args)]
pub struct SpeedtestArgs {
    /// Which engine measures: `ookla` runs the Ookla Speedtest CLI (--speedtest-bin), `http`
    /// this program's own HTTP engine (--http-server), `auto` the CLI when --speedtest-bin is an
    /// executable and the HTTP engine otherwise
    #[arg(long, env = "INTERNET_MONITOR_ENGINE", value_enum, default_value_t = EngineChoice::Auto)]
    pub engine: EngineChoice,

    /// The HTTP engine's server: a base URL the API paths are joined to, such as Cloudflare's,
    /// a LibreSpeed server, or `internet-monitor target` on another machine (http://HOST:PORT)
    #[arg(
        long,
        env = "INTERNET_MONITOR_HTTP_SERVER",
        value_name = "URL",
        default_value = speedtest::http::DEFAULT_SERVER,
        value_parser = http_server
    )]
    pub http_server: String,

    /// The HTTP engine's API: `cloudflare` (/__down, /__up) or `librespeed` (garbage, empty,
    /// getIP, with or without .php); detected from the server's answers when not given
    #[arg(
        long,
        env = "INTERNET_MONITOR_HTTP_PROTOCOL",
        value_enum,
        value_name = "PROTOCOL"
    )]
    pub http_protocol: Option<HttpProtocol>,

    /// Parallel TCP connections the HTTP engine uses per direction (1 to 64)
    #[arg(long, env = "INTERNET_MONITOR_HTTP_STREAMS", value_name = "N", default_value_t = 4, value_parser = http_streams)]
    pub http_streams: u32,

    /// How long the HTTP engine transfers in each direction, the first fifth being ramp-up left
    /// out of the figure (1s to 5m); both directions must fit in --timeout with 20s to spare
    #[arg(long, env = "INTERNET_MONITOR_HTTP_DURATION", value_name = "DURATION", default_value = "10s", value_parser = http_duration)]
    pub http_duration: Duration,

    /// The Ookla Speedtest CLI executable (looked up on PATH unless it contains a slash)
    #[arg(
        long,
        env = "INTERNET_MONITOR_SPEEDTEST_BIN",
        value_name = "PATH",
        default_value = "speedtest"
    )]
    pub speedtest_bin: PathBuf,

    /// Kill the test (and everything it started) after this long, e.g. 90s or 2m (at most 1h)
    #[arg(long, env = "INTERNET_MONITOR_TIMEOUT", value_name = "DURATION", default_value = "2m", value_parser = timeout)]
    pub timeout: Duration,

    /// Test against this Ookla server id instead of the one the CLI picks
    #[arg(long, env = "INTERNET_MONITOR_SERVER_ID", value_name = "N", value_parser = server_id)]
    pub server_id: Option<u64>,

    /// One more argument for the CLI, after ours (repeat for several), e.g.
    /// --speedtest-arg=--interface=eth1. In the environment, several are
    /// INTERNET_MONITOR_SPEEDTEST_ARG_1, _2, … (from 1, in that order, after
    /// INTERNET_MONITOR_SPEEDTEST_ARG): no separator, so an argument may hold any character.
    /// Given on the command line, they replace the environment's
    #[arg(
        long = "speedtest-arg",
        env = "INTERNET_MONITOR_SPEEDTEST_ARG",
        value_name = "ARG",
        allow_hyphen_values = true
    )]
    pub speedtest_args: Vec<OsString>,

    /// Keep the client's internal and external IP and MAC address in each sample (off: privacy)
    #[arg(long, env = "INTERNET_MONITOR_STORE_IP", value_parser = BoolishValueParser::new())]
    pub store_ip: bool,

    /// A result faster than this is a measurement error, stored as failure "implausible"
    /// (b is bits, B bytes, then /s or ps; Ki, Mi, Gi binary: 100Gbit/s, 12.5GB/s, 10GiB/s)
    #[arg(
        long,
        env = "INTERNET_MONITOR_MAX_BANDWIDTH",
        value_name = "RATE",
        default_value = "100Gbit/s"
    )]
    pub max_bandwidth: Bandwidth,
}

impl SpeedtestArgs {
    /// The engine `--engine` picks and why, in words for the start-up log; an error names the
    /// flags that contradict each other.
    pub fn engine_config(&self) -> Result<(EngineConfig, String), String> {
        if self.engine != EngineChoice::Ookla {
            let needed = self.http_duration * 2 + HTTP_SET_UP_ALLOWANCE;
            if needed > self.timeout {
                let message = format!(
                    "--http-duration {} needs --timeout {} or more (both directions and {} to connect and probe latency), not {}",
                    humantime::format_duration(self.http_duration),
                    humantime::format_duration(needed),
                    humantime::format_duration(HTTP_SET_UP_ALLOWANCE),
                    humantime::format_duration(self.timeout),
                );
                if self.engine == EngineChoice::Http {
                    return Err(message);
                }
                if speedtest::resolve_executable(&self.speedtest_bin).is_none() {
                    return Err(message);
                }
            }
        }
        Ok(speedtest::choose(
            self.engine,
            &self.speedtest_bin,
            || self.ookla_config(),
            || self.http_config(),
        ))
    }

    /// A warning when `engine` is the HTTP engine and flags only the Ookla CLI reads were
    /// given: they are ignored, which a pinned `--server-id` must not be silently.
    pub fn ignored_by(&self, engine: &EngineConfig) -> Option<&'static str> {
        let ookla_only = self.server_id.is_some() || !self.speedtest_args.is_empty();
        (ookla_only && matches!(engine, EngineConfig::Http(_))).then_some(
            "--server-id and --speedtest-arg are the Ookla CLI's: the HTTP engine ignores them",
        )
    }

    /// The HTTP engine's configuration from these flags.
    pub fn http_config(&self) -> HttpConfig {
        HttpConfig {
            server: self.http_server.clone(),
            protocol: self.http_protocol,
            streams: self.http_streams,
            duration: self.http_duration,
            timeout: self.timeout,
            store_ip: self.store_ip,
            max_bytes_per_second: self.max_bandwidth.bytes_per_second(),
        }
    }

    /// The Ookla engine's configuration from these flags.
    pub fn ookla_config(&self) -> OoklaConfig {
        OoklaConfig {
            binary: self.speedtest_bin.clone(),
            timeout: self.timeout,
            server_id: self.server_id,
            extra_args: self.speedtest_args.clone(),
            parse: ParseOptions {
                store_ip: self.store_ip,
                max_bytes_per_second: self.max_bandwidth.bytes_per_second(),
            },
            output_limit: OUTPUT_LIMIT,
        }
    }
}

#[derive(Debug, Args)]
pub struct RunOnceArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub speedtest: SpeedtestArgs,

    /// How to print the result: json (one JSON object, for scripts) or text (Mbit/s, ms, the
    /// server, and why a test failed, for a person)
    #[arg(long, env = "INTERNET_MONITOR_RUN_ONCE_FORMAT", value_enum, default_value_t = RunOnceFormat::Json)]
    pub format: RunOnceFormat,
}

/// `run-once --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RunOnceFormat {
    Json,
    Text,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub speedtest: SpeedtestArgs,

    /// Address and port for HTTP: 0.0.0.0:5000, [::]:5000, localhost:5000 (127.0.0.1), or
    /// :5000 and 5000 (every IPv4 interface); port 0 picks a free one (the log says which)
    #[arg(
        long,
        env = "INTERNET_MONITOR_LISTEN",
        value_name = "ADDR",
        default_value = "0.0.0.0:5000",
        value_parser = listen_address
    )]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub web: WebArgs,

    /// Time between scheduled tests, counted from start-up on a fixed grid, e.g. 30m or 1h
    /// (at most 365d)
    #[arg(long, env = "INTERNET_MONITOR_INTERVAL", value_name = "DURATION", default_value = "30m", value_parser = interval)]
    pub interval: Duration,

    /// Start each test at a random offset up to this much after its slot, so that many
    /// monitors do not all test at the same moment (at most 365d)
    #[arg(long, env = "INTERNET_MONITOR_SPLAY", value_name = "DURATION", default_value = "0s", value_parser = schedule_offset)]
    pub splay: Duration,

    /// Wait this long after start-up before the first test (at most 365d)
    #[arg(long, env = "INTERNET_MONITOR_START_DELAY", value_name = "DURATION", default_value = "0s", value_parser = schedule_offset)]
    pub start_delay: Duration,

    /// Delete samples older than this, e.g. 400d (at most 36500d; default: keep every sample).
    /// Never deletes while the clock looks wrong, nor the newest sample
    #[arg(long, env = "INTERNET_MONITOR_RETENTION", value_name = "DURATION", value_parser = retention)]
    pub retention: Option<Duration>,

    /// Allow a --retention below 1d: without it a short one is refused as a likely typo
    /// (3m is 3 minutes, and would delete nearly every sample at start-up)
    #[arg(long, env = "INTERNET_MONITOR_ALLOW_SHORT_RETENTION", value_parser = BoolishValueParser::new())]
    pub allow_short_retention: bool,

    /// Log lines as human-readable text or as JSON objects
    #[arg(long, env = "INTERNET_MONITOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log a line per HTTP request: client address, method, path and query, status, bytes
    /// sent, duration in ms and the basic-auth user (never credentials; off by default)
    #[arg(long, env = "INTERNET_MONITOR_LOG_REQUESTS", value_parser = BoolishValueParser::new())]
    pub log_requests: bool,

    #[command(flatten)]
    pub plan: PlanArgs,

    /// Retest once when a success is below this share of the plan, e.g. 0.5 (off by default)
    #[arg(long, env = "INTERNET_MONITOR_RETEST_BELOW", value_name = "RATIO", value_parser = ratio)]
    pub retest_below: Option<f64>,

    /// How long after a run below --retest-below its retest starts (at most 1d); it must be
    /// shorter than --interval less --splay, or the next scheduled test would come first
    #[arg(long, env = "INTERNET_MONITOR_RETEST_AFTER", value_name = "DURATION", default_value = "5m", value_parser = retest_after)]
    pub retest_after: Duration,

    /// Let clients start a test with POST /api/v1/run (off: a public exporter must not let
    /// strangers burn a data cap)
    #[arg(long, env = "INTERNET_MONITOR_ENABLE_RUN_ENDPOINT", value_parser = BoolishValueParser::new())]
    pub enable_run_endpoint: bool,

    /// A host name browsers reach this service by, e.g. monitor.lan (repeat, or separate with
    /// commas). A page may read the history or start a test only through an IP address,
    /// localhost, this machine's host name or one of these: the defence against DNS rebinding
    #[arg(
        long = "allowed-host",
        env = "INTERNET_MONITOR_ALLOWED_HOST",
        value_name = "NAME",
        value_delimiter = ',',
        value_parser = host_name
    )]
    pub allowed_hosts: Vec<String>,

    /// Skip each scheduled test that would cross this much data in a calendar month (UTC),
    /// e.g. 200GB or 500GiB, in bytes (B: 200Gb, bits, is refused): once the month's tests
    /// moved it, or when the last test's volume would take the month past it (off by default)
    #[arg(long, env = "INTERNET_MONITOR_DATA_BUDGET", value_name = "VOLUME")]
    pub data_budget: Option<DataVolume>,

    /// Least time between two tests started with POST /api/v1/run (at most 30d)
    #[arg(long, env = "INTERNET_MONITOR_MIN_MANUAL_GAP", value_name = "DURATION", default_value = "5m", value_parser = min_manual_gap)]
    pub min_manual_gap: Duration,

    #[command(flatten)]
    pub timezone: TimezoneArgs,

    /// Run a measurement campaign of this rule set besides the regular schedule: de-bnetza or
    /// at-rtr (its days counted in --timezone); stops when complete; indicative only, the legal
    /// procedure requires the regulator's own tool
    #[arg(long, env = "INTERNET_MONITOR_CAMPAIGN", value_name = "NAME", value_parser = campaign_rules)]
    pub campaign: Option<crate::rules::RuleSet>,

    /// Start a new --campaign even though the newest one of that rule set is complete (an
    /// unfinished one is resumed either way). No environment twin on purpose: a lasting
    /// setting would start another campaign at each restart after one completes
    #[arg(long, requires = "campaign")]
    pub campaign_restart: bool,

    /// Time between connectivity probe rounds to the gateway and the public targets, e.g.
    /// 10s (at least 1s, at most 1h); 0s turns the connectivity monitor off
    #[arg(long, env = "INTERNET_MONITOR_PROBE_INTERVAL", value_name = "DURATION", default_value = "10s", value_parser = probe_interval)]
    pub probe_interval: Duration,

    /// A public address to probe: an IP address, with a port for TCP probes (default 443),
    /// e.g. 9.9.9.9:53 or [2606:4700:4700::1111]:443; names are not resolved (repeat, or
    /// separate with commas; at most 16; default 1.1.1.1, 8.8.8.8, 9.9.9.9)
    #[arg(
        long = "probe-target",
        env = "INTERNET_MONITOR_PROBE_TARGET",
        value_name = "ADDRESS[:PORT]",
        value_delimiter = ','
    )]
    pub probe_targets: Vec<crate::probe::monitor::PublicTarget>,

    /// The gateway probed to tell the ISP's faults from the home network's: auto (the
    /// default route's, looked up every 10 s), an IP address, or none (then every outage
    /// counts as local)
    #[arg(long, env = "INTERNET_MONITOR_PROBE_GATEWAY", value_name = "auto|ADDRESS|none", default_value = "auto", value_parser = probe_gateway)]
    pub probe_gateway: crate::probe::monitor::GatewayChoice,

    #[command(flatten)]
    pub remote_write: RemoteWriteArgs,
}

/// `serve --remote-write.*`: pushing every stored sample to a Prometheus-compatible receiver.
#[derive(Debug, Args)]
#[command(next_help_heading = "Remote write")]
pub struct RemoteWriteArgs {
    /// Push every stored run's series, with the run's own time, to this remote_write URL
    /// (http:// or https://), e.g. https://prometheus.example/api/v1/write; runs wait in the
    /// store until the receiver acknowledges them
    #[arg(
        id = "remote-write.url",
        long = "remote-write.url",
        env = "INTERNET_MONITOR_REMOTE_WRITE_URL",
        value_name = "URL"
    )]
    pub url: Option<String>,

    /// A label on every pushed series, e.g. site=berlin (repeatable); job=internet-monitor is
    /// added unless given. Never put the public IP address here
    #[arg(id = "remote-write.label", long = "remote-write.label", value_name = "NAME=VALUE", value_parser = remote_write_label)]
    pub labels: Vec<(String, String)>,

    /// User name for HTTP basic authentication (with --remote-write.basic-auth-password-file)
    #[arg(
        id = "remote-write.basic-auth-username",
        long = "remote-write.basic-auth-username",
        env = "INTERNET_MONITOR_REMOTE_WRITE_BASIC_AUTH_USERNAME",
        value_name = "USER"
    )]
    pub basic_auth_username: Option<String>,

    /// File holding the basic-auth password, read again for each push
    #[arg(
        id = "remote-write.basic-auth-password-file",
        long = "remote-write.basic-auth-password-file",
        env = "INTERNET_MONITOR_REMOTE_WRITE_BASIC_AUTH_PASSWORD_FILE",
        value_name = "FILE"
    )]
    pub basic_auth_password_file: Option<PathBuf>,

    /// File holding a bearer token (Authorization: Bearer), read again for each push
    #[arg(
        id = "remote-write.bearer-token-file",
        long = "remote-write.bearer-token-file",
        env = "INTERNET_MONITOR_REMOTE_WRITE_BEARER_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub bearer_token_file: Option<PathBuf>,

    /// PEM file of CA certificates trusted for https:// besides the built-in (webpki) roots
    #[arg(
        id = "remote-write.tls-ca-file",
        long = "remote-write.tls-ca-file",
        env = "INTERNET_MONITOR_REMOTE_WRITE_TLS_CA_FILE",
        value_name = "FILE"
    )]
    pub tls_ca_file: Option<PathBuf>,

    /// PEM client certificate for mutual TLS (with --remote-write.tls-key-file)
    #[arg(
        id = "remote-write.tls-cert-file",
        long = "remote-write.tls-cert-file",
        env = "INTERNET_MONITOR_REMOTE_WRITE_TLS_CERT_FILE",
        value_name = "FILE"
    )]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key of --remote-write.tls-cert-file
    #[arg(
        id = "remote-write.tls-key-file",
        long = "remote-write.tls-key-file",
        env = "INTERNET_MONITOR_REMOTE_WRITE_TLS_KEY_FILE",
        value_name = "FILE"
    )]
    pub tls_key_file: Option<PathBuf>,

    /// The longest one push may take, connecting and the answer included, e.g. 30s (at most 1h)
    #[arg(id = "remote-write.timeout", long = "remote-write.timeout", env = "INTERNET_MONITOR_REMOTE_WRITE_TIMEOUT", value_name = "DURATION", default_value = "30s", value_parser = timeout)]
    pub timeout: Duration,
}

impl RemoteWriteArgs {
    /// The checked settings; `None` without `--remote-write.url`.
    pub fn config(&self) -> Result<Option<crate::push::config::RemoteWriteConfig>, String> {
        crate::push::config::Flags {
            url: self.url.clone(),
            labels: self.labels.clone(),
            basic_auth_username: self.basic_auth_username.clone(),
            basic_auth_password_file: self.basic_auth_password_file.clone(),
            bearer_token_file: self.bearer_token_file.clone(),
            tls_ca_file: self.tls_ca_file.clone(),
            tls_cert_file: self.tls_cert_file.clone(),
            tls_key_file: self.tls_key_file.clone(),
            timeout: self.timeout,
        }
        .check()
    }
}

/// `--remote-write.label NAME=VALUE`: as the series take it ([`crate::push::series::parse_label`]).
fn remote_write_label(text: &str) -> Result<(String, String), String> {
    crate::push::series::parse_label(text).map_err(|err| err.to_string())
}

/// Who may reach `serve`'s HTTP server, and how: TLS, basic auth and extra headers.
#[derive(Debug, Args)]
pub struct WebArgs {
    /// A web configuration file in the Prometheus exporter-toolkit's format (YAML):
    /// tls_server_config (serve HTTPS), basic_auth_users (user: bcrypt hash; every endpoint then
    /// needs them) and http_server_config.headers (added to every answer). Re-read for each new
    /// connection and request, so certificates and users change without a restart; a file that breaks
    /// later keeps the last good one. Default: plain HTTP, no authentication
    #[arg(
        long = "web.config.file",
        env = "INTERNET_MONITOR_WEB_CONFIG_FILE",
        value_name = "PATH"
    )]
    pub config_file: Option<PathBuf>,

    /// Answer /healthz without credentials even when basic_auth_users are set, for container
    /// and load-balancer health checks that cannot send them (it tells whether the store is
    /// usable and how many samples it holds, nothing else)
    #[arg(
        long = "web.healthz-unauthenticated",
        env = "INTERNET_MONITOR_WEB_HEALTHZ_UNAUTHENTICATED",
        value_parser = BoolishValueParser::new()
    )]
    pub healthz_unauthenticated: bool,
}

/// The most `--probe-target`s: each is a label value on several series and a probe per round.
pub const MAX_PROBE_TARGETS: usize = 16;
/// The longest `--probe-interval`.
pub const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// The shortest `--interval` against the public default HTTP server the README's
/// "Politeness" asks for.
pub const POLITE_PUBLIC_INTERVAL: Duration = Duration::from_secs(30 * 60);

impl ServeArgs {
    /// A warning when a run that lasts as long as `--timeout` allows could end so late that
    /// its retest comes after the next scheduled test (which then takes the retest's place):
    /// `--retest-after` plus `--timeout` plus `--splay` reaches `--interval`. `None` when
    /// retests are off or a run of any length leaves room for its retest.
    pub fn slow_retest_warning(&self) -> Option<String> {
        self.retest_below?;
        let timeout = self.speedtest.timeout;
        let reach = self
            .retest_after
            .saturating_add(timeout)
            .saturating_add(self.splay);
        (reach >= self.interval).then(|| {
            format!(
                "--retest-after {} plus --timeout {} (plus --splay {}) reaches --interval {}: a \
                 test that runs long may end so late that the next scheduled test comes before \
                 its retest, which is then not run; give a shorter --retest-after or --timeout, \
                 or a longer --interval",
                humantime::format_duration(self.retest_after),
                humantime::format_duration(timeout),
                humantime::format_duration(self.splay),
                humantime::format_duration(self.interval),
            )
        })
    }

    /// Warnings for an `--interval` that works but is not what the user wants: shorter than a
    /// test with `engine` can take (its slots are skipped while a test runs), or shorter than
    /// [`POLITE_PUBLIC_INTERVAL`] against the public default server of the HTTP engine, which
    /// rate-limits. Each names the flags and the fix.
    pub fn interval_warnings(&self, engine: &EngineConfig) -> Vec<String> {
        let interval = humantime::format_duration(self.interval);
        let mut warnings = Vec::new();
        let (longest, why) = match engine {
            EngineConfig::Http(config) => (
                config.duration * 2 + HTTP_SET_UP_ALLOWANCE,
                format!(
                    "--http-duration {} each way and {} to connect",
                    humantime::format_duration(config.duration),
                    humantime::format_duration(HTTP_SET_UP_ALLOWANCE)
                ),
            ),
            EngineConfig::Ookla(_) => (
                self.speedtest.timeout,
                format!(
                    "--timeout {}",
                    humantime::format_duration(self.speedtest.timeout)
                ),
            ),
        };
        if self.interval < longest {
            warnings.push(format!(
                "--interval {interval} is shorter than a test can take ({}: {why}): a slot \
                 whose test is still running is skipped; give an --interval of {} or more",
                humantime::format_duration(longest),
                humantime::format_duration(longest)
            ));
        }
        if let EngineConfig::Http(config) = engine
            && is_public_default(&config.server)
            && self.interval < POLITE_PUBLIC_INTERVAL
        {
            warnings.push(format!(
                "--interval {interval} against the public server {}: it is rate-limited and \
                 shared, so keep --interval at {} or more (README, Politeness), or measure \
                 against your own server (internet-monitor target, --http-server)",
                config.server,
                humantime::format_duration(POLITE_PUBLIC_INTERVAL)
            ));
        }
        warnings
    }

    /// The settings that contradict each other, refused at start-up before anything is
    /// opened: a plan above `--max-bandwidth` (every run meeting it would be stored as
    /// implausible), a `--retest-after` not shorter than `--interval`, or than `--interval`
    /// less `--splay` (the next slot would always, or often, take the retest's place), and a `--retention` below a day without
    /// `--allow-short-retention`. The message names the flags.
    pub fn check(&self) -> Result<(), String> {
        let max = self.speedtest.max_bandwidth;
        for (flag, plan) in [
            ("--plan-download", self.plan.plan_download),
            ("--plan-upload", self.plan.plan_upload),
        ] {
            if let Some(plan) = plan
                && plan.bytes_per_second() > max.bytes_per_second()
            {
                return Err(format!(
                    "{flag} {plan} is above --max-bandwidth {max}: every run reaching the plan \
                     would be stored as implausible; raise --max-bandwidth or correct {flag} \
                     (bits are b, bytes B: 500Mbit/s = 62.5MB/s)"
                ));
            }
        }
        if let Some(threshold) = self.plan.plan_threshold
            && self.plan.plan_download.is_none()
            && self.plan.plan_upload.is_none()
        {
            return Err(format!(
                "--plan-threshold {threshold} is stored only with --plan-download or \
                 --plan-upload, and neither is given: add the advertised speed it goes with, or \
                 change the stored plan's threshold with plan set --threshold (and leave \
                 --plan-threshold out)"
            ));
        }
        if !self.splay.is_zero() && self.splay >= self.interval {
            return Err(format!(
                "--splay {} is not shorter than --interval {}: a test's random offset could \
                 take it past the next slot's test; give a --splay shorter than --interval (a \
                 few minutes is usual), or a longer --interval",
                humantime::format_duration(self.splay),
                humantime::format_duration(self.interval),
            ));
        }
        // The next slot's test comes as early as the interval less the splay after this slot's.
        if self.retest_below.is_some()
            && !self.splay.is_zero()
            && self.retest_after < self.interval
            && self.retest_after.saturating_add(self.splay) >= self.interval
        {
            return Err(format!(
                "--retest-after {} plus --splay {} is not shorter than --interval {}: a test \
                 started late in its splay would often see the next scheduled test come first, \
                 and its retest not run; give a shorter --retest-after or --splay, or a longer \
                 --interval",
                humantime::format_duration(self.retest_after),
                humantime::format_duration(self.splay),
                humantime::format_duration(self.interval),
            ));
        }
        if self.retest_below.is_some() && self.retest_after >= self.interval {
            return Err(format!(
                "--retest-after {} is not shorter than --interval {}: the next scheduled test \
                 would always come first and no retest would run; give a shorter --retest-after \
                 or a longer --interval",
                humantime::format_duration(self.retest_after),
                humantime::format_duration(self.interval),
            ));
        }
        if let Some(retention) = self.retention
            && retention < DAY
            && !self.allow_short_retention
        {
            return Err(format!(
                "--retention {} is shorter than a day and would delete nearly every sample; \
                 if it is a typo, note that m is minutes (3m is 3 minutes; for 3 months write \
                 90d); to keep samples this briefly, add --allow-short-retention",
                humantime::format_duration(retention)
            ));
        }
        Ok(())
    }

    /// The connectivity monitor's settings; `None` with `--probe-interval 0s`.
    pub fn probes(&self) -> Result<Option<crate::probe::monitor::ProbeConfig>, String> {
        use crate::probe::monitor::{DEFAULT_PUBLIC_TARGETS, DEFAULT_TCP_PORT, PublicTarget};
        if self.probe_interval.is_zero() {
            return Ok(None);
        }
        if self.probe_targets.len() > MAX_PROBE_TARGETS {
            return Err(format!(
                "--probe-target: {} targets given, at most {MAX_PROBE_TARGETS} are allowed",
                self.probe_targets.len()
            ));
        }
        let public = if self.probe_targets.is_empty() {
            DEFAULT_PUBLIC_TARGETS
                .iter()
                .map(|&address| PublicTarget {
                    address,
                    port: DEFAULT_TCP_PORT,
                })
                .collect()
        } else {
            self.probe_targets.clone()
        };
        // One address is one target (its minute rows, outages and series are keyed by the
        // address): a second port for it would be dropped unseen, so say so instead.
        let mut seen = std::collections::HashMap::new();
        for target in &public {
            if let Some(first) = seen.insert(target.address, target.port) {
                return Err(format!(
                    "--probe-target: {} is given twice (ports {first} and {}); each address is \
                     one target, probed once per round: give it once, with the port TCP probes \
                     should use",
                    target.address, target.port
                ));
            }
        }
        if let crate::probe::monitor::GatewayChoice::Fixed(gateway) = self.probe_gateway
            && seen.contains_key(&gateway)
        {
            return Err(format!(
                "--probe-gateway {gateway} is also a --probe-target: the gateway tells the home \
                 network's faults from the ISP's, so it cannot be a public target too (every \
                 outage would read as local); give the router's address to --probe-gateway and \
                 addresses beyond it to --probe-target"
            ));
        }
        Ok(Some(crate::probe::monitor::ProbeConfig {
            interval: self.probe_interval,
            public,
            gateway: self.probe_gateway,
        }))
    }
}

/// The zone calendar days and local hours are counted in.
#[derive(Debug, Args)]
pub struct TimezoneArgs {
    /// The IANA time zone whose calendar days and hours rule sets, campaigns and peak windows
    /// count in, e.g. Europe/Berlin (default: the system's, else UTC)
    #[arg(long, env = "INTERNET_MONITOR_TIMEZONE", value_name = "ZONE", value_parser = zone)]
    pub timezone: Option<Zone>,
}

impl TimezoneArgs {
    /// The zone given, else the system's.
    pub fn zone(&self) -> Zone {
        self.timezone.clone().unwrap_or_else(Zone::system)
    }

    /// [`TimezoneArgs::zone`], with a warning when no `--timezone` was given and the system's
    /// zone could not be used, so UTC is ([`Zone::system_checked`]): for the log or stderr.
    pub fn zone_or_warning(&self) -> (Zone, Option<String>) {
        match &self.timezone {
            Some(zone) => (zone.clone(), None),
            None => match Zone::system_checked() {
                Ok(zone) => (zone, None),
                Err(why) => (
                    Zone::utc(),
                    Some(format!(
                        "{why}: calendar days and hours count in UTC; --timezone ZONE names the zone"
                    )),
                ),
            },
        }
    }
}

/// The contract the line is judged against.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Contracted download speed, e.g. 500Mbit/s, 500mbps, 1Gb/s or 62.5MB/s: b is bits, B
    /// bytes, then /s or ps; Ki, Mi, Gi binary (10MiB/s); 500M or 500Mb alone is refused; at
    /// most --max-bandwidth
    #[arg(long, env = "INTERNET_MONITOR_PLAN_DOWNLOAD", value_name = "RATE")]
    pub plan_download: Option<Bandwidth>,

    /// Contracted upload speed, in the same units
    #[arg(long, env = "INTERNET_MONITOR_PLAN_UPLOAD", value_name = "RATE")]
    pub plan_upload: Option<Bandwidth>,

    /// A run meets the plan when every contracted direction reaches this share of it; with
    /// --plan-download/--plan-upload only (default: the stored plan's, else 0.8)
    #[arg(long, env = "INTERNET_MONITOR_PLAN_THRESHOLD", value_name = "RATIO", value_parser = ratio)]
    pub plan_threshold: Option<f64>,
}

impl PlanArgs {
    /// The plan the flags state alone (the threshold 0.8 when not given); serve stores them
    /// over the version in force, keeping its other terms.
    pub fn plan(&self) -> Plan {
        Plan {
            download: self.plan_download,
            upload: self.plan_upload,
            threshold: self
                .plan_threshold
                .unwrap_or(crate::plan::DEFAULT_THRESHOLD),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line, the form `import` reads
    Jsonl,
    /// A header row, then one row per sample
    Csv,
    /// OpenMetrics text with each sample's own timestamp, for `promtool tsdb
    /// create-blocks-from openmetrics` (bring the stored history into Prometheus)
    Openmetrics,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub store: ExistingDbArgs,

    /// What to print: jsonl (what import reads), csv or openmetrics
    #[arg(long, env = "INTERNET_MONITOR_EXPORT_FORMAT", value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,

    /// Only samples at or after this time: RFC 3339 (2026-11-01T00:00:00Z), a date
    /// (2026-11-01, its midnight UTC) or an age (7d, at most 36500d)
    #[arg(long, env = "INTERNET_MONITOR_FROM", value_name = "TIME")]
    pub from: Option<TimeArg>,

    /// Only samples before this time: RFC 3339, a date (midnight UTC) or an age (24h)
    #[arg(long, env = "INTERNET_MONITOR_TO", value_name = "TIME")]
    pub to: Option<TimeArg>,

    /// A label on every OpenMetrics point, e.g. --label instance=monitor:5000 --label
    /// job=internet-monitor, as Prometheus would have added when scraping (repeatable;
    /// --format openmetrics only)
    #[arg(long = "label", value_name = "NAME=VALUE", value_parser = label)]
    pub labels: Vec<(String, String)>,
}

/// `--label NAME=VALUE`: a Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`, not `__name__` or
/// another reserved `__` name) and any value up to 256 bytes.
fn label(text: &str) -> Result<(String, String), String> {
    let Some((name, value)) = text.split_once('=') else {
        return Err("must be NAME=VALUE, such as instance=monitor:5000".into());
    };
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid || name.starts_with("__") {
        return Err(format!(
            "the label name {} must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __",
            crate::logging::quoted(name)
        ));
    }
    if value.len() > crate::sample::MAX_NAME_BYTES {
        return Err(format!(
            "the label value must be at most {} bytes",
            crate::sample::MAX_NAME_BYTES
        ));
    }
    Ok((name.to_owned(), value.to_owned()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Lines for a person
    Text,
    /// The JSON of /api/v1/summary plus the evidence pack's content (plans, rules,
    /// peak_hours, runs, conditions, export)
    Json,
    /// The evidence pack: one self-contained, printable HTML file (no external resources)
    Html,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub store: ExistingDbArgs,

    /// The window summarised: this long before now, e.g. 7d, 30d or 365d (at most 36500d)
    #[arg(long, env = "INTERNET_MONITOR_WINDOW", value_name = "DURATION", default_value = "30d", value_parser = window)]
    pub window: Duration,

    /// Instead of --window: from this time (inclusive), RFC 3339 (2026-11-01T00:00:00Z), a
    /// date (2026-11-01, its midnight UTC) or an age (7d); default 30 days before --to
    #[arg(long, value_name = "TIME", conflicts_with = "window")]
    pub from: Option<TimeArg>,

    /// Instead of --window: to this time (exclusive), RFC 3339, a date (midnight UTC) or an
    /// age (5m); default now
    #[arg(long, value_name = "TIME", conflicts_with = "window")]
    pub to: Option<TimeArg>,

    /// What to print: text (for a person), json, or html (the evidence pack)
    #[arg(long, env = "INTERNET_MONITOR_REPORT_FORMAT", value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,

    /// Judge the window's runs by a regulator's rule set: de-bnetza, at-rtr, us-fcc or
    /// uk-ofcom (the window must be at most 366d)
    #[arg(long, value_name = "NAME", value_parser = rule_set)]
    pub rules: Option<crate::rules::RuleSet>,

    /// Write the report to this file instead of stdout
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Check an evidence pack (HTML or JSON) this program wrote: recompute the export of its
    /// window from the database and say whether its SHA-256 matches (exit 0) or not (exit 1);
    /// it reads only --db: the report's other flags are refused with it (their environment
    /// twins are not read)
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "from", "to", "window", "format", "rules", "output", "plan_download", "plan_upload",
        "plan_threshold",
    ])]
    pub verify: Option<PathBuf>,

    #[command(flatten)]
    pub plan: ReportPlanArgs,

    #[command(flatten)]
    pub timezone: TimezoneArgs,
}

/// `report`'s plan flags, which judge that report alone. They have no environment twins:
/// serve's `INTERNET_MONITOR_PLAN_*`, inherited by a `report` run beside it (`docker compose
/// exec`), would otherwise replace the stored history across a contract change.
#[derive(Debug, Args)]
pub struct ReportPlanArgs {
    /// Judge every run against this download speed instead of the stored plan history, e.g.
    /// 500Mbit/s, 500mbps or 62.5MB/s: b is bits, B bytes, then /s or ps; Ki, Mi, Gi binary
    /// (10MiB/s)
    #[arg(long, value_name = "RATE")]
    pub plan_download: Option<Bandwidth>,

    /// Judge every run against this upload speed instead of the stored plan history
    #[arg(long, value_name = "RATE")]
    pub plan_upload: Option<Bandwidth>,

    /// With --plan-download/--plan-upload: the share a run must reach (default 0.8); the
    /// stored versions keep their own threshold
    #[arg(long, value_name = "RATIO", value_parser = ratio)]
    pub plan_threshold: Option<f64>,
}

impl ReportPlanArgs {
    /// The plan the flags state; unset (no speed) when only the stored history judges.
    pub fn plan(&self) -> Plan {
        Plan {
            download: self.plan_download,
            upload: self.plan_upload,
            threshold: self
                .plan_threshold
                .unwrap_or(crate::plan::DEFAULT_THRESHOLD),
        }
    }
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// The JSON-lines file to read, or - for standard input
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// A sample faster than this is refused as implausible, as a test's result would be (b is
    /// bits, B bytes, then /s or ps; Ki, Mi, Gi binary: 100Gbit/s, 12.5GB/s, 10GiB/s)
    #[arg(
        long,
        env = "INTERNET_MONITOR_MAX_BANDWIDTH",
        value_name = "RATE",
        default_value = "100Gbit/s"
    )]
    pub max_bandwidth: Bandwidth,

    /// FILE is the SQLite database of the original Python/Flask internet-monitor (its results
    /// table), not JSON lines: each row is stored as a successful scheduled Ookla run; rows
    /// that cannot be read are skipped and named (no environment twin)
    #[cfg(feature = "original")]
    #[arg(long)]
    pub from_original: bool,

    /// With --from-original: the IANA time zone of the original's clock, in whose local time
    /// its rows are dated, e.g. Europe/Berlin (default: the system's, else UTC; no environment
    /// twin)
    #[cfg(feature = "original")]
    #[arg(long, value_name = "ZONE", value_parser = zone, requires = "from_original")]
    pub timezone: Option<Zone>,
}

#[derive(Debug, Args)]
pub struct DbArgs {
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Verify every sample (checksum and place in the file), every server and ISP entry, and
    /// redb's own pages; print each damaged sample by its time.
    ///
    /// Changes no sample. Exit status: 0 when nothing is damaged, 2 when something is,
    /// 1 when the file cannot be checked (missing, in use by another process, not a database).
    Check(ExistingDbArgs),
    /// Give back the space of deleted samples: the file never shrinks by itself, so after
    /// retention deleted most of it, this rewrites it to the size of what is left.
    ///
    /// Checks the file first and refuses a damaged one. Exit status: 0 when compacted, 1 when
    /// not (missing, in use by another process, damaged).
    Compact(ExistingDbArgs),
}

#[derive(Debug, Args)]
pub struct PlanCommandArgs {
    #[command(subcommand)]
    pub command: PlanCommand,
}

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Store a version of the contract, in force from --from (default now) until the next
    /// version. Per direction the four speeds of Regulation (EU) 2015/2120 Art. 4(1)(d), each
    /// optional; a run meets the plan when it reaches --threshold of the advertised speed (or of
    /// the maximum when no advertised speed is given) in every direction that states one.
    Set(PlanSetArgs),
    /// Print the version in force now (or at --at).
    Show(PlanShowArgs),
    /// Print every stored version, oldest first.
    History(PlanListArgs),
    /// Store the versions of a file written by `plan history --format json` (or the JSON of
    /// /api/v1/plan), e.g. from another monitor's database, in one transaction: all or none.
    ///
    /// A version already stored with the same terms is left as it is, so importing twice
    /// adds nothing; one that differs from the stored version at its time is an error unless
    /// --replace.
    Import(PlanImportArgs),
}

#[derive(Debug, Args)]
pub struct PlanImportArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The JSON file to read (at most 1 MiB), or - for standard input
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Replace a stored version whose time a version in the file has, when their terms differ
    #[arg(long)]
    pub replace: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// Lines for a person
    Text,
    /// The JSON of /api/v1/plan's versions
    Json,
}

#[derive(Debug, Args)]
pub struct PlanSetArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// Maximum download speed, e.g. 250Mbit/s, 250mbps or 31.25MB/s: b is bits, B bytes, then
    /// /s or ps; Ki, Mi, Gi binary (10MiB/s); at most 100Gbit/s
    #[arg(long, value_name = "RATE")]
    pub download_max: Option<Bandwidth>,
    /// Normally available download speed (between --download-min and --download-max)
    #[arg(long, value_name = "RATE")]
    pub download_normal: Option<Bandwidth>,
    /// Minimum download speed
    #[arg(long, value_name = "RATE")]
    pub download_min: Option<Bandwidth>,
    /// Advertised download speed, what "met the plan" compares with (serve's --plan-download)
    #[arg(long, value_name = "RATE")]
    pub download_advertised: Option<Bandwidth>,
    /// Maximum upload speed
    #[arg(long, value_name = "RATE")]
    pub upload_max: Option<Bandwidth>,
    /// Normally available upload speed
    #[arg(long, value_name = "RATE")]
    pub upload_normal: Option<Bandwidth>,
    /// Minimum upload speed
    #[arg(long, value_name = "RATE")]
    pub upload_min: Option<Bandwidth>,
    /// Advertised upload speed (serve's --plan-upload)
    #[arg(long, value_name = "RATE")]
    pub upload_advertised: Option<Bandwidth>,
    /// The highest idle latency (ping) the contract allows, e.g. 30ms (at most 60s)
    #[arg(long, value_name = "DURATION", value_parser = latency_max)]
    pub latency_max: Option<Duration>,
    /// A run meets the plan when every stated direction reaches this share of its advertised
    /// (else maximum) speed
    #[arg(long, value_name = "RATIO", default_value = "0.8", value_parser = ratio)]
    pub threshold: f64,
    /// When this version takes effect: RFC 3339 (2026-11-01T00:00:00Z), a date (its midnight
    /// UTC) or an age (7d); now when not given
    #[arg(long, value_name = "TIME")]
    pub from: Option<TimeArg>,
    /// Replace the version already stored at exactly --from (else that is an error)
    #[arg(long)]
    pub replace: bool,
}

#[derive(Debug, Args)]
pub struct PlanShowArgs {
    #[command(flatten)]
    pub store: ExistingDbArgs,
    /// Show the version in force at this time: RFC 3339, a date (midnight UTC) or an age
    /// (30d); now when not given
    #[arg(long, value_name = "TIME")]
    pub at: Option<TimeArg>,
    /// What to print: text (for a person) or json
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

#[derive(Debug, Args)]
pub struct PlanListArgs {
    #[command(flatten)]
    pub store: ExistingDbArgs,
    /// What to print: text (for a person) or json (what plan import reads)
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

fn latency_max(text: &str) -> Result<Duration, String> {
    duration(text, false, crate::plan::MAX_PLAN_LATENCY)
}

#[derive(Debug, Args)]
pub struct ExistingDbArgs {
    /// The redb database file holding the samples (must exist: a missing one is an error and
    /// is not created)
    #[arg(
        long,
        env = "INTERNET_MONITOR_DB",
        value_name = "PATH",
        default_value = "internet-monitor.redb",
        value_parser = DbPath
    )]
    pub db: PathBuf,
}

/// `--campaign`: a rule set whose measurement protocol `serve` can schedule.
fn campaign_rules(text: &str) -> Result<crate::rules::RuleSet, String> {
    let allowed = || {
        crate::rules::RuleSet::ALL
            .into_iter()
            .filter(|rules| rules.has_campaign())
            .map(|rules| rules.name())
            .collect::<Vec<_>>()
            .join(" or ")
    };
    match crate::rules::RuleSet::parse(text) {
        Ok(rules) if rules.has_campaign() => Ok(rules),
        Ok(rules) => Err(format!(
            "{rules} has no measurement campaign: use {}",
            allowed()
        )),
        Err(_) => Err(format!(
            "{} is not a rule set with a campaign: use {}",
            crate::logging::quoted(text),
            allowed()
        )),
    }
}

fn zone(text: &str) -> Result<Zone, String> {
    Zone::parse(text).map_err(|err| err.to_string())
}

fn rule_set(text: &str) -> Result<crate::rules::RuleSet, String> {
    crate::rules::RuleSet::parse(text).map_err(|err| err.to_string())
}

fn ratio(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(ratio) if ratio > 0.0 && ratio <= 1.0 => Ok(ratio),
        _ => Err("must be a ratio above 0 and at most 1, such as 0.8".into()),
    }
}

/// A duration flag's value: clap puts the flag's name before the reason.
fn duration(text: &str, zero_allowed: bool, max: Duration) -> Result<Duration, String> {
    time::parse_duration(text, zero_allowed, max).map_err(|err| err.to_string())
}

/// An `--allowed-host` value: a DNS name as `Host` carries it, without scheme, port or
/// wildcard, which would never match and so silently allow nothing.
fn host_name(text: &str) -> Result<String, String> {
    let name = text.trim().trim_end_matches('.');
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok) {
        Ok(name.to_ascii_lowercase())
    } else {
        Err("must be a host name such as monitor.lan: no scheme, port, path or wildcard".into())
    }
}

/// `--http-server`: an absolute `http://` or `https://` URL with a host and no query, fragment
/// or credentials; kept without its trailing slashes.
fn http_server(text: &str) -> Result<String, String> {
    let text = text.trim();
    let uri: hyper::Uri = text.parse().map_err(|err| {
        format!("{err}: must be a base URL such as https://speed.cloudflare.com or http://192.0.2.7:8080")
    })?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => {
            return Err(
                "must start with http:// or https://, such as https://speed.cloudflare.com".into(),
            );
        }
    }
    let Some(authority) = uri.authority() else {
        return Err("must name a host, such as https://speed.cloudflare.com".into());
    };
    if authority.host().is_empty() {
        return Err("must name a host, such as https://speed.cloudflare.com".into());
    }
    if authority.as_str().contains('@') {
        return Err("must not carry a user name or password".into());
    }
    // hyper reads a port it cannot parse as none, and the engine would then connect to the
    // scheme's default port while every sample records this URL.
    crate::speedtest::http::client::explicit_port(authority)?;
    if text.len() > crate::sample::MAX_URL_BYTES {
        return Err(format!(
            "must be at most {} bytes long: every sample records it",
            crate::sample::MAX_URL_BYTES
        ));
    }
    if uri.query().is_some() || text.contains('#') {
        return Err("must be a base URL without ?query or #fragment: the engine adds the API's paths and queries".into());
    }
    Ok(text.trim_end_matches('/').to_owned())
}

fn http_streams(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_HTTP_STREAMS).contains(&n) => Ok(n),
        _ => Err(format!(
            "must be a whole number from 1 to {MAX_HTTP_STREAMS}"
        )),
    }
}

fn http_duration(text: &str) -> Result<Duration, String> {
    let value = duration(text, false, MAX_HTTP_DURATION)?;
    if value < MIN_HTTP_DURATION {
        return Err(format!(
            "must be at least {}: a fifth of it is ramp-up",
            humantime::format_duration(MIN_HTTP_DURATION)
        ));
    }
    Ok(value)
}

fn timeout(text: &str) -> Result<Duration, String> {
    duration(text, false, MAX_TIMEOUT)
}

fn interval(text: &str) -> Result<Duration, String> {
    duration(text, false, MAX_SCHEDULE)
}

/// `--splay` and `--start-delay`: zero is fine.
fn schedule_offset(text: &str) -> Result<Duration, String> {
    duration(text, true, MAX_SCHEDULE)
}

/// `--probe-interval`: 0s (off), or 1s to [`MAX_PROBE_INTERVAL`].
fn probe_interval(text: &str) -> Result<Duration, String> {
    let value = duration(text, true, MAX_PROBE_INTERVAL)?;
    if !value.is_zero() && value < Duration::from_secs(1) {
        return Err("must be at least 1s (or 0s to turn the connectivity monitor off)".into());
    }
    Ok(value)
}

/// `--probe-gateway`: auto, none or an IP address.
fn probe_gateway(text: &str) -> Result<crate::probe::monitor::GatewayChoice, String> {
    use crate::probe::monitor::GatewayChoice;
    match text.trim() {
        "auto" => Ok(GatewayChoice::Discover),
        "none" => Ok(GatewayChoice::Off),
        text => {
            let address: std::net::IpAddr = text.parse().map_err(|_| {
                format!(
                    "{} must be auto, none or an IP address such as 192.168.1.1",
                    crate::logging::quoted(text)
                )
            })?;
            match crate::probe::monitor::unprobeable(address) {
                Some(reason) => Err(format!("{address} {reason}")),
                None => Ok(GatewayChoice::Fixed(address)),
            }
        }
    }
}

fn retention(text: &str) -> Result<Duration, String> {
    duration(text, false, MAX_RETENTION)
}

fn retest_after(text: &str) -> Result<Duration, String> {
    duration(text, false, MAX_RETEST_AFTER)
}

fn min_manual_gap(text: &str) -> Result<Duration, String> {
    duration(text, true, MAX_MANUAL_GAP)
}

fn window(text: &str) -> Result<Duration, String> {
    duration(text, false, MAX_RETENTION)
}

#[cfg(test)]
mod tests;
