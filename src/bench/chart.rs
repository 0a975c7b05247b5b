//! The comparison as an SVG chart: one horizontal bar per table line with
//! the ratio fast path / kernel (same client), and a line at 1×.
//!
//! plotters' SVG backend without font features: text is written as SVG
//! `<text>` and laid out with built-in metrics, so no system fonts
//! (fontconfig, freetype) are needed to build or run.

use std::path::Path;

use plotters::prelude::*;

use super::results::Summary;

/// The bar's label: case, client and (when both modes ran) offloads.
fn bar_label(s: &Summary, tag_modes: bool) -> String {
    let mut l = format!("{} / {} client", s.label, s.client);
    if tag_modes {
        l.push_str(&format!(" [offloads {}]", s.offloads));
    }
    l
}

/// The x axis's tick values between `min` and `max`: 1, 2, 3 and 5 times
/// powers of ten. plotters' own key points for a log axis crowd their
/// labels together near 1x; these are at least a factor 1.5 apart (3 is
/// kept because it is the target ratio).
fn ratio_ticks(min: f64, max: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut exponent = min.log10().floor() as i32;
    while 10f64.powi(exponent) <= max {
        for m in [1.0, 2.0, 3.0, 5.0] {
            let v = m * 10f64.powi(exponent);
            if v >= min && v <= max {
                ticks.push(v);
            }
        }
        exponent += 1;
    }
    ticks
}

/// A tick value as a short label: `0.5x`, `1x`, `20x`.
fn tick_label(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}x")
}

/// Draws the ratios of `summaries` (lines without a ratio are listed as
/// n/a) into `path`, titled `title`.
pub fn draw(path: &Path, title: &str, summaries: &[Summary]) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("cannot draw {}: {e}", path.display());
    let modes: std::collections::BTreeSet<_> = summaries.iter().map(|s| s.offloads).collect();
    let tag_modes = modes.len() > 1;
    // The table's first line on top: segments count from the bottom.
    let rows: Vec<(String, Option<f64>, bool)> = summaries
        .iter()
        .rev()
        .map(|s| (bar_label(s, tag_modes), s.ratio, s.lower_is_better))
        .collect();
    let n = rows.len().max(1);
    // Ratios on a log axis, bars from 1x: 2x better and 2x worse look
    // alike, and one outlier does not flatten the rest.
    let ratios = || rows.iter().filter_map(|r| r.1).filter(|r| *r > 0.0);
    let max = ratios().fold(2.0f64, f64::max) * 1.6;
    let min = ratios().fold(0.5f64, f64::min) / 1.3;
    let height = 120 + 34 * n as u32;
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(380)
        .build_cartesian_2d(
            (min..max)
                .log_scale()
                .with_key_points(ratio_ticks(min, max)),
            // Integer ranges are inclusive in plotters: n - 1 gives n rows
            // (an empty range cannot be drawn, so one line gets two rows).
            (0..n.max(2) - 1).into_segmented(),
        )
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(WHITE)
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .x_label_formatter(&|v| tick_label(*v))
        .x_desc(
            "fast path / kernel, same client, log scale (rates: higher is better; p99: lower is better)",
        )
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| err(&e))?;
    let rate_color = RGBColor(46, 110, 180);
    let latency_color = RGBColor(220, 120, 40);
    chart
        .draw_series(
            rows.iter()
                .enumerate()
                .filter_map(|(i, (_, ratio, lower))| {
                    let r = (*ratio).filter(|r| *r > 0.0)?;
                    let color = if *lower { latency_color } else { rate_color };
                    let mut bar = Rectangle::new(
                        [
                            (1.0, SegmentValue::Exact(i)),
                            (r, SegmentValue::Exact(i + 1)),
                        ],
                        color.filled(),
                    );
                    bar.set_margin(5, 5, 0, 0);
                    Some(bar)
                }),
        )
        .map_err(|e| err(&e))?;
    chart
        .draw_series(rows.iter().enumerate().map(|(i, (_, ratio, _))| {
            let (text, x) = match ratio {
                Some(r) => (format!("{r:.2}x"), r.max(1.0)),
                None => ("n/a".to_owned(), 1.0),
            };
            Text::new(
                text,
                (x * 1.02, SegmentValue::CenterOf(i)),
                ("sans-serif", 13),
            )
        }))
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(
            [(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Last)],
            BLACK.stroke_width(1),
        ))
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

#[cfg(test)]
mod tests {
    use super::super::plan::{Client, Offloads};
    use super::super::results::Side;
    use super::*;

    fn side(m: Option<f64>) -> Side {
        Side {
            median: m,
            min: m,
            max: m,
            runs_ok: usize::from(m.is_some()),
            runs: 1,
            note: String::new(),
            median_p99_us: None,
            median_rss_per_idle_bytes: None,
            median_slab_per_idle_bytes: None,
            median_veth_tx_drops: None,
            median_port_waits: None,
        }
    }

    #[test]
    fn ticks_are_one_two_three_five_per_decade_inside_the_range() {
        assert_eq!(ratio_ticks(0.38, 5.6), vec![0.5, 1.0, 2.0, 3.0, 5.0]);
        let wide = ratio_ticks(0.05, 40.0);
        assert_eq!(wide.len(), 12, "{wide:?}");
        assert!(
            (wide[0] - 0.05).abs() < 1e-12 && wide[11] == 30.0,
            "{wide:?}"
        );
        for pair in wide.windows(2) {
            assert!(pair[1] / pair[0] >= 1.5 - 1e-9, "{pair:?}");
        }
        assert_eq!(tick_label(0.5), "0.5x");
        assert_eq!(tick_label(1.0), "1x");
        assert_eq!(tick_label(20.0), "20x");
        assert_eq!(tick_label(0.05), "0.05x");
    }

    #[test]
    fn draws_an_svg_with_a_bar_per_ratio_and_na_for_the_rest() {
        let mk = |label: &str, ratio: Option<f64>| Summary {
            case: label.into(),
            label: label.into(),
            client: Client::Kernel,
            offloads: Offloads::Off,
            unit: "req/s".into(),
            lower_is_better: false,
            kernel: side(Some(1.0)),
            fast: side(ratio),
            ratio,
        };
        let path = std::env::temp_dir().join(format!("xdp-tcp-chart-{}.svg", std::process::id()));
        draw(&path, "test", &[mk("rpc", Some(3.5)), mk("short", None)]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.contains("3.50x") && svg.contains("n/a"));
        assert!(svg.contains("rpc / kernel client"));
        // One line only: the row range must not collapse.
        draw(&path, "one", &[mk("rpc", Some(0.8))]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(svg.contains("0.80x") && svg.contains("rpc / kernel client"));
    }
}
