"""Run ONNX models through lazytensor and export lazytensor graphs to ONNX.

`model = lt.onnx.load("model.onnx")`; `outputs = model(input=array)` → {output name: Tensor}.
Parsing uses the `onnx` package (protobuf only); every op runs as lazytensor ops.
"""
from lazytensor.onnx.export import UnsupportedExport, export
from lazytensor.onnx.loader import UnsupportedOnnx
from lazytensor.onnx.model import OnnxModel, load

__all__ = ["OnnxModel", "UnsupportedExport", "UnsupportedOnnx", "export", "load"]
