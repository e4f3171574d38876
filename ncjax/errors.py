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


class ConfigError(NCJaxError, ValueError):
    """A setting that is out of range, inconsistent with the others, or not one of its choices."""


class DataError(NCJaxError, ValueError):
    """Clean-image data that cannot be read or does not fit the model."""


class ScanInputError(NCJaxError, ValueError):
    """Images, labels, slots, model or key given to a scan that do not fit together."""


class CheckpointError(NCJaxError, ValueError):
    """A checkpoint that does not belong to this scan, comes from another format, or cannot be read."""


class WriteError(NCJaxError, OSError):
    """An output that cannot be written (a full disk, a folder made read-only); what was written before stays intact."""


class SaveError(NCJaxError, ValueError):
    """A classifier that cannot be written as a Keras file."""


class InjectionError(NCJaxError, ValueError):
    """Training data or backdoor settings that do not fit together."""


class OnnxOpError(NCJaxError, ValueError):
    """An ONNX operator used in a way ncjax does not implement (the graph adds the node's name)."""


class UsageError(NCJaxError, ValueError):
    """Command-line options that do not fit together."""


class PreflightError(NCJaxError, ValueError):
    """The model does not see the clean images as set (another reading is far better, or its output ignores its
    input): the scan would measure nothing. The message names the flags to use."""


class WorkLimitError(NCJaxError, ValueError):
    """A scan whose estimated time or memory is beyond the set limits (the message says what to lower)."""


class MitigationError(NCJaxError, ValueError):
    """Triggers, a layer, images or settings of a mitigation that do not fit the model or each other."""
