"""What ``fastprob backends`` says about the drop-in adapters: is the peer installed, and
does a small call in the peer's default configuration take the fast path (and on which
kernel)."""
from __future__ import annotations

import importlib
from importlib import metadata

from ._counters import counters


def _fast_delta(adapter: str, before: dict) -> tuple[int, int]:
    now = counters().get(adapter, {"fast": 0, "fallback": 0})
    old = before.get(adapter, {"fast": 0, "fallback": 0})
    return now["fast"] - old["fast"], now["fallback"] - old["fallback"]


def _probe_nflows():
    import torch
    from nflows.utils import torchutils

    from . import nflows as m

    mask = torchutils.create_mid_split_binary_mask(4)
    layer = m.AffineCouplingTransform(mask, lambda i, o: _Lin(i, o))
    layer(torch.randn(2, 4))
    m.SqueezeTransform()(torch.randn(1, 1, 2, 2))
    return ["nflows.AffineCouplingTransform", "nflows.SqueezeTransform"]


def _probe_normflows():
    import torch

    from . import normflows as m

    m.AffineCouplingBlock(_Lin(2, 4, context=False), True, "sigmoid", "channel")(torch.randn(2, 4))
    m.Squeeze()(torch.randn(1, 4, 1, 1))
    return ["normflows.AffineCouplingBlock", "normflows.Squeeze"]


def _probe_zuko():
    import torch

    from . import zuko as m

    m.GeneralCouplingTransform(4, 2)(torch.randn(2)).call_and_ladj(torch.randn(3, 4))
    return ["zuko.GeneralCouplingTransform"]


def _probe_freia():
    import torch

    from . import freia as m

    sub = lambda i, o: torch.nn.Linear(i, o)  # noqa: E731
    m.GLOWCouplingBlock([(4,)], subnet_constructor=sub)([torch.randn(3, 4)])
    m.AffineCouplingOneSided([(4,)], subnet_constructor=sub)([torch.randn(3, 4)])
    return ["FrEIA.GLOWCouplingBlock", "FrEIA.AffineCouplingOneSided"]


def _probe_sklearn():
    from .. import text

    text.CountVectorizer().fit_transform(["fast path probe", "probe"])
    return ["sklearn.CountVectorizer"]


def _Lin(i, o, context=True):
    import torch

    class Lin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.f = torch.nn.Linear(i, o)

        def forward(self, x, *ctx):
            return self.f(x)

    return Lin()


_PEERS = {"nflows": ("nflows", _probe_nflows), "normflows": ("normflows", _probe_normflows),
          "zuko": ("zuko", _probe_zuko), "freia": ("FrEIA", _probe_freia),
          "sklearn": ("scikit-learn", _probe_sklearn)}


def adapter_report() -> list[tuple[str, str]]:
    """[(adapter, status)] for every adapter: 'fast path' / 'fallback' / why unavailable."""
    from .. import _dispatch

    rows = []
    for name, (dist, probe) in _PEERS.items():
        try:
            ver = metadata.version(dist)
            importlib.import_module("fastprob.text" if name == "sklearn" else f"fastprob.compat.{name}")
        except Exception as exc:  # not installed, or a broken install
            rows.append((name, f"unavailable: {exc.__class__.__name__}: {exc}; pip install 'fastprob[compat]'"))
            continue
        before = counters()
        try:
            adapters = probe()
        except Exception as exc:
            rows.append((name, f"{dist} {ver}: probe failed: {exc}"))
            continue
        for ad in adapters:
            fast, fb = _fast_delta(ad, before)
            path = "fast path" if fast and not fb else "FALLBACK"
            if name == "sklearn":
                kernel = f"word counter: {_dispatch.backend_name('word_counts')}"
            else:
                import torch

                if not torch.cuda.is_available():
                    kernel = "no CUDA device: PyTorch reference of the fused op"
                else:
                    try:
                        _dispatch.resolve("coupling", "triton")
                        kernel = "CUDA tensors: Triton kernel"
                    except _dispatch.BackendUnavailable as exc:
                        kernel = f"CUDA tensors: PyTorch reference ({exc})"
                    kernel += "; CPU tensors: PyTorch reference"
            rows.append((ad, f"{dist} {ver}: {path} ({kernel})"))
    return rows


def show_adapters(file=None) -> None:
    """Print :func:`adapter_report` (part of ``fastprob backends``)."""
    import sys

    out = file or sys.stdout
    print("drop-in adapters (default configuration probed):", file=out)
    for ad, status in adapter_report():
        print(f"    {ad:34s} {status}", file=out)
