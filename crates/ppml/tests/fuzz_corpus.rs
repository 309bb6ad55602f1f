//! Replays the fuzz corpus (`fuzz/corpus/<target>/`, inputs libFuzzer found interesting, and
//! `fuzz/regressions/<target>/`, inputs that once crashed) through the same harnesses the fuzz
//! targets run: every decoder of untrusted bytes must return, never panic.
#![allow(clippy::expect_used, reason = "test helpers fail the test on error")]

#[path = "../../../fuzz/src/lib.rs"]
mod harness;

use std::path::Path;

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

#[test]
fn every_corpus_input_is_decoded_without_panicking() {
    let fuzz = Path::new(REPO).join("fuzz");
    for (name, harness) in harness::TARGETS {
        let mut replayed = 0;
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(name)) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("directory entry").path();
                let bytes = std::fs::read(&path).expect("corpus file");
                harness(&bytes);
                replayed += 1;
            }
        }
        assert!(replayed > 0, "no corpus for fuzz target {name}");
    }
}
