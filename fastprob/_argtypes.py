"""argparse ``type=`` checkers that reject bad numbers with a clear message.

A negative ``--jobs`` or ``--time-budget`` used to be accepted and fail (or do nothing)
much later; these fail at parse time, naming the value and the allowed range.
"""
from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    """An integer >= 1."""
    v = _num(text, int)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (>= 1), got {text}")
    return v


def nonnegative_int(text: str) -> int:
    """An integer >= 0."""
    v = _num(text, int)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return v


def positive_float(text: str) -> float:
    """A finite number > 0."""
    v = _num(text, float)
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return v


def fraction(text: str) -> float:
    """A number in [0, 1) (0 = none)."""
    v = _num(text, float)
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {text}")
    return v


def time_width(text: str):
    """``auto``, a calendar unit (``year``, ``month``, ``week``, ``day``, ``4years``, "3 months")
    or a positive number of timestamp units."""
    from .corpus.timebins import parse_time_width

    try:
        tb = parse_time_width(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return tb if tb == "auto" else tb.spec


def _num(text: str, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be {'an integer' if kind is int else 'a number'}, got {text!r}") from None
