"""Gray-level image data for :class:`BoostedVAE`: scikit-image's bundled LFW subset, and bits/dim.

``skimage.data.lfw_subset()`` holds 200 gray 25 x 25 crops from Labeled Faces in the Wild
(the first 100 are faces, the other 100 background patches of the same photographs).  Its
docstring promises uint8, but the array it returns (scikit-image 0.26) is float64 in
[0, 1] with ~45,000 distinct values: 8-bit levels / 255 averaged by the resize to 25 x 25.
A discrete likelihood needs integer levels, so :func:`load_lfw` rounds to the nearest of
the 256 levels 0..255 (a change of at most half a level, 0.002 on the [0, 1] scale).
"""
from __future__ import annotations

import math

import numpy as np

LFW_SHAPE = (25, 25)
LFW_SPLITS = {"lfw": (70, 10, 20), "lfw-all": (140, 20, 40)}  # train, validation, test sizes


def load_lfw(variant: str = "lfw", split_seed: int = 0):
    """The LFW subset as integer gray levels with a fixed seeded train/validation/test split.

    Parameters
    ----------
    variant : "lfw" | "lfw-all"
        "lfw": the 100 faces, split 70 / 10 / 20; "lfw-all": all 200 images (faces and
        non-faces), split 140 / 20 / 40.
    split_seed : int
        Seed of the permutation that makes the split (fixed at 0 by the CLI and the bench, so
        every model and training seed sees the same test images).

    Returns
    -------
    train, val, test : float32 tensors (N, 625)
        Gray levels 0..255 (integers stored as float), one flattened image per row.
    shape : (25, 25)
    n_bins : 256
    """
    import torch

    if variant not in LFW_SPLITS:
        raise ValueError(f"unknown LFW variant {variant!r}; choose one of {sorted(LFW_SPLITS)}")
    try:
        from skimage.data import lfw_subset
    except ImportError as exc:
        raise ImportError("the LFW subset comes with scikit-image: pip install scikit-image") from exc
    x = np.asarray(lfw_subset(), dtype=np.float64)
    if x.shape != (200,) + LFW_SHAPE or x.min() < 0 or x.max() > 1:
        raise ValueError(f"unexpected skimage.data.lfw_subset(): shape {x.shape}, range [{x.min()}, {x.max()}]")
    if variant == "lfw":
        x = x[:100]
    levels = np.rint(x * 255).reshape(x.shape[0], -1)
    n_tr, n_va, n_te = LFW_SPLITS[variant]
    perm = np.random.default_rng(split_seed).permutation(x.shape[0])
    t = torch.from_numpy(levels).float()
    return (t[perm[:n_tr]], t[perm[n_tr:n_tr + n_va]], t[perm[n_tr + n_va:n_tr + n_va + n_te]], LFW_SHAPE, 256)


def bits_per_dim(nats_per_image, dim: int):
    """Convert a negative log-likelihood (or its standard error) in nats per image to bits
    per dimension: divide by D ln 2.

    For a discrete likelihood over the 256 gray levels (the discretized logistic of
    :class:`BoostedVAE`), -log P(x) is already a discrete code length, so no log 256 offset
    is added (a uniform model over 256 levels gives exactly 8 bits/dim).
    """
    if dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim}")
    return nats_per_image / (dim * math.log(2))
