"""Merge corpora (or shard sets) built separately: union of vocabularies, authors and
time steps, each part's word ids remapped with the compiled ``remap_csr`` primitive."""
from __future__ import annotations

import numpy as np

from .. import _dispatch
from . import timebins
from .corpus import Corpus, CorpusError
from .shards import concat


def _union(lists):
    index, out = {}, []
    for items in lists:
        for x in items:
            if x not in index:
                index[x] = len(out)
                out.append(x)
    return out, index


def merge(parts) -> Corpus:
    """One corpus from several (documents in order).  Word ids follow the union vocabulary
    in first-seen order, authors likewise; time steps are re-binned from the raw
    timestamps with the merged origin (absolute mode) or author origins (relative mode).

    The parts must share the time mode and bin width (their steps mean the same times).
    """
    parts = list(parts)
    if not parts:
        raise CorpusError("nothing to merge")
    modes = {(p.time_mode, p.time_width) for p in parts}
    if len(modes) > 1:
        raise CorpusError(f"cannot merge corpora with different time binning {sorted(modes)}; rebuild them alike")
    vocab, widx = _union(p.vocab for p in parts)
    authors, aidx = _union(p.author_names for p in parts)
    mode, width = parts[0].time_mode, parts[0].time_width
    tb = timebins.parse_time_width(width)
    remap = _dispatch.resolve("remap_csr")
    # time steps are re-binned from the raw timestamps with the merged origin(s): each part
    # was binned from its own origin, so its step numbers are not comparable
    if mode == "absolute":
        origins = [p.time_origin for p in parts]
        known = [o for o in origins if o is not None]
        stamps = [p.timestamps.min() for p in parts if p.n_docs]
        origin = min(known + stamps) if (known or stamps) else 0.0
        # a calendar binning starts on the first day of the period holding the earliest time
        origin = timebins.origin_for(origin, tb, mode)
    else:
        first = np.full(len(authors), np.inf)
        for p in parts:
            ao = p.author_origin
            if ao is not None:
                np.minimum.at(first, [aidx[a] for a in p.author_names], np.asarray(ao, dtype=np.float64))
            if p.n_docs:
                amap = np.asarray([aidx[a] for a in p.author_names])
                np.minimum.at(first, amap[p.authors], p.timestamps)
    pieces, bins_all = [], []
    for p in parts:
        wmap = np.asarray([widx[w] for w in p.vocab], dtype=np.int32).reshape(-1)
        ip, ix, ct = remap(p.indptr, p.indices, p.counts, wmap, len(vocab))
        amap = np.asarray([aidx[a] for a in p.author_names], dtype=np.int32).reshape(-1)
        a_ids = amap[p.authors] if p.n_docs else p.authors
        base = origin if mode == "absolute" else first[a_ids]
        bins = timebins.assign(p.timestamps, base, tb, mode)
        pieces.append((ip, ix, ct, a_ids, bins, p.timestamps))
        bins_all.append(bins)
    tv = np.unique(np.concatenate(bins_all)) if bins_all else np.zeros(0)
    t_origin = origin if mode == "absolute" else None
    a_origin = first if mode == "relative" else None
    out = [Corpus(ip, ix, ct, a, np.searchsorted(tv, b).astype(np.int32), ts, vocab, authors, tv,
                  time_mode=mode, time_width=width, time_origin=t_origin, author_origin=a_origin)
           for ip, ix, ct, a, b, ts in pieces]
    merged = concat(out) if len(out) > 1 else out[0]
    merged.report = {"merged_parts": len(parts),
                     "time_origin": origin if mode == "absolute" else None,
                     "author_origin": first.tolist() if mode == "relative" else None}
    return merged
