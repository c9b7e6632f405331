"""Build shards from record streams too large for memory (two passes, bounded memory).

Pass 1 tokenizes chunks of records and keeps only word frequencies (document and token
counts), author origins and time bins; when the word table outgrows ``vocab_cap`` the
rarest words are pruned (lossy counting: a word that survives is counted exactly from
the moment it was last re-admitted, so frequent words are exact and rare words that
could not reach the final vocabulary are dropped early).  Pass 2 re-tokenizes each chunk
against the final vocabulary and writes one shard per chunk.  Memory is bounded by the
chunk size plus the word table and the author table, never by the number of documents.
Time steps are the integer bins 0 .. max (steps without documents carry only the prior).
"""
from __future__ import annotations

import math
import os
import shutil
import time

import numpy as np

from .. import _config, _dispatch
from . import timebins
from .build import TimestampKinds, _records, english_stopwords, parse_timestamp
from .corpus import CorpusError
from .outdir import check_target, install, make_temp_dir
from .shards import MANIFEST_VERSION, write_manifest, write_shard


def _chunks(records, size, kinds=None):
    buf = []
    for i, (a, t, x) in enumerate(_records(records)):
        if isinstance(x, (bytes, bytearray)):
            try:
                x = bytes(x).decode("utf-8")
            except UnicodeDecodeError:
                buf.append(None)
                continue
        ts, kind = parse_timestamp(t)
        if kinds is not None:
            kinds.see(kind, ts, t, f"record {i}")
        ok = isinstance(x, str) and x.strip() and a not in (None, "") and math.isfinite(ts)
        buf.append((str(a), ts, x) if ok else None)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def build_shards(make_records, out, *, shard_docs: int = 50000, max_features: int = 10000, min_df: int = 2,
                 min_words: int = 10, min_len: int = 3, stopwords="english", time_mode: str = "relative",
                 time_width="auto", time_steps: int | None = None, vocab_cap: int = 2_000_000,
                 total_bytes: int | None = None, progress: bool = True, max_steps: int = 100_000) -> dict:
    """Two streaming passes over ``make_records()`` (called twice) -> a saved shard set.

    ``out`` must be absent, empty or an existing fastprob corpus (replaced only once the
    new one is complete); anything else raises before any work is done.  Every time bin
    from 0 to the last is a step, so timestamps spanning more than ``max_steps`` bins
    (mixed units, a stray year 9999) raise instead of allocating them.

    ``time_width`` / ``time_steps`` bin time exactly as :func:`~fastprob.corpus.build_corpus`
    does (``"auto"``: calendar years, months, weeks or days chosen from the span of the
    timestamps; see :mod:`fastprob.corpus.timebins`), so both builders give every
    document the same bin; the choice is in the report's ``"time_bins"``.

    Returns the manifest's report (documents, tokens, dropped, seconds per pass, time bins).
    """
    if time_mode not in ("absolute", "relative"):
        raise ValueError("time_mode must be 'absolute' or 'relative'")
    timebins.check_time_steps(time_steps, time_width)  # raises on a bad width or target
    if not (isinstance(max_features, (int, np.integer)) and max_features >= 1):
        raise ValueError(f"max_features must be a positive integer, got {max_features!r}")
    if shard_docs < 1:
        raise ValueError(f"shard_docs must be >= 1, got {shard_docs}")
    out = os.path.abspath(os.fspath(out))
    check_target(out)  # before the first pass: never spend an hour to then refuse
    stop = english_stopwords() if stopwords == "english" else list(stopwords or ())
    Tok = _dispatch.resolve("tokenizer")
    count = _dispatch.resolve("count_tokens")
    remap = _dispatch.resolve("remap_csr")
    show = progress and _config.config.progress
    t0 = time.perf_counter()
    # ---- pass 1: word frequencies, authors, time origins
    tf: dict[str, int] = {}
    df: dict[str, int] = {}
    floor = 0  # lossy-counting floor after pruning
    authors: dict[str, int] = {}
    first_ts: list[float] = []
    last_ts_a: list[float] = []  # each author's last timestamp: the span in relative mode
    global_min, last_ts = math.inf, -math.inf
    n_docs = n_bad = n_tok = 0
    bar = _bar(show, "pass 1/2 (vocabulary)", total_bytes)
    kinds = TimestampKinds()
    for chunk in _chunks(make_records(), shard_docs, kinds):
        good = [r for r in chunk if r is not None]
        n_bad += len(chunk) - len(good)
        tok = Tok(min_len=min_len, stopwords=stop)
        ids, ptr = tok.encode_many([r[2] for r in good])
        ip, ix, ct = count(ids, ptr, len(tok.words))
        V = len(tok.words)
        c_tf = np.bincount(ix, weights=ct, minlength=V)
        c_df = np.bincount(ix, minlength=V)
        for w, a_tf, a_df in zip(tok.words, c_tf.tolist(), c_df.tolist()):
            tf[w] = tf.get(w, floor) + int(a_tf)
            df[w] = df.get(w, floor) + int(a_df)
        if len(tf) > vocab_cap:  # prune the rarest words, remembering the floor
            cut = sorted(df.values())[len(df) - vocab_cap // 2]
            floor = max(floor, cut)
            for w in [w for w, v in df.items() if v < cut]:
                del tf[w], df[w]
        for a, ts, _ in good:
            if a not in authors:
                authors[a] = len(authors)
                first_ts.append(ts)
                last_ts_a.append(ts)
            else:
                i = authors[a]
                first_ts[i] = min(first_ts[i], ts)
                last_ts_a[i] = max(last_ts_a[i], ts)
            global_min = min(global_min, ts)
            last_ts = max(last_ts, ts)
        n_docs += len(good)
        n_tok += int(ids.shape[0])
        _tick(bar, sum(len(r[2]) for r in good), n_tok, t0)
    _close(bar)
    kinds.check()
    t1 = time.perf_counter()
    keep = [w for w, v in df.items() if v >= min_df]
    keep.sort(key=lambda w: (-tf[w], w))
    vocab = keep[:max_features]
    index = {w: i for i, w in enumerate(vocab)}
    del tf, df
    if time_mode == "absolute":
        lo, hi = (global_min, last_ts) if n_docs else (0.0, 0.0)
    else:
        lo, hi = 0.0, max((b - a for a, b in zip(first_ts, last_ts_a)), default=0.0)
    tb, how = timebins.choose(time_width, time_steps, time_mode, "date" in kinds.lo, lo, hi)
    time_origin = timebins.origin_for(global_min, tb, "absolute") if (time_mode == "absolute" and n_docs) else None
    # the widest possible bin: the latest timestamp against the earliest origin it can meet
    # (in relative mode too: numbers of two units - years and Unix seconds - are caught even
    # when each author uses only one)
    o = global_min if time_origin is None else time_origin
    n_span = int(timebins.assign(np.array([last_ts]), o, tb, time_mode)[0]) + 1 if n_docs else 0
    if n_span > max_steps:
        raise CorpusError(
            f"timestamps span {n_span:.3g} time steps of {tb.describe()} (from {global_min:g} to {last_ts:g}), "
            f"more than max_steps={max_steps}: check the timestamp units (days for dates; numbers "
            "are used as given) and --time-width / --time-steps")
    # ---- pass 2: counts against the final vocabulary, one shard per chunk
    tmpdir = make_temp_dir(out)
    try:
        shards, max_bin, n_short, n_kept_tok = [], 0, 0, 0
        bar = _bar(show, "pass 2/2 (shards)", total_bytes)
        done_tok = 0
        for chunk in _chunks(make_records(), shard_docs):
            good = [r for r in chunk if r is not None]
            tok = Tok(min_len=min_len, stopwords=stop)
            ids, ptr = tok.encode_many([r[2] for r in good])
            mapping = np.asarray([index.get(w, -1) for w in tok.words], dtype=np.int32).reshape(-1)
            ip, ix, ct = remap(*count(ids, ptr, len(tok.words)), mapping, len(vocab))
            lengths = np.diff(np.concatenate([[0], np.cumsum(ct, dtype=np.int64)])[ip])
            ok = lengths >= max(min_words, 1)
            n_short += int((~ok).sum())
            a_ids = np.asarray([authors[r[0]] for r in good], dtype=np.int32)
            ts = np.asarray([r[1] for r in good], dtype=np.float64)
            origin = np.asarray(first_ts)[a_ids] if time_mode == "relative" else time_origin
            bins = timebins.assign(ts, origin, tb, time_mode)
            sel = np.flatnonzero(ok)
            starts, ends = ip[sel], ip[sel + 1]
            pos = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]) if sel.size else np.zeros(0, int)
            sub_ptr = np.concatenate([[0], np.cumsum(ends - starts)])
            # bins start at 0 (the origin is the author's or the corpus' first timestamp), so a
            # bin is its own time-step id; steps without documents just carry the prior
            if sel.size:
                max_bin = max(max_bin, int(bins[sel].max()))
            path = os.path.join(tmpdir, f"shard-{len(shards):05d}.fpc")
            shards.append(write_shard(path, sub_ptr, ix[pos], ct[pos], a_ids[sel], bins[sel].astype(np.int32),
                                      ts[sel]))
            n_kept_tok += int(ct[pos].sum())
            done_tok += int(ids.shape[0])
            _tick(bar, sum(len(r[2]) for r in good), done_tok, t1)
        _close(bar)
        if n_docs and not shards_docs(shards):
            why = ("no word survived pruning (all stop words, too short, or below min_df)" if not vocab
                   else f"no document has min_words={min_words} tokens from the {len(vocab)}-word vocabulary")
            raise CorpusError(f"all {n_docs} documents were dropped: {why}; relax --min-words / "
                              "--min-df / --max-features or check the input text")
        time_values = np.arange(max_bin + 1, dtype=np.float64)
        report = {"documents": int(sum(s["n_docs"] for s in shards)), "tokens_kept": n_kept_tok,
                  "records_read": n_docs + n_bad, "records_skipped": {"bad_record": n_bad} if n_bad else {},
                  "documents_too_short": n_short, "min_words": min_words, "vocabulary": len(vocab),
                  "raw_tokens": n_tok, "pass1_seconds": t1 - t0, "pass2_seconds": time.perf_counter() - t1,
                  "time_origin": time_origin,
                  "author_origin": first_ts if time_mode == "relative" else None,
                  "time_bins": timebins.summarize(time_mode, tb.spec, time_origin, time_values, how,
                                                  dates="date" in kinds.lo)}
        man = {"format": "fastprob-corpus", "version": MANIFEST_VERSION, "vocab": vocab,
               "author_names": list(authors), "time_values": time_values.tolist(), "time_mode": time_mode,
               "time_width": tb.spec, "time_origin": report["time_origin"],
               "author_origin": report["author_origin"], "report": report, "n_docs": report["documents"],
               "shards": shards}
        write_manifest(tmpdir, man)
        install(tmpdir, out)
    except BaseException:
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    return report


def shards_docs(shards) -> int:
    return int(sum(s["n_docs"] for s in shards))


def _bar(show, desc, total_bytes):
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total_bytes, desc=desc, unit="B", unit_scale=True)


def _tick(bar, n_chars, n_tok, t0):
    if bar is None:
        return
    bar.update(n_chars)
    bar.set_postfix(tokens=f"{n_tok / 1e6:.1f}M", tok_per_s=f"{n_tok / max(time.perf_counter() - t0, 1e-9) / 1e6:.2f}M")


def _close(bar):
    if bar is not None:
        bar.close()
