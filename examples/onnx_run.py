"""Run any ONNX model through lazytensor on seeded inputs; print output shapes and timings beside
onnxruntime's (when installed), and how far the outputs differ.

    python examples/onnx_run.py MODEL.onnx [--dim NAME=SIZE ...] [--runs 3]

Symbolic input dims default to 1; set them with --dim (e.g. --dim batch=1 --dim height=320).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import lazytensor as lt


def run_lazytensor(model: lt.onnx.OnnxModel, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    outputs = model(**feeds)
    tensors = [v for v in outputs.values() if isinstance(v, lt.Tensor)]
    lt.realize(*tensors)
    return {k: v.numpy() if isinstance(v, lt.Tensor) else v for k, v in outputs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--dim", action="append", default=[], help="NAME=SIZE for a symbolic input dim")
    parser.add_argument("--runs", type=int, default=3, help="timed runs after the first (compiling) one")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    dims = {k: int(v) for k, v in (d.split("=", 1) for d in args.dim)}

    model = lt.onnx.load(args.model)
    print(model)
    feeds = model.example_inputs(seed=args.seed, dims=dims)
    for name, arr in feeds.items():
        print(f"  input  {name}: {arr.dtype} {list(arr.shape)}")

    start = time.perf_counter()
    ours = run_lazytensor(model, feeds)
    first = time.perf_counter() - start
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        run_lazytensor(model, feeds)
        times.append(time.perf_counter() - start)
    for name, arr in ours.items():
        print(f"  output {name}: {getattr(arr, 'dtype', type(arr).__name__)} {list(np.shape(arr))}")
    best = min(times) if times else first
    print(f"lazytensor: first run {first * 1e3:.1f} ms (includes compiling), best of {args.runs}: {best * 1e3:.2f} ms")

    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime is not installed: no comparison")
        return
    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    theirs = session.run(None, feeds)
    times = []
    for _ in range(max(args.runs, 1)):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - start)
    print(f"onnxruntime: best of {max(args.runs, 1)}: {min(times) * 1e3:.2f} ms")
    for (name, mine), ref in zip(ours.items(), theirs):
        if isinstance(mine, np.ndarray) and np.issubdtype(np.asarray(ref).dtype, np.number):
            diff = np.abs(mine.astype(np.float64) - np.asarray(ref, dtype=np.float64))
            print(f"  {name}: max abs diff vs onnxruntime {diff.max() if diff.size else 0:.3g}")


if __name__ == "__main__":
    main()
