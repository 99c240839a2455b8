"""The small-op fast paths (issue 4: overhead) and skipping random init when weights are loaded (issue 7).

Each fast path must give what the general path gives: checked against an independent reference
(PyTorch, NumPy, or the plain toposort-based description of a graph), never against itself.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import lazytensor as lt
from lazytensor import autograd, dtypes
from lazytensor import graph as g
from lazytensor.ops import Op
from lazytensor.schedule import REALIZED
from lazytensor.schedule_cache import structure_key

realize_module = sys.modules["lazytensor.realize"]   # `lt.realize` is the function of the same name


def reference_structure_key(roots: list) -> tuple:
    """The structure key spelled out the slow, obvious way: g.toposort, leaves numbered in order."""
    order = g.toposort(roots, stop=lambda n: n.op is Op.BUFFER or n in REALIZED)
    position = {id(n): i for i, n in enumerate(order)}
    entries, buffers = [], []
    for n in order:
        if n.op is Op.BUFFER or n in REALIZED:
            entries.append(("input", len(buffers), n.dtype, n.shape))
            buffers.append(n.arg if n.op is Op.BUFFER else REALIZED[n])
        else:
            srcs = tuple(position[id(s)] for s in n.srcs)
            entries.append((n.op, n.dtype, n.shape, g._arg_key(n.arg), srcs))
    return (tuple(entries), tuple(position[id(r)] for r in roots)), buffers


def _graphs() -> dict[str, list[lt.Tensor]]:
    rng = np.random.default_rng(0)
    a = lt.tensor(rng.standard_normal((3, 4)).astype(np.float32)).realize()
    b = lt.tensor(rng.standard_normal((4,)).astype(np.float32)).realize()
    shared = (a * b).exp()
    return {
        "add-sum": [(a + a).sum()],
        "broadcast": [(a + b).max(dim=0).values],
        "diamond": [shared + shared.sum(dim=1, keepdim=True)],
        "two roots": [shared.sum(), (shared - 1.5).mean(dim=1)],
        "negative zero const": [a * -0.0 + 0.0],
        "nan const": [lt.where(a > 0, a, float("nan"))],
        "permute pad": [lt.nn.functional.pad(a.permute(1, 0), (1, 2)).softmax(-1)],
    }


@pytest.mark.parametrize("name", list(_graphs()))
def test_structure_key_matches_reference(name):
    roots = [t.node for t in _graphs()[name]]
    key, buffers = structure_key(roots)
    ref_key, ref_buffers = reference_structure_key(roots)
    assert key == ref_key
    assert [id(x) for x in buffers] == [id(x) for x in ref_buffers]


def test_structure_key_counts_realized_intermediates_as_inputs():
    a = lt.tensor(np.arange(6, dtype=np.float32).reshape(2, 3)).realize()
    mid = (a * 2).exp()
    mid.realize()
    out = mid.sum()
    key, buffers = structure_key([out.node])
    assert key == reference_structure_key([out.node])[0]
    assert ("input", 0, lt.float32, (2, 3)) in key[0] and len(buffers) == 1


def test_structure_key_tells_constants_apart():
    a = lt.ones(3).realize()
    k_pos, _ = structure_key([(a * 0.0).node])
    k_neg, _ = structure_key([(a * -0.0).node])
    k_axes0, _ = structure_key([lt.ones(2, 3).realize().sum(0).node])
    k_axes1, _ = structure_key([lt.ones(2, 3).realize().sum(1).node])
    assert k_pos != k_neg and k_axes0 != k_axes1


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int32", "bool"])
@pytest.mark.parametrize("shape", [(), (1,), (2, 2), (7, 3), (0, 3)])
def test_same_shape_binary_and_sum_match_torch(dtype, shape):
    rng = np.random.default_rng(1)
    x = np.asarray(rng.standard_normal(shape) * 3).astype(dtype)
    y = np.asarray(rng.standard_normal(shape) * 3).astype(dtype)
    a, b = lt.tensor(x), lt.tensor(y)
    ta, tb = torch.tensor(x), torch.tensor(y)
    if dtype != "bool":
        np.testing.assert_allclose((a + b).numpy(), (ta + tb).numpy(), rtol=1e-3)
        np.testing.assert_allclose((a * b).numpy(), (ta * tb).numpy(), rtol=1e-3)
    got, want = (a + b).sum(), (ta + tb).sum()
    assert got.dtype.name == str(want.dtype).removeprefix("torch.")
    np.testing.assert_allclose(got.numpy().astype(np.float64), want.numpy().astype(np.float64), rtol=1e-2)
    assert (a + b).sum().item() == pytest.approx(want.item(), rel=1e-2)


def test_same_shape_fast_path_keeps_autograd_and_no_grad():
    x = np.array([[1.0, -2.0], [3.0, 0.5]], dtype=np.float32)
    y = np.array([[0.5, 4.0], [-1.0, 2.0]], dtype=np.float32)
    a, b = lt.tensor(x, requires_grad=True), lt.tensor(y, requires_grad=True)
    ta, tb = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    ((a + b) * a).sum().backward()
    ((ta + tb) * ta).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy())
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy())
    with lt.no_grad():
        assert not (a + b).requires_grad and not (a + b).sum().requires_grad
    assert (a + b).requires_grad and (a + b).sum().requires_grad


def test_repeated_small_op_reuses_plan_and_is_right_each_time():
    rng = np.random.default_rng(2)
    misses_before = realize_module.PLANS.misses
    for _ in range(20):
        x, y = rng.standard_normal((2, 2)).astype(np.float32), rng.standard_normal((2, 2)).astype(np.float32)
        got = (lt.tensor(x) + lt.tensor(y)).sum().item()
        assert got == pytest.approx(float((torch.tensor(x) + torch.tensor(y)).sum()), rel=1e-6)
    assert realize_module.PLANS.misses - misses_before <= 1


def test_small_buffers_reused_from_the_pool_never_alias_live_values():
    """Freed small blocks are handed out again; values still held must not change."""
    rng = np.random.default_rng(3)
    kept, expected = [], []
    for i in range(200):
        x = rng.standard_normal(3).astype(np.float32)
        t = (lt.tensor(x) * 2 + 1).realize()
        if i % 3 == 0:
            kept.append(t)
            expected.append(x * 2 + 1)
    for t, want in zip(kept, expected):
        np.testing.assert_allclose(t.numpy(), want, rtol=1e-6)


def test_kernel_error_does_not_leak_into_later_launches():
    """The error slots are one array shared by every launch: a raised error must leave them clean."""
    x = lt.tensor(np.arange(4, dtype=np.float32))
    bad = lt.tensor(np.array([0, 9]))
    for _ in range(2):
        with pytest.raises(IndexError, match="out of bounds"):
            x.gather(0, bad).numpy()
        np.testing.assert_array_equal(x.gather(0, lt.tensor(np.array([3, 1]))).numpy(), [3.0, 1.0])


# ---- skipping random init when weights are loaded (issue 7) ----

def test_no_init_draws_no_random_numbers_and_runs_no_kernels():
    lt.manual_seed(5)
    with lt.count_kernels() as k, lt.nn.init.no_init():
        lt.nn.Linear(8, 4)
        lt.nn.Embedding(10, 3)
        lt.nn.Conv2d(2, 3, 3)
        lt.nn.MultiheadAttention(8, 2)
        lt.nn.LSTM(4, 5)
    after_build = lt.rand(5).numpy()
    lt.manual_seed(5)
    np.testing.assert_array_equal(after_build, lt.rand(5).numpy())   # the generator did not move
    assert k.kernels == 0


def test_no_init_is_scoped_and_initializers_work_after_it():
    with lt.nn.init.no_init():
        pass
    w = lt.nn.init.constant_(lt.empty(3), 2.5)
    np.testing.assert_array_equal(w.numpy(), [2.5, 2.5, 2.5])
    with pytest.raises(RuntimeError), lt.nn.init.no_init():
        raise RuntimeError("leaves the block")
    np.testing.assert_array_equal(lt.nn.init.ones_(lt.empty(2)).numpy(), [1.0, 1.0])


def test_skip_init_then_load_matches_torch():
    torch.manual_seed(0)
    ref = torch.nn.Linear(6, 3)
    ours = lt.nn.utils.skip_init(lt.nn.Linear, 6, 3)
    assert isinstance(ours, lt.nn.Linear) and tuple(ours.weight.shape) == (3, 6) and ours.weight.requires_grad
    ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    x = np.random.default_rng(4).standard_normal((5, 6)).astype(np.float32)
    np.testing.assert_allclose(ours(lt.tensor(x)).numpy(), ref(torch.tensor(x)).detach().numpy(), rtol=1e-5,
                               atol=1e-6)


def test_kernel_errors_stay_in_their_thread():
    """Each thread has its own error slots: a failing kernel in one never fails another's launch."""
    import threading
    x = lt.tensor(np.arange(4, dtype=np.float32)).realize()
    good, bad = lt.tensor(np.array([3, 1])).realize(), lt.tensor(np.array([0, 9])).realize()
    problems: list[str] = []

    def failing() -> None:
        for _ in range(30):
            try:
                x.gather(0, bad).numpy()
                problems.append("out-of-range gather did not raise")
            except IndexError:
                pass

    def working() -> None:
        for _ in range(30):
            try:
                if x.gather(0, good).numpy().tolist() != [3.0, 1.0]:
                    problems.append("wrong values")
            except IndexError as e:
                problems.append(f"spurious error: {e}")

    threads = [threading.Thread(target=failing), threading.Thread(target=working)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert problems == []


def test_repeated_random_draws_reuse_one_kernel():
    """The generator's counter is data, not a constant in the kernel: the next draw of the same shape
    runs the same compiled kernel, and still gives new numbers."""
    from lazytensor.runtime.device import get_runtime
    runtime = get_runtime("CPU")
    first = lt.rand(33, 7).numpy()
    before = runtime.compiles
    later = [lt.rand(33, 7).numpy() for _ in range(3)]
    assert runtime.compiles == before
    assert all(not np.array_equal(first, x) for x in later)
    assert not np.array_equal(later[0], later[1])


# ---- issue 4, eager overhead: memoized requires-grad answers, one-walk backward, cheap scalars ----

def reference_needs_grad(node) -> bool:
    """needs_grad spelled out without any memo: does a path avoiding DETACH reach a registered leaf?"""
    stack, seen = [node], set()
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if n in autograd.LEAVES:
            return True
        if n.op is not Op.DETACH:
            stack.extend(n.srcs)
    return False


class _Owner:
    """Stands for the tensor that owns a leaf (LEAVES holds owners weakly)."""


def test_needs_grad_memo_follows_every_leaf_change():
    """Random graphs over a few buffers; leaves are registered and unregistered (buffers and lazy
    nodes, as requires_grad_() and optimizer steps do) between questions about every node."""
    rng = np.random.default_rng(3)
    base = [lt.tensor(rng.standard_normal(3).astype(np.float32)).realize() for _ in range(4)]
    nodes = [t.node for t in base]
    for _ in range(40):   # a random DAG of elementwise ops, some detached
        a, b = (nodes[i] for i in rng.integers(0, len(nodes), size=2))
        n = g.binary(Op.ADD if rng.random() < 0.5 else Op.MUL, a, b)
        nodes.append(g.detach(n) if rng.random() < 0.15 else n)
    owners = [_Owner() for _ in nodes]   # LEAVES holds its values weakly: keep them alive here
    registered: set[int] = set()
    try:
        for _ in range(30):
            k = int(rng.integers(0, len(nodes)))
            if k in registered:
                autograd.unregister_leaf(nodes[k])
                registered.discard(k)
            else:
                autograd.register_leaf(nodes[k], owners[k])
                registered.add(k)
            for n in rng.permutation(len(nodes)):   # ask in random order: partial walks meet old answers
                assert autograd.needs_grad(nodes[n]) == reference_needs_grad(nodes[n])
    finally:
        for k in registered:
            autograd.unregister_leaf(nodes[k])


def test_requires_grad_follows_requires_grad_after_the_op():
    """A result asked before its input became a leaf is asked again after (the memo is not stale)."""
    x = lt.tensor([1.0, 2.0])
    y = x * 3 + 1
    assert not y.requires_grad
    x.requires_grad_()
    assert y.requires_grad
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])
    x.requires_grad_(False)
    assert not (x * 3 + 1).requires_grad


def test_backward_one_walk_matches_torch_with_shared_and_detached_paths():
    rng = np.random.default_rng(4)
    xs, ws = rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal((3, 2)).astype(np.float32)
    ours_x, ours_w = lt.tensor(xs, requires_grad=True), lt.tensor(ws, requires_grad=True)
    torch_x, torch_w = torch.tensor(xs, requires_grad=True), torch.tensor(ws, requires_grad=True)
    for x, w, mod in ((ours_x, ours_w, lt), (torch_x, torch_w, torch)):
        h = (x @ w).relu()
        out = (h * h.detach() + mod.exp(h) * x.sum()).mean()
        out.backward()
    np.testing.assert_allclose(ours_x.grad.numpy(), torch_x.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours_w.grad.numpy(), torch_w.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_gradients_of_every_leaf_equal_gradients_of_listed_leaves():
    x = lt.tensor([0.5, -1.5, 2.0], requires_grad=True)
    w = lt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    out = ((x * w).exp() + x).sum().node
    seed = g.const(1.0, out.dtype, out.shape)
    listed = autograd.gradients(out, seed, autograd.leaf_nodes_under(out))
    every = autograd.gradients(out, seed)
    assert set(every) == set(listed) == {x.node, w.node}
    for node in listed:
        assert every[node] is listed[node]   # hash-consed: equal graphs are the same node


@pytest.mark.parametrize("value", [0.1, -0.0, 1e-46, 1e-40, 3.4028235e38, 3.4028236e38, 1e39, -1e39,
                                   float("inf"), float("nan"), 7, -(2 ** 70), True, np.float64(0.3)])
def test_float32_constants_round_like_numpy(value):
    got = dtypes.cast_scalar(value, dtypes.float32)
    with np.errstate(over="ignore"):
        want = float(np.array(value, dtype=np.float64).astype(np.float32))
    assert repr(got) == repr(want)   # (repr tells -0.0 from 0.0 and shows nan)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("scalar", [2, -3, 0.1, -0.0, 1e4])
def test_python_number_fast_path_matches_torch(dtype, scalar):
    data = torch.tensor([[1.5, -2.25, 0.0], [3.0, 1e-3, -7.5]]).to(dtype)
    ours = lt.tensor(data.float().numpy()).to(getattr(lt, str(dtype).split(".")[1]))
    for fn in (lambda t: t * scalar, lambda t: scalar - t, lambda t: t + scalar, lambda t: scalar / (t + 10)):
        got, want = fn(ours), fn(data)
        assert got.dtype.name == str(want.dtype).split(".")[1]
        assert tuple(got.shape) == tuple(want.shape)
        # (the stored values: a fused .float() would skip the 16-bit rounding, a separate known issue)
        np.testing.assert_allclose(np.asarray(got.numpy(), dtype=np.float32), want.float().numpy(),
                                   rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.0, 0.99), (0.5, 0.9)])
def test_adam_bias_corrections_match_torch_over_steps(betas):
    """Adam's beta ** t is exp2(t · log2 beta) on the device: the updates track torch's step for step."""
    rng = np.random.default_rng(5)
    w0, x = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((6, 4)).astype(np.float32)
    ours, theirs = lt.tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    opt_ours = lt.optim.Adam([ours], lr=0.05, betas=betas)
    opt_theirs = torch.optim.Adam([theirs], lr=0.05, betas=betas)
    for _ in range(12):
        for w, opt, mod in ((ours, opt_ours, lt), (theirs, opt_theirs, torch)):
            opt.zero_grad()
            (mod.tensor(x) @ w).tanh().pow(2).sum().backward()
            opt.step()
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-4, atol=1e-5)
