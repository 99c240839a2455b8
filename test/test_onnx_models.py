"""Real ONNX models shipped inside PyPI wheels, run through lazytensor and compared with onnxruntime
(rtol 1e-3, atol 1e-4) on seeded inputs. Each model is skipped when its wheel is not installed;
nothing is downloaded. Also a small hand-built model that always runs (loader, initializers,
dynamic dims, errors)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
import lazytensor as lt  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

# (wheel's import name, glob of model files inside the package, symbolic dim sizes, fixed input values)
MODELS = [
    ("nudenet", "**/320n.onnx", {}, {}),
    ("rapidocr_onnxruntime", "**/*det*.onnx", {}, {}),
    ("rapidocr_onnxruntime", "**/*rec*.onnx", {}, {}),
    ("rapidocr_onnxruntime", "**/*cls*.onnx", {}, {}),
    ("magika", "**/*.onnx", {}, {}),
    ("silero_vad", "**/*.onnx", {"batch": 1, "sequence": 512, "sequence_length": 2},
     {"sr": np.array(16000, dtype=np.int64)}),
    ("ddddocr", "**/*det*.onnx", {}, {}),
]
# spatial sizes for image models with symbolic dims: small, but large enough for their strides
IMAGE_DIMS = {"batch": 1, "N": 1, "height": 64, "width": 64, "H": 64, "W": 64, "h": 64, "w": 64}
_RNG = np.random.default_rng(0)
# inputs whose dims are anonymous ('?', 0) in a model file: the sizes the model's own package feeds it
FILE_INPUTS = {
    "ch_PP-OCRv4_rec_infer.onnx": {"x": _RNG.random((1, 3, 48, 160)).astype(np.float32)},
    "ch_ppocr_mobile_v2.0_cls_infer.onnx": {"x": _RNG.random((1, 3, 48, 192)).astype(np.float32)},
    "silero_vad.onnx": {"input": _RNG.uniform(-1, 1, (1, 512)).astype(np.float32),
                        "state": np.zeros((2, 1, 128), np.float32)},
}


def _model_files(package: str, pattern: str) -> list[Path]:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(list(spec.submodule_search_locations)[0])
    return sorted(root.glob(pattern))


def _params():
    out = []
    for package, pattern, dims, values in MODELS:
        files = _model_files(package, pattern)
        if not files:
            out.append(pytest.param(None, dims, values, id=f"{package}:{pattern}",
                                    marks=pytest.mark.skip(reason=f"wheel {package} is not installed")))
        for path in files:
            out.append(pytest.param(path, dims, values, id=f"{package}:{path.name}"))
    return out


@pytest.mark.parametrize("path,dims,values", _params())
def test_real_model_matches_onnxruntime(path: Path, dims: dict, values: dict) -> None:
    ort = pytest.importorskip("onnxruntime")
    model = lt.onnx.load(path)
    feeds = model.example_inputs(seed=0, dims={**IMAGE_DIMS, **dims},
                                 values={**values, **FILE_INPUTS.get(path.name, {})})
    ours = model(**feeds)
    theirs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)
    for (name, mine), ref in zip(ours.items(), theirs):
        np.testing.assert_allclose(mine.numpy(), ref, rtol=1e-3, atol=1e-4, err_msg=f"output {name}")


def _small_cnn() -> bytes:
    """Conv → Relu → MaxPool → Flatten → Gemm → Softmax with a symbolic batch dim and initializers."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b"),
             numpy_helper.from_array(rng.standard_normal((3, 36)).astype(np.float32), "fc"),
             numpy_helper.from_array(np.array([0, -1], dtype=np.int64), "flat_shape")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Reshape", ["p", "flat_shape"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["g"], transB=1),
             helper.make_node("Softmax", ["g"], ["y"], axis=-1)]
    graph = helper.make_graph(nodes, "small_cnn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_small_cnn_matches_onnxruntime_for_several_batch_sizes() -> None:
    ort = pytest.importorskip("onnxruntime")
    data = _small_cnn()
    model = lt.onnx.load(data)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, 1, 6, 6)).astype(np.float32)
        got = model(x=x)["y"].numpy()
        np.testing.assert_allclose(got, session.run(None, {"x": x})[0], rtol=1e-4, atol=1e-6)


def test_outputs_are_one_lazy_graph() -> None:
    """Nothing runs while the model is traced: the output is an unrealized Tensor."""
    model = lt.onnx.load(_small_cnn())
    y = model(x=np.zeros((2, 1, 6, 6), dtype=np.float32))["y"]
    assert isinstance(y, lt.Tensor) and y.shape == (2, 3)
    assert len(y.schedule()) >= 1


def test_unsupported_op_names_op_node_and_opset() -> None:
    node = helper.make_node("NoSuchOp", ["x"], ["y"], name="weird")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = lt.onnx.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    with pytest.raises(lt.onnx.UnsupportedOnnx, match=r"NoSuchOp \(node 'weird', opset 17\)"):
        model(x=np.zeros(2, dtype=np.float32))


def test_wrong_input_dtype_and_missing_input_are_clear_errors() -> None:
    model = lt.onnx.load(_small_cnn())
    with pytest.raises(TypeError, match="must have dtype float32"):
        model(x=np.zeros((1, 1, 6, 6), dtype=np.int64))
    with pytest.raises(TypeError, match="missing inputs"):
        model()
