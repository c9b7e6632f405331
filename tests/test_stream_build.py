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


def _skewed(n=300, seed=1):
    """Five frequent words with distinct frequencies, and a new rare word in every document."""
    rng = np.random.default_rng(seed)
    frequent = ["kilo", "lima", "mike", "november", "oscar"]
    p = np.array([0.35, 0.25, 0.2, 0.12, 0.08])
    letters = np.array(list("abcdefghij"))
    for i in range(n):
        words = list(rng.choice(frequent, size=rng.integers(4, 12), p=p))
        rare = "".join(letters[[int(d) for d in f"{i:04d}"]]) + "zz"  # letters only, unique per document
        yield (f"author{i % 7}", float(i), " ".join(words + [rare]))


def test_build_shards_prunes_vocabulary_table(tmp_path):
    # a word table capped at 8 entries must still find the true top words (brute force)
    rep = build_shards(lambda: _skewed(), tmp_path / "s", shard_docs=50, max_features=4, min_df=1,
                       min_words=1, vocab_cap=8, progress=False)
    ss = ShardSet(tmp_path / "s")
    from collections import Counter

    tf = Counter(w for r in _skewed() for w in r[2].split())
    want = sorted(tf, key=lambda w: (-tf[w], w))[:4]
    assert ss.vocab == want and rep["vocabulary"] == 4
    # and each document's counts of those words are exact
    got = ss.load()
    X = got.to_scipy().toarray()
    docs = [Counter(r[2].split()) for r in _skewed()]
    ref = np.array([[d[w] for w in want] for d in docs])
    ref = ref[ref.sum(1) >= 1]
    np.testing.assert_array_equal(X, ref)
    assert got.n_tokens == rep["tokens_kept"]
