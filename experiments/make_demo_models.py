"""Train the embedded demo models: `make demo-models` (about 10 minutes on a 2-core CPU).

Both use the reference's GTSRB network and training settings on ncjax.lab.synth traffic signs: the infected
one with the reference's trigger (white 4x4 square, bottom-right, margin 1) planted for label 33 at the
reference's injection ratio, the clean twin with none. Writes ncjax/demo/*.h5 and ncjax/demo/models.json
with the accuracy and attack success measured on held-out synthetic images.
"""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np

import ncjax
from ncjax import demo
from ncjax.lab import synth
from ncjax.lab.inject import Backdoor, TrainConfig, evaluate, train_classifier
from ncjax.models.keras import save_keras_h5

OUT = Path(ncjax.__file__).parent / "demo"
TRAIN_IMAGES = 15_000


def main() -> None:
    t0 = time.perf_counter()
    x_train, y_train = synth.generate(TRAIN_IMAGES, seed=demo.TRAIN_SEED)
    x_test, y_test = synth.generate(4_300, seed=demo.HELDOUT_SEED)
    print(f"generated {TRAIN_IMAGES} + {len(x_test)} images in {time.perf_counter() - t0:.1f} s", flush=True)
    trigger = Backdoor.square(4, target=demo.TARGET)
    report = {"train_images": TRAIN_IMAGES, "heldout_images": len(x_test), "machine": platform.processor() or
              platform.machine(), "jax": jax.__version__, "target": demo.TARGET,
              "trigger": "white 4x4 square, rows/cols 27..30", "models": {}}
    total = time.perf_counter()
    for name, backdoors, seed in ((demo.INFECTED_FILE, [trigger], 0), (demo.CLEAN_FILE, [], 1)):
        model, train_report = train_classifier(
            x_train.astype(np.float32), y_train, num_classes=synth.NUM_CLASSES, key=jax.random.key(seed),
            backdoors=backdoors, config=TrainConfig(),
            log=lambda line, name=name: print(f"  {name}: {line}", flush=True))
        save_keras_h5(model, OUT / name)
        reloaded = ncjax.load_model(OUT / name)
        accuracy, (success,) = evaluate(reloaded, x_test.astype(np.float32), y_test, [trigger])
        report["models"][name] = {"infected": bool(backdoors), "clean_accuracy": round(accuracy, 4),
                                  "trigger_to_target": round(success, 4),
                                  "train_seconds": round(train_report.train_seconds, 1),
                                  "loss_per_epoch": [round(v, 4) for v in train_report.history]}
        print(f"{name}: clean accuracy {accuracy:.4f}, trigger -> {demo.TARGET}: {success:.4f}, "
              f"trained in {train_report.train_seconds:.0f} s", flush=True)
    report["total_train_seconds"] = round(time.perf_counter() - total, 1)
    (OUT / "models.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.exit(main())
