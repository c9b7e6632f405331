"""Shards, DAPPER text format, JSONL/CSV: round trips and rejected corrupt files."""
import json
import os

import numpy as np
import pytest

from fastprob.corpus import (Corpus, ShardError, ShardSet, read_csv, read_dapper_text, read_jsonl,
                             write_csv, write_dapper_text, write_jsonl)
from fastprob.corpus.formats import atomic_write
from fastprob.datasets import make_dap_corpus


@pytest.fixture
def corpus():
    c, _ = make_dap_corpus(n_authors=6, docs_per_author=9, n_words=40, doc_length=12,
                           irregular_times=True, seed=4)
    return c


def _equal(a, b):
    for name in ("indptr", "indices", "counts", "authors", "times", "timestamps", "time_values"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.vocab == b.vocab and a.author_names == b.author_names


@pytest.mark.parametrize("shard_docs", [None, 7, 1000])
def test_save_load_roundtrip(corpus, tmp_path, shard_docs):
    corpus.save(tmp_path / "c", shard_docs=shard_docs)
    _equal(corpus, Corpus.load(tmp_path / "c"))
    _equal(corpus, Corpus.load(tmp_path / "c", mmap=False))
    corpus.save(tmp_path / "c", shard_docs=5)  # overwrite in place
    assert ShardSet(tmp_path / "c").n_shards == 11
    assert not [p for p in os.listdir(tmp_path) if "tmp" in p or p.endswith(".old")]


def test_empty_corpus_roundtrip(tmp_path):
    c = Corpus([0], [], [], [], [], [], [], [], [])
    c.save(tmp_path / "e")
    assert Corpus.load(tmp_path / "e").n_docs == 0


def test_corrupted_shard_rejected(corpus, tmp_path):
    corpus.save(tmp_path / "c")
    shard = tmp_path / "c" / "shard-00000.fpc"
    raw = bytearray(shard.read_bytes())
    raw[200] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(ShardError, match="checksum"):
        Corpus.load(tmp_path / "c")


def test_truncated_shard_rejected(corpus, tmp_path):
    corpus.save(tmp_path / "c")
    shard = tmp_path / "c" / "shard-00000.fpc"
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(ShardError, match="truncated"):
        Corpus.load(tmp_path / "c")
    shard.write_bytes(b"FPSH")
    with pytest.raises(ShardError, match="truncated"):
        Corpus.load(tmp_path / "c")


def test_bad_header_and_manifest(corpus, tmp_path):
    corpus.save(tmp_path / "c")
    shard = tmp_path / "c" / "shard-00000.fpc"
    raw = bytearray(shard.read_bytes())
    raw[12] ^= 1  # a header field
    shard.write_bytes(bytes(raw))
    with pytest.raises(ShardError, match="header"):
        Corpus.load(tmp_path / "c")
    (tmp_path / "c" / "manifest.json").write_text("{not json")
    with pytest.raises(ShardError, match="corrupted"):
        Corpus.load(tmp_path / "c")
    os.remove(tmp_path / "c" / "manifest.json")
    with pytest.raises(ShardError, match="interrupted"):
        Corpus.load(tmp_path / "c")
    with pytest.raises(ShardError, match="no such directory"):
        Corpus.load(tmp_path / "nope")


def test_interrupted_save_leaves_previous(corpus, tmp_path, monkeypatch):
    corpus.save(tmp_path / "c")
    from fastprob.corpus import shards

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(shards, "_manifest", boom)
    with pytest.raises(KeyboardInterrupt):
        corpus.subset(np.arange(3)).save(tmp_path / "c")
    _equal(corpus, Corpus.load(tmp_path / "c"))
    assert os.listdir(tmp_path) == ["c"]


def test_streaming_batches(corpus, tmp_path):
    corpus.save(tmp_path / "c", shard_docs=10)
    ss = ShardSet(tmp_path / "c")
    sizes, stamps = [], []
    for b in ss.iter_batches(8, seed=1):
        sizes.append(b.n_docs)
        stamps.append(b.timestamps)
    assert sizes[:-1] == [8] * (len(sizes) - 1) and sum(sizes) == corpus.n_docs
    assert sorted(np.concatenate(stamps).tolist()) == sorted(corpus.timestamps.tolist())


def test_dapper_text_roundtrip(corpus, tmp_path):
    write_dapper_text(corpus, tmp_path / "c.txt", tmp_path / "vocab.txt")
    back = read_dapper_text(tmp_path / "c.txt", tmp_path / "vocab.txt")
    order = np.lexsort((np.arange(corpus.n_docs), corpus.times))  # the file is grouped by step
    want = corpus.subset(order)
    for name in ("indptr", "indices", "counts", "times", "timestamps", "time_values"):
        np.testing.assert_array_equal(getattr(want, name), getattr(back, name), err_msg=name)
    assert back.vocab == corpus.vocab
    names = np.asarray(back.author_names)[back.authors]
    assert names.tolist() == [str(a) for a in want.authors]
    text = (tmp_path / "c.txt").read_text().splitlines()
    assert int(text[0]) == corpus.n_steps


def test_dapper_text_errors(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_text("1\n0.0\n2\n0 2 1:1 2:1\n")
    with pytest.raises(Exception, match="ends early"):
        read_dapper_text(p)
    p.write_text("1\n0.0\n1\n0 3 1:1 2:1\n")
    with pytest.raises(Exception, match="unique"):
        read_dapper_text(p)
    p.write_text("1\n0.0\n1\n0 2 1:1 5:1\n")
    v = tmp_path / "v.txt"
    v.write_text("a\nb\n")
    with pytest.raises(Exception, match="vocabulary"):
        read_dapper_text(p, v)


def test_records_formats(tmp_path):
    recs = [{"author": "a", "timestamp": "2020-01-01", "text": "hello, \"world\"\nnew line"},
            {"author": "b", "timestamp": 3.5, "text": "ünïcode"}]
    write_jsonl(recs, tmp_path / "r.jsonl")
    assert list(read_jsonl(tmp_path / "r.jsonl")) == recs
    write_csv(recs, tmp_path / "r.csv")
    back = list(read_csv(tmp_path / "r.csv"))
    assert [r["text"] for r in back] == [r["text"] for r in recs]
    (tmp_path / "x.jsonl").write_text('{"author": 1}\n[1,2]\n')
    with pytest.raises(Exception, match="JSON object"):
        list(read_jsonl(tmp_path / "x.jsonl"))
    (tmp_path / "x.csv").write_text("who,when,what\n")
    with pytest.raises(Exception, match="lacks columns"):
        list(read_csv(tmp_path / "x.csv"))


def test_atomic_write_cleans_up(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_write(tmp_path / "f.txt") as f:
            f.write("partial")
            raise RuntimeError
    assert os.listdir(tmp_path) == []


def test_merge_corpora_built_separately(backend_mode):
    from fastprob.corpus import build_corpus, merge

    recs = [("ann", float(d), t) for d, t in enumerate(
        ["apple banana cherry", "banana durian", "fig grape apple", "kiwi lemon mango apple", "zebra"])]
    recs += [("bob", 7.0, "mango kiwi banana"), ("cat", 3.0, "grape grape zebra yak")]
    kw = dict(min_words=1, min_len=3, stopwords=None, time_width=1.0)
    whole = build_corpus(recs, **kw)
    a, b = build_corpus(recs[:4], **kw), build_corpus(recs[4:], **kw)
    m = merge([a, b])
    # same documents, same counts per word string, same authors and times
    X = {(d, m.vocab[j]): c for d in range(m.n_docs)
         for j, c in zip(m.indices[m.indptr[d]:m.indptr[d + 1]], m.counts[m.indptr[d]:m.indptr[d + 1]])}
    Y = {(d, whole.vocab[j]): c for d in range(whole.n_docs)
         for j, c in zip(whole.indices[whole.indptr[d]:whole.indptr[d + 1]],
                         whole.counts[whole.indptr[d]:whole.indptr[d + 1]])}
    assert X == Y
    assert [m.author_names[i] for i in m.authors] == [whole.author_names[i] for i in whole.authors]
    np.testing.assert_array_equal(m.time_values[m.times], whole.time_values[whole.times])
    for d in range(m.n_docs):  # rows stay sorted after remapping
        row = m.indices[m.indptr[d]:m.indptr[d + 1]]
        assert np.all(np.diff(row) > 0)
    with pytest.raises(Exception, match="time binning"):
        merge([a, build_corpus(recs[4:], min_words=1, time_width=7.0)])
