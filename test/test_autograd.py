"""Autograd against PyTorch and against finite differences.

Every differentiable Tensor op of API.md is a row of CASES: the same lambda runs on lazytensor and
on torch (`m` is the library: `m.cat`, `m.F.gelu`, ...), on the same inputs, with the same random
upstream gradient; forward values and the gradients of all inputs must match in float32 and
float64. Rows marked `fd=True` exercise one primitive's gradient rule directly and are also checked
against central finite differences of our own forward pass in float64. Kinks and ties use explicit
inputs and follow PyTorch's conventions (relu'(0) = 0, abs'(0) = 0, max(dim) routes to the returned
index, amax splits evenly among ties, prod is exact with zeros).

The second half checks the semantics around gradients: accumulation, seeds, errors, grad modes,
detach, leaves, intermediate targets, in-place updates and laziness (backward realizes nothing; a
whole training step realizes as one schedule).
"""
from __future__ import annotations

import importlib
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
import torch

import lazytensor as lt
from helpers import assert_close

lt_realize = importlib.import_module("lazytensor.realize")   # lt.realize is the function

FLOATS = ["float32", "float64"]
# gradients are computed by different formulas than torch's, so they get a little more room
GRAD_RTOL = {"float32": 2e-4, "float64": 1e-8}
GRAD_ATOL = {"float32": 2e-5, "float64": 1e-10}


# ---- the two libraries behind one name ----

class _MethodsAsFunctions:
    """`F.gelu(x, ...)` for lazytensor: our activations are Tensor methods."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        return lambda x, *args, **kwargs: getattr(x, name)(*args, **kwargs)


class Lib:
    """A library module plus `F` (its functional namespace), so one lambda serves both."""

    def __init__(self, module: Any, functional: Any) -> None:
        self.module, self.F = module, functional

    def __getattr__(self, name: str) -> Any:
        return getattr(self.module, name)


LT = Lib(lt, _MethodsAsFunctions())
TORCH = Lib(torch, torch.nn.functional)


@dataclass
class Case:
    """One op under test: fn(m, *inputs, *consts) with `inputs` differentiable float tensors."""
    name: str
    fn: Callable[..., Any]
    shapes: tuple[tuple[int, ...], ...] = ((2, 3),)
    low: float = -2.0
    high: float = 2.0
    values: tuple[Any, ...] | None = None     # explicit inputs (kinks, ties) instead of random ones
    consts: tuple[Any, ...] = ()              # non-differentiable inputs: int indices, bool masks
    fd: bool = False                          # a primitive's rule: also check finite differences
    zero: bool = False                        # put an exact 0 among the random inputs
    tol: float = 1.0                          # scales the gradient tolerance
    xfail: dict[str, str] = field(default_factory=dict)   # dtype → reason (a known bug elsewhere)


def C(name: str, fn: Callable[..., Any], *shapes: tuple[int, ...], **kw: Any) -> Case:
    return Case(name, fn, shapes or ((2, 3),), **kw)


def _idx(*values: Any) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _mask(*values: Any) -> np.ndarray:
    return np.array(values, dtype=bool)


# ---- elementwise: smooth unary ops (random inputs, with an exact zero where the domain has one) ----
UNARY = [
    ("neg", lambda m, x: -x, -2, 2), ("exp", lambda m, x: x.exp(), -2, 2),
    ("exp2", lambda m, x: x.exp2(), -2, 2), ("expm1", lambda m, x: x.expm1(), -2, 2),
    ("log", lambda m, x: x.log(), 0.2, 3), ("log2", lambda m, x: x.log2(), 0.2, 3),
    ("log10", lambda m, x: x.log10(), 0.2, 3), ("log1p", lambda m, x: x.log1p(), -0.8, 3),
    ("sqrt", lambda m, x: x.sqrt(), 0.2, 3), ("rsqrt", lambda m, x: x.rsqrt(), 0.2, 3),
    ("reciprocal", lambda m, x: x.reciprocal(), 0.5, 3), ("square", lambda m, x: x.square(), -2, 2),
    ("sin", lambda m, x: x.sin(), -3, 3), ("cos", lambda m, x: x.cos(), -3, 3),
    ("tan", lambda m, x: x.tan(), -1.2, 1.2), ("asin", lambda m, x: x.asin(), -0.9, 0.9),
    ("acos", lambda m, x: x.acos(), -0.9, 0.9), ("atan", lambda m, x: x.atan(), -3, 3),
    ("sinh", lambda m, x: x.sinh(), -2, 2), ("cosh", lambda m, x: x.cosh(), -2, 2),
    ("tanh", lambda m, x: x.tanh(), -2, 2), ("asinh", lambda m, x: x.asinh(), -2, 2),
    ("acosh", lambda m, x: x.acosh(), 1.2, 3), ("atanh", lambda m, x: x.atanh(), -0.9, 0.9),
    ("erf", lambda m, x: x.erf(), -3, 3), ("erfc", lambda m, x: x.erfc(), -3, 3),
    ("sigmoid", lambda m, x: x.sigmoid(), -4, 4), ("logsigmoid", lambda m, x: m.F.logsigmoid(x), -4, 4),
    ("silu", lambda m, x: m.F.silu(x), -4, 4), ("mish", lambda m, x: m.F.mish(x), -4, 4),
    ("gelu", lambda m, x: m.F.gelu(x), -4, 4),
    ("gelu_tanh", lambda m, x: m.F.gelu(x, approximate="tanh"), -4, 4),
    ("softplus", lambda m, x: m.F.softplus(x), -4, 4),
    ("softplus_beta", lambda m, x: m.F.softplus(x, beta=2.0, threshold=3.0), -4, 4),
    ("softsign", lambda m, x: m.F.softsign(x), -4, 4), ("elu", lambda m, x: m.F.elu(x), -3, 3),
    ("elu_alpha", lambda m, x: m.F.elu(x, alpha=0.5), -3, 3), ("selu", lambda m, x: m.F.selu(x), -3, 3),
    ("celu", lambda m, x: m.F.celu(x, alpha=0.5), -3, 3),
    ("leaky_relu", lambda m, x: m.F.leaky_relu(x, 0.1), -3, 3),
    ("tanhshrink", lambda m, x: m.F.tanhshrink(x), -3, 3),
    ("pow_2", lambda m, x: x ** 2, -2, 2), ("pow_3", lambda m, x: x.pow(3), -2, 2),
    ("pow_neg2", lambda m, x: x ** -2, 0.5, 2), ("pow_2.5", lambda m, x: x ** 2.5, 0.2, 2),
    ("pow_0.5", lambda m, x: x ** 0.5, 0.2, 2), ("rpow", lambda m, x: 2.0 ** x, -2, 2),
    ("rsub_scalar", lambda m, x: 3 - x, -2, 2), ("rdiv_scalar", lambda m, x: 3 / x, 0.5, 2),
    ("mul_scalar", lambda m, x: x * 2.5 + 1, -2, 2), ("mul_method", lambda m, x: x.mul(x).div(3.0), -2, 2),
    ("div_scalar", lambda m, x: x / 4, -2, 2),
    ("sub_alpha", lambda m, x: x.sub(1.5, alpha=2), -2, 2),
    ("nan_to_num", lambda m, x: x.nan_to_num(), -2, 2),
    ("lerp_scalar", lambda m, x: x.lerp(x * 0 + 1, 0.3), -2, 2),
    ("unary_plus", lambda m, x: +x * 1, -2, 2),
]
CASES = [C(name, fn, low=lo, high=hi, zero=lo < 0 < hi) for name, fn, lo, hi in UNARY]
for _name in ("neg", "exp2", "log2", "sin", "sqrt", "reciprocal"):   # the unary primitives
    next(c for c in CASES if c.name == _name).fd = True

# ---- kinks and non-smooth ops at their kinks (PyTorch's conventions) ----
KINKS = np.array([[-3.0, -1.0, -0.5, 0.0, 0.5, 1.0], [3.0, 6.0, 7.0, 1.5, -2.5, 2.0]])
CASES += [
    C("relu@kinks", lambda m, x: x.relu(), values=(KINKS,)),
    C("relu6@kinks", lambda m, x: m.F.relu6(x), values=(KINKS,)),
    C("abs@kinks", lambda m, x: x.abs(), values=(KINKS,)),
    C("sign@kinks", lambda m, x: x.sign() * x, values=(KINKS,)),
    C("hardtanh@kinks", lambda m, x: m.F.hardtanh(x), values=(KINKS,)),
    C("hardtanh_range@kinks", lambda m, x: m.F.hardtanh(x, -0.5, 3.0), values=(KINKS,)),
    # torch's float64 hardsigmoid gradient uses a float32 1/6 (relative error 3e-8)
    C("hardsigmoid@kinks", lambda m, x: m.F.hardsigmoid(x), values=(KINKS,), tol=5),
    C("hardswish@kinks", lambda m, x: m.F.hardswish(x), values=(KINKS,)),
    C("leaky_relu@kinks", lambda m, x: m.F.leaky_relu(x, 0.2), values=(KINKS,)),
    C("elu@kinks", lambda m, x: m.F.elu(x, 0.5), values=(KINKS,)),
    C("celu@kinks", lambda m, x: m.F.celu(x, 0.5), values=(KINKS,)),
    C("selu@kinks", lambda m, x: m.F.selu(x), values=(KINKS,)),
    C("softplus@kinks", lambda m, x: m.F.softplus(x), values=(KINKS,)),
    C("logsigmoid@kinks", lambda m, x: m.F.logsigmoid(x), values=(KINKS,)),
    C("mish@kinks", lambda m, x: m.F.mish(x), values=(KINKS,)),
    C("softsign@kinks", lambda m, x: m.F.softsign(x), values=(KINKS,)),
    C("hardshrink@kinks", lambda m, x: m.F.hardshrink(x, 0.5), values=(KINKS,)),
    C("softshrink@kinks", lambda m, x: m.F.softshrink(x, 0.5), values=(KINKS,)),
    C("threshold@kinks", lambda m, x: m.F.threshold(x, 1.0, -2.0), values=(KINKS,)),
    C("clamp@bounds", lambda m, x: x.clamp(-1.0, 1.0), values=(KINKS,)),
    C("clamp_min@bound", lambda m, x: x.clamp(min=0.5), values=(KINKS,)),
    C("clamp_max@bound", lambda m, x: x.clamp(max=0.5), values=(KINKS,)),
    C("clip@bounds", lambda m, x: x.clip(-0.5, 6.0), values=(KINKS,)),
    C("clamp_tensor_bounds@ties", lambda m, x, lo, hi: x.clamp(lo, hi),
      values=(KINKS, np.full((2, 6), -1.0), np.full((2, 6), 1.0))),
    C("clamp_tensor_min@ties", lambda m, x, lo: m.clamp(x, min=lo), values=(KINKS, np.full((6,), 0.5))),
    C("maximum@ties", lambda m, x, y: m.maximum(x, y), values=(KINKS, np.full((2, 6), 0.5)), fd=False),
    C("minimum@ties", lambda m, x, y: m.minimum(x, y), values=(KINKS, np.full((2, 6), 0.5))),
    C("max_elementwise@ties", lambda m, x, y: x.max(y), values=(KINKS, np.ones((2, 6)))),
    C("min_elementwise@ties", lambda m, x, y: x.min(y), values=(KINKS, np.ones((2, 6)))),
    C("floor", lambda m, x: x.floor() * x, values=(KINKS + 0.25,)),
    C("ceil", lambda m, x: x.ceil() * x, values=(KINKS + 0.25,)),
    C("round", lambda m, x: x.round() * x, values=(KINKS + 0.25,)),
    C("trunc", lambda m, x: x.trunc() + x.trunc() * x, values=(KINKS + 0.25,), fd=True),
    C("frac", lambda m, x: x.frac(), values=(KINKS + 0.25,)),
    C("div_floor", lambda m, x: x.div(0.7, rounding_mode="floor") + x, values=(KINKS + 0.25,)),
    C("div_trunc", lambda m, x: x.div(0.7, rounding_mode="trunc") + x, values=(KINKS + 0.25,)),
]

# ---- binary ops and broadcasting ----
BROADCASTS = [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((3,), (2, 1, 3)), ((2, 3), ())]
BINARY = [
    ("add", lambda m, a, b: a + b, -2, 2), ("add_alpha", lambda m, a, b: a.add(b, alpha=-0.5), -2, 2),
    ("sub", lambda m, a, b: a - b, -2, 2), ("mul", lambda m, a, b: a * b, -2, 2),
    ("div", lambda m, a, b: a / b, 0.5, 2), ("pow_tensor", lambda m, a, b: a ** b, 0.5, 2),
    ("atan2", lambda m, a, b: a.atan2(b), 0.3, 2), ("maximum", lambda m, a, b: m.maximum(a, b), -2, 2),
    ("minimum", lambda m, a, b: m.minimum(a, b), -2, 2), ("fmod", lambda m, a, b: a.fmod(b), 0.5, 2),
    ("remainder", lambda m, a, b: a.remainder(b), 0.5, 2), ("mod_op", lambda m, a, b: a % b, 0.5, 2),
    ("lerp_tensor", lambda m, a, b: a.lerp(b, 0.7), -2, 2),
    ("where_fn", lambda m, a, b: m.where(a > b, a, b * 2), -2, 2),
    ("sub_then_div", lambda m, a, b: (a - b) / (b * b + 1), -2, 2),
]
FULL_BROADCAST_OPS = ("add", "mul", "div", "maximum", "where_fn")   # the rest: three shape pairs (test time)
for _name, _fn, _lo, _hi in BINARY:
    for _sa, _sb in BROADCASTS if _name in FULL_BROADCAST_OPS else BROADCASTS[::2]:
        CASES.append(C(f"{_name}{_sa}{_sb}", _fn, _sa, _sb, low=_lo, high=_hi,
                       fd=_name in ("add", "mul", "div", "maximum", "fmod") and _sa == _sb))
CASES += [
    C("atan2_quadrants", lambda m, a, b: a.atan2(b), values=(np.array([1.0, -1.0, 0.5, -0.5]),
                                                             np.array([1.0, 1.0, -2.0, -2.0]))),
    C("fmod_negative", lambda m, a, b: a.fmod(b), values=(np.array([-3.3, 2.7, -1.1, 5.2]),
                                                          np.array([1.5, -1.2, 0.7, -2.5])), fd=True),
    C("remainder_negative", lambda m, a, b: a.remainder(b), values=(np.array([-3.3, 2.7, -1.1, 5.2]),
                                                                    np.array([1.5, -1.2, 0.7, -2.5]))),
    C("lerp_tensor_weight", lambda m, a, b, w: a.lerp(b, w), (2, 3), (2, 3), (3,), low=-1, high=1),
    C("where_scalar_branch", lambda m, a, c: m.where(c, a, 0.0), (2, 3), consts=(_mask([1, 0, 1]),)),
    C("where_broadcast", lambda m, a, b, c: m.where(c, a, b), (2, 1), (3,),
      consts=(_mask([[1, 0, 1], [0, 1, 1]]),), fd=True),
    C("masked_fill", lambda m, a, c: a.masked_fill(c, -1.5) * a, (2, 3), consts=(_mask([0, 1, 0]),)),
    C("masked_fill_tensor_value", lambda m, a, v, c: a.masked_fill(c, v), (2, 3), (),
      consts=(_mask([[0, 1, 0], [1, 1, 0]]),)),
]

# ---- reductions (ties follow PyTorch: max(dim) → the returned index, amax/max() → split evenly) ----
TIES = np.array([[1.0, 3.0, 3.0, -2.0], [2.0, 2.0, 2.0, 2.0], [-1.0, 0.5, -1.0, 0.25]])
ZEROS1 = np.array([[1.5, 0.0, 2.0, -1.0], [0.5, 2.0, -3.0, 1.0], [0.0, 0.0, 4.0, 1.0]])
CASES += [
    C("sum_all", lambda m, x: x.sum(), (2, 3, 2), fd=True),
    C("sum_dim", lambda m, x: x.sum(1), (2, 3, 2), fd=True),
    C("sum_neg_dim_keepdim", lambda m, x: x.sum(-1, keepdim=True), (2, 3, 2)),
    C("sum_tuple", lambda m, x: x.sum((0, 2)), (2, 3, 2)),
    C("mean_all", lambda m, x: x.mean(), (2, 3, 2)),
    C("mean_dim", lambda m, x: x.mean(1, keepdim=True), (2, 3, 2)),
    C("mean_tuple", lambda m, x: x.mean((0, -1)), (2, 3, 2)),
    C("prod_all", lambda m, x: x.prod(), (2, 3), low=0.5, high=1.5, fd=True),
    C("prod_dim", lambda m, x: x.prod(1), (2, 3), low=-2, high=2, fd=True),
    C("prod_dim_keepdim", lambda m, x: x.prod(0, keepdim=True), (2, 3)),
    C("prod_zeros_dim1", lambda m, x: x.prod(1), values=(ZEROS1,), fd=True),
    C("prod_zeros_dim0", lambda m, x: x.prod(0), values=(ZEROS1,), fd=True),
    C("prod_zeros_all_one_zero", lambda m, x: x.prod(), values=(ZEROS1[:2],), fd=True),
    C("prod_zeros_all_many", lambda m, x: x.prod(), values=(ZEROS1,), fd=True),
    C("amax_all@ties", lambda m, x: x.amax(), values=(TIES,)),
    C("amax_dim@ties", lambda m, x: x.amax(1), values=(TIES,)),
    C("amax_dim0@ties", lambda m, x: x.amax(0, keepdim=True), values=(TIES,)),
    C("amax_tuple@ties", lambda m, x: x.amax((0, 1)), values=(TIES,)),
    C("amin_dim@ties", lambda m, x: x.amin(1), values=(TIES,)),
    C("amin_all@ties", lambda m, x: x.amin(), values=(TIES,)),
    C("max_all@ties", lambda m, x: x.max(), values=(TIES,)),
    C("min_all@ties", lambda m, x: x.min(), values=(TIES,)),
    C("max_dim@ties", lambda m, x: x.max(1), values=(TIES,)),
    C("max_dim0_keepdim@ties", lambda m, x: x.max(0, keepdim=True), values=(TIES,)),
    C("min_dim@ties", lambda m, x: x.min(1), values=(TIES,)),
    C("min_dim_neg@ties", lambda m, x: x.min(-2), values=(TIES,)),
    C("max_dim_values", lambda m, x: x.max(dim=1).values * 2, values=(TIES,)),
    C("amax", lambda m, x: x.amax(1), (2, 3, 2), fd=True),
    C("amin", lambda m, x: x.amin(-1), (2, 3, 2)),
    C("max_dim", lambda m, x: x.max(2), (2, 3, 2)),
    C("var", lambda m, x: x.var(), (2, 3)), C("var_dim", lambda m, x: x.var(1), (2, 3)),
    C("var_correction0", lambda m, x: x.var(0, correction=0), (2, 3)),
    C("std", lambda m, x: x.std(), (2, 3)), C("std_dim_keepdim", lambda m, x: x.std(1, keepdim=True), (2, 3)),
    C("logsumexp", lambda m, x: x.logsumexp(1), (2, 3)),
    C("logsumexp_tuple", lambda m, x: x.logsumexp((0, 1)), (2, 3)),
    C("softmax", lambda m, x: x.softmax(-1), (2, 3)), C("softmax_dim0", lambda m, x: x.softmax(0), (2, 3)),
    C("log_softmax", lambda m, x: x.log_softmax(1), (2, 3)),
    C("cumsum", lambda m, x: x.cumsum(1), (2, 4)), C("cumsum_dim0", lambda m, x: x.cumsum(0), (3, 2)),
    C("cumprod", lambda m, x: x.cumprod(1), (2, 4)),
    C("cumprod_zero", lambda m, x: x.cumprod(1), values=(ZEROS1,)),
    C("norm_fro", lambda m, x: x.norm(), (2, 3)), C("norm_dim", lambda m, x: x.norm(dim=1), (2, 3)),
    C("norm_1", lambda m, x: x.norm(1), (2, 3)), C("norm_3", lambda m, x: x.norm(3, dim=0), (2, 3)),
    C("norm_inf", lambda m, x: x.norm(float("inf")), (2, 3)),
]

# ---- movement, views and joins ----
CASES += [
    C("reshape", lambda m, x: x.reshape(3, 2) * m.arange(3).reshape(3, 1), (2, 3), fd=True),
    C("view", lambda m, x: x.view(-1) * m.arange(6), (2, 3)),
    C("flatten", lambda m, x: x.flatten(1), (2, 3, 2)),
    C("unflatten", lambda m, x: x.unflatten(1, (2, 3)).sum(2), (2, 6)),
    C("permute", lambda m, x: x.permute(2, 0, 1) * m.arange(2).reshape(2, 1, 1), (2, 3, 2), fd=True),
    C("transpose", lambda m, x: x.transpose(0, 1), (2, 3)), C("T", lambda m, x: x.T, (2, 3)),
    C("mT", lambda m, x: x.mT, (2, 3, 2)), C("swapaxes", lambda m, x: x.swapaxes(0, 2), (2, 3, 2)),
    C("movedim", lambda m, x: x.movedim(0, -1), (2, 3, 2)),
    C("expand", lambda m, x: x.expand(2, 3, 4), (3, 1), fd=True),
    C("expand_neg1", lambda m, x: x.expand(-1, 4), (3, 1)),
    C("expand_as", lambda m, x, y: x.expand_as(y) * y, (1, 3), (2, 3)),
    C("broadcast_to", lambda m, x: x.broadcast_to((4, 3)), (3,)),
    C("squeeze", lambda m, x: x.squeeze(), (2, 1, 3)), C("squeeze_dim", lambda m, x: x.squeeze(1), (2, 1, 3)),
    C("unsqueeze", lambda m, x: x.unsqueeze(1), (2, 3)),
    C("flip", lambda m, x: x.flip(0, 1), (2, 3), fd=True), C("flip_last", lambda m, x: x.flip(-1), (2, 3)),
    C("roll", lambda m, x: x.roll(1, 1), (2, 3)), C("roll_flat", lambda m, x: x.roll(2), (2, 3)),
    C("roll_two", lambda m, x: x.roll((1, -1), (0, 1)), (2, 3)),
    C("repeat", lambda m, x: x.repeat(2, 3), (2, 3)),
    C("repeat_newdim", lambda m, x: x.repeat(2, 1, 1), (2, 3)),
    C("tile", lambda m, x: x.tile((2,)), (2, 3)),
    C("repeat_interleave", lambda m, x: x.repeat_interleave(2, dim=1), (2, 3)),
    C("narrow", lambda m, x: x.narrow(1, 1, 2), (2, 3), fd=True),
    C("pad_constant", lambda m, x: m.F.pad(x, (1, 2)), (2, 3), fd=True),
    C("pad_constant_value", lambda m, x: m.F.pad(x, (1, 0, 0, 2), value=1.5), (2, 3)),
    C("pad_negative_crop", lambda m, x: m.F.pad(x, (-1, 1, 1, -1)), (2, 3)),
    C("pad_reflect", lambda m, x: m.F.pad(x, (2, 1), mode="reflect"), (2, 4)),
    C("pad_replicate", lambda m, x: m.F.pad(x, (2, 1), mode="replicate"), (1, 2, 3)),
    C("pad_circular", lambda m, x: m.F.pad(x, (2, 1), mode="circular"), (1, 2, 3)),
    C("tril", lambda m, x: x.tril(), (3, 3)), C("triu_offset", lambda m, x: x.triu(1), (3, 4)),
    C("tril_neg", lambda m, x: x.tril(-1), (2, 3, 3)),
    C("diagonal", lambda m, x: x.diagonal(), (3, 4)),
    C("diagonal_offset", lambda m, x: x.diagonal(1, 0, 1), (3, 4)),
    C("split", lambda m, x: x.split(2, 1), (2, 5)),
    C("split_sizes", lambda m, x: x.split([1, 3, 1], 1), (2, 5)),
    C("split_use_one", lambda m, x: x.split(2, 1)[1] * 3, (2, 5)),
    C("chunk", lambda m, x: x.chunk(3, 0), (5, 2)), C("unbind", lambda m, x: x.unbind(1), (2, 3)),
    C("cat", lambda m, a, b: m.cat([a, b], 1), (2, 3), (2, 1), fd=True),
    C("cat_dim0_three", lambda m, a, b, c: m.cat([a, b, c * 2]), (1, 3), (2, 3), (1, 3)),
    C("cat_same_tensor", lambda m, a: m.cat([a, a * 2], 0), (2, 3)),
    C("stack", lambda m, a, b: m.stack([a, b], 1), (2, 3), (2, 3)),
    C("stack_neg", lambda m, a, b: m.stack([a, b], -1), (2, 3), (2, 3)),
    C("hstack", lambda m, a, b: m.hstack([a, b]), (2, 3), (2, 2)),
    C("vstack", lambda m, a, b: m.vstack([a, b]), (2, 3), (1, 3)),
    C("contiguous", lambda m, x: x.T.contiguous() * 2, (2, 3), fd=True),
    C("clone", lambda m, x: x.clone() * x, (2, 3)),
    C("cast_roundtrip", lambda m, x: x.double().float() * x, (2, 3)),
    C("cast_to_float64", lambda m, x: x.to(m.float64) * 3, (2, 3)),
    C("cast_chain_half_free", lambda m, x: (x.double() * 2).to(x.dtype), (2, 3)),
]

# ---- basic and advanced indexing ----
CASES += [
    C("slice_step", lambda m, x: x[:, ::2], (2, 5), fd=True),
    C("slice_step_offset", lambda m, x: x[1:, 1::3], (3, 7)),
    C("slice_step_both", lambda m, x: x[::2, ::2] * 2, (3, 4)),
    C("slice_int", lambda m, x: x[1], (2, 3)), C("slice_neg_int", lambda m, x: x[-1, 1:3], (2, 3)),
    C("slice_none_ellipsis", lambda m, x: x[..., None, 1:], (2, 3)),
    C("index_int_tensor", lambda m, x, i: x[i], (3, 2), consts=(_idx(2, 0, 2, -1),)),
    C("index_two_tensors", lambda m, x, i, j: x[i, j], (3, 4), consts=(_idx(0, 2, 2), _idx(1, 3, 1))),
    C("index_int_then_tensor", lambda m, x, i: x[1, i], (3, 4), consts=(_idx(3, 0, 3),)),
    C("index_slice_then_tensor", lambda m, x, i: x[:, i], (3, 4), consts=(_idx([0, 1], [3, 3]),)),
    C("index_bool_mask", lambda m, x, b: x[b], (2, 3), consts=(_mask([1, 0, 1], [0, 1, 1]),)),
    C("index_bool_rows", lambda m, x, b: x[b] * 2, (3, 2), consts=(_mask(1, 0, 1),)),
    C("masked_select", lambda m, x, b: x.masked_select(b), (2, 3), consts=(_mask(0, 1, 1),)),
    C("gather", lambda m, x, i: x.gather(1, i), (2, 3), consts=(_idx([0, 2, 2, 1], [1, 1, 0, 0]),), fd=True),
    C("gather_dim0", lambda m, x, i: x.gather(0, i), (3, 2), consts=(_idx([2, 0], [2, 2]),)),
    C("take_along_dim", lambda m, x, i: x.take_along_dim(i, 1), (2, 3), consts=(_idx([2], [0]),)),
    C("take", lambda m, x, i: x.take(i), (2, 3), consts=(_idx(5, 0, 5, -1),)),
    C("index_select", lambda m, x, i: x.index_select(1, i), (2, 3), consts=(_idx(2, 0, 2),)),
    C("index_select_dim0", lambda m, x, i: x.index_select(0, i), (3, 2), consts=(_idx(1, 1),)),
    C("scatter_add", lambda m, x, s, i: x.scatter_add(1, i, s), (2, 3), (2, 4),
      consts=(_idx([0, 2, 2, 1], [1, 1, 0, 0]),), fd=True),
    C("scatter_add_dim0", lambda m, x, s, i: x.scatter_add(0, i, s), (3, 2), (2, 2),
      consts=(_idx([2, 0], [2, 2]),)),
    C("scatter_src", lambda m, x, s, i: x.scatter(1, i, s), (2, 3), (2, 2),
      consts=(_idx([0, 2], [1, 0]),), fd=True),
    C("scatter_value", lambda m, x, i: x.scatter(1, i, 2.5) * x, (2, 3), consts=(_idx([0, 2], [1, 0]),)),
    C("scatter_reduce_sum", lambda m, x, s, i: x.scatter_reduce(1, i, s, "sum"), (2, 3), (2, 4),
      consts=(_idx([0, 2, 2, 1], [1, 1, 0, 0]),)),
    C("scatter_reduce_mean", lambda m, x, s, i: x.scatter_reduce(1, i, s, "mean"), (2, 3), (2, 4),
      consts=(_idx([0, 2, 2, 1], [1, 1, 0, 0]),)),
    C("scatter_reduce_prod", lambda m, x, s, i: x.scatter_reduce(1, i, s, "prod"), (2, 3), (2, 4),
      consts=(_idx([0, 2, 2, 1], [1, 1, 0, 0]),), low=0.5, high=2, fd=True),
    C("scatter_reduce_prod_zeros", lambda m, x, s, i: x.scatter_reduce(1, i, s, "prod"),
      values=(np.array([[1.5, 0.0, 2.0]]), np.array([[0.0, 3.0, 0.5, -1.0]])),
      consts=(_idx([0, 2, 2, 1]),), fd=True),
    C("scatter_reduce_amax", lambda m, x, s, i: x.scatter_reduce(1, i, s, "amax"), (2, 3), (2, 4),
      consts=(_idx([0, 2, 2, 1], [1, 1, 0, 0]),), fd=True),
    C("scatter_reduce_amin_no_self", lambda m, x, s, i: x.scatter_reduce(1, i, s, "amin", include_self=False),
      (2, 3), (2, 4), consts=(_idx([0, 2, 2, 1], [1, 1, 0, 0]),)),
    C("scatter_reduce_amax@ties", lambda m, x, s, i: x.scatter_reduce(1, i, s, "amax"),
      values=(np.array([[1.0, 2.0, 3.0]]), np.array([[1.0, 3.0, 3.0, 0.5]])), consts=(_idx([0, 2, 2, 1]),)),
    C("index_add", lambda m, x, s, i: x.index_add(1, i, s), (2, 3), (2, 4), consts=(_idx(0, 2, 2, 1),)),
    C("index_add_alpha", lambda m, x, s, i: x.index_add(0, i, s, alpha=-2.0), (3, 2), (2, 2),
      consts=(_idx(2, 2),)),
    C("index_copy", lambda m, x, s, i: x.index_copy(1, i, s), (2, 3), (2, 2), consts=(_idx(2, 0),)),
    C("index_fill", lambda m, x, i: x.index_fill(1, i, -1.0) * x, (2, 3), consts=(_idx(1,),)),
]

# ---- linear algebra ----
CASES += [
    C("matmul_2d", lambda m, a, b: a @ b, (2, 3), (3, 4)),
    C("matmul_fn", lambda m, a, b: m.matmul(a, b), (3,), (3, 2)),
    C("matmul_mat_vec", lambda m, a, b: a @ b, (2, 3), (3,)),
    C("matmul_vec_vec", lambda m, a, b: a @ b, (3,), (3,)),
    C("matmul_batched_broadcast", lambda m, a, b: a @ b, (2, 2, 3), (3, 2)),
    C("matmul_batch_broadcast_both", lambda m, a, b: a @ b, (2, 1, 2, 3), (3, 3, 2)),
    C("mm", lambda m, a, b: a.mm(b), (2, 3), (3, 2)),
    C("bmm", lambda m, a, b: a.bmm(b), (2, 2, 3), (2, 3, 2)),
    C("dot", lambda m, a, b: a.dot(b), (4,), (4,)), C("outer", lambda m, a, b: a.outer(b), (2,), (3,)),
    C("mv", lambda m, a, b: a.mv(b), (2, 3), (3,)),
    C("addmm", lambda m, c, a, b: c.addmm(a, b, beta=0.5, alpha=2.0), (2, 2), (2, 3), (3, 2)),
    C("einsum_mm", lambda m, a, b: m.einsum("ij,jk->ik", a, b), (2, 3), (3, 2)),
    C("einsum_batch", lambda m, a, b: m.einsum("bij,bjk->bik", a, b), (2, 2, 3), (2, 3, 2)),
    C("einsum_outer_sum", lambda m, a, b: m.einsum("i,j->", a, b), (2,), (3,)),
    C("einsum_transpose", lambda m, a: m.einsum("ij->ji", a), (2, 3)),
    C("linear_layer", lambda m, x, w, b: (x @ w.T + b).relu(), (4, 3), (2, 3), (2,)),
    C("mlp_loss", lambda m, x, w1, w2: ((x @ w1).tanh() @ w2).log_softmax(-1).mean(), (4, 3), (3, 5), (5, 2)),
]

# ---- 0-d and size-0 tensors ----
CASES += [
    C("zero_dim_mul", lambda m, a, b: a * b + a.exp(), (), ()),
    C("zero_dim_sum", lambda m, a: a.sum() * 2, ()),
    C("zero_dim_broadcast", lambda m, a, b: a * b, (), (2, 3)),
    C("zero_dim_max_dim", lambda m, a: a.max(0).values * 3, ()),
    C("empty_sum", lambda m, a: a.sum(0), (0, 3)),
    C("empty_prod", lambda m, a: a.prod(0) * 2, (0, 3)),
    C("empty_sum_all", lambda m, a: a.sum() + 1, (2, 0)),
    C("empty_mul", lambda m, a, b: a * b, (0, 3), (3,)),
    C("empty_matmul", lambda m, a, b: a @ b, (2, 0), (0, 3)),
    C("empty_cat", lambda m, a, b: m.cat([a, b]), (0, 3), (2, 3)),
]

_names = [c.name for c in CASES]
assert len(set(_names)) == len(_names), "case names must be unique"


# ---- running a case ----

def _inputs(case: Case) -> list[np.ndarray]:
    """The float64 input arrays of a case (explicit values, or random ones seeded by the name)."""
    if case.values is not None:
        return [np.array(v, dtype=np.float64) for v in case.values]
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    arrays = [rng.uniform(case.low, case.high, shape) for shape in case.shapes]
    if case.zero and arrays[0].size:
        arrays[0].reshape(-1)[0] = 0.0
    return arrays


def _as_lib(lib: Lib, a: np.ndarray, dtype: str | None, requires_grad: bool) -> Any:
    if lib is LT:
        return lt.tensor(a, dtype=dtype, requires_grad=requires_grad) if dtype else lt.tensor(a)
    t = torch.from_numpy(np.array(a))
    if dtype:
        t = t.to(getattr(torch, dtype))
    return t.requires_grad_(requires_grad)


def _outputs(result: Any) -> list[Any]:
    return list(result) if isinstance(result, (tuple, list)) else [result]


def _is_float(t: Any) -> bool:
    return t.dtype.is_float if isinstance(t, lt.Tensor) else t.dtype.is_floating_point


def _run(lib: Lib, case: Case, arrays: list[np.ndarray], dtype: str) -> tuple[list[Any], list[Any]]:
    leaves = [_as_lib(lib, a, dtype, True) for a in arrays]
    consts = [_as_lib(lib, c, None, False) for c in case.consts]
    return leaves, _outputs(case.fn(lib, *leaves, *consts))


def _upstream(outs: list[Any], seed: int) -> list[np.ndarray | None]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(tuple(o.shape)) if _is_float(o) else None for o in outs]


def _grad_or_zeros(leaf: Any) -> np.ndarray:
    """A leaf's gradient as NumPy; None (no path carried a gradient) reads as zeros."""
    if leaf.grad is None:
        return np.zeros(tuple(leaf.shape))
    return leaf.grad.numpy() if isinstance(leaf, lt.Tensor) else leaf.grad.detach().numpy()


def _known_bug(case: Case, dtype: str) -> list[Any]:
    return [pytest.mark.xfail(strict=True, reason=case.xfail[dtype])] if dtype in case.xfail else []


TORCH_PARAMS = [pytest.param(c, dt, id=f"{c.name}-{dt}", marks=_known_bug(c, dt))
                for c in CASES for dt in FLOATS]


@pytest.mark.parametrize("case,dtype", TORCH_PARAMS)
def test_forward_and_gradients_match_torch(case: Case, dtype: str) -> None:
    arrays = _inputs(case)
    t_leaves, t_outs = _run(TORCH, case, arrays, dtype)
    leaves, outs = _run(LT, case, arrays, dtype)
    assert len(outs) == len(t_outs)
    ups = _upstream(t_outs, len(case.name))
    for o, t_o, u in zip(outs, t_outs, ups):
        if u is None or not t_o.requires_grad:
            continue
        t_o.backward(torch.from_numpy(u).to(t_o.dtype), retain_graph=True)
        o.backward(gradient=lt.tensor(u, dtype=dtype))
    # forward values and every gradient realize together, in one schedule
    lt.realize(*outs, *(x.grad for x in leaves if x.grad is not None))
    for o, t_o in zip(outs, t_outs):
        assert_close(o, t_o.detach())
    for i, (x, t_x) in enumerate(zip(leaves, t_leaves)):
        got, want = _grad_or_zeros(x), _grad_or_zeros(t_x)
        assert got.shape == want.shape, f"input {i}: grad shape {got.shape} != {want.shape}"
        np.testing.assert_allclose(got, want, rtol=GRAD_RTOL[dtype] * case.tol,
                                   atol=GRAD_ATOL[dtype] * case.tol, err_msg=f"gradient of input {i}")


# ---- primitive rules against central finite differences of our own forward pass (float64) ----

def finite_difference_grads(case: Case, arrays: list[np.ndarray], ups: list[np.ndarray | None],
                            eps: float = 1e-6) -> list[np.ndarray]:
    """d/d(input) of sum(out * upstream), by perturbing each input element by ±eps."""
    def loss(values: list[np.ndarray]) -> float:
        _, outs = _run(LT, case, values, "float64")
        return sum(float(np.sum(o.numpy() * u)) for o, u in zip(outs, ups) if u is not None)

    grads = []
    for k, a in enumerate(arrays):
        grad = np.zeros_like(a)
        for j in range(a.size):
            plus, minus = [x.copy() for x in arrays], [x.copy() for x in arrays]
            plus[k].reshape(-1)[j] += eps
            minus[k].reshape(-1)[j] -= eps
            grad.reshape(-1)[j] = (loss(plus) - loss(minus)) / (2 * eps)
        grads.append(grad)
    return grads


FD_CASES = [c for c in CASES if c.fd]


@pytest.mark.parametrize("case", FD_CASES, ids=[c.name for c in FD_CASES])
def test_primitive_rule_matches_finite_differences(case: Case) -> None:
    arrays = _inputs(case)
    leaves, outs = _run(LT, case, arrays, "float64")
    ups = _upstream(outs, len(case.name) + 1)
    for o, u in zip(outs, ups):
        if u is not None:
            o.backward(gradient=lt.tensor(u))
    want = finite_difference_grads(case, arrays, ups)
    for i, (x, w) in enumerate(zip(leaves, want)):
        np.testing.assert_allclose(_grad_or_zeros(x), w, rtol=1e-6, atol=1e-7, err_msg=f"input {i}")


def test_cast_rule_matches_finite_differences() -> None:
    """CAST: the gradient of a float64 → float32 → float64 round trip is the identity's."""
    case = C("cast", lambda m, x: (x.float() * 3).double(), (2, 3))
    arrays = _inputs(case)
    leaves, outs = _run(LT, case, arrays, "float64")
    ups = _upstream(outs, 3)
    outs[0].backward(gradient=lt.tensor(ups[0]))
    (want,) = finite_difference_grads(case, arrays, ups, eps=1e-2)
    np.testing.assert_allclose(leaves[0].grad.numpy(), want, rtol=1e-4)


def test_every_api_op_has_a_case() -> None:
    """Each differentiable Tensor method of API.md that lt.Tensor has appears in some case."""
    names = set()
    for c in CASES:
        names.update(c.fn.__code__.co_names)
    wanted = ["add", "sub", "mul", "div", "remainder", "fmod", "pow", "abs", "reciprocal", "sign", "square",
              "sqrt", "rsqrt", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sin", "cos", "tan",
              "asin", "acos", "atan", "sinh", "cosh", "tanh", "atan2", "erf", "floor", "ceil", "round",
              "trunc", "frac", "clamp", "clip", "maximum", "minimum", "lerp", "where", "nan_to_num", "relu",
              "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish", "softplus", "softsign",
              "hardtanh", "hardswish", "hardsigmoid", "sigmoid", "logsigmoid", "sum", "mean", "prod", "max",
              "min", "amax", "amin", "std", "var", "logsumexp", "softmax", "log_softmax", "cumsum",
              "cumprod", "norm", "reshape", "view", "permute", "transpose", "swapaxes", "expand",
              "expand_as", "broadcast_to", "flatten", "unflatten", "squeeze", "unsqueeze", "flip", "roll",
              "repeat", "tile", "narrow", "pad", "tril", "triu", "split", "chunk", "unbind", "gather",
              "scatter", "scatter_add", "scatter_reduce", "index_select", "index_add", "masked_fill",
              "masked_select", "matmul", "dot", "mm", "bmm", "einsum", "outer", "T", "mT", "cat", "stack",
              "contiguous", "clone", "double", "float", "to"]
    missing = [n for n in wanted if n not in names]
    assert not missing, f"ops without a gradient case: {missing}"


# ---- semantics ----

def _leaf(values: Any, dtype: str = "float32") -> lt.Tensor:
    return lt.tensor(np.array(values, dtype=np.float64), dtype=dtype, requires_grad=True)


def test_grad_accumulates_over_two_backward_calls() -> None:
    x = _leaf([1.0, 2.0, 3.0])
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 7.0, 9.0])
    x.zero_grad()
    assert x.grad is None
    (x * 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0, 2.0])


def test_backward_with_gradient_argument() -> None:
    x = _leaf([[1.0, 2.0], [3.0, 4.0]])
    (x * x).backward(gradient=lt.tensor([[1.0, 0.5], [0.0, -1.0]]))
    np.testing.assert_allclose(x.grad.numpy(), [[2.0, 2.0], [0.0, -8.0]])


def test_backward_gradient_broadcasts_like_a_scalar_seed() -> None:
    x = _leaf([1.0, 2.0])
    (x * 3).backward(gradient=lt.tensor(2.0))
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])


def test_backward_on_non_scalar_without_gradient_raises() -> None:
    x = _leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (x * 2).backward()


def test_backward_without_grad_raises() -> None:
    x = lt.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        (x * 2).sum().backward()


def test_retain_graph_is_accepted_and_second_backward_accumulates() -> None:
    x = _leaf([1.0, -2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, -8.0])


def test_no_grad_stops_recording() -> None:
    x = _leaf([1.0, 2.0])
    with lt.no_grad():
        y = x * 2
    assert not y.requires_grad
    assert lt.is_grad_enabled()
    with pytest.raises(RuntimeError):
        y.sum().backward()


def test_no_grad_as_decorator_and_enable_grad_inside() -> None:
    x = _leaf([1.0, 2.0])

    @lt.no_grad()
    def f(t: lt.Tensor) -> tuple[lt.Tensor, lt.Tensor]:
        with lt.enable_grad():
            inner = t * 3
        return t * 2, inner

    outer, inner = f(x)
    assert not outer.requires_grad and inner.requires_grad
    inner.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_set_grad_enabled() -> None:
    x = _leaf([1.0])
    with lt.set_grad_enabled(False):
        assert not (x * 2).requires_grad
        assert not lt.is_grad_enabled()
    assert lt.is_grad_enabled()
    with lt.set_grad_enabled(True):
        assert (x * 2).requires_grad


def test_detach_stops_gradient() -> None:
    x = _leaf([1.0, 2.0, 3.0])
    y = (x * x.detach()).sum() + (x.detach() * 5).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 2.0, 3.0])
    assert not x.detach().requires_grad


def test_grad_is_detached() -> None:
    x = _leaf([1.0, 2.0])
    (x * x).sum().backward()
    assert not x.grad.requires_grad


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
def test_requires_grad_on_non_float_raises(dtype: str) -> None:
    with pytest.raises(RuntimeError, match="floating point"):
        lt.tensor([1, 0], dtype=dtype, requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point"):
        lt.tensor([1, 0], dtype=dtype).requires_grad_()


def test_is_leaf_and_grad_fn() -> None:
    x = _leaf([1.0, 2.0])
    y = x * 2
    c = lt.tensor([1.0])
    assert x.is_leaf and x.grad_fn is None and x.requires_grad
    assert not y.is_leaf and y.grad_fn is not None and y.requires_grad
    assert c.is_leaf and not c.requires_grad and c.grad_fn is None
    assert x.detach().is_leaf


def test_gradient_of_intermediate_targets() -> None:
    x = _leaf([1.0, 2.0, 3.0], "float64")
    h = x * x
    y = (h.sin() * 2).sum()
    gh, gx = y.gradient(h, x)
    tx = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    th = tx * tx
    th.retain_grad()
    (th.sin() * 2).sum().backward()
    assert_close(gh, th.grad)
    assert_close(gx, tx.grad)
    assert x.grad is None, "gradient() must not touch .grad"


def test_gradient_with_seed_and_unreached_target() -> None:
    x, z = _leaf([1.0, 2.0]), _leaf([5.0, 6.0])
    gx, gz = (x * 3).gradient(x, z, gradient=lt.tensor([1.0, -1.0]))
    np.testing.assert_allclose(gx.numpy(), [3.0, -3.0])
    np.testing.assert_allclose(gz.numpy(), [0.0, 0.0])


def test_inplace_update_of_leaf_under_no_grad_then_train_again() -> None:
    w = _leaf([1.0, -2.0, 0.5])
    tw = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
    x = np.array([0.5, 1.5, -1.0], dtype=np.float32)
    for _ in range(3):
        for lib, p in ((lt, w), (torch, tw)):
            loss = ((p * lib.tensor(x)).sum() - 1) ** 2
            loss.backward()
            with lib.no_grad():
                p -= 0.1 * p.grad
            p.grad = None
        assert w.is_leaf and w.requires_grad
        assert_close(w.detach(), tw.detach())
    with pytest.raises(RuntimeError, match="in-place"):
        w.add_(1.0)


def test_leaf_stays_a_leaf_after_lt_realize() -> None:
    w = _leaf([1.0, 2.0])
    with lt.no_grad():
        w -= 0.5
    lt.realize(w)
    (w * w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [1.0, 3.0])


@pytest.mark.parametrize("view", ["transpose", "step_slice", "expand", "permute_slice"])
def test_gradient_through_non_contiguous_views(view: str) -> None:
    make = {"transpose": lambda t: t.transpose(0, 1), "step_slice": lambda t: t[:, ::2],
            "expand": lambda t: t[:1].expand(3, 4), "permute_slice": lambda t: t.permute(1, 0)[1:, ::2]}[view]
    a = np.random.default_rng(1).standard_normal((3, 4))
    x, tx = _leaf(a, "float64"), torch.tensor(a, requires_grad=True)
    for lib_x in (x, tx):
        v = make(lib_x)
        (v.exp() * v).sum().backward()
    assert_close(x.grad, tx.grad)


def test_gradient_through_setitem() -> None:
    a = np.arange(6.0).reshape(2, 3)
    x, tx = _leaf(a, "float64"), torch.tensor(a, requires_grad=True)
    v = _leaf([10.0, 20.0], "float64")
    tv = torch.tensor([10.0, 20.0], requires_grad=True, dtype=torch.float64)
    for xx, vv in ((x, v), (tx, tv)):
        y = xx * 2
        y[:, 1] = vv * 3
        y[0, 0] = 7.0
        (y * y).sum().backward()
    assert_close(x.grad, tx.grad)
    assert_close(v.grad, tv.grad)


def test_gradient_through_setitem_with_index_tensor_and_mask() -> None:
    a = np.arange(6.0)
    x, tx = _leaf(a, "float64"), torch.tensor(a, requires_grad=True)
    for lib, xx in ((lt, x), (torch, tx)):
        y = xx * 1.5
        y[lib.tensor([4, 0])] = xx[lib.tensor([1, 2])] * 10
        y[lib.tensor([False, True, False, False, False, True])] = 0.0
        (y * y).sum().backward()
    assert_close(x.grad, tx.grad)


def test_size_zero_leaf_gets_size_zero_grad() -> None:
    x = lt.tensor(np.zeros((0, 3)), requires_grad=True)
    (x.sum() + 1).backward()
    assert tuple(x.grad.shape) == (0, 3)
    assert x.grad.numpy().shape == (0, 3)


EMPTY_RESULT_CASES = [
    ("linear", lambda x, w, b: lt.nn.functional.linear(x, w, b), lambda x, w, b: torch.nn.functional.linear(x, w, b)),
    ("matmul", lambda x, w, b: x @ w.T + b, lambda x, w, b: x @ w.T + b),
    ("sum_kept_empty", lambda x, w, b: x.sum(1, keepdim=True) * w.sum() + b.sum(),
     lambda x, w, b: x.sum(1, keepdim=True) * w.sum() + b.sum()),
    ("prod_kept_empty", lambda x, w, b: x.prod(1) * w.sum(), lambda x, w, b: x.prod(1) * w.sum()),
]


@pytest.mark.parametrize("name,ours,theirs", EMPTY_RESULT_CASES, ids=[c[0] for c in EMPTY_RESULT_CASES])
def test_reduce_with_an_empty_result_keeps_the_gradient(name, ours, theirs) -> None:
    """A reduce whose result is empty too (a batch of 0 through a linear layer) still requires grad,
    and backward gives every leaf a zero gradient of its shape, as in PyTorch."""
    arrays = [np.zeros((0, 4)), np.arange(12.0).reshape(3, 4), np.ones(3)]
    leaves = [lt.tensor(a, requires_grad=True) for a in arrays]
    tleaves = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, tout = ours(*leaves), theirs(*tleaves)
    assert out.requires_grad and tuple(out.shape) == tuple(tout.shape)
    out.sum().backward()
    tout.sum().backward()
    for leaf, tleaf in zip(leaves, tleaves):
        if tleaf.grad is None:   # a leaf the output does not use
            assert leaf.grad is None
            continue
        assert tuple(leaf.grad.shape) == tuple(tleaf.grad.shape)
        assert_close(leaf.grad, tleaf.grad)


def test_zero_dim_leaf() -> None:
    x, tx = _leaf(1.5, "float64"), torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    for xx in (x, tx):
        (xx * xx * xx).backward()
    assert tuple(x.grad.shape) == ()
    assert_close(x.grad, tx.grad)


def test_leaf_used_twice_and_in_two_outputs() -> None:
    a = np.array([0.5, -1.0, 2.0])
    x, tx = _leaf(a, "float64"), torch.tensor(a, requires_grad=True)
    for xx in (x, tx):
        y = xx * xx
        (y.sum() + (y * xx).sum() + xx.sum()).backward()
    assert_close(x.grad, tx.grad)


# ---- laziness: backward computes nothing; a training step is one schedule ----

class _RealizeCounter:
    """Counts schedules created and kernels launched while installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.schedules, self.launches = 0, 0
        original = lt_realize.create_schedule

        def counting_create_schedule(*args: Any, **kwargs: Any) -> Any:
            self.schedules += 1
            return original(*args, **kwargs)

        def on_launch(*_: Any) -> None:
            self.launches += 1

        monkeypatch.setattr(lt_realize, "create_schedule", counting_create_schedule)
        monkeypatch.setattr(lt_realize, "_listeners", [*lt_realize._listeners, on_launch])


def _mlp_params() -> tuple[lt.Tensor, ...]:
    rng = np.random.default_rng(7)
    return tuple(lt.tensor(rng.standard_normal(s) * 0.5, dtype="float32", requires_grad=True)
                 for s in ((4, 8), (8,), (8, 3), (3,)))


def test_backward_realizes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    w1, b1, w2, b2 = _mlp_params()
    x = lt.tensor(np.random.default_rng(0).standard_normal((5, 4)), dtype="float32")
    counter = _RealizeCounter(monkeypatch)
    loss = ((x @ w1 + b1).relu() @ w2 + b2).log_softmax(-1).mean()
    loss.backward()
    assert counter.schedules == 0 and counter.launches == 0
    assert all(p.grad is not None and p.grad.node.op.name != "BUFFER" for p in (w1, b1, w2, b2))
    assert len([item for item in w1.grad.schedule() if item.kind == "kernel"]) >= 1
    assert counter.launches == 0


def test_training_step_realizes_as_one_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    params = _mlp_params()
    t_params = [torch.tensor(p.numpy(), requires_grad=True) for p in params]
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    counter = _RealizeCounter(monkeypatch)
    for lib, ps in ((lt, params), (torch, t_params)):
        w1, b1, w2, b2 = ps
        loss = ((lib.tensor(x) @ w1 + b1).relu() @ w2 + b2).log_softmax(-1).mean()
        loss.backward()
        with lib.no_grad():
            for p in ps:
                p -= 0.1 * p.grad
        if lib is lt:
            our_loss = loss
    lt.realize(our_loss, *params)
    assert counter.schedules == 1, f"forward + backward + update took {counter.schedules} schedules"
    assert counter.launches >= 1
    for p, tp in zip(params, t_params):
        assert p.node.op.name == "BUFFER"
        assert_close(p.detach(), tp.detach(), rtol=1e-5, atol=1e-6)
