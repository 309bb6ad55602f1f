#!/usr/bin/env python3
"""What the Python call adds to the same work through the CLI's library path.

For `plain` and `mpc3` on `lenet`, calls of 100 images over the first 1000 MNIST test images:

- CLI: `ppml eval --model lenet --backend B --batch 100 --limit 1000 --json`, whose `latency_ms`
  is the median wall time of one `Backend::infer` call on the library's own tensor;
- Python: `ppml.backend(B).infer(images)` on the same batches of `uint8` pixels, timed around the
  Python call (NumPy in and out, normalisation, the hop to the backend's thread included); and
  on the same batches already normalised to `float32` (normalised before the timer, as the CLI
  does), which leaves only what the Python call itself adds.

Both run `--rounds` times, alternating, in this one run; the ratio is Python's median call over
the CLI's median of medians (goal: at most 1.05).
Figures are only comparable within one run: other load on the machine slows every column. Usage, with the package installed:

    python python/bench/overhead.py [--ppml target/release/ppml] [--rounds 3]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import time

import numpy as np

import ppml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL, BATCH, LIMIT = "lenet", 100, 1000


def cli_latency_ms(exe: str, backend: str) -> float:
    out = subprocess.run(
        [exe, "eval", "--model", MODEL, "--backend", backend, "--batch", str(BATCH),
         "--limit", str(LIMIT), "--json"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["latency_ms"])


def python_calls_ms(backend: str, model: "ppml.Model", images) -> list:
    b = ppml.backend(backend)
    b.setup(model)
    b.infer(images[:BATCH])  # warm-up: one call, as the CLI's median also has its first call
    times = []
    for start in range(0, LIMIT, BATCH):
        x = images[start:start + BATCH]
        t = time.perf_counter()
        b.infer(x)
        times.append((time.perf_counter() - t) * 1e3)
    return times


def normalised(model: "ppml.Model", pixels: np.ndarray) -> np.ndarray:
    mean, std = model.normalization
    x = (pixels.astype(np.float32) / np.float32(255) - np.float32(mean)) / np.float32(std)
    return x.reshape(pixels.shape[0], *model.input_shape)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ppml", default=os.path.join(ROOT, "target", "release", "ppml"),
                    help="the ppml binary (default: target/release/ppml)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    exe = args.ppml if os.path.exists(args.ppml) else shutil.which("ppml")
    if not exe:
        raise SystemExit("no ppml binary: cargo build --release -p ppml")
    model = ppml.load_model(MODEL)
    images, _ = ppml.datasets.mnist("test", limit=LIMIT)
    inputs = normalised(model, images)
    print(f"{MODEL}, batch {BATCH}, {LIMIT} images, {args.rounds} rounds; ms per call (median)")
    print(f"{'backend':8} {'CLI':>10} {'Py uint8':>10} {'ratio':>7} {'Py f32':>10} {'ratio':>7}")
    for backend in ("plain", "mpc3"):
        cli, py8, py32 = [], [], []
        for _ in range(args.rounds):
            cli.append(cli_latency_ms(exe, backend))
            py8.extend(python_calls_ms(backend, model, images))
            py32.extend(python_calls_ms(backend, model, inputs))
        c, p8, p32 = statistics.median(cli), statistics.median(py8), statistics.median(py32)
        print(f"{backend:8} {c:10.3f} {p8:10.3f} {p8 / c:7.3f} {p32:10.3f} {p32 / c:7.3f}")


if __name__ == "__main__":
    main()
