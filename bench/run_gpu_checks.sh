#!/bin/bash
# Everything fastprob checks on a CUDA machine, as one command (the device lease is short).
#
#   bash bench/run_gpu_checks.sh OUTDIR checks   # GPU test suite, kernel benchmark, training timings
#   bash bench/run_gpu_checks.sh OUTDIR psr      # PSR on Fashion-MNIST, 4x, sized for ~4 minutes
#   bash bench/run_gpu_checks.sh OUTDIR compat   # nflows/normflows/zuko/FrEIA drop-ins vs the peers (~2 min)
#
# The compat part needs the peers (the [compat] extra). The device machine has no network:
# install them here into a folder that travels with the tree and is put on PYTHONPATH there,
#   pip install --no-deps --target .data/compat-site "nflows>=0.14" "normflows>=1.7" \
#       "zuko>=1.6,<1.7" "FrEIA==0.2"
# ($COMPAT_SITE overrides the folder; nothing is installed when the peers already import).
#
# Fashion-MNIST is read from $FASHION_MNIST_DIR (default .data/fashion-mnist, a copy of
# Debian's dataset-fashion-mnist files). Results land in OUTDIR (at most 8 files).
set -u
OUT=${1:?usage: run_gpu_checks.sh OUTDIR checks|psr|compat}
PART=${2:-checks}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 FASTPROB_PROGRESS=0
export FASHION_MNIST_DIR=${FASHION_MNIST_DIR:-$PWD/.data/fashion-mnist}
exec > >(tee "$OUT/log_$PART.txt") 2>&1
PY=python3
t0=$(date +%s)
stamp() { echo "=== [$(( $(date +%s) - t0 )) s] $*"; }
stamp "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
$PY -c "import torch, triton, numpy, numba; print('torch', torch.__version__, 'triton', triton.__version__, 'numpy', numpy.__version__, 'numba', numba.__version__, 'cuda', torch.cuda.is_available())"
stamp "install fastprob (editable, no deps)"
$PY -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -3
$PY -c "import fastprob, fastprob.kernels.triton.coupling; print('fastprob', fastprob.__version__)" || exit 1

if [ "$PART" = checks ]; then
  stamp "GPU tests: Triton kernels vs references on CUDA"
  timeout 150 $PY -m pytest -q -p no:cacheprovider -o addopts="" --junitxml="$OUT/junit_gpu.xml" \
      tests/test_triton_kernels.py tests/test_triton_edges.py tests/test_coupling_options.py \
      tests/test_flow_dispatch.py tests/test_flow_blocks.py tests/test_psr_blocks.py 2>&1 | tail -25
  stamp "kernel benchmark (bench_flows_gpu)"
  before=$(wc -l < bench/results.csv)
  timeout 150 $PY -m bench.bench_flows_gpu
  tail -n +$((before + 1)) bench/results.csv > "$OUT/results_gpu.csv"
  stamp "Glow training on Fashion-MNIST, 5k images, 1 epoch: fused Triton vs eager PyTorch"
  for mode in triton eager; do
    if [ $mode = eager ]; then export FASTPROB_DISABLE_TRITON=1; else unset FASTPROB_DISABLE_TRITON; fi
    timeout 50 $PY -m fastprob.cli flows train --data fashion-mnist --model glow --epochs 1 --limit 5000 \
        --batch-size 64 --device cuda --profile --out /tmp/glow_$mode 2>&1 | tail -8
    cp /tmp/glow_$mode/metrics.json "$OUT/glow_${mode}_metrics.json" 2>/dev/null
  done
  unset FASTPROB_DISABLE_TRITON
  stamp "PSR timing run (200 steps, Fashion-MNIST 4x)"
  timeout 70 $PY -m fastprob.cli psr train --data fashion-mnist --scale 4 --steps 200 --batch-size 64 \
      --hidden 64 --depth 4 --device cuda --out /tmp/psr_timing 2>&1 | tail -8
  cp /tmp/psr_timing/metrics.json "$OUT/psr_timing_metrics.json" 2>/dev/null
elif [ "$PART" = compat ]; then
  COMPAT_SITE=${COMPAT_SITE:-$PWD/.data/compat-site}
  if ! $PY -c "import nflows, normflows, zuko, FrEIA" 2>/dev/null && [ -d "$COMPAT_SITE" ]; then
    export PYTHONPATH="$COMPAT_SITE${PYTHONPATH:+:$PYTHONPATH}"
  fi
  $PY -c "import nflows, normflows, zuko, FrEIA; print('peers: nflows', nflows.__version__, 'normflows', normflows.__version__, 'zuko', zuko.__version__)" \
      || { echo "the peers do not import: see the header of this script"; exit 1; }
  stamp "nflows / normflows drop-ins vs the peers, forward + backward on CUDA (bench_compat_flows)"
  before=$(wc -l < bench/results.csv)
  timeout 150 $PY -m bench.bench_compat_flows --device cuda
  tail -n +$((before + 1)) bench/results.csv > "$OUT/results_compat_gpu.csv"
  stamp "zuko / FrEIA drop-ins vs the peers on CUDA (pytest-benchmark, wall time)"
  FASTPROB_BENCH_DEVICE=cuda timeout 200 $PY -m pytest -q -p no:cacheprovider -o addopts="" \
      bench/test_bench_compat_zuko_freia.py --benchmark-only --benchmark-group-by=group \
      --benchmark-timer=time.perf_counter --benchmark-json="$OUT/bench_compat_zuko_freia_gpu.json" 2>&1 | tail -40
elif [ "$PART" = psr ]; then
  STEPS=${PSR_STEPS:-4000}
  stamp "PSR Fashion-MNIST 4x, $STEPS steps"
  timeout 330 $PY -m fastprob.cli psr train --data fashion-mnist --scale 4 --steps $STEPS --batch-size 64 \
      --hidden 64 --depth 4 --device cuda --out /tmp/psr_fm4 2>&1 | tail -12
  cp /tmp/psr_fm4/metrics.json "$OUT/psr_fm4_metrics.json" 2>/dev/null
  cp /tmp/psr_fm4/grid.png "$OUT/psr_fm4_grid.png" 2>/dev/null
fi
stamp "done"
