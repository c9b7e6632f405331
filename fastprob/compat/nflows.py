"""nflows drop-ins: affine / additive coupling and squeeze on fastprob's fused ops.

nflows' ``Transform.forward(inputs, context)`` maps data -> noise and returns
``(outputs, logabsdet)``, as fastprob's transforms do, so the fused coupling is used as is:
the network output h holds the shift in its first half and the unconstrained scale u in
the second (layout ``"ts"``), the scale is ``sigmoid(u + 2) + 1e-3`` (scale map
``sigmoid_eps``), and the transformed features must form one block of channels
(nflows' mid-split mask does; any block size works).  Anything else - an alternating mask,
an unconditional transform, a subclass or a ``scale_activation`` other than the default -
runs nflows' own code; :func:`fastprob.compat.counters` counts which path each call took.

Usage: construct these classes where you would construct nflows', or call :func:`install`
once so that ``nflows.transforms.AffineCouplingTransform`` & co. are these.
"""
from __future__ import annotations

import torch

try:
    from nflows.transforms import coupling as _pc
    from nflows.transforms import reshape as _pr
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"fastprob.compat.nflows needs nflows ({exc}); pip install 'fastprob[compat]'") from exc

from ..flows import ops
from ._counters import record
from ._patch import Patcher

NFLOWS_EPS = 1e-3  # the constant of nflows' default scale sigmoid(u + 2) + 1e-3


def feature_block(idx: torch.Tensor):
    """(start, length) when the sorted indices ``idx`` are one run start .. start + length - 1."""
    v = idx.tolist()
    if v and v == list(range(v[0], v[0] + len(v))):
        return v[0], len(v)
    return None


class _CouplingMixin:
    """Shared fast path of the affine and additive drop-ins."""

    _peer = None  # the nflows class whose computation the fast path reproduces

    def _init_fast(self, backend):
        self.backend = backend
        # plain ints, computed once: the feature buffers move with .to(device)
        self._tblock = feature_block(self.transform_features)
        self._iblock = feature_block(self.identity_features)

    def _why_not(self, inputs):
        """Why this call cannot take the fused op (None when it can)."""
        if inputs.dim() not in (2, 4) or inputs.shape[1] != self.features:
            return "input shape nflows rejects (its own error is raised)"
        if self._tblock is None:
            return "transformed features are not one block of channels"
        if self.unconditional_transform is not None:
            return "unconditional transform on the identity features"
        if not inputs.is_floating_point():
            return "integer inputs"
        for name in ("_scale_and_shift", "_coupling_transform_forward", "_coupling_transform_inverse"):
            if getattr(type(self), name) is not getattr(self._peer, name):
                return f"subclass overrides {name}"
        act = getattr(self, "scale_activation", None)  # newer nflows: a user-chosen scale function
        if act is not None and act is not getattr(_pc.AffineCouplingTransform, "DEFAULT_SCALE_ACTIVATION", None):
            return "custom scale_activation"
        return None

    def _identity_split(self, inputs):
        if self._iblock is not None:  # a slice instead of nflows' gather copy
            a, n = self._iblock
            return inputs[:, a:a + n]
        return inputs[:, self.identity_features, ...]

    def _run(self, inputs, context, inverse):
        reason = self._why_not(inputs)
        record(self._adapter, reason is None, reason or "")
        if reason is not None:
            peer = super().inverse if inverse else super().forward
            return peer(inputs, context)
        h = self.transform_net(self._identity_split(inputs), context)
        return self._fused(inputs, h, inverse)  # (B, D) or (B, C, H, W): ops takes either

    def forward(self, inputs, context=None):
        return self._run(inputs, context, inverse=False)

    def inverse(self, inputs, context=None):
        return self._run(inputs, context, inverse=True)


class AffineCouplingTransform(_CouplingMixin, _pc.AffineCouplingTransform):
    """nflows' ``AffineCouplingTransform`` on the fused coupling (same arguments, plus
    ``backend``: None | "triton" | "torch", see :func:`fastprob.flows.ops.coupling`)."""

    _peer = _pc.AffineCouplingTransform
    _adapter = "nflows.AffineCouplingTransform"

    def __init__(self, mask, transform_net_create_fn, *args, backend=None, **kwargs):
        super().__init__(mask, transform_net_create_fn, *args, **kwargs)
        self._init_fast(backend)

    def _fused(self, x, h, inverse):
        return ops.coupling_packed(x, h, "channel", 0, "sigmoid_eps", "ts", inverse=inverse, backend=self.backend,
                                   split=self._tblock, const=NFLOWS_EPS)


class AdditiveCouplingTransform(_CouplingMixin, _pc.AdditiveCouplingTransform):
    """nflows' ``AdditiveCouplingTransform`` (shift only) on the fused coupling."""

    _peer = _pc.AdditiveCouplingTransform
    _adapter = "nflows.AdditiveCouplingTransform"

    def __init__(self, mask, transform_net_create_fn, *args, backend=None, **kwargs):
        super().__init__(mask, transform_net_create_fn, *args, **kwargs)
        self._init_fast(backend)

    def _fused(self, x, h, inverse):
        # unit scale: g = s = 0 with the exp map, so logdet is exactly 0
        return ops.coupling(x, torch.zeros_like(h), h, "channel", 0, "exp", inverse=inverse,
                            backend=self.backend, split=self._tblock)


class SqueezeTransform(_pr.SqueezeTransform):
    """nflows' ``SqueezeTransform``; factor 2 on float NCHW tensors runs fastprob's squeeze
    (its "standard" order is nflows' channel order c * 4 + 2 i + j)."""

    _adapter = "nflows.SqueezeTransform"

    def __init__(self, factor=2, backend=None):
        # nflows' __init__ calls super(SqueezeTransform, self) by its module-global name,
        # which install() rebinds to this class (infinite recursion), so initialise its
        # base directly and check the factor here.
        _pr.Transform.__init__(self)
        if isinstance(factor, bool) or not isinstance(factor, int) or factor <= 1:
            raise ValueError(f"the squeeze factor must be an integer > 1, got {factor!r}")
        self.factor = factor
        self.backend = backend

    def _why_not(self, inputs, inverse):
        if self.factor != 2:
            return f"factor {self.factor} (fused op: 2)"
        if inputs.dim() != 4:
            return "input shape nflows rejects (its own error is raised)"
        _, c, h, w = inputs.shape
        if (c < 4 or c % 4) if inverse else (h % 2 or w % 2):
            return "input shape nflows rejects (its own error is raised)"
        if not inputs.is_floating_point():
            return "integer inputs"
        return None

    def forward(self, inputs, context=None):
        reason = self._why_not(inputs, False)
        record(self._adapter, reason is None, reason or "")
        if reason is not None:
            return super().forward(inputs, context)
        return ops.squeeze(inputs, "standard", self.backend), inputs.new_zeros(inputs.shape[0])

    def inverse(self, inputs, context=None):
        reason = self._why_not(inputs, True)
        record(self._adapter, reason is None, reason or "")
        if reason is not None:
            return super().inverse(inputs, context)
        return ops.unsqueeze(inputs, "standard", self.backend), inputs.new_zeros(inputs.shape[0])


_PATCHER = Patcher(
    {"nflows.transforms.coupling": ["AffineCouplingTransform", "AdditiveCouplingTransform"],
     "nflows.transforms.reshape": ["SqueezeTransform"],
     "nflows.transforms": ["AffineCouplingTransform", "AdditiveCouplingTransform", "SqueezeTransform"]},
    {"AffineCouplingTransform": AffineCouplingTransform, "AdditiveCouplingTransform": AdditiveCouplingTransform,
     "SqueezeTransform": SqueezeTransform})


def install() -> None:
    """Make ``nflows.transforms`` hand out these drop-ins (code written for nflows picks them up)."""
    _PATCHER.install()


def uninstall() -> None:
    """Restore nflows' own classes."""
    _PATCHER.uninstall()


__all__ = ["AdditiveCouplingTransform", "AffineCouplingTransform", "SqueezeTransform", "install", "uninstall"]
