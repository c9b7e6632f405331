"""Cython sparse counting vs its NumPy reference: bit-exact on edge cases."""
import numpy as np
import pytest

from fastprob import _dispatch
from fastprob.reference import sparse_counts as ref

from conftest import import_compiled  # noqa: E402

cy = import_compiled("fastprob._csrc.sparse_counts", "Cython extension not built (FASTPROB_PUREPYTHON install)")


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def _cases(rng):
    V = 50
    yield np.zeros(0, np.int32), np.zeros(1, np.int64), V                        # no documents
    yield np.zeros(0, np.int32), np.zeros(4, np.int64), V                        # empty documents
    yield np.array([7], np.int32), np.array([0, 0, 1, 1], np.int64), V           # one-word doc between empties
    yield np.array([0, V - 1, V - 1, 0], np.int32), np.array([0, 4], np.int64), V  # vocabulary edges
    yield np.array([-1, 3, -1, 3], np.int32), np.array([0, 2, 4], np.int64), V   # OOV tokens skipped
    lens = rng.integers(0, 30, size=200)
    toks = rng.integers(-1, V, size=lens.sum()).astype(np.int32)
    yield toks, np.concatenate([[0], np.cumsum(lens)]).astype(np.int64), V
    big = rng.integers(0, 10000, size=10**6).astype(np.int32)                    # a 10^6-token document
    yield big, np.array([0, big.size], np.int64), 10000


def test_count_tokens_bit_exact(rng):
    for toks, ptr, V in _cases(rng):
        _same(cy.count_tokens(toks, ptr, V), ref.count_tokens(toks, ptr, V))


def test_count_tokens_matches_brute_force(rng):
    lens = rng.integers(0, 12, size=40)
    toks = rng.integers(0, 9, size=lens.sum()).astype(np.int32)
    ptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    indptr, idx, cnt = cy.count_tokens(toks, ptr, 9)
    for d in range(40):
        u, c = np.unique(toks[ptr[d]:ptr[d + 1]], return_counts=True)
        np.testing.assert_array_equal(idx[indptr[d]:indptr[d + 1]], u)
        np.testing.assert_array_equal(cnt[indptr[d]:indptr[d + 1]], c)


@pytest.mark.parametrize("impl", ["cython", "numpy"])
def test_count_tokens_errors(impl):
    f = _dispatch.resolve("count_tokens", impl)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        f(np.array([5], np.int32), np.array([0, 1], np.int64), 5)
    with pytest.raises(ValueError, match="doc_ptr"):
        f(np.array([1, 2], np.int32), np.array([0, 1], np.int64), 5)
    with pytest.raises(ValueError, match="non-decreasing"):
        f(np.array([1, 2], np.int32), np.array([0, 2, 1, 2], np.int64), 5)


def test_remap_bit_exact(rng):
    for toks, ptr, V in _cases(rng):
        csr = ref.count_tokens(toks, ptr, V)
        for mapping, n_new in (
            (np.arange(V, dtype=np.int32), V),                                   # identity
            (rng.permutation(V).astype(np.int32), V),                            # shuffle: rows re-sorted
            (np.where(rng.random(V) < 0.5, -1, rng.integers(0, 7, V)).astype(np.int32), 7),  # drop + merge
        ):
            _same(cy.remap_csr(*csr, mapping, n_new), ref.remap_csr(*csr, mapping, n_new))


def test_remap_merges_counts():
    csr = ref.count_tokens(np.array([0, 1, 1, 2], np.int32), np.array([0, 4], np.int64), 3)
    for f in (cy.remap_csr, ref.remap_csr):
        ip, ix, ct = f(*csr, np.array([0, 0, -1], np.int32), 1)
        assert ip.tolist() == [0, 1] and ix.tolist() == [0] and ct.tolist() == [3]


@pytest.mark.parametrize("impl", ["cython", "numpy"])
def test_remap_vocab_mismatch(impl):
    f = _dispatch.resolve("remap_csr", impl)
    csr = (np.array([0, 1], np.int64), np.array([9], np.int32), np.array([1], np.int32))
    with pytest.raises(ValueError, match="do not belong together"):
        f(*csr, np.arange(5, dtype=np.int32), 5)
