//! One record per run, medians and fast/kernel ratios per cell, and the
//! three ways they leave the program: the text table, JSON and CSV.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::plan::{Case, Client, Offloads, Server};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ok,
    /// The client or server does not exist (yet) in this build or on
    /// this machine; `note` says which.
    NotAvailable,
    /// It exists but the run failed; `note` says how.
    Failed,
}

/// What one run measured (the fields a client could not measure stay
/// empty: nothing is made up).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub requests: Option<u64>,
    pub requests_per_sec: Option<f64>,
    pub gbit_per_sec: Option<f64>,
    pub connections_per_sec: Option<f64>,
    pub p50_us: Option<f64>,
    pub p90_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub p999_us: Option<f64>,
    pub errors: Option<u64>,
    /// Connects that waited for a free local port (the client's port
    /// space bounded the run, see `LoadReport::port_waits`).
    pub port_waits: Option<u64>,
}

impl Measurement {
    /// From our load generator's report.
    pub fn from_report(r: &crate::load::LoadReport) -> Measurement {
        let l = r.latency_us;
        Measurement {
            requests: Some(r.requests),
            requests_per_sec: Some(r.requests_per_sec),
            gbit_per_sec: Some(r.gbit_per_sec),
            connections_per_sec: Some(r.connections_per_sec),
            p50_us: l.map(|l| l.p50),
            p90_us: l.map(|l| l.p90),
            p99_us: l.map(|l| l.p99),
            p999_us: l.map(|l| l.p999),
            errors: Some(r.errors + r.connect_errors),
            port_waits: Some(r.port_waits),
        }
    }
}

/// One run: a cell (case × client × server × offloads) and repetition.
/// Flat, so it is one CSV row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub case: String,
    pub label: String,
    pub workload: String,
    pub client: Client,
    pub server: Server,
    pub offloads: Offloads,
    pub repetition: usize,
    pub status: Status,
    /// Why a run is n/a or failed; empty when ok.
    pub note: String,
    /// The headline number of the row and its unit.
    pub metric: Option<f64>,
    pub unit: String,
    pub connections: usize,
    pub idle_connections: usize,
    /// Open-loop rate (requests/s), when the run was open loop.
    pub rate: Option<f64>,
    pub requests: Option<u64>,
    pub requests_per_sec: Option<f64>,
    pub gbit_per_sec: Option<f64>,
    pub connections_per_sec: Option<f64>,
    pub p50_us: Option<f64>,
    pub p90_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub p999_us: Option<f64>,
    pub errors: Option<u64>,
    /// Connects that found every local port of the client busy and waited
    /// (None: the client does not say). Above zero, the client's port
    /// space held the run back, not the server.
    pub port_waits: Option<u64>,
    /// Idle scale: growth of the server process's VmRSS per idle
    /// connection (for a kernel server this leaves out the kernel's socket
    /// memory, see `slab_per_idle_bytes`).
    pub server_rss_per_idle_bytes: Option<f64>,
    /// Idle scale: growth of the machine's kernel slab per idle connection
    /// (both ends' kernel sockets, when both are kernels).
    pub slab_per_idle_bytes: Option<f64>,
    /// Offloads in force on the client and server interfaces
    /// (`ethtool -k`), e.g. `tx=off tso=off gso=off gro=off`.
    pub client_if_offloads: String,
    pub server_if_offloads: String,
    /// Frames the testbed's veths dropped on transmit during the run, both
    /// ends: loss on the path that neither stack's counters show (a veth
    /// without a qdisc drops what finds the peer's XDP ring full).
    pub veth_tx_drops: Option<u64>,
    /// CPU time the machine's background threads (DAMON's `kdamond`) ran
    /// while the run's client ran, warm-up included, in microseconds;
    /// None when the machine has none. Each millisecond of it stalled
    /// one of the two cores the run used, or the machine's other cores.
    pub background_cpu_us: Option<u64>,
}

impl RunRecord {
    /// A record for `case`'s cell, before anything ran.
    pub fn new(
        case: &Case,
        client: Client,
        server: Server,
        offloads: Offloads,
        repetition: usize,
    ) -> RunRecord {
        RunRecord {
            case: case.id.clone(),
            label: case.label.clone(),
            workload: case.workload.to_string(),
            client,
            server,
            offloads,
            repetition,
            status: Status::Failed,
            note: String::new(),
            metric: None,
            unit: unit_of(case).to_owned(),
            connections: case.connections,
            idle_connections: case.idle_connections,
            rate: None,
            requests: None,
            requests_per_sec: None,
            gbit_per_sec: None,
            connections_per_sec: None,
            p50_us: None,
            p90_us: None,
            p99_us: None,
            p999_us: None,
            errors: None,
            port_waits: None,
            server_rss_per_idle_bytes: None,
            slab_per_idle_bytes: None,
            client_if_offloads: String::new(),
            server_if_offloads: String::new(),
            veth_tx_drops: None,
            background_cpu_us: None,
        }
    }

    /// Marks the run ok with what it measured; the headline follows the
    /// case's unit.
    pub fn measured(&mut self, m: &Measurement) {
        self.status = Status::Ok;
        self.requests = m.requests;
        self.requests_per_sec = m.requests_per_sec;
        self.gbit_per_sec = m.gbit_per_sec;
        self.connections_per_sec = m.connections_per_sec;
        self.p50_us = m.p50_us;
        self.p90_us = m.p90_us;
        self.p99_us = m.p99_us;
        self.p999_us = m.p999_us;
        self.errors = m.errors;
        self.port_waits = m.port_waits;
        self.metric = match self.unit.as_str() {
            "req/s" => m.requests_per_sec,
            "conn/s" => m.connections_per_sec,
            "Gbit/s" => m.gbit_per_sec,
            _ => m.p99_us,
        };
        if self.metric.is_none() {
            self.status = Status::Failed;
            self.note = format!("the client reported no {}", self.unit);
        }
    }

    pub fn not_available(&mut self, why: &str) {
        self.status = Status::NotAvailable;
        self.note = why.to_owned();
    }

    pub fn failed(&mut self, why: &str) {
        self.status = Status::Failed;
        self.note = why.to_owned();
    }
}

/// The unit of a case's headline.
pub fn unit_of(case: &Case) -> &'static str {
    use crate::load::Workload::*;
    if case.lower_is_better() {
        return "p99 us";
    }
    match case.workload {
        Rpc | Http => "req/s",
        Short => "conn/s",
        BulkSend | BulkRecv => "Gbit/s",
    }
}

/// The median of `values` (mean of the middle two for an even count);
/// None when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// One server's side of a cell: the median of its ok runs, or why there
/// is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Side {
    pub median: Option<f64>,
    /// The lowest and highest headline of the ok runs: with the median,
    /// how far the repetitions agree ([`spread`](Self::spread)).
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    pub runs_ok: usize,
    pub runs: usize,
    /// n/a or failure reason when there is no median (the first one).
    pub note: String,
    pub median_p99_us: Option<f64>,
    pub median_rss_per_idle_bytes: Option<f64>,
    pub median_slab_per_idle_bytes: Option<f64>,
    /// Median of the runs' `veth_tx_drops`.
    pub median_veth_tx_drops: Option<f64>,
    /// Median of the runs' `port_waits`.
    #[serde(default)]
    pub median_port_waits: Option<f64>,
}

impl Side {
    /// (max − min) / median of the ok runs' headlines: 0.1 means the
    /// repetitions lay within 10 % of the median's size of each other.
    /// None below two ok runs (nothing to compare) or at a zero median.
    pub fn spread(&self) -> Option<f64> {
        match (self.min, self.median, self.max) {
            (Some(lo), Some(mid), Some(hi)) if self.runs_ok >= 2 && mid > 0.0 => {
                Some((hi - lo) / mid)
            }
            _ => None,
        }
    }
}

/// One line of the table: a case with one client and one offload mode,
/// both servers, and the ratio fast/kernel of the medians.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub case: String,
    pub label: String,
    pub client: Client,
    pub offloads: Offloads,
    pub unit: String,
    pub lower_is_better: bool,
    pub kernel: Side,
    pub fast: Side,
    /// fast median / kernel median (for a latency, below 1 is better).
    pub ratio: Option<f64>,
}

fn side(runs: &[&RunRecord]) -> Side {
    let ok: Vec<&RunRecord> = runs
        .iter()
        .copied()
        .filter(|r| r.status == Status::Ok)
        .collect();
    let of = |f: fn(&RunRecord) -> Option<f64>| -> Option<f64> {
        median(&ok.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
    };
    let note = runs
        .iter()
        .find(|r| r.status != Status::Ok)
        .map(|r| {
            let tag = if r.status == Status::NotAvailable {
                "n/a"
            } else {
                "failed"
            };
            format!("{tag} ({})", r.note)
        })
        .unwrap_or_default();
    let metrics = || ok.iter().filter_map(|r| r.metric).filter(|v| v.is_finite());
    Side {
        median: of(|r| r.metric),
        min: metrics().min_by(f64::total_cmp),
        max: metrics().max_by(f64::total_cmp),
        runs_ok: ok.len(),
        runs: runs.len(),
        note,
        median_p99_us: of(|r| r.p99_us),
        median_rss_per_idle_bytes: of(|r| r.server_rss_per_idle_bytes),
        median_slab_per_idle_bytes: of(|r| r.slab_per_idle_bytes),
        median_veth_tx_drops: of(|r| r.veth_tx_drops.map(|d| d as f64)),
        median_port_waits: of(|r| r.port_waits.map(|w| w as f64)),
    }
}

/// The summaries of `runs`, one per (case, client, offloads) in the order
/// the cells first appear.
pub fn summarize(runs: &[RunRecord]) -> Vec<Summary> {
    let mut keys: Vec<(String, Client, Offloads)> = Vec::new();
    for r in runs {
        let k = (r.case.clone(), r.client, r.offloads);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|(case, client, offloads)| {
            let cell: Vec<&RunRecord> = runs
                .iter()
                .filter(|r| r.case == case && r.client == client && r.offloads == offloads)
                .collect();
            let first = cell[0];
            let of = |s: Server| -> Vec<&RunRecord> {
                cell.iter().copied().filter(|r| r.server == s).collect()
            };
            let kernel = side(&of(Server::Kernel));
            let fast = side(&of(Server::Fast));
            let ratio = match (kernel.median, fast.median) {
                (Some(k), Some(f)) if k > 0.0 => Some(f / k),
                _ => None,
            };
            Summary {
                case,
                label: first.label.clone(),
                client,
                offloads,
                unit: first.unit.clone(),
                lower_is_better: first.unit == "p99 us",
                kernel,
                fast,
                ratio,
            }
        })
        .collect()
}

/// `1234567.0, "req/s"` → `1.23M req/s`; latencies in µs or ms.
pub fn format_metric(v: f64, unit: &str) -> String {
    match unit {
        "Gbit/s" => format!("{v:.2} Gbit/s"),
        "p99 us" => {
            if v >= 1000.0 {
                format!("p99 {:.2} ms", v / 1000.0)
            } else {
                format!("p99 {v:.1} us")
            }
        }
        _ => {
            let (scaled, suffix) = if v >= 1e6 {
                (v / 1e6, "M")
            } else if v >= 1e3 {
                (v / 1e3, "k")
            } else {
                (v, "")
            };
            format!("{scaled:.1}{suffix} {unit}")
        }
    }
}

/// Bytes as B / KiB / MiB with one decimal.
pub fn format_bytes(v: f64) -> String {
    if v.abs() >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", v / 1024.0 / 1024.0)
    } else if v.abs() >= 1024.0 {
        format!("{:.1} KiB", v / 1024.0)
    } else {
        format!("{v:.0} B")
    }
}

/// A cell: the median, or `n/a [k]` / `failed [k]` with the reason as
/// footnote k (reasons are long; each distinct one is listed once).
fn cell_text(s: &Side, unit: &str, notes: &mut Vec<String>) -> String {
    match s.median {
        Some(v) => {
            let mut t = format_metric(v, unit);
            if s.runs_ok < s.runs {
                let _ = write!(t, " ({}/{} ok)", s.runs_ok, s.runs);
            }
            t
        }
        None if s.note.is_empty() => "n/a (not run)".to_owned(),
        None => {
            let (tag, why) = s
                .note
                .split_once(" (")
                .map(|(t, w)| (t, w.strip_suffix(')').unwrap_or(w)))
                .unwrap_or(("n/a", s.note.as_str()));
            let k = match notes.iter().position(|n| n == why) {
                Some(i) => i + 1,
                None => {
                    notes.push(why.to_owned());
                    notes.len()
                }
            };
            format!("{tag} [{k}]")
        }
    }
}

/// The text table: one line per summary, then memory lines for the idle
/// rows, with the header naming the columns.
pub fn render_table(summaries: &[Summary]) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "workload".into(),
        "client".into(),
        "kernel server".into(),
        "fast server".into(),
        "fast/kernel".into(),
        "spread k / f".into(),
    ]];
    let mut modes: Vec<Offloads> = Vec::new();
    for s in summaries {
        if !modes.contains(&s.offloads) {
            modes.push(s.offloads);
        }
    }
    let tag_modes = modes.len() > 1;
    let mut footnote = false;
    let mut port_bound = false;
    let mut notes: Vec<String> = Vec::new();
    for s in summaries {
        let label = if tag_modes {
            format!("{} [offl {}]", s.label, s.offloads)
        } else {
            s.label.clone()
        };
        let ratio = match s.ratio {
            Some(r) if s.lower_is_better => format!("{r:.2}x (lower is better)"),
            Some(r) => format!("{r:.2}x"),
            None => "-".into(),
        };
        let spread = |side: &Side| {
            side.spread()
                .map_or("-".to_owned(), |v| format!("{:.0}%", v * 100.0))
        };
        rows.push([
            label,
            s.client.to_string(),
            cell_text(&s.kernel, &s.unit, &mut notes),
            cell_text(&s.fast, &s.unit, &mut notes),
            ratio,
            format!("{} / {}", spread(&s.kernel), spread(&s.fast)),
        ]);
        let k = s.kernel.median_rss_per_idle_bytes;
        let f = s.fast.median_rss_per_idle_bytes;
        if k.is_some() || f.is_some() {
            let show = |v: Option<f64>| v.map_or("-".to_owned(), format_bytes);
            // A kernel server's sockets live in the kernel, not in its RSS:
            // the machine's slab growth stands in for them (*).
            let kernel = match (k, s.kernel.median_slab_per_idle_bytes) {
                (Some(rss), Some(slab)) => {
                    footnote = true;
                    format!("{} + {} slab*", format_bytes(rss), format_bytes(slab))
                }
                _ => show(k),
            };
            rows.push([
                "  server memory / idle conn".into(),
                String::new(),
                kernel,
                show(f),
                String::new(),
                String::new(),
            ]);
        }
        // Loss on the path neither stack counts: say so beside the row.
        rows.extend(count_row(s, "  veth TX drops / run", "frames", |side| {
            side.median_veth_tx_drops
        }));
        // A client out of ports measured itself, not the server.
        let waits = count_row(s, "  connects waiting for a port / run", "", |side| {
            side.median_port_waits
        });
        port_bound |= waits.is_some();
        rows.extend(waits);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for mode in &modes {
        let _ = writeln!(out, "{}", mode.describe());
    }
    for (n, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            line.push_str(cell);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
        if n == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
            let _ = writeln!(out, "{}", "-".repeat(total));
        }
    }
    for (i, n) in notes.iter().enumerate() {
        let _ = writeln!(out, "[{}] {n}", i + 1);
    }
    if summaries
        .iter()
        .any(|s| s.kernel.spread().or(s.fast.spread()).is_some())
    {
        let _ = writeln!(
            out,
            "spread: (highest - lowest) / median of each server's repetitions; a ratio moves by \
             about as much"
        );
    }
    if port_bound {
        let _ = writeln!(
            out,
            "connects waiting for a port: the client found every local port to the server \
             busy (a TIME-WAIT is reusable after 1 s) and waited; such a cell measured the \
             client's port space, not the server"
        );
    }
    if footnote {
        let _ = writeln!(
            out,
            "memory: growth of the server process's VmRSS per idle connection; * plus the \
             machine's kernel slab growth per idle connection (with a kernel client it holds \
             the client's sockets too)"
        );
    }
    out
}

/// A line under a summary for a per-run count (its medians), when either
/// side's median is above zero.
fn count_row(
    s: &Summary,
    label: &str,
    unit: &str,
    median: impl Fn(&Side) -> Option<f64>,
) -> Option<[String; 6]> {
    let above_zero = |side: &Side| median(side).is_some_and(|v| v > 0.0);
    if !above_zero(&s.kernel) && !above_zero(&s.fast) {
        return None;
    }
    let show = |side: &Side| {
        median(side).map_or("-".to_owned(), |v| {
            format!("{v:.0} {unit}").trim_end().to_owned()
        })
    };
    Some([
        label.to_owned(),
        String::new(),
        show(&s.kernel),
        show(&s.fast),
        String::new(),
        String::new(),
    ])
}

/// Writes `rows` as CSV with a header line.
pub fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> Result<(), String> {
    let mut w = csv::Writer::from_path(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    for r in rows {
        w.serialize(r)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    w.flush()
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The summaries flattened for CSV (the csv crate does not nest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub case: String,
    pub label: String,
    pub client: Client,
    pub offloads: Offloads,
    pub unit: String,
    pub kernel_median: Option<f64>,
    pub kernel_min: Option<f64>,
    pub kernel_max: Option<f64>,
    pub kernel_runs_ok: usize,
    pub kernel_note: String,
    pub fast_median: Option<f64>,
    pub fast_min: Option<f64>,
    pub fast_max: Option<f64>,
    pub fast_runs_ok: usize,
    pub fast_note: String,
    pub ratio_fast_over_kernel: Option<f64>,
    pub kernel_median_p99_us: Option<f64>,
    pub fast_median_p99_us: Option<f64>,
    pub kernel_rss_per_idle_bytes: Option<f64>,
    pub fast_rss_per_idle_bytes: Option<f64>,
    pub kernel_median_veth_tx_drops: Option<f64>,
    pub fast_median_veth_tx_drops: Option<f64>,
    pub kernel_median_port_waits: Option<f64>,
    pub fast_median_port_waits: Option<f64>,
}

impl From<&Summary> for SummaryRow {
    fn from(s: &Summary) -> SummaryRow {
        SummaryRow {
            case: s.case.clone(),
            label: s.label.clone(),
            client: s.client,
            offloads: s.offloads,
            unit: s.unit.clone(),
            kernel_median: s.kernel.median,
            kernel_min: s.kernel.min,
            kernel_max: s.kernel.max,
            kernel_runs_ok: s.kernel.runs_ok,
            kernel_note: s.kernel.note.clone(),
            fast_median: s.fast.median,
            fast_min: s.fast.min,
            fast_max: s.fast.max,
            fast_runs_ok: s.fast.runs_ok,
            fast_note: s.fast.note.clone(),
            ratio_fast_over_kernel: s.ratio,
            kernel_median_p99_us: s.kernel.median_p99_us,
            fast_median_p99_us: s.fast.median_p99_us,
            kernel_rss_per_idle_bytes: s.kernel.median_rss_per_idle_bytes,
            fast_rss_per_idle_bytes: s.fast.median_rss_per_idle_bytes,
            kernel_median_veth_tx_drops: s.kernel.median_veth_tx_drops,
            fast_median_veth_tx_drops: s.fast.median_veth_tx_drops,
            kernel_median_port_waits: s.kernel.median_port_waits,
            fast_median_port_waits: s.fast.median_port_waits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::{cases, CaseKind, CaseParams};
    use super::*;

    fn http_case() -> Case {
        let p = CaseParams {
            connections: 64,
            rpc_connections: vec![64],
            streams: 1,
            idle: 0,
            clients: vec![],
        };
        cases(&[CaseKind::Http], &p).remove(0)
    }

    fn run(server: Server, rep: usize, rps: Option<f64>) -> RunRecord {
        let mut r = RunRecord::new(&http_case(), Client::Wrk, server, Offloads::Off, rep);
        match rps {
            Some(v) => r.measured(&Measurement {
                requests_per_sec: Some(v),
                p99_us: Some(v / 1000.0),
                ..Measurement::default()
            }),
            None => r.not_available("fast client not built"),
        }
        r
    }

    #[test]
    fn medians_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
    }

    #[test]
    fn cells_get_medians_and_the_fast_over_kernel_ratio() {
        let runs = vec![
            run(Server::Kernel, 0, Some(100.0)),
            run(Server::Fast, 0, Some(300.0)),
            run(Server::Kernel, 1, Some(120.0)),
            run(Server::Fast, 1, Some(360.0)),
            run(Server::Kernel, 2, Some(110.0)),
            run(Server::Fast, 2, Some(330.0)),
        ];
        let s = summarize(&runs);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].kernel.median, Some(110.0));
        assert_eq!(s[0].fast.median, Some(330.0));
        assert!((s[0].ratio.unwrap() - 3.0).abs() < 1e-12);
        assert_eq!(s[0].kernel.median_p99_us, Some(0.11));
        assert_eq!(
            (s[0].kernel.min, s[0].kernel.max),
            (Some(100.0), Some(120.0))
        );
        // (120 - 100) / 110 and (360 - 300) / 330.
        assert!((s[0].kernel.spread().unwrap() - 20.0 / 110.0).abs() < 1e-12);
        assert!((s[0].fast.spread().unwrap() - 60.0 / 330.0).abs() < 1e-12);
        let table = render_table(&s);
        assert!(table.contains("http c=64"), "{table}");
        assert!(table.contains("110.0 req/s"), "{table}");
        assert!(table.contains("3.00x"), "{table}");
        assert!(table.contains("spread k / f"), "{table}");
        assert!(table.contains("18% / 18%"), "{table}");
        assert!(
            table.contains("spread: (highest - lowest) / median"),
            "{table}"
        );
    }

    #[test]
    fn a_missing_side_is_reported_with_its_reason_and_no_ratio() {
        let runs = vec![
            run(Server::Kernel, 0, Some(1.0e6)),
            run(Server::Fast, 0, None),
        ];
        let s = summarize(&runs);
        assert_eq!(s[0].ratio, None);
        assert_eq!(s[0].fast.note, "n/a (fast client not built)");
        // One run is no spread, and no run none either.
        assert_eq!((s[0].kernel.spread(), s[0].fast.spread()), (None, None));
        let table = render_table(&s);
        assert!(table.contains("1.0M req/s"), "{table}");
        assert!(table.contains("n/a [1]"), "{table}");
        assert!(table.contains("[1] fast client not built"), "{table}");
    }

    #[test]
    fn idle_rows_show_memory_per_connection() {
        let mut k = run(Server::Kernel, 0, Some(10.0));
        k.server_rss_per_idle_bytes = Some(100.0);
        k.slab_per_idle_bytes = Some(4096.0);
        let mut f = run(Server::Fast, 0, Some(20.0));
        f.server_rss_per_idle_bytes = Some(1536.0);
        let table = render_table(&summarize(&[k, f]));
        assert!(table.contains("100 B + 4.0 KiB slab*"), "{table}");
        assert!(table.contains("1.5 KiB"), "{table}");
        assert!(
            table.contains("* plus the machine's kernel slab"),
            "{table}"
        );
    }

    #[test]
    fn veth_drops_get_a_line_only_when_a_side_had_some() {
        let quiet = |server, rep| {
            let mut r = run(server, rep, Some(100.0));
            r.veth_tx_drops = Some(0);
            r
        };
        let table = render_table(&summarize(&[
            quiet(Server::Kernel, 0),
            quiet(Server::Fast, 0),
        ]));
        assert!(!table.contains("veth TX drops"), "{table}");

        let mut lossy = vec![quiet(Server::Kernel, 0)];
        for (rep, drops) in [(0, 10_542), (1, 9_000), (2, 12_000)] {
            let mut r = run(Server::Fast, rep, Some(90.0));
            r.veth_tx_drops = Some(drops);
            lossy.push(r);
        }
        let s = summarize(&lossy);
        assert_eq!(s[0].fast.median_veth_tx_drops, Some(10_542.0));
        let table = render_table(&s);
        let line = table
            .lines()
            .find(|l| l.contains("veth TX drops / run"))
            .unwrap_or_else(|| panic!("{table}"));
        assert!(line.contains("10542 frames"), "{line}");
        assert!(line.contains("0 frames"), "{line}");
    }

    #[test]
    fn a_client_out_of_ports_gets_a_line_and_an_explanation() {
        let with_waits = |server, rep, waits| {
            let mut r = run(server, rep, Some(100.0));
            r.port_waits = Some(waits);
            r
        };
        let table = render_table(&summarize(&[
            with_waits(Server::Kernel, 0, 0),
            with_waits(Server::Fast, 0, 0),
        ]));
        assert!(!table.contains("waiting for a port"), "{table}");

        let s = summarize(&[
            with_waits(Server::Kernel, 0, 0),
            with_waits(Server::Fast, 0, 40),
            with_waits(Server::Kernel, 1, 0),
            with_waits(Server::Fast, 1, 64),
            with_waits(Server::Kernel, 2, 0),
            with_waits(Server::Fast, 2, 12),
        ]);
        assert_eq!(s[0].fast.median_port_waits, Some(40.0));
        let table = render_table(&s);
        let line = table
            .lines()
            .find(|l| l.contains("connects waiting for a port / run"))
            .unwrap_or_else(|| panic!("{table}"));
        let cells: Vec<&str> = line.split_whitespace().rev().take(2).collect();
        assert_eq!(cells, ["40", "0"], "{line}");
        assert!(
            table.contains("measured the client's port space, not the server"),
            "{table}"
        );
    }

    #[test]
    fn metrics_and_bytes_format_with_units() {
        assert_eq!(format_metric(1_234_567.0, "req/s"), "1.2M req/s");
        assert_eq!(format_metric(950.0, "conn/s"), "950.0 conn/s");
        assert_eq!(format_metric(9.876, "Gbit/s"), "9.88 Gbit/s");
        assert_eq!(format_metric(85.0, "p99 us"), "p99 85.0 us");
        assert_eq!(format_metric(2500.0, "p99 us"), "p99 2.50 ms");
        assert_eq!(format_bytes(2048.0), "2.0 KiB");
        assert_eq!(format_bytes(100.0), "100 B");
    }

    #[test]
    fn runs_and_summaries_round_trip_through_csv_and_json() {
        let runs = vec![
            run(Server::Kernel, 0, Some(10.0)),
            run(Server::Fast, 0, None),
        ];
        let dir = std::env::temp_dir().join(format!("xdp-tcp-results-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("runs.csv");
        write_csv(&path, &runs).unwrap();
        let mut rd = csv::Reader::from_path(&path).unwrap();
        let back: Vec<RunRecord> = rd.deserialize().map(Result::unwrap).collect();
        assert_eq!(back, runs);
        let rows: Vec<SummaryRow> = summarize(&runs).iter().map(SummaryRow::from).collect();
        let path = dir.join("medians.csv");
        write_csv(&path, &rows).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("case,label,client,offloads,unit,kernel_median"),
            "{text}"
        );
        let json = serde_json::to_string(&runs).unwrap();
        assert_eq!(serde_json::from_str::<Vec<RunRecord>>(&json).unwrap(), runs);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
