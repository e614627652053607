#!/usr/bin/env bash
# The device check of issue 11: on a machine with one CUDA GPU, in at most 8 minutes,
#   1. the CUDA tests (tests/test_cuda.py: values and gradients of every operator on the GPU
#      against the CPU path, both Triton PAV kernels against the Numba kernel, the float32
#      precision policy, softorder.jax on the GPU when jaxlib has CUDA), <= 240 s;
#   2. the GPU benchmark (benchmarks/bench_gpu.py) in the time left (its timing budget is what
#      is left minus 90 s for start-up and compiles; 240 s at most).
# Results go to $OUT (default: benchmarks/results/gpu): tests.txt, bench_gpu.md (the table for
# docs/benchmarks.md), bench_gpu.json, env.txt.
#
# Usage, from the repository root, in an environment with softorder's dependencies, a CUDA
# build of torch and Triton (and optionally jax[cuda], torchsort built with CUDA):
#   bash benchmarks/gpu_check.sh
# PYTHON=/path/to/python overrides the interpreter.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${OUT:-benchmarks/results/gpu}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export TRITON_INTERPRET=0
start=$(date +%s)
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true
  "$PY" -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available()); print('triton', triton.__version__)" 2>&1
  "$PY" -c "import jax; print('jax', jax.__version__, jax.devices())" 2>&1 || true
  "$PY" -c "import importlib.metadata as m, torchsort; print('torchsort', m.version('torchsort'))" 2>&1 || true
} > "$OUT/env.txt"
cat "$OUT/env.txt"

echo "== CUDA tests"
timeout 240 "$PY" -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py 2>&1 | tee "$OUT/tests.txt"
tests_rc=${PIPESTATUS[0]}

echo "== GPU benchmark"
left=$(( 470 - ($(date +%s) - start) ))
budget=$(( left - 90 ))
[ "$budget" -gt 240 ] && budget=240
[ "$budget" -lt 30 ] && budget=30
timeout "$left" "$PY" benchmarks/bench_gpu.py --device cuda --budget-s "$budget" --out "$OUT" \
  2>&1 | tail -n 80
bench_rc=${PIPESTATUS[0]}

echo "gpu_check: tests rc=$tests_rc, bench rc=$bench_rc, $(( $(date +%s) - start )) s; results in $OUT"
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
