"""Max-pool surjection step (SurVAE flows, Nielsen et al. 2020): the compressive baseline of
thesis table 10.

Forward (deterministic): z = max of every 2x2 spatial block, per channel, so
(C, H, W) -> (C, H/2, W/2), a quarter of the dimensions.  The generative direction
p(x | z) puts the block's maximum at one of the 4 positions, uniformly, and draws the other 3
values below it: z - x_i ~ HalfNormal(s_i), where s_i is a learned per-channel scale,
optionally modulated per block and per position by a small convolutional net of z.

Because x <-> (argmax position k, z, the 3 other values) is a bijection with unit Jacobian
(x_k = z, the others unchanged), log p(x) = log p(z) + log p(x | z) exactly, with

    log p(x | z) = sum over blocks [ log 1/4 + sum_{i != k} log HalfNormal(z - x_i; s_i) ].

That is the step's contribution: ``forward(x) -> (z, log p(x | z))``, the same
(output, log-likelihood contribution) convention as the other compressive steps, and the
bits/dim of a flow using it are exact (no bound).
"""
from __future__ import annotations

import math

import torch
from torch import nn

LOG_QUARTER = math.log(0.25)
# Largest fraction of tied 2x2 blocks accepted in one call.  For continuous inputs a tie has
# probability zero in exact arithmetic; in float32 rounding makes a few (a 5-epoch RealNVP on
# 28x28 Fashion-MNIST gave one tie among ~50,000 blocks of a test pass).  Discrete data ties
# in a large fraction of blocks (zero backgrounds), so more than this is refused as "not
# dequantized".
TIE_TOLERANCE = 0.01
_HALF_NORMAL_CONST = 0.5 * math.log(2.0 / math.pi)  # log of 2 / sqrt(2 pi)


def _image_shape(in_shape):
    if isinstance(in_shape, int) or len(tuple(in_shape)) != 3:
        raise ValueError(f"MaxPoolStep needs the image shape (C, H, W) it pools, got {in_shape!r}")
    C, H, W = (int(s) for s in in_shape)
    if min(C, H, W) < 1:
        raise ValueError(f"MaxPoolStep: the image shape must be positive, got {(C, H, W)}")
    if H % 2 or W % 2:
        raise ValueError(f"MaxPoolStep pools 2x2 blocks: height and width must be even, got {H}x{W}; "
                         "crop or pad the images (or squeeze fewer times before this step)")
    return C, H, W


def to_blocks(x):
    """(B, C, H, W) -> (B, C, H/2, W/2, 4): the 2x2 blocks, positions in row-major order."""
    B, C, H, W = x.shape
    return x.reshape(B, C, H // 2, 2, W // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(B, C, H // 2, W // 2, 4)


def from_blocks(b):
    """Inverse of :func:`to_blocks`: (B, C, h, w, 4) -> (B, C, 2h, 2w)."""
    B, C, h, w, _ = b.shape
    return b.reshape(B, C, h, w, 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(B, C, 2 * h, 2 * w)


class MaxPoolStep(nn.Module):
    """2x2 max-pool surjection (C, H, W) -> (C, H/2, W/2) with an exact log p(x | z).

    Parameters
    ----------
    in_shape : (C, H, W)
        Image shape it pools; H and W must be even.  Inputs may be images (B, C, H, W) or
        their flattening (B, C*H*W) (e.g. the latent of a multi-scale :class:`Flow`, read in
        this shape).
    hidden : int
        0: one learned half-normal scale per channel.  > 0: the log-scale of each of the 4
        positions of a block is the channel's scale plus a small conv net (3x3, ``hidden``
        channels, 1x1) of the pooled image z; its last layer starts at zero.
    seed : int
        Seed of the net's initial weights (the global random stream is left alone).

    Notes
    -----
    ``forward(x) -> (z (B, C, H/2, W/2), log p(x | z) (B,))``.  A block whose maximum is
    attained twice has probability zero for continuous data, but floating-point rounding
    produces a few: there the first position (row-major) is the argmax and the other tied
    value has offset 0 (any choice is a version of the density; this one is the limit from
    the side where that position is the strict maximum).  More than ``TIE_TOLERANCE`` (1 %)
    of the blocks tied means discrete input and is refused with an error.
    """

    def __init__(self, in_shape, hidden: int = 0, seed: int = 0):
        super().__init__()
        self.in_shape = _image_shape(in_shape)
        C, H, W = self.in_shape
        self.z_shape = (C, H // 2, W // 2)
        self.D, self.d = C * H * W, C * (H // 2) * (W // 2)
        if not isinstance(hidden, int) or hidden < 0:
            raise ValueError(f"MaxPoolStep: hidden must be an int >= 0 (0 = per-channel scales), got {hidden!r}")
        self.log_scale = nn.Parameter(torch.zeros(C))
        self.net = None
        if hidden:
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                self.net = nn.Sequential(nn.Conv2d(C, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, 4 * C, 1))
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)

    # ------------------------------------------------------------------ shapes and checks
    def _as_image(self, x, what="input"):
        if not torch.is_tensor(x) or not x.is_floating_point():
            raise TypeError(f"MaxPoolStep {what} must be a floating-point tensor")
        C, H, W = self.in_shape
        if x.dim() == 2 and x.shape[1] == self.D:
            x = x.reshape(x.shape[0], C, H, W)
        if tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"MaxPoolStep {what} must have shape (B, {C}, {H}, {W}) or (B, {self.D}), "
                             f"got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError(f"MaxPoolStep {what} contains NaN or inf; check the data or the flow that produced it")
        return x

    def out_shape(self, shape):
        if math.prod(shape) != self.D:
            raise ValueError(f"MaxPoolStep built for {self.in_shape} receives {tuple(shape)}")
        return self.z_shape

    # ------------------------------------------------------------------ the density
    def log_scales(self, z):
        """Log half-normal scales of the 4 positions of every block, (B, C, H/2, W/2, 4)."""
        B, C, h, w = z.shape
        ls = self.log_scale.view(1, C, 1, 1, 1).expand(B, C, h, w, 4)
        if self.net is not None:
            ls = ls + self.net(z).reshape(B, C, 4, h, w).permute(0, 1, 3, 4, 2)
        return ls

    def forward(self, x, context=None):
        """x (B, C, H, W) or (B, C*H*W) -> (z = 2x2 max (B, C, H/2, W/2), log p(x | z) (B,))."""
        blocks = to_blocks(self._as_image(x))
        k = blocks.argmax(-1, keepdim=True)                # the first position on a (rounding) tie
        z = blocks.gather(-1, k).squeeze(-1)
        tied = (blocks == z.unsqueeze(-1)).sum(-1) > 1
        n_tied = int(tied.sum())
        if n_tied > TIE_TOLERANCE * tied.numel():
            b = int(tied.nonzero()[0, 0])
            raise ValueError(f"MaxPoolStep: {n_tied} of {tied.numel()} 2x2 blocks have a tied maximum (first in "
                             f"sample {b}; more than {TIE_TOLERANCE:.0%} means discrete input); the max-pool "
                             "density is defined for continuous inputs only: dequantize the data or put a "
                             "bijection with continuous output before this step")
        is_max = torch.zeros_like(blocks, dtype=torch.bool).scatter_(-1, k, True)
        u = z.unsqueeze(-1) - blocks                       # >= 0, exactly 0 at the maximum
        ls = self.log_scales(z)
        lp = _HALF_NORMAL_CONST - ls - 0.5 * (u * torch.exp(-ls)) ** 2
        lp = lp.masked_fill(is_max, 0.0).sum(-1) + LOG_QUARTER
        return z, lp.flatten(1).sum(1)

    # ------------------------------------------------------------------ generative direction
    def _check_z(self, z):
        if not torch.is_tensor(z) or not z.is_floating_point():
            raise TypeError("MaxPoolStep latent z must be a floating-point tensor")
        if z.dim() == 2 and z.shape[1] == self.d:
            z = z.reshape(z.shape[0], *self.z_shape)
        if tuple(z.shape[1:]) != self.z_shape:
            raise ValueError(f"MaxPoolStep latent z must have shape (B, {', '.join(map(str, self.z_shape))}), "
                             f"got {tuple(z.shape)}")
        return z

    @torch.no_grad()
    def decode(self, z, noise: bool = False):
        """z -> x.  ``noise``: a sample of p(x | z) (position uniform, half-normal offsets),
        whose max-pool is z exactly.  Otherwise the conditional mean E[x | z]:
        z - (3/4) s sqrt(2/pi) at every position (a max-pool of it is below z)."""
        z = self._check_z(z)
        s = torch.exp(self.log_scales(z))
        if not noise:
            return from_blocks(z.unsqueeze(-1) - 0.75 * s * math.sqrt(2.0 / math.pi))
        u = (s * torch.randn_like(s)).abs()
        k = torch.randint(0, 4, z.shape, device=z.device)
        u = u.scatter(-1, k.unsqueeze(-1), 0.0)
        return from_blocks(z.unsqueeze(-1) - u)

    def sample_given(self, z):
        """One draw of x ~ p(x | z), shape (B, C, H, W)."""
        return self.decode(z, noise=True)

    def inverse(self, z, context=None):
        return self.decode(z), z.new_zeros(z.shape[0])


def maxpool_count(fraction: float, tol: float = 0.1) -> int:
    """Number of 2x2 max-pools that keep ``fraction`` of the dimensions (4^-n, within 10 %)."""
    f = float(fraction)
    if not 0 < f < 1:
        raise ValueError(f"latent fraction must be in (0, 1), got {fraction}")
    n = max(1, round(math.log(f) / math.log(0.25)))
    if abs(f - 0.25 ** n) > tol * 0.25 ** n:
        raise ValueError(f"a 2x2 max-pool keeps 25% of the dimensions per application: latent fraction {f} is not "
                         "reachable; use 0.25 (one pool) or 0.0625 (0.06, two pools)")
    return n


__all__ = ["TIE_TOLERANCE", "MaxPoolStep", "from_blocks", "maxpool_count", "to_blocks"]
