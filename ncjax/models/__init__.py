"""A classifier file becomes a pure JAX function: `load_model` reads a Keras (keras/) or ONNX (onnx/) file,
checked first as a file that may be hostile (safe_files), into a `Classifier`, whose importer also answers what
its weights do (layer_roles)."""
from ncjax.models.classifier import LAYOUTS, Classifier, LayerSummary, Layout
from ncjax.models.layer_roles import HiddenLayer, WeightRoles, WeightSlice
from ncjax.models.loading import load_model, parse_input_shape

__all__ = ["LAYOUTS", "Classifier", "Layout", "HiddenLayer", "LayerSummary", "WeightRoles", "WeightSlice", "load_model",
           "parse_input_shape"]
