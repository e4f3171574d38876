"""XLA flags: ncjax turns YNNPACK fusion off on CPU unless the user set XLA_FLAGS or jaxlib is too old."""
from __future__ import annotations

import os
import subprocess
import sys

from ncjax.core.xla_flags import DISABLE_YNN_FUSION, FIRST_JAXLIB_WITH_FLAG, _jaxlib_version, configure_xla_flags


def test_sets_flag_when_unset():
    env: dict[str, str] = {}
    assert configure_xla_flags(env, jaxlib_version=(0, 10, 2)) is True
    assert env["XLA_FLAGS"] == DISABLE_YNN_FUSION


def test_keeps_user_flags():
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    assert configure_xla_flags(env, jaxlib_version=(0, 10, 2)) is False
    assert env["XLA_FLAGS"] == "--xla_force_host_platform_device_count=2"


def test_old_jaxlib_gets_no_flag_it_would_abort_on():
    env: dict[str, str] = {}
    assert configure_xla_flags(env, jaxlib_version=(0, 8, 0)) is False
    assert "XLA_FLAGS" not in env


def test_import_sets_flag_before_jax_starts():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    code = "import ncjax, os, jax.numpy as jnp; jnp.ones(2).sum(); print(os.environ.get('XLA_FLAGS'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    expected = DISABLE_YNN_FUSION if _jaxlib_version() >= FIRST_JAXLIB_WITH_FLAG else "None"
    assert out.stdout.strip() == expected
