"""normflows drop-ins: affine coupling, the coupling block of Glow, squeeze.

normflows' ``Flow.forward(z)`` maps latent -> data and returns ``(z', log|det dz'/dz|)``;
``inverse`` maps data -> latent.  The adapters keep that contract:

* ``AffineCoupling`` (acts on a pair ``[z1, z2]``): z2 <- z2 * exp(g) + shift with
  (shift, scale) interleaved in the network output (layout ``"ts_interleaved"``); normflows'
  scale maps are fastprob's ``exp``, ``rsigmoid`` (its ``"sigmoid"``: divide by
  sigmoid(u + 2)) and ``sigmoid`` (its ``"sigmoid_inv"``).
* ``AffineCouplingBlock`` (split + coupling + merge, what ``GlowBlock`` builds): with the
  ``channel`` / ``channel_inv`` split the whole block is one fused call on the full tensor -
  no chunk, no concatenation - over the transformed channel block (any size, so odd
  channel counts work).
* ``Squeeze``: normflows' forward is fastprob's *un*squeeze and its inverse the squeeze
  (directions swapped; channel order c * 4 + 2 i + j either way).

Checkerboard splits (normflows packs the half-image along the last axis), ``scale=False``,
subclasses and unknown scale maps run normflows' own code; :func:`fastprob.compat.counters`
counts each path.  :func:`install` swaps the drop-ins into normflows' modules, including the
name ``GlowBlock`` uses, so unchanged Glow / multiscale models pick them up.
"""
from __future__ import annotations

import torch

try:
    from normflows.flows import reshape as _pr
    from normflows.flows.affine import coupling as _pc
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"fastprob.compat.normflows needs normflows ({exc}); pip install 'fastprob[compat]'") from exc

from ..flows import ops
from ._counters import record
from ._patch import Patcher

# normflows' scale_map -> fastprob's scale map in normflows' forward (latent -> data) direction
SCALE_MAPS = {"exp": "exp", "sigmoid": "rsigmoid", "sigmoid_inv": "sigmoid"}


_PEER_COUPLING = _pc.AffineCoupling  # bound before install() can rebind the module name


def _why_not_coupling(obj, x):
    if not obj.scale:
        return "scale=False (additive coupling)"
    if obj.scale_map not in SCALE_MAPS:
        return f"scale map {obj.scale_map!r}"
    if x.dim() not in (2, 4):
        return f"{x.dim()}-D tensors (fused op: 2-D or NCHW)"
    if not x.is_floating_point():
        return "integer inputs"
    return None


def _fused(x, h, scale_map, split, inverse, backend):
    """The fused coupling on (B, D) or (B, C, H, W) ``x`` with interleaved parameters ``h``."""
    return ops.coupling_packed(x, h, "channel", 0, SCALE_MAPS[scale_map], "ts_interleaved", inverse=inverse,
                               backend=backend, split=split)


class AffineCoupling(_pc.AffineCoupling):
    """normflows' ``AffineCoupling`` on the fused coupling (same arguments, plus ``backend``)."""

    _adapter = "normflows.AffineCoupling"

    def __init__(self, param_map, scale=True, scale_map="exp", backend=None):
        super().__init__(param_map, scale, scale_map)
        self.backend = backend

    def _run(self, z, inverse):
        z1, z2 = z
        reason = _why_not_coupling(self, z2)
        record(self._adapter, reason is None, reason or "")
        if reason is not None:
            return super().inverse(z) if inverse else super().forward(z)
        h = self.param_map(z1)
        z2, ld = _fused(z2, h, self.scale_map, (0, z2.shape[1]), inverse, self.backend)
        return [z1, z2], ld

    def forward(self, z):
        return self._run(z, False)

    def inverse(self, z):
        return self._run(z, True)


class AffineCouplingBlock(_pc.AffineCouplingBlock):
    """normflows' ``AffineCouplingBlock``; the ``channel`` and ``channel_inv`` splits run as one
    fused coupling over the whole tensor."""

    _adapter = "normflows.AffineCouplingBlock"

    def __init__(self, param_map, scale=True, scale_map="exp", split_mode="channel", backend=None):
        super().__init__(param_map, scale, scale_map, split_mode)
        self.split_mode, self.backend = split_mode, backend

    def _why_not(self, z):
        if self.split_mode not in ("channel", "channel_inv"):
            return f"split mode {self.split_mode!r} (fused: channel, channel_inv)"
        if z.shape[1] < 2:
            return "fewer than 2 channels"
        coupling = self.flows[1]
        if type(coupling) not in (_PEER_COUPLING, AffineCoupling):
            return f"coupling is a {type(coupling).__name__} subclass"
        return _why_not_coupling(coupling, z)

    def _blocks(self, C):
        """(conditioning slice, transformed (c0, C_t)) of normflows' chunk(2) split."""
        first = (C + 1) // 2  # torch.chunk puts the larger half first
        if self.split_mode == "channel":  # z1 = first half conditions, z2 = second is transformed
            return slice(0, first), (first, C - first)
        return slice(first, C), (0, first)  # channel_inv: z2 = first half is transformed

    def _run(self, z, inverse):
        reason = self._why_not(z)
        record(self._adapter, reason is None, reason or "")
        if reason is not None:
            return super().inverse(z) if inverse else super().forward(z)
        cond, split = self._blocks(z.shape[1])
        coupling = self.flows[1]
        h = coupling.param_map(z[:, cond])
        return _fused(z, h, coupling.scale_map, split, inverse, self.backend)

    def forward(self, z):
        return self._run(z, False)

    def inverse(self, z):
        return self._run(z, True)


class Squeeze(_pr.Squeeze):
    """normflows' ``Squeeze``: forward (latent -> data) = fastprob's unsqueeze, inverse = squeeze."""

    _adapter = "normflows.Squeeze"

    def __init__(self, backend=None):
        super().__init__()
        self.backend = backend

    def _why_not(self, z, inverse):
        if z.dim() != 4:
            return "input shape normflows rejects"
        _, c, h, w = z.shape
        if (h % 2 or w % 2) if inverse else c % 4:
            return "input shape normflows rejects"
        if not z.is_floating_point():
            return "integer inputs"
        return None

    def forward(self, z):
        reason = self._why_not(z, False)
        record(self._adapter, reason is None, reason or "")
        if reason is not None:
            return super().forward(z)
        return ops.unsqueeze(z, "standard", self.backend), 0

    def inverse(self, z):
        reason = self._why_not(z, True)
        record(self._adapter, reason is None, reason or "")
        if reason is not None:
            return super().inverse(z)
        return ops.squeeze(z, "standard", self.backend), 0


_PATCHER = Patcher(
    {"normflows.flows.affine.coupling": ["AffineCoupling", "AffineCouplingBlock"],
     "normflows.flows.affine.glow": ["AffineCouplingBlock"],
     "normflows.flows.affine": ["AffineCoupling", "AffineCouplingBlock"],
     "normflows.flows.reshape": ["Squeeze"],
     "normflows.flows": ["AffineCoupling", "AffineCouplingBlock", "Squeeze"]},
    {"AffineCoupling": AffineCoupling, "AffineCouplingBlock": AffineCouplingBlock, "Squeeze": Squeeze})


def install() -> None:
    """Make normflows (and the ``GlowBlock``s it builds afterwards) use these drop-ins."""
    _PATCHER.install()


def uninstall() -> None:
    """Restore normflows' own classes."""
    _PATCHER.uninstall()


__all__ = ["AffineCoupling", "AffineCouplingBlock", "Squeeze", "install", "uninstall"]
