//! The threaded API on the real fast path against Linux's TCP:
//! `xdp-tcp serve --app thread-echo` (every connection echoed by its own
//! blocking thread through `Listener` / `Stream`) in the server namespace,
//! Python kernel-socket clients in the client namespace; and
//! `--app thread-proxy`, whose threads connect through the fast path
//! (`StreamConnector`) to a Linux backend. Needs root; without it every
//! test says loudly that it was skipped.

#[path = "support/fastpath.rs"]
mod fastpath;
#[path = "support/netns.rs"]
mod netns;

use std::process::Output;
use std::time::Duration;

use fastpath::{assert_ok, serve, stat, stop, BIN, CLIENT_PY};
use netns::{Child, Testbed, TestbedOptions};

/// Starts the threaded echo server (`serve --app thread-echo`).
fn serve_thread_echo(tb: &Testbed, port: u16, workers: usize) -> Child {
    serve(
        tb,
        port,
        &["--app", "thread-echo", "--workers", &workers.to_string()],
    )
}

/// Runs the Python client `mode` against the server, pinned to `cpu`
/// when given (XPS then picks the server's receive queue).
fn py(tb: &Testbed, cpu: Option<&str>, mode: &str, port: u16, bytes: u64) -> Output {
    let (port, bytes, ip) = (
        port.to_string(),
        bytes.to_string(),
        tb.server_ip.to_string(),
    );
    let mut args = Vec::new();
    if let Some(cpu) = cpu {
        args.extend(["taskset", "-c", cpu]);
    }
    args.extend(["python3", CLIENT_PY, mode, &ip, &port, &bytes]);
    tb.run_client(&args)
}

/// Runs `clients` Python echo clients of `bytes` each at once and checks
/// that every one got its bytes back.
fn parallel_echo(tb: &Testbed, port: u16, clients: usize, bytes: u64) {
    let children: Vec<Child> = (0..clients)
        .map(|_| {
            let mut cmd = tb.in_client("python3");
            cmd.args([CLIENT_PY, "echo", &tb.server_ip.to_string()]);
            cmd.args([port.to_string(), bytes.to_string()]);
            Child::spawn(cmd).expect("spawn python client")
        })
        .collect();
    for (i, mut c) in children.into_iter().enumerate() {
        let status = c
            .wait_exit(Duration::from_secs(120))
            .unwrap_or_else(|| panic!("client {i} did not finish"));
        assert!(
            status.success(),
            "client {i}: {status}\n{}{}",
            c.stdout_so_far(),
            c.stderr_so_far()
        );
        assert!(c.stdout_so_far().starts_with("ok echo"), "client {i}");
    }
}

#[test]
fn thread_echo_serves_linux_clients_in_bulk_half_close_and_in_parallel() {
    let Some(tb) = Testbed::up("thread", TestbedOptions::default()) else {
        return;
    };
    let server = serve_thread_echo(&tb, 7, 1);
    assert_ok(&py(&tb, None, "echo", 7, 50_000_000), "python echo 50 MB");
    // shutdown(SHUT_WR) from Linux: the thread's read returns 0, it has
    // echoed everything, drops the stream, and the client sees EOF.
    assert_ok(&py(&tb, None, "halfclose", 7, 1_000_000), "half-close echo");
    // Eight clients at once: one accept queue, eight echo threads.
    parallel_echo(&tb, 7, 8, 4_000_000);
    // Request/response with idle gaps: the answer is written by a thread
    // while the worker sleeps in poll(2), and the doorbell wakes it. The
    // latency is reported, not asserted (shared machines are noisy);
    // tests/thread_api.rs proves the wake-up itself without timing.
    let out = assert_ok(&py(&tb, None, "pingpong", 7, 200), "ping-pong");
    let median: u64 = out
        .trim()
        .strip_prefix("ok pingpong median_us=")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output: {out}"));
    eprintln!("request/response via an application thread, median {median} µs");
    let summary = stop(server);
    assert_eq!(stat(&summary, "stats worker", "accepted"), 11, "{summary}");
    assert_eq!(
        stat(&summary, "stats worker", "reset_at_shutdown"),
        0,
        "every connection had finished: {summary}"
    );
}

#[test]
fn thread_echo_on_two_workers_accepts_from_both_queues() {
    let opts = TestbedOptions {
        queues: 2,
        ..TestbedOptions::default()
    };
    let Some(tb) = Testbed::up("thread-mq", opts) else {
        return;
    };
    let server = serve_thread_echo(&tb, 7, 2);
    // XPS pins the client's transmit queue to its CPU: clients on CPU 0
    // and CPU 1 reach different workers, whose connections all come out
    // of the same listener.
    for cpu in ["0", "1"] {
        for _ in 0..3 {
            assert_ok(
                &py(&tb, Some(cpu), "echo", 7, 5_000_000),
                "python echo 5 MB",
            );
        }
    }
    let summary = stop(server);
    let per_worker: Vec<u64> = (0..2)
        .map(|w| stat(&summary, &format!("stats worker={w} "), "accepted"))
        .collect();
    assert!(
        per_worker.iter().all(|&n| n > 0),
        "both workers must accept: {summary}"
    );
    assert_eq!(per_worker.iter().sum::<u64>(), 6, "{summary}");
}

#[test]
fn thread_proxy_relays_to_a_linux_backend_it_connects_to_on_the_fast_path() {
    let Some(tb) = Testbed::up("tproxy", TestbedOptions::default()) else {
        return;
    };
    // The backend: the kernel twin's echo server, on Linux sockets in the
    // client namespace.
    let client_ip = tb.client_ip.to_string();
    let mut cmd = tb.in_client(BIN);
    cmd.args(["kernel-serve", "--app", "echo", "--addr", &client_ip]);
    cmd.args(["--port", "8000", "--threads", "1"]);
    let mut backend = Child::spawn(cmd).expect("spawn the kernel echo backend");
    backend
        .wait_for_line("ready", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("backend not ready: {e}: {}", backend.stderr_so_far()));
    let backend_addr = format!("{client_ip}:8000");
    let proxy = serve(
        &tb,
        7,
        &["--app", "thread-proxy", "--backend", &backend_addr],
    );
    // Linux client -> proxy (accepted on the fast path) -> Linux backend
    // (connected on the fast path from the proxy's client ports).
    assert_ok(
        &py(&tb, None, "echo", 7, 20_000_000),
        "echo 20 MB via the proxy",
    );
    // The client's FIN is relayed as a half-close, the backend's as well.
    assert_ok(
        &py(&tb, None, "halfclose", 7, 1_000_000),
        "half-close via the proxy",
    );
    parallel_echo(&tb, 7, 4, 2_000_000);
    // Without the backend the proxy's connect is refused (Linux answers
    // the SYN with RST) and the client's connection is reset.
    backend.signal(15);
    backend
        .wait_exit(Duration::from_secs(20))
        .expect("the backend exits on SIGTERM");
    let out = py(&tb, None, "echo", 7, 1000);
    assert!(
        !out.status.success(),
        "the echo cannot succeed without a backend"
    );
    let summary = stop(proxy);
    assert_eq!(stat(&summary, "stats proxy", "connected"), 6, "{summary}");
    assert_eq!(stat(&summary, "stats proxy", "refused"), 1, "{summary}");
    assert_eq!(stat(&summary, "stats proxy", "failed"), 0, "{summary}");
    assert_eq!(stat(&summary, "stats worker", "accepted"), 7, "{summary}");
}
