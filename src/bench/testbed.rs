//! The bench's testbed: `deploy/testbed.sh`, embedded in the binary (so
//! `xdp-tcp bench` works from any directory), brought up under a prefix
//! unique to this process and always brought down again: on drop, on
//! error and on Ctrl-C (the runner turns the signal into an error).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use super::plan::Qdisc;

/// The testbed script, as built into this binary.
const SCRIPT: &str = include_str!("../../deploy/testbed.sh");

/// Prefix of the testbeds `xdp-tcp bench` makes: `xb<pid>`.
const PREFIX_TAG: &str = "xb";

/// Runs the embedded script with `args`; its stdout on success, else an
/// error with its stderr.
pub fn script(args: &[&str]) -> Result<String, String> {
    let out = Command::new("bash")
        .arg("-c")
        .arg(SCRIPT)
        .arg("deploy/testbed.sh")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run bash for the testbed: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "deploy/testbed.sh {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The namespaces `ip netns list` shows.
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

/// The PID in a bench namespace name `xb<pid>-srv|cli`, if it is one.
fn bench_owner(ns: &str) -> Option<(String, u32)> {
    let prefix = ns
        .strip_suffix("-srv")
        .or_else(|| ns.strip_suffix("-cli"))?;
    let pid = prefix.strip_prefix(PREFIX_TAG)?.parse().ok()?;
    Some((prefix.to_owned(), pid))
}

/// A running testbed: the facts `up` printed.
#[derive(Debug)]
pub struct Testbed {
    pub prefix: String,
    pub server_ns: String,
    pub client_ns: String,
    pub server_if: String,
    pub client_if: String,
    pub server_ip: Ipv4Addr,
    pub client_ip: Ipv4Addr,
    pub client_addrs: Vec<Ipv4Addr>,
}

impl Testbed {
    /// Removes bench testbeds whose process is gone (killed before it
    /// could clean up), then brings up a direct testbed with
    /// `client_addrs` extra client addresses, a quiet server end and
    /// `qdisc` on both ends.
    pub fn up(client_addrs: usize, qdisc: Qdisc) -> Result<Testbed, String> {
        let mut stale: Vec<String> = netns_list()
            .iter()
            .filter_map(|ns| bench_owner(ns))
            .filter(|(_, pid)| !std::path::Path::new(&format!("/proc/{pid}")).exists())
            .map(|(p, _)| p)
            .collect();
        stale.dedup();
        for p in stale {
            eprintln!("bench: removing the testbed {p} of a bench that is gone");
            let _ = script(&["down", "--prefix", &p]);
        }
        let prefix = format!("{PREFIX_TAG}{}", std::process::id());
        let addrs = client_addrs.to_string();
        let out = script(&[
            "up",
            "--prefix",
            &prefix,
            "--client-addrs",
            &addrs,
            "--client-offloads",
            "off",
            "--server-offloads",
            "off",
            "--qdisc",
            qdisc.name(),
        ])?;
        let facts: HashMap<&str, &str> = out.lines().filter_map(|l| l.split_once('=')).collect();
        // From here on the testbed exists: build the guard first so a bad
        // fact still tears it down.
        let mut tb = Testbed {
            prefix: prefix.clone(),
            server_ns: format!("{prefix}-srv"),
            client_ns: format!("{prefix}-cli"),
            server_if: format!("{prefix}-s0"),
            client_if: format!("{prefix}-c0"),
            server_ip: Ipv4Addr::new(198, 18, 0, 1),
            client_ip: Ipv4Addr::new(198, 18, 0, 2),
            client_addrs: Vec::new(),
        };
        let get = |k: &str| {
            facts
                .get(k)
                .copied()
                .ok_or_else(|| format!("testbed up printed no {k}="))
        };
        let ip = |k: &str| -> Result<Ipv4Addr, String> {
            get(k)?
                .parse()
                .map_err(|e| format!("testbed fact {k}: {e}"))
        };
        tb.server_ns = get("server_ns")?.to_owned();
        tb.client_ns = get("client_ns")?.to_owned();
        tb.server_if = get("server_if")?.to_owned();
        tb.client_if = get("client_if")?.to_owned();
        tb.server_ip = ip("server_ip")?;
        tb.client_ip = ip("client_ip")?;
        tb.client_addrs = get("client_addrs")?
            .split(',')
            .filter(|a| !a.is_empty())
            .map(|a| a.parse().map_err(|e| format!("client_addrs: {e}")))
            .collect::<Result<_, String>>()?;
        Ok(tb)
    }

    /// Sets the offload levels of the client and server interfaces.
    pub fn set_offloads(&self, client: &str, server: &str) -> Result<(), String> {
        script(&[
            "offloads",
            "--prefix",
            &self.prefix,
            "--client-offloads",
            client,
            "--server-offloads",
            server,
        ])
        .map(drop)
    }

    /// Frames both veth ends have dropped on transmit so far (a veth
    /// without a qdisc drops what finds its peer's XDP ring full); None
    /// when a counter cannot be read.
    pub fn veth_tx_dropped(&self) -> Option<u64> {
        let read = |ns: &str, ifname: &str| -> Option<u64> {
            let path = format!("/sys/class/net/{ifname}/statistics/tx_dropped");
            // `ip netns exec` mounts the namespace's own sysfs.
            let out = Command::new("ip")
                .args(["netns", "exec", ns, "cat", &path])
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout).trim().parse().ok()
        };
        Some(read(&self.client_ns, &self.client_if)? + read(&self.server_ns, &self.server_if)?)
    }

    /// `ethtool -k` of an interface in a namespace, short:
    /// `tx=off tso=off gso=off gro=off`.
    pub fn offloads_in_force(ns: &str, ifname: &str) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", ns, "ethtool", "-k", ifname])
            .output();
        let Ok(out) = out else {
            return "unknown".into();
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let state = |feature: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(feature))
                .and_then(|v| v.trim_start_matches(':').split_whitespace().next())
                .unwrap_or("?")
                .to_owned()
        };
        format!(
            "tx={} tso={} gso={} gro={}",
            state("tx-checksumming"),
            state("tcp-segmentation-offload"),
            state("generic-segmentation-offload"),
            state("generic-receive-offload")
        )
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if let Err(e) = script(&["down", "--prefix", &self.prefix]) {
            eprintln!("bench: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bench_namespaces_are_swept() {
        assert_eq!(bench_owner("xb1234-srv"), Some(("xb1234".into(), 1234)));
        assert_eq!(bench_owner("xb99-cli"), Some(("xb99".into(), 99)));
        assert_eq!(bench_owner("xb99-rtr"), None);
        assert_eq!(bench_owner("xbx1-srv"), None);
        assert_eq!(bench_owner("pla-0a2k1001-srv"), None);
    }

    #[test]
    fn the_embedded_script_is_the_testbed() {
        assert!(SCRIPT.starts_with("#!/usr/bin/env bash"));
        assert!(SCRIPT.contains("--client-addrs"));
    }
}
