"""Transforms, the Flow container and base distributions.

Direction (flows-model.md section 1): ``forward(x) -> (z, logdet)`` maps data to latent
with logdet = log|det dz/dx| per sample; ``inverse(z) -> (x, logdet)`` returns
log|det dx/dz|.  ``Flow.log_prob(x) = base.log_prob(z) + logdet``.
"""
from __future__ import annotations

import abc
import math
import operator

import torch
from torch import nn


def check_positive_int(name: str, value) -> int:
    """``value`` as an int, or a ValueError naming the argument when it is not an integer >= 1."""
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be a positive integer, got {value!r}") from None
    if v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v}")
    return v


def spatial_size(x) -> int:
    """Elements per channel of one sample of x (B, C, *spatial); 1 for (B, C) vectors.
    From the shape, so that empty batches work."""
    return math.prod(x.shape[2:])


class Transform(nn.Module, metaclass=abc.ABCMeta):
    """A bijection with a log-determinant.  Subclasses implement forward and inverse."""

    @abc.abstractmethod
    def forward(self, x, context=None):
        """x -> (z, log|det dz/dx| of shape (B,))."""

    @abc.abstractmethod
    def inverse(self, z, context=None):
        """z -> (x, log|det dx/dz| of shape (B,))."""

    def out_shape(self, shape):
        """Event shape (without batch) of the output for an input of event shape ``shape``."""
        return shape


class Split(nn.Module, metaclass=abc.ABCMeta):
    """Marks where a multi-scale flow factors out part of z (see :class:`Flow`).

    ``split(z) -> (kept, factored)``; ``merge(kept, factored) -> z``.
    """

    @abc.abstractmethod
    def split(self, z):
        """z -> (kept, factored)."""

    @abc.abstractmethod
    def merge(self, kept, factored):
        """Inverse of :meth:`split`."""

    @abc.abstractmethod
    def shapes(self, shape):
        """(kept shape, factored shape) for an input event shape."""


class StandardNormal(nn.Module):
    """N(0, I) over flat latent vectors."""

    def log_prob(self, z):
        z = z.flatten(1)
        return -0.5 * (z * z).sum(1) - 0.5 * z.shape[1] * math.log(2 * math.pi)

    def sample(self, n, dim, temperature=1.0, device=None, dtype=None):
        return temperature * torch.randn(n, dim, device=device, dtype=dtype)


class DiagonalGaussian(nn.Module):
    """N(mu, diag(exp(2 log_sigma))) with learned parameters over flat latents of size ``dim``."""

    def __init__(self, dim):
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(dim))
        self.log_sigma = nn.Parameter(torch.zeros(dim))

    def log_prob(self, z):
        z = z.flatten(1)
        u = (z - self.mu) * torch.exp(-self.log_sigma)
        return -0.5 * (u * u).sum(1) - self.log_sigma.sum() - 0.5 * z.shape[1] * math.log(2 * math.pi)

    def sample(self, n, dim, temperature=1.0, device=None, dtype=None):
        eps = torch.randn(n, dim, device=device or self.mu.device, dtype=dtype or self.mu.dtype)
        return self.mu + temperature * torch.exp(self.log_sigma) * eps


class Flow(nn.Module):
    """A normalizing flow: a base distribution and a sequence of transforms and splits.

    Parameters
    ----------
    base : StandardNormal or DiagonalGaussian
    transforms : list of Transform / Split
    event_shape : tuple
        Shape of one data point, e.g. (C, H, W) or (D,).

    The latent is the concatenation (flattened) of every factored-out part and the final z,
    so ``forward`` returns z of shape (B, prod(event_shape)).
    """

    def __init__(self, base, transforms, event_shape):
        super().__init__()
        self.base = base
        self.transforms = nn.ModuleList(transforms)
        self.event_shape = tuple(event_shape)
        self.dim = int(math.prod(self.event_shape))
        self._plan = self._shape_plan()

    def _shape_plan(self):
        shape, plan = self.event_shape, []
        for t in self.transforms:
            if isinstance(t, Split):
                kept, fact = t.shapes(shape)
                plan.append(("split", shape, fact))
                shape = kept
            else:
                plan.append(("t", shape, None))
                shape = t.out_shape(shape)
        self._final_shape = shape
        return plan

    def _check_input(self, x):
        if not torch.is_tensor(x) or not x.is_floating_point():
            kind = x.dtype if torch.is_tensor(x) else type(x).__name__
            raise TypeError(f"a flow takes floating-point tensors, got {kind}; integer pixels must be "
                            "dequantized first, e.g. x, _ = UniformDequantizer(n_bins)(pixels) maps "
                            "0..n_bins-1 to [0, 1)")
        if tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(f"expected inputs of shape (B, {', '.join(map(str, self.event_shape))}), "
                             f"got {tuple(x.shape)}")
        bad = int((~torch.isfinite(x)).sum())
        if bad:
            raise ValueError(f"the input data contain {bad} NaN or inf values; clean or drop those samples "
                             "(this is a problem of the data, not of the model)")

    def forward(self, x, context=None):
        """Data -> (latent (B, D), logdet (B,))."""
        self._check_input(x)
        z, total, parts = x, x.new_zeros(x.shape[0]), []
        for t in self.transforms:
            if isinstance(t, Split):
                z, f = t.split(z)
                parts.append(f.flatten(1))
            else:
                z, ld = t(z, context)
                total = total + ld
        parts.append(z.flatten(1))
        return torch.cat(parts, 1), total

    def inverse(self, z, context=None):
        """Latent (B, D) -> (data, logdet of the inverse)."""
        if z.dim() != 2 or z.shape[1] != self.dim:
            raise ValueError(f"expected latents of shape (B, {self.dim}), got {tuple(z.shape)}")
        B = z.shape[0]
        sizes = [math.prod(f) for kind, _, f in self._plan if kind == "split"]
        offs = 0
        facts = []
        for n in sizes:
            facts.append(z[:, offs:offs + n])
            offs += n
        x = z[:, offs:].reshape(B, *self._final_shape)
        total = z.new_zeros(B)
        for (kind, in_shape, fshape), t in zip(reversed(self._plan), reversed(self.transforms)):
            if kind == "split":
                x = t.merge(x, facts.pop().reshape(B, *fshape))
            else:
                x, ld = t.inverse(x, context)
                total = total + ld
        return x, total

    def log_prob(self, x, context=None):
        z, ld = self.forward(x, context)
        return self.base.log_prob(z) + ld

    @torch.no_grad()
    def sample(self, n, temperature=1.0, context=None):
        """``n`` samples of shape (n, *event_shape); n = 0 gives an empty tensor."""
        try:
            n = operator.index(n)
        except TypeError:
            raise ValueError(f"the number of samples must be an integer >= 0, got {n!r}") from None
        if n < 0:
            raise ValueError(f"the number of samples must be an integer >= 0, got {n}")
        p = next(self.parameters(), None)
        dev = p.device if p is not None else None
        dt = p.dtype if p is not None else None
        z = self.base.sample(n, self.dim, temperature, device=dev, dtype=dt)
        return self.inverse(z, context)[0]
