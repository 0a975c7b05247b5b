//! The fast path against the Linux kernel's own TCP: `xdp-tcp serve` in a
//! server namespace, curl / wrk / nc / Python sockets in a client
//! namespace, joined by the veth testbed (deploy/testbed.sh). Needs root;
//! without it every test says loudly that it was skipped.

#[path = "support/fastpath.rs"]
mod fastpath;
#[path = "support/netns.rs"]
mod netns;

use std::process::{Command, Output};
use std::time::Duration;

use fastpath::{assert_ok, serve, stat, stop, BIN, CLIENT_PY};
use netns::{Child, Testbed, TestbedOptions};

fn py(tb: &Testbed, mode: &str, port: u16, bytes: u64) -> Output {
    tb.run_client(&[
        "python3",
        CLIENT_PY,
        mode,
        &tb.server_ip.to_string(),
        &port.to_string(),
        &bytes.to_string(),
    ])
}

#[test]
fn curl_wrk_and_keepalive_against_http() {
    let Some(tb) = Testbed::up("http", TestbedOptions::default()) else {
        return;
    };
    let server = serve(&tb, 8080, &["--app", "http", "--body-bytes", "64"]);
    let url = format!("http://{}:8080/", tb.server_ip);

    let out = tb.run_client(&["curl", "-s", "-i", "--max-time", "10", &url]);
    let text = assert_ok(&out, "curl");
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(
        text.ends_with(&"abcdefghijklmnopqrstuvwxyz".repeat(3)[..64]),
        "{text}"
    );

    // 1000 sequential requests on one keep-alive connection (URL globbing).
    let glob = format!("http://{}:8080/[1-1000]", tb.server_ip);
    let out = tb.run_client(&[
        "curl",
        "-s",
        "--max-time",
        "60",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}\\n",
        &glob,
    ]);
    let codes = assert_ok(&out, "curl x1000");
    assert_eq!(
        codes.lines().filter(|l| *l == "200").count(),
        1000,
        "{codes}"
    );

    // 100 sequential requests each on a new connection.
    for i in 0..100 {
        let out = tb.run_client(&[
            "curl",
            "-s",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &url,
        ]);
        assert_eq!(assert_ok(&out, "curl"), "200", "request {i}");
    }

    let out = tb.run_client(&["wrk", "-t", "2", "-c", "64", "-d", "5s", &url]);
    let report = assert_ok(&out, "wrk");
    assert!(!report.contains("Socket errors"), "{report}");
    let rps: f64 = report
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(rps > 0.0, "{report}");
    eprintln!("wrk against the fast path: {rps:.0} requests/s");
    let summary = stop(server);
    // 1 + 1 (the 1000 requests share one keep-alive connection) + 100 + 64 (wrk).
    assert!(
        stat(&summary, "stats worker", "accepted") >= 166,
        "{summary}"
    );
}

#[test]
fn echo_discard_and_source_move_100_megabytes_intact() {
    let Some(tb) = Testbed::up("bulk", TestbedOptions::default()) else {
        return;
    };
    let echo = serve(&tb, 7, &["--app", "echo"]);
    assert_ok(&py(&tb, "echo", 7, 100_000_000), "python echo 100 MB");
    stop(echo);
    let discard = serve(&tb, 9, &["--app", "discard"]);
    assert_ok(
        &py(&tb, "send", 9, 100_000_000),
        "python send 100 MB to discard",
    );
    stop(discard);
    let source = serve(&tb, 19, &["--app", "source", "--bytes", "100000000"]);
    assert_ok(
        &py(&tb, "recv", 19, 100_000_000),
        "python recv 100 MB from source",
    );
    stop(source);
}

/// One request with `Connection: close` (we answer and close first).
fn curl_connection_close(tb: &Testbed, url: &str) {
    let out = tb.run_client(&[
        "curl",
        "-s",
        "-i",
        "-H",
        "Connection: close",
        "--max-time",
        "10",
        url,
    ]);
    assert!(assert_ok(&out, "curl").contains("Connection: close"));
}

#[test]
fn close_semantics_seen_from_the_linux_peer() {
    let Some(tb) = Testbed::up("close", TestbedOptions::default()) else {
        return;
    };
    // `Connection: close`: we send the FIN first and hold TIME-WAIT, so the
    // Linux client ends up with no TIME-WAIT socket of its own.
    let http = serve(&tb, 8080, &["--app", "http"]);
    let url = format!("http://{}:8080/", tb.server_ip);
    curl_connection_close(&tb, &url);
    let ss = tb.run_client(&["ss", "-tan", "state", "time-wait"]);
    let tw = String::from_utf8_lossy(&ss.stdout);
    assert!(
        !tw.contains(":8080"),
        "the client should not hold TIME-WAIT:\n{tw}"
    );
    let summary = stop(http);
    assert!(
        stat(&summary, "stats worker", "time_wait") >= 1,
        "our side holds TIME-WAIT:\n{summary}"
    );
    assert_eq!(
        stat(&summary, "stats worker", "time_wait_overflow"),
        0,
        "{summary}"
    );

    // With no TIME-WAIT allowed (`--max-time-wait 0`, Linux's
    // tcp_max_tw_buckets = 0) the same exchange works and ends without one.
    let http = serve(&tb, 8080, &["--app", "http", "--max-time-wait", "0"]);
    curl_connection_close(&tb, &url);
    let summary = stop(http);
    assert_eq!(stat(&summary, "stats worker", "time_wait"), 0, "{summary}");
    assert!(
        stat(&summary, "stats worker", "time_wait_overflow") >= 1,
        "{summary}"
    );

    // Half-close: the peer's shutdown(SHUT_WR) still gets the echo, then our FIN.
    let echo = serve(&tb, 7, &["--app", "echo"]);
    assert_ok(&py(&tb, "halfclose", 7, 1_000_000), "half-close echo");
    stop(echo);

    // Unread data at close time: the peer's recv fails with ECONNRESET.
    let hold = serve(&tb, 5000, &["--app", "hold", "--hold-ms", "300"]);
    let out = assert_ok(&py(&tb, "hold", 5000, 1000), "hold");
    assert!(out.contains("ok reset"), "{out}");
    stop(hold);
}

/// RFC 6191 against Linux clients: our server closes first (`Connection:
/// close`), so every tuple sits in TIME-WAIT on our side for 60 s, while
/// clients with a port range 100 ports wide reuse them within
/// milliseconds. Every reused tuple's SYN must reopen our TIME-WAIT
/// (Linux's ISNs and timestamps grow with time) without an error, a
/// timeout or a retried SYN.
#[test]
fn linux_clients_reuse_ports_our_time_wait_holds() {
    let Some(tb) = Testbed::up("twreuse", TestbedOptions::default()) else {
        return;
    };
    assert_ok(
        &tb.run_client(&["sysctl", "-qw", "net.ipv4.ip_local_port_range=40000 40099"]),
        "narrowing the client's port range",
    );
    let http = serve(&tb, 8080, &["--app", "http"]);
    let url = format!("http://{}:8080/", tb.server_ip);
    let out = tb.run_client(&[
        "wrk",
        "-t",
        "1",
        "-c",
        "4",
        "-d",
        "2s",
        "-H",
        "Connection: close",
        &url,
    ]);
    let report = assert_ok(&out, "wrk");
    let summary = stop(http);
    assert!(!report.contains("Socket errors"), "{report}");
    let requests: u64 = report
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // Ten times the port range at least: most tuples were reused, many
    // of them more than once. (A SYN refused by our TIME-WAIT costs the
    // client a 1 s retry, which 2 s could not absorb.)
    assert!(requests >= 1000, "{report}");
    let recycled = stat(&summary, "stats worker", "time_wait_recycled");
    assert!(
        recycled + 100 >= requests,
        "{requests} requests over 100 ports, {recycled} TIME-WAITs reopened:\n{summary}"
    );
    assert_eq!(
        stat(&summary, "stats worker", "listen_drops"),
        0,
        "{summary}"
    );
    eprintln!("{requests} connections over 100 client ports, {recycled} TIME-WAITs reopened");
}

#[test]
fn the_host_keeps_working_while_we_serve() {
    let Some(tb) = Testbed::up("host", TestbedOptions::default()) else {
        return;
    };
    let http = serve(&tb, 8080, &["--app", "http"]);
    // ICMP goes to the kernel.
    let ping = tb.run_client(&["ping", "-c", "2", "-W", "2", &tb.server_ip.to_string()]);
    assert_ok(&ping, "ping while serving");
    // A port we do not own: the kernel answers (RST, so refused).
    let out = assert_ok(&py(&tb, "connect", 9999, 0), "connect to an unowned port");
    assert_eq!(out.trim(), "refused");
    // A kernel listener on another port of the same address still works.
    let mut listener = Child::spawn({
        let mut c = tb.in_server("python3");
        c.args(["-c", "import socket,sys\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',9000))\ns.listen()\nprint('listening',flush=True)\nc,_=s.accept()\nc.sendall(b'kernel')\nc.close()"]);
        c
    })
    .unwrap();
    listener
        .wait_for_line("listening", Duration::from_secs(10))
        .unwrap();
    let out = tb.run_client(&["python3", "-c", &format!("import socket\ns=socket.create_connection(('{}',9000),timeout=5)\nprint(s.recv(16).decode())", tb.server_ip)]);
    assert_eq!(assert_ok(&out, "kernel listener").trim(), "kernel");
    let summary = stop(http);
    assert!(stat(&summary, "stats xdp", "passed") > 0, "{summary}");
    assert!(
        stat(&summary, "stats xdp", "redirected") == 0,
        "nothing was ours: {summary}"
    );
}

#[test]
fn two_workers_on_two_queues_both_carry_connections() {
    let opts = TestbedOptions {
        queues: 2,
        ..TestbedOptions::default()
    };
    let Some(tb) = Testbed::up("mq", opts) else {
        return;
    };
    let http = serve(&tb, 8080, &["--app", "http", "--workers", "2"]);
    let url = format!("http://{}:8080/", tb.server_ip);
    // XPS pins the client's transmit queue to its CPU: clients on CPU 0 and
    // CPU 1 reach the server on different receive queues.
    for cpu in ["0", "1"] {
        for _ in 0..20 {
            let out = tb.run_client(&[
                "taskset",
                "-c",
                cpu,
                "curl",
                "-s",
                "--max-time",
                "10",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &url,
            ]);
            assert_eq!(assert_ok(&out, "curl"), "200");
        }
    }
    let summary = stop(http);
    let per_worker: Vec<u64> = (0..2)
        .map(|w| stat(&summary, &format!("stats worker={w} "), "accepted"))
        .collect();
    assert!(
        per_worker.iter().all(|&n| n > 0),
        "both workers must accept: {summary}"
    );
    assert_eq!(
        stat(&summary, "stats worker", "handed_off"),
        0,
        "a flow moved between workers: {summary}"
    );
    // Each worker reports its socket's kernel drops; a few requests drop
    // nothing.
    for key in ["xsk_rx_ring_full", "xsk_rx_dropped", "xsk_fill_ring_empty"] {
        let reported = summary
            .lines()
            .filter(|l| l.starts_with("stats worker="))
            .filter(|l| l.contains(&format!(" {key}=")))
            .count();
        assert_eq!(reported, 2, "{key} not reported by both workers: {summary}");
        assert_eq!(stat(&summary, "stats worker", key), 0, "{summary}");
    }
}

#[test]
fn serve_starts_again_at_once_after_sigkill() {
    let Some(tb) = Testbed::up("kill", TestbedOptions::default()) else {
        return;
    };
    let url = format!("http://{}:8080/", tb.server_ip);
    let first = serve(&tb, 8080, &["--app", "http"]);
    first.signal(9);
    drop(first);
    let second = serve(&tb, 8080, &["--app", "http"]);
    let out = tb.run_client(&[
        "curl",
        "-s",
        "--max-time",
        "10",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &url,
    ]);
    assert_eq!(assert_ok(&out, "curl after restart"), "200");
    stop(second);
    // Nothing stays attached after a clean exit either.
    let link = Command::new("ip")
        .args([
            "netns",
            "exec",
            &tb.server_ns,
            "ip",
            "-d",
            "link",
            "show",
            &tb.server_if,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&link.stdout);
    assert!(
        !text.contains("prog/xdp"),
        "XDP program left attached:\n{text}"
    );
}

#[test]
fn serve_rejects_bad_configuration_with_a_message() {
    let Some(tb) = Testbed::up("cfg", TestbedOptions::default()) else {
        return;
    };
    let run = |args: &[&str]| {
        let mut cmd = tb.in_server(BIN);
        cmd.arg("serve").args(args);
        cmd.output().unwrap()
    };
    let ip = tb.server_ip.to_string();
    // `--iface IFACE --addr ADDR --port 80 --app APP` and extra flags.
    let args = |iface: &str, addr: &str, app: &str, extra: &[&str]| -> Vec<String> {
        [
            "--iface", iface, "--addr", addr, "--port", "80", "--app", app,
        ]
        .iter()
        .chain(extra)
        .map(|a| a.to_string())
        .collect()
    };
    let good_if = tb.server_if.as_str();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (args("nosuch0", &ip, "http", &[]), "not found"),
        (args(good_if, "198.19.9.9", "http", &[]), "is not on"),
        (
            args(good_if, &ip, "http", &["--workers", "4"]),
            "receive queue",
        ),
        (
            args(good_if, &ip, "http", &["--cores", "5000"]),
            "--cores names core 5000, which this process may not run on",
        ),
        (args(good_if, &ip, "nosuch", &[]), "invalid value"),
        (args(good_if, "not-an-ip", "http", &[]), "invalid value"),
    ];
    for (args, expect) in cases {
        let out = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            err.contains(expect),
            "{args:?}: expected '{expect}' in: {err}"
        );
    }
    // Without privileges (as nobody, with no capabilities).
    let out = tb
        .in_server("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            BIN,
            "serve",
        ])
        .args([
            "--iface",
            &tb.server_if,
            "--addr",
            &ip,
            "--port",
            "80",
            "--app",
            "http",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("run as root") && err.contains("CAP_BPF"),
        "{err}"
    );
    // A port the kernel already listens on.
    let mut listener = Child::spawn({
        let mut c = tb.in_server("python3");
        c.args(["-c", "import socket,time\ns=socket.socket()\ns.bind(('0.0.0.0',8081))\ns.listen()\nprint('listening',flush=True)\ntime.sleep(30)"]);
        c
    })
    .unwrap();
    listener
        .wait_for_line("listening", Duration::from_secs(10))
        .unwrap();
    let out = run(&[
        "--iface",
        &tb.server_if,
        "--addr",
        &ip,
        "--port",
        "8081",
        "--app",
        "http",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already listens"));
    // Nothing may stay attached after a refused start.
    let link = Command::new("ip")
        .args([
            "netns",
            "exec",
            &tb.server_ns,
            "ip",
            "-d",
            "link",
            "show",
            &tb.server_if,
        ])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&link.stdout).contains("prog/xdp"));
}

#[test]
fn the_kernel_twin_answers_byte_identically() {
    let Some(tb) = Testbed::up("twin", TestbedOptions::default()) else {
        return;
    };
    let fast = serve(&tb, 8080, &["--app", "http", "--body-bytes", "100"]);
    let mut twin = Child::spawn({
        let mut c = tb.in_server(BIN);
        c.args([
            "kernel-serve",
            "--addr",
            &tb.server_ip.to_string(),
            "--port",
            "8081",
            "--body-bytes",
            "100",
            "--threads",
            "1",
        ]);
        c
    })
    .unwrap();
    twin.wait_for_line("ready", Duration::from_secs(10))
        .unwrap();
    let fetch = |port: u16, extra: &[&str]| {
        let url = format!("http://{}:{port}/", tb.server_ip);
        let mut args = vec!["curl", "-s", "-i", "--max-time", "10"];
        args.extend_from_slice(extra);
        args.push(&url);
        assert_ok(&tb.run_client(&args), "curl")
    };
    for extra in [
        &[][..],
        &["-H", "Connection: close"][..],
        &["-X", "POST", "-d", "x"][..],
    ] {
        assert_eq!(
            fetch(8080, extra),
            fetch(8081, extra),
            "responses differ for {extra:?}"
        );
    }
    stop(fast);
    twin.signal(15);
    let status = twin
        .wait_exit(Duration::from_secs(10))
        .expect("kernel-serve exits");
    assert!(status.success());
    assert!(
        twin.stdout_so_far()
            .contains("stats kernel accepted=3 requests=3"),
        "{}",
        twin.stdout_so_far()
    );
}

/// Runs `f` on a thread that entered network namespace `ns`.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("namespace file");
        use std::os::fd::AsRawFd;
        // SAFETY: setns on a valid namespace fd only changes this thread's
        // network namespace; the thread ends after `f`.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns({path})");
        f()
    })
    .join()
    .expect("namespace thread")
}

#[test]
fn next_hops_resolve_from_the_kernel_neighbour_table() {
    use xdp_tcp::runtime::neighbor::{next_hop, resolve};
    use xdp_tcp::wire::MacAddr;
    // On-link: the client itself is the next hop.
    let Some(tb) = Testbed::up("nbr", TestbedOptions::default()) else {
        return;
    };
    let (iface, ip) = (tb.server_if.clone(), tb.client_ip);
    let got = in_netns(&tb.server_ns, move || {
        (
            next_hop(&iface, ip),
            resolve(&iface, ip, None, Duration::from_secs(3)),
        )
    });
    assert_eq!(got.0, Ok(ip));
    assert_eq!(got.1, Ok(tb.client_mac.parse::<MacAddr>().unwrap()));
    drop(tb);
    // Off-link, through the router: the gateway is the next hop, and the
    // kernel is made to resolve it first.
    let opts = TestbedOptions {
        router: true,
        ..TestbedOptions::default()
    };
    let Some(tb) = Testbed::up("nbr", opts) else {
        return;
    };
    let (iface, ip) = (tb.server_if.clone(), tb.client_ip);
    let got = in_netns(&tb.server_ns, move || {
        (
            next_hop(&iface, ip),
            resolve(&iface, ip, None, Duration::from_secs(3)),
        )
    });
    assert_ne!(
        got.0,
        Ok(ip),
        "an off-link destination goes via the gateway"
    );
    assert_eq!(got.1, Ok(tb.gateway_mac.parse::<MacAddr>().unwrap()));
}

#[test]
fn a_running_servers_control_thread_wakes_rarely() {
    let Some(tb) = Testbed::up("ctl", TestbedOptions::default()) else {
        return;
    };
    let server = serve(&tb, 8080, &["--app", "http"]);
    // The main thread is serve's control thread: it may share a
    // worker's core, and each of its wake-ups preempts that worker.
    let before = server.main_thread_wakeups();
    std::thread::sleep(Duration::from_secs(2));
    let woke = server.main_thread_wakeups() - before;
    // One look every CONTROL_POLL (100 ms): about 20 in 2 s (looking
    // every 20 ms, as before, was about 100).
    assert!(woke <= 40, "the control thread woke {woke} times in 2 s");
    stop(server);
}
