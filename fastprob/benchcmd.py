"""``fastprob bench``: run the pytest-benchmark suites of a source checkout and summarize them.

Prints the machine header and the backend each op resolves to, runs
``pytest bench/ --benchmark-only`` (tier quick or full), then a table per group: median
and interquartile range of each member, its ratio to the group's anchor (the same-run
peer baseline) and throughput where the benchmark knows its token count.  ``--check``
then runs the regression check against the committed baselines.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile


def bench_dir() -> str:
    """bench/ of the source checkout fastprob was installed from (or FASTPROB_BENCH_DIR)."""
    d = os.environ.get("FASTPROB_BENCH_DIR") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
    if not os.path.isfile(os.path.join(d, "conftest.py")):
        raise SystemExit(f"fastprob bench: no benchmark suites at {d}; the suites live in the source "
                         "repository's bench/ (install with pip install -e . from a checkout, or set "
                         "FASTPROB_BENCH_DIR=/path/to/fastprob/bench)")
    return d


def add_commands(sub):
    b = sub.add_parser("bench", help="run the benchmark suites (pytest-benchmark) and print results with spread")
    b.add_argument("--tier", choices=["quick", "full"], default="quick",
                   help="quick: CI sizes (~2 min); full: the README's sizes")
    b.add_argument("-k", dest="keyword", default=None, help="pytest -k expression, e.g. 'estep or count'")
    b.add_argument("--json", default=None, help="also keep the pytest-benchmark JSON here")
    b.add_argument("--check", action="store_true", help="then check for regressions against bench/baselines")
    b.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --), e.g. -- --benchmark-autosave")
    b.set_defaults(fn=cmd_bench)


def summarize(data: dict) -> str:
    """Per-group table of a pytest-benchmark JSON: median [IQR], ratio to anchor, tokens/s."""
    groups: dict = {}
    for bm in data["benchmarks"]:
        groups.setdefault(bm.get("group") or "-", []).append(bm)
    lines = []
    for g in sorted(groups):
        ms = groups[g]
        anchor = next((b for b in ms if b.get("extra_info", {}).get("anchor")), None)
        lines.append(f"{g}")
        for b in sorted(ms, key=lambda b: b["stats"]["median"]):
            st, info = b["stats"], b.get("extra_info", {})
            ratio = f"{anchor['stats']['median'] / st['median']:6.2f}x vs anchor" if anchor else ""
            tag = "anchor" if b is anchor else info.get("role", "")
            thr = f"  {info['tokens'] / st['median'] / 1e6:7.2f} M tok/s" if info.get("tokens") else ""
            lines.append(f"  {b['name']:<46} {st['median'] * 1e3:10.3f} ms  IQR {st['iqr'] * 1e3:8.3f} ms  "
                         f"n={st['rounds']:<3} {tag:<8} {ratio}{thr}")
    return "\n".join(lines)


def cmd_bench(a):
    d = bench_dir()
    root = os.path.dirname(d)
    sys.path.insert(0, root)
    from bench import suite

    suite.set_tier(a.tier)
    h = suite.header()
    print(f"machine: {h['cpu']} x{h['cores']}; python {h['python']}; gpu {h['gpu']}; tier {h['tier']}; "
          f"threads {h['threads']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in h["versions"].items()))
    print("backends: " + ", ".join(f"{k}={v}" for k, v in h["backends"].items()))
    out = a.json or os.path.join(tempfile.mkdtemp(prefix="fastprob-bench-"), "results.json")
    cmd = [sys.executable, "-m", "pytest", d, "--benchmark-only", f"--bench-tier={a.tier}",
           f"--benchmark-json={out}", "--benchmark-group-by=group", "--benchmark-sort=name",
           "--benchmark-columns=median,iqr,min,max,rounds", "-q", "-p", "no:cacheprovider"]
    if a.keyword:
        cmd += ["-k", a.keyword]
    cmd += list(a.pytest_args)
    print("running: " + " ".join(cmd[1:]), flush=True)
    rc = subprocess.call(cmd, cwd=root)
    if not os.path.exists(out):
        raise SystemExit(rc or 1)
    with open(out) as f:
        data = json.load(f)
    print("\nsummary (times are CPU seconds of one thread unless --benchmark-timer says otherwise):")
    print(summarize(data))
    if a.json:
        print(f"results: {a.json}")
    if rc == 0 and a.check:
        from bench import check_regression

        rc = check_regression.main([out])
    return rc
