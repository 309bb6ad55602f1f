#!/usr/bin/env bash
# Runs the full comparison and writes its table into README.md and its charts into docs/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
# The whole workspace, so that the build reuses what `cargo test --workspace` compiled (building
# `-p ppml` alone unifies dependency features differently and rebuilds tract and candle).
cargo build -q --release --workspace --all-targets
target/release/ppml bench --out out/bench "$@" > /dev/null
mkdir -p docs/bench
cp out/bench/*.svg out/bench/results.json docs/bench/
python3 - <<'PY'
import re
readme = open("README.md").read()
table = open("out/bench/report.md").read().strip()
readme = re.sub(r"(<!-- bench:start -->\n).*?(<!-- bench:end -->)",
                lambda m: m.group(1) + table + "\n" + m.group(2), readme, flags=re.S)
open("README.md", "w").write(readme)
PY
cat out/bench/report.md
