"""Pure-Python reference of the hashing tokenizer in ``csrc/tokenize.pyx``.

A *letter* is a-z after ``str.lower()``, or a code point in the Latin-1 letters
U+00C0-U+024F (minus × and ÷), U+0370-U+1FFF (Greek, Cyrillic, ... scripts) or
U+3040-U+D7FF (CJK, Hangul).  Digits, ASCII punctuation, the Latin-1 symbols and the
U+2000-U+303F block (typographic quotes, dashes, symbols) separate tokens.  A token is
a maximal run of letters with at least ``min_len`` code points.
"""
from __future__ import annotations

import re

import numpy as np

LETTER_CLASS = "a-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u0370-\u1fff\u3040-\ud7ff"
_TOKEN_RE = re.compile(f"[{LETTER_CLASS}]+")

OOV = -1  # an unseen word when the tokenizer does not grow its vocabulary


class HashTokenizer:
    """Text -> word ids, growing a vocabulary in first-seen order.

    Parameters
    ----------
    min_len : int
        Shortest token kept, in code points.
    stopwords : iterable of str
        Words never emitted (they get no id).
    """

    def __init__(self, min_len: int = 3, stopwords=()):
        if min_len < 1:
            raise ValueError(f"min_len must be >= 1, got {min_len}")
        self.min_len = int(min_len)
        self._ids: dict[str, int] = {}
        self._stop = set(stopwords)
        self.words: list[str] = []

    def __len__(self) -> int:
        return len(self.words)

    def tokens(self, text: str) -> list[str]:
        """The token strings of ``text`` (stop-words and short runs removed)."""
        m, stop = self.min_len, self._stop
        return [t for t in _TOKEN_RE.findall(text.lower()) if len(t) >= m and t not in stop]

    def encode(self, text: str, grow: bool = True) -> np.ndarray:
        """Word ids of ``text`` (int32); with ``grow=False`` unseen words give -1."""
        ids, words = self._ids, self.words
        out = []
        for t in self.tokens(text):
            i = ids.get(t)
            if i is None:
                if grow:
                    i = ids[t] = len(words)
                    words.append(t)
                else:
                    i = OOV
            out.append(i)
        return np.asarray(out, dtype=np.int32)

    def encode_many(self, texts, grow: bool = True):
        """Concatenated ids of many texts: (tokens int32, doc_ptr int64)."""
        parts, lens = [], [0]
        for text in texts:
            a = self.encode(text, grow)
            parts.append(a)
            lens.append(a.shape[0])
        tokens = np.concatenate(parts) if parts else np.zeros(0, np.int32)
        return tokens.astype(np.int32, copy=False), np.cumsum(lens, dtype=np.int64)
