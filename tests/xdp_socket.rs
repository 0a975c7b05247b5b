//! AF_XDP against the Linux kernel over a veth pair between two network
//! namespaces this test creates (root only; skipped loudly otherwise).
//!
//! Network rule: traffic stays inside the namespaces made here, addresses
//! come from 198.18.0.0/15, names carry the PID, and a Drop guard deletes
//! the namespaces (and with them the veth pair) on success and failure.
//! The host's own interfaces are never touched.
//!
//! Each side runs on its own thread that `setns`-es into its namespace, so
//! the test harness's threads stay in the host namespace.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use xdp_tcp::tcp::Transmit;
use xdp_tcp::wire::{
    emit_tcp_frame, parse_tcp_frame, tcp_frame_len, EtherType, EthernetRepr, Ipv4Repr, MacAddr,
    SeqNum, TcpFlags, TcpOptions, TcpRepr, IP_PROTO_TCP,
};
use xdp_tcp::xdp::{ifindex, BindMode, SteerProgram, XdpMode, XskConfig, XskSocket};

const OWNED_PORT: u16 = 9000;
const OTHER_PORT: u16 = 9001;
/// Environment variable that turns `hold_program_until_killed` into the
/// helper process of `program_leaves_with_a_killed_process`.
const HOLD_ENV: &str = "XDP_TCP_TEST_HOLD_IFACE";

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

macro_rules! require_root {
    ($name:expr) => {
        if !is_root() {
            eprintln!(
                "SKIPPED: {} needs root (network namespaces, XDP, AF_XDP)",
                $name
            );
            return;
        }
    };
}

fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two namespaces joined by a veth pair: `xdp_if` (198.18.N.1) in
/// `xdp_ns`, where the program and socket live, and `peer_if`
/// (198.18.N.2) in `peer_ns`, the kernel peer. Dropping it deletes both
/// namespaces, which destroys the pair.
struct Testbed {
    xdp_ns: String,
    peer_ns: String,
    xdp_if: String,
    peer_if: String,
    xdp_ip: Ipv4Addr,
    peer_ip: Ipv4Addr,
}

impl Testbed {
    /// `tag` (one lowercase letter) and `subnet` keep tests that run at the
    /// same time apart.
    fn new(tag: char, subnet: u8) -> Testbed {
        let pid = std::process::id();
        let bed = Testbed {
            xdp_ns: format!("xdptcp-{pid}-{tag}-x"),
            peer_ns: format!("xdptcp-{pid}-{tag}-p"),
            // At most 15 bytes: "xt" + up to 7 PID digits + tag + side.
            xdp_if: format!("xt{pid}{tag}x"),
            peer_if: format!("xt{pid}{tag}p"),
            xdp_ip: Ipv4Addr::new(198, 18, subnet, 1),
            peer_ip: Ipv4Addr::new(198, 18, subnet, 2),
        };
        // The guard exists before the first command: a failure half way
        // still deletes whatever was created.
        run(&["ip", "netns", "add", &bed.xdp_ns]);
        run(&["ip", "netns", "add", &bed.peer_ns]);
        // One queue each way: the peer's frames then always arrive on
        // queue 0, where the socket is (veth defaults to one per CPU).
        run(&[
            "ip",
            "-n",
            &bed.xdp_ns,
            "link",
            "add",
            &bed.xdp_if,
            "numtxqueues",
            "1",
            "numrxqueues",
            "1",
            "type",
            "veth",
            "peer",
            "name",
            &bed.peer_if,
            "numtxqueues",
            "1",
            "numrxqueues",
            "1",
            "netns",
            &bed.peer_ns,
        ]);
        for (ns, ifname, ip) in [
            (&bed.xdp_ns, &bed.xdp_if, bed.xdp_ip),
            (&bed.peer_ns, &bed.peer_if, bed.peer_ip),
        ] {
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                ifname,
            ]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            run(&["ip", "-n", ns, "link", "set", ifname, "up"]);
        }
        // The kernel peer must send complete TCP checksums: with offload
        // on, veth frames carry only the pseudo-header sum.
        run(&[
            "ip",
            "netns",
            "exec",
            &bed.peer_ns,
            "ethtool",
            "-K",
            &bed.peer_if,
            "tx",
            "off",
        ]);
        bed
    }

    /// `ip -d link show` of the XDP side.
    fn xdp_link_details(&self) -> String {
        run(&[
            "ip",
            "-n",
            &self.xdp_ns,
            "-d",
            "link",
            "show",
            "dev",
            &self.xdp_if,
        ])
    }

    /// Whether `ip -d link show` lists an XDP program: a `prog/xdp` line
    /// or an `xdp`/`xdpgeneric`/`xdpdrv` word after the MTU.
    fn has_xdp_program(&self) -> bool {
        self.xdp_link_details().split_whitespace().any(|word| {
            word.starts_with("prog/xdp")
                || matches!(
                    word,
                    "xdp" | "xdpgeneric" | "xdpdrv" | "xdpoffload" | "xdpmulti"
                )
        })
    }

    /// Waits (bounded) for the program to leave the interface.
    fn wait_program_gone(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !self.has_xdp_program() {
                return true;
            }
            thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Ethernet and IPv4 headers of a TCP frame (no payload) from the
    /// peer to the XDP side.
    fn peer_to_xdp_headers(&self) -> (EthernetRepr, Ipv4Repr) {
        let peer = Testbed::mac(&self.peer_ns, &self.peer_if);
        let xdp = Testbed::mac(&self.xdp_ns, &self.xdp_if);
        tcp_headers((peer, self.peer_ip), (xdp, self.xdp_ip))
    }

    /// The same from the XDP side to the peer.
    fn xdp_to_peer_headers(&self) -> (EthernetRepr, Ipv4Repr) {
        let peer = Testbed::mac(&self.peer_ns, &self.peer_if);
        let xdp = Testbed::mac(&self.xdp_ns, &self.xdp_if);
        tcp_headers((xdp, self.xdp_ip), (peer, self.peer_ip))
    }

    /// Runs `f(xdp_if, xdp_ip)` on a new thread inside the XDP side's
    /// namespace.
    fn spawn_on_xdp_side<T: Send + 'static>(
        &self,
        f: impl FnOnce(&str, Ipv4Addr) -> T + Send + 'static,
    ) -> thread::JoinHandle<T> {
        let ns = self.xdp_ns.clone();
        let xdp_if = self.xdp_if.clone();
        let xdp_ip = self.xdp_ip;
        thread::spawn(move || {
            enter_netns(&ns);
            f(&xdp_if, xdp_ip)
        })
    }

    /// The MAC address of `ifname` in `ns`.
    fn mac(ns: &str, ifname: &str) -> MacAddr {
        let out = run(&["ip", "-n", ns, "-o", "link", "show", "dev", ifname]);
        let mut words = out.split_whitespace();
        words
            .find(|w| *w == "link/ether")
            .and_then(|_| words.next())
            .and_then(|mac| mac.parse().ok())
            .unwrap_or_else(|| panic!("no MAC for {ifname} in {out:?}"))
    }

    /// Packets the peer's interface has received.
    fn peer_rx_packets(&self) -> u64 {
        let out = run(&[
            "ip",
            "netns",
            "exec",
            &self.peer_ns,
            "cat",
            &format!("/sys/class/net/{}/statistics/rx_packets", self.peer_if),
        ]);
        out.trim().parse().expect("rx_packets")
    }

    fn ping_from_peer(&self) -> bool {
        Command::new("ip")
            .args(["netns", "exec", &self.peer_ns, "ping", "-c", "1", "-W", "2"])
            .arg(self.xdp_ip.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// A TCP connect from the peer namespace, on its own thread.
    fn connect_from_peer(&self, port: u16) -> thread::JoinHandle<std::io::Result<()>> {
        let ns = self.peer_ns.clone();
        let to = SocketAddr::V4(SocketAddrV4::new(self.xdp_ip, port));
        thread::spawn(move || {
            enter_netns(&ns);
            TcpStream::connect_timeout(&to, Duration::from_secs(10)).map(drop)
        })
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        // Deleting a namespace destroys the veth end inside it, and with it
        // the pair. Errors are ignored: this also runs after a failed setup.
        for ns in [&self.xdp_ns, &self.peer_ns] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Moves the calling thread (only) into network namespace `ns`.
fn enter_netns(ns: &str) {
    let file = std::fs::File::open(format!("/run/netns/{ns}"))
        .unwrap_or_else(|e| panic!("opening netns {ns}: {e}"));
    // SAFETY: `file` is an open namespace fd for the duration of the call;
    // setns changes only the calling thread's network namespace.
    let ret = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(ret, 0, "setns({ns}): {}", std::io::Error::last_os_error());
}

/// Runs `f` on a new thread inside network namespace `ns`.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_string();
    thread::spawn(move || {
        enter_netns(&ns);
        f()
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Receives until `want` matches a frame or `timeout` passes; returns the
/// matching frame's bytes.
fn receive_until(
    sock: &mut XskSocket,
    timeout: Duration,
    mut want: impl FnMut(&[u8]) -> bool,
) -> Option<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut found = None;
    while found.is_none() && Instant::now() < deadline {
        sock.wait_readable(Duration::from_millis(50));
        sock.receive(|frame| {
            if found.is_none() && want(frame) {
                found = Some(frame.to_vec());
            }
        });
    }
    found
}

fn is_syn_to(frame: &[u8], port: u16) -> bool {
    parse_tcp_frame(frame, true)
        .map(|f| f.tcp.dst_port == port && f.tcp.flags.syn() && !f.tcp.flags.ack())
        .unwrap_or(false)
}

/// Receive, steering, TX and pass-through against the kernel peer.
#[test]
fn steers_owned_syn_to_the_socket_and_transmits_a_reset() {
    require_root!("steers_owned_syn_to_the_socket_and_transmits_a_reset");
    let bed = Testbed::new('a', 40);
    let xdp_if = bed.xdp_if.clone();
    let xdp_ip = bed.xdp_ip;

    // The AF_XDP side lives on one thread in the XDP namespace; the test
    // thread drives the peer and talks to it over channels.
    let (to_xdp, commands) = mpsc::channel::<&'static str>();
    let (replies, from_xdp) = mpsc::channel::<String>();
    let xdp_side = {
        let ns = bed.xdp_ns.clone();
        thread::spawn(move || {
            enter_netns(&ns);
            let index = ifindex(&xdp_if).expect("ifindex");
            let program = SteerProgram::attach(index, XdpMode::Native).expect("attach");
            let (mut sock, mode) =
                XskSocket::open(&xdp_if, 0, &XskConfig::default()).expect("open socket");
            assert_eq!(mode, BindMode::Copy, "veth binds in copy mode");
            program
                .register_socket(0, sock.fd())
                .expect("register socket");
            program.add_port(xdp_ip, OWNED_PORT).expect("add port");
            replies.send("ready".into()).unwrap();

            // 1. The SYN to the owned port arrives on the socket.
            assert_eq!(commands.recv().unwrap(), "expect-syn");
            let syn = receive_until(&mut sock, Duration::from_secs(5), |f| {
                is_syn_to(f, OWNED_PORT)
            })
            .expect("no SYN to the owned port reached the AF_XDP socket");
            let counters = program.counters().unwrap();
            assert!(counters.redirected > 0, "{counters:?}");
            let syn = parse_tcp_frame(&syn, true).expect("SYN parses with valid checksums");
            assert_eq!(syn.ip.dst_addr, xdp_ip);

            // 2. Answer with RST+ACK through Transmit + flush.
            let rst = TcpRepr {
                src_port: syn.tcp.dst_port,
                dst_port: syn.tcp.src_port,
                seq: SeqNum(0),
                ack: syn.tcp.seq + 1,
                flags: TcpFlags::RST | TcpFlags::ACK,
                window: 0,
                urgent: 0,
                options: TcpOptions::default(),
            };
            let eth = EthernetRepr {
                src_addr: syn.eth.dst_addr,
                dst_addr: syn.eth.src_addr,
                ethertype: EtherType::Ipv4,
            };
            let ip = Ipv4Repr {
                src_addr: syn.ip.dst_addr,
                dst_addr: syn.ip.src_addr,
                ttl: 64,
                ..syn.ip
            };
            let len = tcp_frame_len(&rst, 0);
            assert!(!sock.transmit(4096, |_| unreachable!("oversized frame")));
            assert!(sock.transmit(len, |buf| emit_tcp_frame(buf, &eth, &ip, &rst, &[], &[])));
            sock.flush();
            let stats = sock.stats();
            assert_eq!(stats.tx_frames, 1, "{stats:?}");
            assert!(stats.kicks >= 1, "copy mode must kick: {stats:?}");
            replies.send("rst-sent".into()).unwrap();

            // 3. Frames for other ports and ICMP pass to the kernel.
            assert_eq!(commands.recv().unwrap(), "expect-nothing-for-other-port");
            let stray = receive_until(&mut sock, Duration::from_millis(500), |f| {
                parse_tcp_frame(f, false)
                    .map(|f| f.tcp.dst_port != OWNED_PORT)
                    .unwrap_or(true)
            });
            assert!(
                stray.is_none(),
                "a frame that is not ours reached the socket"
            );
            let counters = program.counters().unwrap();
            assert!(counters.passed > 0, "{counters:?}");
            let stats = sock.stats();
            assert!(stats.rx_frames >= 1, "{stats:?}");
            replies.send(format!("{counters:?} {stats:?}")).unwrap();

            // 4. Everything goes away on drop.
            assert_eq!(commands.recv().unwrap(), "drop");
            drop(sock);
            drop(program);
            replies.send("dropped".into()).unwrap();
        })
    };

    // A panic on the XDP side drops `replies`, so this fails at once; the
    // panic message itself is printed by the default hook.
    let expect = |what: &str| {
        from_xdp
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the XDP side stopped before {what} (see its panic above)"))
    };

    assert_eq!(expect("ready"), "ready");
    assert!(bed.has_xdp_program(), "{}", bed.xdp_link_details());

    // SYN to the owned port: only our RST can answer it (the kernel never
    // sees it, and port 9000 has no kernel listener either way).
    let connect = bed.connect_from_peer(OWNED_PORT);
    to_xdp.send("expect-syn").unwrap();
    assert_eq!(expect("sending the RST"), "rst-sent");
    let result = connect.join().unwrap();
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
        other => panic!("connect to the owned port: expected refused (our RST), got {other:?}"),
    }

    // ICMP passes to the kernel.
    assert!(
        bed.ping_from_peer(),
        "ping to {} failed with the program attached",
        bed.xdp_ip
    );
    // A SYN to another port reaches the kernel, which refuses it.
    match bed.connect_from_peer(OTHER_PORT).join().unwrap() {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
        other => panic!("connect to a kernel port: expected refused, got {other:?}"),
    }
    to_xdp.send("expect-nothing-for-other-port").unwrap();
    let summary = expect("counters");
    eprintln!("xdp_socket: {summary}");

    to_xdp.send("drop").unwrap();
    assert_eq!(expect("dropped"), "dropped");
    xdp_side.join().unwrap();
    assert!(
        bed.wait_program_gone(),
        "XDP program still attached after drop:\n{}",
        bed.xdp_link_details()
    );
    // And the kernel answers on the address by itself again.
    assert!(bed.ping_from_peer());
}

/// Attach, drop, attach again (native, then generic), and a zero-copy
/// request on veth falling back to copy mode.
#[test]
fn attach_drop_attach_again() {
    require_root!("attach_drop_attach_again");
    let bed = Testbed::new('b', 41);
    let xdp_if = bed.xdp_if.clone();
    for (round, mode) in [XdpMode::Native, XdpMode::Generic, XdpMode::Native]
        .into_iter()
        .enumerate()
    {
        let xdp_if = xdp_if.clone();
        let (program, sock) = in_netns(&bed.xdp_ns, move || {
            let index = ifindex(&xdp_if).unwrap();
            let program = SteerProgram::attach(index, mode)
                .unwrap_or_else(|e| panic!("round {round}: attach {mode:?}: {e}"));
            let config = XskConfig {
                zero_copy: round == 0,
                ..XskConfig::default()
            };
            let (sock, bound) = XskSocket::open(&xdp_if, 0, &config)
                .unwrap_or_else(|e| panic!("round {round}: open: {e}"));
            assert_eq!(bound, BindMode::Copy, "veth has no zero-copy");
            program.register_socket(0, sock.fd()).unwrap();
            program
                .add_port(Ipv4Addr::new(198, 18, 41, 1), OWNED_PORT)
                .unwrap();
            program
                .remove_port(Ipv4Addr::new(198, 18, 41, 1), OWNED_PORT)
                .unwrap();
            assert!(program
                .remove_port(Ipv4Addr::new(198, 18, 41, 1), OWNED_PORT)
                .is_err());
            (program, sock)
        });
        assert!(
            bed.has_xdp_program(),
            "round {round}: {}",
            bed.xdp_link_details()
        );
        // Dropped on this (host-namespace) thread: the link and socket are
        // plain fds, so where they are closed does not matter.
        drop(sock);
        drop(program);
        assert!(
            bed.wait_program_gone(),
            "round {round}: program still attached:\n{}",
            bed.xdp_link_details()
        );
    }
}

/// More frames than the TX half of the UMEM, in full batches: copy mode
/// sends at most 32 frames per kick, so `flush` must kick until the TX ring
/// is drained, and completed frames must come back to the free list.
#[test]
fn transmits_many_batches_in_copy_mode() {
    require_root!("transmits_many_batches_in_copy_mode");
    const FRAMES: u64 = 5000;
    let bed = Testbed::new('d', 43);
    let (eth, ip) = bed.xdp_to_peer_headers();
    let before = bed.peer_rx_packets();
    let xdp_if = bed.xdp_if.clone();
    let stats = in_netns(&bed.xdp_ns, move || {
        let (mut sock, _) = XskSocket::open(&xdp_if, 0, &XskConfig::default()).unwrap();
        let mut sent = 0u64;
        let deadline = Instant::now() + Duration::from_secs(20);
        while sent < FRAMES {
            assert!(
                Instant::now() < deadline,
                "stalled after {sent} frames: {:?}",
                sock.stats()
            );
            // RSTs to the discard port: the peer's kernel drops them quietly.
            while sent < FRAMES {
                let rst = TcpRepr {
                    src_port: OWNED_PORT,
                    dst_port: 9,
                    seq: SeqNum(sent as u32),
                    ack: SeqNum(0),
                    flags: TcpFlags::RST,
                    window: 0,
                    urgent: 0,
                    options: TcpOptions::default(),
                };
                let len = tcp_frame_len(&rst, 0);
                if !sock.transmit(len, |buf| emit_tcp_frame(buf, &eth, &ip, &rst, &[], &[])) {
                    break;
                }
                sent += 1;
            }
            sock.flush();
        }
        sock.stats()
    });
    assert_eq!(stats.tx_frames, FRAMES, "{stats:?}");
    assert!(
        stats.kicks >= FRAMES / 32,
        "one kick sends at most 32 frames: {stats:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut received = bed.peer_rx_packets() - before;
    while received < FRAMES && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
        received = bed.peer_rx_packets() - before;
    }
    eprintln!("xdp_socket: {FRAMES} frames sent, peer received {received}: {stats:?}");
    assert!(received >= FRAMES, "peer received {received} of {FRAMES}");
}

/// More frames than the RX half of the UMEM, from an AF_XDP socket on the
/// peer: every frame is steered, parsed with valid checksums, and handed
/// back to the fill ring (a lost frame would starve RX after 2048).
#[test]
fn receives_more_frames_than_the_umem_holds() {
    require_root!("receives_more_frames_than_the_umem_holds");
    const FRAMES: u64 = 6000;
    let bed = Testbed::new('e', 44);
    let received = Arc::new(AtomicU64::new(0));
    let (ready_tx, ready_rx) = mpsc::channel();

    let receiver = {
        let ns = bed.xdp_ns.clone();
        let xdp_if = bed.xdp_if.clone();
        let xdp_ip = bed.xdp_ip;
        let received = Arc::clone(&received);
        thread::spawn(move || {
            enter_netns(&ns);
            let (program, mut sock) = steer_to_socket(&xdp_if, xdp_ip, &XskConfig::default());
            ready_tx.send(()).unwrap();
            let mut count = 0u64;
            let mut bad = 0u64;
            let deadline = Instant::now() + Duration::from_secs(30);
            while count < FRAMES && Instant::now() < deadline {
                sock.wait_readable(Duration::from_millis(10));
                sock.receive(|frame| match parse_tcp_frame(frame, true) {
                    Ok(f) if f.tcp.dst_port == OWNED_PORT && f.tcp.flags.syn() => count += 1,
                    _ => bad += 1,
                });
                received.store(count, Ordering::Release);
            }
            (count, bad, sock.stats(), program.counters().unwrap())
        })
    };
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("receiver ready");

    let (eth, ip) = bed.peer_to_xdp_headers();
    let peer_if = bed.peer_if.clone();
    let progress = Arc::clone(&received);
    let peer_stats = in_netns(&bed.peer_ns, move || {
        let (mut sock, _) = XskSocket::open(&peer_if, 0, &XskConfig::default()).unwrap();
        let mut sent = 0u64;
        let deadline = Instant::now() + Duration::from_secs(30);
        while sent < FRAMES {
            assert!(Instant::now() < deadline, "sender stalled at {sent}");
            // Keep fewer frames in flight than the smallest queue on the
            // way holds: veth's XDP ring has 256 entries per queue
            // (VETH_RING_SIZE), and when the receiving NAPI runs late (a
            // busy 2-core CI machine) frames beyond it are dropped before
            // XDP sees them. The receiver's own RX ring is larger.
            const IN_FLIGHT: u64 = 128;
            if sent - progress.load(Ordering::Acquire) >= IN_FLIGHT {
                thread::sleep(Duration::from_millis(1));
                continue;
            }
            while sent < FRAMES && sent - progress.load(Ordering::Acquire) < IN_FLIGHT {
                let syn = numbered_syn(sent);
                let len = tcp_frame_len(&syn, 0);
                if !sock.transmit(len, |buf| emit_tcp_frame(buf, &eth, &ip, &syn, &[], &[])) {
                    break;
                }
                sent += 1;
            }
            sock.flush();
        }
        sock.stats()
    });

    let (count, bad, stats, counters) = receiver.join().unwrap();
    eprintln!(
        "xdp_socket: peer sent {} frames; received {count} (+{bad} others): {stats:?} {counters:?}",
        peer_stats.tx_frames
    );
    assert_eq!(peer_stats.tx_frames, FRAMES);
    assert_eq!(count, FRAMES, "{stats:?} {counters:?}");
    assert_eq!(bad, 0);
    assert_eq!(stats.kernel_drops.total(), 0, "{stats:?}");
    assert!(counters.redirected >= FRAMES, "{counters:?}");
}

/// A socket whose owner does not drain its RX ring: the kernel drops
/// what does not fit and reports it as `rx_ring_full`, not as another
/// cause, and the frames that fit are all delivered.
#[test]
fn a_full_rx_ring_is_reported_as_such() {
    require_root!("a_full_rx_ring_is_reported_as_such");
    // Fewer than veth's 256-entry XDP ring, so none are lost before XDP.
    const FRAMES: u64 = 200;
    const RX_RING: u32 = 64;
    let bed = Testbed::new('g', 46);
    let (ready_tx, ready_rx) = mpsc::channel();
    let (sent_tx, sent_rx) = mpsc::channel::<()>();

    let receiver = bed.spawn_on_xdp_side(move |xdp_if, xdp_ip| {
        // 128 RX frames on the fill ring: more than the RX ring holds,
        // so the ring, not the fill ring, runs out.
        let config = XskConfig {
            frame_count: 256,
            rx_ring: RX_RING,
            fill_ring: 128,
            ..XskConfig::default()
        };
        let (program, mut sock) = steer_to_socket(xdp_if, xdp_ip, &config);
        ready_tx.send(()).unwrap();
        sent_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("sender done");
        // Every frame has passed the program before the counters are read.
        let deadline = Instant::now() + Duration::from_secs(10);
        while program.counters().unwrap().redirected < FRAMES {
            assert!(Instant::now() < deadline, "{:?}", program.counters());
            thread::sleep(Duration::from_millis(5));
        }
        let before = sock.stats();
        let mut count = 0u64;
        loop {
            let n = sock.receive(|frame| {
                if matches!(parse_tcp_frame(frame, true), Ok(f) if f.tcp.dst_port == OWNED_PORT) {
                    count += 1;
                }
            });
            if n == 0 {
                break;
            }
        }
        (count, before, program.counters().unwrap())
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("receiver ready");

    let (eth, ip) = bed.peer_to_xdp_headers();
    let peer_if = bed.peer_if.clone();
    let peer_stats = in_netns(&bed.peer_ns, move || {
        let (mut sock, _) = XskSocket::open(&peer_if, 0, &XskConfig::default()).unwrap();
        let mut sent = 0u64;
        while sent < FRAMES {
            let syn = numbered_syn(sent);
            let len = tcp_frame_len(&syn, 0);
            if sock.transmit(len, |buf| emit_tcp_frame(buf, &eth, &ip, &syn, &[], &[])) {
                sent += 1;
            } else {
                sock.flush();
            }
        }
        sock.flush();
        sock.stats()
    });
    sent_tx.send(()).unwrap();

    let (count, stats, counters) = receiver.join().unwrap();
    eprintln!("xdp_socket: received {count} of {FRAMES}: {stats:?} {counters:?}");
    assert_eq!(peer_stats.tx_frames, FRAMES);
    assert_eq!(count, u64::from(RX_RING), "{stats:?}");
    let drops = stats.kernel_drops;
    assert_eq!(drops.rx_ring_full, FRAMES - u64::from(RX_RING), "{drops:?}");
    assert_eq!(drops.rx_dropped, 0, "{drops:?}");
    assert_eq!(drops.total(), FRAMES - u64::from(RX_RING), "{drops:?}");
}

/// Ethernet and IPv4 headers of a TCP frame without payload from `src`
/// to `dst` (MAC, address).
fn tcp_headers(src: (MacAddr, Ipv4Addr), dst: (MacAddr, Ipv4Addr)) -> (EthernetRepr, Ipv4Repr) {
    let eth = EthernetRepr {
        src_addr: src.0,
        dst_addr: dst.0,
        ethertype: EtherType::Ipv4,
    };
    let ip = Ipv4Repr {
        src_addr: src.1,
        dst_addr: dst.1,
        protocol: IP_PROTO_TCP,
        payload_len: 0,
        ttl: 64,
        dscp_ecn: 0,
        ident: 0,
    };
    (eth, ip)
}

/// Native XDP on `xdp_if` steering `xdp_ip`:`OWNED_PORT` to a new socket
/// on queue 0 (call inside the XDP side's namespace).
fn steer_to_socket(
    xdp_if: &str,
    xdp_ip: Ipv4Addr,
    config: &XskConfig,
) -> (SteerProgram, XskSocket) {
    let program = SteerProgram::attach(ifindex(xdp_if).unwrap(), XdpMode::Native).unwrap();
    let (sock, _) = XskSocket::open(xdp_if, 0, config).unwrap();
    program.register_socket(0, sock.fd()).unwrap();
    program.add_port(xdp_ip, OWNED_PORT).unwrap();
    (program, sock)
}

/// SYN number `n` to `OWNED_PORT`: its own source port (cycling over
/// 20000) and sequence number.
fn numbered_syn(n: u64) -> TcpRepr {
    TcpRepr {
        src_port: 20000 + (n % 20000) as u16,
        dst_port: OWNED_PORT,
        seq: SeqNum(n as u32),
        ack: SeqNum(0),
        flags: TcpFlags::SYN,
        window: 65535,
        urgent: 0,
        options: TcpOptions::default(),
    }
}

/// Recomputes the IPv4 header checksum of an Ethernet frame in place.
fn fix_ipv4_checksum(frame: &mut [u8]) {
    let header_len = usize::from(frame[14] & 0x0f) * 4;
    frame[24] = 0;
    frame[25] = 0;
    let mut sum = 0u32;
    for word in frame[14..14 + header_len].chunks(2) {
        sum += u32::from(u16::from_be_bytes([word[0], word[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    frame[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

/// The steering program's parser on crafted frames from the peer: IPv4
/// options are skipped, fragments / other addresses / UDP pass to the
/// kernel, truncated headers count as malformed.
#[test]
fn steering_parser_edge_cases() {
    require_root!("steering_parser_edge_cases");
    let bed = Testbed::new('f', 45);
    let xdp_mac = Testbed::mac(&bed.xdp_ns, &bed.xdp_if);
    let peer_mac = Testbed::mac(&bed.peer_ns, &bed.peer_if);
    let syn_to = |dst: Ipv4Addr, port: u16| {
        let tcp = TcpRepr {
            src_port: 40000,
            dst_port: port,
            seq: SeqNum(1),
            ack: SeqNum(0),
            flags: TcpFlags::SYN,
            window: 65535,
            urgent: 0,
            options: TcpOptions::default(),
        };
        let eth = EthernetRepr {
            src_addr: peer_mac,
            dst_addr: xdp_mac,
            ethertype: EtherType::Ipv4,
        };
        let ip = Ipv4Repr {
            src_addr: bed.peer_ip,
            dst_addr: dst,
            protocol: IP_PROTO_TCP,
            payload_len: 0,
            ttl: 64,
            dscp_ecn: 0,
            ident: 7,
        };
        let mut buf = vec![0u8; tcp_frame_len(&tcp, 0)];
        let n = emit_tcp_frame(&mut buf, &eth, &ip, &tcp, &[], &[]);
        buf.truncate(n);
        buf
    };
    let syn_frame = |dst: Ipv4Addr| syn_to(dst, OWNED_PORT);

    // IPv4 header with 4 bytes of options (NOP NOP NOP EOL): still ours.
    let mut with_options = syn_frame(bed.xdp_ip);
    with_options.splice(34..34, [1u8, 1, 1, 0]);
    with_options[14] = 0x46;
    let total = u16::from_be_bytes([with_options[16], with_options[17]]) + 4;
    with_options[16..18].copy_from_slice(&total.to_be_bytes());
    fix_ipv4_checksum(&mut with_options);
    // First fragment (MF set) of a SYN to the owned port: the kernel's.
    let mut fragment = syn_frame(bed.xdp_ip);
    fragment[20..22].copy_from_slice(&0x2000u16.to_be_bytes());
    fix_ipv4_checksum(&mut fragment);
    // The owned port on an address that is not owned: the kernel's.
    let other_address = syn_frame(Ipv4Addr::new(198, 18, 45, 3));
    // UDP to the owned port number: the kernel's.
    let mut udp = syn_frame(bed.xdp_ip);
    udp[23] = 17;
    fix_ipv4_checksum(&mut udp);
    // IPv4 EtherType with half an IPv4 header: malformed.
    let mut truncated = syn_frame(bed.xdp_ip);
    truncated.truncate(14 + 10);
    // The client port range 20000-20009 of our address (`client_ports`):
    // its last port is ours, the next one the kernel's, and the range
    // does not extend to another address.
    let range_end = syn_to(bed.xdp_ip, 20009);
    let past_range = syn_to(bed.xdp_ip, 20010);
    let range_elsewhere = syn_to(Ipv4Addr::new(198, 18, 45, 3), 20005);
    let frames = vec![
        past_range,
        range_elsewhere,
        fragment,
        other_address,
        udp,
        truncated,
        with_options.clone(),
        range_end.clone(),
    ];

    let (ready_tx, ready_rx) = mpsc::channel();
    let (sent_tx, sent_rx) = mpsc::channel::<()>();
    let receiver = bed.spawn_on_xdp_side(move |xdp_if, xdp_ip| {
        let (program, mut sock) = steer_to_socket(xdp_if, xdp_ip, &XskConfig::default());
        program.add_client_range(xdp_ip, 20000, 20009).unwrap();
        let before = program.counters().unwrap();
        ready_tx.send(()).unwrap();
        sent_rx.recv().unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_millis(700);
        while Instant::now() < deadline {
            sock.wait_readable(Duration::from_millis(20));
            sock.receive(|frame| got.push(frame.to_vec()));
        }
        (got, before, program.counters().unwrap())
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("receiver ready");
    let peer_if = bed.peer_if.clone();
    in_netns(&bed.peer_ns, move || {
        let (mut sock, _) = XskSocket::open(&peer_if, 0, &XskConfig::default()).unwrap();
        for frame in &frames {
            assert!(sock.transmit(frame.len(), |buf| {
                buf.copy_from_slice(frame);
                frame.len()
            }));
        }
        sock.flush();
        assert_eq!(sock.stats().tx_frames, frames.len() as u64);
    });
    sent_tx.send(()).unwrap();
    let (got, before, after) = receiver.join().unwrap();
    eprintln!("xdp_socket: parser edge cases: {before:?} -> {after:?}");
    assert_eq!(
        got,
        vec![with_options, range_end],
        "only the SYN with IPv4 options and the one in the client range are ours"
    );
    let parsed = parse_tcp_frame(&got[0], true).expect("IPv4 options are skipped");
    assert!(parsed.tcp.flags.syn());
    assert_eq!(after.redirected - before.redirected, 2, "{after:?}");
    assert!(after.malformed - before.malformed >= 1, "{after:?}");
    assert!(after.passed - before.passed >= 5, "{after:?}");
}

/// A `kill -9`ed process leaves no program behind (bpf_link, not netlink),
/// so the next start attaches.
#[test]
fn program_leaves_with_a_killed_process() {
    require_root!("program_leaves_with_a_killed_process");
    let bed = Testbed::new('c', 42);
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &bed.xdp_ns])
        .arg(&exe)
        .args([
            "--exact",
            "hold_program_until_killed",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLD_ENV, &bed.xdp_if)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning the helper process");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // libtest prints "test hold_program_until_killed ... " on the same line.
    let attached = lines.any(|line| line.map(|l| l.contains("ATTACHED")).unwrap_or(false));
    if !attached {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the helper process did not attach");
    }
    assert!(bed.has_xdp_program(), "{}", bed.xdp_link_details());
    child.kill().expect("SIGKILL the helper");
    child.wait().expect("reaping the helper");
    assert!(
        bed.wait_program_gone(),
        "program outlived its SIGKILLed process:\n{}",
        bed.xdp_link_details()
    );
    let xdp_if = bed.xdp_if.clone();
    in_netns(&bed.xdp_ns, move || {
        let program = SteerProgram::attach(ifindex(&xdp_if).unwrap(), XdpMode::Native)
            .expect("attach after the previous owner was killed");
        drop(program);
    });
}

/// Helper process for `program_leaves_with_a_killed_process`: attaches,
/// says so, and waits to be killed. Does nothing when run by itself.
#[test]
#[ignore = "helper process of program_leaves_with_a_killed_process"]
fn hold_program_until_killed() {
    let Ok(ifname) = std::env::var(HOLD_ENV) else {
        eprintln!("hold_program_until_killed: only runs as a helper process ({HOLD_ENV} unset)");
        return;
    };
    let program = SteerProgram::attach(ifindex(&ifname).unwrap(), XdpMode::Native).unwrap();
    let (sock, _) = XskSocket::open(&ifname, 0, &XskConfig::default()).unwrap();
    program.register_socket(0, sock.fd()).unwrap();
    println!("ATTACHED");
    use std::io::Write;
    std::io::stdout().flush().unwrap();
    // Killed long before this ends; bounded all the same.
    thread::sleep(Duration::from_secs(60));
}
