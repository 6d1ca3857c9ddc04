//! The connectivity monitor's loop: a round of probes to the gateway and every public target
//! each `--probe-interval`, per-minute aggregates, the outage tracker, and what they persist
//! (through the recorder, the one store writer) and publish (`/metrics`, [`Status`]).
//!
//! Times of rounds are the run's start plus the monotonic time since, so a wall clock stepped
//! while serving neither reorders nor hides rounds (a step shows only in the next run's start).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::minute::{MinuteAccumulator, MinuteAggregate};
use super::net::{self, Prober};
use super::outage::{Config, Event, Outage, OutageKind, Round, Run, Tracker};
use super::status::Status;
use super::{ProbeMethod, ProbeResult, StoredTarget, Target, TargetKind};
use crate::daemon::state::AppState;
use crate::store::probes::{ProbeRow, ProbeStats, ProbeWrite};
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

/// The public targets probed when no `--probe-target` is given: Cloudflare's, Google's and
/// Quad9's anycast resolvers, which answer ICMP echo and TCP on 443 and 53 from almost
/// anywhere, run by three different operators so one operator's fault is not the line's.
pub(crate) const DEFAULT_PUBLIC_TARGETS: [IpAddr; 3] = [
    IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)),
    IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
    IpAddr::V4(Ipv4Addr::new(9, 9, 9, 9)),
];

/// The TCP port probed on a public target when no port is given.
pub(crate) const DEFAULT_TCP_PORT: u16 = 443;

/// The TCP port probed on the gateway when ICMP is not allowed: home routers run a DNS
/// forwarder on 53, and a router that does not still answers with a reset, which counts.
pub(crate) const GATEWAY_TCP_PORT: u16 = 53;

/// The longest probe timeout; shorter when the interval is short (half of it).
pub(crate) const MAX_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the default gateway is looked up again (a DHCP lease or another router may move
/// it; reading the routing table costs microseconds).
const GATEWAY_CHECK: Duration = Duration::from_secs(10);
/// How far after now an outage may start and still count as the newest at start-up (a clock
/// a little behind the one that stored it).
const NEWEST_OUTAGE_SLACK: Duration = Duration::from_secs(60);

/// A `--probe-target`: an address, and the port for `tcp-connect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicTarget {
    /// The address probed.
    pub(crate) address: IpAddr,
    /// The TCP port used when ICMP is not allowed.
    pub(crate) port: u16,
}

/// Why `address` cannot be probed as a gateway or a public target, if so: the unspecified
/// and loopback addresses reach this host itself (every probe, by any method, answers, so
/// no outage would ever be seen), a multicast or the broadcast address names no one host,
/// and an IPv6 link-local address needs an interface that cannot be given (every probe
/// would fail with "invalid argument"). IPv4-mapped IPv6 addresses count as their IPv4 one.
pub(crate) fn unprobeable(address: IpAddr) -> Option<&'static str> {
    let address = address.to_canonical();
    if address.is_unspecified() || address.is_loopback() {
        return Some("is this host itself: it always answers, so no outage would ever be seen");
    }
    if address.is_multicast() {
        return Some("is a multicast address, not one host");
    }
    match address {
        IpAddr::V4(v4) if v4.is_broadcast() => Some("is the broadcast address, not one host"),
        IpAddr::V6(v6) if v6.is_unicast_link_local() => Some(
            "is an IPv6 link-local address, which needs an interface that cannot be given; \
             use the host's global or unique local address",
        ),
        _ => None,
    }
}

impl FromStr for PublicTarget {
    type Err = String;

    /// `ADDRESS` or `ADDRESS:PORT`, an IPv6 address with a port in brackets (`[2606:4700::1111]:443`);
    /// an [`unprobeable`] address is refused.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let target = Self::parse(text.trim())?;
        match unprobeable(target.address) {
            Some(reason) => Err(format!("{} {reason}", target.address)),
            None => Ok(target),
        }
    }
}

impl PublicTarget {
    fn parse(text: &str) -> Result<Self, String> {
        if let Ok(address) = text.parse::<IpAddr>() {
            return Ok(PublicTarget {
                address,
                port: DEFAULT_TCP_PORT,
            });
        }
        if let Ok(address) = text
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Ok(PublicTarget {
                address,
                port: DEFAULT_TCP_PORT,
            });
        }
        match text.parse::<SocketAddr>() {
            Ok(socket) if socket.port() != 0 => Ok(PublicTarget {
                address: socket.ip(),
                port: socket.port(),
            }),
            Ok(_) => Err(format!(
                "{}: port 0 cannot be probed; use e.g. 1.1.1.1:443",
                crate::logging::quoted(&crate::cli::secrets_redacted(text))
            )),
            Err(_) => Err(format!(
                "{} is not an IP address with an optional port: use e.g. 1.1.1.1, \
                 9.9.9.9:53 or [2606:4700:4700::1111]:443 (names are not resolved, so a DNS \
                 fault cannot look like an outage)",
                crate::logging::quoted(&crate::cli::secrets_redacted(text))
            )),
        }
    }
}

impl fmt::Display for PublicTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", SocketAddr::new(self.address, self.port))
    }
}

/// Which gateway is probed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayChoice {
    /// The default route's gateway, looked up at start and every minute.
    Discover,
    /// This address (`--probe-gateway ADDRESS`).
    Fixed(IpAddr),
    /// None (`--probe-gateway none`): every down round is then `local`.
    Off,
}

/// `serve`'s probe settings; `ServeConfig::probes` is `None` when `--probe-interval 0s`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeConfig {
    /// Time between rounds.
    pub(crate) interval: Duration,
    /// The public targets.
    pub(crate) public: Vec<PublicTarget>,
    /// The gateway.
    pub(crate) gateway: GatewayChoice,
}

impl ProbeConfig {
    /// The timeout of one probe: half the interval, at most [`MAX_PROBE_TIMEOUT`], so rounds
    /// never overlap.
    pub fn timeout(&self) -> Duration {
        (self.interval / 2).min(MAX_PROBE_TIMEOUT)
    }
}

/// One target being probed and its open minute.
struct Slot {
    stored: StoredTarget,
    minute: MinuteAccumulator,
    warned: bool,
}

/// The INFO line saying what the monitor probes, how often and by which method.
struct StartedLine {
    targets: String,
    words: String,
}

/// The monitor of one `serve` run, between [`Monitor::start`] and [`Monitor::stop`].
pub(crate) struct Monitor {
    config: ProbeConfig,
    prober: Arc<Prober>,
    method: ProbeMethod,
    slots: Vec<Slot>,
    tracker: Tracker,
    status: Arc<Status>,
    run_start: Timestamp,
    started: Instant,
    /// The ongoing outage's start and the time its seconds were counted up to.
    counted: Option<(Timestamp, Timestamp)>,
    gateway_checked: Instant,
    gateway_warned: bool,
    /// The open minute of a gateway no longer probed (it changed or the default route went),
    /// stored with the next round's write.
    retired: Vec<(StoredTarget, MinuteAggregate)>,
    silent_gateway: SilentGateway,
    /// What [`Monitor::log_started`] says.
    started_line: StartedLine,
}

/// Rounds in a row in which public targets answered and the gateway did not before the log
/// says the gateway drops the probes: 5 minutes at the default interval.
pub(crate) const SILENT_GATEWAY_ROUNDS: u32 = 30;

/// Watches for a gateway that never answers while the line works (a router that drops ICMP
/// to itself, or TCP to port 53): with it, every real outage would read as `local`, so the
/// log says so once, and again when it answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SilentGateway {
    rounds: u32,
    warned: bool,
}

/// What [`SilentGateway::observe`] asks the log to say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GatewayNotice {
    /// [`SILENT_GATEWAY_ROUNDS`] rounds in a row with public answers and none from it.
    Silent,
    /// It answered again after [`GatewayNotice::Silent`].
    Answers,
}

impl SilentGateway {
    /// Feeds one round (`gateway`: `None` when no gateway is probed).
    fn observe(&mut self, gateway: Option<bool>, public: bool) -> Option<GatewayNotice> {
        match (gateway, public) {
            (Some(true), _) => {
                self.rounds = 0;
                std::mem::take(&mut self.warned).then_some(GatewayNotice::Answers)
            }
            (Some(false), true) => {
                self.rounds = self.rounds.saturating_add(1);
                (self.rounds >= SILENT_GATEWAY_ROUNDS && !self.warned).then(|| {
                    self.warned = true;
                    GatewayNotice::Silent
                })
            }
            // A down round says nothing about the gateway's habits; no gateway, nothing to say.
            _ => None,
        }
    }
}

/// The target probing `address` of `kind` by `method`.
fn target(kind: TargetKind, address: IpAddr, method: ProbeMethod, port: u16) -> Target {
    let method = match method {
        ProbeMethod::TcpConnect { .. } => ProbeMethod::TcpConnect { port },
        icmp => icmp,
    };
    Target {
        kind,
        address,
        method,
    }
}

/// The outage tracker at start-up at `now`: fresh, or carrying the outage the store holds as
/// ongoing from where it was last seen (ended there, and stored so, when the clock is now
/// behind that time).
fn restore_tracker(store: &Store, now: Timestamp) -> Result<Tracker, StoreError> {
    let Some(outage) = store.open_outage()? else {
        return Ok(Tracker::new(Config::default()));
    };
    let previous = store.last_monitor_run()?;
    // Where it was last seen: a run that resumed it counted a restart, so without
    // one that is the run it started in. The newest run by start is another one
    // when a run started later never got to its first round, or when the clock
    // was behind at a restart (its run is keyed before this outage's): its end
    // would hide the gap since the outage was seen, counting it as down.
    let seen_in = match outage.restarts {
        0 => store.monitor_run_at(outage.start)?.or(previous),
        _ => previous,
    };
    let stopped_at = seen_in
        .map_or(outage.start, |run| run.end.unwrap_or(run.start))
        .max(outage.start);
    if now < stopped_at {
        // The clock is behind the time the outage was last seen (stepped back
        // between runs, or ahead then): continuing it would end it before that
        // time, even before its start (a record the store refuses, which left
        // the outage ongoing for ever). Nothing says it lasted longer, so it
        // ended when it was last seen, as when the first round succeeds.
        let closed = Outage {
            end: Some(stopped_at),
            ..outage
        };
        tracing::warn!(
            kind = %outage.kind.name(),
            since = %outage.start,
            stopped_at = %stopped_at,
            clock = %now,
            "an {} outage was going on when the monitor last stopped (at \
             {stopped_at}), but the clock now reads {now}, before that: is it \
             wrong? The outage is recorded as ended then",
            outage.kind.name()
        );
        store.write_probes(&ProbeWrite {
            outages: vec![closed],
            ..ProbeWrite::default()
        })?;
        Ok(Tracker::new(Config::default()))
    } else {
        tracing::warn!(
            kind = %outage.kind.name(),
            since = %outage.start,
            stopped_at = %stopped_at,
            "an {} outage was going on when the monitor last stopped (at \
             {stopped_at}): it continues if the first round now fails, else it \
             ended then",
            outage.kind.name()
        );
        Ok(Tracker::restore(
            Config::default(),
            Some(outage),
            stopped_at,
        ))
    }
}

impl Monitor {
    /// Chooses the method, finds the gateway, registers the targets and restores an outage
    /// left open by the previous run; records this run as started at `now`. Blocking (store
    /// writes): call it before serving.
    pub(crate) fn start(
        store: &Store,
        config: ProbeConfig,
        now: Timestamp,
    ) -> Result<Self, StoreError> {
        let detection = net::detect();
        let method = detection.method;
        let (gateway, gateway_warned) = match config.gateway {
            GatewayChoice::Fixed(address) => (Some(address), false),
            GatewayChoice::Off => (None, false),
            GatewayChoice::Discover => match net::default_gateway() {
                Ok(Some(address)) => (Some(address), false),
                Ok(None) => {
                    tracing::warn!(
                        "no default gateway in the routing table: every failed round counts as \
                         `local`; --probe-gateway ADDRESS names one"
                    );
                    (None, true)
                }
                Err(err) => {
                    tracing::warn!(
                        %err,
                        "cannot read the routing table for the default gateway: every failed \
                         round counts as `local`; --probe-gateway ADDRESS names one"
                    );
                    (None, true)
                }
            },
        };
        let mut targets: Vec<Target> = gateway
            .map(|address| target(TargetKind::Gateway, address, method, GATEWAY_TCP_PORT))
            .into_iter()
            .collect();
        targets.extend(
            config
                .public
                .iter()
                .map(|public| target(TargetKind::Public, public.address, method, public.port)),
        );
        if let Some(gateway) = gateway
            && config.public.iter().any(|public| public.address == gateway)
        {
            tracing::warn!(
                gateway = %gateway,
                "the gateway {gateway} is also a --probe-target: every round it answers counts \
                 as up, so the ISP's outages cannot be seen; probe addresses beyond it"
            );
        }
        let stored = store.register_probe_targets(&targets)?;
        let mut tracker = restore_tracker(store, now)?;
        tracker.start(now);
        store.write_probes(&ProbeWrite {
            minute: None,
            outages: Vec::new(),
            run: Some(Run {
                start: now,
                end: Some(now),
            }),
        })?;
        let described: Vec<String> = stored
            .iter()
            .map(|stored| format!("{} {}", stored.target.kind, stored.target.address))
            .collect();
        // Said by `log_started`, once serve's start-up line (the first, naming the address) is out.
        let started_line = StartedLine {
            targets: described.join(", "),
            words: format!(
                "probing {} every {} by {}: {}",
                match stored.len() {
                    1 => String::from("1 target"),
                    n => format!("{n} targets"),
                },
                humantime::format_duration(config.interval),
                method.name(),
                detection.reason
            ),
        };
        let status = Arc::new(Status::new(
            now,
            config.interval,
            method,
            detection.reason,
            stored.clone(),
            tracker.ongoing(),
        ));
        Ok(Monitor {
            prober: Arc::new(Prober::new(method)),
            method,
            slots: stored
                .into_iter()
                .map(|stored| Slot {
                    stored,
                    minute: MinuteAccumulator::new(),
                    warned: false,
                })
                .collect(),
            tracker,
            status,
            run_start: now,
            started: Instant::now(),
            counted: None,
            gateway_checked: Instant::now(),
            gateway_warned,
            retired: Vec::new(),
            silent_gateway: SilentGateway::default(),
            started_line,
            config,
        })
    }

    /// The live state the HTTP handlers read.
    pub(crate) fn status(&self) -> Arc<Status> {
        self.status.clone()
    }

    /// The newest stored outage of each kind, for the last-outage gauges.
    pub(crate) fn newest_outages(store: &Store, now: Timestamp) -> Result<Vec<Outage>, StoreError> {
        let outages = store.outages(
            Timestamp::from_millis(0),
            now.saturating_add(NEWEST_OUTAGE_SLACK),
        )?;
        let mut newest: Vec<Outage> = Vec::new();
        for kind in [OutageKind::Isp, OutageKind::Local] {
            if let Some(outage) = outages.iter().rev().find(|outage| outage.kind == kind) {
                newest.push(*outage);
            }
        }
        Ok(newest)
    }

    /// The time of this run's clock: its start plus the monotonic time since.
    fn clock(&self) -> Timestamp {
        self.run_start.saturating_add(self.started.elapsed())
    }

    /// Probes every interval until dropped (cancel-safe at every await: a round cut short is
    /// simply not counted).
    pub(crate) async fn run(&mut self, state: &AppState) {
        let mut ticks = tokio::time::interval(self.config.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.round(state).await;
        }
    }

    /// One round: probe, aggregate, classify, persist, publish.
    async fn round(&mut self, state: &AppState) {
        if self.gateway_checked.elapsed() >= GATEWAY_CHECK {
            self.gateway_checked = Instant::now();
            self.check_gateway(state).await;
        }
        let at = self.clock();
        let timeout = self.config.timeout();
        let mut probes = JoinSet::new();
        for (index, slot) in self.slots.iter().enumerate() {
            let prober = self.prober.clone();
            let target = slot.stored.target;
            probes.spawn(async move { (index, prober.probe(&target, timeout).await) });
        }
        let mut rtts = vec![None; self.slots.len()];
        while let Some(joined) = probes.join_next().await {
            let Ok((index, result)) = joined else {
                continue;
            };
            let Some(slot) = self.slots.get_mut(index) else {
                continue;
            };
            match result {
                Ok(rtt) => rtts[index] = rtt,
                Err(err) if !slot.warned => {
                    slot.warned = true;
                    tracing::warn!(
                        target_address = %slot.stored.target.address,
                        %err,
                        "cannot probe {}: counted as lost (said once)",
                        slot.stored.target.address
                    );
                }
                Err(_) => {}
            }
        }
        let under_load = state.running_since().is_some();
        let mut finished: Vec<(StoredTarget, MinuteAggregate)> = std::mem::take(&mut self.retired);
        let (mut gateway, mut public) = (false, false);
        for (slot, rtt) in self.slots.iter_mut().zip(rtts) {
            let result = ProbeResult { at, rtt };
            let answered = rtt.is_some();
            match slot.stored.target.kind {
                TargetKind::Gateway => gateway |= answered,
                TargetKind::Public => public |= answered,
            }
            state.metrics.observe_probe(&slot.stored.target, &result);
            if let Some(minute) = slot.minute.record(result) {
                finished.push((slot.stored, minute));
            }
            if under_load && let Some(minute) = slot.minute.mark_under_load(at) {
                finished.push((slot.stored, minute));
            }
        }
        let round = Round {
            at,
            gateway,
            public,
        };
        let probed = self
            .slots
            .iter()
            .find(|slot| slot.stored.target.kind == TargetKind::Gateway)
            .map(|slot| slot.stored.target);
        self.watch_gateway(probed, gateway, public);
        let events = self.tracker.round(round);
        let outages = self.account(state, &events, at);
        let ongoing = self.tracker.ongoing();
        self.status.set(round, ongoing);
        state.metrics.observe_round(&round, ongoing.as_ref());
        for (stored, minute) in &finished {
            state.metrics.observe_probe_minute(&stored.target, minute);
        }
        if !finished.is_empty() || !outages.is_empty() {
            self.persist(state, finished, outages, at).await;
        }
    }

    /// Says once when the gateway never answers while public targets do, and when it answers
    /// again.
    fn watch_gateway(&mut self, probed: Option<Target>, gateway: bool, public: bool) {
        let notice = self.silent_gateway.observe(probed.map(|_| gateway), public);
        let Some(target) = probed else {
            return;
        };
        match notice {
            Some(GatewayNotice::Silent) => tracing::warn!(
                gateway = %target.address,
                method = %target.method,
                rounds = SILENT_GATEWAY_ROUNDS,
                "the gateway {} has not answered {} probes for {SILENT_GATEWAY_ROUNDS} rounds \
                 while public targets do: it drops them, so a real outage would read as `local`, \
                 not `isp`. {}",
                target.address,
                target.method,
                match target.method {
                    ProbeMethod::TcpConnect { .. } =>
                        "Allow ICMP (net.ipv4.ping_group_range or CAP_NET_RAW), or give \
                         --probe-gateway an address on the router that answers",
                    _ => "Allow ICMP echo to it on the router, or give --probe-gateway an \
                          address on the router that answers",
                }
            ),
            Some(GatewayNotice::Answers) => tracing::info!(
                gateway = %target.address,
                "the gateway {} answers probes again",
                target.address
            ),
            None => {}
        }
    }

    /// Logs the events and counts outage seconds; returns the outages to put.
    fn account(&mut self, state: &AppState, events: &[Event], at: Timestamp) -> Vec<Outage> {
        let mut outages = Vec::new();
        for event in events {
            match *event {
                Event::Opened(outage) => {
                    state.metrics.outage_opened(&outage);
                    tracing::warn!(
                        kind = %outage.kind.name(),
                        start = %outage.start,
                        "{} outage since {}: {}",
                        outage.kind.name(),
                        outage.start,
                        match outage.kind {
                            OutageKind::Isp =>
                                "the gateway answers, no public target does (the ISP's side)",
                            OutageKind::Local =>
                                "the gateway does not answer either (the home network or router)",
                        }
                    );
                    outages.push(outage);
                }
                Event::Resumed(outage) => {
                    tracing::warn!(
                        kind = %outage.kind.name(),
                        start = %outage.start,
                        unmonitored = %humantime::format_duration(Duration::from_secs(
                            outage.unmonitored.as_secs()
                        )),
                        restarts = outage.restarts,
                        "the {} outage since {} goes on after the restart (the time the monitor \
                         was off is unmonitored, not counted as down)",
                        outage.kind.name(),
                        outage.start
                    );
                    outages.push(outage);
                }
                Event::Closed(outage) => {
                    if let (Some((start, through)), Some(end)) = (self.counted, outage.end)
                        && start == outage.start
                    {
                        state
                            .metrics
                            .add_outage_time(outage.kind, end.duration_since(through));
                        self.counted = None;
                    }
                    let down = outage.down_time().unwrap_or_default();
                    tracing::info!(
                        kind = %outage.kind.name(),
                        start = %outage.start,
                        end = outage.end.map(tracing::field::display),
                        down = %humantime::format_duration(Duration::from_secs(down.as_secs())),
                        "{} outage over after {}",
                        outage.kind.name(),
                        humantime::format_duration(Duration::from_secs(down.as_secs()))
                    );
                    outages.push(outage);
                }
            }
        }
        if let Some(outage) = self.tracker.ongoing() {
            let through = match self.counted {
                Some((start, through)) if start == outage.start => through,
                // This run's part only: the counters start at zero with the process.
                _ => outage.start.max(self.run_start),
            };
            if at > through {
                state
                    .metrics
                    .add_outage_time(outage.kind, at.duration_since(through));
            }
            self.counted = Some((outage.start, at.max(through)));
        }
        outages
    }

    /// Writes finished minutes, changed outages and the heartbeat in one transaction.
    async fn persist(
        &self,
        state: &AppState,
        finished: Vec<(StoredTarget, MinuteAggregate)>,
        outages: Vec<Outage>,
        at: Timestamp,
    ) {
        let mut rows = rows_of(finished);
        let run = Run {
            start: self.run_start,
            end: Some(at),
        };
        // Normally one row; several only if a round was late by more than a minute.
        let last = rows.pop();
        let mut writes: Vec<ProbeWrite> = rows
            .into_iter()
            .map(|row| ProbeWrite {
                minute: Some(row),
                outages: Vec::new(),
                run: None,
            })
            .collect();
        writes.push(ProbeWrite {
            minute: last,
            outages,
            run: Some(run),
        });
        let result = state
            .recorder
            .run(move |store| {
                writes
                    .iter()
                    .try_for_each(|write| store.write_probes(write))
            })
            .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                state.metrics.store_error();
                tracing::error!(%err, "cannot store probe results");
            }
            Err(err) => {
                state.metrics.store_error();
                tracing::error!(%err, "cannot store probe results");
            }
        }
    }

    /// Looks the default gateway up again; a new one is registered and probed from now on.
    async fn check_gateway(&mut self, state: &AppState) {
        if self.config.gateway != GatewayChoice::Discover {
            return;
        }
        let found = match net::default_gateway() {
            Ok(found) => found,
            Err(err) => {
                if !self.gateway_warned {
                    self.gateway_warned = true;
                    tracing::warn!(%err, "cannot read the routing table for the default gateway");
                }
                return;
            }
        };
        let current = self
            .slots
            .iter()
            .find(|slot| slot.stored.target.kind == TargetKind::Gateway)
            .map(|slot| slot.stored.target.address);
        if found == current {
            return;
        }
        let Some(address) = found else {
            tracing::warn!(
                "the default route is gone: every failed round counts as `local` until it is back"
            );
            self.retire_gateway();
            return;
        };
        let new = target(TargetKind::Gateway, address, self.method, GATEWAY_TCP_PORT);
        let registered = state
            .recorder
            .run(move |store| store.register_probe_targets(&[new]))
            .await;
        match registered {
            Ok(Ok(stored)) => {
                tracing::info!(
                    gateway = %address,
                    previous = current.map(tracing::field::display),
                    "the default gateway is now {address}"
                );
                self.retire_gateway();
                for stored in stored.into_iter().rev() {
                    self.slots.insert(
                        0,
                        Slot {
                            stored,
                            minute: MinuteAccumulator::new(),
                            warned: false,
                        },
                    );
                }
            }
            Ok(Err(err)) => tracing::error!(%err, "cannot register the new gateway"),
            Err(err) => tracing::error!(%err, "cannot register the new gateway"),
        }
    }

    /// Stops probing the gateway: its open minute is kept for the next write (dropping it
    /// lost up to a minute of its probes at every gateway change).
    fn retire_gateway(&mut self) {
        let (gateways, others): (Vec<Slot>, Vec<Slot>) = std::mem::take(&mut self.slots)
            .into_iter()
            .partition(|slot| slot.stored.target.kind == TargetKind::Gateway);
        self.slots = others;
        for mut slot in gateways {
            if let Some(minute) = slot.minute.flush() {
                self.retired.push((slot.stored, minute));
            }
        }
    }

    /// At shutdown: stores the open minute and the run's end.
    pub(crate) async fn stop(&mut self, state: &AppState) {
        let at = self.clock();
        let mut finished: Vec<(StoredTarget, MinuteAggregate)> = std::mem::take(&mut self.retired);
        finished.extend(
            self.slots
                .iter_mut()
                .filter_map(|slot| slot.minute.flush().map(|minute| (slot.stored, minute))),
        );
        self.persist(state, finished, Vec::new(), at).await;
    }
}

/// Groups finished minutes into one row per minute, by ascending target id.
fn rows_of(finished: Vec<(StoredTarget, MinuteAggregate)>) -> Vec<ProbeRow> {
    let mut rows: Vec<ProbeRow> = Vec::new();
    for (stored, minute) in finished {
        let stats = ProbeStats {
            target: stored.id,
            sent: minute.sent,
            lost: minute.lost,
            rtt_min_us: minute.rtt_min_us,
            rtt_median_us: minute.rtt_median_us,
            rtt_max_us: minute.rtt_max_us,
            under_load_minutes: u32::from(minute.under_load),
        };
        match rows.iter_mut().find(|row| row.start == minute.minute) {
            Some(row) => row.stats.push(stats),
            None => rows.push(ProbeRow {
                start: minute.minute,
                minutes: 1,
                stats: vec![stats],
            }),
        }
    }
    rows.sort_by_key(|row| row.start);
    for row in &mut rows {
        row.stats.sort_by_key(|stats| stats.target);
        row.stats.dedup_by_key(|stats| stats.target);
    }
    rows
}

impl Monitor {
    /// Logs what the monitor probes, how often and by which method (INFO): called by `serve`
    /// after its start-up line, which must be the first (it names the address, port 0's too).
    pub(crate) fn log_started(&self) {
        tracing::info!(
            method = %self.method.name(),
            interval = %humantime::format_duration(self.config.interval),
            targets = ?self.started_line.targets,
            "{}",
            self.started_line.words
        );
    }
}

#[cfg(test)]
mod tests;
