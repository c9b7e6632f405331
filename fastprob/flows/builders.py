"""Builders of standard architectures: multi-scale RealNVP and Glow for images, RealNVP for vectors."""
from __future__ import annotations

from .actnorm import ActNorm
from .base import Flow, StandardNormal, check_positive_int
from .conv1x1 import InvConv1x1
from .coupling import AffineCoupling, VectorCoupling
from .preprocess import Logit
from .squeeze import ChannelSplit, Squeeze, SqueezeSplit


def _image_shape(shape):
    if len(tuple(shape)) != 3:
        raise ValueError(f"an image flow needs an event shape (C, H, W), got {tuple(shape)}")
    return tuple(check_positive_int(n, v) for n, v in zip(("image channels", "image height", "image width"), shape))


def realnvp_image(shape, n_scales: int = 2, n_couplings: int = 3, hidden: int = 64, scale_map: str = "tanh",
                  logit: bool = True, fused_split: bool = True, backend=None) -> Flow:
    """Multi-scale RealNVP (Dinh et al. 2017).

    Each scale: ``n_couplings`` checkerboard couplings (alternating parity), a squeeze,
    ``n_couplings`` channel couplings, then half of z is factored out.  With
    ``fused_split`` the first scale's squeeze + split is the fused checkerboard
    squeeze-split (a checkerboard factor-out).  The last scale has ``n_couplings + 1``
    checkerboard couplings.
    """
    C, H, W = shape = _image_shape(shape)
    n_scales = check_positive_int("n_scales", n_scales)
    n_couplings = check_positive_int("n_couplings", n_couplings)
    ts = [Logit()] if logit else []
    for s in range(n_scales - 1):
        for i in range(n_couplings):
            ts += [AffineCoupling(C, "checkerboard", i % 2, scale_map, hidden, backend=backend), ActNorm(C)]
        if fused_split and s == 0:
            ts.append(SqueezeSplit())
            C, H, W = 2 * C, H // 2, W // 2
            continue
        ts.append(Squeeze("standard"))
        C, H, W = 4 * C, H // 2, W // 2
        for i in range(n_couplings):
            ts += [AffineCoupling(C, "channel", i % 2, scale_map, hidden, backend=backend), ActNorm(C)]
        ts.append(ChannelSplit())
        C = C - C // 2
    for i in range(n_couplings + 1):
        ts += [AffineCoupling(C, "checkerboard", i % 2, scale_map, hidden, backend=backend), ActNorm(C)]
    return Flow(StandardNormal(), ts, shape)


def glow(shape, n_levels: int = 2, depth: int = 4, hidden: int = 64, scale_map: str = "sigmoid",
         logit: bool = True, backend=None, seed: int = 0) -> Flow:
    """Glow (Kingma & Dhariwal 2018): per level a squeeze, ``depth`` steps of
    [ActNorm, invertible 1x1 conv, channel affine coupling], then a split (except last)."""
    C, H, W = shape = _image_shape(shape)
    n_levels = check_positive_int("n_levels", n_levels)
    depth = check_positive_int("depth", depth)
    ts = [Logit()] if logit else []
    for lvl in range(n_levels):
        ts.append(Squeeze("standard"))
        C, H, W = 4 * C, H // 2, W // 2
        for d in range(depth):
            ts += [ActNorm(C), InvConv1x1(C, seed=seed + 100 * lvl + d),
                   AffineCoupling(C, "channel", d % 2, scale_map, hidden, backend=backend)]
        if lvl < n_levels - 1:
            ts.append(ChannelSplit())
            C = C - C // 2
    return Flow(StandardNormal(), ts, shape)


def realnvp_vector(dim: int, n_layers: int = 6, hidden: int = 64, scale_map: str = "tanh",
                   context_dim: int = 0, actnorm: bool = True, backend=None) -> Flow:
    """RealNVP for (B, D) data: alternating-half MLP couplings (with ActNorm between)."""
    n_layers = check_positive_int("n_layers", n_layers)
    ts = []
    for i in range(n_layers):
        ts.append(VectorCoupling(dim, i % 2, scale_map, hidden, context_dim=context_dim, backend=backend))
        if actnorm and i < n_layers - 1:
            ts.append(ActNorm(dim))
    return Flow(StandardNormal(), ts, (dim,))


def glow_vector(dim: int, depth: int = 4, hidden: int = 64, scale_map: str = "sigmoid", context_dim: int = 0,
                backend=None, seed: int = 0) -> Flow:
    """Glow for (B, D) data: ``depth`` steps of [ActNorm, invertible linear map (LU), coupling]."""
    depth = check_positive_int("depth", depth)
    ts = []
    for d in range(depth):
        ts += [ActNorm(dim), InvConv1x1(dim, seed=seed + d),
               VectorCoupling(dim, d % 2, scale_map, hidden, context_dim=context_dim, backend=backend)]
    return Flow(StandardNormal(), ts, (dim,))
