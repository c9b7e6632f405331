"""The per-document objective L_d of dapper-model.md section 3.1, written plainly.

Independent of the E-step code (explicit phi matrix, explicit zeta, no tricks); the
oracle tests differentiate and optimize this function directly.
"""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp


def doc_objective(m, v, tau, phi, zeta, ids, cnts, elogk_a, alpha_t, var_t, elogbeta, s2):
    """L_d for one document (constants included).

    m, v : (K,)  tau : (P,)  phi : (U, K)  zeta : float  ids, cnts : (U,)
    elogk_a : (P,)  alpha_t : (P, K) means  var_t : (P,) variances per coordinate
    elogbeta : (K, V)  s2 : document noise variance
    """
    K = m.shape[0]
    N = cnts.sum()
    t1 = np.sum(tau * (elogk_a - np.log(np.where(tau > 0, tau, 1.0))))
    a_tau = alpha_t.T @ tau
    e_alpha_sq = np.sum(alpha_t ** 2, axis=1) + K * var_t
    bracket = np.sum(m ** 2 + v) - 2.0 * np.sum(m * a_tau) + np.sum(tau * e_alpha_sq)
    t2 = -bracket / (2.0 * s2) - 0.5 * K * np.log(s2) + 0.5 * K
    t3 = 0.5 * np.sum(np.log(v))
    lp = np.log(np.where(phi > 0, phi, 1.0))
    t4 = np.sum(cnts[:, None] * phi * (m[None, :] + elogbeta[:, ids].T - lp))
    t5 = -N * (np.sum(np.exp(m + v / 2.0)) / zeta - 1.0 + np.log(zeta))
    return t1 + t2 + t3 + t4 + t5


def optimal_locals(m, v, ids, elogk_a, alpha_t, var_t, elogbeta, s2):
    """phi, zeta and tau maximizing L_d for given (m, v), in closed form."""
    K = m.shape[0]
    logits = m[None, :] + elogbeta[:, ids].T
    phi = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))
    zeta = np.sum(np.exp(m + v / 2.0))
    e_alpha_sq = np.sum(alpha_t ** 2, axis=1) + K * var_t
    lt = elogk_a + (alpha_t @ m - 0.5 * e_alpha_sq) / s2
    tau = np.exp(lt - logsumexp(lt))
    return phi, zeta, tau


def profiled_objective(m, v, ids, cnts, elogk_a, alpha_t, var_t, elogbeta, s2):
    """L_d with phi, zeta, tau at their optimum for (m, v)."""
    phi, zeta, tau = optimal_locals(m, v, ids, elogk_a, alpha_t, var_t, elogbeta, s2)
    return doc_objective(m, v, tau, phi, zeta, ids, cnts, elogk_a, alpha_t, var_t, elogbeta, s2)
