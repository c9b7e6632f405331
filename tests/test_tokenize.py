"""Compiled hashing tokenizer vs the pure-Python reference."""
import numpy as np
import pytest

from fastprob.reference.tokenize import HashTokenizer as Ref

from conftest import import_compiled  # noqa: E402

cy = import_compiled("fastprob._csrc.tokenize", "Cython extension not built")

TEXTS = [
    "Hello, World! The café’s naïve “quote” — Δelta 123abc x ab ééé hello the",
    "", "   ", "don't stop-words; UPPER lower MiXeD 42nd",
    "Ünïcödé Straße ÆØÅ Привет мир 日本語テキスト emoji 😀word×times÷",
    "a" * 5000, "tab\tseparated\nnew\rlines", "İstanbul ǅemal",
]


@pytest.mark.parametrize("min_len", [1, 2, 3, 5])
def test_same_ids_and_vocab(min_len):
    a, b = cy.HashTokenizer(min_len, ["the", "stop"]), Ref(min_len, ["the", "stop"])
    ta, pa = a.encode_many(TEXTS)
    tb, pb = b.encode_many(TEXTS)
    np.testing.assert_array_equal(ta, tb)
    np.testing.assert_array_equal(pa, pb)
    assert a.words == b.words


def test_random_unicode_agrees(rng):
    alphabet = list("abcXYZ é’—-,.0 \n") + ["Ж", "ß", "の", "😀", "\u2019", "\u00d7", "\u0301"]
    texts = ["".join(rng.choice(alphabet, size=rng.integers(0, 60))) for _ in range(300)]
    a, b = cy.HashTokenizer(2), Ref(2)
    np.testing.assert_array_equal(a.encode_many(texts)[0], b.encode_many(texts)[0])
    assert a.words == b.words


def test_grow_false_marks_unseen():
    for cls in (cy.HashTokenizer, Ref):
        t = cls(3)
        t.encode("alpha beta")
        assert t.encode("beta gamma alpha", grow=False).tolist() == [1, -1, 0]
        assert len(t) == 2


def test_many_words_rehash():
    def word(i):  # base-26 spelling of i: 200,000 distinct words force several rehashes
        s = ""
        while True:
            s += chr(97 + i % 26)
            i //= 26
            if i == 0:
                return s + "q"
    words = [word(i) for i in range(200000)]
    a = cy.HashTokenizer(1)
    ids, _ = a.encode_many([" ".join(words)])
    assert len(a) == len(set(words))
    b = Ref(1)
    ids2, _ = b.encode_many([" ".join(words)])
    np.testing.assert_array_equal(ids, ids2)
    assert a.words == b.words
