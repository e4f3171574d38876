"""Every error ncjax raises on purpose: one base class, each also a builtin so callers can catch either."""
from __future__ import annotations


class NCJaxError(Exception):
    """Base class of every error ncjax raises on purpose."""


class ModelFileError(NCJaxError, ValueError):
    """A model file that cannot be read: not HDF5 or zip, truncated, missing its config or its weights,
    or weights whose shapes do not fit the architecture."""


class ModelNotFoundError(NCJaxError, FileNotFoundError):
    """The model path does not exist."""


class UnsupportedLayerError(NCJaxError, ValueError):
    """A layer ncjax does not implement (or refuses to run, such as a Lambda holding Python bytecode)."""


class UnsupportedModelError(NCJaxError, ValueError):
    """A model whose structure ncjax does not handle: several inputs or outputs, channels_first, unknown
    input size with no `input_shape` given, and so on."""


class MissingDependencyError(NCJaxError, ImportError):
    """An optional dependency that a feature needs is not installed (the message says which extra)."""
