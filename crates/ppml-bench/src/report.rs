//! The report's forms: a Markdown table, JSON, CSV and SVG charts.

use std::fmt::Write as _;
use std::path::Path;

use crate::{BenchError, PairResult, Report};

/// The mode a backend reported in its setup notes (`tee_label=...` or `mode=...`).
fn mode(r: &PairResult) -> Option<&str> {
    r.latency
        .as_ref()
        .or(r.throughput.as_ref())?
        .notes
        .iter()
        .find_map(|n| {
            n.strip_prefix("tee_label=")
                .or_else(|| n.strip_prefix("mode="))
        })
}

/// One row's cells, in the column order of [`COLUMNS`].
fn cells(r: &PairResult) -> Vec<String> {
    let f = |v: Option<f64>, digits: usize| v.map_or("-".into(), |v| format!("{v:.digits$}"));
    let pct = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.2}%", v * 100.0));
    let (lat, thr) = (r.latency.as_ref(), r.throughput.as_ref());
    let per_image = |bytes: u64, n: usize| bytes as f64 / n.max(1) as f64;
    vec![
        r.model.clone(),
        r.backend.clone(),
        match (&r.skipped, mode(r)) {
            (Some(why), _) => format!("not run: {why}"),
            (None, Some(m)) => format!("{}, {m}", r.model_run),
            (None, None) if r.model_run != r.model => r.model_run.clone(),
            (None, None) => "as is".into(),
        } + &r
            .latency_skipped
            .as_ref()
            .map(|why| format!("; no latency: {why}"))
            .unwrap_or_default(),
        pct(thr.map(|t| t.accuracy)),
        pct(thr.and_then(|t| t.agreement)),
        f(lat.map(|l| l.latency_ms), 3),
        f(lat.map(|l| l.latency_p95_ms), 3),
        f(r.latency_slowdown, 1),
        // Below 10 images/s (HE's lenet-sq), a decimal keeps the figure from reading 0.
        thr.map_or("-".into(), |t| {
            let v = t.throughput_img_per_s;
            format!("{v:.prec$}", prec = usize::from(v < 10.0))
        }),
        thr.map_or("-".into(), |t| t.batch.to_string()),
        f(r.throughput_slowdown, 1),
        f(lat.map(|l| per_image(l.bytes_sent, l.n) / 1e6), 3),
        f(lat.map(|l| l.rounds as f64 / l.n.max(1) as f64), 0),
        f(lat.map(|l| l.setup_seconds), 3),
        f(r.peak_rss_mib, 0),
    ]
}

/// Column headers of the table and CSV.
pub const COLUMNS: &[&str] = &[
    "model",
    "backend",
    "run as",
    "accuracy",
    "agreement",
    "latency ms (median)",
    "latency ms (p95)",
    "latency vs plain",
    "throughput img/s",
    "batch",
    "throughput vs plain",
    "MB/image",
    "rounds/image",
    "setup s",
    "peak MiB",
];

/// The results as a Markdown table with a header naming the machine and commit.
pub fn markdown(report: &Report) -> String {
    let mut s = format!(
        "Machine: {}. Commit: {}. {}. Accuracy, agreement and throughput on the first {} test \
         images; latency over {} images one at a time. \"vs plain\" = slowdown against plain \
         inference of the same model in the same run. \"peak MiB\": peak resident memory of \
         the bench process during the pair, every party included (memory kept by the allocator \
         from earlier pairs counts too).\n\n",
        report.machine, report.commit, report.date, report.limit, report.latency_images
    );
    let _ = writeln!(s, "| {} |", COLUMNS.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(COLUMNS.len()));
    for r in &report.results {
        let _ = writeln!(s, "| {} |", cells(r).join(" | "));
    }
    if !report.deployed.is_empty() {
        s += &deployed_markdown(report);
    }
    s
}

/// Column headers of the deployed table.
pub const DEPLOYED_COLUMNS: &[&str] = &[
    "model",
    "backend",
    "link",
    "comparison (latency / throughput)",
    "agreement",
    "online latency ms (median)",
    "online latency ms (p95)",
    "vs in-process",
    "throughput img/s (batch 100)",
    "online MB/image",
    "client MB/image",
    "rounds/image",
    "offline s/image",
    "offline MB/image",
    "calls without material ready",
];

/// The deployed rows: the parties as separate processes over TLS, links emulated in user space.
fn deployed_markdown(report: &Report) -> String {
    let mut s = String::from(
        "\nDeployed: the three parties as separate `ppml party` processes on this machine, TLS 1.3 \
         between every pair and to the client, every connection through a user-space link emulator \
         (`loopback`: direct, unshaped; `lan`: 0.25 ms one way, 1 Gbit/s; `wan`: 20 ms one way, \
         400 Mbit/s). Latency over the same images one at a time, with the correlated randomness of \
         every query made ahead (offline, reported apart); \"vs in-process\": against the in-process \
         row above; \"calls without material ready\": latency + throughput calls that waited for \
         theirs.\n\n",
    );
    let _ = writeln!(s, "| {} |", DEPLOYED_COLUMNS.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(DEPLOYED_COLUMNS.len()));
    for d in &report.deployed {
        let (lat, thr) = (&d.latency, &d.throughput);
        let per = |v: f64, n: usize| v / n.max(1) as f64;
        let in_process = report
            .results
            .iter()
            .find(|r| r.model_run == d.model && r.backend == d.backend)
            .and_then(|r| r.latency.as_ref())
            .map(|l| l.latency_ms);
        let cells = [
            d.model.clone(),
            d.backend.clone(),
            d.network.clone(),
            format!("{} / {}", d.latency_comparison, d.throughput_comparison),
            lat.agreement
                .map_or("-".into(), |a| format!("{:.2}%", a * 100.0)),
            format!("{:.1}", lat.latency_ms),
            format!("{:.1}", lat.latency_p95_ms),
            in_process.map_or("-".into(), |b| format!("{:.2}", lat.latency_ms / b)),
            format!("{:.1}", thr.throughput_img_per_s),
            format!("{:.3}", per(lat.bytes_sent as f64, lat.n) / 1e6),
            format!("{:.3}", per(lat.client_bytes as f64, lat.n) / 1e6),
            format!("{:.0}", per(lat.rounds as f64, lat.n)),
            format!("{:.4}", per(lat.offline_seconds, lat.n)),
            format!("{:.3}", per(lat.offline_bytes as f64, lat.n) / 1e6),
            format!("{} + {}", lat.on_demand_calls, thr.on_demand_calls),
        ];
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
    s
}

/// The results as CSV (one row per pair).
pub fn csv(report: &Report) -> String {
    let quote = |c: &str| {
        if c.contains([',', '"', '\n']) {
            format!("\"{}\"", c.replace('"', "\"\""))
        } else {
            c.to_string()
        }
    };
    let mut s = COLUMNS
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(",");
    s.push('\n');
    for r in &report.results {
        s.push_str(
            &cells(r)
                .iter()
                .map(|c| quote(c))
                .collect::<Vec<_>>()
                .join(","),
        );
        s.push('\n');
    }
    s
}

/// A grouped bar chart: one group per model, one bar per backend.
fn grouped_bars(title: &str, y_label: &str, rows: &[(String, String, f64)], log: bool) -> String {
    let mut groups: Vec<&str> = Vec::new();
    let mut series: Vec<&str> = Vec::new();
    for (g, s, _) in rows {
        if !groups.contains(&g.as_str()) {
            groups.push(g);
        }
        if !series.contains(&s.as_str()) {
            series.push(s);
        }
    }
    let (w, h, left, top, bottom) = (760.0, 420.0, 70.0, 40.0, 70.0);
    let plot_h = h - top - bottom;
    let values: Vec<f64> = rows.iter().map(|r| r.2).filter(|v| *v > 0.0).collect();
    let max = values.iter().copied().fold(f64::MIN, f64::max).max(1e-9);
    let (lo, hi) = if log {
        let min = values.iter().copied().fold(f64::MAX, f64::min).min(1.0);
        (
            min.log10().floor(),
            max.log10().ceil().max(min.log10().floor() + 1.0),
        )
    } else {
        (0.0, max * 1.05)
    };
    let y = |v: f64| {
        let t = if log { v.max(1e-12).log10() } else { v };
        top + plot_h * (1.0 - ((t - lo) / (hi - lo)).clamp(0.0, 1.0))
    };
    let palette = [
        "#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860",
    ];
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" \
         fill=\"white\"/>\n<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{title}</text>\n",
        w / 2.0
    );
    // Axis ticks.
    let ticks: Vec<f64> = if log {
        (lo as i32..=hi as i32).map(|e| 10f64.powi(e)).collect()
    } else {
        (0..=5).map(|i| hi * f64::from(i) / 5.0).collect()
    };
    for t in ticks {
        let ty = y(t);
        let label = if log {
            format!("{t}")
        } else {
            format!("{t:.2}")
        };
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
            w - 10.0,
            left - 5.0,
            ty + 4.0
        );
    }
    let _ = writeln!(
        s,
        "<text transform=\"translate(16,{:.1}) rotate(-90)\" text-anchor=\"middle\">{y_label}</text>",
        top + plot_h / 2.0
    );
    let group_w = (w - left - 20.0) / groups.len().max(1) as f64;
    let bar_w = group_w * 0.8 / series.len().max(1) as f64;
    for (gi, g) in groups.iter().enumerate() {
        let gx = left + group_w * gi as f64 + group_w * 0.1;
        for (si, ser) in series.iter().enumerate() {
            if let Some((_, _, v)) = rows.iter().find(|r| r.0 == *g && r.1 == *ser) {
                let (x, top_y) = (gx + bar_w * si as f64, y(*v));
                let _ = writeln!(
                    s,
                    "<rect x=\"{x:.1}\" y=\"{top_y:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
                     fill=\"{}\"><title>{g} {ser}: {v:.4}</title></rect>",
                    bar_w * 0.9,
                    (top + plot_h - top_y).max(0.0),
                    palette[si % palette.len()]
                );
            }
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{g}</text>",
            gx + group_w * 0.4,
            top + plot_h + 18.0
        );
    }
    for (si, ser) in series.iter().enumerate() {
        let lx = left + 110.0 * si as f64;
        let ly = h - 22.0;
        let _ = writeln!(
            s,
            "<rect x=\"{lx}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{ly}\">{ser}</text>",
            ly - 10.0,
            palette[si % palette.len()],
            lx + 16.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Chart of latency slowdown against plain, log scale.
pub fn slowdown_svg(report: &Report) -> String {
    let rows: Vec<_> = report
        .results
        .iter()
        .filter_map(|r| Some((r.model.clone(), r.backend.clone(), r.latency_slowdown?)))
        .collect();
    grouped_bars(
        "Single-image latency relative to plain inference (log scale)",
        "slowdown (x plain)",
        &rows,
        true,
    )
}

/// Chart of accuracy per backend and model.
pub fn accuracy_svg(report: &Report) -> String {
    let rows: Vec<_> = report
        .results
        .iter()
        .filter_map(|r| {
            let acc = r.throughput.as_ref()?.accuracy;
            Some((r.model.clone(), r.backend.clone(), acc))
        })
        .collect();
    grouped_bars("Test accuracy per backend", "accuracy", &rows, false)
}

/// Writes `results.json`, `results.csv`, `report.md`, `slowdown.svg` and `accuracy.svg` to `dir`.
pub fn write_all(report: &Report, dir: &Path) -> Result<(), BenchError> {
    let write = |name: &str, body: String| {
        let path = dir.join(name);
        std::fs::write(&path, body).map_err(|source| BenchError::Write { path, source })
    };
    std::fs::create_dir_all(dir).map_err(|source| BenchError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| BenchError::Config(format!("cannot encode report: {e}")))?;
    write("results.json", json)?;
    write("results.csv", csv(report))?;
    write("report.md", markdown(report))?;
    write("slowdown.svg", slowdown_svg(report))?;
    write("accuracy.svg", accuracy_svg(report))
}
