//! The veth testbed from Rust integration tests: network namespaces made by
//! `deploy/testbed.sh`, deleted again when the [`Testbed`] drops (also when
//! the test panics), and child processes that die with their test.
//!
//! Include it with
//! `#[path = "support/netns.rs"] mod netns;`
//! and start a testbed with `let Some(tb) = netns::Testbed::up("name", opts) else { return };`
//! (it returns `None`, after a loud `SKIPPED:` line, where the tests cannot
//! run: not root, or no `ip netns`).
//!
//! Every testbed gets a prefix unique to this process and this testbed:
//! `<up to 3 chars of the name>-<pid, 5 base-36 digits><counter, 3 base-36
//! digits>`, e.g. `pla-0a2k1001`, so parallel tests and parallel test
//! binaries never share a namespace or an interface name, and interface
//! names (`<prefix>-s0`) stay within 15 characters. Testbeds left behind by a
//! test process that was killed (no `Drop`) are removed by the next process
//! that starts one, once their PID is gone.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::Ipv4Addr;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

/// The testbed script, found from the package root.
pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/testbed.sh");

/// Environment variables the script reads as defaults; cleared when the
/// tests call it, so a CI setting cannot change what a test asked for.
const SCRIPT_ENV: [&str; 9] = [
    "TESTBED_PREFIX",
    "TESTBED_QUEUES",
    "TESTBED_ROUTER",
    "TESTBED_BRIDGE",
    "TESTBED_LOSS",
    "TESTBED_MTU",
    "TESTBED_CLIENT_ADDRS",
    "TESTBED_CLIENT_OFFLOADS",
    "TESTBED_SERVER_OFFLOADS",
];

/// Kernel offloads of a testbed end (`--client-offloads`,
/// `--server-offloads`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offloads {
    /// Transmit checksum, TSO, GSO and GRO off: a quiet sender, what an
    /// AF_XDP peer needs.
    Off,
    /// All four on.
    On,
    /// GSO and GRO on, transmit checksum and TSO off.
    NoCsum,
}

impl Offloads {
    pub fn name(self) -> &'static str {
        match self {
            Offloads::Off => "off",
            Offloads::On => "on",
            Offloads::NoCsum => "no-csum",
        }
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);
static SWEEP: Once = Once::new();

/// Options of [`Testbed::up`]; the default is one queue, no router, no
/// loss, MTU 1500, no extra client addresses, a quiet client sender and the
/// server end's kernel defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestbedOptions {
    /// rx and tx queues on every veth end (`--queues`).
    pub queues: u32,
    /// A router namespace between client and server (`--router`).
    pub router: bool,
    /// With `router`: packets dropped per 1000 forwarded (`--loss`).
    pub loss_permille: u32,
    /// A bridging router namespace instead (`--bridge`): one subnet, no
    /// addresses in the router; nothing passes until a relay
    /// (`xdp-tcp impair`) bridges `router_client_if` and `router_server_if`.
    pub bridge: bool,
    /// MTU of every veth (`--mtu`).
    pub mtu: u32,
    /// Extra client addresses 198.18.x.3.. (`--client-addrs`).
    pub client_addrs: u32,
    /// The client end's offloads (`--client-offloads`).
    pub client_offloads: Offloads,
    /// The server end's offloads (`--server-offloads`); None keeps the
    /// kernel's defaults.
    pub server_offloads: Option<Offloads>,
    /// Root qdisc of both endpoint veths (`--qdisc`); None leaves the
    /// script's default (noqueue).
    pub qdisc: Option<&'static str>,
}

impl Default for TestbedOptions {
    fn default() -> Self {
        TestbedOptions {
            queues: 1,
            router: false,
            loss_permille: 0,
            bridge: false,
            mtu: 1500,
            client_addrs: 0,
            client_offloads: Offloads::Off,
            server_offloads: None,
            qdisc: None,
        }
    }
}

/// A running testbed: the facts `deploy/testbed.sh up` printed. Dropping it
/// runs `deploy/testbed.sh down` for its prefix.
#[derive(Debug)]
pub struct Testbed {
    pub server_ns: String,
    pub client_ns: String,
    pub router_ns: Option<String>,
    /// The server's veth end: the interface the AF_XDP stack attaches to.
    pub server_if: String,
    pub client_if: String,
    pub server_ip: Ipv4Addr,
    pub client_ip: Ipv4Addr,
    pub server_mac: String,
    pub client_mac: String,
    /// The MAC the server sends to: the client's veth, or the router's
    /// server-facing veth.
    pub gateway_mac: String,
    pub queues: u32,
    /// The extra client addresses (`client_addrs`).
    pub client_addrs: Vec<Ipv4Addr>,
    prefix: String,
    facts: HashMap<String, String>,
}

/// Whether this process runs with effective UID 0 (read from
/// `/proc/self/status`, so no libc is needed).
pub fn is_root() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        .unwrap_or(false)
}

/// Prints a line straight to the process's stderr: the test harness
/// captures `eprintln!` of passing tests, but not this, so a skip is seen
/// even without `--nocapture`.
pub fn loud(msg: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{msg}");
    let _ = err.flush();
}

/// The names of the network namespaces `ip netns list` shows.
pub fn netns_list() -> Vec<String> {
    Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub fn netns_exists(name: &str) -> bool {
    netns_list().iter().any(|n| n == name)
}

/// `deploy/testbed.sh <args>` with the script's environment defaults cleared.
pub fn script(args: &[&str]) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(SCRIPT).args(args).stdin(Stdio::null());
    for var in SCRIPT_ENV {
        cmd.env_remove(var);
    }
    cmd
}

fn base36(mut n: u64, width: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8(out).expect("ascii")
}

/// `<abbr>-<pid:5><counter:3>`: at most 12 characters; the fixed-width
/// fields after the only `-` make it unique per process and testbed.
fn unique_prefix(name: &str) -> String {
    let abbr: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .take(3)
        .collect();
    let abbr = if abbr.is_empty() {
        "t".to_owned()
    } else {
        abbr
    };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{abbr}-{}{}",
        base36(u64::from(std::process::id()), 5),
        base36(u64::from(n), 3)
    )
}

/// The PID encoded in a namespace name made by [`unique_prefix`], if it is
/// one of ours (`<abbr>-<8 base-36 digits>-{srv,cli,rtr}`).
fn owner_pid(ns: &str) -> Option<(String, u32)> {
    let prefix = ns
        .strip_suffix("-srv")
        .or_else(|| ns.strip_suffix("-cli"))
        .or_else(|| ns.strip_suffix("-rtr"))?;
    let (abbr, id) = prefix.split_once('-')?;
    let ours = (1..=3).contains(&abbr.len())
        && abbr
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id.len() == 8
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !ours {
        return None;
    }
    let pid = u32::from_str_radix(&id[..5], 36).ok()?;
    Some((prefix.to_owned(), pid))
}

/// Removes testbeds whose creating test process is gone (it was killed
/// before its `Drop` ran). Once per process.
fn sweep_stale() {
    SWEEP.call_once(|| {
        let me = std::process::id();
        let mut stale: Vec<String> = netns_list()
            .iter()
            .filter_map(|ns| owner_pid(ns))
            .filter(|(_, pid)| {
                *pid != me && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            })
            .map(|(prefix, _)| prefix)
            .collect();
        stale.sort();
        stale.dedup();
        for prefix in stale {
            loud(&format!(
                "testbed: removing stale testbed '{prefix}' of a test process that is gone"
            ));
            let _ = script(&["down", "--prefix", &prefix]).output();
        }
    });
}

/// Prints "SKIPPED: <what>: <why>" loudly (see [`loud`]).
pub fn skip_loudly(what: &str, why: &str) {
    loud(&format!(
        "\n==================== SKIPPED: {what}: {why} ====================\n"
    ));
}

fn skip(name: &str, why: &str) -> Option<Testbed> {
    skip_loudly(&format!("testbed '{name}'"), why);
    None
}

impl Testbed {
    /// Brings a testbed up with `deploy/testbed.sh up`. `None` (after
    /// printing loudly "SKIPPED: <why>" to stderr) when not root or
    /// `ip netns` is unavailable; panics with the script's output if `up`
    /// fails.
    pub fn up(name: &str, opts: TestbedOptions) -> Option<Testbed> {
        if !is_root() {
            return skip(
                name,
                "needs root to create network namespaces (run the tests as root)",
            );
        }
        match Command::new("ip").args(["netns", "list"]).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return skip(
                    name,
                    &format!(
                        "`ip netns list` failed: {}",
                        String::from_utf8_lossy(&o.stderr).trim()
                    ),
                )
            }
            Err(e) => return skip(name, &format!("cannot run `ip` (install iproute2): {e}")),
        }
        sweep_stale();

        let prefix = unique_prefix(name);
        let queues = opts.queues.to_string();
        let mtu = opts.mtu.to_string();
        let loss = opts.loss_permille.to_string();
        let client_addrs = opts.client_addrs.to_string();
        let mut args = vec![
            "up",
            "--prefix",
            prefix.as_str(),
            "--queues",
            queues.as_str(),
            "--mtu",
            mtu.as_str(),
            "--client-addrs",
            client_addrs.as_str(),
            "--client-offloads",
            opts.client_offloads.name(),
        ];
        if let Some(server) = opts.server_offloads {
            args.extend(["--server-offloads", server.name()]);
        }
        if let Some(qdisc) = opts.qdisc {
            args.extend(["--qdisc", qdisc]);
        }
        if opts.bridge {
            assert!(
                !opts.router && opts.loss_permille == 0,
                "bridge excludes router and loss_permille (the relay impairs)"
            );
            args.push("--bridge");
        } else if opts.router {
            args.extend(["--router", "--loss", loss.as_str()]);
        } else {
            assert_eq!(
                opts.loss_permille, 0,
                "loss_permille needs router: true (loss is injected in the router namespace)"
            );
        }
        let out = script(&args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {SCRIPT}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            // The script removes what it created when `up` fails; make sure.
            let _ = script(&["down", "--prefix", &prefix]).output();
            panic!(
                "deploy/testbed.sh {} failed ({}):\n--- stdout\n{stdout}--- stderr\n{stderr}",
                args.join(" "),
                out.status
            );
        }
        match Testbed::parse(&prefix, &stdout) {
            Ok(tb) => Some(tb),
            Err(why) => {
                let _ = script(&["down", "--prefix", &prefix]).output();
                panic!("deploy/testbed.sh up printed unexpected facts ({why}):\n{stdout}");
            }
        }
    }

    fn parse(prefix: &str, stdout: &str) -> Result<Testbed, String> {
        let facts: HashMap<String, String> = stdout
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let get = |k: &str| facts.get(k).cloned().ok_or_else(|| format!("no {k}= line"));
        let ip = |k: &str| -> Result<Ipv4Addr, String> {
            get(k)?.parse().map_err(|e| format!("{k}: {e}"))
        };
        Ok(Testbed {
            server_ns: get("server_ns")?,
            client_ns: get("client_ns")?,
            router_ns: facts.get("router_ns").cloned(),
            server_if: get("server_if")?,
            client_if: get("client_if")?,
            server_ip: ip("server_ip")?,
            client_ip: ip("client_ip")?,
            server_mac: get("server_mac")?,
            client_mac: get("client_mac")?,
            gateway_mac: get("gateway_mac")?,
            queues: get("queues")?.parse().map_err(|e| format!("queues: {e}"))?,
            client_addrs: get("client_addrs")?
                .split(',')
                .filter(|a| !a.is_empty())
                .map(|a| a.parse().map_err(|e| format!("client_addrs: {e}")))
                .collect::<Result<_, String>>()?,
            prefix: prefix.to_owned(),
            facts,
        })
    }

    /// The prefix of this testbed's namespaces and interfaces.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Any `key=value` fact `up` printed (e.g. `router_server_if`,
    /// `gateway_ip`, `mtu`).
    pub fn fact(&self, key: &str) -> Option<&str> {
        self.facts.get(key).map(String::as_str)
    }

    /// Changes the kernel offloads of the client and/or server end
    /// (`deploy/testbed.sh offloads`); panics when the script fails.
    pub fn set_offloads(&self, client: Option<Offloads>, server: Option<Offloads>) {
        let mut args = vec!["offloads", "--prefix", self.prefix.as_str()];
        if let Some(c) = client {
            args.extend(["--client-offloads", c.name()]);
        }
        if let Some(s) = server {
            args.extend(["--server-offloads", s.name()]);
        }
        let out = run(&mut script(&args));
        assert!(
            out.status.success(),
            "deploy/testbed.sh {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `ip netns exec <server_ns> <program>`; add the arguments.
    pub fn in_server(&self, program: &str) -> Command {
        in_ns(&self.server_ns, program)
    }

    /// `ip netns exec <client_ns> <program>`; add the arguments.
    pub fn in_client(&self, program: &str) -> Command {
        in_ns(&self.client_ns, program)
    }

    /// `ip netns exec <router_ns> <program>`; panics without a router.
    pub fn in_router(&self, program: &str) -> Command {
        let ns = self
            .router_ns
            .as_deref()
            .expect("this testbed has no router");
        in_ns(ns, program)
    }

    /// Runs `args` in the client namespace and captures its output.
    pub fn run_client(&self, args: &[&str]) -> Output {
        run(self.in_client(args[0]).args(&args[1..]))
    }

    /// Runs `args` in the server namespace and captures its output.
    pub fn run_server(&self, args: &[&str]) -> Output {
        run(self.in_server(args[0]).args(&args[1..]))
    }

    /// Runs `args` in the router namespace and captures its output.
    pub fn run_router(&self, args: &[&str]) -> Output {
        run(self.in_router(args[0]).args(&args[1..]))
    }
}

fn in_ns(ns: &str, program: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, program])
        .stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

impl Drop for Testbed {
    fn drop(&mut self) {
        match script(&["down", "--prefix", &self.prefix]).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => loud(&format!(
                "testbed: down --prefix {} failed ({}): {}",
                self.prefix,
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => loud(&format!(
                "testbed: cannot run down --prefix {}: {e}",
                self.prefix
            )),
        }
    }
}

/// A child process that is killed (SIGKILL) and reaped on drop, with its
/// stdout readable line by line (to wait for a "ready" line with a
/// timeout) and both streams kept for error messages.
pub struct Child {
    child: std::process::Child,
    lines: Receiver<String>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    /// Readers that reached end of file (0, 1 or 2).
    drained: Arc<AtomicUsize>,
}

impl Child {
    /// Spawns `cmd` with stdin from /dev/null and stdout/stderr captured.
    pub fn spawn(mut cmd: Command) -> std::io::Result<Child> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        let (tx, lines) = mpsc::channel();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));

        let drained = Arc::new(AtomicUsize::new(0));
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        let out_buf = Arc::clone(&stdout);
        let out_drained = Arc::clone(&drained);
        // The readers are detached: a grandchild may keep a pipe open after
        // the child is killed, and dropping must not wait for it.
        thread::spawn(move || {
            let mut raw = Vec::new();
            loop {
                raw.clear();
                match out.read_until(b'\n', &mut raw) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&raw);
                        let line = line.trim_end_matches(['\n', '\r']).to_owned();
                        {
                            let mut buf = out_buf.lock().unwrap_or_else(|e| e.into_inner());
                            buf.push_str(&line);
                            buf.push('\n');
                        }
                        let _ = tx.send(line);
                    }
                }
            }
            out_drained.fetch_add(1, Ordering::SeqCst);
        });

        let mut err = child.stderr.take().expect("piped stderr");
        let err_buf = Arc::clone(&stderr);
        let err_drained = Arc::clone(&drained);
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                match err.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => err_buf
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_str(&String::from_utf8_lossy(&chunk[..n])),
                }
            }
            err_drained.fetch_add(1, Ordering::SeqCst);
        });

        Ok(Child {
            child,
            lines,
            stdout,
            stderr,
            drained,
        })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Voluntary context switches of the process's main thread so far
    /// (its sleeps and waits): how often its control side woke up.
    pub fn main_thread_wakeups(&self) -> u64 {
        let pid = self.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/status"))
            .expect("the child's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("voluntary_ctxt_switches")
    }

    /// Waits for a stdout line starting with `prefix` (lines before it are
    /// skipped) and returns it; an error with everything the child printed
    /// when the timeout passes or stdout closes first.
    pub fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return Ok(line),
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "no line starting with {prefix:?} within {timeout:?}\n{}",
                        self.transcript()
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.wait_exit(Duration::from_millis(500));
                    // Let the stderr reader catch up with a dead child.
                    thread::sleep(Duration::from_millis(50));
                    return Err(format!(
                        "stdout closed (exit: {status:?}) before a line starting with {prefix:?}\n{}",
                        self.transcript()
                    ));
                }
            }
        }
    }

    /// Sends signal `sig` (a number, e.g. 15 for SIGTERM) with `kill`.
    pub fn signal(&self, sig: i32) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// The exit status, if the child exits within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    // Let the readers catch up with what the child wrote
                    // last (bounded: a grandchild may hold a pipe open).
                    let drain_by = Instant::now() + Duration::from_secs(5);
                    while self.drained.load(Ordering::SeqCst) < 2 && Instant::now() < drain_by {
                        thread::sleep(Duration::from_millis(5));
                    }
                    return Some(status);
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Everything the child wrote to stdout so far.
    pub fn stdout_so_far(&self) -> String {
        self.stdout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Everything the child wrote to stderr so far.
    pub fn stderr_so_far(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn transcript(&self) -> String {
        format!(
            "--- stdout\n{}--- stderr\n{}",
            self.stdout_so_far(),
            self.stderr_so_far()
        )
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
