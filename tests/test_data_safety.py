"""Saving never destroys data: only fastprob corpora are replaced, atomically; manifests
are checksummed and name only their own shards; files respect the umask; the time origin
travels with the corpus (issue 11)."""
import json
import os
import shutil
import stat

import numpy as np
import pytest

from fastprob.corpus import CorpusError, ShardSet, build_corpus, build_shards
from fastprob.corpus import outdir
from fastprob.corpus.merge import merge
from fastprob.corpus.outdir import OutputExistsError
from fastprob.corpus.shards import ShardError, write_manifest

WORDS = ["apple", "banana", "cherry", "durian", "elder", "figgy", "grape", "honey"]


def _records(n=60, seed=0, start=18262.0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        yield (f"a{i % 5}", start + 3.0 * i + rng.random(), " ".join(rng.choice(WORDS, size=8)))


@pytest.fixture
def corpus():
    return build_corpus(_records(), min_words=2, time_width=7.0, verbose=False)


def test_save_refuses_a_directory_that_is_not_a_corpus(corpus, tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputExistsError, match="not a fastprob corpus"):
        corpus.save(d)
    with pytest.raises(OutputExistsError, match="not a fastprob corpus"):
        build_shards(lambda: _records(), d, min_df=1, min_words=2, progress=False)
    assert (d / "thesis.tex").read_text() == "years of work"
    assert sorted(os.listdir(tmp_path)) == ["mine"]  # no temporary directory left behind
    # a corpus with a stranger inside is not replaced either
    corpus.save(tmp_path / "c")
    (tmp_path / "c" / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="notes.txt"):
        corpus.save(tmp_path / "c")
    # a plain file is not a directory to save into
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputExistsError, match="not a directory"):
        corpus.save(tmp_path / "f")


def test_save_replaces_an_existing_corpus_and_empty_dirs(corpus, tmp_path, monkeypatch):
    (tmp_path / "c").mkdir()
    corpus.save(tmp_path / "c")  # empty directory: fine
    small = corpus.subset(np.arange(10))
    small.save(tmp_path / "c", shard_docs=3)
    assert ShardSet(tmp_path / "c").n_docs == 10 and ShardSet(tmp_path / "c").n_shards == 4
    # without renameat2 (other OS / file system) the fallback leaves nothing behind either
    monkeypatch.setattr(outdir, "_exchange", lambda a, b: False)
    corpus.save(tmp_path / "c")
    assert ShardSet(tmp_path / "c").n_docs == corpus.n_docs
    assert sorted(os.listdir(tmp_path)) == ["c"]


@pytest.mark.parametrize("writer", ["save", "build_shards"])
def test_crash_right_after_removing_the_old_output_keeps_a_corpus(corpus, tmp_path, monkeypatch, writer):
    """Case 19: whatever is deleted first, the path always holds a complete corpus."""
    out = tmp_path / "c"
    corpus.subset(np.arange(7)).save(out)
    real = shutil.rmtree
    calls = []

    def rmtree_then_crash(path, *a, **k):
        real(path, *a, **k)
        if not calls:
            calls.append(path)
            raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(shutil, "rmtree", rmtree_then_crash)
    with pytest.raises(KeyboardInterrupt):
        if writer == "save":
            corpus.save(out)
        else:
            build_shards(lambda: _records(), out, min_df=1, min_words=2, progress=False)
    monkeypatch.undo()
    assert ShardSet(out).load().n_docs in (7, corpus.n_docs)
    assert os.path.normpath(calls[0]) != os.path.normpath(out)


def test_manifest_checksum_covers_vocabulary_and_counts(corpus, tmp_path):
    """Case 4: a changed byte anywhere in the manifest is caught."""
    corpus.save(tmp_path / "c")
    m = tmp_path / "c" / "manifest.json"
    text = m.read_text()
    for old, new in (('"banana"', '"bonana"'), (f'"n_docs": {corpus.n_docs}', f'"n_docs": {corpus.n_docs - 1}')):
        assert old in text
        m.write_text(text.replace(old, new, 1))
        with pytest.raises(ShardError, match="checksum"):
            ShardSet(tmp_path / "c")
    m.write_text(text)
    assert ShardSet(tmp_path / "c").load().n_docs == corpus.n_docs


def test_shard_header_padding_is_checked(corpus, tmp_path):
    """Case 4: header bytes 40-63 are covered (they must be zero)."""
    corpus.save(tmp_path / "c")
    shard = tmp_path / "c" / "shard-00000.fpc"
    raw = bytearray(shard.read_bytes())
    raw[50] ^= 0x01
    shard.write_bytes(bytes(raw))
    with pytest.raises(ShardError, match="corrupted header"):
        ShardSet(tmp_path / "c").load()


@pytest.mark.parametrize("name", ["/etc/passwd", "../other/shard-00000.fpc", "sub/shard-00000.fpc",
                                  "shard-00000.fpc/..", "manifest.json"])
def test_manifest_names_only_its_own_shards(corpus, tmp_path, name):
    corpus.save(tmp_path / "c")
    man = json.loads((tmp_path / "c" / "manifest.json").read_text())
    man["shards"][0]["file"] = name
    write_manifest(str(tmp_path / "c"), man)  # a valid checksum: only the name is wrong
    with pytest.raises(ShardError, match="not a shard file of this corpus"):
        ShardSet(tmp_path / "c")


def test_files_and_directories_respect_the_umask(corpus, tmp_path):
    old = os.umask(0o022)
    try:
        corpus.save(tmp_path / "c")
        build_shards(lambda: _records(), tmp_path / "s", min_df=1, min_words=2, progress=False)
    finally:
        os.umask(old)
    for d in ("c", "s"):
        assert stat.S_IMODE(os.stat(tmp_path / d).st_mode) == 0o755
        for f in os.listdir(tmp_path / d):
            assert stat.S_IMODE(os.stat(tmp_path / d / f).st_mode) == 0o644, f


@pytest.mark.parametrize("mode", ["absolute", "relative"])
def test_time_origin_survives_split_save_and_like(tmp_path, mode):
    full = build_corpus(_records(), min_words=2, time_mode=mode, time_width=7.0, verbose=False)
    train, _ = full.split(0.3, seed=0)
    # the test set built against train lands on the same steps as the full build did
    again = build_corpus(_records(), min_words=2, like=train, verbose=False)
    assert again.n_docs == full.n_docs
    np.testing.assert_array_equal(again.time_values[again.times], full.time_values[full.times])
    train.save(tmp_path / "t")
    loaded = ShardSet(tmp_path / "t").load()
    assert loaded.time_origin == train.time_origin
    if mode == "relative":
        np.testing.assert_array_equal(loaded.author_origin, train.author_origin)
    # an absolute time origin is the first timestamp (brute force)
    stamps = [r[1] for r in _records()]
    if mode == "absolute":
        assert full.time_origin == min(stamps)
    lost = train._with(time_origin=None, author_origin=None)
    with pytest.raises(CorpusError, match="time_origin|author_origin"):
        build_corpus(_records(), min_words=2, like=lost, verbose=False)


def test_merge_in_relative_time_mode():
    recs = list(_records(40))
    a = build_corpus(recs[:20], min_words=1, time_mode="relative", time_width=7.0, verbose=False)
    b = build_corpus(recs[20:], min_words=1, time_mode="relative", time_width=7.0, verbose=False)
    m = merge([a, b])
    # brute force: weeks since each author's first record over both parts
    first = {}
    for au, ts, _ in recs:
        first[au] = min(first.get(au, np.inf), ts)
    want = [np.floor((ts - first[au]) / 7.0 + 1e-9) for au, ts, _ in recs]
    got = m.time_values[m.times]
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(m.author_origin, [first[n] for n in m.author_names])
