"""Fast-path counters of the drop-in adapters.

Each adapter call records whether it took fastprob's fused op ("fast") or deferred to the
peer library's own computation ("fallback", with the reason), so tests and users can see
which configurations actually ran fast.
"""
from __future__ import annotations

from collections import Counter

_COUNTS: Counter = Counter()


def record(adapter: str, fast: bool, reason: str = "") -> None:
    """Count one call of ``adapter``: fast path, or fallback with its ``reason``."""
    _COUNTS[(adapter, "fast" if fast else "fallback", "" if fast else reason)] += 1


def counters() -> dict:
    """{adapter: {"fast": n, "fallback": n, "reasons": {reason: n}}} since the last reset."""
    out: dict = {}
    for (adapter, kind, reason), n in sorted(_COUNTS.items()):
        d = out.setdefault(adapter, {"fast": 0, "fallback": 0, "reasons": {}})
        d[kind] += n
        if kind == "fallback":
            d["reasons"][reason] = d["reasons"].get(reason, 0) + n
    return out


def reset_counters() -> None:
    _COUNTS.clear()
