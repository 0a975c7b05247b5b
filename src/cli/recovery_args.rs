//! Loss-recovery and congestion-control flags shared by `serve` and `sim`.

use std::time::Duration;

use crate::tcp::congestion::CongestionAlgorithm;
use crate::tcp::TcpConfig;

/// How connections detect and recover from loss; every flag maps to one
/// [`TcpConfig`] field.
#[derive(clap::Args, Debug, Clone)]
pub struct RecoveryArgs {
    /// Congestion control: newreno or cubic (RFC 9438).
    #[arg(long, default_value_t = CongestionAlgorithm::default())]
    pub congestion: CongestionAlgorithm,
    /// Disable HyStart++ (RFC 9406) in the initial slow start.
    #[arg(long)]
    pub no_hystart: bool,
    /// Do not offer SACK (RFC 2018): recovery falls back to NewReno (RFC 6582).
    #[arg(long)]
    pub no_sack: bool,
    /// Disable RACK-TLP (RFC 8985): losses by the RFC 6675 rule, tails by RTO.
    #[arg(long)]
    pub no_rack: bool,
    /// Delayed-ACK timeout (RFC 1122 §4.2.3.2: at most 500 ms); 0ms ACKs every segment.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub delayed_ack: Option<Duration>,
}

impl RecoveryArgs {
    /// Writes the flags into `tcp`; `TcpConfig::validate` checks the result.
    pub fn apply(&self, tcp: &mut TcpConfig) {
        tcp.congestion = self.congestion;
        tcp.hystart = !self.no_hystart;
        tcp.sack = !self.no_sack;
        tcp.rack = !self.no_rack;
        if let Some(d) = self.delayed_ack {
            tcp.delayed_ack = d;
        }
    }

    /// One line naming what runs, e.g. "cubic with HyStart++; SACK; RACK-TLP".
    pub fn describe(&self) -> String {
        format!(
            "{}{}; {}; {}",
            self.congestion,
            if self.no_hystart {
                ""
            } else {
                " with HyStart++"
            },
            if self.no_sack { "no SACK" } else { "SACK" },
            if self.no_rack {
                "no RACK-TLP"
            } else {
                "RACK-TLP"
            }
        )
    }
}
