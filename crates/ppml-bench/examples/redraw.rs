//! Redraws the charts of a `results.json` written by `ppml bench`, without measuring again:
//!
//! ```text
//! cargo run --release -p ppml-bench --example redraw -- docs/bench/results.json docs/bench
//! ```
//!
//! A `results.json` from before the setups' typed facts loads too (without them).

use std::error::Error;
use std::path::PathBuf;

use ppml_bench::{charts, Report};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(json), Some(dir)) = (args.next(), args.next().map(PathBuf::from)) else {
        return Err("usage: redraw RESULTS.json OUT_DIR".into());
    };
    let report: Report = serde_json::from_str(&std::fs::read_to_string(&json)?)?;
    for (name, svg) in charts::all(&report)? {
        let path = dir.join(name);
        std::fs::write(&path, svg)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
