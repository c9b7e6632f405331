"""zuko drop-in: the affine coupling of NICE / RealNVP on fastprob's fused coupling op.

zuko's lazy ``GeneralCouplingTransform(features, context, mask, univariate, shapes)`` builds,
for each context ``c``, a ``CouplingTransform`` whose features with ``mask`` True condition a
hyper-network and whose other features x_b go through ``univariate(shift, scale)``.  With the
default ``MonotonicAffineTransform`` the map is

    y_b = x_b * exp(g(u)) + b,   g(u) = u / (1 + |u| / bound),  bound = -log(slope),

with the hyper-network's output holding (b, u) interleaved per feature - the fused op's
``softclip`` scale map and ``ts_interleaved`` layout.  Three geometries keep zuko's masks on
the fused op:

* ``block``: the transformed features are one run c0 .. c0 + n - 1 (a channel split, no copies);
* ``pairs``: alternating masks on an even feature count (NICE's default): the features are
  viewed as (pairs, 2) and the coupling transforms one element of each pair (no copies);
* ``gather``: any other mask: x_b is gathered, as zuko does, and the fused op runs on it.

A ``univariate`` other than ``MonotonicAffineTransform`` (or a ``partial`` of it fixing only
``slope``), other parameter ``shapes``, a subclass overriding ``meta``, integer or empty
inputs, or a context whose batch shape extends the inputs' run zuko's own code;
:func:`fastprob.compat.counters` counts which path each call took.

Usage: construct :class:`GeneralCouplingTransform` where you would construct zuko's, or call
:func:`install` once so that ``zuko.flows.NICE`` / ``RealNVP`` build it.
"""
from __future__ import annotations

import functools
import math

import torch

try:
    from zuko.flows import coupling as _pc
    from torch.distributions.transforms import Transform as _TorchTransform
    from zuko.transforms import CouplingTransform as _PeerCoupling
    from zuko.transforms import MonotonicAffineTransform
    from zuko.utils import broadcast
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"fastprob.compat.zuko needs zuko ({exc}); pip install 'fastprob[compat]'") from exc

from ..flows import ops
from ._counters import record
from ._patch import Patcher

_ADAPTER = "zuko.GeneralCouplingTransform"


def _affine_bound(univariate):
    """-log(slope) when ``univariate`` is zuko's MonotonicAffineTransform (possibly a partial
    fixing only ``slope``), else None."""
    if univariate is MonotonicAffineTransform:
        slope = 1e-3  # zuko's default
    elif (isinstance(univariate, functools.partial) and univariate.func is MonotonicAffineTransform
          and not univariate.args and set(univariate.keywords) == {"slope"}):
        slope = univariate.keywords["slope"]
    else:
        return None
    try:
        slope = float(slope)
    except (TypeError, ValueError):
        return None
    return -math.log(slope) if 0.0 < slope < 1.0 else None


def mask_geometry(mask: torch.Tensor):
    """How the fused op covers a zuko mask (True = conditioning feature).

    Returns ("block", (c0, n)), ("pairs", first transformed index 0 or 1) or ("gather", None)."""
    idx = (~mask).nonzero().squeeze(-1).tolist()
    d = mask.numel()
    if idx == list(range(idx[0], idx[0] + len(idx))):
        return "block", (idx[0], len(idx))
    if d % 2 == 0 and len(idx) == d // 2 and idx == list(range(idx[0], d, 2)):
        return "pairs", idx[0]
    return "gather", None


class FusedCouplingTransform(_PeerCoupling):
    """zuko's ``CouplingTransform`` for a :class:`GeneralCouplingTransform` and context ``c``,
    computing y, its inverse and the log-determinant with the fused coupling op."""

    def __init__(self, lazy: "GeneralCouplingTransform", c, **kwargs):
        # torch's Transform.__init__ only: zuko's CouplingTransform.__init__ would recompute
        # the index tensors idx_a / idx_b from the mask (two nonzero()) for every context;
        # here they are properties read from the lazy module, computed once per mask
        _TorchTransform.__init__(self, **kwargs)
        self.meta = functools.partial(lazy.meta, c)
        self.lazy, self.c = lazy, c

    def _why_not(self, x):
        lazy = self.lazy
        if lazy._bound is None:
            return "univariate is not MonotonicAffineTransform"
        if tuple(tuple(s) for s in lazy.shapes) != ((), ()):
            return f"parameter shapes {lazy.shapes!r} (fused: ((), ()))"
        if type(lazy).meta is not _pc.GeneralCouplingTransform.meta:
            return "subclass overrides meta"
        if not torch.is_tensor(x) or not x.is_floating_point():
            return "integer inputs"
        if x.dim() < 1 or x.shape[-1] != lazy.mask.numel():
            return "input shape zuko rejects (its own error is raised)"
        if x.numel() == 0:
            return "empty batch"
        c = self.c
        if c is not None:
            try:
                batch = torch.broadcast_shapes(c.shape[:-1], x.shape[:-1])
            except RuntimeError:
                return "context and inputs do not broadcast (zuko's own error is raised)"
            if batch != x.shape[:-1]:
                return "context batch shape extends the inputs' (zuko's own broadcasting applies)"
        return None

    def _conditioning(self, x):
        """zuko's hyper-network input: the conditioning features (a slice when they are
        every other feature), with the context appended."""
        kind, where = self.lazy._geometry
        xa = x[..., 1 - where::2] if kind == "pairs" else x[..., self.idx_a]
        if self.c is not None:  # one context may serve the whole batch, as in zuko
            xa = torch.cat(broadcast(xa, self.c, ignore=1), dim=-1)
        return self.lazy.hyper(xa)

    @property
    def idx_a(self):
        return self.lazy._indices()[0]

    @property
    def idx_b(self):
        return self.lazy._indices()[1]

    def _fused(self, x, inverse):
        """(y, ladj) of the coupling (or its inverse) on x (*, D)."""
        lazy = self.lazy
        phi = self._conditioning(x)
        if phi.dtype != x.dtype:  # zuko would fail or promote; keep its behaviour
            return None
        batch, d = x.shape[:-1], x.shape[-1]
        xf = x.reshape(-1, d)
        hf = phi.reshape(-1, phi.shape[-1])
        n = xf.shape[0]
        kind, where = lazy._geometry
        kw = dict(inverse=inverse, backend=lazy.backend, const=lazy._bound)
        if kind == "block":
            y, ld = ops.coupling_packed(xf, hf, "channel", 0, "softclip", "ts_interleaved", split=where, **kw)
        elif kind == "pairs":
            # one (x_a, x_b) pair per row: a one-channel split inside each pair, the pair's
            # (shift, scale) read from consecutive hyper outputs
            y, ld = ops.coupling_packed(xf.reshape(-1, 2), hf.reshape(-1, 2), "channel", 0,
                                        "softclip", "ts_interleaved", split=(where, 1), **kw)
            y, ld = y.view(n, d), ld.view(n, d // 2).sum(1)
        else:
            xb = xf[:, self.idx_b]
            yb, ld = ops.coupling_packed(xb, hf, "channel", 0, "softclip", "ts_interleaved",
                                         split=(0, xb.shape[1]), **kw)
            # zuko's merge writes x_a and y_b into an empty tensor (two scatters, two gathers
            # back); copying x with y_b put in place is one scatter and the same values
            y = xf.index_copy(1, self.idx_b, yb.view(n, -1))
        return y.view(*batch, d), ld.view(batch)

    def _run(self, x, inverse):
        reason = self._why_not(x)
        out = None if reason is not None else self._fused(x, inverse)
        if out is None and reason is None:
            reason = "hyper-network output dtype differs from the inputs'"
        record(_ADAPTER, reason is None, reason or "")
        return out

    def _call(self, x):
        out = self._run(x, False)
        return super()._call(x) if out is None else out[0]

    def _inverse(self, y):
        out = self._run(y, True)
        return super()._inverse(y) if out is None else out[0]

    def call_and_ladj(self, x):
        out = self._run(x, False)
        return super().call_and_ladj(x) if out is None else out

    def log_abs_det_jacobian(self, x, y):
        # the log-determinant depends on the conditioning features only, which x and y share
        out = self._run(x, False)
        return super().log_abs_det_jacobian(x, y) if out is None else out[1]


class GeneralCouplingTransform(_pc.GeneralCouplingTransform):
    """zuko's lazy ``GeneralCouplingTransform`` whose transforms run on the fused coupling
    (same arguments, plus ``backend``: None | "triton" | "torch", see
    :func:`fastprob.flows.ops.coupling_packed`)."""

    def __new__(cls, features=None, context=0, mask=None, *args, backend=None, **kwargs):
        # zuko returns an ElementWiseTransform for a single feature; ``backend`` is ours only
        return super().__new__(cls, features, context, mask, *args, **kwargs)

    def __init__(self, features, context=0, mask=None, *args, backend=None, **kwargs):
        super().__init__(features, context, mask, *args, **kwargs)
        self.backend = backend
        # plain Python values computed once (the mask buffer moves with .to(device))
        self._bound = _affine_bound(self.univariate)
        self._geometry = mask_geometry(self.mask)

    def forward(self, c=None):
        return FusedCouplingTransform(self, c)

    def _indices(self):
        """(idx_a, idx_b) of zuko's CouplingTransform for the current mask buffer (recomputed
        after ``.to(device)`` replaces it)."""
        cached = self.__dict__.get("_idx_cache")
        if cached is None or cached[0] is not self.mask:
            cached = (self.mask, self.mask.nonzero().squeeze(-1), (~self.mask).nonzero().squeeze(-1))
            self.__dict__["_idx_cache"] = cached
        return cached[1], cached[2]


_PATCHER = Patcher({"zuko.flows.coupling": ["GeneralCouplingTransform"], "zuko.flows": ["GeneralCouplingTransform"]},
                   {"GeneralCouplingTransform": GeneralCouplingTransform})


def install() -> None:
    """Make zuko (and the NICE / RealNVP flows it builds afterwards) use the drop-in."""
    _PATCHER.install()


def uninstall() -> None:
    """Restore zuko's own class."""
    _PATCHER.uninstall()


__all__ = ["FusedCouplingTransform", "GeneralCouplingTransform", "install", "uninstall", "mask_geometry"]
