"""ActNorm (Glow): per-channel affine map with data-dependent initialization."""
from __future__ import annotations

import torch
from torch import nn

from .base import Transform, check_positive_int, spatial_size


class ActNorm(Transform):
    """z = (x + bias) * exp(log_scale) per channel; on its first training batch the
    parameters are set so that z has zero mean and unit variance per channel.

    Works on (B, C, H, W) images and (B, C) vectors.
    """

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        channels = check_positive_int("ActNorm channels", channels)
        self.bias = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.tensor(False))
        self.eps = eps

    def _view(self, p, x):
        return p.view(1, -1, *([1] * (x.dim() - 2)))

    @torch.no_grad()
    def _init(self, x):
        bad = int((~torch.isfinite(x)).sum())
        if bad:
            # initializing from such a batch would leave NaN parameters for good
            raise ValueError(f"ActNorm's data-dependent initialization got a batch with {bad} NaN or inf "
                             "values; clean the data (the layer is still uninitialized)")
        dims = [0] + list(range(2, x.dim()))
        mean = x.mean(dims)
        std = x.std(dims, unbiased=False) if x.shape[0] * spatial_size(x) > 1 else torch.ones_like(mean)
        self.bias.copy_(-mean)
        self.log_scale.copy_(-torch.log(std + self.eps))
        self.initialized.fill_(True)

    def _check(self, x):
        if x.shape[1] != self.bias.shape[0]:
            raise ValueError(f"ActNorm has {self.bias.shape[0]} channels, input has {x.shape[1]}")

    def forward(self, x, context=None):
        self._check(x)
        if not bool(self.initialized) and self.training and x.shape[0] > 0:  # an empty batch carries no statistics
            self._init(x)
        z = (x + self._view(self.bias, x)) * torch.exp(self._view(self.log_scale, x))
        spatial = spatial_size(x)
        return z, (self.log_scale.sum() * spatial).expand(x.shape[0])

    def inverse(self, z, context=None):
        self._check(z)
        if not bool(self.initialized) and self.training and torch.is_grad_enabled():
            # training through the inverse first means the data-dependent init never sees data,
            # and a later forward pass in training mode would silently replace the parameters
            raise RuntimeError(
                "ActNorm is being trained through its inverse (latent -> data) before its data-dependent "
                "initialization, which runs on the first forward (data -> latent) pass in training mode. "
                "fastprob blocks map data -> latent; libraries such as normflows call a layer's inverse on "
                "data, so the init never fires there. Initialize first with one forward pass on a data batch "
                "(flow.train(); flow(x)), or, for latent -> data training such as reverse KL, mark the layers "
                "as initialized with fastprob.models.gbnf.freeze_init(flow).")
        x = z * torch.exp(-self._view(self.log_scale, z)) - self._view(self.bias, z)
        spatial = spatial_size(z)
        return x, (-self.log_scale.sum() * spatial).expand(z.shape[0])
