//! Runs a bench: the testbed, then for every row × offload mode × client,
//! `reps` repetitions of kernel server then fast server (A B A B), each a
//! fresh server pinned to the server core and a client pinned to the
//! client core; then the medians, the table, JSON, CSV and the chart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::background::BackgroundThreads;
use super::noise_floor::{self, CoreNoise};
use super::plan::{
    cases, Case, CaseKind, CaseParams, Client, OffloadChoice, Offloads, Qdisc, Server,
    SHORT_CLIENT_ADDRS,
};
use super::process::{in_ns_pinned, slab_bytes, vm_rss_bytes, Proc, INTERRUPTED};
use super::results::{
    format_metric, render_table, summarize, write_csv, Measurement, RunRecord, Status, Summary,
    SummaryRow,
};
use super::testbed::Testbed;
use crate::load::{LoadReport, Workload};

/// How long the noise floor is measured on each of the two cores.
const NOISE_PROBE: Duration = Duration::from_secs(1);

/// What to run and where to write it.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub kinds: Vec<CaseKind>,
    pub params: CaseParams,
    pub reps: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub offloads: OffloadChoice,
    pub qdisc: Qdisc,
    /// Both servers poll without sleeping (see `xdp-tcp bench --busy-poll`).
    pub busy_poll: bool,
    pub out_dir: PathBuf,
    pub server_core: usize,
    pub client_core: usize,
    /// The chart's title and the table's first line.
    pub title: String,
}

/// What a finished bench produced.
#[derive(Debug)]
pub struct BenchOutcome {
    pub table: String,
    pub runs: Vec<RunRecord>,
    pub summaries: Vec<Summary>,
    pub chart: PathBuf,
    pub files: Vec<PathBuf>,
}

/// The machine and the settings, stated with every result.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    pub title: String,
    pub started: String,
    pub cpu: String,
    pub cpus: usize,
    pub kernel: String,
    pub memory_gib: f64,
    pub repetitions: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub server_core: usize,
    pub client_core: usize,
    pub offloads: String,
    pub qdisc: String,
    pub busy_poll: bool,
    pub testbed: String,
    /// Background work of the machine that shows in latency tails
    /// (see `bench::background`).
    pub background: Vec<String>,
    /// How often a thread spinning on the server's and the client's core
    /// lost it, measured before the runs (see `bench::noise_floor`).
    pub noise_floor: Vec<CoreNoise>,
}

impl Meta {
    fn new(cfg: &BenchConfig, background: &BackgroundThreads) -> Meta {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            .unwrap_or_else(|| "unknown CPU".into());
        let mem = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            })
            .unwrap_or(0.0);
        Meta {
            title: cfg.title.clone(),
            started: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            memory_gib: (mem / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            repetitions: cfg.reps,
            duration_s: cfg.duration.as_secs_f64(),
            warmup_s: cfg.warmup.as_secs_f64(),
            server_core: cfg.server_core,
            client_core: cfg.client_core,
            offloads: format!("{:?}", cfg.offloads).to_lowercase(),
            qdisc: cfg.qdisc.name().into(),
            busy_poll: cfg.busy_poll,
            testbed: format!(
                "veth pair in two network namespaces, MTU 1500, 1 queue, qdisc {} on both ends; \
                 fast server: native XDP, copy mode, 1 worker {}; kernel server: 1 thread {}",
                cfg.qdisc.name(),
                if cfg.busy_poll {
                    "busy-polling (never sleeps)"
                } else {
                    "polling 50 us before it sleeps"
                },
                if cfg.busy_poll {
                    "busy-polling epoll (zero timeout, never sleeps)"
                } else {
                    "in epoll"
                },
            ),
            background: background.notes(),
            noise_floor: [cfg.server_core, cfg.client_core]
                .into_iter()
                .filter_map(|core| noise_floor::measure(core, NOISE_PROBE))
                .collect(),
        }
    }

    fn header(&self) -> String {
        let mut background: String = self.background.iter().map(|n| format!("{n}\n")).collect();
        if !self.noise_floor.is_empty() {
            let cores: Vec<String> = self.noise_floor.iter().map(CoreNoise::describe).collect();
            background.push_str(&format!(
                "noise floor (a thread spinning {:.0} s on each core before the runs lost it): {}\n",
                NOISE_PROBE.as_secs_f64(),
                cores.join("; ")
            ));
        }
        format!(
            "{}\nmachine: {} ({} CPUs, {} GiB), Linux {}\n{}\nserver on core {}, client on core {}; \
             {} repetition(s) of {:.1} s after {:.1} s warm-up per cell; medians; kernel and fast \
             server alternate (A B A B)\n{}",
            self.title,
            self.cpu,
            self.cpus,
            self.memory_gib,
            self.kernel,
            self.testbed,
            self.server_core,
            self.client_core,
            self.repetitions,
            self.duration_s,
            self.warmup_s,
            background
        )
    }
}

/// What this build and this machine can run (probed once, so a missing
/// client or server app is reported as n/a instead of failing each run).
#[derive(Debug, Clone, Default)]
struct Abilities {
    kernel_client: Option<String>,
    fast_client: Option<String>,
    wrk: Option<String>,
    /// Per kernel-serve app: None when available, else why not.
    kernel_apps: HashMap<&'static str, Option<String>>,
}

/// `exe SUB -h` (the short help: one line per flag, choices as
/// `[possible values: a, b]`), when it succeeds.
fn help_of(exe: &Path, sub: &str) -> Option<String> {
    let out = Command::new(exe).args([sub, "-h"]).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The choices clap lists for `flag` in a short help text: None when the
/// flag is not there, empty when it lists none.
fn possible_values(help: &str, flag: &str) -> Option<Vec<String>> {
    // clap puts the help on the flag's line or, when the help is wide, on
    // the lines below it (up to the next flag).
    let mut lines = help
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(&format!("{flag} ")));
    let first = lines.next()?;
    let text: String = std::iter::once(first)
        .chain(lines.take_while(|l| !l.trim_start().starts_with('-')))
        .collect::<Vec<_>>()
        .join(" ");
    Some(
        text.split("possible values:")
            .nth(1)
            .and_then(|s| s.split(']').next())
            .map(|s| s.split(',').map(|v| v.trim().to_owned()).collect())
            .unwrap_or_default(),
    )
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

impl Abilities {
    fn probe(exe: &Path) -> Abilities {
        let stacks = help_of(exe, "load").and_then(|h| possible_values(&h, "--stack"));
        let client = |name: &str| match &stacks {
            None => Some("no `xdp-tcp load` in this build yet".to_owned()),
            Some(v) if v.iter().any(|s| s == name) => None,
            Some(_) => Some(format!(
                "`xdp-tcp load` has no --stack {name} in this build yet"
            )),
        };
        let kernel_client = client("kernel");
        let fast_client = client("fast");
        let wrk = (!on_path("wrk")).then(|| "wrk is not installed (apt-get install wrk)".into());
        let kernel_apps = kernel_apps_from_help(&help_of(exe, "kernel-serve").unwrap_or_default());
        Abilities {
            kernel_client,
            fast_client,
            wrk,
            kernel_apps,
        }
    }

    /// Why the cell cannot run, if it cannot.
    fn missing(&self, case: &Case, client: Client, server: Server) -> Option<String> {
        let c = match client {
            Client::Kernel => &self.kernel_client,
            Client::Fast => &self.fast_client,
            Client::Wrk => &self.wrk,
        };
        if let Some(why) = c {
            return Some(why.clone());
        }
        if server == Server::Kernel {
            if let Some(Some(why)) = self.kernel_apps.get(case.server_app()) {
                return Some(why.clone());
            }
        }
        None
    }
}

/// Which server apps `kernel-serve -h` offers: None when available,
/// else why not. A build whose only app is `http` lists no choices.
fn kernel_apps_from_help(help: &str) -> HashMap<&'static str, Option<String>> {
    let values = possible_values(help, "--app");
    ["echo", "discard", "source", "http"]
        .into_iter()
        .map(|app| {
            let ok = match &values {
                Some(v) if v.is_empty() => app == "http",
                Some(v) => v.iter().any(|x| x == app),
                None => false,
            };
            (
                app,
                (!ok).then(|| format!("kernel-serve has no --app {app} in this build yet")),
            )
        })
        .collect()
}

/// Extra client addresses for `idle` idle connections: one per 20 000
/// connections (an address has about 28 000 ephemeral ports).
pub fn client_addrs_for(idle: usize) -> usize {
    idle.div_ceil(20_000).min(252)
}

fn secs_arg(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

struct Runner<'a> {
    cfg: &'a BenchConfig,
    exe: PathBuf,
    tb: Testbed,
    abilities: Abilities,
    stop: &'a AtomicBool,
    raw_dir: PathBuf,
    port: u16,
    bar: ProgressBar,
    /// DAMON's threads, whose CPU time every run records.
    background: BackgroundThreads,
}

impl Runner<'_> {
    fn interrupted(&self) -> Result<(), String> {
        if self.stop.load(Ordering::Relaxed) {
            Err(INTERRUPTED.into())
        } else {
            Ok(())
        }
    }

    fn server_cmd(&self, case: &Case, server: Server, port: u16) -> Command {
        let mut c = in_ns_pinned(
            &self.tb.server_ns,
            self.cfg.server_core,
            &self.exe.to_string_lossy(),
        );
        let ip = self.tb.server_ip.to_string();
        let port = port.to_string();
        match server {
            Server::Kernel => {
                c.args(["kernel-serve", "--addr", &ip, "--port", &port]);
                c.args(["--app", case.server_app(), "--threads", "1"]);
                if self.cfg.busy_poll {
                    c.arg("--busy-poll");
                }
            }
            Server::Fast => {
                c.args(["serve", "--iface", &self.tb.server_if, "--addr", &ip]);
                c.args(["--port", &port, "--app", case.server_app()]);
                c.args([
                    "--workers",
                    "1",
                    "--cores",
                    &self.cfg.server_core.to_string(),
                ]);
                if self.cfg.busy_poll {
                    c.arg("--busy-poll");
                }
            }
        }
        if case.workload == Workload::BulkRecv {
            // The source sends "forever": longer than any run.
            c.args(["--bytes", "1000G"]);
        }
        c
    }

    fn load_cmd(
        &self,
        case: &Case,
        client: Client,
        port: u16,
        rate: Option<f64>,
        json: &Path,
    ) -> Command {
        let mut c = in_ns_pinned(
            &self.tb.client_ns,
            self.cfg.client_core,
            &self.exe.to_string_lossy(),
        );
        c.args(["load", "--stack", client.name()]);
        c.arg("--target")
            .arg(format!("{}:{port}", self.tb.server_ip))
            .args(["--workload", case.workload.name()])
            .arg("--connections")
            .arg(case.connections.to_string())
            .arg("--duration")
            .arg(secs_arg(case.measured(self.cfg.duration)))
            .arg("--warmup")
            .arg(secs_arg(self.cfg.warmup))
            .arg("--json")
            .arg(json);
        if let Some(r) = rate {
            c.arg("--rate").arg(format!("{r:.0}"));
        }
        if case.idle_connections > 0 {
            c.arg("--idle-connections")
                .arg(case.idle_connections.to_string());
        }
        if case.idle_connections > 0 || case.workload == Workload::Short {
            for a in &self.tb.client_addrs {
                c.arg("--source-addr").arg(a.to_string());
            }
        }
        if client == Client::Fast {
            c.args(["--iface", &self.tb.client_if])
                .arg("--addr")
                .arg(self.tb.client_ip.to_string())
                .arg("--cores")
                .arg(self.cfg.client_core.to_string());
        }
        c
    }

    fn wrk_cmd(&self, case: &Case, port: u16, seconds: u64, latency: bool) -> Command {
        let mut c = in_ns_pinned(&self.tb.client_ns, self.cfg.client_core, "wrk");
        c.args(["-t1", "--timeout", "5s"])
            .arg(format!("-c{}", case.connections.max(1)))
            .arg(format!("-d{seconds}s"));
        if latency {
            c.arg("--latency");
        }
        c.arg(format!("http://{}:{port}/", self.tb.server_ip));
        c
    }

    /// One run. `Err` only when interrupted; every other failure is in
    /// the record.
    fn run_one(
        &mut self,
        case: &Case,
        client: Client,
        server: Server,
        offloads: Offloads,
        rep: usize,
        rate: Option<f64>,
    ) -> Result<RunRecord, String> {
        let mut rec = RunRecord::new(case, client, server, offloads, rep);
        rec.rate = rate;
        if let Some(why) = self.abilities.missing(case, client, server) {
            rec.not_available(&why);
            return Ok(rec);
        }
        if case.lower_is_better() && rate.is_none() {
            rec.not_available("needs the kernel server's rpc rate with this client");
            return Ok(rec);
        }
        match self.measure(case, client, server, offloads, rate, &mut rec) {
            Ok(()) => {}
            Err(e) if e == INTERRUPTED => return Err(e),
            Err(e) => rec.failed(&e),
        }
        Ok(rec)
    }

    fn measure(
        &mut self,
        case: &Case,
        client: Client,
        server: Server,
        offloads: Offloads,
        rate: Option<f64>,
        rec: &mut RunRecord,
    ) -> Result<(), String> {
        let (client_level, server_level) = offloads.levels(client);
        self.tb.set_offloads(client_level, server_level)?;
        self.port = self.port.wrapping_add(1).max(20_000);
        let port = self.port;
        let run_name = format!(
            "{}-{}-{}-{}-offl-{}-r{}",
            rec.case, client, server, port, offloads, rec.repetition
        );
        let mut srv = Proc::spawn(
            &format!("{server} server"),
            self.server_cmd(case, server, port),
        )?;
        srv.wait_for_line("ready", Duration::from_secs(30), self.stop)?;
        rec.client_if_offloads = Testbed::offloads_in_force(&self.tb.client_ns, &self.tb.client_if);
        rec.server_if_offloads = Testbed::offloads_in_force(&self.tb.server_ns, &self.tb.server_if);
        let rss_before = vm_rss_bytes(srv.pid());
        let slab_before = slab_bytes();
        let drops_before = self.tb.veth_tx_dropped();
        let budget = self.cfg.warmup
            + case.measured(self.cfg.duration)
            + Duration::from_secs(30 + case.idle_connections as u64 / 1000);
        let mut client_phase = || -> Result<Measurement, String> {
            match client {
                Client::Wrk => {
                    // wrk runs whole seconds: at least the warm-up asked for.
                    let warm = self.cfg.warmup.as_secs_f64().ceil() as u64;
                    if warm > 0 {
                        let mut w =
                            Proc::spawn("wrk warm-up", self.wrk_cmd(case, port, warm, false))?;
                        w.wait(budget, self.stop)?;
                    }
                    let secs = self.cfg.duration.as_secs().max(1);
                    let mut w = Proc::spawn("wrk", self.wrk_cmd(case, port, secs, true))?;
                    let status = w.wait(budget, self.stop)?;
                    let out = w.stdout_so_far();
                    let _ = std::fs::write(self.raw_dir.join(format!("{run_name}.wrk.txt")), &out);
                    if !status.success() {
                        return Err(format!("wrk exited with {status}{}", w.last_words()));
                    }
                    super::wrk::parse(&out)
                }
                Client::Kernel | Client::Fast => {
                    let json = self.raw_dir.join(format!("{run_name}.json"));
                    let mut c = Proc::spawn(
                        &format!("{client} client"),
                        self.load_cmd(case, client, port, rate, &json),
                    )?;
                    if case.idle_connections > 0 {
                        c.wait_for_line("idle-ready", budget, self.stop)?;
                        let n = case.idle_connections as f64;
                        if let (Some(a), Some(b)) = (rss_before, vm_rss_bytes(srv.pid())) {
                            rec.server_rss_per_idle_bytes = Some((b as f64 - a as f64) / n);
                        }
                        if let (Some(a), Some(b)) = (slab_before, slab_bytes()) {
                            rec.slab_per_idle_bytes = Some((b as f64 - a as f64) / n);
                        }
                    }
                    let status = c.wait(budget, self.stop)?;
                    if !status.success() {
                        return Err(format!(
                            "the {client} client exited with {status}{}",
                            c.last_words()
                        ));
                    }
                    let text = std::fs::read_to_string(&json).map_err(|e| {
                        format!("the client wrote no report {}: {e}", json.display())
                    })?;
                    let report: LoadReport = serde_json::from_str(&text).map_err(|e| {
                        format!("the client's report {} does not parse: {e}", json.display())
                    })?;
                    Ok(Measurement::from_report(&report))
                }
            }
        };
        let background_before = self.background.cpu_ns();
        let result = client_phase();
        rec.background_cpu_us = background_before
            .zip(self.background.cpu_ns())
            .map(|(before, after)| after.saturating_sub(before) / 1000);
        rec.veth_tx_drops = drops_before
            .zip(self.tb.veth_tx_dropped())
            .map(|(before, after)| after.saturating_sub(before));
        let died = srv.exited();
        srv.stop(Duration::from_secs(5));
        let _ = std::fs::write(
            self.raw_dir.join(format!("{run_name}.server.txt")),
            format!("{}--- stderr\n{}", srv.stdout_so_far(), srv.stderr_so_far()),
        );
        if let Some(status) = died {
            return Err(format!(
                "the {server} server exited during the run ({status}){}",
                srv.last_words()
            ));
        }
        // A client failure is often the server's doing (a limit, a
        // refusal): say what the server last complained about.
        let result = result.map_err(|e| {
            let err = srv.stderr_so_far();
            match err.lines().rev().find(|l| !l.trim().is_empty()) {
                Some(last) if e != INTERRUPTED => format!("{e}; the {server} server said: {last}"),
                _ => e,
            }
        });
        rec.measured(&result?);
        Ok(())
    }
}

/// The total number of runs, for the progress bar.
fn run_count(cfg: &BenchConfig, rows: &[Case]) -> u64 {
    rows.iter()
        .map(|c| (cfg.offloads.modes(c.workload).len() * c.clients.len() * cfg.reps * 2) as u64)
        .sum()
}

/// Runs the bench. Needs root. The testbed is torn down on every way
/// out; `stop` (set by SIGINT/SIGTERM) ends it early with an error.
pub fn run(cfg: &BenchConfig, stop: &AtomicBool) -> Result<BenchOutcome, String> {
    if cfg.reps == 0 {
        return Err("--reps must be at least 1".into());
    }
    let rows = cases(&cfg.kinds, &cfg.params);
    if rows.is_empty() {
        return Err("nothing to run: the chosen workloads and clients leave no cell".into());
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let raw_dir = cfg.out_dir.join("raw");
    std::fs::create_dir_all(&raw_dir)
        .map_err(|e| format!("cannot create {}: {e}", raw_dir.display()))?;
    let background = BackgroundThreads::find();
    let meta = Meta::new(cfg, &background);
    let idle = rows.iter().map(|c| c.idle_connections).max().unwrap_or(0);
    let short = rows.iter().any(|c| c.workload == Workload::Short);
    let extra_addrs = client_addrs_for(idle).max(if short { SHORT_CLIENT_ADDRS } else { 0 });
    let tb = Testbed::up(extra_addrs, cfg.qdisc)?;
    let bar = ProgressBar::new(run_count(cfg, &rows));
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} runs [{elapsed} < {eta}] {msg}")
            .expect("constant template"),
    );
    let mut r = Runner {
        cfg,
        abilities: Abilities::probe(&exe),
        exe,
        tb,
        stop,
        raw_dir,
        port: 20_000,
        bar,
        background,
    };
    let mut runs: Vec<RunRecord> = Vec::new();
    // The kernel server's closed-loop rpc rate per (client, offloads,
    // connections), for the open-loop p99 rows.
    let mut kernel_rpc: HashMap<(Client, Offloads, usize), f64> = HashMap::new();
    for case in &rows {
        for offloads in cfg.offloads.modes(case.workload) {
            for &client in &case.clients {
                let rate = if case.lower_is_better() {
                    kernel_rpc
                        .get(&(client, offloads, case.connections))
                        .map(|r| r * 0.5)
                } else {
                    None
                };
                let first = runs.len();
                for rep in 0..cfg.reps {
                    for server in Server::BOTH {
                        r.interrupted()?;
                        r.bar.set_message(format!(
                            "{} | {client} client -> {server} server | offloads {offloads} | rep {}",
                            case.label,
                            rep + 1
                        ));
                        let rec = r.run_one(case, client, server, offloads, rep, rate)?;
                        let shown = match (rec.status, rec.metric) {
                            (Status::Ok, Some(v)) => format_metric(v, &rec.unit),
                            _ => format!("{:?}: {}", rec.status, rec.note),
                        };
                        r.bar.suspend(|| {
                            eprintln!(
                                "bench: {} | {client} -> {server} | offloads {offloads} | rep {}: {shown}",
                                case.label,
                                rep + 1
                            )
                        });
                        runs.push(rec);
                        r.bar.inc(1);
                    }
                }
                if case.kind == CaseKind::Rpc && case.idle_connections == 0 {
                    let cell = summarize(&runs[first..]);
                    if let Some(k) = cell.first().and_then(|s| s.kernel.median) {
                        kernel_rpc.insert((client, offloads, case.connections), k);
                    }
                }
            }
        }
    }
    r.bar.finish_and_clear();
    drop(r); // the testbed goes down here

    let summaries = summarize(&runs);
    let table = format!("{}\n{}", meta.header(), render_table(&summaries));
    let out = &cfg.out_dir;
    let mut files = Vec::new();
    let mut write = |name: &str, text: String| -> Result<(), String> {
        let p = out.join(name);
        std::fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        files.push(p);
        Ok(())
    };
    #[derive(Serialize)]
    struct Doc<'a, T: Serialize> {
        meta: &'a Meta,
        #[serde(flatten)]
        body: T,
    }
    #[derive(Serialize)]
    struct Runs<'a> {
        runs: &'a [RunRecord],
    }
    #[derive(Serialize)]
    struct Medians<'a> {
        medians: &'a [Summary],
    }
    write(
        "runs.json",
        pretty(&Doc {
            meta: &meta,
            body: Runs { runs: &runs },
        }),
    )?;
    write(
        "medians.json",
        pretty(&Doc {
            meta: &meta,
            body: Medians {
                medians: &summaries,
            },
        }),
    )?;
    write("table.txt", table.clone())?;
    let runs_csv = out.join("runs.csv");
    write_csv(&runs_csv, &runs)?;
    let medians_csv = out.join("medians.csv");
    let rows: Vec<SummaryRow> = summaries.iter().map(SummaryRow::from).collect();
    write_csv(&medians_csv, &rows)?;
    files.extend([runs_csv, medians_csv]);
    let chart = out.join("chart.svg");
    super::chart::draw(&chart, &cfg.title, &summaries)?;
    files.push(chart.clone());
    Ok(BenchOutcome {
        table,
        runs,
        summaries,
        chart,
        files,
    })
}

/// Pretty JSON of plain data.
fn pretty<T: Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).expect("plain data serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_connections_get_enough_client_addresses() {
        assert_eq!(client_addrs_for(0), 0);
        assert_eq!(client_addrs_for(10_000), 1);
        assert_eq!(client_addrs_for(100_000), 5);
    }

    #[test]
    fn a_missing_program_makes_every_cell_not_available() {
        let a = Abilities::probe(Path::new("/nonexistent/xdp-tcp"));
        assert!(a.kernel_client.is_some() && a.fast_client.is_some());
        assert!(a.kernel_apps.values().all(Option::is_some));
    }

    #[test]
    fn clap_possible_values_decide_which_kernel_apps_exist() {
        let help = "  --addr <ADDR>  Address\n  --app <APP>  [default: http] [possible values: echo, discard, http]\n";
        let apps = kernel_apps_from_help(help);
        assert_eq!(apps["echo"], None);
        assert_eq!(apps["http"], None);
        assert!(apps["source"].as_deref().unwrap().contains("--app source"));
        // An http-only build shows no list.
        let apps = kernel_apps_from_help("  --app <APP>  [default: http]\n");
        assert_eq!(apps["http"], None);
        assert!(apps["echo"].is_some());
        assert!(kernel_apps_from_help("").values().all(Option::is_some));
    }

    #[test]
    fn load_stacks_come_from_the_stack_flag() {
        let help = "Options:\n      --stack <STACK>    Which stack [possible values: fast]\n      \
                    --target <TARGET>  Server\n";
        assert_eq!(
            possible_values(help, "--stack"),
            Some(vec!["fast".to_owned()])
        );
        assert_eq!(possible_values(help, "--target"), Some(vec![]));
        assert_eq!(possible_values(help, "--rate"), None);
        // Wide help goes on the next lines.
        let help =
            "      --stack <STACK>\n          Which stack [possible values: fast, kernel]\n      \
                    --target <TARGET>\n          Server\n";
        assert_eq!(
            possible_values(help, "--stack"),
            Some(vec!["fast".to_owned(), "kernel".to_owned()])
        );
    }
}
