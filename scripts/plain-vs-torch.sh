#!/usr/bin/env bash
# ppml's plain engine against PyTorch: the same models (committed weights in models/), the same
# MNIST test images, 1 and 2 threads, one image and batches of 100; prints images/s of both (from
# the median inference call of each run) and the ratio (median of alternating runs). Extra
# arguments go to scripts/plain-vs-torch.py (--models, --batches, --threads, --limit, --repeats,
# and --baseline OTHER_PPML to time a second ppml build, such as the engine before a change, in
# the same run).
#
# PyTorch comes into its own venv (PPML_TORCH_VENV, default ~/.cache/ppml/torch-venv), made on
# the first run from scripts/plain-vs-torch.requirements.txt: about 3 GB from PyPI, once.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${PPML_TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ppml/torch-venv}
if ! "$venv/bin/python" -c 'import torch, safetensors, numpy' 2>/dev/null; then
  echo "making $venv (PyTorch from PyPI, about 3 GB, once)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r scripts/plain-vs-torch.requirements.txt
fi

# The whole workspace, as the other scripts and CI build it: `-p ppml` alone unifies features
# differently and rebuilds a good part of the tree for the same binary.
cargo build --release --quiet --workspace
"$venv/bin/python" scripts/plain-vs-torch.py --ppml target/release/ppml "$@"
