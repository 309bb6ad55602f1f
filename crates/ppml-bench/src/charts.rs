//! The report's charts, drawn with `plotters` into SVG.
//!
//! Every chart has one horizontal bar per model and backend, labelled with both and coloured by
//! backend, so that each pair's figure can be read off and compared with its neighbours. Each
//! shows what the table states only as numbers: how much slower than plain (log scale, the
//! backends differ by orders of magnitude), how far accuracy moves from plain's (in points,
//! around zero, where the differences are), throughput, and communication per image.

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::{BackendKind, BenchError, PairResult, Report};

/// Colours of the backends, in the order of [`BackendKind::ALL`].
const PALETTE: [RGBColor; 6] = [
    RGBColor(0x55, 0x55, 0x55),
    RGBColor(0x4c, 0x72, 0xb0),
    RGBColor(0xdd, 0x84, 0x52),
    RGBColor(0x55, 0xa8, 0x68),
    RGBColor(0x81, 0x72, 0xb3),
    RGBColor(0xc4, 0x4e, 0x52),
];

/// Width of one panel, and height per bar and around the bars, in pixels.
const PANEL_WIDTH: u32 = 620;
const BAR_HEIGHT: u32 = 22;
const FRAME_HEIGHT: u32 = 110;

/// How a panel's value axis is scaled.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scale {
    /// Powers of ten; bars start at the axis' lower end. Values must be positive.
    Log,
    /// Bars start at zero, to the left for negative values.
    Linear,
}

/// One bar: the pair it belongs to and its value.
#[derive(Clone, Debug, PartialEq)]
struct Bar {
    model: String,
    backend: String,
    value: f64,
}

/// One chart panel.
#[derive(Clone, Debug)]
struct Panel {
    title: String,
    axis: String,
    scale: Scale,
    bars: Vec<Bar>,
}

impl Panel {
    /// A panel with a bar for every pair for which `value` has a figure (on a log scale, a
    /// positive one).
    fn new<'r>(
        (title, axis): (&str, &str),
        scale: Scale,
        results: impl IntoIterator<Item = &'r PairResult>,
        value: impl Fn(&PairResult) -> Option<f64>,
    ) -> Self {
        let bars = results
            .into_iter()
            .filter_map(|r| {
                let v = value(r).filter(|v| v.is_finite())?;
                (scale == Scale::Linear || v > 0.0).then(|| Bar {
                    model: r.model_run.clone(),
                    backend: r.backend.clone(),
                    value: v,
                })
            })
            .collect();
        Self {
            title: title.into(),
            axis: axis.into(),
            scale,
            bars,
        }
    }

    /// The value axis: decades around the values on a log scale; zero and the values with a
    /// margin on a linear one.
    fn range(&self) -> (f64, f64) {
        let values = self.bars.iter().map(|b| b.value);
        let lo = values.clone().fold(f64::INFINITY, f64::min);
        let hi = values.fold(f64::NEG_INFINITY, f64::max);
        match self.scale {
            _ if self.bars.is_empty() => (0.0, 1.0),
            Scale::Log => {
                let lo = 10f64.powf(lo.log10().floor());
                // A decade of room right of the longest bar for its figure.
                (lo, 10f64.powf((hi * 3.0).log10().ceil()).max(lo * 10.0))
            }
            Scale::Linear => {
                let (lo, hi) = (lo.min(0.0), hi.max(0.0));
                let pad = if hi > lo { (hi - lo) * 0.25 } else { 1.0 };
                (if lo < 0.0 { lo - pad } else { 0.0 }, hi + pad)
            }
        }
    }
}

/// The colour of `backend`'s bars.
fn colour(backend: &str) -> RGBColor {
    let i = BackendKind::ALL
        .iter()
        .position(|k| k.name() == backend)
        .unwrap_or(PALETTE.len() - 1);
    PALETTE[i % PALETTE.len()]
}

/// A figure with three significant digits (at least), as the bar's label.
fn figure(v: f64) -> String {
    let digits = match v.abs() {
        a if a >= 100.0 || a == 0.0 => 0,
        a if a >= 10.0 => 1,
        a if a >= 1.0 => 2,
        a => (2.0 - a.log10().floor()).min(6.0) as usize,
    };
    format!("{v:.digits$}")
}

/// An axis tick: at most three significant digits, no trailing zeros, and no "-0".
fn tick(v: f64) -> String {
    if v.abs() < 1e-12 {
        return "0".into();
    }
    let scale = 10f64.powi(2 - v.abs().log10().floor() as i32);
    format!("{}", (v * scale).round() / scale)
}

type ChartError = DrawingAreaErrorKind<std::io::Error>;

/// Draws `panel` on `area` along the value axis `x`, its bars from `origin`, in `rows` rows from
/// the top (so that bars are as thick in every panel of a chart).
fn draw_on<X>(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    (panel, rows): (&Panel, usize),
    x: X,
    origin: f64,
) -> Result<(), ChartError>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let (n, rows) = (panel.bars.len(), rows.max(panel.bars.len()).max(1));
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 16).into_font())
        .margin(12)
        .margin_right(40)
        .x_label_area_size(40)
        .y_label_area_size(130)
        // Integer ranges are inclusive in plotters: `rows` segments.
        .build_cartesian_2d(x, (0..rows - 1).into_segmented())?;
    // Bars top-down in the report's order; plotters counts segments bottom-up.
    let row = |i: usize| rows - 1 - i;
    let label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(k) if *k < rows => panel
            .bars
            .get(rows - 1 - k)
            .map(|b| format!("{} {}", b.model, b.backend))
            .unwrap_or_default(),
        _ => String::new(),
    };
    let tick = |v: &f64| tick(*v);
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(rows)
        .y_label_formatter(&label)
        .x_label_formatter(&tick)
        .x_desc(panel.axis.as_str())
        .draw()?;
    if n == 0 {
        return area.draw(&Text::new(
            "nothing measured",
            (PANEL_WIDTH as i32 / 2 - 50, FRAME_HEIGHT as i32 / 2),
            ("sans-serif", 14).into_font(),
        ));
    }
    chart.draw_series(panel.bars.iter().enumerate().map(|(i, b)| {
        let mut bar = Rectangle::new(
            [
                (origin, SegmentValue::Exact(row(i))),
                (b.value, SegmentValue::Exact(row(i) + 1)),
            ],
            colour(&b.backend).filled(),
        );
        bar.set_margin(3, 3, 0, 0);
        bar
    }))?;
    chart.draw_series(panel.bars.iter().enumerate().map(|(i, b)| {
        // The figure just past the bar's end, on the side it grows to.
        let dx = if b.value < origin {
            -8 * figure(b.value).len() as i32 - 4
        } else {
            4
        };
        EmptyElement::at((b.value, SegmentValue::CenterOf(row(i))))
            + Text::new(figure(b.value), (dx, -6), ("sans-serif", 12).into_font())
    }))?;
    if panel.scale == Scale::Linear {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![
                (0.0, SegmentValue::Exact(0)),
                (0.0, SegmentValue::Exact(rows)),
            ],
            BLACK,
        )))?;
    }
    Ok(())
}

/// `panels` side by side in one SVG document.
fn svg(panels: &[Panel]) -> Result<String, BenchError> {
    let rows = panels.iter().map(|p| p.bars.len()).max().unwrap_or(0);
    let size = (
        PANEL_WIDTH * panels.len().max(1) as u32,
        FRAME_HEIGHT + BAR_HEIGHT * rows.max(1) as u32,
    );
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        let drawn = root.fill(&WHITE).and_then(|()| {
            for (area, panel) in root
                .split_evenly((1, panels.len().max(1)))
                .iter()
                .zip(panels)
            {
                let (lo, hi) = panel.range();
                match panel.scale {
                    Scale::Log => draw_on(area, (panel, rows), (lo..hi).log_scale(), lo)?,
                    Scale::Linear => draw_on(area, (panel, rows), lo..hi, 0.0)?,
                }
            }
            root.present()
        });
        drawn.map_err(|e| BenchError::Chart(e.to_string()))?;
    }
    Ok(out)
}

/// The pairs other than plain's own, which is the baseline of their ratios.
fn against_plain(report: &Report) -> impl Iterator<Item = &PairResult> {
    report
        .results
        .iter()
        .filter(|r| r.backend != BackendKind::Plain.name())
}

/// Every chart, with the name of its file.
pub fn all(report: &Report) -> Result<Vec<(&'static str, String)>, BenchError> {
    Ok(vec![
        ("slowdown.svg", slowdown_svg(report)?),
        ("accuracy.svg", accuracy_svg(report)?),
        ("throughput.svg", throughput_svg(report)?),
        ("communication.svg", communication_svg(report)?),
    ])
}

/// Latency and throughput relative to plain inference (log scale).
pub fn slowdown_svg(report: &Report) -> Result<String, BenchError> {
    svg(&[
        Panel::new(
            (
                "Single-image latency vs plain",
                "times plain's median (log scale)",
            ),
            Scale::Log,
            against_plain(report),
            |r| r.latency_slowdown,
        ),
        Panel::new(
            (
                "Throughput vs plain",
                "times fewer images/s than plain (log scale)",
            ),
            Scale::Log,
            against_plain(report),
            |r| r.throughput_slowdown,
        ),
    ])
}

/// How far each backend's answers move from plain's: its accuracy minus plain's on the model
/// asked for and the same images (percentage points; for HE this includes the change to the
/// model's `-sq` variant), and the share of images whose label differs from plain inference of
/// the model run.
pub fn accuracy_svg(report: &Report) -> Result<String, BenchError> {
    let plain_accuracy = |model: &str| {
        report
            .results
            .iter()
            .find(|p| p.model == model && p.backend == BackendKind::Plain.name())
            .and_then(|p| Some(p.throughput.as_ref()?.accuracy))
    };
    svg(&[
        Panel::new(
            (
                "Accuracy minus plain's",
                "percentage points (model asked for, same images)",
            ),
            Scale::Linear,
            against_plain(report),
            |r| Some((r.throughput.as_ref()?.accuracy - plain_accuracy(&r.model)?) * 100.0),
        ),
        Panel::new(
            ("Labels that differ from plain's", "% of images"),
            Scale::Linear,
            against_plain(report),
            |r| Some((1.0 - r.throughput.as_ref()?.agreement?) * 100.0),
        ),
    ])
}

/// Images per second at each backend's throughput batch (log scale), plain included.
pub fn throughput_svg(report: &Report) -> Result<String, BenchError> {
    svg(&[Panel::new(
        ("Throughput", "images/s at the throughput batch (log scale)"),
        Scale::Log,
        &report.results,
        |r| Some(r.throughput.as_ref()?.throughput_img_per_s),
    )])
}

/// Bytes sent per image by all parties during single-image calls (log scale; pairs that send
/// nothing, such as plain, have no bar).
pub fn communication_svg(report: &Report) -> Result<String, BenchError> {
    svg(&[Panel::new(
        (
            "Communication per image",
            "MB sent per image, all parties, batch 1 (log scale)",
        ),
        Scale::Log,
        &report.results,
        |r| {
            let l = r.latency.as_ref()?;
            Some(l.bytes_sent as f64 / l.n.max(1) as f64 / 1e6)
        },
    )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    /// Whether `svg` has a text element saying exactly `text`.
    fn says(svg: &str, text: &str) -> bool {
        svg.contains(&format!(">\n{text}\n</text>"))
    }

    fn values(panel: &Panel) -> Vec<(String, f64)> {
        panel
            .bars
            .iter()
            .map(|b| (format!("{} {}", b.model, b.backend), b.value))
            .collect()
    }

    #[test]
    fn figures_keep_three_significant_digits() {
        assert_eq!(figure(1234.5), "1234");
        assert_eq!(figure(56.78), "56.8");
        assert_eq!(figure(2.0), "2.00");
        assert_eq!(figure(0.5), "0.500");
        assert_eq!(figure(0.002), "0.00200");
        assert_eq!(figure(-1.0), "-1.00");
        assert_eq!(figure(0.0), "0");
    }

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(1.0), "1");
        assert_eq!(tick(100_000.0), "100000");
        assert_eq!(tick(10f64.powf(-3.0)), "0.001");
        assert_eq!(tick(0.1 + 0.2), "0.3");
        assert_eq!(tick(-0.7), "-0.7");
        assert_eq!(tick(-2.7e-17), "0");
    }

    #[test]
    fn log_panels_leave_out_what_they_cannot_draw() {
        let report = fixtures::report();
        let mb = Panel::new(("t", "a"), Scale::Log, &report.results, |r| {
            let l = r.latency.as_ref()?;
            Some(l.bytes_sent as f64 / l.n as f64 / 1e6)
        });
        // Plain sends nothing, he has no latency run, hybrid did not run.
        assert_eq!(
            values(&mb),
            [("cnn tee".into(), 0.002), ("cnn mpc2".into(), 3.0)]
        );
        // From the decade below the smallest to a decade with room for the largest's figure.
        let (lo, hi) = mb.range();
        assert!(
            (lo - 0.001).abs() < 1e-12 && (hi - 10.0).abs() < 1e-9,
            "{lo}..{hi}"
        );
        let linear = Panel::new(("t", "a"), Scale::Linear, &report.results, |r| {
            Some((r.throughput.as_ref()?.accuracy - 0.98) * 100.0)
        });
        let diffs = values(&linear);
        assert_eq!(diffs.len(), 5);
        // Negative values are kept on a linear scale, and the axis takes them in.
        assert!((diffs[2].1 - -1.0).abs() < 1e-9 && diffs[4].0 == "mlp-sq he");
        assert!((diffs[4].1 - -2.5).abs() < 1e-9);
        let (lo, hi) = linear.range();
        assert!(lo < -2.5 && hi > 0.0, "{lo}..{hi}");
    }

    #[test]
    fn accuracy_is_shown_as_the_change_from_plain() {
        let svg = accuracy_svg(&fixtures::report()).expect("svg");
        // mpc2: 97% against plain's 98%, 1% of labels differing; he on mlp-sq: -0.5 points.
        for text in ["cnn mpc2", "mlp-sq he", "-1.00", "-0.500", "1.00", "1.50"] {
            assert!(says(&svg, text), "{text} missing");
        }
        // Plain, the baseline, has no bar of its own.
        assert!(!says(&svg, "cnn plain"));
    }

    #[test]
    fn every_chart_labels_its_pairs() {
        let report = fixtures::report();
        let slowdown = slowdown_svg(&report).expect("svg");
        // tee: twice plain's latency, half its throughput; he: throughput only.
        for text in ["cnn tee", "2.00", "500", "mlp-sq he", "2000"] {
            assert!(says(&slowdown, text), "{text} missing");
        }
        let throughput = throughput_svg(&report).expect("svg");
        assert!(says(&throughput, "cnn plain") && says(&throughput, "20000"));
        let communication = communication_svg(&report).expect("svg");
        assert!(says(&communication, "0.00200") && !says(&communication, "cnn plain"));
    }

    #[test]
    fn a_report_without_results_still_draws() {
        let mut report = fixtures::report();
        report.results.clear();
        let svg = slowdown_svg(&report).expect("svg");
        assert!(says(&svg, "nothing measured"));
    }
}
