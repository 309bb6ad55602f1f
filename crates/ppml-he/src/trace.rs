//! Coarse timing spans for profiling: with the environment variable `PPML_HE_TRACE` set, each
//! span prints its name and wall-clock duration to standard error.

use std::sync::OnceLock;
use std::time::Instant;

fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("PPML_HE_TRACE").is_some())
}

/// Runs `f`, printing `name` and its duration when tracing is on.
pub(crate) fn span<T>(name: &str, f: impl FnOnce() -> T) -> T {
    if !enabled() {
        return f();
    }
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let out = f();
    eprintln!(
        "ppml-he trace: {name} {:.1} ms (process CPU {:.0} ms)",
        start.elapsed().as_secs_f64() * 1e3,
        (cpu_seconds() - cpu) * 1e3
    );
    out
}

/// User + system CPU time of this process so far (Linux `/proc/self/stat`, clock ticks taken
/// as 1/100 s; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start at the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}
