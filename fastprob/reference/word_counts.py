"""Pure-Python reference of ``csrc/word_counts.pyx`` (same class and method).

Tokens are ``re.findall(r"(?u)\\b\\w{min_len,}\\b", text)``, i.e. scikit-learn's default token
pattern when ``min_len == 2``; stop words are dropped; each document's counts are returned
as one CSR row with sorted column ids.
"""
from __future__ import annotations

import re

import numpy as np


class WordCounter:
    """See ``fastprob._csrc.word_counts.WordCounter``."""

    def __init__(self, min_len: int = 2, stop_words=(), vocabulary=None):
        if min_len < 1:
            raise ValueError(f"min_len must be >= 1, got {min_len}")
        self.min_len = int(min_len)
        self._re = re.compile(r"(?u)\b\w{%d,}\b" % self.min_len)
        self._stop = frozenset(stop_words)
        self.fixed = vocabulary is not None
        self._ids = {w: j for w, j in vocabulary.items() if w not in self._stop} if self.fixed else {}
        for w, j in self._ids.items():
            if j < 0 or j > 2**31 - 2:
                raise ValueError(f"vocabulary index {j} of {w!r} is outside 0 .. 2**31 - 2")
        self.n_columns = max(self._ids.values(), default=-1) + 1 if self.fixed else 0
        self.words: list[str] = []

    def count(self, texts):
        """(indptr int64, indices int32 sorted per row, counts intc) of the texts' tokens."""
        ids, words, stop = self._ids, self.words, self._stop
        indptr, indices, counts = [0], [], []
        for text in texts:
            row: dict[int, int] = {}
            for tok in self._re.findall(text):
                if tok in stop:
                    continue
                j = ids.get(tok)
                if j is None:
                    if self.fixed:
                        continue
                    j = ids[tok] = len(words)
                    words.append(tok)
                row[j] = row.get(j, 0) + 1
            for j in sorted(row):
                indices.append(j)
                counts.append(row[j])
            indptr.append(len(indices))
        return (np.asarray(indptr, dtype=np.int64), np.asarray(indices, dtype=np.int32),
                np.asarray(counts, dtype=np.intc))
