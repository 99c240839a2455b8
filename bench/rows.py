"""The rows of the benchmark table: one function per row, each returning a list of Measurements.

Every row times lazytensor ("lazytensor") against each installed peer (NumPy, PyTorch eager,
torch.compile where it works, tinygrad when importable) on the same inputs. Our inputs are
realized beforehand; each timed call of ours builds the graph and realizes it, so graph building
and scheduling count (schedules are cached by structure, so a repeated call is cheap); compiling
happens in the warm-up calls (and is cached on disk).

Importing this module imports lazytensor, so the thread count (OMP_NUM_THREADS) must be set
before: `python -m bench` does that.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import lazytensor as lt
import lazytensor.nn.functional as LF
from bench.timing import OURS, Impl, Measurement, Timer, measure_case

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # peers are optional
    torch = None  # type: ignore[assignment]
    TF = None  # type: ignore[assignment]

try:
    import tinygrad  # noqa: F401  (the bench extra installs it; its CPU backend needs clang)
    from tinygrad import Tensor as TinyTensor
    (TinyTensor([1.0]) + 1).numpy()   # a device that can compile, or no tinygrad columns
except Exception:
    TinyTensor = None  # type: ignore[assignment]


# Problem sizes per scale: "full" is the table, "quick" for development on a busy machine,
# "tiny" for the smoke test (correctness of the harness only).
SIZES: dict[str, dict[str, Any]] = {
    "full": dict(elementwise=16 * 2**20, reduce=4096, softmax=4096, matmul=(512, 1024, 2048),
                 conv=((32, 32, 64, 16), (8, 3, 32, 64)), mlp=(128, 784, 512, 10), triad=6 * 2**20,
                 fma=(2**20, 2)),
    "quick": dict(elementwise=2**20, reduce=1024, softmax=1024, matmul=(128, 256),
                  conv=((8, 32, 64, 16), (2, 3, 32, 64)), mlp=(128, 784, 512, 10), triad=2**20,
                  fma=(2**16, 2)),
    "tiny": dict(elementwise=1000, reduce=33, softmax=17, matmul=(16, 24),
                 conv=((2, 3, 4, 6), (2, 8, 16, 5)), mlp=(8, 20, 16, 5), triad=1000, fma=(256, 2)),
}


@dataclass
class Config:
    """How to run: problem scale, rounds, warm-up calls, threads and which optional peers to try."""
    scale: str = "full"
    rounds: int = 15
    warmup: int = 2
    threads: int = 1
    torch_compile: bool = True
    compile_timeout_s: float = 300.0
    notes: list[str] = field(default_factory=list)   # machine-level notes for results.md

    def size(self, row: str) -> Any:
        return SIZES[self.scale][row]


def _rand(rng: np.random.Generator, *shape: int, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    return rng.uniform(low, high, size=shape).astype(np.float32)


def _ours(x: np.ndarray) -> lt.Tensor:
    """A realized lazytensor copy of x (inputs are realized before timing)."""
    return lt.from_numpy(np.ascontiguousarray(x)).realize()


def _torch(x: np.ndarray) -> Any:
    return torch.from_numpy(np.ascontiguousarray(x).copy())


def _tiny(x: np.ndarray) -> Any:
    return TinyTensor(np.ascontiguousarray(x).copy()).realize()


def _mb(n_floats: float) -> str:
    return f"{n_floats * 4 / 2**20:.0f} MiB" if n_floats * 4 >= 2**20 else f"{n_floats * 4 / 2**10:.0f} KiB"


def _count(n: int) -> str:
    if n >= 2**20 and n % 2**20 == 0:
        return f"{n // 2**20}M"
    return str(n)


# ---- row 1: elementwise chain ------------------------------------------------------------------------

def _torch_compile_probe(n: int, cfg: Config) -> str | None:
    """Compile the chain with torch.compile in a child process (same size, same threads) under a timeout.

    None when it worked (the in-process compile then hits inductor's cache), else the reason."""
    code = textwrap.dedent(f"""
        import torch
        torch.set_num_threads({cfg.threads})
        f = torch.compile(lambda a, b, c, d: torch.sqrt(torch.relu(torch.exp(a * b + c) * d - a)) + 1,
                          dynamic=False)
        xs = [torch.rand({n}) for _ in range(4)]
        f(*xs)
    """)
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=cfg.compile_timeout_s)
    except subprocess.TimeoutExpired:
        return f"torch.compile skipped: compiling took over {cfg.compile_timeout_s:.0f} s"
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["unknown error"])[-1][:120]
        return f"torch.compile skipped: {last}"
    return None


def row_elementwise(cfg: Config) -> list[Measurement]:
    """sqrt(relu(exp(a*b+c)*d-a))+1 on four float32 vectors: ms and GB/s (4 reads + 1 write)."""
    n = cfg.size("elementwise")
    rng = np.random.default_rng(1)
    arrays = [_rand(rng, n) for _ in range(4)]
    a, b, c, d = [_ours(x) for x in arrays]
    impls = [Impl(OURS, lambda: (((a * b + c).exp() * d - a).relu().sqrt() + 1).realize())]
    na, nb, nc, nd = arrays
    impls.append(Impl("numpy", lambda: np.sqrt(np.maximum(np.exp(na * nb + nc) * nd - na, 0)) + 1))
    notes: dict[str, str] = {}
    if torch is not None:
        ta, tb, tc, td = [_torch(x) for x in arrays]

        def chain(a: Any, b: Any, c: Any, d: Any) -> Any:
            return torch.sqrt(torch.relu(torch.exp(a * b + c) * d - a)) + 1

        impls.append(Impl("torch", lambda: chain(ta, tb, tc, td)))
        if cfg.torch_compile:
            reason = _torch_compile_probe(n, cfg)
            if reason is None:
                compiled = torch.compile(chain, dynamic=False)
                impls.append(Impl("torch.compile", lambda: compiled(ta, tb, tc, td)))
                notes["torch.compile"] = "compile time excluded (warm-up)"
            else:
                cfg.notes.append(reason)
    if TinyTensor is not None:
        ga, gb, gc, gd = [_tiny(x) for x in arrays]
        impls.append(Impl("tinygrad",
                          lambda: (((ga * gb + gc).exp() * gd - ga).relu().sqrt() + 1).realize()))
    return measure_case("elementwise", f"8 ops, {_count(n)} f32", impls, rounds=cfg.rounds, warmup=cfg.warmup,
                        work=5 * 4 * n, work_unit="GB/s", notes=notes)


# ---- rows 2 and 3: reductions --------------------------------------------------------------------------

def row_sum(cfg: Config) -> list[Measurement]:
    """x.sum(axis=1) of an n×n float32 matrix: ms and GB/s (n² reads + n writes)."""
    n = cfg.size("reduce")
    x = _rand(np.random.default_rng(2), n, n)
    ox = _ours(x)
    impls = [Impl(OURS, lambda: ox.sum(axis=1).realize()), Impl("numpy", lambda: x.sum(axis=1))]
    if torch is not None:
        tx = _torch(x)
        impls.append(Impl("torch", lambda: tx.sum(dim=1)))
    if TinyTensor is not None:
        gx = _tiny(x)
        impls.append(Impl("tinygrad", lambda: gx.sum(axis=1).realize()))
    return measure_case("sum", f"axis 1 of {n}x{n} f32", impls, rounds=cfg.rounds, warmup=cfg.warmup,
                        work=4 * (n * n + n), work_unit="GB/s", rtol=1e-4, atol=1e-4)


def _np_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def row_softmax(cfg: Config) -> list[Measurement]:
    """softmax over the last axis of an n×n float32 matrix: ms and GB/s (n² reads + n² writes)."""
    n = cfg.size("softmax")
    x = _rand(np.random.default_rng(3), n, n, low=-4, high=4)
    ox = _ours(x)
    impls = [Impl(OURS, lambda: ox.softmax(-1).realize()), Impl("numpy", lambda: _np_softmax(x))]
    if torch is not None:
        tx = _torch(x)
        impls.append(Impl("torch", lambda: torch.softmax(tx, dim=-1)))
    if TinyTensor is not None:
        gx = _tiny(x)
        impls.append(Impl("tinygrad", lambda: gx.softmax(-1).realize()))
    return measure_case("softmax", f"last axis of {n}x{n} f32", impls, rounds=cfg.rounds, warmup=cfg.warmup,
                        work=4 * 2 * n * n, work_unit="GB/s", rtol=1e-4, atol=1e-6)


# ---- row 4: matmul ------------------------------------------------------------------------------------

def row_matmul(cfg: Config) -> list[Measurement]:
    """n×n @ n×n float32 for each n of the scale: ms and GFLOP/s (2n³ flops)."""
    out: list[Measurement] = []
    rng = np.random.default_rng(4)
    for n in cfg.size("matmul"):
        x, y = _rand(rng, n, n), _rand(rng, n, n)
        ox, oy = _ours(x), _ours(y)
        impls = [Impl(OURS, lambda ox=ox, oy=oy: (ox @ oy).realize()), Impl("numpy", lambda x=x, y=y: x @ y)]
        if torch is not None:
            tx, ty = _torch(x), _torch(y)
            impls.append(Impl("torch", lambda tx=tx, ty=ty: tx @ ty))
        if TinyTensor is not None:
            gx, gy = _tiny(x), _tiny(y)
            impls.append(Impl("tinygrad", lambda gx=gx, gy=gy: (gx @ gy).realize()))
        out += measure_case("matmul", f"{n}^3 f32", impls, rounds=cfg.rounds, warmup=cfg.warmup,
                            work=2.0 * n**3, work_unit="GFLOP/s", rtol=1e-4, atol=1e-4 * np.sqrt(n))
    return out


# ---- row 5: conv2d ------------------------------------------------------------------------------------

def np_conv2d_im2col(x: np.ndarray, w: np.ndarray, padding: int) -> np.ndarray:
    """Cross-correlation (torch's conv2d, stride 1) as im2col + matmul in NumPy: the NumPy peer only.

    x: (N, C, H, W), w: (O, C, kh, kw) → (N, O, H', W')."""
    n, c, _, _ = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))   # N, C, H', W', kh, kw
    ho, wo = win.shape[2], win.shape[3]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * kh * kw)
    y = cols @ w.reshape(o, c * kh * kw).T                                       # N*H'*W', O
    return y.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)


def row_conv2d(cfg: Config) -> list[Measurement]:
    """conv2d N×Cin×H×H with a Cout×Cin×3×3 kernel, padding=1, no bias, for each shape of the scale:
    many channels on a small image (a mid-network layer) and 3 channels on a larger image (an RGB
    stem). ms and GFLOP/s."""
    out: list[Measurement] = []
    rng = np.random.default_rng(5)
    for n, cin, cout, hw in cfg.size("conv"):
        x, w = _rand(rng, n, cin, hw, hw), _rand(rng, cout, cin, 3, 3, low=-0.3, high=0.3)
        ox, ow = _ours(x), _ours(w)
        impls = [Impl(OURS, lambda ox=ox, ow=ow: LF.conv2d(ox, ow, padding=1).realize()),
                 Impl("numpy", lambda x=x, w=w: np_conv2d_im2col(x, w, 1))]
        notes = {"numpy": "im2col + matmul"}
        if torch is not None:
            tx, tw = _torch(x), _torch(w)
            impls.append(Impl("torch", lambda tx=tx, tw=tw: TF.conv2d(tx, tw, padding=1)))
        flops = 2.0 * n * cout * hw * hw * cin * 9
        out += measure_case("conv2d", f"N={n} {cin}->{cout} 3x3 {hw}x{hw} pad 1", impls, rounds=cfg.rounds,
                            warmup=cfg.warmup, work=flops, work_unit="GFLOP/s", rtol=1e-4, atol=1e-4,
                            notes=notes)
    return out


# ---- row 6: MLP train step ------------------------------------------------------------------------------

def row_mlp(cfg: Config) -> list[Measurement]:
    """One Adam train step (forward, cross_entropy, backward, step) of a 784-512-10 MLP at batch 128.

    Both sides start from the same weights (torch's init, loaded into ours) and see the same batch,
    so after the same number of steps their final loss and weights agree up to rounding. Our note
    gives the kernels launched per step (`lt.count_kernels`)."""
    if torch is None:
        return [Measurement("mlp train step", "", OURS, note="skipped: needs torch for the shared init")]
    batch, d_in, hidden, d_out = cfg.size("mlp")
    rng = np.random.default_rng(6)
    x, y = _rand(rng, batch, d_in), rng.integers(0, d_out, size=batch).astype(np.int64)
    torch.manual_seed(0)
    tmodel = torch.nn.Sequential(torch.nn.Linear(d_in, hidden), torch.nn.ReLU(),
                                 torch.nn.Linear(hidden, d_out))
    omodel = lt.nn.Sequential(lt.nn.Linear(d_in, hidden), lt.nn.ReLU(), lt.nn.Linear(hidden, d_out))
    omodel.load_state_dict(tmodel.state_dict())
    initial = {k: v.clone() for k, v in tmodel.state_dict().items()}
    topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
    oopt = lt.optim.Adam(omodel.parameters(), lr=1e-3)
    tx, ty = _torch(x), torch.from_numpy(y)
    ox, oy = _ours(x), _ours(y)
    kernels: list[int] = []

    def our_step() -> lt.Tensor:
        with lt.count_kernels() as k:
            oopt.zero_grad()
            loss = LF.cross_entropy(omodel(ox), oy)
            loss.backward()
            oopt.step()          # realizes the loss, the gradients and every update in one schedule
        kernels.append(k.kernels)
        return loss

    def torch_step() -> Any:
        topt.zero_grad()
        loss = TF.cross_entropy(tmodel(tx), ty)
        loss.backward()
        topt.step()
        return loss

    def final(model: Any, loss: Any) -> np.ndarray:
        """The last loss and the output layer's weights, flattened: what the check compares."""
        w = model[2].weight
        return np.concatenate([np.ravel(np.asarray(loss.item())), np.ravel(np.asarray(w.detach().numpy()))])

    last: dict[str, Any] = {}

    def remember(name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        def call() -> Any:
            last[name] = fn()
            return last[name]
        return call

    impls = [Impl(OURS, remember(OURS, our_step), result=lambda: final(omodel, last[OURS])),
             Impl("torch", remember("torch", torch_step), result=lambda: final(tmodel, last["torch"]))]
    out = measure_case("mlp train step", f"{d_in}-{hidden}-{d_out} batch {batch} Adam", impls,
                       rounds=cfg.rounds, warmup=cfg.warmup, rtol=1e-3, atol=1e-4)
    for m in out:
        if m.impl == OURS and kernels:
            m.note = f"{kernels[-1]} kernels/step"
    out.append(Measurement("mlp train step", out[0].case, "numpy", note="skipped: NumPy has no autograd"))

    # the same step under lt.jit (captured on its second call, replayed afterwards), against torch again
    # both sides start again from the initial weights with fresh optimizers
    jmodel = lt.nn.Sequential(lt.nn.Linear(d_in, hidden), lt.nn.ReLU(), lt.nn.Linear(hidden, d_out))
    jmodel.load_state_dict(initial)
    jopt = lt.optim.Adam(jmodel.parameters(), lr=1e-3)
    tmodel.load_state_dict(initial)
    topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
    jitted_kernels: list[int] = []

    @lt.jit
    def jit_step(bx: lt.Tensor, by: lt.Tensor) -> lt.Tensor:
        jopt.zero_grad()
        loss = LF.cross_entropy(jmodel(bx), by)
        loss.backward()
        jopt.step()
        return loss

    def our_jit_step() -> lt.Tensor:
        if len(jitted_kernels) >= cfg.warmup + 2:   # counted in the warm-up calls only: a counter listening
            return jit_step(ox, oy)                  # makes a replay launch kernel by kernel (jit.py)
        with lt.count_kernels() as k:
            loss = jit_step(ox, oy)
        jitted_kernels.append(k.kernels)
        return loss

    jit_impls = [Impl(OURS, remember("jit", our_jit_step), result=lambda: final(jmodel, last["jit"])),
                 Impl("torch", remember("torch", torch_step), result=lambda: final(tmodel, last["torch"]))]
    if TinyTensor is not None:
        tiny_step, tiny_final = tinygrad_mlp_step(initial, x, y)
        jit_impls.append(Impl("tinygrad", remember("tinygrad", tiny_step),
                              result=lambda: tiny_final(last["tinygrad"])))
    jit_out = measure_case("mlp train step", f"{d_in}-{hidden}-{d_out} batch {batch} Adam, lt.jit", jit_impls,
                           rounds=cfg.rounds, warmup=cfg.warmup + 2, rtol=1e-3, atol=1e-4)
    for m in jit_out:
        if m.impl == OURS and jitted_kernels:
            m.note = f"{jitted_kernels[-1]} kernels/step"
    return out + jit_out


def tinygrad_mlp_step(initial: dict[str, Any], x: np.ndarray, y: np.ndarray
                      ) -> tuple[Callable[[], Any], Callable[[Any], np.ndarray]]:
    """tinygrad's side of the MLP row: the same weights, batch and Adam step under TinyJit (its fast path).

    → (step, final): step() runs one train step and returns the loss; final(loss) gives what `final`
    gives for the other sides (the loss, then the output layer's weights)."""
    from tinygrad import TinyJit
    from tinygrad import nn as tnn
    from tinygrad.helpers import Context

    def param(name: str) -> Any:
        return TinyTensor(initial[name].numpy()).is_param_()

    first, second = tnn.Linear(1, 1), tnn.Linear(1, 1)   # shapes come from the loaded weights
    first.weight, first.bias = param("0.weight"), param("0.bias")
    second.weight, second.bias = param("2.weight"), param("2.bias")
    opt = tnn.optim.Adam([first.weight, first.bias, second.weight, second.bias], lr=1e-3)
    bx, by = TinyTensor(x).realize(), TinyTensor(y).realize()

    @TinyJit
    def step(inputs: Any, labels: Any) -> Any:
        with Context(TRAINING=1):
            opt.zero_grad()
            loss = second(first(inputs).relu()).cross_entropy(labels)
            loss.backward()
            TinyTensor.realize(loss, *opt.schedule_step())   # loss, gradients and updates in one schedule
        return loss

    def final(loss: Any) -> np.ndarray:
        return np.concatenate([np.ravel(loss.numpy()), np.ravel(second.weight.numpy())])

    return (lambda: step(bx, by)), final


# ---- row 7: tiny op overhead ------------------------------------------------------------------------------

TINY_CALLS_PER_ROUND = 10
"""Back-to-back calls each implementation makes per round of the small-op row (reported per call)."""


def _per_call(name: str, call: Callable[[], Any], calls: int = TINY_CALLS_PER_ROUND) -> Impl:
    """An Impl that makes `calls` back-to-back calls per round and reports the mean time of one.

    A user's loop of small ops runs with warm caches. Timing a single call right after another
    library's call instead measures that library's cache footprint: after one tinygrad call (~1.4 ms)
    NumPy's 2x2 add+sum took 11.5 µs instead of 1.9, torch's 30 instead of 5.4, ours 75 instead of 24."""
    elapsed = [0.0]

    def burst() -> Any:
        start = time.perf_counter()
        for _ in range(calls):
            value = call()
        elapsed[0] = (time.perf_counter() - start) / calls
        return value

    return Impl(name, burst, seconds=lambda: elapsed[0])


def row_tiny(cfg: Config) -> list[Measurement]:
    """(a+b).sum() of 2×2 tensors, value fetched (.item()) each call: µs per call (pure overhead),
    the mean over TINY_CALLS_PER_ROUND back-to-back calls per round (see _per_call)."""
    rng = np.random.default_rng(7)
    x, y = _rand(rng, 2, 2), _rand(rng, 2, 2)
    ox, oy = _ours(x), _ours(y)
    impls = [_per_call(OURS, lambda: (ox + oy).sum().item()), _per_call("numpy", lambda: float((x + y).sum()))]
    if torch is not None:
        tx, ty = _torch(x), _torch(y)
        impls.append(_per_call("torch", lambda: (tx + ty).sum().item()))
    if TinyTensor is not None:
        gx, gy = _tiny(x), _tiny(y)
        impls.append(_per_call("tinygrad", lambda: (gx + gy).sum().item()))
    rounds = cfg.rounds * 4      # single calls are µs: more rounds cost little and steady the median
    out = measure_case("(a+b).sum() 2x2", "per call, .item()", impls, rounds=rounds, warmup=cfg.warmup + 3,
                       unit="us", rtol=1e-5, atol=1e-6)

    @lt.jit
    def add_sum(a: lt.Tensor, b: lt.Tensor) -> lt.Tensor:
        return (a + b).sum()

    jit_impls = [_per_call(OURS, lambda: add_sum(ox, oy).item()), _per_call("numpy", lambda: float((x + y).sum()))]
    if torch is not None:
        jit_impls.append(_per_call("torch", lambda: (tx + ty).sum().item()))
    return out + measure_case("(a+b).sum() 2x2", "per call, .item(), lt.jit", jit_impls, rounds=rounds,
                              warmup=cfg.warmup + 3, unit="us", rtol=1e-5, atol=1e-6)


# ---- row 8: fresh process -----------------------------------------------------------------------------

FRESH_PROCESS_CODE = {
    OURS: "import lazytensor as lt; (lt.ones(64,64) @ lt.ones(64,64)).numpy()",
    "numpy": "import numpy as np; np.ones((64,64), np.float32) @ np.ones((64,64), np.float32)",
    "torch": "import torch; (torch.ones(64,64) @ torch.ones(64,64)).numpy()",
}


def row_fresh_process(cfg: Config) -> list[Measurement]:
    """Wall time of a fresh `python -c "import …; 64×64 matmul"` (ours with a warm compile cache)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(cfg.threads))
    # A user's Python keeps compiled bytecode; without it every fresh process recompiles our modules
    # (~0.45 s). The warm-up run writes the .pyc files to a private folder.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", os.path.join(tempfile.gettempdir(), "lazytensor-bench-pyc"))
    names = [OURS, "numpy"] + (["torch"] if torch is not None else [])

    def launch(code: str) -> None:
        subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)

    impls = [Impl(name, lambda code=FRESH_PROCESS_CODE[name]: launch(code)) for name in names]
    rounds = max(3, cfg.rounds // 3)     # each round is a few process starts
    return measure_case("fresh process", "import + 64x64 matmul", impls, rounds=rounds, warmup=1,
                        notes={OURS: "warm compile cache"}, settle=False)   # processes share no threads


# ---- machine rows: our own kernels ---------------------------------------------------------------------

def row_triad(cfg: Config) -> list[Measurement]:
    """STREAM triad a = b + s*c with our kernel: GB/s from kernel time (12 bytes per element).

    Times are the kernel's own run time (`lt.count_kernels().seconds`), not the Python around it; the
    output is a fresh buffer per call, as everywhere in lazytensor. torch's `add(out=)` into a
    preallocated array is shown for reference."""
    n = cfg.size("triad")
    rng = np.random.default_rng(8)
    b, c = _rand(rng, n), _rand(rng, n)
    ob, oc = _ours(b), _ours(c)
    s = 3.0
    kernel_seconds = [0.0]

    def ours() -> lt.Tensor:
        with lt.count_kernels() as k:
            a = (ob + s * oc).realize()
        kernel_seconds[0] = k.seconds
        return a

    impls = [Impl(OURS, ours, seconds=lambda: kernel_seconds[0]), Impl("numpy", lambda: b + s * c)]
    notes = {OURS: "kernel time", "numpy": "two passes (b + s*c)"}
    if torch is not None:
        tb, tc, ta = _torch(b), _torch(c), torch.empty(n)
        impls.append(Impl("torch", lambda: torch.add(tb, tc, alpha=s, out=ta)))
        notes["torch"] = "add(out=) preallocated"
    return measure_case("machine: triad", f"a = b + s*c, 3 x {_mb(n)}", impls, rounds=cfg.rounds,
                        warmup=cfg.warmup, work=12.0 * n, work_unit="GB/s", notes=notes)


def fma_chain(x: Any, steps: int, chains: int = 8) -> Any:
    """`chains` independent multiply-add chains of `steps` links per element, summed at the end.

    Works on anything with * and + (our Tensor, NumPy arrays): 2·steps·chains flops per element,
    plus the chains-1 adds of the final sum."""
    accs = [x + 0.125 * j for j in range(chains)]
    for i in range(steps):
        m = 0.999 - 0.0001 * (i % 7)       # varied constants: no two links are the same expression
        accs = [acc * m + 0.001 * (j + 1) for j, acc in enumerate(accs)]
    total = accs[0]
    for acc in accs[1:]:
        total = total + acc
    return total


def row_fma(cfg: Config) -> list[Measurement]:
    """A compute-bound kernel of ours: many independent multiply-adds per element (GFLOP/s, kernel time).

    Our C is compiled with -ffp-contract=off, so a multiply-add is a multiply and an add (2 flops).
    The kernel computes its value chain after chain, so the chains are many and short: the CPU's
    out-of-order window then always holds independent work (8 chains of 64 links measured 82 GFLOP/s
    on 2 cores here, 128 chains of 2 links 137)."""
    n, steps = cfg.size("fma")
    chains = 128
    x = _rand(np.random.default_rng(9), n)
    ox = _ours(x)
    kernel_seconds = [0.0]

    def ours() -> lt.Tensor:
        with lt.count_kernels() as k:
            y = fma_chain(ox, steps, chains).realize()
        kernel_seconds[0] = k.seconds
        return y

    impls = [Impl(OURS, ours, seconds=lambda: kernel_seconds[0]),
             Impl("numpy", lambda: fma_chain(x, steps, chains))]
    flops = float(n) * (2 * steps * chains + chains - 1)
    return measure_case("machine: FMA peak", f"{chains}x{steps} mul+add per element, {_count(n)} f32", impls,
                        rounds=cfg.rounds, warmup=cfg.warmup, work=flops, work_unit="GFLOP/s",
                        rtol=1e-4, atol=1e-4, notes={OURS: "kernel time", "numpy": "one pass per op"})


# ---- rows kept in their own modules (imported when run: they need optional packages) ----------------------

def row_bert(cfg: Config) -> list[Measurement]:
    """all-MiniLM-L6-v2 forward, batch 8 x 128 tokens, against PyTorch eager (bench/rows_bert.py)."""
    from bench.rows_bert import row_bert as run
    return run(cfg)


def row_gcn(cfg: Config) -> list[Measurement]:
    """GCN forward+backward on a power-law graph against PyTorch Geometric (bench/rows_gnn.py)."""
    from bench.rows_gnn import row_gcn as run
    return run(cfg)


def row_gat(cfg: Config) -> list[Measurement]:
    """GAT forward+backward on a power-law graph against PyTorch Geometric (bench/rows_gnn.py)."""
    from bench.rows_gnn import row_gat as run
    return run(cfg)


ROWS: dict[str, Callable[[Config], list[Measurement]]] = {
    "elementwise": row_elementwise,
    "sum": row_sum,
    "softmax": row_softmax,
    "matmul": row_matmul,
    "conv2d": row_conv2d,
    "mlp": row_mlp,
    "tiny": row_tiny,
    "fresh": row_fresh_process,
    "triad": row_triad,
    "fma": row_fma,
    "bert": row_bert,
    "gcn": row_gcn,
    "gat": row_gat,
}


def run_rows(names: list[str], cfg: Config, on_row: Callable[[list[Measurement]], None] | None = None,
             ) -> list[Measurement]:
    """Run the named rows in order; a row that crashes becomes a note in the table, not a crash."""
    out: list[Measurement] = []
    for name in names:
        with Timer() as t:
            try:
                got = ROWS[name](cfg)
            except Exception as e:
                got = [Measurement(name, "", OURS, note=f"row failed: {type(e).__name__}: {e}"[:200])]
        for m in got:
            m.output = None       # free the arrays
        if on_row is not None:
            on_row(got)
        out += got
        print(f"  [{name}: {t.seconds:.1f} s]", file=sys.stderr, flush=True)
    return out
