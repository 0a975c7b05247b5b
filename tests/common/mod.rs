//! Test harness for RFC-rule tests: the engine under test (one [`Stack`])
//! and a hand-driven peer that builds exact segments and reads back what
//! the engine sent, on a virtual clock. In the spirit of smoltcp's socket
//! tests: each test states a rule, sends segments, and checks the reply.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use xdp_tcp::tcp::{
    ConnId, Event, FourTuple, Instant, ListenerId, Stack, StackConfig, State, TcpConfig,
};
use xdp_tcp::wire::{
    emit_tcp_frame, parse_tcp_frame, tcp_frame_len, EtherType, EthernetRepr, Ipv4Repr, MacAddr,
    SeqNum, TcpFlags, TcpOptions, TcpRepr, Timestamps, IP_PROTO_TCP,
};

pub const US_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const PEER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub const US_PORT: u16 = 80;
pub const PEER_PORT: u16 = 40000;
pub const US_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
pub const PEER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
/// The peer's initial sequence number in the scripted handshakes.
pub const PEER_ISS: SeqNum = SeqNum(1_000_000);

/// A segment the peer sends. Build with the constructors, adjust fields.
#[derive(Debug, Clone)]
pub struct Seg {
    pub src_port: u16,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub flags: TcpFlags,
    pub window: u16,
    pub options: TcpOptions,
    pub payload: Vec<u8>,
}

impl Seg {
    pub fn new(seq: SeqNum, flags: TcpFlags) -> Seg {
        Seg {
            src_port: PEER_PORT,
            seq,
            ack: SeqNum(0),
            flags,
            window: 65535,
            options: TcpOptions::default(),
            payload: Vec::new(),
        }
    }
    /// A SYN with MSS 1460 and no other options.
    pub fn syn(seq: SeqNum) -> Seg {
        let mut s = Seg::new(seq, TcpFlags::SYN);
        s.options.mss = Some(1460);
        s
    }
    pub fn ack(seq: SeqNum, ack: SeqNum) -> Seg {
        let mut s = Seg::new(seq, TcpFlags::ACK);
        s.ack = ack;
        s
    }
    pub fn data(seq: SeqNum, ack: SeqNum, payload: &[u8]) -> Seg {
        let mut s = Seg::ack(seq, ack);
        s.flags.insert(TcpFlags::PSH);
        s.payload = payload.to_vec();
        s
    }
    pub fn fin(seq: SeqNum, ack: SeqNum) -> Seg {
        let mut s = Seg::ack(seq, ack);
        s.flags.insert(TcpFlags::FIN);
        s
    }
    pub fn rst(seq: SeqNum) -> Seg {
        Seg::new(seq, TcpFlags::RST)
    }
    pub fn with_flags(mut self, f: TcpFlags) -> Seg {
        self.flags.insert(f);
        self
    }
    pub fn with_ack(mut self, ack: SeqNum) -> Seg {
        self.flags.insert(TcpFlags::ACK);
        self.ack = ack;
        self
    }
    pub fn with_window(mut self, w: u16) -> Seg {
        self.window = w;
        self
    }
    pub fn with_options(mut self, o: TcpOptions) -> Seg {
        self.options = o;
        self
    }
    pub fn with_payload(mut self, p: &[u8]) -> Seg {
        self.payload = p.to_vec();
        self
    }
    pub fn with_src_port(mut self, port: u16) -> Seg {
        self.src_port = port;
        self
    }
}

/// A segment the engine sent, parsed.
#[derive(Debug, Clone)]
pub struct Out {
    pub at: Instant,
    pub tcp: TcpRepr,
    pub payload: Vec<u8>,
    pub dst_mac: MacAddr,
}

impl Out {
    pub fn flags(&self) -> TcpFlags {
        self.tcp.flags
    }
    pub fn is_rst(&self) -> bool {
        self.tcp.flags.rst()
    }
    pub fn is_pure_ack(&self) -> bool {
        self.tcp.flags.ack()
            && !self.tcp.flags.syn()
            && !self.tcp.flags.fin()
            && !self.tcp.flags.rst()
            && self.payload.is_empty()
    }
}

pub struct Harness {
    pub stack: Stack,
    pub now: Instant,
    /// Every segment the engine sent, oldest first, not yet taken.
    pub sent: Vec<Out>,
}

pub fn us() -> SocketAddrV4 {
    SocketAddrV4::new(US_IP, US_PORT)
}

pub fn peer() -> SocketAddrV4 {
    SocketAddrV4::new(PEER_IP, PEER_PORT)
}

pub fn tuple() -> FourTuple {
    FourTuple {
        local: us(),
        remote: peer(),
    }
}

/// Stack config with timestamps, SACK and window scaling off so segment
/// arithmetic in tests is plain; tests that need them turn them on.
///
/// Delayed ACKs are off (`delayed_ack: Duration::ZERO`): the tests built on
/// this config are about other rules and read "the ACK" right after each
/// segment. The delayed-ACK rules have their own tests with
/// [`delayed_ack_config`].
pub fn plain_config() -> StackConfig {
    StackConfig {
        mac: US_MAC,
        tcp: TcpConfig {
            timestamps: false,
            sack: false,
            window_scaling: false,
            recv_buffer: 65535,
            send_buffer: 65536,
            delayed_ack: Duration::ZERO,
            ..TcpConfig::default()
        },
        ..StackConfig::default()
    }
}

/// [`plain_config`] with the real delayed-ACK defaults (40 ms, quick-ACK
/// phase of 16 segments).
pub fn delayed_ack_config() -> StackConfig {
    let mut c = plain_config();
    let defaults = TcpConfig::default();
    c.tcp.delayed_ack = defaults.delayed_ack;
    c.tcp.quick_ack_segments = defaults.quick_ack_segments;
    c
}

impl Harness {
    pub fn new(config: StackConfig) -> Harness {
        let now = Instant::from_secs(100);
        Harness {
            stack: Stack::new(config, [7; 32], now).expect("valid config"),
            now,
            sent: Vec::new(),
        }
    }

    pub fn plain() -> Harness {
        Harness::new(plain_config())
    }

    /// Delivers `seg` from the peer to the engine, then polls it.
    pub fn send(&mut self, seg: Seg) {
        let frame = build_frame(&seg);
        self.stack.receive(self.now, &frame);
        self.poll();
    }

    /// Delivers a raw frame.
    pub fn send_raw(&mut self, frame: &[u8]) {
        self.stack.receive(self.now, frame);
        self.poll();
    }

    /// Polls the engine at the current time, collecting what it sends.
    pub fn poll(&mut self) {
        let mut frames: Vec<Vec<u8>> = Vec::new();
        self.stack.poll(self.now, &mut frames);
        for f in frames {
            let parsed = parse_tcp_frame(&f, true).expect("the engine emits valid frames");
            assert_eq!(parsed.eth.src_addr, US_MAC);
            self.sent.push(Out {
                at: self.now,
                tcp: parsed.tcp,
                payload: parsed.payload.to_vec(),
                dst_mac: parsed.eth.dst_addr,
            });
        }
    }

    /// Takes everything sent so far.
    pub fn take(&mut self) -> Vec<Out> {
        std::mem::take(&mut self.sent)
    }

    /// Takes exactly one sent segment; fails if there is not exactly one.
    pub fn take_one(&mut self) -> Out {
        let mut v = self.take();
        assert_eq!(v.len(), 1, "expected exactly one segment, got {v:#?}");
        v.remove(0)
    }

    /// Asserts nothing was sent.
    pub fn expect_silence(&mut self) {
        let v = self.take();
        assert!(v.is_empty(), "expected no segment, got {v:#?}");
    }

    /// Advances virtual time by `d`, polling at every deadline the stack
    /// reports on the way (so timers fire at their exact times).
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.stack.poll_at() {
            if t > end {
                break;
            }
            // The wheel's next expiry is always after its current time, and
            // pending output is flushed by one poll: this loop progresses.
            self.now = t.max(self.now);
            self.poll();
            if self.stack.poll_at() == Some(self.now) {
                break;
            }
        }
        self.now = end;
        self.poll();
    }

    pub fn events(&mut self) -> Vec<Event> {
        let mut v = Vec::new();
        while let Some(e) = self.stack.next_event() {
            v.push(e);
        }
        v
    }

    pub fn state(&self) -> Option<State> {
        self.stack.state_of_tuple(&tuple())
    }

    /// Listener on `us()` and a completed passive handshake with the peer
    /// (peer ISS = `PEER_ISS`, window 65535, MSS 1460). Returns the
    /// accepted connection, the listener and the engine's ISS.
    pub fn passive_open(&mut self) -> (ConnId, ListenerId, SeqNum) {
        let l = self.stack.listen(us(), 16).expect("listen");
        self.send(Seg::syn(PEER_ISS));
        let synack = self.take_one();
        assert_eq!(synack.flags(), TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(synack.tcp.ack, PEER_ISS + 1);
        let iss = synack.tcp.seq;
        self.send(Seg::ack(PEER_ISS + 1, iss + 1));
        self.expect_silence();
        let c = self.stack.accept(l).expect("accept");
        self.events();
        (c, l, iss)
    }

    /// A completed active open to the peer. Returns the connection and
    /// the engine's ISS.
    pub fn active_open(&mut self) -> (ConnId, SeqNum) {
        let c = self
            .stack
            .connect(
                self.now,
                SocketAddrV4::new(US_IP, US_PORT),
                peer(),
                PEER_MAC,
            )
            .expect("connect");
        self.poll();
        let syn = self.take_one();
        assert_eq!(syn.flags(), TcpFlags::SYN);
        let iss = syn.tcp.seq;
        self.send(Seg::syn(PEER_ISS).with_ack(iss + 1));
        let ack = self.take_one();
        assert!(ack.is_pure_ack());
        assert_eq!(ack.tcp.ack, PEER_ISS + 1);
        self.events();
        (c, iss)
    }
}

/// Builds the Ethernet/IPv4/TCP frame of a peer segment.
pub fn build_frame(seg: &Seg) -> Vec<u8> {
    build_frame_to(seg, US_MAC, US_IP)
}

/// As [`build_frame`], to a chosen destination MAC and IPv4 address.
pub fn build_frame_to(seg: &Seg, dst_mac: MacAddr, dst_ip: Ipv4Addr) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: seg.src_port,
        dst_port: US_PORT,
        seq: seg.seq,
        ack: seg.ack,
        flags: seg.flags,
        window: seg.window,
        urgent: 0,
        options: seg.options,
    };
    let eth = EthernetRepr {
        src_addr: PEER_MAC,
        dst_addr: dst_mac,
        ethertype: EtherType::Ipv4,
    };
    let ip = Ipv4Repr {
        src_addr: PEER_IP,
        dst_addr: dst_ip,
        protocol: IP_PROTO_TCP,
        payload_len: 0,
        ttl: 64,
        dscp_ecn: 0,
        ident: 0,
    };
    let mut buf = vec![0u8; tcp_frame_len(&repr, seg.payload.len())];
    let n = emit_tcp_frame(&mut buf, &eth, &ip, &repr, &seg.payload, &[]);
    buf.truncate(n);
    buf
}

pub fn timestamps(tsval: u32, tsecr: u32) -> Option<Timestamps> {
    Some(Timestamps { tsval, tsecr })
}
