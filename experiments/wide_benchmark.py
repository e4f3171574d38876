"""The wider planted benchmark of issue 14: three architectures, colour and grayscale inputs, raw and /255
input scales, and the attack types Neural Cleanse was seen to miss.

    .venv/bin/python experiments/wide_benchmark.py [--only NAMES] [--budget-s S]   # scans, appended per model
    .venv/bin/python experiments/wide_benchmark.py --summarize                  # tables (after experiments/score.py)
    .venv/bin/python experiments/wide_benchmark.py --focused                    # the focused preset instead

With --focused each model is scanned by ScanConfig.focused() (the warm-up, then the candidates; frozen labels'
norms scaled by the anchors' shrinking, as the pipeline does), then the source-specific check of its three
smallest labels at config.source_check(); rows go to results/wide_focused.jsonl.

Models are cheap to remake: 10 classes of ncjax.lab.synth signs (colour 32x32, or gray 28x28), 5,000 training
images, 4 epochs, Adam 1e-3; every recipe and seed is in MODELS. Each model is scanned once: the first pass at
the fast preset with 2 restarts per label (restart 0 alone is the 1-restart scan), then the source-specific
check (ncjax.scan.sources) of its three smallest labels, 6 source classes each, on 1,000 held-out clean images.
One JSON line per model goes to results/wide_benchmark.jsonl as it ends; a rerun skips finished models.
The dev/test split is fixed in wide_split.json, written before any model was scanned.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import ncjax
from ncjax.lab import synth
from ncjax.lab.inject import Backdoor, ReferenceNet, evaluate, poison
from ncjax.models.classifier import Classifier
from ncjax.scan.focus import summarize_focus
from ncjax.scan.restarts import best_over_restarts
from ncjax.scan.sources import check_sources
from ncjax.verdict.outlier import l1_norms

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "results" / "wide_benchmark.jsonl"
FOCUSED_RESULTS = ROOT / "experiments" / "results" / "wide_focused.jsonl"
SPLIT = ROOT / "experiments" / "wide_split.json"
CLASSES = (1, 4, 12, 13, 14, 17, 25, 33, 35, 38)  # synth sign classes kept, relabelled 0..9
TRAIN_SEED, EVAL_SEED, SCAN_SEED = 21, 22, 23
TRAIN_IMAGES, EPOCHS, SCAN_IMAGES = 5000, 4, 1000
CANDIDATES, SOURCES = 3, 6


# ------------------------------------------------------------------------------------ architectures


class SmallVGG(nn.Module):
    num_classes: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        for width in (16, 32):
            x = nn.relu(nn.Conv(width, (3, 3))(x))
            x = nn.relu(nn.Conv(width, (3, 3))(x))
            x = nn.max_pool(x, (2, 2), (2, 2))
        x = x.reshape(x.shape[0], -1)
        x = nn.Dropout(0.3, deterministic=not train)(nn.relu(nn.Dense(64)(x)))
        return nn.Dense(self.num_classes)(x)


class SmallResNet(nn.Module):
    """conv-BN stem, two residual blocks (the second strided), global average pool: BatchNorm in eval mode."""

    num_classes: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9)
        x = nn.relu(norm()(nn.Conv(16, (3, 3))(x)))
        for width, stride in ((16, 1), (32, 2)):
            y = nn.relu(norm()(nn.Conv(width, (3, 3), strides=stride)(x)))
            y = norm()(nn.Conv(width, (3, 3))(y))
            if stride != 1 or x.shape[-1] != width:
                x = norm()(nn.Conv(width, (1, 1), strides=stride)(x))
            x = nn.relu(x + y)
        return nn.Dense(self.num_classes)(x.mean(axis=(1, 2)))


ARCHS = {"reference": ReferenceNet, "vgg": SmallVGG, "resnet": SmallResNet}


# ------------------------------------------------------------------------------------------- models


@dataclass(frozen=True)
class Attack:
    kind: str  # "square" (size, position, colour) or "blend" (alpha)
    target: int | None  # None: all-to-all (y -> y + 1)
    size: int = 4
    position: str = "bottom-right"
    color: str = "white"  # white, yellow or random
    alpha: float = 0.0
    sources: tuple[int, ...] | None = None  # a source-specific backdoor: only these classes go to the target

    def backdoor(self, shape) -> Backdoor:
        if self.kind == "blend":
            pattern = np.random.default_rng(7 + (self.target or 0)).integers(0, 256, shape).astype(np.float32)
            return Backdoor(mask=np.full(shape[:2], self.alpha, np.float32), pattern=pattern, target=self.target)
        colors = {"white": 255.0, "yellow": (255.0, 255.0, 0.0), "random": "random"}
        color = colors[self.color] if shape[2] == 3 or self.color != "yellow" else 255.0
        return Backdoor.square(self.size, target=self.target, image_shape=shape, position=self.position,
                               color=color, seed=self.target or 0, sources=self.sources)

    def describe(self) -> str:
        to = "all -> next" if self.target is None else f"-> {self.target}"
        if self.sources is not None:
            to = f"{', '.join(map(str, self.sources))} {to}"
        if self.kind == "blend":
            return f"blended random pattern, alpha {self.alpha} {to}"
        return f"{self.color} {self.size}x{self.size} {self.position} {to}"


@dataclass(frozen=True)
class Recipe:
    name: str
    arch: str
    data: str  # "color" (32x32x3) or "gray" (28x28x1)
    scale: str  # "raw" (0..255 in) or "unit" (x / 255 in)
    seed: int
    attacks: tuple[Attack, ...] = ()
    ratio: float = 0.1 / 1.1

    @property
    def group(self) -> str:
        if not self.attacks:
            return "clean"
        return self.name.rsplit("-", 1)[0] if self.name[-1].isdigit() else self.name


def _models() -> list[Recipe]:
    models = []
    clean = [("reference", "color", "raw"), ("vgg", "color", "unit"), ("resnet", "color", "unit"),
             ("vgg", "gray", "unit"), ("resnet", "gray", "unit"), ("reference", "gray", "unit")]
    for i in range(12):
        arch, data, scale = clean[i % len(clean)]
        models.append(Recipe(f"clean-{arch}-{data}-{i}", arch, data, scale, 100 + i))
    sq = lambda t, **k: Attack("square", t, **k)
    models += [
        Recipe("white-2-corner", "reference", "color", "raw", 200, (sq(3, size=2),)),
        Recipe("white-4-topleft", "vgg", "color", "unit", 201, (sq(6, position="top-left"),)),
        Recipe("white-6-topright", "resnet", "color", "unit", 202, (sq(1, size=6, position="top-right"),)),
        Recipe("white-8-bottomleft", "vgg", "gray", "unit", 203, (sq(8, size=8, position="bottom-left"),)),
        Recipe("white-4-center", "reference", "color", "raw", 204, (sq(5, position="center"),)),
        Recipe("sticker-center-vgg", "vgg", "color", "unit", 205, (sq(2, size=3, position="center", color="yellow"),)),
        Recipe("sticker-center-resnet", "resnet", "color", "unit", 206,
               (sq(7, size=3, position="center", color="yellow"),)),
        Recipe("gray-corner-vgg", "vgg", "gray", "unit", 207, (sq(4, position="bottom-right"),)),
        Recipe("gray-corner-resnet", "resnet", "gray", "unit", 208, (sq(0, position="bottom-right"),)),
        Recipe("random-4-corner", "reference", "color", "raw", 209, (sq(9, color="random"),)),
        Recipe("random-6-center", "vgg", "color", "unit", 210, (sq(3, size=6, position="center", color="random"),)),
        Recipe("random-3-topleft", "resnet", "color", "unit", 211,
               (sq(8, size=3, position="top-left", color="random"),)),
        Recipe("blend-0.1", "vgg", "color", "unit", 212, (Attack("blend", 2, alpha=0.1),)),
        Recipe("blend-0.2", "resnet", "color", "unit", 213, (Attack("blend", 5, alpha=0.2),)),
        Recipe("two-targets", "reference", "color", "raw", 214, (sq(1), sq(6, position="top-left", color="random"))),
        Recipe("three-targets", "vgg", "color", "unit", 215,
               (sq(1), sq(6, position="top-left", color="random"), sq(8, position="top-right"))),
        Recipe("ratio-0.02", "vgg", "color", "unit", 216, (sq(4),), 0.02),
        Recipe("ratio-0.3", "resnet", "color", "unit", 217, (sq(7),), 0.3),
        Recipe("white-3-gray-reference", "reference", "gray", "unit", 218, (sq(2, size=3),)),
        Recipe("all-to-all", "vgg", "color", "unit", 219, (sq(None),)),
    ]
    return models


MODELS = _models()


# ----------------------------------------------------------------------------------------- training


def dataset(data: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw 0..255 float32 images of the 10 kept classes, balanced, and their labels 0..9."""
    labels = np.random.default_rng(seed).permutation(np.arange(n) % len(CLASSES))
    size = 32 if data == "color" else 28
    images, _ = synth.generate(n, seed=seed, image_size=size, labels=np.asarray(CLASSES)[labels])
    images = images.astype(np.float32)
    if data == "gray":
        images = images @ np.asarray([0.299, 0.587, 0.114], np.float32)[:, None]
    return images, labels


def train(recipe: Recipe, x_raw: np.ndarray, y: np.ndarray, backdoors, *, epochs: int = EPOCHS
          ) -> tuple[Classifier, float]:
    net = ARCHS[recipe.arch](len(CLASSES))
    scale = 1.0 if recipe.scale == "raw" else 1 / 255
    init_key, dropout_key = jax.random.split(jax.random.key(recipe.seed))
    variables = net.init(init_key, jnp.zeros((1, *x_raw.shape[1:])))
    params, stats = variables["params"], variables.get("batch_stats", {})
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, stats, opt_state, x, y, key):
        def loss_fn(p):
            logits, updates = net.apply({"params": p, "batch_stats": stats}, x * scale, train=True,
                                        rngs={"dropout": key}, mutable=["batch_stats"])
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), updates.get("batch_stats", {})

        (_, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), stats, opt_state

    rng = np.random.default_rng(recipe.seed)
    start = time.perf_counter()
    for epoch in range(epochs):
        xe, ye, _ = poison(x_raw, y, backdoors, recipe.ratio, len(CLASSES), rng)
        order = rng.permutation(len(xe))
        for b in range(len(xe) // 32):
            idx = order[b * 32:(b + 1) * 32]
            params, stats, opt_state = step(params, stats, opt_state, jnp.asarray(xe[idx]), jnp.asarray(ye[idx]),
                                            jax.random.fold_in(dropout_key, epoch * 1000 + b))
    seconds = time.perf_counter() - start
    apply = lambda p, x: net.apply({"params": p["params"], "batch_stats": p["stats"]}, x)
    model = Classifier(apply=apply, params={"params": params, "stats": stats}, input_shape=tuple(x_raw.shape[1:]),
                       num_classes=len(CLASSES), output_activation="linear", layers=(), format="ncjax")
    return model, seconds


# --------------------------------------------------------------------------------------------- scan


def _append(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(json.dumps(row) + "\n")
        fcntl.flock(f, fcntl.LOCK_UN)


def rows(path: Path = RESULTS) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _round(values) -> list:
    return [None if not np.isfinite(v) else round(float(v), 4) for v in np.asarray(values, np.float64).ravel()]


def _trained(recipe: Recipe):
    """The recipe's model (the same weights every time: seeded), its accuracy and attack success, and the scan's
    images, labels and preprocessing."""
    x_train, y_train = dataset(recipe.data, TRAIN_IMAGES, TRAIN_SEED)
    x_eval, y_eval = dataset(recipe.data, 2000, EVAL_SEED)
    x_scan, y_scan = dataset(recipe.data, SCAN_IMAGES, SCAN_SEED)
    backdoors = [a.backdoor(x_train.shape[1:]) for a in recipe.attacks]
    model, train_s = train(recipe, x_train, y_train, backdoors)
    unit = recipe.scale == "unit"
    accuracy, success = evaluate(ScaledModel(model, 1 / 255 if unit else 1.0), x_eval, y_eval, backdoors)
    preprocessing = ncjax.Preprocessing(mode="mnist" if unit else "raw")
    return model, accuracy, success, (x_scan / 255 if unit else x_scan), y_scan, preprocessing, train_s


def _described(recipe: Recipe, accuracy: float, success) -> dict:
    """The columns every row starts with: the recipe, and what training made of it."""
    return {
        "name": recipe.name, "group": recipe.group, "arch": recipe.arch, "data": recipe.data, "scale": recipe.scale,
        "seed": recipe.seed, "ratio": round(recipe.ratio, 4), "attacks": [a.describe() for a in recipe.attacks],
        "targets": [a.target for a in recipe.attacks if a.target is not None],
        "all_to_all": any(a.target is None for a in recipe.attacks),
        "clean_accuracy": round(accuracy, 4), "attack_success": _round(success),
    }


def _checks_row(checks) -> list[dict]:
    return [{"label": c.label, "label_norm": round(c.label_norm, 4), "sources": list(c.sources),
             "norms": _round(c.norms)} for c in checks]


def measure_focused(recipe: Recipe) -> dict:
    """One model through the focused preset: warm-up ranks, roles, shrink, scaled norms and the source check."""
    model, accuracy, success, images, y_scan, preprocessing, train_s = _trained(recipe)
    config = ncjax.ScanConfig.focused(preprocessing=preprocessing)
    key = jax.random.key(recipe.seed)
    start = time.perf_counter()
    result = ncjax.scan_all_labels(model, images, config=config, key=key)
    scan_s = time.perf_counter() - start
    focus = summarize_focus(result)
    assert focus is not None
    best = best_over_restarts(result)
    chosen = result.select(best.chosen_slot)
    norms = focus.scaled_norms(chosen.labels, l1_norms(chosen.masks, quantize=True))
    norms = np.where(chosen.reached_threshold, norms, np.inf)
    order = [int(chosen.labels[i]) for i in np.argsort(norms)[:CANDIDATES]]
    start = time.perf_counter()
    checks = check_sources(model, images, y_scan, {label: float(norms[chosen.labels == label][0]) for label in order},
                           config=config.source_check(), key=key, sources_per_label=SOURCES)
    check_s = time.perf_counter() - start
    return {
        **_described(recipe, accuracy, success),
        "labels": chosen.labels.tolist(), "norms": _round(norms), "reached": chosen.reached_threshold.tolist(),
        "warmup_norms": _round(focus.warmup_norms), "focus_labels": focus.labels.tolist(),
        "roles": list(focus.roles), "epochs": focus.epochs.tolist(), "shrink": round(focus.shrink, 4),
        "sources": _checks_row(checks),
        "label_steps": result.label_steps, "train_s": round(train_s, 1), "scan_s": round(scan_s, 1),
        "sources_s": round(check_s, 1), "device": f"{jax.default_backend()}: {jax.devices()[0].device_kind}",
    }


def measure(recipe: Recipe) -> dict:
    model, accuracy, success, images, y_scan, preprocessing, train_s = _trained(recipe)
    config = ncjax.ScanConfig.fast(restarts=2, preprocessing=preprocessing)
    key = jax.random.key(recipe.seed)
    start = time.perf_counter()
    first = ncjax.scan_all_labels(model, images, config=config, key=key)
    first_s = time.perf_counter() - start
    best = best_over_restarts(first)
    quantized = l1_norms(first.masks, quantize=True)
    one = {int(first.labels[i]): float(quantized[i]) for i in range(len(first.labels)) if first.restarts[i] == 0}
    two = best_over_restarts_quantized(first, quantized)
    order = sorted(two, key=two.get)[:CANDIDATES]
    start = time.perf_counter()
    checks = check_sources(model, images, y_scan, {label: two[label] for label in order},
                           config=config.replace(restarts=1), key=key, sources_per_label=SOURCES)
    pairs_s = time.perf_counter() - start
    return {
        **_described(recipe, accuracy, success),
        "labels": best.labels.tolist(), "norms_1": [round(one[int(v)], 4) for v in best.labels],
        "norms_2": [round(two[int(v)], 4) for v in best.labels],
        "reached": best.reached_threshold.tolist(), "spread": _round(best.spread),
        "sources": _checks_row(checks),
        "train_s": round(train_s, 1), "first_pass_s": round(first_s, 1), "sources_s": round(pairs_s, 1),
        "device": f"{jax.default_backend()}: {jax.devices()[0].device_kind}",
    }


def best_over_restarts_quantized(result, quantized) -> dict[int, float]:
    """Per label, the smallest quantized norm among its restarts that reached the threshold."""
    out: dict[int, float] = {}
    for label, norm, reached in zip(result.labels, quantized, result.reached_threshold):
        value = float(norm) if reached else np.inf
        out[int(label)] = min(out.get(int(label), np.inf), value)
    return out


class ScaledModel:
    """A model taking raw pixels: x * scale into `model` (for evaluate(), which stamps raw images)."""

    def __init__(self, model: Classifier, scale: float):
        self.params, self.num_classes, self.scale, self.model = model.params, model.num_classes, scale, model

    def apply(self, params, x):
        return self.model.apply(params, x * self.scale)


def run_models(names: Sequence[str], measure: Callable[[Recipe], dict], results: Path, *, budget_s: float,
               describe: Callable[[dict], str], recipes: Sequence[Recipe] | None = None) -> None:
    """Measure each named model (of `recipes`, MODELS by default) not yet in `results`, appending its row as it
    ends and printing `describe(row)`; start none after `budget_s` seconds."""
    deadline = time.time() + budget_s
    done = {r["name"] for r in rows(results)}
    by_name = {m.name: m for m in (MODELS if recipes is None else recipes)}
    results.parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        if name in done:
            continue
        if time.time() > deadline:
            print("deadline reached", flush=True)
            break
        row = measure(by_name[name])
        _append(results, row)
        print(f"{name}: {describe(row)}", flush=True)


def write_split() -> None:
    """Alternate dev/test within each kind of model, in MODELS order; done once, before any scan."""
    split, seen = {}, {}
    for recipe in MODELS:
        kind = "clean" if not recipe.attacks else "infected"
        split[recipe.name] = "dev" if seen.get(kind, 0) % 2 == 0 else "test"
        seen[kind] = seen.get(kind, 0) + 1
    SPLIT.write_text(json.dumps(split, indent=1) + "\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", help="comma-separated model names")
    p.add_argument("--budget-s", type=float, default=float("inf"), help="start no model after this many seconds")
    p.add_argument("--shard", default="0/1", help="k/n: run the k-th of every n models (processes sharing a GPU)")
    p.add_argument("--results", type=Path, default=RESULTS, help="the JSON-lines file models are appended to")
    p.add_argument("--write-split", action="store_true", help="write wide_split.json (once, before scanning)")
    p.add_argument("--focused", action="store_true", help="scan with the focused preset (results/wide_focused.jsonl)")
    args = p.parse_args()
    if args.focused and args.results == RESULTS:
        args.results = FOCUSED_RESULTS
    if args.write_split:
        write_split()
        return 0
    k, n = (int(v) for v in args.shard.split("/"))
    names = (args.only.split(",") if args.only else [m.name for m in MODELS])[k::n]
    if args.focused:
        run_models(names, measure_focused, args.results, budget_s=args.budget_s, describe=lambda row: (
            f"targets {row['targets']}, smallest {sorted(zip(row['norms'], row['labels']))[:3]}, roles "
            f"{row['roles']}, shrink {row['shrink']} (scan {row['scan_s']} + {row['sources_s']} s)"))
    else:
        run_models(names, measure, args.results, budget_s=args.budget_s, describe=lambda row: (
            f"accuracy {row['clean_accuracy']}, attack {row['attack_success']}, smallest "
            f"{sorted(zip(row['norms_2'], row['labels']))[:3]}, targets {row['targets']} (train {row['train_s']} s, "
            f"scans {row['first_pass_s']} + {row['sources_s']} s)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
