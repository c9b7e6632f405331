"""PPCA compressive step (thesis chapter 5.4.1; Tipping & Bishop 1999).

Model: z ~ N(0, I_d), z' | z ~ N(A z + mu, s2 I_D), so z' ~ N(mu, C) with
C = A A^T + s2 I_D.  Everything here works with the d x d matrix M = A^T A + s2 I_d:

* determinant lemma: log|C| = (D - d) log s2 + log|M|
* Woodbury:          C^-1 = (I_D - A M^-1 A^T) / s2
* posterior:         p(z | z') = N(M^-1 A^T (z' - mu), s2 M^-1)

so a log-likelihood costs O(B D d + D d^2 + d^3) time and O(B D + D d) memory; no
D x D matrix is ever formed.

Flow convention (flows-model.md section 1): ``forward(z') -> (z, contribution)`` with
``contribution = log N(z'; mu, C) - log N(z; 0, I_d)``, so that a standard-normal base on
the d-dimensional output gives ``base.log_prob(z) + contribution = log p(z')`` exactly (the
posterior is exact, so the SurVAE ratio p(z'|z) p(z) / q(z|z') equals p(z') for every z).
"""
from __future__ import annotations

import math
import warnings

import torch
from torch import nn

LOG_2PI = math.log(2 * math.pi)


def check_dims(D, d, what="step"):
    """Validate the (input, output) sizes of a compressive step."""
    if not (isinstance(D, int) and isinstance(d, int)):
        raise TypeError(f"{what}: D and d must be ints, got {type(D).__name__} and {type(d).__name__}")
    if not 0 < d < D:
        raise ValueError(f"{what} compresses D={D} dimensions to d={d}: it needs 0 < d < D "
                         "(keeping every dimension is a plain Gaussian base, not a compression)")


def check_rows(x, D, what="input"):
    """x must be a finite (B, D) floating tensor; returns it."""
    if not torch.is_tensor(x) or not x.is_floating_point():
        raise TypeError(f"{what} must be a floating-point tensor of shape (B, {D})")
    if x.dim() != 2 or x.shape[1] != D:
        raise ValueError(f"{what} must have shape (B, {D}), got {tuple(x.shape)}; flatten images first "
                         "(x.flatten(1))")
    if not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).any(1).nonzero().flatten()[:5].tolist()
        raise ValueError(f"{what} contains NaN or inf (rows {bad}...); check the data or the flow that "
                         "produced it (lower the learning rate)")
    return x


def std_normal_log_prob(z):
    """log N(z; 0, I) per row of a (B, d) tensor."""
    return -0.5 * (z * z).sum(1) - 0.5 * z.shape[1] * LOG_2PI


class PPCAStep(nn.Module):
    """Probabilistic PCA as a compressive flow step R^D -> R^d.

    Parameters
    ----------
    D, d : int
        Input and output dimensions, 0 < d < D.
    s2 : float
        Initial noise variance (> 0).
    sample_posterior : bool
        If True, ``forward`` in training mode outputs a posterior sample instead of the
        posterior mean (the contribution stays exact either way).
    seed : int
        Seed of the random initial loading matrix.

    Attributes
    ----------
    A : (D, d) parameter, mu : (D,) parameter, log_s2 : scalar parameter.
    """

    def __init__(self, D: int, d: int, s2: float = 1.0, sample_posterior: bool = False, seed: int = 0):
        super().__init__()
        check_dims(D, d, "PPCAStep")
        s2 = float(s2)
        if not (s2 > 0 and math.isfinite(s2)):
            raise ValueError(f"PPCAStep: the noise variance s2 must be finite and > 0, got {s2}")
        self.D, self.d, self.sample_posterior = D, d, sample_posterior
        g = torch.Generator().manual_seed(seed)
        self.A = nn.Parameter(0.1 * torch.randn(D, d, generator=g))
        self.mu = nn.Parameter(torch.zeros(D))
        self.log_s2 = nn.Parameter(torch.tensor(math.log(s2)))

    # ---------------------------------------------------------------- parameters
    @property
    def s2(self):
        return self.log_s2.exp()

    @torch.no_grad()
    def set_params(self, mu=None, A=None, s2=None):
        """Set any of mu (D,), A (D, d), s2 (> 0) with checks."""
        if mu is not None:
            mu = torch.as_tensor(mu, dtype=self.mu.dtype)
            if mu.shape != (self.D,) or not torch.isfinite(mu).all():
                raise ValueError(f"mu must be a finite vector of length {self.D}, got shape {tuple(mu.shape)}")
            self.mu.copy_(mu)
        if A is not None:
            A = torch.as_tensor(A, dtype=self.A.dtype)
            if A.shape != (self.D, self.d) or not torch.isfinite(A).all():
                raise ValueError(f"A must be a finite ({self.D}, {self.d}) matrix, got shape {tuple(A.shape)}")
            self.A.copy_(A)
        if s2 is not None:
            s2 = float(s2)
            if not (s2 > 0 and math.isfinite(s2)):
                raise ValueError(f"the noise variance s2 must be finite and > 0, got {s2}")
            self.log_s2.fill_(math.log(s2))
        return self

    def _chol_M(self):
        """Cholesky factor L of M = A^T A + s2 I_d (d x d)."""
        A, s2 = self.A, self.s2
        M = A.T @ A + s2 * torch.eye(self.d, dtype=A.dtype, device=A.device)
        L, info = torch.linalg.cholesky_ex(M)
        if int(info) != 0 or not torch.isfinite(L).all():
            raise FloatingPointError("PPCAStep: M = A^T A + s2 I is not positive definite (s2 underflowed or "
                                     "A has NaN); refit with fit() or lower the learning rate")
        return L

    # ---------------------------------------------------------------- densities
    def log_prob(self, x):
        """Exact log N(x; mu, A A^T + s2 I) per row.

        Parameters
        ----------
        x : (B, D) tensor

        Returns
        -------
        (B,) tensor
        """
        check_rows(x, self.D)
        s2, L = self.s2, self._chol_M()
        r = x - self.mu
        u = r @ self.A                                                    # (B, d): A^T r
        w = torch.linalg.solve_triangular(L, u.T, upper=False).T          # L^-1 A^T r
        quad = ((r * r).sum(1) - (w * w).sum(1)) / s2                     # r^T C^-1 r (Woodbury)
        logdet = (self.D - self.d) * self.log_s2 + 2 * torch.log(torch.diagonal(L)).sum()  # det lemma
        return -0.5 * (quad + logdet + self.D * LOG_2PI)

    def posterior(self, x):
        """p(z | z'=x) = N(M^-1 A^T (x - mu), s2 M^-1).

        Returns
        -------
        mean : (B, d), cov : (d, d)
        """
        check_rows(x, self.D)
        L = self._chol_M()
        mean = torch.cholesky_solve(((x - self.mu) @ self.A).T, L).T
        cov = self.s2 * torch.cholesky_inverse(L)
        return mean, cov

    def forward(self, x, context=None):
        """z' (B, D) -> (z (B, d), log p(z') - log N(z; 0, I_d))."""
        mean, cov = self.posterior(x)
        z = mean
        if self.sample_posterior and self.training:
            z = mean + torch.randn_like(mean) @ torch.linalg.cholesky(cov).T
        return z, self.log_prob(x) - std_normal_log_prob(z)

    def decode(self, z, noise: bool = False):
        """Mean A z + mu of p(z' | z) (plus N(0, s2 I) noise if ``noise``)."""
        check_rows(z, self.d, "latent z")
        x = z @ self.A.T + self.mu
        return x + self.s2.sqrt() * torch.randn_like(x) if noise else x

    def inverse(self, z, context=None):
        """z (B, d) -> (decoded mean (B, D), zeros (B,)): a compressive step has no inverse
        log-determinant; the zeros keep the (output, value) convention for sampling code."""
        return self.decode(z), z.new_zeros(z.shape[0])

    @torch.no_grad()
    def sample(self, n: int, generator=None):
        """n draws of z' ~ N(mu, A A^T + s2 I), shape (n, D)."""
        z = torch.randn(n, self.d, generator=generator, dtype=self.A.dtype)
        e = torch.randn(n, self.D, generator=generator, dtype=self.A.dtype)
        return (z @ self.A.T + self.mu + self.s2.sqrt() * e).to(self.A.device)

    def out_shape(self, shape):
        return (self.d,)

    # ---------------------------------------------------------------- fitting
    @torch.no_grad()
    def fit(self, x, method: str = "auto", oversample: int = 10, n_power_iter: int = 6, min_s2=None):
        """Closed-form maximum likelihood (Tipping & Bishop 1999, eqs. 7-8).

        mu = mean; with the eigenvalues l_1 >= ... of the sample covariance S and eigenvectors
        U: s2 = (tr S - sum_{i<=d} l_i) / (D - d), A = U_d (L_d - s2 I)^{1/2}.  Only the top-d
        singular pairs of the centred data are computed and tr S = ||X - mu||_F^2 / n, so S is
        never formed.

        Parameters
        ----------
        x : (n, D) tensor
        method : "auto" | "exact" | "randomized"
            "exact": thin SVD of the centred data (memory O(n D + min(n, D)^2));
            "randomized": ``torch.svd_lowrank`` with d + ``oversample`` columns and
            ``n_power_iter`` power iterations (memory O((n + D)(d + oversample))).
            "auto" picks "exact" when min(n, D) <= 1024.
        min_s2 : float, optional
            Floor for s2 (default 1e-9 * tr(S) / D): data lying in a d-dimensional
            subspace would give s2 = 0 and a singular C.

        Returns
        -------
        self
        """
        check_rows(x, self.D)
        n = x.shape[0]
        if n < 2:
            raise ValueError(f"fit needs at least 2 rows, got {n}")
        if method == "auto":
            method = "exact" if min(n, self.D) <= 1024 else "randomized"
        x = x.to(self.A.dtype)
        mu = x.mean(0)
        xc = x - mu
        trace = float((xc * xc).sum()) / n
        if method == "exact":
            sv = torch.linalg.svd(xc, full_matrices=False)
            s, V = sv.S[: self.d], sv.Vh[: self.d].T
        elif method == "randomized":
            q = min(self.d + oversample, n, self.D)
            _, s, V = torch.svd_lowrank(xc, q=q, niter=n_power_iter)
            s, V = s[: self.d], V[:, : self.d]
        else:
            raise ValueError(f"unknown fit method {method!r}; choose 'auto', 'exact' or 'randomized'")
        if s.shape[0] < self.d:
            # fewer than d + 1 rows: the centred data has rank < d, so the sample covariance has
            # (at least) d - len(s) zero eigenvalues among its top d; they get zero-length columns
            # of A (the Tipping-Bishop solution with those eigenvalues below s2)
            warnings.warn(f"PPCAStep.fit: {n} rows for a {self.d}-dimensional latent; the sample covariance "
                          f"has rank < {self.d}, so the fit is degenerate (s2 at the floor unless min_s2 is "
                          f"given); fit on more than d = {self.d} rows", RuntimeWarning, stacklevel=2)
            pad = self.d - s.shape[0]
            s = torch.cat([s, s.new_zeros(pad)])
            V = torch.cat([V, V.new_zeros(V.shape[0], pad)], 1)
        lam = s * s / n
        floor = 1e-9 * max(trace / self.D, 1e-300) if min_s2 is None else float(min_s2)
        s2 = max((trace - float(lam.sum())) / (self.D - self.d), floor)
        if s2 == floor:
            warnings.warn(f"PPCAStep.fit: the data is (nearly) {self.d}-dimensional; s2 set to the floor {floor:g}",
                          RuntimeWarning, stacklevel=2)
        A = V * (lam - s2).clamp_min(0).sqrt()
        return self.set_params(mu=mu, A=A, s2=s2)

    @torch.no_grad()
    def fit_em(self, x, n_iter: int = 500, batch_size: int | None = None, tol: float = 1e-12):
        """Maximum likelihood by EM, streaming the data in mini-batches (Tipping & Bishop
        1999, section 3.2).  Each iteration accumulates, over batches of ``batch_size`` rows,
        sum r E[z]^T, sum E[z z^T] and sum |r|^2 (r = x - mu), then sets
        A = (sum r E[z]^T)(sum E[z z^T])^-1 and s2 = (sum |r|^2 - tr(A^T sum r E[z]^T)) / (n D).
        mu is the data mean (its maximum likelihood value for every A, s2).

        Parameters
        ----------
        x : (n, D) tensor
        n_iter : int
            Maximum number of EM iterations.
        batch_size : int, optional
            Rows per mini-batch (default: all).
        tol : float
            Stop when the mean log-likelihood rises by less than this.

        Returns
        -------
        list of float
            Mean log-likelihood before each iteration (non-decreasing: EM's guarantee).
        """
        check_rows(x, self.D)
        n = x.shape[0]
        bs = batch_size or n
        x = x.to(self.A.dtype)
        mu = sum(x[i:i + bs].sum(0) for i in range(0, n, bs)) / n
        self.mu.copy_(mu)
        history = []
        for _ in range(n_iter):
            L = self._chol_M()
            Minv = torch.cholesky_inverse(L)
            s2 = float(self.s2)
            # one pass: Sxu = sum r u^T, Suu = sum u u^T with u = A^T r; E[z] = M^-1 u
            Sxu = torch.zeros_like(self.A)
            Suu = torch.zeros(self.d, self.d, dtype=self.A.dtype, device=self.A.device)
            sxx = 0.0
            for i in range(0, n, bs):
                r = x[i:i + bs] - mu
                u = r @ self.A
                Sxu += r.T @ u
                Suu += u.T @ u
                sxx += float((r * r).sum())
            # mean log-likelihood from the same statistics (Woodbury + determinant lemma)
            logdet = (self.D - self.d) * math.log(s2) + 2 * float(torch.log(torch.diagonal(L)).sum())
            quad = (sxx - float((Minv * Suu).sum())) / s2
            history.append(-0.5 * (quad / n + logdet + self.D * LOG_2PI))
            if len(history) > 1 and history[-1] - history[-2] < tol:
                break
            Sxz = Sxu @ Minv                                   # sum r E[z]^T
            Szz = n * s2 * Minv + Minv @ Suu @ Minv            # sum E[z z^T]
            A = torch.linalg.solve(Szz, Sxz.T).T
            s2_new = (sxx - float((A * Sxz).sum())) / (n * self.D)
            self.set_params(A=A, s2=s2_new)
        return history
