//! Engine configuration. Defaults follow Linux where Linux has a knob, so a
//! benchmark against the kernel compares like with like.

use std::time::Duration;

use crate::tcp::congestion::CongestionAlgorithm;
use crate::tcp::rto::RtoConfig;
use crate::wire::MacAddr;

/// Keepalive settings (SO_KEEPALIVE with TCP_KEEPIDLE / TCP_KEEPINTVL /
/// TCP_KEEPCNT). RFC 1122 §4.2.3.6: off by default, idle ≥ 2 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepaliveConfig {
    /// Idle time before the first probe (TCP_KEEPIDLE, Linux 7200 s).
    pub idle: Duration,
    /// Time between unanswered probes (TCP_KEEPINTVL, Linux 75 s).
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped (TCP_KEEPCNT, Linux 9).
    pub count: u32,
}

impl Default for KeepaliveConfig {
    fn default() -> Self {
        KeepaliveConfig {
            idle: Duration::from_secs(7200),
            interval: Duration::from_secs(75),
            count: 9,
        }
    }
}

/// Per-connection TCP behaviour. Copied into each connection at creation so
/// a listener or a `connect` can override it.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpConfig {
    /// Link MTU; our MSS is `mtu - 40` unless `mss` overrides it.
    pub mtu: usize,
    /// Explicit MSS to announce (TCP_MAXSEG).
    pub mss: Option<u16>,
    /// Initial send buffer bytes (SO_SNDBUF). Auto-tuning grows it up to
    /// `send_buffer_max`.
    pub send_buffer: usize,
    /// Largest send buffer auto-tuning may grow to (Linux tcp_wmem[2]):
    /// when every buffered byte is in flight and the application still
    /// had more to write, the buffer, not the network, bounds the flight,
    /// and it doubles. At or below `send_buffer` turns auto-tuning off.
    pub send_buffer_max: usize,
    /// Initial receive buffer bytes (SO_RCVBUF); also bounds the
    /// reassembly window. Auto-tuning grows it up to `recv_buffer_max`.
    pub recv_buffer: usize,
    /// Largest receive buffer auto-tuning may grow to (Linux tcp_rmem[2]).
    /// The window scale we announce is computed from it, so the grown
    /// buffer can be advertised in full. Equal to `recv_buffer` turns
    /// auto-tuning off. Without window scaling the window stops at 65535.
    pub recv_buffer_max: usize,
    /// Delayed-ACK timeout (RFC 1122 §4.2.3.2, RFC 9293 §3.8.6.3): an ACK
    /// for in-order data may wait this long for a second full-sized
    /// segment or outgoing data to ride on. Linux's minimum is 40 ms; the
    /// RFC bound is 500 ms. `Duration::ZERO` acknowledges every segment at
    /// the next flush.
    pub delayed_ack: Duration,
    /// Quick-ACK phase at connection start: up to this many data segments
    /// are acknowledged without delay (bounded by rcv_wnd / (2·MSS)), so
    /// the sender's slow start is not held back by our delayed ACKs (Linux
    /// TCP_MAX_QUICKACKS = 16). Ends early once the connection is seen to
    /// be interactive (we send data right after receiving some).
    pub quick_ack_segments: u32,
    /// Offer window scaling (RFC 7323 §2).
    pub window_scaling: bool,
    /// Offer SACK-permitted (RFC 2018): with it, losses are recovered with
    /// the SACK scoreboard (RFC 6675) and RACK-TLP (RFC 8985).
    pub sack: bool,
    /// Offer timestamps (RFC 7323 §3).
    pub timestamps: bool,
    /// Nagle's algorithm (RFC 9293 §3.7.4); `false` is TCP_NODELAY.
    pub nagle: bool,
    pub rto: RtoConfig,
    /// Consecutive RTOs on data before ETIMEDOUT (Linux tcp_retries2 = 15).
    pub max_retransmits: u32,
    /// SYN retransmissions before ETIMEDOUT (Linux tcp_syn_retries = 6).
    pub syn_retries: u32,
    /// SYN-ACK retransmissions before the embryonic connection is dropped
    /// (Linux tcp_synack_retries = 5: 1, 2, 4, 8, 16 s, gone after ~63 s).
    pub synack_retries: u32,
    /// Initial RTO for SYN and SYN-ACK (RFC 6298 §2.1: 1 s).
    pub syn_rto: Duration,
    /// Maximum segment lifetime; TIME-WAIT lasts 2·MSL (RFC 9293 §3.4.2).
    pub msl: Duration,
    /// How long an orphaned connection may sit in FIN-WAIT-2 (Linux tcp_fin_timeout).
    pub fin_wait2_timeout: Duration,
    pub keepalive: Option<KeepaliveConfig>,
    /// Congestion control (Linux net.ipv4.tcp_congestion_control; default CUBIC, RFC 9438).
    pub congestion: CongestionAlgorithm,
    /// RACK-TLP loss detection and tail-loss probes (RFC 8985), used when
    /// SACK is negotiated; off falls back to the RFC 6675 §4 IsLost rule
    /// and RTO for tails. On by default, as on Linux.
    pub rack: bool,
    /// HyStart++ (RFC 9406) in the initial slow start, for every algorithm.
    pub hystart: bool,
    /// Initial congestion window in segments (RFC 6928: 10).
    pub initial_window_segments: usize,
    /// IPv4 TTL of emitted segments.
    pub ttl: u8,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            mtu: 1500,
            mss: None,
            send_buffer: 256 * 1024,
            // Linux's tcp_wmem[2] is 4 MiB; 1 MiB (about 720 segments)
            // stays below what our own receiver absorbs while its worker
            // is descheduled (an RX and fill ring of 2048 frames) and
            // below the kernel's per-CPU backlog (netdev_max_backlog,
            // 1000 packets), and already covers receiver pauses four
            // times longer than the initial 256 KiB.
            send_buffer_max: 1024 * 1024,
            recv_buffer: 256 * 1024,
            recv_buffer_max: 4 * 1024 * 1024,
            delayed_ack: Duration::from_millis(40),
            quick_ack_segments: 16,
            window_scaling: true,
            sack: true,
            timestamps: true,
            nagle: true,
            rto: RtoConfig::default(),
            max_retransmits: 15,
            syn_retries: 6,
            synack_retries: 5,
            syn_rto: Duration::from_secs(1),
            msl: Duration::from_secs(30),
            fin_wait2_timeout: Duration::from_secs(60),
            keepalive: None,
            congestion: CongestionAlgorithm::default(),
            rack: true,
            hystart: true,
            initial_window_segments: 10,
            ttl: 64,
        }
    }
}

impl TcpConfig {
    /// The MSS we announce: RFC 9293 §3.7.1, MTU minus fixed IP and TCP headers.
    pub fn local_mss(&self) -> u16 {
        let derived = self.mtu.saturating_sub(40).clamp(88, u16::MAX as usize) as u16;
        self.mss.map_or(derived, |m| m.min(derived))
    }

    /// Checks values that would make the engine misbehave; the message says what to fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.mtu < 128 || self.mtu > 65535 {
            return Err(format!("mtu {} out of range 128..=65535", self.mtu));
        }
        if self.send_buffer < 1024 || self.recv_buffer < 1024 {
            return Err("send_buffer and recv_buffer must be at least 1024 bytes".into());
        }
        // RFC 7323 §2.3: the largest scaled window is 2^30 bytes.
        if self.recv_buffer > (1 << 30) || self.send_buffer > (1 << 30) {
            return Err("buffers above 1 GiB cannot be advertised (RFC 7323 §2.3)".into());
        }
        if self.send_buffer_max > (1 << 30) {
            return Err(format!(
                "send_buffer_max ({}) above 1 GiB; use at most 1 GiB",
                self.send_buffer_max
            ));
        }
        if self.recv_buffer_max < self.recv_buffer {
            return Err(format!(
                "recv_buffer_max ({}) must be at least recv_buffer ({})",
                self.recv_buffer_max, self.recv_buffer
            ));
        }
        if self.recv_buffer_max > (1 << 30) {
            return Err("recv_buffer_max above 1 GiB cannot be advertised (RFC 7323 §2.3)".into());
        }
        // RFC 1122 §4.2.3.2: "the delay MUST be less than 0.5 seconds".
        if self.delayed_ack > Duration::from_millis(500) {
            return Err(format!(
                "delayed_ack {:?} is above the 500 ms RFC 1122 allows; use at most 500 ms",
                self.delayed_ack
            ));
        }
        if !self.window_scaling && self.recv_buffer > 65535 {
            return Err(
                "recv_buffer above 65535 needs window_scaling; enable it or shrink the buffer"
                    .into(),
            );
        }
        if self.rto.min > self.rto.max || self.rto.min.is_zero() {
            return Err("rto.min must be non-zero and not above rto.max".into());
        }
        if self.initial_window_segments == 0 {
            return Err("initial_window_segments must be at least 1".into());
        }
        if let Some(k) = self.keepalive {
            if k.count == 0 || k.interval.is_zero() || k.idle.is_zero() {
                return Err("keepalive idle, interval and count must be non-zero".into());
            }
        }
        Ok(())
    }

    /// Receive window scale to announce: the smallest shift that lets the
    /// largest receive buffer auto-tuning may reach be advertised, at most
    /// 14 (RFC 7323 §2.3).
    pub fn local_window_scale(&self) -> u8 {
        let largest = self.recv_buffer.max(self.recv_buffer_max);
        let mut shift = 0u8;
        while shift < 14 && (largest >> shift) > 65535 {
            shift += 1;
        }
        shift
    }
}

/// Configuration of one per-core [`Stack`](crate::tcp::Stack).
#[derive(Debug, Clone, PartialEq)]
pub struct StackConfig {
    /// Our interface's MAC address (source of every frame we emit).
    pub mac: MacAddr,
    pub tcp: TcpConfig,
    /// Connections this stack will hold at most: open, opening, closing,
    /// and TIME-WAIT ones the user still holds. TIME-WAIT connections the
    /// user closed (and such orphans waiting in FIN-WAIT-2 for the peer's
    /// FIN) move to a compact record and count against `max_time_wait`
    /// instead.
    pub max_connections: usize,
    /// TIME-WAIT records (about 140 bytes each with their flow-table
    /// entry) this stack keeps at most, as Linux's `tcp_max_tw_buckets`.
    /// A connection entering TIME-WAIT when they are all taken closes at
    /// once instead (counted in `time_wait_overflow`), an orphan in
    /// FIN-WAIT-2 stays a connection; 0 keeps none.
    pub max_time_wait: usize,
    /// Verify IPv4 and TCP checksums on receive. Off only where the NIC
    /// verified them (checksum offload).
    pub verify_checksums: bool,
    /// RFC 5961 §7: challenge ACKs sent per second at most, stack-wide.
    pub challenge_ack_limit: u32,
    /// Ephemeral ports for `connect` with port 0 (Linux ip_local_port_range).
    pub ephemeral_ports: (u16, u16),
    /// Pending RST / control replies kept between polls; more are dropped and counted.
    pub control_queue: usize,
    /// Rings (2 KiB each) and scoreboards of ended connections kept for
    /// new ones, at most (`tcp::storage_pool`); 0 frees them instead.
    pub storage_pool: usize,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            mac: MacAddr([0x02, 0, 0, 0, 0, 1]),
            tcp: TcpConfig::default(),
            // 100 k idle connections on one worker (issue 5's idle scale):
            // an idle connection costs about 1.6 KiB, its buffers are lazy.
            max_connections: 131_072,
            // Linux's default on a machine with a few GiB and more.
            max_time_wait: 262_144,
            verify_checksums: true,
            challenge_ack_limit: 1000,
            ephemeral_ports: (32768, 60999),
            control_queue: 1024,
            storage_pool: crate::tcp::storage_pool::DEFAULT_STORAGE_POOL_LIMIT,
        }
    }
}
