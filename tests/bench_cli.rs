//! `xdp-tcp bench` end to end on the veth testbed: a `--quick` run of
//! the http row writes a table, JSON, CSV and an SVG chart that parse,
//! and leaves no namespace behind, also when interrupted with SIGINT;
//! `--busy-poll` makes both servers poll.
//!
//! Needs root (a loud `SKIPPED:` line otherwise). Never asserts on speed.

#[path = "support/fastpath.rs"]
mod fastpath;
#[path = "support/netns.rs"]
mod netns;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use fastpath::stat;
use netns::{is_root, netns_list, skip_loudly, Child};

const EXE: &str = env!("CARGO_BIN_EXE_xdp-tcp");

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xdp-tcp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The bench testbed of process `pid` (`xb<pid>-srv/cli`) is gone.
fn assert_no_testbed_of(pid: u32) {
    let left: Vec<String> = netns_list()
        .into_iter()
        .filter(|n| n.starts_with(&format!("xb{pid}-")))
        .collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
}

/// `xdp-tcp bench ARGS --out DIR` and DIR, or None after a loud skip
/// when not root.
fn bench_cmd(what: &str, name: &str, args: &[&str]) -> Option<(PathBuf, Command)> {
    if !is_root() {
        skip_loudly(what, "needs root (network namespaces, XDP)");
        return None;
    }
    let out = out_dir(name);
    let mut cmd = Command::new(EXE);
    cmd.arg("bench").args(args).arg("--out").arg(&out);
    Some((out, cmd))
}

/// Runs a bench to its end, checks that it succeeded and left no testbed,
/// and returns its stdout and stderr.
fn run_to_success(cmd: Command) -> (String, String) {
    let mut child = Child::spawn(cmd).expect("start xdp-tcp bench");
    let pid = child.id();
    let status = child
        .wait_exit(Duration::from_secs(300))
        .unwrap_or_else(|| panic!("bench did not finish:\n{}", child.stderr_so_far()));
    let (stdout, stderr) = (child.stdout_so_far(), child.stderr_so_far());
    assert!(status.success(), "bench failed\n{stdout}\n{stderr}");
    assert_no_testbed_of(pid);
    (stdout, stderr)
}

#[test]
fn quick_bench_writes_table_json_csv_and_chart() {
    let Some((out, cmd)) = bench_cmd(
        "bench_cli",
        "bench",
        &["--quick", "--workloads", "http,short"],
    ) else {
        return;
    };
    let (stdout, stderr) = run_to_success(cmd);

    // The table names both servers and the ratio column, and the offloads.
    assert!(
        stdout.contains("kernel server") && stdout.contains("fast/kernel"),
        "{stdout}"
    );
    assert!(stdout.contains("offloads off"), "{stdout}");
    assert!(stdout.contains("http c=16"), "{stdout}");
    // The machine's noise floor on both cores, measured before the runs.
    assert!(
        stdout.contains("noise floor")
            && stdout.contains("core 0: ")
            && stdout.contains("core 1: "),
        "{stdout}"
    );

    let runs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("runs.json")).unwrap()).unwrap();
    let runs = runs["runs"].as_array().expect("runs array");
    let has_kdamond = std::fs::read_dir("/proc").unwrap().any(|e| {
        std::fs::read_to_string(e.unwrap().path().join("comm"))
            .is_ok_and(|c| c.starts_with("kdamond"))
    });
    // http: wrk, kernel, fast clients; short: kernel, fast; x 2 servers.
    assert_eq!(runs.len(), 10, "{runs:#?}");
    for r in runs {
        let status = r["status"].as_str().unwrap();
        assert!(["ok", "not-available", "failed"].contains(&status), "{r}");
        if status == "ok" {
            assert!(r["metric"].as_f64().is_some(), "{r}");
            // The path's drops are counted for every run that ran.
            assert!(r["veth_tx_drops"].as_u64().is_some(), "{r}");
            // The machine's background CPU is recorded where it has
            // such threads (null where it has none).
            let background = r.get("background_cpu_us").expect("background_cpu_us");
            if has_kdamond {
                assert!(background.is_u64(), "{r}");
            } else {
                assert!(background.is_null(), "{r}");
            }
        } else {
            assert!(!r["note"].as_str().unwrap().is_empty(), "{r}");
        }
    }
    // wrk against both servers is always possible where wrk is installed.
    let wrk_installed = Command::new("sh")
        .args(["-c", "command -v wrk"])
        .output()
        .is_ok_and(|o| o.status.success());
    if wrk_installed {
        let wrk_ok = runs
            .iter()
            .filter(|r| r["client"] == "wrk" && r["status"] == "ok")
            .count();
        assert_eq!(wrk_ok, 2, "wrk runs: {runs:#?}\n{stderr}");
    }
    let medians: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("medians.json")).unwrap()).unwrap();
    assert_eq!(medians["medians"].as_array().unwrap().len(), 5);
    assert!(medians["meta"]["cpus"].as_u64().unwrap() >= 1);
    let noise = medians["meta"]["noise_floor"]
        .as_array()
        .expect("noise_floor");
    assert_eq!(noise.len(), 2, "{noise:?}");
    for core in noise {
        assert!(core["seconds"].as_f64().unwrap() >= 1.0, "{core}");
        assert!(core["over_10us_per_s"].as_f64().unwrap() >= 0.0, "{core}");
    }

    let mut csv = csv::Reader::from_path(out.join("runs.csv")).unwrap();
    assert_eq!(csv.records().map(Result::unwrap).count(), 10);
    let mut csv = csv::Reader::from_path(out.join("medians.csv")).unwrap();
    let headers = csv.headers().unwrap().clone();
    assert!(
        headers.iter().any(|h| h == "ratio_fast_over_kernel"),
        "{headers:?}"
    );
    assert_eq!(csv.records().map(Result::unwrap).count(), 5);

    let svg = std::fs::read_to_string(out.join("chart.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("http c=16"));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_busy_poll_bench_runs_both_servers_polling() {
    let args = [
        "--quick",
        "--workloads",
        "rpc",
        "--clients",
        "fast",
        "--busy-poll",
    ];
    let Some((out, cmd)) = bench_cmd("bench_cli busy-poll", "bench-busy", &args) else {
        return;
    };
    let (stdout, _) = run_to_success(cmd);
    // The table's header says how both servers wait.
    assert!(
        stdout.contains("1 worker busy-polling") && stdout.contains("busy-polling epoll"),
        "{stdout}"
    );
    let medians: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("medians.json")).unwrap()).unwrap();
    assert_eq!(medians["meta"]["busy_poll"], true, "{medians:#}");

    // Each server really polled: the kernel server's epoll waits came back
    // empty by the thousand (a sleeping one waits 50 ms at a time), and
    // the fast worker never slept.
    let mut seen = (false, false);
    for entry in std::fs::read_dir(out.join("raw")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".server.txt") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        if name.contains("-fast-kernel-") {
            let empty = stat(&text, "stats kernel", "empty_polls");
            assert!(empty > 1000, "{name}: {text}");
            seen.0 = true;
        } else if name.contains("-fast-fast-") {
            assert!(text.contains(" sleeps="), "{name}: {text}");
            assert_eq!(stat(&text, "stats worker", "sleeps"), 0, "{name}: {text}");
            seen.1 = true;
        }
    }
    assert_eq!(seen, (true, true), "both servers' outputs in raw/");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn an_interrupted_bench_tears_its_testbed_down() {
    let args = [
        "--workloads",
        "http",
        "--clients",
        "wrk",
        "--reps",
        "5",
        "--duration",
        "5s",
    ];
    let Some((out, cmd)) = bench_cmd("bench_cli interrupt", "bench-int", &args) else {
        return;
    };
    let mut child = Child::spawn(cmd).expect("start xdp-tcp bench");
    let pid = child.id();
    // Interrupt once the testbed is up and a server runs.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !netns_list().iter().any(|n| n == &format!("xb{pid}-srv")) {
        assert!(std::time::Instant::now() < deadline, "no testbed appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    child.signal(2);
    let status = child
        .wait_exit(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("bench did not stop:\n{}", child.stderr_so_far()));
    assert!(!status.success(), "an interrupted bench reports failure");
    assert!(
        child.stderr_so_far().contains("interrupted"),
        "{}",
        child.stderr_so_far()
    );
    assert_no_testbed_of(pid);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn bench_and_demo_refuse_to_run_without_root_or_with_bad_flags() {
    let out = Command::new(EXE)
        .args(["bench", "--server-core", "0", "--client-core", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("separate cores"));
    let out = Command::new(EXE)
        .args(["bench", "--workloads", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    if !is_root() {
        let out = Command::new(EXE).arg("demo").output().unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("needs root"));
    }
}
