"""pytest-benchmark configuration of the bench/ suites (``pytest bench/ --benchmark-only``).

* Tiers: ``quick`` (default; CI-sized, the whole suite in well under 2 minutes on 2 cores)
  and ``full`` (the README's sizes): ``--bench-tier full`` or ``FASTPROB_BENCH_TIER=full``.
* Timer: ``time.process_time`` (CPU time) by default, see ``pytest_configure``;
  ``--benchmark-timer=time.perf_counter`` for wall time.
* Threads: torch, Numba and the BLAS pools are pinned to ``FASTPROB_BENCH_THREADS`` (default 1) so that
  a fastprob op and its single-threaded peers are compared core for core.
* Every benchmark sits in a group holding the fastprob op and its peers on the same
  inputs; ``extra_info`` says ``role`` ("fastprob" or "peer") and which peer is the group's
  ``anchor`` (the same-run baseline that ``python -m bench.check_regression`` divides by).
  ``--benchmark-group-by=group`` prints them side by side.
* The machine header (CPU, cores, library versions, chosen backends, tier, threads) is
  printed at the top and stored in the JSON's ``machine_info["fastprob"]``.
"""
from __future__ import annotations

import os

import pytest

from bench import suite


def pytest_addoption(parser):
    g = parser.getgroup("fastprob bench")
    g.addoption("--bench-tier", choices=sorted(suite.TIERS), default=None,
                help="problem sizes: quick (CI, default) or full (README numbers); env FASTPROB_BENCH_TIER")


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark reads its options
def pytest_configure(config):
    suite.set_tier(config.getoption("--bench-tier") or os.environ.get("FASTPROB_BENCH_TIER") or "quick")
    suite.pin_threads(suite.threads())
    # CPU time of this process unless the user chose a timer: every op runs on one thread,
    # and on a shared machine CPU time is far less disturbed by other tenants than wall
    # time (bench/baselines/README.md has the measured spreads).  With more than one
    # thread CPU time would add the threads up, so wall time is kept then.
    args = " ".join(map(str, config.invocation_params.args))
    if "--benchmark-timer" not in args and suite.threads() == 1 and hasattr(config.option, "benchmark_timer"):
        config.option.benchmark_timer = "time.process_time"


def pytest_report_header(config):
    h = suite.header()
    lines = ["fastprob bench: tier=%s threads=%s" % (h["tier"], h["threads"]),
             "machine: " + "; ".join(f"{k}={h[k]}" for k in ("cpu", "cores", "python", "gpu")),
             "versions: " + "; ".join(f"{k}={v}" for k, v in h["versions"].items()),
             "backends: " + "; ".join(f"{k}={v}" for k, v in h["backends"].items())]
    return lines


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["fastprob"] = suite.header()


@pytest.fixture(scope="session")
def sizes():
    """The problem sizes of the selected tier (a dict; see ``bench.suite.TIERS``)."""
    return suite.sizes()
