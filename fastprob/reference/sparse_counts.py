"""NumPy references of the sparse word-count primitives in ``csrc/sparse_counts.pyx``."""
from __future__ import annotations

import numpy as np


def _check_ptr(doc_ptr: np.ndarray, n_items: int, what: str) -> None:
    if doc_ptr.ndim != 1 or doc_ptr.shape[0] < 1:
        raise ValueError(f"{what} must be a 1-D array of length n_docs + 1")
    if doc_ptr[0] != 0 or doc_ptr[-1] != n_items:
        raise ValueError(
            f"{what} must start at 0 and end at {n_items} (got {doc_ptr[0]} .. {doc_ptr[-1]})")
    if doc_ptr.shape[0] > 1 and np.any(np.diff(doc_ptr) < 0):
        raise ValueError(f"{what} must be non-decreasing")


def count_tokens(tokens, doc_ptr, n_words: int):
    """Token-id sequences -> CSR word counts.

    Parameters
    ----------
    tokens : int32 array of shape (n_tokens,)
        Word ids of all documents, concatenated; ids < 0 (out of vocabulary) are skipped.
    doc_ptr : int64 array of shape (n_docs + 1,)
        Document d owns ``tokens[doc_ptr[d]:doc_ptr[d + 1]]``.
    n_words : int
        Vocabulary size; every id must be < n_words.

    Returns
    -------
    indptr : int64 (n_docs + 1,), indices : int32 (nnz,), counts : int32 (nnz,)
        Column indices are sorted within each row.
    """
    tokens = np.ascontiguousarray(tokens, dtype=np.int32)
    doc_ptr = np.ascontiguousarray(doc_ptr, dtype=np.int64)
    _check_ptr(doc_ptr, tokens.shape[0], "doc_ptr")
    n_docs = doc_ptr.shape[0] - 1
    if tokens.size and tokens.max() >= n_words:
        raise ValueError(f"token id {int(tokens.max())} is outside the vocabulary of size {n_words}")
    doc = np.repeat(np.arange(n_docs, dtype=np.int64), np.diff(doc_ptr))
    keep = tokens >= 0
    key = doc[keep] * np.int64(n_words) + tokens[keep]
    uniq, counts = np.unique(key, return_counts=True)
    rows = uniq // n_words if n_words else uniq
    indptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_docs), out=indptr[1:])
    indices = (uniq - rows * n_words).astype(np.int32)
    return indptr, indices, counts.astype(np.int32)


def remap_csr(indptr, indices, counts, mapping, n_new: int):
    """Apply a vocabulary map to a CSR matrix: column j -> mapping[j] (-1 drops it).

    Several old columns may map to one new column (lemmatization); their counts are
    summed.  Returns a CSR (int64 indptr, int32 indices sorted per row, int32 counts).
    """
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int32)
    counts = np.ascontiguousarray(counts, dtype=np.int32)
    mapping = np.ascontiguousarray(mapping, dtype=np.int32)
    _check_ptr(indptr, indices.shape[0], "indptr")
    if counts.shape != indices.shape:
        raise ValueError("indices and counts must have the same length")
    if indices.size and (indices.min() < 0 or indices.max() >= mapping.shape[0]):
        raise ValueError(
            f"CSR column ids must lie in [0, {mapping.shape[0]}) to match the mapping; "
            "the vocabulary and the counts do not belong together")
    if mapping.size and mapping.max() >= n_new:
        raise ValueError(f"mapping targets {int(mapping.max())} >= n_new = {n_new}")
    n_docs = indptr.shape[0] - 1
    row = np.repeat(np.arange(n_docs, dtype=np.int64), np.diff(indptr))
    new = mapping[indices]
    keep = new >= 0
    key = row[keep] * np.int64(n_new) + new[keep]
    c = counts[keep].astype(np.int64)
    uniq, inv = np.unique(key, return_inverse=True)
    summed = np.bincount(inv, weights=c, minlength=uniq.shape[0]).astype(np.int64)
    rows = uniq // n_new if n_new else uniq
    out_ptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_docs), out=out_ptr[1:])
    return out_ptr, (uniq - rows * n_new).astype(np.int32), summed.astype(np.int32)
