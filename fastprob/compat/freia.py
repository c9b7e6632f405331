"""FrEIA drop-ins: GLOW / RealNVP coupling blocks and the one-sided affine coupling on the fused op.

FrEIA's ``InvertibleModule.forward(x_list, c=[], rev=False, jac=True)`` returns
``((y,), log_jac_det)``, maps data -> latent, and splits the channels (dimension 1) into
x1 (the first ``split_len1``) and x2.  Its affine couplings compute

    y = x * exp(clamp * f_clamp(s)) + t

with the subnetwork output holding s in its first half and t in its second (layout ``"st"``)
for ``GLOWCouplingBlock`` and ``AffineCouplingOneSided``, or s and t from two subnetworks for
``RNVPCouplingBlock``.  The clamp activations map onto fused scale maps:

* ``"ATAN"`` (the default): clamp * 0.636 * atan(s) - scale map ``clamp_atan``;
* ``"TANH"``: clamp * tanh(s) - scale map ``tanh`` with a = clamp;
* ``"SIGMOID"`` with clamp = 2: 2 * (2 sigmoid(s) - 1) = 2 tanh(s / 2) - scale map ``bounded``.

Each half-coupling is one fused call over the whole tensor (a channel split, no slicing
copies).  A user-supplied clamp function, SIGMOID with another clamp, a non-positive clamp,
an empty half, inputs of more than 4 dimensions, integer inputs or a subclass overriding
the coupling methods run FrEIA's own code; :func:`fastprob.compat.counters` counts which
path each call took.

Usage: construct these classes where you would construct FrEIA's (``SequenceINN.append``
takes them as it takes FrEIA's), or call :func:`install` once so that
``FrEIA.modules.GLOWCouplingBlock`` & co. are these.
"""
from __future__ import annotations

import torch

try:
    from FrEIA.modules import coupling_layers as _pc
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"fastprob.compat.freia needs FrEIA ({exc}); pip install 'fastprob[compat]'") from exc

from ..flows import ops
from ..reference import coupling as _ref
from ._counters import record
from ._patch import Patcher


def scale_map_of(activation, clamp):
    """(scale map, a, const) of the fused op for FrEIA's ``clamp_activation`` and ``clamp``,
    or a string saying why there is none."""
    if not isinstance(activation, str):
        return "custom clamp_activation function"
    c = float(clamp)
    if activation == "ATAN":
        return ("clamp_atan", None, c) if c > 0 else f"clamp {c} (fused ATAN: clamp > 0)"
    if activation == "TANH":
        return "tanh", c, None
    if activation == "SIGMOID" and c == 2.0:
        return "bounded", None, None
    return f"clamp_activation {activation!r} with clamp {c} (fused: ATAN, TANH, SIGMOID with clamp 2)"


class _FusedBlockMixin:
    """Shared checks, the conditioning input and one fused half-coupling."""

    _methods = ("forward", "_coupling1", "_coupling2")  # what a user subclass must not override

    # FrEIA's coupling constructors all take these arguments; ``backend`` is fastprob's
    # (None | "triton" | "torch", see :func:`fastprob.flows.ops.coupling_packed`)
    def __init__(self, dims_in, dims_c=[], subnet_constructor=None, clamp=2.0, clamp_activation="ATAN",
                 split_len=0.5, backend=None):
        super().__init__(dims_in, dims_c, subnet_constructor, clamp, clamp_activation, split_len)
        self.backend = backend
        self._map = scale_map_of(clamp_activation, self.clamp)

    def _why_not(self, x, c):
        if isinstance(self._map, str):
            return self._map
        if len(x) != 1 or not torch.is_tensor(x[0]):
            return "not exactly one input tensor (FrEIA's own error is raised)"
        v = x[0]
        if not v.is_floating_point():
            return "integer inputs"
        if not 2 <= v.dim() <= 4 or v.shape[1] != self.channels:
            return f"input of shape {tuple(v.shape)} (fused: (B, {self.channels}) .. (B, {self.channels}, H, W))"
        if self.split_len1 == 0 or self.split_len2 == 0:
            return "an empty half (split_len 0 or all channels)"
        dropin = next(k for k in type(self).__mro__ if k.__module__ == __name__)
        for name in self._methods:
            if getattr(type(self), name) is not getattr(dropin, name):
                return f"subclass overrides {name}"
        return None

    def _cond(self, u, c):
        return torch.cat([u, *c], 1) if self.conditional else u

    def _half(self, v, h, t, split, rev, ref=False):
        """y, logdet of one affine half on v (B, C, ...): channels ``split`` transformed with
        s, t from the packed subnetwork output h (layout "st"), or s = h and t.  ``ref``: the
        call was resolved to the PyTorch reference, called directly (no second dispatch)."""
        name, a, const = self._map
        if t is None:
            if tuple(h.shape) != (v.shape[0], 2 * split[1], *v.shape[2:]) or h.dtype != v.dtype:
                return None
            if ref:
                return _ref.coupling_packed(v, h, "channel", 0, name, "st", a, rev, split, const)
            return ops.coupling_packed(v, h, "channel", 0, name, "st", a=a, inverse=rev, backend=self.backend,
                                       split=split, const=const)
        want = (v.shape[0], split[1], *v.shape[2:])
        if tuple(h.shape) != want or tuple(t.shape) != want or h.dtype != v.dtype or t.dtype != v.dtype:
            return None
        if ref:
            return _ref.coupling(v, h, t, "channel", 0, name, a, rev, split, const)
        return ops.coupling(v, h, t, "channel", 0, name, a=a, inverse=rev, backend=self.backend, split=split,
                            const=const)

    def forward(self, x, c=[], rev=False, jac=True):
        reason = self._why_not(x, c)
        out = None if reason is not None else self._fused(x[0], c, rev)
        if out is None and reason is None:
            reason = "subnetwork output shape or dtype not the coupling's (FrEIA's own handling applies)"
        record(self._adapter, reason is None, reason or "")
        if out is None:
            return super().forward(x, c, rev, jac)
        return (out[0],), out[1]


class _TwoSided(_FusedBlockMixin):
    """GLOW and RealNVP: x1 transformed given x2, then x2 given the new x1 (reverse: undone
    in the opposite order).  Subclasses define ``_params(which, u)``: (h, None) with the packed
    output of subnetwork ``which`` (GLOW), or (s, t) of its two subnetworks (RealNVP)."""

    def _fused(self, v, c, rev):
        if ops.backend_for("coupling", (v,), self.backend) == "triton":
            return self._fused_whole(v, c, rev)
        return self._fused_halves(v, c, rev)

    def _fused_whole(self, v, c, rev):
        """Triton: each half-coupling is one kernel pass over the whole tensor (no slicing
        copies, no concatenation)."""
        n1, n2 = self.split_len1, self.split_len2
        first, second = (0, n1), (n1, n2)
        if not rev:
            o1 = self._half(v, *self._params(2, self._cond(v[:, n1:], c)), first, rev)
            if o1 is None:
                return None
            o2 = self._half(o1[0], *self._params(1, self._cond(o1[0][:, :n1], c)), second, rev)
        else:
            o1 = self._half(v, *self._params(1, self._cond(v[:, :n1], c)), second, rev)
            if o1 is None:
                return None
            o2 = self._half(o1[0], *self._params(2, self._cond(o1[0][:, n1:], c)), first, rev)
        if o2 is None:
            return None
        return o2[0], o1[1] + o2[1]

    def _fused_halves(self, v, c, rev):
        """PyTorch reference (CPU): the halves as views, each transformed on its own and
        concatenated once - rewriting the whole tensor per half would add a copy of the
        untouched half and a concatenation per half-coupling."""
        n1, n2 = self.split_len1, self.split_len2
        x1, x2 = torch.split(v, [n1, n2], dim=1)
        if not rev:
            o1 = self._half(x1, *self._params(2, self._cond(x2, c)), (0, n1), rev, ref=True)
            if o1 is None:
                return None
            o2 = self._half(x2, *self._params(1, self._cond(o1[0], c)), (0, n2), rev, ref=True)
        else:
            o2 = self._half(x2, *self._params(1, self._cond(x1, c)), (0, n2), rev, ref=True)
            if o2 is None:
                return None
            o1 = self._half(x1, *self._params(2, self._cond(o2[0], c)), (0, n1), rev, ref=True)
        if o1 is None:
            return None
        return torch.cat([o1[0], o2[0]], 1), o1[1] + o2[1]


class GLOWCouplingBlock(_TwoSided, _pc.GLOWCouplingBlock):
    """FrEIA's ``GLOWCouplingBlock`` on the fused coupling (same arguments, plus ``backend``:
    None | "triton" | "torch", see :func:`fastprob.flows.ops.coupling_packed`)."""

    _adapter = "FrEIA.GLOWCouplingBlock"

    def _params(self, which, u):
        return (self.subnet1(u) if which == 1 else self.subnet2(u)), None


class RNVPCouplingBlock(_TwoSided, _pc.RNVPCouplingBlock):
    """FrEIA's ``RNVPCouplingBlock`` (separate s and t subnetworks) on the fused coupling."""

    _adapter = "FrEIA.RNVPCouplingBlock"

    def _params(self, which, u):
        if which == 1:
            return self.subnet_s1(u), self.subnet_t1(u)
        return self.subnet_s2(u), self.subnet_t2(u)


class AffineCouplingOneSided(_FusedBlockMixin, _pc.AffineCouplingOneSided):
    """FrEIA's ``AffineCouplingOneSided`` (x2 transformed given x1) on the fused coupling."""

    _adapter = "FrEIA.AffineCouplingOneSided"
    _methods = ("forward",)

    def _fused(self, v, c, rev):
        n1 = self.split_len1
        return self._half(v, self.subnet(self._cond(v[:, :n1], c)), None, (n1, self.split_len2), rev)


_NAMES = ["GLOWCouplingBlock", "RNVPCouplingBlock", "AffineCouplingOneSided"]
_PATCHER = Patcher({"FrEIA.modules.coupling_layers": _NAMES, "FrEIA.modules": _NAMES},
                   {"GLOWCouplingBlock": GLOWCouplingBlock, "RNVPCouplingBlock": RNVPCouplingBlock,
                    "AffineCouplingOneSided": AffineCouplingOneSided})


def install() -> None:
    """Make ``FrEIA.modules.GLOWCouplingBlock`` & co. the drop-ins."""
    _PATCHER.install()


def uninstall() -> None:
    """Restore FrEIA's own classes."""
    _PATCHER.uninstall()


__all__ = ["GLOWCouplingBlock", "RNVPCouplingBlock", "AffineCouplingOneSided", "install", "uninstall",
           "scale_map_of"]
