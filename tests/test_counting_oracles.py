"""The hand-written corpus primitives against independent oracles: ``remap_csr`` and
``count_tokens`` (Cython and NumPy reference) against SciPy sparse algebra, and the
hashing tokenizer (Cython and Python reference) against a character-by-character loop."""
import numpy as np
import pytest
import scipy.sparse as sp

from fastprob import _dispatch

from conftest import compiled_available  # noqa: E402

IMPLS = {"count_tokens": ["cython", "numpy"], "remap_csr": ["cython", "numpy"], "tokenizer": ["cython", "python"]}


def _impl(op, name):
    if not compiled_available(op, name):
        from conftest import missing_compiled

        missing_compiled(f"{op}: the {name} backend is not available")
    return _dispatch.resolve(op, name)


def _csr_of(indptr, indices, counts, shape):
    return sp.csr_matrix((counts, indices, indptr), shape=shape)


def _random_counts(rng, n_docs, V, max_len=20):
    lens = rng.integers(0, max_len, size=n_docs)
    lens[:3] = 0  # empty documents at the start
    toks = rng.integers(0, V, size=lens.sum()).astype(np.int32)
    ptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    return toks, ptr


@pytest.mark.parametrize("name", IMPLS["count_tokens"])
def test_count_tokens_equals_scipy_duplicate_sum(name, rng):
    f = _impl("count_tokens", name)
    for V in (1, 7, 300):
        toks, ptr = _random_counts(rng, 120, V)
        toks[::11] = -1  # out-of-vocabulary tokens are skipped
        rows = np.repeat(np.arange(ptr.shape[0] - 1), np.diff(ptr))
        keep = toks >= 0
        want = sp.coo_matrix((np.ones(keep.sum(), np.int64), (rows[keep], toks[keep])),
                             shape=(ptr.shape[0] - 1, V)).tocsr()
        want.sum_duplicates()
        want.sort_indices()
        ip, ix, ct = f(toks, ptr, V)
        np.testing.assert_array_equal(ip, want.indptr)
        np.testing.assert_array_equal(ix, want.indices)
        np.testing.assert_array_equal(ct, want.data)


@pytest.mark.parametrize("name", IMPLS["remap_csr"])
def test_remap_csr_equals_scipy_projection(name, rng):
    """remap(X) = X @ M with M[j, mapping[j]] = 1 (no column where mapping[j] = -1)."""
    f = _impl("remap_csr", name)
    V = 200
    toks, ptr = _random_counts(rng, 150, V)
    X = sp.coo_matrix((np.ones(toks.size, np.int64), (np.repeat(np.arange(150), np.diff(ptr)), toks)),
                      shape=(150, V)).tocsr()
    X.sum_duplicates()
    X.sort_indices()
    X.data[::5] *= 3  # counts above 1
    cases = [(np.arange(V), V), (rng.permutation(V), V), (np.full(V, -1), 4),
             (np.where(rng.random(V) < 0.3, -1, rng.integers(0, 17, V)), 17),  # drop and merge
             (np.zeros(V, np.int64), 1)]                                        # everything into one word
    for mapping, n_new in cases:
        mapping = mapping.astype(np.int32)
        keep = np.flatnonzero(mapping >= 0)
        M = sp.csr_matrix((np.ones(keep.size, np.int64), (keep, mapping[keep])), shape=(V, n_new))
        want = (X @ M).tocsr()
        want.eliminate_zeros()
        want.sort_indices()
        ip, ix, ct = f(X.indptr.astype(np.int64), X.indices.astype(np.int32), X.data.astype(np.int32),
                       mapping, n_new)
        np.testing.assert_array_equal(ip, want.indptr)
        np.testing.assert_array_equal(ix, want.indices)
        np.testing.assert_array_equal(ct, want.data)
        assert ip.dtype == np.int64 and ix.dtype == np.int32 and ct.dtype == np.int32


# ---- the tokenizer, against its documented definition read character by character -------
def _is_letter(ch):
    o = ord(ch)
    return ("a" <= ch <= "z" or (0xC0 <= o <= 0x24F and o not in (0xD7, 0xF7))
            or 0x370 <= o <= 0x1FFF or 0x3040 <= o <= 0xD7FF)


def _oracle_tokens(texts, min_len, stop):
    vocab, ids, ptr = {}, [], [0]
    for text in texts:
        run = ""
        for ch in text.lower() + " ":
            if _is_letter(ch):
                run += ch
                continue
            if len(run) >= min_len and run not in stop:
                ids.append(vocab.setdefault(run, len(vocab)))
            run = ""
        ptr.append(len(ids))
    return np.asarray(ids, np.int32), np.asarray(ptr, np.int64), list(vocab)


@pytest.mark.parametrize("name", IMPLS["tokenizer"])
@pytest.mark.parametrize("min_len", [1, 3])
def test_tokenizer_equals_character_loop(name, min_len, rng):
    cls = _impl("tokenizer", name)
    alphabet = (list("abcdeXYZ  \t\n.,;'-0129") + ["é", "Ä", "ß", "ø", "×", "÷", "Ж", "щ", "Ω", "の", "한",
                "\u2019", "\u2014", "😀", "İ", "\u0301", "ǅ", "\u00aa", "\u00b5"])
    texts = ["".join(rng.choice(alphabet, size=rng.integers(0, 80))) for _ in range(400)]
    texts += ["", "The the THE and", "x" * 3000]
    stop = ["the", "and", "ab"]
    want_ids, want_ptr, want_vocab = _oracle_tokens(texts, min_len, set(stop))
    tok = cls(min_len=min_len, stopwords=stop)
    ids, ptr = tok.encode_many(texts)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(ptr, want_ptr)
    assert list(tok.words) == want_vocab
