"""Image sets reachable offline, as uint8-like integer tensors (N, C, H, W).

* ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 17 gray levels).
* ``fashion-mnist``: Debian's ``dataset-fashion-mnist`` package
  (/usr/share/datasets/fashion-mnist; 28x28, 256 levels; ``apt-get install dataset-fashion-mnist``).
"""
from __future__ import annotations

import gzip
import os

import numpy as np
import torch

from .. import _config

FASHION_DIRS = ("/usr/share/datasets/fashion-mnist",)


def _idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 16 or raw[2] != 8 or raw[3] != 3:
        raise ValueError(f"{path} is not an IDX image file")
    n, h, w = (int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    data = np.frombuffer(raw, dtype=np.uint8, offset=16)
    if data.size != n * h * w:
        raise ValueError(f"{path} is truncated: {data.size} bytes of pixels, expected {n * h * w}")
    return data.reshape(n, 1, h, w)


def load_images(name: str, seed: int = 0, limit: int | None = None):
    """Returns (train, test, n_bins) with integer pixel tensors of shape (N, C, H, W)."""
    if name == "digits":
        try:
            from sklearn.datasets import load_digits
        except ImportError as exc:
            raise ImportError("the digits data set comes with scikit-learn: pip install scikit-learn") from exc
        x = load_digits().images.astype(np.int64)[:, None]  # values 0..16
        rng = np.random.default_rng(seed)
        perm = rng.permutation(x.shape[0])
        n_test = 297
        train, test, n_bins = x[perm[n_test:]], x[perm[:n_test]], 17
    elif name in ("fashion-mnist", "fashion_mnist"):
        d = _config.config.fashion_mnist_dir or next((p for p in FASHION_DIRS if os.path.isdir(p)), None)
        if d is None:
            raise FileNotFoundError("Fashion-MNIST not found: install Debian's dataset-fashion-mnist package "
                                    "(apt-get install dataset-fashion-mnist) or set FASHION_MNIST_DIR")
        train = _idx(os.path.join(d, "train-images-idx3-ubyte.gz")).astype(np.int64)
        test = _idx(os.path.join(d, "t10k-images-idx3-ubyte.gz")).astype(np.int64)
        n_bins = 256
    else:
        raise ValueError(f"unknown image data set {name!r}; choose 'digits' or 'fashion-mnist'")
    if limit:
        train, test = train[:limit], test[: max(limit // 5, 1)]
    return torch.from_numpy(train), torch.from_numpy(test), n_bins
