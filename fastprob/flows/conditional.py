"""Conditional flow blocks (thesis eq. 6.8): ActNorm, 1x1 convolution and affine coupling
whose parameters depend on a context tensor ``v``.

Context shapes: for images (B, C, H, W) the context is an image (B, Cv, H, W) at the same
resolution; for vectors (B, C) it is a vector (B, Cv).  Every block is a bijection of its
input for *every* context, and its log-determinant is exact.
"""
from __future__ import annotations

import torch
from torch import nn

from .actnorm import ActNorm
from .base import Transform
from .coupling import AffineCoupling, VectorCoupling


def _check_context(name, x, context, channels):
    if context is None:
        raise ValueError(f"{name} is conditional: pass a context tensor")
    if context.shape[0] != x.shape[0] or context.shape[1] != channels or context.shape[2:] != x.shape[2:]:
        want = (x.shape[0], channels, *x.shape[2:])
        raise ValueError(f"{name} needs a context of shape {want}, got {tuple(context.shape)}")


def _channel_linear(lin, v):
    """Apply ``lin`` (nn.Linear) along dim 1 of v: a 1x1 convolution for images."""
    if v.dim() == 2:
        return lin(v)
    return lin(v.movedim(1, -1)).movedim(-1, 1)


class ConditionalActNorm(Transform):
    """z = (x + b(v)) * exp(log_s(v)), with b and log_s per element (a 1x1 map of the context
    added to a data-initialized ActNorm's per-channel parameters).

    Parameters
    ----------
    channels : int
        C of the input (B, C, H, W) or (B, C).
    context_channels : int
        Cv of the context (B, Cv, H, W) or (B, Cv).
    max_log_scale : float
        The context part of log_s is ``max_log_scale * tanh(.)`` so no context can make the
        scale 0 or inf.

    logdet = sum over channels and pixels of log_s(v), per sample.
    """

    def __init__(self, channels: int, context_channels: int, max_log_scale: float = 2.0):
        super().__init__()
        self.base = ActNorm(channels)
        self.context_channels = context_channels
        self.max_log_scale = max_log_scale
        self.map = nn.Linear(context_channels, 2 * channels)
        # zero init: the block starts as the plain (data-initialized) ActNorm
        nn.init.zeros_(self.map.weight)
        nn.init.zeros_(self.map.bias)

    def _params(self, x, context):
        _check_context("ConditionalActNorm", x, context, self.context_channels)
        self.base._check(x)
        h = _channel_linear(self.map, context.to(x.dtype))
        C = x.shape[1]
        view = self.base._view
        log_s = view(self.base.log_scale, x) + self.max_log_scale * torch.tanh(h[:, :C])
        bias = view(self.base.bias, x) + h[:, C:]
        return log_s, bias

    def forward(self, x, context=None):
        if not bool(self.base.initialized) and self.training:
            self.base._init(x)
        log_s, bias = self._params(x, context)
        z = (x + bias) * torch.exp(log_s)
        return z, log_s.expand_as(x).flatten(1).sum(1)

    def inverse(self, z, context=None):
        log_s, bias = self._params(z, context)
        x = z * torch.exp(-log_s) - bias
        return x, -log_s.expand_as(z).flatten(1).sum(1)


class ConditionalInvConv1x1(Transform):
    """z = W(v) x over channels with W(v) = P L(v) U(v), one matrix per sample.

    L(v) is unit lower-triangular, U(v) upper-triangular with diagonal
    ``exp(log_d + max_log_diag * tanh(.))`` > 0; the off-diagonal entries are learned
    constants plus ``max_offdiag * tanh(.)`` of a linear map of the spatially averaged
    context.  So det W(v) = det(P S) prod diag U(v) = +-prod diag U(v), never 0, with the
    same sign for every context: the map is invertible
    by construction (with entries bounded, so also well conditioned), unlike a free
    matrix per sample (the published code's tanh of a linear map, which can be singular).

    logdet = H * W * sum(log diag U(v)), per sample.  The inverse uses two triangular
    solves, never a general matrix inverse.
    """

    def __init__(self, channels: int, context_channels: int, seed: int | None = None,
                 max_log_diag: float = 1.0, max_offdiag: float = 1.0):
        super().__init__()
        C = channels
        g = torch.Generator().manual_seed(seed if seed is not None else torch.seed() % (2**31))
        q, _ = torch.linalg.qr(torch.randn(C, C, generator=g, dtype=torch.float64))
        P, L, U = torch.linalg.lu(q)
        s = torch.diagonal(U)
        # q = P L U with sign(diag U) = D; q = (P D)(D L D)(D U): D L D is unit lower-triangular
        # and D U has a positive diagonal, so the signs live in the fixed signed permutation P D
        D = torch.diag(torch.sign(s))
        self.register_buffer("P", P.float())
        self.register_buffer("S", D.float())
        self.register_buffer("lower", torch.tril(torch.ones(C, C), -1).bool())
        self.channels, self.context_channels = C, context_channels
        self.max_log_diag, self.max_offdiag = max_log_diag, max_offdiag
        self.L = nn.Parameter((D @ L @ D).float())
        self.U = nn.Parameter((D @ torch.triu(U, 1)).float())
        self.log_d = nn.Parameter(torch.log(torch.abs(s)).float())
        n_off = C * (C - 1) // 2
        self.n_off = n_off
        self.map = nn.Linear(context_channels, 2 * n_off + C)
        nn.init.zeros_(self.map.weight)
        nn.init.zeros_(self.map.bias)

    def factors(self, context, dtype=None):
        """(P S, L(v), U(v), log diag U(v)) with shapes (C, C), (B, C, C), (B, C, C), (B, C)."""
        if context is None:
            raise ValueError("ConditionalInvConv1x1 is conditional: pass a context tensor")
        if context.shape[1] != self.context_channels:
            raise ValueError(f"ConditionalInvConv1x1 needs a context with {self.context_channels} channels, "
                             f"got {tuple(context.shape)}")
        dtype = dtype or self.L.dtype
        v = context.to(dtype)
        v = v.flatten(2).mean(2) if v.dim() > 2 else v
        h = self.map(v)
        B, C = v.shape[0], self.channels
        li, lj = self.lower.nonzero(as_tuple=True)
        eye = torch.eye(C, dtype=dtype, device=v.device)
        log_diag = self.log_d.to(dtype) + self.max_log_diag * torch.tanh(h[:, 2 * self.n_off:])
        L = eye.repeat(B, 1, 1)
        U = torch.diag_embed(torch.exp(log_diag))
        if self.n_off:  # fresh tensors, so the in-place writes are autograd-safe
            L[:, li, lj] = self.L.to(dtype)[li, lj] + self.max_offdiag * torch.tanh(h[:, :self.n_off])
            U[:, lj, li] = self.U.to(dtype)[lj, li] + self.max_offdiag * torch.tanh(h[:, self.n_off:2 * self.n_off])
        PS = (self.P @ self.S).to(dtype)
        return PS, L, U, log_diag

    def weight(self, context, dtype=None):
        """W(v) of shape (B, C, C)."""
        PS, L, U, _ = self.factors(context, dtype)
        return PS @ L @ U

    def _check(self, x, context):
        if x.shape[1] != self.channels:
            raise ValueError(f"ConditionalInvConv1x1 has {self.channels} channels, input has {x.shape[1]}")
        if context is not None and context.shape[0] != x.shape[0]:
            raise ValueError(f"context batch {context.shape[0]} != input batch {x.shape[0]}")

    @staticmethod
    def _cols(x):
        """(B, C, ...) -> (B, C, N) columns, and the spatial size N."""
        flat = x.reshape(x.shape[0], x.shape[1], -1)
        return flat, flat.shape[2]

    def forward(self, x, context=None):
        self._check(x, context)
        PS, L, U, log_diag = self.factors(context, x.dtype)
        cols, n = self._cols(x)
        z = PS @ (L @ (U @ cols))
        return z.reshape(x.shape), log_diag.sum(1) * n

    def inverse(self, z, context=None):
        self._check(z, context)
        PS, L, U, log_diag = self.factors(context, z.dtype)
        cols, n = self._cols(z)
        y = PS.T @ cols  # P S is orthogonal (a signed permutation)
        y = torch.linalg.solve_triangular(L, y, upper=False, unitriangular=True)
        x = torch.linalg.solve_triangular(U, y, upper=True)
        return x.reshape(z.shape), -log_diag.sum(1) * n


class ConditionalCoupling(AffineCoupling):
    """Affine coupling on images conditioned on a context image, with the bounded scale map
    exp(2 tanh(s / 2)) (thesis eq. 6.8), through the fused coupling op
    (:func:`fastprob.flows.ops.coupling`: Triton on CUDA, the reference elsewhere).

    Parameters as :class:`AffineCoupling`; ``context_channels`` is required (> 0).
    """

    def __init__(self, channels, context_channels, mask="checkerboard", parity=0, hidden=64, net=None,
                 backend=None):
        if context_channels <= 0:
            raise ValueError("ConditionalCoupling needs context_channels > 0; use AffineCoupling otherwise")
        super().__init__(channels, mask, parity, "bounded", hidden, context_channels=context_channels, net=net,
                         backend=backend)


class ConditionalVectorCoupling(VectorCoupling):
    """Vector (B, D) coupling conditioned on a context vector (B, Cv), bounded scale map."""

    def __init__(self, dim, context_dim, parity=0, hidden=64, layers=2, backend=None):
        if context_dim <= 0:
            raise ValueError("ConditionalVectorCoupling needs context_dim > 0; use VectorCoupling otherwise")
        super().__init__(dim, parity, "bounded", hidden, layers, context_dim=context_dim, backend=backend)


class SelectContext(Transform):
    """Wraps a block so that it receives ``context[key]`` from a dict/list of contexts (lets a
    multi-scale :class:`~fastprob.flows.Flow` feed each scale its own context)."""

    def __init__(self, block: Transform, key):
        super().__init__()
        self.block, self.key = block, key

    def forward(self, x, context=None):
        return self.block(x, None if context is None else context[self.key])

    def inverse(self, z, context=None):
        return self.block.inverse(z, None if context is None else context[self.key])

    def out_shape(self, shape):
        return self.block.out_shape(shape)
