"""Probabilistic super-resolution flows (thesis chapter 6; flows-model.md section 4.3).

* :class:`ConditionalPSR`: p(y | x) for an HR image y and its LR version x = pi(y).
* :class:`JointPSR`: p(x, y) = p(x) p(y | x) with an unconditional prior flow on x.

Images are float tensors in [0, 1] (dequantized pixels, ``(pixel + u) / n_bins``).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..flows.base import Flow, StandardNormal
from ..flows.builders import realnvp_image
from ..flows.conditional import (ConditionalActNorm, ConditionalCoupling, ConditionalInvConv1x1, SelectContext)
from ..flows.preprocess import Logit, bits_per_dim
from ..flows.squeeze import ChannelSplit, Squeeze, SqueezeSplit
from .psr_nets import DenseEncoder, Upsampler, check_finite, check_image_shape, check_scale, downsample


class ConditionalPSR(nn.Module):
    """PSR flow p(y | x): a multi-scale conditional flow on y whose every step is conditioned
    on u_l(h(x)), the LR encoding upsampled to the resolution of scale l.

    Parameters
    ----------
    in_shape : (C, H, W)
        Shape of the HR image y; H and W must be divisible by ``scale``.
    scale : int
        Super-resolution factor, a power of 2 (2, 4, 8).
    depth : int
        Flow steps per scale, each [conditional ActNorm, conditional 1x1 conv (when C > 1),
        conditional coupling].
    hidden : int
        Width of the coupling networks.
    features, context_channels : int
        Channels of h(x) and of each u_l(h(x)).
    downsampling : "avg" | "nearest"
        pi used by :meth:`lr` (and by :meth:`log_prob` when x is not given).
    logit : bool
        Apply the logit pre-transform first (its log-determinant is included).
    backend : None | "triton" | "torch"
        Backend of the fused coupling op.

    Architecture: scale 0 (full resolution) uses checkerboard couplings and ends with the
    fused checkerboard squeeze-split; each later scale uses channel couplings and (except
    the last) factors out half of the channels and squeezes.  There are log2(scale) + 1
    scales, so the last one runs at the LR resolution.
    """

    def __init__(self, in_shape, scale=4, depth=4, hidden=64, features=32, context_channels=16,
                 downsampling="avg", logit=True, backend=None, seed=0):
        super().__init__()
        self.scale = check_scale(scale)
        check_image_shape(in_shape, self.scale)
        if downsampling not in ("avg", "nearest"):
            raise ValueError(f"downsampling must be 'avg' or 'nearest', got {downsampling!r}")
        self.in_shape, self.downsampling = tuple(in_shape), downsampling
        C, H, W = self.in_shape
        self.lr_shape = (C, H // self.scale, W // self.scale)
        self.n_levels = int(math.log2(self.scale)) + 1
        self.encoder = DenseEncoder(C, features)
        self.upsamplers = nn.ModuleList(
            Upsampler(features, context_channels, self.scale // 2 ** lvl, hidden=max(features, 16))
            for lvl in range(self.n_levels))
        cv = context_channels
        ts = [Logit()] if logit else []
        c = C
        for lvl in range(self.n_levels):
            mask = "checkerboard" if lvl == 0 else "channel"
            for k in range(depth):
                ts.append(SelectContext(ConditionalActNorm(c, cv), lvl))
                if c > 1:
                    ts.append(SelectContext(ConditionalInvConv1x1(c, cv, seed=seed + 100 * lvl + k), lvl))
                ts.append(SelectContext(ConditionalCoupling(c, cv, mask, k % 2, hidden, backend=backend), lvl))
            if lvl == 0:
                ts.append(SqueezeSplit())  # checkerboard factor-out: (c, H, W) -> (2c, H/2, W/2)
                c = 2 * c
            elif lvl < self.n_levels - 1:
                ts += [ChannelSplit(), Squeeze("standard")]
                c = 4 * (c - c // 2)
        self.flow = Flow(StandardNormal(), ts, self.in_shape)

    # --- conditioning -------------------------------------------------------------------
    def lr(self, y):
        """x = pi(y)."""
        return downsample(y, self.scale, self.downsampling)

    def _check_x(self, x):
        if x.dim() != 4 or tuple(x.shape[1:]) != self.lr_shape:
            raise ValueError(f"expected LR images of shape (B, {', '.join(map(str, self.lr_shape))}), "
                             f"got {tuple(x.shape)}")
        check_finite("the LR image x", x)

    def contexts(self, x):
        """[u_l(h(x)) for every scale l]: (B, context_channels, H / 2^l, W / 2^l)."""
        self._check_x(x)
        h = self.encoder(x - 0.5)
        return [u(h) for u in self.upsamplers]

    # --- density and sampling -----------------------------------------------------------
    def log_prob(self, y, x=None):
        """log p(y | x) in nats, shape (B,); x defaults to pi(y)."""
        if y.dim() != 4 or tuple(y.shape[1:]) != self.in_shape:
            raise ValueError(f"expected HR images of shape (B, {', '.join(map(str, self.in_shape))}), "
                             f"got {tuple(y.shape)}")
        check_finite("the HR image y", y)
        x = self.lr(y) if x is None else x
        return self.flow.log_prob(y, self.contexts(x))

    def bits_per_dim(self, y, x=None, n_bins=256):
        """Conditional bits/dim of dequantized y given x, per sample (B,)."""
        return bits_per_dim(self.log_prob(y, x), self.flow.dim, n_bins)

    @torch.no_grad()
    def sample(self, x, tau=0.8, n=1):
        """n samples y ~ p(y | x) at temperature tau for each LR image: (n, B, C, H, W)
        (tau = 0 gives the image of the base mode z = 0)."""
        ctx = self.contexts(x)
        B = x.shape[0]
        out = []
        for _ in range(n):
            z = tau * torch.randn(B, self.flow.dim, device=x.device, dtype=x.dtype)
            out.append(self.flow.inverse(z, ctx)[0])
        return torch.stack(out)


class JointPSR(nn.Module):
    """p(x, y) = p(x) p(y | x): an unconditional RealNVP prior on the LR image x times a
    :class:`ConditionalPSR`.  Sampling draws x at temperature ``tau_x``, then y | x at
    ``tau_y``.  ``log_prob`` returns both parts so their bits/dim can be reported apart.

    Parameters
    ----------
    in_shape, scale, **kw : as :class:`ConditionalPSR`
    prior_depth, prior_hidden : int
        Couplings per scale and width of the prior flow (2 scales when the LR size allows,
        checkerboard couplings then squeeze + channel couplings, as in the thesis).
    """

    def __init__(self, in_shape, scale=4, prior_depth=3, prior_hidden=32, backend=None, **kw):
        super().__init__()
        self.conditional = ConditionalPSR(in_shape, scale, backend=backend, **kw)
        _, h, w = self.conditional.lr_shape
        n_scales = 2 if h % 2 == 0 and w % 2 == 0 and min(h, w) >= 4 else 1
        self.prior = realnvp_image(self.conditional.lr_shape, n_scales=n_scales, n_couplings=prior_depth,
                                   hidden=prior_hidden, scale_map="bounded", backend=backend)

    def lr(self, y):
        return self.conditional.lr(y)

    def log_prob(self, y, x=None):
        """(log p(x), log p(y | x)), each (B,), in nats; x defaults to pi(y)."""
        x = self.lr(y) if x is None else x
        self.conditional._check_x(x)
        return self.prior.log_prob(x), self.conditional.log_prob(y, x)

    def bits_per_dim(self, y, x=None, n_bins=256):
        """(bits/dim of x under the prior, conditional bits/dim of y given x), each (B,)."""
        lx, ly = self.log_prob(y, x)
        return bits_per_dim(lx, self.prior.dim, n_bins), bits_per_dim(ly, self.conditional.flow.dim, n_bins)

    @torch.no_grad()
    def sample(self, n, tau_x=0.8, tau_y=0.8):
        """(x, y): n LR images from the prior at tau_x and one HR image each at tau_y."""
        x = self.prior.sample(n, temperature=tau_x).clamp(0, 1)
        return x, self.conditional.sample(x, tau_y, 1)[0]
