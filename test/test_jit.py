"""lt.jit: capture on the second call, replay afterwards — same results as running the function,
state updated in place, signature changes re-captured, and what cannot be replayed refused."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lazytensor as lt
import lazytensor.nn as nn
import lazytensor.nn.functional as F


def _arr(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_replay_gives_the_function_result_for_new_inputs():
    @lt.jit
    def f(a, b):
        return (a * b + a).relu().sum(1)

    for i in range(5):
        a, b = _arr(3, 4, seed=i), _arr(3, 4, seed=10 + i)
        got = f(lt.tensor(a), lt.tensor(b)).numpy()
        np.testing.assert_allclose(got, np.maximum(a * b + a, 0).sum(1), rtol=1e-6, atol=1e-6)
    assert len(f.replays) == 1


def test_replay_launches_kernels_without_scheduling():
    @lt.jit
    def f(a):
        return (a.exp() + 1).sum()

    x = lt.tensor(_arr(8, 8))
    f(x), f(x)
    with lt.count_kernels() as k:
        out = f(lt.tensor(_arr(8, 8, seed=3)))
    assert k.kernels >= 1
    np.testing.assert_allclose(out.item(), (np.exp(_arr(8, 8, seed=3)) + 1).sum(), rtol=1e-5)


def test_outputs_of_earlier_calls_are_not_overwritten():
    @lt.jit
    def f(a):
        return a * 2, (a + 1).sum()

    outs = [f(lt.tensor(np.full(4, float(i), np.float32))) for i in range(4)]
    for i, (double, total) in enumerate(outs):
        np.testing.assert_array_equal(double.numpy(), np.full(4, 2.0 * i, np.float32))
        assert total.item() == 4 * (i + 1)


def test_nested_structures_and_non_tensor_arguments():
    @lt.jit
    def f(inputs, scale):
        return {"y": inputs[0] * scale + inputs[1], "n": 7}

    for i in range(4):
        a, b = _arr(5, seed=i), _arr(5, seed=i + 1)
        out = f((lt.tensor(a), lt.tensor(b)), 3.0)
        np.testing.assert_allclose(out["y"].numpy(), a * 3 + b, rtol=1e-6)
        assert out["n"] == 7
    out = f((lt.tensor(a), lt.tensor(b)), 2.0)   # another value: its own capture
    np.testing.assert_allclose(out["y"].numpy(), a * 2 + b, rtol=1e-6)


def test_a_new_shape_is_captured_separately():
    @lt.jit
    def f(a):
        return a.sum(0)

    for n in (3, 3, 3, 5, 5, 5, 3):
        x = _arr(n, 2, seed=n)
        np.testing.assert_allclose(f(lt.tensor(x)).numpy(), x.sum(0), rtol=1e-6)
    assert len(f.replays) == 2


def test_state_updated_in_place_follows_every_replay():
    counter = lt.zeros(3)

    @lt.jit
    def step(x):
        counter.add_(x)
        return counter * 1

    for i in range(5):
        out = step(lt.ones(3))
        np.testing.assert_array_equal(out.numpy(), np.full(3, i + 1.0, np.float32))
    np.testing.assert_array_equal(counter.numpy(), np.full(3, 5.0, np.float32))


def test_training_step_matches_torch():
    torch.manual_seed(0)
    ref = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    with lt.no_grad():
        for ours, theirs in zip(model.parameters(), ref.parameters()):
            ours.copy_(lt.tensor(theirs.detach().numpy()))
    opt = lt.optim.Adam(model.parameters(), lr=1e-2)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-2)

    @lt.jit
    def train_step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    rng = np.random.default_rng(1)
    for _ in range(6):
        x = rng.standard_normal((5, 6)).astype(np.float32)
        y = rng.integers(0, 3, 5)
        loss = train_step(lt.tensor(x), lt.tensor(y))
        ref_opt.zero_grad()
        ref_loss = torch.nn.functional.cross_entropy(ref(torch.tensor(x)), torch.tensor(y))
        ref_loss.backward()
        ref_opt.step()
        np.testing.assert_allclose(loss.item(), ref_loss.item(), rtol=1e-5, atol=1e-6)
    assert len(train_step.replays) == 1
    for ours, theirs in zip(model.parameters(), ref.parameters()):
        np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_host_reads_inside_are_refused():
    @lt.jit
    def f(a):
        return a * 2 if a.sum().item() > 0 else a

    x = lt.ones(2)
    f(x)
    with pytest.raises(lt.JitError, match="reads tensor values on the host"):
        f(x)


def test_random_numbers_inside_are_refused():
    @lt.jit
    def f(a):
        return a + lt.rand(2)

    x = lt.ones(2)
    f(x)
    with pytest.raises(lt.JitError, match="random numbers"):
        f(x)


def test_updating_an_argument_in_place_is_refused():
    @lt.jit
    def f(a):
        a.mul_(2)
        return a.sum()

    f(lt.ones(2))
    with pytest.raises(lt.JitError, match="updates one of its tensor arguments"):
        f(lt.ones(2))


def test_unhashable_argument_is_refused():
    @lt.jit
    def f(a, table):
        return a

    with pytest.raises(lt.JitError, match="not hashable"):
        f(lt.ones(1), np.ones(2))


def test_kernel_errors_still_raise_on_replay():
    @lt.jit
    def f(t, idx):
        return t[idx]

    t = lt.arange(4.0)
    f(t, lt.tensor([0, 1])), f(t, lt.tensor([2, 3]))
    np.testing.assert_array_equal(f(t, lt.tensor([3, 0])).numpy(), [3.0, 0.0])
    with pytest.raises(IndexError, match="out of bounds"):
        f(t, lt.tensor([9, 0]))


def _linear_and_input(seed: int = 0) -> tuple[nn.Linear, lt.Tensor]:
    lt.manual_seed(seed)
    layer = nn.Linear(64, 32)       # 16 rows: the matmul packs the stored weight (cached under no_grad)
    x = lt.tensor(np.random.default_rng(seed).random((16, 64), dtype=np.float32))
    return layer, x


def _expected(layer: nn.Linear, x: lt.Tensor) -> np.ndarray:
    return x.numpy() @ layer.weight.numpy().T + layer.bias.numpy()


WEIGHT_CHANGES = {
    "load_state_dict": lambda layer: layer.load_state_dict(
        {"weight": lt.tensor(np.full((32, 64), 0.5, np.float32)), "bias": layer.bias.detach()}),
    "in-place under no_grad": lambda layer: _in_place(layer, lambda w: w.mul_(2)),
    "copy_": lambda layer: _in_place(layer, lambda w: w.copy_(lt.ones(32, 64))),
    "optimizer step outside": lambda layer: _sgd_step(layer),
}


def _in_place(layer: nn.Linear, update) -> None:
    with lt.no_grad():
        update(layer.weight)


def _sgd_step(layer: nn.Linear) -> None:
    opt = lt.optim.SGD(layer.parameters(), lr=0.5)
    layer(lt.ones(2, 64)).sum().backward()
    opt.step()


@pytest.mark.parametrize("change", list(WEIGHT_CHANGES), ids=list(WEIGHT_CHANGES))
def test_a_weight_changed_outside_is_not_replayed_stale(change):
    """A replay reads weights as fixed buffers; a weight given a new value outside the call (loading,
    in-place update, an optimizer step outside the jitted function) makes the next call capture again."""
    layer, x = _linear_and_input()

    @lt.jit
    def forward(inp):
        with lt.no_grad():
            return layer(inp)

    for _ in range(3):
        np.testing.assert_allclose(forward(x).numpy(), _expected(layer, x), rtol=1e-5, atol=1e-5)
    WEIGHT_CHANGES[change](layer)
    for _ in range(3):
        np.testing.assert_allclose(forward(x).numpy(), _expected(layer, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
def test_an_argument_packed_before_the_capture_is_packed_anew_on_every_replay(grad):
    """x @ y with y a stored matrix keeps a packed copy of y (tensor_linalg._PACKED). When y is an
    argument of a jitted function, a replay passes new data in its place: the packing must stay in the
    record, or every replay would read the copy of the data seen first."""
    w = lt.tensor(_arr(64, 64, seed=1))
    args = [lt.tensor(_arr(64, 64, seed=s)) for s in (2, 3, 4)]

    def f(y):
        return w @ y

    with lt.set_grad_enabled(grad):
        f(args[0]).numpy()                     # eager: packs args[0] and keeps the copy
        jitted = lt.jit(f)
        for y in (args[0], args[0], args[1], args[2], args[0]):
            np.testing.assert_allclose(jitted(y).numpy(), w.numpy() @ y.numpy(), rtol=1e-5, atol=1e-4)


def test_a_packed_copy_of_a_tensor_the_function_updates_is_refused():
    """The packed copy of w was made outside the call (an eager x @ w); the function then updates w in
    place, so a replay would keep multiplying by w's first value: the capture refuses it clearly."""
    w = lt.tensor(_arr(64, 64, seed=1))
    x = lt.tensor(_arr(64, 64, seed=2))

    @lt.jit
    def f(inp):
        y = (inp @ w).realize()
        w.add_(1).realize()
        return y

    with lt.no_grad():
        f(x)
        (x @ w).realize()                      # packs w's current value, outside any call
        with pytest.raises(lt.JitError, match="packed copy"):
            f(x)


def test_a_superseded_buffer_still_read_elsewhere_is_captured_once():
    """w2 shares w's old buffer; after w changes, a function reading w2 captures again once, then replays."""
    layer, x = _linear_and_input()
    kept = layer.weight.detach()          # shares the buffer the update below supersedes

    @lt.jit
    def through_kept(inp):
        return inp @ kept.T

    for _ in range(3):
        through_kept(x)
    _in_place(layer, lambda w: w.mul_(2))
    for _ in range(4):
        np.testing.assert_allclose(through_kept(x).numpy(), x.numpy() @ kept.numpy().T, rtol=1e-5, atol=1e-5)
    replay = next(iter(through_kept.replays.values()))
    assert replay.is_current()            # checked once after the update, then current again


# ---- the one-call replay (jit.ReplaySequence): every launch of a CPU replay through one C driver ----

def _sgd_step_fn(seed: int):
    lt.manual_seed(seed)
    model = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = lt.optim.Adam(model.parameters(), lr=1e-2)

    @lt.jit
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step, model


def test_one_call_replay_matches_kernel_by_kernel_replay_bit_for_bit(monkeypatch):
    monkeypatch.setattr(lt.Device, "DEFAULT", "CPU")   # one-call replays are CPU-only (CPUSequence)
    x = lt.tensor(_arr(9, 12))
    y = lt.tensor(np.arange(9) % 3)
    fast, fast_model = _sgd_step_fn(0)
    slow, slow_model = _sgd_step_fn(0)
    for _ in range(3):
        fast(x, y), slow(x, y)
    (fast_replay,), (slow_replay,) = fast.replays.values(), slow.replays.values()
    assert fast_replay.sequence is not None
    slow_replay.sequence = None                      # the launch-by-launch path
    for _ in range(4):
        a, b = fast(x, y), slow(x, y)
        assert a.item() == b.item()
    for p, q in zip(fast_model.parameters(), slow_model.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_a_profiler_sees_every_launch_of_a_replay():
    x = lt.tensor(_arr(9, 12))
    y = lt.tensor(np.arange(9) % 3)
    step, _ = _sgd_step_fn(1)
    for _ in range(3):
        step(x, y)
    (replay,) = step.replays.values()
    launches = sum(1 for rs in replay.steps if rs.kernel is not None and rs.step.numel)
    with lt.count_kernels() as counter:
        step(x, y)
    assert counter.kernels == launches > 1


def test_an_error_in_a_middle_kernel_of_a_one_call_replay_raises_and_the_next_call_works(monkeypatch):
    monkeypatch.setattr(lt.Device, "DEFAULT", "CPU")   # one-call replays are CPU-only (CPUSequence)
    @lt.jit
    def f(t, idx):
        a = (t * 2).contiguous()
        return a[idx] + 1

    t = lt.arange(5.0)
    f(t, lt.tensor([0, 1])), f(t, lt.tensor([2, 3]))
    (replay,) = f.replays.values()
    assert replay.sequence is not None and len(replay.sequence.kernels) >= 2
    with pytest.raises(IndexError, match="out of bounds"):
        f(t, lt.tensor([7, 0]))
    np.testing.assert_array_equal(f(t, lt.tensor([4, 1])).numpy(), [9.0, 3.0])


def test_one_call_replays_from_two_threads():
    import threading

    @lt.jit
    def f(a, b):
        return (a * b + 1).sum(0), a - b

    arrays = [(_arr(64, 8, seed=s), _arr(64, 8, seed=s + 10)) for s in range(4)]
    f(lt.tensor(arrays[0][0]), lt.tensor(arrays[0][1])), f(lt.tensor(arrays[0][0]), lt.tensor(arrays[0][1]))
    failures: list[str] = []

    def worker(k: int) -> None:
        a, b = arrays[k]
        for _ in range(30):
            s, d = f(lt.tensor(a), lt.tensor(b))
            if not (np.allclose(s.numpy(), (a * b + 1).sum(0), rtol=1e-5) and np.array_equal(d.numpy(), a - b)):
                failures.append(f"thread {k}")
                return

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not failures
