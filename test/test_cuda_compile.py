"""Every CUDA kernel a representative workload generates compiles with nvcc to PTX.

No CUDA code runs on these machines, so this proves what can be proved: the CUDA renderer's
output is valid CUDA C for every distinct kernel of a corpus covering the primitive ops in
every dtype, reductions (small and large: thread-per-output and local-memory reductions),
movement ops, gathers and scatters, matmul (local-memory tiles: odd shapes, transposed operands,
epilogues, several dtypes), convolution and a full autograd + optimizer step.
The corpus runs on the CPU (the reference device); each kernel AST it compiles is recorded,
lowered for the GPU, rendered as CUDA C and compiled with `nvcc --ptx`.

The whole test suite's kernels: run it with `--record-kernels DIR` (every process appends each
distinct kernel AST it compiles to DIR, see lazytensor/kernel_record.py), then
`pytest test/test_cuda_compile.py --kernels-from DIR` renders every recorded kernel as CUDA C,
deduplicates by source and compiles them in batches of many kernels per .cu file, two nvcc
processes at a time; an error names the kernel, its ops and the tests that generated it.
Skipped only when nvcc is not installed (the recording check also without --kernels-from).
"""
from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import lazytensor as lt
from lazytensor.graph import Node, toposort
from lazytensor.ops import Op

DTYPES = ["bool", "int8", "uint8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]


def _data(shape: tuple[int, ...], dtype: str, device: str) -> lt.Tensor:
    rng = np.random.default_rng(0)
    if dtype == "bool":
        return lt.tensor(rng.random(shape) > 0.5, device=device)
    if dtype.startswith(("float", "bfloat")):
        return lt.tensor(rng.uniform(-2, 2, shape).astype(np.float32), device=device).to(getattr(lt, dtype))
    return lt.tensor(rng.integers(1, 5, shape), device=device).to(getattr(lt, dtype))


def _elementwise(device: str) -> list[lt.Tensor]:
    out = []
    for dt in DTYPES:
        a, b = _data((3, 5), dt, device), _data((3, 5), dt, device)
        if dt == "bool":
            out += [a & b, a | b, a ^ b, ~a, lt.where(a, b, a), a == b, a.sum(), a.any(), a.all()]
            continue
        out += [a + b, a * b, a - b, lt.maximum(a, b), a < b, a != b, a.to(lt.float32), a.max(), a.sum(),
                a.prod(dim=1), a.argmax(dim=0), a.abs(), a.sign(), lt.where(a > b, a, b)]
        if dt.startswith(("float", "bfloat")):
            out += [a / b, a.exp(), a.log(), a.sqrt(), a.sin(), a.cos(), a.tanh(), a.sigmoid(), a.floor(),
                    a.round(), a.trunc(), a % b, a.pow(b), a.isnan(), a.erf(), a.to(lt.int32), a.softmax(-1),
                    a.mean(), a.var(dim=0)]
        else:
            out += [a // b, a % b, a.to(lt.float64), a << 1, a >> 1, a & b]
    x = _data((4, 6), "float32", device)
    out += [x.view(lt.int32), x.to(lt.float16).view(lt.int16), x.double().to(lt.float32)]
    return out


def _movement(device: str) -> list[lt.Tensor]:
    x = _data((4, 5, 6), "float32", device)
    idx = lt.tensor(np.array([[0, 2], [1, 3]]), device=device)
    return [x.permute(2, 0, 1).contiguous(), x.flip(1).contiguous(), x[:, 1:4:2].contiguous(),
            lt.nn.functional.pad(x, (1, 2)).contiguous(), x.reshape(20, 6).T.contiguous(),
            lt.cat([x, x], 1), x[idx], x.cumsum(2), x.roll(1, 0),
            lt.zeros(4, 5, 6, device=device).scatter_add(0, idx.reshape(-1)[:4].reshape(4, 1, 1)
                                                          .expand(4, 5, 6).contiguous(), x)]


def _reductions(device: str) -> list[lt.Tensor]:
    big = _data((1 << 16,), "float32", device)
    rows = _data((8, 4096), "float32", device)
    return [big.sum(), big.max(), big.mean(), rows.sum(1), rows.logsumexp(1), rows.std(1), rows.norm(),
            rows.argmax(1), _data((4096, 8), "float32", device).sum(0)]


def _matmul_conv(device: str) -> list[lt.Tensor]:
    a, b = _data((64, 48), "float32", device), _data((48, 32), "float32", device)
    img, w = _data((2, 3, 9, 9), "float32", device), _data((4, 3, 3, 3), "float32", device)
    F = lt.nn.functional
    odd_a, odd_b = _data((17, 33), "float32", device), _data((33, 9), "float32", device)
    bias = _data((9,), "float32", device)
    return [a @ b, _data((3, 8, 16), "float64", device) @ _data((3, 16, 4), "float64", device),
            odd_a @ odd_b, odd_b.T @ odd_a.T, (odd_a @ odd_b).relu() + bias,
            _data((17, 33), "float16", device) @ _data((33, 9), "float16", device),
            _data((7, 5), "int32", device) @ _data((5, 6), "int32", device),
            F.conv2d(img, w, padding=1), F.max_pool2d(img, 2), F.avg_pool2d(img, 3)]


def _training_step(device: str) -> list[lt.Tensor]:
    lt.manual_seed(0)
    model = lt.nn.Sequential(lt.nn.Conv2d(1, 4, 3), lt.nn.ReLU(), lt.nn.Flatten(),
                             lt.nn.Linear(4 * 6 * 6, 10))
    model.to(device)
    opt = lt.optim.Adam(model.parameters(), lr=1e-3)
    x = _data((5, 1, 8, 8), "float32", device)
    y = lt.tensor(np.arange(5) % 10, device=device)
    loss = lt.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return [loss] + [p for p in model.parameters()]


CORPUS = [_elementwise, _movement, _reductions, _matmul_conv, _training_step]


def run_corpus(device: str) -> None:
    """Realize every tensor of the corpus on `device`."""
    for build in CORPUS:
        for t in build(device):
            t.realize()


def record_kernel_asts(monkeypatch: pytest.MonkeyPatch) -> list:
    """Run the corpus on the CPU and return the distinct kernel ASTs it compiled, in order."""
    realize_module = importlib.import_module("lazytensor.realize")   # lt.realize is the function
    seen: dict = {}
    original = realize_module.compile_kernel

    def recording(ast, device):
        seen.setdefault(ast, None)
        return original(ast, device)

    monkeypatch.setattr(realize_module, "compile_kernel", recording)
    run_corpus("CPU")
    return list(seen)


PLACEHOLDER = "lt_kernel_under_check"   # the function name every kernel is rendered with (then made unique)
NVCC = ["nvcc", "--ptx", "-arch=sm_80"]
NVCC_JOBS = 2                # nvcc processes at once (CI has 2 cores)
KERNELS_PER_BATCH = 300      # kernels per .cu file at most: nvcc's start-up cost is paid once per file

# Kernels the CUDA path cannot express by design: (predicate on the kernel AST, reason). Every kernel a
# predicate matches is listed in the test's output with its reason, never silently skipped.
CUDA_CANNOT_EXPRESS: list[tuple[Callable[[Node], bool], str]] = []


@dataclass
class CudaKernel:
    """One distinct CUDA source to compile, and where it came from (for error messages)."""
    name: str              # the kernel's own name (from lower_kernel)
    source: str            # the rendered CUDA C, its function(s) named PLACEHOLDER
    ops: str               # the ops of its AST, for error messages
    tests: list[str] = field(default_factory=list)   # tests that generated it (recordings only)


def kernel_ops(ast: Node) -> str:
    """The distinct ops of a kernel AST, e.g. "ADD, CAST, DEFINE_BUF, REDUCE(add)"."""
    names = set()
    for n in toposort([ast]):
        if n.op is Op.REDUCE:
            names.add(f"REDUCE({n.arg[0].name.lower()})")   # arg = (binary op, axes)
        else:
            names.add(n.op.name)
    return ", ".join(sorted(names))


@dataclass
class CudaCheck:
    """What checking a set of kernel ASTs found."""
    asts: int = 0                                             # kernel ASTs given
    kernels: list[CudaKernel] = field(default_factory=list)   # distinct CUDA sources among them
    cannot: list[str] = field(default_factory=list)           # not expressible in CUDA by design, with why
    errors: list[str] = field(default_factory=list)           # lowering/rendering/nvcc errors, per kernel
    entries: int = 0                                          # PTX entry points nvcc produced

    def report(self, what: str, limit: int = 20) -> str:
        """The errors, each naming its kernel (ops, generating tests) and nvcc's message."""
        shown = "\n\n".join(self.errors[:limit])
        more = f"\n\n... and {len(self.errors) - limit} more" if len(self.errors) > limit else ""
        return (f"{len(self.errors)} error(s) in {len(self.kernels)} distinct CUDA kernels "
                f"({self.asts} kernel ASTs) of {what}:\n\n{shown}{more}")


def render_cuda(ast: Node, tests: list[str], check: CudaCheck) -> CudaKernel | None:
    """Lower one AST for the GPU and render it as CUDA C (functions named PLACEHOLDER); None (noted in
    `check`) when the CUDA path cannot express it by design or lowering/rendering fails."""
    from lazytensor.codegen.gpu import optimize_gpu
    from lazytensor.codegen.lower import lower_kernel
    from lazytensor.codegen.render.cuda import CUDARenderer
    origin = ", ".join(tests) or "the corpus"
    reasons = [reason for matches, reason in CUDA_CANNOT_EXPRESS if matches(ast)]
    if reasons:
        check.cannot.append(f"{kernel_ops(ast)}: {reasons[0]} (from {origin})")
        return None
    try:
        kernel = optimize_gpu(lower_kernel(ast))
        source = CUDARenderer().render(kernel, name=PLACEHOLDER)
    except Exception as e:   # noqa: BLE001  (reported with the kernel it came from)
        check.errors.append(f"lowering/rendering for CUDA raised {type(e).__name__}: {e}\n"
                            f"  ops: {kernel_ops(ast)}\n  from: {origin}")
        return None
    return CudaKernel(kernel.name, source, kernel_ops(ast), list(tests))


@dataclass
class Batch:
    """One .cu file of many kernels; spans map its lines back to kernels."""
    path: Path
    spans: list[tuple[int, int, CudaKernel]]   # (first line, last line, kernel), 1-based, inclusive


def write_batch(kernels: list[tuple[int, CudaKernel]], path: Path) -> Batch:
    """Numbered kernels as one .cu file: kernel i is wrapped in `namespace unit<i>` (its helpers may
    share names with other kernels' helpers) and its extern "C" functions are named k<i>_<name>."""
    lines: list[str] = []
    spans = []
    for i, kernel in kernels:
        body = kernel.source.replace(PLACEHOLDER, f"k{i}_{kernel.name}").splitlines()
        start = len(lines) + 1
        lines += [f"namespace unit{i} {{"] + body + [f"}}  // namespace unit{i}"]
        spans.append((start, len(lines), kernel))
    path.write_text("\n".join(lines) + "\n")
    return Batch(path, spans)


NVCC_DIAGNOSTIC = re.compile(r"^(?P<file>.*?)\((?P<line>\d+)\): (?P<kind>[a-z ]+)")


def nvcc_errors(batch: Batch, stderr: str) -> list[str]:
    """nvcc's error messages for a batch, each with the kernel (name, ops, tests) it is in."""
    messages: list[tuple[int | None, list[str]]] = []
    in_error = False
    for line in stderr.splitlines():
        if re.match(r"^\d+ errors? detected in the compilation", line):
            continue
        found = NVCC_DIAGNOSTIC.match(line)
        if found:
            in_error = "error" in found.group("kind")
            if in_error:
                messages.append((int(found.group("line")), [line]))
        elif in_error and line.strip():
            messages[-1][1].append(line)
        elif "error" in line.lower() and not line.startswith(" "):   # a message without a source line
            messages.append((None, [line]))
            in_error = True
    out = []
    for line_no, text in messages:
        where = f"{batch.path.name} (no source line)"
        for first, last, kernel in batch.spans:
            if line_no is not None and first <= line_no <= last:
                where = (f"kernel {kernel.name} (line {line_no - first} of its source)\n  ops: {kernel.ops}"
                         f"\n  from: {', '.join(kernel.tests) or 'the corpus'}")
                break
        out.append(f"{where}\n  nvcc: " + "\n        ".join(text))
    return out


def compile_batch(batch: Batch) -> tuple[list[str], int]:
    """nvcc --ptx one batch; returns (errors naming their kernels, number of PTX entry points)."""
    ptx = batch.path.with_suffix(".ptx")
    r = subprocess.run(NVCC + [str(batch.path), "-o", str(ptx)], check=False, capture_output=True, text=True)
    if r.returncode != 0:
        return nvcc_errors(batch, r.stderr) or [f"nvcc failed on {batch.path.name}:\n{r.stderr[:4000]}"], 0
    return [], ptx.read_text().count(".entry ")


def check_cuda(asts: Iterable[tuple[Node, list[str]]], directory: Path, per_batch: int) -> CudaCheck:
    """Render every AST as CUDA C, deduplicate by source, and compile to PTX in .cu files of `per_batch`
    kernels, NVCC_JOBS nvcc processes at a time; each file compiles while the next ones render."""
    check = CudaCheck()
    seen: dict[str, CudaKernel] = {}
    batch: list[tuple[int, CudaKernel]] = []
    futures = []
    with ThreadPoolExecutor(NVCC_JOBS) as pool:
        for ast, tests in asts:
            check.asts += 1
            kernel = render_cuda(ast, tests, check)
            if kernel is None:
                continue
            found = seen.get(kernel.source)
            if found is not None:   # an equal source: keep a few more tests that generate it
                found.tests += [t for t in tests if t not in found.tests][:max(0, 3 - len(found.tests))]
                continue
            seen[kernel.source] = kernel
            batch.append((len(check.kernels), kernel))
            check.kernels.append(kernel)
            if len(batch) == per_batch:
                path = directory / f"batch{len(futures)}.cu"
                futures.append(pool.submit(compile_batch, write_batch(batch, path)))
                batch = []
        if batch:
            path = directory / f"batch{len(futures)}.cu"
            futures.append(pool.submit(compile_batch, write_batch(batch, path)))
        for future in futures:
            errors, entries = future.result()
            check.errors += errors
            check.entries += entries
    return check


def batch_size(n_asts: int) -> int:
    """Kernels per .cu file: at most KERNELS_PER_BATCH, and small sets still keep every nvcc job busy."""
    return max(1, min(KERNELS_PER_BATCH, -(-n_asts // (2 * NVCC_JOBS))))


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_every_corpus_kernel_compiles_to_ptx(monkeypatch, tmp_path: Path):
    asts = record_kernel_asts(monkeypatch)
    assert len(asts) > 100, "the corpus should exercise many distinct kernels"
    check = check_cuda([(ast, []) for ast in asts], tmp_path, batch_size(len(asts)))
    assert not check.errors, check.report("the corpus")
    assert not check.cannot, "every corpus kernel should be expressible in CUDA:\n" + "\n".join(check.cannot)
    sources = "\n".join(k.source for k in check.kernels)
    assert sources.count("__syncthreads()") > 0 and "__shared__" in sources
    assert "tm_k0" in sources, "the corpus should include tiled matmul kernels (local-memory tiles)"
    assert check.entries >= len(check.kernels), "every kernel (and each extra nest) becomes a PTX entry point"


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_every_recorded_kernel_compiles_to_ptx(request: pytest.FixtureRequest, tmp_path: Path):
    """With --kernels-from DIR: every distinct kernel a recorded test-suite run (--record-kernels DIR)
    generated, rendered as CUDA C, compiles to PTX."""
    directory = request.config.getoption("--kernels-from")
    if not directory:
        pytest.skip("no recording given: run the tests with --record-kernels DIR, "
                    "then this file with --kernels-from DIR")
    from lazytensor.kernel_record import load_recorded
    recorded = load_recorded(directory)
    check = check_cuda(((k.ast, k.tests) for k in recorded), tmp_path, batch_size(len(recorded)))
    print(f"\n{check.asts} recorded kernels -> {len(check.kernels)} distinct CUDA sources, "
          f"{check.entries} PTX entry points; {len(check.cannot)} the CUDA path cannot express by design")
    for line in check.cannot:
        print(f"  not compiled: {line}")
    assert not check.errors, check.report(f"the recording in {directory}")
    assert check.entries >= len(check.kernels), "every kernel (and each extra nest) becomes a PTX entry point"


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_nvcc_error_names_the_kernel_it_is_in(tmp_path: Path):
    """A compile error is reported with its kernel's name, ops and generating test, not just a line number."""
    good = CudaKernel("E_4", f'extern "C" __global__ void {PLACEHOLDER}(float* b0) {{ b0[0] = 1.0f; }}\n',
                      "STORE", ["test_a.py::test_good"])
    bad = CudaKernel("r_8_2", f'extern "C" __global__ void {PLACEHOLDER}(float* b0) {{\n'
                              f'  b0[0] = undefined_thing;\n}}\n',
                     "ADD, REDUCE(add)", ["test_b.py::test_bad"])
    errors, entries = compile_batch(write_batch([(0, good), (1, bad)], tmp_path / "two.cu"))
    assert entries == 0 and len(errors) == 1, errors
    assert "kernel r_8_2 (line 2 of its source)" in errors[0] and "test_b.py::test_bad" in errors[0]
    assert "ADD, REDUCE(add)" in errors[0] and "undefined_thing" in errors[0]


def test_recording_gives_back_the_compiled_kernel_asts(monkeypatch, tmp_path: Path):
    """--record-kernels: each kernel compiled while recording is read back (once, hash-consed: the very same
    AST node) with the test that generated it; kernels compiled before are not recorded again."""
    from lazytensor import kernel_record
    realize_module = importlib.import_module("lazytensor.realize")
    for name in ("RECORDING", "_directory", "_file", "_file_pid", "_seen"):   # a recording session's state
        monkeypatch.setattr(kernel_record, name, getattr(kernel_record, name))
    monkeypatch.setattr(kernel_record, "_seen", set())
    monkeypatch.setattr(kernel_record, "_file", None)   # leave a recording session's file open, untouched
    monkeypatch.setattr(realize_module, "_compiled", {})   # every kernel below is new to this process
    compiled: list[Node] = []
    original = realize_module.compile_kernel

    def spy(ast: Node, device: str):
        compiled.append(ast)
        return original(ast, device)

    monkeypatch.setattr(realize_module, "compile_kernel", spy)
    kernel_record.start_recording(tmp_path)
    try:
        x = _data((7, 13), "float32", "CPU")
        for t in [(x * 3.25).exp2().sum(1), x.softmax(0), x.softmax(0)]:
            t.realize()
    finally:
        kernel_record.stop_recording()
    recorded = kernel_record.load_recorded(tmp_path)
    assert compiled and [k.ast for k in recorded] == list(dict.fromkeys(compiled))
    assert all(k.ast is a for k, a in zip(recorded, dict.fromkeys(compiled)))
    assert all(k.tests and k.tests[0].endswith("::test_recording_gives_back_the_compiled_kernel_asts")
               and k.devices == {"CPU"} for k in recorded)
