//! Servers and clients as child processes: in their own process group
//! (so a Ctrl-C reaches the bench, which stops them in order), stdout read
//! line by line (to wait for `ready` and `idle-ready` lines), stderr kept
//! for error messages, stopped with SIGINT and then SIGKILL on drop.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How often waits look at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// The error of a wait cut short by SIGINT/SIGTERM.
pub const INTERRUPTED: &str = "interrupted (SIGINT/SIGTERM)";

/// A child process that dies with its owner.
pub struct Proc {
    what: String,
    child: std::process::Child,
    lines: Receiver<String>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

/// `ip netns exec NS taskset -c CORE PROGRAM`: the command runs in the
/// namespace, pinned to `core` (both exec, so the child's PID is the
/// program's).
pub fn in_ns_pinned(ns: &str, core: usize, program: &str) -> Command {
    let mut c = Command::new("ip");
    c.args([
        "netns",
        "exec",
        ns,
        "taskset",
        "-c",
        &core.to_string(),
        program,
    ]);
    c
}

impl Proc {
    pub fn spawn(what: &str, mut cmd: Command) -> Result<Proc, String> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start the {what} ({cmd:?}): {e}"))?;
        let (tx, lines) = mpsc::channel();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut out = BufReader::new(child.stdout.take().expect("piped"));
        let out_buf = Arc::clone(&stdout);
        thread::spawn(move || {
            let mut raw = Vec::new();
            loop {
                raw.clear();
                match out.read_until(b'\n', &mut raw) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&raw).trim_end().to_owned();
                        let mut b = out_buf.lock().unwrap_or_else(|e| e.into_inner());
                        b.push_str(&line);
                        b.push('\n');
                        drop(b);
                        let _ = tx.send(line);
                    }
                }
            }
        });
        let mut err = child.stderr.take().expect("piped");
        let err_buf = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = err.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                err_buf
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        Ok(Proc {
            what: what.to_owned(),
            child,
            lines,
            stdout,
            stderr,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stdout line starting with `prefix`.
    pub fn wait_for_line(
        &mut self,
        prefix: &str,
        timeout: Duration,
        stop: &AtomicBool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err(INTERRUPTED.into());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the {} printed no '{prefix}' line within {timeout:?}{}",
                    self.what,
                    self.last_words()
                ));
            }
            match self.lines.recv_timeout(POLL) {
                Ok(line) if line.starts_with(prefix) => return Ok(line),
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.wait_exit(Duration::from_millis(500));
                    thread::sleep(Duration::from_millis(50));
                    return Err(format!(
                        "the {} exited ({}) before printing '{prefix}'{}",
                        self.what,
                        status.map_or("still running".into(), |s| s.to_string()),
                        self.last_words()
                    ));
                }
            }
        }
    }

    /// Waits for the process to exit on its own.
    pub fn wait(&mut self, timeout: Duration, stop: &AtomicBool) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err(INTERRUPTED.into());
            }
            if let Some(s) = self.wait_exit(POLL) {
                return Ok(s);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the {} did not finish within {timeout:?}{}",
                    self.what,
                    self.last_words()
                ));
            }
        }
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(s)) => return Some(s),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                _ => return None,
            }
        }
    }

    /// The exit status, if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Stops the process: SIGINT (servers print their summary), then
    /// SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), libc::SIGINT);
            if self.wait_exit(grace).is_none() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }

    pub fn stdout_so_far(&self) -> String {
        self.stdout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn stderr_so_far(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The last lines of stderr (or stdout), for error messages.
    pub fn last_words(&self) -> String {
        let err = self.stderr_so_far();
        let text = if err.trim().is_empty() {
            self.stdout_so_far()
        } else {
            err
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            return String::new();
        }
        let tail = &lines[lines.len().saturating_sub(3)..];
        format!(": {}", tail.join(" | "))
    }
}

/// Sends `sig` to `pid` (a process that is gone already is no error).
fn signal(pid: u32, sig: i32) {
    let (Ok(pid), Ok(sig)) = (i32::try_from(pid), Signal::try_from(sig)) else {
        return;
    };
    let _ = kill(Pid::from_raw(pid), sig);
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(3));
    }
}

/// VmRSS of a process in bytes (`/proc/<pid>/status`).
pub fn vm_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    kib_field(&status, "VmRSS:")
}

/// The machine's kernel slab in bytes (`/proc/meminfo`).
pub fn slab_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    kib_field(&info, "Slab:")
}

/// A `Name:   1234 kB` field in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let v = text.lines().find_map(|l| l.strip_prefix(name))?;
    let kib: u64 = v.split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // The effective UID, from /proc (no unsafe needed).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kib_fields_parse() {
        let s = "Name:\tx\nVmRSS:\t   2048 kB\nThreads: 1\n";
        assert_eq!(kib_field(s, "VmRSS:"), Some(2048 * 1024));
        assert_eq!(kib_field(s, "VmHWM:"), None);
        assert!(vm_rss_bytes(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn a_child_is_read_line_by_line_and_stopped() {
        let stop = AtomicBool::new(false);
        let mut c = Command::new("sh");
        c.args(["-c", "echo one; echo ready now; exec sleep 30"]);
        let mut p = Proc::spawn("test child", c).unwrap();
        let line = p
            .wait_for_line("ready", Duration::from_secs(10), &stop)
            .unwrap();
        assert_eq!(line, "ready now");
        let pid = p.pid();
        drop(p);
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}/status")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .map(|s| s.contains("State:\tZ"))
                    .unwrap_or(true)
        );
        let mut c = Command::new("sh");
        c.args(["-c", "echo oops >&2; exit 3"]);
        let mut p = Proc::spawn("failing child", c).unwrap();
        let err = p
            .wait_for_line("ready", Duration::from_secs(10), &stop)
            .unwrap_err();
        assert!(err.contains("exited") && err.contains("oops"), "{err}");
    }
}
