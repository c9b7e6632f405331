"""Streaming shard builder: same counts as the in-memory builder, bounded-memory passes."""
import numpy as np

from fastprob.corpus import ShardSet, build_corpus, build_shards


def _records(n=400, seed=0):
    rng = np.random.default_rng(seed)
    words = [f"{a}{b}" for a in ("alpha", "bravo", "charlie", "delta", "echo") for b in ("x", "yy", "zzz", "q")]
    for i in range(n):
        k = rng.integers(3, 30)
        yield (f"author{i % 17}", float(i // 17) * 3.0 + rng.random(), " ".join(rng.choice(words, size=k)))


def test_build_shards_matches_in_memory(tmp_path):
    report = build_shards(lambda: _records(), tmp_path / "s", shard_docs=64, max_features=15, min_df=1,
                          min_words=5, time_mode="relative", time_width=3.0, progress=False)
    ss = ShardSet(tmp_path / "s")
    assert ss.n_shards == 7 and report["documents"] == ss.n_docs
    got = ss.load()
    ref = build_corpus(_records(), max_features=15, min_words=5, time_mode="relative", time_width=3.0,
                       verbose=False)
    assert got.vocab == ref.vocab and got.author_names == ref.author_names
    np.testing.assert_array_equal(got.indices, ref.indices)
    np.testing.assert_array_equal(got.counts, ref.counts)
    # same time bins (the streaming builder keeps empty steps, the in-memory one drops them)
    np.testing.assert_array_equal(got.time_values[got.times], ref.time_values[ref.times])


def test_build_shards_prunes_vocabulary_table(tmp_path):
    rep = build_shards(lambda: _records(300, 1), tmp_path / "s", shard_docs=50, max_features=5, min_df=1,
                       min_words=1, vocab_cap=8, progress=False)
    ss = ShardSet(tmp_path / "s")
    # a table capped at 8 words keeps about 4 after each pruning: never more than asked
    assert 1 <= len(ss.vocab) <= 5 and rep["vocabulary"] == len(ss.vocab)
    assert ss.load().n_tokens == rep["tokens_kept"]
