"""Keras model import: configs and weights read with h5py and json, layers as pure JAX functions, and the way
back (`save_keras_h5`). `ncjax.load_model` is the entry for users; these are the importer's own parts."""
from ncjax.models.keras.files import ModelFile, WeightSource, read_model_file
from ncjax.models.keras.graph import Graph, build_graph, declared_input_shapes, supported_layers
from ncjax.models.keras.roles import KerasRoles
from ncjax.models.keras.save import save_keras_h5

__all__ = ["Graph", "KerasRoles", "ModelFile", "WeightSource", "build_graph", "declared_input_shapes",
           "read_model_file", "save_keras_h5", "supported_layers"]
