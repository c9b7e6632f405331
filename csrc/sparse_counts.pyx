# cython: language_level=3
"""Sparse word counting primitives (nogil loops; structure stays in Python).

Each function has a NumPy reference of the same signature in
``fastprob/reference/sparse_counts.py``; tests check they agree bit for bit.
"""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t

cnp.import_array()


def _check_ptr(const int64_t[::1] ptr, Py_ssize_t n_items, str what):
    cdef Py_ssize_t i, n = ptr.shape[0]
    if n < 1:
        raise ValueError(f"{what} must be a 1-D array of length n_docs + 1")
    if ptr[0] != 0 or ptr[n - 1] != n_items:
        raise ValueError(f"{what} must start at 0 and end at {n_items} (got {ptr[0]} .. {ptr[n - 1]})")
    for i in range(n - 1):
        if ptr[i + 1] < ptr[i]:
            raise ValueError(f"{what} must be non-decreasing")


cdef extern from *:
    """
    #if defined(_MSC_VER)
    #include <intrin.h>
    static inline int fp_ctz64(unsigned long long x) { unsigned long i; _BitScanForward64(&i, x); return (int)i; }
    #else
    static inline int fp_ctz64(unsigned long long x) { return __builtin_ctzll(x); }
    #endif
    """
    int fp_ctz64(unsigned long long x) nogil


cdef inline void _emit_row(cnp.uint64_t* bits1, cnp.uint64_t* bits2, Py_ssize_t W2, int64_t* acc,
                           int32_t* idx, int32_t* cnt, Py_ssize_t pos, Py_ssize_t end) noexcept nogil:
    """Write one CSR row: the ids whose bits are set in the two-level bitmap (bit w of
    level 1, bit w >> 6 of level 2), in increasing order, with their counts acc[w], into
    idx/cnt[pos:end]; clears the bitmap and acc as it goes so the next row starts empty.
    Reading set bits with count-trailing-zeros makes the order free (no sort)."""
    cdef Py_ssize_t i2, j1
    cdef cnp.uint64_t x1, x2
    cdef int32_t w
    for i2 in range(W2):
        if pos == end:  # every distinct id of this row emitted: the rest is zero
            break
        x2 = bits2[i2]
        if x2 == 0:
            continue
        bits2[i2] = 0
        while x2:
            j1 = (i2 << 6) + fp_ctz64(x2)
            x2 &= x2 - 1
            x1 = bits1[j1]
            bits1[j1] = 0
            while x1:
                w = <int32_t>((j1 << 6) + fp_ctz64(x1))
                x1 &= x1 - 1
                idx[pos] = w
                cnt[pos] = <int32_t>acc[w]
                acc[w] = 0
                pos += 1


def count_tokens(tokens, doc_ptr, Py_ssize_t n_words):
    """Token-id sequences -> CSR counts in two linear passes, no sorting, no per-document Python.

    NumPy equivalent: ``np.unique(doc * n_words + token, return_counts=True)`` over
    tokens >= 0, split into rows (see the reference).  Pass 1 counts the distinct ids of
    each document with a marker array (so the output is allocated exactly).  Pass 2 keeps
    a dense scratch of counts per word and a two-level bitmap of the words present (bit w
    of level 1; bit w >> 6 of level 2); reading the set bits in order with count-trailing-
    zeros emits each row's ids already sorted, and clears the scratch as it goes.  Per
    document that costs its tokens plus V / 4096 words of level 2, instead of a sort of
    its distinct ids (the earlier version, 2-3x slower than scipy's sum_duplicates).
    """
    cdef const int32_t[::1] tok = np.ascontiguousarray(tokens, dtype=np.int32)
    cdef const int64_t[::1] ptr = np.ascontiguousarray(doc_ptr, dtype=np.int64)
    _check_ptr(ptr, tok.shape[0], "doc_ptr")
    cdef Py_ssize_t n_docs = ptr.shape[0] - 1
    cdef Py_ssize_t V = max(n_words, 1)
    cdef Py_ssize_t W1 = (V + 63) >> 6
    cdef Py_ssize_t W2 = (W1 + 63) >> 6
    cdef cnp.ndarray[int64_t, ndim=1] mark_arr = np.full(V, -1, dtype=np.int64)
    cdef int64_t[::1] mark = mark_arr
    cdef cnp.ndarray[int64_t, ndim=1] indptr_arr = np.empty(n_docs + 1, dtype=np.int64)
    cdef int64_t[::1] indptr = indptr_arr
    cdef Py_ssize_t d, i, nnz = 0
    cdef int32_t w, bad = -1
    with nogil:
        indptr[0] = 0
        for d in range(n_docs):
            for i in range(ptr[d], ptr[d + 1]):
                w = tok[i]
                if w < 0:
                    continue
                if w >= n_words:
                    bad = w
                    break
                if mark[w] != d:
                    mark[w] = d
                    nnz += 1
            if bad >= 0:
                break
            indptr[d + 1] = nnz
    if bad >= 0:
        raise ValueError(f"token id {bad} is outside the vocabulary of size {n_words}")
    del mark_arr
    cdef cnp.ndarray[int32_t, ndim=1] idx_arr = np.empty(nnz, dtype=np.int32)
    cdef cnp.ndarray[int32_t, ndim=1] cnt_arr = np.empty(nnz, dtype=np.int32)
    cdef cnp.ndarray[int64_t, ndim=1] scratch_arr = np.zeros(V, dtype=np.int64)
    cdef int64_t[::1] scratch = scratch_arr
    cdef cnp.ndarray[cnp.uint64_t, ndim=1] b1_arr = np.zeros(W1, dtype=np.uint64)
    cdef cnp.ndarray[cnp.uint64_t, ndim=1] b2_arr = np.zeros(W2, dtype=np.uint64)
    cdef cnp.uint64_t[::1] bits1 = b1_arr
    cdef cnp.uint64_t[::1] bits2 = b2_arr
    cdef cnp.uint64_t one = 1
    # raw pointers for the shared row writer (.data is valid even for empty arrays)
    cdef cnp.uint64_t* b1p = <cnp.uint64_t*> b1_arr.data
    cdef cnp.uint64_t* b2p = <cnp.uint64_t*> b2_arr.data
    cdef int64_t* accp = <int64_t*> scratch_arr.data
    cdef int32_t* idxp = <int32_t*> idx_arr.data
    cdef int32_t* cntp = <int32_t*> cnt_arr.data
    with nogil:
        for d in range(n_docs):
            for i in range(ptr[d], ptr[d + 1]):
                w = tok[i]
                if w < 0:
                    continue
                if scratch[w] == 0:
                    bits1[w >> 6] |= one << (w & 63)
                    bits2[w >> 12] |= one << ((w >> 6) & 63)
                scratch[w] += 1
            _emit_row(b1p, b2p, W2, accp, idxp, cntp, indptr[d], indptr[d + 1])
    return indptr_arr, idx_arr, cnt_arr


def remap_csr(indptr, indices, counts, mapping, Py_ssize_t n_new):
    """Column j -> mapping[j] (-1 drops); merged duplicates are summed; rows come out sorted.

    NumPy equivalent: ``np.unique(row * n_new + mapping[indices])`` with counts summed by
    ``np.bincount`` (see the reference); SciPy equivalent: ``X @ M`` with the 0/1 matrix
    ``M[j, mapping[j]] = 1``.  Pass 1 counts each row's distinct new ids with a marker
    array; pass 2 sums counts into a dense scratch and emits the ids in order from a
    two-level bitmap, as :func:`count_tokens` does (a qsort per row made this 0.8x of
    SciPy's product).
    """
    cdef const int64_t[::1] ip = np.ascontiguousarray(indptr, dtype=np.int64)
    cdef const int32_t[::1] ix = np.ascontiguousarray(indices, dtype=np.int32)
    cdef const int32_t[::1] ct = np.ascontiguousarray(counts, dtype=np.int32)
    cdef const int32_t[::1] mp = np.ascontiguousarray(mapping, dtype=np.int32)
    _check_ptr(ip, ix.shape[0], "indptr")
    if ct.shape[0] != ix.shape[0]:
        raise ValueError("indices and counts must have the same length")
    cdef Py_ssize_t n_old = mp.shape[0]
    cdef Py_ssize_t n_docs = ip.shape[0] - 1
    cdef Py_ssize_t d, i, nnz = 0
    cdef int32_t j, w, bad = 0
    for i in range(mp.shape[0]):
        if mp[i] >= n_new:
            raise ValueError(f"mapping targets {mp[i]} >= n_new = {n_new}")
    cdef Py_ssize_t V = max(n_new, 1)
    cdef Py_ssize_t W1 = (V + 63) >> 6
    cdef Py_ssize_t W2 = (W1 + 63) >> 6
    cdef cnp.ndarray[int64_t, ndim=1] mark_arr = np.full(V, -1, dtype=np.int64)
    cdef int64_t[::1] mark = mark_arr
    cdef cnp.ndarray[int64_t, ndim=1] optr_arr = np.empty(n_docs + 1, dtype=np.int64)
    cdef int64_t[::1] optr = optr_arr
    with nogil:
        optr[0] = 0
        for d in range(n_docs):
            for i in range(ip[d], ip[d + 1]):
                j = ix[i]
                if j < 0 or j >= n_old:
                    bad = 1
                    break
                w = mp[j]
                if w >= 0 and mark[w] != d:
                    mark[w] = d
                    nnz += 1
            if bad:
                break
            optr[d + 1] = nnz
    if bad:
        raise ValueError(f"CSR column ids must lie in [0, {n_old}) to match the mapping; "
                         "the vocabulary and the counts do not belong together")
    del mark_arr
    cdef cnp.ndarray[int32_t, ndim=1] oidx_arr = np.empty(nnz, dtype=np.int32)
    cdef cnp.ndarray[int32_t, ndim=1] ocnt_arr = np.empty(nnz, dtype=np.int32)
    cdef cnp.ndarray[int64_t, ndim=1] acc_arr = np.zeros(V, dtype=np.int64)
    cdef int64_t[::1] acc = acc_arr
    cdef cnp.ndarray[cnp.uint64_t, ndim=1] b1_arr = np.zeros(W1, dtype=np.uint64)
    cdef cnp.ndarray[cnp.uint64_t, ndim=1] b2_arr = np.zeros(W2, dtype=np.uint64)
    cdef cnp.uint64_t[::1] bits1 = b1_arr
    cdef cnp.uint64_t[::1] bits2 = b2_arr
    cdef cnp.uint64_t one = 1
    cdef cnp.uint64_t* b1p = <cnp.uint64_t*> b1_arr.data
    cdef cnp.uint64_t* b2p = <cnp.uint64_t*> b2_arr.data
    cdef int64_t* accp = <int64_t*> acc_arr.data
    cdef int32_t* idxp = <int32_t*> oidx_arr.data
    cdef int32_t* cntp = <int32_t*> ocnt_arr.data
    with nogil:
        for d in range(n_docs):
            for i in range(ip[d], ip[d + 1]):
                w = mp[ix[i]]
                if w < 0:
                    continue
                # setting a bit twice is harmless, so a zero count needs no special case
                bits1[w >> 6] |= one << (w & 63)
                bits2[w >> 12] |= one << ((w >> 6) & 63)
                acc[w] += ct[i]
            _emit_row(b1p, b2p, W2, accp, idxp, cntp, optr[d], optr[d + 1])
    return optr_arr, oidx_arr, ocnt_arr
