//! Progress bars for long commands (training, evaluation): on a terminal a bar with an ETA,
//! elsewhere (CI logs, pipes) the bar hides and its lines go to stderr.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` steps drawn with `template` (indicatif's template syntax).
pub fn bar(len: u64, template: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// Prints a line above the progress bar, or to stderr when the bar is hidden (not a terminal).
pub fn log_line(pb: &ProgressBar, line: String) {
    if pb.is_hidden() {
        eprintln!("{line}");
    } else {
        pb.println(line);
    }
}
