"""DAPPER global updates (dapper-model.md section 3.4) and the global ELBO terms.

The alpha-step: for every topic coordinate k the persona means maximize a quadratic whose
precision is the same for all k, so one factorization serves all K right-hand sides.
With rho = 0 it separates into P tridiagonal systems (the Kalman filter + RTS smoother
solution); with rho > 0 it is one block-tridiagonal system of size T*P (blocks P x P),
solved as a symmetric banded system of bandwidth P.  The variances are the smoother's
(the penalty touches means only), computed from the tridiagonal precision by a selected
inversion (diagonal and first off-diagonal of its inverse).
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import solveh_banded
from scipy.special import digamma, gammaln


def prior_precision(time_values, process_noise: float, sigma0_sq: float):
    """Tridiagonal precision of the Brownian-motion prior of one chain: (diag (T,), off (T-1,))."""
    T = time_values.shape[0]
    gaps = np.diff(time_values)
    q = 1.0 / (process_noise * gaps)  # precision of each increment
    diag = np.zeros(T)
    diag[0] = 1.0 / sigma0_sq
    diag[:-1] += q
    diag[1:] += q
    return diag, -q


def tridiag_selected_inverse(diag, off):
    """For SPD tridiagonal matrices (batched on the last axis... leading axes), return
    the diagonal and first off-diagonal of the inverse, and log det.

    ``diag`` (..., T), ``off`` (..., T-1).  LDL^T factorization, then the Takahashi
    recursion S_ii = 1/d_i + l_{i+1}^2 S_{i+1,i+1}, S_{i,i+1} = -l_{i+1} S_{i+1,i+1}.
    """
    T = diag.shape[-1]
    d = np.empty_like(diag)
    l = np.zeros_like(diag)  # l[i] multiplies row i-1 into row i
    d[..., 0] = diag[..., 0]
    for i in range(1, T):
        l[..., i] = off[..., i - 1] / d[..., i - 1]
        d[..., i] = diag[..., i] - l[..., i] * off[..., i - 1]
    if np.any(d <= 0):
        raise np.linalg.LinAlgError("precision matrix is not positive definite")
    S = np.empty_like(diag)
    So = np.empty_like(off)
    S[..., T - 1] = 1.0 / d[..., T - 1]
    for i in range(T - 2, -1, -1):
        So[..., i] = -l[..., i + 1] * S[..., i + 1]
        S[..., i] = 1.0 / d[..., i] + l[..., i + 1] ** 2 * S[..., i + 1]
    return S, So, np.log(d).sum(axis=-1)


def alpha_system(n_tp, M_tpk, time_values, process_noise, doc_noise, mu0, sigma0_sq, rho):
    """The alpha-step's banded precision (lower form, (P+1, T*P)) and right-hand sides (T*P, K).

    Unknowns are ordered t-major: index t*P + p.
    """
    T, P = n_tp.shape
    K = M_tpk.shape[2]
    pd, po = prior_precision(time_values, process_noise, sigma0_sq)
    ab = np.zeros((P + 1, T * P))
    ab[0] = (pd[:, None] + n_tp / doc_noise).ravel()
    if T > 1:
        ab[P, : (T - 1) * P] = np.repeat(po, P)  # couples (t, p) with (t+1, p)
    if rho > 0:
        sq = np.sqrt(np.maximum(n_tp, 0.0))
        for lag in range(1, P):
            # A[(t, p+lag), (t, p)] = rho/s2 * sqrt(n[t,p] n[t,p+lag])
            ab[lag] = (np.concatenate([sq[:, lag:] * sq[:, :-lag], np.zeros((T, lag))], axis=1)
                       * (rho / doc_noise)).ravel()
    rhs = (M_tpk / doc_noise).reshape(T * P, K).copy()
    rhs[:P] += mu0 / sigma0_sq
    return ab, rhs


def _trim_bands(ab):
    """Drop band rows that reach past the matrix (one time step: the (t, t+1) band is empty);
    scipy's banded solver rejects more bands than the order allows."""
    n = ab.shape[1]
    return ab[:n] if ab.shape[0] > n else ab


def banded_matvec(ab, x):
    """A @ x for the symmetric banded matrix in lower form ``ab``."""
    bw = ab.shape[0] - 1
    y = ab[0][:, None] * x
    for lag in range(1, bw + 1):
        band = ab[lag, :-lag][:, None]
        y[lag:] += band * x[:-lag]
        y[:-lag] += band * x[lag:]
    return y


def alpha_objective(ab, rhs, alpha_flat):
    """The penalized alpha-objective (up to a constant): sum_k -1/2 a_k' A a_k + a_k' b_k."""
    return float(-0.5 * np.sum(alpha_flat * banded_matvec(ab, alpha_flat)) + np.sum(alpha_flat * rhs))


def alpha_step(n_tp, M_tpk, time_values, process_noise, doc_noise, mu0=0.0, sigma0_sq=1.0, rho=0.0):
    """Exact alpha-step: returns (means (T, P, K), variances (T, P), info dict).

    ``info`` has the banded system and the solve's relative residual (for the oracles).
    """
    if not 0.0 <= rho < 1.0:
        raise ValueError(f"regularization rho must satisfy 0 <= rho < 1 (got {rho}); "
                         "rho >= 1 makes the alpha-problem indefinite")
    T, P = n_tp.shape
    K = M_tpk.shape[2]
    ab, rhs = alpha_system(n_tp, M_tpk, time_values, process_noise, doc_noise, mu0, sigma0_sq, rho)
    ab = _trim_bands(ab)
    if rho > 0:
        # The penalty acts on the centred trajectories only (see penalty()): the part of the
        # right-hand side along the all-ones topic direction is solved without it.
        ab0 = _trim_bands(alpha_system(n_tp, M_tpk[:, :, :1], time_values, process_noise, doc_noise, mu0,
                                       sigma0_sq, 0.0)[0])
        mean = rhs.mean(axis=1, keepdims=True)
        x = solveh_banded(ab, rhs - mean, lower=True, check_finite=False) \
            + solveh_banded(ab0, mean, lower=True, check_finite=False)
        xm = x.mean(axis=1, keepdims=True)
        Ax = banded_matvec(ab, x - xm) + banded_matvec(ab0, np.repeat(xm, K, axis=1))
    else:
        ab0 = ab
        x = solveh_banded(ab, rhs, lower=True, check_finite=False)
        Ax = banded_matvec(ab, x)
    res = np.linalg.norm(Ax - rhs) / max(np.linalg.norm(rhs), 1e-300)
    pd, po = prior_precision(time_values, process_noise, sigma0_sq)
    diag = pd[None, :] + (n_tp / doc_noise).T          # (P, T), rho = 0 precision per persona
    off = np.broadcast_to(po, (P, max(T - 1, 0)))
    S, So, logdet_post = tridiag_selected_inverse(diag, off)
    info = {"ab": ab, "ab0": ab0, "rhs": rhs, "residual": float(res), "cov_off": So.T,
            "logdet_post": logdet_post}
    return x.reshape(T, P, K), S.T.copy(), info


def alpha_prior_var(time_values, process_noise, sigma0_sq):
    """Smoother variances with no data (initialization), (T,)."""
    pd, po = prior_precision(time_values, process_noise, sigma0_sq)
    S, _, _ = tridiag_selected_inverse(pd[None], po[None])
    return S[0]


def alpha_elbo(alpha, var, cov_off, logdet_post, time_values, process_noise, sigma0_sq, mu0):
    """E_q[log p(alpha)] - E_q[log q(alpha)] summed over personas and topic coordinates."""
    T, P, K = alpha.shape
    pd, po = prior_precision(time_values, process_noise, sigma0_sq)
    dev = alpha - mu0
    quad = np.einsum("t,tpk->", pd, dev * dev)
    if T > 1:
        quad += 2.0 * np.einsum("t,tpk->", po, dev[:-1] * dev[1:])
    tr = np.sum(pd[:, None] * var) + (2.0 * np.sum(po[:, None] * cov_off) if T > 1 else 0.0)
    logdet_prior = -np.log(sigma0_sq) - np.sum(np.log(process_noise * np.diff(time_values)))
    per_k = -0.5 * tr + 0.5 * P * logdet_prior - 0.5 * np.sum(logdet_post) + 0.5 * T * P
    return float(-0.5 * quad + K * per_k)


def dirichlet_elbo(lam, prior):
    """sum_rows E_q[log Dir(x | prior)] - E_q[log Dir(x | lam)] (rows of ``lam``)."""
    rows, n = lam.shape
    el = digamma(lam) - digamma(lam.sum(axis=1, keepdims=True))
    out = rows * (gammaln(n * prior) - n * gammaln(prior))
    out += np.sum((prior - lam) * el)
    out += np.sum(gammaln(lam)) - np.sum(gammaln(lam.sum(axis=1)))
    return float(out)


def fit_symmetric_dirichlet(lam, lo: float = 1e-8, hi: float = 1e3) -> float:
    """Empirical Bayes for a symmetric Dirichlet prior: the eta maximizing
    sum_rows E_q[log Dir(x | eta)] = rows (lgamma(n eta) - n lgamma(eta)) + (eta - 1) s,
    s = sum of E_q[log x] over all cells, for q = Dir(lam) per row.  The objective is concave
    in eta (n trigamma(n eta) < trigamma(eta) for n > 1), so its stationary point, found by
    bracketing in log eta, is the maximum; it is clipped to [lo, hi]."""
    from scipy.optimize import brentq

    rows, n = lam.shape
    s = float(np.sum(digamma(lam) - digamma(lam.sum(axis=1, keepdims=True))))

    def grad(u):  # d/d eta at eta = exp(u); its sign is that of d/du
        eta = np.exp(u)
        return rows * n * (digamma(n * eta) - digamma(eta)) + s

    a, b = np.log(lo), np.log(hi)
    if grad(b) >= 0:
        return float(hi)
    if grad(a) <= 0:
        return float(lo)
    return float(np.exp(brentq(grad, a, b, xtol=1e-12, rtol=1e-12)))


def penalty(alpha, n_tp, doc_noise):
    """R = sum_t 1/(2 s2) sum_p sum_{q != p} sqrt(n_tp n_tq) c_tp . c_tq, c = centred alpha.

    Centred: c_tp = alpha_tp - mean_k(alpha_tpk).  Shifting all topic coordinates of a
    trajectory (and its documents' theta) together changes no word probability, so nothing
    in the data pins that direction; on uncentred trajectories the penalty rewards moving
    personas apart along it without bound (the regularized ELBO is unbounded above).
    """
    alpha = alpha - alpha.mean(axis=2, keepdims=True)
    sq = np.sqrt(np.maximum(n_tp, 0.0))
    s = np.einsum("tp,tpk->tk", sq, alpha)                  # sum_p sqrt(n) alpha
    total = np.sum(s * s) - np.sum(n_tp[:, :, None] * alpha * alpha)
    return float(total / (2.0 * doc_noise))


def expect_log_dirichlet(x):
    return digamma(x) - digamma(x.sum(axis=1, keepdims=True))
