"""scikit-learn's ``CountVectorizer`` / ``TfidfVectorizer`` with fastprob's compiled word counter.

The drop-ins override only the counting step (``_count_vocab``): when the configuration is
one the Cython counter reproduces exactly - word analyzer, unigrams, no custom
preprocessor/tokenizer, no accent stripping, the default token pattern ``(?u)\\b\\w\\w+\\b``
(or ``\\b\\w+\\b``), any stop-word list, lower-casing on or off, any input type (decoding is
scikit-learn's own) - it counts every document in one compiled pass; otherwise it calls
scikit-learn's code.  Everything around it (parameter validation, vocabulary sorting,
min_df / max_df / max_features, binary, dtype, TF-IDF) is scikit-learn's, so outputs are
identical: the same vocabulary dict (insertion order included), the same sparse matrix
(dtype, index dtype, sorted indices).  :func:`fastprob.compat.counters` counts which path
each call took.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction import text as _sk

from . import _dispatch
from .compat._counters import record
from .compat._patch import Patcher

# token patterns the compiled counter reproduces -> fewest code points in a token
TOKEN_PATTERNS = {r"(?u)\b\w\w+\b": 2, r"\b\w\w+\b": 2, r"(?u)\b\w+\b": 1, r"\b\w+\b": 1}
_INT32_MAX = np.iinfo(np.int32).max


def _align(X):
    # scikit-learn >= 1.8 builds a csr_array and converts it to the configured sparse API
    f = getattr(_sk, "_align_api_if_sparse", None)
    return f(X) if f is not None else X


class _FastCounting:
    """Mixin: the compiled ``_count_vocab`` of scikit-learn's vectorizers."""

    _adapter = "sklearn.CountVectorizer"

    def fast_path_reason(self):
        """Why this configuration runs scikit-learn's counting (None: it runs fastprob's)."""
        if callable(self.analyzer):
            return "callable analyzer"
        if self.analyzer != "word":
            return f"analyzer={self.analyzer!r}"
        if tuple(self.ngram_range) != (1, 1):
            return f"ngram_range={tuple(self.ngram_range)}"
        if self.preprocessor is not None:
            return "custom preprocessor"
        if self.tokenizer is not None:
            return "custom tokenizer"
        if self.strip_accents is not None:
            return "strip_accents"
        if self.token_pattern not in TOKEN_PATTERNS:
            return "token_pattern other than (?u)\\b\\w\\w+\\b or (?u)\\b\\w+\\b"
        return None

    def _count_vocab(self, raw_documents, fixed_vocab):
        reason = self.fast_path_reason()
        if reason is None:
            # scikit-learn's own checks and warnings (stop-word consistency, bad stop_words)
            self.build_analyzer()
            stop = self.get_stop_words()
            if stop is not None and not all(isinstance(w, str) for w in stop):
                reason = "non-string stop words"
        if reason is not None:
            record(self._adapter, False, reason)
            return super()._count_vocab(raw_documents, fixed_vocab)
        docs = raw_documents if isinstance(raw_documents, (list, tuple)) else list(raw_documents)
        decode, lower = self.decode, self.lowercase
        texts = (decode(d).lower() for d in docs) if lower else (decode(d) for d in docs)
        counter_cls = _dispatch.resolve("word_counts")
        vocab_in = self.vocabulary_ if fixed_vocab else None
        counter = counter_cls(TOKEN_PATTERNS[self.token_pattern], stop or (), vocab_in)
        indptr, indices, counts = counter.count(texts)
        if (not fixed_vocab and not counter.words) or indptr[-1] > _INT32_MAX:
            # scikit-learn's own error (empty vocabulary) or 64-bit indexing
            record(self._adapter, False, "empty vocabulary or more than 2**31 - 1 entries")
            return super()._count_vocab(docs, fixed_vocab)
        record(self._adapter, True)
        vocabulary = vocab_in if fixed_vocab else {w: j for j, w in enumerate(counter.words)}
        make = sp.csr_array if hasattr(_sk, "_align_api_if_sparse") else sp.csr_matrix
        X = make((counts, indices, indptr.astype(np.int32)), shape=(len(indptr) - 1, len(vocabulary)),
                 dtype=self.dtype)
        X.sort_indices()  # already sorted row by row; this records it as scikit-learn's does
        return vocabulary, _align(X)


class CountVectorizer(_FastCounting, _sk.CountVectorizer):
    """scikit-learn's ``CountVectorizer`` (same parameters and results), counting with
    fastprob's compiled word counter when the configuration allows (see the module doc)."""


class TfidfVectorizer(_FastCounting, _sk.TfidfVectorizer):
    """scikit-learn's ``TfidfVectorizer`` with the same compiled counting step."""

    _adapter = "sklearn.TfidfVectorizer"


_PATCHER = Patcher({"sklearn.feature_extraction.text": ["CountVectorizer", "TfidfVectorizer"],
                    "sklearn.feature_extraction": ["CountVectorizer", "TfidfVectorizer"]},
                   {"CountVectorizer": CountVectorizer, "TfidfVectorizer": TfidfVectorizer})


def install() -> None:
    """Make ``sklearn.feature_extraction.text.CountVectorizer`` / ``TfidfVectorizer`` these drop-ins."""
    _PATCHER.install()


def uninstall() -> None:
    """Restore scikit-learn's classes."""
    _PATCHER.uninstall()


__all__ = ["CountVectorizer", "TfidfVectorizer", "install", "uninstall"]
