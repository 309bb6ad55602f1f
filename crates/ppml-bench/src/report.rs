//! The report's forms: a Markdown table, JSON, CSV, and the [`charts`](crate::charts).

use std::fmt::Write as _;
use std::path::Path;

use ppml_nn::backend::SetupFacts;

use crate::{charts, BenchError, PairResult, Report};

/// What a setup chose that changes what the figures mean, in words: the mode, the isolation,
/// the comparison ("" when it says none of these, as plain's).
fn describe(facts: &SetupFacts) -> String {
    [
        facts.mode.as_ref().map(|m| format!("{m} mode")),
        facts.isolation.clone(),
        facts.comparison.as_ref().map(|c| format!("{c} comparison")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ")
}

/// [`describe`] for the pair's latency and throughput runs, each description once (HE runs
/// them in different modes).
fn setup_chose(r: &PairResult) -> Option<String> {
    let mut said: Vec<String> = Vec::new();
    for run in [&r.latency, &r.throughput].into_iter().flatten() {
        let d = describe(&run.facts);
        if !d.is_empty() && !said.contains(&d) {
            said.push(d);
        }
    }
    (!said.is_empty()).then(|| said.join(" / "))
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
        match (&r.skipped, setup_chose(r)) {
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

/// The deployed rows: the other parties as separate processes over TLS, links emulated in user
/// space.
fn deployed_markdown(report: &Report) -> String {
    let mut s = String::from(
        "\nDeployed: `mpc2`/`mpc3` with the three parties as separate `ppml party` processes on this \
         machine, TLS 1.3 between every pair and to the client; `hybrid` with `ppml hybrid-server` \
         as a separate process, TLS 1.3 to the client, nobody else; every connection through a \
         user-space link emulator (`loopback`: direct, unshaped; `lan`: 0.25 ms one way, 1 Gbit/s; \
         `wan`: 20 ms one way, 400 Mbit/s). Latency over the same images one at a time, with the \
         correlated randomness (`hybrid`: random OTs) of every query made ahead (offline, reported \
         apart); \"vs in-process\": against the in-process row above; \"calls without material \
         ready\": latency + throughput calls that waited for theirs.\n\n",
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

/// Writes `results.json`, `results.csv`, `report.md` and the [`charts::all`] (`slowdown.svg`,
/// `accuracy.svg`, `throughput.svg`, `communication.svg`) to `dir`.
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
    for (name, svg) in charts::all(report)? {
        write(name, svg)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn row<'a>(table: &'a str, model: &str, backend: &str) -> Vec<&'a str> {
        let prefix = format!("| {model} | {backend} |");
        let line = table
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no row {prefix} in\n{table}"));
        line.trim_matches('|').split(" | ").map(str::trim).collect()
    }

    #[test]
    fn run_as_says_what_the_setup_chose_from_its_typed_facts() {
        let md = markdown(&fixtures::report());
        assert_eq!(row(&md, "cnn", "plain")[2], "as is");
        assert_eq!(
            row(&md, "cnn", "tee")[2],
            "cnn, simulated (no hardware isolation)"
        );
        assert_eq!(row(&md, "cnn", "mpc2")[2], "cnn, fss comparison");
        assert_eq!(
            row(&md, "mlp", "he")[2],
            "mlp-sq, throughput mode; no latency: no latency mode"
        );
        assert_eq!(row(&md, "mlp", "hybrid")[2], "not run: not in this build");
    }

    #[test]
    fn each_mode_of_a_pair_is_named_once() {
        let mut r = fixtures::report().results.swap_remove(4);
        let mut latency = r.throughput.clone().expect("he ran");
        latency.facts.mode = Some("latency".into());
        r.latency = Some(latency);
        assert_eq!(
            setup_chose(&r).as_deref(),
            Some("latency mode / throughput mode")
        );
        r.latency = r.throughput.clone();
        assert_eq!(setup_chose(&r).as_deref(), Some("throughput mode"));
        let all = SetupFacts {
            mode: Some("auto".into()),
            isolation: Some("sgx (DCAP quote)".into()),
            comparison: Some("fss".into()),
            ring_degree: Some(8192),
            ..SetupFacts::default()
        };
        // The ring degree changes no figure's meaning: it stays in the JSON.
        assert_eq!(
            describe(&all),
            "auto mode, sgx (DCAP quote), fss comparison"
        );
        assert_eq!(describe(&SetupFacts::default()), "");
    }

    #[test]
    fn table_cells_are_derived_from_the_measurements() {
        let md = markdown(&fixtures::report());
        let lines: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        // Header, separator and one row per pair, each with every column.
        assert_eq!(lines.len(), 2 + 6);
        assert_eq!(lines[1].matches("---|").count(), COLUMNS.len());
        for l in lines.iter().filter(|l| !l.starts_with("|---")) {
            assert_eq!(l.matches(" | ").count() + 1, COLUMNS.len(), "{l}");
        }
        let mpc2 = row(&md, "cnn", "mpc2");
        let cell = |name: &str| mpc2[COLUMNS.iter().position(|c| *c == name).expect(name)];
        assert_eq!(cell("accuracy"), "97.00%");
        assert_eq!(cell("agreement"), "99.00%");
        assert_eq!(cell("latency vs plain"), "500.0");
        assert_eq!(cell("throughput vs plain"), "100.0");
        // 30 MB over 10 single-image calls, 40 rounds over 10 images.
        assert_eq!(cell("MB/image"), "3.000");
        assert_eq!(cell("rounds/image"), "4");
        let he = row(&md, "mlp", "he");
        assert_eq!(
            he[COLUMNS
                .iter()
                .position(|c| *c == "latency ms (median)")
                .expect("col")],
            "-"
        );
        assert!(md.contains("Commit: 0123abc."), "{md}");
    }

    #[test]
    fn csv_quotes_cells_with_commas() {
        let csv = csv(&fixtures::report());
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 1 + 6);
        assert!(lines[0].starts_with("model,backend,run as,"));
        assert!(
            lines[2].starts_with("cnn,tee,\"cnn, simulated (no hardware isolation)\","),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn files_are_written_with_typed_facts_in_the_json() {
        let dir = std::env::temp_dir().join(format!("ppml-bench-report-{}", std::process::id()));
        write_all(&fixtures::report(), &dir).expect("write");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).expect("json"))
                .expect("valid JSON");
        let tee = &json["results"][1];
        assert_eq!(tee["backend"], "tee");
        assert_eq!(
            tee["latency"]["facts"]["isolation"],
            "simulated (no hardware isolation)"
        );
        assert_eq!(tee["latency"]["facts"]["mode"], serde_json::Value::Null);
        assert_eq!(
            json["results"][4]["throughput"]["facts"]["ring_degree"],
            8192
        );
        for chart in ["slowdown", "accuracy", "throughput", "communication"] {
            let svg = std::fs::read_to_string(dir.join(format!("{chart}.svg"))).expect(chart);
            assert!(
                svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
                "{chart}"
            );
        }
        assert!(dir.join("results.csv").is_file() && dir.join("report.md").is_file());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
