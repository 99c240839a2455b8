"""float16/bfloat16 rounding inside fused kernels, and Python numbers meeting 16-bit tensors, against
PyTorch bit for bit.

PyTorch computes an op on 16-bit floats in float32 and rounds every op's result to the tensor's dtype;
a Python number in mul/div keeps float32 precision (h * 1e10 is inf, not nan), reductions accumulate in
float32 and round once. Fusion must not change any of that: a chain computed in one kernel and then
widened with .float() gives the same bits as the chain realized op by op.
"""
from __future__ import annotations

import numpy as np
import pytest

import lazytensor as lt
from lazytensor import dtypes

torch = pytest.importorskip("torch")

HALF_DTYPES = ["float16", "bfloat16"]


def _pair(values: np.ndarray, dtype: str) -> tuple[lt.Tensor, "torch.Tensor"]:
    """The same float32 values rounded to dtype, as a lazytensor and a torch tensor."""
    values = np.asarray(values, np.float32)
    return lt.tensor(values).to(getattr(lt, dtype)), torch.from_numpy(values).to(getattr(torch, dtype))


def _bits_equal(got: lt.Tensor, want: "torch.Tensor") -> None:
    """Same dtype and shape; same float32 values (every NaN counts as equal, signed zeros differ)."""
    assert got.dtype.name == str(want.dtype).replace("torch.", ""), (got.dtype, want.dtype)
    g = got.float().numpy() if got.dtype.is_float else got.numpy()
    w = want.float().numpy() if want.dtype.is_floating_point else want.numpy()
    assert g.shape == w.shape
    if not want.dtype.is_floating_point:
        np.testing.assert_array_equal(g, w)
        return
    nan = np.isnan(w)
    np.testing.assert_array_equal(np.isnan(g), nan)
    bad = np.nonzero(g[~nan].view(np.uint32) != w[~nan].view(np.uint32))[0]
    assert bad.size == 0, f"{bad.size} of {g.size} differ, e.g. got {g[~nan][bad[:4]]}, want {w[~nan][bad[:4]]}"


def _wide_values(n: int = 4000, seed: int = 0) -> np.ndarray:
    """Values of both signs spread over many binades (small, subnormal-bound and near overflow)."""
    rng = np.random.default_rng(seed)
    mag = 2.0 ** rng.uniform(-20, 16, n)
    return (mag * rng.choice([-1.0, 1.0], n)).astype(np.float32)


# (name, the expression, applied to a lazytensor and to a torch tensor alike, input values)
CHAINS = [
    ("overflow mul then float", lambda t: (t * 1e4).float(), [-7.5, 7.5, 6.0, 0.5, 0.0]),
    ("overflow in the middle", lambda t: (t * 300) * 300 / 1000, [1.0, -2.0, 0.5, 0.01]),
    ("overflow add", lambda t: (t + 65504) + 65504 - 65504, [0.0, 1.0, -1.0, 16.0, -70000.0]),
    ("overflow exp", lambda t: t.exp().float(), [11.0, 11.5, 12.0, -20.0]),
    ("overflow cast then back", lambda t: (t.float() * 3).to(t.dtype).float(), [30000.0, -25000.0, 1.0]),
    ("underflow to subnormal and 0", lambda t: (t * 1e-3) * 1e-3 * 1e3, [1.0, 0.05, -0.03, 7.0, 1e-3]),
    ("underflow div", lambda t: (t / 4096) / 4096 * 65536, [1.0, -3.0, 0.3, 100.0]),
    ("rounding each step", lambda t: ((t * 3) + 1) * 3, None),
    ("rounding each step, float at the end", lambda t: (((t * 3) + 1) * 3).float(), None),
    ("cancellation", lambda t: (t + 1) - 1, None),
    ("reciprocal and sqrt", lambda t: (t.abs() + 1).reciprocal().sqrt() * t, None),
    ("square chain", lambda t: t * t * t - t * t, None),
    ("where of rounded values", lambda t: (t * 0.1).where(t > 0, t / 3), None),
    ("16-bit to the other 16-bit type", lambda t: t.to(lt.float16 if isinstance(t, lt.Tensor) else torch.float16)
     .to(lt.bfloat16 if isinstance(t, lt.Tensor) else torch.bfloat16).float(), None),
]


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("name,fn,values", CHAINS, ids=[c[0] for c in CHAINS])
def test_fused_chain_rounds_every_op(name: str, fn, values, dtype: str) -> None:
    values = _wide_values() if values is None else values
    a, ta = _pair(values, dtype)
    _bits_equal(fn(a), fn(ta))


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_fused_equals_realized_step_by_step(dtype: str) -> None:
    """One fused kernel and a realize after every op give the same bits."""
    a, _ = _pair(_wide_values(), dtype)
    fused = (((a * 3) + 1) * 3).float().numpy()
    step = a * 3
    step = step.realize() + 1
    step = (step.realize() * 3).realize()
    np.testing.assert_array_equal(fused.view(np.uint32), step.float().numpy().view(np.uint32))


def _ulps_apart(got: lt.Tensor, want: "torch.Tensor") -> np.ndarray:
    """Per element, how many 16-bit steps apart got and want are (both finite, same dtype)."""
    g = torch.from_numpy(got.float().numpy()).to(want.dtype).view(torch.int16).numpy().astype(np.int64)
    w = want.view(torch.int16).numpy().astype(np.int64)
    return np.abs(np.where(g < 0, -32768 - g, g) - np.where(w < 0, -32768 - w, w))


# composites that are one op (one rounding) in PyTorch: computed in float32, rounded once
COMPOSITES = [
    ("rsqrt", lambda t: (t.abs() + 0.01).rsqrt()),
    ("asinh", lambda t: t.asinh()),
    ("round decimals", lambda t: t.round(decimals=2)),
    ("pow 3", lambda t: t ** 3), ("pow -2", lambda t: t ** -2), ("pow 5", lambda t: t ** 5),
    ("softmax", lambda t: t.reshape(20, 100).softmax(-1)),
    ("cumsum", lambda t: t.reshape(20, 100).cumsum(1)),
    ("lerp", lambda t: t.lerp(t.flip(0), 0.3)),
]


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("name,fn", COMPOSITES, ids=[c[0] for c in COMPOSITES])
def test_composite_rounds_once(name: str, fn, dtype: str) -> None:
    rng = np.random.default_rng(4)
    a, ta = _pair(rng.standard_normal(2000) * 3, dtype)
    got, want = fn(a), fn(ta)
    if name in ("lerp", "rsqrt"):
        # PyTorch's lerp uses a fused multiply-add (a rounding fewer); its rsqrt rounds sqrt first in
        # the scalar loop over the last elements that do not fill a vector
        assert _ulps_apart(got, want).max() <= 1
        return
    _bits_equal(got, want)


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("alpha", [0.1, 0.3, 3])
def test_add_sub_alpha_rounds_once(alpha: float, dtype: str) -> None:
    """a + alpha·b: alpha rounded to the dtype, the rest in float32, one rounding. PyTorch's vector
    loop fuses the multiply-add (a rounding fewer), so a few elements may be one step apart."""
    rng = np.random.default_rng(5)
    a, ta = _pair(rng.standard_normal(4000) * 3, dtype)
    b, tb = _pair(rng.standard_normal(4000) * 3, dtype)
    for got, want in ((a.add(b, alpha=alpha), ta.add(tb, alpha=alpha)), (a.sub(b, alpha=alpha), ta.sub(tb, alpha=alpha))):
        apart = _ulps_apart(got, want)
        assert apart.max() <= 1 and np.count_nonzero(apart) <= 10, (apart.max(), np.count_nonzero(apart))


# (name, op): a 16-bit tensor meets a Python number
SCALAR_OPS = [
    ("mul", lambda t, s: t * s), ("rmul", lambda t, s: s * t), ("div", lambda t, s: t / s),
    ("rdiv", lambda t, s: s / t), ("add", lambda t, s: t + s), ("sub", lambda t, s: t - s),
    ("rsub", lambda t, s: s - t), ("lt", lambda t, s: t < s), ("eq", lambda t, s: t == s),
    ("pow", lambda t, s: t ** s), ("mul then float", lambda t, s: (t * s).float()),
]
SCALARS = [1e10, -1e10, 1e-10, 0.1, 0.3, 1.7e-3, 70000, 100001, 1.1, 3, 2.0, -2, 1e40]


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("name,op", SCALAR_OPS, ids=[o[0] for o in SCALAR_OPS])
def test_python_scalar_like_torch(name: str, op, dtype: str) -> None:
    rng = np.random.default_rng(1)
    values = np.concatenate([[0.0, 1.0, -1.0, 0.3, 65504.0, -0.0], rng.standard_normal(500) * 3])
    a, ta = _pair(values, dtype)
    for s in SCALARS:
        if name == "pow" and abs(s) > 100:
            continue    # torch cannot convert such an exponent to the 16-bit type either
        _bits_equal(op(a, s), op(ta, s))


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_zero_dim_float32_tensor_keeps_precision(dtype: str) -> None:
    a, ta = _pair(_wide_values(500), dtype)
    for s in (0.1, 1e10, 3.0):
        _bits_equal(a * lt.tensor(s), ta * torch.tensor(s))
        _bits_equal(a / lt.tensor(s), ta / torch.tensor(s))


def test_half_times_big_scalar_is_not_nan() -> None:
    """The reported case: 0 * 1e10 stays 0 (1e10 is not first rounded to float16's inf)."""
    out = (lt.tensor([0.0, 1.0]).half() * 1e10).float().numpy()
    np.testing.assert_array_equal(out, np.array([0.0, np.inf], np.float32))


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32", "int64"])
@pytest.mark.parametrize("scalar", [0.1, 1e10, 1e-3, 1e40, 2.5])
def test_integer_tensor_with_float_scalar(dtype: str, scalar: float) -> None:
    values = np.array([0, 1, -3, 7, 100, -100], np.int64)
    if dtype == "uint8":
        values = np.abs(values)
    a, ta = lt.tensor(values.astype(dtype)), torch.from_numpy(values.astype(dtype))
    for op in (lambda t: t * scalar, lambda t: t + scalar, lambda t: t / scalar, lambda t: scalar / (t + 200)):
        _bits_equal(op(a), op(ta))


# reductions: torch accumulates 16-bit floats in float32 and rounds once at the end
REDUCTIONS = [
    ("sum", lambda t: t.sum()), ("sum dim", lambda t: t.sum(1)), ("sum then float", lambda t: t.sum(0).float()),
    ("mean", lambda t: t.mean(1)), ("max", lambda t: t.max(1).values if not isinstance(t, lt.Tensor)
                                      else t.max(1)[0]),
    ("sum of products", lambda t: (t * t).sum(1)), ("cumsum", lambda t: t.cumsum(1)),
]


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("name,fn", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reduction_accumulates_in_float32(name: str, fn, dtype: str) -> None:
    rng = np.random.default_rng(2)
    # multiples of 2**-4 below 4 in magnitude: every float32 partial sum is exact, whatever the order,
    # so only the final rounding to the 16-bit type is left to compare (a float16 accumulator would
    # stall at 2048 + small terms)
    values = np.round(rng.uniform(-4, 4, (8, 1024)) * 16) / 16
    values[0] = 1.0                    # 1024 ones: exact in float32, not when accumulated in float16
    values[1] = 2.0 ** -4              # many small terms
    a, ta = _pair(values, dtype)
    _bits_equal(fn(a), fn(ta))


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_sum_overflows_only_at_the_end(dtype: str) -> None:
    a, ta = _pair(np.full(40000, 2.0), dtype)
    _bits_equal(a.sum(), ta.sum())                               # 80000: inf in float16
    _bits_equal(a.sum(dtype=lt.float32), ta.sum(dtype=torch.float32))
    b, tb = _pair(np.concatenate([np.full(1000, 60000.0), np.full(1000, -60000.0)]), dtype)
    _bits_equal(b.sum(), tb.sum())                               # partial sums overflow float16 only


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_conversion_of_float32_bit_patterns(dtype: str) -> None:
    """float32 → 16-bit rounding (to nearest even, overflow, subnormals, NaN), fused and stored."""
    rng = np.random.default_rng(3)
    bits = np.concatenate([rng.integers(0, 2 ** 32, 100_000, dtype=np.uint64).astype(np.uint32),
                           np.arange(0x33000000, 0x38900000, 997, dtype=np.uint32),      # float16 subnormals
                           np.arange(0x477fd000, 0x47801000, 7, dtype=np.uint32),        # float16 overflow edge
                           np.array([0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 1, 0x7F7FFFFF],
                                    np.uint32)])
    values = bits.view(np.float32)
    want = torch.from_numpy(values).to(getattr(torch, dtype))
    _bits_equal(lt.tensor(values).to(getattr(lt, dtype)), want)                # fused with .float()
    _bits_equal(lt.tensor(values).to(getattr(lt, dtype)).realize(), want)      # stored, then loaded


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_every_16bit_pattern_widens_exactly(dtype: str) -> None:
    patterns = np.arange(65536, dtype=np.uint16)
    want = torch.from_numpy(patterns.view(np.int16)).view(getattr(torch, dtype))
    if dtype == "float16":
        got = lt.tensor(patterns.view(np.float16))
    else:
        got = lt.tensor(patterns).bitcast(lt.bfloat16) if hasattr(lt.Tensor, "bitcast") else None
        if got is None:
            pytest.skip("no bitcast to build bfloat16 bit patterns")
    _bits_equal(got, want)


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("value", [0.1, 1e10, -1e10, 3.4e38, 1e-45, 1 + 2 ** -11 + 2 ** -40, 1 + 2 ** -8 + 2 ** -40,
                                   65520.0, 65519.99, float("inf"), 1e300, 7, 2 ** 40 + 1])
def test_cast_scalar_like_torch(value: float, dtype: str) -> None:
    """A number becomes a 16-bit float through float32, as c10 converts it (two roundings)."""
    want = torch.tensor(value, dtype=torch.float64).to(getattr(torch, dtype)).item()
    assert dtypes.cast_scalar(value, getattr(dtypes, dtype)) == want


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_layer_norm_of_16_bit_is_computed_in_float32_and_rounded_once(dtype):
    """torch normalizes 16-bit inputs in float32 and rounds the result once: at most 1 step apart
    (float32 sums in another order), and nearly every element identical."""
    rng = np.random.default_rng(3)
    (x, tx), (w, tw), (b, tb) = (_pair(rng.standard_normal(shape).astype(np.float32) * scale + shift, dtype)
                                 for shape, scale, shift in (((64, 384), 3, 1), ((384,), 1, 0), ((384,), 1, 0)))
    got = lt.nn.functional.layer_norm(x, 384, w, b)
    want = torch.nn.functional.layer_norm(tx, (384,), tw, tb)
    assert got.dtype.name == dtype
    apart = _ulps_apart(got, want)
    assert apart.max() <= 1 and (apart == 0).mean() > 0.999
