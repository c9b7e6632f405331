"""Super-resolution metrics on image batches (B, C, H, W) with values in [0, data_range].

* :func:`psnr` - peak signal-to-noise ratio per image, in dB.
* :func:`ssim` - structural similarity per image (scikit-image's definition: 7x7 uniform
  window, sample covariances, K1 = 0.01, K2 = 0.03, border of 3 pixels left out of the mean;
  channels averaged), computed in PyTorch so batches are cheap; scikit-image is the oracle
  of the tests.
* :func:`lr_psnr` - LR consistency: PSNR between pi(SR output) and the LR input x.
* :func:`diversity` - mean over pixels of the per-pixel standard deviation across samples.
* :func:`bits_per_dim` - from log-likelihoods in nats.

LPIPS and FID need pretrained network weights that cannot be downloaded here; they are not
provided.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .flows.preprocess import bits_per_dim as _bpd

__all__ = ["bits_per_dim", "diversity", "lr_psnr", "psnr", "ssim"]


def _pair(a, b):
    if not (torch.is_tensor(a) and torch.is_tensor(b)):
        a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.dim() != 4:
        raise ValueError(f"expected image batches (B, C, H, W), got shape {tuple(a.shape)}")
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise ValueError("images contain NaN or inf values")
    return a.double(), b.double()


def psnr(pred, target, data_range: float = 1.0):
    """10 log10(data_range^2 / MSE) per image, shape (B,); inf for identical images."""
    p, t = _pair(pred, target)
    mse = ((p - t) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(data_range ** 2 / mse)


def ssim(pred, target, data_range: float = 1.0, win_size: int = 7):
    """Mean SSIM per image, shape (B,) (scikit-image's ``structural_similarity`` defaults)."""
    p, t = _pair(pred, target)
    B, C, H, W = p.shape
    if win_size % 2 == 0 or win_size > min(H, W):
        raise ValueError(f"win_size must be odd and at most the image size {H}x{W}, got {win_size}")
    n = win_size * win_size
    k = torch.ones(1, 1, win_size, win_size, dtype=p.dtype, device=p.device) / n

    def filt(v):
        return F.conv2d(v.reshape(B * C, 1, H, W), k).reshape(B, C, H - win_size + 1, W - win_size + 1)

    cov_norm = n / (n - 1)  # sample covariance, as scikit-image
    ux, uy = filt(p), filt(t)
    vx = cov_norm * (filt(p * p) - ux * ux)
    vy = cov_norm * (filt(t * t) - uy * uy)
    vxy = cov_norm * (filt(p * t) - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    # a 'valid' convolution already leaves out the (win_size - 1) / 2 border
    return s.mean((1, 2, 3))


def lr_psnr(sr, x, scale: int, mode: str = "avg", data_range: float = 1.0):
    """PSNR between pi(sr) and the LR input x, per image (B,)."""
    from .models.psr_nets import downsample

    return psnr(downsample(torch.as_tensor(sr), scale, mode), x, data_range)


def diversity(samples):
    """Mean per-pixel standard deviation over samples: ``samples`` (S, B, C, H, W), S >= 2,
    population std over S, averaged over pixels; shape (B,)."""
    s = torch.as_tensor(samples).double()
    if s.dim() != 5 or s.shape[0] < 2:
        raise ValueError(f"expected samples of shape (S >= 2, B, C, H, W), got {tuple(s.shape)}")
    return s.std(0, unbiased=False).flatten(1).mean(1)


def bits_per_dim(log_p, dim: int, n_bins: int = 256):
    """-(log p - dim log n_bins) / (dim log 2) for log-likelihoods in nats of data scaled to
    [0, 1] by ``n_bins``; ``n_bins=None`` gives plain -log p / (dim log 2)."""
    log_p = torch.as_tensor(log_p)
    if n_bins is None:
        return -log_p / (dim * math.log(2))
    return _bpd(log_p, dim, n_bins)
