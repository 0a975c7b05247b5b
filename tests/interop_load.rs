//! `xdp-tcp load --stack kernel` in a client namespace against
//! `xdp-tcp kernel-serve` and the fast path's `xdp-tcp serve` in the
//! server namespace of the veth testbed. Asserts counts and integrity
//! (the client checks every echoed and sourced byte and counts a mismatch
//! as an error), never speed. Needs root; without it every test says
//! loudly that it was skipped.

#[path = "support/fastpath.rs"]
mod fastpath;
#[path = "support/netns.rs"]
mod netns;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fastpath::{assert_ok, serve, stat, stop, BIN};
use netns::{Child, Testbed, TestbedOptions};
use xdp_tcp::load::{LoadReport, Workload};

/// `xdp-tcp kernel-serve --app <app>` on `port` in the server namespace,
/// once it printed `ready`.
fn kernel_serve(tb: &Testbed, port: u16, extra: &[&str]) -> Child {
    let mut cmd = tb.in_server(BIN);
    cmd.args([
        "kernel-serve",
        "--addr",
        &tb.server_ip.to_string(),
        "--port",
        &port.to_string(),
        "--threads",
        "1",
    ]);
    cmd.args(extra);
    let mut child = Child::spawn(cmd).expect("spawn kernel-serve");
    child
        .wait_for_line("ready", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("kernel-serve did not become ready: {e}"));
    child
}

fn json_path() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "xdp-tcp-load-{}-{}.json",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Runs `xdp-tcp load --stack kernel` in the client namespace against
/// `port` (1 s measured after 200 ms warm-up unless `extra` says
/// otherwise); returns its stdout and the JSON report.
fn load(tb: &Testbed, port: u16, workload: &str, extra: &[&str]) -> (String, LoadReport) {
    let json = json_path();
    let target = format!("{}:{port}", tb.server_ip);
    let mut args = vec![
        BIN,
        "load",
        "--stack",
        "kernel",
        "--target",
        &target,
        "--workload",
        workload,
        "--duration",
        "1s",
        "--warmup",
        "200ms",
        "--json",
        json.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = tb.run_client(&args);
    let stdout = assert_ok(&out, &format!("load {workload} {extra:?}"));
    let text = std::fs::read_to_string(&json).expect("--json wrote the report");
    let _ = std::fs::remove_file(&json);
    let report: LoadReport = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the JSON is not a LoadReport ({e}):\n{text}"));
    eprintln!("load {workload} {extra:?}:\n{stdout}");
    (stdout, report)
}

/// Zero errors of any kind, the right workload, the kernel stack.
fn assert_clean(r: &LoadReport, workload: Workload, stdout: &str) {
    assert_eq!(r.stack, "kernel", "{stdout}");
    assert_eq!(r.workload, workload, "{stdout}");
    assert_eq!(r.errors, 0, "{stdout}");
    assert_eq!(r.connect_errors, 0, "{stdout}");
    assert!(stdout.contains("headline"), "{stdout}");
}

/// Stops a kernel server with SIGTERM; returns its stdout with the stats.
fn stop_kernel(mut child: Child) -> String {
    child.signal(15);
    // Read up to the stats line: the exit can be seen before the reader
    // thread has the process's last lines.
    child
        .wait_for_line("stats kernel", Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("no stats after SIGTERM: {e}"));
    let status = child
        .wait_exit(Duration::from_secs(10))
        .expect("kernel-serve exits after SIGTERM");
    assert!(status.success(), "{}", child.stderr_so_far());
    child.stdout_so_far()
}

fn sysctl_in_client(tb: &Testbed, setting: &str) {
    assert_ok(
        &tb.run_client(&["sysctl", "-q", "-w", setting]),
        &format!("sysctl {setting}"),
    );
}

#[test]
fn kernel_client_request_workloads_against_kernel_servers() {
    let Some(tb) = Testbed::up("lrq", TestbedOptions::default()) else {
        return;
    };
    let echo = kernel_serve(&tb, 7, &["--app", "echo"]);
    let http = kernel_serve(&tb, 8080, &["--app", "http", "--body-bytes", "100"]);

    let (out, r) = load(
        &tb,
        7,
        "rpc",
        &["--connections", "4", "--pipeline", "4", "--threads", "2"],
    );
    assert_clean(&r, Workload::Rpc, &out);
    assert!(r.requests > 0 && r.latency_us.is_some(), "{out}");
    assert_eq!((r.connections, r.pipeline, r.rate), (4, 4, None));
    assert_eq!(r.bytes_received % 64, 0, "whole responses: {out}");

    let (out, r) = load(
        &tb,
        7,
        "rpc",
        &[
            "--connections",
            "4",
            "--rate",
            "2000",
            "--request-bytes",
            "200",
            "--response-bytes",
            "200",
        ],
    );
    assert_clean(&r, Workload::Rpc, &out);
    assert_eq!(r.rate, Some(2000.0));
    // The schedule sets the count (2000/s for 1 s), not the server.
    assert!((1000..=2500).contains(&r.requests), "{out}");

    let (out, r) = load(
        &tb,
        8080,
        "http",
        &["--connections", "4", "--pipeline", "2"],
    );
    assert_clean(&r, Workload::Http, &out);
    assert!(r.requests > 0, "{out}");

    // The client closes first and holds TIME-WAIT for every connection.
    sysctl_in_client(&tb, "net.ipv4.tcp_tw_reuse=1");
    let (out, r) = load(&tb, 7, "short", &["--connections", "4"]);
    assert_clean(&r, Workload::Short, &out);
    assert!(r.connects > 0 && r.requests > 0, "{out}");

    let echo_stats = stop_kernel(echo);
    assert!(
        stat(&echo_stats, "stats kernel", "accepted") >= 8 + r.connects,
        "{echo_stats}"
    );
    let http_stats = stop_kernel(http);
    assert!(
        stat(&http_stats, "stats kernel", "requests") > 0,
        "{http_stats}"
    );
}

#[test]
fn kernel_client_bulk_both_ways_against_kernel_servers() {
    let Some(tb) = Testbed::up("lbk", TestbedOptions::default()) else {
        return;
    };
    let discard = kernel_serve(&tb, 9, &["--app", "discard"]);
    let source = kernel_serve(&tb, 19, &["--app", "source", "--bytes", "100G"]);

    let (out, r) = load(&tb, 9, "bulk-send", &["--connections", "2"]);
    assert_clean(&r, Workload::BulkSend, &out);
    assert!(r.bytes_sent > 0 && r.gbit_per_sec > 0.0, "{out}");
    assert!(r.latency_us.is_none());

    // Every byte is checked against the source's pattern.
    let (out, r) = load(&tb, 19, "bulk-recv", &["--connections", "2"]);
    assert_clean(&r, Workload::BulkRecv, &out);
    assert!(r.bytes_received > 0, "{out}");

    let stats = stop_kernel(discard);
    assert!(
        stat(&stats, "stats kernel", "bytes_received") >= r.bytes_sent,
        "{stats}"
    );
    stop_kernel(source);
}

#[test]
fn idle_connections_use_the_port_space_of_two_source_addresses() {
    let Some(tb) = Testbed::up("lid", TestbedOptions::default()) else {
        return;
    };
    let extra = "198.18.0.3";
    assert_ok(
        &tb.run_client(&[
            "ip",
            "addr",
            "add",
            &format!("{extra}/24"),
            "dev",
            &tb.client_if,
        ]),
        "add a client address",
    );
    // 1000 ports per address and destination: 1500 idle connections fit
    // only over both addresses.
    sysctl_in_client(&tb, "net.ipv4.ip_local_port_range=40000 40999");
    let echo = kernel_serve(&tb, 7, &["--app", "echo"]);
    let (out, r) = load(
        &tb,
        7,
        "rpc",
        &[
            "--idle-connections",
            "1500",
            "--source-addr",
            extra,
            "--connections",
            "4",
            "--threads",
            "2",
        ],
    );
    assert!(out.lines().any(|l| l == "idle-ready 1500"), "{out}");
    assert_clean(&r, Workload::Rpc, &out);
    assert_eq!(r.idle_connections, 1500);
    assert!(r.requests > 0, "{out}");
    let stats = stop_kernel(echo);
    assert!(stat(&stats, "stats kernel", "accepted") >= 1504, "{stats}");
}

#[test]
fn kernel_client_against_the_fast_path_servers() {
    let Some(tb) = Testbed::up("lfp", TestbedOptions::default()) else {
        return;
    };
    let echo = serve(&tb, 7, &["--app", "echo"]);
    let (out, r) = load(&tb, 7, "rpc", &["--connections", "4", "--pipeline", "2"]);
    assert_clean(&r, Workload::Rpc, &out);
    assert!(r.requests > 0, "{out}");
    let stats = stop(echo);
    assert!(stat(&stats, "stats worker", "accepted") >= 5, "{stats}");

    let http = serve(&tb, 8080, &["--app", "http"]);
    let (out, r) = load(&tb, 8080, "http", &["--connections", "4"]);
    assert_clean(&r, Workload::Http, &out);
    assert!(r.requests > 0, "{out}");
    stop(http);
}

#[test]
fn kernel_twins_pass_the_fast_path_apps_checks() {
    let Some(tb) = Testbed::up("ltw", TestbedOptions::default()) else {
        return;
    };
    let py = |mode: &str, port: u16, bytes: &str| {
        tb.run_client(&[
            "python3",
            fastpath::CLIENT_PY,
            mode,
            &tb.server_ip.to_string(),
            &port.to_string(),
            bytes,
        ])
    };
    // The same checks `echo`, `discard` and `source` pass on the fast path.
    let echo = kernel_serve(&tb, 7, &["--app", "echo"]);
    assert_ok(&py("echo", 7, "10000000"), "echo 10 MB");
    assert_ok(&py("halfclose", 7, "1000000"), "half-close echo");
    stop_kernel(echo);
    let discard = kernel_serve(&tb, 9, &["--app", "discard"]);
    assert_ok(&py("send", 9, "10000000"), "send 10 MB to discard");
    stop_kernel(discard);
    let source = kernel_serve(&tb, 19, &["--app", "source", "--bytes", "10000000"]);
    assert_ok(&py("recv", 19, "10000000"), "recv 10 MB from source");
    let stats = stop_kernel(source);
    assert_eq!(
        stat(&stats, "stats kernel", "bytes_sent"),
        10_000_000,
        "{stats}"
    );
}

#[test]
fn load_refuses_bad_flags_with_what_to_fix() {
    // Flags are checked before any connection: no namespace needed.
    let cases: [(&[&str], &str); 7] = [
        (
            &["--workload", "rpc", "--connections", "0"],
            "--connections",
        ),
        (&["--workload", "short", "--pipeline", "3"], "--pipeline"),
        (&["--workload", "bulk-recv", "--rate", "5"], "--rate"),
        (
            &["--workload", "rpc", "--response-bytes", "65"],
            "--response-bytes",
        ),
        (&["--workload", "bulk"], "bulk-send"),
        (
            &["--workload", "rpc", "--json", "/nonexistent-dir/x.json"],
            "does not exist",
        ),
        (
            &["--workload", "rpc", "--cores", "5000"],
            "--cores names core 5000, which this process may not run on",
        ),
    ];
    for (extra, expect) in cases {
        let out = Command::new(BIN)
            .args(["load", "--stack", "kernel", "--target", "198.18.0.1:7"])
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?} should fail");
        assert!(
            err.contains(expect),
            "{extra:?}: expected '{expect}' in: {err}"
        );
    }
}

#[test]
fn kernel_serve_refuses_a_core_it_may_not_run_on() {
    // Checked before any socket is made: no namespace needed.
    let out = Command::new(BIN)
        .args(["kernel-serve", "--addr", "127.0.0.1", "--port", "9"])
        .args(["--app", "echo", "--cores", "5000"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("--cores names core 5000, which this process may not run on"),
        "{err}"
    );
}
