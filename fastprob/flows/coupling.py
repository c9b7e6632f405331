"""Affine coupling layers: checkerboard / channel masks on images, alternating halves on vectors."""
from __future__ import annotations

import torch
from torch import nn

from ..reference.masks import channel_split, checkerboard
from ..reference.scale_maps import check_scale_map
from . import ops
from .base import Transform, check_positive_int


def _check_finite(s, t, x):
    if not (torch.isfinite(s).all() and torch.isfinite(t).all()):
        if not torch.isfinite(x).all():  # garbage in: say so rather than blame the network
            raise ValueError("the input to this coupling layer contains NaN or inf; clean the data "
                             "(or find the layer before this one that overflowed)")
        raise FloatingPointError(
            "the coupling network produced NaN or inf scales/shifts; lower the learning rate, clip "
            "gradients, or use the 'bounded' or 'tanh' scale map")


def _check_output(y, scale_map, direction):
    if not torch.isfinite(y).all():
        raise FloatingPointError(
            f"the coupling {direction} overflowed (NaN or inf output, while the log-determinant stays "
            f"finite) with the {scale_map!r} scale map: its scales are unbounded; use the 'bounded', "
            "'tanh' or 'sigmoid' scale map, or lower the learning rate")


class ConvNet(nn.Module):
    """The default coupling network: 3x3 conv, 1x1 conv, 3x3 conv (last one zero-initialized
    so every coupling starts as the identity)."""

    def __init__(self, c_in, c_out, hidden=64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(c_in, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
            nn.Conv2d(hidden, c_out, 3, padding=1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x):
        return self.net(x)


class MLP(nn.Module):
    def __init__(self, d_in, d_out, hidden=64, layers=2):
        super().__init__()
        mods, d = [], d_in
        for _ in range(layers):
            mods += [nn.Linear(d, hidden), nn.ReLU()]
            d = hidden
        mods.append(nn.Linear(d, d_out))
        nn.init.zeros_(mods[-1].weight)
        nn.init.zeros_(mods[-1].bias)
        self.net = nn.Sequential(*mods)

    def forward(self, x):
        return self.net(x)


class AffineCoupling(Transform):
    """Affine coupling on images with a checkerboard or channel mask.

    Parameters
    ----------
    channels : int
    mask : "checkerboard" | "channel"
    parity : 0 | 1
        Which half is transformed (see flows-model.md section 1).
    scale_map : "exp" | "tanh" | "bounded" | "sigmoid"
    hidden : int
        Width of the default network.
    context_channels : int
        Channels of an optional context image (same H, W) fed to the network.
    net : nn.Module, optional
        Replaces the default network; maps (B, c_in, H, W) -> (B, 2 * C_t, H, W).
    backend : None | "triton" | "torch"
    check_finite : bool
        Raise on NaN/inf from the network instead of propagating garbage.
    """

    def __init__(self, channels, mask="checkerboard", parity=0, scale_map="tanh", hidden=64,
                 context_channels=0, net=None, backend=None, check_finite=True):
        super().__init__()
        check_scale_map(scale_map)
        channels = check_positive_int("AffineCoupling channels", channels)
        hidden = check_positive_int("hidden", hidden)
        if context_channels < 0:
            raise ValueError(f"context_channels must be >= 0, got {context_channels}")
        if mask not in ("checkerboard", "channel"):
            raise ValueError(f"mask must be 'checkerboard' or 'channel', got {mask!r}")
        if mask == "channel" and channels < 2:
            raise ValueError(f"a channel mask needs at least 2 channels, got {channels}; "
                             "use a checkerboard mask or squeeze first")
        self.channels, self.mask, self.parity, self.scale_map = channels, mask, int(parity) % 2, scale_map
        self.context_channels = context_channels
        self.backend, self.check_finite = backend, check_finite
        if mask == "checkerboard":
            c_in, self.c_t = channels + 1, channels  # masked x plus the mask itself
        else:
            self.c0, self.c_t = channel_split(channels, self.parity)
            c_in = channels - self.c_t
        self.net = net if net is not None else ConvNet(c_in + context_channels, 2 * self.c_t, hidden)
        self.a = nn.Parameter(torch.ones(self.c_t)) if scale_map == "tanh" else None

    def _params(self, x, context):
        B, C, H, W = x.shape
        if C != self.channels:
            raise ValueError(f"coupling built for {self.channels} channels got {C}")
        if self.mask == "checkerboard":
            b = checkerboard(H, W, self.parity, device=x.device, dtype=x.dtype)
            inp = torch.cat([x * (1 - b), b.expand(B, 1, H, W)], 1)
        else:
            keep = [i for i in range(C) if not (self.c0 <= i < self.c0 + self.c_t)]
            inp = x[:, keep[0]:keep[-1] + 1]
        if self.context_channels:
            if context is None or context.shape[1] != self.context_channels or context.shape[2:] != x.shape[2:]:
                raise ValueError(f"this coupling needs a context of shape (B, {self.context_channels}, {H}, {W})")
            inp = torch.cat([inp, context], 1)
        h = self.net(inp)
        s, t = h[:, : self.c_t].contiguous(), h[:, self.c_t:].contiguous()
        if self.check_finite:
            _check_finite(s, t, x)
        return s, t

    def forward(self, x, context=None):
        s, t = self._params(x, context)
        z, ld = ops.coupling(x, s, t, self.mask, self.parity, self.scale_map, self.a, False, self.backend)
        if self.check_finite:
            _check_output(z, self.scale_map, "forward")
        return z, ld

    def inverse(self, z, context=None):
        s, t = self._params(z, context)  # the conditioning half is unchanged by the coupling
        x, ld = ops.coupling(z, s, t, self.mask, self.parity, self.scale_map, self.a, True, self.backend)
        if self.check_finite:
            _check_output(x, self.scale_map, "inverse")
        return x, ld


class VectorCoupling(Transform):
    """Affine coupling for (B, D) vectors with an MLP: half of the features condition the
    other half (``parity`` picks which), optionally on a context vector (B, context_dim)."""

    def __init__(self, dim, parity=0, scale_map="tanh", hidden=64, layers=2, context_dim=0, backend=None,
                 check_finite=True):
        super().__init__()
        check_scale_map(scale_map)
        dim = check_positive_int("VectorCoupling dim", dim)
        hidden = check_positive_int("hidden", hidden)
        layers = check_positive_int("layers", layers)
        if dim < 2:
            raise ValueError(f"a vector coupling needs at least 2 features, got {dim}")
        self.dim, self.parity, self.scale_map = dim, int(parity) % 2, scale_map
        self.c0, self.c_t = channel_split(dim, self.parity)
        self.context_dim, self.backend, self.check_finite = context_dim, backend, check_finite
        self.net = MLP(dim - self.c_t + context_dim, 2 * self.c_t, hidden, layers)
        self.a = nn.Parameter(torch.ones(self.c_t)) if scale_map == "tanh" else None

    def _params(self, x, context):
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected (B, {self.dim}) inputs, got {tuple(x.shape)}")
        cond = torch.cat([x[:, : self.c0], x[:, self.c0 + self.c_t:]], 1)
        if self.context_dim:
            if context is None or context.shape != (x.shape[0], self.context_dim):
                raise ValueError(f"this coupling needs a context of shape (B, {self.context_dim})")
            cond = torch.cat([cond, context], 1)
        h = self.net(cond)
        s, t = h[:, : self.c_t], h[:, self.c_t:]
        if self.check_finite:
            _check_finite(s, t, x)
        return s[:, :, None, None].contiguous(), t[:, :, None, None].contiguous()

    def forward(self, x, context=None):
        s, t = self._params(x, context)
        z, ld = ops.coupling(x[:, :, None, None].contiguous(), s, t, "channel", self.parity, self.scale_map,
                             self.a, False, self.backend)
        if self.check_finite:
            _check_output(z, self.scale_map, "forward")
        return z[:, :, 0, 0], ld

    def inverse(self, z, context=None):
        s, t = self._params(z, context)
        x, ld = ops.coupling(z[:, :, None, None].contiguous(), s, t, "channel", self.parity, self.scale_map,
                             self.a, True, self.backend)
        if self.check_finite:
            _check_output(x, self.scale_map, "inverse")
        return x[:, :, 0, 0], ld
