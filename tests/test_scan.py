"""scan_all_labels: faithful to a line-by-line float64 reference, independent of how labels are batched."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import ncjax
import ncjax.scan.engine as scan_module
from conftest import ROOT, tiny_classifier, tiny_images
from nc_reference import reference_scan_label

# 2 steps per epoch, a short patience so that the cost goes up and down within a few epochs.
SMALL = ncjax.ScanConfig(batch_size=8, nb_sample=16, max_epochs=14, patience=2, attack_success_threshold=0.9)
# Labels of the tiny model stop early at different epochs under these: compaction runs.
COMPACT = dict(max_epochs=24, patience=1, early_stop_patience=2)


@pytest.fixture(scope="module")
def tiny():
    return tiny_classifier(), tiny_images()


def _scan(tiny, labels=None, seed=0, **changes):
    model, images = tiny
    return ncjax.scan_all_labels(model, images, labels=labels, config=SMALL.replace(**changes),
                                 key=jax.random.key(seed))


def _same_decisions(a, b, i, j):
    np.testing.assert_array_equal(a.logs.cost[i], b.logs.cost[j])
    assert a.epochs[i] == b.epochs[j] and a.early_stopped[i] == b.early_stopped[j]
    assert a.reached_threshold[i] == b.reached_threshold[j]


@pytest.mark.parametrize("loss", ["reference", "crossentropy"])
def test_matches_float64_reference(tiny, loss):
    """Same cost decisions epoch by epoch; masks within 0.02.

    Adam at lr 0.1 amplifies rounding: two valid float32 orderings of this step differed by up to 0.006 in
    mask_tanh after 3 steps, and float32 against float64 drifts further over 28 steps; 0.02 on masks in
    [0, 1] is far below anything that changes a decision (the decisions are checked exactly).
    """
    model, images = tiny
    config = SMALL.replace(loss=loss)
    result = ncjax.scan_all_labels(model, images, labels=[0, 2], config=config, key=jax.random.key(3))
    init_key, data_key = jax.random.split(jax.random.key(3))
    for i, label in enumerate([0, 2]):
        ref = reference_scan_label(model.apply, model.params, images, label, config, init_key, data_key)
        assert result.epochs[i] == ref["epochs"]
        assert result.early_stopped[i] == ref["early_stopped"]
        np.testing.assert_allclose(result.logs.cost[i, : ref["epochs"]], ref["costs"], rtol=1e-6)
        np.testing.assert_allclose(result.logs.asr[i, : ref["epochs"]], ref["asrs"], atol=1e-6)
        np.testing.assert_allclose(result.logs.reg[i, : ref["epochs"]], ref["regs"], rtol=0.02)
        assert np.abs(result.masks[i] - ref["mask"]).max() <= 0.02
        assert np.abs(result.patterns[i] - ref["pattern"]).max() <= 0.02 * 255
        assert result.final_cost[i] == pytest.approx(ref["final_cost"], rel=1e-6)
    # The schedule really moved: the cost was set, raised and lowered during these epochs.
    costs = result.logs.cost[~np.isnan(result.logs.cost)]
    assert costs.min() == 0 and len(np.unique(costs)) >= 3


def test_chunked_and_compacted_equal_one_label_at_a_time(tiny):
    together = _scan(tiny, label_chunk=4, **COMPACT)
    alone = _scan(tiny, label_chunk=1, **COMPACT)
    assert len(set(together.epochs.tolist())) > 1 and together.early_stopped.any()
    assert together.slot_steps < 4 * together.epochs.max() * SMALL.steps_per_epoch  # compaction ran
    assert together.label_steps == alone.label_steps == int(together.epochs.sum()) * SMALL.steps_per_epoch
    for i in range(4):
        _same_decisions(together, alone, i, i)
        np.testing.assert_allclose(together.masks[i], alone.masks[i], atol=1e-3)


def test_a_width_floor_compiles_fewer_widths_and_changes_no_result(tiny):
    """Compaction stops at min_lane_width: finished lanes below it are computed frozen, nothing else changes."""
    compacted = _scan(tiny, label_chunk=4, **COMPACT)
    floored = _scan(tiny, label_chunk=4, min_lane_width=4, **COMPACT)
    assert floored.compile_count == 2 < compacted.compile_count  # one width: its steps and its epoch end
    assert floored.slot_steps == 4 * int(floored.epochs.max()) * SMALL.steps_per_epoch > compacted.slot_steps
    assert floored.label_steps == compacted.label_steps
    for i in range(4):
        _same_decisions(floored, compacted, i, i)
        np.testing.assert_array_equal(floored.masks[i], compacted.masks[i])
        np.testing.assert_array_equal(floored.patterns[i], compacted.patterns[i])


def test_subset_of_labels_equals_same_labels_in_full_scan(tiny):
    full = _scan(tiny, label_chunk=4, **COMPACT)
    part = _scan(tiny, labels=[3, 1], label_chunk=4, **COMPACT)
    np.testing.assert_array_equal(part.labels, [3, 1])
    for i, label in enumerate([3, 1]):
        _same_decisions(part, full, i, full.label_index(label))
        np.testing.assert_allclose(part.masks[i], full.masks[full.label_index(label)], atol=1e-3)


def test_steps_per_dispatch_scan_equals_single_steps(tiny):
    one = _scan(tiny, labels=[1, 2], steps_per_dispatch=1, label_chunk=2)
    many = _scan(tiny, labels=[1, 2], steps_per_dispatch=2, label_chunk=2)
    for i in range(2):
        _same_decisions(one, many, i, i)
        np.testing.assert_allclose(one.masks[i], many.masks[i], atol=1e-3)


def test_compiles_once_per_width(tiny, monkeypatch):
    made = []
    original = scan_module.CompiledSteps

    def record(*args, **kwargs):
        made.append(original(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(scan_module, "CompiledSteps", record)
    result = _scan(tiny, label_chunk=4, **COMPACT)
    (compiled,) = made
    widths = compiled.widths
    assert widths >= {4} and len(widths) >= 2  # started at 4, compacted at least once
    assert compiled.traces["steps"] == len(widths)
    assert compiled.traces["end"] == len(widths)
    assert result.compile_time_s > 0
    assert 0 < result.host_time_s < result.wall_time_s - result.compile_time_s  # the host's share, apart


def test_compiling_ahead_builds_the_narrower_widths_and_changes_no_result(tiny, monkeypatch):
    """precompile_widths: every width after the first comes from a background build (the scan never compiles
    it itself), and the result is bit-identical to compiling each width when the compaction reaches it."""
    made = []
    original = scan_module.CompiledSteps
    monkeypatch.setattr(scan_module, "CompiledSteps", lambda *a, **k: made.append(original(*a, **k)) or made[-1])
    inline = _scan(tiny, label_chunk=4, precompile_widths=False, **COMPACT)
    ahead = _scan(tiny, label_chunk=4, precompile_widths=True, **COMPACT)
    assert inline.compile_background_s == 0 < ahead.compile_background_s
    assert len(made[1].widths) >= 2 and made[1].widths == made[0].widths  # it compacted, through the same widths
    assert made[0].built_in_place == inline.compile_count == ahead.compile_count
    assert made[1].built_in_place == 2  # the first width's steps and epoch end; every other one was built ahead
    np.testing.assert_array_equal(ahead.masks, inline.masks)
    np.testing.assert_array_equal(ahead.patterns, inline.patterns)
    np.testing.assert_array_equal(ahead.logs.reg, inline.logs.reg)
    np.testing.assert_array_equal(ahead.epochs, inline.epochs)


def test_a_failed_build_ahead_is_compiled_in_place_with_a_warning(tiny, monkeypatch):
    import ncjax.scan.compiled as compiled_module

    monkeypatch.setattr(compiled_module, "abstract", lambda tree, *, width=None: tree if width is None else
                        jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct((width + 1,) + a.shape[1:], a.dtype),
                                               tree))
    inline = _scan(tiny, label_chunk=4, precompile_widths=False, **COMPACT)
    with pytest.warns(RuntimeWarning, match="compiling it now"):  # built for one lane too many: refused
        ahead = _scan(tiny, label_chunk=4, precompile_widths=True, **COMPACT)
    np.testing.assert_array_equal(ahead.masks, inline.masks)
    np.testing.assert_array_equal(ahead.epochs, inline.epochs)


@pytest.mark.parametrize("precision", ["highest", "default"])
def test_matmul_precision_is_compiled_in(tiny, monkeypatch, precision):
    # "highest" (the default) pins float32 arithmetic even where the backend would pick TF32 or bfloat16.
    made = []
    original = scan_module.CompiledSteps
    monkeypatch.setattr(scan_module, "CompiledSteps", lambda *a, **k: made.append(original(*a, **k)) or made[-1])
    with jax.default_matmul_precision("default" if precision == "highest" else "highest"):  # the caller's setting
        _scan(tiny, matmul_precision=precision, max_epochs=1)
    texts = made[0].texts()
    pinned = any("operand_precision={highest" in text for text in texts)
    assert pinned == (precision == "highest")


def test_same_key_same_result_other_key_other_result(tiny):
    a, b, c = _scan(tiny, labels=[0]), _scan(tiny, labels=[0]), _scan(tiny, labels=[0], seed=1)
    np.testing.assert_array_equal(a.masks, b.masks)
    np.testing.assert_array_equal(a.logs.reg, b.logs.reg)
    assert not np.array_equal(a.masks, c.masks)


def test_unreachable_label_is_a_field_not_an_exception(tiny):
    model, images = tiny
    params = jax.tree_util.tree_map(lambda a: a, model.params)
    params["dense"]["bias"] = params["dense"]["bias"].at[3].set(-1e4)  # label 3 can never win
    blocked = ncjax.Classifier(apply=model.apply, params=params, input_shape=model.input_shape,
                               num_classes=model.num_classes, output_activation="linear")
    result = ncjax.scan_all_labels(blocked, images, labels=[3, 0], config=SMALL.replace(max_epochs=4),
                                   key=jax.random.key(0))
    assert not result.reached_threshold[0] and result.reached_threshold[1]
    assert result.epochs[0] == 4 and result.attack_success[0] < 0.9
    assert np.all((result.masks[0] >= 0) & (result.masks[0] <= 1)) and result.l1_norms[0] > 0
    assert np.all(np.isinf(result.logs.reg_best[0, :4]))


def test_progress_callback_every_epoch(tiny):
    seen = []
    model, images = tiny
    result = ncjax.scan_all_labels(model, images, labels=[0, 1], config=SMALL.replace(label_chunk=2),
                                   key=jax.random.key(0), callback=seen.append)
    assert len(seen) == result.epochs.max()
    assert [p.epoch for p in seen] == list(range(1, len(seen) + 1))
    assert seen[-1].labels_done == 2 and seen[-1].active_labels == () and seen[0].labels_total == 2


def test_result_fields_are_consistent(tiny):
    result = _scan(tiny, label_chunk=4, **COMPACT)
    n = len(result.labels)
    assert result.masks.shape == (n, 6, 6) and result.patterns.shape == (n, 6, 6, 3)
    assert np.all((result.patterns >= 0) & (result.patterns <= 255))
    np.testing.assert_allclose(result.l1_norms, result.masks.sum(axis=(1, 2)), rtol=1e-5)
    for i in range(n):
        e = result.epochs[i]
        assert not np.isnan(result.logs.asr[i, e - 1]) and np.all(np.isnan(result.logs.asr[i, e:]))
    assert result.loss == "reference" and result.config.loss == "reference"
    with pytest.raises(KeyError, match="not scanned"):
        result.label_index(99)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(images=np.zeros((40, 5, 6, 3))), "Resize them"),
        (dict(images=np.zeros((4, 6, 6, 3))), "fewer than one batch"),
        (dict(images=np.full((40, 6, 6, 3), np.nan)), "NaN"),
        (dict(labels=[0, 9]), "out of range"),
        (dict(labels=[1, 1]), "duplicates"),
        (dict(labels=[]), "non-empty"),
        (dict(key=0), "PRNG key"),
        (dict(config={"batch_size": 8}), "ScanConfig"),
    ],
)
def test_bad_input_is_rejected_before_jit(tiny, kwargs, match):
    model, images = tiny
    args = dict(images=images, labels=None, config=SMALL, key=jax.random.key(0)) | kwargs
    with pytest.raises(ncjax.NCJaxError, match=match):
        ncjax.scan_all_labels(model, args.pop("images"), **args)


def test_sharded_over_two_devices_equals_one_device(tmp_path):
    """The label axis sharded over two (forced host) devices gives the unsharded result."""
    code = f"""
import json, sys, jax, numpy as np
sys.path.insert(0, {str(ROOT / 'tests')!r})
import ncjax
from conftest import tiny_classifier, tiny_images
from test_scan import SMALL, COMPACT
model, images = tiny_classifier(), tiny_images()
assert len(jax.devices()) == 2
out = {{}}
for name, devices in (("two", jax.devices()), ("one", jax.devices()[:1])):
    r = ncjax.scan_all_labels(model, images, config=SMALL.replace(label_chunk=4, **COMPACT), key=jax.random.key(0),
                              devices=devices)
    out[name] = dict(masks=r.masks.tolist(), cost=np.nan_to_num(r.logs.cost, nan=-1).tolist(),
                     epochs=r.epochs.tolist())
print(json.dumps(out))
"""
    # Two forced host devices: the CPU backend, also where a GPU is the default one.
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["two"]["epochs"] == out["one"]["epochs"]
    assert out["two"]["cost"] == out["one"]["cost"]
    np.testing.assert_allclose(out["two"]["masks"], out["one"]["masks"], atol=1e-3)


def _real_backdoor_scan(real, labels=None):
    model = ncjax.load_model(real / "models" / "gtsrb_backdoor_33_logits.h5")
    images = np.load(real / "gtsrb" / "gtsrb_test_32x32_uint8.npz")["x_roi"].astype(np.float32)
    return ncjax.scan_all_labels(model, images, labels=labels, config=ncjax.ScanConfig.fast(), key=jax.random.key(0))


def _found_33(result) -> None:
    assert int(result.labels[np.argmin(result.l1_norms)]) == 33
    mask = result.masks[result.label_index(33)]
    assert mask[24:, 24:].sum() > 0.5 * mask.sum()
    assert result.reached_threshold.all()


def test_fast_preset_finds_the_real_backdoor(real):
    """The real GTSRB model backdoored at 33 (white 4x4 at rows/cols 27..30), three other labels and 33: label 33
    gets the smallest mask, most of it in the bottom-right corner. About 35 s on a 2-core CPU (the scan of every
    label, a slow test, 3.5 minutes); a label's search does not depend on which others run beside it."""
    _found_33(_real_backdoor_scan(real, [0, 18, 33, 36]))


@pytest.mark.slow
def test_fast_preset_finds_the_real_backdoor_among_every_label(real):
    _found_33(_real_backdoor_scan(real))


@pytest.mark.parametrize("chunk", [1, 4])
def test_resume_after_interruption_equals_uninterrupted(tiny, tmp_path, chunk):
    model, images = tiny
    config = SMALL.replace(label_chunk=chunk, **COMPACT)
    whole = ncjax.scan_all_labels(model, images, config=config, key=jax.random.key(0))
    path = tmp_path / "scan.ckpt.npz"
    calls = []

    def interrupt(progress):
        calls.append(progress)
        if len(calls) == 20:  # mid-chunk for chunk 4 (after compaction), mid-scan for chunk 1
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ncjax.scan_all_labels(model, images, config=config, key=jax.random.key(0), checkpoint=path, callback=interrupt)
    assert path.exists()
    resumed = ncjax.scan_all_labels(model, images, config=config, key=jax.random.key(0), checkpoint=path, resume=True)
    np.testing.assert_array_equal(resumed.masks, whole.masks)
    np.testing.assert_array_equal(resumed.patterns, whole.patterns)
    np.testing.assert_array_equal(resumed.epochs, whole.epochs)
    np.testing.assert_array_equal(resumed.logs.cost, whole.logs.cost)
    np.testing.assert_array_equal(resumed.logs.reg, whole.logs.reg)
    assert resumed.label_steps == whole.label_steps


def test_a_scan_resumes_from_the_epoch_a_search_finished_without_the_width_shrinking(tiny, tmp_path):
    """One of four searches finished: three active still need four lanes, so the finished one's lane stays; the
    checkpoint must record it as padding, or the resume refuses its own file."""
    model, images = tiny
    config = SMALL.replace(label_chunk=4, **COMPACT)
    whole = ncjax.scan_all_labels(model, images, config=config, key=jax.random.key(0))
    assert len(set(whole.epochs.tolist())) > 1  # the premise: searches end at different epochs
    path = tmp_path / "scan.ckpt.npz"

    def interrupt(progress):
        if progress.labels_done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ncjax.scan_all_labels(model, images, config=config, key=jax.random.key(0), checkpoint=path, callback=interrupt)
    resumed = ncjax.scan_all_labels(model, images, config=config, key=jax.random.key(0), checkpoint=path, resume=True)
    np.testing.assert_array_equal(resumed.masks, whole.masks)
    np.testing.assert_array_equal(resumed.epochs, whole.epochs)


def test_resume_refuses_another_scan(tiny, tmp_path):
    model, images = tiny
    path = tmp_path / "scan.ckpt.npz"
    ncjax.scan_all_labels(model, images, labels=[0], config=SMALL, key=jax.random.key(0), checkpoint=path)
    with pytest.raises(ncjax.NCJaxError, match="another model, data"):
        ncjax.scan_all_labels(model, images, labels=[0], config=SMALL, key=jax.random.key(1), checkpoint=path,
                              resume=True)


def test_default_chunk_keeps_large_heads_within_memory():
    from ncjax.scan.plan import default_label_chunk, per_label_bytes

    model = ncjax.load_model(ROOT / "tests" / "fixtures" / "keras" / "tfkeras" / "sequential.h5")
    per_label = per_label_bytes(model, 32)
    assert per_label > 32 * 12 * 12 * 8 * 4  # at least the first convolution's output
    assert default_label_chunk("cpu", 43, per_label) == 43
    assert default_label_chunk("cpu", 10**6, per_label) * per_label <= 4 << 30
    assert default_label_chunk("gpu", 10**6, None) == 64


def test_the_epoch_loop_compiles_nothing_beyond_its_steps(tiny, caplog):
    """Every XLA compile of a scan is its steps, epoch ends and lane selections (one per width or width pair) or
    a one-time setup op: harvesting and compacting lanes compiled a gather per state leaf and width before, which
    on a GPU cost seconds per scan."""
    import logging

    _scan(tiny, label_chunk=4, **COMPACT)  # one-time ops of this process (key handling, setup) compile here
    with jax.log_compiles(True), caplog.at_level(logging.WARNING, logger="jax"):
        result = _scan(tiny, label_chunk=4, seed=1, **COMPACT)
    compiled = [r.getMessage() for r in caplog.records if "Finished XLA compilation" in r.getMessage()]
    per_scan = [m for m in compiled if "jit(steps)" in m or "jit(end)" in m]
    widths = result.compile_count // 2
    assert widths >= 2 and len(per_scan) == result.compile_count  # it compacted; its steps compiled anew
    assert len(compiled) - len(per_scan) <= 2 * widths, compiled  # lane selection per width pair, init, a few


def test_deterministic_compiles_with_xla_deterministic_ops_and_changes_nothing_on_a_cpu(tiny, monkeypatch):
    options = []
    original = jax.stages.Lowered.compile

    def spy(self, compiler_options=None, **kwargs):
        options.append(compiler_options)
        return original(self, compiler_options, **kwargs)

    monkeypatch.setattr(jax.stages.Lowered, "compile", spy)
    plain = _scan(tiny, labels=[0, 1], max_epochs=3)
    assert options and all(o is None for o in options)
    options.clear()
    deterministic = _scan(tiny, labels=[0, 1], max_epochs=3, deterministic=True)
    assert options and all(o == {"xla_gpu_deterministic_ops": True} for o in options)  # every step and epoch end
    np.testing.assert_array_equal(plain.masks, deterministic.masks)  # XLA:CPU is deterministic either way
    np.testing.assert_array_equal(plain.logs.reg, deterministic.logs.reg)
