"""ppml's plain engine against PyTorch on the same models, weights and images.

Run through scripts/plain-vs-torch.sh, which makes the venv and builds ppml. For each model, batch
size and thread count it alternates runs of the engines (so that a busy machine slows them alike)
and prints the median images per second of each and their ratio.

Each run's figure is the batch size divided by the median wall time of one inference call, so that
a call slowed by another process on a shared machine does not move it. ppml's call time is
`ppml eval --backend plain --json`'s `latency_ms` (the median time of the inference calls, each a
batch of `--batch` images, the input normalisation done before the clock starts). PyTorch's is
measured the same way: the same normalised test images, `model(batch)` under
`torch.inference_mode()` timed call by call, after one warm-up pass.

With `--baseline OTHER_PPML`, a second ppml build (for instance the engine before a change) runs
in the same alternation and is printed beside the first, with the ratio of the two.
"""

import argparse
import gzip
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file


def load_images(data_dir: Path, limit: int) -> np.ndarray:
    """The first `limit` MNIST test images as uint8 [n, 28, 28]."""
    with gzip.open(data_dir / "t10k-images-idx3-ubyte.gz", "rb") as f:
        raw = f.read()
    n, rows, cols = (int.from_bytes(raw[i : i + 4], "big") for i in (4, 8, 12))
    pixels = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows, cols)
    return pixels[:limit]


def build_torch_model(path: Path):
    """The model of a ppml model file as a torch.nn.Sequential, with its weights and input
    normalisation."""
    tensors = load_file(str(path))
    with open(path, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(header_len))
    spec = json.loads(header["__metadata__"]["ppml.model"])
    layers = []
    for i, layer in enumerate(spec["layers"]):
        op = layer["op"]
        if op == "conv2d":
            m = torch.nn.Conv2d(
                layer["in_channels"],
                layer["out_channels"],
                layer["kernel"],
                stride=layer["stride"],
                padding=layer["padding"],
            )
        elif op == "linear":
            m = torch.nn.Linear(layer["in_features"], layer["out_features"])
        elif op == "relu":
            m = torch.nn.ReLU()
        elif op == "max_pool2d":
            m = torch.nn.MaxPool2d(layer["kernel"], layer["stride"])
        elif op == "avg_pool2d":
            m = torch.nn.AvgPool2d(layer["kernel"], layer["stride"])
        elif op == "flatten":
            m = torch.nn.Flatten()
        else:
            raise SystemExit(f"{path}: layer {i} ({op}) has no PyTorch twin in this script")
        if op in ("conv2d", "linear"):
            m.weight.data = torch.from_numpy(tensors[f"layers.{i}.weight"].copy())
            m.bias.data = torch.from_numpy(tensors[f"layers.{i}.bias"].copy())
        layers.append(m)
    model = torch.nn.Sequential(*layers).eval()
    return model, spec["normalization"]


def torch_throughput(model, images: torch.Tensor, batch: int) -> float:
    """Images per second of the median inference call, as ppml's eval loop times its calls."""
    calls = []
    with torch.inference_mode():
        for start in range(0, len(images), batch):
            x = images[start : start + batch]
            t = time.perf_counter()
            model(x)
            calls.append(time.perf_counter() - t)
    return batch / statistics.median(calls)


def ppml_throughput(ppml: str, model: str, batch: int, limit: int, threads: int) -> float:
    """Images per second of `ppml eval`'s median inference call."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = subprocess.run(
        [ppml, "eval", "--model", model, "--backend", "plain", "--batch", str(batch),
         "--limit", str(limit), "--json"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout
    report = json.loads(out.strip().splitlines()[-1])
    return batch / (report["latency_ms"] / 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ppml", default="target/release/ppml")
    parser.add_argument("--baseline", help="another ppml binary, timed in the same alternation")
    parser.add_argument("--models", default="mlp,lenet")
    parser.add_argument("--batches", default="1,100")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--limit", type=int, default=2000, help="test images per run")
    parser.add_argument("--repeats", type=int, default=7, help="runs per engine (median)")
    args = parser.parse_args()

    root = Path(__file__).resolve().parent.parent
    pixels = load_images(root / "data" / "mnist", args.limit)
    print(f"torch {torch.__version__}, {args.limit} test images per run, "
          f"median of {args.repeats} alternating runs per engine")
    header = (f"{'model':<6} {'batch':>5} {'threads':>7} {'ppml img/s':>12} {'torch img/s':>12} "
              f"{'ppml/torch':>10}")
    if args.baseline:
        header += f" {'base img/s':>12} {'base/torch':>10} {'ppml/base':>10}"
    print(header)
    for name in args.models.split(","):
        model, norm = build_torch_model(root / "models" / f"{name}.safetensors")
        x = (torch.from_numpy(pixels.astype(np.float32)) / 255.0 - norm["mean"]) / norm["std"]
        x = x.unsqueeze(1).contiguous()
        for batch in (int(b) for b in args.batches.split(",")):
            for threads in (int(t) for t in args.threads.split(",")):
                torch.set_num_threads(threads)
                torch_throughput(model, x, batch)  # warm-up
                ours, theirs, base = [], [], []
                for _ in range(args.repeats):
                    ours.append(ppml_throughput(args.ppml, name, batch, args.limit, threads))
                    theirs.append(torch_throughput(model, x, batch))
                    if args.baseline:
                        base.append(
                            ppml_throughput(args.baseline, name, batch, args.limit, threads))
                a, b = statistics.median(ours), statistics.median(theirs)
                line = f"{name:<6} {batch:>5} {threads:>7} {a:>12.0f} {b:>12.0f} {a / b:>10.2f}"
                if args.baseline:
                    c = statistics.median(base)
                    line += f" {c:>12.0f} {c / b:>10.2f} {a / c:>10.2f}"
                print(line, flush=True)

if __name__ == "__main__":
    main()
