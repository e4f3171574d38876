#!/usr/bin/env bash
# One lease of a GPU machine (the device tool), prepared to fit its few minutes: the environment, `python -m
# ncjax.bench` alone, then side by side issue 17's TF32 and width-floor experiments and the test suite on CUDA
# JAX. Each part is time-boxed and writes to $OUT as it goes. (The real models' and wide recipes' remaining GPU
# scans of issues 14-15 are left to a later lease: experiments/real_models.py --work DIR, wide_benchmark.py.)
# The machine's own python3 (with CUDA JAX, flax, optax, chex, h5py, pytest-xdist) runs the checkout as is.
# The real data comes as a copy made for the lease ($NCJAX_REAL_DATA), never committed.
set -u
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
export NCJAX_REAL_DATA=${NCJAX_REAL_DATA:-$PWD/.devdata/real}
t0=$(date +%s)
say() { echo "[$(($(date +%s) - t0)) s] $*" >> "$OUT/log.txt"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> "$OUT/log.txt" 2>&1
python3 -c "import jax, flax, optax, chex, h5py, numpy; print('jax', jax.__version__, jax.devices(), 'flax',
flax.__version__, 'optax', optax.__version__, 'numpy', numpy.__version__)" >> "$OUT/log.txt" 2>&1
# ncjax sets an XLA:CPU flag for jaxlib >= 0.9; XLA aborts on flags it does not know: check this jaxlib.
if XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= python3 -c "import jax; jax.numpy.zeros(1).block_until_ready()" \
    >> "$OUT/log.txt" 2>&1; then say "jaxlib accepts the XLA:CPU flag"; else say "jaxlib REJECTS the flag"; export XLA_FLAGS=; fi
say "bench"
# Alone on the GPU first: its timings (issue 17: dispatch per width, the compile cache cold and warm) are reported.
timeout "${BENCH_S:-300}" python3 -m ncjax.bench --out "$OUT/bench_gpu.json" > "$OUT/bench.txt" 2>&1
say "bench rc $?"
# Then side by side (their timings are not reported as speeds): TF32 against float32 on the real models (issue 17,
# item 3), the width floors and the compile cache on the paper preset, and the test suite on CUDA JAX.
timeout "${SIDE_S:-330}" python3 experiments/tf32_verdicts.py --models backdoor,clean,nabagata,abis47 \
  --results "$OUT/tf32_verdicts.jsonl" >> "$OUT/tf32.txt" 2>&1 &
timeout "${SIDE_S:-330}" python3 experiments/compile_widths.py paper >> "$OUT/widths.txt" 2>&1 &
timeout "${SIDE_S:-330}" python3 -m pytest -q -n 3 -p no:cacheprovider > "$OUT/pytest.txt" 2>&1
say "pytest rc $?"
wait
cp experiments/compile_widths.md experiments/results/compile_widths.jsonl "$OUT/" 2>/dev/null
say "done"
