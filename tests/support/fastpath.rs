//! Running `xdp-tcp serve` in a testbed's server namespace, for the
//! interop tests (include next to `support/netns.rs` as `mod netns`).
#![allow(dead_code)]

use std::process::Output;
use std::time::Duration;

use super::netns::{Child, Offloads, Testbed};

pub const BIN: &str = env!("CARGO_BIN_EXE_xdp-tcp");
pub const CLIENT_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/tcp_client.py");
pub const KERNEL_ECHO_PY: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/kernel_echo.py");

/// Starts `xdp-tcp serve` on `port` with `extra` arguments in the server
/// namespace and waits for its `ready` line.
pub fn serve(tb: &Testbed, port: u16, extra: &[&str]) -> Child {
    let mut cmd = tb.in_server(BIN);
    cmd.args([
        "serve",
        "--iface",
        &tb.server_if,
        "--addr",
        &tb.server_ip.to_string(),
        "--port",
        &port.to_string(),
    ]);
    cmd.args(extra);
    let mut child = Child::spawn(cmd).expect("spawn xdp-tcp serve");
    if let Err(e) = child.wait_for_line("ready", Duration::from_secs(20)) {
        panic!(
            "serve did not become ready: {e}\nstderr: {}",
            child.stderr_so_far()
        );
    }
    child
}

/// Starts the asyncio echo (`port`) and discard (`port + 1`) server on
/// kernel sockets in the server namespace, with the server end's offloads
/// off (the fast path verifies checksums in software, so the kernel must
/// send them complete), and waits for its `ready` line.
pub fn kernel_echo(tb: &Testbed, port: u16) -> Child {
    tb.set_offloads(None, Some(Offloads::Off));
    let mut cmd = tb.in_server("python3");
    cmd.args([KERNEL_ECHO_PY, &tb.server_ip.to_string(), &port.to_string()]);
    let mut child = Child::spawn(cmd).expect("spawn python echo");
    child
        .wait_for_line("ready", Duration::from_secs(20))
        .expect("python echo ready");
    child
}

/// Stops `serve` with SIGTERM and returns its whole stdout (with stats).
pub fn stop(mut child: Child) -> String {
    child.signal(15);
    let status = child
        .wait_exit(Duration::from_secs(20))
        .expect("serve exits after SIGTERM");
    assert!(
        status.success(),
        "serve exited with {status}; stderr: {}",
        child.stderr_so_far()
    );
    child.stdout_so_far()
}

/// A numeric field of the summary line(s) starting with `prefix`, summed.
pub fn stat(summary: &str, prefix: &str, key: &str) -> u64 {
    summary
        .lines()
        .filter(|l| l.starts_with(prefix))
        .flat_map(|l| l.split_whitespace())
        .filter_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .filter_map(|v| v.parse::<u64>().ok())
        .sum()
}

/// Asserts a client command succeeded; returns its stdout.
pub fn assert_ok(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
