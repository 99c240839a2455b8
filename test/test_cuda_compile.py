"""Every CUDA kernel a representative workload generates compiles with nvcc to PTX.

No CUDA code runs on these machines, so this proves what can be proved: the CUDA renderer's
output is valid CUDA C for every distinct kernel of a corpus covering the primitive ops in
every dtype, reductions (small and large: thread-per-output and local-memory reductions),
movement ops, gathers and scatters, matmul (local-memory tiles: odd shapes, transposed operands,
epilogues, several dtypes), convolution and a full autograd + optimizer step.
The corpus runs on the CPU (the reference device); each kernel AST it compiles is recorded,
lowered for the GPU, rendered as CUDA C and compiled in one `nvcc --ptx` call.
Skipped only when nvcc is not installed.
"""
from __future__ import annotations

import importlib
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import lazytensor as lt

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


def cuda_translation_unit(asts: list) -> tuple[str, int]:
    """All kernels as one .cu file; each in its own namespace (helpers of equal name differ)."""
    from lazytensor.codegen.gpu import optimize_gpu
    from lazytensor.codegen.lower import lower_kernel
    from lazytensor.codegen.render.cuda import CUDARenderer
    parts = []
    for i, ast in enumerate(asts):
        kernel = optimize_gpu(lower_kernel(ast))
        source = CUDARenderer().render(kernel, name=f"k{i}_{kernel.name}")
        parts.append(f"namespace unit{i} {{\n{source}\n}}  // namespace unit{i}")
    return "\n".join(parts), len(asts)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_every_corpus_kernel_compiles_to_ptx(monkeypatch, tmp_path: Path):
    asts = record_kernel_asts(monkeypatch)
    assert len(asts) > 100, "the corpus should exercise many distinct kernels"
    source, n = cuda_translation_unit(asts)
    assert source.count("__syncthreads()") > 0 and "__shared__" in source
    assert "tm_k0" in source, "the corpus should include tiled matmul kernels (local-memory tiles)"
    cu = tmp_path / "corpus.cu"
    cu.write_text(source)
    r = subprocess.run(["nvcc", "--ptx", "-arch=sm_80", str(cu), "-o", str(tmp_path / "corpus.ptx")],
                       check=False, capture_output=True, text=True)
    assert r.returncode == 0, f"nvcc failed on the corpus ({n} kernels):\n{r.stderr[:6000]}"
    ptx = (tmp_path / "corpus.ptx").read_text()
    assert ptx.count(".entry") >= n, "every kernel (and each extra nest) becomes a PTX entry point"
