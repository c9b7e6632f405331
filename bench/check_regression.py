"""Fail when a fastprob benchmark got slower than its committed baseline.

    python -m bench.check_regression --run [--repeat 3] [--tier quick] [-k EXPR]
    python -m bench.check_regression RESULT.json [RESULT.json ...]
    python -m bench.check_regression --update RESULT.json [...]      # (re)write baselines

What is compared is not a benchmark's time but its **ratio to the group's anchor**, a peer
timed in the same pytest run on the same inputs (for example the Cython ``count_tokens``
divided by the NumPy reference, the DAPPER E-step divided by one gensim pass).  Load from
other tenants of a shared machine, a slower or faster CPU, turbo states: all of these move
both members of a pair, and mostly cancel in the ratio.  With several result files (``--run
--repeat N`` runs the suite N times, so each benchmark's rounds are interleaved with every
other benchmark's at the granularity of whole runs) the ratio is the median over runs.

A benchmark regresses when ``ratio_now > ratio_baseline * (1 + margin)``.  Each baseline
file stores its own margin, set by ``--update`` from the spread of the ratio measured over
the runs it was made from (``margin = max(MIN_MARGIN, SPREAD_FACTOR * spread)``, capped at
``MAX_MARGIN`` so that a 2x slowdown is always caught).  A benchmark whose measured spread
would need a wider margin than that is marked ``"gated": false``: it is reported ("slower,
not gated") but cannot fail the check, since on this machine it cannot tell a 2x slowdown
from noise.  bench/baselines/README.md records the measurements behind the numbers.
``--margin`` overrides every margin and gates every benchmark.

Exit status: 0 no regression, 1 at least one regression, 2 bad input.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BASELINES = os.path.join(HERE, "baselines")
MIN_MARGIN = 0.25     # never tighter than 25%: below it the quick tier flags noise on this machine
SPREAD_FACTOR = 2.0   # margin = 2x the measured relative spread of the ratio
MAX_MARGIN = 0.75     # never looser: a planted 2x slowdown (ratio x 2) must always fail


class BenchInputError(ValueError):
    """A result file or baseline that cannot be used."""


def load_results(path: str) -> dict:
    """Read one pytest-benchmark JSON -> {"tier", "benchmarks": {name: {...}}}."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise BenchInputError(f"{path}: no such result file (write one with pytest bench/ --benchmark-only "
                              "--benchmark-json=FILE)") from None
    except json.JSONDecodeError as exc:
        raise BenchInputError(f"{path} is not JSON ({exc})") from None
    if "benchmarks" not in data:
        raise BenchInputError(f"{path} is not a pytest-benchmark result file (no 'benchmarks' list)")
    out, tiers = {}, set()
    for b in data["benchmarks"]:
        info = b.get("extra_info", {})
        if "role" not in info:
            continue  # not one of fastprob's suites
        tiers.add(info.get("tier", "quick"))
        out[b["name"]] = {"group": b.get("group"), "role": info["role"], "anchor": bool(info.get("anchor")),
                          "median": float(b["stats"]["median"]), "planted": info.get("planted_slowdown", 1)}
    if len(tiers) > 1:
        raise BenchInputError(f"{path} mixes tiers {sorted(tiers)}")
    fp = data.get("machine_info", {}).get("fastprob", {})
    return {"tier": tiers.pop() if tiers else fp.get("tier", "quick"), "benchmarks": out,
            "commit": data.get("commit_info", {}).get("id"), "machine": fp}


def ratios(result: dict) -> dict:
    """{fastprob benchmark name: (ratio to its group's anchor, anchor name)} for one run."""
    by_group: dict = {}
    for name, b in result["benchmarks"].items():
        by_group.setdefault(b["group"], []).append((name, b))
    out = {}
    for group, members in by_group.items():
        anchors = [(n, b) for n, b in members if b["anchor"]]
        if len(anchors) != 1:
            raise BenchInputError(f"group {group!r} has {len(anchors)} anchors; each group needs exactly one "
                                  "peer marked anchor=True")
        an, ab = anchors[0]
        for name, b in members:
            if b["role"] == "fastprob":
                out[name] = (b["median"] / ab["median"], an)
    return out


def combine(results: list) -> dict:
    """Median (and spread) over runs of each fastprob benchmark's ratio."""
    tiers = {r["tier"] for r in results}
    if len(tiers) != 1:
        raise BenchInputError(f"result files of different tiers {sorted(tiers)} cannot be combined")
    per: dict = {}
    for r in results:
        for name, (q, anchor) in ratios(r).items():
            per.setdefault(name, {"ratios": [], "anchor": anchor})["ratios"].append(q)
    for v in per.values():
        qs = v["ratios"]
        v["ratio"] = statistics.median(qs)
        v["spread"] = max(qs) / min(qs) - 1.0 if len(qs) > 1 else None
    return {"tier": tiers.pop(), "benchmarks": per}


def _slug(tier: str, name: str) -> str:
    return f"{tier}__" + re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") + ".json"


def baseline_path(tier: str, name: str, directory: str = BASELINES) -> str:
    return os.path.join(directory, _slug(tier, name))


def margin_from_spread(spread) -> float:
    """The regression margin a measured relative spread of the ratio justifies."""
    if spread is None:
        return MIN_MARGIN
    return float(min(MAX_MARGIN, max(MIN_MARGIN, SPREAD_FACTOR * spread)))


def write_baselines(combined: dict, directory: str = BASELINES, machine=None, commit=None) -> list:
    os.makedirs(directory, exist_ok=True)
    paths = []
    for name, v in sorted(combined["benchmarks"].items()):
        rec = {"name": name, "tier": combined["tier"], "anchor": v["anchor"], "ratio": v["ratio"],
               "ratio_runs": v["ratios"], "spread": v["spread"], "margin": margin_from_spread(v["spread"]),
               "gated": v["spread"] is None or SPREAD_FACTOR * v["spread"] <= MAX_MARGIN,
               "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": commit,
               "machine": {k: (machine or {}).get(k) for k in ("cpu", "cores", "threads")}}
        p = baseline_path(combined["tier"], name, directory)
        with open(p, "w") as f:
            json.dump(rec, f, indent=1)
            f.write("\n")
        paths.append(p)
    return paths


def check(combined: dict, directory: str = BASELINES, margin: float | None = None) -> list:
    """One row per fastprob benchmark: name, ratio now / baseline, margin, verdict."""
    rows = []
    for name, v in sorted(combined["benchmarks"].items()):
        p = baseline_path(combined["tier"], name, directory)
        if not os.path.exists(p):
            rows.append({"name": name, "ratio": v["ratio"], "verdict": "new (no baseline)"})
            continue
        with open(p) as f:
            base = json.load(f)
        if base.get("anchor") != v["anchor"]:
            raise BenchInputError(f"{name}: baseline anchor {base.get('anchor')!r} differs from this run's "
                                  f"{v['anchor']!r}; rewrite the baseline with --update")
        m = base["margin"] if margin is None else margin
        change = v["ratio"] / base["ratio"]
        verdict = "REGRESSION" if change > 1 + m else ("faster" if change < 1 / (1 + m) else "ok")
        if verdict == "REGRESSION" and margin is None and not base.get("gated", True):
            verdict = "slower, not gated (noisy)"
        rows.append({"name": name, "ratio": v["ratio"], "baseline": base["ratio"], "change": change, "margin": m,
                     "runs": len(v["ratios"]), "verdict": verdict})
    return rows


def format_rows(rows: list, tier: str) -> str:
    lines = [f"regression check ({tier} tier): time / same-run anchor, now vs baseline",
             f"  {'benchmark':<44} {'ratio':>9} {'baseline':>9} {'change':>7} {'margin':>7}  verdict"]
    for r in rows:
        if "baseline" in r:
            lines.append(f"  {r['name']:<44} {r['ratio']:>9.4g} {r['baseline']:>9.4g} {r['change']:>6.2f}x "
                         f"{r['margin']:>6.0%}  {r['verdict']}")
        else:
            lines.append(f"  {r['name']:<44} {r['ratio']:>9.4g} {'-':>9} {'-':>7} {'-':>7}  {r['verdict']}")
    return "\n".join(lines)


def run_suite(repeat: int, tier: str, keyword: str | None, outdir: str, bench_dir: str = HERE) -> list:
    """Run ``pytest bench/ --benchmark-only`` ``repeat`` times; returns the JSON paths."""
    paths = []
    for i in range(repeat):
        p = os.path.join(outdir, f"run{i}.json")
        cmd = [sys.executable, "-m", "pytest", bench_dir, "--benchmark-only", f"--benchmark-json={p}", "-q",
               "-p", "no:cacheprovider", f"--bench-tier={tier}", "--benchmark-disable-gc"]
        if keyword:
            cmd += ["-k", keyword]
        print(f"run {i + 1}/{repeat}: {' '.join(cmd[2:])}", flush=True)
        r = subprocess.run(cmd, cwd=os.path.dirname(bench_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        if r.returncode != 0:
            print(r.stdout[-4000:])
            raise SystemExit(f"the benchmark run failed (exit {r.returncode})")
        paths.append(p)
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.check_regression", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="*", help="pytest-benchmark JSON files (several: median of their ratios)")
    ap.add_argument("--run", action="store_true", help="run the suite first (see --repeat, --tier, -k)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tier", default="quick", choices=["quick", "full"])
    ap.add_argument("-k", dest="keyword", default=None, help="pytest -k expression selecting benchmarks")
    ap.add_argument("--baselines", default=BASELINES, help="baseline directory (default bench/baselines)")
    ap.add_argument("--margin", type=float, default=None, help="override every baseline's margin (0.3 = 30%%)")
    ap.add_argument("--update", action="store_true", help="write the baselines from these results instead")
    ap.add_argument("--keep", default=None, help="with --run: directory to keep the result JSONs in")
    a = ap.parse_args(argv)
    if a.margin is not None and not 0 < a.margin:
        ap.error("--margin must be positive")
    if a.repeat < 1:
        ap.error("--repeat must be >= 1")
    try:
        paths = list(a.results)
        if a.run:
            outdir = a.keep or tempfile.mkdtemp(prefix="fastprob-bench-")
            os.makedirs(outdir, exist_ok=True)
            paths += run_suite(a.repeat, a.tier, a.keyword, outdir)
        if not paths:
            ap.error("give result JSON files or --run")
        results = [load_results(p) for p in paths]
        comb = combine(results)
        if not comb["benchmarks"]:
            raise BenchInputError("no fastprob benchmarks in these results")
        if a.update:
            for p in write_baselines(comb, a.baselines, results[0]["machine"], results[0]["commit"]):
                print("wrote", os.path.relpath(p))
            return 0
        rows = check(comb, a.baselines, a.margin)
    except BenchInputError as exc:
        print(f"check_regression: {exc}", file=sys.stderr)
        return 2
    print(format_rows(rows, comb["tier"]))
    bad = [r["name"] for r in rows if r["verdict"] == "REGRESSION"]
    if bad:
        print(f"{len(bad)} regression(s): {', '.join(bad)}")
        return 1
    print("no regression")
    return 0


if __name__ == "__main__":
    sys.exit(main())
