"""Per-phase wall-clock timing of training epochs (``DAPPER(profile=True)``, ``--profile``).

A :class:`PhaseTimer` splits each epoch into named phases::

    timer = PhaseTimer()
    timer.start_epoch()
    with timer.phase("estep"):
        ...
    for batch in timer.iterate("data", batches):   # time spent fetching each item
        ...
    timer.end_epoch()   # -> {"epoch_wall": s, "phases": {"estep": s, "data": s, ...}}

Phases may nest; each phase is charged only its *exclusive* time (a nested phase's time is
taken out of its parent), so the phases of an epoch add up to the time spent inside them
and ``epoch_wall - sum(phases)`` is the epoch's time outside every phase (reported as
"unaccounted").  Python's cyclic garbage collector can pause the process anywhere; while
an epoch is open those pauses are charged to their own phase "gc" (through
``gc.callbacks``) instead of to whatever phase they interrupted.  :data:`NULL_TIMER` has the same interface and does nothing: code paths
call ``timer.phase(...)`` unconditionally and pay one attribute lookup and an empty
``with`` when profiling is off.
"""
from __future__ import annotations

import gc
import time
from collections import defaultdict

_clock = time.perf_counter


class _NullPhase:
    __slots__ = ()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_NULL_PHASE = _NullPhase()


class NullTimer:
    """A timer that records nothing (profiling off)."""

    enabled = False
    records: list = []

    def phase(self, name: str):
        return _NULL_PHASE

    def iterate(self, name: str, iterable):
        return iterable

    def start_epoch(self):
        pass

    def end_epoch(self):
        return {}

    def close(self):
        pass


NULL_TIMER = NullTimer()


class _Phase:
    __slots__ = ("timer", "name", "t0", "child")

    def __init__(self, timer, name):
        self.timer, self.name = timer, name

    def __enter__(self):
        self.child = 0.0
        self.timer._stack.append(self)
        self.t0 = _clock()
        return self

    def __exit__(self, *exc):
        dt = _clock() - self.t0
        st = self.timer._stack
        st.pop()
        self.timer._current[self.name] += dt - self.child
        if st:  # the parent is charged only for what its children did not take
            st[-1].child += dt
        return False


class PhaseTimer:
    """Records the exclusive wall time of named phases, one record per epoch.

    Attributes
    ----------
    records : list of dict
        One per finished epoch: ``{"epoch_wall": seconds, "phases": {name: seconds}}``.
    """

    enabled = True

    def __init__(self):
        self.records: list[dict] = []
        self._current = defaultdict(float)
        self._stack: list[_Phase] = []
        self._gc_t0 = None

    def _on_gc(self, event, info):
        if event == "start":
            self._gc_t0 = _clock()
        elif self._gc_t0 is not None:
            dt = _clock() - self._gc_t0
            self._gc_t0 = None
            self._current["gc"] += dt
            if self._stack:
                self._stack[-1].child += dt

    def phase(self, name: str) -> _Phase:
        """Context manager timing one phase (accumulates over repeated entries in an epoch)."""
        return _Phase(self, name)

    def iterate(self, name: str, iterable):
        """Yield from ``iterable``, charging the time of each ``next()`` to phase ``name``."""
        it = iter(iterable)
        while True:
            with _Phase(self, name):
                try:
                    item = next(it)
                except StopIteration:
                    return
            yield item

    def start_epoch(self) -> None:
        """Start an epoch: phases from here on are charged to it (resets a stale stack)."""
        self._current = defaultdict(float)
        self._stack = []
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)
        self._t0 = _clock()

    def end_epoch(self) -> dict:
        """Close the epoch; returns (and appends to ``records``) its record."""
        rec = {"epoch_wall": _clock() - self._t0, "phases": dict(self._current)}
        self.close()
        self.records.append(rec)
        self._current = defaultdict(float)
        return rec

    def close(self) -> None:
        """Stop listening to the garbage collector (end_epoch does this too)."""
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)


def make_timer(profile: bool):
    """A fresh :class:`PhaseTimer` when ``profile`` is true, else :data:`NULL_TIMER`."""
    return PhaseTimer() if profile else NULL_TIMER


def history_records(history) -> list[dict]:
    """The profiled epochs of a model history (entries with ``"phases"``) as timer records."""
    return [{"epoch_wall": h["epoch_wall"], "phases": h["phases"]} for h in history if "phases" in h]


def phase_names(records) -> list[str]:
    """Phase names over all records, in order of first appearance."""
    names: list[str] = []
    for r in records:
        for k in r["phases"]:
            if k not in names:
                names.append(k)
    return names


def summarize(records) -> dict:
    """Totals over epochs: ``{"wall", "phases": {name: s}, "unaccounted", "share": {name: fraction}}``."""
    names = phase_names(records)
    tot = {k: float(sum(r["phases"].get(k, 0.0) for r in records)) for k in names}
    wall = float(sum(r["epoch_wall"] for r in records))
    return {"epochs": len(records), "wall": wall, "phases": tot,
            "unaccounted": wall - sum(tot.values()),
            "share": {k: (v / wall if wall > 0 else 0.0) for k, v in tot.items()}}


def format_table(records, title: str = "time per phase") -> str:
    """A plain-text table: per phase, total seconds, share of wall time, median per epoch."""
    import statistics

    if not records:
        return f"{title}: no epochs recorded"
    s = summarize(records)
    lines = [f"{title} ({s['epochs']} epochs, {s['wall']:.3f} s wall)",
             f"  {'phase':<14} {'total s':>10} {'share':>7} {'median/epoch s':>15}"]
    for k in sorted(s["phases"], key=lambda k: -s["phases"][k]):
        med = statistics.median(r["phases"].get(k, 0.0) for r in records)
        lines.append(f"  {k:<14} {s['phases'][k]:>10.4f} {s['share'][k]:>7.1%} {med:>15.5f}")
    un = s["unaccounted"]
    lines.append(f"  {'(unaccounted)':<14} {un:>10.4f} {un / s['wall'] if s['wall'] else 0:>7.1%}")
    return "\n".join(lines)


def plot_phases(records, path: str, title: str = "time per phase and epoch") -> str:
    """Stacked bars of each epoch's phase times (seconds) with the epoch wall time as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = phase_names(records)
    x = np.arange(1, len(records) + 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.35 * len(records) + 3), 3.6))
    bottom = np.zeros(len(records))
    cmap = plt.get_cmap("tab10")
    for i, k in enumerate(names):
        v = np.array([r["phases"].get(k, 0.0) for r in records])
        ax.bar(x, v, bottom=bottom, color=cmap(i % 10), label=k, width=0.8)
        bottom += v
    ax.plot(x, [r["epoch_wall"] for r in records], "k.-", lw=1, label="epoch wall")
    ax.set_xlabel("epoch")
    ax.set_ylabel("seconds")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
