"""Neural Cleanse for one label, written line by line after the reference (visualizer.py) in float64.

A plain Python loop, deliberately not sharing ncjax's optimizer or schedule code, so that tests can check
ncjax's vmapped scan against it. It shares only the batch order and the initial trigger (ncjax's
documented RNG choices) so that both see the same numbers.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ncjax.search.step import draw_batch
from ncjax.search.trigger import init_trigger

EPS = 1e-7


def reference_scan_label(apply, params, raw_images, label, config, key, data_key):
    """Returns dict(mask, pattern, reg_best, epochs, costs, asrs, regs, early_stopped) for one label."""
    h, w, c = raw_images.shape[1:]
    trig = init_trigger(jax.random.fold_in(key, label), (h, w, c), config.upsample)  # float32 draws, as ncjax
    with jax.enable_x64(True):
        mask_tanh = np.array(trig.mask_tanh, np.float64)  # writable copies
        pattern_tanh = np.array(trig.pattern_tanh, np.float64)
        params64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
        images64 = jnp.asarray(raw_images, jnp.float64)
        pre = config.preprocessing

        def outputs(mt, pt, x, cost):
            mask = jnp.tanh(mt) / (2 - EPS) + 0.5  # (H, W, 1)
            mask = jnp.repeat(jnp.repeat(mask, config.upsample, 0), config.upsample, 1)[:h, :w]
            pattern = (jnp.tanh(pt) / (2 - EPS) + 0.5) * 255.0
            adv = (1 - mask) * x + mask * pattern
            logits = apply(params64, pre.to_model(adv))
            probs = jax.nn.softmax(logits, axis=-1)
            onehot = jax.nn.one_hot(label, logits.shape[-1], dtype=jnp.float64)
            if config.loss == "reference":
                ce = -jnp.sum(probs * jnp.log(jnp.clip(onehot, EPS, 1 - EPS)), axis=-1)
            else:
                ce = -jnp.log(probs[:, label])
            if config.regularization == "l1":
                reg = jnp.sum(jnp.abs(jnp.repeat(mask, c, -1))) / c
            else:
                reg = jnp.sqrt(jnp.sum(jnp.square(jnp.repeat(mask, c, -1))) / c)
            loss = ce + reg * cost
            acc = (jnp.argmax(logits, -1) == label).astype(jnp.float64)
            return jnp.sum(loss), (ce, reg, loss, acc)

        grad_fn = jax.jit(jax.grad(outputs, argnums=(0, 1), has_aux=True))

        # Keras 2.2 Adam, state reset for the label.
        lr, b1, b2, eps = config.learning_rate, config.beta_1, config.beta_2, config.adam_epsilon
        m = [np.zeros_like(mask_tanh), np.zeros_like(pattern_tanh)]
        v = [np.zeros_like(mask_tanh), np.zeros_like(pattern_tanh)]
        t = 0

        cost = 0.0 if config.cost_starts_at_zero else config.init_cost
        mask_best = pattern_best = None
        reg_best = float("inf")
        cost_set_counter = cost_up_counter = cost_down_counter = 0
        cost_up_flag = cost_down_flag = False
        early_stop_counter = 0
        early_stop_reg_best = reg_best
        costs, asrs, regs = [], [], []
        early_stopped = False
        step_index = 0
        epochs = 0
        for _epoch in range(config.max_epochs):
            ce_list, reg_list, loss_list, acc_list = [], [], [], []
            for _ in range(config.nb_sample // config.batch_size):
                idx = np.asarray(draw_batch(data_key, jnp.asarray(step_index, jnp.int32), len(raw_images),
                                            config.batch_size))
                step_index += 1
                (g_mask, g_pattern), (ce, reg, loss, acc) = grad_fn(mask_tanh, pattern_tanh, images64[idx], cost)
                t += 1
                lr_t = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
                for k, (p, g) in enumerate(((mask_tanh, g_mask), (pattern_tanh, g_pattern))):
                    g = np.asarray(g)
                    m[k] = b1 * m[k] + (1 - b1) * g
                    v[k] = b2 * v[k] + (1 - b2) * g * g
                    p -= lr_t * m[k] / (np.sqrt(v[k]) + eps)
                ce_list.extend(np.asarray(ce).ravel())
                reg_list.append(float(reg))
                loss_list.extend(np.asarray(loss).ravel())
                acc_list.extend(np.asarray(acc).ravel())
            avg_reg, avg_acc = np.mean(reg_list), np.mean(acc_list)
            epochs += 1
            costs.append(cost)
            asrs.append(avg_acc)
            regs.append(avg_reg)
            if avg_acc >= config.attack_success_threshold and avg_reg < reg_best:
                mask_best = np.tanh(mask_tanh[..., 0]) / (2 - EPS) + 0.5
                pattern_best = (np.tanh(pattern_tanh) / (2 - EPS) + 0.5) * 255.0
                reg_best = avg_reg
            if config.early_stop:
                if reg_best < float("inf"):
                    if reg_best >= config.early_stop_threshold * early_stop_reg_best:
                        early_stop_counter += 1
                    else:
                        early_stop_counter = 0
                early_stop_reg_best = min(reg_best, early_stop_reg_best)
                if cost_down_flag and cost_up_flag and early_stop_counter >= config.stop_patience:
                    early_stopped = True
                    break
            if cost == 0 and avg_acc >= config.attack_success_threshold:
                cost_set_counter += 1
                if cost_set_counter >= config.patience:
                    cost = config.init_cost
                    cost_up_counter = cost_down_counter = 0
                    cost_up_flag = cost_down_flag = False
            else:
                cost_set_counter = 0
            if avg_acc >= config.attack_success_threshold:
                cost_up_counter += 1
                cost_down_counter = 0
            else:
                cost_up_counter = 0
                cost_down_counter += 1
            if cost_up_counter >= config.patience:
                cost_up_counter = 0
                cost *= config.cost_multiplier
                cost_up_flag = True
            elif cost_down_counter >= config.patience:
                cost_down_counter = 0
                cost /= config.cost_multiplier**1.5
                cost_down_flag = True
        if mask_best is None:
            mask_best = np.tanh(mask_tanh[..., 0]) / (2 - EPS) + 0.5
            pattern_best = (np.tanh(pattern_tanh) / (2 - EPS) + 0.5) * 255.0
        return dict(mask=mask_best, pattern=pattern_best, reg_best=reg_best, epochs=epochs, costs=np.array(costs),
                    asrs=np.array(asrs), regs=np.array(regs), early_stopped=early_stopped, final_cost=cost)
