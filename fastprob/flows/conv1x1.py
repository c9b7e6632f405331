"""Invertible 1x1 convolution (Glow), LU-parameterized."""
from __future__ import annotations

import torch
from torch import nn

from .base import Transform, check_positive_int, spatial_size


class InvConv1x1(Transform):
    """z = W x over channels, W = P L (U + diag(sign * exp(log_s))).

    P is a fixed permutation, L unit lower-triangular, U strictly upper-triangular; the
    log-determinant is H * W * sum(log_s), O(C).  Works on images and (B, C) vectors.
    """

    def __init__(self, channels: int, seed: int | None = None):
        super().__init__()
        channels = check_positive_int("InvConv1x1 channels", channels)
        g = torch.Generator().manual_seed(seed if seed is not None else torch.seed() % (2**31))
        q, _ = torch.linalg.qr(torch.randn(channels, channels, generator=g, dtype=torch.float64))
        P, L, U = torch.linalg.lu(q)
        s = torch.diagonal(U)
        self.register_buffer("P", P.float())
        self.register_buffer("sign_s", torch.sign(s).float())
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.register_buffer("eye", torch.eye(channels))
        self.L = nn.Parameter(L.float())
        self.U = nn.Parameter(torch.triu(U, 1).float())
        self.log_s = nn.Parameter(torch.log(torch.abs(s)).float())

    def weight(self):
        L = self.L * self.lower_mask + self.eye
        U = self.U * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.P @ L @ U

    def _mix(self, W, x):
        if x.shape[1] != W.shape[0]:
            raise ValueError(f"InvConv1x1 has {W.shape[0]} channels, input has {x.shape[1]}")
        if x.dim() == 2:
            return x @ W.T
        return torch.einsum("oc,bc...->bo...", W, x)

    def forward(self, x, context=None):
        W = self.weight().to(x.dtype)
        spatial = spatial_size(x)
        return self._mix(W, x), (self.log_s.sum().to(x.dtype) * spatial).expand(x.shape[0])

    def inverse(self, z, context=None):
        W = self.weight().to(z.dtype)
        spatial = spatial_size(z)
        return self._mix(torch.linalg.inv(W), z), (-self.log_s.sum().to(z.dtype) * spatial).expand(z.shape[0])
