#!/usr/bin/env bash
# One lease of a GPU machine (the device tool), prepared to fit its few minutes: the environment, `python -m
# ncjax.bench`, then, side by side, the planted-backdoor sweep (5 shards sharing the GPU), the real models at
# the paper preset (4 processes), and the test suite on CUDA JAX. Each part is time-boxed and writes to $OUT as it goes.
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
timeout "${BENCH_S:-200}" python3 -m ncjax.bench --out "$OUT/bench_gpu.json" > "$OUT/bench.txt" 2>&1
say "bench rc $?"
# Issue 14: the wide benchmark's models not yet scanned on the CPU (finished ones in results/ are skipped), and
# the real models' second restart at every seed.
cp experiments/results/wide_benchmark.jsonl "$OUT/wide_gpu.jsonl" 2>/dev/null
for k in 0 1 2 3; do
  timeout "${SIDE_S:-330}" python3 experiments/wide_benchmark.py --shard $k/4 --results "$OUT/wide_gpu.jsonl" \
    --budget-s "${SWEEP_BUDGET_S:-250}" >> "$OUT/wide.txt" 2>&1 &
done
# Each call is its own ncjax.audit (own --work folder); Ray is not on the lent machine, so processes share the GPU.
real() { local work=$1; shift; timeout "${SIDE_S:-330}" python3 experiments/real_models.py --work "$OUT/$work" \
  --results "$OUT/real_models_gpu_$work.jsonl" --budget-s "${SWEEP_BUDGET_S:-250}" "$@" >> "$OUT/real.txt" 2>&1; }
real r1 --preset paper --cost-start zero --models backdoor,clean --losses reference --seeds 0,1 &
real r2 --preset paper --cost-start zero --models clean,backdoor --losses crossentropy --seeds 0,1 &
real r3 --preset paper --cost-start zero --models nabagata,abis47 --losses reference --seeds 0 &
timeout "${SIDE_S:-330}" python3 -m pytest -q -n 3 -p no:cacheprovider > "$OUT/pytest.txt" 2>&1
say "pytest rc $?"
wait
say "done"
