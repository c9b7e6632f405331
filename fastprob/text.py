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

Two of scikit-learn's post-processing steps are re-implemented with their per-term Python
loops moved into C-level calls (``sorted`` on the terms alone, ``dict.update``,
``itertools.compress``, numpy): ``_sort_features`` and ``_limit_features``.  They give the
same results bit for bit - the same feature selection, ties included (the same
``argsort`` call on the same array decides them), the same vocabulary order and value
types (Python ints after sorting, numpy ints after limiting), the same matrix - and
scikit-learn's older return convention of ``_limit_features`` (matrix, removed terms) is
followed where that is the installed version's.  With ``max_features`` on a large
vocabulary they were a third of the drop-in's time (``python -m bench.bench_countvectorizer``).
"""
from __future__ import annotations

import itertools

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


_SK_COUNT = _sk.CountVectorizer  # bound before install() can rebind the module name
_LIMIT_RETURNS_PAIR = []  # [bool] once probed: does this scikit-learn's _limit_features return (X, removed)?


def _limit_returns_pair() -> bool:
    """Probe scikit-learn's own ``_limit_features`` once on a 2 x 2 matrix (older releases
    return the removed terms too and store them as ``stop_words_``)."""
    if not _LIMIT_RETURNS_PAIR:
        out = _SK_COUNT()._limit_features(sp.csr_matrix(np.array([[1, 2], [0, 1]])), {"a": 0, "b": 1},
                                          high=2, low=1, limit=1)
        _LIMIT_RETURNS_PAIR.append(isinstance(out, tuple))
    return _LIMIT_RETURNS_PAIR[0]


class _FastPostprocessing:
    """Mixin: scikit-learn's ``_sort_features`` / ``_limit_features`` without per-term Python
    loops, same results (module doc)."""

    def _sort_features(self, X, vocabulary):
        """Renumber the features in term order: vocabulary values rewritten in place (dict
        order kept, Python ints), X's column indices mapped, as scikit-learn does."""
        terms = sorted(vocabulary)  # unique keys: the order of sorting (term, index) pairs
        n = len(terms)
        old = np.fromiter(map(vocabulary.__getitem__, terms), dtype=np.intp, count=n)
        new_of_old = np.empty(n, dtype=X.indices.dtype)
        new_of_old[old] = np.arange(n, dtype=X.indices.dtype)
        vocabulary.update(zip(terms, range(n)))
        X.indices = new_of_old.take(X.indices, mode="clip")
        return X

    def _limit_features(self, X, vocabulary, high=None, low=None, limit=None):
        """Keep the features whose document frequency lies in [low, high], then the ``limit``
        of largest total count; vocabulary rewritten in place as scikit-learn does."""
        if high is None and low is None and limit is None:
            return super()._limit_features(X, vocabulary, high, low, limit)
        df = _sk._document_frequency(X)
        keep = np.ones(len(df), dtype=bool)
        if high is not None:
            keep &= df <= high
        if low is not None:
            keep &= df >= low
        if limit is not None and keep.sum() > limit:
            cand = np.flatnonzero(keep)
            tf = np.asarray(X.sum(axis=0)).ravel()
            # scikit-learn's exact call: the default (unstable) argsort of -tf over the
            # candidates in column order is what breaks ties at the cut
            top = cand[(-tf[keep]).argsort()[:limit]]
            keep = np.zeros(len(df), dtype=bool)
            keep[top] = True
        new_index = np.cumsum(keep) - 1
        terms = list(vocabulary)
        old = np.fromiter(vocabulary.values(), dtype=np.intp, count=len(terms))
        survives = keep[old]
        kept_terms = list(itertools.compress(terms, survives.tolist()))
        removed = set(itertools.compress(terms, (~survives).tolist())) if _limit_returns_pair() else None
        vocabulary.clear()
        vocabulary.update(zip(kept_terms, new_index[old[survives]]))  # numpy ints, as scikit-learn's
        kept = np.flatnonzero(keep)
        if len(kept) == 0:
            raise ValueError("After pruning, no terms remain. Try a lower min_df or a higher max_df.")
        return (X[:, kept], removed) if removed is not None else X[:, kept]


class CountVectorizer(_FastCounting, _FastPostprocessing, _sk.CountVectorizer):
    """scikit-learn's ``CountVectorizer`` (same parameters and results), counting with
    fastprob's compiled word counter when the configuration allows (see the module doc)."""


class TfidfVectorizer(_FastCounting, _FastPostprocessing, _sk.TfidfVectorizer):
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
