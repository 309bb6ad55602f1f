#!/usr/bin/env bash
# Measures the committed zoo models' plain accuracy and writes the table into README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
table=$(cargo run -q --release -p ppml -- models --accuracy)
python3 - "$table" <<'PY'
import re, sys
readme = open("README.md").read()
table = sys.argv[1].strip()
readme = re.sub(r"(<!-- zoo-table:start -->\n).*?(<!-- zoo-table:end -->)",
                lambda m: m.group(1) + table + "\n" + m.group(2), readme, flags=re.S)
open("README.md", "w").write(readme)
PY
echo "$table"
