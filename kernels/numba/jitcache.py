"""Whether Numba can keep compiled kernels on disk here (decided once per process).

The kernels are compiled with ``cache=True`` so that every later process - a new Python
session, each Dask worker - loads the machine code from disk (about a second) instead of
compiling again (a minute or more for the E-step).  Numba looks for a writable place in
this order: ``NUMBA_CACHE_DIR``, the ``__pycache__`` folder beside the kernel sources, then
a per-user folder (``~/.cache/numba``).  In a read-only install without a writable home
none exists and ``njit(cache=True)`` raises when the module is imported; the kernel
modules would then fail to import and fastprob would fall back to the slow NumPy
reference.  :data:`CACHE` is False in that case: the kernels are compiled in memory in
every process (correct, just slower to start) and a warning names the fix.
"""
from __future__ import annotations

import warnings

from numba import njit


def _probe():  # lives beside the kernels, so Numba's search finds the same folders
    return 0


def cache_location() -> str | None:
    """The folder Numba caches this package's kernels in, or None when there is none."""
    try:
        disp = njit(cache=True)(_probe)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return None
    cache = getattr(disp, "_cache", None)
    return getattr(cache, "_cache_path", None) or "(numba cache)"


CACHE_DIR = cache_location()
CACHE = CACHE_DIR is not None
if not CACHE:
    warnings.warn("fastprob: Numba cannot cache compiled kernels (the install folder and the user "
                  "cache folder are read-only), so every process compiles them again (a minute or "
                  "more); set NUMBA_CACHE_DIR to a writable folder to keep them", RuntimeWarning,
                  stacklevel=2)
