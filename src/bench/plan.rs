//! What a bench run runs: the rows (workload cases), the clients of each
//! row, the two servers, the offload modes, and the order of the runs.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::load::Workload;

/// The client of a cell: our load generator on kernel sockets or on the
/// fast path, or `wrk` (an external kernel client, HTTP only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Client {
    Kernel,
    Fast,
    Wrk,
}

impl Client {
    pub fn name(self) -> &'static str {
        match self {
            Client::Kernel => "kernel",
            Client::Fast => "fast",
            Client::Wrk => "wrk",
        }
    }

    /// Whether the client sends through the kernel (and so needs its
    /// interface's offload level set).
    pub fn is_kernel(self) -> bool {
        !matches!(self, Client::Fast)
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The server of a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Server {
    Kernel,
    Fast,
}

impl Server {
    pub const BOTH: [Server; 2] = [Server::Kernel, Server::Fast];

    pub fn name(self) -> &'static str {
        match self {
            Server::Kernel => "kernel",
            Server::Fast => "fast",
        }
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Kernel offloads in a run (GSO/GRO/TSO and transmit checksums of the
/// kernel ends; the AF_XDP end has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Offloads {
    Off,
    On,
}

impl Offloads {
    pub fn name(self) -> &'static str {
        match self {
            Offloads::Off => "off",
            Offloads::On => "on",
        }
    }

    /// The testbed levels (`deploy/testbed.sh offloads`) of the client
    /// and the server interface for a cell. With offloads on, an end that
    /// may face the AF_XDP stack keeps GSO/GRO but not the transmit
    /// checksum (the stack does not complete partial checksums): the
    /// kernel client, because the same client serves both servers of a
    /// row, and the kernel server when the client is the fast path.
    pub fn levels(self, client: Client) -> (&'static str, &'static str) {
        match (self, client.is_kernel()) {
            (Offloads::Off, _) => ("off", "off"),
            (Offloads::On, true) => ("no-csum", "on"),
            (Offloads::On, false) => ("off", "no-csum"),
        }
    }

    /// One line saying what the mode means, for the table.
    pub fn describe(self) -> &'static str {
        match self {
            Offloads::Off => {
                "offloads off: every kernel end has transmit checksum, TSO, GSO and GRO off"
            }
            Offloads::On => {
                "offloads on: a kernel server has checksum/TSO/GSO/GRO on (no transmit checksum \
                 facing a fast client); a kernel client GSO/GRO on, no transmit checksum/TSO \
                 (its other server is AF_XDP)"
            }
        }
    }
}

impl fmt::Display for Offloads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which offload modes run: `auto` runs everything with offloads off and
/// the bulk rows (where offloads change the answer) with both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OffloadChoice {
    Off,
    On,
    Both,
    Auto,
}

impl OffloadChoice {
    /// The modes a row of `workload` runs with.
    pub fn modes(self, workload: Workload) -> Vec<Offloads> {
        match self {
            OffloadChoice::Off => vec![Offloads::Off],
            OffloadChoice::On => vec![Offloads::On],
            OffloadChoice::Both => vec![Offloads::Off, Offloads::On],
            OffloadChoice::Auto => match workload {
                Workload::BulkSend | Workload::BulkRecv => vec![Offloads::Off, Offloads::On],
                _ => vec![Offloads::Off],
            },
        }
    }
}

/// The root queueing discipline of both testbed veths (`deploy/testbed.sh
/// --qdisc`). A veth has none by default; then a frame sent while the
/// peer's XDP receive ring (256 frames) is full is dropped, which a
/// sender's TCP sees as loss. With a qdisc the veth stops its queue
/// instead (Linux 6.17+) and the qdisc holds the frames, as a NIC's
/// transmit queue does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Qdisc {
    /// No qdisc: frames that find the peer's ring full are dropped.
    Noqueue,
    /// The kernel's default qdisc of a real interface.
    #[value(name = "pfifo_fast")]
    PfifoFast,
    /// A plain 1000-frame FIFO.
    Pfifo,
}

impl Qdisc {
    /// The name `tc` and `deploy/testbed.sh --qdisc` know it by.
    pub fn name(self) -> &'static str {
        match self {
            Qdisc::Noqueue => "noqueue",
            Qdisc::PfifoFast => "pfifo_fast",
            Qdisc::Pfifo => "pfifo",
        }
    }
}

/// The kinds of row `--workloads` chooses from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum CaseKind {
    /// 64 B request/response, persistent connections, closed loop.
    Rpc,
    /// p99 latency of open-loop RPC at half the kernel server's rate.
    RpcP99,
    /// HTTP/1.1 keep-alive (wrk and our clients).
    Http,
    /// Connect, one 64 B request/response, close.
    Short,
    /// Client sends (one stream and several).
    BulkSend,
    /// Client receives (one stream and several).
    BulkRecv,
    /// N idle connections, then RPC; server memory per idle connection.
    Idle,
}

impl CaseKind {
    pub const ALL: [CaseKind; 7] = [
        CaseKind::Rpc,
        CaseKind::RpcP99,
        CaseKind::Http,
        CaseKind::Short,
        CaseKind::BulkSend,
        CaseKind::BulkRecv,
        CaseKind::Idle,
    ];
}

/// One row of the table: a workload with its parameters, run by each of
/// its clients against both servers.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Stable identifier (JSON/CSV), e.g. `rpc-c64`.
    pub id: String,
    /// What the table shows, e.g. `rpc 64B c=64`.
    pub label: String,
    pub kind: CaseKind,
    pub workload: Workload,
    pub connections: usize,
    pub idle_connections: usize,
    pub clients: Vec<Client>,
}

impl Case {
    /// The headline is a latency (lower is better) rather than a rate.
    pub fn lower_is_better(&self) -> bool {
        self.kind == CaseKind::RpcP99
    }

    /// The measured time of this row's runs, given the bench's
    /// `--duration`: at least [`SHORT_MIN_DURATION`] for the short rows,
    /// as asked for every other row.
    pub fn measured(&self, duration: std::time::Duration) -> std::time::Duration {
        if self.kind == CaseKind::Short {
            duration.max(SHORT_MIN_DURATION)
        } else {
            duration
        }
    }

    /// The server application of the workload (same on both stacks).
    pub fn server_app(&self) -> &'static str {
        match self.workload {
            Workload::Rpc | Workload::Short => "echo",
            Workload::Http => "http",
            Workload::BulkSend => "discard",
            Workload::BulkRecv => "source",
        }
    }
}

/// Extra client addresses the short rows connect from. A client that
/// closes first holds each local port at least 1 s before reusing it
/// (TIME-WAIT reuse with timestamps, RFC 6191, as Linux's tcp_tw_reuse),
/// so one address caps a client near 31 000 connections/s to one server
/// port. Eight addresses lift the cap to about 254 000, well above what
/// either server reaches here. (Four, until session 15, capped the fast
/// client at 127 000 on average: against the fast server, which runs at
/// 145-155k, it ran out of ports every 0.85 s and waited 100-200 ms for
/// the oldest TIME-WAIT to become reusable, and the row read 120-126k
/// for the port space, not the server. The runs' `port_waits` now show
/// such a wait in the table.) Both clients spread their connections over
/// all of them.
pub const SHORT_CLIENT_ADDRS: usize = 7;

/// The shortest measured window of a short row. A client that closes
/// first starts reusing its TIME-WAIT tuples 1 s in, or when its first
/// pass over the tuples it owns ends (8 × 31 744 for the fast client: 1.7 s
/// at 150k connections/s): until then every connection leaves a TIME-WAIT
/// on a tuple never used before, later ones reuse one. When a TIME-WAIT
/// was a whole connection, a 1 s window after 0.5 s of warm-up saw only
/// the (slower) first pass and read 70k where 3 s read 106k; with compact
/// records the two passes run alike, and 3 s still measures mostly the
/// steady state every longer run sees.
pub const SHORT_MIN_DURATION: std::time::Duration = std::time::Duration::from_secs(3);

/// The parameters the rows are built from.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseParams {
    /// Connections of the http, short and idle rows.
    pub connections: usize,
    /// Connection counts of the rpc and rpc-p99 rows (one row each).
    pub rpc_connections: Vec<usize>,
    /// Streams of the several-streams bulk rows.
    pub streams: usize,
    pub idle: usize,
    /// Restrict every row to these clients (empty: all a row has).
    pub clients: Vec<Client>,
}

/// The rows for the chosen kinds, in table order (`rpc` before `rpc-p99`,
/// which needs its kernel rate).
pub fn cases(kinds: &[CaseKind], p: &CaseParams) -> Vec<Case> {
    let ours = vec![Client::Kernel, Client::Fast];
    let mut out = Vec::new();
    let mut add = |kind: CaseKind,
                   id: String,
                   label: String,
                   workload: Workload,
                   connections: usize,
                   idle: usize,
                   clients: &[Client]| {
        let clients: Vec<Client> = clients
            .iter()
            .copied()
            .filter(|c| p.clients.is_empty() || p.clients.contains(c))
            .collect();
        if !clients.is_empty() {
            out.push(Case {
                id,
                label,
                kind,
                workload,
                connections,
                idle_connections: idle,
                clients,
            });
        }
    };
    let c = p.connections;
    for kind in CaseKind::ALL.into_iter().filter(|k| kinds.contains(k)) {
        match kind {
            CaseKind::Rpc => {
                for &c in &p.rpc_connections {
                    add(
                        kind,
                        format!("rpc-c{c}"),
                        format!("rpc 64B c={c}"),
                        Workload::Rpc,
                        c,
                        0,
                        &ours,
                    );
                }
            }
            CaseKind::RpcP99 => {
                for &c in &p.rpc_connections {
                    add(
                        kind,
                        format!("rpc-p99-half-c{c}"),
                        format!("rpc p99 @50% kernel c={c}"),
                        Workload::Rpc,
                        c,
                        0,
                        &ours,
                    );
                }
            }
            CaseKind::Http => add(
                kind,
                format!("http-c{c}"),
                format!("http c={c}"),
                Workload::Http,
                c,
                0,
                &[Client::Wrk, Client::Kernel, Client::Fast],
            ),
            CaseKind::Short => add(
                kind,
                format!("short-c{c}"),
                format!(
                    "short c={c} ({} client addrs, >= {} s)",
                    1 + SHORT_CLIENT_ADDRS,
                    SHORT_MIN_DURATION.as_secs()
                ),
                Workload::Short,
                c,
                0,
                &ours,
            ),
            CaseKind::BulkSend | CaseKind::BulkRecv => {
                let w = if kind == CaseKind::BulkSend {
                    Workload::BulkSend
                } else {
                    Workload::BulkRecv
                };
                let mut streams = vec![1];
                if p.streams > 1 {
                    streams.push(p.streams);
                }
                for s in streams {
                    add(
                        kind,
                        format!("{w}-s{s}"),
                        format!("{w} {s} stream{}", if s == 1 { "" } else { "s" }),
                        w,
                        s,
                        0,
                        &ours,
                    );
                }
            }
            CaseKind::Idle => add(
                kind,
                format!("idle-{}-rpc-c{c}", p.idle),
                format!("rpc c={c} + {} idle", p.idle),
                Workload::Rpc,
                c,
                p.idle,
                &ours,
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> CaseParams {
        CaseParams {
            connections: 64,
            rpc_connections: vec![64],
            streams: 4,
            idle: 1000,
            clients: vec![],
        }
    }

    #[test]
    fn rows_follow_the_kinds_in_table_order() {
        let rows = cases(
            &[CaseKind::BulkSend, CaseKind::Rpc, CaseKind::RpcP99],
            &params(),
        );
        let ids: Vec<&str> = rows.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "rpc-c64",
                "rpc-p99-half-c64",
                "bulk-send-s1",
                "bulk-send-s4"
            ]
        );
        assert_eq!(rows[3].connections, 4);
        assert_eq!(rows[3].server_app(), "discard");
        assert!(rows[1].lower_is_better() && !rows[0].lower_is_better());
    }

    #[test]
    fn only_the_short_rows_stretch_their_window_past_time_wait_reuse() {
        use std::time::Duration;
        let rows = cases(&[CaseKind::Rpc, CaseKind::Short], &params());
        let second = Duration::from_secs(1);
        for row in &rows {
            let (expect_1s, expect_5s) = if row.kind == CaseKind::Short {
                assert!(row.label.contains(">= 3 s"), "{}", row.label);
                (SHORT_MIN_DURATION, 5 * second)
            } else {
                (second, 5 * second)
            };
            assert_eq!(row.measured(second), expect_1s, "{}", row.label);
            assert_eq!(row.measured(5 * second), expect_5s, "{}", row.label);
        }
        assert!(rows.iter().any(|r| r.kind == CaseKind::Short));
    }

    #[test]
    fn every_rpc_connection_count_is_a_row() {
        let mut p = params();
        p.rpc_connections = vec![1, 1024];
        let rows = cases(&[CaseKind::RpcP99, CaseKind::Rpc], &p);
        let ids: Vec<&str> = rows.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "rpc-c1",
                "rpc-c1024",
                "rpc-p99-half-c1",
                "rpc-p99-half-c1024"
            ]
        );
    }

    #[test]
    fn wrk_serves_only_http_and_a_client_filter_drops_empty_rows() {
        let mut p = params();
        p.clients = vec![Client::Wrk];
        let rows = cases(&CaseKind::ALL, &p);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].workload, Workload::Http);
        assert_eq!(rows[0].clients, [Client::Wrk]);
    }

    #[test]
    fn offload_levels_never_offload_checksums_towards_the_fast_path() {
        assert_eq!(Offloads::Off.levels(Client::Kernel), ("off", "off"));
        assert_eq!(Offloads::On.levels(Client::Wrk), ("no-csum", "on"));
        // A fast client needs full checksums from the kernel server.
        assert_eq!(Offloads::On.levels(Client::Fast), ("off", "no-csum"));
        assert_eq!(
            OffloadChoice::Auto.modes(Workload::BulkRecv),
            [Offloads::Off, Offloads::On]
        );
        assert_eq!(OffloadChoice::Auto.modes(Workload::Rpc), [Offloads::Off]);
    }
}
