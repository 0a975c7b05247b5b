//! `xdp-tcp impair`: bridge two interfaces through the simulator's
//! impairment model (see [`crate::impair`]) until SIGINT/SIGTERM, then
//! print per-direction statistics.

use std::io::Write;
use std::time::Duration;

use clap::Args;

use crate::impair::{DirectionStats, Relay, RelayConfig};
use crate::sim::{GilbertElliott, Impairments};

#[derive(Args, Debug)]
pub struct ImpairArgs {
    /// First interface to bridge.
    #[arg(long, value_name = "IF")]
    a: String,
    /// Second interface to bridge.
    #[arg(long, value_name = "IF")]
    b: String,
    /// One-way delay, each direction (e.g. 20ms, 1.5ms, 250us, 1s).
    #[arg(long, value_name = "DURATION", default_value = "0ms", value_parser = parse_duration)]
    delay: Duration,
    /// Extra uniform delay from 0 up to this much per frame; frame order is
    /// kept (use --reorder to reorder).
    #[arg(long, value_name = "DURATION", default_value = "0ms", value_parser = parse_duration)]
    jitter: Duration,
    /// Bottleneck rate, as in tc: bit, kbit, mbit, gbit (bits per second,
    /// powers of 1000) or bps, kbps, mbps, gbps (bytes per second), e.g.
    /// 100mbit. Unlimited when not given.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    rate: Option<u64>,
    /// Tail-drop limit of the bottleneck queue in bytes (K, M, G suffixes;
    /// needs --rate).
    #[arg(long, value_name = "BYTES", value_parser = super::parse_size)]
    queue: Option<usize>,
    /// Independent random loss per frame, e.g. 1% or 0.5%.
    #[arg(long, value_name = "PERCENT", default_value = "0%", value_parser = parse_percent)]
    loss: f64,
    /// Bursty loss (Gilbert-Elliott): P,R[,H,K] in percent. P: good→bad
    /// per frame, R: bad→good per frame, H: loss in the bad state (default
    /// 100%), K: loss in the good state (default 0%). E.g. 1%,30%.
    #[arg(long, value_name = "P,R[,H,K]", value_parser = parse_burst)]
    burst_loss: Option<GilbertElliott>,
    /// Share of frames held back by --reorder-delay, so later frames
    /// overtake them, e.g. 10%.
    #[arg(long, value_name = "PERCENT", default_value = "0%", value_parser = parse_percent)]
    reorder: f64,
    /// How long a reordered frame is held back beyond --delay.
    #[arg(long, value_name = "DURATION", default_value = "5ms", value_parser = parse_duration)]
    reorder_delay: Duration,
    /// Share of frames delivered twice, e.g. 1%.
    #[arg(long, value_name = "PERCENT", default_value = "0%", value_parser = parse_percent)]
    duplicate: f64,
    /// Share of frames with one random bit flipped, e.g. 0.1%.
    #[arg(long, value_name = "PERCENT", default_value = "0%", value_parser = parse_percent)]
    corrupt: f64,
    /// Seed of the model's random decisions (a→b uses seed·2, b→a seed·2+1).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Durations like `20ms`, `1.5ms`, `250us`, `2s`, `1min` (humantime), or `0`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    // humantime takes whole numbers only; allow one decimal point too.
    if let Some((num, unit)) = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|i| t.split_at(i))
    {
        if num.contains('.') {
            let value: f64 = num.parse().map_err(|_| {
                format!("'{s}' is not a duration: use e.g. 20ms, 1.5ms, 250us or 1s")
            })?;
            let unit = humantime::parse_duration(&format!("1{unit}"))
                .map_err(|_| format!("'{s}': unknown unit '{unit}' (use us, ms, s or min)"))?;
            return Ok(unit.mul_f64(value));
        }
    }
    humantime::parse_duration(t).map_err(|e| {
        format!("'{s}' is not a duration ({e}): use a number with a unit, e.g. 20ms, 250us or 1s")
    })
}

/// Percentages from `0%` to `100%`, e.g. `1%`, `0.5%`; returned as a
/// probability (0..=1).
pub(crate) fn parse_percent(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let Some(num) = t.strip_suffix('%') else {
        return Err(format!(
            "'{s}' is not a percentage: write it with a % sign, e.g. 1% or 0.5%"
        ));
    };
    match num.trim().parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v / 100.0),
        _ => Err(format!(
            "'{s}' is not a percentage from 0% to 100% (e.g. 1% or 0.5%)"
        )),
    }
}

/// Rates in tc's units: `bit kbit mbit gbit tbit` (bits/s) and
/// `bps kbps mbps gbps tbps` (bytes/s), powers of 1000, case-insensitive;
/// returns bits per second.
pub(crate) fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| {
        format!("'{s}' is not a rate: use a number with a unit, e.g. 100mbit, 1gbit or 10mbps")
    })?;
    let per_second: f64 = match unit {
        "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        "tbit" => 1e12,
        "bps" => 8.0,
        "kbps" => 8e3,
        "mbps" => 8e6,
        "gbps" => 8e9,
        "tbps" => 8e12,
        "" => return Err(format!("'{s}' has no unit: write e.g. 100mbit (bits/s) or 10mbps (bytes/s)")),
        _ => {
            return Err(format!(
                "'{s}': unknown unit '{unit}' (use bit, kbit, mbit, gbit for bits/s or bps, kbps, mbps, gbps for bytes/s)"
            ))
        }
    };
    let bps = value * per_second;
    if !(1.0..=1.8e19).contains(&bps) {
        return Err(format!("'{s}' is out of range: give at least 1bit"));
    }
    Ok(bps as u64)
}

/// `P,R[,H,K]` in percent.
fn parse_burst(s: &str) -> Result<GilbertElliott, String> {
    let parts: Vec<&str> = s.split(',').collect();
    if !(2..=4).contains(&parts.len()) {
        return Err(format!(
            "'{s}': give P,R or P,R,H,K in percent, e.g. 1%,30% (P: good→bad, R: bad→good, H: loss when bad, K: loss when good)"
        ));
    }
    let p = |i: usize, default: f64| parts.get(i).map_or(Ok(default), |v| parse_percent(v));
    Ok(GilbertElliott {
        p: p(0, 0.0)?,
        r: p(1, 0.0)?,
        h: p(2, 1.0)?,
        k: p(3, 0.0)?,
    })
}

fn impairments(a: &ImpairArgs) -> Result<Impairments, String> {
    if a.queue.is_some() && a.rate.is_none() {
        return Err("--queue limits the bottleneck queue of --rate: give --rate too".into());
    }
    if let Some(ge) = a.burst_loss {
        if ge.p > 0.0 && ge.r == 0.0 && ge.h > 0.0 {
            return Err("--burst-loss with R = 0% never leaves the bad state: give R > 0%".into());
        }
    }
    let mut imp = Impairments {
        delay: a.delay,
        jitter: a.jitter,
        rate_bps: a.rate,
        loss: a.loss,
        burst_loss: a.burst_loss,
        reorder: a.reorder,
        reorder_delay: a.reorder_delay,
        duplicate: a.duplicate,
        corrupt: a.corrupt,
        ..Impairments::default()
    };
    if let Some(q) = a.queue {
        imp.queue_limit_bytes = q;
    }
    Ok(imp)
}

fn print_direction(name: &str, from: &str, to: &str, s: &DirectionStats) {
    let l = &s.link;
    println!(
        "stats dir={name} from={from} to={to} offered={} delivered={} dropped={} dropped_random={} dropped_burst={} dropped_queue={} duplicated={} reordered={} corrupted={} passed_unimpaired={} oversize={} socket_drops={} tx_errors={} pending_at_exit={}",
        l.offered,
        l.delivered,
        l.dropped_random + l.dropped_burst + l.dropped_queue,
        l.dropped_random,
        l.dropped_burst,
        l.dropped_queue,
        l.duplicated,
        l.reordered,
        l.corrupted,
        s.passed_unimpaired,
        s.oversize,
        s.socket_drops,
        s.tx_errors,
        s.pending_at_exit,
    );
}

pub fn run(a: &ImpairArgs) -> Result<(), String> {
    let imp = impairments(a)?;
    let stop = super::stop_on_signals()?;
    let relay = Relay::open(RelayConfig {
        a: a.a.clone(),
        b: a.b.clone(),
        impairments: imp.clone(),
        seed: a.seed,
    })?;
    println!(
        "ready a={} b={} seed={} delay={:?} jitter={:?} rate_bps={} loss={} burst_loss={} reorder={} reorder_delay={:?} duplicate={} corrupt={}",
        a.a,
        a.b,
        a.seed,
        imp.delay,
        imp.jitter,
        imp.rate_bps.map_or("unlimited".to_owned(), |r| r.to_string()),
        imp.loss,
        imp.burst_loss.map_or("none".to_owned(), |g| format!("{},{},{},{}", g.p, g.r, g.h, g.k)),
        imp.reorder,
        imp.reorder_delay,
        imp.duplicate,
        imp.corrupt,
    );
    let _ = std::io::stdout().flush();
    let report = relay.run(stop)?;
    print_direction("a->b", &a.a, &a.b, &report.a_to_b);
    print_direction("b->a", &a.b, &a.a, &report.b_to_a);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: ImpairArgs,
    }

    fn parse(args: &[&str]) -> Result<Impairments, String> {
        let mut all = vec!["impair", "--a", "x0", "--b", "x1"];
        all.extend_from_slice(args);
        let w = Wrap::try_parse_from(all).map_err(|e| e.to_string())?;
        impairments(&w.args)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20ms"), Ok(Duration::from_millis(20)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("1.5ms"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("20").unwrap_err().contains("unit"));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("1.5parsecs")
            .unwrap_err()
            .contains("unknown unit"));
    }

    #[test]
    fn percentages() {
        assert_eq!(parse_percent("1%"), Ok(0.01));
        assert_eq!(parse_percent("0.5%"), Ok(0.005));
        assert_eq!(parse_percent("100%"), Ok(1.0));
        assert_eq!(parse_percent("0%"), Ok(0.0));
        assert!(parse_percent("1").unwrap_err().contains("% sign"));
        assert!(parse_percent("101%").is_err());
        assert!(parse_percent("-1%").is_err());
        assert!(parse_percent("x%").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("100mbit"), Ok(100_000_000));
        assert_eq!(parse_rate("1Gbit"), Ok(1_000_000_000));
        assert_eq!(parse_rate("1.5mbit"), Ok(1_500_000));
        assert_eq!(parse_rate("10mbps"), Ok(80_000_000));
        assert_eq!(parse_rate("64kbit"), Ok(64_000));
        assert!(parse_rate("100").unwrap_err().contains("no unit"));
        assert!(parse_rate("100mb").unwrap_err().contains("unknown unit"));
        assert!(parse_rate("0bit").is_err());
    }

    #[test]
    fn flags_build_the_model() {
        let imp = parse(&[
            "--delay",
            "20ms",
            "--jitter",
            "2ms",
            "--rate",
            "100mbit",
            "--queue",
            "64K",
            "--loss",
            "1%",
            "--burst-loss",
            "1%,30%",
            "--reorder",
            "10%",
            "--reorder-delay",
            "3ms",
            "--duplicate",
            "1%",
            "--corrupt",
            "0.1%",
            "--seed",
            "7",
        ])
        .unwrap();
        assert_eq!(imp.delay, Duration::from_millis(20));
        assert_eq!(imp.jitter, Duration::from_millis(2));
        assert_eq!(imp.rate_bps, Some(100_000_000));
        assert_eq!(imp.queue_limit_bytes, 64_000);
        assert_eq!(imp.loss, 0.01);
        assert_eq!(
            imp.burst_loss,
            Some(GilbertElliott {
                p: 0.01,
                r: 0.3,
                h: 1.0,
                k: 0.0
            })
        );
        assert_eq!(imp.reorder, 0.1);
        assert_eq!(imp.reorder_delay, Duration::from_millis(3));
        assert_eq!(imp.duplicate, 0.01);
        assert_eq!(imp.corrupt, 0.001);
        // Defaults: a perfect link.
        let none = parse(&[]).unwrap();
        assert_eq!(none.loss, 0.0);
        assert_eq!(none.rate_bps, None);
        assert_eq!(none.delay, Duration::ZERO);
    }

    #[test]
    fn bad_flags_say_what_to_fix() {
        let err = |args: &[&str]| parse(args).unwrap_err();
        assert!(err(&["--queue", "10K"]).contains("give --rate"));
        assert!(err(&["--loss", "5"]).contains("% sign"));
        assert!(err(&["--burst-loss", "1%"]).contains("P,R"));
        assert!(err(&["--burst-loss", "1%,0%"]).contains("R > 0%"));
        assert!(err(&["--delay", "soon"]).contains("duration"));
        assert!(err(&["--rate", "fast"]).contains("rate"));
        let four = parse(&["--burst-loss", "1%,30%,80%,0.1%"]).unwrap();
        assert_eq!(
            four.burst_loss,
            Some(GilbertElliott {
                p: 0.01,
                r: 0.3,
                h: 0.8,
                k: 0.001
            })
        );
    }
}
