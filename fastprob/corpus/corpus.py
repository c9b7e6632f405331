"""The in-memory corpus: sparse word counts with authors and time steps."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .timebins import parse_time_width, summarize


class CorpusError(ValueError):
    """A corpus, or the data it is built from, is inconsistent."""


@dataclass
class Corpus:
    """Documents by many authors over time, as CSR word counts.

    Attributes
    ----------
    indptr : int64 array of shape (n_docs + 1,)
    indices : int32 array of shape (nnz,)
        Word ids, sorted within each document.
    counts : int32 array of shape (nnz,)
    authors : int32 array of shape (n_docs,)
        Index into ``author_names``.
    times : int32 array of shape (n_docs,)
        Time step of each document, index into ``time_values``.
    timestamps : float64 array of shape (n_docs,)
        The raw timestamp (days since 1970-01-01 for dates; the given number otherwise).
    vocab : list of str, length n_words
    author_names : list of str, length n_authors
    time_values : float64 array of shape (n_steps,)
        Real-valued time of each step (strictly increasing), in units of the bin width;
        gaps between them are the Brownian-motion gaps Δs of the model.
    time_mode : {"absolute", "relative"}
    time_width : float or str
        Bin width in timestamp units, or a calendar unit such as ``"year"``, ``"month"``,
        ``"4 years"`` (see :mod:`fastprob.corpus.timebins`).
    time_origin : float or None
        Absolute mode: the timestamp of step 0's bin start (bins are
        ``floor((timestamp - time_origin) / time_width)`` for a numeric width; for a
        calendar unit the first day of the calendar period holding the first timestamp).
        ``None`` when unknown (then ``build_corpus(..., like=this)`` refuses to bin new
        documents).
    author_origin : float64 array of shape (n_authors,) or None
        Relative mode: each author's first timestamp (their bin 0).
    report : dict
        What the builder dropped or skipped, and why.
    """

    indptr: np.ndarray
    indices: np.ndarray
    counts: np.ndarray
    authors: np.ndarray
    times: np.ndarray
    timestamps: np.ndarray
    vocab: list
    author_names: list
    time_values: np.ndarray
    time_mode: str = "absolute"
    time_width: float | str = 1.0
    report: dict = field(default_factory=dict)
    time_origin: float | None = None
    author_origin: np.ndarray | None = None

    def __post_init__(self):
        self.indptr = np.ascontiguousarray(self.indptr, dtype=np.int64)
        self.indices = np.ascontiguousarray(self.indices, dtype=np.int32)
        self.counts = np.ascontiguousarray(self.counts, dtype=np.int32)
        self.authors = np.ascontiguousarray(self.authors, dtype=np.int32)
        self.times = np.ascontiguousarray(self.times, dtype=np.int32)
        self.timestamps = np.ascontiguousarray(self.timestamps, dtype=np.float64)
        self.time_values = np.ascontiguousarray(self.time_values, dtype=np.float64)
        self.vocab = list(self.vocab)
        self.author_names = list(self.author_names)
        if self.time_origin is not None:
            self.time_origin = float(self.time_origin)
        if self.author_origin is not None:
            self.author_origin = np.ascontiguousarray(self.author_origin, dtype=np.float64)
        self.validate()

    # -- checks ---------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`CorpusError` if the arrays do not form a consistent corpus."""
        D = self.indptr.shape[0] - 1
        if D < 0 or self.indptr[0] != 0:
            raise CorpusError("indptr must have length n_docs + 1 and start at 0")
        if self.indptr[-1] != self.indices.shape[0] or self.indices.shape != self.counts.shape:
            raise CorpusError(
                f"CSR arrays disagree: indptr ends at {self.indptr[-1]} but there are "
                f"{self.indices.shape[0]} indices and {self.counts.shape[0]} counts")
        if D > 0 and np.any(np.diff(self.indptr) < 0):
            raise CorpusError("indptr must be non-decreasing")
        for name in ("authors", "times", "timestamps"):
            if getattr(self, name).shape != (D,):
                raise CorpusError(f"{name} has shape {getattr(self, name).shape}, expected ({D},)")
        V = len(self.vocab)
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= V):
            raise CorpusError(
                f"word ids span [{self.indices.min()}, {self.indices.max()}] but the vocabulary "
                f"has {V} words: the vocabulary file does not belong to these counts")
        if self.counts.size and self.counts.min() <= 0:
            raise CorpusError("word counts must be positive")
        if D and (self.authors.min() < 0 or self.authors.max() >= len(self.author_names)):
            raise CorpusError(
                f"author ids must lie in [0, {len(self.author_names)}); "
                f"got [{self.authors.min()}, {self.authors.max()}]")
        T = self.time_values.shape[0]
        if D and (self.times.min() < 0 or self.times.max() >= T):
            raise CorpusError(f"time steps must lie in [0, {T}); got [{self.times.min()}, {self.times.max()}]")
        if T > 1 and np.any(np.diff(self.time_values) <= 0):
            raise CorpusError("time_values must be strictly increasing")
        if not np.all(np.isfinite(self.time_values)):
            raise CorpusError("time_values must be finite")
        try:
            self.time_width = parse_time_width(self.time_width).spec
        except ValueError as exc:
            raise CorpusError(str(exc)) from None
        if self.time_origin is not None and not np.isfinite(self.time_origin):
            raise CorpusError(f"time_origin must be finite, got {self.time_origin}")
        if self.author_origin is not None and self.author_origin.shape != (len(self.author_names),):
            raise CorpusError(f"author_origin has shape {self.author_origin.shape}, expected "
                              f"({len(self.author_names)},) (one first timestamp per author)")

    # -- sizes ----------------------------------------------------------------------
    @property
    def n_docs(self) -> int:
        return self.indptr.shape[0] - 1

    @property
    def n_words(self) -> int:
        return len(self.vocab)

    @property
    def n_authors(self) -> int:
        return len(self.author_names)

    @property
    def n_steps(self) -> int:
        return self.time_values.shape[0]

    @property
    def nnz(self) -> int:
        return int(self.indices.shape[0])

    @property
    def n_tokens(self) -> int:
        return int(self.counts.sum(dtype=np.int64))

    @property
    def doc_lengths(self) -> np.ndarray:
        """Tokens per document, int64 of shape (n_docs,)."""
        csum = np.concatenate([[0], np.cumsum(self.counts, dtype=np.int64)])
        return csum[self.indptr[1:]] - csum[self.indptr[:-1]]

    def __len__(self) -> int:
        return self.n_docs

    def time_bins(self) -> dict:
        """How timestamps map to time steps: mode, unit (``"year"`` ... ``"day"`` or
        ``"number"``), count, width, number of steps, start of the first and last step
        (see :func:`fastprob.corpus.timebins.summarize`)."""
        dates = (self.report.get("time_bins") or {}).get("first_bin_start")
        return summarize(self.time_mode, self.time_width, self.time_origin, self.time_values,
                         dates=isinstance(dates, str))

    def __repr__(self) -> str:
        return (f"Corpus(n_docs={self.n_docs}, n_words={self.n_words}, n_tokens={self.n_tokens}, "
                f"n_authors={self.n_authors}, n_steps={self.n_steps}, time_mode={self.time_mode!r})")

    # -- conversions ----------------------------------------------------------------
    def to_scipy(self):
        """The counts as a ``scipy.sparse.csr_matrix`` of shape (n_docs, n_words)."""
        import scipy.sparse as sp

        return sp.csr_matrix((self.counts, self.indices, self.indptr), shape=(self.n_docs, self.n_words))

    def _with(self, **arrays) -> "Corpus":
        kw = dict(indptr=self.indptr, indices=self.indices, counts=self.counts, authors=self.authors,
                  times=self.times, timestamps=self.timestamps, vocab=self.vocab,
                  author_names=self.author_names, time_values=self.time_values,
                  time_mode=self.time_mode, time_width=self.time_width, report={},
                  time_origin=self.time_origin, author_origin=self.author_origin)
        kw.update(arrays)
        if "author_origin" not in arrays and len(kw["author_names"]) != len(self.author_names):
            kw["author_origin"] = None  # another author list: the old origins do not apply
        return Corpus(**kw)

    def subset(self, docs) -> "Corpus":
        """A new corpus of the documents ``docs`` (indices or boolean mask), same vocab/authors/steps."""
        docs = np.asarray(docs)
        if docs.dtype == bool:
            docs = np.flatnonzero(docs)
        docs = docs.astype(np.int64, copy=False)
        starts, ends = self.indptr[docs], self.indptr[docs + 1]
        lens = ends - starts
        indptr = np.zeros(docs.shape[0] + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])
        # gather positions of all kept non-zeros without a Python loop
        pos = np.repeat(starts - indptr[:-1], lens) + np.arange(indptr[-1], dtype=np.int64)
        return self._with(indptr=indptr, indices=self.indices[pos], counts=self.counts[pos],
                          authors=self.authors[docs], times=self.times[docs],
                          timestamps=self.timestamps[docs])

    def split(self, test_fraction: float = 0.1, seed: int = 0):
        """Hold out ``test_fraction`` of each author's documents (the thesis held out 10%).

        Authors with a single document keep it in training (their persona must be learned).
        Returns ``(train, test)`` sharing vocabulary, authors and time steps.
        """
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        rng = np.random.default_rng(seed)
        order = np.argsort(self.authors, kind="stable")
        bounds = np.flatnonzero(np.diff(self.authors[order])) + 1
        test = np.zeros(self.n_docs, dtype=bool)
        for group in np.split(order, bounds):
            n_test = int(np.floor(test_fraction * group.shape[0] + 0.5))
            if group.shape[0] > 1 and n_test > 0:
                test[rng.choice(group, size=min(n_test, group.shape[0] - 1), replace=False)] = True
        return self.subset(~test), self.subset(test)

    def iter_batches(self, batch_size: int, shuffle: bool = True, seed=None):
        """Yield sub-corpora of ``batch_size`` documents (contiguous slices of a random order)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        order = np.random.default_rng(seed).permutation(self.n_docs) if shuffle else np.arange(self.n_docs)
        for i in range(0, self.n_docs, batch_size):
            yield self.subset(order[i:i + batch_size])

    # -- I/O (implemented in sibling modules) -----------------------------------------
    def save(self, path, shard_docs: int | None = None) -> None:
        """Write the binary shard format (see :mod:`fastprob.corpus.shards`)."""
        from .shards import save_corpus

        save_corpus(self, path, shard_docs=shard_docs)

    @classmethod
    def load(cls, path, mmap: bool = True, verify: bool = True) -> "Corpus":
        """Read a corpus written by :meth:`save` (checksums verified)."""
        from .shards import load_corpus

        return load_corpus(path, mmap=mmap, verify=verify)

    @classmethod
    def from_records(cls, records, **kwargs) -> "Corpus":
        """Build from an iterable of (author, timestamp, text); see :func:`fastprob.corpus.build_corpus`."""
        from .build import build_corpus

        return build_corpus(records, **kwargs)
