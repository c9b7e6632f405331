"""Markdown table of pytest-benchmark results, as pasted into the README.

    python -m bench.report RESULT.json [RESULT.json ...]

Per group and member: the median time over the files of each file's median, the
interquartile range of the first file, and the time relative to the group's anchor
(anchor time / member time, median over the files: > 1 means faster than the anchor).
"""
from __future__ import annotations

import json
import statistics
import sys


def table(paths) -> str:
    runs = []
    for p in paths:
        with open(p) as f:
            runs.append({b["name"]: b for b in json.load(f)["benchmarks"]})
    first = runs[0]
    groups: dict = {}
    for name, b in first.items():
        groups.setdefault(b.get("group") or "-", []).append(name)
    out = [f"| group | benchmark | median ms | IQR ms (run 1) | speed vs anchor ({len(runs)} runs) |",
           "|---|---|---|---|---|"]
    for g in sorted(groups):
        names = groups[g]
        anchor = next((n for n in names if first[n].get("extra_info", {}).get("anchor")), None)
        for n in sorted(names, key=lambda n: first[n]["stats"]["median"]):
            med = statistics.median(r[n]["stats"]["median"] for r in runs if n in r)
            sp = ""
            if anchor:
                sp = statistics.median(r[anchor]["stats"]["median"] / r[n]["stats"]["median"]
                                       for r in runs if n in r and anchor in r)
                sp = "anchor" if n == anchor else f"{sp:.2f}x"
            out.append(f"| {g} | `{n}` | {med * 1e3:.3f} | {first[n]['stats']['iqr'] * 1e3:.3f} | {sp} |")
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    print(table(sys.argv[1:]))
