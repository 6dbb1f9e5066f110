//! The running appliance: EAL, ports, LB workers, and the control loop that feeds them.
//!
//! Long (about 750 lines besides tests): start-up, the control loop and shutdown are one
//! sequence over the same EAL, ports and workers; the parts with their own idea (status, kernel
//! interface, readiness notification, reload waits, start errors) are already submodules.
//!
//! The main thread is the EAL main lcore and runs control: reloads, health changes, next-hop
//! resolution, snapshot publication (RCU) and reclamation. Workers run on the other lcores.
//! Health checks and the HTTP listener run on threads pinned to the control core.

mod kernel;
mod notify;
mod reload_wait;
mod start_errors;
mod status;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use control::config::{self, Config, Lifecycle};
use control::control_socket::ControlSocket;
use control::controller::{Action, Controller, Event};
use control::forwarding::{self, PortInfo};
use control::health::{Change, Scheduler, SchedulerOptions, Target};
use control::http::{HttpServer, Response, Router, ServerOptions};
use control::lifecycle;
use control::metrics::PortRxDrops;
use crossbeam_queue::ArrayQueue;
use dataplane::dpdk::{Burst, DpdkError, Eal, Mbuf, Mempool, Port, PortStats, TxQueue};
use dataplane::rcu::{self, Publisher};
use dataplane::runtime::{self, pinning::control_cpu, signals, Workers};
use dataplane::worker::{
    ControlFrame, FromControl, LbWorker, Origin, Redirect, TxPath, WorkerStats,
};
use dataplane::{Pipeline, PipelineConfig, Snapshot};

pub use status::Shared;

/// Frames workers may queue for control before further ones are dropped (and counted).
const CONTROL_QUEUE: usize = 1024;
/// Frames each worker's inbound queue holds for nat connections it owns (mbufs of the pools).
const REDIRECT_QUEUE: usize = 1024;
/// How long `POST /-/reload` waits for its reload before answering 202 (still running).
const RELOAD_WAIT: Duration = Duration::from_secs(10);
/// How often the control loop wakes.
const TICK: Duration = Duration::from_millis(5);
/// On stop, how long the exception path stays up after the routes are withdrawn, so the
/// routing daemon's withdrawal reaches its peers before the kernel interface goes.
const WITHDRAW_GRACE: Duration = Duration::from_secs(1);
/// Frames from the workers (ARP replies, neighbour advertisements) control handles per loop:
/// 51,200 a second at most, far above what resolving next hops needs.
const FRAMES_PER_LOOP: usize = 256;
/// How often control compares the announce table with the routes it wants.
const ROUTE_CHECK: Duration = Duration::from_secs(2);

/// Why the appliance could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("DPDK: {0}")]
    Dpdk(#[from] dataplane::dpdk::DpdkError),
    /// Out of DPDK memory, or a refused MTU: with what to change.
    #[error(transparent)]
    Sizing(Box<crate::sizing::errors::SizingError>),
    #[error("forwarding state: {0}")]
    Build(#[from] forwarding::BuildError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// A hook to create virtual devices after EAL init and before the ports are opened (the demo).
pub type DeviceHook<'a> = &'a mut dyn FnMut(&Eal) -> Result<(), StartError>;

/// One interface's DPDK side, as control keeps it.
struct Iface {
    name: String,
    port: Port,
    pool: Mempool,
    /// Control's own tx queue on this port (ARP requests, neighbour solicitations); None when
    /// the device has no queue to spare, and worker 0 sends control's frames instead.
    control_tx: Option<TxQueue>,
    mac: [u8; 6],
    /// The exception path's tap, when the interface has one.
    kernel: Option<kernel::KernelPort>,
}

/// The appliance while it runs: the I/O around the [`Controller`], which decides.
pub struct Appliance {
    config_path: Option<PathBuf>,
    controller: Controller,
    eal: Eal,
    ifaces: Vec<Iface>,
    publisher: Publisher<Snapshot>,
    workers: Option<Workers>,
    to_control: Arc<ArrayQueue<ControlFrame>>,
    /// Control's frames for ports without a control tx queue (its own, the kernel's), sent by
    /// worker 0, which counts each where its origin says.
    via_worker: Arc<ArrayQueue<FromControl>>,
    /// The workers' inbound queues of redirected nat frames (empty without nat or with one
    /// worker): emptied once the workers stopped, while the pools are still there.
    redirect: Arc<[ArrayQueue<Mbuf>]>,
    health: Option<Scheduler>,
    health_rx: mpsc::Receiver<Change>,
    health_tx: mpsc::Sender<Change>,
    http: Option<HttpServer>,
    /// The lifecycle routes for root and the appliance's user (see `control::control_socket`).
    control_socket: Option<ControlSocket>,
    shared: Arc<Shared>,
    /// The origin of control's nanosecond clock (the exception path's token buckets).
    started: Instant,
    /// The VIP routes installed in `announce.table` now.
    routes: Vec<IpAddr>,
    /// The VIP routes the controller asked for last; the periodic check puts back what is
    /// missing (a failed add, a route the kernel dropped) and retries failed withdrawals.
    wanted_routes: Vec<IpAddr>,
    /// The last error of the route check, logged once until it changes.
    route_check_error: Option<String>,
}

impl Drop for Appliance {
    /// A start that fails after the launch drops a half-built appliance: its workers must stop
    /// before the ports and EAL they poll go (fields drop in declaration order, EAL first).
    fn drop(&mut self) {
        if let Some(w) = self.workers.take() {
            w.join();
        }
        self.free_handed_over();
    }
}

impl Appliance {
    /// Initialises DPDK, opens the ports, builds the first snapshot and starts the workers.
    pub fn start(
        config: Config,
        config_path: Option<PathBuf>,
        devices: Option<DeviceHook<'_>>,
    ) -> Result<Self, StartError> {
        let mut args = vec!["sluice".to_owned()];
        args.extend(config.dpdk.args.iter().cloned());
        args.extend(kernel::eal_args(&config.interfaces));
        let eal = Eal::init(&args)?;
        if let Some(hook) = devices {
            hook(&eal)?;
        }
        let workers_total: usize = config
            .interfaces
            .iter()
            .map(|i| usize::from(i.queues))
            .sum();
        let lcores = eal.worker_lcores();
        if lcores.len() < workers_total {
            return Err(StartError::Config(format!(
                "{workers_total} queues need {workers_total} worker lcores, but EAL has {} (give more cores with -l, one more than the queues for control)",
                lcores.len()
            )));
        }
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        if let Some(why) = crate::sizing::ordinary_shortfall(&config, &meminfo) {
            return Err(StartError::Config(why));
        }
        let tx_queues = u16::try_from(workers_total + 1).unwrap_or(u16::MAX);
        let mut ifaces = Vec::new();
        for (i, ic) in config.interfaces.iter().enumerate() {
            let pool =
                Mempool::with_default_buffers(&eal, &format!("sluice_pool_{i}"), config.dpdk.mbufs)
                    .map_err(|e| start_errors::pool(&config, i, e))?;
            let open = |tx| {
                Port::builder(&eal, &ic.device, &pool)
                    .queues(ic.queues, tx)
                    .mtu(ic.mtu)
                    .start()
            };
            // One tx queue per worker plus one for control; a device with exactly one per
            // worker (af_packet's single queue pair) still works, control then sends via worker 0.
            let (port, control_tx) = match open(tx_queues) {
                Ok(port) => {
                    let q = port.tx_queue(tx_queues - 1)?;
                    (port, Some(q))
                }
                Err(DpdkError::OutOfRange {
                    what: "tx queues",
                    max,
                    ..
                }) if max == u32::from(tx_queues - 1) => {
                    eprintln!(
                        "sluice: {}: {} has no tx queue to spare for control; worker 0 sends its ARP/ND requests",
                        ic.name, ic.device
                    );
                    let port = open(tx_queues - 1)
                        .map_err(|e| start_errors::port(&config, i, config_path.as_deref(), e))?;
                    (port, None)
                }
                Err(e) => return Err(start_errors::port(&config, i, config_path.as_deref(), e)),
            };
            let mac = port.mac()?;
            let kernel = match &ic.kernel {
                Some(k) => {
                    let workers = u16::try_from(workers_total).unwrap_or(u16::MAX);
                    let kp = kernel::KernelPort::open(&eal, i, ic, k, &pool, mac, workers)?;
                    eprintln!(
                        "sluice: {}: exception path to kernel interface {} (up to {} frames/s each way)",
                        ic.name, k.name, k.rate
                    );
                    Some(kp)
                }
                None => None,
            };
            ifaces.push(Iface {
                name: ic.name.clone(),
                port,
                pool,
                control_tx,
                mac,
                kernel,
            });
        }
        let ports: Vec<PortInfo> = ifaces
            .iter()
            .map(|i| PortInfo {
                port: i.port.id(),
                mac: i.mac,
                // The NIC fills the outer IPv4 checksum when it offers to; else software does.
                ipv4_checksum_offload: i.port.offloads().tx_ipv4_checksum(),
            })
            .collect();
        let flow_cfg = config.flows;
        // Connection tracking is allocated once, at start: a reload cannot add it.
        let nat = config.uses_nat();
        let (controller, built) = Controller::new(config, ports)?;
        let shared = Arc::new(Shared::new(
            controller.config(),
            controller.ids(),
            lcores[..workers_total].to_vec(),
        ));
        shared.set_tables(&built.tables);
        let (publisher, readers) = rcu::new(built.snapshot, workers_total);
        let to_control = Arc::new(ArrayQueue::new(CONTROL_QUEUE));
        let via_worker = Arc::new(ArrayQueue::new(CONTROL_QUEUE));
        let needs_via_worker = ifaces.iter().any(|i| i.control_tx.is_none());
        let tsc_hz = dataplane::worker::tsc_hz();
        // A nat reply may reach any worker: each owns its connections, the rest are handed over.
        let redirect = Redirect::queues(
            if nat && workers_total > 1 {
                workers_total
            } else {
                0
            },
            REDIRECT_QUEUE,
        );
        let workers_u16 = u16::try_from(workers_total).unwrap_or(u16::MAX);

        // Every worker: rx queue q of its interface, tx queue `w` of every port.
        let mut parts = Vec::new();
        let mut pairs = Vec::new();
        let mut readers = readers.into_iter();
        let mut w = 0u16;
        for (i, ic) in controller.config().interfaces.iter().enumerate() {
            for q in 0..ic.queues {
                let rx = ifaces[i].port.rx_queue(q)?;
                let own_tx = ifaces[i].port.tx_queue(w)?;
                let mut others = Vec::new();
                for (j, other) in ifaces.iter().enumerate() {
                    if j != i {
                        others.push(TxPath::new(other.port.tx_queue(w)?));
                    }
                }
                let Some(reader) = readers.next() else {
                    return Err(StartError::Config(
                        "internal: fewer RCU readers than workers".into(),
                    ));
                };
                let stats = Arc::clone(&shared.workers[usize::from(w)]);
                let kernel = match &ifaces[i].kernel {
                    Some(k) => Some(TxPath::new(k.port.tx_queue(w)?)),
                    None => None,
                };
                let defaults = PipelineConfig::default();
                parts.push(Mutex::new(Some(WorkerParts {
                    others,
                    kernel,
                    reader,
                    stats,
                    pipeline: PipelineConfig {
                        flows: flow_cfg,
                        nat,
                        worker: w,
                        workers: workers_u16,
                        exception_per_second: ic
                            .kernel
                            .as_ref()
                            .map_or(defaults.exception_per_second, |k| k.rate),
                        ..defaults
                    },
                })));
                pairs.push((rx, own_tx));
                w += 1;
            }
        }
        let parts_count = parts.len();
        let parts = Arc::new(parts);
        let queue = Arc::clone(&to_control);
        let from_control = needs_via_worker.then(|| Arc::clone(&via_worker));
        let inbound = Arc::clone(&redirect);
        let built = Arc::new(AtomicUsize::new(0));
        let built_by_workers = Arc::clone(&built);
        let workers = runtime::launch(&eal, pairs, move |ctx| {
            // The runtime's flag: set by shutdown, and by `Workers`' drop when start fails
            // after the launch, so a failed start never leaves workers spinning.
            let stop = ctx.stop_flag();
            let runtime::WorkerContext { index, rx, tx, .. } = ctx;
            let Some(p) = parts
                .get(index)
                .and_then(|m| m.lock().ok().and_then(|mut g| g.take()))
            else {
                return;
            };
            // Made here, on the worker's own core, so the flow table's pages are first
            // touched (and placed) on that core's NUMA node, not the control thread's.
            let pipeline = Pipeline::new(&p.pipeline);
            built_by_workers.fetch_add(1, Ordering::Release);
            let mut tx_paths = vec![TxPath::new(tx)];
            tx_paths.extend(p.others);
            let mut worker = LbWorker {
                rx,
                tx: tx_paths,
                kernel: p.kernel,
                pipeline,
                snapshot: p.reader,
                to_control: Arc::clone(&queue),
                from_control: if index == 0 {
                    from_control.clone()
                } else {
                    None
                },
                stats: p.stats,
                tsc_hz,
                redirect: (!inbound.is_empty()).then(|| Redirect {
                    queues: Arc::clone(&inbound),
                    index,
                }),
            };
            worker.run(move || stop.load(Ordering::Relaxed));
        })?;
        wait_built(&built, parts_count, BUILD_WAIT)?;

        let (health_tx, health_rx) = mpsc::channel();
        let targets = controller.health_targets();
        let mut app = Appliance {
            config_path,
            controller,
            eal,
            ifaces,
            publisher,
            workers: Some(workers),
            to_control,
            via_worker,
            redirect,
            health: None,
            health_rx,
            health_tx,
            http: None,
            control_socket: None,
            shared,
            started: Instant::now(),
            routes: Vec::new(),
            wanted_routes: Vec::new(),
            route_check_error: None,
        };
        app.start_health(targets)?;
        app.start_http()?;
        app.shared
            .epoch
            .store(app.publisher.epoch(), Ordering::Relaxed);
        Ok(app)
    }

    /// Frees what was handed to a worker that no longer runs (call once they all stopped): a
    /// nat frame handed to an owner that had already stopped counts as the owner's drop, a
    /// frame from the kernel worker 0 never sent as refused (`tx_full`).
    fn free_handed_over(&self) {
        Redirect::discard_stopped(&self.redirect, &self.shared.workers);
        while let Some(left) = self.via_worker.pop() {
            left.origin.count(false);
        }
    }

    /// Hands the checker its targets, starting it the first time there are any.
    fn start_health(&mut self, targets: Vec<Target>) -> Result<(), StartError> {
        if targets.is_empty() && self.health.is_none() {
            return Ok(());
        }
        if let Some(h) = &mut self.health {
            h.set_targets(targets);
            return Ok(());
        }
        let tx = self.health_tx.clone();
        let scheduler = Scheduler::start(
            targets,
            SchedulerOptions {
                core: control_cpu(&self.eal),
                ..SchedulerOptions::default()
            },
            move |c: &Change| {
                let _ = tx.send(c.clone());
            },
        )
        .map_err(|source| StartError::Io {
            what: "health checks".into(),
            source,
        })?;
        self.health = Some(scheduler);
        Ok(())
    }

    fn start_http(&mut self) -> Result<(), StartError> {
        let listen = self.controller.config().metrics.listen;
        let policy = self.controller.config().metrics.lifecycle;
        let metrics = Arc::clone(&self.shared);
        let state = Arc::clone(&self.shared);
        let router = Router::new()
            .get("/metrics", move |_| {
                Response::new(
                    200,
                    control::metrics::CONTENT_TYPE,
                    metrics.render_metrics(),
                )
            })
            .get("/healthz", |_| Response::text(200, "ok\n"))
            .get("/state", move |_| Response::json(200, state.render_state()));
        let router = lifecycle_routes(router, &self.shared, policy);
        let server = HttpServer::bind(
            listen,
            router,
            ServerOptions {
                core: control_cpu(&self.eal),
                ..ServerOptions::default()
            },
        )
        .map_err(|source| StartError::Io {
            what: format!("metrics listener on {listen}"),
            source,
        })?;
        eprintln!("sluice: metrics on http://{}/metrics", server.local_addr());
        self.http = Some(server);
        // The operator's way in whatever the policy says; its own check is the peer's uid.
        match ControlSocket::bind(
            listen,
            self.config_path.as_deref(),
            lifecycle_routes(Router::new(), &self.shared, Lifecycle::Any),
            control_cpu(&self.eal),
        ) {
            Ok(sock) => {
                eprintln!("sluice: control socket @{}", sock.name());
                self.control_socket = Some(sock);
            }
            // Another appliance in this namespace started from the same file with port 0: it
            // keeps the name, this one is reached over HTTP only.
            Err(e) => eprintln!(
                "sluice: warning: no control socket @{} ({e}); sluice reload/drain will use HTTP, as metrics.lifecycle allows",
                control::control_socket::name(listen, self.config_path.as_deref())
            ),
        }
        Ok(())
    }

    /// Runs control until SIGINT/SIGTERM (or `should_stop`), then stops everything cleanly.
    pub fn run(&mut self, mut tick: impl FnMut(&Appliance) -> bool) {
        let mut last_status = Instant::now() - Duration::from_secs(10);
        let mut last_route_check = Instant::now();
        // Once stopping: when the loop ends. The routes go first; the loop runs on for
        // WITHDRAW_GRACE so the routing daemon's withdrawal leaves through the exception path
        // (which only this loop drains) while the workers still forward what is in flight.
        let mut stop_at: Option<Instant> = None;
        loop {
            match stop_at {
                None if signals::stop_requested() || !tick(self) => {
                    self.feed(Event::Drain(true));
                    let announcing = self.controller.config().announce.is_some();
                    let grace = if announcing {
                        WITHDRAW_GRACE
                    } else {
                        Duration::ZERO
                    };
                    stop_at = Some(Instant::now() + grace);
                }
                Some(t) if Instant::now() >= t => break,
                _ => {}
            }
            // One reload at a time: a request during one waits (and coalesces) until it ends.
            let idle = stop_at.is_none() && !self.controller.reload_pending();
            if idle && signals::take_reload_request() {
                self.shared.reloads.started();
                notify::get().reloading();
                let loaded = match &self.config_path {
                    Some(path) => load_warning(path).map_err(|e| e.to_string()),
                    None => Err(
                        "no config file to reload (sluice demo builds its config in memory)".into(),
                    ),
                };
                self.feed(Event::Reload(loaded));
            }
            // A health change only says "look again": the checker holds the state.
            let mut health_changed = false;
            while self.health_rx.try_recv().is_ok() {
                health_changed = true;
            }
            if health_changed {
                let statuses = self
                    .health
                    .as_ref()
                    .map(Scheduler::statuses)
                    .unwrap_or_default();
                self.feed(Event::Health(statuses));
            }
            // At most a loop's share: a flood of ARP replies waits in the bounded queue (and
            // beyond it is dropped, counted), and never keeps the loop from its other work.
            let queue = Arc::clone(&self.to_control);
            take_at_most(&queue, FRAMES_PER_LOOP, |frame| {
                self.feed(Event::Frame(frame.data()))
            });
            self.forward_from_kernel();
            match self.shared.drain_request.swap(0, Ordering::Relaxed) {
                1 => self.feed(Event::Drain(true)),
                2 if stop_at.is_none() => self.feed(Event::Drain(false)),
                _ => {}
            }
            self.shared
                .draining
                .store(self.controller.draining(), Ordering::Relaxed);
            self.feed(Event::Tick);
            self.publisher.reclaim();
            let now = Instant::now();
            if now.duration_since(last_status) >= Duration::from_millis(200) {
                last_status = now;
                self.refresh_status();
            }
            if stop_at.is_none() && now.duration_since(last_route_check) >= ROUTE_CHECK {
                last_route_check = now;
                self.check_routes();
            }
            std::thread::sleep(TICK);
        }
    }

    /// Hands one event to the controller and carries out what it answers.
    fn feed(&mut self, event: Event<'_>) {
        let actions = self.controller.handle(event, Instant::now());
        self.execute(actions);
    }

    fn execute(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Publish(built) => {
                    self.shared.set_tables(&built.tables);
                    self.shared.retain_ids(self.controller.ids());
                    let epoch = self.publisher.publish(built.snapshot);
                    self.shared.epoch.store(epoch, Ordering::Relaxed);
                }
                Action::SetHealthTargets(targets) => {
                    let result = self.start_health(targets).map_err(|e| e.to_string());
                    self.feed(Event::HealthTargetsSet(result));
                }
                Action::Send { iface, frame } => self.send_frame(iface, &frame),
                Action::ReloadDone(result) => self.reload_done(result),
                Action::Announce(vips) => self.announce(&vips),
                Action::Log(line) => eprintln!("sluice: {line}"),
            }
        }
    }

    /// The announce table and the kernel interface the routes go through, if announcing.
    fn announce_target(&self) -> Option<(u32, String)> {
        let cfg = self.controller.config();
        let table = cfg.announce.as_ref()?.table;
        let dev = cfg.interfaces.iter().find_map(|i| i.kernel.as_ref())?;
        Some((table, dev.name.clone()))
    }

    /// Installs exactly `vips` as routes in the announce table (through the first kernel
    /// interface), for the routing daemon to advertise.
    fn announce(&mut self, vips: &[IpAddr]) {
        self.wanted_routes = vips.to_vec();
        let Some((table, dev)) = self.announce_target() else {
            return;
        };
        let (installed, errors) = kernel::set_routes(table, &dev, &self.routes, vips);
        for e in errors {
            eprintln!("sluice: announce: {e}");
        }
        if installed != self.routes {
            eprintln!(
                "sluice: announced in table {table}: {}",
                vips_text(&installed)
            );
        }
        self.routes = installed;
        self.shared.set_announced(&self.routes);
    }

    /// Compares the announce table with what the controller wants and repairs the difference:
    /// an add or withdrawal that failed is retried, and a route the kernel dropped (the kernel
    /// interface went down and up, someone ran `ip route del`) goes back, so a VIP is never
    /// left unannounced, or announced while it should not be, until the next health change.
    fn check_routes(&mut self) {
        let Some((table, dev)) = self.announce_target() else {
            return;
        };
        let present = match kernel::routes_in(table, &dev) {
            Ok(present) => {
                self.route_check_error = None;
                present
            }
            Err(e) => {
                let e = e.to_string();
                if self.route_check_error.as_ref() != Some(&e) {
                    eprintln!("sluice: announce: cannot read table {table}: {e}");
                    self.route_check_error = Some(e);
                }
                return;
            }
        };
        let mut wanted = self.wanted_routes.clone();
        wanted.sort();
        if present == wanted {
            if self.routes != present {
                self.routes = present;
                self.shared.set_announced(&self.routes);
            }
            return;
        }
        eprintln!(
            "sluice: announce: table {table} holds {}, wanted {}: repairing",
            vips_text(&present),
            vips_text(&wanted)
        );
        self.routes = present;
        self.announce(&wanted);
    }

    fn reload_done(&mut self, result: Result<(), String>) {
        let file = self
            .config_path
            .as_deref()
            .map_or_else(|| "the config".to_owned(), |p| p.display().to_string());
        let outcome = match result {
            Ok(()) => {
                let epoch = self.publisher.epoch();
                self.shared.reloads_success.fetch_add(1, Ordering::Relaxed);
                self.shared
                    .set_config(self.controller.config(), self.controller.ids());
                eprintln!("sluice: reloaded {file} (epoch {epoch})");
                Ok(epoch)
            }
            Err(msg) => {
                self.shared.reloads_failure.fetch_add(1, Ordering::Relaxed);
                eprintln!("sluice: reload of {file} refused, nothing changed:\n{msg}");
                Err(msg)
            }
        };
        notify::get().reloaded(&outcome);
        self.shared.reloads.finished(outcome);
    }

    /// What the kernel interfaces sent, out of their data ports.
    fn forward_from_kernel(&mut self) {
        let now_ns = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        for (i, iface) in self.ifaces.iter_mut().enumerate() {
            let Some(k) = iface.kernel.as_mut() else {
                continue;
            };
            let Some(stats) = self.shared.from_kernel.get(i) else {
                continue;
            };
            let port = iface.port.id();
            let control_tx = &mut iface.control_tx;
            let via_worker = &self.via_worker;
            k.drain(now_ns, stats, &mut |frame| match control_tx.as_mut() {
                Some(q) => {
                    let mut one = Burst::<1>::new();
                    if one.push(frame).is_ok() && q.tx_burst(&mut one) == 1 {
                        kernel::Handed::Sent
                    } else {
                        kernel::Handed::Refused
                    }
                }
                None => {
                    let item = FromControl {
                        port,
                        frame,
                        origin: Origin::Kernel(Arc::clone(stats)),
                    };
                    // Refused, the item (and its mbuf) is freed here.
                    match via_worker.push(item) {
                        Ok(()) => kernel::Handed::Queued,
                        Err(_) => kernel::Handed::Refused,
                    }
                }
            });
        }
    }

    fn send_frame(&mut self, i: usize, bytes: &[u8]) {
        let Some(iface) = self.ifaces.get_mut(i) else {
            return;
        };
        let Ok(mut m) = iface.pool.alloc() else {
            return;
        };
        if m.copy_from_slice(bytes).is_err() {
            return;
        }
        let Some(control_tx) = iface.control_tx.as_mut() else {
            // A full hand-over queue drops the request; the next one is due soon anyway.
            let _ = self.via_worker.push(FromControl {
                port: iface.port.id(),
                frame: m,
                origin: Origin::Control,
            });
            return;
        };
        let mut burst = Burst::<1>::new();
        if burst.push(m).is_ok() {
            control_tx.tx_burst(&mut burst);
        }
        // Anything the NIC did not take is freed here with the burst.
    }

    fn refresh_status(&self) {
        let free: Vec<(String, u64)> = self
            .ifaces
            .iter()
            .map(|i| (i.name.clone(), u64::from(i.pool.available())))
            .collect();
        // A port whose driver cannot say this time keeps its last figures: counters never go back.
        let before = self.shared.port_rx_dropped();
        let dropped = self
            .ifaces
            .iter()
            .map(|i| match i.port.stats() {
                Ok(s) => rx_drops(&i.name, &s),
                Err(_) => before
                    .iter()
                    .find(|d| d.port == i.name)
                    .cloned()
                    .unwrap_or_else(|| PortRxDrops {
                        port: i.name.clone(),
                        ..PortRxDrops::default()
                    }),
            })
            .collect();
        let c = &self.controller;
        // The checker's own view, probe counts and streaks included: the controller keeps
        // only the report of the last state change.
        let health = self
            .health
            .as_ref()
            .map(Scheduler::statuses)
            .unwrap_or_default();
        self.shared
            .set_status((free, dropped), health, c.down(), c.neighbours());
    }

    /// Stops workers, frees every mbuf, stops and closes the ports. Returns how many workers failed.
    pub fn shutdown(mut self) -> usize {
        // The control loop has ended: no reload will start. A `POST /-/reload` still waiting
        // gets that answer now, rather than 202 after 10 s while the HTTP threads' stop waits.
        self.shared
            .reloads
            .close("sluice is stopping (SIGTERM/SIGINT): no reload will run");
        let failed = self.workers.take().map(Workers::join).unwrap_or(0);
        // At once, so what the HTTP threads still render adds up.
        self.free_handed_over();
        if let Some(h) = self.health.take() {
            h.stop();
        }
        if let Some(s) = self.http.take() {
            s.stop();
        }
        drop(self.control_socket.take());
        while self.to_control.pop().is_some() {}
        self.publisher.reclaim();
        failed
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Where the metrics listener is bound (the real port when the config said 0).
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.http.as_ref().map(HttpServer::local_addr)
    }

    pub fn eal(&self) -> &Eal {
        &self.eal
    }

    /// The MAC of each interface's port, in config order.
    pub fn port_macs(&self) -> Vec<[u8; 6]> {
        self.ifaces.iter().map(|i| i.mac).collect()
    }
}

/// `POST /-/drain` and `/-/undrain`: asks control and waits (briefly) until it has acted.
/// VIPs for the log: space-separated, or "nothing".
fn vips_text(vips: &[IpAddr]) -> String {
    if vips.is_empty() {
        return "nothing".to_owned();
    }
    let text: Vec<String> = vips.iter().map(IpAddr::to_string).collect();
    text.join(" ")
}

/// The lifecycle routes (reload, drain, undrain) on `router`, behind `policy`'s gate: the
/// listener's policy over HTTP, `any` on the control socket (which checks the peer itself).
fn lifecycle_routes(router: Router, shared: &Arc<Shared>, policy: Lifecycle) -> Router {
    let reloads = Arc::clone(shared);
    let drain = Arc::clone(shared);
    let undrain = Arc::clone(shared);
    router
        .post(
            "/-/reload",
            lifecycle::gate(policy, move |_| {
                // Answers with the outcome, as Prometheus does: 200 applied, 500 refused.
                match reloads.reloads.request_and_wait(RELOAD_WAIT) {
                    Some(Ok(epoch)) => Response::text(200, format!("reloaded (epoch {epoch})\n")),
                    Some(Err(msg)) => {
                        Response::text(500, format!("reload refused, nothing changed:\n{msg}\n"))
                    }
                    None => Response::text(202, "reload requested, still running\n"),
                }
            }),
        )
        .post(
            "/-/drain",
            lifecycle::gate(policy, move |_| drain_request(&drain, true)),
        )
        .post(
            "/-/undrain",
            lifecycle::gate(policy, move |_| drain_request(&undrain, false)),
        )
}

fn drain_request(shared: &Shared, on: bool) -> Response {
    shared
        .drain_request
        .store(if on { 1 } else { 2 }, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if shared.draining.load(Ordering::Relaxed) == on {
            return Response::text(
                200,
                if on {
                    "draining: every VIP withdrawn; existing flows keep forwarding\n"
                } else {
                    "drain ended: VIPs with a usable backend are announced\n"
                },
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Response::text(202, "requested; control has not acted yet\n")
}

struct WorkerParts {
    others: Vec<TxPath>,
    kernel: Option<TxPath>,
    reader: rcu::Reader<Snapshot>,
    stats: Arc<WorkerStats>,
    /// What the worker builds its pipeline from, on its own core.
    pipeline: PipelineConfig,
}

/// How long the workers may take to allocate and fill their flow tables (a 16M-entry table
/// is about a GiB to fault in).
const BUILD_WAIT: Duration = Duration::from_secs(60);

/// Waits until all `workers` have built their pipelines, so nothing reports the appliance
/// ready (or announces a VIP) while a worker is still faulting in its flow table.
fn wait_built(built: &AtomicUsize, workers: usize, within: Duration) -> Result<(), StartError> {
    let deadline = Instant::now() + within;
    loop {
        let n = built.load(Ordering::Acquire);
        if n >= workers {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(StartError::Config(format!(
                "{n} of {workers} workers built their flow tables within {} s",
                within.as_secs_f64()
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Loads and validates the config at `path`, printing its warnings: the config is used anyway,
/// and only `sluice check` would otherwise say them.
fn load_warning(path: &Path) -> Result<Config, config::ConfigErrors> {
    let checked = config::check_file(path);
    for warning in &checked.warnings {
        eprintln!("{warning}");
    }
    checked.result
}

/// Loads the config for `sluice run`, printing every error and warning.
pub fn load(path: &Path) -> Option<Config> {
    match load_warning(path) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("{e}");
            None
        }
    }
}

/// `sluice run`: the appliance until SIGINT/SIGTERM; exit 0 when it stopped cleanly.
pub fn run_file(path: &Path) -> std::process::ExitCode {
    let Some(cfg) = load(path) else {
        return std::process::ExitCode::from(1);
    };
    if let Err(e) = signals::install() {
        eprintln!("sluice: cannot install signal handlers: {e}");
        return std::process::ExitCode::from(1);
    }
    let mut app = match Appliance::start(cfg, Some(path.to_owned()), None) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sluice: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    eprintln!(
        "sluice: running (epoch {}); SIGHUP reloads, SIGTERM stops",
        app.publisher.epoch()
    );
    // Ports up, first snapshot published, HTTP listening: systemd may start what needs us.
    notify::get().ready(&format!("running (epoch {})", app.publisher.epoch()));
    app.run(|_| true);
    eprintln!("sluice: stopping");
    notify::get().stopping();
    let failed = app.shutdown();
    if failed > 0 {
        eprintln!("sluice: {failed} worker(s) failed");
        return std::process::ExitCode::from(1);
    }
    eprintln!("sluice: stopped cleanly");
    std::process::ExitCode::SUCCESS
}

/// Pops at most `n` items off `queue` into `f`; returns how many.
fn take_at_most<T>(queue: &ArrayQueue<T>, n: usize, mut f: impl FnMut(T)) -> usize {
    let mut taken = 0;
    while taken < n {
        let Some(item) = queue.pop() else {
            break;
        };
        f(item);
        taken += 1;
    }
    taken
}

/// What `sluice_port_rx_dropped_total` exports of a port's driver statistics.
fn rx_drops(port: &str, s: &PortStats) -> PortRxDrops {
    PortRxDrops {
        port: port.to_string(),
        missed: s.rx_missed,
        no_mbuf: s.rx_no_mbuf,
        errors: s.rx_errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_takes_at_most_its_share_of_a_frame_flood() {
        let q = ArrayQueue::new(CONTROL_QUEUE);
        for i in 0..CONTROL_QUEUE {
            q.push(i).unwrap();
        }
        let mut seen = Vec::new();
        assert_eq!(take_at_most(&q, FRAMES_PER_LOOP, |i| seen.push(i)), 256);
        assert_eq!(seen, (0..256).collect::<Vec<_>>(), "oldest first");
        assert_eq!(q.len(), CONTROL_QUEUE - 256, "the rest waits");
        assert_eq!(take_at_most(&q, 10_000, |_| ()), CONTROL_QUEUE - 256);
        assert_eq!(take_at_most(&q, 5, |_| ()), 0);
    }

    #[test]
    fn each_nic_drop_reason_comes_from_its_own_driver_counter() {
        let s = PortStats {
            rx_missed: 1,
            rx_no_mbuf: 2,
            rx_errors: 3,
            tx_errors: 4,
            ..PortStats::default()
        };
        let d = rx_drops("uplink", &s);
        assert_eq!(
            (d.port.as_str(), d.missed, d.no_mbuf, d.errors),
            ("uplink", 1, 2, 3)
        );
    }

    #[test]
    fn start_up_waits_for_every_worker_to_build_its_table() {
        let built = Arc::new(AtomicUsize::new(0));
        let workers = Arc::clone(&built);
        let late = std::thread::spawn(move || {
            for _ in 0..2 {
                std::thread::sleep(Duration::from_millis(20));
                workers.fetch_add(1, Ordering::Release);
            }
        });
        let start = Instant::now();
        assert!(wait_built(&built, 2, Duration::from_secs(10)).is_ok());
        assert!(
            start.elapsed() >= Duration::from_millis(40),
            "returned before the second"
        );
        late.join().expect("joined");
        // One worker never reports: an error naming how many did, after the limit.
        let e = wait_built(&AtomicUsize::new(1), 2, Duration::from_millis(30))
            .expect_err("times out")
            .to_string();
        assert!(e.contains("1 of 2 workers"), "{e}");
    }
}
