"""docs/synth_contact_sheet.png: six ncjax.lab.synth samples of each of the 43 classes, one class per row."""
from pathlib import Path

import numpy as np
from PIL import Image

from ncjax.lab import synth

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    sheet = synth.contact_sheet(6, seed=0, scale=2)
    # Two columns of classes (0-21 | 22-42) keep the picture readable.
    rows = sheet.shape[0] // synth.NUM_CLASSES
    left, right = sheet[: 22 * rows], sheet[22 * rows:]
    right = np.concatenate([right, np.full((left.shape[0] - right.shape[0], *right.shape[1:]), 255, np.uint8)])
    gap = np.full((left.shape[0], 12, 3), 255, np.uint8)
    Image.fromarray(np.concatenate([left, gap, right], axis=1)).save(ROOT / "docs" / "synth_contact_sheet.png")


if __name__ == "__main__":
    main()
