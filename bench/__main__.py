"""`python -m bench [--quick] [--threads N[,M...]] [--rows a,b] [--rounds R] [--out bench/results.md]`

Each thread count runs in its own child process, because OpenMP (our kernels) and OpenBLAS
(NumPy) read their thread counts from the environment once, at import: the child gets
OMP_NUM_THREADS/OPENBLAS_NUM_THREADS/MKL_NUM_THREADS = N and calls torch.set_num_threads(N). The
parent collects every child's measurements and writes one results.md.

The child also gets OPENBLAS_THREAD_TIMEOUT=4 (unless set): after a call, OpenBLAS's idle worker
threads otherwise spin for ~2^28 cycles (tens of ms), and in alternating rounds that spinning thread
takes one of the two cores from whichever implementation runs next (measured: our 512³ matmul
right after NumPy's took 4.0 ms instead of 1.6; NumPy's own calls are as fast either way).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROW_NAMES = ["elementwise", "sum", "softmax", "matmul", "conv2d", "mlp", "tiny", "fresh", "triad", "fma", "bert",
             "gcn", "gat"]
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
QUIET_IDLE_THREADS_ENV = {"OPENBLAS_THREAD_TIMEOUT": "4"}
"""Idle OpenBLAS workers sleep after 2^4 cycles instead of spinning (see the module docstring)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; --child and --json are internal (one thread count, results as JSON)."""
    cores = os.cpu_count() or 1
    p = argparse.ArgumentParser(prog="python -m bench",
                                description="lazytensor vs NumPy / PyTorch benchmarks")
    p.add_argument("--quick", action="store_true", help="small sizes and few rounds (development only)")
    p.add_argument("--threads", default=f"{cores},1" if cores > 1 else "1",
                   help="comma-separated thread counts, one table each (default: all cores, then 1)")
    p.add_argument("--rows", default=",".join(ROW_NAMES), help=f"comma-separated subset of {ROW_NAMES}")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds per case (default 15; quick: 3)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per implementation first")
    p.add_argument("--out", default="bench/results.md", help="where to write the Markdown report")
    p.add_argument("--no-torch-compile", action="store_true", help="skip the torch.compile peer")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.row_list = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in args.row_list if r not in ROW_NAMES]
    if unknown:
        p.error(f"unknown row(s) {unknown}; choose from {ROW_NAMES}")
    try:
        args.thread_list = [int(t) for t in args.threads.split(",")]
    except ValueError:
        p.error(f"--threads wants comma-separated integers, got {args.threads!r}")
    if any(t < 1 for t in args.thread_list):
        p.error("--threads: every thread count must be at least 1")
    if args.rounds is None:
        args.rounds = 3 if args.quick else 15
    return args


def run_child(args: argparse.Namespace) -> None:
    """Run every row at one thread count (already set in the environment) and dump JSON."""
    threads = args.thread_list[0]
    from bench import rows          # imports lazytensor: after the environment is set
    from bench.report import table
    if rows.torch is not None:
        rows.torch.set_num_threads(threads)
    cfg = rows.Config(scale="quick" if args.quick else "full", rounds=args.rounds, warmup=args.warmup,
                      threads=threads, torch_compile=not args.no_torch_compile,
                      compile_timeout_s=120.0 if args.quick else 300.0)
    if rows.torch is None:
        cfg.notes.append("torch not installed: PyTorch columns skipped")
    if rows.TinyTensor is None:
        cfg.notes.append("tinygrad not importable or no usable device (its CPU backend needs clang): "
                         "tinygrad columns skipped")
    print(f"== {threads} thread(s), {cfg.scale} scale, {args.rounds} rounds", flush=True)
    measurements = rows.run_rows(args.row_list, cfg, on_row=lambda got: print(table(got), flush=True))
    section = {"threads": threads, "quick": args.quick, "rounds": args.rounds, "scale": cfg.scale,
               "notes": cfg.notes, "measurements": [m.to_json() for m in measurements]}
    Path(args.json).write_text(json.dumps(section))


def main(argv: list[str] | None = None) -> int:
    """Spawn one child per thread count, then print and write the combined report."""
    args = parse_args(argv)
    if args.child:
        run_child(args)
        return 0
    from bench.report import machine_info, markdown_report
    from bench.timing import Measurement
    info = machine_info()
    sections = []
    passthrough = ["--rows", ",".join(args.row_list), "--rounds", str(args.rounds),
                   "--warmup", str(args.warmup)]
    if args.quick:
        passthrough.append("--quick")
    if args.no_torch_compile:
        passthrough.append("--no-torch-compile")
    with tempfile.TemporaryDirectory() as tmp:
        for threads in args.thread_list:
            out_json = Path(tmp) / f"threads{threads}.json"
            env = dict(QUIET_IDLE_THREADS_ENV, **os.environ, **{k: str(threads) for k in THREAD_ENV})
            cmd = [sys.executable, "-m", "bench", "--child", "--threads", str(threads),
                   "--json", str(out_json)]
            r = subprocess.run(cmd + passthrough, env=env)
            if r.returncode != 0 or not out_json.exists():
                print(f"bench: the {threads}-thread run failed (exit {r.returncode})", file=sys.stderr)
                continue
            section = json.loads(out_json.read_text())
            section["measurements"] = [Measurement.from_json(d) for d in section["measurements"]]
            sections.append(section)
    report = markdown_report(info, sections)
    print("\n" + report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0 if len(sections) == len(args.thread_list) else 1


if __name__ == "__main__":
    sys.exit(main())
