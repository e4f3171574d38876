"""The GTSRB network's forward and input gradient on the CPU, with its 3x3 convolutions written three ways.

lax: lax.conv_general_dilated, as the importers build it; im2col: the nine shifted windows concatenated and one
matmul; custom-vjp: lax's forward with the input gradient written by hand as a convolution in XLA's canonical
NHWC/HWIO layout (full padding, kernel flipped and transposed). Random weights, random raw images; medians of 11
calls after warm-up, each variant's compiled function timed in alternation.

    XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= .venv/bin/python experiments/cpu_conv_variants.py
"""
from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

LAYERS = [("conv", 3, 32, "SAME"), ("conv", 32, 32, "VALID"), ("pool",), ("conv", 32, 64, "SAME"),
          ("conv", 64, 64, "VALID"), ("pool",), ("conv", 64, 128, "SAME"), ("conv", 128, 128, "VALID"), ("pool",),
          ("flatten",), ("dense", 512, 512), ("dense", 512, 43)]
DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def conv_lax(x, w, padding):
    return lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=DIMENSIONS)


def conv_im2col(x, w, padding):
    kh, kw, cin, cout = w.shape
    if padding == "SAME":
        x = jnp.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    n, h, width, _ = x.shape
    oh, ow = h - kh + 1, width - kw + 1
    patches = jnp.concatenate([x[:, i:i + oh, j:j + ow, :] for i in range(kh) for j in range(kw)], axis=-1)
    return (patches.reshape(-1, kh * kw * cin) @ w.reshape(kh * kw * cin, cout)).reshape(n, oh, ow, cout)


def _with_input_gradient(padding):
    @jax.custom_vjp
    def conv(x, w):
        return conv_lax(x, w, padding)

    def forward(x, w):
        return conv_lax(x, w, padding), (x, w)

    def backward(saved, dy):
        x, w = saved
        kh, kw = w.shape[:2]
        pads = ((kh - 1, kh - 1), (kw - 1, kw - 1)) if padding == "VALID" else ((kh // 2,) * 2, (kw // 2,) * 2)
        dx = lax.conv_general_dilated(dy, jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2), (1, 1), pads,
                                      dimension_numbers=DIMENSIONS)
        _, weight_vjp = jax.vjp(lambda v: conv_lax(x, v, padding), w)
        return dx, weight_vjp(dy)[0]

    conv.defvjp(forward, backward)
    return conv


CUSTOM = {"SAME": _with_input_gradient("SAME"), "VALID": _with_input_gradient("VALID")}
VARIANTS = {"lax": conv_lax, "im2col": conv_im2col, "custom-vjp": lambda x, w, padding: CUSTOM[padding](x, w)}


def network(conv):
    def apply(params, x):
        for layer, p in zip(LAYERS, params):
            if layer[0] == "conv":
                x = jax.nn.relu(conv(x, p[0], layer[3]) + p[1])
            elif layer[0] == "pool":  # the importers' blockwise max
                n, h, w, c = x.shape
                x = x[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
            elif layer[0] == "flatten":
                x = x.reshape(x.shape[0], -1)
            else:
                x = x @ p[0] + p[1]
                x = jax.nn.relu(x) if layer[2] != 43 else x
        return x

    return apply


def main() -> None:
    rng = np.random.default_rng(0)
    params = [(jnp.asarray(rng.normal(0, 0.05, (3, 3, *spec[1:3]) if spec[0] == "conv" else spec[1:3]), jnp.float32),
               jnp.zeros(spec[2], jnp.float32)) if spec[0] in ("conv", "dense") else None for spec in LAYERS]
    for batch in (32, 344):
        x = jnp.asarray(rng.uniform(0, 255, (batch, 32, 32, 3)), jnp.float32)
        compiled = {}
        for name, conv in VARIANTS.items():
            apply = network(conv)
            compiled[name] = (jax.jit(lambda p, v, f=apply: f(p, v).sum()),
                              jax.jit(jax.grad(lambda v, p, f=apply: f(p, v).sum())))
        gradients = {name: np.asarray(g(x, params)) for name, (_, g) in compiled.items()}
        times: dict[str, dict[str, list[float]]] = {name: {"forward": [], "gradient": []} for name in compiled}
        for _ in range(11):
            for name, (f, g) in compiled.items():
                start = time.perf_counter()
                f(params, x).block_until_ready()
                times[name]["forward"].append(time.perf_counter() - start)
                start = time.perf_counter()
                g(x, params).block_until_ready()
                times[name]["gradient"].append(time.perf_counter() - start)
        for name, parts in times.items():
            spread = np.abs(gradients[name] - gradients["lax"]).max() / np.abs(gradients["lax"]).max()
            print(f"batch {batch} {name:10s}: forward {statistics.median(parts['forward']) * 1e3:6.1f} ms, forward "
                  f"and input gradient {statistics.median(parts['gradient']) * 1e3:6.1f} ms (gradient differs from "
                  f"lax's by {spread:.1e} of its largest)", flush=True)


if __name__ == "__main__":
    main()
