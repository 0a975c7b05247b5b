//! `xdp-tcp load --stack fast` against `xdp-tcp serve` (fast path on both
//! sides) and against a kernel server, in the veth testbed. Counts and
//! integrity only, never speed. Needs root; without it every test says
//! loudly that it was skipped.

#[path = "support/fastpath.rs"]
mod fastpath;
#[path = "support/netns.rs"]
mod netns;

use fastpath::{kernel_echo, serve, stop, BIN};
use netns::{Testbed, TestbedOptions};
use xdp_tcp::load::LoadReport;

/// Runs `xdp-tcp load --stack fast` in the client namespace with `extra`
/// flags; returns the JSON report, or the failure's stderr.
fn load(tb: &Testbed, target_port: u16, extra: &[&str]) -> Result<LoadReport, String> {
    let json =
        std::env::temp_dir().join(format!("xdp-tcp-load-{}-{}.json", tb.prefix(), target_port));
    let target = format!("{}:{target_port}", tb.server_ip);
    let mut args = vec![
        BIN,
        "load",
        "--stack",
        "fast",
        "--iface",
        &tb.client_if,
        "--target",
        &target,
        "--duration",
        "1s",
        "--warmup",
        "300ms",
        "--json",
        json.to_str().unwrap(),
    ];
    let addr = tb.client_ip.to_string();
    args.extend(["--addr", &addr]);
    args.extend(extra);
    let out = tb.run_client(&args);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = std::fs::read_to_string(&json).expect("the --json file");
    let _ = std::fs::remove_file(&json);
    Ok(serde_json::from_str(&text).expect("one LoadReport"))
}

fn assert_clean(r: &LoadReport) {
    assert_eq!(r.stack, "fast");
    assert_eq!((r.errors, r.connect_errors), (0, 0), "{r:?}");
}

/// 64-byte echoes: the bytes received in the window are the responses
/// counted, give or take one partial response per connection at its edges.
fn assert_echoes(r: &LoadReport) {
    assert!(r.requests > 0, "{r:?}");
    let slack = 64 * r.connections as u64 * 2;
    assert!(r.bytes_received.abs_diff(r.requests * 64) <= slack, "{r:?}");
}

#[test]
fn load_against_the_fast_path_echo_and_discard() {
    let opts = TestbedOptions {
        queues: 2,
        ..TestbedOptions::default()
    };
    let Some(tb) = Testbed::up("lff", opts) else {
        return;
    };
    let echo = serve(&tb, 7, &["--app", "echo", "--workers", "2"]);
    let r = load(
        &tb,
        7,
        &["--workload", "rpc", "--connections", "8", "--threads", "2"],
    )
    .unwrap();
    assert_clean(&r);
    assert_echoes(&r);
    assert!(r.latency_us.is_some());
    eprintln!("fast -> fast rpc: {:.0} requests/s", r.requests_per_sec);
    let r = load(
        &tb,
        7,
        &[
            "--workload",
            "short",
            "--connections",
            "4",
            "--threads",
            "2",
        ],
    )
    .unwrap();
    assert_clean(&r);
    assert!(r.requests > 0 && r.connects > 0, "{r:?}");
    eprintln!(
        "fast -> fast short: {:.0} connections/s",
        r.connections_per_sec
    );
    // Open loop with idle connections first.
    let r = load(
        &tb,
        7,
        &[
            "--workload",
            "rpc",
            "--connections",
            "4",
            "--rate",
            "1000",
            "--idle-connections",
            "200",
            "--threads",
            "2",
        ],
    )
    .unwrap();
    assert_clean(&r);
    assert!(r.requests > 0 && r.idle_connections == 200, "{r:?}");
    stop(echo);

    let discard = serve(&tb, 9, &["--app", "discard", "--workers", "2"]);
    let r = load(&tb, 9, &["--workload", "bulk-send", "--threads", "2"]).unwrap();
    assert_clean(&r);
    assert!(r.bytes_sent > 0, "{r:?}");
    eprintln!("fast -> fast bulk-send: {:.3} Gbit/s", r.gbit_per_sec);
    stop(discard);

    // bulk-recv verifies every byte against source's pattern.
    let source = serve(
        &tb,
        19,
        &["--app", "source", "--bytes", "100G", "--workers", "2"],
    );
    let r = load(&tb, 19, &["--workload", "bulk-recv", "--threads", "2"]).unwrap();
    assert_clean(&r);
    assert!(r.bytes_received > 0, "{r:?}");
    eprintln!("fast -> fast bulk-recv: {:.3} Gbit/s", r.gbit_per_sec);
    stop(source);

    let http = serve(&tb, 80, &["--app", "http", "--workers", "2"]);
    let r = load(
        &tb,
        80,
        &["--workload", "http", "--connections", "4", "--threads", "2"],
    )
    .unwrap();
    assert_clean(&r);
    assert!(r.requests > 0, "{r:?}");
    stop(http);
}

#[test]
fn load_against_a_kernel_echo_and_a_closed_port() {
    let Some(tb) = Testbed::up("lfk", TestbedOptions::default()) else {
        return;
    };
    let _echo = kernel_echo(&tb, 7000);
    for workload in ["rpc", "short"] {
        let r = load(
            &tb,
            7000,
            &[
                "--workload",
                workload,
                "--connections",
                "8",
                "--pipeline",
                "1",
            ],
        )
        .unwrap();
        assert_clean(&r);
        assert_echoes(&r);
        eprintln!(
            "fast -> kernel {workload}: {:.0} requests/s",
            r.requests_per_sec
        );
    }
    let r = load(&tb, 7001, &["--workload", "bulk-send"]).unwrap();
    assert_clean(&r);
    assert!(r.bytes_sent > 0, "{r:?}");
    eprintln!("fast -> kernel bulk-send: {:.3} Gbit/s", r.gbit_per_sec);
    let err = load(&tb, 7002, &["--workload", "rpc"]).unwrap_err();
    assert!(err.contains("cannot connect to"), "{err}");
}

#[test]
fn load_rejects_bad_configuration_with_a_message() {
    let Some(tb) = Testbed::up("lfb", TestbedOptions::default()) else {
        return;
    };
    let target = format!("{}:7", tb.server_ip);
    let addr = tb.client_ip.to_string();
    let base = [
        BIN,
        "load",
        "--stack",
        "fast",
        "--target",
        &target,
        "--workload",
        "rpc",
        "--duration",
        "1s",
    ];
    let fails_with = |extra: &[&str], message: &str| {
        let mut args = base.to_vec();
        args.extend(extra);
        let out = tb.run_client(&args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{extra:?} should fail");
        assert!(stderr.contains(message), "{extra:?}: {stderr}");
    };
    fails_with(&["--addr", &addr], "needs --iface");
    let iface = ["--iface", tb.client_if.as_str(), "--addr", addr.as_str()];
    let mut overlap = iface.to_vec();
    overlap.extend(["--local-ports", "40000-40100"]);
    fails_with(&overlap, "overlaps the kernel's ephemeral ports");
    let mut stranger = iface.to_vec();
    stranger.extend(["--source-addr", "198.18.0.77"]);
    fails_with(&stranger, "198.18.0.77 is not on");
    let mut bad_size = iface.to_vec();
    bad_size.extend(["--request-bytes", "10", "--response-bytes", "20"]);
    fails_with(&bad_size, "--response-bytes");
    let mut bad_neighbor = iface.to_vec();
    bad_neighbor.extend(["--neighbor-reachable-ms", "5"]);
    fails_with(&bad_neighbor, "--neighbor-reachable-ms");
}

#[test]
fn the_load_clients_control_thread_wakes_rarely_during_the_run() {
    let Some(tb) = Testbed::up("lctl", TestbedOptions::default()) else {
        return;
    };
    let server = serve(&tb, 7000, &["--app", "echo"]);
    let target = format!("{}:7000", tb.server_ip);
    let addr = tb.client_ip.to_string();
    let mut cmd = tb.in_client(BIN);
    cmd.args(["load", "--stack", "fast", "--iface", &tb.client_if])
        .args(["--addr", &addr, "--target", &target])
        .args(["--workload", "rpc", "--connections", "8"])
        .args(["--warmup", "500ms", "--duration", "3s"]);
    let mut client = netns::Child::spawn(cmd).expect("spawn load");
    // The control side is the main thread; in
    // the bench it shares the worker's core, and each wake-up preempts it.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let before = client.main_thread_wakeups();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let woke = client.main_thread_wakeups() - before;
    // One look every RUN_TICK (100 ms): about 10 a second (every 5 ms,
    // as before, was about 200).
    assert!(woke <= 30, "the control thread woke {woke} times in 1 s");
    let status = client
        .wait_exit(std::time::Duration::from_secs(30))
        .expect("load finishes");
    assert!(status.success(), "{}", client.stderr_so_far());
    stop(server);
}

/// A client that runs out of local ports says so: connects that found
/// every port busy (each in TIME-WAIT, reusable 1 s later) are counted as
/// waits in the report, not as connect errors, once per wait, and the
/// command warns that its port space bounded the run. Both clients, each
/// given 32 ports towards the server.
#[test]
fn a_client_out_of_ports_reports_waits_not_errors() {
    let Some(tb) = Testbed::up("lpw", TestbedOptions::default()) else {
        return;
    };
    let echo = serve(&tb, 7, &["--app", "echo"]);
    let target = format!("{}:7", tb.server_ip);
    let json = std::env::temp_dir().join(format!("xdp-tcp-load-{}-waits.json", tb.prefix()));
    let run = |stack: &str, extra: &[&str]| -> (LoadReport, String) {
        let mut args = vec![BIN, "load", "--stack", stack, "--target", &target];
        args.extend(["--workload", "short", "--connections", "4"]);
        args.extend(["--duration", "2s", "--warmup", "300ms"]);
        args.extend(["--json", json.to_str().unwrap()]);
        args.extend(extra);
        let out = tb.run_client(&args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stack}: {stderr}");
        let text = std::fs::read_to_string(&json).expect("the --json file");
        let _ = std::fs::remove_file(&json);
        (serde_json::from_str(&text).expect("one LoadReport"), stderr)
    };
    let check = |stack: &str, (r, stderr): (LoadReport, String)| {
        eprintln!(
            "{stack} client, 32 ports: {} connects, {} port waits",
            r.connects, r.port_waits
        );
        assert_eq!((r.errors, r.connect_errors), (0, 0), "{stack}: {r:?}");
        // 32 ports reused once a second carry at most ~32 connections a
        // second beyond the first pass: the 4 loops wait again and again.
        assert!(r.connects > 0 && r.connects <= 32 * 4, "{stack}: {r:?}");
        assert!(r.port_waits >= 4, "{stack}: {r:?}");
        // Once per wait, not per retry: never more waits than connects
        // plus the loops still waiting at the end.
        assert!(r.port_waits <= r.connects + 4, "{stack}: {r:?}");
        assert!(
            stderr.contains("waited: the client's port space, not the server, bounded this run"),
            "{stack}: {stderr}"
        );
    };
    let addr = tb.client_ip.to_string();
    let fast = run(
        "fast",
        &[
            "--iface",
            &tb.client_if,
            "--addr",
            &addr,
            "--local-ports",
            "2000-2031",
        ],
    );
    check("fast", fast);
    let out = tb.run_client(&["sysctl", "-w", "net.ipv4.ip_local_port_range=50000 50031"]);
    assert!(out.status.success(), "{out:?}");
    check("kernel", run("kernel", &[]));
    stop(echo);
}
