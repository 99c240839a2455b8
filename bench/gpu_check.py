"""`python -m bench.gpu_check [--device CUDA|CL] [--tests op,autograd,nn] [--no-tests] [--bench]`

The check to run on a machine with a GPU (the development machines have none): it starts the
device, checks a few kernels of every launch mode against NumPy, times a handful of kernels with
device events, runs the op / autograd / nn test files on the device (pytest --device, one child
per file), optionally runs `python -m bench --quick` there, and prints one summary.
`--device CL` runs the same check on OpenCL (PoCL on a CPU), which is how the script itself is tested.
Exit status 0 only if the device started and every check and test passed.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TEST_GROUPS = {
    "op": ["test_elementwise.py", "test_reduce.py", "test_movement.py", "test_broadcast.py",
           "test_inplace.py", "test_creation.py", "test_indexing.py", "test_linalg.py"],
    "autograd": ["test_autograd.py"],
    "nn": ["test_nn_layers.py", "test_nn_conv.py", "test_nn_normalization.py", "test_nn_pooling.py",
           "test_nn_attention.py", "test_nn_recurrent.py", "test_nn_module.py", "test_loss.py",
           "test_optim.py"],
}


def start_device(device: str):
    """The device's runtime, or exit with the reason it cannot start."""
    from lazytensor.runtime.device import DeviceUnavailable, get_runtime
    try:
        return get_runtime(device)
    except DeviceUnavailable as e:
        print(f"device {device} is not available: {e}")
        sys.exit(2)


def correctness_checks(device: str) -> list[tuple[str, bool, str]]:
    """(name, passed, detail) for kernels of each launch mode against NumPy."""
    import lazytensor as lt
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1 << 20,))
    m, n = rng.standard_normal((257, 129)), rng.standard_normal((129, 65))
    idx = rng.integers(0, 100, 5000)
    cases = [
        ("elementwise (threads)", lambda t: (t(a) * 2 + 1).exp().numpy(), lambda: np.exp(a * 2 + 1)),
        ("full sum (group reduce)", lambda t: t(a).sum().numpy(), lambda: a.sum()),
        ("row max (group reduce)", lambda t: t(a.reshape(16, -1)).amax(1).numpy(),
         lambda: a.reshape(16, -1).max(1)),
        ("matmul (register tiles)", lambda t: (t(m) @ t(n)).numpy(), lambda: m @ n),
        ("scatter_add (serial)", lambda t: lt.zeros(100, dtype=lt.float64, device=device)
         .scatter_add(0, t(idx), t(a[:5000])).numpy(), lambda: np.bincount(idx, a[:5000], 100)),
    ]
    results = []
    for name, ours, ref in cases:
        try:
            got = ours(lambda x: lt.tensor(x, device=device))
            ok = np.allclose(got, ref(), rtol=1e-9, atol=1e-9)
            results.append((name, ok, "" if ok else f"max error {np.abs(got - ref()).max():.3g}"))
        except Exception as e:   # report and go on: the summary lists every failure
            results.append((name, False, f"{type(e).__name__}: {e}"[:300]))
    return results


def kernel_timings(device: str, runtime) -> list[tuple[str, float, str]]:
    """(kernel, milliseconds, rate) for a few sizes, timed by the device (events / queue finish)."""
    import lazytensor as lt
    runtime.timing = True
    rows = []
    size = 1 << 24
    x = lt.rand(size, device=device).realize()
    y = lt.rand(size, device=device).realize()
    mat_a = lt.rand(1024, 1024, device=device).realize()
    mat_b = lt.rand(1024, 1024, device=device).realize()
    cases = [("add 16M f32", lambda: x + y, 3 * 4 * size / 1e9, "GB/s"),
             ("sum 16M f32", lambda: x.sum(), 4 * size / 1e9, "GB/s"),
             ("matmul 1024 f32", lambda: mat_a @ mat_b, 2 * 1024 ** 3 / 1e9, "GFLOP/s")]
    for name, build, work, unit in cases:
        build().realize()   # compile and warm up
        with lt.count_kernels() as k:
            for _ in range(5):
                build().realize()
        seconds = k.seconds / max(k.kernels, 1)
        rows.append((name, seconds * 1e3, f"{work / max(seconds, 1e-12):.1f} {unit}"))
    runtime.timing = False
    return rows


def run_tests(device: str, files: list[str], timeout: float) -> list[tuple[str, str, float, int]]:
    """(file, pytest summary line, seconds, exit code) for each test file, on the device."""
    out = []
    for f in files:
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "pytest", "-p", "no:benchmark", "-p", "no:cacheprovider", "--device",
               device, str(REPO / "test" / f)]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=timeout)
            lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
            summary, code = (lines[-1] if lines else r.stderr.strip()[-200:]), r.returncode
        except subprocess.TimeoutExpired:
            summary, code = f"timed out after {timeout:.0f} s", 124
        out.append((f, summary, time.perf_counter() - start, code))
        print(f"  {f:<32} {summary}  ({out[-1][2]:.0f} s)", flush=True)
    return out


def _counts(summary: str) -> dict[str, int]:
    return {kind: int(num) for num, kind in re.findall(r"(\d+) (passed|failed|skipped|error)", summary)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.split("\n\n")[1])
    p.add_argument("--device", default="CUDA", help="CUDA (default) or CL")
    p.add_argument("--tests", default="op,autograd,nn",
                   help=f"comma-separated groups of {sorted(TEST_GROUPS)}")
    p.add_argument("--no-tests", action="store_true", help="skip the test files")
    p.add_argument("--no-timings", action="store_true", help="skip the kernel timings")
    p.add_argument("--bench", action="store_true", help="also run python -m bench --quick on the device")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per test file")
    args = p.parse_args(argv)
    device = args.device.upper()
    os.environ.setdefault("VALIDATE", "1")
    runtime = start_device(device)
    print(f"device: {device} {runtime!r}")
    failures = 0

    print("correctness against NumPy:")
    for name, ok, detail in correctness_checks(device):
        failures += not ok
        print(f"  {'ok  ' if ok else 'FAIL'} {name} {detail}")

    if not args.no_timings:
        print("kernel timings (device-timed, mean of 5):")
        for name, ms, rate in kernel_timings(device, runtime):
            print(f"  {name:<18} {ms:9.3f} ms  {rate}")

    totals: dict[str, int] = {}
    if not args.no_tests:
        files = [f for g in args.tests.split(",") for f in TEST_GROUPS[g.strip()]]
        print(f"tests on {device} ({len(files)} files):")
        for f, summary, seconds, code in run_tests(device, files, args.timeout):
            failures += code != 0
            for k, v in _counts(summary).items():
                totals[k] = totals.get(k, 0) + v

    if args.bench:
        print(f"python -m bench --quick on {device}:")
        env = dict(os.environ, **{device: "1"})
        for other in ("CPU", "CL", "CUDA"):
            if other != device:
                env.pop(other, None)
        r = subprocess.run([sys.executable, "-m", "bench", "--quick", "--threads", "1", "--no-torch-compile",
                            "--out", str(Path("/tmp") / f"bench-{device}.md")], cwd=REPO, env=env)
        failures += r.returncode != 0

    print("summary:", device, ", ".join(f"{v} {k}" for k, v in sorted(totals.items())) or "no tests run",
          "| checks and files failing:", failures)
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
