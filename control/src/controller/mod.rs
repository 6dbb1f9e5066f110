//! The control core: events in, actions out; no threads, sockets, clocks or DPDK inside.
//!
//! In quinn-proto's discipline: the binary owns every side effect (ports, the RCU publisher, the
//! health checker's threads, the HTTP listener) and feeds this state machine what happened and
//! when; the controller answers with what to do. Reload with rollback, the down set, next-hop
//! resolution and every snapshot build are decided here, so they are tested with `cargo test`
//! and an injected clock (`control/tests/controller.rs`).

#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod reload;

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub use reload::restart_only_changes;

use crate::config::{self, Config};
use crate::forwarding::{self, BuildError, Built, Ids, PortInfo, ServiceTable, TableCache};
use crate::health::{CheckKind, Target, TargetStatus};
use crate::neighbour::{self, Neighbours};

/// How often neighbour entries are expired and due requests sent.
pub const NEIGHBOUR_PERIOD: Duration = Duration::from_millis(100);
/// How long a reload waits for its new next hops to answer before it publishes without them
/// (long enough for one retry of an unanswered request).
pub const RESOLVE_WAIT: Duration = Duration::from_secs(2);

/// (service name, backend address): how health state names a backend.
pub type BackendKey = (String, IpAddr);

/// Something that happened, fed to [`Controller::handle`].
#[derive(Debug)]
pub enum Event<'a> {
    /// A reload was asked for: the file as loaded, or why it could not be (with its location).
    Reload(Result<Config, String>),
    /// The health checker took the targets of [`Action::SetHealthTargets`] (Ok), or could not
    /// start (Err: the reason).
    HealthTargetsSet(Result<(), String>),
    /// The checker's view changed: every target's status now.
    Health(Vec<TargetStatus>),
    /// A frame a worker handed to control (ARP, neighbour advertisement).
    Frame(&'a [u8]),
    /// Time passed; due neighbour requests and expiries happen here.
    Tick,
    /// Drain (true: withdraw every VIP, keep forwarding) or end a drain (false). SIGTERM drains
    /// before the binary stops.
    Drain(bool),
}

/// What the binary must do, in order.
#[derive(Debug)]
pub enum Action {
    /// Publish this forwarding state to the workers (one RCU swap).
    Publish(Box<Built>),
    /// Give the health checker these targets (start it if it is not running), then answer
    /// with [`Event::HealthTargetsSet`].
    SetHealthTargets(Vec<Target>),
    /// Send this frame (an ARP request or neighbour solicitation) out of interface `iface`.
    Send { iface: usize, frame: Vec<u8> },
    /// The reload asked for has ended: applied (the binary reports the epoch it published),
    /// or refused with the reason, the running state unchanged.
    ReloadDone(Result<(), String>),
    /// Make exactly these VIPs the announced routes (sorted), replacing the previous set.
    Announce(Vec<IpAddr>),
    /// A line for the log.
    Log(String),
}

/// A reload on its way: validated, waiting for the checker, then for its next hops.
#[derive(Debug)]
struct Pending {
    config: Config,
    /// None while the checker takes the targets; then until when next hops are waited for.
    resolve_by: Option<Instant>,
    /// The build that validated the file, published as it is unless health or a neighbour
    /// changed meanwhile (then it is dropped and the file built again when applied).
    built: Option<Box<Built>>,
}

/// Control's whole state between events.
#[derive(Debug)]
pub struct Controller {
    config: Config,
    ports: Vec<PortInfo>,
    ids: Ids,
    table_cache: TableCache,
    neighbours: Neighbours,
    /// The checker's last report.
    health: Vec<TargetStatus>,
    /// The (service, backend) pairs that get no new flows: those the running config checks and
    /// the checker says are down, and those held back for a next hop that has not answered.
    down: HashSet<BackendKey>,
    /// Of `down`, the checker's part, kept for targets a report leaves out (see `refresh_down`).
    health_down: HashSet<BackendKey>,
    pending: Option<Pending>,
    /// Next hops a reload added that did not answer within [`RESOLVE_WAIT`]: their backends
    /// count as down (no new flows) until they answer. Other unresolved next hops stay in the
    /// tables, so the table never changes as neighbours come and go (no flow moves).
    unanswered: HashSet<IpAddr>,
    last_neighbour_check: Option<Instant>,
    /// The tables of the snapshot last published.
    tables: Vec<ServiceTable>,
    draining: bool,
    /// The VIPs the last `Announce` named.
    announced: Vec<IpAddr>,
    /// Whether the workers have connection tracking: the first config used nat or fullnat.
    tracking: bool,
}

impl Controller {
    /// The controller for `config` on `ports` (one per interface, in config order), and the
    /// first forwarding state to publish. Every backend starts up; no next hop is resolved yet.
    pub fn new(config: Config, ports: Vec<PortInfo>) -> Result<(Self, Built), BuildError> {
        let mut c = Controller {
            tracking: config.uses_nat(),
            config,
            ports,
            ids: Ids::default(),
            table_cache: TableCache::default(),
            neighbours: Neighbours::new(),
            health: Vec::new(),
            down: HashSet::new(),
            health_down: HashSet::new(),
            pending: None,
            unanswered: HashSet::new(),
            last_neighbour_check: None,
            tables: Vec::new(),
            draining: false,
            announced: Vec::new(),
        };
        c.neighbours.set_wanted(next_hops(&c.config));
        let built = c.build(&c.config.clone())?;
        c.tables = built.tables.clone();
        Ok((c, built))
    }

    /// Handles one event at `now`; the actions are to be carried out in order.
    pub fn handle(&mut self, event: Event<'_>, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Reload(loaded) => self.reload(loaded, &mut out),
            Event::HealthTargetsSet(result) => self.health_targets_set(result, now, &mut out),
            Event::Health(statuses) => {
                self.health = statuses;
                self.pending_build_stale();
                if self.refresh_down() {
                    self.republish(now, &mut out);
                }
            }
            Event::Frame(frame) => {
                if let Some((ip, mac)) = neighbour::learned_from(frame) {
                    if self.neighbours.learn(ip, mac, now) {
                        self.unanswered.remove(&ip);
                        self.refresh_down();
                        self.pending_build_stale();
                        out.push(Action::Log(format!(
                            "neighbour {ip} is at {}",
                            config::format_mac(mac)
                        )));
                        if !self.finish_resolving(now, &mut out) {
                            self.republish(now, &mut out);
                        }
                    }
                }
            }
            Event::Tick => self.tick(now, &mut out),
            Event::Drain(on) => {
                if on != self.draining {
                    self.draining = on;
                    out.push(Action::Log(if on {
                        "draining: every VIP withdrawn, existing flows keep forwarding".into()
                    } else {
                        "drain ended: VIPs with a usable backend are announced again".into()
                    }));
                }
            }
        }
        // Last, so a VIP is announced only after the snapshot that serves it went out.
        let want = self.wanted_announcements();
        if want != self.announced {
            self.announced = want.clone();
            out.push(Action::Announce(want));
        }
        out
    }

    /// VIPs to announce: with `announce` configured and no drain, every VIP one of whose
    /// services has a backend with weight > 0 that is not down.
    fn wanted_announcements(&self) -> Vec<IpAddr> {
        if self.config.announce.is_none() || self.draining {
            return Vec::new();
        }
        let mut vips: Vec<IpAddr> = self
            .config
            .services
            .iter()
            .filter(|s| {
                s.backends
                    .iter()
                    .any(|b| b.weight > 0 && !self.down.contains(&(s.name.clone(), b.address)))
            })
            .map(|s| s.vip)
            .collect();
        vips.sort();
        vips.dedup();
        vips
    }

    /// Whether a drain is on.
    pub fn draining(&self) -> bool {
        self.draining
    }

    /// The VIPs announced now (as the last `Announce` said).
    pub fn announced(&self) -> &[IpAddr] {
        &self.announced
    }

    /// The running config (the last one applied).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Stable service and backend ids.
    pub fn ids(&self) -> &Ids {
        &self.ids
    }

    /// The health targets of the running config (for starting the checker).
    pub fn health_targets(&self) -> Vec<Target> {
        forwarding::health_targets(&self.config)
    }

    /// The checker's last report of every target.
    pub fn health(&self) -> &[TargetStatus] {
        &self.health
    }

    /// Backends down now: checked by the running config and down in the checker's last report.
    pub fn down(&self) -> &HashSet<BackendKey> {
        &self.down
    }

    /// (next hop, MAC or None) for every next hop the running config needs.
    pub fn neighbours(&self) -> Vec<(IpAddr, Option<[u8; 6]>)> {
        self.neighbours.entries()
    }

    /// The Maglev tables of the last published snapshot.
    pub fn tables(&self) -> &[ServiceTable] {
        &self.tables
    }

    /// A reload has started and not ended: the binary holds further reload requests until it
    /// has (they coalesce, as SIGHUPs do).
    pub fn reload_pending(&self) -> bool {
        self.pending.is_some()
    }

    fn reload(&mut self, loaded: Result<Config, String>, out: &mut Vec<Action>) {
        if self.pending.is_some() {
            // The binary waits for each reload to end before the next; say so if it did not.
            out.push(Action::ReloadDone(Err(
                "a reload is already in progress; nothing changed".into(),
            )));
            return;
        }
        let new = match loaded.and_then(|new| {
            restart_only_changes(&self.config, &new, self.tracking)?;
            Ok(new)
        }) {
            Ok(new) => new,
            Err(msg) => return out.push(Action::ReloadDone(Err(msg))),
        };
        // Built once before anything changes: a config that cannot be built changes nothing.
        let built = match self.build(&new) {
            Ok(b) => b,
            Err(e) => return out.push(Action::ReloadDone(Err(e.to_string()))),
        };
        out.push(Action::SetHealthTargets(forwarding::health_targets(&new)));
        self.pending = Some(Pending {
            config: new,
            resolve_by: None,
            built: Some(Box::new(built)),
        });
    }

    fn health_targets_set(
        &mut self,
        result: Result<(), String>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(p) = self.pending.as_mut().filter(|p| p.resolve_by.is_none()) else {
            return;
        };
        if let Err(e) = result {
            // The checker kept its old targets; nothing was published: the old file stays whole.
            self.pending = None;
            return out.push(Action::ReloadDone(Err(format!(
                "health checks could not start: {e}"
            ))));
        }
        p.resolve_by = Some(now + RESOLVE_WAIT);
        // The checker forgot the targets the new file does not check, and would start one added
        // back later afresh (up) without a report: their last statuses go with them.
        let checked: HashSet<BackendKey> = forwarding::health_targets(&p.config)
            .into_iter()
            .map(|t| (t.service, t.backend))
            .collect();
        self.health
            .retain(|s| checked.contains(&(s.target.service.clone(), s.target.backend)));
        // Ask for the new next hops now, and keep resolving (and refreshing) the old ones, which
        // the running snapshot still uses until the new one is out.
        let mut wanted = next_hops(&self.config);
        wanted.extend(next_hops(&p.config));
        self.neighbours.set_wanted(wanted);
        if !self.finish_resolving(now, out) {
            self.send_due(now, out);
        }
    }

    /// Health or a neighbour changed: a pending reload's build no longer says what is true.
    fn pending_build_stale(&mut self) {
        if let Some(p) = self.pending.as_mut() {
            p.built = None;
        }
    }

    /// Ends a reload waiting for its next hops when they have all answered or its time is up:
    /// applies the new config and publishes it. True if it did.
    fn finish_resolving(&mut self, now: Instant, out: &mut Vec<Action>) -> bool {
        let Some(Pending {
            config,
            resolve_by: Some(by),
            ..
        }) = &self.pending
        else {
            return false;
        };
        // Only the next hops this file adds are waited for: one the running config already
        // has is in the tables as it is, resolved or not.
        let before = next_hops(&self.config);
        let missing: Vec<IpAddr> = next_hops(config)
            .into_iter()
            .filter(|ip| !before.contains(ip) && self.neighbours.lookup(*ip).is_none())
            .collect();
        if !missing.is_empty() && now < *by {
            return false;
        }
        let Some(p) = self.pending.take() else {
            return false;
        };
        if !missing.is_empty() {
            out.push(Action::Log(format!(
                "reload: no answer from next hop(s) {missing:?} within {RESOLVE_WAIT:?}: their backends get no new flows until they answer"
            )));
        }
        let wanted = next_hops(&p.config);
        self.unanswered.retain(|ip| wanted.contains(ip));
        let held_back = !missing.is_empty();
        self.unanswered.extend(missing);
        self.config = p.config;
        self.neighbours.set_wanted(wanted);
        self.refresh_down();
        match p.built.filter(|_| !held_back) {
            Some(built) => self.publish(built, now, out),
            None => self.republish(now, out),
        }
        out.push(Action::ReloadDone(Ok(())));
        true
    }

    fn tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self
            .last_neighbour_check
            .is_some_and(|t| now.saturating_duration_since(t) < NEIGHBOUR_PERIOD)
        {
            return;
        }
        self.last_neighbour_check = Some(now);
        let expired = self.neighbours.expire(now);
        if expired {
            self.pending_build_stale();
        }
        self.send_due(now, out);
        if !self.finish_resolving(now, out) && expired {
            self.republish(now, out);
        }
    }

    /// Requests for every next hop due one (unresolved, or resolved and half-way stale).
    fn send_due(&mut self, now: Instant, out: &mut Vec<Action>) {
        for ip in self.neighbours.due_requests(now) {
            if let Some(send) = self.request(ip) {
                out.push(send);
            }
        }
    }

    /// The ARP request or neighbour solicitation for `ip`, from the interface it is on
    /// (interfaces are the same in every config a reload may apply).
    fn request(&self, ip: IpAddr) -> Option<Action> {
        let iface = self.config.interfaces.iter().position(|i| i.on_link(ip))?;
        let ic = &self.config.interfaces[iface];
        let mac = self.ports.get(iface)?.mac;
        let frame = match ip {
            IpAddr::V4(v4) => neighbour::arp_request(mac, ic.address.addr, v4),
            IpAddr::V6(v6) => neighbour::neighbour_solicit(mac, ic.address6?.addr, v6),
        };
        Some(Action::Send { iface, frame })
    }

    /// Recomputes the down set from the checker's report and the running config, and the
    /// backends held back for a next hop that has not answered (down for `/state` and the
    /// announcements as for the tables); true if it changed.
    fn refresh_down(&mut self) -> bool {
        let mut down = down_now(&self.config, &self.health, &self.health_down);
        self.health_down = down.clone();
        for s in &self.config.services {
            for b in &s.backends {
                if held_back(&self.config, &self.unanswered, b.address) {
                    down.insert((s.name.clone(), b.address));
                }
            }
        }
        let changed = down != self.down;
        self.down = down;
        changed
    }

    fn build(&mut self, cfg: &Config) -> Result<Built, BuildError> {
        let down = down_now(cfg, &self.health, &self.health_down);
        let neighbours = &self.neighbours;
        let unanswered = &self.unanswered;
        forwarding::build(
            cfg,
            &self.ports,
            &mut self.ids,
            &mut self.table_cache,
            &|s, b| !down.contains(&(s.to_owned(), b)) && !held_back(cfg, unanswered, b),
            &|ip| neighbours.lookup(ip),
        )
    }

    /// Publishes `built`, a build of the running config; ids it no longer names start ageing.
    fn publish(&mut self, built: Box<Built>, now: Instant, out: &mut Vec<Action>) {
        self.tables = built.tables.clone();
        self.ids.published(&self.config, now);
        out.push(Action::Publish(built));
    }

    /// Builds from the running config and current state, and publishes it.
    fn republish(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.build(&self.config.clone()) {
            Ok(built) => self.publish(Box::new(built), now, out),
            // The running config was built before, so only a bug gets here; keep the old state.
            Err(e) => out.push(Action::Log(format!(
                "could not rebuild forwarding state: {e}"
            ))),
        }
    }
}

/// The pairs down now: health-checked by `cfg` and down in the checker's `statuses`, or down
/// `before` and absent from them. A pair `cfg` no longer checks is up, whatever the checker last
/// said of it (between a reload and the checker taking the new targets, it may still list it).
fn down_now(
    cfg: &Config,
    statuses: &[TargetStatus],
    before: &HashSet<BackendKey>,
) -> HashSet<BackendKey> {
    // A `none` check never probes: always up, whatever the checker said of the check it had
    // before the reload (it forces the target up only once it takes the new targets).
    let checked: HashSet<BackendKey> = forwarding::health_targets(cfg)
        .into_iter()
        .filter(|t| t.spec.settings.kind != CheckKind::None)
        .map(|t| (t.service, t.backend))
        .collect();
    let reported: HashSet<BackendKey> = statuses
        .iter()
        .map(|s| (s.target.service.clone(), s.target.backend))
        .collect();
    let mut down: HashSet<BackendKey> = statuses
        .iter()
        .filter(|s| !s.up)
        .map(|s| (s.target.service.clone(), s.target.backend))
        .filter(|k| checked.contains(k))
        .collect();
    // A checked backend the report says nothing of (the checker already runs a reload's
    // targets while this config waits for its next hops) keeps its last state: unknown is
    // not up.
    down.extend(
        before
            .iter()
            .filter(|k| checked.contains(*k) && !reported.contains(*k))
            .cloned(),
    );
    down
}

/// Whether backend `b` waits for a next hop a reload added that has not answered.
fn held_back(cfg: &Config, unanswered: &HashSet<IpAddr>, b: IpAddr) -> bool {
    forwarding::egress_of(cfg, b).is_some_and(|(_, nh)| unanswered.contains(&nh))
}

/// Every next hop some backend needs resolved (static `gateway_mac`s excluded).
fn next_hops(cfg: &Config) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = cfg
        .services
        .iter()
        .flat_map(|s| s.backends.iter())
        .filter_map(|b| forwarding::egress_of(cfg, b.address))
        .filter(|&(i, nh)| forwarding::static_mac(cfg, i, nh).is_none())
        .map(|(_, nh)| nh)
        .collect();
    v.sort();
    v.dedup();
    v
}
