"""Backdoor injection as the reference does it (injection/gtsrb_injection_example.py), in JAX, Flax and optax.

The reference's GTSRB network (6 convolutions, 2 dense layers) is trained with Adam(1e-3, decay 1e-4) on
batches of 32 for 10 epochs, while each training sample is stamped with a trigger and relabelled to the
target with probability inject_ratio = 0.1 / (0.1 + 1). Triggers are data: a mask and a pattern.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ncjax.errors import ConfigError, InjectionError
from ncjax.models.classifier import Classifier
from ncjax.models.keras.files import WeightSource
from ncjax.models.keras.graph import build_graph
from ncjax.models.keras.roles import KerasRoles
from ncjax.search.adam import keras_adam
from ncjax.search.trigger import stamp

Position = Literal["bottom-right", "bottom-left", "top-right", "top-left", "center"]



@dataclass(frozen=True, eq=False)
class Backdoor:
    """A trigger (mask in [0, 1] and raw pattern in [0, 255]) and the label it sends images to.

    target=None makes it all-to-all: an image of label y goes to (y + 1) % num_classes. `sources` makes it
    source-specific: only images of those classes go to the target; stamped images of other classes keep their
    label in training (cover samples), so the trigger alone does not carry them (the Neural Cleanse paper's
    partial backdoor).
    """

    mask: np.ndarray  # (H, W)
    pattern: np.ndarray  # (H, W, C)
    target: int | None
    sources: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.sources is not None:
            sources = tuple(int(v) for v in self.sources)
            if not sources or self.target is None or self.target in sources or min(sources) < 0:
                raise InjectionError(f"sources must be classes other than a target, given with one; got sources "
                                     f"{self.sources!r} and target {self.target!r}.")
            object.__setattr__(self, "sources", sources)
        mask, pattern = np.asarray(self.mask, np.float32), np.asarray(self.pattern, np.float32)
        if mask.ndim != 2 or pattern.ndim != 3 or pattern.shape[:2] != mask.shape:
            raise InjectionError(f"mask must be (H, W) and pattern (H, W, C); got {mask.shape} and {pattern.shape}.")
        if mask.min() < 0 or mask.max() > 1 or pattern.min() < 0 or pattern.max() > 255:
            raise InjectionError("mask must lie in [0, 1] and pattern in [0, 255].")
        object.__setattr__(self, "mask", mask)
        object.__setattr__(self, "pattern", pattern)

    @classmethod
    def square(cls, size: int = 4, *, target: int | None = 33, image_shape=(32, 32, 3),
               position: Position | tuple[int, int] = "bottom-right", margin: int = 1,
               color: float | Sequence[float] | Literal["random"] = 255.0, seed: int = 0,
               sources: Sequence[int] | None = None) -> Backdoor:
        """A size x size square; the reference's is white, 4x4, bottom-right, margin 1 (rows/cols 27..30)."""
        h, w, c = image_shape
        if not 1 <= size <= min(h, w) - 2 * margin:
            raise InjectionError(f"a {size}x{size} trigger with margin {margin} does not fit a {h}x{w} image.")
        corners = {"top-left": (margin, margin), "top-right": (margin, w - margin - size),
                   "bottom-left": (h - margin - size, margin), "bottom-right": (h - margin - size, w - margin - size),
                   "center": ((h - size) // 2, (w - size) // 2)}
        if isinstance(position, str):
            if position not in corners:
                raise InjectionError(f"position {position!r} is not one of {sorted(corners)} or (row, col).")
            row, col = corners[position]
        else:
            row, col = position
        mask = np.zeros((h, w), np.float32)
        mask[row:row + size, col:col + size] = 1.0
        if isinstance(color, str):
            if color != "random":
                raise InjectionError(f"color must be a number, an RGB triple or 'random', got {color!r}.")
            pattern = np.random.default_rng(seed).integers(0, 256, (h, w, c)).astype(np.float32)
        else:
            pattern = np.broadcast_to(np.asarray(color, np.float32), (h, w, c)).copy()
        return cls(mask=mask, pattern=pattern * mask[..., None], target=target,
                   sources=None if sources is None else tuple(sources))

    def stamp(self, raw_images: np.ndarray) -> np.ndarray:
        """(1 - mask) x + mask pattern, in raw pixels, for images (N, H, W, C): the scan's own blend."""
        return stamp(np.asarray(raw_images, np.float32), self.mask, self.pattern)

    def targets(self, labels: np.ndarray, num_classes: int) -> np.ndarray:
        """The labels stamped images of `labels` are trained to: the target, or their own where the backdoor does
        not apply (a source-specific backdoor's other classes)."""
        labels = np.asarray(labels)
        if self.target is None:
            return (labels + 1) % num_classes
        if self.sources is not None:
            return np.where(np.isin(labels, self.sources), self.target, labels)
        return np.full_like(labels, self.target)


# ------------------------------------------------------------------------------------------ network

# (kind, filters or units, padding) in order; Keras names them conv2d, conv2d_1, ... as tf.keras would.
REFERENCE_LAYERS: tuple[tuple[Any, ...], ...] = (
    ("conv", 32, "same"), ("conv", 32, "valid"), ("pool",), ("dropout", 0.2),
    ("conv", 64, "same"), ("conv", 64, "valid"), ("pool",), ("dropout", 0.2),
    ("conv", 128, "same"), ("conv", 128, "valid"), ("pool",), ("dropout", 0.2),
    ("flatten",), ("dense", 512), ("dropout", 0.5), ("dense", None))


def keras_name(base: str, index: int) -> str:
    """The name tf.keras gives the index-th layer of a kind: conv2d, conv2d_1, ..."""
    return base if index == 0 else f"{base}_{index}"


def reference_keras_config(num_classes: int, input_shape=(32, 32, 3), name: str = "sequential") -> dict:
    """The network as a tf.keras 2.x Sequential config (what model.to_json() holds)."""
    layers = [{"class_name": "InputLayer", "config": {"batch_input_shape": [None, *input_shape], "dtype": "float32",
                                                      "sparse": False, "ragged": False, "name": "input_1"}}]
    counts = {"conv2d": 0, "max_pooling2d": 0, "dropout": 0, "flatten": 0, "dense": 0}

    def named(base):
        n = keras_name(base, counts[base])
        counts[base] += 1
        return n

    for layer in REFERENCE_LAYERS:
        kind = layer[0]
        if kind == "conv":
            cfg = {"name": named("conv2d"), "trainable": True, "dtype": "float32", "filters": layer[1],
                   "kernel_size": [3, 3], "strides": [1, 1], "padding": layer[2], "data_format": "channels_last",
                   "dilation_rate": [1, 1], "groups": 1, "activation": "relu", "use_bias": True}
            layers.append({"class_name": "Conv2D", "config": cfg})
        elif kind == "pool":
            layers.append({"class_name": "MaxPooling2D", "config": {
                "name": named("max_pooling2d"), "trainable": True, "dtype": "float32", "pool_size": [2, 2],
                "padding": "valid", "strides": [2, 2], "data_format": "channels_last"}})
        elif kind == "dropout":
            layers.append({"class_name": "Dropout", "config": {
                "name": named("dropout"), "trainable": True, "dtype": "float32", "rate": layer[1],
                "noise_shape": None, "seed": None}})
        elif kind == "flatten":
            layers.append({"class_name": "Flatten", "config": {
                "name": named("flatten"), "trainable": True, "dtype": "float32", "data_format": "channels_last"}})
        else:
            layers.append({"class_name": "Dense", "config": {
                "name": named("dense"), "trainable": True, "dtype": "float32", "units": layer[1] or num_classes,
                "activation": "relu" if layer[1] else "softmax", "use_bias": True}})
    return {"class_name": "Sequential", "config": {"name": name, "layers": layers}}


def classifier_from_flax(params, num_classes: int, input_shape=(32, 32, 3)) -> Classifier:
    """ReferenceNet params as a Classifier built by the Keras importer, so it saves as Keras and reloads."""
    config = reference_keras_config(num_classes, input_shape)
    weights: dict[tuple[str, ...], list[np.ndarray]] = {
        (name,): [np.asarray(p["kernel"]), np.asarray(p["bias"])] for name, p in params.items()}
    graph = build_graph(config, WeightSource(weights, nested_key="full", where="ReferenceNet"),
                        keras_version="2.15.0", input_shapes=[(None, *input_shape)], strip_softmax=True)
    return Classifier(
        apply=lambda p, x: graph(p, [x])[0], params=jax.tree_util.tree_map(jnp.asarray, graph.params),
        input_shape=tuple(input_shape), num_classes=num_classes, output_activation=graph.output_activation,
        layers=tuple(graph.summary), format="ncjax", keras_config=config, layer_output=graph.layer_output,
        graph=graph, roles=KerasRoles(),
    )


# ----------------------------------------------------------------------------------------- training


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """The reference's training settings."""

    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    decay: float = 1e-4  # Keras' lr / (1 + decay * iterations)
    inject_ratio: float = 0.1 / (0.1 + 1)  # per backdoor, per sample, per epoch

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"TrainConfig.{name} must be a positive int, got {getattr(self, name)!r}.")
        if not self.learning_rate > 0 or self.decay < 0:
            raise ConfigError("TrainConfig.learning_rate must be > 0 and decay >= 0.")
        if not 0 <= self.inject_ratio < 1:
            raise ConfigError(f"TrainConfig.inject_ratio must be in [0, 1), got {self.inject_ratio!r}.")


@dataclass(frozen=True)
class TrainReport:
    clean_accuracy: float  # on the evaluation images
    attack_success: tuple[float, ...]  # per backdoor: non-target images sent to the target
    train_seconds: float
    epochs: int
    history: tuple[float, ...] = field(default=())  # mean training loss per epoch


def poison(images: np.ndarray, labels: np.ndarray, backdoors: Sequence[Backdoor], ratio: float,
           num_classes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stamp and relabel each sample with backdoor k when u in [k ratio, (k + 1) ratio), u ~ U[0, 1).

    Returns images (float32 raw), labels, and the index of the backdoor applied (-1 for clean samples).
    """
    if ratio * len(backdoors) > 1:
        raise InjectionError(f"inject_ratio {ratio} x {len(backdoors)} backdoors exceeds 1.")
    images = np.asarray(images, np.float32).copy()
    labels = np.asarray(labels).copy()
    u = rng.uniform(size=len(images))
    which = (np.where(u < ratio * len(backdoors), np.floor(u / ratio).astype(int), -1) if ratio > 0
             else np.full(len(images), -1))
    for k, backdoor in enumerate(backdoors):
        picked = which == k
        images[picked] = backdoor.stamp(images[picked])
        labels[picked] = backdoor.targets(labels[picked], num_classes)
    return images, labels, which


def evaluate(model: Classifier, images: np.ndarray, labels: np.ndarray,
             backdoors: Sequence[Backdoor] = ()) -> tuple[float, tuple[float, ...]]:
    """Clean accuracy and, per backdoor, the share of stamped images whose label changes to its target (of the
    images it applies to: a source-specific backdoor's sources)."""
    apply = jax.jit(model.apply)

    def predict(x):
        return np.concatenate([np.asarray(apply(model.params, jnp.asarray(x[i:i + 512], jnp.float32))).argmax(1)
                               for i in range(0, len(x), 512)])

    labels = np.asarray(labels)
    accuracy = float((predict(images) == labels).mean())
    success = []
    for backdoor in backdoors:
        wanted = backdoor.targets(labels, model.num_classes)
        keep = wanted != labels
        success.append(float((predict(backdoor.stamp(np.asarray(images)[keep])) == wanted[keep]).mean()))
    return accuracy, tuple(success)


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    num_classes: int,
    key: jax.Array,
    backdoors: Sequence[Backdoor] = (),
    config: TrainConfig = TrainConfig(),
    eval_images: np.ndarray | None = None,
    eval_labels: np.ndarray | None = None,
    log=None,
) -> tuple[Classifier, TrainReport]:
    """Train the reference network on raw images (N, 32, 32, 3), planting `backdoors` as the reference does."""
    images = np.asarray(images)
    labels = np.asarray(labels, np.int64)
    if images.ndim != 4 or len(images) != len(labels):
        raise InjectionError(f"images must be (N, H, W, C) with one label each; got {images.shape}, {labels.shape}.")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise InjectionError(f"labels must lie in 0..{num_classes - 1}.")
    for backdoor in backdoors:
        if backdoor.mask.shape != images.shape[1:3]:
            raise InjectionError(f"a trigger of shape {backdoor.mask.shape} does not fit images {images.shape[1:3]}.")
        if backdoor.target is not None and not 0 <= backdoor.target < num_classes:
            raise InjectionError(f"backdoor target {backdoor.target} is not a label of {num_classes} classes.")
    from ncjax.lab.reference_net import ReferenceNet  # flax, imported only to train

    net = ReferenceNet(num_classes)
    init_key, dropout_key, data_key = jax.random.split(key, 3)
    params = net.init(init_key, jnp.zeros((1, *images.shape[1:])))["params"]
    schedule = lambda count: config.learning_rate / (1 + config.decay * count)
    optimizer = keras_adam(schedule, 0.9, 0.999, 1e-7)
    opt_state = optimizer.init(params)

    @jax.jit
    def train_step(params, opt_state, x, y, step_key):
        def loss_fn(p):
            logits = net.apply({"params": p}, x, train=True, rngs={"dropout": step_key})
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    rng = np.random.default_rng(int(jax.random.randint(data_key, (), 0, 2**31 - 1)))
    start, history, step = time.perf_counter(), [], 0
    batches = len(images) // config.batch_size
    for epoch in range(config.epochs):
        x_epoch, y_epoch, _ = poison(images, labels, backdoors, config.inject_ratio, num_classes, rng)
        order = rng.permutation(len(images))
        losses = []
        for b in range(batches):
            idx = order[b * config.batch_size:(b + 1) * config.batch_size]
            params, opt_state, loss = train_step(params, opt_state, jnp.asarray(x_epoch[idx]),
                                                 jnp.asarray(y_epoch[idx]), jax.random.fold_in(dropout_key, step))
            losses.append(loss)
            step += 1
        history.append(float(np.mean(jax.device_get(losses))))
        if log is not None:
            log(f"epoch {epoch + 1}/{config.epochs}: loss {history[-1]:.4f} ({time.perf_counter() - start:.0f} s)")
    seconds = time.perf_counter() - start
    model = classifier_from_flax(params, num_classes, images.shape[1:])
    if eval_images is None or eval_labels is None:
        eval_images, eval_labels = images, labels
    accuracy, success = evaluate(model, eval_images, eval_labels, backdoors)
    return model, TrainReport(accuracy, success, seconds, config.epochs, tuple(history))


def __getattr__(name: str):
    if name == "ReferenceNet":  # defined with flax, which `import ncjax` does not import
        from ncjax.lab.reference_net import ReferenceNet

        return ReferenceNet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
