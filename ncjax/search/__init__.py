"""One trigger search in pure JAX: the trigger (mask and pattern), the losses, Keras' Adam, the cost schedule and
one optimizer step, with the settings they read (ScanConfig)."""
from ncjax.search.config import ScanConfig

__all__ = ["ScanConfig"]
