"""lt.nn layers against torch.nn: activations, Linear/Bilinear/Embedding, dropout, Flatten, and nn.init.

Forward values and gradients (same upstream gradient) are compared with torch on the same inputs;
state_dicts are loaded both ways; initializers and dropout are checked by their statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lazytensor as lt
import lazytensor.nn as nn
import lazytensor.nn.functional as F
from lazytensor.nn import init

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RTOL, ATOL = 1e-5, 1e-6


def close(got, want, rtol=RTOL, atol=ATOL):
    w = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    g = got.numpy() if isinstance(got, lt.Tensor) else np.asarray(got)
    assert g.shape == w.shape, (g.shape, w.shape)
    np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True)


def pair(shape, low=-3.0, high=3.0, seed=0, dtype=np.float32):
    """The same random data as an lt leaf and a torch leaf (both requiring grad)."""
    a = np.random.default_rng(seed).uniform(low, high, shape).astype(dtype)
    return lt.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def backward_both(ours, theirs, seed=1):
    """Backpropagate the same random upstream gradient through both (before ours is realized: realizing
    a result replaces its graph by a buffer, so backward must come first)."""
    g = np.random.default_rng(seed).standard_normal(tuple(theirs.shape)).astype(np.float32)
    ours.backward(lt.tensor(g))
    theirs.backward(torch.tensor(g))


def load_torch_into_ours(ours, theirs):
    ours.load_state_dict(theirs.state_dict())


def load_ours_into_torch(ours, theirs):
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})


# ---- activations: function forms ----

ACTIVATIONS = [
    ("relu", {}),
    ("relu6", {}),
    ("leaky_relu", {}),
    ("leaky_relu", {"negative_slope": 0.2}),
    ("elu", {}),
    ("elu", {"alpha": 0.5}),
    ("selu", {}),
    ("celu", {"alpha": 2.0}),
    ("gelu", {}),
    ("gelu", {"approximate": "tanh"}),
    ("silu", {}),
    ("mish", {}),
    ("softplus", {}),
    ("softplus", {"beta": 2.0, "threshold": 1.0}),
    ("softsign", {}),
    ("hardtanh", {}),
    ("hardtanh", {"min_val": -0.5, "max_val": 2.0}),
    ("hardswish", {}),
    ("hardsigmoid", {}),
    ("sigmoid", {}),
    ("tanh", {}),
    ("logsigmoid", {}),
    ("softmax", {"dim": 1}),
    ("softmax", {"dim": 0}),
    ("log_softmax", {"dim": -1}),
    ("softmin", {"dim": 1}),
    ("glu", {}),
    ("glu", {"dim": 0}),
    ("threshold", {"threshold": 0.5, "value": -2.0}),
    ("tanhshrink", {}),
    ("hardshrink", {}),
    ("hardshrink", {"lambd": 1.0}),
    ("softshrink", {}),
    ("softshrink", {"lambd": 1.5}),
    ("rrelu", {}),
]


@pytest.mark.parametrize("name,kwargs", ACTIVATIONS, ids=lambda v: str(v))
def test_activation_function_matches_torch(name, kwargs):
    x, tx = pair((2, 6, 3, 2))  # the module tests' shape: the same kernels serve both
    y = getattr(F, name)(x, **kwargs)
    ty = getattr(TF, name)(tx, **kwargs)
    backward_both(y, ty)
    close(y, ty)
    close(x.grad, tx.grad, atol=1e-5)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu", "hardtanh", "silu", "threshold"])
def test_activation_inplace_writes_input(name):
    args = (0.1, 5.0) if name == "threshold" else ()
    a = np.linspace(-2, 2, 9).astype(np.float32)
    x, tx = lt.tensor(a), torch.tensor(a)
    y = getattr(F, name)(x, *args, inplace=True)
    ty = getattr(TF, name)(tx, *args, inplace=True)
    assert y is x and ty is tx
    close(x, tx)


def test_softmax_implicit_dim_is_torchs_legacy_choice():
    for shape in [(5,), (2, 3), (2, 3, 4), (2, 3, 4, 5)]:
        x, tx = pair(shape)
        with pytest.warns(UserWarning):
            y = F.softmax(x)
        with pytest.warns(UserWarning):
            ty = TF.softmax(tx)
        close(y, ty)


def test_activation_errors_name_the_problem():
    x = lt.ones(3)
    with pytest.raises(RuntimeError, match="Halving dimension must be even"):
        F.glu(x)
    with pytest.raises(RuntimeError, match="lambda must be in range"):
        F.softshrink(x, -1.0)
    with pytest.raises(RuntimeError, match="Mismatch of parameter numbers"):
        F.prelu(lt.ones(2, 3, 4), lt.ones(2))


# ---- activations: Module classes ----

MODULES = [
    ("ReLU", ()),
    ("ReLU6", ()),
    ("LeakyReLU", (0.1,)),
    ("ELU", (0.7,)),
    ("SELU", ()),
    ("CELU", (1.5,)),
    ("GELU", ()),
    ("GELU", ("tanh",)),
    ("SiLU", ()),
    ("Mish", ()),
    ("Softplus", (2.0, 5.0)),
    ("Softsign", ()),
    ("Hardtanh", (-2.0, 2.0)),
    ("Hardswish", ()),
    ("Hardsigmoid", ()),
    ("Sigmoid", ()),
    ("Tanh", ()),
    ("LogSigmoid", ()),
    ("Softmax", (1,)),
    ("LogSoftmax", (1,)),
    ("Softmin", (0,)),
    ("Softmax2d", ()),
    ("GLU", (1,)),
    ("Threshold", (0.2, 3.0)),
    ("PReLU", ()),
    ("PReLU", (6, 0.1)),
    ("Tanhshrink", ()),
    ("Hardshrink", (0.3,)),
    ("Softshrink", (0.3,)),
    ("RReLU", (0.1, 0.3)),
]


@pytest.mark.parametrize("name,args", MODULES, ids=lambda v: str(v))
def test_activation_module_matches_torch(name, args):
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    ours.eval()
    theirs.eval()
    assert repr(ours) == repr(theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    load_torch_into_ours(ours, theirs)
    x, tx = pair((2, 6, 3, 2))
    y, ty = ours(x), theirs(tx)
    backward_both(y, ty)
    close(y, ty)
    close(x.grad, tx.grad, atol=1e-5)
    for (n, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        close(p.grad, tp.grad, rtol=1e-4, atol=1e-5)


def test_prelu_state_dict_round_trip():
    ours, theirs = nn.PReLU(4, 0.3), torch.nn.PReLU(4)
    close(ours.weight, torch.full((4,), 0.3))
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor([0.1, -0.2, 0.5, 2.0]))
    load_torch_into_ours(ours, theirs)
    with torch.no_grad():
        theirs.weight.zero_()
    load_ours_into_torch(ours, theirs)
    close(ours.weight, theirs.weight)
    close(ours.weight, torch.tensor([0.1, -0.2, 0.5, 2.0]))


def test_rrelu_training_slopes_are_in_range():
    x = lt.full((2000,), -1.0)
    y = F.rrelu(x, 0.1, 0.3, training=True).numpy()
    assert np.all((y <= -0.1 + 1e-6) & (y >= -0.3 - 1e-6))
    assert abs(y.mean() + 0.2) < 0.01


# ---- linear, bilinear, embedding: functions ----


@pytest.mark.parametrize(
    "x_shape,w_shape,bias",
    [((3, 4), (5, 4), True), ((2, 3, 4), (5, 4), False), ((4,), (2, 4), True), ((3, 4), (4,), False),
     ((1, 1), (1, 1), True), ((7, 1), (3, 1), False),
     ((64, 48), (32, 48), True), ((2, 33, 17), (48, 17), True)],
)
def test_linear_function(x_shape, w_shape, bias):
    """Values and gradients against torch; 2-D weights take linear's own gradient rule (gᵀ @ input,
    g @ weight), including size-1 dims and shapes big enough to pack their operands."""
    x, tx = pair(x_shape)
    w, tw = pair(w_shape, seed=1)
    b, tb = pair(w_shape[:1], seed=2) if bias and len(w_shape) == 2 else (None, None)
    y, ty = F.linear(x, w, b), TF.linear(tx, tw, tb)
    backward_both(y, ty)
    close(y, ty, atol=1e-4)
    for got, want in [(x, tx), (w, tw), (b, tb)]:
        if got is not None:
            close(got.grad, want.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_gradient_of_a_non_contiguous_input_and_a_transposed_weight(dtype):
    """The input a transposed view, the weight a view of a transposed leaf: the rule's matmuls read
    the forward-time nodes, and the gradients reach the leaves through the views."""
    x_leaf, tx_leaf = pair((4, 5), seed=3, dtype=dtype)
    w_leaf, tw_leaf = pair((4, 3), seed=4, dtype=dtype)
    y = F.linear(x_leaf.T, w_leaf.T)
    ty = TF.linear(tx_leaf.T, tw_leaf.T)
    backward_both(y, ty)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    close(y, ty, rtol=tol, atol=tol)
    close(x_leaf.grad, tx_leaf.grad, rtol=tol, atol=tol)
    close(w_leaf.grad, tw_leaf.grad, rtol=tol, atol=tol)


def test_linear_gradient_matches_finite_differences():
    rng = np.random.default_rng(7)
    x0, w0 = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))

    def loss(x: np.ndarray, w: np.ndarray) -> float:
        return float((F.linear(lt.tensor(x), lt.tensor(w)) ** 2).sum().item())

    x, w = lt.tensor(x0, requires_grad=True), lt.tensor(w0, requires_grad=True)
    (F.linear(x, w) ** 2).sum().backward()
    eps = 1e-6
    for leaf, base, other, first in [(x, x0, w0, True), (w, w0, x0, False)]:
        numeric = np.zeros_like(base)
        for i in np.ndindex(base.shape):
            up, down = base.copy(), base.copy()
            up[i] += eps
            down[i] -= eps
            args_up, args_down = ((up, other), (down, other)) if first else ((other, up), (other, down))
            numeric[i] = (loss(*args_up) - loss(*args_down)) / (2 * eps)
        np.testing.assert_allclose(leaf.grad.numpy(), numeric, rtol=1e-6, atol=1e-6)


def test_linear_shape_error_names_in_features():
    with pytest.raises(RuntimeError, match="in_features=4"):
        F.linear(lt.ones(3, 5), lt.ones(2, 4))


@pytest.mark.parametrize("lead", [(3,), (2, 3)])
def test_bilinear_function(lead):
    x1, tx1 = pair(lead + (4,))
    x2, tx2 = pair(lead + (5,), seed=1)
    w, tw = pair((3, 4, 5), seed=2)
    b, tb = pair((3,), seed=3)
    y, ty = F.bilinear(x1, x2, w, b), TF.bilinear(tx1, tx2, tw, tb)
    backward_both(y, ty)
    close(y, ty, rtol=1e-4, atol=1e-5)
    for got, want in [(x1, tx1), (x2, tx2), (w, tw), (b, tb)]:
        close(got.grad, want.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"padding_idx": 2},
        {"padding_idx": -1},
        {"scale_grad_by_freq": True},
        {"max_norm": 1.0},
        {"max_norm": 2.0, "norm_type": 1.0},
    ],
)
def test_embedding_function(kwargs):
    idx = np.array([[0, 2, 4], [2, 2, 1]], dtype=np.int64)
    w, tw = pair((5, 3), seed=4)
    y = F.embedding(lt.tensor(idx), w, **kwargs)
    if "max_norm" in kwargs:
        with torch.no_grad():
            ty = TF.embedding(torch.tensor(idx), tw, **kwargs)
        close(w, tw, rtol=1e-5)  # the looked-up rows were renormalised in place, the others kept
        close(y, ty, rtol=1e-5)
        return
    ty = TF.embedding(torch.tensor(idx), tw, **kwargs)
    backward_both(y, ty)
    close(y, ty)
    close(w.grad, tw.grad, atol=1e-6)


def test_embedding_rejects_float_indices():
    with pytest.raises(RuntimeError, match="integer indices"):
        F.embedding(lt.ones(3), lt.ones(4, 2))


@pytest.mark.parametrize("values,num_classes", [([0, 2, 1, 2], -1), ([[1, 0], [3, 3]], 5), ([], 3)])
def test_one_hot(values, num_classes):
    a = np.array(values, dtype=np.int64)
    y = F.one_hot(lt.tensor(a, dtype="int64"), num_classes)
    ty = TF.one_hot(torch.tensor(a), num_classes)
    assert y.dtype == lt.int64
    np.testing.assert_array_equal(y.numpy(), ty.numpy())


def test_one_hot_errors():
    with pytest.raises(RuntimeError, match="non-negative"):
        F.one_hot(lt.tensor([1, -1]), 3)
    with pytest.raises(RuntimeError, match="smaller than num_classes"):
        F.one_hot(lt.tensor([1, 4]), 3)
    with pytest.raises(RuntimeError, match="integer"):
        F.one_hot(lt.tensor([1.0]), 3)


# ---- Linear, Bilinear, Embedding: modules ----

LAYERS = [
    ("Linear", (4, 3), {}, [(2, 4)]),
    ("Linear", (4, 3), {"bias": False}, [(2, 5, 4)]),
    ("Bilinear", (4, 5, 3), {}, [(2, 4), (2, 5)]),
    ("Bilinear", (2, 3, 2), {"bias": False}, [(3, 2), (3, 3)]),
    ("Flatten", (), {}, [(2, 3, 2, 2)]),
    ("Flatten", (0, 1), {}, [(2, 3, 2)]),
    ("Unflatten", (1, (2, 3)), {}, [(4, 6)]),
    ("Unflatten", (-1, (-1, 2)), {}, [(2, 4)]),
    ("Identity", (54,), {"unused": 1}, [(3,)]),
]


@pytest.mark.parametrize("name,args,kwargs,shapes", LAYERS, ids=lambda v: str(v))
def test_layer_matches_torch_both_ways(name, args, kwargs, shapes):
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    load_torch_into_ours(ours, theirs)
    inputs = [pair(s, seed=i) for i, s in enumerate(shapes)]
    y, ty = ours(*[i[0] for i in inputs]), theirs(*[i[1] for i in inputs])
    backward_both(y, ty)
    close(y, ty, rtol=1e-5, atol=1e-5)
    for x, tx in inputs:
        close(x.grad, tx.grad, rtol=1e-4, atol=1e-5)
    for (n, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        close(p.grad, tp.grad, rtol=1e-4, atol=1e-5)
    # ours → torch: a fresh torch layer takes our (freshly initialized) parameters
    fresh, other = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    load_ours_into_torch(fresh, other)
    x_only = [i[0].detach() for i in inputs]
    close(fresh(*x_only), other(*[i[1].detach() for i in inputs]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs", [{}, {"padding_idx": 1}, {"max_norm": 1.5}])
def test_embedding_module_both_ways(kwargs):
    ours, theirs = nn.Embedding(6, 3, **kwargs), torch.nn.Embedding(6, 3, **kwargs)
    assert repr(ours) == repr(theirs)
    if "padding_idx" in kwargs:
        np.testing.assert_array_equal(ours.weight.numpy()[1], 0.0)
    load_torch_into_ours(ours, theirs)
    idx = np.array([[1, 5, 0], [4, 1, 1]], dtype=np.int64)
    y, ty = ours(lt.tensor(idx)), theirs(torch.tensor(idx))
    backward_both(y, ty)
    close(y, ty)
    close(ours.weight.grad, theirs.weight.grad)
    load_ours_into_torch(ours, theirs)
    close(ours.weight, theirs.weight)


def test_embedding_init_is_standard_normal():
    w = nn.Embedding(400, 50).weight.numpy()
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1.0) < 0.02


def test_embedding_from_pretrained_freezes_by_default():
    table = lt.tensor(np.arange(12, dtype=np.float32).reshape(4, 3))
    frozen = nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad
    close(frozen(lt.tensor([3, 0])), np.array([[9, 10, 11], [0, 1, 2]], dtype=np.float32))
    trainable = nn.Embedding.from_pretrained(table, freeze=False, padding_idx=0)
    assert trainable.weight.requires_grad and trainable.padding_idx == 0
    trainable(lt.tensor([0, 2, 2])).sum().backward()
    close(trainable.weight.grad, np.array([[0] * 3, [0] * 3, [2] * 3, [0] * 3], dtype=np.float32))


def test_linear_default_init_bounds():
    layer = nn.Linear(64, 300)
    bound = 1 / math.sqrt(64)
    w, b = layer.weight.numpy(), layer.bias.numpy()
    assert np.abs(w).max() <= bound + 1e-7 and np.abs(w).max() > 0.95 * bound
    assert np.abs(b).max() <= bound + 1e-7
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound  # U(-b, b) has std b/√3


def test_lazy_linear_infers_in_features():
    layer = nn.LazyLinear(3)
    out = layer(lt.ones(2, 7))
    assert tuple(layer.weight.shape) == (3, 7) and tuple(out.shape) == (2, 3)


# ---- dropout ----


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_statistics_and_scaling(p):
    x = lt.ones(20000)
    y = F.dropout(x, p).numpy()
    dropped = np.mean(y == 0)
    assert abs(dropped - p) < 0.02
    kept = y[y != 0]
    np.testing.assert_allclose(kept, 1 / (1 - p), rtol=1e-6)


def test_dropout_gradient_is_the_mask_scaled():
    x = lt.ones(1000, requires_grad=True)
    y = F.dropout(x, 0.3)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), y.detach().numpy())


def test_dropout_edges_and_eval():
    x = lt.tensor(np.arange(1, 7, dtype=np.float32))
    np.testing.assert_array_equal(F.dropout(x, 0.0).numpy(), x.numpy())
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), np.zeros(6))
    np.testing.assert_array_equal(F.dropout(x, 0.5, training=False).numpy(), x.numpy())
    layer = nn.Dropout(0.9)
    layer.eval()
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())
    assert repr(layer) == repr(torch.nn.Dropout(0.9))
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(x, 1.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(-0.1)


def test_dropout_is_deterministic_under_manual_seed():
    lt.manual_seed(123)
    a = F.dropout(lt.ones(500), 0.5).numpy()
    b = F.dropout(lt.ones(500), 0.5).numpy()
    lt.manual_seed(123)
    c = F.dropout(lt.ones(500), 0.5).numpy()
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize(
    "fn,shape,feature_dims",
    [
        ("dropout1d", (4, 50, 6), 1),
        ("dropout2d", (4, 50, 3, 2), 2),
        ("dropout3d", (2, 50, 2, 2, 2), 3),
        ("dropout2d", (50, 3, 2), 2),
    ],
)
def test_channel_dropout_drops_whole_channels(fn, shape, feature_dims):
    y = getattr(F, fn)(lt.ones(*shape), 0.5).numpy()
    per_channel = y.reshape(-1, int(np.prod(shape[-feature_dims:])))
    assert np.all((per_channel == per_channel[:, :1]).all(axis=1)), "a channel was partly dropped"
    assert 0.3 < np.mean(per_channel[:, 0] == 0) < 0.7
    np.testing.assert_allclose(per_channel[per_channel != 0], 2.0)


def test_alpha_dropout_keeps_mean_and_variance():
    x = lt.randn(40000)
    y = F.alpha_dropout(x, 0.3, training=True).numpy()
    assert abs(y.mean()) < 0.03 and abs(y.std() - 1.0) < 0.03
    np.testing.assert_array_equal(F.alpha_dropout(x, 0.3, training=False).numpy(), x.numpy())


# ---- nn.init ----


@pytest.mark.parametrize(
    "name,param",
    [
        ("linear", None),
        ("conv2d", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("selu", None),
    ],
)
def test_calculate_gain(name, param):
    assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))


def test_calculate_gain_rejects_unknown():
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swishy")


@pytest.mark.parametrize("shape", [(3, 4), (5, 2, 3), (6, 4, 3, 3), (2, 3, 1, 2, 2)])
def test_fan_in_and_fan_out(shape):
    assert init._calculate_fan_in_and_fan_out(
        lt.empty(*shape)
    ) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))


def test_fan_needs_two_dims():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(lt.empty(5))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"a": math.sqrt(5)},
        {"mode": "fan_out"},
        {"nonlinearity": "relu"},
        {"a": 0.1, "nonlinearity": "leaky_relu"},
    ],
)
def test_kaiming_uniform_bound(kwargs):
    t = lt.empty(200, 40, 3)
    init.kaiming_uniform_(t, **kwargs)
    fan = 40 * 3 if kwargs.get("mode", "fan_in") == "fan_in" else 200 * 3
    gain = torch.nn.init.calculate_gain(kwargs.get("nonlinearity", "leaky_relu"), kwargs.get("a", 0))
    bound = gain * math.sqrt(3.0 / fan)
    v = t.numpy()
    assert np.abs(v).max() <= bound * (1 + 1e-6) and np.abs(v).max() > 0.99 * bound
    assert abs(v.std() - bound / math.sqrt(3)) < 0.03 * bound


@pytest.mark.parametrize(
    "fn,expected_std",
    [
        ("xavier_normal_", math.sqrt(2.0 / (300 + 200))),
        ("kaiming_normal_", math.sqrt(2.0) / math.sqrt(200)),
        ("xavier_uniform_", math.sqrt(6.0 / (300 + 200)) / math.sqrt(3)),
    ],
)
def test_init_std(fn, expected_std):
    t = lt.empty(300, 200)
    kwargs = {"nonlinearity": "relu"} if fn == "kaiming_normal_" else {}
    getattr(init, fn)(t, **kwargs)
    v = t.numpy()
    assert abs(v.mean()) < 0.03 * expected_std * 10 / math.sqrt(6)
    assert abs(v.std() - expected_std) < 0.02 * expected_std


def test_uniform_and_normal():
    t = lt.empty(50000)
    init.uniform_(t, -2.0, 3.0)
    v = t.numpy()
    assert v.min() >= -2.0 and v.max() < 3.0 and abs(v.mean() - 0.5) < 0.03
    init.normal_(t, 1.0, 0.5)
    v = t.numpy()
    assert abs(v.mean() - 1.0) < 0.01 and abs(v.std() - 0.5) < 0.01


@pytest.mark.parametrize(
    "mean,std,a,b", [(0.0, 1.0, -2.0, 2.0), (0.5, 1.0, -1.0, 2.0), (0.0, 0.02, -0.04, 0.04)]
)
def test_trunc_normal_matches_torch_statistics(mean, std, a, b):
    t = lt.empty(40000)
    init.trunc_normal_(t, mean, std, a, b)
    v = t.numpy()
    ref = torch.nn.init.trunc_normal_(torch.empty(200000, dtype=torch.float64), mean, std, a, b).numpy()
    assert v.min() >= a and v.max() <= b
    assert abs(v.mean() - ref.mean()) < 0.02 * std and abs(v.std() - ref.std()) < 0.02 * std


@pytest.mark.parametrize("shape,gain", [((6, 4), 1.0), ((3, 8), 2.0), ((4, 2, 3), 1.0)])
def test_orthogonal(shape, gain):
    t = lt.empty(*shape)
    init.orthogonal_(t, gain)
    m = t.numpy().reshape(shape[0], -1)
    small = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(small, gain**2 * np.eye(small.shape[0]), atol=1e-5)


def test_constant_ones_zeros_eye_dirac_match_torch():
    for fn, args in [("constant_", (0.3,)), ("ones_", ()), ("zeros_", ()), ("eye_", ())]:
        t, tt = lt.empty(3, 5), torch.empty(3, 5)
        getattr(init, fn)(t, *args)
        getattr(torch.nn.init, fn)(tt, *args)
        np.testing.assert_array_equal(t.numpy(), tt.numpy())
    for shape, groups in [((4, 2, 3), 1), ((6, 3, 3, 3), 2), ((2, 4, 3, 1, 5), 1), ((4, 4, 3, 3), 4)]:
        t, tt = lt.empty(*shape), torch.empty(*shape)
        init.dirac_(t, groups)
        torch.nn.init.dirac_(tt, groups)
        np.testing.assert_array_equal(t.numpy(), tt.numpy())


def test_init_on_a_parameter_keeps_it_trainable_and_distinct():
    a, b = nn.Parameter(lt.zeros(4)), nn.Parameter(lt.zeros(4))
    init.zeros_(a)
    init.zeros_(b)
    init.ones_(b)
    assert a.requires_grad and b.requires_grad
    (a * 2 + b * 3).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.full(4, 2.0))
    np.testing.assert_array_equal(b.grad.numpy(), np.full(4, 3.0))


def test_init_is_deterministic_under_manual_seed():
    lt.manual_seed(7)
    first = init.kaiming_uniform_(lt.empty(5, 5)).numpy()
    lt.manual_seed(7)
    second = init.kaiming_uniform_(lt.empty(5, 5)).numpy()
    np.testing.assert_array_equal(first, second)


def test_linear_weight_gradient_is_one_matmul_not_a_transposed_reduce(monkeypatch):
    """linear's own rule computes grad_weight as gᵀ @ input (rows of the weight's layout, the input
    packed as a right operand); differentiated generically it was (inputᵀ @ g) written transposed."""
    from lazytensor.nn import linear as linear_module
    from lazytensor.ops import Op

    def weight_grad_root():
        x = lt.randn(64, 48).realize()
        w = lt.randn(32, 48).realize().requires_grad_()
        F.linear(x, w).sum().backward()
        node = w.grad.node
        while node.op is Op.DETACH:
            node = node.srcs[0]
        return node.op

    assert weight_grad_root() is not Op.PERMUTE
    monkeypatch.setattr(linear_module, "_define_linear_gradient", lambda *args: None)
    assert weight_grad_root() is Op.PERMUTE      # the generic gradient, for contrast
