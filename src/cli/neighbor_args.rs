//! Neighbour-verification flags shared by `serve` and `load --stack fast`:
//! both resolve next hops through the kernel's table and follow changes
//! (RFC 4861 §7.3, RFC 1122 §2.3.2.1; see `runtime::neighbor_table`).

use std::time::Duration;

use crate::runtime::neighbor_table::NeighborConfig;

/// How long next hops are trusted and kept; every flag maps to one
/// [`NeighborConfig`] field.
#[derive(clap::Args, Debug, Clone)]
pub struct NeighborArgs {
    /// How long a next hop's MAC is trusted after the kernel confirmed it
    /// (times a random 0.5-1.5, RFC 4861 BaseReachableTime) before it is
    /// verified again; a peer or gateway that changes its MAC is followed
    /// by new and existing connections. At least 10.
    #[arg(long, default_value_t = 30_000)]
    pub neighbor_reachable_ms: u64,
    /// How long a next hop that stopped answering ARP keeps its last MAC
    /// before new connections to it fail with "no route to host".
    #[arg(long, default_value_t = 5_000)]
    pub neighbor_grace_ms: u64,
    /// How long a next hop may go without a new connection through it
    /// before it is no longer verified and is forgotten (Linux
    /// gc_stale_time); the next connection resolves it again. At least
    /// the check interval (a quarter of --neighbor-reachable-ms, at most
    /// 1 s).
    #[arg(long, default_value_t = 60_000)]
    pub neighbor_unused_ms: u64,
}

impl NeighborArgs {
    /// Writes the flags into `neighbor`; `NeighborConfig::validate` checks
    /// the result.
    pub fn apply(&self, neighbor: &mut NeighborConfig) {
        neighbor.base_reachable_time = Duration::from_millis(self.neighbor_reachable_ms);
        neighbor.failure_grace = Duration::from_millis(self.neighbor_grace_ms);
        neighbor.unused_time = Duration::from_millis(self.neighbor_unused_ms);
        // Checked a few times per reachable time, at least once a second.
        neighbor.check_interval = (neighbor.base_reachable_time / 4)
            .clamp(Duration::from_millis(1), Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        neighbor: NeighborArgs,
    }

    fn applied(args: &[&str]) -> NeighborConfig {
        let flags =
            Flags::try_parse_from(std::iter::once("t").chain(args.iter().copied())).unwrap();
        let mut config = NeighborConfig::default();
        flags.neighbor.apply(&mut config);
        config
    }

    #[test]
    fn the_defaults_are_linux_s_and_checks_run_at_least_once_a_second() {
        let c = applied(&[]);
        assert_eq!(c.base_reachable_time, Duration::from_secs(30));
        assert_eq!(c.failure_grace, Duration::from_secs(5));
        assert_eq!(c.check_interval, Duration::from_secs(1));
        assert_eq!(c.unused_time, Duration::from_secs(60));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn short_times_are_checked_four_times_per_reachable_time() {
        let c = applied(&[
            "--neighbor-reachable-ms",
            "200",
            "--neighbor-grace-ms",
            "50",
        ]);
        assert_eq!(c.base_reachable_time, Duration::from_millis(200));
        assert_eq!(c.failure_grace, Duration::from_millis(50));
        assert_eq!(c.check_interval, Duration::from_millis(50));
        assert!(c.validate().is_ok());
        let too_short = applied(&["--neighbor-reachable-ms", "5"]);
        assert!(too_short
            .validate()
            .unwrap_err()
            .contains("--neighbor-reachable-ms"));
    }

    #[test]
    fn an_unused_time_below_the_check_interval_is_refused_naming_the_flag() {
        let c = applied(&["--neighbor-unused-ms", "5000"]);
        assert_eq!(c.unused_time, Duration::from_secs(5));
        assert!(c.validate().is_ok());
        // Checked once a second: forgetting sooner cannot be honoured.
        let err = applied(&["--neighbor-unused-ms", "500"])
            .validate()
            .unwrap_err();
        assert!(err.contains("--neighbor-unused-ms"), "{err}");
    }
}
