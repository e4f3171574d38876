"""Layer-config values of the wrong type or an absurd range are refused before any array is built."""
from __future__ import annotations

import pytest

import ncjax
from ncjax.models.keras.config_values import check_config_values

GOOD = [
    ("Conv2D", {"filters": 32, "kernel_size": [3, 3], "strides": 1, "use_bias": True, "dilation_rate": [1, 1]}),
    ("Dense", {"units": 43, "use_bias": False}),
    ("MaxPooling2D", {"pool_size": [2, 2], "strides": None}),
    ("Dropout", {"rate": 0.5}),
    ("BatchNormalization", {"epsilon": 1e-3, "momentum": 0.99, "center": True, "scale": False}),
    ("Rescaling", {"scale": 0.00392, "offset": 0.0}),
    ("Rescaling", {"scale": [0.1, 0.2, 0.3], "offset": [0, 0, 0]}),
    ("ZeroPadding2D", {"padding": [[1, 2], [0, 1]]}),
    ("LeakyReLU", {"alpha": 0.3}),
    ("ReLU", {"max_value": None, "negative_slope": 0.0, "threshold": 0.0}),
]


@pytest.mark.parametrize("class_name, config", GOOD)
def test_what_keras_writes_passes(class_name, config):
    check_config_values(class_name, config, "layer")


@pytest.mark.parametrize("class_name, config, says", [
    ("Dense", {"units": 3.0}, "units=3.0"), ("Dense", {"units": True}, "units=True"),
    ("Dense", {"units": 10**9}, "units=1000000000"), ("Conv2D", {"groups": 0}, "groups=0"),
    ("Conv2D", {"kernel_size": [3, "3"]}, "kernel_size"), ("Conv2D", {"kernel_size": []}, "kernel_size"),
    ("Conv2D", {"use_bias": "yes"}, "use_bias='yes'"), ("Dropout", {"rate": "0.5"}, "rate='0.5'"),
    ("Dropout", {"rate": 1.5}, "rate=1.5"), ("LeakyReLU", {"alpha": float("nan")}, "alpha=nan"),
    ("BatchNormalization", {"epsilon": float("inf")}, "epsilon=inf"),
    ("BatchNormalization", {"scale": 1.0}, "scale=1.0"), ("Rescaling", {"scale": "x"}, "scale='x'"),
    ("ZeroPadding2D", {"padding": 10**9}, "padding=1000000000"), ("Cropping2D", {"cropping": [-1, 0]}, "cropping"),
    ("MaxPooling2D", {"pool_size": [0, 0]}, "pool_size"),
])
def test_malformed_values_are_refused_by_name(class_name, config, says):
    with pytest.raises(ncjax.ModelFileError, match=f"layer 7: {says}"):
        check_config_values(class_name, config, "layer 7")


def test_a_config_that_is_not_an_object():
    with pytest.raises(ncjax.ModelFileError, match="not a JSON object"):
        check_config_values("Dense", [1, 2], "layer 1")  # type: ignore[arg-type]  # a wrong type, on purpose
