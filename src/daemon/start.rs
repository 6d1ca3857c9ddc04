//! Start-up of `serve`: reads the flags, binds, opens the store, settles the plan history,
//! says the start-up line, and runs the service until SIGINT, SIGTERM or SIGHUP.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};

use super::ServeConfig;
use super::scheduler::Schedule;
use crate::campaign::live::CampaignConfig;
use crate::cli::{PlanArgs, ServeArgs};
use crate::commands::{Created, adopt_orphans, listen_until_stopped};
use crate::http::web_config::WebConfigSource;
use crate::http::{AllowedHosts, WebServing};
use crate::plan::{DEFAULT_THRESHOLD, Plan, PlanHistory, PlanVersion, Speeds};
use crate::store::Store;
use crate::time::{Timestamp, format_limit};
use crate::units::for_people::{speed as speed_words, volume};

/// Worker threads: requests are short and the machines small.
const WORKERS: usize = 2;
/// HTTP connections served at once, when the open-files limit allows; beyond it a new client
/// takes the place of the connection idle longest (`http::serve`). Each costs at most about
/// 26 KiB (8 KiB of request buffer, 8 KiB of response headers, a streamed chunk or two), so
/// the cap keeps a server under 64 MiB whatever its clients do (bench/abuse.sh measures it).
const MAX_CONNECTIONS: u64 = 2048;
/// File descriptors kept back from HTTP for the store, the CLI's pipes, logs and /proc.
const RESERVED_FILES: u64 = 64;

/// Raises the soft limit on open files to the hard limit (1024 by default on many systems,
/// which idle clients could exhaust) and returns the limit now in effect.
fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        let current = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            return current;
        }
    }
    limit.rlim_cur
}

/// Large allocations (over 128 KiB: a summary's figures, a big answer) get pages of their own,
/// returned to the system when freed. glibc otherwise raises this threshold to the largest
/// block freed so far and serves later ones from per-thread heaps that keep the memory: one
/// ten-year summary on each reader thread left over 100 MB resident for good.
fn return_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
    unsafe {
        if libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) != 1 {
            tracing::debug!("cannot set the allocator's mmap threshold");
        }
    }
}

/// This machine's host name, which a browser on the network may use to reach the service.
fn host_name() -> Option<String> {
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname writes at most `buffer.len()` bytes into the buffer we own.
    if unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) } != 0 {
        return None;
    }
    let end = buffer.iter().position(|&b| b == 0)?;
    std::str::from_utf8(&buffer[..end]).ok().map(str::to_owned)
}

/// The stored plan history, after storing the version `--plan-download`/`--plan-upload`/
/// `--plan-threshold` state when it differs from the plan in force `now`: the version in force
/// with the flags' advertised speeds and threshold over it (its other terms kept), or the flags
/// alone when none is in force; in force from `now`, or from the epoch when no version is
/// stored yet (the flags judged every run until now); logged with what changed and what was
/// kept. Without those flags the stored history is used as it is, and so it is, with a warning,
/// when stored runs are dated after `now` (a clock that is behind would date the version before
/// them). A damaged plan record stops the start with the store's error, naming the version: it
/// is never obeyed.
fn plan_history(store: &Store, flags: &PlanArgs, now: Timestamp) -> anyhow::Result<PlanHistory> {
    let history = store.plan_history()?;
    if flags.plan_download.is_none() && flags.plan_upload.is_none() {
        return Ok(history);
    }
    // The first version stored is in force since the epoch, so that the runs measured before
    // it (judged against these flags until now) keep being judged; a change is in force from now.
    let from = if history.is_empty() {
        Timestamp::EPOCH
    } else {
        now
    };
    let current = history.in_force_at(now).copied();
    let given = match &current {
        Some(current) => current.amended(
            flags.plan_download,
            flags.plan_upload,
            flags.plan_threshold,
            from,
        ),
        None => PlanVersion {
            from,
            download: Speeds::advertised(flags.plan_download),
            upload: Speeds::advertised(flags.plan_upload),
            latency_max: None,
            threshold: flags.plan_threshold.unwrap_or(DEFAULT_THRESHOLD),
        },
    };
    if current.is_some_and(|current| current.same_terms(&given)) {
        return Ok(history);
    }
    // A clock behind the stored runs would put the new version before some of them and judge
    // them against flags that were not in force at their time: keep the history as it is.
    if !history.is_empty()
        && let (ahead, Some(newest)) = store.count_after(now)?
    {
        tracing::warn!(
            %now,
            samples = ahead,
            %newest,
            "the --plan-* flags differ from the stored plan but are not stored: the clock ({now}) \
             is before {ahead} stored runs (the newest {newest}), which a version from now would \
             judge; judging with the stored plan history until the clock is right (or store the \
             version with plan set --from)"
        );
        return Ok(history);
    }
    given.validate().map_err(|err| {
        let given: Vec<String> = [
            ("--plan-download", flags.plan_download),
            ("--plan-upload", flags.plan_upload),
        ]
        .into_iter()
        .filter_map(|(flag, speed)| {
            Some(format!("{flag} {}", speed_words(speed?.bytes_per_second())))
        })
        .collect();
        let given = given.join(" and ");
        match &current {
            Some(current) => anyhow::anyhow!(
                "{given} (the advertised speed) does not fit the stored plan in force ({}, from \
                 plan set): {err}; store the new contract with plan set, or give a speed within \
                 it",
                describe_terms(current)
            ),
            None => anyhow::anyhow!("{given}: {err} (they set the advertised speed)"),
        }
    })?;
    store
        .set_plan(&given, false)
        .context("cannot store the plan of --plan-download/--plan-upload")?;
    let old = current.map_or_else(|| "none".to_owned(), |v| describe_plan(&v.plan()));
    let (changed, kept) = plan_changes(current.as_ref(), &given);
    tracing::info!(
        old = ?old,
        new = ?describe_plan(&given.plan()),
        changed = ?changed,
        kept = ?kept,
        from = %from,
        "the --plan-* flags differ from the stored plan: stored them as a new plan version, \
         keeping the other terms of the version in force (change those with plan set)"
    );
    Ok(store.plan_history()?)
}

/// What `new` changes of `old`, and what it keeps, for the log: `download advertised 500
/// Mbit/s → 600 Mbit/s, upload advertised none → 50 Mbit/s` and `download maximum 600 Mbit/s,
/// latency-max 30 ms` (`none` when nothing is kept).
fn plan_changes(old: Option<&PlanVersion>, new: &PlanVersion) -> (String, String) {
    let old_terms = old.map(PlanVersion::terms).unwrap_or_default();
    let new_terms = new.terms();
    let value = |terms: &[(String, String)], name: &str| {
        terms
            .iter()
            .find(|(term, _)| term == name)
            .map(|(_, value)| value.clone())
    };
    let mut names: Vec<&String> = new_terms.iter().map(|(name, _)| name).collect();
    names.extend(
        old_terms
            .iter()
            .map(|(name, _)| name)
            .filter(|name| !new_terms.iter().any(|(term, _)| term == *name)),
    );
    let (mut changed, mut kept) = (Vec::new(), Vec::new());
    for name in names {
        let before = value(&old_terms, name);
        let after = value(&new_terms, name);
        if before == after {
            kept.push(format!("{name} {}", after.unwrap_or_default()));
        } else {
            changed.push(format!(
                "{name} {} → {}",
                before.as_deref().unwrap_or("none"),
                after.as_deref().unwrap_or("none")
            ));
        }
    }
    let join = |list: Vec<String>| {
        if list.is_empty() {
            "none".to_owned()
        } else {
            list.join(", ")
        }
    };
    (join(changed), join(kept))
}

/// A stored plan version's terms on one line (`download maximum 300 Mbit/s, …`), for an
/// error about what the `--plan-*` flags would change.
fn describe_terms(version: &PlanVersion) -> String {
    let terms: Vec<String> = version
        .terms()
        .into_iter()
        .map(|(name, value)| format!("{name} {value}"))
        .collect();
    terms.join(", ")
}

/// A judged plan on one line, for the log: `download 500 Mbit/s, upload none, threshold 0.8`
/// (`none` when no version is in force).
fn describe_plan(plan: &Plan) -> String {
    if !plan.is_set() {
        return "none".to_owned();
    }
    let rate = |speed: Option<crate::units::Bandwidth>| {
        speed.map_or_else(|| "none".to_owned(), |s| speed_words(s.bytes_per_second()))
    };
    format!(
        "download {}, upload {}, threshold {}",
        rate(plan.download),
        rate(plan.upload),
        plan.threshold
    )
}

/// What `serve` settles from its flags before it binds: a wrong setting is refused before
/// the port is taken or a database file is created.
struct Prepared {
    engine: crate::speedtest::EngineConfig,
    /// Why this engine measures, for the start-up log.
    engine_why: String,
    probes: Option<crate::probe::monitor::ProbeConfig>,
    web: Option<WebServing>,
    /// The web configuration file named in the start-up line, or `none`.
    web_config: String,
    /// `http` or `https`.
    scheme: &'static str,
    /// `off`, `basic` or `basic-except-healthz`.
    auth: &'static str,
    remote_write: Option<crate::push::client::Client>,
}

/// Checks `args` and reads what they name (the web configuration file, the remote-write
/// settings), as `serve` does before it binds.
fn prepare(args: &ServeArgs) -> anyhow::Result<Prepared> {
    args.check().map_err(anyhow::Error::msg)?;
    let (engine, engine_why) = args.speedtest.engine_config().map_err(anyhow::Error::msg)?;
    // Checked before the store is opened, so a wrong setting creates no database file.
    let probes = args.probes().map_err(anyhow::Error::msg)?;
    let web = match &args.web.config_file {
        Some(path) => Some(WebServing {
            source: Arc::new(WebConfigSource::open(path.clone())?),
            healthz_unauthenticated: args.web.healthz_unauthenticated,
        }),
        None => None,
    };
    // What the start-up line says of the web configuration: the file, the scheme and whether
    // clients must log in.
    let web_config = args
        .web
        .config_file
        .as_ref()
        .map_or_else(|| "none".to_owned(), |path| path.display().to_string());
    let (scheme, auth) = match web.as_ref().map(|web| web.source.current()) {
        Some(config) => (
            if config.tls.is_some() {
                "https"
            } else {
                "http"
            },
            if config.users.is_empty() {
                "off"
            } else if args.web.healthz_unauthenticated {
                "basic-except-healthz"
            } else {
                "basic"
            },
        ),
        None => ("http", "off"),
    };
    let remote_write = match args.remote_write.config().map_err(anyhow::Error::msg)? {
        Some(config) => Some(crate::push::client::Client::new(config).map_err(anyhow::Error::msg)?),
        None => None,
    };
    Ok(Prepared {
        engine,
        engine_why,
        probes,
        web,
        web_config,
        scheme,
        auth,
        remote_write,
    })
}

/// `serve`: the service of `args` until a signal stops it (exit 0), or the error that kept it
/// from starting.
pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    return_large_blocks();
    let prepared = prepare(&args)?;
    adopt_orphans();
    listen_until_stopped(WORKERS, args.listen, |listener, address, shutdown| {
        run_prepared(args, prepared, listener, address, shutdown)
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The service of `args` on `listener` (bound to `address`, which the start-up line names;
/// `--listen` is not read) until `shutdown` completes, on the caller's tokio runtime (which
/// needs its I/O and time drivers): `serve` after it has bound, for a caller that binds
/// itself, such as a test on port 0. The store at `--db` is opened (created if need be) only
/// here, and a file created by a start that fails is removed again.
///
/// Unlike `serve`, it installs no signal handler, does not adopt the speed-test CLI's orphans
/// (so a CLI's escaped descendants are not swept) and leaves the allocator and logging as
/// they are: those are the process's, not one server's. Like `serve`, it raises the
/// process's soft limit on open files to the hard limit (the same for every caller). Everything
/// else is this server's own (metrics registry, store, scheduler, the bounds on summaries and
/// streamed answers at once), so several can run in one process on different databases.
///
/// # Errors
///
/// A refused flag (the message names it and the fix), an unreadable web configuration or
/// store, a stored plan that contradicts the flags: whatever keeps `serve` from starting,
/// and an error of the running service (a store that fails).
pub async fn serve_on(
    args: ServeArgs,
    listener: tokio::net::TcpListener,
    address: std::net::SocketAddr,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let prepared = prepare(&args)?;
    run_prepared(args, prepared, listener, address, shutdown).await
}

/// [`serve_on`] once [`prepare`] has checked `args`.
async fn run_prepared(
    args: ServeArgs,
    prepared: Prepared,
    listener: tokio::net::TcpListener,
    address: std::net::SocketAddr,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let Prepared {
        engine,
        engine_why,
        probes,
        web,
        web_config,
        scheme,
        auth,
        remote_write,
    } = prepared;
    let engine_name = engine.describe().name;
    // Opened once the port is ours: a busy port must not leave a new, empty database
    // file behind. A locked database still stops a second instance before it tests.
    // Nor does any other start-up failure (--retest-below without a plan, a campaign or
    // probe configuration the store refuses): a new file is removed again unless the
    // service got as far as its start-up line.
    let mut created = Created::open(&args.store.db, |db| Ok(Store::open(db)?))?;
    let store = created.share();
    let now = Timestamp::now();
    let plans = plan_history(&store, &args.plan, now)?;
    // A stored plan (`plan set`) above --max-bandwidth is refused as the flags' one is.
    let max = args.speedtest.max_bandwidth;
    let in_force = plans.plan_at(now);
    for (direction, speed) in [("download", in_force.download), ("upload", in_force.upload)] {
        if let Some(speed) = speed
            && speed.bytes_per_second() > max.bytes_per_second()
        {
            bail!(
                "the stored plan in force ({direction} {speed}, from plan set) is above \
                 --max-bandwidth {max}: every run reaching it would be stored as implausible; \
                 raise --max-bandwidth or store a corrected plan with plan set"
            );
        }
    }
    // The plan in force now, or a version stored to take effect later: retests judge
    // each run against the version in force at its time.
    let judges_now_or_later = plans.plan_at(now).is_set()
        || plans
            .versions()
            .iter()
            .any(|version| version.from > now && version.plan().is_set());
    if args.retest_below.is_some() && !judges_now_or_later {
        bail!(
            "--retest-below needs a plan to compare with: add --plan-download and/or --plan-upload, or store one with plan set"
        );
    }
    let plan_now = describe_plan(&plans.plan_at(now));
    let (zone, zone_warning) = args.timezone.zone_or_warning();
    let config = ServeConfig {
        schedule: Schedule {
            interval: args.interval,
            splay: args.splay,
            start_delay: args.start_delay,
            retest_after: args.retest_below.map(|_| args.retest_after),
        },
        engine,
        retention: args.retention,
        plans,
        retest_below: args.retest_below,
        manual_runs: args.enable_run_endpoint.then_some(args.min_manual_gap),
        data_budget: args.data_budget,
        max_connections: usize::try_from(
            MAX_CONNECTIONS.min(raise_open_files_limit().saturating_sub(RESERVED_FILES)),
        )
        .unwrap_or(1),
        allowed_hosts: AllowedHosts::new(args.allowed_hosts.iter().cloned().chain(host_name())),
        zone: zone.clone(),
        campaign: args.campaign.map(|rules| CampaignConfig {
            rules,
            zone: zone.clone(),
            restart: args.campaign_restart,
        }),
        probes,
        web,
        remote_write,
        log_requests: args.log_requests,
    };
    let db = store.path().display().to_string();
    let retention = args
        .retention
        .map_or_else(|| "keep every sample".to_owned(), format_limit);
    let interval = humantime::format_duration(args.interval).to_string();
    let budget = args
        .data_budget
        .map_or_else(|| "none".to_owned(), |b| volume(b.bytes()));
    let zone = config.zone.name().to_owned();
    let ignored = args.speedtest.ignored_by(&config.engine);
    let slow_retest = args.slow_retest_warning();
    let interval_warnings = args.interval_warnings(&config.engine);
    // Said once the scheduler has planned the first test, so the line can name its time.
    let ready = move |first_test: Option<Timestamp>| {
        created.keep();
        drop(created);
        let first_test = first_test.map_or_else(|| "not planned".to_owned(), |at| at.to_string());
        tracing::info!(
            %address,
            ?db,
            %auth,
            ?web_config,
            %interval,
            engine = %engine_name,
            plan = ?plan_now,
            ?retention,
            data_budget = ?budget,
            ?first_test,
            "listening on {scheme}://{address} (first test at {first_test}, then every {interval})"
        );
        if passwords_in_clear(address, scheme, auth) {
            tracing::warn!(
                %address,
                "basic_auth_users without tls_server_config on an address other hosts can \
                 reach: passwords cross the network readable by anyone on the path; add \
                 tls_server_config, or listen on 127.0.0.1 behind a TLS proxy"
            );
        }
        tracing::info!("measuring with the {engine_why}");
        let source = if args.timezone.timezone.is_some() {
            "--timezone"
        } else {
            "the system's zone: TZ, else /etc/localtime; --timezone sets another"
        };
        tracing::info!(
            time_zone = %zone,
            "rule sets count calendar days and peak hours in {zone} ({source})"
        );
        if let Some(warning) = zone_warning {
            tracing::warn!("{warning}");
        }
        if let Some(warning) = ignored {
            tracing::warn!("{warning}");
        }
        if let Some(warning) = slow_retest {
            tracing::warn!("{warning}");
        }
        for warning in &interval_warnings {
            tracing::warn!("{warning}");
        }
    };
    super::run(config, listener, store, shutdown, ready).await?;
    Ok(())
}

/// Whether a server on `address` with this start-up `scheme` and `auth` takes passwords in
/// clear from other hosts: basic auth without TLS on anything but a loopback address.
fn passwords_in_clear(address: std::net::SocketAddr, scheme: &str, auth: &str) -> bool {
    auth != "off" && scheme == "http" && !address.ip().is_loopback()
}

#[cfg(test)]
mod clear_password_tests {
    use super::passwords_in_clear;

    #[test]
    fn basic_auth_without_tls_off_loopback_is_warned_about() {
        let any: std::net::SocketAddr = "0.0.0.0:5000".parse().unwrap();
        let lan: std::net::SocketAddr = "192.168.1.10:5000".parse().unwrap();
        let loopback: std::net::SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let loopback6: std::net::SocketAddr = "[::1]:5000".parse().unwrap();
        assert!(passwords_in_clear(any, "http", "basic"));
        assert!(passwords_in_clear(lan, "http", "basic-except-healthz"));
        assert!(!passwords_in_clear(lan, "https", "basic"));
        assert!(!passwords_in_clear(lan, "http", "off"));
        assert!(!passwords_in_clear(loopback, "http", "basic"));
        assert!(!passwords_in_clear(loopback6, "http", "basic"));
    }
}
