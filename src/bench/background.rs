//! Background work of the machine that shows in a run's latency tail,
//! stated with the results so a reader can tell the machine's stalls
//! from the stacks'.
//!
//! The one found so far is DAMON: a `kdamond` kernel thread samples
//! memory access every `sample_us` and, on the VMs this project is
//! measured on, takes a core for 1-5 ms at a time (`perf sched`,
//! docs/PERFORMANCE.md "Session 13"). A request arriving meanwhile waits,
//! whichever stack serves it: the p99.9 of every cell and the p99 of an
//! unlucky short window show it. Every run records the CPU time those
//! threads took while it ran ([`BackgroundThreads`]), so a slow or stalled
//! repetition can be matched with a DAMON pass.

use std::fs;
use std::path::{Path, PathBuf};

/// Where the kernel lists processes and DAMON's sysfs interface.
const PROC: &str = "/proc";
const DAMON_ADMIN: &str = "/sys/kernel/mm/damon/admin/kdamonds";

/// The machine's background threads whose CPU time a run records.
#[derive(Debug, Clone, Default)]
pub struct BackgroundThreads {
    proc_root: PathBuf,
    pids: Vec<u32>,
}

impl BackgroundThreads {
    /// The `kdamond` threads running now.
    pub fn find() -> BackgroundThreads {
        BackgroundThreads::find_in(Path::new(PROC))
    }

    fn find_in(proc_root: &Path) -> BackgroundThreads {
        BackgroundThreads {
            proc_root: proc_root.to_owned(),
            pids: kdamond_pids(proc_root),
        }
    }

    /// One line per kind of background work found: what the threads are
    /// and, from DAMON's sysfs interface, what they sample.
    pub fn notes(&self) -> Vec<String> {
        damon_note(self.pids.len(), Path::new(DAMON_ADMIN))
            .into_iter()
            .collect()
    }

    /// CPU time the threads have run in total (ns, the first field of
    /// `/proc/PID/schedstat`); None when there are none or one cannot be
    /// read (it ended: the difference of two readings would be wrong).
    pub fn cpu_ns(&self) -> Option<u64> {
        if self.pids.is_empty() {
            return None;
        }
        self.pids.iter().try_fold(0u64, |sum, pid| {
            let text =
                fs::read_to_string(self.proc_root.join(pid.to_string()).join("schedstat")).ok()?;
            Some(sum + text.split_whitespace().next()?.parse::<u64>().ok()?)
        })
    }
}

/// Processes (kernel threads included) whose name starts with `kdamond`.
fn kdamond_pids(proc_root: &Path) -> Vec<u32> {
    let Ok(entries) = fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            fs::read_to_string(e.path().join("comm"))
                .is_ok_and(|c| c.starts_with("kdamond"))
                .then_some(pid)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// A note when `threads` kdamond threads run: how many, and what the sysfs
/// interface says they monitor and how often (absent when DAMON was
/// started by a module such as `damon_reclaim` instead).
fn damon_note(threads: usize, damon_admin: &Path) -> Option<String> {
    if threads == 0 {
        return None;
    }
    let read = |p: &Path| fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
    let mut monitored = Vec::new();
    if let Ok(dirs) = fs::read_dir(damon_admin) {
        let mut dirs: Vec<_> = dirs.filter_map(Result::ok).map(|e| e.path()).collect();
        dirs.sort();
        for d in dirs.iter().filter(|d| d.join("state").is_file()) {
            if read(&d.join("state")).as_deref() != Some("on") {
                continue;
            }
            let ctx = d.join("contexts/0");
            let ops = read(&ctx.join("operations")).unwrap_or_else(|| "?".into());
            let sample = read(&ctx.join("monitoring_attrs/intervals/sample_us"))
                .and_then(|s| s.parse::<u64>().ok());
            monitored.push(match sample {
                Some(us) => format!("{ops} sampled every {}", human_us(us)),
                None => ops,
            });
        }
    }
    let what = if monitored.is_empty() {
        String::new()
    } else {
        format!(" ({})", monitored.join("; "))
    };
    Some(format!(
        "background: {threads} kdamond thread(s) run DAMON{what}; each pass can take a core \
         for milliseconds, which shows in p99.9 and in the p99 of short runs of either server"
    ))
}

fn human_us(us: u64) -> String {
    if us >= 1000 && us % 1000 == 0 {
        format!("{} ms", us / 1000)
    } else {
        format!("{us} us")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("xdp-tcp-background-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn no_kdamond_thread_means_no_note() {
        let root = scratch("none");
        write(&root.join("proc/1/comm"), "systemd\n");
        write(&root.join("proc/self/comm"), "kdamond.0\n");
        assert_eq!(
            damon_note(kdamond_pids(&root.join("proc")).len(), &root.join("admin")),
            None
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_running_kdamond_is_named_with_what_it_samples() {
        let root = scratch("on");
        write(&root.join("proc/1/comm"), "systemd\n");
        write(&root.join("proc/107/comm"), "kdamond.0\n");
        let k0 = root.join("admin/0");
        write(&k0.join("state"), "on\n");
        write(&k0.join("contexts/0/operations"), "paddr\n");
        write(
            &k0.join("contexts/0/monitoring_attrs/intervals/sample_us"),
            "500000\n",
        );
        // A second, stopped kdamond of the sysfs interface is not listed.
        write(&root.join("admin/1/state"), "off\n");
        write(&root.join("admin/nr_kdamonds"), "2\n");
        let note = damon_note(kdamond_pids(&root.join("proc")).len(), &root.join("admin")).unwrap();
        assert!(
            note.contains("1 kdamond thread(s) run DAMON (paddr sampled every 500 ms)"),
            "{note}"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_kdamond_started_by_a_module_is_still_reported() {
        let root = scratch("module");
        write(&root.join("proc/99/comm"), "kdamond.0\n");
        let note = damon_note(
            kdamond_pids(&root.join("proc")).len(),
            &root.join("no-admin"),
        )
        .unwrap();
        assert!(note.contains("1 kdamond thread(s) run DAMON;"), "{note}");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn cpu_time_is_summed_over_the_threads_and_lost_with_one() {
        let root = scratch("cpu");
        let proc_root = root.join("proc");
        write(&proc_root.join("1/comm"), "systemd\n");
        write(&proc_root.join("1/schedstat"), "999 0 0\n");
        write(&proc_root.join("107/comm"), "kdamond.0\n");
        write(&proc_root.join("107/schedstat"), "5000000 20 3\n");
        write(&proc_root.join("230/comm"), "kdamond.1\n");
        write(&proc_root.join("230/schedstat"), "250 1 1\n");
        let threads = BackgroundThreads::find_in(&proc_root);
        assert_eq!(threads.pids, vec![107, 230]);
        assert_eq!(threads.cpu_ns(), Some(5_000_250));
        // A thread that ended makes the reading unusable, not smaller.
        fs::remove_dir_all(proc_root.join("230")).unwrap();
        assert_eq!(threads.cpu_ns(), None);
        assert_eq!(
            BackgroundThreads::find_in(&root.join("empty")).cpu_ns(),
            None
        );
        fs::remove_dir_all(&root).unwrap();
    }
}
