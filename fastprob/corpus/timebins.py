"""Time steps from timestamps: numeric widths, calendar units and the automatic choice.

A corpus stores its binning in two fields, ``time_width`` and ``time_origin``:

* a number ``w`` (timestamp units; days for dates) - bins are
  ``floor((timestamp - origin) / w)``, with ``origin`` the first timestamp (absolute
  mode) or each author's first timestamp (relative mode).  This is fastprob's original
  binning, kept unchanged.
* a calendar unit ``"year"``, ``"month"``, ``"week"`` or ``"day"``, optionally with a
  count (``"4 years"``, ``"3 months"``) - in absolute mode a bin is a calendar period in
  UTC: years start on 1 January, months on the 1st, weeks on the ISO Monday, days at
  midnight; a count groups periods in blocks aligned to the calendar (``"4 years"``
  starts in years divisible by 4, ``"3 months"`` in quarters, ``"10 years"`` in
  decades; blocks of weeks count from Monday 1969-12-29, of days from 1970-01-01).  ``time_origin`` is then the first day of the block holding the first
  timestamp.  In relative mode (time since the author's first document) a unit is a
  duration: a year is 365.2425 days, a month a twelfth of that.

``"auto"`` (the builders' default) picks the unit from the span of the timestamps:
years from 10 years up, months from 1 year, weeks from 10 weeks, days below; with
``time_steps=N`` it picks the unit and count whose number of bins is closest to ``N``
without exceeding it (counts that make readable blocks: 2, 3, 4 or 6 months, 2 or 4
weeks, 2-6 days, years in a 1-2-4-5-10 series).  Timestamps that are plain numbers (not dates) have no calendar:
``"auto"`` keeps the width 1 (one step per unit of the numbers) or, with ``time_steps``,
a width of 1, 2 or 5 times a power of ten.  An explicit calendar unit reads numbers as
days since 1970-01-01.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

UNITS = ("year", "month", "week", "day")  # coarse to fine
UNIT_DAYS = {"year": 365.2425, "month": 365.2425 / 12, "week": 7.0, "day": 1.0}
# auto (no target): the coarsest unit whose span reaches the threshold (days)
AUTO_FROM = {"year": 10 * 365.2425, "month": 365.2425, "week": 70.0, "day": -math.inf}
_WEEK_SHIFT = 3  # 1970-01-01 was a Thursday: day + 3 counts from Monday 1969-12-29
_UNIT_RE = re.compile(r"^\s*(?:(\d+)\s*)?(year|month|week|day)s?\s*$", re.IGNORECASE)
_HELP = ("a positive number of timestamp units (days for dates), 'auto', or a calendar unit "
         "'year', 'month', 'week' or 'day', optionally with a count such as '4 years'")


@dataclass(frozen=True)
class TimeBins:
    """A resolved binning: a calendar ``unit`` times ``multiple``, or a numeric ``width``.

    Attributes
    ----------
    unit : str or None
        One of :data:`UNITS`, or ``None`` for a numeric width.
    multiple : int
        Periods per bin (calendar units only; 1 otherwise).
    width : float
        Numeric width in timestamp units (``unit is None``), else the unit's length in days
        times ``multiple`` (the width used in relative mode).
    """

    unit: str | None
    multiple: int = 1
    width: float = 1.0

    @property
    def spec(self):
        """The value stored as ``Corpus.time_width``: a float or a canonical unit string."""
        if self.unit is None:
            return float(self.width)
        return self.unit if self.multiple == 1 else f"{self.multiple} {self.unit}s"

    def describe(self) -> str:
        if self.unit is None:
            return f"width {self.width:g} (timestamp units)"
        return self.unit + "s" if self.multiple == 1 else f"{self.multiple}-{self.unit} blocks"


def calendar(unit: str, multiple: int = 1) -> TimeBins:
    return TimeBins(unit, int(multiple), UNIT_DAYS[unit] * int(multiple))


def parse_time_width(value):
    """``time_width`` as given by a user or a manifest -> ``"auto"`` or a :class:`TimeBins`.

    Raises ValueError naming the accepted forms.
    """
    if isinstance(value, TimeBins):
        return value
    if isinstance(value, str):
        s = value.strip().lower()
        if s == "auto":
            return "auto"
        m = _UNIT_RE.match(s)
        if m:
            mult = int(m.group(1)) if m.group(1) else 1
            if mult < 1:
                raise ValueError(f"time_width {value!r}: the count of {m.group(2)}s must be >= 1")
            return calendar(m.group(2).lower(), mult)
        try:
            value = float(s)
        except ValueError:
            raise ValueError(f"time_width must be {_HELP}; got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"time_width must be {_HELP}; got {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"time_width must be a positive number, got {value}")
    return TimeBins(None, 1, float(value))


def check_time_steps(time_steps, time_width) -> None:
    """``time_width`` is valid; ``time_steps`` is a positive integer and goes with
    ``time_width="auto"`` only.  Raises ValueError saying what to pass instead."""
    parse_time_width(time_width)
    if time_steps is None:
        return
    if isinstance(time_steps, bool) or not isinstance(time_steps, (int, np.integer)) or time_steps < 1:
        raise ValueError(f"time_steps must be a positive integer (the target number of time steps), "
                         f"got {time_steps!r}")
    if parse_time_width(time_width) != "auto":
        raise ValueError(f"give either time_width={time_width!r} or time_steps={time_steps}, not both "
                         "(time_steps chooses the width itself)")


# ---- calendar arithmetic (vectorized; days since 1970-01-01, UTC) ----------------------
def unit_index(days, unit: str) -> np.ndarray:
    """Calendar period holding each timestamp: absolute year number, months since 1970-01,
    ISO weeks since Monday 1969-12-29, or days since 1970-01-01 (int64, same shape)."""
    d = np.floor(np.asarray(days, dtype=np.float64)).astype(np.int64)
    if unit == "day":
        return d
    if unit == "week":
        return np.floor_divide(d + _WEEK_SHIFT, 7)
    dd = d.astype("datetime64[D]")
    if unit == "month":
        return dd.astype("datetime64[M]").astype(np.int64)
    if unit == "year":
        return dd.astype("datetime64[Y]").astype(np.int64) + 1970
    raise ValueError(f"unknown calendar unit {unit!r}; use one of {UNITS}")


def unit_start(index, unit: str) -> np.ndarray:
    """First day (days since 1970-01-01, float64) of the periods ``index`` (see :func:`unit_index`)."""
    i = np.asarray(index, dtype=np.int64)
    if unit == "day":
        d = i
    elif unit == "week":
        d = i * 7 - _WEEK_SHIFT
    elif unit == "month":
        d = i.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    elif unit == "year":
        d = (i - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
    else:
        raise ValueError(f"unknown calendar unit {unit!r}; use one of {UNITS}")
    return d.astype(np.float64)


def origin_for(t_min: float, tb: TimeBins, mode: str) -> float:
    """Timestamp of bin 0's start: the first timestamp, or (absolute calendar binning) the
    first day of the calendar block holding it."""
    if tb.unit is None or mode != "absolute":
        return float(t_min)
    block = np.floor_divide(unit_index(t_min, tb.unit), tb.multiple)
    return float(unit_start(block * tb.multiple, tb.unit))


def assign(stamps, origin, tb: TimeBins, mode: str) -> np.ndarray:
    """Bin number (float64) of each timestamp; ``origin`` is a scalar (absolute mode) or an
    array of the same shape (relative mode: each document's author origin)."""
    stamps = np.asarray(stamps, dtype=np.float64)
    if tb.unit is not None and mode == "absolute":
        m = tb.multiple
        c0 = np.floor_divide(unit_index(origin, tb.unit), m)
        return (np.floor_divide(unit_index(stamps, tb.unit), m) - c0).astype(np.float64)
    # numeric width, or a calendar unit as a duration (relative mode); the epsilon keeps a
    # timestamp that lies exactly on a bin edge in that bin despite rounding in the division
    return np.floor((stamps - origin) / tb.width + 1e-9)


def bin_starts(time_values, origin: float | None, width, mode: str = "absolute"):
    """Start of each time step: days since 1970 (absolute calendar binning), timestamps
    (absolute numeric binning) or offsets from the author's first timestamp (relative)."""
    tb = parse_time_width(width)
    tv = np.asarray(time_values, dtype=np.float64)
    if mode == "relative" or origin is None:
        return tv * tb.width
    if tb.unit is None:
        return origin + tv * tb.width
    c0 = np.floor_divide(unit_index(origin, tb.unit), tb.multiple)
    return unit_start((c0 + tv.astype(np.int64)) * tb.multiple, tb.unit)


# ---- the automatic choice --------------------------------------------------------------
def _n_bins(lo: float, hi: float, tb: TimeBins, mode: str) -> int:
    """Bins from the first to the last timestamp (inclusive) under ``tb``."""
    o = origin_for(lo, tb, mode)
    return int(assign(np.array([hi]), o, tb, mode)[0]) + 1


def choose(time_width, time_steps, mode: str, dates: bool, lo: float, hi: float):
    """Resolve ``time_width`` (possibly ``"auto"``) into a :class:`TimeBins`.

    Parameters
    ----------
    dates : bool
        Whether any timestamp was a date (else they are plain numbers, unit unknown).
    lo, hi : float
        Absolute mode: the first and last timestamp.  Relative mode: ``lo = 0`` and ``hi``
        the longest time between an author's first document and any of their documents.

    Returns
    -------
    (TimeBins, how) : how is ``"explicit"``, ``"auto"`` or ``"auto:time_steps=N"``.
    """
    check_time_steps(time_steps, time_width)
    tb = parse_time_width(time_width)
    if tb != "auto":
        return tb, "explicit"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo = hi = 0.0
    span = max(hi - lo, 0.0)
    if time_steps is None:
        if not dates:
            return TimeBins(None, 1, 1.0), "auto"
        unit = next(u for u in UNITS if span >= AUTO_FROM[u])
        return calendar(unit), "auto"
    N = int(time_steps)
    if not dates:
        k = 0
        while True:  # widths 1, 2, 5, 10, 20, 50, ...: the first that gives <= N bins
            for w in (10.0 ** k, 2 * 10.0 ** k, 5 * 10.0 ** k):
                if math.floor(span / w + 1e-9) + 1 <= N:
                    return TimeBins(None, 1, w), f"auto:time_steps={N}"
            k += 1
    best = None
    for rank, unit in enumerate(UNITS):
        for m in _multiples(unit):
            n = _n_bins(lo, hi, calendar(unit, m), mode)
            if n <= N:  # the smallest count that fits gives this unit's most steps
                key = (n, -rank)  # most steps, then the coarser unit
                if best is None or key > best[0]:
                    best = (key, calendar(unit, m))
                break
    return best[1], f"auto:time_steps={N}"


def _multiples(unit):
    """Counts of a unit that make readable blocks: months that divide a year, up to 4
    weeks, up to 6 days, and years in a 1-2-4-5-10 series (unbounded: a target of one step
    always fits some block of years)."""
    if unit == "month":
        yield from (1, 2, 3, 4, 6)
    elif unit == "week":
        yield from (1, 2, 4)
    elif unit == "day":
        yield from (1, 2, 3, 4, 5, 6)
    else:
        yield from (1, 2, 4, 5)
        k = 10
        while True:
            yield from (k, 2 * k, 5 * k)
            k *= 10


# ---- what the binning is, for reports ------------------------------------------------
def _iso(days: float) -> str:
    return str(np.datetime64(int(math.floor(days)), "D"))


def summarize(time_mode: str, time_width, time_origin, time_values, how: str | None = None,
              dates: bool | None = None) -> dict:
    """The binning of a corpus as a JSON-able dict: unit, count, number of steps and the
    start of the first and last step (ISO dates when the bins are calendar periods or the
    timestamps were dates)."""
    tb = parse_time_width(time_width)
    tv = np.asarray(time_values, dtype=np.float64)
    out = {"mode": time_mode, "unit": tb.unit or "number", "multiple": tb.multiple,
           "width": tb.spec, "steps": int(tv.shape[0]),
           "bins_spanned": int(tv[-1] - tv[0]) + 1 if tv.size else 0}
    if how is not None:
        out["chosen"] = how
    if tv.size == 0:
        out["first_bin_start"] = out["last_bin_start"] = None
        return out
    starts = bin_starts(tv[[0, -1]], time_origin, tb, time_mode)
    if time_mode == "relative":
        u = tb.unit or "unit"
        out["first_bin_start"], out["last_bin_start"] = (
            f"+{s / (UNIT_DAYS[u] if tb.unit else 1.0):g} {u}s" for s in starts)
    elif time_origin is None:
        out["first_bin_start"] = out["last_bin_start"] = None
    elif tb.unit is not None or dates:
        out["first_bin_start"], out["last_bin_start"] = (_iso(s) for s in starts)
    else:
        out["first_bin_start"], out["last_bin_start"] = (float(s) for s in starts)
    return out


def summary_line(s: dict) -> str:
    """One line for the command line: ``time steps: 96 calendar months (auto), 2012-01-01 .. 2019-12-01``."""
    if s["unit"] == "number":
        what = f"bins of width {s['width']:g}"
    elif s["multiple"] == 1:
        what = f"{'calendar ' if s['mode'] == 'absolute' else ''}{s['unit']}s"
    else:
        what = f"{s['multiple']}-{s['unit']} {'calendar ' if s['mode'] == 'absolute' else ''}blocks"
    how = f", {s['chosen']}" if s.get("chosen") else ""
    rel = " since each author's first document" if s["mode"] == "relative" else ""
    gap = f" ({s['bins_spanned']} bins spanned)" if s["bins_spanned"] != s["steps"] else ""
    return (f"time steps: {s['steps']}{gap} of {what}{rel}{how}; first step starts "
            f"{s['first_bin_start']}, last {s['last_bin_start']}")
