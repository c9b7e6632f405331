"""Benchmark harness shared by every benchmark in bench/.

* ``machine_header()`` - CPU, threads, library versions, GPU (printed and stored).
* ``measure(fn)`` - repeated timings -> median with spread (IQR) and min.
* ``Recorder`` - collects rows and appends them to ``bench/results.csv`` (committed), each
  with the ratio to a baseline measured in the same run.

Speed targets are judged from these numbers, never by timed assertions in tests.
"""
from __future__ import annotations

import csv
import datetime as dt
import os
import platform
import statistics
import subprocess
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.csv")
FIELDS = ["date", "commit", "bench", "case", "provider", "metric", "median", "p25", "p75", "unit",
          "baseline", "ratio", "machine", "notes"]


def pin_threads(n: int) -> None:
    """Pin torch and Numba to ``n`` threads (call before timing)."""
    os.environ["NUMBA_NUM_THREADS"] = os.environ.get("NUMBA_NUM_THREADS", str(max(n, os.cpu_count() or 1)))
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass
    try:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(mod: str) -> str:
    try:
        m = __import__(mod)
        return getattr(m, "__version__", "?")
    except Exception:
        return "-"


def machine_header() -> dict:
    h = {"cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()}
    for mod in ("numpy", "numba", "torch", "triton", "scipy", "sklearn", "gensim", "tomotopy"):
        h[mod] = _version(mod)
    h["gpu"] = gpu_name()
    return h


def gpu_name() -> str:
    """The first CUDA device's name, or "none" (no torch, no GPU)."""
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    except Exception:
        return "none"


def short_machine(h: dict) -> str:
    return f"{h['cpu']} x{h['cores']}; gpu={h['gpu']}"


def print_header(title: str) -> dict:
    h = machine_header()
    print(f"== {title} ==")
    print("   " + "; ".join(f"{k}={v}" for k, v in h.items()))
    return h


def measure(fn, repeat: int = 7, warmup: int = 1, number: int = 1, clock=time.perf_counter) -> dict:
    """Time ``fn()`` ``repeat`` times (after ``warmup`` calls); seconds per call of ``clock``
    (wall time by default; ``time.process_time`` for CPU seconds on a loaded machine)."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeat):
        t0 = clock()
        for _ in range(number):
            fn()
        ts.append((clock() - t0) / number)
    ts.sort()
    q = statistics.quantiles(ts, n=4) if len(ts) >= 2 else [ts[0]] * 3
    return {"median": statistics.median(ts), "p25": q[0], "p75": q[2], "min": ts[0], "n": len(ts)}


def measure_alternating(f_a, f_b, repeat: int = 7, warmup: int = 1, clock=time.perf_counter):
    """Seconds per call of ``f_a`` and of ``f_b``, timed call by call in alternation (``f_a``
    first in even rounds, ``f_b`` first in odd ones), so that a change of a shared machine's
    load hits both alike: (stats of f_a, stats of f_b), each as :func:`measure` gives them."""
    for _ in range(warmup):
        f_a()
        f_b()
    ta, tb = [], []
    for r in range(repeat):
        for f, ts in ((f_a, ta), (f_b, tb)) if r % 2 == 0 else ((f_b, tb), (f_a, ta)):
            t0 = clock()
            f()
            ts.append(clock() - t0)

    def stats(ts):
        ts = sorted(ts)
        q = statistics.quantiles(ts, n=4) if len(ts) >= 2 else [ts[0]] * 3
        return {"median": statistics.median(ts), "p25": q[0], "p75": q[2], "min": ts[0], "n": len(ts)}
    return stats(ta), stats(tb)


def _commit() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], stderr=subprocess.DEVNULL,
                                       cwd=os.path.dirname(RESULTS)).decode().strip()
    except Exception:
        return "-"


class Recorder:
    """Collect result rows for one benchmark and append them to results.csv."""

    def __init__(self, bench: str, header: dict, path: str = RESULTS):
        self.bench, self.header, self.path, self.rows = bench, header, path, []

    def add(self, case, provider, metric, stats_or_value, unit, baseline=None, ratio=None, notes=""):
        if isinstance(stats_or_value, dict):
            med, p25, p75 = stats_or_value["median"], stats_or_value["p25"], stats_or_value["p75"]
        else:
            med = p25 = p75 = stats_or_value
        row = {"date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "commit": _commit(), "bench": self.bench,
               "case": case, "provider": provider, "metric": metric, "median": f"{med:.6g}",
               "p25": f"{p25:.6g}", "p75": f"{p75:.6g}", "unit": unit, "baseline": baseline or "",
               "ratio": "" if ratio is None else f"{ratio:.3f}", "machine": short_machine(self.header),
               "notes": notes}
        self.rows.append(row)
        rs = "" if ratio is None else f"  ratio vs {baseline}: {ratio:.2f}x"
        print(f"   {case:28s} {provider:22s} {metric:14s} {med:12.4g} {unit:10s} "
              f"[{p25:.4g}, {p75:.4g}]{rs}")
        return row

    def save(self, write: bool = True) -> None:
        if not write:
            return
        new = not os.path.exists(self.path)
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            if new:
                w.writeheader()
            w.writerows(self.rows)
        print(f"   appended {len(self.rows)} rows to {os.path.relpath(self.path)}")


def peak_rss_mb() -> float:
    """This process image's peak resident set (VmHWM; ru_maxrss would carry a parent's over exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
