#!/usr/bin/env bash
# One lease of a GPU machine (the device tool), prepared to fit its few minutes (issue 17). Everything is
# time-boxed against one deadline (TOTAL_S seconds from the start) and writes to $OUT as it goes:
#   1. alone on the GPU (timings reported): the benchmark's step parts (throughput, TF32 vs float32, FLOPs and
#      the roofline share, one step vs an epoch per dispatch at every width) and the paper preset through
#      `python -m ncjax.run` cold and warm on the persistent compile cache, float32 and TF32;
#   2. alone: experiments/compile_widths.py paper: each row a cold process: floor 1 without compiling ahead, then
#      with it: floor 8, floor 64 (no compaction), floor 1;
#   3. side by side (no timings reported): TF32 against float32 verdicts on the real models (fast preset) and
#      the test suite on CUDA JAX.
# The machine's own python3 (CUDA JAX, flax, optax, chex, h5py, pytest-xdist) runs the checkout as is. The real
# data comes as a copy made for the lease ($NCJAX_REAL_DATA, carried as .devdata), never committed.
set -u
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
export NCJAX_REAL_DATA=${NCJAX_REAL_DATA:-$PWD/.devdata/real}
t0=$(date +%s); END=$((t0 + ${TOTAL_S:-570}))
say() { echo "[$(($(date +%s) - t0)) s] $*" | tee -a "$OUT/log.txt"; }
left() { local s=$((END - $(date +%s) - ${1:-0})); [ "$s" -gt 5 ] && echo "$s" || echo 5; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv >> "$OUT/log.txt" 2>&1
python3 -c "import jax, flax, optax, chex, h5py, numpy; print('jax', jax.__version__, jax.devices(), 'flax',
flax.__version__, 'optax', optax.__version__, 'numpy', numpy.__version__)" >> "$OUT/log.txt" 2>&1
# ncjax sets an XLA:CPU flag for jaxlib >= 0.9; XLA aborts on flags it does not know: check this jaxlib.
if XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= python3 -c "import jax; jax.numpy.zeros(1).block_until_ready()" \
    >> "$OUT/log.txt" 2>&1; then say "jaxlib accepts the XLA:CPU flag"; else say "jaxlib REJECTS the flag"; export XLA_FLAGS=; fi

say "1. bench (alone)"
timeout "$(left 200)" python3 -m ncjax.bench --repeats 3 --only throughput,flops,precision,dispatch,compile-cache \
  --out "$OUT/bench_gpu.json" > "$OUT/bench.txt" 2>&1
say "bench rc $?"

say "2. compile widths (alone)"
timeout "$(left 100)" python3 experiments/compile_widths.py paper --no-cache-part --rows 4 > "$OUT/widths.txt" 2>&1
say "widths rc $?"
cp experiments/compile_widths_gpu.md experiments/results/compile_widths.jsonl "$OUT/" 2>/dev/null

say "3. side by side: TF32 verdicts and the tests"
rm -f experiments/results/tf32_verdicts.jsonl
timeout "$(left 10)" python3 experiments/tf32_verdicts.py --preset fast --models backdoor,clean,nabagata,abis47 \
  --results "$OUT/tf32_verdicts.jsonl" > "$OUT/tf32.txt" 2>&1 &
timeout "$(left 10)" python3 -m pytest -q -n 6 -p no:cacheprovider -rfE > "$OUT/pytest.txt" 2>&1
say "pytest rc $?"
wait
say "done"
tail -n 25 "$OUT/bench.txt"; cat "$OUT/widths.txt" | cut -c1-400; cat "$OUT/tf32.txt" | cut -c1-400
tail -n 5 "$OUT/pytest.txt"
