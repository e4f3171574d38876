"""A first measurement for the trigger-agnostic statistic: MM-BD's maximum achievable margin per class (Wang,
Miller and Kesidis, IEEE S&P 2024), every class optimized at once with vmap, on the real and demo GTSRB models.

For each class k: maximize logit_k(x) - max_{j != k} logit_j(x) over images x in the model's valid pixel range
(raw 0..255 through a tanh, so no clipping stops the gradient), from several random starts; the class's margin is
the largest reached. The statistic: the largest margin against a Gamma null fitted (method of moments) to the
other classes' margins, p = 1 - F(r_max)^(K-1) (the largest of K-1 null draws), as the paper does. No clean
images are used. This is a probe outside the scan engine, to see whether the statistic separates these models
before it becomes a search kind of the engine.

    python experiments/max_margin_probe.py [--steps 150 --starts 4 --out results/max_margin_probe.jsonl]

The real models need ../shared/real.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.scipy.special import gammainc

import ncjax
from ncjax import demo

REAL = Path(__file__).resolve().parents[2] / "shared" / "real" / "models"
OUT = Path(__file__).parent / "results" / "max_margin_probe.jsonl"
MODELS = {
    "demo backdoored at 33": lambda: demo.demo_model(),
    "demo clean twin": lambda: demo.demo_model(infected=False),
    "real backdoored at 33": lambda: ncjax.load_model(REAL / "gtsrb_backdoor_33_logits.h5"),
    "real clean twin": lambda: ncjax.load_model(REAL / "gtsrb_clean_logits.h5"),
    "real clean nabagata": lambda: ncjax.load_model(REAL / "gtsrb_clean_nabagata_keras224.h5"),
    "real clean abis47": lambda: ncjax.load_model(REAL / "gtsrb_clean_abis47_keras260.h5"),
}


def max_margins(model, *, steps: int, starts: int, key: jax.Array, learning_rate: float = 0.05) -> np.ndarray:
    """The largest margin each class reaches (K,), every class and start in one vmapped step."""
    classes, shape = model.num_classes, model.input_shape
    w = jax.random.normal(key, (classes, starts, *shape)) * 0.5
    optimizer = optax.adam(learning_rate)

    def margin(w_k, k):
        x = 127.5 * (jnp.tanh(w_k) + 1)  # raw pixels in (0, 255); these models take raw pixels
        logits = model.apply(model.params, x)
        others = jnp.where(jnp.arange(classes) == k, -jnp.inf, logits)
        return logits[:, k] - others.max(-1)  # (starts,)

    def loss(w):
        return -jax.vmap(margin)(w, jnp.arange(classes)).sum()

    @jax.jit
    def step(w, state):
        grads = jax.grad(loss)(w)
        updates, state = optimizer.update(grads, state)
        w = optax.apply_updates(w, updates)
        return w, state, jax.vmap(margin)(w, jnp.arange(classes)).max(-1)

    state, best = optimizer.init(w), np.full(classes, -np.inf)
    for _ in range(steps):
        w, state, reached = step(w, state)
        best = np.maximum(best, np.asarray(reached))
    return best


def gamma_null_p(margins: np.ndarray) -> tuple[int, float]:
    """(the class with the largest margin, its p-value against a Gamma fitted to the others' margins)."""
    top = int(np.argmax(margins))
    rest = np.delete(margins, top)
    rest = rest - min(0.0, float(rest.min())) + 1e-6  # a Gamma needs positive values
    mean, var = float(rest.mean()), float(rest.var())
    shape, scale = mean**2 / var, var / mean
    cdf = float(gammainc(shape, (margins[top] - min(0.0, float(np.delete(margins, top).min()))) / scale))
    return top, 1.0 - cdf ** (len(margins) - 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--starts", type=int, default=4)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rows = []
    for name, load in MODELS.items():
        if name.startswith("real") and not REAL.exists():
            continue
        model = load()
        start = time.perf_counter()
        margins = max_margins(model, steps=args.steps, starts=args.starts, key=jax.random.key(0))
        top, p = gamma_null_p(margins)
        order = np.argsort(-margins)
        row = {"model": name, "steps": args.steps, "starts": args.starts, "top": top, "p_value": p,
               "largest": [[int(k), round(float(margins[k]), 2)] for k in order[:4]],
               "median": round(float(np.median(margins)), 2),
               "ratio_to_median": round(float(margins[top] / np.median(margins)), 2),
               "seconds": round(time.perf_counter() - start, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        args.out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
