#!/usr/bin/env bash
# Run every CPU benchmark once, appending to bench/results.csv (about 15 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m bench.bench_counting
python -m bench.bench_text_to_csr
python -m bench.bench_stream_memory
python -m bench.bench_estep
python -m bench.bench_dapper_memory
python -m bench.bench_pwll --corpus dap --budget 20
python -m bench.bench_pwll --corpus sotu --budget 20
python -m bench.bench_flows_cpu
python -m bench.bench_flows_gpu   # measures only where a CUDA GPU is present
