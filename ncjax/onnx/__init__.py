"""ONNX classifiers: PyTorch exports, tf2onnx conversions and other ONNX files, read with the onnx package."""
from ncjax.onnx.load import load_onnx
from ncjax.onnx.ops import supported_ops

__all__ = ["load_onnx", "supported_ops"]
