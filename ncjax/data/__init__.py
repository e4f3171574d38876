"""Clean images for a scan: read from the files users have (images), related to raw pixels (preprocess), and
checked against the model before any scan (preflight); the input convention chosen from labelled pixels (convention)."""
from ncjax.data.convention import ConventionChoice, auto_convention, choose_convention
from ncjax.data.images import CleanImages, load_images
from ncjax.data.preflight import Preflight, run_preflight
from ncjax.data.preprocess import Preprocessing, parse_preprocessing

__all__ = ["CleanImages", "ConventionChoice", "Preflight", "Preprocessing", "auto_convention", "choose_convention",
           "load_images", "parse_preprocessing", "run_preflight"]
