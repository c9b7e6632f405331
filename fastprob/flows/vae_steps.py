"""Variational compressive steps: linear VAE (thesis 5.4.2, Lucas et al. 2019) and the
nonlinear Gaussian VAE step (thesis 5.4.3, a SurVAE-style stochastic layer).

Convention (flows-model.md section 1, as :class:`~fastprob.flows.PPCAStep`):
``forward(z') -> (z, contribution)`` where a standard-normal base on z completes the bound:
``base.log_prob(z) + contribution`` is a lower bound on log p(z').

* :class:`LinearVAEStep` returns the analytic ELBO (no sampling noise): its contribution is
  ELBO(z') - log N(z; 0, I) at the encoder mean z; it assumes the N(0, I) prior, so use it as
  the last step before a standard-normal base.
* :class:`VAEStep` returns the single-sample bound log p(z'|z) - log q(z|z') at z ~ q(z|z');
  whatever models z afterwards (more flow steps, a base) supplies log p(z), so it also works
  between scales.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .ppca import LOG_2PI, PPCAStep, check_dims, check_rows, std_normal_log_prob


def _normal_log_prob(x, mean, log_sd):
    """Sum over all non-batch dims of log N(x; mean, exp(log_sd)^2)."""
    u = (x - mean) * torch.exp(-log_sd)
    lp = -0.5 * u * u - log_sd - 0.5 * LOG_2PI
    return lp.flatten(1).sum(1)


class LinearVAEStep(nn.Module):
    """Linear Gaussian VAE R^D -> R^d with an analytic ELBO.

    Decoder p(z' | z) = N(A z + mu, s2 I_D), prior N(0, I_d), encoder
    q(z | z') = N(B (z' - mu), S) with S = L L^T (``encoder_cov="full"``) or diagonal.
    With r = z' - mu, m = B r:

        E_q log p(z'|z) = -D/2 log(2 pi s2) - (|r - A m|^2 + tr(A S A^T)) / (2 s2)
        KL(q || p(z))   = (tr S + |m|^2 - d - log|S|) / 2

    At B = M^-1 A^T, S = s2 M^-1 (M = A^T A + s2 I) q is the exact posterior and the ELBO
    equals the PPCA log-likelihood (thesis eq. 5.8).

    Parameters
    ----------
    D, d : int
        0 < d < D.
    encoder_cov : "full" | "diag"
    s2 : float
        Initial decoder noise variance (> 0).
    """

    def __init__(self, D: int, d: int, encoder_cov: str = "full", s2: float = 1.0, seed: int = 0):
        super().__init__()
        check_dims(D, d, "LinearVAEStep")
        if encoder_cov not in ("full", "diag"):
            raise ValueError(f"encoder_cov must be 'full' or 'diag', got {encoder_cov!r}")
        s2 = float(s2)
        if not (s2 > 0 and math.isfinite(s2)):
            raise ValueError(f"LinearVAEStep: the noise variance s2 must be finite and > 0, got {s2}")
        self.D, self.d, self.encoder_cov = D, d, encoder_cov
        g = torch.Generator().manual_seed(seed)
        self.A = nn.Parameter(0.1 * torch.randn(D, d, generator=g))
        self.mu = nn.Parameter(torch.zeros(D))
        self.log_s2 = nn.Parameter(torch.tensor(math.log(s2)))
        self.B = nn.Parameter(0.1 * torch.randn(d, D, generator=g))
        self.enc_log_sd = nn.Parameter(torch.zeros(d))
        self.enc_lower = nn.Parameter(torch.zeros(d, d)) if encoder_cov == "full" else None

    @property
    def s2(self):
        return self.log_s2.exp()

    def encoder_scale(self):
        """Lower-triangular L with S = L L^T (positive diagonal)."""
        L = torch.diag(self.enc_log_sd.exp())
        if self.enc_lower is not None:
            L = L + torch.tril(self.enc_lower, -1)
        return L

    def encode(self, x):
        """Encoder mean m = B (x - mu), shape (B, d), and scale L (d, d)."""
        check_rows(x, self.D)
        return (x - self.mu) @ self.B.T, self.encoder_scale()

    def elbo(self, x):
        """Analytic ELBO per row, shape (B,)."""
        m, L = self.encode(x)
        r = x - self.mu
        rec = r - m @ self.A.T
        AL = self.A @ L
        e_log_p = -0.5 * (self.D * (LOG_2PI + self.log_s2) + ((rec * rec).sum(1) + (AL * AL).sum()) / self.s2)
        kl = 0.5 * ((L * L).sum() + (m * m).sum(1) - self.d - 2 * torch.log(torch.diagonal(L)).sum())
        return e_log_p - kl

    def forward(self, x, context=None):
        """z' (B, D) -> (encoder mean z (B, d), ELBO(z') - log N(z; 0, I_d))."""
        m, _ = self.encode(x)
        return m, self.elbo(x) - std_normal_log_prob(m)

    def decode(self, z, noise: bool = False):
        check_rows(z, self.d, "latent z")
        x = z @ self.A.T + self.mu
        return x + self.s2.sqrt() * torch.randn_like(x) if noise else x

    def inverse(self, z, context=None):
        """z -> (decoder mean, zeros): no inverse log-determinant for a compressive step."""
        return self.decode(z), z.new_zeros(z.shape[0])

    def out_shape(self, shape):
        return (self.d,)

    def as_ppca(self):
        """A PPCAStep with this decoder (its log_prob is the exact marginal the ELBO bounds)."""
        p = PPCAStep(self.D, self.d).to(self.A.dtype).to(self.A.device)
        return p.set_params(mu=self.mu.detach(), A=self.A.detach(), s2=float(self.s2))

    @torch.no_grad()
    def set_optimal_encoder(self):
        """B = M^-1 A^T, S = s2 M^-1: the exact posterior (needs ``encoder_cov="full"``
        unless M is diagonal)."""
        A, s2 = self.A, self.s2
        M = A.T @ A + s2 * torch.eye(self.d, dtype=A.dtype, device=A.device)
        Minv = torch.linalg.inv(M)
        self.B.copy_(Minv @ A.T)
        L = torch.linalg.cholesky(s2 * Minv)
        self.enc_log_sd.copy_(torch.log(torch.diagonal(L)))
        if self.enc_lower is not None:
            self.enc_lower.copy_(torch.tril(L, -1))
        elif (L - torch.diag(torch.diagonal(L))).abs().max() > 1e-6 * L.abs().max():
            raise ValueError("the exact posterior covariance s2 M^-1 is not diagonal; use encoder_cov='full'")
        return self

    @torch.no_grad()
    def fit(self, x, **kw):
        """Closed-form decoder (the PPCA maximum likelihood fit) and the optimal encoder."""
        p = PPCAStep(self.D, self.d).to(self.A.dtype).fit(x, **kw)
        self.mu.copy_(p.mu)
        self.A.copy_(p.A)
        self.log_s2.copy_(p.log_s2)
        return self.set_optimal_encoder()


def _mlp(d_in, d_out, hidden):
    mods, d = [], d_in
    for h in hidden:
        mods += [nn.Linear(d, h), nn.ReLU()]
        d = h
    mods.append(nn.Linear(d, d_out))
    return nn.Sequential(*mods)


class _ConvNet(nn.Sequential):
    def __init__(self, c_in, c_out, hidden):
        super().__init__(nn.Conv2d(c_in, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
                         nn.Conv2d(hidden, c_out, 3, padding=1))


class VAEStep(nn.Module):
    """Nonlinear Gaussian VAE step: q(z | z') = N(m(z'), diag sd(z')^2),
    p(z' | z) = N(f(z), diag sigma^2) with a learned per-dimension (per-channel for the
    convolutional form) decoder scale sigma.

    ``forward`` draws z ~ q(z | z') (reparameterized) and returns
    (z, log p(z' | z) - log q(z | z')) (thesis eq. 5.13).

    Parameters
    ----------
    D, d : int
        Dense form: (B, D) -> (B, d), 0 < d < D.
    hidden : tuple of int
        Hidden widths of the encoder MLP (the decoder mirrors them); () gives a linear VAE
        with a diagonal encoder (used by the tests, where the marginal is known).

    Use :meth:`conv` for the convolutional form (B, C, H, W) -> (B, c, H, W), c < C.
    """

    def __init__(self, D: int, d: int, hidden=(256, 128), seed: int = 0, _nets=None):
        super().__init__()
        if _nets is None:
            check_dims(D, d, "VAEStep")
            with torch.random.fork_rng():
                torch.manual_seed(seed)  # seeded weights without touching the global stream
                self.encoder = _mlp(D, 2 * d, tuple(hidden))
                self.decoder = _mlp(d, D, tuple(reversed(tuple(hidden))))
            self.in_shape, self.z_shape = (D,), (d,)
            self.log_sigma = nn.Parameter(torch.zeros(D))
        else:
            self.encoder, self.decoder, self.in_shape, self.z_shape = _nets
            self.log_sigma = nn.Parameter(torch.zeros(self.in_shape[0]))
        # sizes of the dense form (the convolutional form's depend on the image size)
        self.D, self.d = (D, d) if _nets is None else (None, None)

    @classmethod
    def conv(cls, channels: int, latent_channels: int, hidden: int = 64, height=None, width=None):
        """Convolutional VAE step that reduces channels and keeps the spatial grid."""
        check_dims(channels, latent_channels, "VAEStep.conv (channels)")
        nets = (_ConvNet(channels, 2 * latent_channels, hidden), _ConvNet(latent_channels, channels, hidden),
                (channels, height, width), (latent_channels, height, width))
        return cls(0, 0, _nets=nets)

    def _check(self, x, shape, what):
        if not torch.is_tensor(x) or not x.is_floating_point():
            raise TypeError(f"{what} must be a floating-point tensor")
        ok = x.dim() == len(shape) + 1 and all(s is None or s == t for s, t in zip(shape, x.shape[1:]))
        if not ok:
            raise ValueError(f"{what} must have shape (B, {', '.join('*' if s is None else str(s) for s in shape)}), "
                             f"got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError(f"{what} contains NaN or inf; check the data or the flow that produced it")

    def _sigma_view(self, x):
        return self.log_sigma.view(1, -1, *([1] * (x.dim() - 2)))

    def encode(self, x):
        """Mean and log standard deviation of q(z | x)."""
        self._check(x, self.in_shape, "input")
        m, log_sd = self.encoder(x).chunk(2, dim=1)
        return m, log_sd

    def log_q(self, z, m, log_sd):
        return _normal_log_prob(z, m, log_sd)

    def log_p_given(self, x, z):
        """log p(x | z) per row."""
        return _normal_log_prob(x, self.decoder(z), self._sigma_view(x))

    def forward(self, x, context=None):
        m, log_sd = self.encode(x)
        z = m + torch.exp(log_sd) * torch.randn_like(m)
        return z, self.log_p_given(x, z) - self.log_q(z, m, log_sd)

    @torch.no_grad()
    def importance_log_prob(self, x, k: int = 1000, prior_log_prob=std_normal_log_prob, chunk: int = 500):
        """log p(x) ~ log (1/k) sum_j p(x | z_j) p(z_j) / q(z_j | x), z_j ~ q(z | x); shape (B,)."""
        m, log_sd = self.encode(x)
        out = []
        for b in range(x.shape[0]):
            ws = []
            for j in range(0, k, chunk):
                n = min(chunk, k - j)
                mb, sb = m[b:b + 1].expand(n, *m.shape[1:]), log_sd[b:b + 1].expand(n, *m.shape[1:])
                z = mb + torch.exp(sb) * torch.randn_like(mb)
                xb = x[b:b + 1].expand(n, *x.shape[1:])
                ws.append(self.log_p_given(xb, z) + prior_log_prob(z.flatten(1)) - self.log_q(z, mb, sb))
            w = torch.cat(ws)
            out.append(torch.logsumexp(w, 0) - math.log(k))
        return torch.stack(out)

    def decode(self, z, noise: bool = False):
        self._check(z, self.z_shape, "latent z")
        x = self.decoder(z)
        return x + torch.exp(self._sigma_view(x)) * torch.randn_like(x) if noise else x

    def inverse(self, z, context=None):
        """z -> (decoder mean, zeros): no inverse log-determinant for a compressive step."""
        return self.decode(z), z.new_zeros(z.shape[0])

    def out_shape(self, shape):
        if len(self.z_shape) == 1:
            return self.z_shape
        return (self.z_shape[0], *shape[1:])
