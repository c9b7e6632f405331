"""Records (author, timestamp, text) -> :class:`Corpus`.

The pipeline: validate each record (bad ones are skipped and counted, or raise with
``errors="raise"``), tokenize in chunks with the compiled hashing tokenizer (ids grow in
first-seen order, no per-token Python work), count chunk by chunk into CSR, optionally
lemmatize by a vocabulary map, prune the vocabulary (min_df / max_df / max_features),
drop short documents and bin timestamps into time steps.
"""
from __future__ import annotations

import datetime as _dt
import math
import warnings
from importlib import resources

import numpy as np

from .. import _dispatch
from . import timebins
from .corpus import Corpus, CorpusError

_EPOCH = _dt.datetime(1970, 1, 1)


def english_stopwords() -> list[str]:
    """The stop-word list shipped with fastprob (``fastprob/corpus/stopwords_en.txt``)."""
    text = resources.files("fastprob.corpus").joinpath("stopwords_en.txt").read_text("utf-8")
    return [w.strip() for w in text.splitlines() if w.strip() and not w.startswith("#")]


def to_timestamp(value) -> float:
    """A number, a date/datetime or an ISO date string -> float (dates: days since 1970-01-01).

    Returns NaN for a missing or unparseable value (the caller decides what to do).
    """
    return parse_timestamp(value)[0]


def parse_timestamp(value) -> tuple[float, str | None]:
    """``(to_timestamp(value), kind)`` with kind ``"number"`` (taken as given), ``"date"``
    (converted to days since 1970-01-01) or ``None`` (missing / unparseable).

    Builders refuse a corpus that mixes the two kinds: ``"2012-01-15"`` becomes day
    15354 but ``"1326585600"`` (Unix seconds) or ``"2012"`` (a year) stay as they are, so
    mixed records would land millions of steps apart.
    """
    if value is None:
        return math.nan, None
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        v = float(value)
        return v, ("number" if math.isfinite(v) else None)
    if _sentinel_date(value):
        return math.nan, None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return (value - _EPOCH).total_seconds() / 86400.0, "date"
    if isinstance(value, _dt.date):
        return float((value - _EPOCH.date()).days), "date"
    if isinstance(value, str):
        s = value.strip()
        try:
            return parse_timestamp(float(s))
        except ValueError:
            pass
        try:
            return parse_timestamp(_dt.datetime.fromisoformat(s))
        except ValueError:
            return math.nan, None
    return math.nan, None


class TimestampKinds:
    """Per-kind range of the timestamps seen, to reject a mix of units that cannot share a
    time axis.

    Dates become days since 1970-01-01 and numbers are used as given, so numbers mixed with
    dates must be day counts.  A number outside the dates' range widened by that range's
    width (at least a year) on each side is taken for another unit (a year such as 2012,
    Unix seconds such as 1326585600) and :meth:`check` raises, naming both records.
    """

    def __init__(self):
        self.lo: dict = {}
        self.hi: dict = {}

    def see(self, kind, t, value, where) -> None:
        if kind is None or not math.isfinite(t):
            return
        if kind not in self.lo or t < self.lo[kind][0]:
            self.lo[kind] = (t, value, where)
        if kind not in self.hi or t > self.hi[kind][0]:
            self.hi[kind] = (t, value, where)

    def check(self) -> None:
        if len(self.lo) < 2:
            return
        d_lo, d_hi = self.lo["date"][0], self.hi["date"][0]
        pad = max(d_hi - d_lo, 366.0)
        for t, value, where in (self.lo["number"], self.hi["number"]):
            if not d_lo - pad <= t <= d_hi + pad:
                _, dv, dw = self.lo["date"]
                raise CorpusError(
                    f"timestamps mix dates ({dw}: {dv!r}) with a number that is not a day count "
                    f"near them ({where}: {value!r}); dates become days since 1970-01-01 and "
                    "numbers are used as given (so a year or Unix seconds lands far away): "
                    "write all timestamps in one format")


def _sentinel_date(value) -> bool:
    """Year 1 and 9999 dates are placeholders ('unknown'), not times."""
    return isinstance(value, (_dt.date, _dt.datetime)) and value.year in (1, 9999)


def _records(records):
    for r in records:
        if isinstance(r, dict):
            yield r.get("author"), r.get("timestamp"), r.get("text")
        else:
            try:
                a, t, x = r
            except (TypeError, ValueError):
                yield None, None, _BadRecord(r)
                continue
            yield a, t, x


class _BadRecord:
    def __init__(self, r):
        self.r = r


def _tokenizer(min_len, stopwords):
    cls = _dispatch.resolve("tokenizer")
    return cls(min_len=min_len, stopwords=stopwords)


class _UserTokenizer:
    """Wraps a user's ``text -> list[str]`` callable into the encode_many interface."""

    def __init__(self, fn, stopwords):
        self.fn, self._stop, self._ids, self.words = fn, set(stopwords), {}, []

    def encode_many(self, texts, grow=True):
        out, lens = [], [0]
        ids, words = self._ids, self.words
        for text in texts:
            for t in self.fn(text):
                if t in self._stop:
                    continue
                i = ids.get(t)
                if i is None:
                    if not grow:
                        out.append(-1)
                        continue
                    i = ids[t] = len(words)
                    words.append(t)
                out.append(i)
            lens.append(len(out))
        return np.asarray(out, dtype=np.int32), np.asarray(lens, dtype=np.int64)


def _prune(df, tf, vocab, n_docs, min_df, max_df, max_features):
    """Old id -> new id (-1 dropped); new ids by decreasing frequency, ties by word."""
    lo = min_df if isinstance(min_df, (int, np.integer)) else math.ceil(min_df * n_docs)
    hi = max_df if isinstance(max_df, (int, np.integer)) else math.floor(max_df * n_docs)
    keep = np.flatnonzero((df >= lo) & (df <= hi))
    words = np.asarray(vocab, dtype=object)
    # sort by (-tf, word): lexsort's last key is primary
    order = keep[np.lexsort((words[keep], -tf[keep]))] if keep.size else keep
    if max_features is not None:
        order = order[:max_features]
    mapping = np.full(len(vocab), -1, dtype=np.int32)
    mapping[order] = np.arange(order.shape[0], dtype=np.int32)
    return mapping, [vocab[i] for i in order]


def build_corpus(records, *, min_len: int = 3, stopwords="english", tokenizer=None,
                 lemmatizer=None, min_df=1, max_df=1.0, max_features=None, min_words: int = 10,
                 time_mode: str = "absolute", time_width="auto", time_steps: int | None = None,
                 like: Corpus | None = None, errors: str = "skip", chunk_docs: int = 20000,
                 verbose: bool = True) -> Corpus:
    """Build a :class:`Corpus` from an iterable of ``(author, timestamp, text)`` records.

    Parameters
    ----------
    records : iterable of tuples or dicts with keys author / timestamp / text
        ``timestamp`` is a number, a ``date``/``datetime`` or an ISO string (dates become
        days since 1970-01-01).  ``text`` is ``str`` or UTF-8 ``bytes``.
    min_len : int
        Shortest token kept (code points).
    stopwords : "english", None or iterable of str
    tokenizer : callable ``str -> list[str]``, optional
        Replaces the built-in letters-only tokenizer (slower: Python per token).
    lemmatizer : callable ``str -> str``, optional
        Applied once per vocabulary word; words with the same lemma are merged.
    min_df, max_df : int (documents) or float (fraction of documents)
    max_features : int, optional
        Keep the most frequent words only (the thesis used 10,000).
    min_words : int
        Drop documents with fewer tokens after pruning (the thesis dropped < 10).
    time_mode : "absolute" | "relative"
        Absolute: bins of calendar time (or of width ``time_width`` from the first
        timestamp).  Relative: time since the author's first document, as the thesis does.
    time_width : "auto", "year" | "month" | "week" | "day" (optionally "4 years" etc.) or float
        ``"auto"`` (default) picks calendar years for spans of 10 years or more, months
        from 1 year, weeks from 10 weeks, days below (plain-number timestamps: width 1).
        A unit bins by calendar periods in UTC (1 January, the 1st of the month, the ISO
        Monday); a number is the bin width in timestamp units from the first timestamp
        (days for dates: 7 = weeks), as before.  See :mod:`fastprob.corpus.timebins`.
    time_steps : int, optional
        With ``time_width="auto"``: choose the calendar unit and count whose number of
        bins is closest to this target without exceeding it.
    like : Corpus, optional
        Build a corpus compatible with this one (a test set): its vocabulary (unseen words
        dropped and counted), its authors (documents by unseen authors skipped and counted)
        and its time steps, binned exactly as it was (documents outside them skipped and
        counted); ``time_mode`` / ``time_width`` / ``time_steps`` are then ignored.
    errors : "skip" | "raise"
        Skip-and-count bad records (empty text, undecodable bytes, NaN/missing timestamp,
        missing author), or raise on the first.

    Notes
    -----
    The chosen binning (unit, count, steps, first and last step start) is in
    ``report["time_bins"]`` and, for any corpus, in :meth:`Corpus.time_bins`; the
    corpus keeps the resolved unit (``time_width="month"``, never ``"auto"``) and the
    start of step 0 (``time_origin``), so a saved, split or ``like=`` corpus bins alike.
    """
    if errors not in ("skip", "raise"):
        raise ValueError(f"errors must be 'skip' or 'raise', got {errors!r}")
    if time_mode not in ("absolute", "relative"):
        raise ValueError(f"time_mode must be 'absolute' or 'relative', got {time_mode!r}")
    if like is None:
        timebins.check_time_steps(time_steps, time_width)  # raises on a bad width or target
    if min_words < 0:
        raise ValueError("min_words must be >= 0")
    if max_features is not None and not (isinstance(max_features, (int, np.integer)) and max_features >= 1):
        raise ValueError(f"max_features must be a positive integer or None, got {max_features!r}")
    if like is not None:
        time_mode, time_width, time_steps = like.time_mode, like.time_width, None
        if time_mode == "absolute" and like.time_origin is None:
            raise CorpusError(
                "the training corpus passed as like= has no time_origin, so new documents cannot "
                "be put on its time steps; build it with this fastprob (build_corpus / Corpus.load "
                "keep it, and so does split()), or set like.time_origin to the timestamp of its step 0")
        if time_mode == "relative" and like.author_origin is None:
            raise CorpusError(
                "the training corpus passed as like= has no author_origin (each author's first "
                "timestamp), so new documents cannot be put on its time steps; rebuild it with "
                "this fastprob or set like.author_origin")
    stop = english_stopwords() if stopwords == "english" else list(stopwords or ())
    if tokenizer is not None:
        tok = _UserTokenizer(tokenizer, stop)
    else:
        tok = _tokenizer(min_len, stop)
    count = _dispatch.resolve("count_tokens")
    remap = _dispatch.resolve("remap_csr")
    skipped = {"empty_text": 0, "undecodable": 0, "bad_timestamp": 0, "missing_author": 0,
               "malformed_record": 0, "unseen_author": 0, "unseen_time_step": 0}
    author_ids: dict = {} if like is None else {a: i for i, a in enumerate(like.author_names)}
    author_names: list = [] if like is None else list(like.author_names)
    parts, authors, stamps = [], [], []
    texts: list[str] = []

    def flush():
        if not texts:
            return
        t, ptr = tok.encode_many(texts, grow=True)
        parts.append(count(t, ptr, len(tok.words)))
        texts.clear()

    def bad(kind, msg):
        if errors == "raise":
            raise CorpusError(msg)
        skipped[kind] += 1

    ts_cache: dict = {}  # records of one source often share a timestamp (a speech's paragraphs)
    kinds = TimestampKinds()
    undecodable_at: list = []
    for i, (a, ts, text) in enumerate(_records(records)):
        if type(text) is not str:
            if isinstance(text, _BadRecord):
                bad("malformed_record", f"record {i} is not (author, timestamp, text): {text.r!r:.80}")
                continue
            if isinstance(text, (bytes, bytearray)):
                try:
                    text = bytes(text).decode("utf-8")
                except UnicodeDecodeError as exc:
                    where = getattr(text, "where", None) or f"record {i}"
                    bad("undecodable", f"{where}: text is not valid UTF-8 ({exc}); decode it first")
                    if len(undecodable_at) < 20:
                        undecodable_at.append(where)
                    continue
        if not isinstance(text, str) or not text or text.isspace():
            bad("empty_text", f"record {i}: text is empty or not a string")
            continue
        if a is None or (isinstance(a, float) and math.isnan(a)) or (isinstance(a, str) and (not a or a.isspace())):
            bad("missing_author", f"record {i}: author is missing")
            continue
        try:
            t, kind = ts_cache[ts]
        except (KeyError, TypeError):
            t, kind = parse_timestamp(ts)
            if len(ts_cache) < 100000:
                try:
                    ts_cache[ts] = (t, kind)
                except TypeError:
                    pass
            kinds.see(kind, t, ts, f"record {i}")
        if not math.isfinite(t):
            bad("bad_timestamp", f"record {i}: timestamp {ts!r} is missing, NaN, unparseable or a placeholder date (year 1 or 9999)")
            continue
        if type(a) is not str:
            a = str(a)
        if a not in author_ids:
            if like is not None:
                bad("unseen_author", f"record {i}: author {a!r} is not in the training corpus")
                continue
            author_ids[a] = len(author_names)
            author_names.append(a)
        authors.append(author_ids[a])
        stamps.append(t)
        texts.append(text)
        if len(texts) >= chunk_docs:
            flush()
    flush()
    kinds.check()

    V0 = len(tok.words)
    if parts:
        # earlier chunks saw a smaller vocabulary; ids are stable, so concatenation is exact
        nnzs = [p[1].shape[0] for p in parts]
        offs = np.concatenate([[0], np.cumsum(nnzs)])
        indptr = np.concatenate([[0]] + [p[0][1:] + o for p, o in zip(parts, offs[:-1])])
        indices = np.concatenate([p[1] for p in parts])
        cnts = np.concatenate([p[2] for p in parts])
    else:
        indptr, indices, cnts = np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32)
    vocab = list(tok.words)
    authors_a = np.asarray(authors, dtype=np.int32)
    stamps_a = np.asarray(stamps, dtype=np.float64)
    D0 = authors_a.shape[0]

    n_oov = 0
    lemmas = [lemmatizer(w) for w in vocab] if lemmatizer is not None else vocab
    if like is None:
        if lemmatizer is not None:
            uniq = {}
            mapping = np.asarray([uniq.setdefault(l, len(uniq)) for l in lemmas], dtype=np.int32)
            indptr, indices, cnts = remap(indptr, indices, cnts, mapping, len(uniq))
            vocab = list(uniq)
        V = len(vocab)
        df = np.bincount(indices, minlength=V)
        tf = np.bincount(indices, weights=cnts, minlength=V)
        mapping, vocab = _prune(df, tf, vocab, D0, min_df, max_df, max_features)
    else:
        # map this corpus' words onto the training vocabulary; unseen words are dropped
        known = {w: i for i, w in enumerate(like.vocab)}
        mapping = np.asarray([known.get(l, -1) for l in lemmas], dtype=np.int32).reshape(-1)
        n_oov = int(cnts[mapping[indices] < 0].sum()) if indices.size else 0
        vocab = list(like.vocab)
    indptr, indices, cnts = remap(indptr, indices, cnts, mapping, len(vocab))
    lengths = np.diff(np.concatenate([[0], np.cumsum(cnts, dtype=np.int64)])[indptr])
    keep = lengths >= max(min_words, 1)
    n_short = int(D0 - keep.sum())
    if D0 and not keep.any() and like is None:
        why = ("no word survived: every token was a stop word, shorter than min_len="
               f"{min_len}, or pruned by min_df={min_df!r} / max_df={max_df!r}" if not vocab else
               f"no document has min_words={min_words} tokens from the {len(vocab)}-word vocabulary")
        raise CorpusError(f"all {D0} documents were dropped: {why}; relax these settings "
                          "(--min-words, --max-features, stop words) or check the input text")

    # time steps
    if like is None:
        if time_mode == "absolute":
            lo, hi = (stamps_a.min(), stamps_a.max()) if D0 else (0.0, 0.0)
        else:
            first = np.full(len(author_names), np.inf)
            np.minimum.at(first, authors_a, stamps_a)
            lo, hi = 0.0, float((stamps_a - first[authors_a]).max()) if D0 else 0.0
        tb, how = timebins.choose(time_width, time_steps, time_mode, "date" in kinds.lo, lo, hi)
        time_width = tb.spec
        if time_mode == "absolute":
            time_origin = timebins.origin_for(lo, tb, "absolute") if D0 else None
            origin = 0.0 if time_origin is None else time_origin
        else:
            time_origin, origin = None, first[authors_a]
        bins = timebins.assign(stamps_a, origin, tb, time_mode)
        kept_bins = np.unique(bins[keep])
        time_values = kept_bins.astype(np.float64)
        times = np.searchsorted(kept_bins, bins).astype(np.int32)
    else:
        tb, how = timebins.parse_time_width(time_width), "like"
        if time_mode == "absolute":
            origin = like.time_origin
        else:
            origin = like.author_origin[authors_a]
        bins = timebins.assign(stamps_a, origin, tb, time_mode)
        time_values = like.time_values
        pos = np.searchsorted(time_values, bins)
        ok = (pos < time_values.shape[0]) & (time_values[np.minimum(pos, len(time_values) - 1)] == bins)
        skipped["unseen_time_step"] = int((keep & ~ok).sum())
        if errors == "raise" and skipped["unseen_time_step"]:
            raise CorpusError(f"{skipped['unseen_time_step']} documents fall outside the training time steps")
        keep &= ok
        times = pos.astype(np.int32)
        time_origin = like.time_origin
    author_origin = None
    if time_mode == "relative" and like is None:
        author_origin = first
    elif like is not None:
        author_origin = like.author_origin

    docs = np.flatnonzero(keep)
    tmp = Corpus(indptr, indices, cnts, authors_a, np.where(keep, times, 0), stamps_a, vocab,
                 author_names, time_values, time_mode=time_mode, time_width=time_width,
                 time_origin=time_origin, author_origin=author_origin)
    out = tmp.subset(docs)
    out.report = {
        "records_skipped": {k: v for k, v in skipped.items() if v},
        "documents_too_short": n_short,
        "min_words": min_words,
        "vocabulary_before_pruning": V0,
        "vocabulary": len(vocab),
        "out_of_vocabulary_tokens": n_oov,
        "documents": out.n_docs,
        "time_origin": time_origin,
        "author_origin": None if author_origin is None else np.asarray(author_origin).tolist(),
        "time_bins": timebins.summarize(time_mode, time_width, time_origin, out.time_values, how,
                                        dates="date" in kinds.lo),
    }
    if undecodable_at:
        out.report["undecodable_at"] = undecodable_at
    dropped = sum(skipped.values()) + n_short
    if verbose and dropped:
        warnings.warn(f"corpus builder dropped {dropped} records: {summary(out.report)}", stacklevel=2)
    return out


def summary(report: dict) -> str:
    """One line on what a builder report says was dropped."""
    bits = [f"{k}={v}" for k, v in report.get("records_skipped", {}).items()]
    if report.get("documents_too_short"):
        bits.append(f"shorter_than_{report.get('min_words')}_words={report['documents_too_short']}")
    if report.get("out_of_vocabulary_tokens"):
        bits.append(f"out_of_vocabulary_tokens={report['out_of_vocabulary_tokens']}")
    return ", ".join(bits) or "nothing dropped"
