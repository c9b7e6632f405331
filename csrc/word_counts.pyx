# cython: language_level=3
"""scikit-learn's word counting in one pass over UTF-8 bytes: token pattern \\w\\w+ (or \\w+),
stop words, first-seen vocabulary, per-document counts with sorted column ids.

A word character is exactly what Python's ``re`` calls ``\\w`` in a str pattern: '_' or a code
point for which ``Py_UNICODE_ISALNUM`` holds (the test ``_sre`` itself uses), so the tokens are
those of ``re.findall(r"(?u)\\b\\w\\w+\\b", text)``: maximal runs of word characters of at least
``min_len`` code points.  The vocabulary is an open-addressing hash table (FNV-1a over the
token's bytes) with keys in one byte arena; a ``str`` is made only for a word's first
occurrence.  Reference: ``fastprob/reference/word_counts.py``.
"""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, realloc, free, qsort
from libc.string cimport memcmp, memcpy

cnp.import_array()

cdef extern from "Python.h":
    bint Py_UNICODE_ISALNUM(Py_UCS4 ch) nogil


cdef inline bint _is_word(uint32_t cp) noexcept nogil:
    if cp < 0x80:
        return (0x61 <= cp <= 0x7A) or (0x41 <= cp <= 0x5A) or (0x30 <= cp <= 0x39) or cp == 0x5F
    return Py_UNICODE_ISALNUM(<Py_UCS4>cp)


cdef inline uint64_t _fnv(const uint8_t* s, Py_ssize_t n) noexcept nogil:
    cdef uint64_t h = 1469598103934665603ULL
    cdef Py_ssize_t i
    for i in range(n):
        h = (h ^ s[i]) * 1099511628211ULL
    return h


cdef int _cmp_i32(const void* a, const void* b) noexcept nogil:
    cdef int32_t x = (<const int32_t*>a)[0]
    cdef int32_t y = (<const int32_t*>b)[0]
    return (x > y) - (x < y)


DEF STOP = -2
DEF ABSENT = -1


cdef class WordCounter:
    """Count the tokens of documents against a growing or a fixed vocabulary.

    Parameters
    ----------
    min_len : int
        Fewest code points in a token (2 for sklearn's default ``\\b\\w\\w+\\b``, 1 for ``\\b\\w+\\b``).
    stop_words : iterable of str
        Tokens dropped (matched after any lower-casing the caller did).
    vocabulary : dict str -> int, optional
        A fixed vocabulary: other tokens are ignored and columns are its values.
    """
    cdef uint64_t* _hash
    cdef int64_t* _off
    cdef int32_t* _len
    cdef int32_t* _val
    cdef Py_ssize_t _cap, _used
    cdef uint8_t* _arena
    cdef Py_ssize_t _arena_len, _arena_cap
    cdef readonly int min_len
    cdef readonly bint fixed
    cdef readonly Py_ssize_t n_columns
    cdef public list words

    def __cinit__(self, *args, **kwargs):
        self._cap = 1 << 14
        self._hash = <uint64_t*>malloc(self._cap * sizeof(uint64_t))
        self._off = <int64_t*>malloc(self._cap * sizeof(int64_t))
        self._len = <int32_t*>malloc(self._cap * sizeof(int32_t))
        self._val = <int32_t*>malloc(self._cap * sizeof(int32_t))
        self._arena_cap = 1 << 16
        self._arena = <uint8_t*>malloc(self._arena_cap)
        if not (self._hash and self._off and self._len and self._val and self._arena):
            raise MemoryError()
        cdef Py_ssize_t i
        for i in range(self._cap):
            self._len[i] = -1
        self._used = 0
        self._arena_len = 0

    def __init__(self, int min_len=2, stop_words=(), vocabulary=None):
        if min_len < 1:
            raise ValueError(f"min_len must be >= 1, got {min_len}")
        self.min_len = min_len
        self.words = []
        cdef bytes b
        for w in stop_words:
            b = w.encode("utf-8", "surrogatepass")
            self._insert(b, len(b), _fnv(b, len(b)), STOP)
        self.fixed = vocabulary is not None
        self.n_columns = 0
        if self.fixed:
            for w, j in vocabulary.items():
                if j < 0 or j > 2147483646:
                    raise ValueError(f"vocabulary index {j} of {w!r} is outside 0 .. 2**31 - 2")
                b = w.encode("utf-8", "surrogatepass")
                # a stop word stays a stop word (sklearn filters before the lookup)
                self._insert(b, len(b), _fnv(b, len(b)), j)
                self.n_columns = max(self.n_columns, j + 1)

    def __dealloc__(self):
        free(self._hash); free(self._off); free(self._len); free(self._val); free(self._arena)

    cdef int _grow_table(self) except -1:
        cdef Py_ssize_t i, j, cap = self._cap * 2
        cdef uint64_t* h = <uint64_t*>malloc(cap * sizeof(uint64_t))
        cdef int64_t* o = <int64_t*>malloc(cap * sizeof(int64_t))
        cdef int32_t* l = <int32_t*>malloc(cap * sizeof(int32_t))
        cdef int32_t* v = <int32_t*>malloc(cap * sizeof(int32_t))
        if not (h and o and l and v):
            free(h); free(o); free(l); free(v)
            raise MemoryError()
        for i in range(cap):
            l[i] = -1
        for i in range(self._cap):
            if self._len[i] >= 0:
                j = <Py_ssize_t>(self._hash[i] & <uint64_t>(cap - 1))
                while l[j] >= 0:
                    j = (j + 1) & (cap - 1)
                h[j] = self._hash[i]; o[j] = self._off[i]; l[j] = self._len[i]; v[j] = self._val[i]
        free(self._hash); free(self._off); free(self._len); free(self._val)
        self._hash, self._off, self._len, self._val, self._cap = h, o, l, v, cap
        return 0

    cdef int32_t _lookup(self, const uint8_t* s, int32_t n, uint64_t h) noexcept nogil:
        """The value stored for ``s`` (ABSENT when not in the table)."""
        cdef Py_ssize_t j = <Py_ssize_t>(h & <uint64_t>(self._cap - 1))
        while self._len[j] >= 0:
            if self._hash[j] == h and self._len[j] == n and memcmp(self._arena + self._off[j], s, n) == 0:
                return self._val[j]
            j = (j + 1) & (self._cap - 1)
        return ABSENT

    cdef int32_t _insert(self, const uint8_t* s, int32_t n, uint64_t h, int32_t val) except -3:
        """Store ``s`` -> ``val`` unless present (then return the stored value)."""
        cdef Py_ssize_t j = <Py_ssize_t>(h & <uint64_t>(self._cap - 1))
        while self._len[j] >= 0:
            if self._hash[j] == h and self._len[j] == n and memcmp(self._arena + self._off[j], s, n) == 0:
                return self._val[j]
            j = (j + 1) & (self._cap - 1)
        while self._arena_len + n > self._arena_cap:
            self._arena_cap *= 2
            self._arena = <uint8_t*>realloc(self._arena, self._arena_cap)
            if not self._arena:
                raise MemoryError()
        memcpy(self._arena + self._arena_len, s, n)
        self._hash[j] = h; self._off[j] = self._arena_len; self._len[j] = n; self._val[j] = val
        self._arena_len += n
        self._used += 1
        if self._used * 2 > self._cap:
            self._grow_table()
        return val

    def count(self, texts):
        """Count the tokens of each text (already decoded and lower-cased as wanted).

        Returns
        -------
        indptr : int64 (n_docs + 1,)
        indices : int32 (nnz,)
            Column ids, sorted within each row: first-seen word ids (``self.words``) when
            growing, the vocabulary's values when fixed.
        counts : intc (nnz,)
        """
        cdef Py_ssize_t cap_ids = max(1024, self.n_columns + 1), n_docs = 0, nnz = 0
        cdef Py_ssize_t cap_nnz = 1 << 16
        cdef int64_t* mark = <int64_t*>malloc(cap_ids * sizeof(int64_t))
        cdef int32_t* slot = <int32_t*>malloc(cap_ids * sizeof(int32_t))
        cdef int32_t* idx = <int32_t*>malloc(cap_nnz * sizeof(int32_t))
        cdef int32_t* cnt = <int32_t*>malloc(cap_nnz * sizeof(int32_t))
        cdef int32_t* tmp = <int32_t*>malloc(cap_nnz * sizeof(int32_t))
        cdef list indptr = [0]
        cdef bytes b
        cdef const uint8_t* s
        cdef Py_ssize_t n, i, start, ncp, row0, k, width
        cdef uint32_t cp
        cdef uint8_t c
        cdef int32_t wid
        cdef uint64_t h
        cdef void* p
        try:
            if not (mark and slot and idx and cnt and tmp):
                raise MemoryError()
            for i in range(cap_ids):
                mark[i] = -1
            for text in texts:
                b = (<str?>text).encode("utf-8", "surrogatepass")
                s = b
                n = len(b)
                row0 = nnz
                i = 0
                start = -1
                ncp = 0
                while i <= n:
                    if i < n:
                        c = s[i]
                        if c < 0x80:
                            cp = c; width = 1
                        elif c < 0xE0:
                            cp = ((c & 0x1F) << 6) | (s[i + 1] & 0x3F); width = 2
                        elif c < 0xF0:
                            cp = ((c & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F); width = 3
                        else:
                            cp = (((c & 0x07) << 18) | ((s[i + 1] & 0x3F) << 12) | ((s[i + 2] & 0x3F) << 6)
                                  | (s[i + 3] & 0x3F)); width = 4
                    else:
                        cp = 0x20; width = 1
                    if _is_word(cp):
                        if start < 0:
                            start = i
                            ncp = 0
                        ncp += 1
                    elif start >= 0:
                        if ncp >= self.min_len:
                            k = i - start
                            h = _fnv(s + start, k)
                            wid = self._lookup(s + start, <int32_t>k, h)
                            if wid == ABSENT and not self.fixed:
                                wid = <int32_t>len(self.words)
                                self.words.append((s + start)[:k].decode("utf-8", "surrogatepass"))
                                self._insert(s + start, <int32_t>k, h, wid)
                            if wid >= 0:
                                if wid >= cap_ids:
                                    k = cap_ids
                                    cap_ids = max(2 * cap_ids, wid + 1)
                                    p = realloc(mark, cap_ids * sizeof(int64_t))
                                    if not p:
                                        raise MemoryError()
                                    mark = <int64_t*>p
                                    p = realloc(slot, cap_ids * sizeof(int32_t))
                                    if not p:
                                        raise MemoryError()
                                    slot = <int32_t*>p
                                    while k < cap_ids:
                                        mark[k] = -1
                                        k += 1
                                if mark[wid] != n_docs:
                                    if nnz >= cap_nnz:
                                        cap_nnz *= 2
                                        p = realloc(idx, cap_nnz * sizeof(int32_t))
                                        if not p:
                                            raise MemoryError()
                                        idx = <int32_t*>p
                                        p = realloc(cnt, cap_nnz * sizeof(int32_t))
                                        if not p:
                                            raise MemoryError()
                                        cnt = <int32_t*>p
                                        p = realloc(tmp, cap_nnz * sizeof(int32_t))
                                        if not p:
                                            raise MemoryError()
                                        tmp = <int32_t*>p
                                    mark[wid] = n_docs
                                    slot[wid] = <int32_t>nnz
                                    idx[nnz] = wid
                                    cnt[nnz] = 1
                                    nnz += 1
                                else:
                                    cnt[slot[wid]] += 1
                        start = -1
                    i += width
                # sort the row's ids; counts follow through the slot map
                k = nnz - row0
                if k > 1:
                    for i in range(row0, nnz):
                        tmp[i] = cnt[i]
                    qsort(idx + row0, k, sizeof(int32_t), _cmp_i32)
                    for i in range(row0, nnz):
                        cnt[i] = tmp[slot[idx[i]]]
                indptr.append(nnz)
                n_docs += 1
            out_idx = np.empty(nnz, dtype=np.int32)
            out_cnt = np.empty(nnz, dtype=np.intc)
            if nnz:
                memcpy(cnp.PyArray_DATA(out_idx), idx, nnz * sizeof(int32_t))
                memcpy(cnp.PyArray_DATA(out_cnt), cnt, nnz * sizeof(int32_t))
            return np.asarray(indptr, dtype=np.int64), out_idx, out_cnt
        finally:
            free(mark); free(slot); free(idx); free(cnt); free(tmp)
