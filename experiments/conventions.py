"""Does `--preprocess auto` pick each model's input convention? Measured on the real GTSRB models (raw 0..255) and
on reference nets trained here, one per convention, on real GTSRB images the evaluation set does not hold.

    python experiments/conventions.py            # writes results/conventions.jsonl, prints a table

Each model's labelled clean images (the 860-image set, uint8) go through `choose_convention`; the row records
every convention's accuracy, the choice and whether it is the model's own. Needs ../shared/real.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

from ncjax.data.convention import choose_convention
from ncjax.data.images import load_images
from ncjax.data.preprocess import Preprocessing
from ncjax.lab.inject import TrainConfig, train_classifier
from ncjax.models.loading import load_model

REAL = Path(__file__).resolve().parents[2] / "shared" / "real"
OUT = Path(__file__).parent / "results" / "conventions.jsonl"
REAL_MODELS = ["gtsrb_backdoor_33_logits.h5", "gtsrb_clean_logits.h5", "gtsrb_clean_nabagata_keras224.h5",
               "gtsrb_clean_abis47_keras260.h5"]
TRAINED = [Preprocessing(mode="mnist"), Preprocessing(mode="inception"), Preprocessing(mode="torch"),
           Preprocessing(mode="mnist", channel_order="bgr"), Preprocessing(mode="imagenet"),
           Preprocessing(mode="normalize", mean=(0.4914, 0.4822, 0.4465), std=(0.247, 0.243, 0.261))]
GRAY = [Preprocessing(mode="raw"), Preprocessing(mode="mnist"), Preprocessing(mode="inception")]


def _row(name: str, truth: str, model, pixels: np.ndarray, labels: np.ndarray) -> dict:
    start = time.perf_counter()
    choice = choose_convention(model, pixels, labels)
    return {"model": name, "truth": truth, "chosen": choice.best.preprocessing.describe(),
            "right": choice.best.preprocessing.describe() == truth, "close_call": choice.close_call,
            "problem": choice.problem(), "accuracy": choice.as_dict()["accuracy"],
            "seconds": round(time.perf_counter() - start, 2)}


def _training_set(small_names: set[str]) -> tuple[np.ndarray, np.ndarray]:
    full = np.load(REAL / "gtsrb" / "gtsrb_test_32x32_uint8.npz")
    keep = np.array([name not in small_names for name in full["filenames"]])
    order = np.random.default_rng(0).permutation(int(keep.sum()))[:3000]
    return full["x_roi"][keep][order].astype(np.float32), full["y"][keep][order]


def main() -> int:
    small = np.load(REAL / "gtsrb" / "gtsrb_test_32x32_small_20perclass.npz")
    rows = []
    for name in REAL_MODELS:
        model = load_model(REAL / "models" / name)
        clean = load_images(REAL / "gtsrb" / "gtsrb_test_32x32_small_20perclass.npz", model.input_shape)
        rows.append(_row(name, "--preprocess raw", model, clean.images, clean.labels))
    train_x, train_y = _training_set(set(small["filenames"]))
    eval_x, eval_y = small["x_roi"].astype(np.float32), small["y"]
    gray = lambda x: x.mean(-1, keepdims=True)
    for index, convention in enumerate(TRAINED + GRAY):
        colour = index < len(TRAINED)
        x, e = (train_x, eval_x) if colour else (gray(train_x), gray(eval_x))
        to_model = lambda v, p=convention: np.asarray(p.to_model(jax.numpy.asarray(v)))
        model, report = train_classifier(to_model(x), train_y, num_classes=43, key=jax.random.key(index),
                                         config=TrainConfig(epochs=8), eval_images=to_model(e), eval_labels=eval_y)
        name = (f"trained {'colour' if colour else 'gray'} {convention.describe()} (clean acc "
                f"{report.clean_accuracy:.2f})")
        rows.append(_row(name, convention.describe(), model, e, eval_y))
        print(rows[-1], file=sys.stderr)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text("".join(json.dumps(row) + "\n" for row in rows))
    for row in rows:
        print(f"{row['model']:<60} truth {row['truth']:<45} chose {row['chosen']:<45} "
              f"{'right' if row['right'] else 'WRONG'}{' (close)' if row['close_call'] else ''}"
              f"{' REFUSED' if row['problem'] else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
