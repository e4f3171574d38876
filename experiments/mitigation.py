"""Mitigation measured: each subject is scanned with `python -m ncjax.run` (its triggers.npz), then repaired by
unlearning, pruning and the input filter (ncjax.mitigate, key 0, default settings), measured on the half of the
images each defense never saw, against the reversed triggers and the true trigger.

Subjects: the real backdoored GTSRB model and its clean twin (../shared/real), the embedded demo and its clean
twin, and the five reference-network recipes of the wide benchmark (white 2x2 corner, white 4x4 centre, random
4x4 corner, two targets, a gray 3x3 corner), retrained here and saved as Keras files. The labels removed are
those the scan's verdict named; where it named none (clean models, a missed backdoor), the three smallest
triggers'. The unlearned model is written back (Keras HDF5) and read back.

    .venv/bin/python experiments/mitigation.py [--subjects real-backdoor,demo-backdoor] [--work DIR]
    .venv/bin/python experiments/mitigation.py --report   # experiments/mitigation.md and the pruning figure

Rows go to experiments/results/mitigation.jsonl (one per subject and method).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "experiments"))

import ncjax
from ncjax.lab.inject import Backdoor, classifier_from_flax
from ncjax.models.keras import save_keras_h5

REAL = ROOT.parent / "shared" / "real"
RESULTS = ROOT / "experiments" / "results" / "mitigation.jsonl"
REPORT = ROOT / "experiments" / "mitigation.md"
FIGURE = ROOT / "experiments" / "figures" / "mitigation_prune_real.png"
WIDE = ("white-2-corner", "white-4-center", "random-4-corner", "two-targets", "white-3-gray-reference")
SUBJECTS = ("real-backdoor", "real-clean", "demo-backdoor", "demo-clean", *WIDE)
METHODS = {"unlearn": {}, "prune": {}, "filter": {}}
# The whole pruning curve, to the accuracy limit, for the figure: where the true trigger stops, if it does; and
# pruning the last convolution instead of the default dense layer.
# Unlearning the real models with other keys (another split, other stamps and batches).
SEEDS = {f"unlearn-seed-{seed}": {"method": "unlearn", "seed": seed} for seed in (1, 2)}
CURVE = {"prune-to-limit": {"method": "prune", "target_attack_success": 0.0},
         "prune-last-conv-to-limit": {"method": "prune", "layer": "conv2d_5", "target_attack_success": 0.0}}
DEMO_IMAGES = 4000


def reference_square() -> ncjax.TriggerSet:
    """The reference's trigger (white 4x4, rows/cols 27..30) sending images to 33."""
    square = Backdoor.square(4, target=33)
    return ncjax.TriggerSet([33], square.mask[None], square.pattern[None])


def prepare(subject: str, work: Path) -> dict:
    """The subject's model file, data file (x in the model's scale, y) and true triggers."""
    folder = work / subject
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data.npz"
    if subject.startswith("real-"):
        name = "gtsrb_backdoor_33_logits.h5" if subject == "real-backdoor" else "gtsrb_clean_logits.h5"
        return {"model": REAL / "models" / name, "data": REAL / "gtsrb" / "gtsrb_test_32x32_uint8.npz",
                "data_key": "x_roi", "preprocess": "raw", "true": reference_square()}
    if subject.startswith("demo-"):
        from ncjax import demo

        if not data.exists():
            x, y = demo.demo_images(DEMO_IMAGES, seed=7)
            np.savez(data, x=x, y=y)
        return {"model": demo.demo_model_path(infected=subject == "demo-backdoor"), "data": data, "data_key": "x",
                "preprocess": "raw", "true": reference_square()}
    return _wide(subject, folder, data)


def _wide(subject: str, folder: Path, data: Path) -> dict:
    import wide_benchmark as wide

    recipe = next(r for r in wide.MODELS if r.name == subject)
    x, y = wide.dataset(recipe.data, 2000, wide.EVAL_SEED)
    shape = x.shape[1:]
    backdoors = [a.backdoor(shape) for a in recipe.attacks]
    model_file = folder / "model.h5"
    scale = 1 / 255 if recipe.scale == "unit" else 1.0
    if not model_file.exists():
        x_train, y_train = wide.dataset(recipe.data, wide.TRAIN_IMAGES, wide.TRAIN_SEED)
        trained, _ = wide.train(recipe, x_train, y_train, backdoors)
        save_keras_h5(classifier_from_flax(trained.params["params"], len(wide.CLASSES), shape), model_file)
        np.savez(data, x=x * scale, y=y)
    true = ncjax.TriggerSet([b.target for b in backdoors], [b.mask for b in backdoors],
                            [b.pattern for b in backdoors])
    return {"model": model_file, "data": data, "data_key": "x", "preprocess": "mnist" if scale != 1.0 else "raw",
            "true": true}


def scan(subject: str, setup: dict, work: Path) -> dict:
    """The CLI's scan (fast preset on the CPU, key 0); reused when its triggers.npz exists."""
    out = work / subject / "scan"
    if not (out / "triggers.npz").exists():
        command = [sys.executable, "-m", "ncjax.run", "--model", str(setup["model"]), "--data", str(setup["data"]),
                   "--data-key", setup["data_key"], "--preprocess", setup["preprocess"], "--out", str(out),
                   "--no-progress"]
        subprocess.run(command, check=False)
    report = json.loads((out / "report.json").read_text())
    return {"out": out, "verdict": report["verdict"], "named": report["verdict_labels"],
            "scan_s": report["timings"]["wall_s"]}


def subject_rows(subject: str, work: Path, only: set[str] | None = None) -> list[dict]:
    setup = prepare(subject, work)
    scanned = scan(subject, setup, work)
    loaded = ncjax.load_triggers(scanned["out"])
    triggers = loaded.triggers
    chosen = list(triggers.named) or [int(v) for v in triggers.labels[np.argsort(triggers.norms)[:3]]]
    model = ncjax.load_model(setup["model"])
    clean = ncjax.load_images(setup["data"], model.input_shape, key=setup["data_key"])
    images, labels = clean.images, clean.labels
    true = setup["true"]
    rows = []
    methods = {name: {"method": name} for name in METHODS} | (CURVE if subject == "real-backdoor" else {})
    if subject.startswith("real-"):
        methods |= SEEDS
    methods = {name: settings for name, settings in methods.items() if only is None or name in only}
    for method, settings in methods.items():
        start = time.perf_counter()
        config = ncjax.MitigationConfig(**{k: v for k, v in settings.items() if k not in ("layer", "seed")})
        key = jax.random.key(settings.get("seed", 0))
        result = ncjax.mitigate(model, images, labels, triggers.select(chosen), key=key, config=config,
                                preprocessing=loaded.preprocessing, layer=settings.get("layer"), true_trigger=true)
        seconds = time.perf_counter() - start
        row = {"subject": subject, "verdict": scanned["verdict"], "named": scanned["named"],
               "scan_s": round(scanned["scan_s"], 1),
               "labels_removed": chosen, "why_labels": "named by the verdict" if triggers.named else
               "the three smallest triggers (the verdict named none)", "true_targets": true.labels.tolist(),
               "seconds": round(seconds, 1), **result.as_dict(), "settings": settings,
               "device": f"{jax.default_backend()}: {jax.devices()[0].device_kind}"}
        row["method"] = method  # the variant's name ("prune-to-limit"), not only the defense's
        if method.startswith("unlearn"):
            row["read_back"] = _write_and_read(result.model, work / subject / f"{method}.h5", images)
        rows.append(row)
        print(f"{subject} {method}: accuracy {result.before.clean_accuracy:.4f} -> {result.after.clean_accuracy:.4f}; "
              f"true {result.before.true_attack_success} -> {result.after.true_attack_success} ({seconds:.0f} s)",
              flush=True)
    return rows


def _write_and_read(model, path: Path, images: np.ndarray) -> dict:
    ncjax.save_model(model, path)
    again = ncjax.load_model(path)
    sample = images[:64]
    return {"file": path.name, "max_logit_difference": float(np.max(np.abs(np.asarray(again(sample)) -
                                                                           np.asarray(model(sample)))))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", default=",".join(SUBJECTS))
    parser.add_argument("--work", default="/tmp/ncjax_mitigation", help="models, data and scans (not committed)")
    parser.add_argument("--methods", help="comma-separated methods to rerun (default: all)")
    parser.add_argument("--report", action="store_true", help="write mitigation.md and the figure from the rows")
    args = parser.parse_args()
    if args.report:
        from mitigation_report import write_report

        write_report(RESULTS, REPORT, FIGURE)
        return 0
    work = Path(args.work)
    for subject in args.subjects.split(","):
        if subject not in SUBJECTS:
            parser.error(f"unknown subject {subject!r}; choose from {', '.join(SUBJECTS)}")
        for row in subject_rows(subject, work, set(args.methods.split(",")) if args.methods else None):
            with open(RESULTS, "a") as f:
                f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
