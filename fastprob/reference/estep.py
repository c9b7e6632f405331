"""NumPy reference of the DAPPER E-step (dapper-model.md sections 3.2-3.3).

The compiled kernel ``kernels/numba/estep.py`` has the same signature and must agree
with this to 1e-9.  One document at a time, vectorized over topics and personas.

Notation: ``ebT`` is exp(E[log beta]) transposed, shape (V, K), so that
phi_jk ∝ exp(m_k) * ebT[w_j, k] needs no exponential per token; ``elogk`` is
E[log kappa] per author row (A, P); ``alpha`` (T, P, K) the persona means and
``alpha_sq`` (T, P) = ||alpha_tp||^2 + tr(Sigma_tp).
"""
from __future__ import annotations

import numpy as np


# Floor of phi's normalizer (as scikit-learn's EPS): at large K with a small eta, exp(E[log beta])
# underflows to 0 for every topic of a rare word, and 1/0 would turn the statistics into NaN.
PHI_EPS = float(np.finfo(np.float64).eps)


def _phi_tau(m, eb, cnts, elogk_a, alpha_t, alpha_sq_t, s2):
    shift = m.max()
    em = np.exp(m - shift)
    inv_norm = 1.0 / (eb @ em + PHI_EPS)
    phisum = em * ((cnts * inv_norm) @ eb)                  # sum_j c_j phi_jk
    logits = elogk_a + (alpha_t @ m - 0.5 * alpha_sq_t) / s2
    tau = np.exp(logits - logits.max())
    return shift, inv_norm, phisum, tau / tau.sum()


MAX_JUMP = 5.0  # largest SQUAREM extrapolation beyond the plain double step, per coordinate


def _cvi_grad(N, m, v, phisum, tau, alpha_t):
    x = m + 0.5 * v
    e = np.exp(x - x.max())  # e_k / zeta is scale-free; the shift prevents overflow
    zeta = e.sum()
    return phisum - (N / zeta) * e * (1.0 - m), -(N / (2.0 * zeta)) * e, tau @ alpha_t


def _cvi_map(m, v, eb, cnts, N, elogk_a, alpha_t, alpha_sq_t, s2):
    _, _, phisum, tau = _phi_tau(m, eb, cnts, elogk_a, alpha_t, alpha_sq_t, s2)
    g1, g2, atau = _cvi_grad(N, m, v, phisum, tau, alpha_t)
    v_new = -0.5 / (-0.5 / s2 + g2)
    return (atau / s2 + g1) * v_new, v_new


ARMIJO = 1e-4       # sufficient-increase constant of the Newton line searches
MAX_HALVINGS = 40   # a step shorter than 2^-40 of the Newton step is no step


def mv_objective(m, v, n, atau, N, s2):
    """The part of L_d that depends on (m, v) with phi and tau held fixed (zeta at its optimum).

    ``n`` (K,) = sum_j c_j phi_jk, ``atau`` (K,) = A_t tau.  Concave in (m, v).
    """
    x = m + 0.5 * v
    c = x.max()
    lse = c + np.log(np.exp(x - c).sum())
    return float(np.sum(-(m * m + v - 2.0 * m * atau) / (2.0 * s2) + 0.5 * np.log(v) + n * m) - N * lse)


def _dr1_solve(dinv, p, c, g):
    """(diag(1/dinv) - c p p^T)^-1 g by Sherman-Morrison (the matrix is positive definite)."""
    dg, dp = dinv * g, dinv * p
    return dg + dp * (c * (p @ dg) / (1.0 - c * (p @ dp)))


def newton_mv(m, v, n, atau, N, s2):
    """One exact Newton step in m, then one in v, each with a backtracking line search on
    :func:`mv_objective`: never decreases it.  Returns the new (m, v).

    The Hessians are diagonal plus rank one: in m, -H = diag(1/s2 + N p) - N p p^T with
    p = softmax(m + v/2); in v, -H = diag(1/(2 v^2) + N p / 4) - (N/4) p p^T.  The rank-one
    term is the curvature along the softmax-invariant direction (all m_k shifted together),
    which the CVI step (a diagonal Newton step) overestimates by the factor 1 + s2 N p_k.
    """
    for which in (0, 1):
        x = m + 0.5 * v
        p = np.exp(x - x.max())
        p /= p.sum()
        f0 = mv_objective(m, v, n, atau, N, s2)
        if which == 0:
            g = (atau - m) / s2 + n - N * p
            d = _dr1_solve(1.0 / (1.0 / s2 + N * p), p, N, g)
        else:
            g = -0.5 / s2 + 0.5 / v - 0.5 * N * p
            d = _dr1_solve(1.0 / (0.5 / (v * v) + 0.25 * N * p), p, 0.25 * N, g)
        slope = float(g @ d)
        if not slope > 0.0:
            continue
        t = 1.0
        for _ in range(MAX_HALVINGS):
            if which == 0:
                mn, vn = m + t * d, v
            else:
                mn, vn = m, v + t * d
            if np.all(vn > 0.0) and mv_objective(mn, vn, n, atau, N, s2) >= f0 + ARMIJO * t * slope:
                m, v = mn, vn
                break
            t *= 0.5
    return m, v


def local_step(ids, cnts, elogk_a, alpha_t, alpha_sq_t, ebT, doc_noise, tol, max_iters, r, solver="newton",
               m0=None, v0=None):
    """Fit one document's local parameters; returns (m, v, tau, inv_norm, shift, n_iter).

    ``inv_norm`` (U,) and ``shift`` give phi_jk = exp(m_k - shift) * ebT[w_j, k] * inv_norm_j.
    solver "newton": block coordinate ascent - phi, zeta and tau exactly, then exact Newton
    steps on the concave (m, v) problem with line searches: L_d never decreases.
    solver "cvi": damped CVI of spec 3.2 (phi, zeta, tau, then the step on q(theta)).
    solver "squarem": the undamped CVI map with SQUAREM extrapolation in (m, log v).
    ``m0``, ``v0``: a warm start (default m = 0, v = doc_noise).
    """
    K = alpha_t.shape[1]
    s2 = doc_noise
    N = float(cnts.sum())
    eb = ebT[ids]  # (U, K)
    m = np.zeros(K) if m0 is None else np.array(m0, dtype=np.float64)
    v = np.full(K, s2) if v0 is None else np.array(v0, dtype=np.float64)
    n_iter = 0
    if solver == "newton":
        for it in range(max_iters):
            _, _, phisum, tau = _phi_tau(m, eb, cnts, elogk_a, alpha_t, alpha_sq_t, s2)
            m_new, v = newton_mv(m, v, phisum, tau @ alpha_t, N, s2)
            n_iter = it + 1
            diff = np.abs(m_new - m).mean()
            m = m_new
            if diff < tol:
                break
    elif solver == "cvi":
        lam1 = np.zeros(K)
        lam2 = np.zeros(K)
        for it in range(max_iters):
            _, _, phisum, tau = _phi_tau(m, eb, cnts, elogk_a, alpha_t, alpha_sq_t, s2)
            g1, g2, atau = _cvi_grad(N, m, v, phisum, tau, alpha_t)
            n_iter = it + 1
            lam1 = (1.0 - r) * lam1 + r * g1
            lam2 = (1.0 - r) * lam2 + r * g2
            v_new = -0.5 / (-0.5 / s2 + lam2)
            m_new = (atau / s2 + lam1) * v_new
            diff = np.abs(m_new - m).mean()
            m, v = m_new, v_new
            if diff < tol:
                break
    elif solver == "squarem":
        args = (eb, cnts, N, elogk_a, alpha_t, alpha_sq_t, s2)
        # convergence is judged on the plain steps x -> F(x); the answer is then x itself
        while n_iter < max_iters:
            m1, v1 = _cvi_map(m, v, *args)
            n_iter += 1
            if np.abs(m1 - m).mean() < tol:
                break
            m2, v2 = _cvi_map(m1, v1, *args)
            n_iter += 1
            if np.abs(m2 - m1).mean() < tol:
                m, v = m1, v1
                break
            x0 = np.concatenate([m, np.log(v)])
            x1 = np.concatenate([m1, np.log(v1)])
            x2 = np.concatenate([m2, np.log(v2)])
            rv, qv = x1 - x0, x2 - 2.0 * x1 + x0
            rr, qq = float(rv @ rv), float(qv @ qv)
            step = min(-np.sqrt(rr / qq), -1.0) if qq > 0 else -1.0
            xn = x0 - 2.0 * step * rv + step * step * qv
            if np.all(np.abs(xn - x2) <= MAX_JUMP):
                mx, vx = xn[:K], np.exp(np.minimum(xn[K:], 50.0))
            else:  # extrapolation left the safe region: take the plain double step
                mx, vx = m2, v2
            m, v = _cvi_map(mx, vx, *args)
            n_iter += 1
    else:
        raise ValueError(f"unknown local solver {solver!r}; use 'cvi' or 'squarem'")
    shift, inv_norm, _, tau = _phi_tau(m, eb, cnts, elogk_a, alpha_t, alpha_sq_t, s2)
    return m, v, tau, inv_norm, shift, n_iter


def doc_elbo(m, v, tau, cnts, inv_norm, shift, elogk_a, alpha_t, alpha_sq_t, doc_noise):
    """L_d (section 3.1) at optimal phi and zeta, including the Gaussian constants."""
    K = m.shape[0]
    s2 = doc_noise
    N = cnts.sum()
    pos = tau > 0
    ent = np.sum(tau * elogk_a) - np.sum(tau[pos] * np.log(tau[pos]))
    quad = np.sum(m * m + v) - 2.0 * m @ (tau @ alpha_t) + tau @ alpha_sq_t
    x = m + 0.5 * v
    log_zeta = x.max() + np.log(np.exp(x - x.max()).sum())
    words = np.sum(cnts * (shift - np.log(inv_norm)))
    return ent - quad / (2 * s2) + 0.5 * np.log(v).sum() + words - N * log_zeta \
        - 0.5 * K * np.log(s2) + 0.5 * K


def estep(indptr, indices, counts, authors, times, ebT, elogk, alpha, alpha_sq, doc_noise,
          local_tol, max_iters, step_size, m_out, v_out, tau_out, collect_beta=True, n_threads=None,
          solver="newton", warm_start=False):
    """Run the local step on every document and collect sufficient statistics.

    Parameters
    ----------
    indptr, indices, counts : CSR of shape (D, V)
    authors : int array (D,), rows of ``elogk``;  times : int array (D,), rows of ``alpha``
    ebT : (V, K)  exp(E[log beta]).T;  elogk : (A, P);  alpha : (T, P, K);  alpha_sq : (T, P)
    doc_noise : float, sigma_d^2
    local_tol, max_iters, step_size : convergence tolerance on mean |dm|, cap, CVI step r
    m_out, v_out : (D, K) or (0, K) arrays; tau_out : (D, P) or (0, P) - filled if D rows
    collect_beta : bool, whether to accumulate S_beta
    n_threads : ignored (same signature as the compiled kernel)
    solver : "newton" (monotone block coordinate ascent), "cvi" (spec 3.2, damped) or
        "squarem" (the CVI map, extrapolated)
    warm_start : bool, start each document from ``m_out[d]``, ``v_out[d]`` (which must then
        have D rows) instead of m = 0, v = doc_noise

    Returns
    -------
    S_betaT : (V, K) (zeros when not collected), S_kappa : (A, P), n_tp : (T, P),
    M : (T, P, K), elbo : float (sum of L_d), iters : int64 (D,)
    """
    V, K = ebT.shape
    A, P = elogk.shape
    T = alpha.shape[0]
    D = indptr.shape[0] - 1
    S_betaT = np.zeros((V, K))
    S_kappa = np.zeros((A, P))
    n_tp = np.zeros((T, P))
    M = np.zeros((T, P, K))
    iters = np.zeros(D, dtype=np.int64)
    keep = m_out.shape[0] == D and D > 0
    if warm_start and not keep:
        raise ValueError("warm_start needs m_out and v_out with one row per document")
    elbo = 0.0
    for d in range(D):
        s, e = indptr[d], indptr[d + 1]
        ids, cnts = indices[s:e], counts[s:e].astype(np.float64)
        a, t = authors[d], times[d]
        m, v, tau, inv_norm, shift, it = local_step(
            ids, cnts, elogk[a], alpha[t], alpha_sq[t], ebT, doc_noise, local_tol, max_iters, step_size,
            solver, *((m_out[d], v_out[d]) if warm_start else (None, None)))
        iters[d] = it
        if collect_beta and e > s:
            em = np.exp(m - shift)
            np.add.at(S_betaT, ids, (cnts * inv_norm)[:, None] * ebT[ids] * em[None, :])
        S_kappa[a] += tau
        n_tp[t] += tau
        M[t] += tau[:, None] * m[None, :]
        elbo += doc_elbo(m, v, tau, cnts, inv_norm, shift, elogk[a], alpha[t], alpha_sq[t], doc_noise)
        if keep:
            m_out[d], v_out[d], tau_out[d] = m, v, tau
    return S_betaT, S_kappa, n_tp, M, elbo, iters
