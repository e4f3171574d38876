"""The original Neural Cleanse as a peer: its optimizer step and ncjax's, on the same model, images and schedule.

The reference (TensorFlow in TF1 graph mode, made runnable with marked edits, kept outside this repository) runs
in its own Python through its `bench_ref.py`, one label per process as it scans; ncjax runs here. Runs alternate
A B A B so that a drift in the machine's load falls on both, and each side's figure is a median over rounds.
Both also start once from the same trigger (ncjax's own first trigger for the label, handed to the reference), so
their final masks show that they compute the same thing.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ncjax.core.checks import check_whole
from ncjax.errors import UsageError
from ncjax.models.classifier import Classifier
from ncjax.models.safe_files import write_npz_atomic
from ncjax.scan.engine import scan_all_labels
from ncjax.scan.slots import slot_keys
from ncjax.search.config import ScanConfig
from ncjax.search.trigger import init_trigger, trigger_mask, trigger_pattern

REFERENCE_SCRIPT = "bench_ref.py"
RESULT_PREFIX = "BENCH_REF "
# The reference's example (ScanConfig.paper): at most 1000 epochs of 31 steps per label, labels one after another.
PAPER_LABEL_STEPS = ScanConfig.paper().max_epochs * ScanConfig.paper().steps_per_epoch


@dataclass(frozen=True, kw_only=True)
class PeerSettings:
    """What `compare_with_reference` runs. Epochs are the reference's (31 steps each), early stopping off."""

    reference_dir: Path  # the folder holding the reference's bench_ref.py
    python: Path  # the Python of the reference's own virtual environment
    label: int = 33  # the label of the one-label runs and of the same-start run
    epochs: int = 3  # per one-label run, on each side
    wide_epochs: int = 2  # per all-labels run of ncjax (the steady rate needs two)
    rounds: int = 3
    same_start_epochs: int = 20
    seed: int = 0
    timeout_s: float = 1800.0  # per reference process
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("epochs", "wide_epochs", "rounds", "same_start_epochs"):
            check_whole(self, name)
        check_whole(self, "label", low=0)
        if not (Path(self.reference_dir) / REFERENCE_SCRIPT).is_file():
            raise UsageError(f"no {REFERENCE_SCRIPT} in {str(self.reference_dir)!r}: point --peer-dir at the "
                             "reference's folder (../shared/peers/neural_cleanse_reference).")
        if not Path(self.python).is_file():
            raise UsageError(f"no Python at {str(self.python)!r}: make bench-peers creates the reference's virtual "
                             "environment (.peer-venv).")


def reference_run(settings: PeerSettings, *, epochs: int, init: Path | None = None) -> dict[str, Any]:
    """One process of the reference: `epochs` epochs of settings.label; its BENCH_REF line as a dict."""
    # Absolute, not resolved: the process runs elsewhere, and a venv's python is a link that must stay one.
    command = [os.path.abspath(settings.python), os.path.abspath(Path(settings.reference_dir) / REFERENCE_SCRIPT),
               "--label", str(settings.label), "--epochs", str(epochs)] + (["--init", str(init)] if init else [])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **settings.extra_env}
    with tempfile.TemporaryDirectory() as folder:  # the reference may write beside its working directory
        try:
            done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                                  timeout=settings.timeout_s)
        except subprocess.TimeoutExpired:
            raise UsageError(f"the reference ran past {settings.timeout_s:g} s and was stopped.") from None
        except OSError as e:
            raise UsageError(f"cannot start the reference's Python ({e}).") from None
    line = next((x for x in done.stdout.splitlines() if x.startswith(RESULT_PREFIX)), None)
    if done.returncode != 0 or line is None:
        raise UsageError(f"the reference failed (exit {done.returncode}): {done.stderr.strip()[-400:]}")
    return json.loads(line[len(RESULT_PREFIX):])


def ncjax_run(model: Classifier, images: np.ndarray, *, labels: list[int] | None, epochs: int,
              key: jax.Array) -> dict[str, Any]:
    """ncjax's scan of `labels` (None: all) under the reference's schedule for `epochs` epochs.

    `seconds_per_label_step` is the steady rate, from the end of the first epoch to the end of the last (as the
    reference's figure leaves out its first step); `whole_run_seconds_per_label_step` spreads the whole scan less
    its wait for the compiler (set-up, first steps, results) over every label-step."""
    config = ScanConfig.paper(max_epochs=epochs, early_stop=False)
    ends: list[float] = []
    result = scan_all_labels(model, images, labels=labels, config=config, key=key,
                             callback=lambda progress: ends.append(time.perf_counter()))
    stepping = result.wall_time_s - result.compile_time_s
    lanes = len(result.labels)
    steady = ((ends[-1] - ends[0]) / ((len(ends) - 1) * lanes * config.steps_per_epoch) if len(ends) > 1
              else stepping / result.label_steps)
    return {"labels": lanes, "label_steps": result.label_steps, "wall_s": result.wall_time_s,
            "compile_s": result.compile_time_s, "seconds_per_label_step": steady,
            "whole_run_seconds_per_label_step": stepping / result.label_steps,
            "mask_l1": [float(v) for v in np.abs(result.masks).sum(axis=(1, 2))]}


def initial_trigger(model: Classifier, label: int, key: jax.Array, config: ScanConfig) -> dict[str, np.ndarray]:
    """The trigger ncjax's scan with `key` starts `label` from: mask (H, W) in [0, 1], pattern (H, W, C) in 0..255."""
    init_key, _ = jax.random.split(key)
    slot_key = slot_keys(init_key, jnp.asarray([label]), jnp.asarray([0]))[0]
    trigger = init_trigger(slot_key, model.input_shape, config.upsample)
    return {"mask": np.asarray(trigger_mask(trigger, model.input_shape, config.upsample)),
            "pattern": np.asarray(trigger_pattern(trigger))}


def compare_with_reference(model: Classifier, images: np.ndarray, settings: PeerSettings,
                           log: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Interleaved rounds (reference one label, ncjax one label, ncjax all labels), then one same-start run."""
    key = jax.random.key(settings.seed)
    ncjax_run(model, images, labels=[settings.label], epochs=1, key=key)  # compile the widths once, untimed
    rounds: dict[str, list[dict[str, Any]]] = {"reference_one_label": [], "ncjax_one_label": [],
                                               "ncjax_all_labels": []}
    for number in range(settings.rounds):
        ref = reference_run(settings, epochs=settings.epochs)
        rounds["reference_one_label"].append(ref | {"load_average": os.getloadavg()[0]})
        log(f"round {number + 1}: reference {ref['steady_step_s_median'] * 1e3:.1f} ms per label-step")
        one = ncjax_run(model, images, labels=[settings.label], epochs=settings.epochs, key=key)
        rounds["ncjax_one_label"].append(one | {"load_average": os.getloadavg()[0]})
        log(f"round {number + 1}: ncjax one label {one['seconds_per_label_step'] * 1e3:.1f} ms per label-step")
        wide = ncjax_run(model, images, labels=None, epochs=settings.wide_epochs, key=key)
        rounds["ncjax_all_labels"].append(wide | {"load_average": os.getloadavg()[0]})
        log(f"round {number + 1}: ncjax all {wide['labels']} labels {wide['seconds_per_label_step'] * 1e3:.1f} ms "
            "per label-step")
    return {**_medians(rounds, model.num_classes), "rounds": rounds,
            "same_start": same_start(model, images, settings, key, log)}


def _medians(rounds: dict[str, list[dict[str, Any]]], num_classes: int) -> dict[str, Any]:
    reference = statistics.median(r["steady_step_s_median"] for r in rounds["reference_one_label"])
    one = statistics.median(r["seconds_per_label_step"] for r in rounds["ncjax_one_label"])
    wide = statistics.median(r["seconds_per_label_step"] for r in rounds["ncjax_all_labels"])
    paper_steps = num_classes * PAPER_LABEL_STEPS
    return {
        "seconds_per_label_step": {"reference_one_label": reference, "ncjax_one_label": one,
                                   "ncjax_all_labels": wide},
        "ncjax_over_reference": {"one_label": one / reference, "all_labels": wide / reference},
        "projected_paper_scan_s": {"reference": reference * paper_steps, "ncjax_all_labels": wide * paper_steps,
                                   "label_steps": paper_steps, "note": "1000 epochs of 31 steps per label, no "
                                   "early stop: the upper bound of the reference's schedule"},
        "load_average_median": statistics.median(r["load_average"] for runs in rounds.values() for r in runs),
    }


def same_start(model: Classifier, images: np.ndarray, settings: PeerSettings, key: jax.Array,
               log: Callable[[str], None]) -> dict[str, Any]:
    """Both tools from ncjax's first trigger for settings.label, same schedule: the final masks' L1 norms."""
    start = initial_trigger(model, settings.label, key, ScanConfig.paper())
    with tempfile.TemporaryDirectory() as folder:
        init = Path(folder) / "init.npz"
        write_npz_atomic(init, **start)
        began = time.perf_counter()
        ref = reference_run(settings, epochs=settings.same_start_epochs, init=init)
        reference_s = time.perf_counter() - began
    ours = ncjax_run(model, images, labels=[settings.label], epochs=settings.same_start_epochs, key=key)
    line = (f"same start, {settings.same_start_epochs} epochs, label {settings.label}: best mask L1 "
            f"{ours['mask_l1'][0]:.2f} (ncjax) vs {ref['mask_l1_returned']:.2f} (reference)")
    log(line)
    return {"label": settings.label, "epochs": settings.same_start_epochs, "start_mask_l1": float(start["mask"].sum()),
            "ncjax_mask_l1": ours["mask_l1"][0], "reference_mask_l1": ref["mask_l1_returned"],
            "reference_final_mask_l1": ref["mask_l1_final"], "reference_process_s": reference_s, "line": line}
