//! Tests of the veth testbed: `deploy/testbed.sh` and the Rust helpers in
//! `tests/support/netns.rs` that the interop tests use.
//!
//! They need root (they create network namespaces); as another user each
//! prints a loud `SKIPPED:` line and passes, except the argument checks,
//! which run anywhere. Everything happens inside namespaces these tests
//! create, on 198.18.0.0/15, and is deleted again, also when a test fails.

#[path = "support/netns.rs"]
mod netns;

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use netns::{
    is_root, loud, netns_exists, script, skip_loudly, Child, Offloads, Testbed, TestbedOptions,
};

const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A kernel TCP listener: prints `ready` once listening, then sends a
/// greeting to one client, prints `peer <ip>` and exits.
const LISTENER: &str = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
print("ready", flush=True)
c, a = s.accept()
c.sendall(b"hello from the server namespace\n")
print("peer", a[0], flush=True)
c.close()
"#;

/// A kernel TCP client: connects, prints everything until EOF.
const CONNECTOR: &str = r#"
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
data = b""
while True:
    d = c.recv(4096)
    if not d:
        break
    data += d
sys.stdout.write(data.decode())
"#;

fn text(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One `ping -c1 -W1` from the client namespace; panics if ping is missing.
fn ping_once(tb: &Testbed, ip: Ipv4Addr) -> bool {
    let out = tb.run_client(&["ping", "-n", "-c1", "-W1", &ip.to_string()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("exec of \"ping\" failed"),
        "ping is not installed: apt-get install iputils-ping\n{err}"
    );
    out.status.success()
}

/// The client reaches `ip`: up to three single pings (a loaded 2-core CI
/// machine can be slow to schedule the reply).
fn ping_ok(tb: &Testbed, ip: Ipv4Addr) -> bool {
    (0..3).any(|_| ping_once(tb, ip))
}

/// A kernel TCP connection from the client namespace to a listener in the
/// server namespace carries data.
fn tcp_exchange(tb: &Testbed, port: u16) {
    let server_ip = tb.server_ip.to_string();
    let port = port.to_string();
    let mut cmd = tb.in_server("python3");
    cmd.args(["-c", LISTENER, &server_ip, &port]);
    let mut listener = Child::spawn(cmd).expect("spawn the listener");
    listener
        .wait_for_line("ready", READY_TIMEOUT)
        .unwrap_or_else(|e| panic!("listener not ready: {e}"));
    let out = tb.run_client(&["python3", "-c", CONNECTOR, &server_ip, &port]);
    assert!(out.status.success(), "connect failed: {}", text(&out));
    assert_eq!(stdout(&out), "hello from the server namespace\n");
    let peer = listener
        .wait_for_line("peer ", READY_TIMEOUT)
        .unwrap_or_else(|e| panic!("listener saw no peer: {e}"));
    assert_eq!(peer, format!("peer {}", tb.client_ip));
    let status = listener
        .wait_exit(READY_TIMEOUT)
        .unwrap_or_else(|| panic!("listener did not exit:\n{}", listener.stderr_so_far()));
    assert!(status.success(), "listener: {}", listener.stderr_so_far());
}

fn in_ns(ns: &str, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ip netns exec")
}

/// The MAC of interface `ifname` as its own namespace sees it.
fn link_mac(ns: &str, ifname: &str) -> String {
    let out = in_ns(ns, &["cat", &format!("/sys/class/net/{ifname}/address")]);
    assert!(out.status.success(), "{}", text(&out));
    stdout(&out).trim().to_owned()
}

/// The MAC the kernel in `ns` resolved for `ip` (after traffic).
fn neighbour_mac(ns: &str, ip: Ipv4Addr) -> Option<String> {
    let out = in_ns(ns, &["ip", "neigh", "show", &ip.to_string()]);
    let s = stdout(&out);
    let mut words = s.split_whitespace();
    words.find(|w| *w == "lladdr")?;
    words.next().map(str::to_owned)
}

/// `ethtool -k` of an interface: feature name → "on" / "off".
fn features(ns: &str, ifname: &str) -> HashMap<String, String> {
    let out = in_ns(ns, &["ethtool", "-k", ifname]);
    assert!(out.status.success(), "{}", text(&out));
    stdout(&out)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| {
            let v = v.split_whitespace().next().unwrap_or("").to_owned();
            (k.trim().to_owned(), v)
        })
        .collect()
}

fn assert_sender_offloads_off(ns: &str, ifname: &str) {
    let f = features(ns, ifname);
    for feature in [
        "tx-checksumming",
        "tcp-segmentation-offload",
        "generic-segmentation-offload",
        "generic-receive-offload",
    ] {
        assert_eq!(
            f.get(feature).map(String::as_str),
            Some("off"),
            "{feature} on {ifname} in {ns}: {f:?}"
        );
    }
}

fn read_in_ns(ns: &str, path: &str) -> String {
    let out = in_ns(ns, &["cat", path]);
    assert!(out.status.success(), "{path}: {}", text(&out));
    stdout(&out).trim().to_owned()
}

/// What the root namespace shows that a testbed must never change.
fn root_snapshot() -> (String, String) {
    let routes = Command::new("ip")
        .args(["-4", "route", "show"])
        .output()
        .expect("ip route");
    let forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap_or_default();
    (stdout(&routes), forward)
}

fn assert_root_untouched(before: &(String, String), tb: &Testbed) {
    let after = root_snapshot();
    assert!(
        !after.0.contains("198.18."),
        "a testbed route leaked into the root namespace:\n{}",
        after.0
    );
    assert_eq!(before.1, after.1, "the root namespace's ip_forward changed");
    let links = Command::new("ip")
        .args(["-br", "link", "show"])
        .output()
        .expect("ip link");
    assert!(
        !stdout(&links).contains(tb.prefix()),
        "a testbed interface is in the root namespace:\n{}",
        stdout(&links)
    );
}

fn namespaces(tb: &Testbed) -> Vec<String> {
    let mut v = vec![tb.server_ns.clone(), tb.client_ns.clone()];
    v.extend(tb.router_ns.clone());
    v
}

fn assert_gone(names: &[String]) {
    for ns in names {
        assert!(!netns_exists(ns), "namespace {ns} is still there");
    }
}

#[test]
fn plain_testbed_pings_carries_tcp_lists_the_right_macs_and_goes_away() {
    let before = is_root().then(root_snapshot);
    let Some(tb) = Testbed::up("plain", TestbedOptions::default()) else {
        return;
    };
    assert_eq!(tb.server_ip, Ipv4Addr::new(198, 18, 0, 1));
    assert_eq!(tb.client_ip, Ipv4Addr::new(198, 18, 0, 2));
    assert_eq!(tb.router_ns, None);
    assert_eq!(tb.queues, 1);
    assert_eq!(tb.server_ns, format!("{}-srv", tb.prefix()));
    assert_eq!(tb.client_ns, format!("{}-cli", tb.prefix()));
    assert!(tb.server_if.len() <= 15 && tb.client_if.len() <= 15);
    for ns in namespaces(&tb) {
        assert!(netns_exists(&ns), "{ns} missing");
    }

    assert!(
        ping_ok(&tb, tb.server_ip),
        "client cannot ping the server {}",
        tb.server_ip
    );
    tcp_exchange(&tb, 7000);

    // The MACs are the interfaces' own, and what the kernels resolved.
    assert_eq!(tb.server_mac, link_mac(&tb.server_ns, &tb.server_if));
    assert_eq!(tb.client_mac, link_mac(&tb.client_ns, &tb.client_if));
    assert_eq!(
        tb.gateway_mac, tb.client_mac,
        "without a router the server sends to the client"
    );
    assert_ne!(tb.server_mac, tb.client_mac);
    assert_eq!(
        neighbour_mac(&tb.server_ns, tb.client_ip).as_deref(),
        Some(tb.gateway_mac.as_str())
    );
    assert_eq!(
        neighbour_mac(&tb.client_ns, tb.server_ip).as_deref(),
        Some(tb.server_mac.as_str())
    );
    assert_sender_offloads_off(&tb.client_ns, &tb.client_if);
    assert_eq!(tb.fact("gateway_ip"), Some("198.18.0.2"));
    assert_eq!(tb.fact("mtu"), Some("1500"));
    assert_eq!(
        read_in_ns(&tb.client_ns, "/proc/sys/net/ipv4/ip_forward"),
        "0"
    );
    assert_root_untouched(before.as_ref().expect("root"), &tb);

    let names = namespaces(&tb);
    drop(tb);
    assert_gone(&names);
}

#[test]
fn testbed_and_children_are_removed_when_a_test_panics() {
    if !is_root() {
        skip_loudly(
            "testbed_and_children_are_removed_when_a_test_panics",
            "needs root",
        );
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let tb = Testbed::up("panic", TestbedOptions::default()).expect("root");
        let mut cmd = tb.in_server("sleep");
        cmd.arg("600");
        let sleeper = Child::spawn(cmd).expect("spawn sleep");
        tx.send((namespaces(&tb), sleeper.id())).unwrap();
        panic!("deliberate panic with a testbed and a child alive");
    })
    .join();
    assert!(result.is_err(), "the thread should have panicked");
    let (names, pid) = rx.recv().expect("names");
    assert_gone(&names);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the child {pid} outlived its test"
    );
}

#[test]
fn router_with_total_loss_drops_what_it_forwards() {
    let opts = TestbedOptions {
        router: true,
        loss_permille: 1000,
        ..TestbedOptions::default()
    };
    let Some(tb) = Testbed::up("lossall", opts) else {
        return;
    };
    assert_eq!(tb.client_ip, Ipv4Addr::new(198, 18, 1, 2));
    assert_eq!(tb.server_ip, Ipv4Addr::new(198, 18, 2, 2));
    // The router itself answers: only forwarded packets are dropped.
    assert!(ping_ok(&tb, Ipv4Addr::new(198, 18, 1, 1)));
    let out = tb.run_client(&["ping", "-n", "-c2", "-i0.2", "-W1", "198.18.2.2"]);
    assert!(
        !out.status.success(),
        "ping went through 100% loss: {}",
        text(&out)
    );
    let rules = stdout(&tb.run_router(&["nft", "list", "ruleset"]));
    assert!(
        rules.contains("numgen random mod 1000 <= 999"),
        "loss rule missing:\n{rules}"
    );
    let dropped: u64 = rules
        .split("counter packets ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no counter in:\n{rules}"));
    assert!(dropped >= 2, "the loss rule counted {dropped} drops");
}

#[test]
fn router_without_loss_forwards_and_senders_to_the_server_have_offloads_off() {
    let before = is_root().then(root_snapshot);
    let opts = TestbedOptions {
        router: true,
        loss_permille: 0,
        ..TestbedOptions::default()
    };
    let Some(tb) = Testbed::up("lossnone", opts) else {
        return;
    };
    let rtr = tb.router_ns.clone().expect("router namespace");
    assert_eq!(rtr, format!("{}-rtr", tb.prefix()));
    let rtr_srv_if = tb.fact("router_server_if").expect("router_server_if");
    let rtr_cli_if = tb.fact("router_client_if").expect("router_client_if");

    assert!(
        ping_ok(&tb, tb.server_ip),
        "no ping through the router with --loss 0"
    );
    tcp_exchange(&tb, 7001);

    // The server sends to the router's server-facing veth.
    assert_eq!(tb.gateway_mac, link_mac(&rtr, rtr_srv_if));
    assert_ne!(tb.gateway_mac, tb.client_mac);
    assert_eq!(tb.fact("gateway_ip"), Some("198.18.2.1"));
    assert_eq!(
        neighbour_mac(&tb.server_ns, Ipv4Addr::new(198, 18, 2, 1)).as_deref(),
        Some(tb.gateway_mac.as_str())
    );

    // Every kernel sender towards the server computes its own checksums.
    assert_sender_offloads_off(&tb.client_ns, &tb.client_if);
    assert_sender_offloads_off(&rtr, rtr_srv_if);
    // The router's client-facing end transmits to the client only.
    assert_eq!(
        features(&rtr, rtr_cli_if)
            .get("tx-checksumming")
            .map(String::as_str),
        Some("on")
    );

    // Forwarding on in the router only.
    assert_eq!(read_in_ns(&rtr, "/proc/sys/net/ipv4/ip_forward"), "1");
    assert_eq!(
        read_in_ns(&tb.server_ns, "/proc/sys/net/ipv4/ip_forward"),
        "0"
    );
    assert_eq!(
        read_in_ns(&tb.client_ns, "/proc/sys/net/ipv4/ip_forward"),
        "0"
    );
    assert_root_untouched(before.as_ref().expect("root"), &tb);
}

/// CPU numbers set in a sysfs CPU mask like `3` or `00000000,00000001`.
fn mask_cpus(mask: &str) -> BTreeSet<u32> {
    let mut cpus = BTreeSet::new();
    for (group, word) in mask.trim().rsplit(',').enumerate() {
        let bits = u32::from_str_radix(word, 16).expect("hex mask");
        for bit in 0..32 {
            if bits & (1 << bit) != 0 {
                cpus.insert(group as u32 * 32 + bit);
            }
        }
    }
    cpus
}

fn online_cpus() -> u32 {
    Command::new("getconf")
        .arg("_NPROCESSORS_ONLN")
        .output()
        .ok()
        .and_then(|o| stdout(&o).trim().parse().ok())
        .unwrap_or(1)
}

/// Per-rx-queue packet counts of a veth (`ethtool -S`).
fn rx_queue_packets(ns: &str, ifname: &str, queues: u32) -> Vec<u64> {
    let out = in_ns(ns, &["ethtool", "-S", ifname]);
    assert!(out.status.success(), "{}", text(&out));
    let stats: HashMap<String, u64> = stdout(&out)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter_map(|(k, v)| Some((k.trim().to_owned(), v.trim().parse().ok()?)))
        .collect();
    (0..queues)
        .map(|q| stats[&format!("rx_queue_{q}_xdp_packets")])
        .collect()
}

#[test]
fn two_queues_on_both_ends_and_xps_pins_the_queue_to_the_cpu() {
    let opts = TestbedOptions {
        queues: 2,
        ..TestbedOptions::default()
    };
    let Some(tb) = Testbed::up("queues", opts) else {
        return;
    };
    assert_eq!(tb.queues, 2);
    for (ns, ifname) in [
        (&tb.server_ns, &tb.server_if),
        (&tb.client_ns, &tb.client_if),
    ] {
        let out = in_ns(ns, &["ls", &format!("/sys/class/net/{ifname}/queues")]);
        let mut listed: Vec<String> = stdout(&out).split_whitespace().map(str::to_owned).collect();
        listed.sort();
        assert_eq!(listed, ["rx-0", "rx-1", "tx-0", "tx-1"], "{ifname} in {ns}");
    }

    // XPS on the client: tx queue q carries CPUs c with c mod 2 = q, and
    // CPU q mod nproc in any case.
    let nproc = online_cpus();
    for q in 0..2u32 {
        let mask = read_in_ns(
            &tb.client_ns,
            &format!("/sys/class/net/{}/queues/tx-{q}/xps_cpus", tb.client_if),
        );
        let mut want: BTreeSet<u32> = (0..nproc).filter(|c| c % 2 == q).collect();
        want.insert(q % nproc);
        assert_eq!(mask_cpus(&mask), want, "xps_cpus of tx-{q} is {mask}");
    }

    assert_cpu_pins_rx_queue(&tb);
}

#[test]
fn two_queues_through_the_router_keep_the_cpu_pinning() {
    let opts = TestbedOptions {
        queues: 2,
        router: true,
        ..TestbedOptions::default()
    };
    let Some(tb) = Testbed::up("rqueues", opts) else {
        return;
    };
    let rtr = tb.router_ns.clone().expect("router");
    for ifname in ["router_client_if", "router_server_if"] {
        let ifname = tb.fact(ifname).expect("router interface");
        let out = in_ns(&rtr, &["ls", &format!("/sys/class/net/{ifname}/queues")]);
        assert_eq!(stdout(&out).split_whitespace().count(), 4, "{ifname}");
    }
    // The router forwards on the CPU that sent, and its server-facing veth
    // has the same XPS map: the pinning survives the hop.
    assert_cpu_pins_rx_queue(&tb);
}

/// A sender pinned to CPU c arrives on the server's rx queue c mod 2.
fn assert_cpu_pins_rx_queue(tb: &Testbed) {
    // veth counts per rx queue only in NAPI mode (XDP or GRO on the
    // receiver), so turn GRO on for this check.
    let out = tb.run_server(&["ethtool", "-K", &tb.server_if, "gro", "on"]);
    assert!(out.status.success(), "{}", text(&out));
    let server_ip = tb.server_ip.to_string();
    let nproc = online_cpus();
    for cpu in 0..nproc.min(4) {
        let before = rx_queue_packets(&tb.server_ns, &tb.server_if, 2);
        let cpu_arg = cpu.to_string();
        let out = tb.run_client(&[
            "taskset", "-c", &cpu_arg, "ping", "-n", "-c3", "-i0.2", "-W1", &server_ip,
        ]);
        if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("taskset") {
            loud(&format!("note: cannot pin to CPU {cpu}: {}", text(&out)));
            continue;
        }
        assert!(out.status.success(), "pinned ping: {}", text(&out));
        let after = rx_queue_packets(&tb.server_ns, &tb.server_if, 2);
        let q = (cpu % 2) as usize;
        assert!(
            after[q] - before[q] >= 3,
            "CPU {cpu}: rx queue {q} got {} packets (before {before:?}, after {after:?})",
            after[q] - before[q]
        );
        assert_eq!(
            after[1 - q],
            before[1 - q],
            "CPU {cpu}: packets on the other rx queue (before {before:?}, after {after:?})"
        );
    }
}

#[test]
fn two_testbeds_at_once_do_not_collide() {
    let Some(a) = Testbed::up("twin", TestbedOptions::default()) else {
        return;
    };
    let Some(b) = Testbed::up("twin", TestbedOptions::default()) else {
        return;
    };
    assert_ne!(a.prefix(), b.prefix());
    assert_ne!(a.server_ns, b.server_ns);
    assert_ne!(a.client_ns, b.client_ns);
    assert_ne!(a.server_if, b.server_if);
    assert_ne!(a.server_mac, b.server_mac);
    assert!(ping_ok(&a, a.server_ip));
    assert!(ping_ok(&b, b.server_ip));
    // Each client resolved its own server.
    assert_eq!(
        neighbour_mac(&a.client_ns, a.server_ip).as_deref(),
        Some(a.server_mac.as_str())
    );
    assert_eq!(
        neighbour_mac(&b.client_ns, b.server_ip).as_deref(),
        Some(b.server_mac.as_str())
    );

    let a_names = namespaces(&a);
    drop(a);
    assert_gone(&a_names);
    assert!(
        ping_ok(&b, b.server_ip),
        "removing one testbed broke the other"
    );
}

#[test]
fn script_rejects_bad_arguments_with_exit_2_and_says_what_to_fix() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "no command"),
        (&["frobnicate"], "unknown command 'frobnicate'"),
        (&["up", "--bogus"], "unknown option '--bogus'"),
        (&["up", "--prefix"], "--prefix needs a value"),
        (&["up", "down"], "two commands"),
        (&["up", "--queues", "0"], "--queues '0'"),
        (&["up", "--queues", "two"], "--queues 'two'"),
        (&["up", "--queues", "257"], "--queues '257'"),
        (&["up", "--mtu", "20"], "--mtu '20'"),
        (&["up", "--loss", "10"], "--loss needs --router"),
        (&["up", "--router", "--loss", "1001"], "--loss '1001'"),
        (&["up", "--router", "--loss=-1"], "--loss '-1'"),
        (&["up", "--router=1"], "--router takes no value"),
        (&["up", "--bridge=1"], "--bridge takes no value"),
        (&["up", "--router", "--bridge"], "give one of them"),
        (&["up", "--bridge", "--loss", "10"], "xdp-tcp impair --loss"),
        (&["up", "--prefix", "much-too-long-prefix"], "--prefix"),
        (&["down", "--prefix", "bad/name"], "--prefix 'bad/name'"),
        (&["up", "--qdisc", "fq"], "--qdisc 'fq'"),
        (&["up", "--qdisc"], "--qdisc needs a value"),
    ];
    for (args, want) in cases {
        let out = script(args).output().expect("run the script");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(err.contains(want), "{args:?}: wanted {want:?} in:\n{err}");
        assert!(err.contains("--help"), "{args:?}: no pointer to --help");
        assert!(out.stdout.is_empty(), "{args:?}: printed facts on stdout");
    }
    // Environment defaults are checked the same way.
    let out = script(&["status"])
        .env("TESTBED_QUEUES", "many")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = script(&["status"])
        .env("TESTBED_ROUTER", "maybe")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = script(&["status"])
        .env("TESTBED_BRIDGE", "maybe")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let out = script(&["--help"]).output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("usage: deploy/testbed.sh up|down|status"));
}

/// Runs the script as an unprivileged user: directly when this process is
/// one, through `setpriv` as nobody when it is root (the script is fed on
/// stdin, so its file need not be readable by nobody).
fn script_as_nobody(args: &[&str]) -> Option<Output> {
    if !is_root() {
        return Some(script(args).output().expect("run"));
    }
    let body = std::fs::read(netns::SCRIPT).expect("read the script");
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "bash",
        "-s",
        "--",
    ])
    .args(args)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().ok()?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(&body).expect("feed the script");
    }
    Some(child.wait_with_output().expect("wait"))
}

#[test]
fn script_refuses_to_run_without_root() {
    let Some(out) = script_as_nobody(&["up", "--prefix", "nobody"]) else {
        skip_loudly(
            "script_refuses_to_run_without_root",
            "no setpriv to drop root",
        );
        return;
    };
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must run as root"), "{err}");
    assert!(!netns_exists("nobody-srv"));
}

#[test]
fn down_is_idempotent_and_status_tells_what_exists() {
    if !is_root() {
        skip_loudly(
            "down_is_idempotent_and_status_tells_what_exists",
            "needs root",
        );
        return;
    }
    let Some(tb) = Testbed::up("status", TestbedOptions::default()) else {
        return;
    };
    let prefix = tb.prefix().to_owned();
    let out = script(&["status", "--prefix", &prefix])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = stdout(&out);
    assert!(s.contains("state=up"), "{s}");
    assert!(
        s.contains(&format!("namespace {}: present", tb.server_ns)),
        "{s}"
    );
    assert!(s.contains("198.18.0.1/24"), "{s}");

    // A second `up` of the same prefix refuses and leaves the first alone.
    let out = script(&["up", "--prefix", &prefix]).output().expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert!(ping_ok(&tb, tb.server_ip));

    // A process left inside does not keep the namespace alive.
    let mut cmd = tb.in_client("sleep");
    cmd.arg("600");
    let mut sleeper = Child::spawn(cmd).expect("spawn sleep");
    for _ in 0..2 {
        let out = script(&["down", "--prefix", &prefix])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    assert!(
        sleeper.wait_exit(Duration::from_secs(5)).is_some(),
        "down left a process running in the namespace"
    );
    let out = script(&["status", "--prefix", &prefix])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(stdout(&out).contains("state=down"));
    assert_gone(&namespaces(&tb));
    drop(tb); // a third `down`, from Drop, is fine too
}

/// `xdp-tcp impair` in the router namespace of a bridge testbed, with
/// `args` after the two interfaces; waits for its `ready` line.
fn start_relay(tb: &Testbed, args: &[&str]) -> Child {
    let rc = tb.fact("router_client_if").expect("router_client_if");
    let rs = tb.fact("router_server_if").expect("router_server_if");
    let mut cmd = tb.in_router(env!("CARGO_BIN_EXE_xdp-tcp"));
    cmd.args(["impair", "--a", rc, "--b", rs]).args(args);
    let mut relay = Child::spawn(cmd).expect("spawn xdp-tcp impair");
    relay
        .wait_for_line("ready", READY_TIMEOUT)
        .unwrap_or_else(|e| panic!("the relay did not start: {e}"));
    relay
}

#[test]
fn bridge_passes_nothing_until_a_relay_bridges_it() {
    let before = is_root().then(root_snapshot);
    let opts = TestbedOptions {
        bridge: true,
        ..TestbedOptions::default()
    };
    let Some(tb) = Testbed::up("bridge", opts) else {
        return;
    };
    let rtr = tb.router_ns.clone().expect("router namespace");
    let rc = tb
        .fact("router_client_if")
        .expect("router_client_if")
        .to_owned();
    let rs = tb
        .fact("router_server_if")
        .expect("router_server_if")
        .to_owned();
    assert_eq!(tb.fact("mode"), Some("bridge"));
    // One subnet; the server sends straight to the client's MAC.
    assert_eq!(tb.client_ip, Ipv4Addr::new(198, 18, 0, 2));
    assert_eq!(tb.server_ip, Ipv4Addr::new(198, 18, 0, 1));
    assert_eq!(tb.gateway_mac, tb.client_mac);
    assert_eq!(tb.fact("gateway_ip"), Some("198.18.0.2"));

    // The router is no router: no addresses, no forwarding, promiscuous
    // interfaces with offloads off.
    let addrs = stdout(&in_ns(&rtr, &["ip", "-4", "-o", "addr", "show"]));
    assert!(
        addrs.lines().all(|l| l.contains(" lo ")),
        "the bridge has addresses:\n{addrs}"
    );
    assert_eq!(read_in_ns(&rtr, "/proc/sys/net/ipv4/ip_forward"), "0");
    for dev in [&rc, &rs] {
        let link = stdout(&in_ns(&rtr, &["ip", "link", "show", dev]));
        assert!(link.contains("PROMISC"), "{dev} not promiscuous:\n{link}");
        assert_sender_offloads_off(&rtr, dev);
    }
    // Kernel senders at both ends checksum their own frames.
    assert_sender_offloads_off(&tb.client_ns, &tb.client_if);
    assert_sender_offloads_off(&tb.server_ns, &tb.server_if);

    assert!(
        !ping_once(&tb, tb.server_ip),
        "a ping crossed the bridge without a relay"
    );

    let relay = start_relay(&tb, &[]);
    assert!(ping_ok(&tb, tb.server_ip), "no ping through the relay");
    tcp_exchange(&tb, 7002);
    // L2 unchanged: each end resolved the other's own MAC.
    assert_eq!(
        neighbour_mac(&tb.client_ns, tb.server_ip).as_deref(),
        Some(tb.server_mac.as_str())
    );
    relay.signal(15);
    let mut relay = relay;
    let status = relay
        .wait_exit(READY_TIMEOUT)
        .expect("the relay exits on SIGTERM");
    assert!(status.success(), "relay: {}", relay.stderr_so_far());
    let out = relay.stdout_so_far();
    let stat = |dir: &str, key: &str| -> u64 {
        out.lines()
            .find(|l| l.starts_with(&format!("stats dir={dir} ")))
            .and_then(|l| {
                l.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} for {dir} in:\n{out}"))
    };
    for dir in ["a->b", "b->a"] {
        // Pings and a TCP exchange, all delivered (a perfect link).
        assert!(stat(dir, "offered") >= 5, "{out}");
        assert_eq!(stat(dir, "delivered"), stat(dir, "offered"), "{out}");
        assert_eq!(stat(dir, "dropped"), 0, "{out}");
        // ARP passed unimpaired.
        assert!(stat(dir, "passed_unimpaired") >= 1, "{out}");
        assert_eq!(stat(dir, "oversize"), 0, "{out}");
    }
    assert_root_untouched(before.as_ref().expect("root"), &tb);
}

/// `--client-addrs` adds reachable secondary client addresses (a kernel
/// server sees a connection from one of them), and the offload levels
/// reach both ends, at `up` and later through `offloads`.
#[test]
fn extra_client_addresses_and_offload_levels() {
    let opts = TestbedOptions {
        client_addrs: 2,
        server_offloads: Some(Offloads::Off),
        ..TestbedOptions::default()
    };
    let Some(tb) = Testbed::up("addrs", opts) else {
        return;
    };
    assert_eq!(
        tb.client_addrs,
        vec![Ipv4Addr::new(198, 18, 0, 3), Ipv4Addr::new(198, 18, 0, 4)]
    );
    assert_eq!(tb.fact("server_offloads"), Some("off"));
    assert_sender_offloads_off(&tb.client_ns, &tb.client_if);
    assert_sender_offloads_off(&tb.server_ns, &tb.server_if);
    // The server reaches an extra address (the client's kernel answers
    // ARP for it and replies from it).
    let out = tb.run_server(&["ping", "-n", "-c1", "-W2", "198.18.0.4"]);
    assert!(out.status.success(), "{}", text(&out));

    tb.set_offloads(Some(Offloads::NoCsum), Some(Offloads::On));
    let c = features(&tb.client_ns, &tb.client_if);
    assert_eq!(c["tx-checksumming"], "off", "{c:?}");
    assert_eq!(c["generic-segmentation-offload"], "on", "{c:?}");
    assert_eq!(c["generic-receive-offload"], "on", "{c:?}");
    let s = features(&tb.server_ns, &tb.server_if);
    for f in [
        "tx-checksumming",
        "tcp-segmentation-offload",
        "generic-segmentation-offload",
        "generic-receive-offload",
    ] {
        assert_eq!(s[f], "on", "{f}: {s:?}");
    }
    tcp_exchange(&tb, 5000);
}

/// `tc qdisc show dev IFNAME` in `ns`, with statistics.
fn qdiscs(ns: &str, ifname: &str) -> String {
    stdout(&in_ns(ns, &["tc", "-s", "qdisc", "show", "dev", ifname]))
}

/// The most bytes any qdisc in `tc -s qdisc show` output sent (the root,
/// or under mq each per-queue one).
fn qdisc_sent_bytes(shown: &str) -> u64 {
    shown
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Sent "))
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

#[test]
fn qdisc_is_set_on_both_ends_and_carries_the_traffic() {
    for queues in [1, 2] {
        let opts = TestbedOptions {
            queues,
            qdisc: Some("pfifo_fast"),
            ..TestbedOptions::default()
        };
        let Some(tb) = Testbed::up("qdisc", opts) else {
            return;
        };
        assert_eq!(tb.fact("qdisc"), Some("pfifo_fast"));
        tcp_exchange(&tb, 5000);
        for (ns, ifname) in [
            (&tb.client_ns, &tb.client_if),
            (&tb.server_ns, &tb.server_if),
        ] {
            let shown = qdiscs(ns, ifname);
            let fifos = shown.matches("qdisc pfifo_fast").count();
            assert_eq!(
                fifos, queues as usize,
                "{ifname}, {queues} queue(s):\n{shown}"
            );
            if queues > 1 {
                assert!(shown.contains("qdisc mq 1: root"), "{ifname}:\n{shown}");
            }
            assert!(!shown.contains("noqueue"), "{ifname}:\n{shown}");
            // Both ends sent the exchange's frames through it.
            assert!(
                qdisc_sent_bytes(&shown) > 0,
                "{ifname} sent nothing:\n{shown}"
            );
        }
    }
}

#[test]
fn without_a_qdisc_option_the_veths_have_none() {
    let Some(tb) = Testbed::up("noqdisc", TestbedOptions::default()) else {
        return;
    };
    assert_eq!(tb.fact("qdisc"), Some("noqueue"));
    for (ns, ifname) in [
        (&tb.client_ns, &tb.client_if),
        (&tb.server_ns, &tb.server_if),
    ] {
        let shown = qdiscs(ns, ifname);
        assert!(shown.contains("qdisc noqueue"), "{ifname}:\n{shown}");
    }
}

#[test]
fn bad_extra_address_counts_and_offload_levels_are_refused() {
    for args in [
        ["up", "--client-addrs", "253"],
        ["up", "--client-offloads", "maybe"],
        ["up", "--server-offloads", "fast"],
    ] {
        let out = script(&args).output().expect("run the script");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(args[1]), "{args:?}: {err}");
    }
    let out = script(&["offloads", "--prefix", "x"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
