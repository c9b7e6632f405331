#!/usr/bin/env bash
# Run every benchmark once, appending to bench/results.csv (about 40 minutes on 2 cores),
# then the pytest-benchmark suites at the full tier (see the README's "Profiling and benchmarks").
# bench_large_corpus needs Debian's linux-source-6.1 and python3.11-doc packages;
# bench_flows_gpu measures only where a CUDA GPU is present.
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
python -m bench.bench_flows_gpu
python -m bench.bench_gbnf toys
python -m bench.bench_gbnf tabular
python -m bench.bench_gbnf match
python -m bench.bench_gbnf cost
python -m bench.bench_distributed
python -m bench.bench_large_corpus
python -m pytest bench --benchmark-only --bench-tier=full --benchmark-group-by=group --benchmark-autosave
