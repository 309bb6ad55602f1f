#!/usr/bin/env bash
# Every test of the repository, Rust and Python: the README's test command, run by .ci/run.
#
# 1. `cargo test --release --workspace` (the crates, the CLI, the fuzz corpus replay);
# 2. the Python package as a new user gets it: a fresh virtual environment, `pip install
#    ./python` (maturin builds the wheel from source, reusing target/'s compiled crates), the
#    pinned test dependencies of python/requirements-test.txt, then pytest on python/tests.
#
# PPML_VENV sets the venv folder (default: target/py-venv, recreated on every run).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --release --workspace

venv="$(realpath -m "${PPML_VENV:-target/py-venv}")"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r python/requirements-test.txt
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check ./python
# From outside the source tree, so that `import ppml` is the installed wheel.
(cd python/tests && "$venv/bin/python" -m pytest -q -p no:cacheprovider .)
