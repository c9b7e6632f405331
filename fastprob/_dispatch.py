"""Backend registry: which implementation each op uses, and why.

Each op has an ordered list of backends (fastest first) and always ends with its
reference.  A backend is a loader that returns the callable or raises with the reason it
is unavailable (not compiled, disabled by an environment variable, no GPU, ...).
``resolve(op)`` picks the first available backend; ``resolve(op, "numba")`` insists on
one and raises :class:`BackendUnavailable` with the reason when it cannot be honoured.

Some backends also depend on the arguments of each call (the Triton flow kernels run on
CUDA tensors only): they are registered with a ``device_check`` and resolved per call
with :func:`resolve_for`, which applies the same gates and then the device check.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from . import _config


class BackendUnavailable(RuntimeError):
    """An explicitly requested backend cannot be used here."""


@dataclass
class _Backend:
    name: str
    module: str
    attr: str
    gate: Callable[[], str | None]  # returns a reason string when disabled
    note: str = ""
    # per call: (tensors, explicitly requested) -> reason string when these tensors cannot use it
    device_check: Callable[[tuple, bool], str | None] | None = None


_REGISTRY: dict[str, list[_Backend]] = {}
_CACHE: dict[tuple[str, str], Callable] = {}


def clear_cache() -> None:
    _CACHE.clear()


def _no_gate() -> str | None:
    return None


def _gate_for(kind: str) -> Callable[[], str | None]:
    def gate() -> str | None:
        cfg = _config.config
        if cfg.purepython:
            return "FASTPROB_PUREPYTHON=1"
        if getattr(cfg, f"disable_{kind}"):
            return f"FASTPROB_DISABLE_{kind.upper()}=1"
        return None

    return gate


def register(op: str, name: str, target: str, kind: str | None = None, note: str = "",
             device_check: Callable[[tuple, bool], str | None] | None = None) -> None:
    """Register ``target`` ("module:attr") as backend ``name`` of ``op`` (appended in priority order)."""
    module, attr = target.split(":")
    gate = _gate_for(kind) if kind else _no_gate
    _REGISTRY.setdefault(op, []).append(_Backend(name, module, attr, gate, note, device_check))


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def _cuda_only(tensors, explicit: bool) -> str | None:
    """Triton kernels: CUDA tensors; CPU tensors only in Triton's interpreter and only when the
    caller asks for Triton explicitly (the interpreter is for tests, never picked implicitly)."""
    import torch

    if all(t.is_cuda for t in tensors if torch.is_tensor(t)):
        return None
    if explicit and _config.config.triton_interpret:
        return None
    return "tensors are not on a CUDA device (set TRITON_INTERPRET=1 to run the kernels on CPU for testing)"


def _load(b: _Backend) -> Callable:
    reason = b.gate()
    if reason:
        raise BackendUnavailable(f"disabled by {reason}")
    key = (b.module, b.attr)
    if key not in _CACHE:
        try:
            mod = importlib.import_module(b.module)
        except Exception as exc:  # ImportError, or a compiler/JIT problem at import
            raise BackendUnavailable(f"cannot import {b.module}: {exc}") from exc
        _CACHE[key] = getattr(mod, b.attr)
    return _CACHE[key]


def resolve(op: str, backend: str | None = None) -> Callable:
    """Return the implementation of ``op``: the best available, or exactly ``backend``."""
    if op not in _REGISTRY:
        raise KeyError(f"unknown op {op!r}; known ops: {sorted(_REGISTRY)}")
    backends = _REGISTRY[op]
    if backend is not None:
        for b in backends:
            if b.name == backend:
                try:
                    return _load(b)
                except BackendUnavailable as exc:
                    raise BackendUnavailable(
                        f"backend {backend!r} for op {op!r} is unavailable: {exc}") from exc
        raise BackendUnavailable(
            f"op {op!r} has no backend {backend!r}; choose one of {[b.name for b in backends]}")
    for b in backends:
        try:
            return _load(b)
        except BackendUnavailable:
            continue
    raise BackendUnavailable(f"no backend of {op!r} is available")  # reference never fails


def resolve_for(op: str, tensors, backend: str | None = None) -> tuple[str, Callable]:
    """(name, implementation) of ``op`` for a call on ``tensors``: the first backend whose
    gates and device check pass, or exactly ``backend`` (BackendUnavailable with the reason)."""
    if op not in _REGISTRY:
        raise KeyError(f"unknown op {op!r}; known ops: {sorted(_REGISTRY)}")
    backends = _REGISTRY[op]
    if backend is not None:
        b = next((b for b in backends if b.name == backend), None)
        if b is None:
            raise BackendUnavailable(
                f"op {op!r} has no backend {backend!r}; choose one of {[b.name for b in backends]}")
        reason = b.device_check(tuple(tensors), True) if b.device_check else None
        if reason:
            raise BackendUnavailable(f"backend {backend!r} for op {op!r} is unavailable: {reason}")
        return b.name, resolve(op, backend)
    for b in backends:
        if b.device_check and b.device_check(tuple(tensors), False):
            continue
        try:
            return b.name, _load(b)
        except BackendUnavailable:
            continue
    raise BackendUnavailable(f"no backend of {op!r} is available")  # reference never fails


def backend_name(op: str) -> str:
    """Name of the backend ``resolve(op)`` would pick."""
    for b in _REGISTRY[op]:
        try:
            _load(b)
            return b.name
        except BackendUnavailable:
            continue
    return "none"


def report() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """[(op, chosen backend, [(backend, status or reason), ...]), ...]."""
    rows = []
    for op, backends in _REGISTRY.items():
        chosen, statuses = None, []
        for b in backends:
            try:
                _load(b)
                status = "available" + (f" ({b.note})" if b.note else "")
                if b.device_check and not _has_cuda():
                    status += "; this machine has no CUDA device"
                if chosen is None:
                    chosen = b.name + (" for CUDA tensors, else" if b.device_check else "")
                elif chosen.endswith(", else"):
                    chosen += f" {b.name}"
            except BackendUnavailable as exc:
                status = f"unavailable: {exc}"
            statuses.append((b.name, status))
        rows.append((op, chosen or "none", statuses))
    return rows


def show_backends(file=None) -> None:
    """Print, for each op, the backend in use and why the faster ones are not."""
    import sys

    out = file or sys.stdout
    for op, chosen, statuses in report():
        print(f"{op}: {chosen}", file=out)
        for name, status in statuses:
            print(f"    {name:10s} {status}", file=out)


# ---- the registry -------------------------------------------------------------------
# CPU corpus ops: Cython first, NumPy reference last.
register("count_tokens", "cython", "fastprob._csrc.sparse_counts:count_tokens", "cython")
register("count_tokens", "numpy", "fastprob.reference.sparse_counts:count_tokens")
register("remap_csr", "cython", "fastprob._csrc.sparse_counts:remap_csr", "cython")
register("remap_csr", "numpy", "fastprob.reference.sparse_counts:remap_csr")
register("tokenizer", "cython", "fastprob._csrc.tokenize:HashTokenizer", "cython")
register("tokenizer", "python", "fastprob.reference.tokenize:HashTokenizer")
# DAPPER E-step: Numba first.
register("dapper_estep", "numba", "fastprob.kernels.numba.estep:estep", "numba",
         note="parallel over nnz-balanced document chunks")
register("dapper_estep", "numpy", "fastprob.reference.estep:estep")
# Flow kernels: Triton only on CUDA tensors, checked per call (resolve_for) by _cuda_only.
for _op, _tri, _ref in (("coupling", "coupling:coupling_triton", "coupling:coupling"),
                        ("squeeze", "squeeze:squeeze_triton", "squeeze:squeeze"),
                        ("unsqueeze", "squeeze:unsqueeze_triton", "squeeze:unsqueeze"),
                        ("squeeze_split", "squeeze:squeeze_split_triton", "squeeze:squeeze_split"),
                        ("unsqueeze_merge", "squeeze:unsqueeze_merge_triton", "squeeze:unsqueeze_merge")):
    register(_op, "triton", f"fastprob.kernels.triton.{_tri}", "triton", note="used for CUDA tensors",
             device_check=_cuda_only)
    register(_op, "torch", f"fastprob.reference.{_ref}")
