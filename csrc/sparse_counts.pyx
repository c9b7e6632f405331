# cython: language_level=3
"""Sparse word counting primitives (nogil loops; structure stays in Python).

Each function has a NumPy reference of the same signature in
``fastprob/reference/sparse_counts.py``; tests check they agree bit for bit.
"""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport qsort

cnp.import_array()


cdef int _cmp_i32(const void* a, const void* b) noexcept nogil:
    cdef int32_t x = (<const int32_t*>a)[0]
    cdef int32_t y = (<const int32_t*>b)[0]
    return (x > y) - (x < y)


def _check_ptr(const int64_t[::1] ptr, Py_ssize_t n_items, str what):
    cdef Py_ssize_t i, n = ptr.shape[0]
    if n < 1:
        raise ValueError(f"{what} must be a 1-D array of length n_docs + 1")
    if ptr[0] != 0 or ptr[n - 1] != n_items:
        raise ValueError(f"{what} must start at 0 and end at {n_items} (got {ptr[0]} .. {ptr[n - 1]})")
    for i in range(n - 1):
        if ptr[i + 1] < ptr[i]:
            raise ValueError(f"{what} must be non-decreasing")


def count_tokens(tokens, doc_ptr, Py_ssize_t n_words):
    """Token-id sequences -> CSR counts in two linear passes, no per-document Python.

    NumPy equivalent: ``np.unique(doc * n_words + token, return_counts=True)`` over
    tokens >= 0, split into rows (see the reference).  Pass 1 counts the distinct ids of
    each document with a marker array (so the output is allocated exactly); pass 2 writes
    them, sorts each row's ids and accumulates counts through a slot array.
    """
    cdef const int32_t[::1] tok = np.ascontiguousarray(tokens, dtype=np.int32)
    cdef const int64_t[::1] ptr = np.ascontiguousarray(doc_ptr, dtype=np.int64)
    _check_ptr(ptr, tok.shape[0], "doc_ptr")
    cdef Py_ssize_t n_docs = ptr.shape[0] - 1
    cdef cnp.ndarray[int64_t, ndim=1] mark_arr = np.full(max(n_words, 1), -1, dtype=np.int64)
    cdef cnp.ndarray[int32_t, ndim=1] slot_arr = np.zeros(max(n_words, 1), dtype=np.int32)
    cdef int64_t[::1] mark = mark_arr
    cdef int32_t[::1] slot = slot_arr
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
    cdef cnp.ndarray[int32_t, ndim=1] idx_arr = np.empty(nnz, dtype=np.int32)
    cdef cnp.ndarray[int32_t, ndim=1] cnt_arr = np.zeros(nnz, dtype=np.int32)
    cdef int32_t[::1] idx = idx_arr
    cdef int32_t[::1] cnt = cnt_arr
    cdef int64_t start, pos
    with nogil:
        mark[:] = -1
        for d in range(n_docs):
            start = indptr[d]
            pos = start
            for i in range(ptr[d], ptr[d + 1]):
                w = tok[i]
                if w >= 0 and mark[w] != d:
                    mark[w] = d
                    idx[pos] = w
                    pos += 1
            if pos - start > 1:
                qsort(&idx[start], pos - start, sizeof(int32_t), _cmp_i32)
            for i in range(start, pos):
                slot[idx[i]] = <int32_t>(i - start)
            for i in range(ptr[d], ptr[d + 1]):
                w = tok[i]
                if w >= 0:
                    cnt[start + slot[w]] += 1
    return indptr_arr, idx_arr, cnt_arr


def remap_csr(indptr, indices, counts, mapping, Py_ssize_t n_new):
    """Column j -> mapping[j] (-1 drops); merged duplicates are summed; rows re-sorted.

    NumPy equivalent: ``np.unique(row * n_new + mapping[indices])`` with counts summed by
    ``np.bincount`` (see the reference).
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
    cdef cnp.ndarray[int64_t, ndim=1] mark_arr = np.full(max(n_new, 1), -1, dtype=np.int64)
    cdef int64_t[::1] mark = mark_arr
    cdef cnp.ndarray[int64_t, ndim=1] acc_arr = np.zeros(max(n_new, 1), dtype=np.int64)
    cdef int64_t[::1] acc = acc_arr
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
    cdef cnp.ndarray[int32_t, ndim=1] oidx_arr = np.empty(nnz, dtype=np.int32)
    cdef cnp.ndarray[int32_t, ndim=1] ocnt_arr = np.empty(nnz, dtype=np.int32)
    cdef int32_t[::1] oidx = oidx_arr
    cdef int32_t[::1] ocnt = ocnt_arr
    cdef int64_t start, pos
    with nogil:
        mark[:] = -1
        for d in range(n_docs):
            start = optr[d]
            pos = start
            for i in range(ip[d], ip[d + 1]):
                w = mp[ix[i]]
                if w < 0:
                    continue
                if mark[w] != d:
                    mark[w] = d
                    acc[w] = 0
                    oidx[pos] = w
                    pos += 1
                acc[w] += ct[i]
            if pos - start > 1:
                qsort(&oidx[start], pos - start, sizeof(int32_t), _cmp_i32)
            for i in range(start, pos):
                ocnt[i] = <int32_t>acc[oidx[i]]
    return optr_arr, oidx_arr, ocnt_arr
