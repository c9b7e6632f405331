# cython: language_level=3
"""Hashing tokenizer: UTF-8 bytes -> word ids with no per-token Python objects.

Same behaviour as ``fastprob/reference/tokenize.py`` (see its docstring for what a
letter is).  The vocabulary is an open-addressing hash table (FNV-1a over the token's
bytes) whose keys live in one byte arena; a Python ``str`` is made only the first time a
word is seen.
"""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcmp, memcpy

cnp.import_array()

cdef inline bint _is_letter(uint32_t cp) noexcept nogil:
    if cp < 0x80:
        return 0x61 <= cp <= 0x7A
    if cp < 0xC0:
        return False
    if cp <= 0x24F:
        return cp != 0xD7 and cp != 0xF7
    if cp < 0x370:
        return False
    if cp <= 0x1FFF:
        return True
    return 0x3040 <= cp <= 0xD7FF


cdef inline uint64_t _fnv(const void* p, Py_ssize_t n) noexcept nogil:
    cdef const uint8_t* s = <const uint8_t*>p
    cdef uint64_t h = 1469598103934665603ULL
    cdef Py_ssize_t i
    for i in range(n):
        h = (h ^ s[i]) * 1099511628211ULL
    return h


cdef class HashTokenizer:
    cdef uint64_t* _hash
    cdef int64_t* _off
    cdef int32_t* _len
    cdef int32_t* _val
    cdef Py_ssize_t _cap
    cdef Py_ssize_t _used
    cdef char* _arena
    cdef Py_ssize_t _arena_len
    cdef Py_ssize_t _arena_cap
    cdef readonly int min_len
    cdef public list words
    # output buffer reused across calls
    cdef cnp.ndarray _buf

    def __cinit__(self, int min_len=3, stopwords=()):
        self._cap = 1 << 16
        self._hash = <uint64_t*>malloc(self._cap * sizeof(uint64_t))
        self._off = <int64_t*>malloc(self._cap * sizeof(int64_t))
        self._len = <int32_t*>malloc(self._cap * sizeof(int32_t))
        self._val = <int32_t*>malloc(self._cap * sizeof(int32_t))
        self._arena_cap = 1 << 20
        self._arena = <char*>malloc(self._arena_cap)
        if not (self._hash and self._off and self._len and self._val and self._arena):
            raise MemoryError()
        for i in range(self._cap):
            self._len[i] = -1
        self._used = 0
        self._arena_len = 0

    def __init__(self, int min_len=3, stopwords=()):
        if min_len < 1:
            raise ValueError(f"min_len must be >= 1, got {min_len}")
        self.min_len = min_len
        self.words = []
        cdef bytes b
        cdef const char* p
        for w in stopwords:
            b = w.encode("utf-8")
            p = b
            self._insert(p, len(b), _fnv(p, len(b)), -2)
        self._buf = np.empty(1 << 16, dtype=np.int32)

    def __dealloc__(self):
        free(self._hash); free(self._off); free(self._len); free(self._val); free(self._arena)

    def __len__(self):
        return len(self.words)

    cdef void _grow_table(self) except *:
        cdef Py_ssize_t old_cap = self._cap, i, j, cap = self._cap * 2
        cdef uint64_t* h = <uint64_t*>malloc(cap * sizeof(uint64_t))
        cdef int64_t* o = <int64_t*>malloc(cap * sizeof(int64_t))
        cdef int32_t* l = <int32_t*>malloc(cap * sizeof(int32_t))
        cdef int32_t* v = <int32_t*>malloc(cap * sizeof(int32_t))
        if not (h and o and l and v):
            raise MemoryError()
        for i in range(cap):
            l[i] = -1
        for i in range(old_cap):
            if self._len[i] >= 0:
                j = <Py_ssize_t>(self._hash[i] & <uint64_t>(cap - 1))
                while l[j] >= 0:
                    j = (j + 1) & (cap - 1)
                h[j] = self._hash[i]; o[j] = self._off[i]; l[j] = self._len[i]; v[j] = self._val[i]
        free(self._hash); free(self._off); free(self._len); free(self._val)
        self._hash, self._off, self._len, self._val, self._cap = h, o, l, v, cap

    cdef int32_t _insert(self, const char* s, int32_t n, uint64_t h, int32_t val) except -3:
        """Find ``s``; when absent add it with ``val`` (val == -1: add as the next word id)."""
        cdef Py_ssize_t j = <Py_ssize_t>(h & <uint64_t>(self._cap - 1))
        while self._len[j] >= 0:
            if self._hash[j] == h and self._len[j] == n and memcmp(self._arena + self._off[j], s, n) == 0:
                return self._val[j]
            j = (j + 1) & (self._cap - 1)
        if val == -3:  # lookup only
            return -1
        if val == -1:
            val = <int32_t>len(self.words)
            self.words.append(s[:n].decode("utf-8"))
        while self._arena_len + n > self._arena_cap:
            self._arena_cap *= 2
            self._arena = <char*>realloc(self._arena, self._arena_cap)
            if not self._arena:
                raise MemoryError()
        memcpy(self._arena + self._arena_len, s, n)
        self._hash[j] = h; self._off[j] = self._arena_len; self._len[j] = n; self._val[j] = val
        self._arena_len += n
        self._used += 1
        if self._used * 2 > self._cap:
            self._grow_table()
        return val

    cdef Py_ssize_t _scan(self, const uint8_t* s, Py_ssize_t n, bint grow, Py_ssize_t out_pos) except -1:
        """Append the ids of the tokens of ``s`` to self._buf from out_pos; return new end."""
        cdef Py_ssize_t i = 0, start = -1, ncp = 0, k
        cdef uint32_t cp
        cdef uint8_t c
        cdef int width
        cdef int32_t wid
        cdef int32_t* buf
        while i <= n:
            if i < n:
                c = s[i]
                if c < 0x80:
                    cp = c; width = 1
                elif c < 0xE0:
                    cp = ((c & 0x1F) << 6) | (s[i + 1] & 0x3F) if i + 1 < n else 0; width = 2
                elif c < 0xF0:
                    cp = ((c & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F) if i + 2 < n else 0; width = 3
                else:
                    cp = 0x10000; width = 4  # astral planes: not letters
            else:
                cp = 0; width = 1
            if _is_letter(cp):
                if start < 0:
                    start = i; ncp = 0
                ncp += 1
            elif start >= 0:
                if ncp >= self.min_len:
                    k = i - start
                    wid = self._insert(<const char*>(s + start), <int32_t>k, _fnv(s + start, k),
                                       -1 if grow else -3)
                    if wid != -2:
                        if out_pos >= self._buf.shape[0]:
                            self._buf = np.resize(self._buf, 2 * self._buf.shape[0])
                        buf = <int32_t*>cnp.PyArray_DATA(self._buf)
                        buf[out_pos] = wid
                        out_pos += 1
                start = -1
            i += width
        return out_pos

    def tokens(self, str text):
        """The token strings of ``text`` (for inspection; not the fast path)."""
        from fastprob.reference.tokenize import _TOKEN_RE
        stop = {w for w in self._stopwords()}
        return [t for t in _TOKEN_RE.findall(text.lower()) if len(t) >= self.min_len and t not in stop]

    def _stopwords(self):
        cdef Py_ssize_t j
        out = []
        for j in range(self._cap):
            if self._len[j] >= 0 and self._val[j] == -2:
                out.append(self._arena[self._off[j]:self._off[j] + self._len[j]].decode("utf-8"))
        return out

    def encode(self, str text, bint grow=True):
        """Word ids of ``text`` (int32); with ``grow=False`` unseen words give -1."""
        cdef bytes b = text.lower().encode("utf-8", "surrogatepass")
        cdef Py_ssize_t end = self._scan(<const uint8_t*>b, len(b), grow, 0)
        return self._buf[:end].copy()

    def encode_many(self, texts, bint grow=True):
        """Concatenated ids of many texts: (tokens int32, doc_ptr int64)."""
        cdef Py_ssize_t pos = 0
        cdef bytes b
        lens = [0]
        for text in texts:
            b = text.lower().encode("utf-8", "surrogatepass")
            pos = self._scan(<const uint8_t*>b, len(b), grow, pos)
            lens.append(pos)
        out = self._buf[:pos].copy()
        if self._buf.shape[0] > (1 << 22):
            self._buf = np.empty(1 << 16, dtype=np.int32)
        return out, np.asarray(lens, dtype=np.int64)


