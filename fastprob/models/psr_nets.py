"""Non-invertible networks of the PSR flow: the DenseNet LR encoder h(x), the per-scale
upsampling networks u_l, the low-resolution map pi and the same-size MSE CNN baseline."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def check_scale(scale) -> int:
    """Return ``scale`` as an int, or raise if it is not a power of 2 >= 2."""
    s = int(scale)
    if s != scale or s < 2 or s & (s - 1):
        raise ValueError(f"scale must be a power of 2 (2, 4, 8, ...), got {scale!r}")
    return s


def check_image_shape(shape, scale):
    """Raise unless ``shape`` = (C, H, W) with H and W divisible by ``scale``."""
    if len(shape) != 3:
        raise ValueError(f"image shape must be (C, H, W), got {tuple(shape)}")
    C, H, W = shape
    if H % scale or W % scale:
        raise ValueError(f"image size {H}x{W} is not divisible by the scale {scale}: crop or pad the images to a "
                         f"multiple of {scale}")


def check_finite(name, t):
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf values; clean the images before calling the model")


def downsample(y, scale: int, mode: str = "avg"):
    """pi(y): (B, C, H, W) -> (B, C, H / scale, W / scale).

    ``mode="nearest"`` keeps the top-left pixel of every scale x scale block;
    ``mode="avg"`` averages the block.
    """
    scale = check_scale(scale)
    if y.dim() != 4:
        raise ValueError(f"expected images (B, C, H, W), got shape {tuple(y.shape)}")
    check_image_shape(y.shape[1:], scale)
    if mode == "nearest":
        return y[:, :, ::scale, ::scale]
    if mode == "avg":
        return F.avg_pool2d(y, scale)
    raise ValueError(f"downsampling mode must be 'nearest' or 'avg', got {mode!r}")


class DenseEncoder(nn.Module):
    """A small DenseNet (Huang et al. 2017) on the LR image: every 3x3 conv layer sees the
    concatenation of the input features and all earlier layers' outputs.

    (B, C, h, w) -> (B, out_channels, h, w).
    """

    def __init__(self, in_channels, out_channels=32, growth=16, n_layers=3):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, growth, 3, padding=1)
        self.layers = nn.ModuleList(
            nn.Conv2d(growth * (i + 1), growth, 3, padding=1) for i in range(n_layers))
        self.head = nn.Conv2d(growth * (n_layers + 1), out_channels, 1)

    def forward(self, x):
        feats = [F.relu(self.stem(x))]
        for layer in self.layers:
            feats.append(F.relu(layer(torch.cat(feats, 1))))
        return self.head(torch.cat(feats, 1))


class Upsampler(nn.Module):
    """u_l: transposed 3x3-ish convolutions, each doubling the resolution, then a 3x3 conv.

    (B, in_channels, h, w) -> (B, out_channels, h * factor, w * factor), factor a power of 2 or 1.
    """

    def __init__(self, in_channels, out_channels, factor, hidden=32):
        super().__init__()
        n = int(round(math.log2(factor)))
        if 2 ** n != factor:
            raise ValueError(f"upsampling factor must be a power of 2, got {factor}")
        mods, c = [], in_channels
        for _ in range(n):
            mods += [nn.ConvTranspose2d(c, hidden, 4, stride=2, padding=1), nn.ReLU()]
            c = hidden
        mods.append(nn.Conv2d(c, out_channels, 3, padding=1))
        self.net = nn.Sequential(*mods)

    def forward(self, h):
        return self.net(h)


class SRCNN(nn.Module):
    """Deterministic baseline: the same DenseNet encoder and an upsampler to full resolution
    predicting the HR image (plus the bicubic upsampling, as a residual), trained with MSE."""

    def __init__(self, channels, scale, features=32, hidden=32, growth=16, n_layers=3):
        super().__init__()
        self.scale = check_scale(scale)
        self.encoder = DenseEncoder(channels, features, growth, n_layers)
        self.up = Upsampler(features, channels, self.scale, hidden)

    def forward(self, x):
        base = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return base + self.up(self.encoder(x))
