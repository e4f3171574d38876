"""Does the reverse direction (K-Arm's symmetric check) tell the real backdoor's 33 from its natural 12?

    .venv/bin/python experiments/reverse_probe.py [SEED] [LABELS]     # default: 2 33,12; about 4 minutes on 2 CPU cores

At seed 2 the fast scan of the real backdoored model ranks 33 (17.2) and 12 (19.5) far below the median (83):
both are candidates of the score. For each, one trigger per source class s -> label (forward) and label -> s
(reverse), 8 classes, fast preset, in one scan of source slots. Output: results/reverse_probe.txt.
"""
from __future__ import annotations

import sys
from pathlib import Path

import jax
import numpy as np

import ncjax
from ncjax.scan.sources import pick_sources
from ncjax.verdict.outlier import l1_norms

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_models import REAL

OUT = Path(__file__).resolve().parent / "results" / "reverse_probe.txt"


def main() -> int:
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    labels = [int(v) for v in (sys.argv[2] if len(sys.argv) > 2 else "33,12").split(",")]
    data = np.load(REAL / "gtsrb" / "gtsrb_test_32x32_uint8.npz")
    model = ncjax.load_model(REAL / "models" / "gtsrb_backdoor_33_logits.h5")
    slots = [slot for label in labels for s in pick_sources(label, range(model.num_classes), 8)
             for slot in (ncjax.Slot(target=label, source=s), ncjax.Slot(target=s, source=label, direction="reverse"))]
    result = ncjax.scan_slots(model, data["x_roi"].astype(np.float32), slots, image_labels=data["y"],
                              config=ncjax.ScanConfig.fast(), key=jax.random.key(seed))
    norms = l1_norms(result.masks, quantize=True)
    lines = [f"seed {seed}, fast preset, quantized L1 norms (None: never reached the threshold)"]
    for label in labels:
        for direction, mine, other in (("forward", "target", "source"), ("reverse", "source", "target")):
            pairs = [(getattr(s, other), round(float(n), 1) if ok else None)
                     for s, n, ok in zip(result.slots, norms, result.reached_threshold)
                     if s.direction == direction and getattr(s, mine) == label]
            way = "class -> label" if direction == "forward" else "label -> class"
            lines.append(f"{label} {direction} ({way}): {pairs}")
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
