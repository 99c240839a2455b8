"""expansion_templates: a math expansion re-instantiated from its template is the very graph (the same
hash-consed nodes) that building it through the tensor ops gives, for every kind of input node, dtype,
grad mode and device; so values and gradients cannot differ. And the template is what later calls use."""
from __future__ import annotations

import numpy as np
import pytest

import lazytensor as lt
import lazytensor.tensor_elementwise as TE
from lazytensor import expansion_templates as ET

FUNCTIONS = {
    "exp": lambda t: t.exp(),
    "expm1": lambda t: t.expm1(),
    "log": lambda t: t.log(),
    "log1p": lambda t: t.log1p(),
    "sigmoid": lambda t: t.sigmoid(),
    "logsigmoid": lambda t: lt.nn.functional.logsigmoid(t),
    "silu": lambda t: t.silu(),
    "mish": lambda t: t.mish(),
    "gelu": lambda t: t.gelu(),
    "gelu_tanh": lambda t: t.gelu(approximate="tanh"),
    "tanh": lambda t: t.tanh(),
    "sinh": lambda t: t.sinh(),
    "cosh": lambda t: t.cosh(),
    "asinh": lambda t: t.asinh(),
    "erf": lambda t: t.erf(),
    "erfc": lambda t: t.erfc(),
    "atan": lambda t: t.atan(),
    "asin": lambda t: t.asin(),
    "tan": lambda t: t.tan(),
    "elu": lambda t: t.elu(0.7),
    "selu": lambda t: t.selu(),
    "celu": lambda t: t.celu(1.3),
    "softplus": lambda t: t.softplus(beta=2.0, threshold=5.0),
    "round2": lambda t: t.round(decimals=2),
    "rsqrt": lambda t: t.rsqrt(),
}

INPUTS = {
    "stored": lambda: lt.randn(3, 5).realize(),
    "computed": lambda: lt.randn(3, 5).realize() * 2 + 1,
    "transposed view": lambda: lt.randn(5, 3).realize().T,
    "leaf requiring grad": lambda: lt.randn(3, 5).realize().requires_grad_(),
    "0-d": lambda: lt.randn(()).realize(),
    "size 0": lambda: lt.randn(0, 4).realize(),
    "constant": lambda: lt.full((2, 3), 0.25),
    "int": lambda: lt.arange(6).reshape(2, 3),
    "float16": lambda: lt.randn(4).realize().half(),
    "bfloat16": lambda: lt.randn(4).realize().to(lt.bfloat16),
    "float64": lambda: lt.randn(4, dtype=lt.float64).realize(),
}


def _direct(fn, x, monkeypatch):
    """fn(x) built through the tensor ops, with no template."""
    with monkeypatch.context() as m:
        m.setattr(TE, "expand_cached", lambda f, t: f(t))
        return fn(x)


@pytest.mark.parametrize("grad", [True, False], ids=["grad", "no_grad"])
@pytest.mark.parametrize("kind", list(INPUTS))
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_template_gives_the_same_graph_as_the_tensor_ops(name, kind, grad, monkeypatch):
    fn = FUNCTIONS[name]
    x = INPUTS[kind]()
    ET._TEMPLATES.clear()
    with lt.set_grad_enabled(grad):
        first = fn(x)            # builds the template (and uses it)
        again = fn(x)            # instantiates it
        want = _direct(fn, x, monkeypatch)
    assert first.node is want.node
    assert again.node is want.node
    assert first.requires_grad == want.requires_grad


def test_later_calls_instantiate_without_running_the_expansion(monkeypatch):
    calls = []
    real = TE._exp

    def counting(t):
        calls.append(1)
        return real(t)

    monkeypatch.setattr(TE, "_exp", counting)
    ET._TEMPLATES.clear()
    a, b = lt.randn(4, 6).realize(), lt.randn(4, 6).realize()
    a.sigmoid()
    assert len(calls) == 1
    out = b.sigmoid()
    assert len(calls) == 1                                  # from the template
    np.testing.assert_allclose(out.numpy(), 1 / (1 + np.exp(-b.numpy())), rtol=1e-6, atol=1e-7)
    lt.randn(4, 7).realize().sigmoid()                      # another shape: a template of its own
    assert len(calls) == 2


def test_gradient_through_an_instantiated_template_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    data = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(2)]
    ET._TEMPLATES.clear()
    for value in data:   # the second one runs from the template
        x = lt.tensor(value, requires_grad=True)
        x.gelu().mul(x.tanh()).sum().backward()
        tx = torch.tensor(value, requires_grad=True)
        (torch.nn.functional.gelu(tx) * tx.tanh()).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_a_function_capturing_a_tensor_is_not_cached():
    x, other = lt.randn(3).realize(), lt.randn(3).realize()
    ET._TEMPLATES.clear()
    out = x._math_in(lambda t: t.exp() * other)
    np.testing.assert_allclose(out.numpy(), np.exp(x.numpy()) * other.numpy(), rtol=1e-6)
    assert [key[0][0] for key in ET._TEMPLATES] == [TE._exp.__code__]   # exp's own template only


def test_the_template_table_is_bounded(monkeypatch):
    monkeypatch.setattr(ET, "MAX_TEMPLATES", 4)
    ET._TEMPLATES.clear()
    for n in range(1, 10):
        lt.randn(n).realize().exp()
    assert len(ET._TEMPLATES) == 4


def test_templates_from_two_threads_give_correct_values(monkeypatch):
    """Two threads building and evicting templates at once (a table of 2 for 6 shapes) still get the
    right graphs."""
    import threading
    monkeypatch.setattr(ET, "MAX_TEMPLATES", 2)
    ET._TEMPLATES.clear()
    inputs = [lt.randn(n, 3).realize() for n in range(1, 7)]
    errors: list[BaseException] = []

    def work(order):
        try:
            for _ in range(5):
                for i in order:
                    out = inputs[i].sigmoid().numpy()
                    np.testing.assert_allclose(out, 1 / (1 + np.exp(-inputs[i].numpy())), rtol=1e-6, atol=1e-7)
        except BaseException as e:   # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=work, args=(order,)) for order in (range(6), range(5, -1, -1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
