"""Compressive normalizing flows (thesis chapter 5): bijections and dimension-reducing steps
ending in a standard-normal base on the low-dimensional latent.

* :class:`SliceStep`: keep d of D dimensions, a learned diagonal Gaussian on the dropped
  ones (the multi-scale factor-out, exact).
* :class:`CompressiveFlow`: a sequence of bijections (any :class:`Transform`, or a whole
  :class:`Flow` whose latent is its flattened output) and compressive steps
  (:class:`SliceStep`, :class:`PPCAStep`, :class:`LinearVAEStep`, :class:`VAEStep`,
  :class:`MaxPoolStep`).
  ``log_prob`` = base + every contribution: exact with slice/PPCA/max-pool steps, a lower bound with
  VAE steps.  ``dual_base_objective`` is the corrected eq. 5.6 used in training.
* :func:`intermixed_flow`: convolutional VAE steps between the scales of a RealNVP.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .actnorm import ActNorm
from .base import Flow, Split
from .maxpool import MaxPoolStep
from .coupling import AffineCoupling
from .ppca import PPCAStep, check_dims, check_rows, std_normal_log_prob
from .preprocess import Logit
from .squeeze import Squeeze
from .vae_steps import LinearVAEStep, VAEStep


class SliceStep(nn.Module):
    """Keep the last d of D dimensions; the first D - d get a learned N(m, diag(sd^2)).

    ``forward(x) -> (x[:, D-d:], log N(x[:, :D-d]; m, sd))``: exact, like the factor-out of
    a multi-scale flow (whose factored parts sit first in :class:`Flow`'s latent).
    """

    def __init__(self, D: int, d: int):
        super().__init__()
        check_dims(D, d, "SliceStep")
        self.D, self.d = D, d
        self.m = nn.Parameter(torch.zeros(D - d))
        self.log_sd = nn.Parameter(torch.zeros(D - d))

    def forward(self, x, context=None):
        check_rows(x, self.D)
        drop, keep = x[:, : self.D - self.d], x[:, self.D - self.d:]
        u = (drop - self.m) * torch.exp(-self.log_sd)
        lp = (-0.5 * u * u - self.log_sd - 0.5 * math.log(2 * math.pi)).sum(1)
        return keep, lp

    def decode(self, z, noise: bool = False):
        check_rows(z, self.d, "latent z")
        drop = self.m.expand(z.shape[0], -1)
        if noise:
            drop = drop + torch.exp(self.log_sd) * torch.randn_like(drop)
        return torch.cat([drop, z], 1)

    def inverse(self, z, context=None):
        return self.decode(z), z.new_zeros(z.shape[0])

    def out_shape(self, shape):
        return (self.d,)


COMPRESSIVE = (SliceStep, PPCAStep, LinearVAEStep, VAEStep, MaxPoolStep)


def is_compressive(layer) -> bool:
    return isinstance(layer, COMPRESSIVE)


def _is_dense(layer) -> bool:
    # max-pool steps and convolutional VAE steps take images (a max-pool step also reads a
    # flat latent in its image shape)
    if isinstance(layer, MaxPoolStep):
        return False
    return is_compressive(layer) and not (isinstance(layer, VAEStep) and len(layer.z_shape) > 1)


class CompressiveFlow(nn.Module):
    """Bijections and compressive steps with a N(0, I) base on the final latent.

    Parameters
    ----------
    layers : list
        :class:`Transform` s, whole :class:`Flow` s (output flattened to (B, D)) and
        compressive steps.  Dense steps flatten an image input; no :class:`Split` (use a
        :class:`Flow` for multi-scale parts).
    event_shape : tuple
        Shape of one data point.

    Notes
    -----
    ``forward(x) -> (z (B, d), contribution (B,))`` with ``log_prob = log N(z; 0, I) +
    contribution``.  ``dual_base_objective(x, alpha)`` is the corrected eq. 5.6:
    log|det J| of the bijections before the first compressive step + log N(z'; 0, I_D)
    (an extra base on z', the input of that step) + alpha * (log-likelihood of z' under the
    rest of the model).  The extra base is a training device; ``log_prob`` never uses it.
    """

    def __init__(self, layers, event_shape):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.event_shape = tuple(event_shape)
        shape, self._in_shapes = self.event_shape, []
        for layer in self.layers:
            if isinstance(layer, Split):
                raise TypeError("CompressiveFlow takes no Split layers; wrap a multi-scale part in a Flow")
            self._in_shapes.append(shape)
            if isinstance(layer, Flow):
                if tuple(shape) != layer.event_shape:
                    raise ValueError(f"a Flow layer built for {layer.event_shape} receives {shape}")
                shape = (layer.dim,)
            elif _is_dense(layer):
                if math.prod(shape) != layer.D:
                    raise ValueError(f"{type(layer).__name__} expects {layer.D} inputs, receives {shape}")
                shape = layer.out_shape(shape)
            else:
                shape = tuple(layer.out_shape(shape))
        self.latent_shape = tuple(shape)
        self.latent_dim = int(math.prod(shape))
        self.data_dim = int(math.prod(self.event_shape))
        firsts = [i for i, layer in enumerate(self.layers) if is_compressive(layer)]
        self._first = firsts[0] if firsts else None

    def _check_input(self, x):
        if not torch.is_tensor(x) or tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(f"expected inputs of shape (B, {', '.join(map(str, self.event_shape))}), got "
                             f"{tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}")
        if not torch.isfinite(x).all():
            raise ValueError("input contains NaN or inf")

    def _run(self, x, context, start=0, stop=None):
        z, total = x, x.new_zeros(x.shape[0])
        for layer in list(self.layers)[start:stop]:
            if _is_dense(layer) and z.dim() > 2:
                z = z.flatten(1)
            z, c = layer(z, context) if not is_compressive(layer) else layer(z)
            total = total + c
        return z, total

    def forward(self, x, context=None):
        """x -> (latent (B, d), summed log-det / contributions (B,))."""
        self._check_input(x)
        z, total = self._run(x, context)
        return z.flatten(1), total

    def log_prob(self, x, context=None):
        """log p(x) for exact steps (slice, PPCA, max-pool); a single-sample lower bound with VAE steps."""
        z, total = self.forward(x, context)
        return std_normal_log_prob(z) + total

    @torch.no_grad()
    def log_prob_iw(self, x, k: int = 100, context=None):
        """Importance-weighted estimate log (1/k) sum_j w_j from k independent passes (the
        IWAE bound; equals ``log_prob`` for deterministic models)."""
        ws = torch.stack([self.log_prob(x, context) for _ in range(k)])
        return torch.logsumexp(ws, 0) - math.log(k)

    def dual_base_objective(self, x, alpha: float, context=None):
        """Corrected thesis eq. 5.6 per sample (maximize):
        log|det J_pre| + log N(z'; 0, I) + alpha * log p_rest(z')."""
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self._check_input(x)
        if self._first is None:
            return self.log_prob(x, context)
        zp, pre = self._run(x, context, 0, self._first)
        rest_z, rest = self._run(zp, context, self._first, None)
        extra = std_normal_log_prob(zp.flatten(1))
        if float(alpha) == 0.0:
            return pre + extra
        return pre + extra + alpha * (std_normal_log_prob(rest_z.flatten(1)) + rest)

    def compressed_input(self, x, context=None):
        """z', the input of the first compressive step (flattened), and the log-det before it."""
        self._check_input(x)
        stop = self._first if self._first is not None else len(self.layers)
        zp, pre = self._run(x, context, 0, stop)
        return zp.flatten(1), pre

    @torch.no_grad()
    def decode(self, z, noise: bool = False, context=None):
        """Latent (B, d) -> data, decoding each compressive step with its mean (or a sample
        if ``noise``)."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected latents of shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        x = z.reshape(z.shape[0], *self.latent_shape)
        for layer, in_shape in zip(reversed(self.layers), reversed(self._in_shapes)):
            if is_compressive(layer):
                x = layer.decode(x, noise=noise)
            else:
                x = layer.inverse(x.flatten(1) if isinstance(layer, Flow) else x, context)[0]
            x = x.reshape(x.shape[0], *in_shape)
        return x

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, noise: bool = False, context=None):
        p = next(self.parameters())
        z = temperature * torch.randn(n, self.latent_dim, device=p.device, dtype=p.dtype)
        return self.decode(z, noise=noise, context=context)


def latent_size(D: int, fraction: float) -> int:
    """d = round(fraction * D), at least 1 and below D."""
    if not 0 < fraction < 1:
        raise ValueError(f"latent fraction must be in (0, 1), got {fraction}")
    return int(min(max(round(fraction * D), 1), D - 1))


def intermixed_flow(shape, fraction: float, n_couplings: int = 3, hidden: int = 64, logit: bool = True):
    """RealNVP-style flow with convolutional VAE steps between scales (thesis 5.4.4, fig. 17c).

    (C, H, W): couplings on the image; squeeze; a conv VAE step reduces 4C channels to c1;
    couplings; squeeze; a conv VAE step reduces 4 c1 to c2; couplings.  c1 ~ 4C sqrt(f) and
    c2 = f C H W / (H/4 W/4) so the final latent is a fraction ~f of the data dimension.
    """
    C, H, W = shape
    if H % 4 or W % 4:
        raise ValueError(f"the intermixed flow squeezes twice: height and width must be multiples of 4, got {H}x{W}")
    D = C * H * W
    d = latent_size(D, fraction)
    cells = (H // 4) * (W // 4)
    c2 = max(1, round(d / cells))
    c1 = min(max(1, round(4 * C * math.sqrt(fraction))), 4 * C - 1)
    c1 = max(c1, -(-(c2 + 1) // 4))
    if c2 >= 4 * c1:
        c2 = 4 * c1 - 1
    layers = [Logit()] if logit else []
    for i in range(n_couplings):
        layers += [AffineCoupling(C, "checkerboard", i % 2, "tanh", hidden), ActNorm(C)]
    layers.append(Squeeze("standard"))
    layers.append(VAEStep.conv(4 * C, c1, hidden=hidden))
    for i in range(n_couplings):
        layers += [AffineCoupling(c1, "checkerboard" if c1 < 2 else "channel", i % 2, "tanh", hidden), ActNorm(c1)]
    layers.append(Squeeze("standard"))
    layers.append(VAEStep.conv(4 * c1, c2, hidden=hidden))
    for i in range(n_couplings):
        layers += [AffineCoupling(c2, "checkerboard" if c2 < 2 else "channel", i % 2, "tanh", hidden), ActNorm(c2)]
    return CompressiveFlow(layers, shape)


__all__ = ["COMPRESSIVE", "CompressiveFlow", "SliceStep", "intermixed_flow", "is_compressive",
           "latent_size"]
