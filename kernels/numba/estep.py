"""Numba-parallel DAPPER E-step (same signature as ``fastprob.reference.estep.estep``).

Documents are cut into one contiguous chunk per thread, balanced by non-zeros (plus a
per-document overhead), and ``prange`` runs over chunks.  Each chunk owns its statistic
buffers and its work arrays (allocated once per chunk, never per document); a serial
reduce sums the chunk buffers in chunk order after the parallel loop, so there are no
shared writes.  The per-token work avoids exponentials: phi_jk ∝ exp(m_k) * ebT[w_j, k]
with ebT = exp(E[log beta]).T laid out (V, K) so a word's row is contiguous.

Where the time goes (profiled at K = 50, ~95 distinct words per document, ~26 local
passes): the word pass, two matrix-vector products with the document's (U, K) block of
ebT per local pass, and the K-long exponentials.  Hence: the block is gathered into a
contiguous per-chunk buffer once per document (the passes then stream it from L1/L2
instead of hopping through a 2 MB table); the pass walks it once, four words at a time
(the four dot products share the loads of exp(m), and their contributions to the topic
sums are added while the rows are still in cache); and exp/log are the vectorizable
versions of ``vecmath``.  Documents with more than ``GATHER_ROWS`` distinct words read
their rows in place, so the buffer stays small.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .jitcache import CACHE
from .vecmath import vexp, vlog

# Reassociation lets LLVM vectorize the per-word dot products over topics; NaN/inf
# semantics stay strict.  Results still match the reference to ~1e-13 (tested to 1e-9).
# error_model="numpy": no zero-division checks, which would keep loops scalar (the
# divisors are sums of positive terms).
FASTMATH = {"reassoc", "contract"}
FLAGS = dict(cache=CACHE, nogil=True, fastmath=FASTMATH, error_model="numpy")
MAX_JUMP = 5.0  # largest SQUAREM extrapolation beyond the plain double step, per coordinate
GATHER_ROWS = 4096
PHI_EPS = 2.220446049250313e-16  # floor of phi's normalizer, as the reference (underflow at large K)  # documents with more distinct words are not copied into the buffer


# The building blocks work on four rows at a time: a K-long dot product is a reduction
# chain, latency-bound on its own, so four independent rows share the loads of x (measured
# 4x over one row at a time); an axpy of four rows needs a quarter of the loads and stores of out.
# Rows are indexed as R[i, k], not through row views, which would cost reference counting.
@njit(inline="always", **FLAGS)
def _dot4(R, i0, i1, i2, i3, x):
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    for k in range(x.shape[0]):
        xk = x[k]
        a0 += R[i0, k] * xk
        a1 += R[i1, k] * xk
        a2 += R[i2, k] * xk
        a3 += R[i3, k] * xk
    return a0, a1, a2, a3


@njit(inline="always", **FLAGS)
def _dot1(R, i, x):
    a = 0.0
    for k in range(x.shape[0]):
        a += R[i, k] * x[k]
    return a


@njit(inline="always", **FLAGS)
def _axpy4(R, i0, i1, i2, i3, c0, c1, c2, c3, out):
    for k in range(out.shape[0]):
        out[k] += R[i0, k] * c0 + R[i1, k] * c1 + R[i2, k] * c2 + R[i3, k] * c3


@njit(inline="always", **FLAGS)
def _axpy1(R, i, c, out):
    for k in range(out.shape[0]):
        out[k] += R[i, k] * c


@njit(inline="always", **FLAGS)
def _word_pass(R, ridx, cnt, em, inv_norm, phisum):
    """inv_norm_j = 1 / (R[ridx_j] . em) and phisum = sum_j cnt_j inv_norm_j R[ridx_j]; each
    group of four rows is added to phisum right after its dot products, while in L1."""
    u = ridx.shape[0]
    phisum[:] = 0.0
    j = 0
    while j + 4 <= u:
        i0, i1, i2, i3 = ridx[j], ridx[j + 1], ridx[j + 2], ridx[j + 3]
        a0, a1, a2, a3 = _dot4(R, i0, i1, i2, i3, em)
        r0, r1, r2, r3 = 1.0 / (a0 + PHI_EPS), 1.0 / (a1 + PHI_EPS), 1.0 / (a2 + PHI_EPS), 1.0 / (a3 + PHI_EPS)
        inv_norm[j], inv_norm[j + 1], inv_norm[j + 2], inv_norm[j + 3] = r0, r1, r2, r3
        _axpy4(R, i0, i1, i2, i3, cnt[j] * r0, cnt[j + 1] * r1, cnt[j + 2] * r2, cnt[j + 3] * r3, phisum)
        j += 4
    while j < u:
        r0 = 1.0 / (_dot1(R, ridx[j], em) + PHI_EPS)
        inv_norm[j] = r0
        _axpy1(R, ridx[j], cnt[j] * r0, phisum)
        j += 1


@njit(inline="always", **FLAGS)
def _rows_dot(A, x, out):
    """out_i = A[i] . x."""
    n = A.shape[0]
    i = 0
    while i + 4 <= n:
        out[i], out[i + 1], out[i + 2], out[i + 3] = _dot4(A, i, i + 1, i + 2, i + 3, x)
        i += 4
    while i < n:
        out[i] = _dot1(A, i, x)
        i += 1


@njit(inline="always", **FLAGS)
def _rows_axpy(A, w, out):
    """out = sum_i w_i A[i]."""
    n = A.shape[0]
    out[:] = 0.0
    i = 0
    while i + 4 <= n:
        _axpy4(A, i, i + 1, i + 2, i + 3, w[i], w[i + 1], w[i + 2], w[i + 3], out)
        i += 4
    while i < n:
        _axpy1(A, i, w[i], out)
        i += 1


@njit(inline="always", **FLAGS)
def _phi_tau(R, ridx, cnt, elogk_a, alpha_t, asq_t, s2, m, em, phisum, tau, inv_norm):
    """phi normalizers, sum_j c_j phi_jk and tau at the current m; returns the shift max(m)."""
    K = m.shape[0]
    P = tau.shape[0]
    shift = m[0]
    for k in range(1, K):
        shift = max(shift, m[k])
    for k in range(K):
        em[k] = vexp(m[k] - shift)
    _word_pass(R, ridx, cnt, em, inv_norm, phisum)
    for k in range(K):
        phisum[k] *= em[k]
    _rows_dot(alpha_t, m, tau)
    mx = -1e300
    for p in range(P):
        tau[p] = elogk_a[p] + (tau[p] - 0.5 * asq_t[p]) / s2
        mx = max(mx, tau[p])
    tot = 0.0
    for p in range(P):
        tau[p] = vexp(tau[p] - mx)
        tot += tau[p]
    for p in range(P):
        tau[p] /= tot
    return shift


@njit(inline="always", **FLAGS)
def _cvi_grad(N, alpha_t, m, v, phisum, tau, ex, atau, g1, g2):
    """The CVI gradients g1, g2 of the non-conjugate part, and A_t tau."""
    K = m.shape[0]
    P = tau.shape[0]
    # e_k / zeta is scale-free: shift the exponent so large m cannot overflow
    c = m[0] + 0.5 * v[0]
    for k in range(1, K):
        c = max(c, m[k] + 0.5 * v[k])
    zeta = 0.0
    for k in range(K):
        ex[k] = vexp(m[k] + 0.5 * v[k] - c)
        zeta += ex[k]
    _rows_axpy(alpha_t, tau, atau)
    for k in range(K):
        g1[k] = phisum[k] - (N / zeta) * ex[k] * (1.0 - m[k])
        g2[k] = -(N / (2.0 * zeta)) * ex[k]


@njit(inline="always", **FLAGS)
def _cvi_map(R, ridx, cnt, N, elogk_a, alpha_t, asq_t, s2, m, v, m_new, v_new,
             em, ex, phisum, tau, atau, g1, g2, inv_norm):
    """One undamped CVI step (r = 1) from (m, v) into (m_new, v_new); returns phi's shift at m
    (phi and tau at m are left in the work arrays)."""
    shift = _phi_tau(R, ridx, cnt, elogk_a, alpha_t, asq_t, s2, m, em, phisum, tau, inv_norm)
    _cvi_grad(N, alpha_t, m, v, phisum, tau, ex, atau, g1, g2)
    for k in range(m.shape[0]):
        vk = -0.5 / (-0.5 / s2 + g2[k])
        m_new[k] = (atau[k] / s2 + g1[k]) * vk
        v_new[k] = vk
    return shift


ARMIJO = 1e-4       # sufficient-increase constant of the Newton line searches (as the reference)
MAX_HALVINGS = 40


@njit(inline="always", **FLAGS)
def _mv_part(which, n, atau, N, s2, tm, tv):
    """The terms of the reference's mv_objective that change in the m-step (which = 0) or in
    the v-step (which = 1), at (tm, tv).  Dropping the constant terms saves a K-long log
    pass per evaluation and leaves the line-search comparisons unchanged."""
    K = tm.shape[0]
    c = tm[0] + 0.5 * tv[0]
    for k in range(1, K):
        c = max(c, tm[k] + 0.5 * tv[k])
    z = 0.0
    acc = 0.0
    for k in range(K):
        mk = tm[k]
        vk = tv[k]
        z += vexp(mk + 0.5 * vk - c)
        if which == 0:
            acc += -(mk * mk - 2.0 * mk * atau[k]) / (2.0 * s2) + n[k] * mk
        else:
            acc += -vk / (2.0 * s2) + 0.5 * vlog(vk)
    return acc - N * (c + np.log(z))


@njit(**FLAGS)
def _newton_mv(m, v, n, atau, N, s2, p, g, d, tm, tv):
    """One exact Newton step in m, then one in v, with backtracking (reference: newton_mv).

    The Hessians are diagonal plus rank one (Sherman-Morrison, O(K)); the line search accepts
    only steps that raise the (m, v) objective, so the local ELBO never decreases.
    """
    K = m.shape[0]
    for which in range(2):
        c = m[0] + 0.5 * v[0]
        for k in range(1, K):
            c = max(c, m[k] + 0.5 * v[k])
        z = 0.0
        for k in range(K):
            p[k] = vexp(m[k] + 0.5 * v[k] - c)
            z += p[k]
        f0 = -N * (c + np.log(z))
        for k in range(K):
            p[k] /= z
            tm[k] = m[k]
            tv[k] = v[k]
            if which == 0:
                f0 += -(m[k] * m[k] - 2.0 * m[k] * atau[k]) / (2.0 * s2) + n[k] * m[k]
            else:
                f0 += -v[k] / (2.0 * s2) + 0.5 * vlog(v[k])
        # d = D^-1 g plus the rank-one (Sherman-Morrison) correction
        pdg = 0.0
        pdp = 0.0
        if which == 0:
            cr = N
            for k in range(K):
                g[k] = (atau[k] - m[k]) / s2 + n[k] - N * p[k]
                dk = 1.0 / (1.0 / s2 + N * p[k])
                d[k] = dk * g[k]
                pdg += p[k] * d[k]
                pdp += p[k] * p[k] * dk
        else:
            cr = 0.25 * N
            for k in range(K):
                g[k] = -0.5 / s2 + 0.5 / v[k] - 0.5 * N * p[k]
                dk = 1.0 / (0.5 / (v[k] * v[k]) + 0.25 * N * p[k])
                d[k] = dk * g[k]
                pdg += p[k] * d[k]
                pdp += p[k] * p[k] * dk
        coef = cr * pdg / (1.0 - cr * pdp)
        slope = 0.0
        for k in range(K):
            if which == 0:
                dk = 1.0 / (1.0 / s2 + N * p[k])
            else:
                dk = 1.0 / (0.5 / (v[k] * v[k]) + 0.25 * N * p[k])
            d[k] += coef * dk * p[k]
            slope += g[k] * d[k]
        if not slope > 0.0:
            continue
        t = 1.0
        for _ in range(MAX_HALVINGS):
            ok = True
            for k in range(K):
                if which == 0:
                    tm[k] = m[k] + t * d[k]
                else:
                    tv[k] = v[k] + t * d[k]
                    if not tv[k] > 0.0:
                        ok = False
            if ok and _mv_part(which, n, atau, N, s2, tm, tv) >= f0 + ARMIJO * t * slope:
                for k in range(K):
                    m[k] = tm[k]
                    v[k] = tv[k]
                break
            t *= 0.5


@njit(**FLAGS)
def _squarem_point(m, v, m1, v1, m2, v2, lv0, lv1, lv2, xm, xv):
    """SQUAREM's extrapolated point from x0, x1 = F(x0), x2 = F(x1) in (m, log v) coordinates,
    written to (xm, xv); the plain double step x2 where the jump leaves the trust region."""
    K = m.shape[0]
    # step length from r = x1 - x0, q = x2 - 2 x1 + x0
    rr = 0.0
    qq = 0.0
    for k in range(K):
        lv0[k] = vlog(v[k])
        lv1[k] = vlog(v1[k])
        lv2[k] = vlog(v2[k])
        r1 = m1[k] - m[k]
        q1 = m2[k] - 2.0 * m1[k] + m[k]
        r2 = lv1[k] - lv0[k]
        q2 = lv2[k] - 2.0 * lv1[k] + lv0[k]
        rr += r1 * r1 + r2 * r2
        qq += q1 * q1 + q2 * q2
    step = -1.0
    if qq > 0.0:
        step = min(-np.sqrt(rr / qq), -1.0)
    bad = 0
    for k in range(K):
        xm[k] = m[k] - 2.0 * step * (m1[k] - m[k]) + step * step * (m2[k] - 2.0 * m1[k] + m[k])
        lvx = lv0[k] - 2.0 * step * (lv1[k] - lv0[k]) + step * step * (lv2[k] - 2.0 * lv1[k] + lv0[k])
        # a trust region around the plain double step keeps exp() and the map sane
        # (counted rather than branched on, so the loop vectorizes; NaN counts as out)
        bad += 0 if (abs(xm[k] - m2[k]) <= MAX_JUMP and abs(lvx - lv2[k]) <= MAX_JUMP) else 1
        xv[k] = lvx
    if bad == 0:
        for k in range(K):
            xv[k] = vexp(min(xv[k], 50.0))
    else:  # extrapolation left the safe region: take the plain double step
        for k in range(K):
            xm[k] = m2[k]
            xv[k] = v2[k]


@njit(**FLAGS)
def _one_doc(R, ridx, cnt, elogk_a, alpha_t, asq_t, s2, tol, max_iters, r,
             solver, warm, m, v, lam1, lam2, em, ex, phisum, tau, atau, inv_norm, wk):
    """Local step of one document in the given work arrays; returns (shift, n_iter).

    solver 0: damped CVI (spec 3.2).  solver 1: the same undamped CVI map accelerated by
    SQUAREM extrapolation (same fixed point, far fewer passes when data dominate the prior).
    solver 2: block coordinate ascent with exact Newton steps on (m, v) (monotone).
    ``warm``: start from the m, v passed in (else m = 0, v = s2).  ``wk`` is a (9, K) work array.
    """
    K = m.shape[0]
    N = 0.0
    for j in range(cnt.shape[0]):
        N += cnt[j]
    for k in range(K):
        if not warm:
            m[k] = 0.0
            v[k] = s2
        lam1[k] = 0.0
        lam2[k] = 0.0
    n_iter = 0
    if solver == 2:
        for it in range(max_iters):
            _phi_tau(R, ridx, cnt, elogk_a, alpha_t, asq_t, s2, m, em, phisum, tau, inv_norm)
            _rows_axpy(alpha_t, tau, atau)
            for k in range(K):
                lam1[k] = m[k]
            _newton_mv(m, v, phisum, atau, N, s2, wk[0], wk[1], wk[2], wk[3], wk[4])
            n_iter = it + 1
            diff = 0.0
            for k in range(K):
                diff += abs(m[k] - lam1[k])
            if diff / K < tol:
                break
    elif solver == 0:
        for it in range(max_iters):
            _phi_tau(R, ridx, cnt, elogk_a, alpha_t, asq_t, s2, m, em, phisum, tau, inv_norm)
            _cvi_grad(N, alpha_t, m, v, phisum, tau, ex, atau, wk[0], wk[1])
            n_iter = it + 1
            diff = 0.0
            for k in range(K):
                lam1[k] = (1.0 - r) * lam1[k] + r * wk[0, k]
                lam2[k] = (1.0 - r) * lam2[k] + r * wk[1, k]
                vk = -0.5 / (-0.5 / s2 + lam2[k])
                mk = (atau[k] / s2 + lam1[k]) * vk
                diff += abs(mk - m[k])
                m[k] = mk
                v[k] = vk
            if diff / K < tol:
                break
    else:
        m1, v1, m2, v2, g1, g2 = wk[0], wk[1], wk[2], wk[3], wk[4], wk[5]
        lv0, lv1, lv2 = wk[6], wk[7], wk[8]
        # A cycle: x1 = F(x0), x2 = F(x1), then x0' = F(extrapolated x).  Convergence is
        # judged on the plain steps (mean |F(x)_m - x_m| < tol, the CVI criterion); the
        # answer is then x itself, whose phi and tau that map evaluation already computed.
        # One call site for the map, which is inlined (a call per map costs ~10% at K = 50).
        done = -1
        while n_iter < max_iters and done < 0:
            for stage in range(3):
                if stage == 0:
                    xm, xv, ym, yv = m, v, m1, v1
                elif stage == 1:
                    xm, xv, ym, yv = m1, v1, m2, v2
                else:
                    _squarem_point(m, v, m1, v1, m2, v2, lv0, lv1, lv2, lam1, lam2)
                    xm, xv, ym, yv = lam1, lam2, m1, v1
                shift = _cvi_map(R, ridx, cnt, N, elogk_a, alpha_t, asq_t, s2, xm, xv, ym, yv,
                                 em, ex, phisum, tau, atau, g1, g2, inv_norm)
                n_iter += 1
                if stage < 2:
                    diff = 0.0
                    for k in range(K):
                        diff += abs(ym[k] - xm[k])
                    if diff / K < tol:
                        done = stage
                        break
            if done < 0:
                for k in range(K):
                    m[k] = m1[k]
                    v[k] = v1[k]
        if done >= 0:
            if done == 1:
                for k in range(K):
                    m[k] = m1[k]
                    v[k] = v1[k]
            return shift, n_iter
    # phi and tau at the final m (for the statistics)
    shift = _phi_tau(R, ridx, cnt, elogk_a, alpha_t, asq_t, s2, m, em, phisum, tau, inv_norm)
    return shift, n_iter


@njit(**FLAGS)
def _doc_elbo(cnt, elogk_a, alpha_t, asq_t, s2, m, v, tau, inv_norm, shift):
    K = m.shape[0]
    P = tau.shape[0]
    ent = 0.0
    quad = 0.0
    for p in range(P):
        ent += tau[p] * elogk_a[p]
        if tau[p] > 0.0:
            ent -= tau[p] * vlog(tau[p])
        quad += tau[p] * asq_t[p]
    c = m[0] + 0.5 * v[0]
    for k in range(1, K):
        c = max(c, m[k] + 0.5 * v[k])
    zeta = 0.0
    logv = 0.0
    for k in range(K):
        acc = 0.0
        for p in range(P):
            acc += alpha_t[p, k] * tau[p]
        quad += m[k] * m[k] + v[k] - 2.0 * m[k] * acc
        zeta += vexp(m[k] + 0.5 * v[k] - c)
        logv += vlog(v[k])
    words = 0.0
    N = 0.0
    for j in range(cnt.shape[0]):
        words += cnt[j] * (shift - vlog(inv_norm[j]))
        N += cnt[j]
    return ent - quad / (2.0 * s2) + 0.5 * logv + words - N * (c + np.log(zeta)) \
        - 0.5 * K * np.log(s2) + 0.5 * K


@njit(parallel=True, cache=CACHE, nogil=True)
def _estep_chunks(bounds, indptr, indices, counts, authors, times, ebT, elogk, alpha, alpha_sq, s2,
                  tol, max_iters, r, solver, m_out, v_out, tau_out, keep, warm, collect, Sb, Sk, ntp, Mb, elbo,
                  iters, max_u):
    C = bounds.shape[0] - 1
    K = ebT.shape[1]
    P = elogk.shape[1]
    n_gather = min(max_u, GATHER_ROWS)
    for c in prange(C):
        m = np.empty(K)
        v = np.empty(K)
        lam1 = np.empty(K)
        lam2 = np.empty(K)
        em = np.empty(K)
        ex = np.empty(K)
        phisum = np.empty(K)
        atau = np.empty(K)
        tau = np.empty(P)
        inv_norm = np.empty(max_u)
        wk = np.empty((9, K))
        B = np.empty((n_gather, K))  # this document's rows of ebT, contiguous
        iota = np.arange(n_gather).astype(np.int32)
        acc_elbo = 0.0
        for d in range(bounds[c], bounds[c + 1]):
            s = indptr[d]
            e = indptr[d + 1]
            u = e - s
            a = authors[d]
            t = times[d]
            if u <= n_gather:
                for j in range(u):
                    w = indices[s + j]
                    for k in range(K):
                        B[j, k] = ebT[w, k]
                R = B
                ridx = iota[:u]
            else:
                R = ebT
                ridx = indices[s:e]
            cnt = counts[s:e]
            elogk_a = elogk[a]
            alpha_t = alpha[t]
            asq_t = alpha_sq[t]
            if warm:
                for k in range(K):
                    m[k] = m_out[d, k]
                    v[k] = v_out[d, k]
            shift, n_it = _one_doc(R, ridx, cnt, elogk_a, alpha_t, asq_t, s2, tol, max_iters, r, solver,
                                   warm, m, v, lam1, lam2, em, ex, phisum, tau, atau, inv_norm, wk)
            iters[d] = n_it
            if collect:
                for j in range(u):
                    row = R[ridx[j]]
                    sb = Sb[c, indices[s + j]]
                    cj = cnt[j] * inv_norm[j]
                    for k in range(K):
                        sb[k] += cj * row[k] * em[k]
            for p in range(P):
                Sk[c, a, p] += tau[p]
                ntp[c, t, p] += tau[p]
                for k in range(K):
                    Mb[c, t, p, k] += tau[p] * m[k]
            acc_elbo += _doc_elbo(cnt, elogk_a, alpha_t, asq_t, s2, m, v, tau, inv_norm, shift)
            if keep:
                for k in range(K):
                    m_out[d, k] = m[k]
                    v_out[d, k] = v[k]
                for p in range(P):
                    tau_out[d, p] = tau[p]
        elbo[c] = acc_elbo


SOLVERS = {"cvi": 0, "squarem": 1, "newton": 2}


def balanced_bounds(indptr: np.ndarray, n_chunks: int, doc_cost: int = 8) -> np.ndarray:
    """Cut documents into ``n_chunks`` contiguous ranges of about equal nnz + doc_cost*docs."""
    D = indptr.shape[0] - 1
    n_chunks = max(1, min(n_chunks, D))
    work = indptr + doc_cost * np.arange(D + 1, dtype=np.int64)
    targets = work[-1] * np.arange(n_chunks + 1) / n_chunks
    b = np.searchsorted(work, targets, side="left").astype(np.int64)
    b[0], b[-1] = 0, D
    return np.maximum.accumulate(b)


def _readonly(a, dtype):
    """``a`` as a C-contiguous array of ``dtype`` marked read-only (a view: no copy when it
    already has that layout).

    Numba compiles (and caches) one machine-code version per argument type, and a read-only
    array - a memory-mapped shard, as Dask workers and streamed fits read them - is a
    different type from a writable one.  Marking every input read-only gives the kernel a
    single signature, so the code compiled by one process (or cached on disk) serves all
    of them; before, the first E-step on memory-mapped shards compiled a second version.
    """
    a = np.ascontiguousarray(a, dtype)
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


def estep(indptr, indices, counts, authors, times, ebT, elogk, alpha, alpha_sq, doc_noise,
          local_tol, max_iters, step_size, m_out, v_out, tau_out, collect_beta=True, n_threads=None,
          solver="newton", warm_start=False):
    """Compiled E-step; see :func:`fastprob.reference.estep.estep` for the contract."""
    V, K = ebT.shape
    A, P = elogk.shape
    T = alpha.shape[0]
    D = indptr.shape[0] - 1
    prev = numba.get_num_threads()
    nt = min(n_threads or prev, numba.config.NUMBA_NUM_THREADS)
    bounds = balanced_bounds(indptr, nt)
    C = bounds.shape[0] - 1
    Sb = np.zeros((C, V, K) if collect_beta else (C, 0, K))
    Sk = np.zeros((C, A, P))
    ntp = np.zeros((C, T, P))
    Mb = np.zeros((C, T, P, K))
    elbo = np.zeros(C)
    iters = np.zeros(D, dtype=np.int64)
    max_u = int(np.diff(indptr).max()) if D else 0
    keep = m_out.shape[0] == D and D > 0
    if warm_start and not keep:
        raise ValueError("warm_start needs m_out and v_out with one row per document")
    numba.set_num_threads(max(1, nt))
    try:
        _estep_chunks(bounds, _readonly(indptr, np.int64), _readonly(indices, np.int32),
                      _readonly(counts, np.float64), _readonly(authors, np.int64), _readonly(times, np.int64),
                      *(_readonly(x, np.float64) for x in (ebT, elogk, alpha, alpha_sq)),
                      float(doc_noise), float(local_tol), int(max_iters),
                      float(step_size), SOLVERS[solver], m_out, v_out, tau_out, keep, bool(warm_start), collect_beta, Sb, Sk, ntp, Mb, elbo,
                      iters, max(max_u, 1))
    finally:
        numba.set_num_threads(prev)
    S_betaT = Sb.sum(axis=0) if collect_beta else np.zeros((V, K))
    return S_betaT, Sk.sum(axis=0), ntp.sum(axis=0), Mb.sum(axis=0), float(elbo.sum()), iters
