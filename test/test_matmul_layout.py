"""Matmul layouts: what the front end stores for each operand, and the loops a matmul kernel runs over.

- a matmul followed by an elementwise epilogue (bias, activation) runs its loops over the matmul's own
  tile axes, like a bare matmul (codegen/lower.py: epilogue_loop_shape);
- the transposed right operand of an attention-style `q @ k.mT`, where k is itself a matmul result, is
  stored in k's own layout first and copied transposed after (tensor_linalg._row_major_copy);
- under no_grad the same holds (ops recorded there carry DETACH wrappers the layout checks look through),
  and a stored weight's packed copy is made once per value of the weight (tensor_linalg._PACKED).

Every result is checked against PyTorch or NumPy on the same inputs. No test here times anything.
"""
from __future__ import annotations

import numpy as np
import pytest

import lazytensor as lt
from lazytensor.codegen.lower import lower_kernel
from lazytensor.ops import Op
from lazytensor.tensor_linalg import packed_panel_width

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _rand(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _reduce_kernels(t: lt.Tensor) -> list:
    return [item for item in t.schedule() if item.kind == "kernel" and any(
        name.startswith("reduce") for name in item.fused_ops)]


# ---- an elementwise epilogue keeps the matmul's tiled loops ----

EPILOGUES = {
    "bias": (lambda y, b: y + b, lambda y, b: y + b),
    "bias_relu": (lambda y, b: (y + b).relu(), lambda y, b: torch.relu(y + b)),
    "scale_bias": (lambda y, b: y * 0.5 + b, lambda y, b: y * 0.5 + b),
}


@pytest.mark.parametrize("epilogue", EPILOGUES)
@pytest.mark.parametrize("grad_mode", [True, False])
def test_matmul_epilogue_runs_over_the_tile_axes_and_matches_torch(epilogue, grad_mode):
    ours_fn, torch_fn = EPILOGUES[epilogue]
    rng = np.random.default_rng(len(epilogue))
    x, w, b = _rand(rng, 2, 40, 64), _rand(rng, 64, 96, scale=0.1), _rand(rng, 96)
    ox, ow, ob = lt.tensor(x).realize(), lt.tensor(w).realize(), lt.tensor(b).realize()
    with lt.set_grad_enabled(grad_mode):
        out = ours_fn(ox @ ow, ob).contiguous()
        (kernel,) = _reduce_kernels(out)
        loops = [loop.size for loop in lower_kernel(kernel.ast).nests[0].loops]
        got = out.numpy()
    width = packed_panel_width(lt.float32, 96, "CPU")
    assert loops == [2, 40, 96 // width, width]   # the packed panels' (n/w, w), not one loop of 96
    want = torch_fn(torch.from_numpy(x) @ torch.from_numpy(w), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_epilogue_of_a_reduce_with_an_unrelated_shape_keeps_its_own_loops():
    """A row sum broadcast into an elementwise output is no epilogue of the same size: loops unchanged."""
    x = lt.randn(8, 16).realize()
    out = (x * x.sum(1, keepdim=True)).contiguous()
    kernel = out.schedule()[-1]
    loops = [loop.size for loop in lower_kernel(kernel.ast).nests[0].loops]
    assert loops == [8, 16]
    np.testing.assert_allclose(out.numpy(), x.numpy() * x.numpy().sum(1, keepdims=True), rtol=1e-5, atol=1e-5)


# ---- attention: q @ k.mT with q, k from linear layers ----


def _attention_inputs(seed: int = 0, batch: int = 2, length: int = 32, heads: int = 2, head_dim: int = 16):
    rng = np.random.default_rng(seed)
    width = heads * head_dim
    arrays = {"x": _rand(rng, batch, length, width)}
    for name in "qkv":
        arrays["w" + name] = _rand(rng, width, width, scale=0.2)
        arrays["b" + name] = _rand(rng, width)
    return arrays, (batch, length, heads, head_dim)


def _attention(lib, t: dict, dims: tuple, linear) -> "object":
    batch, length, heads, head_dim = dims
    q, k, v = [linear(t["x"], t["w" + n], t["b" + n]).reshape(batch, length, heads, head_dim)
               .permute(0, 2, 1, 3) for n in "qkv"]
    scores = (q @ k.transpose(-2, -1)) * (1.0 / np.sqrt(head_dim))
    weights = scores.softmax(-1)
    return (weights @ v).permute(0, 2, 1, 3).reshape(batch, length, heads * head_dim)


@pytest.mark.parametrize("grad_mode", [True, False])
def test_attention_matches_torch_and_k_is_computed_in_its_own_layout(grad_mode):
    arrays, dims = _attention_inputs()
    ours_t = {k: lt.tensor(v).realize() for k, v in arrays.items()}
    theirs_t = {k: torch.from_numpy(v) for k, v in arrays.items()}
    with lt.set_grad_enabled(grad_mode):
        out = _attention(lt, ours_t, dims, lt.nn.functional.linear)
        kernels = _reduce_kernels(out)
        got = out.numpy()
    want = _attention(torch, theirs_t, dims, TF.linear).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # No reduce kernel stores its result with the innermost axis transposed (k.mT computed inside a
    # transposing copy would run the k projection across the grain); weights @ v's permute(0, 2, 1, 3)
    # keeps the head dim innermost and may stay fused.
    for kernel in kernels:
        root = kernel.ast
        while root.op is Op.RESHAPE:
            root = root.srcs[0]
        if root.op is Op.PERMUTE:
            assert root.arg[-1] == len(root.arg) - 1, kernel


def test_attention_gradients_match_torch():
    arrays, dims = _attention_inputs(seed=1, length=16)
    ours_t = {k: lt.tensor(v, requires_grad=True) for k, v in arrays.items()}
    theirs_t = {k: torch.tensor(v, requires_grad=True) for k, v in arrays.items()}
    _attention(lt, ours_t, dims, lt.nn.functional.linear).square().sum().backward()
    _attention(torch, theirs_t, dims, TF.linear).square().sum().backward()
    for name in ("x", "wk", "bk", "wq"):
        np.testing.assert_allclose(ours_t[name].grad.numpy(), theirs_t[name].grad.numpy(),
                                   rtol=1e-3, atol=1e-3)


# ---- packed copies of stored weights under no_grad ----


def _linear_forward(layer: lt.nn.Linear, x: lt.Tensor) -> tuple[np.ndarray, int]:
    with lt.no_grad(), lt.count_kernels() as counter:
        out = layer(x).numpy()
    return out, counter.kernels


def _reference(layer: lt.nn.Linear, x: lt.Tensor) -> np.ndarray:
    return x.numpy() @ layer.weight.numpy().T + layer.bias.numpy()


def test_no_grad_linear_packs_its_weight_once():
    x = lt.randn(64, 48).realize()
    layer = lt.nn.Linear(48, 32)
    first, first_kernels = _linear_forward(layer, x)
    second, second_kernels = _linear_forward(layer, x)
    assert (first_kernels, second_kernels) == (2, 1)   # pack + matmul, then the matmul alone
    np.testing.assert_allclose(first, _reference(layer, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(second, first, rtol=0, atol=0)


def _in_place(update):
    def apply(layer: lt.nn.Linear) -> None:
        with lt.no_grad():
            update(layer.weight)
    return apply


def _sgd_step(layer: lt.nn.Linear) -> None:
    opt = lt.optim.SGD(layer.parameters(), lr=0.5)
    layer(lt.randn(4, 48)).sum().backward()
    opt.step()


UPDATES = {
    "mul_": _in_place(lambda w: w.mul_(-2.0)),
    "copy_": _in_place(lambda w: w.copy_(lt.randn(32, 48))),
    "setitem": _in_place(lambda w: w.__setitem__((slice(0, 5),), 7.0)),
    "load_state_dict": lambda layer: layer.load_state_dict({"weight": lt.randn(32, 48),
                                                            "bias": lt.randn(32)}),
    "optimizer_step": _sgd_step,
}


@pytest.mark.parametrize("update", UPDATES)
def test_updating_a_weight_never_reuses_its_stale_packed_copy(update):
    x = lt.randn(64, 48).realize()
    layer = lt.nn.Linear(48, 32)
    before, _ = _linear_forward(layer, x)
    UPDATES[update](layer)
    for _ in range(2):   # the first forward after the update, and one that may reuse its packed copy
        after, _ = _linear_forward(layer, x)
        np.testing.assert_allclose(after, _reference(layer, x), rtol=1e-5, atol=1e-5)
    assert np.abs(after - before).max() > 1e-3


def test_recorded_forward_keeps_packing_in_the_graph_so_the_weight_gets_its_gradient():
    rng = np.random.default_rng(3)
    x, w = _rand(rng, 64, 48), _rand(rng, 32, 48)
    ow = lt.tensor(w, requires_grad=True)
    with lt.no_grad():
        (lt.tensor(x) @ ow.T).numpy()    # an inference forward first: its packed copy must not leak in
    (lt.tensor(x) @ ow.T).square().sum().backward()
    tw = torch.tensor(w, requires_grad=True)
    (torch.from_numpy(x) @ tw.T).square().sum().backward()
    np.testing.assert_allclose(ow.grad.numpy(), tw.grad.numpy(), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("side", ["left", "right"])
def test_bias_of_a_matmul_read_by_another_matmul_is_added_once_in_its_kernel(side):
    """(x @ w + b) read inside a second matmul: the bias add is stored with the first matmul (its tiled
    epilogue), not recomputed for every read inside the second one's reduce."""
    from lazytensor.schedule import REASON_EPILOGUE
    rng = np.random.default_rng(7)
    x, w, b, u = _rand(rng, 48, 32), _rand(rng, 32, 64), _rand(rng, 64), _rand(rng, 48, 48)
    ox, ow, ob, ou = (lt.tensor(a).realize() for a in (x, w, b, u))
    first = ox @ ow + ob
    out = first.T @ ou if side == "left" else ou @ first
    items = out.schedule()
    assert [item.reason for item in items].count(REASON_EPILOGUE) == 1
    assert "add" not in items[-1].fused_ops
    tx, tw, tb, tu = (torch.from_numpy(a) for a in (x, w, b, u))
    want = ((tx @ tw + tb).T @ tu) if side == "left" else (tu @ (tx @ tw + tb))
    np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-4, atol=1e-3)


# ---- a transposed left operand (a weight gradient's gᵀ) is copied row-major ----

def _copies_of(items: list, shape: tuple[int, ...]) -> list:
    return [item for item in items if item.kind == "kernel" and item.reason.startswith("user asked")
            and tuple(item.output.shape) == shape]


@pytest.mark.parametrize("m,k,n", [(512, 128, 784), (16, 7, 128), (127, 1023, 130), (64, 1, 256)])
def test_transposed_left_operand_is_copied_row_major_and_matches_numpy(m, k, n):
    from lazytensor.tensor_linalg import LEFT_COPY_MIN_COLUMNS
    rng = np.random.default_rng(m + k)
    g, x = _rand(rng, k, m), _rand(rng, k, n)
    og, ox = lt.tensor(g).realize(), lt.tensor(x).realize()
    out = og.T @ ox
    copied = _copies_of(out.schedule(), (m, k))
    assert len(copied) == (1 if k > 1 and n >= LEFT_COPY_MIN_COLUMNS else 0)
    np.testing.assert_allclose(out.numpy(), g.T @ x, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("n", [8, 127])
def test_few_output_columns_leave_the_transposed_left_operand_in_place(n):
    rng = np.random.default_rng(n)
    g, x = _rand(rng, 64, 48), _rand(rng, 64, n)
    out = lt.tensor(g).realize().T @ lt.tensor(x).realize()
    assert not _copies_of(out.schedule(), (48, 64))
    np.testing.assert_allclose(out.numpy(), g.T @ x, rtol=1e-4, atol=1e-4)


def test_mlp_weight_gradient_computes_the_masked_gradient_once_and_matches_torch():
    """Linear(784→64) → ReLU → Linear(64→10): the hidden layer's masked gradient g feeds its weight
    gradient (gᵀ @ x, copied row-major) and its bias gradient (g summed): g is computed in one kernel."""
    rng = np.random.default_rng(5)
    x, w1, b1, w2 = _rand(rng, 32, 784), _rand(rng, 64, 784, scale=0.05), _rand(rng, 64), _rand(rng, 10, 64)
    ours = [lt.tensor(a, requires_grad=True) for a in (w1, b1, w2)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (w1, b1, w2)]
    ox = lt.tensor(x).realize()
    lt.nn.functional.linear(lt.nn.functional.linear(ox, ours[0], ours[1]).relu(), ours[2]).square().sum().backward()
    TF.linear(TF.linear(torch.from_numpy(x), theirs[0], theirs[1]).relu(), theirs[2]).square().sum().backward()
    items = [item for item in lt.Tensor.schedule(ours[0].grad + ours[1].grad.unsqueeze(1)) if item.kind == "kernel"]
    selects = [item for item in items if "where" in item.fused_ops]
    assert len(selects) == 2   # relu in the forward, once; the mask of g = relu' · (upstream @ w2), once
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-3, atol=1e-3)


# ---- the matmul graph built from nodes is the graph the tensor ops record ----

@pytest.mark.parametrize("shapes", [((64, 48), (48, 32)), ((3, 20, 7), (7, 16)), ((2, 1, 5, 9), (4, 9, 33)),
                                    ((17, 1), (1, 64)), ((40, 8), (8, 10))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_nodes_are_the_nodes_tensor_ops_record(shapes, dtype):
    """tensor_linalg._matmul_node builds the product and sum without tensor ops (their checks cost
    more than the nodes); it must give exactly the nodes the tensor-op path records, so the scheduler,
    the schedule cache and autograd see one graph either way."""
    from lazytensor import tensor_linalg as TL
    rng = np.random.default_rng(len(shapes[0]))
    a, b = (lt.tensor(rng.standard_normal(s).astype(dtype)).realize() for s in shapes)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    width = TL._panel_width(b, a.shape[-2])
    columns = TL._reusable_packed_columns(b, width).node if width else None
    by_nodes = TL._matmul_node(a.node, b.node, columns, tuple(batch))
    by_ops = TL._matmul_by_tensor_ops(a, b, tuple(batch), width, "matmul")
    assert by_nodes is by_ops.node
    np.testing.assert_allclose((a @ b).numpy(), a.numpy() @ b.numpy(), rtol=1e-4, atol=1e-4)
