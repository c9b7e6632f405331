import os

# Triton kernels are tested on the CPU through Triton's interpreter when no GPU is present;
# the variable must be set before any kernel module is imported (at decoration time).
try:
    import torch

    _HAS_CUDA = torch.cuda.is_available()
except ImportError:  # pragma: no cover
    _HAS_CUDA = False
if not _HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")

import numpy as np
import pytest

from fastprob import _config, _dispatch


@pytest.fixture(params=["compiled", "purepython"])
def backend_mode(request, monkeypatch):
    """Run a test once with the compiled backends and once with FASTPROB_PUREPYTHON=1."""
    if request.param == "purepython":
        monkeypatch.setenv("FASTPROB_PUREPYTHON", "1")
    else:
        monkeypatch.delenv("FASTPROB_PUREPYTHON", raising=False)
    _config.reload()
    yield request.param
    monkeypatch.undo()
    _config.reload()


@pytest.fixture
def poison_empty(monkeypatch):
    """Fill every torch.empty / empty_like with NaN, so outputs a kernel never writes are caught
    (used as ``pytestmark = pytest.mark.usefixtures("poison_empty")`` by the kernel tests)."""
    import torch

    real_empty, real_like = torch.empty, torch.empty_like

    def empty(*a, **k):
        out = real_empty(*a, **k)
        return out.fill_(float("nan")) if out.is_floating_point() else out

    def empty_like(*a, **k):
        out = real_like(*a, **k)
        return out.fill_(float("nan")) if out.is_floating_point() else out

    monkeypatch.setattr(torch, "empty", empty)
    monkeypatch.setattr(torch, "empty_like", empty_like)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def missing_compiled(reason: str):
    """A compiled backend is missing: skip, or fail under FASTPROB_REQUIRE_COMPILED=1 (CI),
    where a broken build must not pass as a run of skipped kernel tests."""
    if _config.config.require_compiled:
        pytest.fail(f"FASTPROB_REQUIRE_COMPILED=1 but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def import_compiled(module: str, reason: str):
    """``pytest.importorskip`` that fails instead under FASTPROB_REQUIRE_COMPILED=1."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing_compiled(f"{reason} ({exc})")


def compiled_available(op, name):
    try:
        _dispatch.resolve(op, name)
        return True
    except _dispatch.BackendUnavailable:
        return False
