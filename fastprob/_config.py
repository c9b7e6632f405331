"""The one place where ``FASTPROB_*`` environment variables are read.

===========================  =====================================================
variable                     effect
===========================  =====================================================
FASTPROB_PUREPYTHON=1        use the NumPy / PyTorch references for every op
FASTPROB_DISABLE_NUMBA=1     never use the Numba kernels (DAPPER E-step)
FASTPROB_DISABLE_CYTHON=1    never use the Cython extensions (counting, tokenizer)
FASTPROB_DISABLE_TRITON=1    never use the Triton kernels (flows)
FASTPROB_NUM_THREADS=N       default thread count for Numba kernels (default: all)
FASTPROB_PROGRESS=0          turn progress bars off
TRITON_INTERPRET=1           Triton's own switch (CPU interpreter); fastprob then
                             honours an explicit backend="triton" on CPU tensors
FASHION_MNIST_DIR=DIR        where ``fastprob flows train --data fashion-mnist``
                             finds the IDX files (default: Debian's package path)
===========================  =====================================================

The variables are read when this module is imported; tests that change them call
:func:`reload`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass


def _flag(name: str) -> bool:
    return os.environ.get(name, "0").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Config:
    purepython: bool
    disable_numba: bool
    disable_cython: bool
    disable_triton: bool
    num_threads: int | None
    progress: bool
    triton_interpret: bool
    fashion_mnist_dir: str | None


def _read() -> Config:
    nt = os.environ.get("FASTPROB_NUM_THREADS")
    num_threads = None
    if nt:
        try:
            num_threads = int(nt)
        except ValueError:
            raise ValueError(f"FASTPROB_NUM_THREADS must be an integer, got {nt!r}") from None
        if num_threads < 1:
            raise ValueError(f"FASTPROB_NUM_THREADS must be >= 1, got {num_threads}")
    return Config(
        purepython=_flag("FASTPROB_PUREPYTHON"),
        disable_numba=_flag("FASTPROB_DISABLE_NUMBA"),
        disable_cython=_flag("FASTPROB_DISABLE_CYTHON"),
        disable_triton=_flag("FASTPROB_DISABLE_TRITON"),
        num_threads=num_threads,
        progress=os.environ.get("FASTPROB_PROGRESS", "1").strip() not in ("0", "false", "no"),
        triton_interpret=os.environ.get("TRITON_INTERPRET", "0").strip() == "1",
        fashion_mnist_dir=os.environ.get("FASHION_MNIST_DIR") or None,
    )


config: Config = _read()


def reload() -> Config:
    """Re-read the environment (used by tests that toggle backends)."""
    global config
    config = _read()
    from . import _dispatch

    _dispatch.clear_cache()
    return config
