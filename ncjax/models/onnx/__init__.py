"""ONNX classifiers: PyTorch exports, tf2onnx conversions and other ONNX files, read with the onnx package."""
from ncjax.models.onnx.load import load_onnx, read_proto
from ncjax.models.onnx.ops import supported_ops

__all__ = ["load_onnx", "read_proto", "supported_ops"]
