//! How an idle worker waits, shared by `serve` and `load --stack fast`:
//! poll for a while, then sleep (see `runtime::worker`), or busy-poll.

use std::time::Duration;

use crate::runtime::FastPathConfig;

/// How long an idle worker keeps polling before it sleeps.
#[derive(clap::Args, Debug, Clone)]
pub struct IdleArgs {
    /// How long a worker with nothing to do keeps polling its rings before
    /// it sleeps in poll(2), in microseconds. Longer spins cut the
    /// latency of a worker woken by its next frame; the core is busy that
    /// long after each burst.
    #[arg(long, default_value_t = 50, conflicts_with = "busy_poll")]
    pub idle_spin_us: u64,
    /// Never sleep: every worker polls its rings all the time (one core
    /// each, fully busy). The lowest latency, for workers that own their
    /// cores.
    #[arg(long)]
    pub busy_poll: bool,
}

impl IdleArgs {
    /// The idle spin the flags ask for.
    pub fn idle_spin(&self) -> Duration {
        if self.busy_poll {
            Duration::MAX
        } else {
            Duration::from_micros(self.idle_spin_us)
        }
    }

    /// Writes the flags into `config`.
    pub fn apply(&self, config: &mut FastPathConfig) {
        config.idle_spin = self.idle_spin();
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Flags {
        #[command(flatten)]
        idle: IdleArgs,
    }

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        Flags::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
    }

    #[test]
    fn the_default_spins_50_us_and_busy_poll_never_sleeps() {
        assert_eq!(
            parse(&[]).unwrap().idle.idle_spin(),
            crate::runtime::worker::DEFAULT_IDLE_SPIN
        );
        assert_eq!(
            parse(&["--idle-spin-us", "200"]).unwrap().idle.idle_spin(),
            Duration::from_micros(200)
        );
        assert_eq!(
            parse(&["--busy-poll"]).unwrap().idle.idle_spin(),
            Duration::MAX
        );
    }

    #[test]
    fn a_spin_and_busy_poll_together_are_refused() {
        let err = parse(&["--busy-poll", "--idle-spin-us", "10"]).unwrap_err();
        assert!(err.to_string().contains("--busy-poll"), "{err}");
        assert!(parse(&["--idle-spin-us", "-1"]).is_err());
    }
}
